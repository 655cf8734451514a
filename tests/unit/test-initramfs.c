/* Unit tests for src/initramfs.c: the cached base part over a fixture
 * modules dir (checked by decompressing it and listing it with GNU cpio),
 * the way its lz4 stream ends (as the kernel's unlz4 needs it), the
 * session part's /etc allowlist, and the final concatenation. */
#include "boot-test-util.h"

#include "compress.h"
#include "initramfs.h"

static const char init_blob[] = "\x7f"
                                "ELF fake mvm-init";

struct fixture {
    char *dir, *mods, *cache, *etc;
    struct mvm_kernel kernel;
    char *virtio_ko, *ring_ko, *mmio_ko; /* decompressed contents */
    size_t virtio_len, ring_len, mmio_len;
};

static int progress_calls;
static char progress_text[256];

static void progress(const char *what)
{
    progress_calls++;
    snprintf(progress_text, sizeof progress_text, "%s", what);
}

static char *make_ko(const char *path, size_t len, uint32_t seed, size_t *out_len)
{
    char *data = xmalloc(len);
    fill_test_data(data, len, seed);
    memcpy(data,
           "\x7f"
           "ELF",
           4);
    write_fixture(path, data, len, 0644);
    *out_len = len;
    return data;
}

static int setup(void **state)
{
    struct fixture *fx = xcalloc(1, sizeof *fx);
    fx->dir = test_tmpdir();
    fx->mods = xasprintf("%s/lib/modules/6.1.0-test", fx->dir);
    fx->cache = xasprintf("%s/cache/mvm", fx->dir);
    fx->etc = xasprintf("%s/etc", fx->dir);
    cleanup_free char *vdir = xasprintf("%s/kernel/drivers/virtio", fx->mods);
    mkdir_fixture(vdir);
    cleanup_free char *dep = xasprintf("%s/modules.dep", fx->mods);
    write_text(dep, "kernel/drivers/virtio/virtio_ring.ko:\n"
                    "kernel/drivers/virtio/virtio.ko: kernel/drivers/virtio/virtio_ring.ko\n"
                    "kernel/drivers/virtio/virtio_mmio.ko.xz: kernel/drivers/virtio/virtio.ko "
                    "kernel/drivers/virtio/virtio_ring.ko\n"
                    "kernel/drivers/virtio/unused.ko:\n");
    cleanup_free char *builtin = xasprintf("%s/modules.builtin", fx->mods);
    write_text(builtin, "kernel/drivers/char/virtio_console.ko\n");
    cleanup_free char *ring = xasprintf("%s/virtio_ring.ko", vdir);
    cleanup_free char *virtio = xasprintf("%s/virtio.ko", vdir);
    cleanup_free char *mmio = xasprintf("%s/virtio_mmio.ko", vdir);
    fx->ring_ko = make_ko(ring, 30000, 1, &fx->ring_len);
    fx->virtio_ko = make_ko(virtio, 20001, 2, &fx->virtio_len);
    fx->mmio_ko = make_ko(mmio, 10003, 3, &fx->mmio_len);
    assert_int_equal(run_sh("xz --check=crc32 %s", mmio), 0); /* -> virtio_mmio.ko.xz */
    fx->kernel =
        (struct mvm_kernel){.image = "unused", .release = "6.1.0-test", .modules_dir = fx->mods};
    progress_calls = 0;
    progress_text[0] = '\0';
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *fx = *state;
    remove_tree(fx->dir);
    free(fx->dir);
    free(fx->mods);
    free(fx->cache);
    free(fx->etc);
    free(fx->virtio_ko);
    free(fx->ring_ko);
    free(fx->mmio_ko);
    free(fx);
    return 0;
}

static const char *const wanted[] = {"virtio_mmio", "virtio_console", "?virtiofs"};

static struct mvm_initramfs_base base_spec(struct fixture *fx)
{
    return (struct mvm_initramfs_base){
        .kernel = &fx->kernel,
        .modules = wanted,
        .nmodules = ARRAY_SIZE(wanted),
        .init = init_blob,
        .init_len = sizeof init_blob,
        .cache_dir = fx->cache,
        .progress = progress,
    };
}

/* Walks the lz4 legacy blocks the way the kernel's unlz4 does and checks
 * that the stream is followed only by zeros, at least one zero word. */
static void check_lz4_tail(const char *data, size_t len)
{
    const unsigned char *p = (const unsigned char *)data;
    size_t pos = 4;
    for (;;) {
        assert_true(pos + 4 <= len);
        uint32_t n = (uint32_t)p[pos] | (uint32_t)p[pos + 1] << 8 | (uint32_t)p[pos + 2] << 16 |
                     (uint32_t)p[pos + 3] << 24;
        if (n == 0)
            break;
        pos += 4 + n;
    }
    for (; pos < len; pos++)
        assert_int_equal(p[pos], 0);
}

/* Decompresses the base part into dir/base.cpio and returns its listing. */
static char *unpack_base(struct fixture *fx, const char *path)
{
    size_t len = 0;
    cleanup_free char *data = read_fixture(path, &len);
    assert_int_equal(len % 512, 0);
    assert_int_equal(mvm_compress_detect(data, len), MVM_FMT_LZ4_LEGACY);
    check_lz4_tail(data, len);
    struct buf raw = {0};
    cleanup_error struct mvm_error *err = NULL;
    assert_no_error(mvm_decompress(MVM_FMT_LZ4_LEGACY, data, len, 1u << 30, &raw, &err), err);
    assert_int_equal(raw.len % 512, 0);
    cleanup_free char *cpio = xasprintf("%s/base.cpio", fx->dir);
    write_fixture(cpio, raw.data, raw.len, 0644);
    buf_free(&raw);
    return run_capture("cpio -it --quiet < %s", cpio);
}

static void expect_file(const char *path, const void *want, size_t want_len, mode_t mode)
{
    size_t len = 0;
    cleanup_free char *got = read_fixture(path, &len);
    assert_int_equal(len, want_len);
    assert_memory_equal(got, want, want_len);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 07777, mode);
}

static void test_base_layout(void **state)
{
    struct fixture *fx = *state;
    struct mvm_initramfs_base spec = base_spec(fx);
    cleanup_free char *path = NULL;
    cleanup_error struct mvm_error *err = NULL;
    mode_t old_umask = umask(077); /* the file must still end up 0644 */
    int rc = mvm_initramfs_base_path(&spec, &path, &err);
    umask(old_umask);
    assert_no_error(rc, err);
    assert_int_equal(progress_calls, 1);
    assert_string_equal(progress_text,
                        "building the guest initramfs for 6.1.0-test (first run only)");
    cleanup_free char *prefix = xasprintf("%s/initramfs-", fx->cache);
    assert_true(str_has_prefix(path, prefix));
    assert_int_equal(strspn(path + strlen(prefix), "0123456789abcdef"), 32);
    assert_string_equal(path + strlen(prefix) + 32, ".img");
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0644);

    cleanup_free char *names = unpack_base(fx, path);
    assert_string_equal(names, "dev\ndev/console\ninit\nmvm\nmvm/modules\n"
                               "mvm/modules/virtio_ring.ko\nmvm/modules/virtio.ko\n"
                               "mvm/modules/virtio_mmio.ko\nmvm/modules/order\n");
    cleanup_free char *tv = run_capture("cpio -itv --quiet < %s/base.cpio", fx->dir);
    assert_true(strstr(tv, "crw-------") != NULL && strstr(tv, " 5,") != NULL);

    cleanup_free char *out = xasprintf("%s/x", fx->dir);
    mkdir_fixture(out);
    assert_int_equal(run_sh("cd %s && cpio -idm --quiet init 'mvm/*' < %s/base.cpio", out, fx->dir),
                     0);
    cleanup_free char *p = xasprintf("%s/init", out);
    expect_file(p, init_blob, sizeof init_blob, 0755);
    free(p);
    p = xasprintf("%s/mvm/modules/order", out);
    static const char order[] = "virtio_ring.ko\nvirtio.ko\nvirtio_mmio.ko\n";
    expect_file(p, order, strlen(order), 0644);
    free(p);
    p = xasprintf("%s/mvm/modules/virtio_mmio.ko", out); /* decompressed from .ko.xz */
    expect_file(p, fx->mmio_ko, fx->mmio_len, 0644);
    free(p);
    p = xasprintf("%s/mvm/modules/virtio_ring.ko", out);
    expect_file(p, fx->ring_ko, fx->ring_len, 0644);
}

static void test_base_cached(void **state)
{
    struct fixture *fx = *state;
    struct mvm_initramfs_base spec = base_spec(fx);
    cleanup_free char *first = NULL, *second = NULL, *third = NULL;
    cleanup_error struct mvm_error *err = NULL;
    assert_no_error(mvm_initramfs_base_path(&spec, &first, &err), err);
    struct stat st1, st2;
    assert_int_equal(stat(first, &st1), 0);

    /* Reused, not rewritten (a new entry is a new inode), marked used. */
    struct timespec past[2] = {{0, UTIME_OMIT}, {1000, 0}};
    assert_int_equal(utimensat(AT_FDCWD, first, past, 0), 0);
    assert_no_error(mvm_initramfs_base_path(&spec, &second, &err), err);
    assert_string_equal(first, second);
    assert_int_equal(stat(second, &st2), 0);
    assert_int_equal(st1.st_ino, st2.st_ino);
    assert_true(st2.st_mtim.tv_sec >= st1.st_mtim.tv_sec);
    assert_int_equal(progress_calls, 1);

    /* A new mvm-init means a new base. */
    static const char other_init[] = "\x7f"
                                     "ELF another mvm-init";
    spec.init = other_init;
    spec.init_len = sizeof other_init;
    assert_no_error(mvm_initramfs_base_path(&spec, &third, &err), err);
    assert_string_not_equal(first, third);
    assert_int_equal(progress_calls, 2);

    /* So does a module file that changed (here: its mtime). */
    cleanup_free char *ring = xasprintf("%s/kernel/drivers/virtio/virtio_ring.ko", fx->mods);
    struct timespec times[2] = {{0, UTIME_OMIT}, {1000, 0}};
    assert_int_equal(utimensat(AT_FDCWD, ring, times, 0), 0);
    cleanup_free char *fourth = NULL;
    assert_no_error(mvm_initramfs_base_path(&spec, &fourth, &err), err);
    assert_string_not_equal(third, fourth);
    assert_int_equal(progress_calls, 3);

    /* No progress callback is fine. */
    spec.progress = NULL;
    spec.init_len--;
    cleanup_free char *fifth = NULL;
    assert_no_error(mvm_initramfs_base_path(&spec, &fifth, &err), err);
}

static void test_base_without_modules(void **state)
{
    struct fixture *fx = *state;
    fx->kernel.modules_dir = NULL; /* everything built in */
    struct mvm_initramfs_base spec = base_spec(fx);
    cleanup_free char *path = NULL;
    cleanup_error struct mvm_error *err = NULL;
    assert_no_error(mvm_initramfs_base_path(&spec, &path, &err), err);
    cleanup_free char *names = unpack_base(fx, path);
    assert_string_equal(names, "dev\ndev/console\ninit\nmvm\nmvm/modules\n");
}

static void test_base_errors(void **state)
{
    struct fixture *fx = *state;
    static const char *const missing[] = {"virtio_mmio", "no_such_module"};
    struct mvm_initramfs_base spec = base_spec(fx);
    spec.modules = missing;
    spec.nmodules = 2;
    cleanup_free char *path = NULL;
    cleanup_error struct mvm_error *err = NULL;
    assert_int_equal(mvm_initramfs_base_path(&spec, &path, &err), -1);
    assert_error_contains(err, "no_such_module");
    assert_null(path);

    /* A module file that vanished. */
    mvm_error_free(err);
    err = NULL;
    cleanup_free char *ko = xasprintf("%s/kernel/drivers/virtio/virtio.ko", fx->mods);
    assert_int_equal(unlink(ko), 0);
    spec = base_spec(fx);
    assert_int_equal(mvm_initramfs_base_path(&spec, &path, &err), -1);
    assert_error_contains(err, "virtio.ko: No such file or directory");
    assert_int_equal(progress_calls, 0);
}

/* ---- session part ------------------------------------------------------- */

static void make_etc(struct fixture *fx)
{
    static const char *const dirs[] = {"ssl/certs", "ssl/private", "ssh", "profile.d",
                                       "ld.so.conf.d"};
    for (size_t i = 0; i < ARRAY_SIZE(dirs); i++) {
        cleanup_free char *d = xasprintf("%s/%s", fx->etc, dirs[i]);
        mkdir_fixture(d);
    }
    static const struct {
        const char *name, *text;
        mode_t mode;
    } files[] = {
        {"ssl/certs/ca.pem", "-----BEGIN CERTIFICATE-----\n", 0644},
        {"ssl/openssl.cnf", "[openssl]\n", 0644},
        {"ssl/private/key.pem", "SECRET KEY\n", 0600},
        {"ssh/ssh_host_rsa_key", "SECRET HOST KEY\n", 0600},
        {"shadow", "root:$6$secret:19000:0:99999:7:::\n", 0640},
        {"hosts", "127.0.0.1 localhost\n", 0644},
        {"os-release", "ID=debian\n", 0644},
        {"profile.d/a.sh", "export A=1\n", 0755},
        {"ld.so.conf.d/x.conf", "/opt/x/lib\n", 0644},
    };
    for (size_t i = 0; i < ARRAY_SIZE(files); i++) {
        cleanup_free char *p = xasprintf("%s/%s", fx->etc, files[i].name);
        write_fixture(p, files[i].text, strlen(files[i].text), files[i].mode);
    }
    cleanup_free char *link = xasprintf("%s/ssl/certs/1234abcd.0", fx->etc);
    assert_int_equal(symlink("ca.pem", link), 0);
    cleanup_free char *tz = xasprintf("%s/localtime", fx->etc);
    assert_int_equal(symlink("/usr/share/zoneinfo/Etc/UTC", tz), 0);
    cleanup_free char *fifo = xasprintf("%s/profile.d/fifo", fx->etc);
    assert_int_equal(mkfifo(fifo, 0644), 0);
    /* Too big to copy. */
    cleanup_free char *big = xasprintf("%s/services", fx->etc);
    write_text(big, "");
    assert_int_equal(truncate(big, 5 << 20), 0);
}

static void test_session_part(void **state)
{
    struct fixture *fx = *state;
    make_etc(fx);
    struct buf part = {0};
    buf_append(&part, "prefix", 6); /* appended to what is there */
    static const char json[] = "{\"argv\":[\"true\"]}";
    cleanup_error struct mvm_error *err = NULL;
    assert_no_error(mvm_initramfs_session_part(json, fx->etc, &part, &err), err);
    /* The archive starts on a 4-byte boundary, after zeros. */
    assert_memory_equal(part.data,
                        "prefix\0\0"
                        "070701",
                        14);
    assert_int_equal(part.len % 512, 0);

    cleanup_free char *path = xasprintf("%s/session.cpio", fx->dir);
    write_fixture(path, part.data + 8, part.len - 8, 0644);
    cleanup_free char *names = run_capture("cpio -it --quiet < %s", path);
    assert_string_equal(names, "mvm\nmvm/session.json\nmvm/etc\n"
                               "mvm/etc/ssl\nmvm/etc/ssl/certs\n"
                               "mvm/etc/ssl/certs/1234abcd.0\nmvm/etc/ssl/certs/ca.pem\n"
                               "mvm/etc/ssl/openssl.cnf\n"
                               "mvm/etc/ld.so.conf.d\nmvm/etc/ld.so.conf.d/x.conf\n"
                               "mvm/etc/localtime\n"
                               "mvm/etc/profile.d\nmvm/etc/profile.d/a.sh\n"
                               "mvm/etc/os-release\n");
    cleanup_free char *tv = run_capture("cpio -itv --quiet < %s", path);
    assert_non_null(strstr(tv, "mvm/etc/localtime -> /usr/share/zoneinfo/Etc/UTC"));
    assert_non_null(strstr(tv, "mvm/etc/ssl/certs/1234abcd.0 -> ca.pem"));

    cleanup_free char *out = xasprintf("%s/x", fx->dir);
    mkdir_fixture(out);
    assert_int_equal(run_sh("cd %s && cpio -idm --quiet < %s", out, path), 0);
    cleanup_free char *p = xasprintf("%s/mvm/session.json", out);
    expect_file(p, json, strlen(json), 0644);
    free(p);
    p = xasprintf("%s/mvm/etc/profile.d/a.sh", out);
    expect_file(p, "export A=1\n", 11, 0755);
    buf_free(&part);
}

static void test_session_part_unreadable(void **state)
{
    struct fixture *fx = *state;
    if (geteuid() == 0) {
        /* root reads everything; the DAC check cannot be exercised */
        printf("note: running as root; unreadable-file case not checked\n");
        return;
    }
    mkdir_fixture(fx->etc);
    cleanup_free char *issue = xasprintf("%s/issue", fx->etc);
    write_fixture(issue, "Debian\n", 7, 0000);
    cleanup_free char *prof = xasprintf("%s/profile.d", fx->etc);
    mkdir_fixture(prof);
    assert_int_equal(chmod(prof, 0), 0);
    struct buf part = {0};
    cleanup_error struct mvm_error *err = NULL;
    assert_no_error(mvm_initramfs_session_part("{}", fx->etc, &part, &err), err);
    assert_int_equal(chmod(prof, 0755), 0);
    cleanup_free char *path = xasprintf("%s/s.cpio", fx->dir);
    write_fixture(path, part.data, part.len, 0644);
    cleanup_free char *names = run_capture("cpio -it --quiet < %s", path);
    assert_string_equal(names, "mvm\nmvm/session.json\nmvm/etc\n");
    buf_free(&part);
}

static void test_allowlist_is_public(void **state)
{
    (void)state;
    static const char *const never[] = {
        "shadow",         "gshadow",         "ssh",          "sudoers",     "environment",
        "gitconfig",      "wireguard",       "passwd",       "ssl/private", "apt",
        "apt/apt.conf.d", "apt/auth.conf.d", "apt/auth.conf"};
    size_t n = 0;
    for (; mvm_etc_allowlist[n] != NULL; n++)
        for (size_t j = 0; j < ARRAY_SIZE(never); j++)
            if (strcmp(mvm_etc_allowlist[n], never[j]) == 0 ||
                str_has_prefix(mvm_etc_allowlist[n], "ssl/private"))
                fail_msg("%s must not be in the /etc allowlist", mvm_etc_allowlist[n]);
    assert_int_equal(n, 31);
}

/* ---- the file QEMU loads ------------------------------------------------ */

static void test_write(void **state)
{
    struct fixture *fx = *state;
    make_etc(fx);
    struct mvm_initramfs_base spec = base_spec(fx);
    cleanup_free char *base = NULL;
    cleanup_error struct mvm_error *err = NULL;
    assert_no_error(mvm_initramfs_base_path(&spec, &base, &err), err);
    struct buf part = {0};
    assert_no_error(mvm_initramfs_session_part("{}", fx->etc, &part, &err), err);

    cleanup_free char *out = xasprintf("%s/run-initrd.img", fx->dir);
    mode_t old_umask = umask(077);
    int rc = mvm_initramfs_write(base, &part, out, &err);
    umask(old_umask);
    assert_no_error(rc, err);
    size_t base_len = 0, out_len = 0;
    cleanup_free char *base_data = read_fixture(base, &base_len);
    cleanup_free char *out_data = read_fixture(out, &out_len);
    assert_int_equal(out_len, base_len + part.len);
    assert_memory_equal(out_data, base_data, base_len);
    assert_memory_equal(out_data + base_len, part.data, part.len);
    struct stat st;
    assert_int_equal(stat(out, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0644);

    /* Never overwrites, and never removes what it did not create. */
    assert_int_equal(mvm_initramfs_write(base, &part, out, &err), -1);
    assert_error_contains(err, "File exists");
    assert_int_equal(stat(out, &st), 0);
    assert_int_equal((size_t)st.st_size, out_len);

    /* Nor follows a symlink planted in its place. */
    cleanup_free char *victim = xasprintf("%s/victim", fx->dir);
    cleanup_free char *planted = xasprintf("%s/planted.img", fx->dir);
    write_text(victim, "keep me");
    assert_int_equal(symlink(victim, planted), 0);
    assert_int_equal(mvm_initramfs_write(base, &part, planted, &err), -1);
    size_t vlen = 0;
    cleanup_free char *v = read_fixture(victim, &vlen);
    assert_string_equal(v, "keep me");

    /* A failure half-way leaves no file behind. */
    cleanup_free char *gone = xasprintf("%s/gone.img", fx->dir);
    cleanup_free char *nobase = xasprintf("%s/no-such-base.img", fx->dir);
    assert_int_equal(mvm_initramfs_write(nobase, &part, gone, &err), -1);
    assert_error_contains(err, "no-such-base.img");
    assert_int_equal(access(gone, F_OK), -1);
    buf_free(&part);
}

int main(void)
{
    static const char *const tools[] = {"cpio", "xz", NULL};
    require_tools(tools);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_base_layout, setup, teardown),
        cmocka_unit_test_setup_teardown(test_base_cached, setup, teardown),
        cmocka_unit_test_setup_teardown(test_base_without_modules, setup, teardown),
        cmocka_unit_test_setup_teardown(test_base_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_session_part, setup, teardown),
        cmocka_unit_test_setup_teardown(test_session_part_unreadable, setup, teardown),
        cmocka_unit_test(test_allowlist_is_public),
        cmocka_unit_test_setup_teardown(test_write, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
