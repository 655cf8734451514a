/* sha256: FIPS 180-4 SHA-256, for cache keys that another user of
 * `sudo mvm` must not be able to collide with (FNV could be). */
#ifndef MVM_SHA256_H
#define MVM_SHA256_H

#include <stddef.h>
#include <stdint.h>

struct mvm_sha256 {
    uint32_t h[8];
    uint64_t len; /* bytes so far */
    uint8_t block[64];
    size_t fill;
};

void mvm_sha256_init(struct mvm_sha256 *c);
void mvm_sha256_update(struct mvm_sha256 *c, const void *data, size_t len);
void mvm_sha256_final(struct mvm_sha256 *c, uint8_t digest[32]);
/* The first 16 bytes as 32 lowercase hex digits plus NUL. */
void mvm_sha256_key(struct mvm_sha256 *c, char hex[33]);

#endif
