/* relay: the host half of the control protocol.  Moves the user's stdin
 * to the guest and the guest's stdout/stderr to the user's fds within the
 * credit windows, filters the terminal stream, watches for the escape
 * sequence, and collects the command's exit status.  It owns no fds: the
 * session passes the control socket and the user's stdio. */
#ifndef MVM_RELAY_H
#define MVM_RELAY_H

#include <poll.h>
#include <stdbool.h>
#include <stdint.h>

#include "error.h"
#include "proto.h"
#include "termfilter.h"
#include "util.h"

struct mvm_relay {
    int ctl, in_fd, out_fd, err_fd;
    bool tty;
    struct mvm_proto_decoder dec;
    struct buf toguest;
    size_t toguest_off;

    bool in_done;       /* stdin EOF sent (or stdin unusable) */
    uint32_t in_window; /* stdin bytes the guest will still take */
    struct buf outbuf, errbuf;
    size_t out_off, err_off;
    uint32_t out_window_used; /* guest output not yet credited back */
    bool out_broken;          /* the reader of stdout went away */
    bool ctl_closed;          /* QEMU closed the control socket */

    struct mvm_outfilter filter, err_filter; /* for stdout, stderr */
    bool filter_out, filter_err;             /* the fd is a terminal */
    struct mvm_escape escape;

    bool ready;       /* mvm-init said hello */
    bool have_status; /* EXIT or ERROR received */
    int status;
    char *guest_error; /* ERROR's message */
    bool kill_requested;
    bool detach_requested;   /* ~d, with escape.detach */
    const char *escape_help; /* what ~? shows; mvm_escape_help by default */
    /* Frames of streams other than the main one (mvm exec's), or NULL:
     * then they break the protocol.  -1 with err ends the relay. */
    int (*other)(void *arg, const struct mvm_proto_frame *f, struct mvm_error **err);
    void *other_arg;
    /* The main command's frames go to `other` too (mvm run --detach: a
     * client attaches to it); its EXIT or ERROR is still recorded here. */
    bool route_main;
    /* At EOF of in_fd stop reading, and send no EOF (mvm attach: the
     * command's input outlives any one client). */
    bool keep_input_open;
    /* indices into the caller's pollfd array, set by mvm_relay_pollfds */
    int pi_ctl, pi_in, pi_out, pi_err;
};

void mvm_relay_init(struct mvm_relay *r, int ctl, int in_fd, int out_fd, int err_fd, bool tty);
void mvm_relay_clear(struct mvm_relay *r);

/* Filters stdout/stderr when they are terminals (always stdout with a
 * pty).  Call after init. */
void mvm_relay_filter_terminals(struct mvm_relay *r, bool out_is_tty, bool err_is_tty);

/* Queue the command: argv (NULL/0 for the login shell), "NAME=VALUE"
 * environment entries, START's flags (MVM_START_*) and terminal size. */
void mvm_relay_start(struct mvm_relay *r, char *const *argv, int argc, char *const *env,
                     size_t nenv, uint8_t flags, uint16_t rows, uint16_t cols);
/* Queues any frame for the guest (another stream's). */
void mvm_relay_queue(struct mvm_relay *r, uint8_t type, uint16_t stream, const void *payload,
                     size_t len);
/* Bytes queued for the guest and not yet written. */
size_t mvm_relay_queued(const struct mvm_relay *r);
void mvm_relay_winsize(struct mvm_relay *r, uint16_t rows, uint16_t cols);
void mvm_relay_signal(struct mvm_relay *r, int sig);

/* Adds the relay's fds to p (at most 4 entries) and returns how many. */
int mvm_relay_pollfds(struct mvm_relay *r, struct pollfd *p, int base);
/* Handles the poll results.  -1 with err when the guest broke the
 * protocol (it is hostile: stop talking to it). */
int mvm_relay_handle(struct mvm_relay *r, const struct pollfd *p, struct mvm_error **err);

/* Reads and handles everything available on the control socket now. */
int mvm_relay_read_ctl(struct mvm_relay *r, struct mvm_error **err);

/* True once the status is known and all output has been written (or
 * cannot be written any more). */
bool mvm_relay_done(const struct mvm_relay *r);
/* Writes what is still buffered for the user, blocking briefly at most. */
void mvm_relay_flush_user(struct mvm_relay *r, int timeout_ms);

#endif
