/* Unit tests for net/dns.c and net/dnsrelay.c: the parser on hand-built
 * messages (valid, truncated, looping, oversized), every refusal rule
 * right after a positive control, the replies the relay builds, the
 * response checks, and the relay itself over real UDP sockets on
 * 127.0.0.1 with a fake upstream that counts what reaches it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <seccomp.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>

#include "dns.h"
#include "dnsrelay.h"
#include "error.h"
#include "jail.h"
#include "net.h"
#include "util.h"

/* ---- building messages ---------------------------------------------------- */

struct msg {
    uint8_t b[MVM_DNS_MAX_MSG + 64];
    size_t n;
};

static void put(struct msg *m, const void *p, size_t n)
{
    assert_true(m->n + n <= sizeof m->b);
    memcpy(m->b + m->n, p, n);
    m->n += n;
}

static void put8(struct msg *m, unsigned v)
{
    uint8_t b = (uint8_t)v;
    put(m, &b, 1);
}

static void put16(struct msg *m, unsigned v)
{
    put8(m, v >> 8);
    put8(m, v);
}

static void put32(struct msg *m, uint32_t v)
{
    put16(m, v >> 16);
    put16(m, v & 0xffff);
}

/* Uncompressed wire name; labels may be up to 255 bytes so tests can
 * build invalid ones (the length byte is then taken modulo 256). */
static void put_name(struct msg *m, const char *name)
{
    while (*name) {
        const char *dot = strchr(name, '.');
        size_t l = dot ? (size_t)(dot - name) : strlen(name);
        put8(m, (unsigned)l);
        put(m, name, l);
        name += l + (dot ? 1 : 0);
    }
    put8(m, 0);
}

static void header(struct msg *m, unsigned id, unsigned flags, unsigned qd, unsigned an,
                   unsigned ns, unsigned ar)
{
    m->n = 0;
    put16(m, id);
    put16(m, flags);
    put16(m, qd);
    put16(m, an);
    put16(m, ns);
    put16(m, ar);
}

#define RD       0x0100
#define RESPONSE 0x8180 /* QR, RD, RA, NOERROR */

static void query_full(struct msg *m, unsigned id, unsigned flags, const char *name, unsigned type,
                       unsigned class)
{
    header(m, id, flags, 1, 0, 0, 0);
    put_name(m, name);
    put16(m, type);
    put16(m, class);
}

static void query(struct msg *m, unsigned id, const char *name, unsigned type)
{
    query_full(m, id, RD, name, type, MVM_DNS_CLASS_IN);
}

/* A response's header and question; records are appended by rr_*(). */
static void response(struct msg *m, unsigned id, const char *name, unsigned type, unsigned an)
{
    header(m, id, RESPONSE, 1, an, 0, 0);
    put_name(m, name);
    put16(m, type);
    put16(m, MVM_DNS_CLASS_IN);
}

/* A record owned by the question's name (pointer to offset 12). */
static void rr(struct msg *m, unsigned type, const void *rdata, unsigned len, uint32_t ttl)
{
    put16(m, 0xc00c);
    put16(m, type);
    put16(m, MVM_DNS_CLASS_IN);
    put32(m, ttl);
    put16(m, len);
    put(m, rdata, len);
}

static void rr_a(struct msg *m, const char *ip)
{
    uint8_t a[4];
    assert_int_equal(inet_pton(AF_INET, ip, a), 1);
    rr(m, MVM_DNS_TYPE_A, a, 4, 300);
}

static void rr_aaaa(struct msg *m, const char *ip)
{
    uint8_t a[16];
    assert_int_equal(inet_pton(AF_INET6, ip, a), 1);
    rr(m, MVM_DNS_TYPE_AAAA, a, 16, 300);
}

/* Patches a header count: 0 qd, 1 an, 2 ns, 3 ar. */
static void set_count(struct msg *m, int which, unsigned v)
{
    m->b[4 + 2 * which] = (uint8_t)(v >> 8);
    m->b[5 + 2 * which] = (uint8_t)v;
}

static int parse(const struct msg *m, struct mvm_dns_query *q)
{
    return mvm_dns_parse_query(m->b, m->n, q, NULL);
}

static struct mvm_dns_query parse_ok(const struct msg *m)
{
    struct mvm_dns_query q;
    struct mvm_error *err = NULL;
    if (mvm_dns_parse_query(m->b, m->n, &q, &err) < 0)
        fail_msg("parse failed: %s", err->msg);
    return q;
}

static enum mvm_dns_verdict verdict_full(const char *name, unsigned type, unsigned class,
                                         unsigned flags)
{
    struct msg m;
    query_full(&m, 7, flags, name, type, class);
    struct mvm_dns_query q = parse_ok(&m);
    return mvm_dns_check_query(&q);
}

static enum mvm_dns_verdict verdict(const char *name, unsigned type)
{
    return verdict_full(name, type, MVM_DNS_CLASS_IN, RD);
}

#define FORWARD MVM_DNS_FORWARD
#define REFUSE  MVM_DNS_REFUSE
#define DROP    MVM_DNS_DROP

/* ---- parsing ---------------------------------------------------------------- */

static void test_parse_bytes(void **state)
{
    /* API.Anthropic.com IN A, RD, id 0x1234, as a stub resolver sends it. */
    static const uint8_t wire[] = {
        0x12, 0x34, 0x01, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        3,    'A',  'P',  'I',  9,    'A',  'n',  't',  'h',  'r',  'o',  'p',
        'i',  'c',  3,    'c',  'o',  'm',  0,    0x00, 0x01, 0x00, 0x01,
    };
    struct mvm_dns_query q;

    assert_int_equal(mvm_dns_parse_query(wire, sizeof wire, &q, NULL), 0);
    assert_string_equal(q.name, "api.anthropic.com");
    assert_int_equal(q.id, 0x1234);
    assert_int_equal(q.flags, 0x0100);
    assert_int_equal(q.qtype, MVM_DNS_TYPE_A);
    assert_int_equal(q.qclass, MVM_DNS_CLASS_IN);
    assert_int_equal(mvm_dns_check_query(&q), FORWARD);

    /* Every proper prefix is truncated somewhere, and is refused. */
    for (size_t n = 0; n < sizeof wire; n++)
        assert_int_equal(mvm_dns_parse_query(wire, n, &q, NULL), -1);
}

static void test_parse_edns_and_trailing(void **state)
{
    struct msg m;
    struct mvm_dns_query q;

    query(&m, 1, "example.com", MVM_DNS_TYPE_AAAA);
    set_count(&m, 3, 1); /* an OPT record, as glibc and dig send */
    put8(&m, 0);
    put16(&m, 41);
    put16(&m, 1232);
    put32(&m, 0);
    put16(&m, 0);
    assert_int_equal(parse(&m, &q), 0);
    assert_string_equal(q.name, "example.com");
    for (size_t n = 0; n < m.n; n++)
        assert_int_equal(mvm_dns_parse_query(m.b, n, &q, NULL), -1);

    put8(&m, 0); /* one byte after the last record */
    assert_int_equal(parse(&m, &q), -1);

    query(&m, 1, "example.com", MVM_DNS_TYPE_A);
    set_count(&m, 3, 1); /* claims a record that is not there */
    assert_int_equal(parse(&m, &q), -1);
}

static void test_parse_qdcount(void **state)
{
    struct msg m;
    struct mvm_dns_query q;

    query(&m, 1, "example.com", MVM_DNS_TYPE_A);
    assert_int_equal(parse(&m, &q), 0);
    set_count(&m, 0, 0);
    assert_int_equal(parse(&m, &q), -1);
    set_count(&m, 0, 2);
    assert_int_equal(parse(&m, &q), -1);
    /* Two real questions are still refused. */
    put_name(&m, "example.org");
    put16(&m, 1);
    put16(&m, 1);
    assert_int_equal(parse(&m, &q), -1);
}

static void test_parse_label_limits(void **state)
{
    char l63[64], l64[65], name[300];
    struct msg m;
    struct mvm_dns_query q;

    memset(l63, 'a', 63);
    l63[63] = '\0';
    memset(l64, 'b', 64);
    l64[64] = '\0';

    snprintf(name, sizeof name, "%s.com", l63);
    query(&m, 1, name, 1);
    assert_int_equal(parse(&m, &q), 0);
    assert_string_equal(q.name, name);
    snprintf(name, sizeof name, "%s.com", l64); /* 0x40: an extended label type */
    query(&m, 1, name, 1);
    assert_int_equal(parse(&m, &q), -1);

    /* 3 x 63 + 61 in four labels is 255 bytes on the wire: the limit. */
    snprintf(name, sizeof name, "%s.%s.%s.%.61s", l63, l63, l63, l63);
    query(&m, 1, name, 1);
    assert_int_equal(parse(&m, &q), 0);
    assert_int_equal(strlen(q.name), 253);
    snprintf(name, sizeof name, "%s.%s.%s.%.62s", l63, l63, l63, l63);
    query(&m, 1, name, 1);
    assert_int_equal(parse(&m, &q), -1);
}

static void test_parse_label_bytes(void **state)
{
    struct msg m;
    struct mvm_dns_query q;

    query(&m, 1, "under_score.example-1.com", 1);
    assert_int_equal(parse(&m, &q), 0);
    /* A dot inside a label would read as two labels in the text. */
    header(&m, 1, RD, 1, 0, 0, 0);
    put(&m, "\x09printer.x\x00", 11);
    put16(&m, 1);
    put16(&m, 1);
    assert_int_equal(parse(&m, &q), -1);
    query(&m, 1, "a b.example.com", 1);
    assert_int_equal(parse(&m, &q), -1);
    header(&m, 1, RD, 1, 0, 0, 0);
    put(&m,
        "\x03"
        "a\0b"
        "\x03"
        "com\x00",
        9);
    put16(&m, 1);
    put16(&m, 1);
    assert_int_equal(parse(&m, &q), -1);
}

static void test_parse_compression(void **state)
{
    struct msg m;
    struct mvm_dns_query q;

    /* The question's name points at itself. */
    header(&m, 1, RD, 1, 0, 0, 0);
    put16(&m, 0xc00c);
    put16(&m, 1);
    put16(&m, 1);
    assert_int_equal(parse(&m, &q), -1);

    /* "a" then a pointer back to "a": backwards, yet a loop. */
    header(&m, 1, RD, 1, 0, 0, 0);
    put(&m,
        "\x01"
        "a",
        2);
    put16(&m, 0xc00c);
    put16(&m, 1);
    put16(&m, 1);
    assert_int_equal(parse(&m, &q), -1);

    /* Into the header, and forwards. */
    header(&m, 1, RD, 1, 0, 0, 0);
    put16(&m, 0xc002);
    put16(&m, 1);
    put16(&m, 1);
    assert_int_equal(parse(&m, &q), -1);
    header(&m, 1, RD, 1, 0, 0, 0);
    put16(&m, 0xc010);
    put16(&m, 1);
    put16(&m, 1);
    put_name(&m, "example.com");
    assert_int_equal(parse(&m, &q), -1);

    /* A pointer cut in half. */
    header(&m, 1, RD, 1, 0, 0, 0);
    put8(&m, 0xc0);
    assert_int_equal(parse(&m, &q), -1);
}

/* ---- policy ----------------------------------------------------------------- */

static void test_policy_names(void **state)
{
    assert_int_equal(verdict("api.anthropic.com", MVM_DNS_TYPE_A), FORWARD);
    assert_int_equal(verdict("printer", MVM_DNS_TYPE_A), REFUSE);
    assert_int_equal(verdict("", MVM_DNS_TYPE_A), REFUSE);

    assert_int_equal(verdict("mylocal.com", MVM_DNS_TYPE_A), FORWARD);
    assert_int_equal(verdict("local.example.com", MVM_DNS_TYPE_A), FORWARD);
    assert_int_equal(verdict("foo.local", MVM_DNS_TYPE_A), REFUSE);
    assert_int_equal(verdict("FOO.LOCAL", MVM_DNS_TYPE_A), REFUSE);
    assert_int_equal(verdict("local", MVM_DNS_TYPE_A), REFUSE);

    assert_int_equal(verdict("localhost.example.com", MVM_DNS_TYPE_A), FORWARD);
    assert_int_equal(verdict("foo.localhost", MVM_DNS_TYPE_A), REFUSE);
    assert_int_equal(verdict("localhost.localdomain", MVM_DNS_TYPE_A), REFUSE);
    assert_int_equal(verdict("nas.home.arpa", MVM_DNS_TYPE_AAAA), REFUSE);
    assert_int_equal(verdict("home.arpa", MVM_DNS_TYPE_A), REFUSE);
    assert_int_equal(verdict("metadata.google.internal", MVM_DNS_TYPE_A), REFUSE);
    assert_int_equal(verdict("router.lan", MVM_DNS_TYPE_A), REFUSE);
    assert_int_equal(verdict("wiki.corp", MVM_DNS_TYPE_A), REFUSE);
    assert_int_equal(verdict("lan.example.com", MVM_DNS_TYPE_A), FORWARD);
}

static void test_policy_types(void **state)
{
    assert_int_equal(verdict("example.com", MVM_DNS_TYPE_A), FORWARD);
    assert_int_equal(verdict("example.com", 16), FORWARD); /* TXT */
    assert_int_equal(verdict("example.com", 65), FORWARD); /* HTTPS */
    assert_int_equal(verdict("example.com", 255), REFUSE); /* ANY */
    assert_int_equal(verdict("example.com", 252), REFUSE); /* AXFR */
    assert_int_equal(verdict("example.com", 251), REFUSE); /* IXFR */
    assert_int_equal(verdict("example.com", 41), REFUSE);  /* OPT */
    assert_int_equal(verdict("example.com", 0), REFUSE);
    assert_int_equal(verdict_full("example.com", 1, 1, 0), FORWARD);       /* RD clear */
    assert_int_equal(verdict_full("example.com", 1, 3, RD), REFUSE);       /* CH */
    assert_int_equal(verdict_full("example.com", 1, 255, RD), REFUSE);     /* ANY class */
    assert_int_equal(verdict_full("example.com", 1, 1, 0x1000), REFUSE);   /* STATUS */
    assert_int_equal(verdict_full("example.com", 1, 1, 0x2800), REFUSE);   /* UPDATE */
    assert_int_equal(verdict_full("example.com", 1, 1, RESPONSE), REFUSE); /* QR */
}

static void test_policy_reverse_v4(void **state)
{
    static const struct {
        const char *name;
        enum mvm_dns_verdict v;
    } cases[] = {
        {"8.8.8.8.in-addr.arpa", FORWARD},
        {"10.1.168.192.in-addr.arpa", REFUSE},
        {"7.113.0.203.in-addr.arpa", FORWARD},
        {"1.0.0.10.in-addr.arpa", REFUSE},
        {"1.0.32.172.in-addr.arpa", FORWARD},
        {"1.0.16.172.in-addr.arpa", REFUSE},
        {"1.0.31.172.in-addr.arpa", REFUSE},
        {"1.1.128.100.in-addr.arpa", FORWARD},
        {"1.1.64.100.in-addr.arpa", REFUSE},
        {"254.169.254.169.in-addr.arpa", REFUSE},
        {"1.0.0.127.in-addr.arpa", REFUSE},
        {"8.in-addr.arpa", FORWARD},
        {"168.192.in-addr.arpa", REFUSE},
        {"172.in-addr.arpa", REFUSE},
        {"in-addr.arpa", REFUSE},
        {"8.8.8.08.in-addr.arpa", REFUSE},
        {"8.8.8.256.in-addr.arpa", REFUSE},
        {"1.8.8.8.8.in-addr.arpa", REFUSE},
        {"x.8.8.8.in-addr.arpa", REFUSE},
        {"8.8.8.8.in-addr.arpa.example", FORWARD},
    };
    for (size_t i = 0; i < ARRAY_SIZE(cases); i++)
        if (verdict(cases[i].name, MVM_DNS_TYPE_PTR) != cases[i].v)
            fail_msg("%s: expected %s", cases[i].name,
                     cases[i].v == FORWARD ? "FORWARD" : "REFUSE");
}

/* The ip6.arpa name of an address. */
static void rev6(char *out, size_t cap, const char *ip)
{
    static const char hex[] = "0123456789abcdef";
    uint8_t a[16];
    size_t at = 0;
    assert_int_equal(inet_pton(AF_INET6, ip, a), 1);
    assert_true(cap > 32 * 2 + 8);
    for (int i = 31; i >= 0; i--) {
        unsigned nib = i % 2 ? a[i / 2] & 0xf : a[i / 2] >> 4;
        out[at++] = hex[nib];
        out[at++] = '.';
    }
    assert_true((size_t)snprintf(out + at, cap - at, "ip6.arpa") < cap - at);
}

static void test_policy_reverse_v6(void **state)
{
    static const struct {
        const char *ip;
        enum mvm_dns_verdict v;
    } cases[] = {
        {"2001:4860:4860::8888", FORWARD},
        {"fd00::1", REFUSE},
        {"fc12::1", REFUSE},
        {"2606:4700::1111", FORWARD},
        {"fe80::1", REFUSE},
        {"febf::1", REFUSE},
        {"fec0::1", FORWARD},
        {"::1", REFUSE},
        {"::2", FORWARD},
        {"::ffff:192.168.1.1", REFUSE},
    };
    char name[80];
    for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
        rev6(name, sizeof name, cases[i].ip);
        if (verdict(name, MVM_DNS_TYPE_PTR) != cases[i].v)
            fail_msg("%s: expected %s", cases[i].ip, cases[i].v == FORWARD ? "FORWARD" : "REFUSE");
    }
    assert_int_equal(verdict("2.ip6.arpa", MVM_DNS_TYPE_PTR), FORWARD);
    assert_int_equal(verdict("f.ip6.arpa", MVM_DNS_TYPE_PTR), REFUSE);
    assert_int_equal(verdict("ip6.arpa", MVM_DNS_TYPE_PTR), REFUSE);
    assert_int_equal(verdict("20.ip6.arpa", MVM_DNS_TYPE_PTR), REFUSE);
}

/* ---- replies we build ----------------------------------------------------------- */

static unsigned rcode_of(const uint8_t *b)
{
    return b[3] & 0xf;
}

static void test_refused(void **state)
{
    uint8_t out[MVM_DNS_MAX_MSG];
    size_t n = 0;
    struct msg m;

    query(&m, 0xbeef, "Printer", MVM_DNS_TYPE_A);
    struct mvm_dns_query q = parse_ok(&m);
    assert_int_equal(mvm_dns_refused(m.b, m.n, out, sizeof out, &n), 0);
    assert_int_equal(rcode_of(out), MVM_DNS_RCODE_REFUSED);
    assert_true(out[2] & 0x80); /* QR */
    assert_true(out[2] & 0x01); /* RD echoed */
    assert_int_equal(n, m.n);   /* the question, nothing more */
    assert_true(mvm_dns_response_matches(out, n, &q));
    q.id ^= 1;
    assert_false(mvm_dns_response_matches(out, n, &q));

    /* An opcode we do not speak: NOTIMP, same id. */
    query_full(&m, 0x1111, 0x1000, "example.com", 1, 1);
    assert_int_equal(mvm_dns_refused(m.b, m.n, out, sizeof out, &n), 0);
    assert_int_equal(rcode_of(out), MVM_DNS_RCODE_NOTIMP);
    assert_int_equal(out[0] << 8 | out[1], 0x1111);

    /* No parsable question, but an id: FORMERR without a question. */
    static const uint8_t junk[] = {0xab, 0xcd, 0x01, 0x00, 0x00, 0x01, 0xff};
    assert_int_equal(mvm_dns_refused(junk, sizeof junk, out, sizeof out, &n), 0);
    assert_int_equal(n, 12);
    assert_int_equal(out[0] << 8 | out[1], 0xabcd);
    assert_int_equal(rcode_of(out), MVM_DNS_RCODE_FORMERR);
    assert_int_equal(out[4] << 8 | out[5], 0);
    assert_int_equal(mvm_dns_refused(junk, 2, out, sizeof out, &n), 0);
    assert_int_equal(mvm_dns_refused(junk, 1, out, sizeof out, &n), -1);

    /* Never past cap. */
    query(&m, 1, "example.com", 1);
    assert_int_equal(mvm_dns_refused(m.b, m.n, out, m.n - 1, &n), -1);
    assert_int_equal(mvm_dns_refused(m.b, m.n, out, m.n, &n), 0);
    assert_int_equal(mvm_dns_refused(junk, sizeof junk, out, 11, &n), -1);
}

static void test_error_reply(void **state)
{
    uint8_t out[64];
    size_t n;
    struct mvm_dns_query q = {.id = 9, .flags = RD, .qtype = 1, .qclass = 1};

    snprintf(q.name, sizeof q.name, "example.com");
    assert_int_equal(mvm_dns_error_reply(&q, MVM_DNS_RCODE_SERVFAIL, out, sizeof out, &n), 0);
    assert_int_equal(rcode_of(out), MVM_DNS_RCODE_SERVFAIL);
    assert_true(mvm_dns_response_matches(out, n, &q));
    /* Names no message can carry are not encoded. */
    snprintf(q.name, sizeof q.name, "a..b");
    assert_int_equal(mvm_dns_error_reply(&q, 2, out, sizeof out, &n), -1);
    snprintf(q.name, sizeof q.name, "a.b.");
    assert_int_equal(mvm_dns_error_reply(&q, 2, out, sizeof out, &n), -1);
}

/* ---- responses --------------------------------------------------------------------- */

static struct mvm_dns_query asked_for(const char *name, unsigned type, unsigned id)
{
    struct msg m;
    query(&m, id, name, type);
    return parse_ok(&m);
}

static enum mvm_dns_verdict check(const struct msg *m, const struct mvm_dns_query *asked)
{
    struct mvm_dns_lan lan;
    mvm_dns_lan_default(&lan);
    return mvm_dns_check_response(m->b, m->n, asked, &lan);
}

static enum mvm_dns_verdict check_a(const char *ip)
{
    struct mvm_dns_query asked = asked_for("www.example.com", MVM_DNS_TYPE_A, 42);
    struct msg m;
    response(&m, 42, "www.example.com", MVM_DNS_TYPE_A, 1);
    rr_a(&m, ip);
    return check(&m, &asked);
}

static enum mvm_dns_verdict check_aaaa(const char *ip)
{
    struct mvm_dns_query asked = asked_for("www.example.com", MVM_DNS_TYPE_AAAA, 42);
    struct msg m;
    response(&m, 42, "www.example.com", MVM_DNS_TYPE_AAAA, 1);
    rr_aaaa(&m, ip);
    return check(&m, &asked);
}

static void test_response_question(void **state)
{
    struct mvm_dns_query asked = asked_for("www.example.com", MVM_DNS_TYPE_A, 42);
    struct msg m;

    response(&m, 42, "www.example.com", MVM_DNS_TYPE_A, 1);
    rr_a(&m, "203.0.113.7");
    assert_int_equal(check(&m, &asked), FORWARD);
    for (size_t n = 0; n < m.n; n++) {
        struct msg cut = m;
        cut.n = n;
        assert_int_equal(check(&cut, &asked), DROP);
    }
    put8(&m, 0);
    assert_int_equal(check(&m, &asked), DROP); /* trailing byte */

    response(&m, 43, "www.example.com", MVM_DNS_TYPE_A, 1);
    rr_a(&m, "203.0.113.7");
    assert_int_equal(check(&m, &asked), DROP);
    response(&m, 42, "www.example.org", MVM_DNS_TYPE_A, 1);
    rr_a(&m, "203.0.113.7");
    assert_int_equal(check(&m, &asked), DROP);
    response(&m, 42, "www.example.com", MVM_DNS_TYPE_AAAA, 0);
    assert_int_equal(check(&m, &asked), DROP);
    response(&m, 42, "WWW.Example.COM", MVM_DNS_TYPE_A, 1);
    rr_a(&m, "203.0.113.7");
    assert_int_equal(check(&m, &asked), FORWARD);
    m.b[2] &= 0x7f; /* QR clear: a query, not an answer */
    assert_int_equal(check(&m, &asked), DROP);
}

static void test_response_rebinding(void **state)
{
    assert_int_equal(check_a("203.0.113.7"), FORWARD);
    assert_int_equal(check_a("192.168.1.10"), DROP);
    assert_int_equal(check_a("10.0.0.1"), DROP);
    assert_int_equal(check_a("172.16.0.1"), DROP);
    assert_int_equal(check_a("172.32.0.1"), FORWARD);
    assert_int_equal(check_a("100.64.0.1"), DROP);
    assert_int_equal(check_a("169.254.169.254"), DROP);
    assert_int_equal(check_a("127.0.0.1"), DROP);
    assert_int_equal(check_a("0.0.0.0"), DROP);
    assert_int_equal(check_a("239.1.1.1"), DROP);
    assert_int_equal(check_a("255.255.255.255"), DROP);

    assert_int_equal(check_aaaa("2001:db8::1"), FORWARD);
    assert_int_equal(check_aaaa("fd00::1"), DROP);
    assert_int_equal(check_aaaa("fe80::1"), DROP);
    assert_int_equal(check_aaaa("::1"), DROP);
    assert_int_equal(check_aaaa("::"), DROP);
    assert_int_equal(check_aaaa("ff02::1"), DROP);
    assert_int_equal(check_aaaa("::ffff:203.0.113.7"), FORWARD);
    assert_int_equal(check_aaaa("::ffff:192.168.1.1"), DROP);
    assert_int_equal(check_aaaa("64:ff9b::203.0.113.7"), FORWARD);
    assert_int_equal(check_aaaa("64:ff9b::10.0.0.1"), DROP);
}

static void test_response_sections(void **state)
{
    struct mvm_dns_query asked = asked_for("www.example.com", MVM_DNS_TYPE_A, 42);
    struct msg m;

    /* A LAN address in the additional section counts too. */
    response(&m, 42, "www.example.com", MVM_DNS_TYPE_A, 1);
    rr_a(&m, "203.0.113.7");
    assert_int_equal(check(&m, &asked), FORWARD);
    set_count(&m, 3, 1);
    rr_a(&m, "192.168.0.1");
    assert_int_equal(check(&m, &asked), DROP);

    /* An A record that is not 4 bytes. */
    response(&m, 42, "www.example.com", MVM_DNS_TYPE_A, 1);
    rr(&m, MVM_DNS_TYPE_A, "\xcb\x00\x71\x07\x00", 5, 60);
    assert_int_equal(check(&m, &asked), DROP);
    /* rdlength past the end. */
    response(&m, 42, "www.example.com", MVM_DNS_TYPE_A, 1);
    rr(&m, MVM_DNS_TYPE_A, "\xcb\x00\x71\x07", 4, 60);
    m.b[m.n - 5] = 5;
    assert_int_equal(check(&m, &asked), DROP);
}

/* A response whose second record's owner is a chain of `hops` pointers
 * (kept in the first record's rdata), each pointing at the one before. */
static void hop_chain(struct msg *m, unsigned hops)
{
    uint8_t rdata[256];
    size_t base, n = 0;

    response(m, 42, "www.example.com", MVM_DNS_TYPE_A, 2);
    base = m->n + 12; /* where rdata starts: after owner, type, class, ttl, rdlength */
    rdata[n++] = 0;   /* the root the chain ends in */
    for (unsigned i = 1; i < hops; i++) {
        size_t target = base + (i == 1 ? 0 : 1 + 2 * (i - 2));
        rdata[n++] = (uint8_t)(0xc0 | target >> 8);
        rdata[n++] = (uint8_t)target;
    }
    rr(m, 16, rdata, (unsigned)n, 60);
    size_t last = base + (hops == 1 ? 0 : 1 + 2 * (hops - 2));
    put16(m, 0xc000 | (unsigned)last);
    put16(m, MVM_DNS_TYPE_A);
    put16(m, MVM_DNS_CLASS_IN);
    put32(m, 60);
    put16(m, 4);
    put(m, "\xcb\x00\x71\x07", 4);
}

static void test_response_hops(void **state)
{
    struct mvm_dns_query asked = asked_for("www.example.com", MVM_DNS_TYPE_A, 42);
    struct msg m;

    hop_chain(&m, 10);
    assert_int_equal(check(&m, &asked), FORWARD);
    hop_chain(&m, 32);
    assert_int_equal(check(&m, &asked), FORWARD);
    hop_chain(&m, 33);
    assert_int_equal(check(&m, &asked), DROP);

    /* An owner pointing at itself. */
    response(&m, 42, "www.example.com", MVM_DNS_TYPE_A, 1);
    put16(&m, 0xc000 | (unsigned)m.n);
    put16(&m, MVM_DNS_TYPE_A);
    put16(&m, MVM_DNS_CLASS_IN);
    put32(&m, 60);
    put16(&m, 4);
    put(&m, "\xcb\x00\x71\x07", 4);
    assert_int_equal(check(&m, &asked), DROP);
}

static void test_lan_list(void **state)
{
    struct mvm_dns_query asked = asked_for("nas.example.com", MVM_DNS_TYPE_A, 5);
    struct mvm_dns_lan lan;
    struct msg m;
    uint8_t a[4];

    mvm_dns_lan_default(&lan);
    response(&m, 5, "nas.example.com", MVM_DNS_TYPE_A, 1);
    rr_a(&m, "192.168.1.10");
    assert_int_equal(mvm_dns_check_response(m.b, m.n, &asked, &lan), DROP);
    inet_pton(AF_INET, "192.168.1.10", a);
    assert_int_equal(mvm_dns_lan_allow4(&lan, a, NULL), 0);
    assert_int_equal(mvm_dns_check_response(m.b, m.n, &asked, &lan), FORWARD);
    response(&m, 5, "nas.example.com", MVM_DNS_TYPE_A, 1);
    rr_a(&m, "192.168.1.11");
    assert_int_equal(mvm_dns_check_response(m.b, m.n, &asked, &lan), DROP);

    /* The host's on-link prefixes, added by the caller. */
    response(&m, 5, "nas.example.com", MVM_DNS_TYPE_A, 1);
    rr_a(&m, "198.51.100.5");
    assert_int_equal(mvm_dns_check_response(m.b, m.n, &asked, &lan), FORWARD);
    inet_pton(AF_INET, "198.51.100.77", a);
    assert_int_equal(mvm_dns_lan_add4(&lan, a, 24, NULL), 0);
    assert_int_equal(mvm_dns_check_response(m.b, m.n, &asked, &lan), DROP);

    struct mvm_error *err = NULL;
    assert_int_equal(mvm_dns_lan_add4(&lan, a, 33, &err), -1);
    assert_non_null(err);
    mvm_error_free(err);
    while (lan.n4 < MVM_DNS_LAN_MAX)
        assert_int_equal(mvm_dns_lan_add4(&lan, a, 32, NULL), 0);
    assert_int_equal(mvm_dns_lan_add4(&lan, a, 32, NULL), -1);
}

static void test_answers(void **state)
{
    struct mvm_dns_addr out[4];
    struct msg m;

    response(&m, 1, "www.example.com", MVM_DNS_TYPE_A, 3);
    rr(&m, 5,
       "\x03"
       "cdn\xc0\x10",
       6, 100); /* a CNAME is skipped */
    rr_a(&m, "203.0.113.7");
    rr_aaaa(&m, "2001:db8::7");
    assert_int_equal(mvm_dns_answers(m.b, m.n, out, ARRAY_SIZE(out)), 2);
    assert_int_equal(out[0].family, 4);
    assert_memory_equal(out[0].addr, "\xcb\x00\x71\x07", 4);
    assert_int_equal(out[0].ttl, 300);
    assert_int_equal(out[1].family, 6);
    assert_int_equal(out[1].addr[15], 7);
    assert_int_equal(mvm_dns_answers(m.b, m.n, out, 1), 1);
    assert_int_equal(mvm_dns_answers(m.b, m.n - 1, out, 4), -1);

    response(&m, 1, "www.example.com", MVM_DNS_TYPE_A, 1);
    rr(&m, MVM_DNS_TYPE_A, "\xcb\x00\x71\x07", 4, 0x80000000u);
    assert_int_equal(mvm_dns_answers(m.b, m.n, out, 4), 1);
    assert_int_equal(out[0].ttl, 0);
}

/* ---- allow= mode: names and CNAME chains ------------------------------------------------ */

static void rr_head(struct msg *m, const char *owner, unsigned type, uint32_t ttl)
{
    put_name(m, owner);
    put16(m, type);
    put16(m, MVM_DNS_CLASS_IN);
    put32(m, ttl);
}

static void rr_a_of(struct msg *m, const char *owner, const char *ip, uint32_t ttl)
{
    uint8_t a[4];
    assert_int_equal(inet_pton(AF_INET, ip, a), 1);
    rr_head(m, owner, MVM_DNS_TYPE_A, ttl);
    put16(m, 4);
    put(m, a, 4);
}

static void rr_cname(struct msg *m, const char *owner, const char *target, uint32_t ttl)
{
    rr_head(m, owner, 5, ttl);
    size_t at = m->n;
    put16(m, 0);
    put_name(m, target);
    size_t len = m->n - at - 2;
    m->b[at] = (uint8_t)(len >> 8);
    m->b[at + 1] = (uint8_t)len;
}

static void test_allow_match(void **state)
{
    const struct mvm_dns_allow list[] = {
        {"api.example.com", false, 3},
        {"cdn.example", true, 7},
    };
    assert_int_equal(mvm_dns_allow_match("api.example.com", list, 2), 3);
    assert_int_equal(mvm_dns_allow_match("x.api.example.com", list, 2), -1);
    assert_int_equal(mvm_dns_allow_match("example.com", list, 2), -1);
    assert_int_equal(mvm_dns_allow_match("a.cdn.example", list, 2), 7);
    assert_int_equal(mvm_dns_allow_match("a.b.cdn.example", list, 2), 7);
    /* The wildcard means the names below it, not itself or look-alikes. */
    assert_int_equal(mvm_dns_allow_match("cdn.example", list, 2), -1);
    assert_int_equal(mvm_dns_allow_match("evilcdn.example", list, 2), -1);
    assert_int_equal(mvm_dns_allow_match("cdn.example.evil", list, 2), -1);
    assert_int_equal(mvm_dns_allow_match("api.example.com", list, 0), -1);
}

static void test_chain_answers(void **state)
{
    struct msg m;
    struct mvm_dns_addr a[8];
    char ip[INET_ADDRSTRLEN];

    /* api -> edge -> cdn: the chain's addresses with the smallest TTL on
     * their way; an address of another name is not the chain's. */
    response(&m, 1, "api.example.com", MVM_DNS_TYPE_A, 5);
    rr_cname(&m, "api.example.com", "edge.example.net", 600);
    rr_a_of(&m, "other.example.org", "203.0.113.99", 900);
    rr_cname(&m, "edge.example.net", "cdn.example.net", 120);
    rr_a_of(&m, "cdn.example.net", "203.0.113.10", 300);
    rr_a_of(&m, "cdn.example.net", "203.0.113.11", 30);
    assert_int_equal(mvm_dns_chain_answers(m.b, m.n, "api.example.com", a, 8), 2);
    assert_string_equal(inet_ntop(AF_INET, a[0].addr, ip, sizeof ip), "203.0.113.10");
    assert_int_equal(a[0].ttl, 120);
    assert_string_equal(inet_ntop(AF_INET, a[1].addr, ip, sizeof ip), "203.0.113.11");
    assert_int_equal(a[1].ttl, 30);
    assert_int_equal(mvm_dns_chain_answers(m.b, m.n, "api.example.com", a, 1), 1);
    /* Asked for another name, the same message gives that name's own. */
    assert_int_equal(mvm_dns_chain_answers(m.b, m.n, "other.example.org", a, 8), 1);
    assert_int_equal(a[0].ttl, 900);
    assert_int_equal(mvm_dns_chain_answers(m.b, m.n, "nobody.example", a, 8), 0);
    assert_int_equal(mvm_dns_chain_answers(m.b, m.n - 1, "api.example.com", a, 8), -1);

    /* A CNAME whose target is compressed (a pointer into the question),
     * and records in an order that is not the chain's. */
    response(&m, 2, "api.example.com", MVM_DNS_TYPE_A, 2);
    rr_a_of(&m, "cdn.example.com", "198.51.100.81", 60);
    put16(&m, 0xc00c);
    put16(&m, 5);
    put16(&m, MVM_DNS_CLASS_IN);
    put32(&m, 0);
    put16(&m, 6);
    put(&m,
        "\x03"
        "cdn"
        "\xc0\x10",
        6); /* "cdn" + the question's "example.com" */
    assert_int_equal(mvm_dns_chain_answers(m.b, m.n, "api.example.com", a, 8), 1);
    assert_string_equal(inet_ntop(AF_INET, a[0].addr, ip, sizeof ip), "198.51.100.81");
    assert_int_equal(a[0].ttl, 0);

    /* A loop ends the chain; the addresses on it still count. */
    response(&m, 3, "a.example", MVM_DNS_TYPE_A, 3);
    rr_cname(&m, "a.example", "b.example", 60);
    rr_cname(&m, "b.example", "a.example", 60);
    rr_a_of(&m, "b.example", "203.0.113.5", 60);
    assert_int_equal(mvm_dns_chain_answers(m.b, m.n, "a.example", a, 8), 1);

    /* Malformed: CNAME rdata with bytes after the name, an A record of
     * the wrong size. */
    response(&m, 4, "a.example", MVM_DNS_TYPE_A, 1);
    rr_head(&m, "a.example", 5, 60);
    put16(&m, 12);
    put(&m,
        "\x01"
        "b"
        "\x07"
        "example"
        "\x00"
        "zz",
        12);
    assert_int_equal(mvm_dns_chain_answers(m.b, m.n, "a.example", a, 8), -1);
    response(&m, 5, "a.example", MVM_DNS_TYPE_A, 1);
    rr(&m, MVM_DNS_TYPE_A, "\x01\x02\x03", 3, 60);
    assert_int_equal(mvm_dns_chain_answers(m.b, m.n, "a.example", a, 8), -1);
}

/* ---- the relay over loopback ----------------------------------------------------------- */

struct net {
    int guest_srv; /* the relay's guest_fd */
    int upstream;  /* the relay's upstream_fd, connected to fake */
    int fake;      /* the fake upstream resolver */
    int client;    /* the guest's resolver, connected to guest_srv */
    pid_t relay;
    unsigned seen; /* datagrams that reached the fake upstream */
    int report;    /* allow= mode: mvm's end of the report socket */
    int tcp_srv;   /* the relay's TCP listener */
    uint16_t tcp_port;
};

static int udp_bound(struct sockaddr_in *addr)
{
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    socklen_t len = sizeof *addr;
    assert_true(fd >= 0);
    *addr = (struct sockaddr_in){.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(fd, (struct sockaddr *)addr, sizeof *addr), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)addr, &len), 0);
    return fd;
}

static int udp_connected(const struct sockaddr_in *to)
{
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    assert_int_equal(connect(fd, (const struct sockaddr *)to, sizeof *to), 0);
    return fd;
}

static int relay_setup(void **state, bool allow_mode)
{
    struct net *t = xcalloc(1, sizeof *t);
    struct sockaddr_in guest_addr, fake_addr;
    int sv[2] = {-1, -1};

    t->guest_srv = udp_bound(&guest_addr);
    t->fake = udp_bound(&fake_addr);
    t->upstream = udp_connected(&fake_addr);
    t->client = udp_connected(&guest_addr);
    if (allow_mode)
        assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
    t->report = sv[0];
    struct sockaddr_in ta = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t ta_len = sizeof ta;
    t->tcp_srv = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_int_equal(bind(t->tcp_srv, (struct sockaddr *)&ta, sizeof ta), 0);
    assert_int_equal(listen(t->tcp_srv, 16), 0);
    assert_int_equal(getsockname(t->tcp_srv, (struct sockaddr *)&ta, &ta_len), 0);
    t->tcp_port = ntohs(ta.sin_port);
    t->relay = fork();
    assert_true(t->relay >= 0);
    if (t->relay == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        struct mvm_dns_lan lan;
        mvm_dns_lan_default(&lan);
        static const struct mvm_dns_allow allow[] = {
            {"api.example.com", false, 2},
            {"cdn.example", true, 5},
        };
        struct mvm_dns_relay_config cfg = {.lan = &lan,
                                           .timeout_ms = 1500,
                                           .quiet = true,
                                           .allow_mode = allow_mode,
                                           .report_fd = sv[1],
                                           .allow = allow,
                                           .nallow = 2,
                                           .report_ms = 300,
                                           .tcp = true,
                                           .tcp_fd = t->tcp_srv};
        /* Under its own seccomp allowlist, as the jail runs it: it makes
         * no socket, and the loop needs nothing the list lacks. */
        void *f = mvm_jail_filter_allowlist(mvm_dns_relay_syscalls, 0, NULL);
        if (f == NULL || prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 || seccomp_load(f) < 0)
            _exit(99);
        if (socket(AF_INET, SOCK_DGRAM, 0) >= 0 || errno != EPERM)
            _exit(98);
        _exit(mvm_dns_relay_run(t->guest_srv, t->upstream, &cfg, NULL) == 0 ? 0 : 1);
    }
    close(t->upstream);
    if (allow_mode)
        close(sv[1]);
    *state = t;
    return 0;
}

static int net_setup(void **state)
{
    return relay_setup(state, false);
}

static int net_setup_allow(void **state)
{
    return relay_setup(state, true);
}

static int net_teardown(void **state)
{
    struct net *t = *state;
    if (t->relay > 0) {
        kill(t->relay, SIGKILL);
        waitpid(t->relay, NULL, 0);
    }
    close(t->guest_srv);
    close(t->fake);
    close(t->client);
    if (t->report >= 0)
        close(t->report);
    close(t->tcp_srv);
    free(t);
    return 0;
}

/* A datagram within ms, or -1. */
static ssize_t recv_within(int fd, struct msg *m, struct sockaddr_in *from, int ms)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    socklen_t len = sizeof *from;
    if (poll(&p, 1, ms) != 1)
        return -1;
    ssize_t n = recvfrom(fd, m->b, sizeof m->b, 0, (struct sockaddr *)from, &len);
    assert_true(n >= 0);
    m->n = (size_t)n;
    return n;
}

static void ask(struct net *t, unsigned id, const char *name)
{
    struct msg m;
    query(&m, id, name, MVM_DNS_TYPE_A);
    assert_int_equal(send(t->client, m.b, m.n, 0), (ssize_t)m.n);
}

/* The next query that reaches the fake upstream: it must be for name. */
static struct mvm_dns_query upstream_gets(struct net *t, const char *name, struct sockaddr_in *from)
{
    struct msg m;
    if (recv_within(t->fake, &m, from, 2000) < 0)
        fail_msg("%s never reached upstream", name);
    t->seen++;
    struct mvm_dns_query q = parse_ok(&m);
    assert_string_equal(q.name, name);
    return q;
}

static void upstream_answers(struct net *t, const struct mvm_dns_query *q, const char *ip,
                             const struct sockaddr_in *to)
{
    struct msg m;
    response(&m, q->id, q->name, MVM_DNS_TYPE_A, 1);
    rr_a(&m, ip);
    assert_int_equal(sendto(t->fake, m.b, m.n, 0, (const struct sockaddr *)to, sizeof *to),
                     (ssize_t)m.n);
}

/* What the guest gets back: id, rcode and the first address, if any. */
static void guest_gets(struct net *t, unsigned id, unsigned rcode, const char *ip)
{
    struct msg m;
    struct sockaddr_in from;
    struct mvm_dns_addr a[2];
    if (recv_within(t->client, &m, &from, 2000) < 0)
        fail_msg("no reply for id %#x", id);
    assert_true(m.n >= 12);
    assert_int_equal(m.b[0] << 8 | m.b[1], id);
    assert_int_equal(rcode_of(m.b), rcode);
    int n = mvm_dns_answers(m.b, m.n, a, ARRAY_SIZE(a));
    if (ip == NULL) {
        assert_int_equal(n, 0);
        return;
    }
    char text[INET_ADDRSTRLEN];
    assert_int_equal(n, 1);
    assert_non_null(inet_ntop(AF_INET, a[0].addr, text, sizeof text));
    assert_string_equal(text, ip);
}

static void nothing_more(int fd)
{
    struct msg m;
    struct sockaddr_in from;
    assert_int_equal(recv_within(fd, &m, &from, 200), -1);
}

static void test_relay_answers(void **state)
{
    struct net *t = *state;
    struct sockaddr_in relay;

    ask(t, 0x1111, "api.example.com");
    struct mvm_dns_query q = upstream_gets(t, "api.example.com", &relay);
    upstream_answers(t, &q, "203.0.113.7", &relay);
    guest_gets(t, 0x1111, 0, "203.0.113.7");

    /* Refused here: the guest hears REFUSED, upstream hears nothing (the
     * next thing it gets is the query after). */
    ask(t, 0x2222, "printer");
    guest_gets(t, 0x2222, MVM_DNS_RCODE_REFUSED, NULL);
    ask(t, 0x2323, "nas.local");
    guest_gets(t, 0x2323, MVM_DNS_RCODE_REFUSED, NULL);
    ask(t, 0x3333, "ok.example.com");
    q = upstream_gets(t, "ok.example.com", &relay);
    upstream_answers(t, &q, "203.0.113.8", &relay);
    guest_gets(t, 0x3333, 0, "203.0.113.8");

    /* Rebinding: the LAN answer never reaches the guest. */
    ask(t, 0x4444, "evil.example.com");
    q = upstream_gets(t, "evil.example.com", &relay);
    upstream_answers(t, &q, "192.168.1.10", &relay);
    guest_gets(t, 0x4444, MVM_DNS_RCODE_SERVFAIL, NULL);

    /* A reply to another question, or to no query, is ignored; the real
     * answer still gets through. */
    ask(t, 0x5555, "x.example.com");
    q = upstream_gets(t, "x.example.com", &relay);
    struct mvm_dns_query wrong = q;
    snprintf(wrong.name, sizeof wrong.name, "y.example.com");
    upstream_answers(t, &wrong, "203.0.113.66", &relay);
    wrong = q;
    wrong.id ^= 0x8000;
    upstream_answers(t, &wrong, "203.0.113.67", &relay);
    nothing_more(t->client);
    upstream_answers(t, &q, "203.0.113.9", &relay);
    guest_gets(t, 0x5555, 0, "203.0.113.9");
    nothing_more(t->client);

    /* Garbage from the guest gets FORMERR and goes nowhere. */
    assert_int_equal(send(t->client, "\x77\x77\x01", 3, 0), 3);
    guest_gets(t, 0x7777, MVM_DNS_RCODE_FORMERR, NULL);
    nothing_more(t->fake);
    assert_int_equal(t->seen, 4);

    /* A clean exit when the guest socket is shut down. */
    shutdown(t->guest_srv, SHUT_RDWR);
    int status = -1;
    for (int i = 0; i < 200 && waitpid(t->relay, &status, WNOHANG) == 0; i++)
        nanosleep(&(struct timespec){.tv_nsec = 10 * 1000 * 1000}, NULL);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    t->relay = -1;
}

static void test_relay_bounded(void **state)
{
    struct net *t = *state;
    struct sockaddr_in relay;
    char name[64];

    /* Fill the table with queries upstream never answers; the fake
     * receiving each batch is the flow control that keeps every socket
     * buffer from overflowing. */
    for (unsigned i = 0; i < MVM_DNS_RELAY_PENDING; i += 16) {
        for (unsigned j = i; j < i + 16; j++) {
            snprintf(name, sizeof name, "q%u.example.com", j);
            ask(t, j, name);
        }
        for (unsigned j = i; j < i + 16; j++) {
            snprintf(name, sizeof name, "q%u.example.com", j);
            upstream_gets(t, name, &relay);
        }
    }
    ask(t, 0xfff0, "one-too-many.example.com");
    guest_gets(t, 0xfff0, MVM_DNS_RCODE_SERVFAIL, NULL);
    nothing_more(t->fake);

    /* Once they expire (1.5 s here), there is room again. */
    nanosleep(&(struct timespec){.tv_sec = 1, .tv_nsec = 700 * 1000 * 1000}, NULL);
    ask(t, 0xfff1, "after.example.com");
    struct mvm_dns_query q = upstream_gets(t, "after.example.com", &relay);
    upstream_answers(t, &q, "203.0.113.10", &relay);
    guest_gets(t, 0xfff1, 0, "203.0.113.10");
}

/* mvm's side of an answer's report: the records, checked, then the ack. */
static size_t supervisor_gets(struct net *t, struct mvm_net_report *out, size_t cap)
{
    size_t n = 0;
    while (n < cap) {
        struct pollfd p = {.fd = t->report, .events = POLLIN};
        if (poll(&p, 1, 2000) != 1)
            fail_msg("no report from the relay");
        assert_int_equal(recv(t->report, &out[n], sizeof out[n], 0), (ssize_t)sizeof out[n]);
        if (out[n++].flags & MVM_NET_REPORT_LAST)
            break;
    }
    return n;
}

static void supervisor_acks(struct net *t, uint32_t seq, bool ok)
{
    struct mvm_net_report_ack a = {seq, ok};
    assert_int_equal(send(t->report, &a, sizeof a, 0), (ssize_t)sizeof a);
}

static void test_relay_allow(void **state)
{
    struct net *t = *state;
    struct sockaddr_in relay;
    struct mvm_net_report rec[4];
    struct msg m;

    /* An allowed name: forwarded; its CNAME chain's address reported
     * with the rule's index and the TTL; the guest gets the answer only
     * after the ack. */
    ask(t, 0x1001, "api.example.com");
    struct mvm_dns_query q = upstream_gets(t, "api.example.com", &relay);
    response(&m, q.id, q.name, MVM_DNS_TYPE_A, 2);
    rr_cname(&m, "api.example.com", "edge.cdn.example", 77);
    rr_a_of(&m, "edge.cdn.example", "203.0.113.20", 300);
    assert_int_equal(sendto(t->fake, m.b, m.n, 0, (struct sockaddr *)&relay, sizeof relay),
                     (ssize_t)m.n);
    assert_int_equal(supervisor_gets(t, rec, 4), 1);
    assert_int_equal(rec[0].rule, 2);
    assert_int_equal(rec[0].ttl, 77);
    assert_memory_equal(rec[0].addr, "\xcb\x00\x71\x14", 4);
    nothing_more(t->client); /* not before the ack */
    supervisor_acks(t, rec[0].seq, true);
    guest_gets(t, 0x1001, 0, "203.0.113.20");

    /* A name no rule allows: REFUSED here, and upstream hears nothing of
     * it -- nor of the wildcard's own name. */
    ask(t, 0x2002, "exfil.attacker.example");
    guest_gets(t, 0x2002, MVM_DNS_RCODE_REFUSED, NULL);
    ask(t, 0x2003, "cdn.example");
    guest_gets(t, 0x2003, MVM_DNS_RCODE_REFUSED, NULL);
    nothing_more(t->fake);

    /* Below the wildcard: allowed; mvm refusing the addresses, or not
     * answering, makes SERVFAIL. */
    ask(t, 0x3003, "x.cdn.example");
    q = upstream_gets(t, "x.cdn.example", &relay);
    upstream_answers(t, &q, "203.0.113.21", &relay);
    assert_int_equal(supervisor_gets(t, rec, 4), 1);
    assert_int_equal(rec[0].rule, 5);
    supervisor_acks(t, rec[0].seq, false);
    guest_gets(t, 0x3003, MVM_DNS_RCODE_SERVFAIL, NULL);
    ask(t, 0x4004, "y.cdn.example");
    q = upstream_gets(t, "y.cdn.example", &relay);
    upstream_answers(t, &q, "203.0.113.22", &relay);
    assert_int_equal(supervisor_gets(t, rec, 4), 1);
    supervisor_acks(t, rec[0].seq - 1, true); /* a stale ack does not count */
    guest_gets(t, 0x4004, MVM_DNS_RCODE_SERVFAIL, NULL);

    /* An answer without addresses (an AAAA one) needs no ack. */
    struct msg aq;
    query(&aq, 0x5005, "api.example.com", MVM_DNS_TYPE_AAAA);
    assert_int_equal(send(t->client, aq.b, aq.n, 0), (ssize_t)aq.n);
    q = upstream_gets(t, "api.example.com", &relay);
    response(&m, q.id, q.name, MVM_DNS_TYPE_AAAA, 0);
    assert_int_equal(sendto(t->fake, m.b, m.n, 0, (struct sockaddr *)&relay, sizeof relay),
                     (ssize_t)m.n);
    guest_gets(t, 0x5005, 0, NULL);
    struct pollfd p = {.fd = t->report, .events = POLLIN};
    assert_int_equal(poll(&p, 1, 100), 0);
}

/* ---- the relay over TCP ---------------------------------------------------- */

static int tcp_client(struct net *t)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_port = htons(t->tcp_port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    return fd;
}

/* Appends m, framed by its length, to buf. */
static void frame(struct msg *buf, const struct msg *m)
{
    put16(buf, (unsigned)m->n);
    put(buf, m->b, m->n);
}

/* One framed message from fd within 2 s into m; false at EOF. */
static bool tcp_read_msg(int fd, struct msg *m)
{
    uint8_t len[2];
    struct pollfd p = {.fd = fd, .events = POLLIN};
    if (poll(&p, 1, 2000) != 1)
        fail_msg("no TCP reply");
    ssize_t n = read_full(fd, len, 2);
    if (n == 0)
        return false;
    assert_int_equal(n, 2);
    m->n = (size_t)(len[0] << 8 | len[1]);
    assert_true(m->n <= sizeof m->b);
    assert_int_equal(read_full(fd, m->b, m->n), (ssize_t)m->n);
    return true;
}

static void test_relay_tcp(void **state)
{
    struct net *t = *state;
    struct sockaddr_in relay;
    struct msg q1, q2, out = {.n = 0}, m;
    struct mvm_dns_addr a[2];

    /* Two queries in one write: both answered in turn; upstream is asked
     * over UDP with room for a large answer. */
    int c = tcp_client(t);
    query(&q1, 0x0101, "big.example.com", MVM_DNS_TYPE_A);
    query(&q2, 0x0202, "printer", MVM_DNS_TYPE_A);
    frame(&out, &q1);
    frame(&out, &q2);
    assert_int_equal(write(c, out.b, out.n), (ssize_t)out.n);
    struct msg up;
    assert_true(recv_within(t->fake, &up, &relay, 2000) > 0);
    t->seen++;
    struct mvm_dns_query q = parse_ok(&up);
    assert_string_equal(q.name, "big.example.com");
    assert_int_equal(up.b[11], 1); /* the OPT record the relay added */
    upstream_answers(t, &q, "203.0.113.30", &relay);
    assert_true(tcp_read_msg(c, &m));
    assert_int_equal(m.b[0] << 8 | m.b[1], 0x0101);
    assert_int_equal(rcode_of(m.b), 0);
    assert_int_equal(mvm_dns_answers(m.b, m.n, a, 2), 1);
    assert_true(tcp_read_msg(c, &m)); /* the single-label name: refused here */
    assert_int_equal(m.b[0] << 8 | m.b[1], 0x0202);
    assert_int_equal(rcode_of(m.b), MVM_DNS_RCODE_REFUSED);

    /* Still truncated from upstream: over TCP that is SERVFAIL. */
    query(&q1, 0x0303, "huge.example.com", MVM_DNS_TYPE_A);
    out.n = 0;
    frame(&out, &q1);
    assert_int_equal(write(c, out.b, out.n), (ssize_t)out.n);
    q = upstream_gets(t, "huge.example.com", &relay);
    response(&m, q.id, q.name, MVM_DNS_TYPE_A, 0);
    m.b[2] |= 0x02; /* TC */
    assert_int_equal(sendto(t->fake, m.b, m.n, 0, (struct sockaddr *)&relay, sizeof relay),
                     (ssize_t)m.n);
    assert_true(tcp_read_msg(c, &m));
    assert_int_equal(rcode_of(m.b), MVM_DNS_RCODE_SERVFAIL);

    /* A zero length or one past the relay's limit ends the connection. */
    assert_int_equal(write(c, "\x00\x00", 2), 2);
    assert_false(tcp_read_msg(c, &m));
    close(c);
    c = tcp_client(t);
    assert_int_equal(write(c, "\x10\x01", 2), 2);
    assert_false(tcp_read_msg(c, &m));
    close(c);

    /* A client gone before its answer: the answer goes nowhere, and the
     * relay serves the next one. */
    c = tcp_client(t);
    query(&q1, 0x0404, "gone.example.com", MVM_DNS_TYPE_A);
    out.n = 0;
    frame(&out, &q1);
    assert_int_equal(write(c, out.b, out.n), (ssize_t)out.n);
    q = upstream_gets(t, "gone.example.com", &relay);
    close(c);
    upstream_answers(t, &q, "203.0.113.31", &relay);
    c = tcp_client(t);
    query(&q1, 0x0505, "next.example.com", MVM_DNS_TYPE_A);
    out.n = 0;
    frame(&out, &q1);
    assert_int_equal(write(c, out.b, out.n), (ssize_t)out.n);
    q = upstream_gets(t, "next.example.com", &relay);
    upstream_answers(t, &q, "203.0.113.32", &relay);
    assert_true(tcp_read_msg(c, &m));
    assert_int_equal(m.b[0] << 8 | m.b[1], 0x0505);
    close(c);
}

static void test_with_edns(void **state)
{
    struct msg m;
    uint8_t out[MVM_DNS_MAX_MSG];
    size_t n;
    struct mvm_dns_query q;

    /* None: one is added, offering the size asked for. */
    query(&m, 1, "a.example", MVM_DNS_TYPE_A);
    assert_int_equal(mvm_dns_with_edns(m.b, m.n, 4096, out, sizeof out, &n), 0);
    assert_int_equal(n, m.n + 11);
    assert_int_equal(out[11], 1); /* ARCOUNT */
    assert_int_equal(mvm_dns_parse_query(out, n, &q, NULL), 0);
    assert_memory_equal(out + m.n, "\x00\x00\x29\x10\x00\x00\x00\x00\x00\x00\x00", 11);
    assert_int_equal(mvm_dns_with_edns(m.b, m.n, 4096, out, m.n + 10, &n), -1);

    /* A smaller one: raised; a larger one: kept. */
    set_count(&m, 3, 1);
    rr_head(&m, "", 41, 0);
    m.b[m.n - 6] = 0x02; /* CLASS = 512 */
    m.b[m.n - 5] = 0x00;
    put16(&m, 0);
    assert_int_equal(mvm_dns_with_edns(m.b, m.n, 4096, out, sizeof out, &n), 0);
    assert_int_equal(n, m.n);
    assert_int_equal(out[m.n - 8] << 8 | out[m.n - 7], 4096);
    assert_int_equal(mvm_dns_with_edns(m.b, m.n, 256, out, sizeof out, &n), 0);
    assert_int_equal(out[m.n - 8] << 8 | out[m.n - 7], 512);

    /* Two OPT records, or one owned by another name: malformed. */
    struct msg two = m;
    set_count(&two, 3, 2);
    rr_head(&two, "", 41, 0);
    put16(&two, 0);
    assert_int_equal(mvm_dns_with_edns(two.b, two.n, 4096, out, sizeof out, &n), -1);
    query(&m, 1, "a.example", MVM_DNS_TYPE_A);
    set_count(&m, 3, 1);
    rr_head(&m, "x", 41, 0);
    put16(&m, 0);
    assert_int_equal(mvm_dns_with_edns(m.b, m.n, 4096, out, sizeof out, &n), -1);
    assert_int_equal(mvm_dns_with_edns(m.b, 5, 4096, out, sizeof out, &n), -1);
}

static void test_relay_main_usage(void **state)
{
    char *bad[][3] = {
        {"__dns-relay", "3", NULL}, {"__dns-relay", "3", "x"}, {"__dns-relay", "-1", "4"}};
    int devnull = open("/dev/null", O_WRONLY | O_CLOEXEC);
    int saved = dup(STDERR_FILENO);
    assert_true(devnull >= 0 && saved >= 0);
    dup2(devnull, STDERR_FILENO);
    int rc0 = mvm_dns_relay_main(2, bad[0]);
    int rc1 = mvm_dns_relay_main(3, bad[1]);
    int rc2 = mvm_dns_relay_main(3, bad[2]);
    /* A valid number that is no datagram socket. */
    char fd[16];
    snprintf(fd, sizeof fd, "%d", devnull);
    char *notsock[] = {"__dns-relay", fd, fd, NULL};
    int rc3 = mvm_dns_relay_main(3, notsock);
    char *badlan[] = {"__dns-relay", "3", "4", "--lan", "nas", NULL};
    int rc4 = mvm_dns_relay_main(5, badlan);
    /* Names to allow with nowhere to report them; an unknown flag; a
     * flag without its value. */
    char *noreport[] = {"__dns-relay", "3", "4", "--allow", "0:api.example.com", NULL};
    int rc5 = mvm_dns_relay_main(5, noreport);
    char *unknown[] = {"__dns-relay", "3", "4", "--open", "1", NULL};
    int rc6 = mvm_dns_relay_main(5, unknown);
    char *novalue[] = {"__dns-relay", "3", "4", "--report", NULL};
    int rc7 = mvm_dns_relay_main(4, novalue);
    dup2(saved, STDERR_FILENO);
    close(saved);
    close(devnull);
    assert_int_equal(rc0, 1);
    assert_int_equal(rc1, 1);
    assert_int_equal(rc2, 1);
    assert_int_equal(rc3, 1);
    assert_int_equal(rc4, 1);
    assert_int_equal(rc5, 1);
    assert_int_equal(rc6, 1);
    assert_int_equal(rc7, 1);
}

static void test_relay_argv(void **state)
{
    static struct mvm_net_plan p;
    static struct mvm_net_policy pol;
    mvm_net_plan_init(&p, MVM_NET_ISOLATED, 0, "abc", NULL);
    char **argv = mvm_dns_relay_argv("/mvm", &(struct mvm_dns_relay_fds){3, 4, -1, -1}, &p);
    assert_string_equal(argv[0], "/mvm");
    assert_string_equal(argv[1], "__dns-relay");
    assert_string_equal(argv[2], "3");
    assert_string_equal(argv[3], "4");
    assert_null(argv[4]);
    mvm_strv_free(argv);
    p.policy = &pol;
    mvm_net_policy_allow_lan(&pol, "192.168.77.10:80", NULL);
    mvm_net_policy_allow_lan(&pol, "10.1.2.3:3128", NULL);
    mvm_net_policy_allow(&pol, "api.example.com,198.51.100.7,*.cdn.example:8443", NULL);
    argv = mvm_dns_relay_argv("/mvm", &(struct mvm_dns_relay_fds){3, 4, -1, -1}, &p);
    const char *lan[] = {"--lan", "192.168.77.10", "--lan", "10.1.2.3", NULL};
    for (size_t i = 0; i < ARRAY_SIZE(lan); i++)
        assert_true(lan[i] ? argv[4 + i] && strcmp(argv[4 + i], lan[i]) == 0 : argv[4 + i] == NULL);
    mvm_strv_free(argv);
    /* allow= mode: the report fd and the name rules with their indices
     * (rule 1, an address, is the namespace's business alone). */
    argv = mvm_dns_relay_argv("/mvm", &(struct mvm_dns_relay_fds){3, 4, 6, 5}, &p);
    const char *allow[] = {
        "--tcp",    "6", "--lan",   "192.168.77.10",     "--lan",   "10.1.2.3",
        "--report", "5", "--allow", "0:api.example.com", "--allow", "2:*.cdn.example",
        NULL};
    for (size_t i = 0; i < ARRAY_SIZE(allow); i++)
        assert_true(allow[i] ? argv[4 + i] && strcmp(argv[4 + i], allow[i]) == 0
                             : argv[4 + i] == NULL);
    mvm_strv_free(argv);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_bytes),
        cmocka_unit_test(test_parse_edns_and_trailing),
        cmocka_unit_test(test_parse_qdcount),
        cmocka_unit_test(test_parse_label_limits),
        cmocka_unit_test(test_parse_label_bytes),
        cmocka_unit_test(test_parse_compression),
        cmocka_unit_test(test_policy_names),
        cmocka_unit_test(test_policy_types),
        cmocka_unit_test(test_policy_reverse_v4),
        cmocka_unit_test(test_policy_reverse_v6),
        cmocka_unit_test(test_refused),
        cmocka_unit_test(test_error_reply),
        cmocka_unit_test(test_response_question),
        cmocka_unit_test(test_response_rebinding),
        cmocka_unit_test(test_response_sections),
        cmocka_unit_test(test_response_hops),
        cmocka_unit_test(test_lan_list),
        cmocka_unit_test(test_answers),
        cmocka_unit_test_setup_teardown(test_relay_answers, net_setup, net_teardown),
        cmocka_unit_test_setup_teardown(test_relay_bounded, net_setup, net_teardown),
        cmocka_unit_test_setup_teardown(test_relay_allow, net_setup_allow, net_teardown),
        cmocka_unit_test_setup_teardown(test_relay_tcp, net_setup, net_teardown),
        cmocka_unit_test(test_with_edns),
        cmocka_unit_test(test_relay_main_usage),
        cmocka_unit_test(test_relay_argv),
        cmocka_unit_test(test_allow_match),
        cmocka_unit_test(test_chain_answers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
