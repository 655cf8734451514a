/* Unit tests for src/modules.c: resolution against a modules.dep written
 * like the one of Debian's 6.1 kernel (each line lists the whole
 * dependency closure, the module to load first last), plus hand-written
 * lines in other orders, and reading plain and compressed modules made
 * with the reference tools. */
#include "boot-test-util.h"

#include "modules.h"

static const char dep_text[] =
    "kernel/fs/fuse/fuse.ko:\n"
    "kernel/fs/fuse/virtiofs.ko: kernel/drivers/virtio/virtio.ko "
    "kernel/drivers/virtio/virtio_ring.ko kernel/fs/fuse/fuse.ko\n"
    "kernel/drivers/virtio/virtio_mmio.ko.xz: kernel/drivers/virtio/virtio.ko "
    "kernel/drivers/virtio/virtio_ring.ko\n"
    "kernel/drivers/virtio/virtio.ko: kernel/drivers/virtio/virtio_ring.ko\n"
    "kernel/drivers/virtio/virtio_ring.ko:\n"
    "kernel/arch/x86/crypto/crc32-pclmul.ko:\n"
    "kernel/net/core/failover.ko:\n"
    "kernel/drivers/net/net_failover.ko: kernel/net/core/failover.ko\n"
    /* hand-written: deps in the "wrong" order, and a cycle */
    "kernel/x/top.ko: kernel/x/low.ko kernel/x/mid.ko\n"
    "kernel/x/mid.ko: kernel/x/low.ko\n"
    "kernel/x/low.ko:\n"
    "kernel/x/cyc_a.ko: kernel/x/cyc_b.ko\n"
    "kernel/x/cyc_b.ko: kernel/x/cyc_a.ko\n"
    /* a dependency without a line of its own */
    "kernel/x/orphan_user.ko: kernel/x/orphan.ko\n";

static const char builtin_text[] = "kernel/drivers/char/virtio_console.ko\n"
                                   "kernel/drivers/block/virtio_blk.ko\n"
                                   "kernel/arch/x86/events/amd/amd-uncore.ko\n";

static void expect_resolution(const char *const *wanted, size_t n, const char *want_joined)
{
    struct mvm_modlist l;
    cleanup_error struct mvm_error *err = NULL;
    assert_no_error(mvm_modules_resolve(dep_text, builtin_text, wanted, n, &l, &err), err);
    struct buf got = {0};
    for (size_t i = 0; i < l.n; i++)
        buf_printf(&got, "%s\n", l.paths[i]);
    buf_append(&got, "", 1);
    assert_string_equal(got.data, want_joined);
    buf_free(&got);
    mvm_modlist_clear(&l);
    assert_null(l.paths);
}

static void test_deps_first(void **state)
{
    (void)state;
    static const char *const wanted[] = {"virtiofs", "virtio-mmio"};
    expect_resolution(wanted, ARRAY_SIZE(wanted),
                      "kernel/fs/fuse/fuse.ko\n"
                      "kernel/drivers/virtio/virtio_ring.ko\n"
                      "kernel/drivers/virtio/virtio.ko\n"
                      "kernel/fs/fuse/virtiofs.ko\n"
                      "kernel/drivers/virtio/virtio_mmio.ko.xz\n");
}

static void test_recursion_fixes_order(void **state)
{
    (void)state;
    static const char *const wanted[] = {"top"};
    expect_resolution(wanted, 1, "kernel/x/low.ko\nkernel/x/mid.ko\nkernel/x/top.ko\n");
}

static void test_dedup_and_names(void **state)
{
    (void)state;
    /* '-' and '_' match both ways; each module appears once. */
    static const char *const wanted[] = {"virtio",       "virtio_ring",  "virtio",
                                         "crc32_pclmul", "net-failover", "crc32-pclmul"};
    expect_resolution(wanted, ARRAY_SIZE(wanted),
                      "kernel/drivers/virtio/virtio_ring.ko\n"
                      "kernel/drivers/virtio/virtio.ko\n"
                      "kernel/arch/x86/crypto/crc32-pclmul.ko\n"
                      "kernel/net/core/failover.ko\n"
                      "kernel/drivers/net/net_failover.ko\n");
}

static void test_builtin_and_optional(void **state)
{
    (void)state;
    static const char *const wanted[] = {"virtio_console", "?9pnet_virtio", "amd_uncore",
                                         "?virtio-blk", "failover"};
    expect_resolution(wanted, ARRAY_SIZE(wanted), "kernel/net/core/failover.ko\n");
    /* Optional and present: included. */
    static const char *const opt[] = {"?fuse"};
    expect_resolution(opt, 1, "kernel/fs/fuse/fuse.ko\n");
}

static void test_cycle_and_orphan(void **state)
{
    (void)state;
    static const char *const wanted[] = {"cyc_a", "cyc_b", "orphan_user"};
    expect_resolution(wanted, ARRAY_SIZE(wanted),
                      "kernel/x/cyc_b.ko\nkernel/x/cyc_a.ko\n"
                      "kernel/x/orphan.ko\nkernel/x/orphan_user.ko\n");
}

static void test_missing_required(void **state)
{
    (void)state;
    static const char *const wanted[] = {"virtio", "vsock-loopback", "?nope"};
    struct mvm_modlist l = {0};
    cleanup_error struct mvm_error *err = NULL;
    assert_int_equal(mvm_modules_resolve(dep_text, builtin_text, wanted, 3, &l, &err), -1);
    assert_error_contains(err, "vsock-loopback");
    assert_int_equal(l.n, 0);
    assert_null(l.paths);

    /* Without modules.builtin a built-in module cannot be told apart. */
    mvm_error_free(err);
    err = NULL;
    static const char *const console[] = {"virtio_console"};
    assert_int_equal(mvm_modules_resolve(dep_text, NULL, console, 1, &l, &err), -1);
    assert_error_contains(err, "virtio_console");
}

static void test_module_name(void **state)
{
    (void)state;
    static const struct {
        const char *path, *name;
    } cases[] = {
        {"kernel/drivers/virtio/virtio_mmio.ko", "virtio_mmio"},
        {"kernel/arch/x86/events/amd/amd-uncore.ko.xz", "amd-uncore"},
        {"a.ko.zst", "a"},
        {"/abs/b.ko.gz", "b"},
        {"weird.ko.bz2", "weird.ko.bz2"},
    };
    for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
        cleanup_free char *name = mvm_module_name(cases[i].path);
        assert_string_equal(name, cases[i].name);
    }
}

/* ---- reading ---------------------------------------------------------- */

static void check_read(const char *path, const char *want, size_t want_len)
{
    struct buf out = {0};
    cleanup_error struct mvm_error *err = NULL;
    assert_no_error(mvm_module_read(path, &out, &err), err);
    assert_int_equal(out.len, want_len);
    assert_memory_equal(out.data, want, want_len);
    buf_free(&out);
}

static int make_dir(void **state)
{
    *state = test_tmpdir();
    return 0;
}

static int remove_dir(void **state)
{
    remove_tree(*state);
    free(*state);
    return 0;
}

static void test_module_read(void **state)
{
    const char *dir = *state;
    size_t len = 200000;
    cleanup_free char *ko = xmalloc(len);
    fill_test_data(ko, len, 99);
    memcpy(ko,
           "\x7f"
           "ELF",
           4);

    cleanup_free char *plain = xasprintf("%s/virtio.ko", dir);
    write_fixture(plain, ko, len, 0644);
    check_read(plain, ko, len);

    static const struct {
        const char *tool, *suffix;
    } kinds[] = {{"xz -c --check=crc32", "xz"}, {"zstd -q -c", "zst"}, {"gzip -c", "gz"}};
    for (size_t i = 0; i < ARRAY_SIZE(kinds); i++) {
        cleanup_free char *p = xasprintf("%s/virtio.ko.%s", dir, kinds[i].suffix);
        assert_int_equal(run_sh("%s < %s > %s", kinds[i].tool, plain, p), 0);
        check_read(p, ko, len);
    }

    struct buf out = {0};
    cleanup_error struct mvm_error *err = NULL;
    cleanup_free char *missing = xasprintf("%s/absent.ko.xz", dir);
    assert_int_equal(mvm_module_read(missing, &out, &err), -1);
    assert_error_contains(err, "absent.ko.xz: No such file or directory");

    /* A suffix that lies about the contents. */
    mvm_error_free(err);
    err = NULL;
    cleanup_free char *liar = xasprintf("%s/liar.ko.xz", dir);
    write_fixture(liar, ko, 1000, 0644);
    assert_int_equal(mvm_module_read(liar, &out, &err), -1);
    assert_error_contains(err, "liar.ko.xz");

    mvm_error_free(err);
    err = NULL;
    cleanup_free char *odd = xasprintf("%s/odd.ko.bz2", dir);
    write_fixture(odd, ko, 10, 0644);
    assert_int_equal(mvm_module_read(odd, &out, &err), -1);
    assert_error_contains(err, "odd.ko.bz2");
    assert_int_equal(out.len, 0);
    buf_free(&out);
}

/* An object made by the reference tool with .BTF and .BTF.ext sections:
 * only .BTF loses its name, every byte else stays. */
static void test_hide_btf(void **state)
{
    const char *dir = *state;
    cleanup_free char *blob = xasprintf("%s/blob", dir);
    cleanup_free char *obj = xasprintf("%s/m.ko", dir);
    write_text(blob, "type information");
    assert_int_equal(run_sh("cd %s && objcopy -I binary -O elf64-x86-64 --rename-section "
                            ".data=.BTF --add-section .BTF.ext=blob blob m.ko",
                            dir),
                     0);
    size_t len = 0;
    cleanup_free char *ko = read_fixture(obj, &len);
    cleanup_free char *orig = xmalloc(len);
    memcpy(orig, ko, len);
    assert_true(mvm_module_hide_btf(ko, len));
    size_t changed = 0;
    for (size_t i = 0; i < len; i++)
        changed += ko[i] != orig[i];
    assert_int_equal(changed, 1);
    write_fixture(obj, ko, len, 0644);
    cleanup_free char *sections = run_capture("readelf -W -S %s", obj);
    assert_non_null(strstr(sections, " _BTF "));
    assert_non_null(strstr(sections, " .BTF.ext "));
    assert_null(strstr(sections, " .BTF "));
    assert_false(mvm_module_hide_btf(ko, len)); /* nothing left to rename */

    /* Not an object, or one whose tables lie outside the file: untouched. */
    assert_false(mvm_module_hide_btf(orig, 16));
    assert_false(mvm_module_hide_btf(orig, len / 2 < 64 ? 64 : len / 2));
    memcpy(ko, orig, len);
    ko[0x3e] = (char)0xff; /* e_shstrndx past the section table */
    assert_false(mvm_module_hide_btf(ko, len));
    assert_int_equal(memcmp(ko + 0x40, orig + 0x40, len - 0x40), 0);
}

int main(void)
{
    static const char *const tools[] = {"xz", "zstd", "gzip", "objcopy", "readelf", NULL};
    require_tools(tools);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_deps_first),
        cmocka_unit_test(test_recursion_fixes_order),
        cmocka_unit_test(test_dedup_and_names),
        cmocka_unit_test(test_builtin_and_optional),
        cmocka_unit_test(test_cycle_and_orphan),
        cmocka_unit_test(test_missing_required),
        cmocka_unit_test(test_module_name),
        cmocka_unit_test_setup_teardown(test_module_read, make_dir, remove_dir),
        cmocka_unit_test_setup_teardown(test_hide_btf, make_dir, remove_dir),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
