/* Host side of the control protocol; see relay.h. */
#include "relay.h"

#include <errno.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#define READ_CHUNK   (32 * 1024)
#define CREDIT_BATCH (32 * 1024)
/* Stop reading stdin while this much is still queued for the guest. */
#define TOGUEST_SOFT_LIMIT (64 * 1024)

void mvm_relay_init(struct mvm_relay *r, int ctl, int in_fd, int out_fd, int err_fd, bool tty)
{
    memset(r, 0, sizeof *r);
    r->ctl = ctl;
    r->in_fd = in_fd;
    r->out_fd = out_fd;
    r->err_fd = err_fd;
    r->tty = tty;
    r->in_window = MVM_PROTO_WINDOW;
    mvm_proto_decoder_init(&r->dec);
    mvm_outfilter_init(&r->filter);
    mvm_outfilter_init(&r->err_filter);
    r->filter_out = tty;
    mvm_escape_init(&r->escape);
    r->escape_help = mvm_escape_help;
    r->pi_ctl = r->pi_in = r->pi_out = r->pi_err = -1;
}

void mvm_relay_filter_terminals(struct mvm_relay *r, bool out_is_tty, bool err_is_tty)
{
    r->filter_out = r->tty || out_is_tty;
    r->filter_err = err_is_tty;
}

void mvm_relay_clear(struct mvm_relay *r)
{
    buf_free(&r->toguest);
    buf_free(&r->outbuf);
    buf_free(&r->errbuf);
    free(r->guest_error);
    r->guest_error = NULL;
}

void mvm_relay_queue(struct mvm_relay *r, uint8_t type, uint16_t stream, const void *payload,
                     size_t len)
{
    uint8_t hdr[MVM_PROTO_HEADER];
    mvm_proto_header(hdr, type, stream, (uint32_t)len);
    buf_append(&r->toguest, hdr, sizeof hdr);
    buf_append(&r->toguest, payload, len);
}

static void queue(struct mvm_relay *r, uint8_t type, const void *payload, size_t len)
{
    mvm_relay_queue(r, type, MVM_PROTO_MAIN_STREAM, payload, len);
}

size_t mvm_relay_queued(const struct mvm_relay *r)
{
    return r->toguest.len - r->toguest_off;
}

static void queue_u32(struct mvm_relay *r, uint8_t type, uint32_t v)
{
    uint8_t p[4];
    mvm_put_u32(p, v);
    queue(r, type, p, 4);
}

void mvm_relay_start(struct mvm_relay *r, char *const *argv, int argc, char *const *env,
                     size_t nenv, uint8_t flags, uint16_t rows, uint16_t cols)
{
    for (int i = 0; i < argc; i++)
        queue(r, MVM_MSG_ARG, argv[i], strlen(argv[i]));
    for (size_t i = 0; i < nenv; i++)
        queue(r, MVM_MSG_ENV, env[i], strlen(env[i]));
    uint8_t p[5] = {flags};
    mvm_put_u16(p + 1, rows);
    mvm_put_u16(p + 3, cols);
    queue(r, MVM_MSG_START, p, sizeof p);
}

void mvm_relay_winsize(struct mvm_relay *r, uint16_t rows, uint16_t cols)
{
    uint8_t p[4];
    mvm_put_u16(p, rows);
    mvm_put_u16(p + 2, cols);
    queue(r, MVM_MSG_WINSIZE, p, sizeof p);
}

void mvm_relay_signal(struct mvm_relay *r, int sig)
{
    queue_u32(r, MVM_MSG_SIGNAL, (uint32_t)sig);
}

/* A '~' the escape detector holds goes out with the next byte typed:
 * window is kept for it, so stdin never exceeds the window. */
static uint32_t stdin_reserve(const struct mvm_relay *r)
{
    return r->tty && r->escape.tilde ? 1 : 0;
}

int mvm_relay_pollfds(struct mvm_relay *r, struct pollfd *p, int base)
{
    int n = 0;
    bool pending = r->toguest.len > r->toguest_off;
    r->pi_ctl = r->pi_in = r->pi_out = r->pi_err = -1;
    if (!r->ctl_closed) {
        r->pi_ctl = base + n;
        p[n++] = (struct pollfd){.fd = r->ctl, .events = (short)(POLLIN | (pending ? POLLOUT : 0))};
    }
    bool want_in = !r->in_done && !r->have_status && r->in_window > stdin_reserve(r) &&
                   r->toguest.len - r->toguest_off < TOGUEST_SOFT_LIMIT;
    if (want_in) {
        r->pi_in = base + n;
        p[n++] = (struct pollfd){.fd = r->in_fd, .events = POLLIN};
    }
    if (r->outbuf.len > r->out_off) {
        r->pi_out = base + n;
        p[n++] = (struct pollfd){.fd = r->out_fd, .events = POLLOUT};
    }
    if (r->errbuf.len > r->err_off) {
        r->pi_err = base + n;
        p[n++] = (struct pollfd){.fd = r->err_fd, .events = POLLOUT};
    }
    return n;
}

static void flush_toguest(struct mvm_relay *r)
{
    while (r->toguest.len > r->toguest_off) {
        ssize_t n =
            write(r->ctl, r->toguest.data + r->toguest_off, r->toguest.len - r->toguest_off);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return; /* EAGAIN: later; EPIPE: QEMU is gone, the session notices */
        }
        r->toguest_off += (size_t)n;
    }
    r->toguest.len = r->toguest_off = 0;
}

/* Output credit follows what is still held: guest bytes count against the
 * window from arrival until they are written (or dropped by the filter).
 * Computing it from the buffers' fill keeps it right when the filter holds
 * an unfinished sequence back or removes bytes. */
static void update_credit(struct mvm_relay *r)
{
    size_t held = (r->outbuf.len - r->out_off) + (r->errbuf.len - r->err_off) + r->filter.seqlen +
                  r->err_filter.seqlen;
    if (held >= r->out_window_used)
        return;
    uint32_t give = r->out_window_used - (uint32_t)held;
    if (give >= CREDIT_BATCH || held == 0) {
        queue_u32(r, MVM_MSG_CREDIT_OUT, give);
        r->out_window_used -= give;
    }
}

static void flush_user(struct mvm_relay *r, struct buf *b, size_t *off, int fd, bool is_out)
{
    while (b->len > *off) {
        ssize_t n = write(fd, b->data + *off, b->len - *off);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN)
                break;
            /* The reader went away (EPIPE) or the fd is unusable: what a
             * pipeline does to the writer, do to the guest command. */
            if (is_out && !r->out_broken) {
                r->out_broken = true;
                mvm_relay_signal(r, SIGPIPE);
            }
            *off = b->len;
            break;
        }
        *off += (size_t)n;
    }
    if (b->len == *off)
        b->len = *off = 0;
}

static int on_output(struct mvm_relay *r, const struct mvm_proto_frame *f, struct mvm_error **err)
{
    if ((uint64_t)r->out_window_used + f->len > MVM_PROTO_WINDOW)
        return mvm_error_set(err, 0,
                             "the guest broke the control protocol (output beyond its window)");
    r->out_window_used += f->len;
    /* In terminal mode the guest has a pty, which has no stderr: a STDERR
     * frame then goes through the terminal filter like any output. */
    bool is_out = f->type == MVM_MSG_STDOUT || r->tty;
    if (is_out && r->out_broken)
        return 0; /* dropped; credited by update_credit */
    struct buf *b = is_out ? &r->outbuf : &r->errbuf;
    /* Whatever lands on a terminal is filtered, pty or not: a guest
     * writing to a pipe-fed command's stderr reaches the user's screen. */
    if (is_out && r->filter_out)
        mvm_outfilter_feed(&r->filter, f->payload, f->len, b);
    else if (!is_out && r->filter_err)
        mvm_outfilter_feed(&r->err_filter, f->payload, f->len, b);
    else
        buf_append(b, f->payload, f->len);
    return 0;
}

static int on_frame(struct mvm_relay *r, const struct mvm_proto_frame *f, struct mvm_error **err)
{
    /* READY comes on stream 0; other commands' frames go to their owner,
     * and so do the main command's when it has no terminal here. */
    bool main = f->stream == MVM_PROTO_MAIN_STREAM;
    if (f->type != MVM_MSG_READY && (!main || r->route_main)) {
        if (r->other == NULL)
            return mvm_error_set(err, 0, "the guest broke the control protocol (stream %u)",
                                 f->stream);
        if (r->other(r->other_arg, f, err) < 0)
            return -1;
        if (!main || (f->type != MVM_MSG_EXIT && f->type != MVM_MSG_ERROR))
            return 0; /* its status is still the session's */
    }
    switch (f->type) {
    case MVM_MSG_READY:
        r->ready = true;
        return 0;
    case MVM_MSG_STDOUT:
    case MVM_MSG_STDERR:
        return on_output(r, f, err);
    case MVM_MSG_CREDIT_IN: {
        uint64_t w = (uint64_t)r->in_window + mvm_get_u32(f->payload);
        if (w > MVM_PROTO_WINDOW)
            return mvm_error_set(err, 0, "the guest broke the control protocol (stdin credit)");
        r->in_window = (uint32_t)w;
        return 0;
    }
    case MVM_MSG_EXIT:
        if (!r->have_status) {
            r->have_status = true;
            r->status = (int)(mvm_get_u32(f->payload) & 0xff);
        }
        return 0;
    case MVM_MSG_ERROR:
        if (!r->have_status) {
            r->have_status = true;
            uint32_t st = mvm_get_u32(f->payload);
            r->status = st >= 1 && st <= 255 ? (int)st : 125;
            r->guest_error = xstrndup((const char *)f->payload + 4, f->len - 4);
        }
        return 0;
    default:
        return mvm_error_set(err, 0, "the guest broke the control protocol (message type %u)",
                             f->type);
    }
}

int mvm_relay_read_ctl(struct mvm_relay *r, struct mvm_error **err)
{
    for (int rounds = 0; rounds < 64; rounds++) {
        uint8_t buf[65536];
        size_t room = mvm_proto_space(&r->dec);
        ssize_t n = read(r->ctl, buf, room < sizeof buf ? room : sizeof buf);
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
            return 0;
        if (n <= 0) { /* QEMU is gone; the session learns why from its pidfd */
            r->ctl_closed = true;
            return 0;
        }
        mvm_proto_feed(&r->dec, buf, (size_t)n);
        struct mvm_proto_frame f;
        const char *why = NULL;
        enum mvm_proto_status st;
        while ((st = mvm_proto_next(&r->dec, &f, &why)) == MVM_PROTO_FRAME)
            if (on_frame(r, &f, err) < 0)
                return -1;
        if (st == MVM_PROTO_BAD)
            return mvm_error_set(err, 0, "the guest broke the control protocol (%s)", why);
    }
    return 0;
}

static void read_stdin(struct mvm_relay *r)
{
    uint8_t buf[READ_CHUNK];
    if (r->in_window <= stdin_reserve(r))
        return; /* no window: a read of 0 bytes would look like EOF */
    size_t window = r->in_window - stdin_reserve(r);
    size_t want = window < sizeof buf ? window : sizeof buf;
    ssize_t n = read(r->in_fd, buf, want);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (n <= 0) { /* EOF, or stdin unusable: the guest sees EOF */
        if (!r->keep_input_open)
            queue(r, MVM_MSG_STDIN, NULL, 0);
        r->in_done = true;
        return;
    }
    if (!r->tty) {
        queue(r, MVM_MSG_STDIN, buf, (size_t)n);
        r->in_window -= (uint32_t)n;
        return;
    }
    size_t off = 0;
    while (off < (size_t)n) {
        struct buf pass = {0};
        size_t used;
        enum mvm_escape_action a =
            mvm_escape_feed(&r->escape, buf + off, (size_t)n - off, &pass, &used);
        if (pass.len) {
            queue(r, MVM_MSG_STDIN, pass.data, pass.len);
            r->in_window -= (uint32_t)pass.len;
        }
        buf_free(&pass);
        off += used;
        if (a == MVM_ESC_KILL)
            r->kill_requested = true;
        else if (a == MVM_ESC_DETACH)
            r->detach_requested = true;
        else if (a == MVM_ESC_HELP)
            buf_append(&r->outbuf, r->escape_help, strlen(r->escape_help));
    }
}

int mvm_relay_handle(struct mvm_relay *r, const struct pollfd *p, struct mvm_error **err)
{
    if (r->pi_ctl >= 0 && (p[r->pi_ctl].revents & (POLLIN | POLLHUP | POLLERR)))
        if (mvm_relay_read_ctl(r, err) < 0)
            return -1;
    if (r->pi_in >= 0 && p[r->pi_in].revents)
        read_stdin(r);
    if (r->pi_out >= 0 && p[r->pi_out].revents)
        flush_user(r, &r->outbuf, &r->out_off, r->out_fd, true);
    if (r->pi_err >= 0 && p[r->pi_err].revents)
        flush_user(r, &r->errbuf, &r->err_off, r->err_fd, false);
    /* Output that arrived this round: try at once, saves a poll round. */
    if (r->outbuf.len > r->out_off)
        flush_user(r, &r->outbuf, &r->out_off, r->out_fd, true);
    if (r->errbuf.len > r->err_off)
        flush_user(r, &r->errbuf, &r->err_off, r->err_fd, false);
    update_credit(r);
    flush_toguest(r);
    return 0;
}

bool mvm_relay_done(const struct mvm_relay *r)
{
    return r->have_status && r->outbuf.len == r->out_off && r->errbuf.len == r->err_off;
}

void mvm_relay_flush_user(struct mvm_relay *r, int timeout_ms)
{
    uint64_t end = now_ns() + (uint64_t)timeout_ms * 1000000ULL;
    while ((r->outbuf.len > r->out_off || r->errbuf.len > r->err_off) && now_ns() < end) {
        struct pollfd p[2] = {{.fd = r->out_fd, .events = POLLOUT},
                              {.fd = r->err_fd, .events = POLLOUT}};
        if (poll(p, 2, 50) < 0 && errno != EINTR)
            break;
        flush_user(r, &r->outbuf, &r->out_off, r->out_fd, true);
        flush_user(r, &r->errbuf, &r->err_off, r->err_fd, false);
    }
}
