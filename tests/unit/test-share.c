/* Unit tests for share/: virtiofsd's argv over paths that try to become
 * options (each flavour gets exactly the directory, or a clear refusal),
 * and the automatic share's choice of directory, .git ownership included. */
#include "boot-test-util.h"

#include "share.h"

static const struct mvm_virtiofsd c_flavor = {"/usr/lib/qemu/virtiofsd", MVM_VIRTIOFSD_C};
static const struct mvm_virtiofsd rust_flavor = {"/usr/libexec/virtiofsd", MVM_VIRTIOFSD_RUST};

/* Paths a checkout or a user's home may hold. */
static const char *const hostile_paths[] = {
    "/tmp/x,source=/home",    "/home/Smith, John/project",
    "/tmp/back\\slash",       "/tmp/trailing\\",
    "/tmp/\\054octal",        "/tmp/with space",
    "/tmp/new\nline",         "/tmp/-rf",
    "/tmp/--shared-dir=/etc", "/tmp/tab\there",
    "/tmp/caf\xc3\xa9",       "/tmp/a=b,cache=none,sandbox=none",
};

/* The C virtiofsd's option parser (fuse_opt), as documented: -o takes
 * comma-separated options; a backslash escapes the next byte, and a
 * backslash with three octal digits is that byte.  Returns the options. */
static size_t split_fuse_opts(const char *s, char out[][4096], size_t max)
{
    size_t n = 0, len = 0;
    for (;; s++) {
        if (*s == '\0' || *s == ',') {
            out[n][len] = '\0';
            n++;
            len = 0;
            if (*s == '\0' || n == max)
                return n;
            continue;
        }
        char c = *s;
        if (c == '\\' && s[1] != '\0') {
            s++;
            if (s[0] >= '0' && s[0] <= '3' && s[1] >= '0' && s[1] <= '7' && s[2] >= '0' &&
                s[2] <= '7') {
                c = (char)((s[0] - '0') * 64 + (s[1] - '0') * 8 + (s[2] - '0'));
                s += 2;
            } else {
                c = *s;
            }
        }
        out[n][len++] = c;
    }
}

static void test_argv_c_flavor(void **state)
{
    (void)state;
    for (size_t i = 0; i < ARRAY_SIZE(hostile_paths); i++) {
        const char *path = hostile_paths[i];
        cleanup_error struct mvm_error *err = NULL;
        char **argv = mvm_virtiofsd_argv(&c_flavor, path, false, 7, &err);
        assert_non_null(argv);
        assert_string_equal(argv[0], c_flavor.path);
        assert_string_equal(argv[1], "--fd=7");
        assert_string_equal(argv[2], "-o");
        static char opts[16][4096];
        size_t n = split_fuse_opts(argv[3], opts, 16);
        size_t sources = 0;
        for (size_t k = 0; k < n; k++)
            if (strncmp(opts[k], "source=", 7) == 0) {
                sources++;
                assert_string_equal(opts[k] + 7, path);
            }
        assert_int_equal(sources, 1);
        bool cache_auto = false;
        for (size_t k = 0; k < n; k++)
            cache_auto |= strcmp(opts[k], "cache=auto") == 0;
        assert_true(cache_auto);
        /* Nothing after -o's value is a path: no other argument has one. */
        for (size_t k = 4; argv[k]; k++)
            assert_null(strstr(argv[k], "/tmp"));
        mvm_strv_free(argv);
    }
}

static void test_argv_rust_flavor(void **state)
{
    (void)state;
    for (size_t i = 0; i < ARRAY_SIZE(hostile_paths); i++) {
        const char *path = hostile_paths[i];
        cleanup_error struct mvm_error *err = NULL;
        char **argv = mvm_virtiofsd_argv(&rust_flavor, path, true, 9, &err);
        assert_non_null(argv);
        cleanup_free char *want = xasprintf("--shared-dir=%s", path);
        size_t found = 0;
        for (size_t k = 1; argv[k]; k++) {
            if (strcmp(argv[k], want) == 0)
                found++;
            else /* the path is in one argument, glued to its option */
                assert_null(strstr(argv[k], path));
        }
        assert_int_equal(found, 1);
        bool cache_always = false;
        for (size_t k = 1; argv[k]; k++)
            cache_always |= strcmp(argv[k], "--cache=always") == 0;
        assert_true(cache_always);
        mvm_strv_free(argv);
    }
}

static void test_argv_refusals(void **state)
{
    (void)state;
    cleanup_error struct mvm_error *err = NULL;
    /* Not UTF-8: the C flavour takes it (octal escapes), Rust cannot. */
    char **argv = mvm_virtiofsd_argv(&c_flavor, "/tmp/\xff\xfe", false, 3, &err);
    assert_non_null(argv);
    static char opts[16][4096];
    split_fuse_opts(argv[3], opts, 16);
    assert_string_equal(opts[0], "source=/tmp/\xff\xfe");
    mvm_strv_free(argv);
    assert_null(mvm_virtiofsd_argv(&rust_flavor, "/tmp/\xff\xfe", false, 3, &err));
    assert_error_contains(err, "not valid UTF-8");
    mvm_error_cleanup(&err);
    assert_null(mvm_virtiofsd_argv(&c_flavor, "relative/dir", false, 3, &err));
    assert_error_contains(err, "not an absolute path");
}

/* ---- the automatic share ------------------------------------------------ */

struct repo {
    char *dir, *top, *sub;
};

static int repo_setup(void **state)
{
    struct repo *r = xcalloc(1, sizeof *r);
    r->dir = test_tmpdir();
    r->top = xasprintf("%s/repo", r->dir);
    r->sub = xasprintf("%s/repo/sub/dir", r->dir);
    assert_int_equal(run_sh("mkdir -p '%s/.git' '%s'", r->top, r->sub), 0);
    *state = r;
    return 0;
}

static int repo_teardown(void **state)
{
    struct repo *r = *state;
    remove_tree(r->dir);
    free(r->dir);
    free(r->top);
    free(r->sub);
    free(r);
    return 0;
}

static void test_auto_dir_git_owner(void **state)
{
    struct repo *r = *state;
    uid_t me = geteuid();
    cleanup_error struct mvm_error *err = NULL;
    /* Positive control: the user's own repository is shared from its top. */
    cleanup_free char *dir = NULL, *note = NULL;
    assert_no_error(mvm_share_auto_dir(r->sub, me, NULL, 0, &dir, &note, &err), err);
    assert_string_equal(dir, r->top);
    assert_null(note);

    /* The same repository seen by another user: a .git planted above
     * their project (/var/tmp/.git) is ignored, with a note saying why. */
    uid_t other = me + 1;
    cleanup_free char *dir2 = NULL, *note2 = NULL;
    assert_no_error(mvm_share_auto_dir(r->sub, other, NULL, 0, &dir2, &note2, &err), err);
    assert_string_equal(dir2, r->sub);
    assert_non_null(note2);
    assert_non_null(strstr(note2, r->top));
    cleanup_free char *owner = xasprintf("belongs to uid %u", (unsigned)me);
    assert_non_null(strstr(note2, owner));
}

static void test_auto_dir_refusals(void **state)
{
    struct repo *r = *state;
    cleanup_error struct mvm_error *err = NULL;
    cleanup_free char *dir = NULL, *note = NULL;
    /* Positive control first, then each refusal. */
    assert_no_error(mvm_share_auto_dir(r->sub, geteuid(), NULL, 0, &dir, &note, &err), err);
    char *homes[] = {r->top, NULL};
    cleanup_free char *d2 = NULL, *n2 = NULL;
    assert_int_equal(mvm_share_auto_dir(r->top, geteuid(), homes, 1, &d2, &n2, &err), -1);
    assert_error_contains(err, "home directory");
    assert_error_contains(err, "--no-cwd");
    mvm_error_cleanup(&err);
    assert_int_equal(mvm_share_auto_dir("/etc", 0, NULL, 0, &d2, &n2, &err), -1);
    assert_error_contains(err, "system directory");
    mvm_error_cleanup(&err);
    cleanup_free char *ssh = xasprintf("%s/.ssh", r->top);
    mkdir_fixture(ssh);
    assert_int_equal(mvm_share_auto_dir(r->top, geteuid(), NULL, 0, &d2, &n2, &err), -1);
    assert_error_contains(err, ".ssh");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_argv_c_flavor),
        cmocka_unit_test(test_argv_rust_flavor),
        cmocka_unit_test(test_argv_refusals),
        cmocka_unit_test_setup_teardown(test_auto_dir_git_owner, repo_setup, repo_teardown),
        cmocka_unit_test_setup_teardown(test_auto_dir_refusals, repo_setup, repo_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
