/* Unit tests for mvm-init's reading of --image's disk: which filesystem
 * a superblock names, which GPT entry is the root partition. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "guest.h"

#define HEAD 0x10048

static void test_fs_type(void **state)
{
    (void)state;
    static unsigned char h[HEAD];
    memset(h, 0, sizeof h);
    assert_null(guest_fs_type(h, sizeof h));
    h[1080] = 0x53, h[1081] = 0xef;
    assert_string_equal(guest_fs_type(h, sizeof h), "ext4");
    assert_null(guest_fs_type(h, 1081)); /* cut short: no magic to read */
    memset(h, 0, sizeof h);
    memcpy(h, "XFSB", 4);
    assert_string_equal(guest_fs_type(h, sizeof h), "xfs");
    memset(h, 0, sizeof h);
    memcpy(h + 0x10040, "_BHRfS_M", 8);
    assert_string_equal(guest_fs_type(h, sizeof h), "btrfs");
    assert_null(guest_fs_type(h, 0x10047));
}

static void test_gpt_root(void **state)
{
    (void)state;
    static const unsigned char root[16] = {0xe3, 0xbc, 0x68, 0x4f, 0xcd, 0xe8, 0xb1, 0x4d,
                                           0x96, 0xe7, 0xfb, 0xca, 0xf9, 0x84, 0xb7, 0x09};
    static const unsigned char data[16] = {0xaf, 0x3d, 0xc6, 0x0f, 0x83, 0x84, 0x72, 0x47,
                                           0x8e, 0x79, 0x3d, 0x69, 0xd8, 0x47, 0x7d, 0xe4};
    unsigned char e[4 * 128] = {0};
    memcpy(e, data, 16);
    assert_int_equal(guest_gpt_root(e, 4, 128), 0);
    memcpy(e + 2 * 128, root, 16);
    assert_int_equal(guest_gpt_root(e, 4, 128), 3); /* 1-based, as the kernel numbers them */
    assert_int_equal(guest_gpt_root(e, 2, 128), 0); /* only the entries the header counts */
    assert_int_equal(guest_gpt_root(e, 4, 64), 0);  /* an entry is at least 128 bytes */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fs_type),
        cmocka_unit_test(test_gpt_root),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
