/* mvm image's pure part (names, --from, --packages, the mirror in apt's
 * sources, the tools' argv, the size, the recipe's JSON, the table), the
 * store in a temporary directory (resolve, ls, inspect, rm, the sweep of
 * interrupted builds) and the tool runner (the cause picked from the
 * output, a signal stopping the tool), none of which needs root. */
#include "boot-test-util.h"

#include <signal.h>
#include <stdio.h>
#include <sys/file.h>
#include <sys/signalfd.h>

#include <jansson.h>

#include "src/disk/disk-int.h"

static void test_names(void **state)
{
    static const char *const good[] = {
        "a", "dev", "ci-1.2_x", "9",
        "0123456789012345678901234567890123456789012345678901234567890123"};
    static const char *const bad[] = {
        "",        ".x",  "-x",
        "_x",      "A",   "Dev",
        "a/b",     "..",  "a b",
        "caf\xc3", "x\n", "01234567890123456789012345678901234567890123456789012345678901234"};
    for (size_t i = 0; i < ARRAY_SIZE(good); i++)
        assert_no_error(mvm_image_name_check(good[i], NULL), NULL);
    for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
        cleanup_error struct mvm_error *err = NULL;
        assert_int_equal(mvm_image_name_check(bad[i], &err), -1);
        assert_error_contains(err, "bad image name '");
        assert_null(strchr(err->msg, '\n'));
    }
}

static void test_from_packages(void **state)
{
    struct mvm_image_recipe r = {0};
    assert_no_error(mvm_image_recipe_from(&r, "debian:trixie", NULL), NULL);
    assert_string_equal(r.suite, "trixie");
    assert_string_equal(r.from, "debian:trixie");
    static const char *const bad_from[] = {"debian:sid", "ubuntu:noble", "bookworm", ""};
    for (size_t i = 0; i < ARRAY_SIZE(bad_from); i++) {
        cleanup_error struct mvm_error *err = NULL;
        assert_int_equal(mvm_image_recipe_from(&r, bad_from[i], &err), -1);
        assert_error_contains(err, "debian:bookworm or debian:trixie");
    }
    assert_no_error(mvm_image_recipe_packages(&r, "jq,libc6-dev,g++", NULL), NULL);
    assert_no_error(mvm_image_recipe_packages(&r, "less", NULL), NULL);
    assert_int_equal(r.npackages, 4);
    assert_string_equal(r.packages[2], "g++");
    assert_string_equal(r.packages[3], "less");
    static const char *const bad[] = {"", "a,,b", "Jq", "jq,", "x", "a b", "-o", "jq;rm"};
    for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
        cleanup_error struct mvm_error *err = NULL;
        assert_int_equal(mvm_image_recipe_packages(&r, bad[i], &err), -1);
        assert_error_contains(err, "Debian package names");
    }
    mvm_image_recipe_clear(&r);
}

static void test_mirror(void **state)
{
    static const struct {
        const char *text, *want;
    } cases[] = {
        {"# comment\ndeb http://deb.debian.org/debian bookworm main\n",
         "http://deb.debian.org/debian"},
        {"deb-src http://a.example/debian bookworm main\n"
         "deb [signed-by=/k.gpg arch=amd64] https://mirror.example/debian/ bookworm main\n",
         "https://mirror.example/debian/"},
        /* Security and other distributions are not the archive. */
        {"deb http://deb.debian.org/debian-security bookworm-security main\n"
         "deb http://archive.ubuntu.com/ubuntu noble main\n",
         NULL},
        {"Types: deb\nURIs: http://deb.debian.org/debian\nSuites: bookworm bookworm-updates\n"
         "Components: main\n\nTypes: deb\nURIs: http://deb.debian.org/debian-security\n",
         "http://deb.debian.org/debian"},
        {"Types: deb-src\nURIs: http://src.example/debian\n\n"
         "Types: deb\nURIs: http://deb.debian.org/debian-security http://m.example/debian\n",
         "http://m.example/debian"},
        {"", NULL},
    };
    for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
        cleanup_free char *got = mvm_image_mirror_in(cases[i].text);
        if (cases[i].want == NULL)
            assert_null(got);
        else
            assert_string_equal(got, cases[i].want);
    }
}

static void test_argv(void **state)
{
    struct mvm_image_recipe r = {.name = "dev", .mirror = xstrdup("http://m/debian")};
    assert_no_error(mvm_image_recipe_from(&r, "debian:bookworm", NULL), NULL);
    static const char *const plain[] = {"/usr/bin/mmdebstrap",
                                        "--mode=unshare",
                                        "--variant=minbase",
                                        "--format=tar",
                                        "bookworm",
                                        "/b/rootfs.tar",
                                        "http://m/debian",
                                        NULL};
    assert_argv(mvm_image_mmdebstrap_argv("/usr/bin/mmdebstrap", &r, "/b/rootfs.tar"), plain);
    assert_no_error(mvm_image_recipe_packages(&r, "jq,less", NULL), NULL);
    static const char *const with[] = {"m",
                                       "--mode=unshare",
                                       "--variant=minbase",
                                       "--format=tar",
                                       "--include=jq,less",
                                       "bookworm",
                                       "o",
                                       "http://m/debian",
                                       NULL};
    assert_argv(mvm_image_mmdebstrap_argv("m", &r, "o"), with);
    static const char *const untar[] = {"tar",
                                        "--extract",
                                        "--numeric-owner",
                                        "--preserve-permissions",
                                        "--xattrs",
                                        "--xattrs-include=*",
                                        "-C",
                                        "/t",
                                        "-f",
                                        "/x.tar",
                                        NULL};
    assert_argv(mvm_image_untar_argv("tar", "/x.tar", "/t"), untar);
    static const char *const convert[] = {"qemu-img", "convert", "-q",     "-f",       "raw",
                                          "-O",       "qcow2",   "/r.img", "/i.qcow2", NULL};
    assert_argv(mvm_image_convert_argv("qemu-img", "/r.img", "/i.qcow2"), convert);
    /* The recipe's cache key changes with every input. */
    char a[33], b[33];
    mvm_image_cache_key(&r, a);
    free(r.packages[1]);
    r.packages[1] = xstrdup("jq2");
    mvm_image_cache_key(&r, b);
    assert_string_not_equal(a, b);
    mvm_image_recipe_clear(&r);

    struct mvm_disk_mkfs o = {.label = "dev", .journal = true, .root_dir = "/b/tree"};
    static const char *const mkfs[] = {
        "mkfs", "-q",      "-F",
        "-m",   "0",       "-L",
        "dev",  "-E",      "lazy_itable_init=1,lazy_journal_init=1,nodiscard",
        "-d",   "/b/tree", "/b/root.img",
        NULL};
    assert_argv(mvm_disk_mkfs_argv("mkfs", "/b/root.img", &o), mkfs);
}

static void test_size(void **state)
{
    assert_int_equal(mvm_image_size_mib(0), 2048);
    /* 200 MiB: 250 + 2048, rounded up to 256 MiB. */
    assert_int_equal(mvm_image_size_mib(200ULL << 20), 2304);
    assert_int_equal(mvm_image_size_mib(4096ULL << 20) % 256, 0);
    assert_true(mvm_image_size_mib(4096ULL << 20) >= 5120 + 2048);
}

static void test_recipe_json(void **state)
{
    struct mvm_image_recipe r = {.name = "dev", .mirror = xstrdup("http://m/debian")};
    assert_no_error(mvm_image_recipe_from(&r, "debian:bookworm", NULL), NULL);
    assert_no_error(mvm_image_recipe_packages(&r, "jq", NULL), NULL);
    r.script_path = xstrdup("s.sh");
    r.script = xstrdup("echo hi\n");
    r.script_len = strlen(r.script);
    struct mvm_image_meta m = {.version = "1.2", .created = 86400, .size = 5, .virtual_size = 9};
    memset(m.digest, 'a', 64);
    cleanup_free char *text = mvm_image_recipe_json(&r, &m);
    assert_non_null(text);
    json_t *j = json_loads(text, 0, NULL);
    assert_non_null(j);
    assert_string_equal(json_string_value(json_object_get(j, "from")), "debian:bookworm");
    assert_string_equal(json_string_value(json_object_get(j, "created")), "1970-01-02T00:00:00Z");
    assert_string_equal(json_string_value(json_array_get(json_object_get(j, "packages"), 0)), "jq");
    json_t *s = json_object_get(j, "script");
    assert_string_equal(json_string_value(json_object_get(s, "text")), "echo hi\n");
    /* sha256("echo hi\n") */
    assert_string_equal(json_string_value(json_object_get(s, "sha256")),
                        "ab08508fdf5ca4da5c4995987bc41c56c048aaa5eeb046417ae4049b7d40286e");
    cleanup_free char *digest = xasprintf("sha256:%.64s", m.digest);
    assert_string_equal(json_string_value(json_object_get(j, "digest")), digest);
    assert_int_equal(json_integer_value(json_object_get(j, "virtual_size")), 9);
    json_decref(j);
    /* A script that is not UTF-8 keeps its digest, not its text. */
    r.script[0] = (char)0xff;
    cleanup_free char *bin = mvm_image_recipe_json(&r, &m);
    j = json_loads(bin, 0, NULL);
    assert_true(json_is_null(json_object_get(json_object_get(j, "script"), "text")));
    json_decref(j);
    mvm_image_recipe_clear(&r);
}

static char *table(const struct mvm_image_entry *e, size_t n)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    mvm_image_table(f, e, n);
    fclose(f);
    return text;
}

static void test_table(void **state)
{
    cleanup_free char *none = table(NULL, 0);
    assert_non_null(strstr(none, "no images"));
    struct mvm_image_entry e[] = {
        {.name = "dev",
         .from = "debian:bookworm",
         .created = "2026-12-03T16:20:05Z",
         .size = 200 << 20},
        {.name = "a-much-longer-name", .size = 1},
    };
    cleanup_free char *t = table(e, 2);
    assert_string_equal(t, "NAME                  SIZE  CREATED           FROM\n"
                           "dev                   200M  2026-12-03 16:20  debian:bookworm\n"
                           "a-much-longer-name      1B  ?                 ?\n");
}

/* ---- the store in a temporary directory ---------------------------------- */

static void test_store(void **state)
{
    cleanup_free char *dir = test_tmpdir();
    cleanup_free char *img = xasprintf("%s/dev.qcow2", dir);
    cleanup_free char *json = xasprintf("%s/dev.json", dir);
    write_text(img, "not really qcow2");
    write_text(json, "{\"from\": \"debian:trixie\", \"created\": \"2026-12-03T16:20:05Z\"}\n");
    /* A name finds the stored image; a path or a file here is itself. */
    char *path = NULL;
    assert_no_error(mvm_image_resolve(dir, "dev", &path, NULL), NULL);
    assert_string_equal(path, img);
    free(path);
    assert_no_error(mvm_image_resolve(dir, "./dev", &path, NULL), NULL);
    assert_null(path);
    cleanup_error struct mvm_error *err = NULL;
    assert_int_equal(mvm_image_resolve(dir, "nope", &path, &err), -1);
    assert_error_contains(err, "mvm image ls");
    assert_error_contains(err, "mvm image build nope");
    assert_true(mvm_image_exists(dir, "dev"));

    /* Here, a directory "dev" (a debian/ in a source tree) does not hide
     * the stored image; a file "dev" is the image the user means; a
     * directory "nope" that is not stored is left to --image's own error. */
    cleanup_free char *here = test_tmpdir();
    cleanup_free char *cwd = getcwd(NULL, 0);
    assert_int_equal(chdir(here), 0);
    assert_int_equal(mkdir("dev", 0755), 0);
    assert_int_equal(mkdir("nope", 0755), 0);
    assert_no_error(mvm_image_resolve(dir, "dev", &path, NULL), NULL);
    assert_string_equal(path, img);
    free(path);
    assert_no_error(mvm_image_resolve(dir, "nope", &path, NULL), NULL);
    assert_null(path);
    assert_int_equal(rmdir("dev"), 0);
    write_text("dev", "a raw image");
    assert_no_error(mvm_image_resolve(dir, "dev", &path, NULL), NULL);
    assert_null(path);
    assert_int_equal(chdir(cwd), 0);
    remove_tree(here);

    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    assert_no_error(mvm_image_list(dir, f, NULL), NULL);
    assert_no_error(mvm_image_inspect(dir, "dev", f, NULL), NULL);
    fclose(f);
    assert_non_null(strstr(text, "dev   "));
    assert_non_null(strstr(text, "2026-12-03 16:20  debian:trixie\n"));
    assert_non_null(strstr(text, "{\"from\": \"debian:trixie\""));
    free(text);

    /* An interrupted build's directory goes; a running one's stays, and
     * so does one just made (not yet locked by its build). */
    cleanup_free char *stale = xasprintf("%s/.build-x-1", dir);
    cleanup_free char *live = xasprintf("%s/.build-y-2", dir);
    cleanup_free char *young = xasprintf("%s/.build-z-3", dir);
    assert_int_equal(mkdir(stale, 0700), 0);
    assert_int_equal(mkdir(live, 0700), 0);
    assert_int_equal(mkdir(young, 0700), 0);
    cleanup_free char *inside = xasprintf("%s/root.img", stale);
    write_text(inside, "x");
    struct timespec past[2] = {{time(NULL) - 120, 0}, {time(NULL) - 120, 0}};
    assert_int_equal(utimensat(AT_FDCWD, stale, past, 0), 0);
    assert_int_equal(utimensat(AT_FDCWD, live, past, 0), 0);
    int lfd = open(live, O_RDONLY | O_DIRECTORY);
    assert_int_equal(flock(lfd, LOCK_EX), 0);
    assert_int_equal(mvm_image_sweep(dir, NULL), 1);
    assert_int_equal(access(stale, F_OK), -1);
    assert_int_equal(access(live, F_OK), 0);
    assert_int_equal(access(young, F_OK), 0);
    close(lfd);

    assert_no_error(mvm_image_remove(dir, "dev", NULL), NULL);
    assert_int_equal(access(img, F_OK), -1);
    assert_int_equal(access(json, F_OK), -1);
    mvm_error_free(steal_pointer(&err));
    assert_int_equal(mvm_image_remove(dir, "dev", &err), -1);
    assert_error_contains(err, "no image dev");
    mvm_error_free(steal_pointer(&err));
    assert_int_equal(mvm_image_inspect(dir, "../x", NULL, &err), -1);
    assert_error_contains(err, "bad image name");
    remove_tree(dir);
}

/* ---- the tool runner: the cause in mmdebstrap's output, a signal ------- */

static void test_tool_tail(void **state)
{
    char *argv[] = {"/bin/sh", "-c",
                    "echo 'I: step one' >&2; echo 'E: the cause' >&2; echo 'I: cleaning up' >&2; "
                    "exit 1",
                    NULL};
    struct mvm_disk_tool t = {.sigfd = -1, .tail = true};
    cleanup_error struct mvm_error *err = NULL;
    assert_int_equal(mvm_disk_run_tool_with(argv, &t, "bootstrapping", &err), -1);
    assert_string_equal(err->msg, "bootstrapping with sh: E: the cause");
    /* Without an "E: " line: the last lines. */
    char *quiet[] = {"/bin/sh", "-c", "for i in 1 2 3 4 5; do echo line$i >&2; done; exit 2", NULL};
    mvm_error_free(steal_pointer(&err));
    assert_int_equal(mvm_disk_run_tool_with(quiet, &t, "x", &err), -1);
    assert_string_equal(err->msg, "x with sh: line3 line4 line5");
    /* TMPDIR is the one given, and nothing else of mvm's environment. */
    char *env[] = {"/bin/sh", "-c", "[ \"$TMPDIR\" = /b ] && [ -z \"${HOME:-}\" ]", NULL};
    t.tmpdir = "/b";
    assert_no_error(mvm_disk_run_tool_with(env, &t, "x", NULL), NULL);
}

static void test_tool_signal(void **state)
{
    sigset_t mask, old;
    sigemptyset(&mask);
    sigaddset(&mask, SIGUSR1);
    assert_int_equal(sigprocmask(SIG_BLOCK, &mask, &old), 0);
    int sigfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
    assert_true(sigfd >= 0);
    raise(SIGUSR1); /* pending: the tool is stopped as soon as it runs */
    char *argv[] = {"/bin/sleep", "30", NULL};
    struct mvm_disk_tool t = {.sigfd = sigfd, .tail = true};
    cleanup_error struct mvm_error *err = NULL;
    uint64_t start = now_ns();
    assert_int_equal(mvm_disk_run_tool_with(argv, &t, "bootstrapping", &err), -1);
    assert_true(now_ns() - start < 10ULL * 1000000000);
    assert_error_contains(err, "bootstrapping: interrupted");
    assert_int_equal(err->exit_code, 128 + SIGUSR1);

    /* A tool that ignores SIGTERM: a second signal kills it. */
    sigaddset(&mask, SIGUSR2);
    assert_int_equal(sigprocmask(SIG_BLOCK, &mask, NULL), 0);
    assert_true(signalfd(sigfd, &mask, SFD_CLOEXEC | SFD_NONBLOCK) == sigfd);
    /* Sent once the tool has had the time to ignore SIGTERM. */
    pid_t me = getpid(), sender = fork();
    if (sender == 0) {
        usleep(500 * 1000);
        kill(me, SIGUSR1);
        usleep(500 * 1000);
        kill(me, SIGUSR2);
        _exit(0);
    }
    char *stubborn[] = {"/bin/sh", "-c", "trap '' TERM; exec sleep 30", NULL};
    mvm_error_free(steal_pointer(&err));
    start = now_ns();
    assert_int_equal(mvm_disk_run_tool_with(stubborn, &t, "unpacking", &err), -1);
    assert_true(now_ns() - start < 10ULL * 1000000000);
    assert_error_contains(err, "unpacking: interrupted");
    assert_int_equal(err->exit_code, 128 + SIGUSR1);
    waitpid(sender, NULL, 0);
    close(sigfd);
    sigprocmask(SIG_SETMASK, &old, NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_names),     cmocka_unit_test(test_from_packages),
        cmocka_unit_test(test_mirror),    cmocka_unit_test(test_argv),
        cmocka_unit_test(test_size),      cmocka_unit_test(test_recipe_json),
        cmocka_unit_test(test_table),     cmocka_unit_test(test_store),
        cmocka_unit_test(test_tool_tail), cmocka_unit_test(test_tool_signal),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
