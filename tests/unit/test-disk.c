/* disk/: volume names, sizes, the table and mkfs.ext4's argv (pure, always
 * run), and -- as "test-disk images", skipped (77) without root or
 * mkfs.ext4 -- real volumes and scratch disks in a temporary directory:
 * sparse ext4 images, their owner, locking, listing, removal, per-uid
 * directories, refusals and leaving nothing behind on failure. */
#include "boot-test-util.h"

#include <stdio.h>
#include <sys/file.h>
#include <time.h>

#include "src/disk/disk-int.h"

#define MIB (1024ULL * 1024)

/* ---- pure ---------------------------------------------------------------- */

static void test_names(void **state)
{
    static const char *const good[] = {
        "a", "data",   "A-1_b.c",
        "9", "x.ext4", "0123456789012345678901234567890123456789012345678901234567890123", /* 64 */
    };
    static const char *const bad[] = {
        "",     ".hidden",
        "-x",   "_x",
        "a..b", "..",
        "../x", "a/b",
        "a b",  "caf\xc3\xa9",
        "x\n",  "01234567890123456789012345678901234567890123456789012345678901234", /* 65 */
    };
    for (size_t i = 0; i < ARRAY_SIZE(good); i++) {
        cleanup_error struct mvm_error *err = NULL;
        assert_no_error(mvm_volume_name_check(good[i], &err), err);
    }
    for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
        cleanup_error struct mvm_error *err = NULL;
        assert_int_equal(mvm_volume_name_check(bad[i], &err), -1);
        assert_error_contains(err, "bad volume name '");
        assert_null(strchr(err->msg, '\n')); /* printed sanitized */
    }
}

static void test_human_size(void **state)
{
    static const struct {
        uint64_t bytes;
        const char *want;
    } v[] = {
        {0, "0B"},
        {512, "512B"},
        {1023, "1023B"},
        {1024, "1.0K"},
        {1536, "1.5K"},
        {12 * MIB, "12M"},
        {10 * MIB, "10M"},
        {1048064, "1.0M"}, /* 1023.5K carried up */
        {4096 * MIB, "4.0G"},
        {100 * 1024 * MIB, "100G"},
        {UINT64_MAX, "16E"},
    };
    for (size_t i = 0; i < ARRAY_SIZE(v); i++) {
        char out[16];
        mvm_disk_human_size(v[i].bytes, out);
        assert_string_equal(out, v[i].want);
    }
}

static char *table(const struct mvm_disk_volume *v, size_t n)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    assert_non_null(f);
    mvm_disk_volume_table(f, v, n);
    fclose(f);
    return text;
}

static void test_table(void **state)
{
    setenv("TZ", "UTC", 1);
    tzset();
    struct mvm_disk_volume v[] = {
        {"data", 4096 * MIB, 12 * MIB, 1700000000, false},
        {"a-much-longer-name", 64 * MIB, 4096, 0, true},
    };
    cleanup_free char *text = table(v, 2);
    assert_string_equal(text, "NAME                  SIZE    USED  LAST-USE          STATE\n"
                              "data                  4.0G     12M  2023-11-14 22:13  idle\n"
                              "a-much-longer-name     64M    4.0K  1970-01-01 00:00  in use\n");
    cleanup_free char *none = table(NULL, 0);
    assert_string_equal(none, "no volumes\n");
}

static void put_be(unsigned char *p, uint64_t v, int n)
{
    for (int i = n - 1; i >= 0; i--, v >>= 8)
        p[i] = (unsigned char)v;
}

/* --image's probe: qcow2's header read, raw images recognised by what
 * they hold, other formats and qcow2 with a backing file refused. */
static void test_image_probe(void **state)
{
    (void)state;
    static unsigned char h[MVM_IMAGE_HEAD];
    struct mvm_image_info info;
    cleanup_error struct mvm_error *err = NULL;
    memset(h, 0, sizeof h);
    memcpy(h, "QFI\xfb", 4);
    put_be(h + 4, 3, 4);
    put_be(h + 24, 1ull << 30, 8);
    assert_int_equal(mvm_image_probe(h, sizeof h, 200000, "--image x", &info, NULL), 0);
    assert_int_equal(info.format, MVM_IMAGE_QCOW2);
    assert_int_equal(info.virtual_size, 1ull << 30);
    put_be(h + 8, 0x200, 8); /* a backing file */
    assert_int_equal(mvm_image_probe(h, sizeof h, 200000, "--image x", &info, &err), -1);
    assert_non_null(strstr(err->msg, "--image x is a qcow2 image with a backing file"));
    mvm_error_free(err);
    err = NULL;
    put_be(h + 8, 0, 8);
    put_be(h + 4, 4, 4);
    assert_int_equal(mvm_image_probe(h, sizeof h, 200000, "--image x", &info, NULL), -1);
    /* Raw: by what it holds; its size is the file's. */
    memset(h, 0, sizeof h);
    h[1080] = 0x53, h[1081] = 0xef;
    assert_int_equal(mvm_image_probe(h, sizeof h, 64 << 20, "--image x", &info, NULL), 0);
    assert_int_equal(info.format, MVM_IMAGE_RAW);
    assert_string_equal(info.kind, "ext4");
    assert_int_equal(info.virtual_size, 64 << 20);
    assert_int_equal(mvm_image_probe(h, sizeof h, (64 << 20) + 1, "--image x", &info, NULL), -1);
    memset(h, 0, sizeof h);
    memcpy(h + 512, "EFI PART", 8);
    h[510] = 0x55, h[511] = 0xaa;
    assert_int_equal(mvm_image_probe(h, sizeof h, 64 << 20, "--image x", &info, NULL), 0);
    assert_string_equal(info.kind, "gpt");
    memset(h, 0, sizeof h);
    assert_int_equal(mvm_image_probe(h, sizeof h, 64 << 20, "--image x", &info, &err), -1);
    assert_non_null(strstr(err->msg, "is not an image mvm recognises"));
    mvm_error_free(err);
    err = NULL;
    memcpy(h, "KDMV", 4);
    assert_int_equal(mvm_image_probe(h, sizeof h, 64 << 20, "--image x", &info, &err), -1);
    assert_non_null(strstr(err->msg, "is a VMDK image"));
    /* A short read (a tiny file) reads no magic beyond it. */
    memset(h, 0, sizeof h);
    h[1080] = 0x53, h[1081] = 0xef;
    assert_int_equal(mvm_image_probe(h, 1000, 1000, "--image x", &info, NULL), -1);
}

static void test_mkfs_argv(void **state)
{
    struct mvm_disk_mkfs vol = {
        .label = "data", .journal = true, .owner = true, .uid = 1000, .gid = 100};
    static const char *const want_vol[] = {
        "/sbin/mkfs.ext4",
        "-q",
        "-F",
        "-m",
        "0",
        "-L",
        "data",
        "-E",
        "root_owner=1000:100,lazy_itable_init=1,lazy_journal_init=1,nodiscard",
        "/v/1000/data.ext4",
        NULL,
    };
    assert_argv(mvm_disk_mkfs_argv("/sbin/mkfs.ext4", "/v/1000/data.ext4", &vol), want_vol);

    struct mvm_disk_mkfs scratch = {.journal = false};
    static const char *const want_scratch[] = {
        "/sbin/mkfs.ext4",
        "-q",
        "-F",
        "-m",
        "0",
        "-O",
        "^has_journal",
        "-E",
        "lazy_itable_init=1,nodiscard",
        "/s/x.img",
        NULL,
    };
    assert_argv(mvm_disk_mkfs_argv("/sbin/mkfs.ext4", "/s/x.img", &scratch), want_scratch);

    /* ext4 keeps 16 bytes of label. */
    struct mvm_disk_mkfs longer = {.label = "0123456789abcdefXYZ", .journal = true};
    char **argv = mvm_disk_mkfs_argv("m", "i", &longer);
    assert_string_equal(argv[6], "0123456789abcdef");
    mvm_strv_free(argv);
}

/* ---- images ---------------------------------------------------------------- */

static int setup(void **state)
{
    umask(022);
    *state = test_tmpdir();
    return 0;
}

static int teardown(void **state)
{
    remove_tree(*state);
    free(*state);
    return 0;
}

static bool exists(const char *path)
{
    struct stat st;
    return lstat(path, &st) == 0;
}

static size_t entries(const char *dir)
{
    cleanup_dir DIR *d = opendir(dir);
    assert_non_null(d);
    size_t n = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL)
        n += de->d_name[0] != '.';
    return n;
}

/* s_feature_compat's HAS_JOURNAL, read from the image itself. */
static bool has_journal(int fd)
{
    unsigned char f[4];
    assert_int_equal(pread(fd, f, 4, 1024 + 0x5c), 4);
    return f[0] & 0x4;
}

/* The owner of the filesystem's root directory, by debugfs; false (and
 * a note) when debugfs is not installed. */
static bool root_owner(const char *image, unsigned *uid, unsigned *gid)
{
    const char *debugfs = access("/usr/sbin/debugfs", X_OK) == 0 ? "/usr/sbin/debugfs"
                          : access("/sbin/debugfs", X_OK) == 0   ? "/sbin/debugfs"
                                                                 : NULL;
    if (debugfs == NULL) {
        printf("note: debugfs is not installed; root_owner not checked\n");
        return false;
    }
    cleanup_free char *out = run_capture("%s -R 'stat /' '%s' 2>/dev/null", debugfs, image);
    const char *user = strstr(out, "User:");
    assert_non_null(user);
    assert_int_equal(sscanf(user, "User: %u Group: %u", uid, gid), 2);
    return true;
}

static char *list(const char *root, uid_t uid)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    assert_non_null(f);
    cleanup_error struct mvm_error *err = NULL;
    assert_no_error(mvm_volume_list(root, uid, f, &err), err);
    fclose(f);
    return text;
}

static void test_volume_create(void **state)
{
    cleanup_free char *root = xasprintf("%s/var/volumes", (char *)*state);
    cleanup_free char *image = xasprintf("%s/12345/data.ext4", root);
    cleanup_error struct mvm_error *err = NULL;
    struct mvm_disk d;
    assert_no_error(mvm_volume_open(root, 12345, 23456, "data", 0, &d, &err), err);
    assert_true(d.created);
    assert_true(d.fd >= 0);
    assert_string_equal(d.path, image);
    assert_int_equal(d.size_bytes, (uint64_t)MVM_VOLUME_DEFAULT_MIB * MIB);
    assert_true(fcntl(d.fd, F_GETFD) & FD_CLOEXEC);
    assert_int_equal(fcntl(d.fd, F_GETFL) & O_ACCMODE, O_RDWR);

    struct stat st;
    assert_int_equal(stat(image, &st), 0);
    assert_true(S_ISREG(st.st_mode));
    assert_int_equal(st.st_mode & 07777, 0600);
    assert_int_equal((uint64_t)st.st_size, d.size_bytes);
    /* Sparse: a few MiB of metadata, not 4 GiB. */
    assert_true((uint64_t)st.st_blocks * 512 < 64 * MIB);
    assert_true(mvm_disk_is_ext4(d.fd));
    assert_true(has_journal(d.fd));
    struct stat dir, top;
    cleanup_free char *udir = xasprintf("%s/12345", root);
    assert_int_equal(stat(udir, &dir), 0);
    assert_int_equal(dir.st_mode & 07777, 0700);
    assert_int_equal(dir.st_uid, geteuid());
    assert_int_equal(stat(root, &top), 0);
    assert_int_equal(top.st_mode & 07777, 0755);
    unsigned uid = 0, gid = 0;
    if (root_owner(image, &uid, &gid)) {
        assert_int_equal(uid, 12345);
        assert_int_equal(gid, 23456);
    }

    /* Data written through the fd survives a reopen, and the size stays
     * what it was whatever the new request says. */
    static const char mark[] = "mvm-volume-marker";
    off_t at = (off_t)d.size_bytes - 4096;
    assert_int_equal(pwrite(d.fd, mark, sizeof mark, at), (ssize_t)sizeof mark);
    mvm_disk_close(&d);
    assert_int_equal(d.fd, -1);
    assert_null(d.path);
    mvm_disk_close(&d); /* twice is fine */

    assert_no_error(mvm_volume_open(root, 12345, 23456, "data", 64, &d, &err), err);
    assert_false(d.created);
    assert_int_equal(d.size_bytes, (uint64_t)MVM_VOLUME_DEFAULT_MIB * MIB);
    char back[sizeof mark];
    assert_int_equal(pread(d.fd, back, sizeof back, at), (ssize_t)sizeof back);
    assert_memory_equal(back, mark, sizeof mark);
    mvm_disk_close(&d);
}

static void test_volume_in_use(void **state)
{
    const char *root = *state;
    cleanup_error struct mvm_error *err = NULL;
    struct mvm_disk a, b;
    /* Positive control: one after the other, both opens work. */
    assert_no_error(mvm_volume_open(root, 1000, 1000, "work", 16, &a, &err), err);
    mvm_disk_close(&a);
    assert_no_error(mvm_volume_open(root, 1000, 1000, "work", 16, &a, &err), err);
    cleanup_free char *listed = list(root, 1000);
    assert_non_null(strstr(listed, "work "));
    assert_non_null(strstr(listed, "  in use\n"));

    struct stat before, after;
    assert_int_equal(fstat(a.fd, &before), 0);
    assert_int_equal(mvm_volume_open(root, 1000, 1000, "work", 32, &b, &err), -1);
    assert_string_equal(err->msg,
                        "volume work is in use by another session; stop that session or use "
                        "another name");
    assert_int_equal(b.fd, -1);
    assert_null(b.path);
    mvm_error_cleanup(&err);
    assert_int_equal(fstat(a.fd, &after), 0);
    assert_int_equal(after.st_size, before.st_size);
    assert_int_equal(after.st_mtim.tv_nsec, before.st_mtim.tv_nsec);
    assert_int_equal(after.st_mtim.tv_sec, before.st_mtim.tv_sec);

    mvm_disk_close(&a);
    cleanup_free char *idle = list(root, 1000);
    assert_non_null(strstr(idle, "  idle\n"));
    assert_no_error(mvm_volume_open(root, 1000, 1000, "work", 16, &b, &err), err);
    assert_false(b.created);
    mvm_disk_close(&b);
}

static void test_volume_remove(void **state)
{
    const char *root = *state;
    cleanup_free char *image = xasprintf("%s/1000/old.ext4", root);
    cleanup_error struct mvm_error *err = NULL;
    struct mvm_disk d;
    assert_no_error(mvm_volume_open(root, 1000, 1000, "old", 16, &d, &err), err);
    assert_int_equal(mvm_volume_remove(root, 1000, "old", &err), -1);
    assert_error_contains(err, "volume old is in use by another session");
    mvm_error_cleanup(&err);
    assert_true(exists(image));
    mvm_disk_close(&d);

    assert_no_error(mvm_volume_remove(root, 1000, "old", &err), err);
    assert_false(exists(image));
    assert_int_equal(mvm_volume_remove(root, 1000, "old", &err), -1);
    assert_string_equal(err->msg, "no volume old (see mvm volume ls)");
    mvm_error_cleanup(&err);
    assert_int_equal(mvm_volume_remove(root, 1000, "../1000/old", &err), -1);
    assert_error_contains(err, "bad volume name");
    cleanup_free char *text = list(root, 1000);
    assert_string_equal(text, "no volumes\n");
}

static void test_volume_per_uid(void **state)
{
    const char *root = *state;
    cleanup_error struct mvm_error *err = NULL;
    struct mvm_disk mine, theirs;
    assert_no_error(mvm_volume_open(root, 1001, 1001, "shared", 16, &mine, &err), err);
    /* Control: the owner sees it. */
    cleanup_free char *own = list(root, 1001);
    assert_non_null(strstr(own, "shared "));

    cleanup_free char *other = list(root, 1002);
    assert_string_equal(other, "no volumes\n");
    assert_int_equal(mvm_volume_remove(root, 1002, "shared", &err), -1);
    assert_string_equal(err->msg, "no volume shared (see mvm volume ls)");
    mvm_error_cleanup(&err);
    /* Same name, another user: a volume of its own, not "in use". */
    assert_no_error(mvm_volume_open(root, 1002, 1002, "shared", 16, &theirs, &err), err);
    assert_true(theirs.created);
    struct stat a, b;
    assert_int_equal(fstat(mine.fd, &a), 0);
    assert_int_equal(fstat(theirs.fd, &b), 0);
    assert_true(a.st_ino != b.st_ino);
    mvm_disk_close(&mine);
    mvm_disk_close(&theirs);
    /* A missing root is no volumes either. */
    cleanup_free char *missing = xasprintf("%s/nonexistent", root);
    cleanup_free char *none = list(missing, 1001);
    assert_string_equal(none, "no volumes\n");
    assert_false(exists(missing));
}

static void expect_refused(const char *root, const char *name, const char *why)
{
    cleanup_error struct mvm_error *err = NULL;
    struct mvm_disk d;
    assert_int_equal(mvm_volume_open(root, 1000, 1000, name, 16, &d, &err), -1);
    assert_error_contains(err, why);
    assert_int_equal(d.fd, -1);
}

static void test_volume_refusals(void **state)
{
    const char *root = *state;
    cleanup_free char *udir = xasprintf("%s/1000", root);
    cleanup_free char *moved = xasprintf("%s/elsewhere", root);
    cleanup_error struct mvm_error *err = NULL;
    struct mvm_disk d;
    /* Positive control: the same open works while everything is as mvm
     * made it. */
    assert_no_error(mvm_volume_open(root, 1000, 1000, "ok", 16, &d, &err), err);
    mvm_disk_close(&d);

    assert_int_equal(chmod(udir, 0770), 0);
    expect_refused(root, "ok", "must be owned by");
    assert_int_equal(chmod(udir, 0700), 0);
    if (geteuid() == 0) {
        assert_int_equal(chown(udir, 4242, 0), 0);
        expect_refused(root, "ok", "must be owned by");
        assert_int_equal(chown(udir, 0, 0), 0);
    }
    assert_int_equal(rename(udir, moved), 0);
    assert_int_equal(symlink(moved, udir), 0);
    expect_refused(root, "ok", "is not a directory");
    assert_int_equal(unlink(udir), 0);
    assert_int_equal(rename(moved, udir), 0);

    /* Images that are not what mvm made. */
    cleanup_free char *target = xasprintf("%s/target", root);
    cleanup_free char *link = xasprintf("%s/evil.ext4", udir);
    write_text(target, "not yours");
    assert_int_equal(symlink(target, link), 0);
    expect_refused(root, "evil", "is a symlink, not a volume");
    cleanup_free char *dirimg = xasprintf("%s/dir.ext4", udir);
    assert_int_equal(mkdir(dirimg, 0700), 0);
    expect_refused(root, "dir", "not a regular file");
    cleanup_free char *junk = xasprintf("%s/junk.ext4", udir);
    write_fixture(junk, "\0\0\0\0", 4, 0600);
    expect_refused(root, "junk", "has no ext4 filesystem");
    expect_refused(root, "a..b", "bad volume name");

    /* rm takes the symlink away, never its target. */
    assert_no_error(mvm_volume_remove(root, 1000, "evil", &err), err);
    assert_false(exists(link));
    assert_true(exists(target));
    assert_int_equal(mvm_volume_remove(root, 1000, "dir", &err), -1);
    assert_error_contains(err, "is a directory, not a volume");
    assert_true(exists(dirimg));
}

/* Past what ext4 (ftruncate) or mkfs.ext4 (tmpfs) takes: fails after the
 * file was created, and leaves none.  Returns whether mkfs.ext4 failed. */
static bool too_large(const char *root)
{
    cleanup_free char *udir = xasprintf("%s/1000", root);
    cleanup_error struct mvm_error *err = NULL;
    struct mvm_disk d;
    assert_int_equal(mvm_volume_open(root, 1000, 1000, "huge", (uint64_t)INT64_MAX >> 20, &d, &err),
                     -1);
    assert_error_contains(err, "creating volume huge: ");
    assert_error_contains(err, "huge.ext4");
    assert_null(strchr(err->msg, '\n'));
    printf("note: %s\n", err->msg);
    assert_int_equal(d.fd, -1);
    assert_int_equal(entries(udir), 0);
    return strstr(err->msg, "with mkfs.ext4: ") != NULL;
}

static void test_volume_failure_leaves_nothing(void **state)
{
    const char *root = *state;
    cleanup_free char *udir = xasprintf("%s/1000", root);
    bool mkfs_failed = too_large(root);
    /* On tmpfs the size passes ftruncate and mkfs.ext4 refuses it. */
    char shm[] = "/dev/shm/mvm-test-XXXXXX";
    if (mkdtemp(shm) != NULL) {
        mkfs_failed |= too_large(shm);
        remove_tree(shm);
    }
    if (!mkfs_failed)
        printf("note: no tmpfs at /dev/shm; a failing mkfs.ext4 not checked\n");

    /* Past what the byte count holds: refused before creating anything. */
    cleanup_error struct mvm_error *err = NULL;
    struct mvm_disk d;
    assert_int_equal(
        mvm_volume_open(root, 1000, 1000, "huger", ((uint64_t)INT64_MAX >> 20) + 1, &d, &err), -1);
    assert_error_contains(err, "give 1 MiB to 8 EiB");
    assert_int_equal(entries(udir), 0);
}

static void test_scratch(void **state)
{
    cleanup_free char *dir = xasprintf("%s/lib/mvm/scratch", (char *)*state);
    cleanup_free char *parent = xasprintf("%s/lib/mvm", (char *)*state);
    cleanup_free char *image = xasprintf("%s/0123abcd.img", dir);
    cleanup_error struct mvm_error *err = NULL;
    struct mvm_disk d;
    assert_no_error(mvm_scratch_create(dir, "0123abcd", 64, &d, &err), err);
    assert_true(d.created);
    assert_string_equal(d.path, image);
    assert_int_equal(d.size_bytes, 64 * MIB);
    /* Gone from the directory, alive through the fd. */
    assert_false(exists(image));
    assert_int_equal(entries(dir), 0);
    struct stat st;
    assert_int_equal(fstat(d.fd, &st), 0);
    assert_int_equal(st.st_nlink, 0);
    assert_int_equal((uint64_t)st.st_size, 64 * MIB);
    assert_true(mvm_disk_is_ext4(d.fd));
    assert_false(has_journal(d.fd));
    assert_int_equal(fcntl(d.fd, F_GETFL) & O_ACCMODE, O_RDWR);
    cleanup_free char *via_proc = xasprintf("/proc/%d/fd/%d", (int)getpid(), d.fd);
    unsigned uid = 1, gid = 1;
    if (root_owner(via_proc, &uid, &gid)) {
        assert_int_equal(uid, 0);
        assert_int_equal(gid, 0);
    }
    struct stat ds, ps;
    assert_int_equal(stat(dir, &ds), 0);
    assert_int_equal(ds.st_mode & 07777, 0700);
    assert_int_equal(stat(parent, &ps), 0);
    assert_int_equal(ps.st_mode & 07777, 0755);
    mvm_disk_close(&d);
}

static void test_scratch_failures(void **state)
{
    cleanup_free char *file = xasprintf("%s/file", (char *)*state);
    cleanup_free char *under_file = xasprintf("%s/scratch", file);
    cleanup_free char *dir = xasprintf("%s/scratch", (char *)*state);
    write_text(file, "x");
    cleanup_error struct mvm_error *err = NULL;
    struct mvm_disk d;
    assert_int_equal(mvm_scratch_create(under_file, "s1", 16, &d, &err), -1);
    assert_error_contains(err, "creating the scratch disk: creating ");
    mvm_error_cleanup(&err);
    assert_int_equal(d.fd, -1);

    assert_int_equal(mvm_scratch_create(dir, "s2", (uint64_t)INT64_MAX >> 20, &d, &err), -1);
    assert_error_contains(err, "s2.img");
    mvm_error_cleanup(&err);
    assert_int_equal(entries(dir), 0);
    assert_int_equal(mvm_scratch_create(dir, "s3", 0, &d, &err), -1);
    assert_error_contains(err, "give 1 MiB to 8 EiB");
    mvm_error_cleanup(&err);
    assert_int_equal(mvm_scratch_create(dir, "../s4", 16, &d, &err), -1);
    assert_error_contains(err, "bad scratch disk id");
    assert_int_equal(entries(dir), 0);
}

static void age(const char *path, time_t seconds)
{
    struct timespec t[2] = {{time(NULL) - seconds, 0}, {time(NULL) - seconds, 0}};
    assert_int_equal(utimensat(AT_FDCWD, path, t, AT_SYMLINK_NOFOLLOW), 0);
}

static void test_scratch_cleanup(void **state)
{
    cleanup_free char *dir = xasprintf("%s/scratch", (char *)*state);
    cleanup_free char *old = xasprintf("%s/old.img", dir);
    cleanup_free char *fresh = xasprintf("%s/fresh.img", dir);
    cleanup_free char *other = xasprintf("%s/other.txt", dir);
    cleanup_free char *busy = xasprintf("%s/busy.img", dir);
    cleanup_error struct mvm_error *err = NULL;
    assert_int_equal(mvm_scratch_cleanup(dir, &err), 0); /* none yet */
    mkdir_fixture(dir);
    write_text(old, "x");
    write_text(fresh, "x");
    write_text(other, "x");
    write_text(busy, "x");
    age(old, 120);
    age(other, 120);
    age(busy, 120);
    cleanup_close int held = open(busy, O_RDONLY | O_CLOEXEC);
    assert_true(held >= 0);
    assert_int_equal(flock(held, LOCK_EX), 0);

    assert_int_equal(mvm_scratch_cleanup(dir, &err), 1);
    assert_false(exists(old));
    assert_true(exists(fresh));
    assert_true(exists(other));
    assert_true(exists(busy)); /* being formatted */
    close(steal_fd(&held));
    assert_int_equal(mvm_scratch_cleanup(dir, &err), 1);
    assert_false(exists(busy));
    assert_true(exists(fresh));
}

/* Run as "test-disk images": a CTest case of its own, skipped (77) with
 * the reason when it cannot make images here. */
static int images(void)
{
    if (geteuid() != 0) {
        printf("SKIP: needs root (volume directories are root's): sudo ctest -R test-disk\n");
        return 77;
    }
    const char *mkfs = NULL;
    cleanup_error struct mvm_error *err = NULL;
    if (mvm_disk_mkfs_find(&mkfs, &err) < 0) {
        printf("SKIP: %s\n", err->msg);
        return 77;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_volume_create, setup, teardown),
        cmocka_unit_test_setup_teardown(test_volume_in_use, setup, teardown),
        cmocka_unit_test_setup_teardown(test_volume_remove, setup, teardown),
        cmocka_unit_test_setup_teardown(test_volume_per_uid, setup, teardown),
        cmocka_unit_test_setup_teardown(test_volume_refusals, setup, teardown),
        cmocka_unit_test_setup_teardown(test_volume_failure_leaves_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_scratch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_scratch_failures, setup, teardown),
        cmocka_unit_test_setup_teardown(test_scratch_cleanup, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

int main(int argc, char **argv)
{
    if (argc == 2 && strcmp(argv[1], "images") == 0)
        return images();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_names),       cmocka_unit_test(test_human_size),
        cmocka_unit_test(test_table),       cmocka_unit_test(test_mkfs_argv),
        cmocka_unit_test(test_image_probe),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
