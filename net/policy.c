/* What the user asked of the network beyond the mode: --publish,
 * --allow-host, --allow-lan and the rules of --net allow=, parsed and
 * checked.  Pure: the text comes from the command line or the system's or
 * user's config file, never the guest. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dns.h"
#include "net.h"
#include "util.h"

/* A port number 1..65535 and nothing else ("80", not "+80" or "80x"). */
static bool parse_port(const char *s, size_t n, uint16_t *port)
{
    if (n == 0 || n > 5)
        return false;
    unsigned v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10 + (unsigned)(s[i] - '0');
    }
    if (v == 0 || v > 65535)
        return false;
    *port = (uint16_t)v;
    return true;
}

static bool parse_ip4(const char *s, size_t n, uint32_t *ip)
{
    char text[INET_ADDRSTRLEN];
    struct in_addr a;
    if (n == 0 || n >= sizeof text)
        return false;
    memcpy(text, s, n);
    text[n] = '\0';
    if (inet_pton(AF_INET, text, &a) != 1)
        return false;
    *ip = a.s_addr;
    return true;
}

const char *mvm_net_proto_name(int proto)
{
    return proto == IPPROTO_UDP ? "udp" : "tcp";
}

int mvm_net_parse_publish(const char *spec, struct mvm_net_publish *out, struct mvm_error **err)
{
    struct mvm_net_publish p = {.host_ip = htonl(INADDR_LOOPBACK), .proto = IPPROTO_TCP};
    size_t n = strlen(spec);
    const char *slash = strchr(spec, '/');
    if (slash) {
        if (strcmp(slash, "/udp") == 0)
            p.proto = IPPROTO_UDP;
        else if (strcmp(slash, "/tcp") != 0)
            goto bad;
        n = (size_t)(slash - spec);
    }
    /* The last two fields are the ports; what is before them, the IP. */
    const char *last = memrchr(spec, ':', n);
    if (last == NULL)
        goto bad;
    const char *mid = memrchr(spec, ':', (size_t)(last - spec));
    const char *hport = mid ? mid + 1 : spec;
    if (!parse_port(last + 1, n - (size_t)(last + 1 - spec), &p.guest_port) ||
        !parse_port(hport, (size_t)(last - hport), &p.host_port) ||
        (mid && !parse_ip4(spec, (size_t)(mid - spec), &p.host_ip)))
        goto bad;
    *out = p;
    return 0;
bad:
    return mvm_error_set(err, 0,
                         "bad --publish '%s': use [HOSTIP:]HOSTPORT:GUESTPORT[/tcp|/udp], e.g. "
                         "8080:80 or 127.0.0.1:5353:53/udp",
                         spec);
}

int mvm_net_parse_allow_host(const char *spec, uint16_t *port, struct mvm_error **err)
{
    if (!parse_port(spec, strlen(spec), port))
        return mvm_error_set(err, 0, "bad --allow-host '%s': use a TCP port number, e.g. 3128",
                             spec);
    return 0;
}

int mvm_net_parse_allow_lan(const char *spec, struct mvm_net_hole *out, struct mvm_error **err)
{
    const char *colon = strrchr(spec, ':');
    if (colon == NULL || !parse_ip4(spec, (size_t)(colon - spec), &out->ip) ||
        !parse_port(colon + 1, strlen(colon + 1), &out->port))
        return mvm_error_set(
            err, 0, "bad --allow-lan '%s': use IPV4ADDRESS:PORT, e.g. 192.168.1.5:3128", spec);
    return 0;
}

int mvm_net_policy_publish(struct mvm_net_policy *pol, const char *spec, struct mvm_error **err)
{
    struct mvm_net_publish p;
    if (mvm_net_parse_publish(spec, &p, err) < 0)
        return -1;
    if (pol->npublish == MVM_NET_MAX_PUBLISH)
        return mvm_error_set(err, 0, "--publish %s: at most %d ports", spec, MVM_NET_MAX_PUBLISH);
    /* One listener per host address, port and protocol; 0.0.0.0 covers
     * every address. */
    for (size_t i = 0; i < pol->npublish; i++) {
        const struct mvm_net_publish *q = &pol->publish[i];
        if (q->proto == p.proto && q->host_port == p.host_port &&
            (q->host_ip == p.host_ip || q->host_ip == 0 || p.host_ip == 0))
            return mvm_error_set(err, 0, "--publish %s: host port %u/%s is published twice", spec,
                                 p.host_port, mvm_net_proto_name(p.proto));
    }
    pol->publish[pol->npublish++] = p;
    return 0;
}

int mvm_net_policy_allow_host(struct mvm_net_policy *pol, const char *spec, struct mvm_error **err)
{
    uint16_t port = 0;
    if (mvm_net_parse_allow_host(spec, &port, err) < 0)
        return -1;
    for (size_t i = 0; i < pol->nhost_ports; i++)
        if (pol->host_ports[i] == port)
            return 0; /* the same hole twice is one hole */
    if (pol->nhost_ports == MVM_NET_MAX_HOLES)
        return mvm_error_set(err, 0, "--allow-host %s: at most %d ports", spec, MVM_NET_MAX_HOLES);
    pol->host_ports[pol->nhost_ports++] = port;
    return 0;
}

int mvm_net_policy_allow_lan(struct mvm_net_policy *pol, const char *spec, struct mvm_error **err)
{
    struct mvm_net_hole h;
    if (mvm_net_parse_allow_lan(spec, &h, err) < 0)
        return -1;
    for (size_t i = 0; i < pol->nlan; i++)
        if (pol->lan[i].ip == h.ip && pol->lan[i].port == h.port)
            return 0;
    if (pol->nlan == MVM_NET_MAX_HOLES)
        return mvm_error_set(err, 0, "--allow-lan %s: at most %d holes", spec, MVM_NET_MAX_HOLES);
    pol->lan[pol->nlan++] = h;
    return 0;
}

/* A name rule: hostname labels (letters, digits, '-', '_'), lowercased,
 * at least two of them (the relay refuses single-label names), "*." in
 * front for the names below it. */
static bool parse_name(const char *s, size_t n, struct mvm_net_allow *a)
{
    if (n >= 2 && s[0] == '*' && s[1] == '.') {
        a->wildcard = true;
        s += 2;
        n -= 2;
    }
    if (n > 0 && s[n - 1] == '.') /* the root's dot, as in a zone file */
        n--;
    if (n == 0 || n >= sizeof a->name)
        return false;
    size_t label = 0, labels = 1;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c >= 'A' && c <= 'Z')
            c = (char)(c - 'A' + 'a');
        if (c == '.') {
            if (label == 0)
                return false;
            label = 0;
            labels++;
        } else if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_') {
            if (++label > 63)
                return false;
        } else {
            return false;
        }
        a->name[i] = c;
    }
    a->name[n] = '\0';
    return label > 0 && labels >= 2;
}

/* An address rule: IPV4 or IPV4/LEN. */
static bool parse_addr(const char *s, size_t n, struct mvm_net_allow *a)
{
    const char *slash = memchr(s, '/', n);
    size_t iplen = slash ? (size_t)(slash - s) : n;
    a->len = 32;
    if (slash) {
        /* 0..32, no leading zeros */
        const char *l = slash + 1;
        size_t ln = n - iplen - 1;
        if (ln == 0 || ln > 2 || (ln == 2 && l[0] == '0') || l[0] < '0' || l[0] > '9' ||
            (ln == 2 && (l[1] < '0' || l[1] > '9')))
            return false;
        a->len = ln == 1 ? (unsigned)(l[0] - '0') : (unsigned)((l[0] - '0') * 10 + l[1] - '0');
        if (a->len > 32)
            return false;
    }
    if (!parse_ip4(s, iplen, &a->ip))
        return false;
    a->ip &= mvm_ip4_mask(a->len);
    return true;
}

/* Looks like an address (digits, dots, a slash): never taken for a name. */
static bool address_like(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || s[i] == '.' || s[i] == '/'))
            return false;
    return true;
}

static int parse_rule(const char *s, size_t n, struct mvm_net_allow *a, struct mvm_error **err)
{
    memset(a, 0, sizeof *a);
    const char *colon = memrchr(s, ':', n);
    size_t body = colon ? (size_t)(colon - s) : n;
    bool ok = !colon || parse_port(colon + 1, n - body - 1, &a->port);
    if (ok)
        ok = address_like(s, body) ? parse_addr(s, body, a) : parse_name(s, body, a);
    if (!ok)
        return mvm_error_set(err, 0,
                             "bad --net allow= rule '%.*s': use a name (api.example.com, "
                             "*.example.com), an IPv4 address or a prefix (192.0.2.0/24), each "
                             "with an optional :PORT",
                             (int)n, s);
    if (a->name[0] == '\0' && mvm_net_in_lan(a->ip, a->len))
        return mvm_error_set(err, 0,
                             "--net allow= rule '%.*s' is in the LAN, which allow= never opens: "
                             "use --allow-lan ADDRESS:PORT",
                             (int)n, s);
    return 0;
}

int mvm_net_policy_allow(struct mvm_net_policy *pol, const char *rules, struct mvm_error **err)
{
    const char *s = rules;
    if (*s == '\0')
        return mvm_error_set(err, 0,
                             "--net allow= needs at least one rule, e.g. "
                             "allow=api.example.com,*.example.org:8443");
    for (;;) {
        size_t n = strcspn(s, ",");
        if (pol->nallow == MVM_NET_MAX_ALLOW)
            return mvm_error_set(err, 0, "--net allow=: at most %d rules", MVM_NET_MAX_ALLOW);
        if (parse_rule(s, n, &pol->allow[pol->nallow], err) < 0)
            return -1;
        pol->nallow++;
        if (s[n] == '\0')
            return 0;
        s += n + 1;
    }
}

const char *mvm_net_allow_str(const struct mvm_net_allow *a, char *buf, size_t cap)
{
    char ip[16], port[8] = "";
    if (a->port)
        snprintf(port, sizeof port, ":%u", a->port);
    if (a->name[0])
        snprintf(buf, cap, "%s%s%s", a->wildcard ? "*." : "", a->name, port);
    else if (a->len == 32)
        snprintf(buf, cap, "%s%s", mvm_ip4_str(a->ip, ip), port);
    else
        snprintf(buf, cap, "%s/%u%s", mvm_ip4_str(a->ip, ip), a->len, port);
    return buf;
}

uint32_t mvm_ip4_mask(unsigned len)
{
    return len ? htonl(~0u << (32 - len)) : 0;
}

size_t mvm_net_allow_ports(const struct mvm_net_allow *a, uint16_t ports[2])
{
    if (a->port) {
        ports[0] = a->port;
        return 1;
    }
    ports[0] = 80;
    ports[1] = 443;
    return 2;
}

bool mvm_net_policy_allows(const struct mvm_net_policy *pol, const char *host, uint16_t port)
{
    struct in_addr literal;
    bool is_ip = inet_pton(AF_INET, host, &literal) == 1;
    /* The relay sees names lowercased, as the rules are. */
    char name[MVM_DNS_NAME_MAX];
    size_t n = strlen(host);
    if (n >= sizeof name)
        return false;
    for (size_t i = 0; i <= n; i++)
        name[i] = (char)(host[i] >= 'A' && host[i] <= 'Z' ? host[i] - 'A' + 'a' : host[i]);
    for (size_t i = 0; i < pol->nallow; i++) {
        const struct mvm_net_allow *r = &pol->allow[i];
        uint16_t ports[2];
        bool on_port = false;
        for (size_t k = 0, np = mvm_net_allow_ports(r, ports); k < np; k++)
            on_port |= ports[k] == port;
        if (!on_port)
            continue;
        if (r->name[0] && !is_ip) {
            struct mvm_dns_allow entry = {.wildcard = r->wildcard};
            snprintf(entry.name, sizeof entry.name, "%s", r->name);
            if (mvm_dns_allow_match(name, &entry, 1) >= 0)
                return true;
        } else if (!r->name[0] && is_ip && ((literal.s_addr ^ r->ip) & mvm_ip4_mask(r->len)) == 0) {
            return true;
        }
    }
    return false;
}
