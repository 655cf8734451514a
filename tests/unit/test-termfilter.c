/* Unit tests for termfilter.c.  The output filter is checked byte-exact,
 * and every input is also fed in pieces (byte by byte, and cut at every
 * one and every two positions): a guest controls where its writes are
 * split, so the result may never depend on it.
 *
 * The attacks tested are the ones the filter exists for: a guest setting
 * the host clipboard (OSC 52) or making the terminal type a title back
 * into the input (CSI 20 t / 21 t), including the ways a terminal parser
 * can be steered into such a sequence while a naive filter sees something
 * else (a new ESC or C1 control inside an unfinished sequence, C0 controls
 * and DEL that terminals execute or ignore inside a sequence, leading
 * zeros, the UTF-8 encoded C1 controls C2 9D (OSC) and C2 9B (CSI)). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "termfilter.h"
#include "util.h"

/* Prints bytes readably for failure messages. */
static char *show(const char *p, size_t n)
{
    struct buf b = {0};
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)p[i];
        if (c == 0x1b)
            buf_printf(&b, "\\e");
        else if (c < 0x20 || c >= 0x7f || c == '\\')
            buf_printf(&b, "\\x%02x", c);
        else
            buf_append(&b, &p[i], 1);
    }
    buf_append(&b, "", 1);
    return b.data;
}

static void assert_bytes(const struct buf *got, const char *want, size_t wantlen, const char *what)
{
    if (got->len == wantlen && (wantlen == 0 || memcmp(got->data, want, wantlen) == 0))
        return;
    cleanup_free char *g = show(got->data, got->len);
    cleanup_free char *w = show(want, wantlen);
    fail_msg("%s: got \"%s\", want \"%s\"", what, g, w);
}

/* Feeds in[0..len) cut at the given sorted positions; returns the filter
 * state through f. */
static void feed_cuts(struct mvm_outfilter *f, const char *in, size_t len, const size_t *cuts,
                      size_t ncuts, struct buf *out)
{
    size_t at = 0;
    mvm_outfilter_init(f);
    for (size_t i = 0; i <= ncuts; i++) {
        size_t end = i < ncuts ? cuts[i] : len;
        mvm_outfilter_feed(f, in + at, end - at, out);
        at = end;
    }
}

/* Checks in -> want for every way of splitting in, and that each split
 * ends with the same modes and drop count as the whole feed. */
static void check_filter_n(const char *in, size_t len, const char *want, size_t wantlen,
                           unsigned dropped)
{
    struct mvm_outfilter whole, f;
    struct buf out = {0};

    feed_cuts(&whole, in, len, NULL, 0, &out);
    assert_bytes(&out, want, wantlen, "whole");
    assert_int_equal(whole.dropped, dropped);
    buf_free(&out);

    /* byte by byte */
    mvm_outfilter_init(&f);
    for (size_t i = 0; i < len; i++)
        mvm_outfilter_feed(&f, in + i, 1, &out);
    assert_bytes(&out, want, wantlen, "byte by byte");
    assert_int_equal(f.modes, whole.modes);
    assert_int_equal(f.dropped, dropped);
    buf_free(&out);

    for (size_t a = 0; a <= len; a++) {
        for (size_t b = a; b <= len; b++) {
            size_t cuts[2] = {a, b};
            feed_cuts(&f, in, len, cuts, 2, &out);
            if (out.len != wantlen || (wantlen > 0 && memcmp(out.data, want, wantlen) != 0)) {
                cleanup_free char *what = xasprintf("cut at %zu and %zu", a, b);
                assert_bytes(&out, want, wantlen, what);
            }
            assert_int_equal(f.modes, whole.modes);
            assert_int_equal(f.dropped, dropped);
            buf_free(&out);
        }
    }
}
#define CHECK(in, want, dropped) check_filter_n(in, sizeof in - 1, want, sizeof want - 1, dropped)
#define PASSES(in)               check_filter_n(in, sizeof in - 1, in, sizeof in - 1, 0)

static void assert_reset(const struct mvm_outfilter *f, const char *want)
{
    struct buf out = {0};
    mvm_outfilter_reset(f, &out);
    assert_bytes(&out, want, strlen(want), "reset");
    buf_free(&out);
}

/* Feeds whole and returns the filter for mode checks. */
static void feed_str(struct mvm_outfilter *f, const char *s)
{
    struct buf out = {0};
    mvm_outfilter_feed(f, s, strlen(s), &out);
    assert_bytes(&out, s, strlen(s), "mode sequences pass unchanged");
    buf_free(&out);
}

/* ---- OSC -------------------------------------------------------------- */

/* What a removed sequence leaves behind: a CAN, which ends whatever the
 * terminal was in, so the bytes around it cannot join into a new one. */
#define CAN "\x18"

static void test_osc52_dropped(void **state)
{
    CHECK("a\x1b]52;c;aGVsbG8=\x07z", "a" CAN "z", 1);
    CHECK("a\x1b]52;c;aGVsbG8=\x1b\\z", "a" CAN "z", 1);
    CHECK("\x1b]52;;\x07", CAN, 1);
    CHECK("\x1b]52;c;?\x07", CAN, 1); /* a clipboard query is dropped too */
    /* UTF-8 encoded C1 OSC, with BEL and with both STs */
    CHECK("a\xc2\x9d"
          "52;c;aGk=\x07z",
          "a" CAN "z", 1);
    CHECK("a\xc2\x9d"
          "52;p;aGk=\xc2\x9cz",
          "a" CAN "z", 1);
    CHECK("\xc2\x9d"
          "52;c;aGk=\x1b\\",
          CAN, 1);
    /* two in a row, and text with UTF-8 around them */
    CHECK("\xc2\xa9\x1b]52;c;eA==\x07\x1b]52;c;eQ==\x1b\\\xc2\xa9", "\xc2\xa9" CAN CAN "\xc2\xa9",
          2);
    /* The body of a dropped OSC may hold anything but its terminators. */
    CHECK("\x1b]52;c;\xc2\xa9\xc3\xa9\x01\x7f\x07ok", CAN "ok", 1);
}

static void test_osc52_leading_zeros(void **state)
{
    /* Terminals read the number as an integer: 052 is 52. */
    CHECK("\x1b]052;c;aGk=\x07", CAN, 1);
    CHECK("\x1b]0000000000000052;c;aGk=\x07", CAN, 1);
    CHECK("\xc2\x9d"
          "00052;c;aGk=\x07",
          CAN, 1);
    /* Leading zeros of other numbers are normalised away, harmlessly. */
    CHECK("\x1b]00;t\x07", "\x1b]0;t\x07", 0);
    CHECK("\x1b]002;t\x07", "\x1b]2;t\x07", 0);
}

static void test_other_osc_pass(void **state)
{
    PASSES("\x1b]0;my title\x07");
    PASSES("\x1b]2;caf\xc3\xa9 \xc2\xa9\x1b\\");
    PASSES("\x1b]8;;https://example.com/?a=52\x1b\\link\x1b]8;;\x1b\\");
    PASSES("\x1b]7;file://host/home/52\x07");
    PASSES("\x1b]5;x\x07\x1b]520;x\x07\x1b]152;x\x07\x1b]5;52;x\x07");
    PASSES("\xc2\x9d"
           "0;t\xc2\x9c");
    PASSES("\x1b]0;t\x07\x1b]52"
           "2;x\x07");
    PASSES("\x1b];x\x07");
    PASSES("\x1b]0;\xc2z\x07"); /* a stray C2 is the terminal's business */
    /* An OSC ended by another ESC sequence: both pass. */
    PASSES("\x1b]0;t\x1b[31mred");
}

/* Ways back into OSC 52 from inside another sequence. */
static void test_osc52_nested(void **state)
{
    /* A new ESC or C1 inside an unfinished escape, CSI or C2 starts over;
     * the unfinished bytes go, as the terminal drops them. */
    CHECK("\x1b[\x1b]52;c;aGk=\x07", CAN, 1);
    CHECK("\x1b[12\x1b]52;c;aGk=\x07", CAN, 1);
    CHECK("\x1b\x1b]52;c;aGk=\x07", CAN, 1);
    CHECK("\xc2\x1b]52;c;aGk=\x07", CAN, 1);
    CHECK("\xc2\xc2\x9d"
          "52;c;aGk=\x07",
          CAN, 1);
    CHECK("\x1b\xc2\x9d"
          "52;c;aGk=\x07",
          CAN, 1);
    CHECK("\x1b[1;\xc2\x9d"
          "52;c;aGk=\x07",
          CAN, 1);
    CHECK("\x1b[31\x1b[0m", "\x1b[0m", 0);
    /* C0 controls are executed inside an escape without ending it */
    CHECK("\x1b\n]52;c;aGk=\x07", "\n" CAN, 1);
    CHECK("\x1b\r\x08]52;c;aGk=\x07", "\r\x08" CAN, 1);
    /* CAN or a C1 control ends an OSC the terminal was showing */
    CHECK("\x1b]0;t\x18\x1b]52;c;aGk=\x07", "\x1b]0;t\x18" CAN, 1);
    CHECK("\x1b]0;t\x18\xc2\x9d"
          "52;c;aGk=\x07",
          "\x1b]0;t\x18" CAN, 1);
    CHECK("\x1b]0;t\x1a\xc2\x9d"
          "52;c;aGk=\x07",
          "\x1b]0;t\x1a" CAN, 1);
    CHECK("\x1b]0;t\xc2\x9d"
          "52;c;aGk=\x07",
          "\x1b]0;t" CAN, 1);
    CHECK("\x1b]8;;http://x\x1b\x1b]52;c;aGk=\x07", "\x1b]8;;http://x" CAN, 1);
}

/* What is left around a removed sequence must not join into a new one
 * (found by fuzz-proto): the CAN keeps the pieces apart. */
static void test_no_join_across_removal(void **state)
{
    CHECK("\xc2\xc2\x9d"
          "52\x07\x9d"
          "52a",
          CAN "\x9d"
              "52a",
          1);
    CHECK("\x1b\x1b]52;c;x\x07]52;c;y\x07", CAN "]52;c;y\x07", 1);
    CHECK("\x1b[\x1b]52;c;x\x07"
          "21t",
          CAN "21t", 1);
    CHECK("\x1b[2\x1b[21t1t", CAN "1t", 1);
    /* an OSC the terminal was showing when a removed sequence began */
    CHECK("\xc2\x9d\xc2\x9b"
          "21t52;",
          "\xc2\x9d" CAN "52;", 1);
    CHECK("\x1b]\x1b[21t52;c;x\x07", "\x1b]" CAN "52;c;x\x07", 1);
    CHECK("\x1b]0;t\xc2\x1b]52;c;x\x07\x9d"
          "52;c;y\x07",
          "\x1b]0;t\xc2" CAN "\x9d"
          "52;c;y\x07",
          1);
}

/* Controls a terminal ignores inside an OSC cannot hide its number. */
static void test_osc52_ignored_controls(void **state)
{
    CHECK("\x1b]5\n2;c;aGk=\x07", CAN, 1);
    CHECK("\x1b]\x7f"
          "52;c;aGk=\x07",
          CAN, 1);
    CHECK("\xc2\x9d\x01"
          "5\x02"
          "2\r;c;aGk=\x07",
          CAN, 1);
    /* elsewhere in the number of another OSC they are dropped: the
     * terminal would ignore them too */
    CHECK("\x1b]0\x01;t\x07", "\x1b]0;t\x07", 0);
    /* after the number they are the OSC's business */
    PASSES("\x1b]0;a\x01"
           "b\x07");
}

/* ---- text and CSI ----------------------------------------------------- */

static void test_utf8_text(void **state)
{
    PASSES("plain text\r\n");
    PASSES("caf\xc3\xa9 \xc2\xa9 2024 \xe2\x82\xac \xf0\x9f\x98\x80 \xc2\xa0\xc2\xbf");
    PASSES("\xc2z");    /* a lone lead byte passes with what follows */
    PASSES("\xc2\x85"); /* other C1 controls are the terminal's business */
    PASSES("tab\there\x07 bell\x00nul");

    /* A byte that may start a sequence is held until the next decides. */
    struct mvm_outfilter f;
    struct buf out = {0};
    mvm_outfilter_init(&f);
    mvm_outfilter_feed(&f, "ok\x1b", 3, &out);
    assert_bytes(&out, "ok", 2, "ESC held");
    mvm_outfilter_feed(&f, "7\xc2", 2, &out);
    assert_bytes(&out,
                 "ok\x1b"
                 "7",
                 4, "C2 held");
    mvm_outfilter_feed(&f, "\xa9", 1, &out);
    assert_bytes(&out,
                 "ok\x1b"
                 "7\xc2\xa9",
                 6, "released");
    buf_free(&out);
}

static void test_csi(void **state)
{
    /* title and icon reports are dropped */
    CHECK("a\x1b[21tb", "a" CAN "b", 1);
    CHECK("a\x1b[20tb", "a" CAN "b", 1);
    /* Decided from the code: a CSI whose first parameter is 20 or 21 and
     * whose final byte is 't' is dropped whatever follows the ';'. */
    CHECK("\x1b[21;1t", CAN, 1);
    CHECK("\x1b[20;0;0t", CAN, 1);
    CHECK("\x1b[021t", CAN, 1);
    CHECK("\x1b[0020;t", CAN, 1);
    CHECK("\xc2\x9b"
          "21t",
          CAN, 1);
    /* executed or ignored inside the CSI by the terminal: still dropped */
    CHECK("\x1b[\n21t", "\n" CAN, 1);
    CHECK("\x1b[2\x7f"
          "1t",
          "\x7f" CAN, 1);
    /* everything else passes */
    PASSES("\x1b[31mred\x1b[0m");
    PASSES("\x1b[2J\x1b[H\x1b[1;1H\x1b[K");
    PASSES("\x1b[8;24;80t\x1b[22;0t\x1b[23;0t\x1b[210t\x1b[2t\x1b[1t");
    PASSES("\x1b[>21t\x1b[?21t\x1b[21 t");
    PASSES("\x1b[?1049h\x1b[?1049l");
    PASSES("\xc2\x9b"
           "31mred");
    PASSES("\x1b[38;2;255;0;0m\x1b[48:5:17m");
    /* CAN aborts: passed as is */
    PASSES("\x1b[21\x18t");
    /* longer than the filter holds: passed */
    PASSES("\x1b[1;2;3;4;5;6;7;8;9;10;11;12;13;14;15;16;17;18;19;20;21;22;23;24;25;26m");
}

static void check_buf(const struct buf *in, const char *want, unsigned dropped)
{
    check_filter_n(in->data, in->len, want, strlen(want), dropped);
}

/* CSIs longer than the filter holds: a title report is dropped to its
 * end, anything else passes. */
static void test_csi_long(void **state)
{
    struct buf in = {0};

    buf_printf(&in, "a\x1b[21;");
    for (int i = 0; i < 40; i++)
        buf_printf(&in, "1;");
    buf_printf(&in, "tb");
    check_buf(&in, "a" CAN "b", 1);
    buf_free(&in);

    buf_printf(&in, "\x1b[");
    for (int i = 0; i < 70; i++)
        buf_printf(&in, "0");
    buf_printf(&in, "21tz");
    check_buf(&in, CAN "z", 1);
    buf_free(&in);

    /* an OSC 52 inside the skipped part is still found */
    buf_printf(&in, "\x1b[20;");
    for (int i = 0; i < 40; i++)
        buf_printf(&in, "9;");
    buf_printf(&in, "\x1b]52;c;aGk=\x07\n");
    check_buf(&in, CAN CAN "\n", 2);
    buf_free(&in);

    /* executed controls inside it still act */
    buf_printf(&in, "\x1b[21;");
    for (int i = 0; i < 40; i++)
        buf_printf(&in, "1;\r");
    buf_printf(&in, "t");
    /* the CAN goes out where the filter gives up holding (64 bytes) */
    struct buf want = {0};
    for (int i = 0; i < 40; i++)
        buf_printf(&want, i == 29 ? CAN "\r" : "\r");
    buf_append(&want, "", 1);
    check_buf(&in, want.data, 1);
    buf_free(&want);
    buf_free(&in);

    buf_printf(&in, "\x1b[2;");
    for (int i = 0; i < 40; i++)
        buf_printf(&in, "1;");
    buf_printf(&in, "t\x1b[38;5;");
    for (int i = 0; i < 40; i++)
        buf_printf(&in, "21;");
    buf_printf(&in, "m");
    buf_append(&in, "", 1);
    in.len--;
    check_buf(&in, in.data, 0);
    buf_free(&in);
}

static void test_other_escapes(void **state)
{
    PASSES("\x1b"
           "7\x1b"
           "8\x1b"
           "c\x1b(B\x1b)0\x1bM");
    PASSES("\x1bP1$r\x1b\\");
}

/* ---- modes ------------------------------------------------------------ */

static void test_modes(void **state)
{
    struct mvm_outfilter f;

    mvm_outfilter_init(&f);
    assert_reset(&f, "\x1b[0m");
    feed_str(&f, "\x1b[?1049h\x1b[?2004h\x1b[?1000h\x1b[?25l");
    assert_int_equal(f.modes,
                     MVM_MODE_ALTSCREEN | MVM_MODE_PASTE | MVM_MODE_MOUSE | MVM_MODE_CURSOR_HIDDEN);
    assert_reset(&f, "\x1b[?1003l\x1b[?1002l\x1b[?1000l"
                     "\x1b[?2004l"
                     "\x1b[?1049l"
                     "\x1b[?25h"
                     "\x1b[0m");
    feed_str(&f, "\x1b[?1049l\x1b[?2004l\x1b[?1000l\x1b[?25h");
    assert_int_equal(f.modes, 0);
    assert_reset(&f, "\x1b[0m");

    feed_str(&f, "\x1b[?1000;1006h");
    assert_int_equal(f.modes, MVM_MODE_MOUSE | MVM_MODE_MOUSE_EXT);
    assert_reset(&f, "\x1b[?1003l\x1b[?1002l\x1b[?1000l\x1b[?1015l\x1b[?1006l\x1b[?1005l\x1b[0m");
    feed_str(&f, "\x1b[?1006;1000l");
    assert_reset(&f, "\x1b[0m");

    /* ?25 is inverted: 'l' hides the cursor, and mvm shows it again */
    feed_str(&f, "\x1b[?1;1004;47h\x1b[?25;2004l");
    assert_int_equal(f.modes, MVM_MODE_APP_CURSOR | MVM_MODE_FOCUS | MVM_MODE_ALTSCREEN_OLD |
                                  MVM_MODE_CURSOR_HIDDEN);
    assert_reset(&f, "\x1b[?1004l\x1b[?1l\x1b[?1047l\x1b[?25h\x1b[0m");
    /* one 'h' that sets a mode and shows the cursor */
    feed_str(&f, "\x1b[?1047l\x1b[?1l\x1b[?1004;25h");
    assert_int_equal(f.modes, MVM_MODE_FOCUS);
    feed_str(&f, "\x1b[?1004l");
    assert_int_equal(f.modes, 0);

    /* Not private modes (no '?'): not tracked. */
    feed_str(&f, "\x1b[1049h\x1b[25l\x1b[4h");
    assert_int_equal(f.modes, 0);
    /* unknown private modes leave the rest alone */
    feed_str(&f, "\x1b[?9999;;1049h");
    assert_int_equal(f.modes, MVM_MODE_ALTSCREEN);
}

static void test_keypad(void **state)
{
    struct mvm_outfilter f;

    mvm_outfilter_init(&f);
    feed_str(&f, "\x1b=");
    assert_int_equal(f.modes, MVM_MODE_APP_KEYPAD);
    assert_reset(&f, "\x1b>\x1b[0m");
    feed_str(&f, "\x1b>");
    assert_int_equal(f.modes, 0);
    assert_reset(&f, "\x1b[0m");
}

static void test_modes_split(void **state)
{
    static const char in[] = "\x1b[?1049h\x1b[?1000;1006h\x1b=\x1b[?25l";
    /* check_filter_n compares the modes of every split with the whole. */
    PASSES(in);
    struct mvm_outfilter f;
    struct buf out = {0};
    mvm_outfilter_init(&f);
    for (size_t i = 0; i < sizeof in - 1; i++)
        mvm_outfilter_feed(&f, in + i, 1, &out);
    buf_free(&out);
    assert_reset(&f, "\x1b[?1003l\x1b[?1002l\x1b[?1000l\x1b[?1015l\x1b[?1006l\x1b[?1005l"
                     "\x1b>\x1b[?1049l\x1b[?25h\x1b[0m");
}

/* ---- escape ----------------------------------------------------------- */

struct esc_result {
    enum mvm_escape_action action;
    size_t used;
};

static struct esc_result esc(struct mvm_escape *e, const char *in, size_t len, struct buf *out)
{
    struct esc_result r;
    r.used = 12345;
    r.action = mvm_escape_feed(e, in, len, out, &r.used);
    return r;
}
#define ESC(e, s, out) esc(e, s, sizeof s - 1, out)

static void test_escape_kill_at_start(void **state)
{
    struct mvm_escape e;
    struct buf out = {0};

    mvm_escape_init(&e);
    struct esc_result r = ESC(&e, "~.", &out);
    assert_int_equal(r.action, MVM_ESC_KILL);
    assert_int_equal(r.used, 2);
    assert_int_equal(out.len, 0);

    /* the rest after the escape is the caller's to feed again */
    static const char rest[] = "~.rest";
    mvm_escape_init(&e);
    r = ESC(&e, rest, &out);
    assert_int_equal(r.action, MVM_ESC_KILL);
    assert_int_equal(r.used, 2);
    r = esc(&e, rest + r.used, sizeof rest - 1 - r.used, &out);
    assert_int_equal(r.action, MVM_ESC_NONE);
    assert_int_equal(r.used, 4);
    assert_bytes(&out, "rest", 4, "after kill");
    buf_free(&out);
}

static void test_escape_after_newline(void **state)
{
    struct mvm_escape e;
    struct buf out = {0};

    mvm_escape_init(&e);
    struct esc_result r = ESC(&e, "abc\r~.xyz", &out);
    assert_int_equal(r.action, MVM_ESC_KILL);
    assert_int_equal(r.used, 6);
    assert_bytes(&out, "abc\r", 4, "before kill");
    buf_free(&out);

    mvm_escape_init(&e);
    r = ESC(&e, "x\n~.", &out);
    assert_int_equal(r.action, MVM_ESC_KILL);
    assert_int_equal(r.used, 4);
    assert_bytes(&out, "x\n", 2, "before kill");
    buf_free(&out);

    mvm_escape_init(&e);
    r = ESC(&e, "ab\r\n~?x", &out);
    assert_int_equal(r.action, MVM_ESC_HELP);
    assert_int_equal(r.used, 6);
    assert_bytes(&out, "ab\r\n", 4, "before help");
    buf_free(&out);
}

static void test_escape_not_at_line_start(void **state)
{
    struct mvm_escape e;
    struct buf out = {0};

    mvm_escape_init(&e);
    struct esc_result r = ESC(&e, "a~.", &out);
    assert_int_equal(r.action, MVM_ESC_NONE);
    assert_int_equal(r.used, 3);
    assert_bytes(&out, "a~.", 3, "mid-line ~.");
    buf_free(&out);

    /* "~~" at line start sends one '~', and the line has started */
    mvm_escape_init(&e);
    r = ESC(&e, "~~.", &out);
    assert_int_equal(r.action, MVM_ESC_NONE);
    assert_int_equal(r.used, 3);
    assert_bytes(&out, "~.", 2, "~~.");
    buf_free(&out);
}

static void test_escape_others(void **state)
{
    struct mvm_escape e;
    struct buf out = {0};

    mvm_escape_init(&e);
    struct esc_result r = ESC(&e, "~~", &out);
    assert_int_equal(r.action, MVM_ESC_NONE);
    assert_int_equal(r.used, 2);
    assert_bytes(&out, "~", 1, "~~");
    buf_free(&out);

    mvm_escape_init(&e);
    r = ESC(&e, "~x", &out);
    assert_int_equal(r.action, MVM_ESC_NONE);
    assert_bytes(&out, "~x", 2, "~x");
    buf_free(&out);

    mvm_escape_init(&e);
    r = ESC(&e, "~?", &out);
    assert_int_equal(r.action, MVM_ESC_HELP);
    assert_int_equal(r.used, 2);
    assert_int_equal(out.len, 0);

    /* "~" then Enter: both sent, and the next line may start an escape */
    mvm_escape_init(&e);
    r = ESC(&e, "~\r~.", &out);
    assert_int_equal(r.action, MVM_ESC_KILL);
    assert_int_equal(r.used, 4);
    assert_bytes(&out, "~\r", 2, "~ Enter");
    buf_free(&out);
    assert_true(mvm_escape_help[0] != '\0');
    assert_non_null(strstr(mvm_escape_help, "~."));
}

static void test_escape_split(void **state)
{
    struct mvm_escape e;
    struct buf out = {0};

    mvm_escape_init(&e);
    struct esc_result r = ESC(&e, "~", &out);
    assert_int_equal(r.action, MVM_ESC_NONE);
    assert_int_equal(r.used, 1);
    assert_int_equal(out.len, 0); /* held until the next byte decides */
    r = ESC(&e, ".", &out);
    assert_int_equal(r.action, MVM_ESC_KILL);
    assert_int_equal(r.used, 1);
    assert_int_equal(out.len, 0);

    mvm_escape_init(&e);
    r = ESC(&e, "ls\r", &out);
    assert_int_equal(r.action, MVM_ESC_NONE);
    r = ESC(&e, "~", &out);
    assert_int_equal(r.action, MVM_ESC_NONE);
    r = ESC(&e, "x", &out);
    assert_int_equal(r.action, MVM_ESC_NONE);
    assert_bytes(&out, "ls\r~x", 5, "split ~x");
    buf_free(&out);

    /* an empty feed changes nothing */
    mvm_escape_init(&e);
    r = esc(&e, "", 0, &out);
    assert_int_equal(r.action, MVM_ESC_NONE);
    assert_int_equal(r.used, 0);
    r = ESC(&e, "~.", &out);
    assert_int_equal(r.action, MVM_ESC_KILL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_osc52_dropped),
        cmocka_unit_test(test_osc52_leading_zeros),
        cmocka_unit_test(test_other_osc_pass),
        cmocka_unit_test(test_osc52_nested),
        cmocka_unit_test(test_osc52_ignored_controls),
        cmocka_unit_test(test_no_join_across_removal),
        cmocka_unit_test(test_utf8_text),
        cmocka_unit_test(test_csi),
        cmocka_unit_test(test_csi_long),
        cmocka_unit_test(test_other_escapes),
        cmocka_unit_test(test_modes),
        cmocka_unit_test(test_keypad),
        cmocka_unit_test(test_modes_split),
        cmocka_unit_test(test_escape_kill_at_start),
        cmocka_unit_test(test_escape_after_newline),
        cmocka_unit_test(test_escape_not_at_line_start),
        cmocka_unit_test(test_escape_others),
        cmocka_unit_test(test_escape_split),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
