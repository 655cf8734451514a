/* compress: the formats a kernel image, its modules and the initramfs use.
 * Pure code over memory buffers (liblzma, libzstd, zlib, liblz4). */
#ifndef MVM_COMPRESS_H
#define MVM_COMPRESS_H

#include <stddef.h>

#include "error.h"
#include "util.h"

enum mvm_compress_fmt {
    MVM_FMT_NONE,
    MVM_FMT_GZIP,
    MVM_FMT_XZ,
    MVM_FMT_ZSTD,
    MVM_FMT_LZ4_LEGACY,
    MVM_FMT_UNKNOWN, /* compressed with something we do not read (bzip2, lzo, lzma) */
};

/* Recognises a format by its magic bytes at the start of data. */
enum mvm_compress_fmt mvm_compress_detect(const void *data, size_t len);
const char *mvm_compress_name(enum mvm_compress_fmt fmt);

/* Decompresses one stream (trailing bytes after the stream's end are
 * ignored: a kernel appends its size).  Output larger than max_out is an
 * error, so a hostile or corrupt input cannot exhaust memory. */
int mvm_decompress(enum mvm_compress_fmt fmt, const void *in, size_t len, size_t max_out,
                   struct buf *out, struct mvm_error **err);

/* The kernel's initramfs decompressor reads only lz4's legacy format
 * (magic 0x184C2102, 8 MiB blocks), not the frame format. */
int mvm_lz4_legacy_compress(const void *in, size_t len, struct buf *out, struct mvm_error **err);

#endif
