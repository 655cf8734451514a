/* Terminal byte filters; see termfilter.h.
 *
 * The output filter follows a terminal's parser (the DEC state machine,
 * on UTF-8) and holds every control sequence back until it can decide
 * it.  Where terminals read the same bytes differently, it takes the
 * reading that lets least through: a sequence is removed unless every
 * reading of it is harmless.  Three rules keep the filter and the
 * terminal in step after a decision:
 *  - a removed sequence leaves a CAN, which ends whatever the terminal
 *    was in; without it, what came before could join what comes after
 *    ("C2" + removed + "9D" is an OSC);
 *  - a sequence cut short by ESC or a C1 control is dropped silently: it
 *    was held, so the terminal never saw it, and the ESC or C1 control
 *    that cut it is filtered like any other;
 *  - CAN and SUB end any sequence in every terminal: what was held goes
 *    and they pass.
 * Strings that pass (a title) are streamed.  A terminal may keep reading
 * one for longer than the filter does (one not acting on C2 9D, say): what
 * it then reads into the string is what the filter passes as text, which
 * is harmless inside a title, link or mark.  Colours are held whole
 * instead, since a later "?" would turn a colour into a query. */
#include "termfilter.h"

#include <string.h>

enum {
    S_TEXT,
    S_ESC,      /* after ESC */
    S_ESC_INT,  /* ESC and intermediate bytes */
    S_CSI,      /* collecting a CSI into seq */
    S_CSI_SKIP, /* a CSI being removed: skipped up to its final byte */
    S_OSC_NUM,  /* OSC: collecting the number into seq */
    S_STR,      /* the body of an OSC, DCS, SOS, PM or APC */
    S_STR_ESC,  /* ESC inside a body: maybe ST */
};

enum {
    BODY_PASS, /* streamed through */
    BODY_HOLD, /* held and checked whole */
    BODY_SKIP, /* removed */
};

enum { BEL = 0x07, CAN = 0x18, SUB = 0x1a, ESC = 0x1b };

const char mvm_escape_help[] = "\r\nmvm escapes (after Enter):\r\n"
                               "  ~.  kill the VM\r\n"
                               "  ~?  this help\r\n"
                               "  ~~  send a single ~\r\n";
const char mvm_escape_help_attach[] = "\r\nmvm escapes (after Enter):\r\n"
                                      "  ~d  detach (the session keeps running)\r\n"
                                      "  ~.  kill the session's command (ends the session)\r\n"
                                      "  ~?  this help\r\n"
                                      "  ~~  send a single ~\r\n";
const char mvm_escape_help_exec[] = "\r\nmvm escapes (after Enter):\r\n"
                                    "  ~.  kill this command (the session keeps running)\r\n"
                                    "  ~?  this help\r\n"
                                    "  ~~  send a single ~\r\n";

void mvm_outfilter_init(struct mvm_outfilter *f)
{
    memset(f, 0, sizeof *f);
}

static void emit_held(struct mvm_outfilter *f, struct buf *out)
{
    buf_append(out, f->seq, f->seqlen);
    f->seqlen = 0;
}

static void drop_held(struct mvm_outfilter *f, struct buf *out)
{
    f->seqlen = 0;
    f->dropped++;
    buf_append(out, "\x18", 1);
}

/* False if the sequence would be longer than the filter holds. */
static bool hold(struct mvm_outfilter *f, unsigned char c)
{
    if (f->seqlen >= MVM_OUTFILTER_HOLD)
        return false;
    f->seq[f->seqlen++] = (char)c;
    return true;
}

static void start_esc(struct mvm_outfilter *f)
{
    f->seq[0] = ESC;
    f->seqlen = 1;
    f->state = S_ESC;
}

/* ---- modes and CSI ---------------------------------------------------- */

static unsigned mode_bit(long n)
{
    switch (n) {
    case 1049:
        return MVM_MODE_ALTSCREEN;
    case 47:
    case 1047:
        return MVM_MODE_ALTSCREEN_OLD;
    case 1000:
    case 1002:
    case 1003:
        return MVM_MODE_MOUSE;
    case 1005:
    case 1006:
    case 1015:
        return MVM_MODE_MOUSE_EXT;
    case 2004:
        return MVM_MODE_PASTE;
    case 1004:
        return MVM_MODE_FOCUS;
    case 1:
        return MVM_MODE_APP_CURSOR;
    default:
        return 0;
    }
}

/* DEC private modes a guest may set: the tracked ones (undone at exit),
 * and ones that only change how output is drawn: reverse video (visual
 * bell), origin mode, autowrap, cursor blink and visibility, saved
 * cursor, synchronized output.  Not others: more mouse and key reporting
 * modes, resize reports, 132 columns, 8-bit meta keys. */
static bool mode_allowed(long n)
{
    switch (n) {
    case 5:
    case 6:
    case 7:
    case 12:
    case 25:
    case 1048:
    case 2026:
        return true;
    default:
        return mode_bit(n) != 0;
    }
}

/* A CSI in its parts: private marker, parameters, intermediate, final. */
struct csi {
    char marker, inter, final;
    const char *p;
    size_t n;
};

/* False if seq is no well-formed CSI (a marker after the start,
 * parameters after an intermediate, two intermediates): terminals ignore
 * those or read them differently. */
static bool csi_parse(const struct mvm_outfilter *f, struct csi *c)
{
    const char *p = f->seq + 2, *end = f->seq + f->seqlen - 1;
    *c = (struct csi){.final = *end};
    if (p < end && *p >= '<' && *p <= '?')
        c->marker = *p++;
    c->p = p;
    while (p < end && *p >= '0' && *p <= ';')
        p++;
    c->n = (size_t)(p - c->p);
    if (p < end && *p >= ' ' && *p <= '/')
        c->inter = *p++;
    return p == end;
}

/* The parameter at *i as the terminal reads it ("021" is 21), moving *i
 * past it; -1 if it is empty or has sub-parameters. */
static long csi_next(const struct csi *c, size_t *i)
{
    size_t start = *i;
    long v = 0;
    while (*i < c->n && c->p[*i] >= '0' && c->p[*i] <= '9') {
        v = v < 100000 ? v * 10 + (c->p[*i] - '0') : 100000;
        (*i)++;
    }
    bool ok = *i > start && (*i == c->n || c->p[*i] == ';');
    while (*i < c->n && c->p[(*i)++] != ';')
        ;
    return ok ? v : -1;
}

static bool csi_params_are(const struct csi *c, const char *s)
{
    return c->n == strlen(s) && memcmp(c->p, s, c->n) == 0;
}

static bool modes_allowed(const struct csi *c)
{
    if (c->n == 0 || c->p[c->n - 1] == ';')
        return false;
    for (size_t i = 0; i < c->n;)
        if (!mode_allowed(csi_next(c, &i)))
            return false;
    return true;
}

static void track_modes(struct mvm_outfilter *f, const struct csi *c)
{
    for (size_t i = 0; i < c->n;) {
        long num = csi_next(c, &i);
        bool on = c->final == 'h';
        unsigned bit = mode_bit(num);
        if (num == 25)
            bit = MVM_MODE_CURSOR_HIDDEN, on = !on;
        f->modes = on ? f->modes | bit : f->modes & ~bit;
    }
}

/* CSIs without marker or intermediate that only move the cursor, draw,
 * erase, scroll or set tab stops, margins and SGR. */
static const char csi_drawing[] = "@ABCDEFGHIJKLMPSTXZ`abdefgmrs";

/* seq holds "ESC [ ... final" (or C2 9B ...): may it pass? */
static bool csi_allowed(struct mvm_outfilter *f)
{
    struct csi c;
    size_t i = 0;
    if (!csi_parse(f, &c))
        return false;
    if (c.inter)
        return !c.marker && ((c.inter == ' ' && c.final == 'q') ||            /* cursor style */
                             (c.inter == '!' && c.final == 'p' && c.n == 0)); /* soft reset */
    if (c.marker == '?' && (c.final == 'h' || c.final == 'l')) {
        if (!modes_allowed(&c))
            return false;
        track_modes(f, &c);
        return true;
    }
    if (c.marker == '?')
        return c.final == 'J' || c.final == 'K'; /* selective erase */
    /* DA1 and DA2 are answered with fixed digits (and DSR 5/6 n with the
     * cursor position): nothing the guest chose, and programs wait for
     * the DA1 answer to learn that other queries went unanswered. */
    if (c.marker == '>')
        return c.final == 'c' && (c.n == 0 || csi_params_are(&c, "0"));
    if (c.marker)
        return false;
    if (strchr(csi_drawing, c.final))
        return true;
    switch (c.final) {
    case 'c':
        return c.n == 0 || csi_params_are(&c, "0");
    case 'n':
        return csi_params_are(&c, "5") || csi_params_are(&c, "6");
    case 'u': /* restore cursor; with parameters, kitty's keyboard modes */
        return c.n == 0;
    case 'h':
    case 'l': /* insert mode only: 2 locks the keyboard, 12 echoes input */
        return csi_params_are(&c, "4");
    case 't': { /* title stack only: the others move, resize and report */
        long first = csi_next(&c, &i);
        return first == 22 || first == 23;
    }
    default:
        return false;
    }
}

/* ---- OSC and other strings -------------------------------------------- */

/* What happens to the body of OSC num. */
static int osc_body(unsigned num)
{
    switch (num) {
    case 0:
    case 1:
    case 2:
        /* Window and icon titles: shown, and never read back (the title
         * reports CSI 20 t / 21 t are removed). */
    case 8:
        /* Hyperlinks: the terminal opens the link only when the user
         * clicks it, and shows the URL first; a URL printed as text is
         * made clickable by most terminals anyway. */
    case 133:
        /* Shell-integration marks (prompt, command, output, exit code):
         * they annotate the screen, to jump between prompts; nothing is
         * run, and nothing is sent back but the cursor keys a click on
         * a prompt may send, which go to the guest. */
        return BODY_PASS;
    case 4:
    case 10:
    case 11:
    case 12:
    case 104:
    case 110:
    case 111:
    case 112:
        /* Setting colours is drawing; but "?" in place of a colour asks
         * for it, and the answer is typed into the input.  Held whole to
         * look for it. */
        return BODY_HOLD;
    default:
        /* Unknown, and among them: clipboards (52, kitty's 5522, all of
         * iTerm2's 1337: Copy, CopyToClipboard, File=, SetUserVar,
         * RequestUpload), kitty's file transfer (5113), notifications,
         * the cwd (7), which would make the terminal open new windows
         * where the guest says, in host directories it may have written
         * to (a shared folder with a .git or .envrc of its making). */
        return BODY_SKIP;
    }
}

static void str_skip(struct mvm_outfilter *f, bool bel_ends, struct buf *out)
{
    drop_held(f, out);
    f->body = BODY_SKIP;
    f->bel_ends = bel_ends;
    f->state = S_STR;
}

/* The string ends, with a terminator of n bytes (BEL, ST), or n == 0: cut
 * short.  What goes out ends it alike in every terminal: BEL or ESC \ in
 * place of a C1 ST, which terminals not acting on C1 would read on past. */
static void str_end(struct mvm_outfilter *f, size_t n, struct buf *out)
{
    static const char *const term[] = {"", "\x07", "\x1b\\"};
    if (f->body == BODY_HOLD && n == 0) {
        drop_held(f, out); /* read as a whole or not at all */
    } else if (f->body != BODY_SKIP) {
        emit_held(f, out);
        buf_append(out, term[n], n);
    }
    f->seqlen = 0;
    f->state = S_TEXT;
}

static void str_byte(struct mvm_outfilter *f, unsigned char c, struct buf *out)
{
    if (c == BEL && f->bel_ends) {
        str_end(f, 1, out);
    } else if (c == ESC) {
        f->seq[f->seqlen++] = ESC; /* seq has room for it */
        f->state = S_STR_ESC;
    } else if (f->body == BODY_PASS) {
        buf_append(out, &c, 1);
    } else if (f->body == BODY_HOLD) {
        /* A colour is printable ASCII; any control may be ignored by one
         * terminal and end the string in another. */
        if (c < 0x20 || c > 0x7e || c == '?' || !hold(f, c)) {
            drop_held(f, out);
            f->body = BODY_SKIP;
        }
    }
}

static void seq_byte(struct mvm_outfilter *f, unsigned char c, struct buf *out);

static void str_esc_byte(struct mvm_outfilter *f, unsigned char c, struct buf *out)
{
    f->seqlen--; /* the ESC */
    if (c == '\\') {
        str_end(f, 2, out);
        return;
    }
    /* Any other ESC ends the string too, and starts a sequence. */
    str_end(f, 0, out);
    start_esc(f);
    seq_byte(f, c, out);
}

enum osc_end { OSC_SEP, OSC_END, OSC_JUNK };

/* The OSC's number is complete, followed by ';' (OSC_SEP), a terminator
 * or control (OSC_END), or anything else (OSC_JUNK): decide its body. */
static void osc_decide(struct mvm_outfilter *f, enum osc_end how, struct buf *out)
{
    bool digits = f->seqlen > 2; /* seq = introducer, 2 bytes, + digits */
    int body = how == OSC_JUNK || !digits ? BODY_SKIP : osc_body(f->osc_num);
    /* Without a body there is nothing to stream: it goes out only with
     * its terminator. */
    if (body == BODY_PASS && how != OSC_SEP)
        body = BODY_HOLD;
    f->body = (unsigned char)body;
    f->bel_ends = true;
    f->state = S_STR;
    if (body == BODY_PASS)
        emit_held(f, out);
    else if (body == BODY_SKIP)
        drop_held(f, out);
}

static void osc_num_byte(struct mvm_outfilter *f, unsigned char c, struct buf *out)
{
    if (c >= '0' && c <= '9') {
        /* Terminals read the number as a number ("052" is 52): keep no
         * leading zero, so the held digits are the number decided on. */
        if (f->seqlen == 3 && f->seq[2] == '0')
            f->seqlen = 2;
        if (f->seqlen < 8)
            hold(f, c);
        f->osc_num = f->osc_num < 100000 ? f->osc_num * 10 + (c - '0') : 100000;
        return;
    }
    if ((c < 0x20 && c != BEL && c != ESC) || c == 0x7f)
        return; /* ignored inside an OSC by terminals, so "5\n2" is 52 */
    osc_decide(f, c == ';' ? OSC_SEP : c == BEL || c == ESC ? OSC_END : OSC_JUNK, out);
    str_byte(f, c, out);
}

/* ---- ESC and C1 ------------------------------------------------------- */

/* A C1 control starts (raw: the single byte, not C2 c).  A raw one is
 * removed with what it introduces: a terminal in 8-bit mode would act on
 * it, one decoding UTF-8 would show U+FFFD. */
static void c1_start(struct mvm_outfilter *f, unsigned char c, bool raw, struct buf *out)
{
    f->seqlen = 0;
    if (!raw)
        f->seq[f->seqlen++] = '\xc2';
    f->seq[f->seqlen++] = (char)c;
    f->state = S_TEXT;
    switch (c) {
    case 0x9b: /* CSI */
        if (raw) {
            drop_held(f, out);
            f->state = S_CSI_SKIP;
        } else {
            f->state = S_CSI;
        }
        return;
    case 0x9d: /* OSC */
        if (raw) {
            str_skip(f, true, out);
        } else {
            f->osc_num = 0;
            f->state = S_OSC_NUM;
        }
        return;
    case 0x90: /* DCS */
    case 0x98: /* SOS */
    case 0x9e: /* PM */
    case 0x9f: /* APC */
        str_skip(f, false, out);
        return;
    case 0x84: /* IND */
    case 0x85: /* NEL */
    case 0x88: /* HTS */
    case 0x8d: /* RI */
    case 0x8e: /* SS2 */
    case 0x8f: /* SS3 */
    case 0x9c: /* ST */
        if (!raw) {
            emit_held(f, out);
            return;
        }
        break;
    }
    drop_held(f, out);
}

/* A C1 control c (raw: a single byte; also a byte never found in UTF-8):
 * it ends what was in progress, as in every terminal acting on it. */
static void on_c1(struct mvm_outfilter *f, unsigned char c, bool raw, struct buf *out)
{
    if (f->state == S_OSC_NUM) {
        osc_decide(f, OSC_END, out);
    } else if (f->state == S_STR_ESC) {
        f->seqlen--;
        str_end(f, 0, out);
    }
    if (f->state == S_STR) {
        if (c == 0x9c) {
            str_end(f, raw ? 1 : 2, out);
            return;
        }
        str_end(f, 0, out);
    }
    c1_start(f, c, raw, out);
}

/* ESC, then c in 0x20-0x7e. */
static void esc_byte(struct mvm_outfilter *f, unsigned char c, struct buf *out)
{
    hold(f, c);
    switch (c) {
    case '[':
        f->state = S_CSI;
        return;
    case ']':
        f->osc_num = 0;
        f->state = S_OSC_NUM;
        return;
    case 'P': /* DCS */
    case 'X': /* SOS */
    case '^': /* PM */
    case '_': /* APC */
        str_skip(f, false, out);
        return;
    }
    if (c < 0x30) {
        f->state = S_ESC_INT;
        return;
    }
    /* Save and restore the cursor, keypad modes, full reset, and the 7-bit
     * forms of the C1 controls that pass. */
    if (strchr("78=>cDEHMNO\\", c)) {
        if (c == '=')
            f->modes |= MVM_MODE_APP_KEYPAD;
        else if (c == '>')
            f->modes &= ~(unsigned)MVM_MODE_APP_KEYPAD;
        emit_held(f, out);
    } else {
        drop_held(f, out);
    }
    f->state = S_TEXT;
}

/* ESC, intermediates, then c in 0x20-0x7e.  Only character set
 * designations and DEC line attributes pass.  ESC % switches a terminal
 * out of UTF-8, after which the continuation bytes of text would be C1
 * controls; ESC SP switches the controls in its answers to 8 bits. */
static void esc_int_byte(struct mvm_outfilter *f, unsigned char c, struct buf *out)
{
    if (c < 0x30 && f->seqlen < 3) {
        hold(f, c);
        return;
    }
    if (c < 0x30) { /* no such sequence: the rest is text */
        drop_held(f, out);
        f->state = S_TEXT;
        buf_append(out, &c, 1);
        return;
    }
    hold(f, c);
    char i1 = f->seq[1];
    if (strchr("()*+-./", i1) || (i1 == '#' && f->seqlen == 3 && c >= '3' && c <= '8'))
        emit_held(f, out);
    else
        drop_held(f, out);
    f->state = S_TEXT;
}

static void csi_byte(struct mvm_outfilter *f, unsigned char c, struct buf *out)
{
    if (!hold(f, c)) { /* too long to decide: removed to its end */
        drop_held(f, out);
        f->state = c >= 0x40 ? S_TEXT : S_CSI_SKIP;
        return;
    }
    if (c < 0x40)
        return;
    if (csi_allowed(f))
        emit_held(f, out);
    else
        drop_held(f, out);
    f->state = S_TEXT;
}

static void text_byte(struct mvm_outfilter *f, unsigned char c, struct buf *out)
{
    if (c == ESC)
        start_esc(f);
    else
        buf_append(out, &c, 1);
}

/* Inside an unfinished ESC or CSI sequence a terminal starts over at a new
 * ESC, and executes the other C0 controls (and ignores DEL) without
 * leaving the sequence.  The filter must do the same, or a sequence hidden
 * that way gets past it. */
static void seq_byte(struct mvm_outfilter *f, unsigned char c, struct buf *out)
{
    if (c == ESC) {
        start_esc(f); /* the unfinished bytes go, as the terminal drops them */
        return;
    }
    if (c < 0x20 || c == 0x7f) {
        buf_append(out, &c, 1); /* same effect before the sequence as inside */
        return;
    }
    if (c >= 0x80) {
        /* Part of no sequence: some parsers read 0xa0-0xff there as
         * 0x20-0x7f.  The sequence goes; the byte is text. */
        if (f->state != S_CSI_SKIP)
            drop_held(f, out);
        f->seqlen = 0;
        f->state = S_TEXT;
        text_byte(f, c, out);
        return;
    }
    if (f->state == S_ESC)
        esc_byte(f, c, out);
    else if (f->state == S_ESC_INT)
        esc_int_byte(f, c, out);
    else if (f->state == S_CSI)
        csi_byte(f, c, out);
    else if (c >= 0x40) /* S_CSI_SKIP: the final byte */
        f->state = S_TEXT;
}

/* c: ASCII, or a byte of a UTF-8 character (or of a malformed one, which
 * the terminal shows as U+FFFD). */
static void on_byte(struct mvm_outfilter *f, unsigned char c, struct buf *out)
{
    if (c == CAN || c == SUB) {
        f->seqlen = 0;
        f->state = S_TEXT;
        buf_append(out, &c, 1);
        return;
    }
    switch (f->state) {
    case S_TEXT:
        text_byte(f, c, out);
        return;
    case S_OSC_NUM:
        osc_num_byte(f, c, out);
        return;
    case S_STR:
        str_byte(f, c, out);
        return;
    case S_STR_ESC:
        str_esc_byte(f, c, out);
        return;
    default:
        seq_byte(f, c, out);
        return;
    }
}

/* UTF-8: how many continuation bytes follow lead byte c, and the range of
 * the first (Unicode's table 3-7: no overlong forms, which could encode
 * ESC or a C1 control, no surrogates, nothing past U+10FFFF). */
static void utf8_lead(struct mvm_outfilter *f, unsigned char c)
{
    f->u8_need = c < 0xe0 ? 1 : c < 0xf0 ? 2 : 3;
    f->u8_lo = c == 0xe0 ? 0xa0 : c == 0xf0 ? 0x90 : 0x80;
    f->u8_hi = c == 0xed ? 0x9f : c == 0xf4 ? 0x8f : 0xbf;
}

/* Sorts the bytes into what the parser acts on: ASCII, bytes of UTF-8
 * characters, and C1 controls.  A C1 control is U+0080-U+009F encoded in
 * UTF-8 (C2 80..9F), which terminals that decode UTF-8 act on, or a raw
 * 0x80-0x9f continuing no character, which a terminal in 8-bit mode acts
 * on.  A C2 is held until the next byte tells which it starts. */
static void feed_byte(struct mvm_outfilter *f, unsigned char c, struct buf *out)
{
    if (f->c2) {
        f->c2 = false;
        f->seqlen--;
        if (c >= 0x80 && c <= 0x9f) {
            on_c1(f, c, false, out);
            return;
        }
        utf8_lead(f, 0xc2);
        on_byte(f, 0xc2, out);
    }
    if (c < 0x80) {
        f->u8_need = 0;
        on_byte(f, c, out);
    } else if (f->u8_need > 0 && c >= f->u8_lo && c <= f->u8_hi) {
        f->u8_need--;
        f->u8_lo = 0x80, f->u8_hi = 0xbf;
        on_byte(f, c, out);
    } else if (c == 0xc2) {
        f->u8_need = 0;
        f->seq[f->seqlen++] = (char)c; /* seq has room for it */
        f->c2 = true;
    } else if (c <= 0x9f || c == 0xc0 || c == 0xc1 || c >= 0xf5) {
        /* 0xc0, 0xc1 and 0xf5-0xff never occur in UTF-8: removed like an
         * unknown C1 control, so no lax decoder reads an overlong form */
        f->u8_need = 0;
        on_c1(f, c, true, out);
    } else {
        f->u8_need = 0;
        if (c >= 0xc3)
            utf8_lead(f, c);
        on_byte(f, c, out);
    }
}

void mvm_outfilter_feed(struct mvm_outfilter *f, const void *in, size_t len, struct buf *out)
{
    const unsigned char *p = in;
    for (size_t i = 0; i < len; i++) {
        /* Fast path for ASCII text. */
        if (f->state == S_TEXT && !f->c2) {
            size_t j = i;
            while (j < len && p[j] < 0x80 && p[j] != ESC)
                j++;
            if (j > i) {
                buf_append(out, p + i, j - i);
                f->u8_need = 0;
                i = j - 1;
                continue;
            }
        }
        feed_byte(f, p[i], out);
    }
}

void mvm_outfilter_reset(const struct mvm_outfilter *f, struct buf *out)
{
    static const struct {
        unsigned bit;
        const char *seq;
    } undo[] = {
        {MVM_MODE_MOUSE, "\x1b[?1003l\x1b[?1002l\x1b[?1000l"},
        {MVM_MODE_MOUSE_EXT, "\x1b[?1015l\x1b[?1006l\x1b[?1005l"},
        {MVM_MODE_PASTE, "\x1b[?2004l"},
        {MVM_MODE_FOCUS, "\x1b[?1004l"},
        {MVM_MODE_APP_CURSOR, "\x1b[?1l"},
        {MVM_MODE_APP_KEYPAD, "\x1b>"},
        {MVM_MODE_ALTSCREEN, "\x1b[?1049l"},
        {MVM_MODE_ALTSCREEN_OLD, "\x1b[?1047l"},
        {MVM_MODE_CURSOR_HIDDEN, "\x1b[?25h"},
    };
    for (size_t i = 0; i < ARRAY_SIZE(undo); i++)
        if (f->modes & undo[i].bit)
            buf_append(out, undo[i].seq, strlen(undo[i].seq));
    buf_append(out, "\x1b[0m", 4);
}

void mvm_escape_init(struct mvm_escape *e)
{
    e->line_start = true;
    e->tilde = false;
    e->detach = false;
}

enum mvm_escape_action mvm_escape_feed(struct mvm_escape *e, const void *in, size_t len,
                                       struct buf *out, size_t *used)
{
    const unsigned char *p = in;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = p[i];
        if (e->tilde) {
            e->tilde = false;
            if (c == '.' || c == '?' || (c == 'd' && e->detach)) {
                *used = i + 1;
                e->line_start = false;
                return c == '.' ? MVM_ESC_KILL : c == '?' ? MVM_ESC_HELP : MVM_ESC_DETACH;
            }
            if (c != '~')
                buf_append(out, "~", 1);
            buf_append(out, &c, 1);
            e->line_start = c == '\r' || c == '\n';
            continue;
        }
        if (e->line_start && c == '~') {
            e->tilde = true;
            continue;
        }
        buf_append(out, &c, 1);
        e->line_start = c == '\r' || c == '\n';
    }
    *used = len;
    return MVM_ESC_NONE;
}
