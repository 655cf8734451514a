/* Unit tests for src/kernel.c: kernel/modules discovery over fixture
 * /boot and /lib/modules trees, vmlinux extraction from synthetic
 * bzImages whose payloads the reference tools compressed, the on-disk
 * cache, and, where this machine has one, the real /boot/vmlinuz. */
#include "boot-test-util.h"

#include <glob.h>
#include <sys/utsname.h>

#include "compress.h"
#include "kernel.h"

struct fixture {
    char *dir, *boot, *mods;
};

static int setup(void **state)
{
    struct fixture *fx = xcalloc(1, sizeof *fx);
    fx->dir = test_tmpdir();
    fx->boot = xasprintf("%s/boot", fx->dir);
    fx->mods = xasprintf("%s/lib/modules", fx->dir);
    mkdir_fixture(fx->boot);
    mkdir_fixture(fx->mods);
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *fx = *state;
    remove_tree(fx->dir);
    free(fx->dir);
    free(fx->boot);
    free(fx->mods);
    free(fx);
    return 0;
}

/* ---- synthetic bzImages ----------------------------------------------- */

static void put16(char *p, uint16_t v)
{
    p[0] = (char)(v & 0xff);
    p[1] = (char)(v >> 8);
}

static void put32(char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (char)(v >> (8 * i));
}

struct bz {
    unsigned setup_sects; /* the header field: 0 means 4 */
    uint32_t payload_offset;
    const char *release; /* NULL: no kernel_version string */
    uint16_t version;
};

static void make_bzimage(const struct bz *spec, const void *payload, size_t plen, struct buf *out)
{
    unsigned sects = spec->setup_sects ? spec->setup_sects : 4;
    size_t start = (sects + 1) * 512 + spec->payload_offset;
    char *img = xcalloc(1, start + plen);
    img[0x1f1] = (char)spec->setup_sects;
    memcpy(img + 0x202, "HdrS", 4);
    put16(img + 0x206, spec->version ? spec->version : 0x020f);
    if (spec->release != NULL) {
        snprintf(img + 0x300, 200, "%s (debian-kernel@lists.debian.org) #1 SMP", spec->release);
        put16(img + 0x20e, 0x300 - 0x200);
    }
    put32(img + 0x248, spec->payload_offset);
    put32(img + 0x24c, (uint32_t)plen);
    memcpy(img + start, payload, plen);
    buf_append(out, img, start + plen);
    free(img);
}

/* A fake vmlinux, compressed by a CLI tool, with the kernel build's
 * trailing 4-byte size. */
static char *compressed_payload(const char *dir, const char *tool, const char *elf, size_t elf_len,
                                size_t *len)
{
    cleanup_free char *raw = xasprintf("%s/vmlinux.raw", dir);
    cleanup_free char *comp = xasprintf("%s/vmlinux.comp", dir);
    write_fixture(raw, elf, elf_len, 0644);
    assert_int_equal(run_sh("%s < %s > %s", tool, raw, comp), 0);
    size_t n = 0;
    char *data = read_fixture(comp, &n);
    data = xrealloc(data, n + 4);
    put32(data + n, (uint32_t)elf_len);
    *len = n + 4;
    return data;
}

static char *fake_elf(size_t len)
{
    char *elf = xmalloc(len);
    fill_test_data(elf, len, 5);
    memcpy(elf,
           "\x7f"
           "ELF\x02\x01\x01",
           7);
    return elf;
}

static void test_extract_formats(void **state)
{
    struct fixture *fx = *state;
    size_t elf_len = 300000;
    cleanup_free char *elf = fake_elf(elf_len);
    static const struct {
        const char *tool;
        struct bz bz;
    } cases[] = {
        {"xz -c --check=crc32 --x86 --lzma2", {27, 0x3b4, "6.1.0-1-amd64", 0}},
        {"zstd -q -c -19", {0, 0x100, "6.10.0-1-amd64", 0}},
        {"gzip -c -9", {1, 0, NULL, 0x020c}},
        {"lz4 -q -l -c -9", {4, 0x40, "6.12.0-1-amd64", 0}},
    };
    for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
        size_t plen = 0;
        cleanup_free char *payload =
            compressed_payload(fx->dir, cases[i].tool, elf, elf_len, &plen);
        struct buf img = {0}, vmlinux = {0};
        make_bzimage(&cases[i].bz, payload, plen, &img);
        cleanup_error struct mvm_error *err = NULL;
        assert_no_error(mvm_kernel_extract(img.data, img.len, &vmlinux, &err), err);
        assert_int_equal(vmlinux.len, elf_len);
        assert_memory_equal(vmlinux.data, elf, elf_len);

        cleanup_free char *rel = mvm_kernel_image_release(img.data, img.len);
        if (cases[i].bz.release)
            assert_string_equal(rel, cases[i].bz.release);
        else
            assert_null(rel);
        buf_free(&img);
        buf_free(&vmlinux);
    }
}

static void expect_extract_error(const struct buf *img, const char *needle)
{
    struct buf vmlinux = {0};
    cleanup_error struct mvm_error *err = NULL;
    assert_int_equal(mvm_kernel_extract(img->data, img->len, &vmlinux, &err), -1);
    assert_error_contains(err, needle);
    assert_int_equal(vmlinux.len, 0);
    buf_free(&vmlinux);
}

static void test_extract_errors(void **state)
{
    struct fixture *fx = *state;
    size_t plen = 0;
    static const char text[] = "this is not an ELF file, just text to compress";
    cleanup_free char *payload = compressed_payload(fx->dir, "xz -c", text, sizeof text, &plen);
    struct bz bz = {2, 0x80, "6.1.0-1-amd64", 0};

    struct buf img = {0};
    make_bzimage(&bz, payload, plen, &img);
    expect_extract_error(&img, "not an ELF image");

    /* payload_length reaching past the end of the file */
    buf_free(&img);
    make_bzimage(&bz, payload, plen, &img);
    put32(img.data + 0x24c, (uint32_t)plen + 1);
    expect_extract_error(&img, "outside");

    /* a format the kernel can use but mvm does not read */
    buf_free(&img);
    make_bzimage(&bz, "BZh91AY&SY", 10, &img);
    expect_extract_error(&img, "unsupported format (magic 42 5a 68 39)");
    buf_free(&img);
    make_bzimage(&bz, "\x04\x22\x4d\x18....", 8, &img);
    expect_extract_error(&img, "unsupported");

    /* an old boot protocol, without payload fields */
    buf_free(&img);
    bz.version = 0x0206;
    make_bzimage(&bz, payload, plen, &img);
    expect_extract_error(&img, "2.08");

    /* no boot header at all */
    buf_free(&img);
    buf_append(&img, "MZ not a kernel", 15);
    char zeros[1024] = {0};
    buf_append(&img, zeros, sizeof zeros);
    expect_extract_error(&img, "HdrS");
    buf_free(&img);
}

static void test_extract_elf_passthrough(void **state)
{
    (void)state;
    cleanup_free char *elf = fake_elf(4096);
    struct buf out = {0};
    cleanup_error struct mvm_error *err = NULL;
    assert_no_error(mvm_kernel_extract(elf, 4096, &out, &err), err);
    assert_int_equal(out.len, 4096);
    assert_memory_equal(out.data, elf, 4096);
    buf_free(&out);
    assert_null(mvm_kernel_image_release(elf, 4096));
}

static void test_image_release_bounds(void **state)
{
    (void)state;
    struct bz bz = {1, 0, "6.1.0-56-amd64", 0};
    struct buf img = {0};
    make_bzimage(&bz, "x", 1, &img);
    /* The string is cut by the end of the buffer: no terminator, no release. */
    assert_null(mvm_kernel_image_release(img.data, 0x300 + 5));
    put16(img.data + 0x20e, 0xfff0); /* points far past the end */
    assert_null(mvm_kernel_image_release(img.data, img.len));
    put16(img.data + 0x20e, 0);
    assert_null(mvm_kernel_image_release(img.data, img.len));
    assert_null(mvm_kernel_image_release("HdrS", 4));
    buf_free(&img);
}

/* ---- resolution --------------------------------------------------------- */

static void add_kernel(struct fixture *fx, const char *release, bool with_modules)
{
    cleanup_free char *img = xasprintf("%s/vmlinuz-%s", fx->boot, release);
    struct bz bz = {1, 0, release, 0};
    struct buf b = {0};
    make_bzimage(&bz, "payload", 7, &b);
    write_fixture(img, b.data, b.len, 0644);
    buf_free(&b);
    if (with_modules) {
        cleanup_free char *m = xasprintf("%s/%s", fx->mods, release);
        mkdir_fixture(m);
    }
}

static void expect_kernel(struct fixture *fx, const char *kernel_opt, const char *modules_opt,
                          const char *running, const char *release, bool modules)
{
    struct mvm_kernel_search where = {fx->boot, fx->mods, running, 0, 0};
    struct mvm_kernel k;
    cleanup_error struct mvm_error *err = NULL;
    assert_no_error(mvm_kernel_resolve(kernel_opt, modules_opt, &where, &k, &err), err);
    assert_string_equal(k.release, release);
    cleanup_free char *image = xasprintf("%s/vmlinuz-%s", fx->boot, release);
    assert_string_equal(k.image, kernel_opt ? kernel_opt : image);
    if (modules_opt != NULL) {
        assert_string_equal(k.modules_dir, modules_opt);
    } else if (modules) {
        cleanup_free char *m = xasprintf("%s/%s", fx->mods, release);
        assert_string_equal(k.modules_dir, m);
    } else {
        assert_null(k.modules_dir);
    }
    mvm_kernel_clear(&k);
    assert_null(k.image);
}

static void test_resolve_auto(void **state)
{
    struct fixture *fx = *state;
    add_kernel(fx, "6.1.0-1-amd64", true);
    add_kernel(fx, "6.9.0-1-amd64", true);
    add_kernel(fx, "6.10.0-1-amd64", true);
    add_kernel(fx, "7.0.0-1-amd64", false); /* newest, but no modules: unusable */
    cleanup_free char *stray = xasprintf("%s/config-6.1.0-1-amd64", fx->boot);
    write_text(stray, "CONFIG_X=y\n");

    /* The running kernel wins when usable... */
    expect_kernel(fx, NULL, NULL, "6.1.0-1-amd64", "6.1.0-1-amd64", true);
    /* ...else the newest in version order (6.10 > 6.9, unlike strcmp). */
    expect_kernel(fx, NULL, NULL, "5.10.0-9-amd64", "6.10.0-1-amd64", true);
    expect_kernel(fx, NULL, NULL, "7.0.0-1-amd64", "6.10.0-1-amd64", true);
    expect_kernel(fx, NULL, NULL, NULL, "6.10.0-1-amd64", true);

    /* --modules alone keeps the automatic kernel. */
    cleanup_free char *own = xasprintf("%s/own-modules", fx->dir);
    mkdir_fixture(own);
    expect_kernel(fx, NULL, own, NULL, "6.10.0-1-amd64", true);
}

static void test_resolve_explicit(void **state)
{
    struct fixture *fx = *state;
    add_kernel(fx, "6.1.0-1-amd64", true);
    add_kernel(fx, "6.5.0-1-amd64", false);
    cleanup_free char *k1 = xasprintf("%s/vmlinuz-6.1.0-1-amd64", fx->boot);
    cleanup_free char *k5 = xasprintf("%s/vmlinuz-6.5.0-1-amd64", fx->boot);

    expect_kernel(fx, k1, NULL, NULL, "6.1.0-1-amd64", true);
    /* Its release has no modules dir: the kernel must make do without. */
    expect_kernel(fx, k5, NULL, "6.1.0-1-amd64", "6.5.0-1-amd64", false);
    cleanup_free char *own = xasprintf("%s/mods-for-6.5", fx->dir);
    mkdir_fixture(own);
    expect_kernel(fx, k5, own, NULL, "6.5.0-1-amd64", true);

    /* The release comes from the header, not the file name. */
    cleanup_free char *renamed = xasprintf("%s/my-kernel", fx->dir);
    assert_int_equal(rename(k1, renamed), 0);
    struct mvm_kernel_search where = {fx->boot, fx->mods, NULL, 0, 0};
    struct mvm_kernel k;
    cleanup_error struct mvm_error *err = NULL;
    assert_no_error(mvm_kernel_resolve(renamed, NULL, &where, &k, &err), err);
    assert_string_equal(k.release, "6.1.0-1-amd64");
    assert_non_null(k.modules_dir);
    mvm_kernel_clear(&k);
}

/* ---- the kernel's config --------------------------------------------- */

static void test_config_parse(void **state)
{
    (void)state;
    /* CONFIG_HZ on the first line, in the middle, absent, implausible;
     * CONFIG_HZ_250=y is another option. */
    assert_int_equal(mvm_kernel_config_hz("CONFIG_HZ=100\n"), 100);
    assert_int_equal(mvm_kernel_config_hz("# x\nCONFIG_HZ_250=y\nCONFIG_HZ=250\nCONFIG_Y=y\n"),
                     250);
    assert_int_equal(mvm_kernel_config_hz("CONFIG_HZ=1000"), 1000);
    assert_int_equal(mvm_kernel_config_hz("CONFIG_HZ_250=y\n# CONFIG_HZ is not set\n"), 0);
    assert_int_equal(mvm_kernel_config_hz("CONFIG_HZ=1\n"), 0);
    assert_int_equal(mvm_kernel_config_hz("CONFIG_HZ=junk\n"), 0);
    assert_int_equal(mvm_kernel_config_hz(""), 0);

    const char *cfg = "CONFIG_VIRTIO=y\nCONFIG_VIRTIO_NET=m\nCONFIG_VIRTIO_MMIO=y\n"
                      "# CONFIG_VIRTIO_BLK is not set\nCONFIG_EXT4_FS=yes\nCONFIG_VIRTIO_FS=y";
    assert_true(mvm_kernel_config_builtin(cfg, "CONFIG_VIRTIO"));
    assert_true(mvm_kernel_config_builtin(cfg, "CONFIG_VIRTIO_MMIO"));
    assert_true(mvm_kernel_config_builtin(cfg, "CONFIG_VIRTIO_FS"));   /* no final newline */
    assert_false(mvm_kernel_config_builtin(cfg, "CONFIG_VIRTIO_NET")); /* a module */
    assert_false(mvm_kernel_config_builtin(cfg, "CONFIG_VIRTIO_BLK"));
    assert_false(mvm_kernel_config_builtin(cfg, "CONFIG_EXT4_FS"));
    assert_false(mvm_kernel_config_builtin(cfg, "CONFIG_VIRTIO_M")); /* a prefix only */

    /* virtiofs needs FUSE as well; an unknown name is never built in. */
    const char *mods[] = {"virtio_mmio", "virtiofs", "virtio_net", "virtio_blk", "mystery"};
    struct buf out = {0};
    assert_int_equal(mvm_kernel_config_missing(cfg, mods, 5, &out), 4);
    buf_append(&out, "", 1);
    assert_string_equal(out.data, "virtiofs,virtio_net,virtio_blk,mystery");
    buf_free(&out);
    const char *full = "CONFIG_VIRTIO_MMIO=y\nCONFIG_VIRTIO_FS=y\nCONFIG_FUSE_FS=y\n";
    struct buf none = {0};
    assert_int_equal(mvm_kernel_config_missing(full, mods, 2, &none), 0);
    assert_int_equal(none.len, 0);
    buf_free(&none);
}

/* The config beside the image wins over boot_dir's; boot_dir's is the
 * fallback; none, or no release, is NULL. */
static void test_config_find(void **state)
{
    struct fixture *fx = *state;
    cleanup_free char *own = xasprintf("%s/mine", fx->dir);
    mkdir_fixture(own);
    cleanup_free char *image = xasprintf("%s/vmlinux-6.1.192-mvm", own);
    write_text(image, "ELF");
    struct mvm_kernel k = {.image = image, .release = "6.1.192-mvm"};
    assert_null(mvm_kernel_config(&k, fx->boot));

    cleanup_free char *boot_cfg = xasprintf("%s/config-6.1.192-mvm", fx->boot);
    write_text(boot_cfg, "CONFIG_HZ=250\n");
    cleanup_free char *got = mvm_kernel_config(&k, fx->boot);
    assert_non_null(got);
    assert_int_equal(mvm_kernel_config_hz(got), 250);

    cleanup_free char *own_cfg = xasprintf("%s/config-6.1.192-mvm", own);
    write_text(own_cfg, "CONFIG_HZ=100\n");
    cleanup_free char *beside = mvm_kernel_config(&k, fx->boot);
    assert_non_null(beside);
    assert_int_equal(mvm_kernel_config_hz(beside), 100);

    k.release = NULL;
    assert_null(mvm_kernel_config(&k, fx->boot));
}

static void expect_resolve_error(struct fixture *fx, const char *kernel_opt,
                                 const char *modules_opt, const char *running, const char *needle)
{
    struct mvm_kernel_search where = {fx->boot, fx->mods, running, 0, 0};
    struct mvm_kernel k;
    cleanup_error struct mvm_error *err = NULL;
    assert_int_equal(mvm_kernel_resolve(kernel_opt, modules_opt, &where, &k, &err), -1);
    assert_error_contains(err, needle);
    assert_null(k.image);
    assert_null(k.release);
}

static void test_resolve_errors(void **state)
{
    struct fixture *fx = *state;
    cleanup_free char *missing = xasprintf("%s/no-such-vmlinuz", fx->dir);
    cleanup_free char *want = xasprintf("kernel %s: No such file or directory", missing);
    expect_resolve_error(fx, missing, NULL, NULL, want);

    /* Nothing at all, and then a kernel without modules: the user is told
     * what to install. */
    expect_resolve_error(fx, NULL, NULL, "6.1.0-1-amd64", "no guest kernel found");
    add_kernel(fx, "6.1.0-1-amd64", false);
    expect_resolve_error(fx, NULL, NULL, "6.1.0-1-amd64", "apt-get install linux-image-");
    expect_resolve_error(fx, NULL, NULL, NULL, "or pass --kernel PATH");

    cleanup_free char *nomods = xasprintf("%s/no-such-modules", fx->dir);
    cleanup_free char *k1 = xasprintf("%s/vmlinuz-6.1.0-1-amd64", fx->boot);
    expect_resolve_error(fx, k1, nomods, NULL, "No such file or directory");

    /* A boot dir that does not exist is the same as an empty one. */
    struct mvm_kernel_search where = {"/nonexistent/boot", fx->mods, NULL, 0, 0};
    struct mvm_kernel k;
    cleanup_error struct mvm_error *err = NULL;
    assert_int_equal(mvm_kernel_resolve(NULL, NULL, &where, &k, &err), -1);
    assert_error_contains(err, "no /nonexistent/boot/vmlinuz-* with modules in");
}

/* ---- the cache ---------------------------------------------------------- */

static void test_vmlinux_cache(void **state)
{
    struct fixture *fx = *state;
    size_t elf_len = 100000, plen = 0;
    cleanup_free char *elf = fake_elf(elf_len);
    cleanup_free char *payload = compressed_payload(fx->dir, "zstd -q -c", elf, elf_len, &plen);
    struct bz bz = {3, 0, "6.1.0-1-amd64", 0};
    struct buf img = {0};
    make_bzimage(&bz, payload, plen, &img);
    cleanup_free char *image = xasprintf("%s/vmlinuz-6.1.0-1-amd64", fx->boot);
    write_fixture(image, img.data, img.len, 0644);
    buf_free(&img);

    struct mvm_kernel k = {.image = image, .release = "6.1.0-1-amd64"};
    cleanup_free char *cache = xasprintf("%s/cache/deeper", fx->dir);
    cleanup_free char *path = NULL;
    cleanup_error struct mvm_error *err = NULL;
    mode_t old_umask = umask(077); /* the file must still end up 0644 */
    int rc = mvm_kernel_vmlinux(&k, cache, NULL, &path, &err);
    umask(old_umask);
    assert_no_error(rc, err);

    cleanup_free char *prefix = xasprintf("%s/vmlinux-", cache);
    assert_true(str_has_prefix(path, prefix));
    const char *hex = path + strlen(prefix);
    assert_int_equal(strlen(hex), 32); /* 128 bits of SHA-256 */
    assert_int_equal(strspn(hex, "0123456789abcdef"), 32);
    struct stat st, st2;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0644);
    assert_int_equal(stat(cache, &st2), 0);
    assert_int_equal(st2.st_mode & 0777, 0700);
    size_t len = 0;
    cleanup_free char *got = read_fixture(path, &len);
    assert_int_equal(len, elf_len);
    assert_memory_equal(got, elf, elf_len);

    /* Reused: same path, same file (entries are written by rename, so
     * the same inode is not rewritten), marked as used (its mtime). */
    struct timespec past[2] = {{0, UTIME_OMIT}, {1000, 0}};
    assert_int_equal(utimensat(AT_FDCWD, path, past, 0), 0);
    cleanup_free char *again = NULL;
    assert_no_error(mvm_kernel_vmlinux(&k, cache, NULL, &again, &err), err);
    assert_string_equal(again, path);
    assert_int_equal(stat(path, &st2), 0);
    assert_int_equal(st2.st_ino, st.st_ino);
    assert_true(st2.st_mtim.tv_sec >= st.st_mtim.tv_sec);

    /* A new image (different mtime) gets a new entry. */
    struct timespec times[2] = {{0, UTIME_OMIT}, {12345, 0}};
    assert_int_equal(utimensat(AT_FDCWD, image, times, 0), 0);
    cleanup_free char *third = NULL;
    assert_no_error(mvm_kernel_vmlinux(&k, cache, NULL, &third, &err), err);
    assert_string_not_equal(third, path);

    /* A broken image leaves nothing behind. */
    write_text(image, "garbage");
    cleanup_free char *none = NULL;
    assert_int_equal(mvm_kernel_vmlinux(&k, cache, NULL, &none, &err), -1);
    assert_error_contains(err, image);
    assert_null(none);
    cleanup_free char *listing = run_capture("ls %s", cache);
    assert_int_equal(count_lines(listing), 2);
}

/* A --kernel the user names is read with the user's rights: a symlink to
 * a root-only file is refused right after a readable one worked. */
static void test_read_as_user(void **state)
{
    struct fixture *fx = *state;
    if (geteuid() != 0) {
        printf("note: not root; reading as another user not checked\n");
        return;
    }
    assert_int_equal(chmod(fx->dir, 0755), 0);
    assert_int_equal(chmod(fx->boot, 0755), 0);
    size_t elf_len = 4096;
    cleanup_free char *elf = fake_elf(elf_len);
    cleanup_free char *open_img = xasprintf("%s/vmlinux-open", fx->boot);
    cleanup_free char *secret = xasprintf("%s/secret", fx->boot);
    cleanup_free char *link = xasprintf("%s/vmlinux-link", fx->boot);
    write_fixture(open_img, elf, elf_len, 0644);
    write_fixture(secret, elf, elf_len, 0600);
    assert_int_equal(symlink(secret, link), 0);
    struct mvm_kernel_search where = {fx->boot, fx->mods, NULL, 65534, 65534};
    cleanup_free char *cache = xasprintf("%s/cache", fx->dir);
    cleanup_error struct mvm_error *err = NULL;

    struct mvm_kernel k = {0};
    assert_no_error(mvm_kernel_resolve(open_img, NULL, &where, &k, &err), err);
    cleanup_free char *path = NULL;
    assert_no_error(mvm_kernel_vmlinux(&k, cache, NULL, &path, &err), err);
    mvm_kernel_clear(&k);

    assert_no_error(mvm_kernel_resolve(link, NULL, &where, &k, &err), err);
    cleanup_free char *none = NULL;
    assert_int_equal(mvm_kernel_vmlinux(&k, cache, NULL, &none, &err), -1);
    assert_error_contains(err, "Permission denied");
    assert_null(none);
    mvm_kernel_clear(&k);
}

/* ---- this machine's kernel ---------------------------------------------- */

/* Run as "test-kernel real": a CTest case of its own, skipped (77) with
 * the reason when this machine has no kernel to check. */
static int real_kernel(void)
{
    glob_t g;
    if (glob("/boot/vmlinuz-*", 0, NULL, &g) != 0) {
        printf("SKIP: no /boot/vmlinuz-* on this machine (apt-get install linux-image-amd64)\n");
        return 77;
    }
    int checked = 0;
    for (size_t i = 0; i < g.gl_pathc; i++) {
        const char *path = g.gl_pathv[i];
        size_t len = 0;
        cleanup_free char *img = read_file(path, 256u << 20, &len);
        if (img == NULL) {
            printf("note: cannot read %s (%s)\n", path, strerror(errno));
            continue;
        }
        checked++;
        cleanup_free char *rel = mvm_kernel_image_release(img, len);
        const char *want = path + strlen("/boot/vmlinuz-");
        if (rel == NULL || strcmp(rel, want) != 0) {
            printf("FAIL: %s: release %s, expected %s\n", path, rel ? rel : "(none)", want);
            return 1;
        }
        struct buf vmlinux = {0};
        cleanup_error struct mvm_error *err = NULL;
        if (mvm_kernel_extract(img, len, &vmlinux, &err) < 0 || vmlinux.len < 4 ||
            memcmp(vmlinux.data,
                   "\x7f"
                   "ELF",
                   4) != 0) {
            printf("FAIL: %s: no ELF vmlinux extracted (%s)\n", path, err ? err->msg : "bad magic");
            buf_free(&vmlinux);
            return 1;
        }
        printf("ok: %s (%s) -> %zu-byte vmlinux\n", path, rel, vmlinux.len);
        buf_free(&vmlinux);
    }
    globfree(&g);
    if (checked == 0) {
        printf("SKIP: no /boot/vmlinuz-* is readable here\n");
        return 77;
    }
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 2 && strcmp(argv[1], "real") == 0)
        return real_kernel();
    static const char *const tools[] = {"xz", "zstd", "gzip", "lz4", NULL};
    require_tools(tools);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_extract_formats, setup, teardown),
        cmocka_unit_test_setup_teardown(test_extract_errors, setup, teardown),
        cmocka_unit_test(test_extract_elf_passthrough),
        cmocka_unit_test(test_image_release_bounds),
        cmocka_unit_test_setup_teardown(test_resolve_auto, setup, teardown),
        cmocka_unit_test_setup_teardown(test_resolve_explicit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_resolve_errors, setup, teardown),
        cmocka_unit_test(test_config_parse),
        cmocka_unit_test_setup_teardown(test_config_find, setup, teardown),
        cmocka_unit_test_setup_teardown(test_vmlinux_cache, setup, teardown),
        cmocka_unit_test_setup_teardown(test_read_as_user, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
