/* Fuzzes the terminal output filter, which stands between a hostile guest
 * and the user's terminal (see termfilter.h for what it passes).
 *
 * Beyond memory errors it checks that splitting never changes a result
 * (fed whole, cut in two where the input says, and in chunks whose sizes
 * come from the input), that the filter only removes, that text with no
 * control in it passes unchanged, and that every raw byte 0x80-0x9f it
 * lets through continues a UTF-8 character.  Then it reads the output
 * with a model of a terminal's parser, written apart from the filter, in
 * each of the ways terminals differ (acting on C1 controls in UTF-8 or
 * not; CR and LF ending an OSC or not), and taking the more dangerous
 * reading elsewhere (GR bytes as their GL twins, C0 controls ignored
 * inside an OSC, any way out of an OSC runs it): whatever gets through
 * may not open a DCS, SOS, PM or APC string, run an OSC off the allowlist
 * (52, 5522, 1337...) or ask for a colour, nor run an ESC or CSI sequence
 * off the allowlist (title reports, window reports, DECRQM...). */
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "termfilter.h"
#include "util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Plenty for any sequence the filter holds; more only slows the fuzzer. */
#define MAX_INPUT_SIZE (64 * 1024)

#define CHECK(cond)           \
    do {                      \
        if (!(cond))          \
            __builtin_trap(); \
    } while (0)

/* ---- the filter, fed in pieces ----------------------------------------- */

static void feed(struct mvm_outfilter *f, const uint8_t *p, size_t n, size_t *at, struct buf *out)
{
    mvm_outfilter_feed(f, p, n, out);
    *at += n;
    /* It only removes (a removed sequence leaves one CAN), and holds no
     * more than it has room for. */
    CHECK(out->len <= *at && f->seqlen <= sizeof f->seq);
}

/* Feeds data cut at `cut`, or with cut == SIZE_MAX in chunks of 1..512
 * bytes cycled from the input's first bytes. */
static void run_filter(const uint8_t *data, size_t size, size_t cut, struct mvm_outfilter *f,
                       struct buf *out)
{
    size_t at = 0, round = 0;
    mvm_outfilter_init(f);
    if (cut != SIZE_MAX) {
        feed(f, data, cut, &at, out);
        feed(f, data + cut, size - cut, &at, out);
        return;
    }
    while (at < size) {
        size_t k = round++ % 4, n = 1;
        if (size >= 4)
            n += (((size_t)data[k] << 4) | (data[(k + 1) % 4] >> 4)) % 512;
        feed(f, data + at, n < size - at ? n : size - at, &at, out);
    }
}

static void check_same(const struct mvm_outfilter *a, const struct buf *oa,
                       const struct mvm_outfilter *b, const struct buf *ob)
{
    CHECK(oa->len == ob->len && (oa->len == 0 || memcmp(oa->data, ob->data, oa->len) == 0));
    CHECK(a->state == b->state && a->seqlen == b->seqlen && a->c2 == b->c2);
    CHECK(memcmp(a->seq, b->seq, a->seqlen) == 0 && a->u8_need == b->u8_need);
    CHECK(a->modes == b->modes && a->dropped == b->dropped);
}

/* ---- UTF-8 ------------------------------------------------------------ */

/* The character at p[*i], moving *i past it: strict UTF-8, U+FFFD for a
 * malformed one (its longest valid start, or one byte). */
static unsigned utf8_next(const uint8_t *p, size_t n, size_t *i)
{
    unsigned c = p[(*i)++], cp, lo = 0x80, hi = 0xbf;
    int need;
    if (c < 0x80)
        return c;
    if (c >= 0xc2 && c <= 0xdf) {
        need = 1, cp = c & 0x1f;
    } else if (c >= 0xe0 && c <= 0xef) {
        need = 2, cp = c & 0x0f;
        lo = c == 0xe0 ? 0xa0 : lo, hi = c == 0xed ? 0x9f : hi;
    } else if (c >= 0xf0 && c <= 0xf4) {
        need = 3, cp = c & 0x07;
        lo = c == 0xf0 ? 0x90 : lo, hi = c == 0xf4 ? 0x8f : hi;
    } else {
        return 0xfffd;
    }
    for (int k = 0; k < need; k++, lo = 0x80, hi = 0xbf) {
        if (*i >= n || p[*i] < lo || p[*i] > hi)
            return 0xfffd;
        cp = cp << 6 | (p[(*i)++] & 0x3f);
    }
    return cp;
}

/* Text with no control a terminal would act on: valid UTF-8 without ESC
 * or U+0080-U+009F. */
static bool plain_text(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n;) {
        size_t at = i;
        unsigned c = utf8_next(p, n, &i);
        if (c == 0x1b || (c >= 0x80 && c <= 0x9f))
            return false;
        if (c == 0xfffd && !(i - at == 3 && p[at] == 0xef)) /* not a real U+FFFD */
            return false;
    }
    return true;
}

/* Every byte that starts a character is one a terminal in 8-bit mode
 * would not read as a C1 control (0x80-0x9f), and one that occurs in
 * UTF-8 at all. */
static void check_no_raw_c1(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n;) {
        CHECK(p[i] < 0x80 || p[i] > 0x9f);
        CHECK(p[i] != 0xc0 && p[i] != 0xc1 && p[i] < 0xf5);
        utf8_next(p, n, &i);
    }
}

/* ---- a terminal reading the output ------------------------------------ */

enum t_state { T_GROUND, T_ESC, T_ESC_INT, T_CSI, T_OSC };

struct term {
    bool c1;   /* acts on U+0080-U+009F as C1 controls */
    bool crlf; /* CR and LF abort an OSC (PuTTY) */
    enum t_state st;
    char buf[MVM_OUTFILTER_HOLD]; /* CSI: parameters; ESC: intermediates */
    size_t n;
    int phase;   /* OSC: 0 in the number, 1 after ';', 2 junk after it */
    long num;    /* OSC number */
    bool digits; /* it has some */
    bool query;  /* a '?' in the body */
};

static void t_enter(struct term *t, enum t_state st)
{
    t->st = st;
    t->n = 0;
    t->phase = 0;
    t->num = 0;
    t->digits = t->query = false;
}

static bool colour_osc(long n)
{
    return n == 4 || n == 10 || n == 11 || n == 12 || n == 104 || (n >= 110 && n <= 112);
}

/* The OSC runs (on any way out of it: the more dangerous reading). */
static void t_osc_run(struct term *t)
{
    CHECK(t->phase != 2 && t->digits);
    long n = t->num;
    CHECK(n == 0 || n == 1 || n == 2 || n == 8 || n == 133 || colour_osc(n));
    CHECK(!(colour_osc(n) && t->query));
}

static void t_osc(struct term *t, unsigned c)
{
    if (c == 0x07) {
        t_osc_run(t);
        t->st = T_GROUND;
    } else if ((c == '\r' || c == '\n') && t->crlf) {
        t->st = T_GROUND;
    } else if (c < 0x20 || c == 0x7f) {
        /* ignored, even inside the number */
    } else if (t->phase == 0 && c >= '0' && c <= '9') {
        t->num = t->num < 100000 ? t->num * 10 + (long)(c - '0') : 100000;
        t->digits = true;
    } else if (t->phase == 0) {
        t->phase = c == ';' ? 1 : 2;
    } else if (c == '?') {
        t->query = true;
    }
}

/* Each of the ';'-separated parameters (at least one) is a number, read
 * as terminals read it ("05" is 5), from list (ended by -1). */
static bool params_in(const char *p, size_t n, const long *list)
{
    long v = 0;
    bool digits = false;
    for (size_t i = 0; i <= n; i++) {
        if (i < n && p[i] >= '0' && p[i] <= '9') {
            v = v < 100000 ? v * 10 + (p[i] - '0') : 100000;
            digits = true;
            continue;
        }
        if (i < n && p[i] != ';')
            return false;
        bool found = false;
        for (const long *l = list; *l >= 0; l++)
            found |= digits && *l == v;
        if (!found)
            return false;
        v = 0;
        digits = false;
    }
    return true;
}

static const long private_modes[] = {1,    5,    6,    7,    12,   25,   47,   1000, 1002, 1003,
                                     1004, 1005, 1006, 1015, 1047, 1048, 1049, 2004, 2026, -1};
static const long zero[] = {0, -1}, dsr[] = {5, 6, -1}, insert[] = {4, -1};

/* The CSI with marker m, parameters p[0..n) and final f may run. */
static bool t_csi_plain_ok(const char *p, size_t n, char m, char f)
{
    long first = 0;
    for (size_t i = 0; i < n && p[i] >= '0' && p[i] <= '9'; i++)
        first = first < 100000 ? first * 10 + (p[i] - '0') : 100000;
    if (m == '?' && (f == 'h' || f == 'l'))
        return params_in(p, n, private_modes);
    if (m == '?')
        return f == 'J' || f == 'K';
    if (m == '>')
        return f == 'c' && (n == 0 || params_in(p, n, zero));
    if (m)
        return false;
    if (strchr("@ABCDEFGHIJKLMPSTXZ`abdefgmrs", f))
        return true;
    if (f == 'c')
        return n == 0 || params_in(p, n, zero);
    if (f == 'n')
        return params_in(p, n, dsr);
    if (f == 'h' || f == 'l')
        return params_in(p, n, insert);
    if (f == 'u')
        return n == 0;
    return f == 't' && (first == 22 || first == 23);
}

static void t_csi_run(const struct term *t, char f)
{
    const char *p = t->buf;
    size_t n = t->n;
    char m = 0;
    if (n > 0 && p[0] >= '<' && p[0] <= '?')
        m = *p++, n--;
    size_t np = 0;
    while (np < n && p[np] >= '0' && p[np] <= ';')
        np++;
    if (np == n) {
        CHECK(t_csi_plain_ok(p, np, m, f));
        return;
    }
    /* one intermediate: cursor style, soft reset */
    CHECK(np + 1 == n && !m);
    CHECK((p[np] == ' ' && f == 'q') || (p[np] == '!' && f == 'p' && np == 0));
}

/* c: 0x20-0x7e, inside ESC, its intermediates, or a CSI. */
static void t_seq(struct term *t, unsigned c)
{
    if (t->st == T_ESC) {
        if (c == '[' || c == ']') {
            t_enter(t, c == '[' ? T_CSI : T_OSC);
        } else if (c < 0x30) {
            t->st = T_ESC_INT;
            t->buf[0] = (char)c;
            t->n = 1;
        } else {
            CHECK(strchr("78=>cDEHMNO\\", (int)c)); /* no DCS, SOS, PM, APC... */
            t->st = T_GROUND;
        }
    } else if (t->st == T_ESC_INT) {
        if (c < 0x30) {
            CHECK(t->n < 2);
            t->buf[t->n++] = (char)c;
            return;
        }
        char i1 = t->buf[0];
        CHECK(strchr("()*+-./", i1) || (i1 == '#' && t->n == 1 && c >= '3' && c <= '8'));
        t->st = T_GROUND;
    } else if (c >= 0x40) {
        t_csi_run(t, (char)c);
        t->st = T_GROUND;
    } else {
        CHECK(t->n < sizeof t->buf); /* no longer than the filter holds */
        t->buf[t->n++] = (char)c;
    }
}

static void t_c1(struct term *t, unsigned c)
{
    if (t->st == T_OSC)
        t_osc_run(t); /* 0x9c is its ST; the others end it too */
    t->st = T_GROUND;
    if (c == 0x9b || c == 0x9d)
        t_enter(t, c == 0x9b ? T_CSI : T_OSC);
    else /* no DCS, SOS, PM, APC, and only the C1 controls that move */
        CHECK(c == 0x84 || c == 0x85 || c == 0x88 || c == 0x8d || c == 0x8e || c == 0x8f ||
              c == 0x9c);
}

static void t_char(struct term *t, unsigned c)
{
    if (c == 0x18 || c == 0x1a || c == 0x1b) {
        if (t->st == T_OSC)
            t_osc_run(t);
        t_enter(t, c == 0x1b ? T_ESC : T_GROUND);
    } else if (c >= 0x80 && c <= 0x9f && t->c1) {
        t_c1(t, c);
    } else if (t->st == T_OSC) {
        t_osc(t, c);
    } else if (t->st == T_GROUND || c < 0x20 || c == 0x7f) {
        /* text, or a control executed inside the sequence */
    } else if (c >= 0xa0 && c <= 0xff) {
        t_seq(t, c - 0x80); /* read as its GL twin by some */
    } else if (c < 0x80) {
        t_seq(t, c);
    } /* else ignored: the sequence goes on */
}

static void check_terminal(const uint8_t *p, size_t n, bool c1, bool crlf)
{
    struct term t = {.c1 = c1, .crlf = crlf};
    t_enter(&t, T_GROUND);
    for (size_t i = 0; i < n;)
        t_char(&t, utf8_next(p, n, &i));
    /* The output ends with mvm_outfilter_reset()'s sequences: nothing may
     * be left open for what the terminal reads next. */
    CHECK(t.st == T_GROUND);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > MAX_INPUT_SIZE)
        return 0;

    struct mvm_outfilter whole, cut, chunks;
    struct buf o1 = {0}, o2 = {0}, o3 = {0};
    run_filter(data, size, SIZE_MAX, &chunks, &o1);
    run_filter(data, size, size, &whole, &o2);
    run_filter(data, size, size > 2 ? ((size_t)data[0] << 8 | data[1]) % size : 0, &cut, &o3);
    check_same(&whole, &o2, &chunks, &o1);
    check_same(&whole, &o2, &cut, &o3);

    /* Text with nothing to filter passes as it is; and each removal left
     * a CAN. */
    if (plain_text(data, size))
        CHECK(o2.len == size && (size == 0 || memcmp(o2.data, data, size) == 0));
    size_t cans = 0;
    for (size_t i = 0; i < o2.len; i++)
        cans += o2.data[i] == 0x18;
    CHECK(cans >= whole.dropped);

    mvm_outfilter_reset(&whole, &o2);
    const uint8_t *out = (const uint8_t *)o2.data;
    check_no_raw_c1(out, o2.len);
    for (int r = 0; r < 4; r++)
        check_terminal(out, o2.len, r & 1, r & 2);
    buf_free(&o1);
    buf_free(&o2);
    buf_free(&o3);
    return 0;
}
