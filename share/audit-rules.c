/* What the audit looks for: which paths make the host run something,
 * which git variables run a program, which npm scripts run on install,
 * and when a symlink or an include leaves the share.  Pure: strings in,
 * decisions out; the input is guest-written (fuzz-audit). */
#include <jansson.h>
#include <string.h>

#include "audit.h"
#include "json-cleanup.h"
#include "util.h"

void mvm_audit_strs_push(struct mvm_audit_strs *s, char *x)
{
    s->v = xrealloc(s->v, (s->n + 1) * sizeof *s->v);
    s->v[s->n++] = x;
}

void mvm_audit_strs_clear(struct mvm_audit_strs *s)
{
    for (size_t i = 0; i < s->n; i++)
        free(s->v[i]);
    free(s->v);
    s->v = NULL;
    s->n = 0;
}

bool mvm_audit_strs_has(const struct mvm_audit_strs *s, const char *x)
{
    for (size_t i = 0; i < s->n; i++)
        if (strcmp(s->v[i], x) == 0)
            return true;
    return false;
}

/* ---- git config ------------------------------------------------------ */

enum sub_rule { SUB_NONE, SUB_ANY, SUB_REQUIRED };
enum value_rule { VALUE_ANY, VALUE_BANG, VALUE_URL };

struct git_danger {
    const char *section, *key; /* key NULL: any key of the section */
    enum sub_rule sub;
    enum value_rule value;
    bool include;
};

/* Variables that make git run a program, read another file, or work on
 * another tree (git-config(1)); in a repository's own config or in
 * .gitmodules each would run on the host at the user's next git command. */
static const struct git_danger git_dangers[] = {
    {"core", "hookspath", SUB_NONE, VALUE_ANY, false},
    {"core", "fsmonitor", SUB_NONE, VALUE_ANY, false},
    {"core", "sshcommand", SUB_NONE, VALUE_ANY, false},
    {"core", "pager", SUB_NONE, VALUE_ANY, false},
    {"core", "editor", SUB_NONE, VALUE_ANY, false},
    {"core", "askpass", SUB_NONE, VALUE_ANY, false},
    {"core", "gitproxy", SUB_NONE, VALUE_ANY, false},
    {"core", "alternaterefscommand", SUB_NONE, VALUE_ANY, false},
    {"core", "worktree", SUB_NONE, VALUE_ANY, false},
    {"sequence", "editor", SUB_NONE, VALUE_ANY, false},
    {"diff", "external", SUB_NONE, VALUE_ANY, false},
    {"diff", "textconv", SUB_REQUIRED, VALUE_ANY, false},
    {"diff", "command", SUB_REQUIRED, VALUE_ANY, false},
    {"filter", "clean", SUB_REQUIRED, VALUE_ANY, false},
    {"filter", "smudge", SUB_REQUIRED, VALUE_ANY, false},
    {"filter", "process", SUB_REQUIRED, VALUE_ANY, false},
    {"merge", "driver", SUB_REQUIRED, VALUE_ANY, false},
    {"credential", "helper", SUB_ANY, VALUE_ANY, false},
    {"alias", NULL, SUB_ANY, VALUE_BANG, false},
    {"pager", NULL, SUB_NONE, VALUE_ANY, false},
    {"interactive", "difffilter", SUB_NONE, VALUE_ANY, false},
    {"gpg", "program", SUB_ANY, VALUE_ANY, false},
    {"gpg", "defaultkeycommand", SUB_REQUIRED, VALUE_ANY, false},
    {"sendemail", "smtpserver", SUB_ANY, VALUE_ANY, false},
    {"sendemail", "sendmailcmd", SUB_ANY, VALUE_ANY, false},
    {"sendemail", "tocmd", SUB_ANY, VALUE_ANY, false},
    {"sendemail", "cccmd", SUB_ANY, VALUE_ANY, false},
    {"difftool", "cmd", SUB_REQUIRED, VALUE_ANY, false},
    {"difftool", "path", SUB_REQUIRED, VALUE_ANY, false},
    {"mergetool", "cmd", SUB_REQUIRED, VALUE_ANY, false},
    {"mergetool", "path", SUB_REQUIRED, VALUE_ANY, false},
    {"web", "browser", SUB_NONE, VALUE_ANY, false},
    {"browser", "cmd", SUB_REQUIRED, VALUE_ANY, false},
    {"browser", "path", SUB_REQUIRED, VALUE_ANY, false},
    {"man", "viewer", SUB_NONE, VALUE_ANY, false},
    {"man", "cmd", SUB_REQUIRED, VALUE_ANY, false},
    {"man", "path", SUB_REQUIRED, VALUE_ANY, false},
    {"remote", "uploadpack", SUB_REQUIRED, VALUE_ANY, false},
    {"remote", "receivepack", SUB_REQUIRED, VALUE_ANY, false},
    {"remote", "url", SUB_REQUIRED, VALUE_URL, false},
    {"remote", "pushurl", SUB_REQUIRED, VALUE_URL, false},
    {"url", "insteadof", SUB_REQUIRED, VALUE_ANY, false},
    {"url", "pushinsteadof", SUB_REQUIRED, VALUE_ANY, false},
    {"submodule", "update", SUB_REQUIRED, VALUE_BANG, false},
    {"submodule", "url", SUB_REQUIRED, VALUE_URL, false},
    {"uploadpack", "packobjectshook", SUB_NONE, VALUE_ANY, false},
    {"trailer", "command", SUB_REQUIRED, VALUE_ANY, false},
    {"trailer", "cmd", SUB_REQUIRED, VALUE_ANY, false},
    {"protocol", "allow", SUB_ANY, VALUE_ANY, false},
    {"include", "path", SUB_NONE, VALUE_ANY, true},
    {"includeif", "path", SUB_REQUIRED, VALUE_ANY, true},
};

static bool value_matches(enum value_rule rule, const char *v)
{
    switch (rule) {
    case VALUE_BANG:
        return v && v[0] == '!';
    case VALUE_URL: /* a transport that runs a command, or an option to one */
        return v && (str_has_prefix(v, "ext::") || v[0] == '-');
    default:
        return true;
    }
}

static const struct git_danger *git_danger_of(const struct mvm_gitconfig_var *var)
{
    for (size_t i = 0; i < ARRAY_SIZE(git_dangers); i++) {
        const struct git_danger *d = &git_dangers[i];
        if (strcmp(d->section, var->section) != 0 || (d->key && strcmp(d->key, var->key) != 0))
            continue;
        if ((d->sub == SUB_NONE && var->subsection) || (d->sub == SUB_REQUIRED && !var->subsection))
            continue;
        if (value_matches(d->value, var->value))
            return d;
    }
    return NULL;
}

struct dangers_ctx {
    struct mvm_audit_strs found, includes;
};

static int collect_danger(void *arg, const struct mvm_gitconfig_var *var)
{
    struct dangers_ctx *c = arg;
    const struct git_danger *d = git_danger_of(var);
    if (d == NULL)
        return 0;
    struct buf b = {0};
    buf_printf(&b, "%s.", var->section);
    if (var->subsection)
        buf_printf(&b, "%s.", var->subsection);
    buf_printf(&b, "%s", var->key);
    if (var->value)
        buf_printf(&b, " = %s", var->value);
    buf_append(&b, "", 1);
    mvm_audit_strs_push(&c->found, b.data);
    if (d->include && var->value && var->value[0])
        mvm_audit_strs_push(&c->includes, xstrdup(var->value));
    return 0;
}

int mvm_audit_git_dangers(const char *text, size_t len, struct mvm_audit_strs *dangers,
                          struct mvm_audit_strs *includes)
{
    struct dangers_ctx c = {{0}, {0}};
    if (mvm_gitconfig_parse(text, len, collect_danger, &c, NULL) < 0) {
        mvm_audit_strs_clear(&c.found);
        mvm_audit_strs_clear(&c.includes);
        return -1;
    }
    for (size_t i = 0; i < c.found.n; i++)
        mvm_audit_strs_push(dangers, steal_pointer(&c.found.v[i]));
    for (size_t i = 0; includes && i < c.includes.n; i++)
        mvm_audit_strs_push(includes, steal_pointer(&c.includes.v[i]));
    mvm_audit_strs_clear(&c.found);
    mvm_audit_strs_clear(&c.includes);
    return 0;
}

static int take_hooks_path(void *arg, const struct mvm_gitconfig_var *var)
{
    char **out = arg;
    if (strcmp(var->section, "core") == 0 && !var->subsection &&
        strcmp(var->key, "hookspath") == 0 && var->value) {
        free(*out);
        *out = xstrdup(var->value);
    }
    return 0;
}

char *mvm_audit_git_hooks_path(const char *text, size_t len)
{
    char *path = NULL;
    if (mvm_gitconfig_parse(text, len, take_hooks_path, &path, NULL) < 0) {
        free(path);
        return NULL;
    }
    return path;
}

/* ---- package.json ------------------------------------------------------ */

int mvm_audit_npm_scripts(const char *text, size_t len, struct mvm_audit_strs *out)
{
    /* npm's lifecycle scripts for `npm install` in the package itself. */
    static const char *const install_scripts[] = {
        "preinstall", "install",     "postinstall", "preprepare",
        "prepare",    "postprepare", "prepublish",
    };
    if (len >= 3 && memcmp(text, "\xef\xbb\xbf", 3) == 0) { /* npm strips a BOM */
        text += 3;
        len -= 3;
    }
    cleanup_json json_t *root = json_loadb(text, len, 0, NULL);
    if (root == NULL || !json_is_object(root))
        return -1;
    json_t *scripts = json_object_get(root, "scripts");
    if (!json_is_object(scripts))
        return 0;
    for (size_t i = 0; i < ARRAY_SIZE(install_scripts); i++) {
        json_t *s = json_object_get(scripts, install_scripts[i]);
        if (s == NULL)
            continue;
        cleanup_free char *other = json_is_string(s) ? NULL : json_dumps(s, JSON_ENCODE_ANY);
        mvm_audit_strs_push(out, xasprintf("scripts.%s = %s", install_scripts[i],
                                           json_is_string(s) ? json_string_value(s)
                                           : other           ? other
                                                             : "?"));
    }
    return 0;
}

/* ---- paths ------------------------------------------------------------- */

bool mvm_audit_link_leaves(const char *path, const char *target)
{
    if (target[0] == '/')
        return true;
    long depth = 0;
    for (const char *p = path; *p; p++)
        if (*p == '/')
            depth++;
    for (const char *c = target; *c;) {
        size_t n = strcspn(c, "/");
        if (n == 2 && c[0] == '.' && c[1] == '.') {
            if (--depth < 0)
                return true;
        } else if (n > 0 && !(n == 1 && c[0] == '.')) {
            depth++;
        }
        c += n;
        c += *c == '/';
    }
    return false;
}

/* Joins base and rel lexically (".", "..", empty components); NULL when
 * ".." leaves the top or nothing is left. */
static char *normalize(const char *base, const char *rel)
{
    cleanup_free char *joined = base[0] ? xasprintf("%s/%s", base, rel) : xstrdup(rel);
    size_t n = strlen(joined);
    cleanup_free char *out = xmalloc(n + 1);
    size_t len = 0;
    for (const char *c = joined; *c;) {
        size_t k = strcspn(c, "/");
        if (k == 2 && c[0] == '.' && c[1] == '.') {
            if (len == 0)
                return NULL;
            while (len > 0 && out[len - 1] != '/')
                len--;
            if (len > 0)
                len--;
        } else if (k > 0 && !(k == 1 && c[0] == '.')) {
            if (len > 0)
                out[len++] = '/';
            memcpy(out + len, c, k);
            len += k;
        }
        c += k;
        c += *c == '/';
    }
    if (len == 0)
        return NULL;
    out[len] = '\0';
    return steal_pointer(&out);
}

char *mvm_audit_include_path(const char *top, const char *config, const char *inc)
{
    if (inc[0] == '\0' || inc[0] == '~' || str_has_prefix(inc, "%(prefix)/"))
        return NULL;
    if (inc[0] == '/') {
        size_t t = strlen(top);
        if (t < 2 || strncmp(inc, top, t) != 0 || inc[t] != '/')
            return NULL;
        return normalize("", inc + t + 1);
    }
    const char *slash = strrchr(config, '/');
    cleanup_free char *dir = slash ? xstrndup(config, (size_t)(slash - config)) : xstrdup("");
    return normalize(dir, inc);
}

bool mvm_audit_under(const char *path, const char *dir)
{
    size_t n = strlen(dir);
    return strncmp(path, dir, n) == 0 && (path[n] == '\0' || path[n] == '/');
}

struct comps {
    const char *p[MVM_AUDIT_MAX_DEPTH + 2];
    size_t len[MVM_AUDIT_MAX_DEPTH + 2];
    size_t n;
};

static bool is(const struct comps *c, size_t i, const char *name)
{
    return i < c->n && c->len[i] == strlen(name) && memcmp(c->p[i], name, c->len[i]) == 0;
}

static bool ends_with(const struct comps *c, size_t i, const char *suffix)
{
    size_t k = strlen(suffix);
    return c->len[i] >= k && memcmp(c->p[i] + c->len[i] - k, suffix, k) == 0;
}

/* A repository's directory at c[g]: its hooks (.git/hooks, or those of
 * a submodule's repository under .git/modules/NAME/) and its config. */
static enum mvm_audit_class git_dir_class(const struct comps *c, size_t g, bool is_dir)
{
    size_t last = c->n - 1;
    bool modules = is(c, g + 1, "modules") || is(c, g + 1, "worktrees");
    for (size_t h = g + 1; h <= last; h++) {
        if (!is(c, h, "hooks") || !(h == g + 1 || (is(c, g + 1, "modules") && h > g + 2)))
            continue;
        if (h == last)
            return is_dir ? MVM_AUDIT_CLASS_NONE : MVM_AUDIT_CLASS_HOOK;
        if (is_dir || ends_with(c, last, ".sample")) /* git never runs a .sample */
            return MVM_AUDIT_CLASS_NONE;
        return MVM_AUDIT_CLASS_HOOK;
    }
    if (!is_dir && (is(c, last, "config") || is(c, last, "config.worktree")) &&
        (last == g + 1 || (modules && last > g + 2)))
        return MVM_AUDIT_CLASS_GIT_CONFIG;
    return MVM_AUDIT_CLASS_NONE;
}

/* Editors, direnv and agents read these from the project and run what
 * they say: direnv, VS Code tasks and settings, JetBrains run
 * configurations, Claude Code's settings (hooks) and MCP servers, dev
 * containers. */
static bool tool_file(const struct comps *c, bool is_dir)
{
    size_t last = c->n - 1;
    for (size_t i = 0; i < c->n; i++)
        if (is(c, i, ".devcontainer"))
            return true;
    if (is_dir)
        return false;
    if (is(c, last, ".envrc") || is(c, last, ".mcp.json") || is(c, last, ".devcontainer.json") ||
        ends_with(c, last, ".code-workspace"))
        return true;
    if (last == 0)
        return false;
    size_t up = last - 1;
    if (is(c, up, ".vscode") && (is(c, last, "tasks.json") || is(c, last, "settings.json")))
        return true;
    if (is(c, up, ".claude") &&
        (is(c, last, "settings.json") || is(c, last, "settings.local.json")))
        return true;
    if ((is(c, up, ".idea") && is(c, last, "workspace.xml")) ||
        (is(c, up, ".run") && ends_with(c, last, ".run.xml")))
        return true;
    for (size_t i = 0; i + 1 < last; i++)
        if (is(c, i, ".idea") && is(c, i + 1, "runConfigurations"))
            return true;
    return false;
}

enum mvm_audit_class mvm_audit_classify(const char *path, bool is_dir)
{
    struct comps c = {.n = 0};
    for (const char *p = path; *p;) {
        size_t k = strcspn(p, "/");
        if (k > 0) {
            if (c.n == ARRAY_SIZE(c.p))
                return MVM_AUDIT_CLASS_NONE;
            c.p[c.n] = p;
            c.len[c.n++] = k;
        }
        p += k;
        p += *p == '/';
    }
    if (c.n == 0)
        return MVM_AUDIT_CLASS_NONE;
    size_t last = c.n - 1;
    if (is(&c, last, ".git") && !is_dir)
        return MVM_AUDIT_CLASS_GIT_LINK;
    bool in_node_modules = false;
    for (size_t g = 0; g < last; g++) {
        in_node_modules |= is(&c, g, "node_modules");
        if (!is(&c, g, ".git"))
            continue;
        enum mvm_audit_class k = git_dir_class(&c, g, is_dir);
        if (k != MVM_AUDIT_CLASS_NONE)
            return k;
    }
    if (!is_dir && is(&c, last, ".gitmodules"))
        return MVM_AUDIT_CLASS_GIT_CONFIG;
    if (!is_dir && !in_node_modules && is(&c, last, "package.json"))
        return MVM_AUDIT_CLASS_NPM;
    return tool_file(&c, is_dir) ? MVM_AUDIT_CLASS_TOOL : MVM_AUDIT_CLASS_NONE;
}
