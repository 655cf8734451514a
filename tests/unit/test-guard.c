/* Unit tests for share/guard.c: the floors of --min-free, the decision
 * whether a limit is crossed (bytes, inodes, floors; a shrinking
 * filesystem gives no credit), the sampling interval, the messages, the
 * mounts below a share; and guard-fs.c on a real directory. */
#include "boot-test-util.h"

#include "guard.h"

#define MIB (1024ull * 1024)

static const struct mvm_fs_usage fs1g = {
    .bytes = 1024 * MIB,
    .bytes_used = 100 * MIB,
    .bytes_avail = 900 * MIB,
    .files = 100000,
    .files_used = 1000,
    .files_avail = 99000,
};

static void test_floors(void **state)
{
    (void)state;
    uint64_t b, f;
    struct mvm_guard_limits l = {.min_free_percent = true, .min_free = 5};
    mvm_guard_floors(&l, &fs1g, &b, &f);
    assert_int_equal(b, 1024 * MIB * 5 / 100);
    assert_int_equal(f, 5000);
    l = (struct mvm_guard_limits){.min_free = 256 * MIB}; /* a quarter of the space */
    mvm_guard_floors(&l, &fs1g, &b, &f);
    assert_int_equal(b, 256 * MIB);
    assert_int_equal(f, 25000);
    l.min_free = 4096 * MIB; /* more than the filesystem: every inode */
    mvm_guard_floors(&l, &fs1g, &b, &f);
    assert_int_equal(f, 100000);
    l.min_free = 0;
    mvm_guard_floors(&l, &fs1g, &b, &f);
    assert_int_equal(b, 0);
    assert_int_equal(f, 0);
}

/* A guard over n copies of fs1g (different filesystems), floors set. */
static void make(struct mvm_guard *g, struct mvm_guard_fs *fs, size_t n, struct mvm_guard_limits l)
{
    *g = (struct mvm_guard){.lim = l, .fs = fs, .nfs = n};
    for (size_t i = 0; i < n; i++) {
        fs[i] = (struct mvm_guard_fs){.path = "/p", .fd = -1, .base = fs1g, .now = fs1g};
        mvm_guard_floors(&l, &fs1g, &fs[i].floor_bytes, &fs[i].floor_files);
    }
}

static void grow(struct mvm_guard_fs *f, int64_t bytes, int64_t files)
{
    f->now.bytes_used = (uint64_t)((int64_t)f->now.bytes_used + bytes);
    f->now.bytes_avail = (uint64_t)((int64_t)f->now.bytes_avail - bytes);
    f->now.files_used = (uint64_t)((int64_t)f->now.files_used + files);
    f->now.files_avail = (uint64_t)((int64_t)f->now.files_avail - files);
}

static void test_check_limit(void **state)
{
    (void)state;
    struct mvm_guard g;
    struct mvm_guard_fs fs[2];
    struct mvm_guard_verdict v;
    make(&g, fs, 2, (struct mvm_guard_limits){.share_limit = 64 * MIB});
    assert_int_equal(mvm_guard_check(&g, &v), MVM_GUARD_OK);
    grow(&fs[0], (int64_t)(64 * MIB), 10); /* exactly the limit: fine */
    assert_int_equal(mvm_guard_check(&g, &v), MVM_GUARD_OK);
    assert_int_equal(v.added_bytes, 64 * MIB);
    grow(&fs[1], 4096, 0); /* one block more, on the other filesystem */
    assert_int_equal(mvm_guard_check(&g, &v), MVM_GUARD_LIMIT_BYTES);
    assert_int_equal(v.added_bytes, 64 * MIB + 4096);
    /* The host deleting on one filesystem is no credit on another. */
    grow(&fs[1], -(int64_t)(50 * MIB), 0);
    grow(&fs[0], 4096, 0);
    assert_int_equal(mvm_guard_check(&g, &v), MVM_GUARD_LIMIT_BYTES);
    assert_int_equal(v.added_bytes, 64 * MIB + 4096);
    /* Freeing on the same one is. */
    grow(&fs[0], -(int64_t)(1 * MIB), 0);
    assert_int_equal(mvm_guard_check(&g, &v), MVM_GUARD_OK);
    cleanup_free char *ok = mvm_guard_describe(&g, &v);
    assert_non_null(strstr(ok, "no disk limit"));

    /* Inodes: 64 MiB allows 16384 of them; empty files cost no blocks. */
    make(&g, fs, 1, (struct mvm_guard_limits){.share_limit = 64 * MIB});
    grow(&fs[0], 0, 16384);
    assert_int_equal(mvm_guard_check(&g, &v), MVM_GUARD_OK);
    grow(&fs[0], 0, 1);
    assert_int_equal(mvm_guard_check(&g, &v), MVM_GUARD_LIMIT_FILES);
    cleanup_free char *msg = mvm_guard_describe(&g, &v);
    assert_string_equal(msg, "the read-write shares hold 16385 more files and directories, over "
                             "the 16384 that --share-limit 64.0 MiB allows (one per 4 KiB)");
}

static void test_check_floor(void **state)
{
    (void)state;
    struct mvm_guard g;
    struct mvm_guard_fs fs[2];
    struct mvm_guard_verdict v;
    /* 900 MiB free; the floor 800 MiB. */
    make(&g, fs, 2, (struct mvm_guard_limits){.min_free = 800 * MIB});
    grow(&fs[1], (int64_t)(100 * MIB), 0);
    assert_int_equal(mvm_guard_check(&g, &v), MVM_GUARD_OK);
    grow(&fs[1], 1, 0);
    assert_int_equal(mvm_guard_check(&g, &v), MVM_GUARD_FLOOR_BYTES);
    assert_int_equal(v.fs, 1);
    cleanup_free char *msg = mvm_guard_describe(&g, &v);
    assert_string_equal(msg,
                        "the filesystem holding /p has 800.0 MiB free, under --min-free 800.0 MiB");
    /* A percentage names the size it stands for. */
    make(&g, fs, 1, (struct mvm_guard_limits){.min_free = 95, .min_free_percent = true});
    assert_int_equal(mvm_guard_check(&g, &v), MVM_GUARD_FLOOR_BYTES);
    cleanup_free char *pct = mvm_guard_describe(&g, &v);
    assert_string_equal(pct, "the filesystem holding /p has 900.0 MiB free, under --min-free 95% "
                             "(972.8 MiB)");
    /* Inodes: 10% keeps 10000 of 100000 free; 99000 are now. */
    make(&g, fs, 1, (struct mvm_guard_limits){.min_free = 10, .min_free_percent = true});
    grow(&fs[0], 0, 89000);
    assert_int_equal(mvm_guard_check(&g, &v), MVM_GUARD_OK);
    grow(&fs[0], 0, 1);
    assert_int_equal(mvm_guard_check(&g, &v), MVM_GUARD_FLOOR_FILES);
    cleanup_free char *m2 = mvm_guard_describe(&g, &v);
    assert_non_null(strstr(m2, "9999 free inodes, under the 10000 that --min-free 10% keeps"));
    /* A filesystem without an inode count (btrfs: 0) has no inode floor. */
    fs[0].now.files = 0;
    fs[0].now.files_avail = 0;
    assert_int_equal(mvm_guard_check(&g, &v), MVM_GUARD_OK);
}

static void test_next_ms(void **state)
{
    (void)state;
    struct mvm_guard g;
    struct mvm_guard_fs fs[1];
    make(&g, fs, 1, (struct mvm_guard_limits){.share_limit = 16 * 1024 * MIB});
    assert_int_equal(mvm_guard_next_ms(&g), MVM_GUARD_MAX_MS); /* far from it */
    make(&g, fs, 1, (struct mvm_guard_limits){.share_limit = 64 * MIB});
    /* 64 MiB at 1 GiB/s: 62 ms; inodes (16384 at 100000/s): 163 ms. */
    assert_int_equal(mvm_guard_next_ms(&g), 62);
    grow(&fs[0], (int64_t)(63 * MIB), 0);
    assert_int_equal(mvm_guard_next_ms(&g), MVM_GUARD_MIN_MS);
    grow(&fs[0], (int64_t)(10 * MIB), 0); /* over: still the shortest */
    assert_int_equal(mvm_guard_next_ms(&g), MVM_GUARD_MIN_MS);
    /* A floor 10 MiB away: 9 ms, so 10. */
    make(&g, fs, 1, (struct mvm_guard_limits){.min_free = 890 * MIB});
    assert_int_equal(mvm_guard_next_ms(&g), MVM_GUARD_MIN_MS);
}

static void test_mounts_below(void **state)
{
    (void)state;
    static const char mi[] = "22 1 8:1 / / rw - ext4 /dev/sda1 rw\n"
                             "30 22 0:5 / /home/u/proj/build rw - tmpfs tmpfs rw\n"
                             "31 22 0:6 / /home/u/project rw - tmpfs tmpfs rw\n"
                             "32 30 0:7 / /home/u/proj/with\\040space rw - tmpfs tmpfs rw\n"
                             "33 22 0:8 / /home/u/proj rw - tmpfs tmpfs rw\n"
                             "garbage\n";
    size_t n;
    char **v = mvm_guard_mounts_below(mi, "/home/u/proj/", &n);
    assert_int_equal(n, 2);
    assert_string_equal(v[0], "/home/u/proj/build");
    assert_string_equal(v[1], "/home/u/proj/with space");
    assert_null(v[2]);
    mvm_strv_free(v);
    v = mvm_guard_mounts_below(mi, "/", &n);
    assert_int_equal(n, 4);
    mvm_strv_free(v);
    v = mvm_guard_mounts_below("", "/x", &n);
    assert_int_equal(n, 0);
    mvm_strv_free(v);
}

static void test_size(void **state)
{
    (void)state;
    char b[24];
    mvm_guard_size(512, b);
    assert_string_equal(b, "512 bytes");
    mvm_guard_size(64 * MIB + MIB / 2, b);
    assert_string_equal(b, "64.5 MiB");
    mvm_guard_size(3 * 1024 * MIB, b);
    assert_string_equal(b, "3.0 GiB");
}

/* guard-fs.c on this machine's temporary directory: opened once however
 * often named, and refused when the floor is above what is free. */
static void test_open(void **state)
{
    (void)state;
    cleanup_free char *dir = test_tmpdir();
    cleanup_free char *sub = xasprintf("%s/sub", dir);
    mkdir_fixture(sub);
    char *dirs[] = {dir, sub};
    cleanup_error struct mvm_error *err = NULL;
    struct mvm_guard g;
    struct mvm_guard_limits l = {.share_limit = 64 * MIB};
    assert_no_error(mvm_guard_open(&g, &l, dirs, 2, &err), err);
    assert_true(mvm_guard_active(&g));
    assert_int_equal(g.nfs, 1);
    assert_no_error(mvm_guard_sample(&g, &err), err);
    assert_true(g.fs[0].now.bytes > 0);
    mvm_guard_clear(&g);
    assert_false(mvm_guard_active(&g));
    /* No limit at all: nothing watched. */
    l = (struct mvm_guard_limits){0};
    assert_no_error(mvm_guard_open(&g, &l, dirs, 2, &err), err);
    assert_false(mvm_guard_active(&g));
    mvm_guard_clear(&g);
    /* A floor of 99% of the space is above what any busy filesystem has free. */
    l = (struct mvm_guard_limits){.min_free = 99, .min_free_percent = true};
    if (mvm_guard_open(&g, &l, dirs, 1, &err) == 0) {
        mvm_guard_clear(&g);
        remove_tree(dir);
        skip(); /* an almost empty filesystem: nothing to refuse */
    }
    assert_error_contains(err, "under --min-free 99%");
    assert_error_contains(err, "lower --min-free");
    mvm_guard_clear(&g);
    mvm_error_cleanup(&err);
    char *missing[] = {"/nonexistent/mvm-guard"};
    l.min_free = 1;
    assert_int_equal(mvm_guard_open(&g, &l, missing, 1, &err), -1);
    assert_error_contains(err, "/nonexistent/mvm-guard");
    mvm_guard_clear(&g);
    remove_tree(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_floors),       cmocka_unit_test(test_check_limit),
        cmocka_unit_test(test_check_floor),  cmocka_unit_test(test_next_ms),
        cmocka_unit_test(test_mounts_below), cmocka_unit_test(test_size),
        cmocka_unit_test(test_open),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
