/* Decompression of whole in-memory streams for the formats Debian uses
 * for kernels and modules, and the one lz4 flavour the kernel's initramfs
 * unpacker reads.  Every decoder writes straight into the output buffer
 * and stops once the output passes max_out (gzip, xz, zstd by one byte,
 * lz4 by at most one 8 MiB block), so the limit also bounds memory. */
#include "compress.h"

#include <lz4.h>
#include <lz4hc.h>
#include <lzma.h>
#include <string.h>
#include <zlib.h>
#include <zstd.h>

#define LZ4_LEGACY_MAGIC 0x184C2102u
#define LZ4_LEGACY_BLOCK (8u << 20) /* fixed by the format */
#define LZ4_HC_LEVEL     9
#define OUT_STEP         (1u << 20)

struct magic {
    const char *bytes;
    size_t len;
    enum mvm_compress_fmt fmt;
};

static const struct magic magics[] = {
    {"\x1f\x8b", 2, MVM_FMT_GZIP},
    {"\xfd\x37\x7a\x58\x5a\x00", 6, MVM_FMT_XZ},
    {"\x28\xb5\x2f\xfd", 4, MVM_FMT_ZSTD},
    {"\x02\x21\x4c\x18", 4, MVM_FMT_LZ4_LEGACY},
    {"\x04\x22\x4d\x18", 4, MVM_FMT_UNKNOWN}, /* lz4 frame: the kernel never uses it */
    {"BZh", 3, MVM_FMT_UNKNOWN},
    {"\x5d\x00\x00", 3, MVM_FMT_UNKNOWN},     /* lzma "alone" */
    {"\x89\x4c\x5a\x4f", 4, MVM_FMT_UNKNOWN}, /* lzop */
};

enum mvm_compress_fmt mvm_compress_detect(const void *data, size_t len)
{
    for (size_t i = 0; i < ARRAY_SIZE(magics); i++)
        if (len >= magics[i].len && memcmp(data, magics[i].bytes, magics[i].len) == 0)
            return magics[i].fmt;
    return MVM_FMT_NONE;
}

const char *mvm_compress_name(enum mvm_compress_fmt fmt)
{
    switch (fmt) {
    case MVM_FMT_NONE:
        return "none";
    case MVM_FMT_GZIP:
        return "gzip";
    case MVM_FMT_XZ:
        return "xz";
    case MVM_FMT_ZSTD:
        return "zstd";
    case MVM_FMT_LZ4_LEGACY:
        return "lz4 (legacy)";
    case MVM_FMT_UNKNOWN:
        break;
    }
    return "an unsupported format";
}

/* Makes room for n more bytes without the copy buf_append would do. */
static void reserve(struct buf *b, size_t n)
{
    if (b->cap - b->len >= n)
        return;
    size_t cap = b->cap ? b->cap : OUT_STEP;
    while (cap - b->len < n)
        cap *= 2;
    b->data = xrealloc(b->data, cap);
    b->cap = cap;
}

/* Room for the next decoder step: at most `want` bytes and never more than
 * one byte past the limit (that byte is how an overflow is noticed). */
static size_t out_room(struct buf *b, size_t start, size_t max_out, size_t want)
{
    size_t produced = b->len - start;
    size_t left = max_out - produced + 1;
    size_t room = want < left ? want : left;
    reserve(b, room);
    return room;
}

static int too_big(struct buf *b, size_t start, size_t max_out, struct mvm_error **err)
{
    if (b->len - start <= max_out)
        return 0;
    return mvm_error_set(err, EFBIG, "output larger than %zu bytes", max_out);
}

static int gunzip(const unsigned char *in, size_t len, size_t max_out, struct buf *out,
                  struct mvm_error **err)
{
    z_stream zs = {0};
    if (inflateInit2(&zs, 16 + MAX_WBITS) != Z_OK)
        return mvm_error_set(err, ENOMEM, "gzip: initialising zlib");
    size_t start = out->len;
    int rc = 0;
    for (;;) {
        /* zlib counts in uInt: feed and drain at most 1 GiB a step. */
        size_t in_now = len < (1u << 30) ? len : (1u << 30);
        zs.next_in = (Bytef *)in;
        zs.avail_in = (uInt)in_now;
        size_t room = out_room(out, start, max_out, OUT_STEP);
        zs.next_out = (Bytef *)out->data + out->len;
        zs.avail_out = (uInt)room;
        int zr = inflate(&zs, Z_NO_FLUSH);
        in += in_now - zs.avail_in;
        len -= in_now - zs.avail_in;
        out->len += room - zs.avail_out;
        if ((rc = too_big(out, start, max_out, err)) < 0)
            break;
        if (zr == Z_STREAM_END)
            break;
        if (zr == Z_BUF_ERROR) { /* no progress possible: the input ran out */
            rc = mvm_error_set(err, 0, "gzip: truncated input");
            break;
        }
        if (zr != Z_OK) {
            rc = mvm_error_set(err, 0, "gzip: %s", zs.msg ? zs.msg : "corrupt input");
            break;
        }
    }
    inflateEnd(&zs);
    return rc;
}

static const char *lzma_ret_text(lzma_ret r)
{
    switch (r) {
    case LZMA_MEM_ERROR:
        return "out of memory";
    case LZMA_FORMAT_ERROR:
        return "not an xz stream";
    case LZMA_OPTIONS_ERROR:
        return "unsupported options";
    case LZMA_DATA_ERROR:
        return "corrupt input";
    case LZMA_BUF_ERROR:
        return "truncated input";
    default:
        return "decoder error";
    }
}

static int unxz(const unsigned char *in, size_t len, size_t max_out, struct buf *out,
                struct mvm_error **err)
{
    lzma_stream xs = LZMA_STREAM_INIT;
    /* No LZMA_CONCATENATED: stop at the first stream's end, whatever follows. */
    lzma_ret r = lzma_stream_decoder(&xs, UINT64_MAX, 0);
    if (r != LZMA_OK)
        return mvm_error_set(err, 0, "xz: %s", lzma_ret_text(r));
    size_t start = out->len;
    int rc = 0;
    xs.next_in = in;
    xs.avail_in = len;
    for (;;) {
        size_t room = out_room(out, start, max_out, OUT_STEP);
        xs.next_out = (uint8_t *)out->data + out->len;
        xs.avail_out = room;
        /* LZMA_FINISH once the input is all given, so truncation is reported
         * as LZMA_BUF_ERROR instead of looping. */
        r = lzma_code(&xs, xs.avail_in ? LZMA_RUN : LZMA_FINISH);
        out->len += room - xs.avail_out;
        if ((rc = too_big(out, start, max_out, err)) < 0)
            break;
        if (r == LZMA_STREAM_END)
            break;
        if (r != LZMA_OK) {
            rc = mvm_error_set(err, 0, "xz: %s", lzma_ret_text(r));
            break;
        }
    }
    lzma_end(&xs);
    return rc;
}

static int unzstd(const unsigned char *in, size_t len, size_t max_out, struct buf *out,
                  struct mvm_error **err)
{
    ZSTD_DCtx *dctx = ZSTD_createDCtx();
    if (dctx == NULL)
        return mvm_error_set(err, ENOMEM, "zstd: creating a decoder");
    size_t start = out->len;
    int rc = 0;
    ZSTD_inBuffer zin = {in, len, 0};
    for (;;) {
        size_t room = out_room(out, start, max_out, OUT_STEP);
        ZSTD_outBuffer zout = {out->data + out->len, room, 0};
        size_t zr = ZSTD_decompressStream(dctx, &zout, &zin);
        out->len += zout.pos;
        if (ZSTD_isError(zr)) {
            rc = mvm_error_set(err, 0, "zstd: %s", ZSTD_getErrorName(zr));
            break;
        }
        if ((rc = too_big(out, start, max_out, err)) < 0)
            break;
        if (zr == 0) /* a frame ended: what follows is not ours */
            break;
        if (zin.pos == zin.size && zout.pos < zout.size) {
            rc = mvm_error_set(err, 0, "zstd: truncated input");
            break;
        }
    }
    ZSTD_freeDCtx(dctx);
    return rc;
}

static uint32_t get_le32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void put_le32(struct buf *b, uint32_t v)
{
    unsigned char p[4] = {v & 0xff, (v >> 8) & 0xff, (v >> 16) & 0xff, v >> 24};
    buf_append(b, p, 4);
}

/* Mirrors the kernel's unlz4: a block size equal to the magic starts a
 * new stream, a zero size (padding) or a lone trailing word (the size a
 * kernel image appends) ends the input. */
static int unlz4_legacy(const unsigned char *in, size_t len, size_t max_out, struct buf *out,
                        struct mvm_error **err)
{
    if (len < 4 || get_le32(in) != LZ4_LEGACY_MAGIC)
        return mvm_error_set(err, 0, "lz4: not a legacy lz4 stream");
    size_t start = out->len, pos = 4;
    while (len - pos >= 4) {
        uint32_t csize = get_le32(in + pos);
        pos += 4;
        if (csize == LZ4_LEGACY_MAGIC)
            continue;
        if (csize == 0 || pos == len)
            break;
        if (csize > (uint32_t)LZ4_compressBound(LZ4_LEGACY_BLOCK) || csize > len - pos)
            return mvm_error_set(err, 0, "lz4: corrupt or truncated block at offset %zu", pos - 4);
        /* Blocks decode to at most 8 MiB; make room for a whole one so a
         * valid block is never mistaken for a corrupt one near the limit. */
        reserve(out, LZ4_LEGACY_BLOCK);
        int n = LZ4_decompress_safe((const char *)in + pos, out->data + out->len, (int)csize,
                                    (int)LZ4_LEGACY_BLOCK);
        if (n < 0)
            return mvm_error_set(err, 0, "lz4: corrupt block at offset %zu", pos - 4);
        out->len += (size_t)n;
        if (too_big(out, start, max_out, err) < 0)
            return -1;
        pos += csize;
    }
    return 0;
}

int mvm_decompress(enum mvm_compress_fmt fmt, const void *in, size_t len, size_t max_out,
                   struct buf *out, struct mvm_error **err)
{
    size_t start = out->len;
    int rc;
    switch (fmt) {
    case MVM_FMT_NONE:
        if (len > max_out)
            return mvm_error_set(err, EFBIG, "input larger than %zu bytes", max_out);
        buf_append(out, in, len);
        return 0;
    case MVM_FMT_GZIP:
        rc = gunzip(in, len, max_out, out, err);
        break;
    case MVM_FMT_XZ:
        rc = unxz(in, len, max_out, out, err);
        break;
    case MVM_FMT_ZSTD:
        rc = unzstd(in, len, max_out, out, err);
        break;
    case MVM_FMT_LZ4_LEGACY:
        rc = unlz4_legacy(in, len, max_out, out, err);
        break;
    default:
        return mvm_error_set(err, 0, "data compressed with %s", mvm_compress_name(fmt));
    }
    if (rc < 0)
        out->len = start; /* no partial output */
    return rc;
}

int mvm_lz4_legacy_compress(const void *in, size_t len, struct buf *out, struct mvm_error **err)
{
    const char *p = in;
    size_t start = out->len;
    put_le32(out, LZ4_LEGACY_MAGIC);
    for (size_t off = 0; off < len; off += LZ4_LEGACY_BLOCK) {
        size_t chunk = len - off < LZ4_LEGACY_BLOCK ? len - off : LZ4_LEGACY_BLOCK;
        int bound = LZ4_compressBound((int)chunk);
        size_t at = out->len;
        put_le32(out, 0); /* size, filled in below */
        reserve(out, (size_t)bound);
        int n = LZ4_compress_HC(p + off, out->data + out->len, (int)chunk, bound, LZ4_HC_LEVEL);
        if (n <= 0) {
            out->len = start;
            return mvm_error_set(err, 0, "lz4: compressing a block failed");
        }
        out->len += (size_t)n;
        unsigned char *sz = (unsigned char *)out->data + at;
        sz[0] = n & 0xff;
        sz[1] = (n >> 8) & 0xff;
        sz[2] = (n >> 16) & 0xff;
        sz[3] = (unsigned)n >> 24;
    }
    return 0;
}
