/* termfilter: what mvm does to the bytes between the user's terminal and
 * the guest.  Pure code (unit-tested, fuzzable).
 *
 * Output (guest -> terminal).  The guest controls every byte, and a
 * terminal does more than draw: it can set the host clipboard, transfer
 * files, and type its answers to queries into its input, where they reach
 * the host shell if mvm has exited by then.  So each sequence family is
 * passed only if it is on an allowlist; everything else is removed, and a
 * removed sequence leaves one CAN behind (counted in `dropped`).
 *
 * Passed: text (UTF-8 kept byte for byte) and C0 controls; SGR, cursor
 * movement, erase, insert/delete, scrolling and scrolling regions, tab
 * stops, cursor style, soft reset; insert mode and the DEC private modes
 * listed in mode_allowed() (the ones below are tracked so mvm can switch
 * them off at exit); title push/pop (CSI 22/23 t); ESC 7/8/=/>/c/D/E/H/M/
 * N/O/\ and character set designations; the C1 controls IND NEL HTS RI
 * SS2 SS3 ST in their UTF-8 form; window titles (OSC 0/1/2), hyperlinks
 * (OSC 8), shell-integration marks (OSC 133), and setting (not querying)
 * colours (OSC 4/10/11/12/104/110/111/112).  The queries DA1, DA2 and DSR
 * 5/6 n pass too: their answers are fixed digits and punctuation, and
 * programs wait for the DA1 answer to learn that other queries went
 * unanswered.
 *
 * Removed: the clipboard (OSC 52, kitty's OSC 5522, all of iTerm2's OSC
 * 1337 with its Copy, File= and SetUserVar), file transfer (kitty's OSC
 * 5113), cwd notification (OSC 7), every other OSC; every DCS, APC, PM and
 * SOS string (DECRQSS, XTGETTCAP, user-defined keys, sixel, kitty
 * graphics, which can read host files); reports whose answers carry
 * guest-chosen or host data (CSI 20/21 t titles, colour queries) and the
 * other queries (DECRQM, window reports, XTVERSION, kitty keyboard);
 * window manipulation, printing, UTF-8 mode switches (ESC %) and every
 * other CSI, ESC and C1 control.  Raw C1 bytes (0x80-0x9f that are not
 * part of a UTF-8 character) are read as the controls a terminal in 8-bit
 * mode takes them for, and removed with what they introduce, as are bytes
 * that never occur in UTF-8 (0xc0, 0xc1, 0xf5-0xff).  The filter assumes
 * a UTF-8 terminal for the continuation bytes inside characters.
 *
 * Input (terminal -> guest): the ssh-style escape: after Enter (or at the
 * start), "~." asks to kill the VM, "~?" for help, "~~" sends one "~";
 * with detach set, "~d" asks to detach. */
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

/* The longest sequence held back while deciding; a longer CSI or colour
 * OSC is removed.  OSC bodies that pass or go are decided by their
 * number and streamed, whatever their length. */
#define MVM_OUTFILTER_HOLD 128

struct mvm_outfilter {
    int state;
    /* The sequence held back while deciding, and room after it for the
     * ESC or C2 that may end it. */
    char seq[MVM_OUTFILTER_HOLD + 2];
    size_t seqlen;
    bool c2;                    /* seq ends with a C2 that may start a C1 control */
    unsigned char body;         /* what is done with a string's body */
    bool bel_ends;              /* BEL ends the string (an OSC) */
    unsigned char u8_need;      /* UTF-8 continuation bytes still expected */
    unsigned char u8_lo, u8_hi; /* the range the next one must be in */
    unsigned osc_num;
    unsigned modes;
    unsigned dropped; /* sequences removed, for the notice at exit */
};

void mvm_outfilter_init(struct mvm_outfilter *f);
/* Filters `len` bytes into out (appended).  Bytes of an unfinished
 * sequence are held until the next call. */
void mvm_outfilter_feed(struct mvm_outfilter *f, const void *in, size_t len, struct buf *out);
/* Appends sequences that undo every mode still on, plus an SGR reset. */
void mvm_outfilter_reset(const struct mvm_outfilter *f, struct buf *out);

enum mvm_escape_action { MVM_ESC_NONE, MVM_ESC_KILL, MVM_ESC_HELP, MVM_ESC_DETACH };

struct mvm_escape {
    bool line_start;
    bool tilde;
    bool detach; /* "~d" is an escape (mvm attach); else it passes */
};

void mvm_escape_init(struct mvm_escape *e);
/* Passes input through into out, stopping at the first escape command;
 * returns it and sets *used to the bytes consumed. */
enum mvm_escape_action mvm_escape_feed(struct mvm_escape *e, const void *in, size_t len,
                                       struct buf *out, size_t *used);

extern const char mvm_escape_help[];
extern const char mvm_escape_help_exec[];   /* for mvm exec: ~. ends only its command */
extern const char mvm_escape_help_attach[]; /* for mvm attach: ~d too */

#endif
