/* tty: the user's terminal around a relay (raw mode, non-blocking stdio,
 * window size, restoration); shared by `mvm run` (loop.c) and `mvm exec`
 * (exec.c).  Internal to the session. */
#ifndef MVM_SESSION_TTY_H
#define MVM_SESSION_TTY_H

#include <stdbool.h>
#include <stdint.h>
#include <termios.h>

#include "error.h"
#include "relay.h"

struct tty_state {
    struct termios tio;
    bool tio_saved;
    int fl_saved[3];
    bool fl_set;
};

/* The terminal size of fd, 24x80 when it has none. */
void tty_winsize(int fd, uint16_t *rows, uint16_t *cols);
/* Makes 0-2 non-blocking and, with raw, stdin's terminal raw. */
int tty_setup(struct tty_state *t, bool raw, struct mvm_error **err);
/* Writes what r still holds for the user (r may be NULL), switches off
 * the modes the guest switched on, and restores what tty_setup changed.
 * Idempotent. */
void tty_restore(struct tty_state *t, struct mvm_relay *r, bool stdout_tty);

#endif
