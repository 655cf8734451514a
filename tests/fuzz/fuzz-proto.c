/* Fuzzes what the guest (and, for mvm-init, the host) can send: the bytes
 * go through the frame decoder in chunks whose sizes come from the input,
 * so frames are split wherever reads could split them; the same bytes go
 * through the terminal output filter and the input escape detector, which
 * see the guest's output and the user's keys byte for byte.
 *
 * Beyond memory errors it checks that splitting never changes a result
 * (each is run chunked and whole), and it reads the filter's output with
 * a small model of a terminal's parser: nothing that gets through may set
 * the clipboard (OSC 52) or ask for the window title (CSI 20/21 t). */
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "proto.h"
#include "termfilter.h"
#include "util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Four frames' worth and then some; larger inputs only slow the fuzzer. */
#define MAX_INPUT_SIZE (256 * 1024)

/* Chunk sizes: cycled from the input's first bytes, 1..4096; or, with
 * whole set, everything at once. */
static size_t chunk_size(const uint8_t *data, size_t size, size_t i, bool whole)
{
    if (whole || size < 4)
        return size ? size : 1;
    size_t k = i % 4;
    return 1 + (((size_t)data[k] << 4) | (data[(k + 1) % 4] >> 4)) % 4096;
}

static uint64_t check_frame(const struct mvm_proto_frame *f, uint64_t h)
{
    /* What the decoder promises to its callers. */
    if (f->len > MVM_PROTO_MAX_PAYLOAD)
        __builtin_trap();
    switch (f->type) {
    case MVM_MSG_START:
        if (f->len != 5)
            __builtin_trap();
        break;
    case MVM_MSG_WINSIZE:
    case MVM_MSG_SIGNAL:
    case MVM_MSG_CREDIT_OUT:
    case MVM_MSG_READY:
    case MVM_MSG_EXIT:
    case MVM_MSG_CREDIT_IN:
        if (f->len != 4)
            __builtin_trap();
        break;
    case MVM_MSG_SHUTDOWN:
    case MVM_MSG_ATTACH:
        if (f->len != 0)
            __builtin_trap();
        break;
    case MVM_MSG_ERROR:
        if (f->len < 4)
            __builtin_trap();
        break;
    case MVM_MSG_ARG:
    case MVM_MSG_ENV:
        if (memchr(f->payload, '\0', f->len) != NULL)
            __builtin_trap();
        if (f->type == MVM_MSG_ENV && memchr(f->payload, '=', f->len) == NULL)
            __builtin_trap();
        break;
    case MVM_MSG_STDIN:
    case MVM_MSG_STDOUT:
    case MVM_MSG_STDERR:
        break;
    default:
        __builtin_trap();
    }
    /* Hashing touches every payload byte, so ASan sees any overread. */
    uint8_t hdr[MVM_PROTO_HEADER];
    mvm_proto_header(hdr, f->type, f->stream, f->len);
    h = fnv1a64(h, hdr, sizeof hdr);
    return fnv1a64(h, f->payload, f->len);
}

struct decoded {
    uint64_t hash; /* of every frame, in order */
    size_t frames;
    bool bad;
};

static struct decoded fuzz_decoder(const uint8_t *data, size_t size, bool whole)
{
    static struct mvm_proto_decoder d; /* 64 KiB: not on the stack */
    struct decoded r = {.hash = FNV1A64_INIT};
    size_t at = 0, round = 0;

    mvm_proto_decoder_init(&d);
    while (at < size) {
        size_t n = chunk_size(data, size, round++, whole);
        if (n > size - at)
            n = size - at;
        size_t space = mvm_proto_space(&d);
        size_t took = mvm_proto_feed(&d, data + at, n);
        if (took > n || took > space || (took < n && took != space))
            __builtin_trap();
        if (took == 0)
            __builtin_trap(); /* full without a frame to hand out */
        at += took;
        struct mvm_proto_frame f;
        const char *why = NULL;
        enum mvm_proto_status st;
        while ((st = mvm_proto_next(&d, &f, &why)) == MVM_PROTO_FRAME) {
            r.hash = check_frame(&f, r.hash);
            r.frames++;
        }
        if (st == MVM_PROTO_BAD) {
            if (why == NULL)
                __builtin_trap();
            r.bad = true;
            return r; /* the connection is dropped */
        }
    }
    return r;
}

/* A terminal's parser (VTE's: the Williams state machine on decoded
 * UTF-8), reduced to one question: would these bytes make it act on
 * OSC 52 (clipboard) or CSI 20 t / 21 t (title reports)?  Where terminals
 * differ it takes the more dangerous reading (':' ends a parameter).  The
 * filter's output must never say yes. */
enum term_state { T_GROUND, T_ESC, T_ESC_INT, T_CSI, T_CSI_IGNORE, T_OSC, T_STRING };

struct term {
    enum term_state st;
    long num;    /* the CSI's first parameter, or the OSC's number */
    bool digits; /* num has digits */
    bool ended;  /* CSI: past the first parameter; OSC: past the number */
    bool marker; /* CSI: private marker or intermediate */
};

static void term_enter(struct term *t, enum term_state st)
{
    *t = (struct term){.st = st};
}

static bool osc_number_done(struct term *t)
{
    t->ended = true;
    return t->digits && t->num == 52;
}

/* Returns true if c makes the terminal act on a forbidden sequence. */
static bool term_byte(struct term *t, unsigned c)
{
    /* from any state */
    if (c == 0x18 || c == 0x1a || c == 0x9c) {
        term_enter(t, T_GROUND);
        return false;
    }
    if (c == 0x1b || c == 0x9b || c == 0x9d || c == 0x90 || c == 0x98 || c == 0x9e || c == 0x9f) {
        term_enter(t, c == 0x1b ? T_ESC : c == 0x9b ? T_CSI : c == 0x9d ? T_OSC : T_STRING);
        return false;
    }
    if (c >= 0x80 && c <= 0x9f) {
        term_enter(t, T_GROUND);
        return false;
    }
    bool c0 = c < 0x20, del = c == 0x7f, high = c >= 0x100;
    switch (t->st) {
    case T_GROUND:
    case T_STRING:
        return false;
    case T_ESC:
        if (c0 || del)
            return false;
        if (c == '[')
            term_enter(t, T_CSI);
        else if (c == ']')
            term_enter(t, T_OSC);
        else if (c == 'P' || c == 'X' || c == '^' || c == '_')
            term_enter(t, T_STRING);
        else if ((c >= 0x20 && c <= 0x2f) || high)
            t->st = T_ESC_INT;
        else
            t->st = T_GROUND;
        return false;
    case T_ESC_INT:
        if (c >= 0x30 && c <= 0x7e)
            t->st = T_GROUND;
        return false;
    case T_CSI:
        if (c0 || del)
            return false; /* executed or ignored: the CSI goes on */
        if (c >= 0x40 && c <= 0x7e) {
            bool bad = c == 't' && !t->marker && t->digits && (t->num == 20 || t->num == 21);
            term_enter(t, T_GROUND);
            return bad;
        }
        if (c >= '0' && c <= '9') {
            if (!t->ended) {
                t->num = t->num * 10 + (long)(c - '0');
                if (t->num > 100000)
                    t->num = 100000;
                t->digits = true;
            }
        } else if (c == ';' || c == ':') {
            t->ended = true;
        } else if (c >= 0x3c && c <= 0x3f && !t->digits && !t->ended) {
            t->marker = true;
        } else if (c >= 0x20 && c <= 0x2f) {
            t->marker = true;
        } else {
            t->st = T_CSI_IGNORE;
        }
        return false;
    case T_CSI_IGNORE:
        if (c >= 0x40 && c <= 0x7e)
            t->st = T_GROUND;
        return false;
    case T_OSC:
        if (t->ended) {
            if (c == 0x07)
                t->st = T_GROUND;
            return false;
        }
        if (c == 0x07) {
            bool bad = osc_number_done(t);
            t->st = T_GROUND;
            return bad;
        }
        if (c0)
            return false; /* ignored inside an OSC */
        if (c >= '0' && c <= '9') {
            t->num = t->num * 10 + (long)(c - '0');
            if (t->num > 100000)
                t->num = 100000;
            t->digits = true;
            return false;
        }
        return osc_number_done(t);
    }
    return false;
}

static bool terminal_acts_on_forbidden(const uint8_t *p, size_t n)
{
    struct term t = {.st = T_GROUND};
    for (size_t i = 0; i < n; i++) {
        unsigned c = p[i];
        if (c == 0xc2 && i + 1 < n && p[i + 1] >= 0x80 && p[i + 1] <= 0x9f)
            c = p[++i]; /* a UTF-8 encoded C1 control */
        else if (c >= 0x80)
            c = 0x100; /* (part of) some other character */
        if (term_byte(&t, c))
            return true;
    }
    /* The filter holds an unfinished sequence back. */
    return t.st == T_OSC && !t.ended && t.digits && t.num == 52;
}

static void fuzz_outfilter(const uint8_t *data, size_t size, bool whole, struct buf *out,
                           struct mvm_outfilter *f)
{
    size_t at = 0, round = 0;

    mvm_outfilter_init(f);
    while (at < size) {
        size_t n = chunk_size(data, size, round++ + 1, whole);
        if (n > size - at)
            n = size - at;
        mvm_outfilter_feed(f, data + at, n, out);
        at += n;
        /* The filter only removes (a removed sequence leaves one CAN). */
        if (out->len > at || f->seqlen > sizeof f->seq)
            __builtin_trap();
    }
    mvm_outfilter_reset(f, out);
}

static void fuzz_escape(const uint8_t *data, size_t size, bool whole, struct buf *out,
                        struct buf *log)
{
    struct mvm_escape e;
    size_t at = 0, round = 0;

    mvm_escape_init(&e);
    while (at < size) {
        size_t n = chunk_size(data, size, round++ + 2, whole);
        if (n > size - at)
            n = size - at;
        size_t used = 0;
        enum mvm_escape_action a = mvm_escape_feed(&e, data + at, n, out, &used);
        if (used > n || (a == MVM_ESC_NONE && used != n) || (a != MVM_ESC_NONE && used == 0))
            __builtin_trap();
        at += used;
        /* Never more out than in ("~~" and "~." shrink). */
        if (out->len > at)
            __builtin_trap();
        if (a != MVM_ESC_NONE) /* log where the escapes were */
            buf_printf(log, "%d@%zu,%zu;", (int)a, at, out->len);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > MAX_INPUT_SIZE)
        return 0;

    /* However the bytes are split, the result is the same. */
    struct decoded a = fuzz_decoder(data, size, false);
    struct decoded b = fuzz_decoder(data, size, true);
    if (a.hash != b.hash || a.frames != b.frames || a.bad != b.bad)
        __builtin_trap();

    struct buf o1 = {0}, o2 = {0};
    struct mvm_outfilter f1, f2;
    fuzz_outfilter(data, size, false, &o1, &f1);
    fuzz_outfilter(data, size, true, &o2, &f2);
    if (o1.len != o2.len || (o1.len && memcmp(o1.data, o2.data, o1.len) != 0) ||
        f1.modes != f2.modes || f1.dropped != f2.dropped)
        __builtin_trap();
    /* Nothing that got through may set the clipboard or ask for the title. */
    if (o1.len && terminal_acts_on_forbidden((const uint8_t *)o1.data, o1.len))
        __builtin_trap();
    buf_free(&o1);
    buf_free(&o2);

    struct buf e1 = {0}, e2 = {0}, l1 = {0}, l2 = {0};
    fuzz_escape(data, size, false, &e1, &l1);
    fuzz_escape(data, size, true, &e2, &l2);
    if (e1.len != e2.len || (e1.len && memcmp(e1.data, e2.data, e1.len) != 0))
        __builtin_trap();
    if (l1.len != l2.len || (l1.len && memcmp(l1.data, l2.data, l1.len) != 0))
        __builtin_trap();
    buf_free(&e1);
    buf_free(&e2);
    buf_free(&l1);
    buf_free(&l2);
    return 0;
}
