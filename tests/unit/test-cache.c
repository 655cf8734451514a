/* Unit tests for src/boot/cache.c: which entries a sweep removes (stale
 * ones with the prefix, regular files only, never the one just written)
 * and that a touch keeps an entry. */
#include "boot-test-util.h"

#include <time.h>

#include "cache.h"

static void make_entry(const char *dir, const char *name, time_t age)
{
    cleanup_free char *p = xasprintf("%s/%s", dir, name);
    write_text(p, "entry");
    struct timespec t[2] = {{time(NULL) - age, 0}, {time(NULL) - age, 0}};
    assert_int_equal(utimensat(AT_FDCWD, p, t, 0), 0);
}

static bool exists(const char *dir, const char *name)
{
    cleanup_free char *p = xasprintf("%s/%s", dir, name);
    return access(p, F_OK) == 0;
}

static void test_stale(void **state)
{
    (void)state;
    assert_false(mvm_cache_stale(1000, 1000, 10));
    assert_false(mvm_cache_stale(990, 1000, 10)); /* exactly the age: still used */
    assert_true(mvm_cache_stale(989, 1000, 10));
    assert_false(mvm_cache_stale(5000, 1000, 10)); /* from the future: a clock step */
}

static void test_sweep(void **state)
{
    (void)state;
    cleanup_free char *dir = test_tmpdir();
    const time_t old = MVM_CACHE_MAX_AGE + 3600;
    make_entry(dir, "initramfs-new.img", 60);
    make_entry(dir, "initramfs-old.img", old);
    make_entry(dir, "initramfs-kept.img", old);
    make_entry(dir, "vmlinux-old", old);
    make_entry(dir, "tsc-khz", old);
    cleanup_free char *sub = xasprintf("%s/initramfs-dir", dir);
    mkdir_fixture(sub);
    struct timespec t[2] = {{time(NULL) - old, 0}, {time(NULL) - old, 0}};
    assert_int_equal(utimensat(AT_FDCWD, sub, t, 0), 0);
    cleanup_free char *kept = xasprintf("%s/initramfs-kept.img", dir);

    assert_int_equal(mvm_cache_sweep(dir, "initramfs-", MVM_CACHE_MAX_AGE, kept), 1);
    assert_false(exists(dir, "initramfs-old.img"));
    assert_true(exists(dir, "initramfs-new.img"));
    assert_true(exists(dir, "initramfs-kept.img"));
    assert_true(exists(dir, "vmlinux-old")); /* another prefix */
    assert_true(exists(dir, "tsc-khz"));
    assert_true(exists(dir, "initramfs-dir")); /* not a regular file */

    /* A touched entry is in use again; the other prefix goes. */
    cleanup_free char *vm = xasprintf("%s/vmlinux-old", dir);
    mvm_cache_touch(vm);
    assert_int_equal(mvm_cache_sweep(dir, "vmlinux-", MVM_CACHE_MAX_AGE, NULL), 0);
    assert_true(exists(dir, "vmlinux-old"));
    assert_int_equal(mvm_cache_sweep(dir, "initramfs-", MVM_CACHE_MAX_AGE, NULL), 1);
    assert_false(exists(dir, "initramfs-kept.img"));
    assert_int_equal(mvm_cache_sweep("/nonexistent/mvm-cache", "x", 1, NULL), 0);
    remove_tree(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_stale),
        cmocka_unit_test(test_sweep),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
