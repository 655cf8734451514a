/* dns: the DNS wire format as far as mvm's relay needs it, and the
 * relay's policy.
 *
 * Owns: parsing a guest's query (RFC 1035: header, one question, strict
 * bounds, compression pointers that only point backwards), the decision
 * whether a query may leave the session (mvm_dns_check_query), building
 * the error replies the relay sends itself, and checking what comes back
 * from the upstream resolver (same id and question, no address in the
 * LAN: DNS rebinding protection).
 *
 * Pure code, no I/O: every byte the guest or the upstream resolver can
 * send reaches it through the fuzzer (tests/fuzz/fuzz-dns.c).  The relay
 * loop that uses it is dnsrelay.c. */
#ifndef MVM_DNS_H
#define MVM_DNS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"

/* The largest datagram the relay handles either way. */
#define MVM_DNS_MAX_MSG 4096
/* Dotted text of the longest name (253 characters) plus its NUL. */
#define MVM_DNS_NAME_MAX 254

#define MVM_DNS_TYPE_A         1
#define MVM_DNS_TYPE_PTR       12
#define MVM_DNS_TYPE_AAAA      28
#define MVM_DNS_CLASS_IN       1
#define MVM_DNS_RCODE_FORMERR  1
#define MVM_DNS_RCODE_SERVFAIL 2
#define MVM_DNS_RCODE_NOTIMP   4
#define MVM_DNS_RCODE_REFUSED  5

/* A parsed query: header fields and its one question. */
struct mvm_dns_query {
    uint16_t id;
    uint16_t flags; /* QR, opcode, AA, TC, RD, RA, Z, rcode as on the wire */
    uint16_t qtype;
    uint16_t qclass;
    /* Lowercase, dotted, no trailing dot; "" for the root.  Labels hold
     * only letters, digits, '-' and '_', so the text is unambiguous. */
    char name[MVM_DNS_NAME_MAX];
};

enum mvm_dns_verdict {
    MVM_DNS_FORWARD, /* send it on (a query) / hand it to the guest (a response) */
    MVM_DNS_REFUSE,  /* answer the guest REFUSED ourselves */
    MVM_DNS_DROP,    /* a response that must not reach the guest */
};

/* Parses a query from the guest: QDCOUNT exactly 1, every record after
 * the question walked within bounds, nothing after the last record.
 * Returns 0, or -1 with err for anything malformed.  Says nothing about
 * whether the query is allowed: that is mvm_dns_check_query. */
int mvm_dns_parse_query(const uint8_t *msg, size_t len, struct mvm_dns_query *q,
                        struct mvm_error **err);

/* Whether a parsed guest query may go upstream (see dns.c for the rules). */
enum mvm_dns_verdict mvm_dns_check_query(const struct mvm_dns_query *q);

/* Builds a response with rcode to q: its id, opcode and RD echoed, its
 * question re-encoded (lowercase, uncompressed), no records.  Returns 0,
 * or -1 when cap is too small. */
int mvm_dns_error_reply(const struct mvm_dns_query *q, unsigned rcode, uint8_t *out, size_t cap,
                        size_t *outlen);

/* Builds REFUSED (NOTIMP for an opcode other than QUERY) for a raw query,
 * echoing its id and question; FORMERR without a question when the
 * question cannot be parsed but the id can.  Returns -1 when not even the
 * id is there or cap is too small. */
int mvm_dns_refused(const uint8_t *query, size_t len, uint8_t *out, size_t cap, size_t *outlen);

/* What counts as the LAN for rebinding protection: addresses in these
 * prefixes never reach the guest in an answer, except the IPv4 addresses
 * in allow4 (for --allow-lan). */
#define MVM_DNS_LAN_MAX   128
#define MVM_DNS_ALLOW_MAX 64
struct mvm_dns_prefix4 {
    uint8_t addr[4];
    uint8_t len;
};
struct mvm_dns_prefix6 {
    uint8_t addr[16];
    uint8_t len;
};
struct mvm_dns_lan {
    struct mvm_dns_prefix4 v4[MVM_DNS_LAN_MAX];
    size_t n4;
    struct mvm_dns_prefix6 v6[MVM_DNS_LAN_MAX];
    size_t n6;
    uint8_t allow4[MVM_DNS_ALLOW_MAX][4];
    size_t nallow4;
};

/* Fills lan with the ranges that are never public: RFC 1918, 100.64/10,
 * 169.254/16, 127/8, 0/8, 224/4, 240/4; fc00::/7, fe80::/10, ff00::/8,
 * ::1/128, ::/128.  The caller adds the host's on-link prefixes. */
void mvm_dns_lan_default(struct mvm_dns_lan *lan);
/* Adds a prefix (host bits are ignored) or an exception.  -1 with err when
 * the list is full or len is out of range. */
int mvm_dns_lan_add4(struct mvm_dns_lan *lan, const uint8_t addr[4], unsigned len,
                     struct mvm_error **err);
int mvm_dns_lan_add6(struct mvm_dns_lan *lan, const uint8_t addr[16], unsigned len,
                     struct mvm_error **err);
int mvm_dns_lan_allow4(struct mvm_dns_lan *lan, const uint8_t addr[4], struct mvm_error **err);

/* True when resp is a well-formed response (QR set, opcode QUERY) to
 * asked: same id, one question with the same name (case-insensitive),
 * type and class.  Says nothing about its records. */
bool mvm_dns_response_matches(const uint8_t *resp, size_t len, const struct mvm_dns_query *asked);

/* FORWARD when resp matches asked and every record of every section is
 * within bounds with no A/AAAA address in the LAN (an IPv4-mapped or
 * NAT64 address counts as the IPv4 address it carries); DROP otherwise. */
enum mvm_dns_verdict mvm_dns_check_response(const uint8_t *resp, size_t len,
                                            const struct mvm_dns_query *asked,
                                            const struct mvm_dns_lan *lan);

/* An address from an answer, for the allow= mode's nftables set. */
struct mvm_dns_addr {
    uint8_t family; /* 4 or 6 */
    uint8_t addr[16];
    uint32_t ttl;
};
/* Collects the IN A/AAAA records of resp's answer section into out (at
 * most cap; the rest are not counted).  Returns how many, or -1 when resp
 * is malformed.  Does not check the question: call check_response first. */
int mvm_dns_answers(const uint8_t *resp, size_t len, struct mvm_dns_addr *out, size_t cap);

/* A copy of a well-formed query (as mvm_dns_parse_query takes it) whose
 * OPT record offers at least payload bytes over UDP, one added when it
 * has none: a query that came over TCP, sent upstream over UDP, can get a
 * large answer back.  Returns 0, or -1 when the query is malformed (two
 * OPT records, one not owned by the root) or cap is too small. */
int mvm_dns_with_edns(const uint8_t *query, size_t len, uint16_t payload, uint8_t *out, size_t cap,
                      size_t *outlen);

/* allow= mode: the names the relay answers, each with the index of the
 * user's rule it came from. */
struct mvm_dns_allow {
    char name[MVM_DNS_NAME_MAX]; /* as mvm_dns_query's name */
    bool wildcard;               /* the names below name, not name itself */
    uint16_t rule;
};
/* The rule of the first entry that allows name, or -1. */
int mvm_dns_allow_match(const char *name, const struct mvm_dns_allow *list, size_t n);

/* The IN A records of resp's answer section that belong to qname: its own
 * and those of the names its CNAME chain leads to (at most 8 hops; a loop
 * ends it), each with the smallest TTL on the way.  At most cap, the rest
 * not counted.  Returns how many, or -1 when resp is malformed (a CNAME's
 * rdata included).  Does not check the question: call check_response
 * first. */
int mvm_dns_chain_answers(const uint8_t *resp, size_t len, const char *qname,
                          struct mvm_dns_addr *out, size_t cap);

#endif
