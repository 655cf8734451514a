/* Unit tests for proto.c: frames built with mvm_proto_header() must come
 * out of the decoder unchanged however the bytes are split; every kind of
 * malformed frame is refused; memory stays within the decoder's buffer. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "proto.h"
#include "util.h"

/* Appends one frame to b. */
static void put_frame(struct buf *b, uint8_t type, uint16_t stream, const void *payload, size_t len)
{
    uint8_t hdr[MVM_PROTO_HEADER];
    mvm_proto_header(hdr, type, stream, (uint32_t)len);
    buf_append(b, hdr, sizeof hdr);
    buf_append(b, payload, len);
}

static void put_u32_frame(struct buf *b, uint8_t type, uint32_t v)
{
    uint8_t p[4];
    mvm_put_u32(p, v);
    put_frame(b, type, MVM_PROTO_MAIN_STREAM, p, 4);
}

/* What a decoded frame must look like. */
struct want {
    uint8_t type;
    uint16_t stream;
    const void *payload;
    uint32_t len;
};

/* Feeds data in chunks of the given sizes (cycled; 0 = all at once) and
 * checks that exactly the wanted frames come out, in order. */
static void decode_split(const struct buf *b, const size_t *chunks, size_t nchunks,
                         const struct want *want, size_t nwant)
{
    static struct mvm_proto_decoder d; /* 64 KiB: not on the stack */
    size_t got = 0, at = 0, ci = 0;

    mvm_proto_decoder_init(&d);
    while (at < b->len || got < nwant) {
        size_t n = b->len - at;
        if (nchunks > 0 && chunks[ci % nchunks] < n)
            n = chunks[ci % nchunks];
        ci++;
        size_t space = mvm_proto_space(&d);
        if (n > space)
            n = space;
        size_t took = mvm_proto_feed(&d, b->data + at, n);
        assert_int_equal(took, n);
        at += n;

        struct mvm_proto_frame f;
        const char *why = NULL;
        enum mvm_proto_status st;
        while ((st = mvm_proto_next(&d, &f, &why)) == MVM_PROTO_FRAME) {
            if (got == nwant)
                fail_msg("an extra frame of type %u came out", f.type);
            assert_int_equal(f.type, want[got].type);
            assert_int_equal(f.stream, want[got].stream);
            assert_int_equal(f.len, want[got].len);
            if (f.len > 0)
                assert_memory_equal(f.payload, want[got].payload, f.len);
            got++;
        }
        if (st == MVM_PROTO_BAD)
            fail_msg("valid stream refused: %s", why ? why : "(no reason)");
        if (n == 0 && at == b->len && got < nwant)
            fail_msg("only %zu of %zu frames came out", got, nwant);
    }
    assert_int_equal(got, nwant);
}

/* One frame of every type, as the host and mvm-init send them. */
static void all_types(struct buf *b, struct want *w, size_t *nw)
{
    static const char arg[] = "ls";
    static const char env[] = "TERM=xterm-256color";
    static const uint8_t start[5] = {1, 24, 0, 80, 0};
    static const char in[] = "stdin data\n";
    static const uint8_t winsize[4] = {50, 0, 132, 0};
    static const uint8_t sig[4] = {SIGINT, 0, 0, 0};
    static const uint8_t credit[4] = {0, 0x80, 0, 0};
    static const uint8_t ready[4] = {MVM_PROTO_VERSION, 0, 0, 0};
    static const char out[] = "hello\r\n";
    static const char errb[] = "oops\n";
    static const uint8_t exitst[4] = {42, 0, 0, 0};
    static const char error[] = "\x7f\0\0\0command not found: nope";
    static const struct want all[] = {
        {MVM_MSG_ARG, 1, arg, sizeof arg - 1},
        {MVM_MSG_ARG, 1, "", 0},
        {MVM_MSG_ENV, 1, env, sizeof env - 1},
        {MVM_MSG_ENV, 1, "=", 1},
        {MVM_MSG_START, 1, start, sizeof start},
        {MVM_MSG_STDIN, 1, in, sizeof in - 1},
        {MVM_MSG_STDIN, 1, "", 0},
        {MVM_MSG_WINSIZE, 1, winsize, sizeof winsize},
        {MVM_MSG_SIGNAL, 1, sig, sizeof sig},
        {MVM_MSG_SHUTDOWN, 1, "", 0},
        {MVM_MSG_ATTACH, 1, "", 0},
        {MVM_MSG_CREDIT_OUT, 1, credit, sizeof credit},
        {MVM_MSG_READY, 0, ready, sizeof ready},
        {MVM_MSG_STDOUT, 1, out, sizeof out - 1},
        {MVM_MSG_STDERR, 0xfffe, errb, sizeof errb - 1},
        {MVM_MSG_EXIT, 1, exitst, sizeof exitst},
        {MVM_MSG_ERROR, 1, error, sizeof error - 1},
        {MVM_MSG_ERROR, 7, "\0\0\0\0", 4},
        {MVM_MSG_CREDIT_IN, 0xffff, credit, sizeof credit},
    };
    for (size_t i = 0; i < ARRAY_SIZE(all); i++) {
        put_frame(b, all[i].type, all[i].stream, all[i].payload, all[i].len);
        w[i] = all[i];
    }
    *nw = ARRAY_SIZE(all);
}

static void test_header_layout(void **state)
{
    uint8_t h[MVM_PROTO_HEADER];
    mvm_proto_header(h, MVM_MSG_STDOUT, 0x1234, 0xa1b2c3d4);
    static const uint8_t want[] = {33, 0, 0x34, 0x12, 0xd4, 0xc3, 0xb2, 0xa1};
    assert_memory_equal(h, want, sizeof want);
    assert_int_equal(mvm_get_u16(h + 2), 0x1234);
    assert_int_equal(mvm_get_u32(h + 4), 0xa1b2c3d4);
}

static void test_every_type_whole(void **state)
{
    struct buf b = {0};
    struct want w[32];
    size_t nw;
    all_types(&b, w, &nw);
    decode_split(&b, NULL, 0, w, nw);
    buf_free(&b);
}

static void test_every_type_byte_by_byte(void **state)
{
    struct buf b = {0};
    struct want w[32];
    size_t nw;
    all_types(&b, w, &nw);
    static const size_t one[] = {1};
    decode_split(&b, one, 1, w, nw);
    buf_free(&b);
}

static void test_every_split_point(void **state)
{
    struct buf b = {0};
    struct want w[32];
    size_t nw;
    all_types(&b, w, &nw);
    /* Two feeds, cut at every position. */
    for (size_t cut = 1; cut < b.len; cut++) {
        size_t chunks[] = {cut, b.len};
        decode_split(&b, chunks, 2, w, nw);
    }
    buf_free(&b);
}

static void test_random_chunks(void **state)
{
    struct buf b = {0};
    struct want w[32];
    size_t nw;
    all_types(&b, w, &nw);
    srand(12345);
    for (int round = 0; round < 200; round++) {
        size_t chunks[16];
        for (size_t i = 0; i < ARRAY_SIZE(chunks); i++)
            chunks[i] = 1 + (size_t)rand() % 40;
        decode_split(&b, chunks, ARRAY_SIZE(chunks), w, nw);
    }
    buf_free(&b);
}

static void test_max_payload(void **state)
{
    struct buf b = {0};
    uint8_t *big = xmalloc(MVM_PROTO_MAX_PAYLOAD);
    for (size_t i = 0; i < MVM_PROTO_MAX_PAYLOAD; i++)
        big[i] = (uint8_t)(i * 7 + 3);
    put_frame(&b, MVM_MSG_STDOUT, 1, big, MVM_PROTO_MAX_PAYLOAD);
    put_frame(&b, MVM_MSG_STDERR, 1, big + 1, MVM_PROTO_MAX_PAYLOAD - 1);
    put_frame(&b, MVM_MSG_STDIN, 1, big, MVM_PROTO_MAX_PAYLOAD);
    const struct want w[] = {
        {MVM_MSG_STDOUT, 1, big, MVM_PROTO_MAX_PAYLOAD},
        {MVM_MSG_STDERR, 1, big + 1, MVM_PROTO_MAX_PAYLOAD - 1},
        {MVM_MSG_STDIN, 1, big, MVM_PROTO_MAX_PAYLOAD},
    };
    decode_split(&b, NULL, 0, w, ARRAY_SIZE(w));
    static const size_t odd[] = {4093, 1, 65536, 7};
    decode_split(&b, odd, ARRAY_SIZE(odd), w, ARRAY_SIZE(w));
    free(big);
    buf_free(&b);
}

/* The bytes must be refused once complete, and not before they could be
 * judged; *why names the reason. */
static void expect_bad(const void *data, size_t len, const char *why_part)
{
    static struct mvm_proto_decoder d;
    struct mvm_proto_frame f;
    const char *why = NULL;

    mvm_proto_decoder_init(&d);
    assert_int_equal(mvm_proto_feed(&d, data, len), len);
    enum mvm_proto_status st = mvm_proto_next(&d, &f, &why);
    if (st != MVM_PROTO_BAD)
        fail_msg("expected BAD (%s), got %d", why_part, st);
    assert_non_null(why);
    if (strstr(why, why_part) == NULL)
        fail_msg("reason \"%s\" does not contain \"%s\"", why, why_part);
    /* Still BAD when asked again: the caller may not loop forever. */
    assert_int_equal(mvm_proto_next(&d, &f, &why), MVM_PROTO_BAD);
}

static void expect_bad_frame(uint8_t type, const void *payload, size_t len, const char *why_part)
{
    struct buf b = {0};
    put_frame(&b, type, 1, payload, len);
    expect_bad(b.data, b.len, why_part);
    buf_free(&b);
}

static void test_bad_header(void **state)
{
    uint8_t h[MVM_PROTO_HEADER];

    /* Oversize: refused from the header alone, without waiting for 64 KiB. */
    mvm_proto_header(h, MVM_MSG_STDOUT, 1, MVM_PROTO_MAX_PAYLOAD + 1);
    expect_bad(h, sizeof h, "larger");
    mvm_proto_header(h, MVM_MSG_STDOUT, 1, 0xffffffff);
    expect_bad(h, sizeof h, "larger");

    mvm_proto_header(h, MVM_MSG_SHUTDOWN, 1, 0);
    h[1] = 1;
    expect_bad(h, sizeof h, "reserved");
    h[1] = 0x80;
    expect_bad(h, sizeof h, "reserved");

    static const uint8_t unknown[] = {0, 10, 31, 38, 200, 255};
    for (size_t i = 0; i < ARRAY_SIZE(unknown); i++)
        expect_bad_frame(unknown[i], "", 0, "unknown message type");
    expect_bad_frame(99, "abc", 3, "unknown message type");
}

static void test_bad_sizes(void **state)
{
    static const uint8_t z[8] = {0};
    expect_bad_frame(MVM_MSG_WINSIZE, z, 3, "wrong payload size");
    expect_bad_frame(MVM_MSG_WINSIZE, z, 5, "wrong payload size");
    expect_bad_frame(MVM_MSG_START, z, 4, "wrong payload size");
    expect_bad_frame(MVM_MSG_START, z, 6, "wrong payload size");
    expect_bad_frame(MVM_MSG_SIGNAL, z, 2, "wrong payload size");
    expect_bad_frame(MVM_MSG_SHUTDOWN, z, 1, "wrong payload size");
    expect_bad_frame(MVM_MSG_ATTACH, z, 1, "wrong payload size");
    expect_bad_frame(MVM_MSG_CREDIT_OUT, z, 8, "wrong payload size");
    expect_bad_frame(MVM_MSG_READY, z, 0, "wrong payload size");
    expect_bad_frame(MVM_MSG_EXIT, z, 1, "wrong payload size");
    expect_bad_frame(MVM_MSG_CREDIT_IN, z, 3, "wrong payload size");
    expect_bad_frame(MVM_MSG_ERROR, z, 0, "too short");
    expect_bad_frame(MVM_MSG_ERROR, z, 3, "too short");
}

static void test_bad_strings(void **state)
{
    expect_bad_frame(MVM_MSG_ENV, "PATH", 4, "without '='");
    expect_bad_frame(MVM_MSG_ENV, "", 0, "without '='");
    expect_bad_frame(MVM_MSG_ENV, "A=b\0c", 5, "NUL");
    expect_bad_frame(MVM_MSG_ARG, "a\0b", 3, "NUL");
    expect_bad_frame(MVM_MSG_ARG, "\0", 1, "NUL");
}

/* Frames before a bad one still come out; then BAD. */
static void test_good_then_bad(void **state)
{
    static struct mvm_proto_decoder d;
    struct buf b = {0};
    struct mvm_proto_frame f;
    const char *why = NULL;

    put_frame(&b, MVM_MSG_STDOUT, 1, "ab", 2);
    put_u32_frame(&b, MVM_MSG_EXIT, 3);
    put_frame(&b, MVM_MSG_WINSIZE, 1, "xyz", 3);
    mvm_proto_decoder_init(&d);
    assert_int_equal(mvm_proto_feed(&d, b.data, b.len), b.len);
    assert_int_equal(mvm_proto_next(&d, &f, &why), MVM_PROTO_FRAME);
    assert_int_equal(f.type, MVM_MSG_STDOUT);
    assert_memory_equal(f.payload, "ab", 2);
    assert_int_equal(mvm_proto_next(&d, &f, &why), MVM_PROTO_FRAME);
    assert_int_equal(f.type, MVM_MSG_EXIT);
    assert_int_equal(mvm_get_u32(f.payload), 3);
    assert_int_equal(mvm_proto_next(&d, &f, &why), MVM_PROTO_BAD);
    assert_string_equal(why, "wrong payload size for message type");
    buf_free(&b);
}

static void test_need_more(void **state)
{
    static struct mvm_proto_decoder d;
    struct buf b = {0};
    struct mvm_proto_frame f;
    const char *why = NULL;

    put_frame(&b, MVM_MSG_STDOUT, 1, "hello", 5);
    mvm_proto_decoder_init(&d);
    assert_int_equal(mvm_proto_next(&d, &f, &why), MVM_PROTO_NEED_MORE);
    for (size_t i = 0; i < b.len - 1; i++) {
        assert_int_equal(mvm_proto_feed(&d, b.data + i, 1), 1);
        assert_int_equal(mvm_proto_next(&d, &f, &why), MVM_PROTO_NEED_MORE);
    }
    assert_int_equal(mvm_proto_feed(&d, b.data + b.len - 1, 1), 1);
    assert_int_equal(mvm_proto_next(&d, &f, &why), MVM_PROTO_FRAME);
    assert_int_equal(f.len, 5);
    assert_memory_equal(f.payload, "hello", 5);
    assert_int_equal(mvm_proto_next(&d, &f, &why), MVM_PROTO_NEED_MORE);
    buf_free(&b);
}

static void test_space_bounded(void **state)
{
    static struct mvm_proto_decoder d;
    const size_t cap = MVM_PROTO_HEADER + MVM_PROTO_MAX_PAYLOAD;
    struct buf b = {0};
    struct mvm_proto_frame f;
    const char *why = NULL;
    uint8_t *payload = xcalloc(1, MVM_PROTO_MAX_PAYLOAD);

    memset(payload, 'x', MVM_PROTO_MAX_PAYLOAD);
    put_frame(&b, MVM_MSG_STDOUT, 1, payload, MVM_PROTO_MAX_PAYLOAD);
    put_frame(&b, MVM_MSG_STDERR, 1, "tail", 4);

    mvm_proto_decoder_init(&d);
    assert_int_equal(mvm_proto_space(&d), cap);
    /* Offered everything: takes one maximal frame's worth, not a byte more. */
    assert_int_equal(mvm_proto_feed(&d, b.data, b.len), cap);
    assert_int_equal(mvm_proto_space(&d), 0);
    assert_int_equal(mvm_proto_feed(&d, b.data + cap, b.len - cap), 0);
    assert_int_equal(d.len, cap);

    assert_int_equal(mvm_proto_next(&d, &f, &why), MVM_PROTO_FRAME);
    assert_int_equal(f.type, MVM_MSG_STDOUT);
    assert_int_equal(f.len, MVM_PROTO_MAX_PAYLOAD);
    /* The frame handed out is consumed: its room is free again. */
    assert_int_equal(mvm_proto_space(&d), cap);
    assert_int_equal(mvm_proto_feed(&d, b.data + cap, b.len - cap), b.len - cap);
    assert_int_equal(mvm_proto_space(&d), cap - (b.len - cap));
    assert_int_equal(mvm_proto_next(&d, &f, &why), MVM_PROTO_FRAME);
    assert_int_equal(f.type, MVM_MSG_STDERR);
    assert_memory_equal(f.payload, "tail", 4);
    assert_int_equal(mvm_proto_next(&d, &f, &why), MVM_PROTO_NEED_MORE);
    assert_int_equal(mvm_proto_space(&d), cap);

    /* Partly filled: feed() takes exactly the space left. */
    mvm_proto_decoder_init(&d);
    assert_int_equal(mvm_proto_feed(&d, b.data, 100), 100);
    assert_int_equal(mvm_proto_space(&d), cap - 100);
    assert_int_equal(mvm_proto_feed(&d, b.data + 100, b.len - 100), cap - 100);
    assert_int_equal(mvm_proto_space(&d), 0);
    free(payload);
    buf_free(&b);
}

static void test_many_small_frames(void **state)
{
    /* More frames than fit in the buffer at once, fed in chunks so
     * feed()/next() have to interleave. */
    struct buf b = {0};
    struct want *w = xcalloc(20000, sizeof *w);
    char *texts = xcalloc(20000, 8);
    for (size_t i = 0; i < 20000; i++) {
        char *t = texts + 8 * i;
        int n = snprintf(t, 8, "%zu", i);
        put_frame(&b, i % 2 ? MVM_MSG_STDOUT : MVM_MSG_STDERR, (uint16_t)i, t, (size_t)n);
        w[i] = (struct want){i % 2 ? MVM_MSG_STDOUT : MVM_MSG_STDERR, (uint16_t)i, t, (uint32_t)n};
    }
    assert_true(b.len > MVM_PROTO_HEADER + MVM_PROTO_MAX_PAYLOAD);
    static const size_t chunks[] = {30000, 1, 9, 70000};
    decode_split(&b, chunks, ARRAY_SIZE(chunks), w, 20000);
    free(texts);
    free(w);
    buf_free(&b);
}

static int status_of_child(int how)
{
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        if (how < 0) {
            signal(-how, SIG_DFL);
            raise(-how);
            pause();
        }
        _exit(how);
    }
    int ws;
    assert_int_equal(waitpid(pid, &ws, 0), pid);
    return ws;
}

static void test_status_from_wait(void **state)
{
    assert_int_equal(mvm_proto_status_from_wait(status_of_child(0)), 0);
    assert_int_equal(mvm_proto_status_from_wait(status_of_child(42)), 42);
    assert_int_equal(mvm_proto_status_from_wait(status_of_child(255)), 255);
    assert_int_equal(mvm_proto_status_from_wait(status_of_child(-SIGKILL)), 128 + SIGKILL);
    assert_int_equal(mvm_proto_status_from_wait(status_of_child(-SIGTERM)), 128 + SIGTERM);

    /* A child killed from outside, as the guest's init sees it. */
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        for (;;)
            pause();
    }
    assert_int_equal(kill(pid, SIGUSR1), 0);
    int ws;
    assert_int_equal(waitpid(pid, &ws, 0), pid);
    assert_int_equal(mvm_proto_status_from_wait(ws), 128 + SIGUSR1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_header_layout),
        cmocka_unit_test(test_every_type_whole),
        cmocka_unit_test(test_every_type_byte_by_byte),
        cmocka_unit_test(test_every_split_point),
        cmocka_unit_test(test_random_chunks),
        cmocka_unit_test(test_max_payload),
        cmocka_unit_test(test_bad_header),
        cmocka_unit_test(test_bad_sizes),
        cmocka_unit_test(test_bad_strings),
        cmocka_unit_test(test_good_then_bad),
        cmocka_unit_test(test_need_more),
        cmocka_unit_test(test_space_bounded),
        cmocka_unit_test(test_many_small_frames),
        cmocka_unit_test(test_status_from_wait),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
