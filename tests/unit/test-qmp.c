/* Unit tests for qmp/: the framer and parser on their own, and the client
 * against a fake QMP peer that runs a script on the other end of a
 * socketpair.  The peer checks every command it receives and reports the
 * steps it never got to, so a test whose conversation went off the rails
 * fails even if the client-side assertions happen to hold. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <poll.h>
#include <pthread.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>

#include "error.h"
#include "qmp.h"
#include "util.h"

#define GREETING                                                                       \
    "{\"QMP\": {\"version\": {\"qemu\": {\"micro\": 22, \"minor\": 2, \"major\": 7}, " \
    "\"package\": \"Debian 1:7.2+dfsg-7+deb12u18+b3\"}, \"capabilities\": [\"oob\"]}}\r\n"
#define EVENT(name, data)                                                                     \
    "{\"timestamp\": {\"seconds\": 1795887764, \"microseconds\": 468196}, \"event\": \"" name \
    "\"" data "}\r\n"
#define RETURN_EMPTY "{\"return\": {}}"

static void json_cleanup(json_t **j)
{
    json_decref(*j);
}
#define cleanup_json __attribute__((cleanup(json_cleanup)))

static void assert_error_contains(const struct mvm_error *err, const char *needle)
{
    if (err == NULL)
        fail_msg("expected an error containing \"%s\", got none", needle);
    if (strstr(err->msg, needle) == NULL)
        fail_msg("error \"%s\" does not contain \"%s\"", err->msg, needle);
}

/* ---- fake QMP peer ---------------------------------------------------- */

enum peer_op {
    EXPECT, /* read a command; its "execute" must be text (and "arguments" args) */
    REPLY,  /* send text, given the id of the back-th most recent command */
    SEND,   /* send text verbatim: greetings, events, garbage */
    CLOSE,  /* hang up */
};

struct step {
    enum peer_op op;
    const char *text;
    int back;          /* REPLY: 1 = the latest command */
    const char *args;  /* EXPECT: expected "arguments", as JSON */
    const char *after; /* REPLY: sent in the same write, after the reply */
};

/* Script steps; designated so each names only what it uses. */
/* clang-format off */
#define EXPECT_CMD(name)         {.op = EXPECT, .text = (name)}
#define EXPECT_ARGS(name, json)  {.op = EXPECT, .text = (name), .args = (json)}
#define REPLY_TO(n, reply)       {.op = REPLY, .text = (reply), .back = (n)}
#define REPLY_THEN(reply, bytes) {.op = REPLY, .text = (reply), .back = 1, .after = (bytes)}
#define SEND_RAW(bytes)          {.op = SEND, .text = (bytes)}
#define HANG_UP                  {.op = CLOSE}
/* clang-format on */
#define CMD(name, reply) EXPECT_CMD(name), REPLY_TO(1, reply)
#define HANDSHAKE        SEND_RAW(GREETING), CMD("qmp_capabilities", RETURN_EMPTY)

struct peer {
    int fd;
    const struct step *steps;
    size_t nsteps;
    size_t done; /* steps that completed */
    json_t *ids[16];
    size_t nids;
    char failure[512];
};

static int peer_fail(struct peer *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int peer_fail(struct peer *p, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->failure, sizeof p->failure, fmt, ap);
    va_end(ap);
    return -1;
}

/* Byte at a time: slow, but independent of the framer under test. */
static int peer_read_line(struct peer *p, char *line, size_t size)
{
    size_t len = 0;
    for (;;) {
        ssize_t n = read(p->fd, line + len, 1);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return peer_fail(p, "reading a command: %s", strerror(errno));
        if (n == 0)
            return peer_fail(p, "client hung up instead of sending a command");
        if (line[len] == '\n') {
            line[len] = '\0';
            return 0;
        }
        if (++len == size - 1)
            return peer_fail(p, "command line too long");
    }
}

static int peer_send(struct peer *p, const char *text)
{
    for (size_t len = strlen(text); len > 0;) {
        ssize_t n = send(p->fd, text, len, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return peer_fail(p, "sending: %s", strerror(errno));
        text += n;
        len -= (size_t)n;
    }
    return 0;
}

static int peer_expect(struct peer *p, const struct step *s)
{
    char line[4096];
    json_error_t jerr;

    if (peer_read_line(p, line, sizeof line) < 0)
        return -1;
    cleanup_json json_t *cmd = json_loads(line, 0, &jerr);
    const char *name = json_string_value(json_object_get(cmd, "execute"));
    if (name == NULL || strcmp(name, s->text) != 0)
        return peer_fail(p, "expected command '%s', got %s", s->text, line);
    if (s->args != NULL) {
        cleanup_json json_t *want = json_loads(s->args, 0, &jerr);
        if (!json_equal(want, json_object_get(cmd, "arguments")))
            return peer_fail(p, "expected arguments %s, got %s", s->args, line);
    }
    json_t *id = json_object_get(cmd, "id");
    if (id == NULL || p->nids == ARRAY_SIZE(p->ids))
        return peer_fail(p, "command without id (or too many commands): %s", line);
    p->ids[p->nids++] = json_incref(id);
    return 0;
}

/* A template that names its own "id" keeps it: that is how tests send a
 * wrong one. */
static int peer_reply(struct peer *p, const struct step *s)
{
    json_error_t jerr;
    cleanup_json json_t *reply = json_loads(s->text, 0, &jerr);

    if (reply == NULL || s->back < 1 || (size_t)s->back > p->nids)
        return peer_fail(p, "bad REPLY step %s", s->text);
    if (json_object_get(reply, "id") == NULL)
        json_object_set(reply, "id", p->ids[p->nids - (size_t)s->back]);
    cleanup_free char *text = json_dumps(reply, JSON_COMPACT);
    cleanup_free char *line = xasprintf("%s\r\n%s", text, s->after ? s->after : "");
    return peer_send(p, line);
}

static int peer_step(struct peer *p, const struct step *s)
{
    switch (s->op) {
    case EXPECT:
        return peer_expect(p, s);
    case REPLY:
        return peer_reply(p, s);
    case SEND:
        return peer_send(p, s->text);
    case CLOSE:
        close(p->fd);
        p->fd = -1;
        return 0;
    }
    return peer_fail(p, "unknown step");
}

/* Once the script is done the client must say nothing more. */
static void peer_expect_eof(struct peer *p)
{
    char c;
    ssize_t n;

    do
        n = read(p->fd, &c, 1);
    while (n < 0 && errno == EINTR);
    if (n > 0)
        peer_fail(p, "client sent more than the script expected");
    else if (n < 0)
        peer_fail(p, "client never hung up: %s", strerror(errno));
}

static void *peer_main(void *arg)
{
    struct peer *p = arg;

    for (; p->done < p->nsteps; p->done++)
        if (peer_step(p, &p->steps[p->done]) < 0)
            break;
    if (p->done == p->nsteps && p->fd >= 0)
        peer_expect_eof(p);
    if (p->fd >= 0)
        close(p->fd);
    p->fd = -1;
    return NULL;
}

/* ---- fixture ---------------------------------------------------------- */

struct fx {
    int fd; /* the client's end */
    struct mvm_qmp *q;
    struct peer peer;
    pthread_t thread;
    bool running;
    struct buf events; /* "NAME DATA;" per event */
    size_t nevents;
};

static void record_event(void *opaque, const char *event, json_t *data)
{
    struct fx *fx = opaque;
    cleanup_free char *text = json_dumps(data, JSON_COMPACT | JSON_SORT_KEYS);

    buf_printf(&fx->events, "%s %s;", event, text);
    fx->nevents++;
}

static const char *events(struct fx *fx)
{
    buf_append(&fx->events, "", 1);
    fx->events.len--;
    return fx->events.data;
}

static void fx_start(struct fx *fx, const struct step *steps, size_t nsteps)
{
    int sv[2];
    struct timeval tv = {.tv_sec = 5};

    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    /* A client that stops talking fails the test instead of hanging it. */
    assert_int_equal(setsockopt(sv[1], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv), 0);
    fx->fd = sv[0];
    fx->peer = (struct peer){.fd = sv[1], .steps = steps, .nsteps = nsteps};
    assert_int_equal(pthread_create(&fx->thread, NULL, peer_main, &fx->peer), 0);
    fx->running = true;
    fx->q = mvm_qmp_new(fx->fd, record_event, fx);
}
#define START(fx, script) fx_start(fx, script, ARRAY_SIZE(script))

/* Hangs up on the peer and waits for it. */
static void fx_join(struct fx *fx)
{
    mvm_qmp_free(fx->q);
    fx->q = NULL;
    if (fx->fd >= 0)
        close(fx->fd);
    fx->fd = -1;
    if (fx->running)
        pthread_join(fx->thread, NULL);
    fx->running = false;
}

/* Every test ends here: the peer must have run its whole script. */
static void fx_finish(struct fx *fx)
{
    fx_join(fx);
    if (fx->peer.failure[0] != '\0')
        fail_msg("fake QMP peer: %s (at step %zu)", fx->peer.failure, fx->peer.done);
    if (fx->peer.done != fx->peer.nsteps)
        fail_msg("fake QMP peer: %zu of %zu script steps never ran",
                 fx->peer.nsteps - fx->peer.done, fx->peer.nsteps);
}

static int fx_setup(void **state)
{
    struct fx *fx = xcalloc(1, sizeof *fx);
    fx->fd = -1;
    *state = fx;
    return 0;
}

static int fx_teardown(void **state)
{
    struct fx *fx = *state;
    fx_join(fx);
    for (size_t i = 0; i < fx->peer.nids; i++)
        json_decref(fx->peer.ids[i]);
    buf_free(&fx->events);
    free(fx);
    return 0;
}

static void wait_readable(struct fx *fx)
{
    struct pollfd p = {.fd = fx->fd, .events = POLLIN};
    if (poll(&p, 1, 5000) != 1)
        fail_msg("QMP fd never became readable");
}

/* Runs the caller's side of an event loop until `want` events arrived. */
static void pump_events(struct fx *fx, size_t want)
{
    while (fx->nevents < want) {
        cleanup_error struct mvm_error *err = NULL;
        wait_readable(fx);
        int rc = mvm_qmp_dispatch(fx->q, &err);
        if (rc != 0)
            fail_msg("dispatch returned %d: %s", rc, err ? err->msg : "(no error)");
    }
}

static void handshake(struct fx *fx)
{
    cleanup_error struct mvm_error *err = NULL;
    if (mvm_qmp_handshake(fx->q, 5000, &err) < 0)
        fail_msg("handshake: %s", err->msg);
}

/* ---- handshake -------------------------------------------------------- */

static void test_handshake_ok(void **state)
{
    static const struct step script[] = {HANDSHAKE};
    struct fx *fx = *state;

    START(fx, script);
    handshake(fx);
    assert_false(mvm_qmp_closed(fx->q));
    fx_finish(fx);
}

static void test_handshake_eof(void **state)
{
    static const struct step script[] = {HANG_UP};
    struct fx *fx = *state;
    cleanup_error struct mvm_error *err = NULL;

    START(fx, script);
    assert_int_equal(mvm_qmp_handshake(fx->q, 5000, &err), -1);
    assert_error_contains(err, "closed the connection");
    assert_true(mvm_qmp_closed(fx->q));
    fx_finish(fx);
}

static void test_handshake_garbage(void **state)
{
    static const struct step script[] = {SEND_RAW("Welcome to QEMU\r\n")};
    struct fx *fx = *state;
    cleanup_error struct mvm_error *err = NULL;

    START(fx, script);
    assert_int_equal(mvm_qmp_handshake(fx->q, 5000, &err), -1);
    assert_error_contains(err, "QMP handshake: reading the greeting: malformed QMP message");
    fx_finish(fx);
}

static void test_handshake_not_greeting(void **state)
{
    static const struct step script[] = {SEND_RAW(EVENT("STOP", ""))};
    struct fx *fx = *state;
    cleanup_error struct mvm_error *err = NULL;

    START(fx, script);
    assert_int_equal(mvm_qmp_handshake(fx->q, 5000, &err), -1);
    assert_error_contains(err, "expected the greeting, got a QMP event");
    fx_finish(fx);
}

static void test_handshake_timeout(void **state)
{
    static const struct step script[] = {SEND_RAW("{\"QMP\": ")};
    struct fx *fx = *state;
    cleanup_error struct mvm_error *err = NULL;

    START(fx, script);
    assert_int_equal(mvm_qmp_handshake(fx->q, 100, &err), -1);
    assert_int_equal(err->errnum, ETIMEDOUT);
    assert_error_contains(err, "QMP handshake");
    fx_finish(fx);
}

static void test_handshake_refused(void **state)
{
    static const struct step script[] = {
        SEND_RAW(GREETING),
        CMD("qmp_capabilities",
            "{\"error\": {\"class\": \"CommandNotFound\", \"desc\": \"nope\"}}"),
    };
    struct fx *fx = *state;
    cleanup_error struct mvm_error *err = NULL;

    START(fx, script);
    assert_int_equal(mvm_qmp_handshake(fx->q, 5000, &err), -1);
    assert_string_equal(err->msg, "QMP handshake: QMP command 'qmp_capabilities' failed: "
                                  "CommandNotFound: nope");
    fx_finish(fx);
}

/* ---- commands --------------------------------------------------------- */

static void test_execute_return(void **state)
{
    static const struct step script[] = {
        HANDSHAKE,
        CMD("query-status",
            "{\"return\": {\"status\": \"running\", \"singlestep\": false, \"running\": true}}"),
    };
    struct fx *fx = *state;
    cleanup_error struct mvm_error *err = NULL;
    cleanup_json json_t *ret = NULL;

    START(fx, script);
    handshake(fx);
    assert_int_equal(mvm_qmp_execute(fx->q, "query-status", NULL, &ret, 5000, &err), 0);
    assert_null(err);
    assert_string_equal(json_string_value(json_object_get(ret, "status")), "running");
    assert_true(json_is_true(json_object_get(ret, "running")));
    fx_finish(fx);
}

static void test_execute_arguments(void **state)
{
    static const struct step script[] = {
        HANDSHAKE,
        EXPECT_ARGS("device_del", "{\"id\": \"net0\"}"),
        REPLY_TO(1, RETURN_EMPTY),
    };
    struct fx *fx = *state;
    cleanup_error struct mvm_error *err = NULL;

    START(fx, script);
    handshake(fx);
    json_t *args = json_pack("{s:s}", "id", "net0");
    assert_int_equal(mvm_qmp_execute(fx->q, "device_del", args, NULL, 5000, &err), 0);
    fx_finish(fx);
}

static void test_execute_error(void **state)
{
    static const struct step script[] = {
        HANDSHAKE,
        CMD("cont", "{\"error\": {\"class\": \"GenericError\", \"desc\": \"Resetting the "
                    "Virtual Machine is required\"}}"),
    };
    struct fx *fx = *state;
    cleanup_error struct mvm_error *err = NULL;
    json_t *ret = NULL;

    START(fx, script);
    handshake(fx);
    assert_int_equal(mvm_qmp_execute(fx->q, "cont", NULL, &ret, 5000, &err), -1);
    assert_null(ret);
    assert_string_equal(err->msg, "QMP command 'cont' failed: GenericError: Resetting the "
                                  "Virtual Machine is required");
    fx_finish(fx);
}

/* STOP is queued before the command is even sent, RESUME arrives while it
 * waits, RESET in the same write as the reply: all three, in order, and
 * RESET is not read early and stranded where poll() cannot see it. */
static void test_events_in_order(void **state)
{
    static const struct step script[] = {
        HANDSHAKE,
        SEND_RAW(EVENT("STOP", "")),
        EXPECT_CMD("cont"),
        SEND_RAW(EVENT("RESUME", "")),
        REPLY_THEN(RETURN_EMPTY,
                   EVENT("RESET",
                         ", \"data\": {\"guest\": false, \"reason\": \"host-qmp-system-reset\"}")),
    };
    struct fx *fx = *state;
    cleanup_error struct mvm_error *err = NULL;

    START(fx, script);
    handshake(fx);
    assert_int_equal(mvm_qmp_execute(fx->q, "cont", NULL, NULL, 5000, &err), 0);
    /* RESET follows the reply, so it is the event loop's to deliver. */
    assert_string_equal(events(fx), "STOP {};RESUME {};");
    pump_events(fx, 3);
    assert_string_equal(events(fx),
                        "STOP {};RESUME {};"
                        "RESET {\"guest\":false,\"reason\":\"host-qmp-system-reset\"};");
    fx_finish(fx);
}

static void test_reply_wrong_id(void **state)
{
    static const struct step script[] = {
        HANDSHAKE,
        CMD("query-status", "{\"return\": {}, \"id\": 999}"),
    };
    struct fx *fx = *state;
    cleanup_error struct mvm_error *err = NULL;

    START(fx, script);
    handshake(fx);
    assert_int_equal(mvm_qmp_execute(fx->q, "query-status", NULL, NULL, 5000, &err), -1);
    assert_error_contains(err, "QMP command 'query-status': QMP reply has id 999, expected");
    fx_finish(fx);
}

static void test_reply_without_id(void **state)
{
    static const struct step script[] = {
        HANDSHAKE,
        EXPECT_CMD("stop"),
        SEND_RAW("{\"return\": {}}\r\n"),
    };
    struct fx *fx = *state;
    cleanup_error struct mvm_error *err = NULL;

    START(fx, script);
    handshake(fx);
    assert_int_equal(mvm_qmp_execute(fx->q, "stop", NULL, NULL, 5000, &err), -1);
    assert_error_contains(err, "QMP command 'stop': QMP reply has no id");
    fx_finish(fx);
}

static void test_eof_before_reply(void **state)
{
    static const struct step script[] = {
        HANDSHAKE,
        EXPECT_CMD("cont"),
        HANG_UP,
    };
    struct fx *fx = *state;
    cleanup_error struct mvm_error *err = NULL;

    START(fx, script);
    handshake(fx);
    assert_int_equal(mvm_qmp_execute(fx->q, "cont", NULL, NULL, 5000, &err), -1);
    assert_string_equal(err->msg, "QMP command 'cont': QEMU closed the connection before replying");
    assert_true(mvm_qmp_closed(fx->q));

    mvm_error_cleanup(&err);
    assert_int_equal(mvm_qmp_execute(fx->q, "stop", NULL, NULL, 5000, &err), -1);
    assert_error_contains(err, "QMP command 'stop': QEMU closed the connection");
    fx_finish(fx);
}

static void test_timeout(void **state)
{
    static const struct step script[] = {HANDSHAKE, EXPECT_CMD("cont")};
    struct fx *fx = *state;
    cleanup_error struct mvm_error *err = NULL;

    START(fx, script);
    handshake(fx);
    uint64_t t0 = now_ns();
    assert_int_equal(mvm_qmp_execute(fx->q, "cont", NULL, NULL, 100, &err), -1);
    uint64_t ms = (now_ns() - t0) / 1000000;
    assert_in_range(ms, 100, 2000);
    assert_int_equal(err->errnum, ETIMEDOUT);
    assert_error_contains(err, "QMP command 'cont'");
    fx_finish(fx);
}

/* The reply to a command that timed out turns up later: dropped, not a
 * protocol error for the next command. */
static void test_late_reply_dropped(void **state)
{
    static const struct step script[] = {
        HANDSHAKE,
        EXPECT_CMD("cont"),
        EXPECT_CMD("query-status"),
        REPLY_TO(2, RETURN_EMPTY),
        REPLY_TO(1, "{\"return\": {\"status\": \"running\"}}"),
    };
    struct fx *fx = *state;
    cleanup_error struct mvm_error *err = NULL;
    cleanup_json json_t *ret = NULL;

    START(fx, script);
    handshake(fx);
    assert_int_equal(mvm_qmp_execute(fx->q, "cont", NULL, NULL, 50, &err), -1);
    mvm_error_cleanup(&err);
    assert_int_equal(mvm_qmp_execute(fx->q, "query-status", NULL, &ret, 5000, &err), 0);
    assert_string_equal(json_string_value(json_object_get(ret, "status")), "running");
    fx_finish(fx);
}

/* MSG_NOSIGNAL: without it this test dies of SIGPIPE. */
static void test_send_to_dead_peer(void **state)
{
    static const struct step script[] = {HANG_UP};
    struct fx *fx = *state;
    cleanup_error struct mvm_error *err = NULL;

    START(fx, script);
    wait_readable(fx);
    assert_int_equal(mvm_qmp_execute(fx->q, "quit", NULL, NULL, 5000, &err), -1);
    assert_error_contains(err, "QMP command 'quit': sending to QEMU");
    assert_int_equal(err->errnum, EPIPE);
    assert_true(mvm_qmp_closed(fx->q));
    fx_finish(fx);
}

/* ---- dispatch --------------------------------------------------------- */

static void test_dispatch_events_then_eof(void **state)
{
    static const struct step script[] = {
        HANDSHAKE,
        SEND_RAW(EVENT("STOP", "") EVENT("RESUME", "")),
        SEND_RAW(EVENT("GUEST_PANICKED", ", \"data\": {\"action\": \"pause\"}")),
        SEND_RAW(
            EVENT("SHUTDOWN", ", \"data\": {\"guest\": true, \"reason\": \"guest-shutdown\"}")),
        HANG_UP,
    };
    struct fx *fx = *state;
    int rc = 0;

    START(fx, script);
    handshake(fx);
    for (int i = 0; i < 100 && rc == 0; i++) {
        cleanup_error struct mvm_error *err = NULL;
        wait_readable(fx);
        rc = mvm_qmp_dispatch(fx->q, &err);
        if (rc < 0)
            fail_msg("dispatch: %s", err->msg);
    }
    assert_int_equal(rc, 1);
    assert_true(mvm_qmp_closed(fx->q));
    assert_string_equal(events(fx), "STOP {};RESUME {};GUEST_PANICKED {\"action\":\"pause\"};"
                                    "SHUTDOWN {\"guest\":true,\"reason\":\"guest-shutdown\"};");
    fx_finish(fx);
}

static void test_dispatch_unsolicited_reply(void **state)
{
    static const struct step script[] = {
        HANDSHAKE,
        SEND_RAW(EVENT("STOP", "") "{\"return\": {}, \"id\": 42}\r\n"),
    };
    struct fx *fx = *state;
    cleanup_error struct mvm_error *err = NULL;
    int rc = 0;

    START(fx, script);
    handshake(fx);
    while (rc == 0 && !str_has_prefix(events(fx), "STOP")) {
        wait_readable(fx);
        rc = mvm_qmp_dispatch(fx->q, &err);
    }
    while (rc == 0) {
        wait_readable(fx);
        rc = mvm_qmp_dispatch(fx->q, &err);
    }
    assert_int_equal(rc, -1);
    assert_error_contains(err, "unexpected QMP return");
    assert_string_equal(events(fx), "STOP {};");
    fx_finish(fx);
}

static void test_dispatch_malformed(void **state)
{
    static const struct step script[] = {HANDSHAKE, SEND_RAW("{\"event\": 5}\r\n")};
    struct fx *fx = *state;
    cleanup_error struct mvm_error *err = NULL;
    int rc = 0;

    START(fx, script);
    handshake(fx);
    while (rc == 0) {
        wait_readable(fx);
        rc = mvm_qmp_dispatch(fx->q, &err);
    }
    assert_int_equal(rc, -1);
    assert_error_contains(err, "\"event\" is not a string");
    fx_finish(fx);
}

/* Not a socket (QEMU's -qmp stdio, say): reads fall back to poll + read. */
static void test_dispatch_on_pipe(void **state)
{
    static const char input[] = EVENT("STOP", "") EVENT("RESUME", "");
    struct fx *fx = *state;
    int p[2];
    int rc = 0;

    assert_int_equal(pipe(p), 0);
    fx->fd = p[0];
    fx->q = mvm_qmp_new(fx->fd, record_event, fx);
    assert_int_equal(write(p[1], input, sizeof input - 1), (ssize_t)sizeof input - 1);
    close(p[1]);
    while (rc == 0) {
        cleanup_error struct mvm_error *err = NULL;
        wait_readable(fx);
        rc = mvm_qmp_dispatch(fx->q, &err);
        if (rc < 0)
            fail_msg("dispatch: %s", err->msg);
    }
    assert_int_equal(rc, 1);
    assert_string_equal(events(fx), "STOP {};RESUME {};");
}

/* ---- the fake peer itself: a harness that cannot fail proves nothing -- */

static void test_peer_catches_wrong_command(void **state)
{
    static const struct step script[] = {HANDSHAKE, CMD("stop", RETURN_EMPTY)};
    struct fx *fx = *state;
    cleanup_error struct mvm_error *err = NULL;

    START(fx, script);
    handshake(fx);
    assert_int_equal(mvm_qmp_execute(fx->q, "cont", NULL, NULL, 5000, &err), -1);
    fx_join(fx);
    assert_non_null(strstr(fx->peer.failure, "expected command 'stop'"));
}

static void test_peer_catches_unused_steps(void **state)
{
    static const struct step script[] = {HANDSHAKE, CMD("quit", RETURN_EMPTY)};
    struct fx *fx = *state;

    START(fx, script);
    handshake(fx);
    fx_join(fx);
    assert_int_equal(fx->peer.done, 3);
    assert_int_equal(fx->peer.nsteps, 5);
}

/* ---- framer ----------------------------------------------------------- */

static void expect_line(struct mvm_qmp_framer *f, const char *want)
{
    const char *line = NULL;
    size_t len = 0;

    assert_int_equal(mvm_qmp_framer_next(f, &line, &len), 1);
    assert_int_equal(len, strlen(want));
    assert_memory_equal(line, want, len);
    assert_int_equal(line[len], '\0');
}

static void expect_no_line(struct mvm_qmp_framer *f)
{
    const char *line = NULL;
    size_t len = 0;

    assert_int_equal(mvm_qmp_framer_next(f, &line, &len), 0);
}

static void feed(struct mvm_qmp_framer *f, const char *s)
{
    cleanup_error struct mvm_error *err = NULL;

    if (mvm_qmp_framer_feed(f, s, strlen(s), &err) < 0)
        fail_msg("feed: %s", err->msg);
}

static void test_framer_crlf(void **state)
{
    struct mvm_qmp_framer f = {0};

    feed(&f, "a\r\nb\n\r\nc\rd\r\n");
    expect_line(&f, "a");
    expect_line(&f, "b");
    expect_line(&f, "");
    expect_line(&f, "c\rd");
    expect_no_line(&f);
    mvm_qmp_framer_free(&f);
}

static void test_framer_split(void **state)
{
    struct mvm_qmp_framer f = {0};

    feed(&f, "{\"ret");
    expect_no_line(&f);
    feed(&f, "urn\": {}}\r");
    expect_no_line(&f);
    feed(&f, "\n{\"event\"");
    expect_line(&f, RETURN_EMPTY);
    expect_no_line(&f);
    feed(&f, ": \"STOP\"}\r\n");
    expect_line(&f, "{\"event\": \"STOP\"}");
    expect_no_line(&f);
    mvm_qmp_framer_free(&f);
}

static void test_framer_many_lines(void **state)
{
    struct mvm_qmp_framer f = {0};
    struct buf in = {0};

    for (int i = 0; i < 1000; i++)
        buf_printf(&in, "{\"return\": %d}\r\n", i);
    buf_append(&in, "{\"partial", 9);
    cleanup_error struct mvm_error *err = NULL;
    assert_int_equal(mvm_qmp_framer_feed(&f, in.data, in.len, &err), 0);
    for (int i = 0; i < 1000; i++) {
        cleanup_free char *want = xasprintf("{\"return\": %d}", i);
        expect_line(&f, want);
    }
    expect_no_line(&f);
    feed(&f, "\"}\n");
    expect_line(&f, "{\"partial\"}");
    buf_free(&in);
    mvm_qmp_framer_free(&f);
}

static void test_framer_line_limit(void **state)
{
    struct mvm_qmp_framer f = {0};
    size_t max = MVM_QMP_MAX_LINE;
    char *big = xmalloc(max + 3);
    cleanup_error struct mvm_error *err = NULL;

    /* Exactly at the limit, with QEMU's "\r\n", is fine. */
    memset(big, 'x', max);
    memcpy(big + max, "\r\n", 2);
    assert_int_equal(mvm_qmp_framer_feed(&f, big, max + 2, &err), 0);
    big[max] = '\0';
    expect_line(&f, big);
    mvm_qmp_framer_free(&f);

    /* One byte over, complete in a single feed. */
    memset(big, 'x', max + 1);
    big[max + 1] = '\n';
    assert_int_equal(mvm_qmp_framer_feed(&f, big, max + 2, &err), -1);
    assert_error_contains(err, "longer than");
    mvm_error_cleanup(&err);
    mvm_qmp_framer_free(&f);

    /* Over the limit in small pieces with no newline: refused before the
     * buffer grows past the limit. */
    int rc = 0;
    size_t fed = 0;
    while (rc == 0 && fed < 2 * max) {
        rc = mvm_qmp_framer_feed(&f, big, 4096, &err);
        fed += 4096;
    }
    assert_int_equal(rc, -1);
    assert_in_range(fed, max, max + 4096 + 1);
    assert_true(f.cap <= 2 * max);
    mvm_qmp_framer_free(&f);
    free(big);
}

/* Consumed lines are dropped on the next feed, so a long conversation runs
 * in constant memory, and the memory of one big line is given back. */
static void test_framer_memory_bounded(void **state)
{
    struct mvm_qmp_framer f = {0};

    for (int i = 0; i < 100000; i++) {
        feed(&f, "{\"event\": \"STOP\"}\r\n{\"ev");
        expect_line(&f, "{\"event\": \"STOP\"}");
        feed(&f, "ent\": \"RESUME\"}\r\n");
        expect_line(&f, "{\"event\": \"RESUME\"}");
    }
    assert_true(f.cap <= 4096);

    char *big = xmalloc(512 * 1024);
    memset(big, ' ', 512 * 1024);
    big[512 * 1024 - 1] = '\n';
    cleanup_error struct mvm_error *err = NULL;
    assert_int_equal(mvm_qmp_framer_feed(&f, big, 512 * 1024, &err), 0);
    free(big);
    const char *line;
    size_t len;
    assert_int_equal(mvm_qmp_framer_next(&f, &line, &len), 1);
    feed(&f, "{}\n");
    assert_true(f.cap <= 4096);
    expect_line(&f, "{}");
    mvm_qmp_framer_free(&f);
}

/* ---- parser ----------------------------------------------------------- */

struct parse_case {
    const char *text;
    size_t len; /* 0: strlen(text) */
    int kind;   /* enum mvm_qmp_kind, or -1 for malformed */
    const char *err;
};

static const struct parse_case parse_cases[] = {
    {"{\"QMP\": {\"version\": {}, \"capabilities\": [\"oob\"]}}", 0, MVM_QMP_GREETING, NULL},
    {"{\"return\": {}}", 0, MVM_QMP_RETURN, NULL},
    {"{\"return\": [1, 2], \"id\": \"x\"}", 0, MVM_QMP_RETURN, NULL},
    {"{\"error\": {\"class\": \"GenericError\", \"desc\": \"d\"}, \"id\": 3}", 0, MVM_QMP_ERROR,
     NULL},
    {"{\"timestamp\": {}, \"event\": \"STOP\"}", 0, MVM_QMP_EVENT, NULL},
    {"{\"event\": \"RESET\", \"data\": {\"guest\": true}}", 0, MVM_QMP_EVENT, NULL},
    {"", 0, -1, "malformed"},
    {"Welcome", 0, -1, "malformed"},
    {"{\"return\": {}", 0, -1, "malformed"},
    {"{\"return\": {}} {}", 0, -1, "malformed"},
    {"{\"return\": {}, \"return\": {}}", 0, -1, "malformed"},
    {"{\"return\": {}}\0", 15, -1, "malformed"},
    {"{\"event\": \"A\\u0000B\"}", 0, -1, "malformed"},
    {"{\"event\": \"\xff\"}", 0, -1, "malformed"},
    {"[]", 0, -1, "not a JSON object"},
    {"[{\"return\": {}}]", 0, -1, "not a JSON object"},
    {"\"QMP\"", 0, -1, "malformed"},
    {"null", 0, -1, "malformed"},
    {"{}", 0, -1, "neither"},
    {"{\"execute\": \"cont\"}", 0, -1, "neither"},
    {"{\"QMP\": 1}", 0, -1, "\"QMP\" is not an object"},
    {"{\"QMP\": {}, \"return\": {}}", 0, -1, "both \"QMP\" and \"return\""},
    {"{\"return\": {}, \"event\": \"STOP\"}", 0, -1, "both"},
    {"{\"error\": {\"class\": \"C\", \"desc\": \"d\"}, \"return\": 1}", 0, -1, "both"},
    {"{\"event\": 5}", 0, -1, "\"event\" is not a string"},
    {"{\"event\": null}", 0, -1, "\"event\" is not a string"},
    {"{\"event\": \"STOP\", \"data\": []}", 0, -1, "\"data\" is not an object"},
    {"{\"error\": \"boom\"}", 0, -1, "\"error\" is not an object"},
    {"{\"error\": {\"desc\": \"d\"}}", 0, -1, "must be strings"},
    {"{\"error\": {\"class\": 1, \"desc\": \"d\"}}", 0, -1, "must be strings"},
    {"{\"error\": {\"class\": \"C\"}}", 0, -1, "must be strings"},
    {"{\"error\": {\"class\": \"C\", \"desc\": {}}}", 0, -1, "must be strings"},
};

static void test_parse_table(void **state)
{
    for (size_t i = 0; i < ARRAY_SIZE(parse_cases); i++) {
        const struct parse_case *c = &parse_cases[i];
        size_t len = c->len ? c->len : strlen(c->text);
        struct mvm_qmp_msg msg = {.root = (json_t *)1};
        cleanup_error struct mvm_error *err = NULL;
        int rc = mvm_qmp_parse(c->text, len, &msg, &err);

        if (c->kind < 0) {
            if (rc != -1)
                fail_msg("case %zu: %s parsed, should not have", i, c->text);
            if (strstr(err->msg, c->err) == NULL)
                fail_msg("case %zu: error \"%s\" lacks \"%s\"", i, err->msg, c->err);
            assert_null(msg.root);
            continue;
        }
        if (rc != 0)
            fail_msg("case %zu: %s: %s", i, c->text, err->msg);
        assert_int_equal(msg.kind, c->kind);
        assert_non_null(msg.root);
        mvm_qmp_msg_clear(&msg);
        assert_null(msg.root);
    }
}

static void test_parse_fields(void **state)
{
    struct mvm_qmp_msg msg = {0};
    const char *line;

    line = "{\"error\": {\"class\": \"GenericError\", \"desc\": \"no\"}, \"id\": 7}";
    assert_int_equal(mvm_qmp_parse(line, strlen(line), &msg, NULL), 0);
    assert_string_equal(msg.error_class, "GenericError");
    assert_string_equal(msg.error_desc, "no");
    assert_int_equal(json_integer_value(msg.id), 7);
    mvm_qmp_msg_clear(&msg);

    line = "{\"return\": {\"running\": true}}";
    assert_int_equal(mvm_qmp_parse(line, strlen(line), &msg, NULL), 0);
    assert_null(msg.id);
    assert_true(json_is_true(json_object_get(msg.ret, "running")));
    mvm_qmp_msg_clear(&msg);

    /* No "data": callers still get an (empty) object. */
    line = "{\"timestamp\": {\"seconds\": 1, \"microseconds\": 2}, \"event\": \"STOP\"}";
    assert_int_equal(mvm_qmp_parse(line, strlen(line), &msg, NULL), 0);
    assert_string_equal(msg.event, "STOP");
    assert_true(json_is_object(msg.data));
    assert_int_equal(json_object_size(msg.data), 0);
    mvm_qmp_msg_clear(&msg);

    line = "{\"event\": \"SHUTDOWN\", \"data\": {\"guest\": false, \"reason\": \"host-qmp-quit\"}}";
    assert_int_equal(mvm_qmp_parse(line, strlen(line), &msg, NULL), 0);
    assert_string_equal(json_string_value(json_object_get(msg.data, "reason")), "host-qmp-quit");
    mvm_qmp_msg_clear(&msg);
}

#define FX_TEST(fn) cmocka_unit_test_setup_teardown(fn, fx_setup, fx_teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_framer_crlf),
        cmocka_unit_test(test_framer_split),
        cmocka_unit_test(test_framer_many_lines),
        cmocka_unit_test(test_framer_line_limit),
        cmocka_unit_test(test_framer_memory_bounded),
        cmocka_unit_test(test_parse_table),
        cmocka_unit_test(test_parse_fields),
        FX_TEST(test_handshake_ok),
        FX_TEST(test_handshake_eof),
        FX_TEST(test_handshake_garbage),
        FX_TEST(test_handshake_not_greeting),
        FX_TEST(test_handshake_timeout),
        FX_TEST(test_handshake_refused),
        FX_TEST(test_execute_return),
        FX_TEST(test_execute_arguments),
        FX_TEST(test_execute_error),
        FX_TEST(test_events_in_order),
        FX_TEST(test_reply_wrong_id),
        FX_TEST(test_reply_without_id),
        FX_TEST(test_eof_before_reply),
        FX_TEST(test_timeout),
        FX_TEST(test_late_reply_dropped),
        FX_TEST(test_send_to_dead_peer),
        FX_TEST(test_dispatch_events_then_eof),
        FX_TEST(test_dispatch_unsolicited_reply),
        FX_TEST(test_dispatch_malformed),
        FX_TEST(test_dispatch_on_pipe),
        FX_TEST(test_peer_catches_wrong_command),
        FX_TEST(test_peer_catches_unused_steps),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
