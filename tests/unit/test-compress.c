/* Unit tests for src/compress.c.  Inputs for the decoders come from the
 * reference command-line tools (gzip, xz, zstd, lz4 -l), and the lz4
 * legacy writer's output must be readable by `lz4 -dc`, which is as close
 * as a unit test gets to the kernel's unlz4. */
#include "boot-test-util.h"

#include "compress.h"

#define SMALL_LEN (3u << 20)
#define LARGE_LEN ((17u << 20) + 12345) /* three lz4 legacy blocks, the last partial */

struct fixture {
    char *dir;
    char *raw_path; /* SMALL_LEN bytes of fill_test_data */
    char *raw;
};

static int setup(void **state)
{
    struct fixture *fx = xcalloc(1, sizeof *fx);
    fx->dir = test_tmpdir();
    fx->raw = xmalloc(SMALL_LEN);
    fill_test_data(fx->raw, SMALL_LEN, 42);
    fx->raw_path = xasprintf("%s/raw", fx->dir);
    write_fixture(fx->raw_path, fx->raw, SMALL_LEN, 0644);
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *fx = *state;
    remove_tree(fx->dir);
    free(fx->dir);
    free(fx->raw_path);
    free(fx->raw);
    free(fx);
    return 0;
}

static void test_detect(void **state)
{
    (void)state;
    static const struct {
        const char *bytes;
        size_t len;
        enum mvm_compress_fmt fmt;
    } cases[] = {
        {"\x1f\x8b\x08\x00", 4, MVM_FMT_GZIP},
        {"\xfd"
         "7zXZ\x00\x00",
         7, MVM_FMT_XZ},
        {"\xfd"
         "7zXZ",
         5, MVM_FMT_NONE}, /* too short for the whole magic */
        {"\x28\xb5\x2f\xfd\x00", 5, MVM_FMT_ZSTD},
        {"\x02\x21\x4c\x18", 4, MVM_FMT_LZ4_LEGACY},
        {"\x04\x22\x4d\x18", 4, MVM_FMT_UNKNOWN},
        {"BZh91AY", 7, MVM_FMT_UNKNOWN},
        {"\x5d\x00\x00\x80", 4, MVM_FMT_UNKNOWN},
        {"\x89LZO\x00", 5, MVM_FMT_UNKNOWN},
        {"\x7f"
         "ELF\x02",
         5, MVM_FMT_NONE},
        {"070701", 6, MVM_FMT_NONE},
        {"\x1f", 1, MVM_FMT_NONE},
        {"", 0, MVM_FMT_NONE},
    };
    for (size_t i = 0; i < ARRAY_SIZE(cases); i++)
        if (mvm_compress_detect(cases[i].bytes, cases[i].len) != cases[i].fmt)
            fail_msg("case %zu: detected %s, wanted %s", i,
                     mvm_compress_name(mvm_compress_detect(cases[i].bytes, cases[i].len)),
                     mvm_compress_name(cases[i].fmt));
}

static void expect_decompress(enum mvm_compress_fmt fmt, const void *in, size_t len,
                              const void *want, size_t want_len)
{
    struct buf out = {0};
    cleanup_error struct mvm_error *err = NULL;
    int rc = mvm_decompress(fmt, in, len, want_len, &out, &err);
    assert_no_error(rc, err);
    assert_int_equal(out.len, want_len);
    assert_memory_equal(out.data, want, want_len);
    buf_free(&out);
}

static void expect_failure(enum mvm_compress_fmt fmt, const void *in, size_t len, size_t max_out,
                           const char *needle)
{
    struct buf out = {0};
    buf_append(&out, "keep", 4);
    cleanup_error struct mvm_error *err = NULL;
    assert_int_equal(mvm_decompress(fmt, in, len, max_out, &out, &err), -1);
    assert_error_contains(err, needle);
    assert_int_equal(out.len, 4); /* no partial output is left behind */
    buf_free(&out);
}

/* Compresses the fixture with a CLI tool, then checks: the round trip, a
 * stream followed by junk, output one byte over max_out, and truncation. */
static void check_cli_format(struct fixture *fx, const char *cmd, enum mvm_compress_fmt fmt)
{
    cleanup_free char *out_path = xasprintf("%s/compressed", fx->dir);
    assert_int_equal(run_sh("%s < %s > %s", cmd, fx->raw_path, out_path), 0);
    size_t len = 0;
    cleanup_free char *data = read_fixture(out_path, &len);
    assert_int_equal(mvm_compress_detect(data, len), fmt);
    expect_decompress(fmt, data, len, fx->raw, SMALL_LEN);

    /* What a kernel image appends (its size), and for the formats with an
     * end marker, any junk at all.  lz4 legacy has none: like the kernel,
     * it stops only at the end, a zero word, or one trailing word. */
    size_t extra = fmt == MVM_FMT_LZ4_LEGACY ? 4 : 64;
    cleanup_free char *trailing = xmalloc(len + extra);
    memcpy(trailing, data, len);
    memset(trailing + len, 0xa5, extra);
    expect_decompress(fmt, trailing, len + extra, fx->raw, SMALL_LEN);

    expect_failure(fmt, data, len, SMALL_LEN - 1, "larger than");
    const char *prefix = fmt == MVM_FMT_LZ4_LEGACY ? "lz4: " : mvm_compress_name(fmt);
    expect_failure(fmt, data, len / 2, SMALL_LEN, prefix);
}

static void test_gzip(void **state)
{
    check_cli_format(*state, "gzip -c -6", MVM_FMT_GZIP);
}

static void test_xz(void **state)
{
    /* The flags the kernel's build uses for vmlinuz and modules. */
    check_cli_format(*state, "xz -c --check=crc32 --x86 --lzma2=dict=1MiB", MVM_FMT_XZ);
    check_cli_format(*state, "xz -c", MVM_FMT_XZ);
}

static void test_zstd(void **state)
{
    check_cli_format(*state, "zstd -q -c -19", MVM_FMT_ZSTD);
}

static void test_lz4_cli_legacy(void **state)
{
    check_cli_format(*state, "lz4 -q -l -c -9", MVM_FMT_LZ4_LEGACY);
}

static void test_corrupt(void **state)
{
    struct fixture *fx = *state;
    static const char junk[] = "\x1f\x8b\x08\x00 this is not deflate data at all.......";
    expect_failure(MVM_FMT_GZIP, junk, sizeof junk, 1024, "gzip");
    static const char xz_junk[] = "\xfd"
                                  "7zXZ\x00\x00 this is not xz";
    expect_failure(MVM_FMT_XZ, xz_junk, sizeof xz_junk, 1024, "xz");
    static const char zstd_junk[] = "\x28\xb5\x2f\xfd this is not a zstd frame";
    expect_failure(MVM_FMT_ZSTD, zstd_junk, sizeof zstd_junk, 1024, "zstd");
    static const char lz4_junk[] =
        "\x02\x21\x4c\x18\x08\x00\x00\x00\xff\xff\xff\xff\xff\xff\xff\xff";
    expect_failure(MVM_FMT_LZ4_LEGACY, lz4_junk, sizeof lz4_junk - 1, 1024, "lz4");
    static const char lz4_huge[] = "\x02\x21\x4c\x18\xff\xff\xff\x7f"
                                   "abcd";
    expect_failure(MVM_FMT_LZ4_LEGACY, lz4_huge, sizeof lz4_huge - 1, 1024, "lz4");
    expect_failure(MVM_FMT_LZ4_LEGACY, "abcd", 4, 1024, "not a legacy lz4");
    expect_failure(MVM_FMT_UNKNOWN, "BZh9", 4, 1024, "unsupported");
    expect_failure(MVM_FMT_NONE, fx->raw, 100, 99, "larger than");
    expect_decompress(MVM_FMT_NONE, fx->raw, 100, fx->raw, 100);
}

static void lz4_round_trip(struct fixture *fx, const char *data, size_t len)
{
    struct buf c = {0};
    cleanup_error struct mvm_error *err = NULL;
    assert_no_error(mvm_lz4_legacy_compress(data, len, &c, &err), err);
    assert_int_equal(mvm_compress_detect(c.data, c.len), MVM_FMT_LZ4_LEGACY);
    assert_true(len < 1024 || c.len < len); /* it did compress */
    expect_decompress(MVM_FMT_LZ4_LEGACY, c.data, c.len, data, len);

    /* The reference reader. */
    cleanup_free char *in = xasprintf("%s/legacy.lz4", fx->dir);
    cleanup_free char *out = xasprintf("%s/legacy.out", fx->dir);
    write_fixture(in, c.data, c.len, 0644);
    assert_int_equal(run_sh("lz4 -q -dc < %s > %s", in, out), 0);
    size_t got_len = 0;
    cleanup_free char *got = read_fixture(out, &got_len);
    assert_int_equal(got_len, len);
    assert_memory_equal(got, data, len);

    /* A zero word after the stream ends it, as in the kernel's unlz4. */
    buf_append(&c,
               "\0\0\0\0"
               "070701",
               10);
    expect_decompress(MVM_FMT_LZ4_LEGACY, c.data, c.len, data, len);
    buf_free(&c);
}

static void test_lz4_legacy_writer(void **state)
{
    struct fixture *fx = *state;
    lz4_round_trip(fx, fx->raw, SMALL_LEN);
    lz4_round_trip(fx, "x", 1);
    cleanup_free char *large = xmalloc(LARGE_LEN);
    fill_test_data(large, LARGE_LEN, 7);
    lz4_round_trip(fx, large, LARGE_LEN);

    /* Blocks hold 8 MiB of input each: the third block's size word sits
     * right after the first two. */
    struct buf c = {0};
    cleanup_error struct mvm_error *err = NULL;
    assert_no_error(mvm_lz4_legacy_compress(large, LARGE_LEN, &c, &err), err);
    size_t pos = 4, blocks = 0;
    while (pos + 4 <= c.len) {
        const unsigned char *p = (const unsigned char *)c.data + pos;
        uint32_t n =
            (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
        pos += 4 + n;
        blocks++;
    }
    assert_int_equal(pos, c.len);
    assert_int_equal(blocks, 3);
    /* The limit holds across blocks too. */
    expect_failure(MVM_FMT_LZ4_LEGACY, c.data, c.len, LARGE_LEN - 1, "larger than");
    buf_free(&c);
}

static void test_lz4_empty(void **state)
{
    (void)state;
    struct buf c = {0};
    cleanup_error struct mvm_error *err = NULL;
    assert_no_error(mvm_lz4_legacy_compress("", 0, &c, &err), err);
    assert_int_equal(c.len, 4);
    struct buf out = {0};
    assert_no_error(mvm_decompress(MVM_FMT_LZ4_LEGACY, c.data, c.len, 10, &out, &err), err);
    assert_int_equal(out.len, 0);
    buf_free(&out);
    buf_free(&c);
}

int main(void)
{
    static const char *const tools[] = {"gzip", "xz", "zstd", "lz4", NULL};
    require_tools(tools);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_detect),
        cmocka_unit_test_setup_teardown(test_gzip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_xz, setup, teardown),
        cmocka_unit_test_setup_teardown(test_zstd, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lz4_cli_legacy, setup, teardown),
        cmocka_unit_test_setup_teardown(test_corrupt, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lz4_legacy_writer, setup, teardown),
        cmocka_unit_test(test_lz4_empty),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
