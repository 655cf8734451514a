/* QMP client: the I/O half of the module.  Sends commands, waits for their
 * replies with a deadline, and hands every event that arrives on the way to
 * the one callback, in order.  One command is in flight at a time, which
 * is all QMP without out-of-band execution allows anyway.
 *
 * Between calls the framer holds at most one incomplete line: anything
 * complete is either handled or still in the kernel, so the caller's
 * poll() on the fd is a reliable sign that there is work for dispatch. */
#include <limits.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>

#include "qmp.h"
#include "util.h"

#define NO_DEADLINE UINT64_MAX
/* Bounds one dispatch call, so a chatty QEMU cannot starve the caller's
 * event loop; the fd stays readable and the loop comes back. */
#define DISPATCH_MAX_READS 64

struct mvm_qmp {
    int fd;
    bool not_socket; /* learnt from ENOTSOCK: use read/write, poll first */
    bool closed;
    struct mvm_qmp_framer framer;
    json_int_t last_id;
    /* Replies to commands that timed out may still arrive; ids up to this
     * one are dropped instead of being taken for protocol errors. */
    json_int_t abandoned_id;
    mvm_qmp_event_fn on_event;
    void *opaque;
};

static void json_cleanup(json_t **j)
{
    json_decref(*j);
}
#define cleanup_json    __attribute__((cleanup(json_cleanup)))
#define cleanup_qmp_msg __attribute__((cleanup(mvm_qmp_msg_clear)))

struct mvm_qmp *mvm_qmp_new(int fd, mvm_qmp_event_fn on_event, void *opaque)
{
    struct mvm_qmp *q = xcalloc(1, sizeof *q);

    q->fd = fd;
    q->on_event = on_event;
    q->opaque = opaque;
    return q;
}

void mvm_qmp_free(struct mvm_qmp *q)
{
    if (q == NULL)
        return;
    mvm_qmp_framer_free(&q->framer);
    free(q);
}

bool mvm_qmp_closed(const struct mvm_qmp *q)
{
    return q->closed;
}

static uint64_t deadline_after(int timeout_ms)
{
    if (timeout_ms < 0)
        return NO_DEADLINE;
    return now_ns() + (uint64_t)timeout_ms * 1000000;
}

/* Milliseconds left for poll(), rounded up so we never wake early and spin. */
static int ms_left(uint64_t deadline)
{
    if (deadline == NO_DEADLINE)
        return -1;
    uint64_t now = now_ns();
    if (now >= deadline)
        return 0;
    uint64_t ms = (deadline - now + 999999) / 1000000;
    return ms > INT_MAX ? INT_MAX : (int)ms;
}

/* Returns 1 when ready, 0 at the deadline, -1 with errno. */
static int wait_fd(int fd, short events, uint64_t deadline)
{
    for (;;) {
        struct pollfd p = {.fd = fd, .events = events};
        int n = poll(&p, 1, ms_left(deadline));
        if (n >= 0)
            return n;
        if (errno != EINTR)
            return -1;
    }
}

static ssize_t send_some(struct mvm_qmp *q, const char *p, size_t len)
{
    if (!q->not_socket) {
        /* MSG_NOSIGNAL: a dead QEMU must give us EPIPE, not kill mvm. */
        ssize_t n = send(q->fd, p, len, MSG_NOSIGNAL);
        if (n >= 0 || errno != ENOTSOCK)
            return n;
        q->not_socket = true;
    }
    return write(q->fd, p, len);
}

/* The fd may be non-blocking (it lives in the caller's event loop), so
 * EAGAIN waits for room rather than failing. */
static int send_all(struct mvm_qmp *q, const char *p, size_t len, uint64_t deadline,
                    struct mvm_error **err)
{
    while (len > 0) {
        ssize_t n = send_some(q, p, len);
        if (n >= 0) {
            p += n;
            len -= (size_t)n;
            continue;
        }
        if (errno == EINTR)
            continue;
        if (errno == EPIPE || errno == ECONNRESET)
            q->closed = true;
        if (errno != EAGAIN && errno != EWOULDBLOCK)
            return mvm_error_set(err, errno, "sending to QEMU");
        int r = wait_fd(q->fd, POLLOUT, deadline);
        if (r < 0)
            return mvm_error_set(err, errno, "waiting to send to QEMU");
        if (r == 0)
            return mvm_error_set(err, ETIMEDOUT, "sending to QEMU");
    }
    return 0;
}

/* With one_line, stops after the next newline: whatever QEMU sent after
 * a reply then stays in the socket, where the caller's poll() sees it,
 * instead of in our buffer, where it would wait for the next wake-up. */
static ssize_t recv_socket(struct mvm_qmp *q, char *buf, size_t len, bool one_line)
{
    if (one_line) {
        ssize_t n = recv(q->fd, buf, len, MSG_PEEK | MSG_DONTWAIT);
        if (n <= 0)
            return n;
        const char *nl = memchr(buf, '\n', (size_t)n);
        len = nl ? (size_t)(nl - buf) + 1 : (size_t)n;
    }
    return recv(q->fd, buf, len, MSG_DONTWAIT);
}

/* Reads what is there without blocking.  Returns bytes read, 0 at EOF, or
 * -1 with errno (EAGAIN when nothing is there). */
static ssize_t recv_some(struct mvm_qmp *q, char *buf, size_t len, bool one_line)
{
    for (;;) {
        ssize_t n;
        if (!q->not_socket) {
            n = recv_socket(q, buf, len, one_line);
            if (n < 0 && errno == ENOTSOCK) {
                q->not_socket = true;
                continue;
            }
        } else {
            /* A pipe or tty may be blocking: only read what poll promises.
             * It cannot be peeked at, so one_line means one byte. */
            int r = wait_fd(q->fd, POLLIN, 0);
            if (r <= 0) {
                if (r == 0)
                    errno = EAGAIN;
                return -1;
            }
            n = read(q->fd, buf, one_line ? 1 : len);
        }
        if (n >= 0 || errno != EINTR)
            return n;
    }
}

/* One read into the framer.  Returns 1 if bytes arrived, 0 if none were
 * there (EOF sets q->closed), -1 with err. */
static int fill(struct mvm_qmp *q, bool one_line, struct mvm_error **err)
{
    char chunk[16384];
    ssize_t n = recv_some(q, chunk, sizeof chunk, one_line);

    if (n == 0 || (n < 0 && errno == ECONNRESET)) {
        q->closed = true;
        return 0;
    }
    if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK)
            return 0;
        return mvm_error_set(err, errno, "reading from QEMU");
    }
    if (mvm_qmp_framer_feed(&q->framer, chunk, (size_t)n, err) < 0)
        return -1;
    return 1;
}

/* Takes the next complete message out of the framer.  Returns 1 with
 * *msg filled, 0 when no complete line is buffered, -1 with err. */
static int take_msg(struct mvm_qmp *q, struct mvm_qmp_msg *msg, struct mvm_error **err)
{
    const char *line;
    size_t len;

    if (!mvm_qmp_framer_next(&q->framer, &line, &len))
        return 0;
    if (mvm_qmp_parse(line, len, msg, err) < 0)
        return -1;
    return 1;
}

/* Returns 1 with the next message, 0 at EOF, -1 with err (ETIMEDOUT when
 * the deadline passes first). */
static int next_msg(struct mvm_qmp *q, uint64_t deadline, int timeout_ms, struct mvm_qmp_msg *msg,
                    struct mvm_error **err)
{
    for (;;) {
        int r = take_msg(q, msg, err);
        if (r != 0)
            return r;
        if (q->closed)
            return 0;
        r = wait_fd(q->fd, POLLIN, deadline);
        if (r < 0)
            return mvm_error_set(err, errno, "waiting for QEMU");
        if (r == 0)
            return mvm_error_set(err, ETIMEDOUT, "no message from QEMU within %d ms", timeout_ms);
        if (fill(q, true, err) < 0)
            return -1;
    }
}

static bool is_reply(const struct mvm_qmp_msg *msg)
{
    return msg->kind == MVM_QMP_RETURN || msg->kind == MVM_QMP_ERROR;
}

static bool is_stale_reply(const struct mvm_qmp *q, const struct mvm_qmp_msg *msg)
{
    return is_reply(msg) && json_is_integer(msg->id) && json_integer_value(msg->id) > 0 &&
           json_integer_value(msg->id) <= q->abandoned_id;
}

static const char *kind_name(enum mvm_qmp_kind kind)
{
    switch (kind) {
    case MVM_QMP_GREETING:
        return "greeting";
    case MVM_QMP_RETURN:
        return "return";
    case MVM_QMP_ERROR:
        return "error";
    case MVM_QMP_EVENT:
        return "event";
    }
    return "message";
}

/* Delivers an event or drops a late reply; anything else is the caller's.
 * Returns true if msg was consumed here. */
static bool absorb(struct mvm_qmp *q, const struct mvm_qmp_msg *msg)
{
    if (msg->kind == MVM_QMP_EVENT) {
        if (q->on_event != NULL)
            q->on_event(q->opaque, msg->event, msg->data);
        return true;
    }
    return is_stale_reply(q, msg);
}

/* Hands every complete buffered message to absorb(); a message nobody
 * waits for means we and QEMU disagree about the conversation. */
static int deliver_buffered(struct mvm_qmp *q, struct mvm_error **err)
{
    for (;;) {
        cleanup_qmp_msg struct mvm_qmp_msg msg = {0};
        int r = take_msg(q, &msg, err);
        if (r <= 0)
            return r;
        if (!absorb(q, &msg))
            return mvm_error_set(err, 0, "unexpected QMP %s while no command was pending",
                                 kind_name(msg.kind));
    }
}

int mvm_qmp_dispatch(struct mvm_qmp *q, struct mvm_error **err)
{
    for (int i = 0; i < DISPATCH_MAX_READS; i++) {
        if (deliver_buffered(q, err) < 0)
            return -1;
        if (q->closed)
            return 1;
        int r = fill(q, false, err);
        if (r < 0)
            return -1;
        if (r == 0 && !q->closed)
            break;
    }
    if (deliver_buffered(q, err) < 0)
        return -1;
    return q->closed ? 1 : 0;
}

/* json_pack's "o*" steals args even when packing fails, and leaves the
 * member out when args is NULL. */
static char *format_command(const char *cmd, json_t *args, json_int_t id, struct mvm_error **err)
{
    cleanup_json json_t *obj =
        json_pack("{s:s, s:o*, s:I}", "execute", cmd, "arguments", args, "id", id);
    cleanup_free char *text = obj ? json_dumps(obj, JSON_COMPACT) : NULL;

    if (text == NULL) {
        mvm_error_set(err, EINVAL, "building the command");
        return NULL;
    }
    return xasprintf("%s\n", text);
}

static int check_reply_id(const struct mvm_qmp_msg *msg, json_int_t id, struct mvm_error **err)
{
    if (msg->kind == MVM_QMP_GREETING || msg->kind == MVM_QMP_EVENT)
        return mvm_error_set(err, 0, "unexpected QMP %s", kind_name(msg->kind));
    if (msg->id == NULL)
        return mvm_error_set(err, 0, "QMP reply has no id, expected %lld", (long long)id);
    if (!json_is_integer(msg->id) || json_integer_value(msg->id) != id) {
        cleanup_free char *got = json_dumps(msg->id, JSON_ENCODE_ANY | JSON_COMPACT);
        return mvm_error_set(err, 0, "QMP reply has id %.64s, expected %lld", got ? got : "?",
                             (long long)id);
    }
    return 0;
}

/* Waits for the reply to command `id`, delivering events meanwhile. */
static int wait_reply(struct mvm_qmp *q, json_int_t id, uint64_t deadline, int timeout_ms,
                      struct mvm_qmp_msg *reply, struct mvm_error **err)
{
    for (;;) {
        int r = next_msg(q, deadline, timeout_ms, reply, err);
        if (r < 0)
            return -1;
        if (r == 0)
            return mvm_error_set(err, 0, "QEMU closed the connection before replying");
        if (!absorb(q, reply))
            return check_reply_id(reply, id, err);
        mvm_qmp_msg_clear(reply);
    }
}

static int execute_by(struct mvm_qmp *q, const char *cmd, json_t *args, json_t **ret,
                      uint64_t deadline, int timeout_ms, struct mvm_error **err)
{
    cleanup_qmp_msg struct mvm_qmp_msg reply = {0};
    json_int_t id = ++q->last_id;

    if (q->closed) {
        json_decref(args);
        return mvm_error_set(err, 0, "QMP command '%s': QEMU closed the connection", cmd);
    }
    cleanup_free char *text = format_command(cmd, args, id, err);
    if (text == NULL)
        return mvm_error_wrap(err, "QMP command '%s'", cmd);
    if (send_all(q, text, strlen(text), deadline, err) < 0 ||
        wait_reply(q, id, deadline, timeout_ms, &reply, err) < 0) {
        /* The reply may still come; it must not be mistaken later for a
         * protocol error. */
        q->abandoned_id = id;
        return mvm_error_wrap(err, "QMP command '%s'", cmd);
    }
    if (reply.kind == MVM_QMP_ERROR)
        return mvm_error_set(err, 0, "QMP command '%s' failed: %s: %s", cmd, reply.error_class,
                             reply.error_desc);
    if (ret != NULL)
        *ret = json_incref(reply.ret);
    return 0;
}

int mvm_qmp_execute(struct mvm_qmp *q, const char *cmd, json_t *args, json_t **ret, int timeout_ms,
                    struct mvm_error **err)
{
    return execute_by(q, cmd, args, ret, deadline_after(timeout_ms), timeout_ms, err);
}

int mvm_qmp_handshake(struct mvm_qmp *q, int timeout_ms, struct mvm_error **err)
{
    cleanup_qmp_msg struct mvm_qmp_msg greeting = {0};
    uint64_t deadline = deadline_after(timeout_ms);
    int r = next_msg(q, deadline, timeout_ms, &greeting, err);

    if (r < 0)
        return mvm_error_wrap(err, "QMP handshake: reading the greeting");
    if (r == 0)
        return mvm_error_set(err, 0, "QMP handshake: QEMU closed the connection before greeting");
    if (greeting.kind != MVM_QMP_GREETING)
        return mvm_error_set(err, 0, "QMP handshake: expected the greeting, got a QMP %s",
                             kind_name(greeting.kind));
    if (execute_by(q, "qmp_capabilities", NULL, NULL, deadline, timeout_ms, err) < 0)
        return mvm_error_wrap(err, "QMP handshake");
    return 0;
}
