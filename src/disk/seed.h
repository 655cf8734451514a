/* disk/seed: the cloud-init NoCloud seed of --boot image, written by mvm
 * itself -- an ISO 9660 image with Joliet names, labelled "cidata", whose
 * root holds user-data, meta-data, network-config and a few more small
 * files.  Pure: the image is built in memory from the files given, and
 * the same input always gives the same bytes (every timestamp is
 * 1970-01-01 00:00:00 UTC).  Attaching it to QEMU is the caller's. */
#ifndef MVM_DISK_SEED_H
#define MVM_DISK_SEED_H

#include <stddef.h>

#include "error.h"
#include "util.h"

#define MVM_SEED_LABEL     "cidata" /* what cloud-init's NoCloud looks for */
#define MVM_SEED_LABEL_MAX 16       /* Joliet's volume identifier: 16 UCS-2 */
#define MVM_SEED_NAME_MAX  64       /* Joliet's file identifier: 64 UCS-2 */
#define MVM_SEED_FILES_MAX 16
#define MVM_SEED_FILE_MAX  (16u << 20)
#define MVM_SEED_TOTAL_MAX (64u << 20)
#define MVM_SEED_SECTOR    2048

struct mvm_seed_file {
    const char *name; /* [a-z0-9._-]{1,64}, not ending in '.' */
    const void *data; /* may be NULL when len is 0 */
    size_t len;       /* at most MVM_SEED_FILE_MAX */
};

/* Appends to out the image of the n files at the root of a volume called
 * label ([A-Za-z0-9_-]{1,16}; MVM_SEED_LABEL for cloud-init), a multiple
 * of MVM_SEED_SECTOR bytes.  Refused, with out unchanged, for a bad or
 * repeated name, a bad label, more than MVM_SEED_FILES_MAX files, a file
 * over MVM_SEED_FILE_MAX or files over MVM_SEED_TOTAL_MAX in all. */
int mvm_seed_build(const struct mvm_seed_file *files, size_t n, const char *label, struct buf *out,
                   struct mvm_error **err);

#endif
