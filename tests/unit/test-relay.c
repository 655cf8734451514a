/* Unit tests for relay.c with real fds: the test plays mvm-init on the
 * far end of a socketpair (the control channel) and the user on the far
 * ends of three pipes (stdin, stdout, stderr).  Every byte that reaches
 * the guest or the user is recorded, so the tests check exact contents,
 * frame order and the credit arithmetic, not just that nothing crashed. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "proto.h"
#include "relay.h"
#include "util.h"

#define WINDOW MVM_PROTO_WINDOW
#define OSC52  "\x1b]52;c;aGk=\x07" /* sets the clipboard to "hi" */

struct frame {
    uint8_t type;
    uint16_t stream;
    uint32_t len;
    uint8_t *data;
};

struct fx {
    struct mvm_relay r;
    int ctl, peer;        /* relay's end, guest's end */
    int in_r, in_w;       /* stdin: the relay reads in_r */
    int out_r, out_w;     /* stdout: the relay writes out_w */
    int err_r, err_w;     /* stderr */
    struct buf stdin_src; /* what the user still types */
    size_t stdin_src_off;
    bool stdin_close;        /* close in_w once stdin_src is written */
    bool read_out, read_err; /* whether the user reads the pipes */
    struct buf out, err;     /* what reached the user */

    struct mvm_proto_decoder dec; /* what reached the guest */
    struct frame *frames;
    size_t nframes;
    struct buf stdin_got; /* STDIN payloads, concatenated */
    size_t stdin_frames, stdin_eofs;
    uint64_t credit_out;
    size_t signals;
    uint32_t last_signal;

    bool failed; /* mvm_relay_handle returned -1 */
    struct mvm_error *error;
};

static void set_nonblock(int fd)
{
    int fl = fcntl(fd, F_GETFL);
    assert_true(fl >= 0);
    assert_int_equal(fcntl(fd, F_SETFL, fl | O_NONBLOCK), 0);
}

static void close_fd(int *fd)
{
    if (*fd >= 0)
        close(*fd);
    *fd = -1;
}

static struct fx *fx_new(bool tty)
{
    struct fx *fx = xcalloc(1, sizeof *fx);
    int sv[2], p[2];

    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    fx->ctl = sv[0];
    fx->peer = sv[1];
    assert_int_equal(pipe2(p, O_CLOEXEC), 0);
    fx->in_r = p[0];
    fx->in_w = p[1];
    assert_int_equal(pipe2(p, O_CLOEXEC), 0);
    fx->out_r = p[0];
    fx->out_w = p[1];
    assert_int_equal(pipe2(p, O_CLOEXEC), 0);
    fx->err_r = p[0];
    fx->err_w = p[1];
    /* The relay's fds are non-blocking in mvm (loop.c); so are the
     * test's, so that nothing here can hang. */
    int all[] = {fx->ctl, fx->peer, fx->in_r, fx->in_w, fx->out_r, fx->out_w, fx->err_r, fx->err_w};
    for (size_t i = 0; i < ARRAY_SIZE(all); i++)
        set_nonblock(all[i]);
    fx->read_out = fx->read_err = true;
    mvm_proto_decoder_init(&fx->dec);
    mvm_relay_init(&fx->r, fx->ctl, fx->in_r, fx->out_w, fx->err_w, tty);
    return fx;
}

static int setup(void **state)
{
    *state = fx_new(false);
    return 0;
}

static int setup_tty(void **state)
{
    *state = fx_new(true);
    return 0;
}

static int teardown(void **state)
{
    struct fx *fx = *state;
    mvm_relay_clear(&fx->r);
    int *fds[] = {&fx->ctl,   &fx->peer,  &fx->in_r,  &fx->in_w,
                  &fx->out_r, &fx->out_w, &fx->err_r, &fx->err_w};
    for (size_t i = 0; i < ARRAY_SIZE(fds); i++)
        close_fd(fds[i]);
    for (size_t i = 0; i < fx->nframes; i++)
        free(fx->frames[i].data);
    free(fx->frames);
    buf_free(&fx->stdin_src);
    buf_free(&fx->out);
    buf_free(&fx->err);
    buf_free(&fx->stdin_got);
    mvm_error_free(fx->error);
    free(fx);
    return 0;
}

/* ---- the guest's end -------------------------------------------------- */

static void record(struct fx *fx, const struct mvm_proto_frame *f)
{
    fx->frames = xrealloc(fx->frames, (fx->nframes + 1) * sizeof *fx->frames);
    struct frame *c = &fx->frames[fx->nframes++];
    c->type = f->type;
    c->stream = f->stream;
    c->len = f->len;
    c->data = xmalloc(f->len + 1);
    memcpy(c->data, f->payload, f->len);
    c->data[f->len] = '\0';

    assert_int_equal(f->stream, MVM_PROTO_MAIN_STREAM);
    switch (f->type) {
    case MVM_MSG_STDIN:
        if (f->len == 0)
            fx->stdin_eofs++;
        else
            fx->stdin_frames++;
        if (fx->stdin_eofs > 0 && f->len > 0)
            fail_msg("stdin data after EOF");
        buf_append(&fx->stdin_got, f->payload, f->len);
        break;
    case MVM_MSG_CREDIT_OUT:
        fx->credit_out += mvm_get_u32(f->payload);
        break;
    case MVM_MSG_SIGNAL:
        fx->signals++;
        fx->last_signal = mvm_get_u32(f->payload);
        break;
    default:
        break;
    }
}

/* Reads and decodes whatever the relay sent the guest. */
static void guest_receive(struct fx *fx)
{
    while (fx->peer >= 0) {
        uint8_t buf[65536];
        size_t room = mvm_proto_space(&fx->dec);
        ssize_t n = read(fx->peer, buf, room < sizeof buf ? room : sizeof buf);
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
            return;
        assert_true(n >= 0);
        if (n == 0)
            return;
        assert_int_equal(mvm_proto_feed(&fx->dec, buf, (size_t)n), n);
        struct mvm_proto_frame f;
        const char *why = NULL;
        enum mvm_proto_status st;
        while ((st = mvm_proto_next(&fx->dec, &f, &why)) == MVM_PROTO_FRAME)
            record(fx, &f);
        if (st == MVM_PROTO_BAD)
            fail_msg("the relay sent a bad frame: %s", why);
    }
}

/* ---- the user's end --------------------------------------------------- */

static void user_type(struct fx *fx)
{
    while (fx->in_w >= 0 && fx->stdin_src_off < fx->stdin_src.len) {
        ssize_t n = write(fx->in_w, fx->stdin_src.data + fx->stdin_src_off,
                          fx->stdin_src.len - fx->stdin_src_off);
        if (n < 0 && errno == EAGAIN)
            return;
        assert_true(n > 0);
        fx->stdin_src_off += (size_t)n;
    }
    if (fx->stdin_close && fx->stdin_src_off == fx->stdin_src.len)
        close_fd(&fx->in_w);
}

static void drain(int fd, struct buf *b)
{
    for (;;) {
        char buf[65536];
        ssize_t n = read(fd, buf, sizeof buf);
        if (n <= 0)
            return;
        buf_append(b, buf, (size_t)n);
    }
}

/* ---- the loop --------------------------------------------------------- */

/* One round of mvm's event loop plus both far ends.  -1 once the relay
 * gave up (fx->error says why); it is not called again after that. */
static int pump_once(struct fx *fx, int timeout_ms)
{
    struct pollfd p[4];

    if (fx->failed)
        return -1;
    user_type(fx);
    int n = mvm_relay_pollfds(&fx->r, p, 0);
    assert_in_range(n, 0, 4);
    if (poll(p, (nfds_t)n, timeout_ms) < 0 && errno != EINTR)
        fail_msg("poll: %s", strerror(errno));
    if (mvm_relay_handle(&fx->r, p, &fx->error) < 0) {
        assert_non_null(fx->error);
        fx->failed = true;
    }
    guest_receive(fx);
    if (fx->read_out && fx->out_r >= 0)
        drain(fx->out_r, &fx->out);
    if (fx->read_err && fx->err_r >= 0)
        drain(fx->err_r, &fx->err);
    return fx->failed ? -1 : 0;
}

#define PUMP_UNTIL(fx, cond)                                                          \
    do {                                                                              \
        uint64_t end_ = now_ns() + 5000000000ULL;                                     \
        while (!(cond)) {                                                             \
            if (pump_once(fx, 5) < 0 && !(cond))                                      \
                fail_msg("relay failed waiting for %s: %s", #cond, (fx)->error->msg); \
            if (now_ns() > end_)                                                      \
                fail_msg("timed out waiting for %s", #cond);                          \
        }                                                                             \
    } while (0)

/* Runs the loop for a while: for checking that nothing (more) happens. */
static void pump_idle(struct fx *fx, int ms)
{
    uint64_t end = now_ns() + (uint64_t)ms * 1000000ULL;
    while (now_ns() < end)
        if (pump_once(fx, 5) < 0)
            fail_msg("relay failed: %s", fx->error->msg);
}

/* Sends one frame as mvm-init would, running the loop while the socket
 * is full. */
static void guest_send_raw(struct fx *fx, const void *data, size_t len)
{
    const char *p = data;
    uint64_t end = now_ns() + 5000000000ULL;
    while (len > 0 && !fx->failed) {
        ssize_t n = send(fx->peer, p, len, MSG_NOSIGNAL);
        if (n > 0) {
            p += n;
            len -= (size_t)n;
            continue;
        }
        if (n < 0 && errno != EAGAIN && errno != EINTR)
            fail_msg("sending to the relay: %s", strerror(errno));
        pump_once(fx, 5);
        if (now_ns() > end)
            fail_msg("the relay stopped reading the control socket");
    }
}

static void guest_send(struct fx *fx, uint8_t type, const void *payload, size_t len)
{
    uint8_t hdr[MVM_PROTO_HEADER];
    mvm_proto_header(hdr, type, MVM_PROTO_MAIN_STREAM, (uint32_t)len);
    guest_send_raw(fx, hdr, sizeof hdr);
    guest_send_raw(fx, payload, len);
}

static void guest_send_u32(struct fx *fx, uint8_t type, uint32_t v)
{
    uint8_t p[4];
    mvm_put_u32(p, v);
    guest_send(fx, type, p, 4);
}
#define GUEST_SEND_STR(fx, type, s) guest_send(fx, type, s, sizeof s - 1)

static void assert_frame(const struct fx *fx, size_t i, uint8_t type, const void *payload,
                         size_t len)
{
    if (i >= fx->nframes)
        fail_msg("frame %zu never came (%zu frames)", i, fx->nframes);
    assert_int_equal(fx->frames[i].type, type);
    assert_int_equal(fx->frames[i].len, len);
    if (len > 0)
        assert_memory_equal(fx->frames[i].data, payload, len);
}

static size_t count_frames(const struct fx *fx, uint8_t type)
{
    size_t n = 0;
    for (size_t i = 0; i < fx->nframes; i++)
        n += fx->frames[i].type == type;
    return n;
}

static void assert_error_contains(const struct mvm_error *err, const char *needle)
{
    if (err == NULL)
        fail_msg("expected an error containing \"%s\", got none", needle);
    if (strstr(err->msg, needle) == NULL)
        fail_msg("error \"%s\" does not contain \"%s\"", err->msg, needle);
}

/* Fills the stdout pipe so the relay's writes get EAGAIN; returns how
 * much the filler took. */
static size_t fill_pipe(int fd)
{
    static const char junk[4096] = {0};
    size_t total = 0;
    for (;;) {
        ssize_t n = write(fd, junk, sizeof junk);
        if (n < 0 && errno == EAGAIN) {
            /* the last page may still take a few bytes */
            while (write(fd, junk, 1) == 1)
                total++;
            return total;
        }
        assert_true(n > 0);
        total += (size_t)n;
    }
}

/* ---- host -> guest ---------------------------------------------------- */

static void test_start_frames(void **state)
{
    struct fx *fx = *state;
    char *argv[] = {"ls", "-l", "/tmp dir", ""};
    char *env[] = {"TERM=xterm", "A=", "LANG=C.UTF-8"};

    mvm_relay_start(&fx->r, argv, 4, env, 3, MVM_START_TTY, 24, 300);
    mvm_relay_winsize(&fx->r, 50, 132);
    mvm_relay_signal(&fx->r, SIGINT);
    PUMP_UNTIL(fx, fx->nframes == 10);
    assert_frame(fx, 0, MVM_MSG_ARG, "ls", 2);
    assert_frame(fx, 1, MVM_MSG_ARG, "-l", 2);
    assert_frame(fx, 2, MVM_MSG_ARG, "/tmp dir", 8);
    assert_frame(fx, 3, MVM_MSG_ARG, "", 0);
    assert_frame(fx, 4, MVM_MSG_ENV, "TERM=xterm", 10);
    assert_frame(fx, 5, MVM_MSG_ENV, "A=", 2);
    assert_frame(fx, 6, MVM_MSG_ENV, "LANG=C.UTF-8", 12);
    assert_frame(fx, 7, MVM_MSG_START, "\x01\x18\x00\x2c\x01", 5);
    assert_frame(fx, 8, MVM_MSG_WINSIZE, "\x32\x00\x84\x00", 4);
    uint8_t sig[4];
    mvm_put_u32(sig, SIGINT);
    assert_frame(fx, 9, MVM_MSG_SIGNAL, sig, 4);
    pump_idle(fx, 50);
    assert_int_equal(fx->nframes, 10);
}

static void test_start_login_shell(void **state)
{
    struct fx *fx = *state;

    mvm_relay_start(&fx->r, NULL, 0, NULL, 0, 0, 0, 0);
    PUMP_UNTIL(fx, fx->nframes == 1);
    assert_frame(fx, 0, MVM_MSG_START, "\0\0\0\0\0", 5);
    pump_idle(fx, 30);
    assert_int_equal(fx->nframes, 1);
}

static void test_stdin_data_and_eof(void **state)
{
    struct fx *fx = *state;

    buf_append(&fx->stdin_src, "hello\n", 6);
    PUMP_UNTIL(fx, fx->stdin_got.len == 6);
    assert_memory_equal(fx->stdin_got.data, "hello\n", 6);
    assert_int_equal(fx->stdin_eofs, 0);
    assert_int_equal(fx->r.in_window, WINDOW - 6);

    /* non-tty: "~." is data like any other */
    buf_append(&fx->stdin_src, "~.\x03", 3);
    fx->stdin_close = true;
    PUMP_UNTIL(fx, fx->stdin_eofs == 1);
    assert_int_equal(fx->stdin_got.len, 9);
    assert_memory_equal(fx->stdin_got.data, "hello\n~.\x03", 9);
    assert_false(fx->r.kill_requested);
    assert_true(fx->r.in_done);
    /* stdin is not polled any more, and EOF goes out once */
    struct pollfd p[4];
    int n = mvm_relay_pollfds(&fx->r, p, 0);
    for (int i = 0; i < n; i++)
        assert_int_not_equal(p[i].fd, fx->in_r);
    pump_idle(fx, 30);
    assert_int_equal(fx->stdin_eofs, 1);
    assert_frame(fx, fx->nframes - 1, MVM_MSG_STDIN, "", 0);
}

static void fill_pattern(struct buf *b, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char c = (char)(i % 251);
        buf_append(b, &c, 1);
    }
}

static void test_stdin_window(void **state)
{
    struct fx *fx = *state;
    const size_t total = 600000;

    fill_pattern(&fx->stdin_src, total);
    fx->stdin_close = true;
    PUMP_UNTIL(fx, fx->stdin_got.len >= WINDOW);
    pump_idle(fx, 200);
    /* Exactly the window, no more, until the guest grants some. */
    assert_int_equal(fx->stdin_got.len, WINDOW);
    assert_int_equal(fx->r.in_window, 0);
    assert_int_equal(fx->stdin_eofs, 0);

    guest_send_u32(fx, MVM_MSG_CREDIT_IN, 100000);
    PUMP_UNTIL(fx, fx->stdin_got.len >= WINDOW + 100000);
    pump_idle(fx, 100);
    assert_int_equal(fx->stdin_got.len, WINDOW + 100000);

    guest_send_u32(fx, MVM_MSG_CREDIT_IN, WINDOW);
    PUMP_UNTIL(fx, fx->stdin_eofs == 1);
    assert_int_equal(fx->stdin_got.len, total);
    assert_memory_equal(fx->stdin_got.data, fx->stdin_src.data, total);
    assert_int_equal(fx->r.in_window, WINDOW - (total - WINDOW - 100000));
    for (size_t i = 0; i < fx->nframes; i++)
        assert_true(fx->frames[i].len <= MVM_PROTO_MAX_PAYLOAD);
}

static void test_stdin_credit_beyond_window(void **state)
{
    struct fx *fx = *state;

    guest_send_u32(fx, MVM_MSG_CREDIT_IN, 1);
    PUMP_UNTIL(fx, fx->failed);
    assert_error_contains(fx->error, "stdin credit");
}

/* ---- guest -> host ---------------------------------------------------- */

static void test_output_routing(void **state)
{
    struct fx *fx = *state;
    uint8_t bin[256];
    for (int i = 0; i < 256; i++)
        bin[i] = (uint8_t)i;

    guest_send_u32(fx, MVM_MSG_READY, MVM_PROTO_VERSION);
    GUEST_SEND_STR(fx, MVM_MSG_STDOUT, "hello ");
    GUEST_SEND_STR(fx, MVM_MSG_STDERR, "oops\n");
    guest_send(fx, MVM_MSG_STDOUT, bin, sizeof bin);
    GUEST_SEND_STR(fx, MVM_MSG_STDOUT, "");
    GUEST_SEND_STR(fx, MVM_MSG_STDERR, OSC52);
    PUMP_UNTIL(fx, fx->out.len == 6 + 256 && fx->err.len == 5 + sizeof OSC52 - 1);
    assert_true(fx->r.ready);
    assert_memory_equal(fx->out.data, "hello ", 6);
    assert_memory_equal(fx->out.data + 6, bin, 256);
    /* not a terminal: bytes pass exactly, escape sequences included */
    assert_memory_equal(fx->err.data, "oops\n" OSC52, 5 + sizeof OSC52 - 1);
    assert_false(fx->r.have_status);
    assert_false(mvm_relay_done(&fx->r));

    guest_send_u32(fx, MVM_MSG_EXIT, 42);
    PUMP_UNTIL(fx, fx->r.have_status);
    assert_int_equal(fx->r.status, 42);
    assert_null(fx->r.guest_error);
    assert_true(mvm_relay_done(&fx->r));
    /* a second status does not replace the first */
    guest_send_u32(fx, MVM_MSG_EXIT, 3);
    GUEST_SEND_STR(fx, MVM_MSG_ERROR, "\x01\0\0\0late");
    pump_idle(fx, 30);
    assert_int_equal(fx->r.status, 42);
    assert_null(fx->r.guest_error);
}

static void test_exit_status_bits(void **state)
{
    struct fx *fx = *state;

    guest_send_u32(fx, MVM_MSG_EXIT, 0x1ff);
    PUMP_UNTIL(fx, fx->r.have_status);
    assert_int_equal(fx->r.status, 255);
}

static void test_done_waits_for_output(void **state)
{
    struct fx *fx = *state;

    fx->read_out = false;
    size_t filler = fill_pipe(fx->out_w);
    GUEST_SEND_STR(fx, MVM_MSG_STDOUT, "last words");
    guest_send_u32(fx, MVM_MSG_EXIT, 0);
    PUMP_UNTIL(fx, fx->r.have_status);
    pump_idle(fx, 30);
    assert_int_equal(fx->r.status, 0);
    assert_false(mvm_relay_done(&fx->r)); /* "last words" are still held */
    assert_int_equal(fx->credit_out, 0);

    fx->read_out = true;
    PUMP_UNTIL(fx, mvm_relay_done(&fx->r) && fx->out.len == filler + 10);
    assert_memory_equal(fx->out.data + filler, "last words", 10);
    PUMP_UNTIL(fx, fx->credit_out == 10);
}

static void test_error_frame(void **state)
{
    struct fx *fx = *state;

    GUEST_SEND_STR(fx, MVM_MSG_ERROR, "\x7f\0\0\0nope: command not found");
    PUMP_UNTIL(fx, fx->r.have_status);
    assert_int_equal(fx->r.status, 127);
    assert_string_equal(fx->r.guest_error, "nope: command not found");
    assert_true(mvm_relay_done(&fx->r));
}

static void test_error_frame_odd_status(void **state)
{
    struct fx *fx = *state;

    /* a status outside 1..255 becomes mvm's own failure status */
    GUEST_SEND_STR(fx, MVM_MSG_ERROR, "\0\0\0\0");
    PUMP_UNTIL(fx, fx->r.have_status);
    assert_int_equal(fx->r.status, 125);
    assert_string_equal(fx->r.guest_error, "");
}

static void test_error_frame_big_status(void **state)
{
    struct fx *fx = *state;

    GUEST_SEND_STR(fx, MVM_MSG_ERROR, "\x00\x01\0\0x");
    PUMP_UNTIL(fx, fx->r.have_status);
    assert_int_equal(fx->r.status, 125);
    assert_string_equal(fx->r.guest_error, "x");
}

static void test_output_beyond_window(void **state)
{
    struct fx *fx = *state;
    struct buf chunk = {0};

    fx->read_out = false;
    fill_pipe(fx->out_w);
    fill_pattern(&chunk, MVM_PROTO_MAX_PAYLOAD);
    for (size_t sent = 0; sent < WINDOW; sent += MVM_PROTO_MAX_PAYLOAD)
        guest_send(fx, MVM_MSG_STDOUT, chunk.data, MVM_PROTO_MAX_PAYLOAD);
    /* Exactly the window is allowed... */
    PUMP_UNTIL(fx, fx->r.out_window_used == WINDOW);
    pump_idle(fx, 30);
    assert_false(fx->failed);
    assert_int_equal(fx->credit_out, 0);
    /* ...one byte more is a hostile guest. */
    GUEST_SEND_STR(fx, MVM_MSG_STDERR, "!");
    PUMP_UNTIL(fx, fx->failed);
    assert_error_contains(fx->error, "window");
    buf_free(&chunk);
}

/* The guest as it should be: sends only within its window. */
static void guest_send_output(struct fx *fx, uint8_t type, const char *data, size_t total,
                              size_t frame, uint64_t *window, uint64_t *granted)
{
    for (size_t off = 0; off < total;) {
        *window += fx->credit_out - *granted;
        *granted = fx->credit_out;
        size_t n = total - off < frame ? total - off : frame;
        if (*window < n) {
            if (pump_once(fx, 5) < 0)
                fail_msg("relay failed: %s", fx->error->msg);
            continue;
        }
        guest_send(fx, type, data + off, n);
        *window -= n;
        off += n;
    }
}

static void test_credit_out(void **state)
{
    struct fx *fx = *state;
    struct buf data = {0};
    const size_t total = 1 << 20;
    uint64_t window = WINDOW, granted = 0;

    fill_pattern(&data, total);
    guest_send_output(fx, MVM_MSG_STDOUT, data.data, total, 16384, &window, &granted);
    guest_send_output(fx, MVM_MSG_STDERR, data.data, 100000, 777, &window, &granted);
    /* Once everything is written, every byte has been credited back. */
    PUMP_UNTIL(fx,
               fx->out.len == total && fx->err.len == 100000 && fx->credit_out == total + 100000);
    assert_memory_equal(fx->out.data, data.data, total);
    assert_memory_equal(fx->err.data, data.data, 100000);
    assert_int_equal(fx->r.out_window_used, 0);
    pump_idle(fx, 30);
    assert_int_equal(fx->credit_out, total + 100000);
    buf_free(&data);
}

static void test_stdout_epipe(void **state)
{
    struct fx *fx = *state;

    close_fd(&fx->out_r);
    GUEST_SEND_STR(fx, MVM_MSG_STDOUT, "data");
    PUMP_UNTIL(fx, fx->signals == 1);
    assert_int_equal(fx->last_signal, SIGPIPE);
    assert_true(fx->r.out_broken);
    /* Later output is dropped, but credited, and signalled only once. */
    char more[1000];
    memset(more, 'm', sizeof more);
    guest_send(fx, MVM_MSG_STDOUT, more, sizeof more);
    GUEST_SEND_STR(fx, MVM_MSG_STDERR, "err");
    PUMP_UNTIL(fx, fx->credit_out == 4 + 1000 + 3);
    assert_memory_equal(fx->err.data, "err", 3);
    guest_send_u32(fx, MVM_MSG_EXIT, 128 + SIGPIPE);
    PUMP_UNTIL(fx, mvm_relay_done(&fx->r));
    assert_int_equal(fx->r.status, 141);
    assert_int_equal(fx->signals, 1);
    assert_int_equal(count_frames(fx, MVM_MSG_SIGNAL), 1);
}

static void test_protocol_violations(void **state)
{
    struct fx *fx = *state;

    /* a host->guest message from the guest */
    GUEST_SEND_STR(fx, MVM_MSG_ARG, "ls");
    PUMP_UNTIL(fx, fx->failed);
    assert_error_contains(fx->error, "message type 1");
}

static void test_bad_frame(void **state)
{
    struct fx *fx = *state;
    uint8_t hdr[MVM_PROTO_HEADER];

    mvm_proto_header(hdr, MVM_MSG_EXIT, 1, 4);
    hdr[1] = 7;
    guest_send_raw(fx, hdr, sizeof hdr);
    guest_send_raw(fx, "\0\0\0\0", 4);
    PUMP_UNTIL(fx, fx->failed);
    assert_error_contains(fx->error, "broke the control protocol (reserved header byte");
    assert_false(fx->r.have_status);
}

static void test_ctl_closed(void **state)
{
    struct fx *fx = *state;

    close_fd(&fx->peer);
    PUMP_UNTIL(fx, fx->r.ctl_closed);
    struct pollfd p[4];
    int n = mvm_relay_pollfds(&fx->r, p, 0);
    for (int i = 0; i < n; i++)
        assert_int_not_equal(p[i].fd, fx->ctl);
    assert_false(fx->r.have_status);
}

/* ---- terminal mode ---------------------------------------------------- */

static void test_tty_filters_output(void **state)
{
    struct fx *fx = *state;
    static const char first[] = "a" OSC52 "b\x1b[21tc";
    static const char p1[] = "d\x1b]5", p2[] = "2;c;aGk=\x1b", p3[] = "\\e";

    GUEST_SEND_STR(fx, MVM_MSG_STDOUT, first);
    /* each removed sequence leaves a CAN (see termfilter.c) */
    PUMP_UNTIL(fx, fx->out.len == 5 && fx->credit_out == sizeof first - 1);
    assert_memory_equal(fx->out.data,
                        "a\x18"
                        "b\x18"
                        "c",
                        5);
    assert_int_equal(fx->r.filter.dropped, 2);
    /* split across frames: still removed */
    GUEST_SEND_STR(fx, MVM_MSG_STDOUT, p1);
    GUEST_SEND_STR(fx, MVM_MSG_STDOUT, p2);
    GUEST_SEND_STR(fx, MVM_MSG_STDOUT, p3);
    PUMP_UNTIL(fx, fx->out.len == 8);
    assert_memory_equal(fx->out.data,
                        "a\x18"
                        "b\x18"
                        "cd\x18"
                        "e",
                        8);
    /* what the filter drops or holds back is credited too */
    PUMP_UNTIL(fx,
               fx->credit_out == sizeof first - 1 + sizeof p1 - 1 + sizeof p2 - 1 + sizeof p3 - 1);
    assert_int_equal(fx->r.out_window_used, 0);
    assert_int_equal(fx->err.len, 0);
}

/* In terminal mode the guest has one stream (a pty): a STDERR frame can
 * only come from a guest that is up to something, and it must not get
 * past the filter that way. */
static void test_tty_stderr_filtered(void **state)
{
    struct fx *fx = *state;
    static const char text[] = "x" OSC52 "y";

    GUEST_SEND_STR(fx, MVM_MSG_STDERR, text);
    PUMP_UNTIL(fx, fx->credit_out == sizeof text - 1);
    pump_idle(fx, 30);
    struct buf all = {0};
    buf_append(&all, fx->out.data, fx->out.len);
    buf_append(&all, fx->err.data, fx->err.len);
    assert_int_equal(all.len, 3);
    assert_memory_equal(all.data, "x\x18y", 3);
    buf_free(&all);
}

static void test_tty_escape_kill(void **state)
{
    struct fx *fx = *state;

    buf_append(&fx->stdin_src, "ls\r~.", 5);
    PUMP_UNTIL(fx, fx->r.kill_requested);
    pump_idle(fx, 30);
    assert_int_equal(fx->stdin_got.len, 3);
    assert_memory_equal(fx->stdin_got.data, "ls\r", 3);
    assert_int_equal(fx->r.in_window, WINDOW - 3);
}

static void test_tty_escape_help(void **state)
{
    struct fx *fx = *state;

    buf_append(&fx->stdin_src, "~?\r~~x", 6);
    PUMP_UNTIL(fx, fx->out.len == strlen(mvm_escape_help) && fx->stdin_got.len == 3);
    assert_memory_equal(fx->out.data, mvm_escape_help, strlen(mvm_escape_help));
    assert_memory_equal(fx->stdin_got.data, "\r~x", 3);
    assert_false(fx->r.kill_requested);
}

/* A '~' held by the escape detector goes out with the next byte: the
 * relay must leave room in the window for it. */
static void test_tty_tilde_at_window_end(void **state)
{
    struct fx *fx = *state;
    const size_t first = WINDOW - 2;

    for (size_t i = 0; i < first - 1; i++)
        buf_append(&fx->stdin_src, "a", 1);
    buf_append(&fx->stdin_src, "\r", 1);
    PUMP_UNTIL(fx, fx->stdin_got.len == first);
    assert_int_equal(fx->r.in_window, 2);

    buf_append(&fx->stdin_src, "~", 1);
    PUMP_UNTIL(fx, fx->r.escape.tilde);
    pump_idle(fx, 30);
    assert_int_equal(fx->stdin_got.len, first);
    assert_int_equal(fx->r.in_window, 2);

    /* "~x" fills the window exactly; "y" waits for credit */
    buf_append(&fx->stdin_src, "xy", 2);
    PUMP_UNTIL(fx, fx->stdin_got.len >= WINDOW);
    pump_idle(fx, 100);
    assert_int_equal(fx->stdin_got.len, WINDOW);
    assert_int_equal(fx->r.in_window, 0);
    assert_memory_equal(fx->stdin_got.data + first, "~x", 2);

    guest_send_u32(fx, MVM_MSG_CREDIT_IN, 10);
    PUMP_UNTIL(fx, fx->stdin_got.len == WINDOW + 1);
    assert_int_equal(fx->stdin_got.data[WINDOW], 'y');
    assert_int_equal(fx->r.in_window, 9);

    /* With one byte of window left and a '~' held, stdin waits. */
    buf_append(&fx->stdin_src, "\r", 1);
    PUMP_UNTIL(fx, fx->stdin_got.len == WINDOW + 2);
    /* window 8: use 7 of it, then hold a '~' with 1 left */
    buf_append(&fx->stdin_src, "abcdef\r", 7);
    PUMP_UNTIL(fx, fx->stdin_got.len == WINDOW + 9);
    assert_int_equal(fx->r.in_window, 1);
    buf_append(&fx->stdin_src, "~", 1);
    PUMP_UNTIL(fx, fx->r.escape.tilde);
    buf_append(&fx->stdin_src, "z", 1);
    pump_idle(fx, 50);
    assert_int_equal(fx->stdin_got.len, WINDOW + 9);
    assert_int_equal(fx->r.in_window, 1);
    guest_send_u32(fx, MVM_MSG_CREDIT_IN, 1);
    PUMP_UNTIL(fx, fx->stdin_got.len == WINDOW + 11);
    assert_memory_equal(fx->stdin_got.data + WINDOW + 9, "~z", 2);
    assert_int_equal(fx->r.in_window, 0);
}

/* Frames of another stream (mvm exec's) go to the hook, never to the
 * main command's stdout or status; without a hook they break the
 * protocol. */
static void guest_send_stream(struct fx *fx, uint16_t stream, uint8_t type, const void *payload,
                              size_t len)
{
    uint8_t hdr[MVM_PROTO_HEADER];
    mvm_proto_header(hdr, type, stream, (uint32_t)len);
    guest_send_raw(fx, hdr, sizeof hdr);
    guest_send_raw(fx, payload, len);
}

struct hooked {
    unsigned frames;
    uint16_t stream;
    uint8_t type;
    bool fail;
};

static int other_stream(void *arg, const struct mvm_proto_frame *f, struct mvm_error **err)
{
    struct hooked *h = arg;
    h->frames++;
    h->stream = f->stream;
    h->type = f->type;
    return h->fail ? mvm_error_set(err, 0, "hook refused") : 0;
}

static void test_other_streams(void **state)
{
    struct fx *fx = *state;
    struct hooked h = {0};
    fx->r.other = other_stream;
    fx->r.other_arg = &h;
    guest_send_stream(fx, 2, MVM_MSG_STDOUT, "exec", 4);
    uint8_t st[4];
    mvm_put_u32(st, 9);
    guest_send_stream(fx, 2, MVM_MSG_EXIT, st, 4);
    PUMP_UNTIL(fx, h.frames == 2);
    assert_int_equal(h.stream, 2);
    assert_int_equal(h.type, MVM_MSG_EXIT);
    GUEST_SEND_STR(fx, MVM_MSG_STDOUT, "main");
    PUMP_UNTIL(fx, fx->out.len == 4);
    assert_memory_equal(fx->out.data, "main", 4);
    assert_false(fx->r.have_status);

    h.fail = true; /* the hook's verdict ends the relay */
    guest_send_stream(fx, 3, MVM_MSG_STDOUT, "x", 1);
    PUMP_UNTIL(fx, fx->failed);
    assert_error_contains(fx->error, "hook refused");
}

/* mvm run --detach: the main command's frames go to the hook too, and
 * its status still ends the relay. */
static void test_route_main(void **state)
{
    struct fx *fx = *state;
    struct hooked h = {0};
    fx->r.other = other_stream;
    fx->r.other_arg = &h;
    fx->r.route_main = true;
    GUEST_SEND_STR(fx, MVM_MSG_STDOUT, "main");
    PUMP_UNTIL(fx, h.frames == 1);
    assert_int_equal(h.stream, MVM_PROTO_MAIN_STREAM);
    guest_send_u32(fx, MVM_MSG_EXIT, 4);
    PUMP_UNTIL(fx, h.frames == 2);
    assert_int_equal(h.type, MVM_MSG_EXIT);
    assert_true(fx->r.have_status);
    assert_int_equal(fx->r.status, 4);
    assert_int_equal(fx->out.len, 0); /* nothing of it here */
}

/* mvm attach: the end of one client's input is not the command's. */
static void test_keep_input_open(void **state)
{
    struct fx *fx = *state;
    fx->r.keep_input_open = true;
    buf_append(&fx->stdin_src, "typed", 5);
    fx->stdin_close = true;
    PUMP_UNTIL(fx, fx->r.in_done);
    pump_idle(fx, 30);
    assert_int_equal(fx->stdin_got.len, 5);
    assert_int_equal(fx->stdin_eofs, 0);
}

static void test_other_stream_without_hook(void **state)
{
    struct fx *fx = *state;
    guest_send_stream(fx, 5, MVM_MSG_STDOUT, "x", 1);
    PUMP_UNTIL(fx, fx->failed);
    assert_error_contains(fx->error, "broke the control protocol (stream 5)");
    assert_int_equal(fx->out.len, 0);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN); /* as mvm does: a closed stdout is EPIPE */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_start_frames, setup, teardown),
        cmocka_unit_test_setup_teardown(test_start_login_shell, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stdin_data_and_eof, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stdin_window, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stdin_credit_beyond_window, setup, teardown),
        cmocka_unit_test_setup_teardown(test_output_routing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_exit_status_bits, setup, teardown),
        cmocka_unit_test_setup_teardown(test_done_waits_for_output, setup, teardown),
        cmocka_unit_test_setup_teardown(test_error_frame, setup, teardown),
        cmocka_unit_test_setup_teardown(test_error_frame_odd_status, setup, teardown),
        cmocka_unit_test_setup_teardown(test_error_frame_big_status, setup, teardown),
        cmocka_unit_test_setup_teardown(test_output_beyond_window, setup, teardown),
        cmocka_unit_test_setup_teardown(test_credit_out, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stdout_epipe, setup, teardown),
        cmocka_unit_test_setup_teardown(test_protocol_violations, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_frame, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ctl_closed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_other_streams, setup, teardown),
        cmocka_unit_test_setup_teardown(test_other_stream_without_hook, setup, teardown),
        cmocka_unit_test_setup_teardown(test_route_main, setup, teardown),
        cmocka_unit_test_setup_teardown(test_keep_input_open, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tty_filters_output, setup_tty, teardown),
        cmocka_unit_test_setup_teardown(test_tty_stderr_filtered, setup_tty, teardown),
        cmocka_unit_test_setup_teardown(test_tty_escape_kill, setup_tty, teardown),
        cmocka_unit_test_setup_teardown(test_tty_escape_help, setup_tty, teardown),
        cmocka_unit_test_setup_teardown(test_tty_tilde_at_window_end, setup_tty, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
