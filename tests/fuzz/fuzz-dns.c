/* Fuzzes what the guest and the upstream resolver can send the DNS relay:
 * the input is one message, parsed as a guest query (then judged and
 * answered with the replies the relay builds) and checked as a response to
 * the question it carries itself, so that its records get walked. */
#include <stdint.h>
#include <string.h>

#include "dns.h"
#include "net.h"
#include "util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Just past what the relay accepts, so the length check is reached too. */
#define MAX_INPUT_SIZE (MVM_DNS_MAX_MSG + 16)

static uint16_t id_of(const uint8_t *b)
{
    return (uint16_t)(b[0] << 8 | b[1]);
}

/* A reply we build must be a header plus at most the question, with the
 * id it answers, and parse back. */
static void check_reply(const uint8_t *out, size_t n, uint16_t id)
{
    struct mvm_dns_query back;
    if (n < 12 || n > MVM_DNS_MAX_MSG || id_of(out) != id || !(out[2] & 0x80))
        __builtin_trap();
    bool has_question = out[5] == 1;
    if (has_question && mvm_dns_parse_query(out, n, &back, NULL) < 0)
        __builtin_trap();
    if (!has_question && n != 12)
        __builtin_trap();
}

static void fuzz_query(const uint8_t *data, size_t size)
{
    uint8_t out[MVM_DNS_MAX_MSG];
    struct mvm_dns_query q;
    size_t n = 0;
    struct mvm_error *err = NULL;

    if (mvm_dns_parse_query(data, size, &q, &err) == 0) {
        size_t len = strnlen(q.name, sizeof q.name);
        if (len >= sizeof q.name || len > 253)
            __builtin_trap();
        enum mvm_dns_verdict v = mvm_dns_check_query(&q);
        if (v != MVM_DNS_FORWARD && v != MVM_DNS_REFUSE)
            __builtin_trap();
        /* Any parsed question can be answered, and the answer matches it. */
        if (mvm_dns_error_reply(&q, MVM_DNS_RCODE_SERVFAIL, out, sizeof out, &n) < 0)
            __builtin_trap();
        check_reply(out, n, q.id);
        if (((q.flags >> 11) & 0xf) == 0 && !mvm_dns_response_matches(out, n, &q))
            __builtin_trap();
        /* Over TCP: the same query with an OPT record, still well-formed,
         * still the same question. */
        struct mvm_dns_query back;
        if (mvm_dns_with_edns(data, size, MVM_DNS_MAX_MSG, out, sizeof out, &n) == 0 &&
            (n < size || n > size + 11 || mvm_dns_parse_query(out, n, &back, NULL) < 0 ||
             strcmp(back.name, q.name) != 0 || back.qtype != q.qtype || back.id != q.id))
            __builtin_trap();
    }
    mvm_error_free(err);

    if (mvm_dns_refused(data, size, out, sizeof out, &n) == 0)
        check_reply(out, n, id_of(data));
    else if (size >= 2)
        __builtin_trap();
}

/* Nothing in the default LAN may be forwarded. */
static bool obviously_lan(const struct mvm_dns_addr *a)
{
    if (a->family == 4)
        return a->addr[0] == 10 || a->addr[0] == 127 || a->addr[0] >= 224 ||
               (a->addr[0] == 192 && a->addr[1] == 168) || (a->addr[0] == 169 && a->addr[1] == 254);
    return (a->addr[0] & 0xfe) == 0xfc || a->addr[0] == 0xff;
}

/* allow= mode: the relay reports the addresses of the asked name's CNAME
 * chain; each is one of the answer section's A records, with a TTL the
 * wire allows, and the name itself matched against a rule list the way
 * the relay does. */
static void fuzz_chain(const uint8_t *data, size_t size, const struct mvm_dns_query *asked)
{
    struct mvm_dns_addr chain[MVM_NET_REPORT_MAX], all[64];
    int n = mvm_dns_chain_answers(data, size, asked->name, chain, ARRAY_SIZE(chain));
    if (n > (int)ARRAY_SIZE(chain))
        __builtin_trap();
    int na = mvm_dns_answers(data, size, all, ARRAY_SIZE(all));
    for (int i = 0; i < n; i++) {
        if (chain[i].family != 4 || chain[i].ttl > 0x7fffffff)
            __builtin_trap();
        bool found = na < 0 || na == (int)ARRAY_SIZE(all);
        for (int k = 0; k < na && !found; k++)
            found = all[k].family == 4 && memcmp(all[k].addr, chain[i].addr, 4) == 0;
        if (!found)
            __builtin_trap();
    }
    static const struct mvm_dns_allow rules[] = {{"example.com", true, 1}, {"a.b", false, 2}};
    int rule = mvm_dns_allow_match(asked->name, rules, ARRAY_SIZE(rules));
    size_t len = strlen(asked->name);
    if (rule == 1 && (len <= 12 || strcmp(asked->name + len - 12, ".example.com") != 0))
        __builtin_trap();
    if (rule == 2 && strcmp(asked->name, "a.b") != 0)
        __builtin_trap();
    if (rule != -1 && rule != 1 && rule != 2)
        __builtin_trap();
}

static void fuzz_response(const uint8_t *data, size_t size)
{
    struct mvm_dns_query asked;
    struct mvm_dns_lan lan;
    struct mvm_dns_addr addrs[8];

    /* The message's own question, as if it had been the one asked. */
    if (mvm_dns_parse_query(data, size, &asked, NULL) < 0)
        return;
    mvm_dns_lan_default(&lan);
    enum mvm_dns_verdict v = mvm_dns_check_response(data, size, &asked, &lan);
    if (v == MVM_DNS_REFUSE)
        __builtin_trap();
    if (v == MVM_DNS_FORWARD && !mvm_dns_response_matches(data, size, &asked))
        __builtin_trap();
    int n = mvm_dns_answers(data, size, addrs, ARRAY_SIZE(addrs));
    if (n > (int)ARRAY_SIZE(addrs))
        __builtin_trap();
    if (v == MVM_DNS_FORWARD) {
        /* A message the full walk accepted is one answers() can read. */
        if (n < 0)
            __builtin_trap();
        for (int i = 0; i < n; i++)
            if (obviously_lan(&addrs[i]))
                __builtin_trap();
    }
    fuzz_chain(data, size, &asked);
    asked.id ^= 1;
    if (mvm_dns_check_response(data, size, &asked, &lan) != MVM_DNS_DROP)
        __builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > MAX_INPUT_SIZE)
        return 0;
    fuzz_query(data, size);
    fuzz_response(data, size);
    return 0;
}
