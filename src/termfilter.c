/* Terminal byte filters; see termfilter.h. */
#include "termfilter.h"

#include <string.h>

enum {
    S_TEXT,
    S_ESC,      /* after ESC */
    S_C2,       /* after 0xC2: maybe a UTF-8 encoded C1 control */
    S_CSI,      /* collecting a CSI sequence into seq */
    S_OSC_NUM,  /* OSC: collecting the number into seq */
    S_OSC_BODY, /* OSC body: passed through, or dropped if osc_drop */
    S_OSC_ESC,  /* ESC inside an OSC: maybe ST */
    S_OSC_C2,   /* 0xC2 inside an OSC: maybe ST (U+009C) */
    S_CSI_SKIP, /* a title report too long to hold: dropped up to its end */
};

const char mvm_escape_help[] = "\r\nmvm escapes (after Enter):\r\n"
                               "  ~.  kill the VM\r\n"
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

/* A removed sequence leaves a CAN behind.  The sequence began with ESC or
 * a C1 control, so it ended whatever the terminal was in; CAN does the
 * same and nothing else.  Without it, what came before the removed
 * sequence could join what comes after it: "ESC ] 0 ;" + removed + "52;",
 * "C2" + removed + "9D". */
static void drop_held(struct mvm_outfilter *f, struct buf *out)
{
    f->seqlen = 0;
    f->dropped++;
    buf_append(out, "\x18", 1);
}

static void hold(struct mvm_outfilter *f, char c)
{
    if (f->seqlen < sizeof f->seq)
        f->seq[f->seqlen++] = c;
}

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

/* The first parameter of a CSI as the terminal reads it ("021" is 21);
 * *end gets the index where it ends. */
static long csi_first(const char *p, size_t n, size_t *end)
{
    size_t i = 0;
    long first = 0;
    while (i < n && p[i] >= '0' && p[i] <= '9' && first < 1000)
        first = first * 10 + (p[i++] - '0');
    *end = i;
    return first;
}

/* seq holds "ESC [ params final".  Returns false to drop it. */
static bool csi_done(struct mvm_outfilter *f)
{
    const char *p = f->seq + 2;
    size_t n = f->seqlen - 3;
    char final = f->seq[f->seqlen - 1];
    size_t end;
    long first = csi_first(p, n, &end);
    if (final == 't' && end > 0 && (first == 20 || first == 21) &&
        (end == n || p[end] == ';' || p[end] == ':'))
        return false;
    if ((final != 'h' && final != 'l') || n == 0 || p[0] != '?')
        return true;
    bool set = final == 'h';
    long num = 0;
    for (size_t i = 1; i <= n; i++) {
        if (i < n && p[i] >= '0' && p[i] <= '9') {
            num = num * 10 + (p[i] - '0');
            if (num > 100000)
                num = 100000;
            continue;
        }
        unsigned bit = mode_bit(num);
        if (num == 25)
            bit = MVM_MODE_CURSOR_HIDDEN, set = final == 'l';
        f->modes = set ? f->modes | bit : f->modes & ~bit;
        set = final == 'h';
        num = 0;
    }
    return true;
}

static void osc_start(struct mvm_outfilter *f)
{
    f->state = S_OSC_NUM;
}

/* The OSC's number is complete: drop the whole OSC if it is 52. */
static void osc_decide(struct mvm_outfilter *f, struct buf *out)
{
    /* seq = introducer (ESC ] or C2 9D, two bytes) + digits */
    f->osc_drop = f->seqlen == 4 && memcmp(f->seq + 2, "52", 2) == 0;
    if (f->osc_drop) {
        drop_held(f, out);
    } else {
        emit_held(f, out);
    }
    f->state = S_OSC_BODY;
}

static void osc_out(struct mvm_outfilter *f, const char *bytes, size_t n, struct buf *out)
{
    if (!f->osc_drop)
        buf_append(out, bytes, n);
}

static void feed_byte(struct mvm_outfilter *f, unsigned char c, struct buf *out);

static void feed_osc(struct mvm_outfilter *f, unsigned char c, struct buf *out)
{
    char ch = (char)c;
    switch (f->state) {
    case S_OSC_NUM:
        if ((c < 0x20 && c != 0x07 && c != 0x1b && c != 0x18 && c != 0x1a) || c == 0x7f)
            return; /* ignored inside an OSC by terminals, so "5\n2" is 52 */
        if (c >= '0' && c <= '9' && f->seqlen < 12) {
            /* Terminals read the number as a number ("052" is 52): keep
             * no leading zero, so osc_decide() sees its value. */
            if (f->seqlen == 3 && f->seq[2] == '0')
                f->seqlen = 2;
            hold(f, ch);
            return;
        }
        osc_decide(f, out);
        feed_osc(f, c, out);
        return;
    case S_OSC_BODY:
        if (c == 0x07) { /* BEL terminates */
            osc_out(f, &ch, 1, out);
            f->state = S_TEXT;
        } else if (c == 0x1b) {
            f->state = S_OSC_ESC;
        } else if (c == 0xc2) {
            f->state = S_OSC_C2;
        } else if (c == 0x18 || c == 0x1a) { /* CAN, SUB abort the OSC */
            osc_out(f, &ch, 1, out);
            f->state = S_TEXT;
        } else {
            osc_out(f, &ch, 1, out);
        }
        return;
    case S_OSC_ESC:
        if (c == '\\') { /* ESC \ (ST) terminates */
            osc_out(f, "\x1b\\", 2, out);
            f->state = S_TEXT;
            return;
        }
        /* Any other ESC ends the OSC and starts a new sequence. */
        f->state = S_ESC;
        hold(f, '\x1b');
        feed_byte(f, c, out);
        return;
    case S_OSC_C2:
        if (c == 0x9c) { /* U+009C (ST) terminates */
            osc_out(f, "\xc2\x9c", 2, out);
            f->state = S_TEXT;
            return;
        }
        if (c >= 0x80 && c <= 0x9f) {
            /* Any other C1 control ends the OSC and acts (OSC and CSI
             * start anew): treat it as outside the OSC. */
            f->state = S_C2;
            hold(f, '\xc2');
            feed_byte(f, c, out);
            return;
        }
        osc_out(f, "\xc2", 1, out);
        f->state = S_OSC_BODY;
        feed_osc(f, c, out);
        return;
    }
}

/* Inside an unfinished ESC, C2 or CSI sequence, a terminal starts over at
 * a new ESC (or UTF-8 encoded C1 control), and executes the other C0
 * controls (and ignores DEL) without leaving the sequence.  The filter
 * must do the same, or a sequence hidden that way gets past it.  The
 * abandoned bytes are dropped, as the terminal drops them. */
static bool interrupt_seq(struct mvm_outfilter *f, unsigned char c, struct buf *out)
{
    if (c == 0x1b || c == 0xc2) {
        f->seqlen = 0;
        f->state = S_TEXT;
        feed_byte(f, c, out);
        return true;
    }
    if (f->state != S_C2 && ((c < 0x20 && c != 0x18 && c != 0x1a) || c == 0x7f)) {
        buf_append(out, &c, 1); /* same effect before the sequence as inside */
        return true;
    }
    return false;
}

/* seq is full of a CSI's parameters: true if it may be a title report
 * (the first parameter is 20 or 21, or is all there is so far). */
static bool csi_long_report(struct mvm_outfilter *f)
{
    const char *p = f->seq + 2;
    size_t n = f->seqlen - 2, i;
    long first = csi_first(p, n, &i);
    if (i == n)
        return first <= 21;
    return i > 0 && (first == 20 || first == 21) && (p[i] == ';' || p[i] == ':');
}

static void feed_byte(struct mvm_outfilter *f, unsigned char c, struct buf *out)
{
    if ((f->state == S_ESC || f->state == S_C2 || f->state == S_CSI || f->state == S_CSI_SKIP) &&
        interrupt_seq(f, c, out))
        return;
    switch (f->state) {
    case S_TEXT:
        if (c == 0x1b) {
            hold(f, (char)c);
            f->state = S_ESC;
        } else if (c == 0xc2) {
            hold(f, (char)c);
            f->state = S_C2;
        } else {
            buf_append(out, &c, 1);
        }
        return;
    case S_ESC:
        hold(f, (char)c);
        if (c == '[') {
            f->state = S_CSI;
            return;
        }
        if (c == ']') {
            osc_start(f);
            return;
        }
        if (c == '=')
            f->modes |= MVM_MODE_APP_KEYPAD;
        else if (c == '>')
            f->modes &= ~(unsigned)MVM_MODE_APP_KEYPAD;
        emit_held(f, out);
        f->state = S_TEXT;
        return;
    case S_C2:
        hold(f, (char)c);
        if (c == 0x9d) {
            osc_start(f);
            return;
        }
        if (c == 0x9b) { /* C1 CSI: same parameters as ESC [ */
            f->state = S_CSI;
            return;
        }
        emit_held(f, out);
        f->state = S_TEXT;
        return;
    case S_CSI:
        hold(f, (char)c);
        if (c >= 0x40 && c <= 0x7e) {
            if (csi_done(f))
                emit_held(f, out);
            else
                drop_held(f, out);
            f->state = S_TEXT;
        } else if (f->seqlen == sizeof f->seq && csi_long_report(f)) {
            drop_held(f, out);
            f->state = S_CSI_SKIP;
        } else if (f->seqlen == sizeof f->seq || c < 0x20) {
            emit_held(f, out); /* not a sequence we understand: pass it */
            f->state = S_TEXT;
        }
        return;
    case S_CSI_SKIP:
        if ((c >= 0x40 && c <= 0x7e) || c == 0x18 || c == 0x1a)
            f->state = S_TEXT;
        return;
    default:
        feed_osc(f, c, out);
        return;
    }
}

void mvm_outfilter_feed(struct mvm_outfilter *f, const void *in, size_t len, struct buf *out)
{
    const unsigned char *p = in;
    for (size_t i = 0; i < len; i++) {
        /* Fast path for plain text. */
        if (f->state == S_TEXT) {
            size_t j = i;
            while (j < len && p[j] != 0x1b && p[j] != 0xc2)
                j++;
            if (j > i) {
                buf_append(out, p + i, j - i);
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
}

enum mvm_escape_action mvm_escape_feed(struct mvm_escape *e, const void *in, size_t len,
                                       struct buf *out, size_t *used)
{
    const unsigned char *p = in;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = p[i];
        if (e->tilde) {
            e->tilde = false;
            if (c == '.' || c == '?') {
                *used = i + 1;
                e->line_start = false;
                return c == '.' ? MVM_ESC_KILL : MVM_ESC_HELP;
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
