/* DNS wire format and the relay's policy: bytes in, verdicts out.  No I/O
 * here, so every byte the guest or the upstream resolver can send reaches
 * this code through the fuzzer (tests/fuzz/fuzz-dns.c) as well. */
#include "dns.h"

#include <stdio.h>
#include <string.h>

#include "util.h"

#define HEADER_LEN  12
#define FLAG_QR     0x8000
#define FLAG_RD     0x0100
#define FLAG_RA     0x0080
#define OPCODE(f)   (((f) >> 11) & 0xf)
#define OPCODE_MASK 0x7800
/* A real name needs one hop per compressed suffix; this is plenty and
 * bounds the work a hostile message can cause. */
#define MAX_HOPS      32
#define MAX_NAME_WIRE 255

#define TYPE_CNAME 5
#define TYPE_OPT   41
#define TYPE_IXFR  251
#define TYPE_AXFR  252
#define TYPE_ANY   255

/* A bounded reader over one message. */
struct rd {
    const uint8_t *msg;
    size_t len;
    size_t off;
};

struct hdr {
    uint16_t id, flags, qd, an, ns, ar;
};

struct rr {
    uint16_t type, class;
    uint32_t ttl;
    const uint8_t *rdata;
    uint16_t rdlen;
};

static bool rd_u16(struct rd *r, uint16_t *v)
{
    if (r->len - r->off < 2)
        return false;
    *v = (uint16_t)(r->msg[r->off] << 8 | r->msg[r->off + 1]);
    r->off += 2;
    return true;
}

static uint16_t rr_u16(const uint8_t *b)
{
    return (uint16_t)(b[0] << 8 | b[1]);
}

static bool rd_u32(struct rd *r, uint32_t *v)
{
    uint16_t hi, lo;
    if (!rd_u16(r, &hi) || !rd_u16(r, &lo))
        return false;
    *v = (uint32_t)hi << 16 | lo;
    return true;
}

/* Appends one label to the dotted text, lowercased.  Only hostname bytes:
 * a '.' or NUL inside a label would make the text ambiguous, and the
 * policy works on the text. */
static bool append_label(char *text, size_t *t, const uint8_t *label, size_t n)
{
    if (*t > 0)
        text[(*t)++] = '.';
    for (size_t i = 0; i < n; i++) {
        uint8_t c = label[i];
        if (c >= 'A' && c <= 'Z')
            c = (uint8_t)(c - 'A' + 'a');
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_'))
            return false;
        text[(*t)++] = (char)c;
    }
    return true;
}

/* Follows a compression pointer at pos.  It must point before `start`, the
 * beginning of the run of labels it ends: the starts then strictly
 * decrease, so no chain of pointers can loop. */
static bool follow_pointer(const struct rd *r, size_t pos, size_t *start, unsigned *hops)
{
    if (pos + 1 >= r->len || ++*hops > MAX_HOPS)
        return false;
    size_t target = (size_t)(r->msg[pos] & 0x3f) << 8 | r->msg[pos + 1];
    if (target < HEADER_LEN || target >= *start)
        return false;
    *start = target;
    return true;
}

/* Reads the name at r->off and moves past it.  text (MVM_DNS_NAME_MAX
 * bytes) gets the dotted lowercase form; NULL only validates. */
static bool rd_name(struct rd *r, char *text)
{
    size_t pos = r->off, start = r->off, end = 0, wire = 1, t = 0;
    unsigned hops = 0;

    for (;;) {
        if (pos >= r->len)
            return false;
        uint8_t c = r->msg[pos];
        if ((c & 0xc0) == 0xc0) {
            if (end == 0)
                end = pos + 2;
            if (!follow_pointer(r, pos, &start, &hops))
                return false;
            pos = start;
            continue;
        }
        if (c & 0xc0) /* extended label types: never valid today */
            return false;
        if (c == 0)
            break;
        wire += 1u + c;
        if (wire > MAX_NAME_WIRE || r->len - pos - 1 < c)
            return false;
        if (text != NULL && !append_label(text, &t, r->msg + pos + 1, c))
            return false;
        pos += 1u + c;
    }
    if (text != NULL)
        text[t] = '\0';
    r->off = end ? end : pos + 1;
    return true;
}

static bool rd_header(struct rd *r, struct hdr *h)
{
    return rd_u16(r, &h->id) && rd_u16(r, &h->flags) && rd_u16(r, &h->qd) && rd_u16(r, &h->an) &&
           rd_u16(r, &h->ns) && rd_u16(r, &h->ar);
}

/* One resource record; owner (MVM_DNS_NAME_MAX bytes) gets its name's
 * text, NULL only validates it. */
static bool rd_rr_owner(struct rd *r, struct rr *rr, char *owner)
{
    if (!rd_name(r, owner) || !rd_u16(r, &rr->type) || !rd_u16(r, &rr->class) ||
        !rd_u32(r, &rr->ttl) || !rd_u16(r, &rr->rdlen))
        return false;
    if (r->len - r->off < rr->rdlen)
        return false;
    rr->rdata = r->msg + r->off;
    r->off += rr->rdlen;
    return true;
}

static bool rd_rr(struct rd *r, struct rr *rr)
{
    return rd_rr_owner(r, rr, NULL);
}

/* Header and the one question, shared by queries and responses. */
static bool parse_head(const uint8_t *msg, size_t len, struct mvm_dns_query *q, struct rd *r,
                       struct hdr *h)
{
    *r = (struct rd){.msg = msg, .len = len, .off = 0};
    if (!rd_header(r, h) || h->qd != 1)
        return false;
    q->id = h->id;
    q->flags = h->flags;
    return rd_name(r, q->name) && rd_u16(r, &q->qtype) && rd_u16(r, &q->qclass);
}

int mvm_dns_parse_query(const uint8_t *msg, size_t len, struct mvm_dns_query *q,
                        struct mvm_error **err)
{
    struct rd r;
    struct hdr h;
    struct rr rr;

    if (len > MVM_DNS_MAX_MSG)
        return mvm_error_set(err, 0, "DNS message longer than %d bytes", MVM_DNS_MAX_MSG);
    if (!parse_head(msg, len, q, &r, &h))
        return mvm_error_set(err, 0, "malformed DNS header or question");
    size_t n = (size_t)h.an + h.ns + h.ar;
    for (size_t i = 0; i < n; i++)
        if (!rd_rr(&r, &rr))
            return mvm_error_set(err, 0, "malformed DNS record %zu", i);
    if (r.off != len)
        return mvm_error_set(err, 0, "%zu bytes after the last DNS record", len - r.off);
    return 0;
}

/* ---- policy ------------------------------------------------------------ */

/* Zones that only ever mean something on a LAN or the host itself.  None
 * is delegated in the public root, so refusing them loses no public
 * name, while a host resolver with split DNS (a home router, a VPN, a
 * cloud's metadata zone) would answer them from the LAN.  "internal" is
 * ICANN's private-use TLD (cloud metadata: metadata.google.internal);
 * "lan", "home", "corp", "intranet", "private" are the private TLDs RFC
 * 6762 appendix G found in use (OpenWrt's default is "lan"). */
static const char *const private_zones[] = {
    "local", "localhost", "localdomain", "home.arpa", "internal",
    "lan",   "home",      "corp",        "intranet",  "private",
};

struct prefix {
    uint8_t addr[16];
    unsigned len;
};

/* Reverse zones never looked up outside the host or LAN. */
static const struct prefix private_v4[] = {
    {{10}, 8}, {{172, 16}, 12}, {{192, 168}, 16}, {{100, 64}, 10}, {{169, 254}, 16}, {{127}, 8},
};
/* ::ffff:0:0/96 too: a mapped address never appears on the wire, so its
 * reverse name is only ever a roundabout IPv4 lookup. */
static const struct prefix private_v6[] = {
    {{0xfc}, 7},
    {{0xfe, 0x80}, 10},
    {{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}, 128},
    {{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff}, 96},
};

/* name is zone or a name inside it. */
static bool in_zone(const char *name, const char *zone)
{
    size_t n = strlen(name), z = strlen(zone);
    if (n == z)
        return strcmp(name, zone) == 0;
    return n > z && name[n - z - 1] == '.' && strcmp(name + n - z, zone) == 0;
}

static bool prefix_overlap(const uint8_t *a, unsigned alen, const uint8_t *b, unsigned blen)
{
    unsigned bits = alen < blen ? alen : blen;
    for (unsigned i = 0; i < bits; i++) {
        unsigned byte = i / 8, mask = 0x80u >> (i % 8);
        if ((a[byte] & mask) != (b[byte] & mask))
            return false;
    }
    return true;
}

/* One label of a reverse name as a number: a decimal octet (no leading
 * zeros: resolvers disagree on those) or a hex nibble. */
static int reverse_label(const char *s, size_t n, bool nibble)
{
    if (nibble) {
        if (n != 1)
            return -1;
        if (s[0] >= '0' && s[0] <= '9')
            return s[0] - '0';
        return s[0] >= 'a' && s[0] <= 'f' ? s[0] - 'a' + 10 : -1;
    }
    if (n == 0 || n > 3 || (n > 1 && s[0] == '0'))
        return -1;
    int v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    return v <= 255 ? v : -1;
}

/* Decodes the labels in front of a reverse zone (n bytes of name) into
 * addr; returns the prefix length they name, or -1 for a name that is no
 * address at all. */
static int reverse_prefix(const char *name, size_t n, bool v6, uint8_t addr[16])
{
    unsigned max = v6 ? 32 : 4, k = 0, vals[32];
    size_t at = 0;

    while (at < n) {
        const char *dot = memchr(name + at, '.', n - at);
        size_t l = dot ? (size_t)(dot - (name + at)) : n - at;
        int v = reverse_label(name + at, l, v6);
        if (v < 0 || k == max)
            return -1;
        vals[k++] = (unsigned)v;
        at += l + 1;
    }
    memset(addr, 0, 16);
    for (unsigned i = 0; i < k; i++) {
        unsigned v = vals[k - 1 - i];
        if (!v6)
            addr[i] = (uint8_t)v;
        else
            addr[i / 2] |= (uint8_t)(i % 2 ? v : v << 4);
    }
    return (int)(k * (v6 ? 4 : 8));
}

/* A lookup under in-addr.arpa/ip6.arpa whose prefix overlaps a private
 * range (the bare zones too); names there that are no address at all are
 * refused as well, since nothing public uses them. */
static bool private_reverse(const char *name)
{
    static const char *const zones[2] = {"in-addr.arpa", "ip6.arpa"};
    for (int v6 = 0; v6 < 2; v6++) {
        if (!in_zone(name, zones[v6]))
            continue;
        size_t n = strlen(name) - strlen(zones[v6]);
        uint8_t addr[16];
        int len = reverse_prefix(name, n ? n - 1 : 0, v6, addr);
        if (len < 0)
            return true;
        const struct prefix *p = v6 ? private_v6 : private_v4;
        size_t np = v6 ? ARRAY_SIZE(private_v6) : ARRAY_SIZE(private_v4);
        for (size_t i = 0; i < np; i++)
            if (prefix_overlap(addr, (unsigned)len, p[i].addr, p[i].len))
                return true;
    }
    return false;
}

/* Meta types are no lookup a program needs: ANY (amplification, RFC
 * 8482), zone transfers, TSIG/TKEY, OPT, and the reserved Q-type range. */
static bool meta_qtype(uint16_t t)
{
    return t == 0 || t == TYPE_OPT || (t >= 128 && t <= TYPE_ANY);
}

enum mvm_dns_verdict mvm_dns_check_query(const struct mvm_dns_query *q)
{
    if ((q->flags & FLAG_QR) || OPCODE(q->flags) != 0)
        return MVM_DNS_REFUSE;
    if (q->qclass != MVM_DNS_CLASS_IN || meta_qtype(q->qtype))
        return MVM_DNS_REFUSE;
    /* Single-label names (the root too) are what resolvers hand to LLMNR,
     * mDNS or a search list on the host's LAN. */
    if (strchr(q->name, '.') == NULL)
        return MVM_DNS_REFUSE;
    for (size_t i = 0; i < ARRAY_SIZE(private_zones); i++)
        if (in_zone(q->name, private_zones[i]))
            return MVM_DNS_REFUSE;
    return private_reverse(q->name) ? MVM_DNS_REFUSE : MVM_DNS_FORWARD;
}

/* ---- replies we build ---------------------------------------------------- */

static bool put_u16(uint8_t *out, size_t cap, size_t *at, uint16_t v)
{
    if (cap - *at < 2)
        return false;
    out[(*at)++] = (uint8_t)(v >> 8);
    out[(*at)++] = (uint8_t)v;
    return true;
}

static bool put_header(uint8_t *out, size_t cap, size_t *at, uint16_t id, uint16_t flags,
                       uint16_t qd)
{
    return put_u16(out, cap, at, id) && put_u16(out, cap, at, flags) && put_u16(out, cap, at, qd) &&
           put_u16(out, cap, at, 0) && put_u16(out, cap, at, 0) && put_u16(out, cap, at, 0);
}

/* Wire form of a dotted name, uncompressed; false for a name no message
 * could carry. */
static bool put_name(uint8_t *out, size_t cap, size_t *at, const char *name)
{
    size_t n = strnlen(name, MVM_DNS_NAME_MAX), begin = *at;
    if (n == MVM_DNS_NAME_MAX)
        return false;
    for (size_t i = 0; i < n;) {
        const char *dot = memchr(name + i, '.', n - i);
        size_t l = dot ? (size_t)(dot - (name + i)) : n - i;
        if (l == 0 || l > 63 || cap - *at < l + 1)
            return false;
        out[(*at)++] = (uint8_t)l;
        memcpy(out + *at, name + i, l);
        *at += l;
        i += l + (dot ? 1 : 0);
        if (dot && i == n) /* a trailing dot */
            return false;
    }
    if (cap - *at < 1)
        return false;
    out[(*at)++] = 0;
    return *at - begin <= MAX_NAME_WIRE;
}

static uint16_t reply_flags(uint16_t query_flags, unsigned rcode)
{
    return (uint16_t)(FLAG_QR | (query_flags & (OPCODE_MASK | FLAG_RD)) | FLAG_RA | (rcode & 0xf));
}

int mvm_dns_error_reply(const struct mvm_dns_query *q, unsigned rcode, uint8_t *out, size_t cap,
                        size_t *outlen)
{
    size_t at = 0;
    if (!put_header(out, cap, &at, q->id, reply_flags(q->flags, rcode), 1) ||
        !put_name(out, cap, &at, q->name) || !put_u16(out, cap, &at, q->qtype) ||
        !put_u16(out, cap, &at, q->qclass))
        return -1;
    *outlen = at;
    return 0;
}

int mvm_dns_refused(const uint8_t *query, size_t len, uint8_t *out, size_t cap, size_t *outlen)
{
    struct mvm_dns_query q;
    struct rd r;
    struct hdr h;

    if (len < 2)
        return -1;
    if (parse_head(query, len, &q, &r, &h)) {
        unsigned rcode = OPCODE(q.flags) ? MVM_DNS_RCODE_NOTIMP : MVM_DNS_RCODE_REFUSED;
        return mvm_dns_error_reply(&q, rcode, out, cap, outlen);
    }
    uint16_t id = (uint16_t)(query[0] << 8 | query[1]);
    uint16_t flags = len >= 4 ? (uint16_t)(query[2] << 8 | query[3]) : 0;
    size_t at = 0;
    if (!put_header(out, cap, &at, id, reply_flags(flags, MVM_DNS_RCODE_FORMERR), 0))
        return -1;
    *outlen = at;
    return 0;
}

/* ---- what comes back from upstream ---------------------------------------- */

static bool response_head(const uint8_t *resp, size_t len, const struct mvm_dns_query *asked,
                          struct rd *r, struct hdr *h)
{
    struct mvm_dns_query got;
    if (len > MVM_DNS_MAX_MSG || !parse_head(resp, len, &got, r, h))
        return false;
    return (got.flags & FLAG_QR) && OPCODE(got.flags) == 0 && got.id == asked->id &&
           got.qtype == asked->qtype && got.qclass == asked->qclass &&
           strcmp(got.name, asked->name) == 0;
}

bool mvm_dns_response_matches(const uint8_t *resp, size_t len, const struct mvm_dns_query *asked)
{
    struct rd r;
    struct hdr h;
    return response_head(resp, len, asked, &r, &h);
}

static bool in_prefix4(const struct mvm_dns_prefix4 *p, size_t n, const uint8_t *a)
{
    for (size_t i = 0; i < n; i++)
        if (prefix_overlap(a, 32, p[i].addr, p[i].len))
            return true;
    return false;
}

static bool lan_v4(const struct mvm_dns_lan *lan, const uint8_t *a)
{
    for (size_t i = 0; i < lan->nallow4 && i < MVM_DNS_ALLOW_MAX; i++)
        if (memcmp(lan->allow4[i], a, 4) == 0)
            return false;
    size_t n = lan->n4 < MVM_DNS_LAN_MAX ? lan->n4 : MVM_DNS_LAN_MAX;
    return in_prefix4(lan->v4, n, a);
}

/* An IPv6 address that carries an IPv4 one (mapped ::ffff:0:0/96, NAT64
 * 64:ff9b::/96) reaches that IPv4 address, so it is judged as that too. */
static bool lan_v6(const struct mvm_dns_lan *lan, const uint8_t *a)
{
    static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    static const uint8_t nat64[12] = {0, 0x64, 0xff, 0x9b};
    if ((memcmp(a, mapped, 12) == 0 || memcmp(a, nat64, 12) == 0) && lan_v4(lan, a + 12))
        return true;
    size_t n = lan->n6 < MVM_DNS_LAN_MAX ? lan->n6 : MVM_DNS_LAN_MAX;
    for (size_t i = 0; i < n; i++)
        if (prefix_overlap(a, 128, lan->v6[i].addr, lan->v6[i].len))
            return true;
    return false;
}

/* False for an address record that is malformed or points into the LAN. */
static bool rr_allowed(const struct rr *rr, const struct mvm_dns_lan *lan)
{
    if (rr->type == MVM_DNS_TYPE_A)
        return rr->rdlen == 4 && !lan_v4(lan, rr->rdata);
    if (rr->type == MVM_DNS_TYPE_AAAA)
        return rr->rdlen == 16 && !lan_v6(lan, rr->rdata);
    return true;
}

enum mvm_dns_verdict mvm_dns_check_response(const uint8_t *resp, size_t len,
                                            const struct mvm_dns_query *asked,
                                            const struct mvm_dns_lan *lan)
{
    struct rd r;
    struct hdr h;
    struct rr rr;

    if (!response_head(resp, len, asked, &r, &h))
        return MVM_DNS_DROP;
    size_t n = (size_t)h.an + h.ns + h.ar;
    for (size_t i = 0; i < n; i++)
        if (!rd_rr(&r, &rr) || !rr_allowed(&rr, lan))
            return MVM_DNS_DROP;
    return r.off == len ? MVM_DNS_FORWARD : MVM_DNS_DROP;
}

static uint32_t ttl_of(uint32_t ttl);

static void add_answer(const struct rr *rr, struct mvm_dns_addr *out)
{
    *out = (struct mvm_dns_addr){.family = rr->rdlen == 4 ? 4 : 6};
    memcpy(out->addr, rr->rdata, rr->rdlen);
    out->ttl = ttl_of(rr->ttl);
}

int mvm_dns_answers(const uint8_t *resp, size_t len, struct mvm_dns_addr *out, size_t cap)
{
    struct rd r = {.msg = resp, .len = len, .off = 0};
    struct hdr h;
    struct rr rr;
    size_t n = 0;
    uint16_t type, class;

    if (len > MVM_DNS_MAX_MSG || !rd_header(&r, &h))
        return -1;
    for (unsigned i = 0; i < h.qd; i++)
        if (!rd_name(&r, NULL) || !rd_u16(&r, &type) || !rd_u16(&r, &class))
            return -1;
    for (unsigned i = 0; i < h.an; i++) {
        if (!rd_rr(&r, &rr))
            return -1;
        bool a = rr.type == MVM_DNS_TYPE_A, aaaa = rr.type == MVM_DNS_TYPE_AAAA;
        if (rr.class != MVM_DNS_CLASS_IN || !(a || aaaa))
            continue;
        if (rr.rdlen != (a ? 4 : 16))
            return -1;
        if (n < cap)
            add_answer(&rr, &out[n++]);
    }
    return (int)n;
}

/* ---- EDNS for queries that came over TCP ----------------------------------- */

int mvm_dns_with_edns(const uint8_t *query, size_t len, uint16_t payload, uint8_t *out, size_t cap,
                      size_t *outlen)
{
    struct mvm_dns_query q;
    struct rd r;
    struct hdr h;
    struct rr rr;

    if (len > MVM_DNS_MAX_MSG || !parse_head(query, len, &q, &r, &h))
        return -1;
    size_t opt_class = 0; /* offset of the OPT record's CLASS: its payload size */
    for (size_t i = 0; i < (size_t)h.an + h.ns + h.ar; i++) {
        size_t start = r.off;
        if (!rd_rr(&r, &rr))
            return -1;
        if (i >= (size_t)h.an + h.ns && rr.type == TYPE_OPT) {
            if (opt_class || query[start] != 0) /* one OPT, owned by the root */
                return -1;
            opt_class = start + 3;
        }
    }
    if (r.off != len)
        return -1;
    size_t n = len + (opt_class ? 0 : 11);
    if (n > cap || (!opt_class && h.ar == UINT16_MAX))
        return -1;
    memcpy(out, query, len);
    if (opt_class) {
        if (rr_u16(out + opt_class) < payload) {
            out[opt_class] = (uint8_t)(payload >> 8);
            out[opt_class + 1] = (uint8_t)payload;
        }
    } else {
        /* root name, type OPT, class = payload, TTL (rcode, version,
         * flags) 0, no options */
        const uint8_t opt[11] = {0, 0, TYPE_OPT, (uint8_t)(payload >> 8), (uint8_t)payload};
        memcpy(out + len, opt, sizeof opt);
        out[10] = (uint8_t)((h.ar + 1) >> 8);
        out[11] = (uint8_t)(h.ar + 1);
    }
    /* A name may run on into the bytes of later records (labels after a
     * pointer), so the copy is checked as a whole, like any query. */
    struct mvm_dns_query back;
    if (mvm_dns_parse_query(out, n, &back, NULL) < 0 || strcmp(back.name, q.name) != 0 ||
        back.qtype != q.qtype || back.qclass != q.qclass)
        return -1;
    *outlen = n;
    return 0;
}

/* ---- allow= mode: which names, which addresses ---------------------------- */

int mvm_dns_allow_match(const char *name, const struct mvm_dns_allow *list, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const struct mvm_dns_allow *a = &list[i];
        /* A wildcard means the names below it, not the name itself. */
        if (a->wildcard ? in_zone(name, a->name) && strcmp(name, a->name) != 0
                        : strcmp(name, a->name) == 0)
            return a->rule;
    }
    return -1;
}

/* The answer's CNAME records, at most this many looked at, and the hops
 * followed from the question's name: a real chain is a few long. */
#define CNAMES_MAX 16
#define CHAIN_MAX  8

struct cname {
    char owner[MVM_DNS_NAME_MAX], target[MVM_DNS_NAME_MAX];
    uint32_t ttl;
};

/* RFC 2181 8: a TTL with the top bit set means zero. */
static uint32_t ttl_of(uint32_t ttl)
{
    return ttl > 0x7fffffff ? 0 : ttl;
}

/* The name a CNAME record points to: its whole rdata, nothing after. */
static bool cname_target(const struct rd *r, const struct rr *rr, char *target)
{
    size_t at = (size_t)(rr->rdata - r->msg);
    struct rd t = {.msg = r->msg, .len = r->len, .off = at};
    return rd_name(&t, target) && t.off == at + rr->rdlen;
}

/* Reads the answer section's CNAME records into c (the first CNAMES_MAX;
 * the rest are walked but not kept).  -1 when a record is malformed. */
static int read_cnames(struct rd r, unsigned an, struct cname *c)
{
    struct rr rr;
    char owner[MVM_DNS_NAME_MAX];
    int n = 0;
    for (unsigned i = 0; i < an; i++) {
        if (!rd_rr_owner(&r, &rr, owner))
            return -1;
        if (rr.class != MVM_DNS_CLASS_IN || rr.type != TYPE_CNAME)
            continue;
        char target[MVM_DNS_NAME_MAX];
        if (!cname_target(&r, &rr, target))
            return -1;
        if (n < CNAMES_MAX) {
            memcpy(c[n].owner, owner, sizeof owner);
            memcpy(c[n].target, target, sizeof target);
            c[n++].ttl = ttl_of(rr.ttl);
        }
    }
    return n;
}

/* The chain from the question's name through the CNAMEs, each name with
 * the smallest TTL on its way; a loop ends it. */
static size_t follow_chain(const char *qname, const struct cname *c, int nc,
                           char chain[][MVM_DNS_NAME_MAX], uint32_t *ttl)
{
    size_t n = 1;
    snprintf(chain[0], MVM_DNS_NAME_MAX, "%s", qname);
    ttl[0] = UINT32_MAX;
    while (n <= CHAIN_MAX) {
        const struct cname *next = NULL;
        for (int i = 0; i < nc && next == NULL; i++)
            if (strcmp(c[i].owner, chain[n - 1]) == 0)
                next = &c[i];
        if (next == NULL)
            break;
        for (size_t k = 0; k < n; k++)
            if (strcmp(chain[k], next->target) == 0)
                return n;
        memcpy(chain[n], next->target, MVM_DNS_NAME_MAX);
        ttl[n] = ttl[n - 1] < next->ttl ? ttl[n - 1] : next->ttl;
        n++;
    }
    return n;
}

int mvm_dns_chain_answers(const uint8_t *resp, size_t len, const char *qname,
                          struct mvm_dns_addr *out, size_t cap)
{
    struct rd r = {.msg = resp, .len = len, .off = 0};
    struct hdr h;
    uint16_t type, class;

    if (len > MVM_DNS_MAX_MSG || strnlen(qname, MVM_DNS_NAME_MAX) == MVM_DNS_NAME_MAX ||
        !rd_header(&r, &h))
        return -1;
    for (unsigned i = 0; i < h.qd; i++)
        if (!rd_name(&r, NULL) || !rd_u16(&r, &type) || !rd_u16(&r, &class))
            return -1;
    struct cname c[CNAMES_MAX];
    int nc = read_cnames(r, h.an, c);
    if (nc < 0)
        return -1;
    char chain[CHAIN_MAX + 1][MVM_DNS_NAME_MAX];
    uint32_t ttl[CHAIN_MAX + 1];
    size_t nchain = follow_chain(qname, c, nc, chain, ttl);

    struct rr rr;
    char owner[MVM_DNS_NAME_MAX];
    size_t n = 0;
    for (unsigned i = 0; i < h.an; i++) {
        if (!rd_rr_owner(&r, &rr, owner))
            return -1;
        if (rr.class != MVM_DNS_CLASS_IN || rr.type != MVM_DNS_TYPE_A)
            continue;
        if (rr.rdlen != 4)
            return -1;
        for (size_t k = 0; k < nchain && n < cap; k++) {
            if (strcmp(owner, chain[k]) != 0)
                continue;
            out[n] = (struct mvm_dns_addr){.family = 4};
            memcpy(out[n].addr, rr.rdata, 4);
            out[n++].ttl = ttl_of(rr.ttl) < ttl[k] ? ttl_of(rr.ttl) : ttl[k];
            break;
        }
    }
    return (int)n;
}

/* ---- the LAN ---------------------------------------------------------------- */

static void mask_prefix(uint8_t *addr, size_t bytes, unsigned len)
{
    for (size_t i = 0; i < bytes; i++) {
        unsigned keep = len >= 8 * (i + 1) ? 8 : len > 8 * i ? len - 8 * (unsigned)i : 0;
        addr[i] &= (uint8_t)(0xff00u >> keep);
    }
}

int mvm_dns_lan_add4(struct mvm_dns_lan *lan, const uint8_t addr[4], unsigned len,
                     struct mvm_error **err)
{
    if (len > 32)
        return mvm_error_set(err, 0, "IPv4 prefix length %u out of range", len);
    if (lan->n4 >= MVM_DNS_LAN_MAX)
        return mvm_error_set(err, 0, "more than %d IPv4 LAN prefixes", MVM_DNS_LAN_MAX);
    struct mvm_dns_prefix4 *p = &lan->v4[lan->n4++];
    memcpy(p->addr, addr, 4);
    mask_prefix(p->addr, 4, len);
    p->len = (uint8_t)len;
    return 0;
}

int mvm_dns_lan_add6(struct mvm_dns_lan *lan, const uint8_t addr[16], unsigned len,
                     struct mvm_error **err)
{
    if (len > 128)
        return mvm_error_set(err, 0, "IPv6 prefix length %u out of range", len);
    if (lan->n6 >= MVM_DNS_LAN_MAX)
        return mvm_error_set(err, 0, "more than %d IPv6 LAN prefixes", MVM_DNS_LAN_MAX);
    struct mvm_dns_prefix6 *p = &lan->v6[lan->n6++];
    memcpy(p->addr, addr, 16);
    mask_prefix(p->addr, 16, len);
    p->len = (uint8_t)len;
    return 0;
}

int mvm_dns_lan_allow4(struct mvm_dns_lan *lan, const uint8_t addr[4], struct mvm_error **err)
{
    if (lan->nallow4 >= MVM_DNS_ALLOW_MAX)
        return mvm_error_set(err, 0, "more than %d allowed LAN addresses", MVM_DNS_ALLOW_MAX);
    memcpy(lan->allow4[lan->nallow4++], addr, 4);
    return 0;
}

void mvm_dns_lan_default(struct mvm_dns_lan *lan)
{
    static const struct prefix v4[] = {
        {{10}, 8},  {{172, 16}, 12}, {{192, 168}, 16}, {{100, 64}, 10}, {{169, 254}, 16},
        {{127}, 8}, {{0}, 8},        {{224}, 4},       {{240}, 4},
    };
    static const struct prefix v6[] = {
        {{0xfc}, 7}, {{0xfe, 0x80}, 10},
        {{0xff}, 8}, {{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}, 128},
        {{0}, 128},
    };

    memset(lan, 0, sizeof *lan);
    /* The lists are far below MVM_DNS_LAN_MAX, so these cannot fail. */
    for (size_t i = 0; i < ARRAY_SIZE(v4); i++)
        mvm_dns_lan_add4(lan, v4[i].addr, v4[i].len, NULL);
    for (size_t i = 0; i < ARRAY_SIZE(v6); i++)
        mvm_dns_lan_add6(lan, v6[i].addr, v6[i].len, NULL);
}
