/* Unit tests for src/cpio.c: archives are checked with GNU cpio (listing,
 * types, link targets, extracted contents) and with a reader written
 * after the kernel's init/initramfs.c, which must also get through two
 * concatenated archives. */
#include "boot-test-util.h"

#include "cpio.h"

struct fixture {
    char *dir;
};

static int setup(void **state)
{
    struct fixture *fx = xcalloc(1, sizeof *fx);
    fx->dir = test_tmpdir();
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *fx = *state;
    remove_tree(fx->dir);
    free(fx->dir);
    free(fx);
    return 0;
}

/* Names of lengths 1..4 and data of lengths 0..5 cover every padding case. */
static void build_sample(struct buf *out, bool with_dev)
{
    struct mvm_cpio c;
    mvm_cpio_init(&c, out);
    mvm_cpio_dir(&c, "etc", 0755);
    mvm_cpio_file(&c, "etc/hello", 0644, "hello world\n", 12);
    mvm_cpio_symlink(&c, "etc/link", "hello");
    mvm_cpio_dir(&c, "/bin", 0700);
    mvm_cpio_file(&c, "/bin/tool", 0755, "#!/bin/sh\n", 10);
    mvm_cpio_file(&c, "a", 0600, "", 0);
    mvm_cpio_file(&c, "ab", 0644, "1", 1);
    mvm_cpio_file(&c, "abc", 0644, "12", 2);
    mvm_cpio_file(&c, "abcd", 0644, "12345", 5);
    if (with_dev) {
        mvm_cpio_dir(&c, "dev", 0755);
        mvm_cpio_chardev(&c, "dev/console", 0600, 5, 1);
    }
    mvm_cpio_finish(&c);
}

static const char *const sample_names[] = {"etc", "etc/hello", "etc/link", "bin", "bin/tool",
                                           "a",   "ab",        "abc",      "abcd"};

static char *write_archive(const char *dir, const char *name, const struct buf *b)
{
    char *path = xasprintf("%s/%s", dir, name);
    write_fixture(path, b->data, b->len, 0644);
    return path;
}

/* The line of `cpio -tv` output for name: "... name" or "... name -> target". */
static const char *tv_line(const char *listing, const char *name, char *line, size_t cap)
{
    cleanup_free char *tail = xasprintf(" %s", name);
    cleanup_free char *arrow = xasprintf(" %s -> ", name);
    const char *s = listing;
    while (*s) {
        const char *end = strchr(s, '\n');
        size_t n = end ? (size_t)(end - s) : strlen(s);
        snprintf(line, cap, "%.*s", (int)n, s);
        size_t ll = strlen(line), tl = strlen(tail);
        if ((ll >= tl && strcmp(line + ll - tl, tail) == 0) || strstr(line, arrow) != NULL)
            return line;
        if (end == NULL)
            break;
        s = end + 1;
    }
    fail_msg("no line for %s in:\n%s", name, listing);
    return NULL;
}

static void test_gnu_cpio_lists(void **state)
{
    struct fixture *fx = *state;
    struct buf b = {0};
    build_sample(&b, true);
    assert_int_equal(b.len % 512, 0);
    cleanup_free char *path = write_archive(fx->dir, "a.cpio", &b);

    cleanup_free char *names = run_capture("cpio -it --quiet < %s", path);
    struct buf want = {0};
    for (size_t i = 0; i < ARRAY_SIZE(sample_names); i++)
        buf_printf(&want, "%s\n", sample_names[i]);
    buf_printf(&want, "dev\ndev/console\n");
    buf_append(&want, "", 1);
    assert_string_equal(names, want.data);

    cleanup_free char *tv = run_capture("cpio -itv --quiet < %s", path);
    char line[512];
    assert_true(str_has_prefix(tv_line(tv, "etc", line, sizeof line), "drwxr-xr-x"));
    assert_true(str_has_prefix(tv_line(tv, "bin", line, sizeof line), "drwx------"));
    assert_true(str_has_prefix(tv_line(tv, "etc/hello", line, sizeof line), "-rw-r--r--"));
    assert_true(str_has_prefix(tv_line(tv, "bin/tool", line, sizeof line), "-rwxr-xr-x"));
    tv_line(tv, "etc/link", line, sizeof line);
    assert_true(str_has_prefix(line, "lrwxrwxrwx"));
    assert_non_null(strstr(line, "etc/link -> hello"));
    tv_line(tv, "dev/console", line, sizeof line);
    assert_true(str_has_prefix(line, "crw-------"));
    assert_non_null(strstr(line, " 5,"));
    assert_non_null(strstr(line, "root"));
    buf_free(&want);
    buf_free(&b);
}

static void test_gnu_cpio_extracts(void **state)
{
    struct fixture *fx = *state;
    struct buf b = {0};
    build_sample(&b, false); /* mknod needs privileges */
    cleanup_free char *path = write_archive(fx->dir, "b.cpio", &b);
    cleanup_free char *out = xasprintf("%s/out", fx->dir);
    mkdir_fixture(out);
    assert_int_equal(run_sh("cd %s && cpio -idm --quiet < %s", out, path), 0);

    static const struct {
        const char *name, *data;
        mode_t mode;
    } files[] = {{"etc/hello", "hello world\n", 0644},
                 {"bin/tool", "#!/bin/sh\n", 0755},
                 {"a", "", 0600},
                 {"ab", "1", 0644},
                 {"abc", "12", 0644},
                 {"abcd", "12345", 0644}};
    for (size_t i = 0; i < ARRAY_SIZE(files); i++) {
        cleanup_free char *p = xasprintf("%s/%s", out, files[i].name);
        size_t len = 0;
        cleanup_free char *data = read_fixture(p, &len);
        assert_int_equal(len, strlen(files[i].data));
        assert_memory_equal(data, files[i].data, len);
        struct stat st;
        assert_int_equal(stat(p, &st), 0);
        assert_int_equal(st.st_mode & 07777, files[i].mode);
        assert_int_equal(st.st_mtime, 0); /* reproducible archives */
    }
    cleanup_free char *link = xasprintf("%s/etc/link", out);
    char target[64] = {0};
    assert_int_equal(readlink(link, target, sizeof target - 1), 5);
    assert_string_equal(target, "hello");
    buf_free(&b);
}

/* ---- a reader in the manner of the kernel's unpacker ------------------ */

static uint32_t hex8(const char *p)
{
    char tmp[9];
    memcpy(tmp, p, 8);
    tmp[8] = '\0';
    char *end = NULL;
    unsigned long v = strtoul(tmp, &end, 16);
    assert_true(end == tmp + 8);
    return (uint32_t)v;
}

/* Walks every archive in data, skipping the zero padding between them as
 * the kernel does; appends "name\n" per entry (trailers as "--\n") and
 * checks fields the kernel relies on. */
static void kernel_style_list(const char *data, size_t len, struct buf *names)
{
    size_t pos = 0;
    uint32_t expect_ino = 1;
    while (pos < len) {
        if (data[pos] == '\0') {
            pos++;
            continue;
        }
        assert_true(pos % 4 == 0);
        assert_true(len - pos >= 110);
        assert_memory_equal(data + pos, "070701", 6);
        const char *h = data + pos + 6;
        uint32_t ino = hex8(h), mode = hex8(h + 8), nlink = hex8(h + 32);
        uint32_t size = hex8(h + 48), namesize = hex8(h + 88);
        assert_int_equal(hex8(h + 16), 0); /* uid */
        assert_int_equal(hex8(h + 24), 0); /* gid */
        assert_int_equal(hex8(h + 40), 0); /* mtime */
        const char *name = data + pos + 110;
        assert_int_equal(name[namesize - 1], '\0');
        pos = (pos + 110 + namesize + 3) & ~(size_t)3;
        pos = (pos + size + 3) & ~(size_t)3;
        assert_true(pos <= len);
        if (strcmp(name, "TRAILER!!!") == 0) {
            buf_printf(names, "--\n");
            expect_ino = 1;
            continue;
        }
        assert_int_equal(ino, expect_ino++);
        assert_int_equal(nlink, (mode & 0170000) == 0040000 ? 2 : 1);
        buf_printf(names, "%s\n", name);
    }
}

static void test_concatenated(void **state)
{
    struct fixture *fx = *state;
    struct buf b = {0};
    build_sample(&b, true);
    size_t first = b.len;
    struct mvm_cpio c;
    mvm_cpio_init(&c, &b);
    mvm_cpio_dir(&c, "mvm", 0755);
    mvm_cpio_file(&c, "mvm/session.json", 0644, "{}", 2);
    mvm_cpio_finish(&c);
    assert_int_equal(first % 512, 0);
    assert_int_equal(b.len % 512, 0);

    struct buf names = {0};
    kernel_style_list(b.data, b.len, &names);
    buf_append(&names, "", 1);
    assert_string_equal(names.data, "etc\netc/hello\netc/link\nbin\nbin/tool\na\nab\nabc\nabcd\n"
                                    "dev\ndev/console\n--\nmvm\nmvm/session.json\n--\n");

    /* GNU cpio stops at the first trailer, but must read that one whole. */
    cleanup_free char *path = write_archive(fx->dir, "cat.cpio", &b);
    cleanup_free char *listed = run_capture("cpio -it --quiet < %s", path);
    assert_true(has_line(listed, "dev/console"));
    assert_false(has_line(listed, "mvm"));
    /* And the second one on its own. */
    struct buf second = {.data = b.data + first, .len = b.len - first};
    cleanup_free char *path2 = write_archive(fx->dir, "second.cpio", &second);
    cleanup_free char *listed2 = run_capture("cpio -it --quiet < %s", path2);
    assert_string_equal(listed2, "mvm\nmvm/session.json\n");
    buf_free(&names);
    buf_free(&b);
}

static void test_empty_archive(void **state)
{
    (void)state;
    struct buf b = {0};
    struct mvm_cpio c;
    mvm_cpio_init(&c, &b);
    mvm_cpio_finish(&c);
    assert_int_equal(b.len, 512);
    assert_memory_equal(b.data, "070701", 6);
    assert_memory_equal(b.data + 110, "TRAILER!!!", 11);
    buf_free(&b);
}

static void test_unaligned_start(void **state)
{
    (void)state;
    struct buf b = {0};
    buf_append(&b, "\0\0\0", 3); /* e.g. what precedes, of an odd length */
    struct mvm_cpio c;
    mvm_cpio_init(&c, &b);
    mvm_cpio_file(&c, "f", 0644, "data", 4);
    mvm_cpio_finish(&c);
    assert_memory_equal(b.data,
                        "\0\0\0\0"
                        "070701",
                        10);
    struct buf names = {0};
    kernel_style_list(b.data, b.len, &names);
    buf_append(&names, "", 1);
    assert_string_equal(names.data, "f\n--\n");
    buf_free(&names);
    buf_free(&b);
}

int main(void)
{
    static const char *const tools[] = {"cpio", NULL};
    require_tools(tools);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_gnu_cpio_lists, setup, teardown),
        cmocka_unit_test_setup_teardown(test_gnu_cpio_extracts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_concatenated, setup, teardown),
        cmocka_unit_test(test_empty_archive),
        cmocka_unit_test(test_unaligned_start),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
