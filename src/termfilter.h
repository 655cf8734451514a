/* termfilter: what mvm does to the bytes between the user's terminal and
 * the guest.  Pure code (unit-tested, fuzzable).
 *
 * Output (guest -> terminal): drops OSC 52 (the guest must not set the
 * host clipboard) and title/icon reports (CSI 20 t / 21 t, which echo
 * guest-chosen bytes back into the input), and tracks the terminal modes
 * the guest switched on so mvm can switch them off at exit.
 *
 * Input (terminal -> guest): the ssh-style escape: after Enter (or at the
 * start), "~." asks to kill the VM, "~?" for help, "~~" sends one "~". */
#ifndef MVM_TERMFILTER_H
#define MVM_TERMFILTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util.h"

enum {
    MVM_MODE_ALTSCREEN = 1 << 0,     /* ?1049 */
    MVM_MODE_ALTSCREEN_OLD = 1 << 1, /* ?47 / ?1047 */
    MVM_MODE_MOUSE = 1 << 2,         /* ?1000 ?1002 ?1003 */
    MVM_MODE_MOUSE_EXT = 1 << 3,     /* ?1005 ?1006 ?1015 */
    MVM_MODE_PASTE = 1 << 4,         /* ?2004 bracketed paste */
    MVM_MODE_FOCUS = 1 << 5,         /* ?1004 */
    MVM_MODE_CURSOR_HIDDEN = 1 << 6, /* ?25 l */
    MVM_MODE_APP_CURSOR = 1 << 7,    /* ?1 DECCKM */
    MVM_MODE_APP_KEYPAD = 1 << 8,    /* ESC = */
};

struct mvm_outfilter {
    int state;
    char seq[64]; /* the sequence held back while deciding */
    size_t seqlen;
    bool osc_drop;
    unsigned modes;
    unsigned dropped; /* sequences removed, for the notice at exit */
};

void mvm_outfilter_init(struct mvm_outfilter *f);
/* Filters `len` bytes into out (appended).  Bytes of an unfinished
 * sequence are held until the next call. */
void mvm_outfilter_feed(struct mvm_outfilter *f, const void *in, size_t len, struct buf *out);
/* Appends sequences that undo every mode still on, plus an SGR reset. */
void mvm_outfilter_reset(const struct mvm_outfilter *f, struct buf *out);

enum mvm_escape_action { MVM_ESC_NONE, MVM_ESC_KILL, MVM_ESC_HELP };

struct mvm_escape {
    bool line_start;
    bool tilde;
};

void mvm_escape_init(struct mvm_escape *e);
/* Passes input through into out, stopping at the first escape command;
 * returns it and sets *used to the bytes consumed. */
enum mvm_escape_action mvm_escape_feed(struct mvm_escape *e, const void *in, size_t len,
                                       struct buf *out, size_t *used);

extern const char mvm_escape_help[];

#endif
