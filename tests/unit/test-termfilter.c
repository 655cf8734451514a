/* Unit tests for termfilter.c.  The output filter is checked byte-exact,
 * and every input is also fed in pieces (byte by byte, and cut at every
 * one and every two positions): a guest controls where its writes are
 * split, so the result may never depend on it.
 *
 * The filter passes sequence families by allowlist.  The attacks tested
 * are the ones it exists for: a guest setting the host clipboard (OSC 52,
 * kitty's OSC 5522, iTerm2's OSC 1337), sending files (OSC 1337 File=,
 * kitty's OSC 5113 and graphics), or making the terminal type answers
 * into the input (title reports CSI 20 t / 21 t, colour queries, DCS
 * requests such as XTGETTCAP); and the ways a terminal parser can be
 * steered into such a sequence while a naive filter sees something else:
 * a new ESC or C1 control inside an unfinished sequence, C0 controls and
 * DEL that terminals execute or ignore inside a sequence, leading zeros,
 * C1 controls in UTF-8 (C2 9D, C2 9B) and raw (0x9d, 0x9b), which must be
 * told apart from the continuation bytes of UTF-8 text.  Each family is
 * also checked cut short by ESC, CAN and C1 controls, and next to it what
 * must still pass unchanged. */
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

/* ---- OSC: clipboard, files, colours, titles -------------------------- */

/* What a removed sequence leaves behind: a CAN, which ends whatever the
 * terminal was in, so the bytes around it cannot join into a new one. */
#define CAN "\x18"

static void check_buf(const struct buf *in, const char *want, unsigned dropped)
{
    check_filter_n(in->data, in->len, want, strlen(want), dropped);
}

static void passes_buf(const struct buf *in)
{
    check_filter_n(in->data, in->len, in->data, in->len, 0);
}

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
    /* and no number wraps around to an allowed one */
    CHECK("\x1b]4294967298;t\x07"
          "\x1b]18446744073709551618;t\x07",
          CAN CAN, 2);
}

/* Clipboards and file transfer: kitty's OSC 5522 and 5113, and all of
 * iTerm2's OSC 1337 (which other terminals implement too). */
static void test_clipboard_and_files_dropped(void **state)
{
    CHECK("a\x1b]5522;type=write:mime=dGV4dC9wbGFpbg==\x1b\\z", "a" CAN "z", 1);
    CHECK("\x1b]5522;type=read:mime=.\x07", CAN, 1);
    CHECK("a\x1b]1337;Copy=:aGVsbG8=\x07z", "a" CAN "z", 1);
    /* CopyToClipboard copies what is printed up to EndCopy: both go, and
     * the text between them is only shown */
    CHECK("\x1b]1337;CopyToClipboard=general\x07secret\x1b]1337;EndCopy\x07", CAN "secret" CAN, 2);
    CHECK("\x1b]1337;File=name=eA==;size=1;inline=0:eA==\x07", CAN, 1);
    CHECK("\x1b]1337;SetUserVar=a=Yg==\x07\x1b]1337;RequestUpload=format=tgz\x07", CAN CAN, 2);
    CHECK("\x1b]5113;ac=send;id=1\x1b\\", CAN, 1);
    CHECK("\x1b]01337;File=:eA==\x07", CAN, 1);
    CHECK("\xc2\x9d"
          "1337;Copy=:eA==\xc2\x9c",
          CAN, 1);
    /* cut short by ESC, CAN or a C1 control: removed, and what cut it is
     * filtered anew */
    CHECK("\x1b]1337;Copy=:eA\x1b[1mb", CAN "\x1b[1mb", 1);
    CHECK("\x1b]5522;type=write\x18"
          "b",
          CAN CAN "b", 1);
    CHECK("\x1b]1337;File=:eA\xc2\x9d"
          "52;c;eA==\x07"
          "b",
          CAN CAN "b", 2);
    CHECK("\x1b]1337;File=:eA\x1b]1337;Copy=:eA==\x07", CAN CAN, 2);
}

/* Longer than the filter holds: decided by the number, then streamed. */
static void test_long_osc(void **state)
{
    struct buf in = {0};

    buf_printf(&in, "a\x1b]1337;File=inline=1:");
    for (int i = 0; i < 60; i++)
        buf_printf(&in, "QUJD");
    buf_printf(&in, "\x07z");
    check_buf(&in, "a" CAN "z", 1);
    buf_free(&in);

    /* ended by ST, an OSC 52 after it */
    buf_printf(&in, "\x1b]5522;type=write;");
    for (int i = 0; i < 60; i++)
        buf_printf(&in, "eA==");
    buf_printf(&in, "\x1b\\\x1b]52;c;eA==\x07");
    check_buf(&in, CAN CAN, 2);
    buf_free(&in);

    /* a long title and a long link pass */
    buf_printf(&in, "\x1b]2;");
    for (int i = 0; i < 30; i++)
        buf_printf(&in, "t\xc3\xa9tle ");
    buf_printf(&in, "\x07\x1b]8;;https://example.com/");
    for (int i = 0; i < 20; i++)
        buf_printf(&in, "path/");
    buf_printf(&in, "\x1b\\link\x1b]8;;\x1b\\");
    passes_buf(&in);
    buf_free(&in);

    /* a colour is held whole: one too long for that goes */
    buf_printf(&in, "\x1b]4");
    for (int i = 0; i < 10; i++)
        buf_printf(&in, ";%d;rgb:ff/00/00", i);
    buf_printf(&in, "\x07ok");
    check_buf(&in, CAN "ok", 1);
    buf_free(&in);
}

/* Setting colours passes; asking for them ("?") is a query, answered
 * into the input. */
static void test_colours(void **state)
{
    PASSES("\x1b]10;#ffffff\x07\x1b]11;rgb:00/00/00\x1b\\\x1b]12;red\x07\x1b]10;light blue\x07");
    PASSES("\x1b]4;1;rgb:ff/00/00;2;#00ff00\x07\x1b]104;1;2\x07\x1b]104\x07");
    PASSES("\x1b]110\x07\x1b]111\x1b\\\x1b]112\x07");
    CHECK("a\x1b]10;?\x07z", "a" CAN "z", 1);
    CHECK("\x1b]11;?\x1b\\", CAN, 1);
    CHECK("\x1b]10;#ffffff;?\x07", CAN, 1); /* the second asks for colour 11 */
    CHECK("\x1b]4;1;rgb:ff/00/00;2;?\x07", CAN, 1);
    CHECK("\x1b]010;?\x07", CAN, 1);
    CHECK("\xc2\x9d"
          "11;?\xc2\x9c",
          CAN, 1);
    /* A control inside may be ignored by one terminal and end the OSC in
     * another; nor is a colour anything but ASCII. */
    CHECK("\x1b]10;\n?\x07", CAN, 1);
    CHECK("\x1b]10;#fff\r\x07", CAN, 1);
    CHECK("\x1b]10;r\xc3\xa9\x07", CAN, 1);
    /* Held whole: cut short, it goes, so that nothing read on into it by
     * a terminal can turn it into a query. */
    CHECK("\x1b]10;#ffffff\x1b[1m", CAN "\x1b[1m", 1);
    CHECK("\x1b]10;#ffffff\xc2\x9d"
          "0;t\x07",
          CAN "\xc2\x9d"
              "0;t\x07",
          1);
    CHECK("\x1b]10;#ffffff\x18z", CAN "z", 0);
    /* a C1 ST goes out as ESC \ or BEL, which every terminal reads */
    CHECK("\xc2\x9d"
          "10;#ffffff\xc2\x9c",
          "\xc2\x9d"
          "10;#ffffff\x1b\\",
          0);
    CHECK("\x1b]10;#ffffff\x9c", "\x1b]10;#ffffff\x07", 0);
}

static void test_titles_links_marks_pass(void **state)
{
    PASSES("\x1b]0;my title\x07");
    PASSES("\x1b]1;icon\x07\x1b]2;caf\xc3\xa9 \xc2\xa9\x1b\\");
    PASSES("\x1b]8;;https://example.com/?a=52\x1b\\link\x1b]8;;\x1b\\");
    PASSES("\x1b]8;id=x;file:///etc/passwd\x07text\x1b]8;;\x07");
    PASSES("\x1b]133;A\x07$ ls\x1b]133;B\x07\x1b]133;C\x07out\x1b]133;D;0\x07");
    PASSES("\x1b]0;\xc2z\x07"); /* a stray C2 is the terminal's business */
    /* An OSC ended by another ESC sequence: both pass. */
    PASSES("\x1b]0;t\x1b[31mred");
    /* without a body: held up to the terminator */
    PASSES("\x1b]0\x07\x1b]2\x1b\\");
    /* a C1 ST goes out as ESC \ or BEL, which every terminal reads */
    CHECK("\xc2\x9d"
          "0;t\xc2\x9c",
          "\xc2\x9d"
          "0;t\x1b\\",
          0);
    CHECK("\x1b]0;t\x9cok", "\x1b]0;t\x07ok", 0);
}

static void test_unknown_osc_dropped(void **state)
{
    /* OSC 7 (cwd), and numbers that merely look like allowed ones */
    CHECK("\x1b]7;file://host/home/52\x07ok", CAN "ok", 1);
    CHECK("\x1b]5;x\x07\x1b]520;x\x07\x1b]152;x\x07\x1b]5;52;x\x07", CAN CAN CAN CAN, 4);
    CHECK("\x1b]0;t\x07\x1b]52"
          "2;x\x07",
          "\x1b]0;t\x07" CAN, 1);
    CHECK("\x1b];x\x07", CAN, 1);
    CHECK("\x1b]9;notify\x07\x1b]777;notify;a;b\x07\x1b]99;;hi\x1b\\", CAN CAN CAN, 3);
    CHECK("\x1b]3;WM_NAME=x\x07\x1b]50;?\x07", CAN CAN, 2);
    /* no number: dtterm titles; a number followed by something else */
    CHECK("\x1b]l title\x1b\\\x1b]0x;t\x07\x1b]0\xc3\xa9;t\x07", CAN CAN CAN, 3);
}

/* Ways back into OSC 52 from inside another sequence. */
static void test_osc52_nested(void **state)
{
    /* A new ESC or C1 inside an unfinished escape, CSI or C2 starts over;
     * the unfinished bytes go, as the terminal drops them. */
    CHECK("\x1b[\x1b]52;c;aGk=\x07", CAN, 1);
    CHECK("\x1b[12\x1b]52;c;aGk=\x07", CAN, 1);
    CHECK("\x1b\x1b]52;c;aGk=\x07", CAN, 1);
    CHECK("\xc2\x1b]52;c;aGk=\x07", "\xc2" CAN, 1);
    /* a C2 that starts no character is shown as U+FFFD: passed */
    CHECK("\xc2\xc2\x9d"
          "52;c;aGk=\x07",
          "\xc2" CAN, 1);
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
          "\xc2" CAN CAN, 2);
    CHECK("\x1b\x1b]52;c;x\x07]52;c;y\x07", CAN "]52;c;y\x07", 1);
    CHECK("\x1b[\x1b]52;c;x\x07"
          "21t",
          CAN "21t", 1);
    CHECK("\x1b[2\x1b[21t1t", CAN "1t", 1);
    /* an OSC the terminal was in when a removed sequence began */
    CHECK("\xc2\x9d\xc2\x9b"
          "21t52;",
          CAN CAN "52;", 2);
    CHECK("\x1b]\x1b[21t52;c;x\x07", CAN CAN "52;c;x\x07", 2);
    CHECK("\x1b]0;t\xc2\x1b]52;c;x\x07\x9d"
          "52;c;y\x07",
          "\x1b]0;t\xc2" CAN CAN, 2);
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

/* ---- DCS, SOS, PM, APC ------------------------------------------------ */

/* Removed whole: DECRQSS and XTGETTCAP answer into the input, DECUDK
 * programs keys, tmux passes anything on, kitty's graphics can read host
 * files; sixel images are not needed to run a program. */
static void test_strings_dropped(void **state)
{
    CHECK("a\x1bP+q544e;636f6c73\x1b\\z", "a" CAN "z", 1);
    CHECK("a\xc2\x90+q544e\xc2\x9cz", "a" CAN "z", 1);
    CHECK("a\x90+q544e\x9cz", "a" CAN "z", 1);
    CHECK("\x1bP$qm\x1b\\\x1bP1$r0m\x1b\\", CAN CAN, 2);
    CHECK("\x1bP0;1|17/726d202d7266\x1b\\", CAN, 1);
    CHECK("\x1bPq#0;2;0;0;0#0~~@@vv\x1b\\", CAN, 1);
    CHECK("\x1bPtmux;\x1b\x1b]52;c;eA==\x07\x1b\\", CAN CAN "\x1b\\", 2);
    CHECK("\x1b_Ga=T,f=100,t=f;L2V0Yy9wYXNzd2Q=\x1b\\", CAN, 1);
    CHECK("\xc2\x9f"
          "Ga=q\xc2\x9c\x1b^pm\x1b\\\x1bXsos\x1b\\",
          CAN CAN CAN, 3);
    /* BEL ends only an OSC */
    CHECK("\x1bPx\x07y\x1b\\ok", CAN "ok", 1);
    /* CAN, SUB, ESC and C1 controls end them too */
    CHECK("\x1bP+q54\x18ok", CAN CAN "ok", 1);
    CHECK("\x1bP+q54\x1aok", CAN "\x1aok", 1);
    CHECK("\x1bP+q54\x1b[1mok", CAN "\x1b[1mok", 1);
    CHECK("\x1b_G\xc2\x9d"
          "0;t\x07",
          CAN "\xc2\x9d"
              "0;t\x07",
          1);

    struct buf in = {0};
    buf_printf(&in, "\x1b_Gf=100;");
    for (int i = 0; i < 60; i++)
        buf_printf(&in, "QUJD");
    buf_printf(&in, "\x1b\\ok");
    check_buf(&in, CAN "ok", 1);
    buf_free(&in);
}

/* ---- C1 and UTF-8 ----------------------------------------------------- */

/* A raw C1 byte (0x80-0x9f continuing no UTF-8 character) is a control to
 * a terminal in 8-bit mode: removed with what it introduces. */
static void test_raw_c1(void **state)
{
    CHECK("a\x9d"
          "52;c;aGk=\x9cz",
          "a" CAN "z", 1);
    CHECK("a\x9d"
          "52;c;aGk=\x07z",
          "a" CAN "z", 1);
    CHECK("a\x9d"
          "0;title\x07z",
          "a" CAN "z", 1);
    CHECK("a\x9b"
          "21tz",
          "a" CAN "z", 1);
    CHECK("a\x9b"
          "31mz",
          "a" CAN "z", 1);
    CHECK("\x9fGa=T;eA==\x9c\x9epm\x9c\x98sos\x9c", CAN CAN CAN, 3);
    CHECK("a\x85z\x84\x8d\x9c\x9a", "a" CAN "z" CAN CAN CAN CAN, 5);
    /* a lone one after ASCII */
    CHECK("abc\x9d", "abc" CAN, 1);
    CHECK("abc\x9dxyz\x07ok", "abc" CAN "ok", 1);
    /* cutting a sequence short */
    CHECK("\x1b[31\x9b"
          "21t",
          CAN, 1);
    CHECK("\x1b]0;t\x9d"
          "52;c;eA==\x07",
          "\x1b]0;t" CAN, 1);
    CHECK("\x1b]0;t\x90+q544e\x1b\\ok", "\x1b]0;t" CAN "ok", 1);
    CHECK("\x1bP+q\x9cok", CAN "ok", 1);
    /* Bytes never found in UTF-8 go the same way: a lax decoder would
     * read C0 9B as ESC. */
    CHECK("\xc0\x9b]52;c;eA==\x07", CAN CAN "52;c;eA==\x07", 2);
    CHECK("\xc1\xbf\xf5\xff", CAN "\xbf" CAN CAN, 3);
}

/* UTF-8 text passes byte for byte, continuation bytes 0x80-0x9f included;
 * only where no character continues is such a byte a C1 control. */
static void test_utf8_continuation_bytes(void **state)
{
    PASSES("caf\xc3\xa9 \xe2\x82\xac \xc4\x80 \xc4\x90 \xc5\x9b \xd0\x9f\xd1\x80\xd0\xb8");
    PASSES("\xe2\x80\x9cq\xe2\x80\x9d \xe2\x80\x94 \xe2\x84\xa2 \xef\xbf\xbd \xc2\xa0\xc2\xbf");
    PASSES("\xf0\x9f\x98\x80 \xf0\x90\x80\x80 \xf4\x8f\xbf\xbf \xed\x9f\xbf \xe0\xa0\x80");
    PASSES("\x1b]0;\xc4\x90\xe2\x82\xac\x07\x1b[1m\xc4\x9d\x1b[m\xc4\x9b");
    /* a continuation byte where the character allows none (overlong,
     * surrogate, past U+10FFFF) is a C1 control */
    CHECK("\xe0\x9d"
          "52;c;eA==\x07",
          "\xe0" CAN, 1);
    CHECK("\xf0\x8f\x9b", "\xf0" CAN CAN, 2);
    CHECK("\xf4\x90+q544e\x1b\\", "\xf4" CAN, 1);
    CHECK("\xed\xa0\x80", "\xed\xa0" CAN, 1);
    /* a character cut short: what follows is read afresh */
    CHECK("\xe2\x82\x1b]52;c;eA==\x07", "\xe2\x82" CAN, 1);
    CHECK("\xe2\x82z\x9d"
          "52\x07",
          "\xe2\x82z" CAN, 1);
    /* a character has no more continuation bytes than its lead says */
    CHECK("\xf0\x9f\x98\x80\x9d"
          "52;\x07",
          "\xf0\x9f\x98\x80" CAN, 1);
    CHECK("\xc3\xa9\x85", "\xc3\xa9" CAN, 1);
}

static void test_utf8_text(void **state)
{
    PASSES("plain text\r\n");
    PASSES("caf\xc3\xa9 \xc2\xa9 2024 \xe2\x82\xac \xf0\x9f\x98\x80 \xc2\xa0\xc2\xbf");
    PASSES("\xc2z");    /* a lone lead byte passes with what follows */
    PASSES("\xc2\x85"); /* NEL in UTF-8: cursor movement, passed */
    PASSES("tab\there\x07 bell\x00nul");

    /* A byte that may start a sequence is held until the next decides. */
    struct mvm_outfilter f;
    struct buf out = {0};
    mvm_outfilter_init(&f);
    mvm_outfilter_feed(&f, "ok\x1b", 3, &out);
    assert_bytes(&out, "ok", 2, "ESC held");
    assert_int_equal(f.seqlen, 1);
    mvm_outfilter_feed(&f, "7\xc2", 2, &out);
    assert_bytes(&out,
                 "ok\x1b"
                 "7",
                 4, "C2 held");
    assert_int_equal(f.seqlen, 1);
    mvm_outfilter_feed(&f, "\xa9", 1, &out);
    assert_bytes(&out,
                 "ok\x1b"
                 "7\xc2\xa9",
                 6, "released");
    assert_int_equal(f.seqlen, 0);
    buf_free(&out);
}

/* ---- CSI and ESC ------------------------------------------------------ */

static void test_csi(void **state)
{
    /* title and icon reports are dropped */
    CHECK("a\x1b[21tb", "a" CAN "b", 1);
    CHECK("a\x1b[20tb", "a" CAN "b", 1);
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
    /* of the other CSI t only the title stack passes */
    PASSES("\x1b[22;0t\x1b[23;0t\x1b[22t\x1b[23;2t");
    CHECK("\x1b[8;24;80t\x1b[210t\x1b[2t\x1b[1t", CAN CAN CAN CAN, 4);
    CHECK("\x1b[>21t\x1b[?21t\x1b[21 t", CAN CAN CAN, 3);
    PASSES("\x1b[31mred\x1b[0m");
    PASSES("\x1b[2J\x1b[H\x1b[1;1H\x1b[K");
    PASSES("\x1b[?1049h\x1b[?1049l");
    PASSES("\xc2\x9b"
           "31mred");
    PASSES("\x1b[38;2;255;0;0m\x1b[48:5:17m");
    PASSES("\x1b[1;2;3;4;5;6;7;8;9;10;11;12;13;14;15;16;17;18;19;20;21;22;23;24;25;26m");
    /* CAN cancels: it passes, the CSI does not */
    CHECK("\x1b[21\x18t", CAN "t", 0);
    /* not well-formed: a marker after the start, parameters after an
     * intermediate, a character inside (some parsers read 0xb1 as '1') */
    CHECK("\x1b[1?m\x1b[1$2m", CAN CAN, 2);
    CHECK("\x1b[2\xc2\xb1t", CAN "\xc2\xb1t", 1);
}

/* Queries whose answers carry more than fixed digits, or that nothing
 * needs, are removed; DA and DSR 5/6 pass. */
static void test_queries(void **state)
{
    PASSES("\x1b[c\x1b[0c\x1b[>c\x1b[>0c\x1b[5n\x1b[6n");
    CHECK("\x1b[?2026$p\x1b[4$p", CAN CAN, 2);
    CHECK("\x1b[>q\x1b[>0q", CAN CAN, 2);
    CHECK("\x1b[?u\x1b[>1u\x1b[<u\x1b[=1;1u", CAN CAN CAN CAN, 4);
    CHECK("\x1b[=c\x1b[?6n\x1b[?15n\x1b[05n", CAN CAN CAN CAN, 4);
    CHECK("\x1b[11t\x1b[13t\x1b[14t\x1b[16t\x1b[18t\x1b[19t", CAN CAN CAN CAN CAN CAN, 6);
    /* window manipulation */
    CHECK("\x1b[3;0;0t\x1b[4;1;1t\x1b[9;1t\x1b[10;1t\x1b[24t", CAN CAN CAN CAN CAN, 5);
    /* saved modes would change modes behind the tracker's back */
    CHECK("\x1b[?1049s\x1b[?1049r", CAN CAN, 2);
    /* printing; keyboard lock, local echo, newline mode */
    CHECK("\x1b[5i\x1b[4i\x1b[?5i", CAN CAN CAN, 3);
    CHECK("\x1b[2h\x1b[12l\x1b[20h\x1b[4;2h", CAN CAN CAN CAN, 4);
    CHECK("\x1b[>4;2m\x1b[?4m\x1b[x\x1b[*y\x1b[62;1\"p", CAN CAN CAN CAN CAN, 5);
    CHECK("\x1bZ\xc2\x9a", CAN CAN, 2); /* DECID, the old DA */
}

/* CSIs longer than the filter holds are removed to their end. */
static void test_csi_long(void **state)
{
    struct buf in = {0};

    buf_printf(&in, "a\x1b[21;");
    for (int i = 0; i < 70; i++)
        buf_printf(&in, "1;");
    buf_printf(&in, "tb");
    check_buf(&in, "a" CAN "b", 1);
    buf_free(&in);

    buf_printf(&in, "\x1b[");
    for (int i = 0; i < 200; i++)
        buf_printf(&in, "0");
    buf_printf(&in, "21tz");
    check_buf(&in, CAN "z", 1);
    buf_free(&in);

    /* an OSC 52 inside the skipped part is still found */
    buf_printf(&in, "\x1b[20;");
    for (int i = 0; i < 70; i++)
        buf_printf(&in, "9;");
    buf_printf(&in, "\x1b]52;c;aGk=\x07\n");
    check_buf(&in, CAN CAN "\n", 2);
    buf_free(&in);

    /* executed controls inside it still act */
    buf_printf(&in, "\x1b[21;");
    for (int i = 0; i < 70; i++)
        buf_printf(&in, "1;\r");
    buf_printf(&in, "t");
    /* the CAN goes out where the filter gives up holding: at the ';'
     * that would be byte MVM_OUTFILTER_HOLD + 1 */
    struct buf want = {0};
    for (int i = 0; i < 70; i++)
        buf_printf(&want, i == (MVM_OUTFILTER_HOLD - 6) / 2 ? CAN "\r" : "\r");
    buf_append(&want, "", 1);
    check_buf(&in, want.data, 1);
    buf_free(&want);
    buf_free(&in);

    /* up to MVM_OUTFILTER_HOLD bytes it passes, one pair more does not */
    buf_printf(&in, "\x1b[");
    for (int i = 0; i < (MVM_OUTFILTER_HOLD - 4) / 2; i++)
        buf_printf(&in, "1;");
    buf_printf(&in, "1m");
    assert_int_equal(in.len, MVM_OUTFILTER_HOLD);
    passes_buf(&in);
    buf_free(&in);
    buf_printf(&in, "\x1b[");
    for (int i = 0; i < (MVM_OUTFILTER_HOLD - 2) / 2; i++)
        buf_printf(&in, "1;");
    buf_printf(&in, "1mz");
    check_buf(&in, CAN "z", 1);
    buf_free(&in);
}

static void test_other_escapes(void **state)
{
    PASSES("\x1b"
           "7\x1b"
           "8\x1b"
           "c\x1b(B\x1b)0\x1bM\x1b(%5\x1b#8\x1b#3\x1b\\");
    /* out of UTF-8, 8-bit answers, conformance levels, locking shifts,
     * DECID, memory lock, screen's title string */
    CHECK("\x1b%@\x1b%G\x1b G\x1b F\x1b L\x1bn\x1bo\x1b|\x1bZ\x1bl\x1bk",
          CAN CAN CAN CAN CAN CAN CAN CAN CAN CAN CAN, 11);
    CHECK("\x1b#9\x1b$B\x1b(((B", CAN CAN CAN "(B", 3);
    /* a character inside: the sequence goes, the character stays */
    CHECK("\x1b\xc3\xa9", CAN "\xc3\xa9", 1);
    CHECK("\x1b(\xc3\xa9", CAN "\xc3\xa9", 1);
}

/* What programs draw with passes unchanged. */
static void test_harmless_pass(void **state)
{
    PASSES("\x1b[?1049h\x1b[22;0;0t\x1b[1;24r\x1b(B\x1b[m\x1b[4l\x1b[?7h\x1b[?1h\x1b=\x1b[H\x1b[2J"
           "\x1b[?25l\x1b[38;5;196mx\x1b[39;49m\x1b[38:2::255:0:0my\x1b[0;1;3;4;7;9m\x1b[?12l");
    PASSES("\x1b[?25h\x1b[2 q\x1b[?2026h\x1b[?2026l\x1b[!p\x1b]0;vim\x07\x1bM\x1b"
           "D\x1b"
           "E\x1bH\x1b"
           "7\x1b"
           "8\x1b[3g\x1b[?5h\x1b[?5l\x1b[?6h\x1b[?1048h");
    PASSES("\x1b[5;10H\x1b[2K\x1b[1J\x1b[?1J\x1b[3L\x1b[2M\x1b[4P\x1b[5@\x1b[6X\x1b[2S\x1b[3T"
           "\x1b[A\x1b[2B\x1b[3C\x1b[4D\x1b[E\x1b[F\x1b[10G\x1b[5d\x1b[7`\x1b[2a\x1b[3e\x1b[4b");
    PASSES("\x1b[2I\x1b[Z\x1b[s\x1b[u\x1b[1;1f\x1b(0lqk\x1b(B\x0e\x0f\x1b#6\x1b"
           "c\x1b[?1000h\x1b[?1006h\x1b[?2004h\x1b[?1004h\x1b[?1049l\x1b[23;0;0t");
    PASSES("\xc2\x9b"
           "31mred\xc2\x85\xc2\x84\xc2\x88\xc2\x8d\xc2\x8e"
           "a\xc2\x8f"
           "b\xc2\x9c");
    PASSES("line\r\n\ttab\x08\x07\x0b\x0c");
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

    /* Not private modes (no '?'): not tracked; only insert mode passes. */
    feed_str(&f, "\x1b[4h\x1b[4l");
    assert_int_equal(f.modes, 0);
    /* A mode not allowed removes the sequence, and the modes in it stay
     * as they were: an empty one, a sub-parameter, resize reports. */
    struct buf out = {0};
    static const char bad[] = "\x1b[1049h\x1b[?9999;1049h\x1b[?;1049h\x1b[?1049;h\x1b[?1049:1h"
                              "\x1b[?1049;2048h\x1b[?h";
    mvm_outfilter_feed(&f, bad, sizeof bad - 1, &out);
    assert_bytes(&out, CAN CAN CAN CAN CAN CAN CAN, 7, "modes not allowed");
    buf_free(&out);
    assert_int_equal(f.modes, 0);
    assert_int_equal(f.dropped, 7);
    feed_str(&f, "\x1b[?1049;7;2026h");
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

/* "~d" is an escape only where detaching means something (mvm attach). */
static void test_escape_detach(void **state)
{
    struct mvm_escape e;
    struct buf out = {0};

    mvm_escape_init(&e);
    struct esc_result r = ESC(&e, "~dx", &out);
    assert_int_equal(r.action, MVM_ESC_NONE);
    assert_bytes(&out, "~dx", 3, "~d without detach");
    buf_free(&out);

    mvm_escape_init(&e);
    e.detach = true;
    r = ESC(&e, "ls\r~dx", &out);
    assert_int_equal(r.action, MVM_ESC_DETACH);
    assert_int_equal(r.used, 5);
    assert_bytes(&out, "ls\r", 3, "before detach");
    buf_free(&out);

    r = ESC(&e, "a~d", &out); /* mid-line: text */
    assert_int_equal(r.action, MVM_ESC_NONE);
    assert_bytes(&out, "a~d", 3, "mid-line ~d");
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
        cmocka_unit_test(test_clipboard_and_files_dropped),
        cmocka_unit_test(test_long_osc),
        cmocka_unit_test(test_colours),
        cmocka_unit_test(test_titles_links_marks_pass),
        cmocka_unit_test(test_unknown_osc_dropped),
        cmocka_unit_test(test_osc52_nested),
        cmocka_unit_test(test_no_join_across_removal),
        cmocka_unit_test(test_osc52_ignored_controls),
        cmocka_unit_test(test_strings_dropped),
        cmocka_unit_test(test_raw_c1),
        cmocka_unit_test(test_utf8_continuation_bytes),
        cmocka_unit_test(test_utf8_text),
        cmocka_unit_test(test_csi),
        cmocka_unit_test(test_queries),
        cmocka_unit_test(test_csi_long),
        cmocka_unit_test(test_other_escapes),
        cmocka_unit_test(test_harmless_pass),
        cmocka_unit_test(test_modes),
        cmocka_unit_test(test_keypad),
        cmocka_unit_test(test_modes_split),
        cmocka_unit_test(test_escape_kill_at_start),
        cmocka_unit_test(test_escape_after_newline),
        cmocka_unit_test(test_escape_not_at_line_start),
        cmocka_unit_test(test_escape_detach),
        cmocka_unit_test(test_escape_others),
        cmocka_unit_test(test_escape_split),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
