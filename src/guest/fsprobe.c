/* What --image's root partition is, from bytes read off the disk: the
 * filesystem a superblock names, the GPT entry of the root type.  Pure,
 * unit-tested on the host (tests/unit/test-guest-image.c). */
#include <stddef.h>
#include <string.h>

#include "guest.h"

const char *guest_fs_type(const unsigned char *h, size_t n)
{
    if (n >= 1082 && (h[1080] | h[1081] << 8) == 0xEF53)
        return "ext4"; /* ext2/3 too: ext4 mounts them */
    if (n >= 4 && memcmp(h, "XFSB", 4) == 0)
        return "xfs";
    if (n >= 0x10048 && memcmp(h + 0x10040, "_BHRfS_M", 8) == 0)
        return "btrfs";
    return NULL;
}

unsigned guest_gpt_root(const unsigned char *e, size_t n, size_t esize)
{
    /* 4f68bce3-e8cd-4db1-96e7-fbcaf984b709, as GPT stores it. */
    static const unsigned char root[16] = {0xe3, 0xbc, 0x68, 0x4f, 0xcd, 0xe8, 0xb1, 0x4d,
                                           0x96, 0xe7, 0xfb, 0xca, 0xf9, 0x84, 0xb7, 0x09};
    if (esize < 128)
        return 0;
    for (size_t i = 0; i < n && i < 128; i++)
        if (memcmp(e + i * esize, root, 16) == 0)
            return (unsigned)i + 1;
    return 0;
}
