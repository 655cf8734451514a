/* qmp: a small client for QEMU's machine protocol.
 *
 * Owns: line framing of the byte stream, parsing and classifying messages
 * (greeting, return, error, event), capability negotiation, synchronous
 * commands with reply/error checking, and dispatch of asynchronous events
 * to one callback.  Knows nothing about sessions or the CLI.
 *
 * The framer and parser do no I/O so they can be fuzzed
 * (tests/fuzz/fuzz-qmp.c); the client does I/O on a file descriptor it
 * borrows (a socketpair end whose peer QEMU got with -chardev socket,fd=N). */
#ifndef MVM_QMP_H
#define MVM_QMP_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "error.h"

/* Longest line accepted from QEMU; QMP replies we use are tiny. */
#define MVM_QMP_MAX_LINE (1024 * 1024)

enum mvm_qmp_kind {
    MVM_QMP_GREETING, /* {"QMP": {...}} */
    MVM_QMP_RETURN,   /* {"return": ..., "id": ...} */
    MVM_QMP_ERROR,    /* {"error": {"class": ..., "desc": ...}, "id": ...} */
    MVM_QMP_EVENT,    /* {"event": NAME, "data": {...}, "timestamp": ...} */
};

/* One parsed message.  `root` owns everything; the other pointers borrow
 * from it and are never NULL for the kinds that define them. */
struct mvm_qmp_msg {
    enum mvm_qmp_kind kind;
    json_t *root;
    json_t *id;              /* RETURN/ERROR: the "id" member, or NULL */
    json_t *ret;             /* RETURN */
    const char *error_class; /* ERROR */
    const char *error_desc;  /* ERROR */
    const char *event;       /* EVENT */
    json_t *data;            /* EVENT: "data" member, or an empty object */
};

/* Parses one line (without the line terminator).  Returns 0 and fills msg
 * (release with mvm_qmp_msg_clear), or -1 with err for anything that is
 * not a well-formed QMP message. */
int mvm_qmp_parse(const char *line, size_t len, struct mvm_qmp_msg *msg, struct mvm_error **err);
void mvm_qmp_msg_clear(struct mvm_qmp_msg *msg);

/* Line framer: feed bytes, take complete lines out.  Lines end with "\n"
 * (QEMU sends "\r\n"; the "\r" is stripped).  Bounded: a line longer than
 * MVM_QMP_MAX_LINE is an error. */
struct mvm_qmp_framer {
    char *buf;
    size_t len, cap;
    size_t start; /* offset of the first unconsumed byte */
};
int mvm_qmp_framer_feed(struct mvm_qmp_framer *f, const void *data, size_t len,
                        struct mvm_error **err);
/* Returns 1 and points *line and *len at the next complete line (valid until
 * the next feed/next call), 0 when none is complete. */
int mvm_qmp_framer_next(struct mvm_qmp_framer *f, const char **line, size_t *len);
void mvm_qmp_framer_free(struct mvm_qmp_framer *f);

/* Events: one callback receives every event, in arrival order, including
 * those that arrive while a command waits for its reply. */
typedef void (*mvm_qmp_event_fn)(void *opaque, const char *event, json_t *data);

struct mvm_qmp;

/* fd is borrowed and must stay open until mvm_qmp_free(). */
struct mvm_qmp *mvm_qmp_new(int fd, mvm_qmp_event_fn on_event, void *opaque);
void mvm_qmp_free(struct mvm_qmp *q);

/* Reads the greeting and negotiates capabilities (qmp_capabilities).
 * Waits at most timeout_ms in total. */
int mvm_qmp_handshake(struct mvm_qmp *q, int timeout_ms, struct mvm_error **err);

/* Sends {"execute": cmd, "arguments": args, "id": N} and waits at most
 * timeout_ms for the matching reply, dispatching events meanwhile.  args
 * may be NULL; its reference is stolen.  On success *ret (if non-NULL)
 * gets a new reference to the "return" value.  A QMP error reply becomes
 * an mvm error "QMP command 'CMD' failed: CLASS: DESC". */
int mvm_qmp_execute(struct mvm_qmp *q, const char *cmd, json_t *args, json_t **ret, int timeout_ms,
                    struct mvm_error **err);

/* For the caller's event loop: the fd is readable; read what is there and
 * dispatch complete events.  Returns 0, 1 when QEMU closed the connection,
 * or -1 with err (a malformed message, an unexpected reply). */
int mvm_qmp_dispatch(struct mvm_qmp *q, struct mvm_error **err);

/* Callers sometimes need to know if the peer is gone. */
bool mvm_qmp_closed(const struct mvm_qmp *q);

#endif
