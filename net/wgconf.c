/* A wg-quick style WireGuard configuration: parsed, checked, and written
 * out as wireguard-go's UAPI text.  Pure.  The syntax is wg(8)'s: keys
 * and section names case-insensitive, '#' starts a comment anywhere. */
#include <arpa/inet.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "util.h"
#include "wgconf.h"

enum section { S_NONE, S_INTERFACE, S_PEER };

struct parser {
    const char *file;
    unsigned line;
    enum section section;
    unsigned interface_line;
    /* Which keys (bits by index in keys[]) each section has given:
     * [0] the interface's, [1 + i] peer i's. */
    unsigned seen[1 + MVM_WG_MAX_PEERS];
    struct mvm_wg_config *c;
};

/* "FILE:LINE: " and the message.  Never pass a value from the file. */
__attribute__((format(printf, 3, 4))) static int fail(const struct parser *p,
                                                      struct mvm_error **err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    cleanup_free char *msg = xvasprintf(fmt, ap);
    va_end(ap);
    return mvm_error_set(err, 0, "%s:%u: %s", p->file, p->line, msg);
}

static bool is_space(char ch)
{
    return ch == ' ' || ch == '\t' || ch == '\r' || ch == '\v' || ch == '\f';
}

static void trim(const char **s, size_t *n)
{
    while (*n > 0 && is_space(**s)) {
        (*s)++;
        (*n)--;
    }
    while (*n > 0 && is_space((*s)[*n - 1]))
        (*n)--;
}

static bool word_is(const char *s, size_t n, const char *word)
{
    return strlen(word) == n && strncasecmp(s, word, n) == 0;
}

/* Decimal digits only, at most max. */
static bool parse_uint(const char *s, size_t n, unsigned max, unsigned *out)
{
    unsigned long v = 0;
    if (n == 0 || n > 10)
        return false;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10 + (unsigned long)(s[i] - '0');
    }
    if (v > max)
        return false;
    *out = (unsigned)v;
    return true;
}

static int b64_value(char ch)
{
    if (ch >= 'A' && ch <= 'Z')
        return ch - 'A';
    if (ch >= 'a' && ch <= 'z')
        return ch - 'a' + 26;
    if (ch >= '0' && ch <= '9')
        return ch - '0' + 52;
    if (ch == '+')
        return 62;
    if (ch == '/')
        return 63;
    return -1;
}

/* A key as wg(8) writes one: 32 bytes in standard base64, 43 characters
 * and '='; the last character's unused bits zero (a canonical encoding). */
static bool parse_key(const char *s, size_t n, uint8_t out[MVM_WG_KEY_LEN])
{
    uint8_t key[MVM_WG_KEY_LEN];
    uint32_t acc = 0;
    unsigned bits = 0;
    size_t k = 0;
    if (n != 44 || s[43] != '=')
        return false;
    for (size_t i = 0; i < 43; i++) {
        int v = b64_value(s[i]);
        if (v < 0)
            return false;
        acc = acc << 6 | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            key[k++] = (uint8_t)(acc >> bits);
        }
    }
    /* 43 * 6 = 258 bits: 32 bytes and 2 left over, which must be 0. */
    if (k != MVM_WG_KEY_LEN || (acc & ((1u << bits) - 1)) != 0)
        return false;
    memcpy(out, key, sizeof key);
    explicit_bzero(key, sizeof key);
    return true;
}

/* ADDRESS, or ADDRESS/LENGTH when with_len; without a length, the full
 * one. */
static bool parse_ip(const char *s, size_t n, bool with_len, struct mvm_wg_ip *out)
{
    char text[INET6_ADDRSTRLEN];
    const char *slash = memchr(s, '/', n);
    size_t an = slash ? (size_t)(slash - s) : n;
    struct mvm_wg_ip ip = {0};
    unsigned len = 0;

    if (an == 0 || an >= sizeof text || (slash && !with_len))
        return false;
    memcpy(text, s, an);
    text[an] = '\0';
    if (inet_pton(AF_INET, text, ip.addr) == 1)
        ip.family = 4;
    else if (inet_pton(AF_INET6, text, ip.addr) == 1)
        ip.family = 6;
    else
        return false;
    unsigned max = ip.family == 4 ? 32 : 128;
    if (slash && !parse_uint(slash + 1, n - an - 1, max, &len))
        return false;
    ip.len = (uint8_t)(slash ? len : max);
    *out = ip;
    return true;
}

static void clear_host_bits(struct mvm_wg_ip *ip)
{
    size_t bytes = ip->family == 4 ? 4 : 16;
    for (size_t i = 0; i < bytes; i++) {
        unsigned first = (unsigned)i * 8;
        if (first >= ip->len)
            ip->addr[i] = 0;
        else if (ip->len - first < 8)
            ip->addr[i] &= (uint8_t)(0xff << (8 - (ip->len - first)));
    }
}

/* Calls item() for each entry of a comma-separated list, trimmed, with
 * its number from 1; an empty entry is refused as that entry. */
static int each_item(struct parser *p, const char *v, size_t n,
                     int (*item)(struct parser *p, const char *s, size_t n, unsigned number,
                                 struct mvm_error **err),
                     const char *what, struct mvm_error **err)
{
    unsigned number = 0;
    for (;;) {
        const char *comma = memchr(v, ',', n);
        const char *s = v;
        size_t sn = comma ? (size_t)(comma - v) : n;
        trim(&s, &sn);
        number++;
        if (sn == 0)
            return fail(p, err, "%s: entry %u is empty", what, number);
        if (item(p, s, sn, number, err) < 0)
            return -1;
        if (comma == NULL)
            return 0;
        n -= (size_t)(comma + 1 - v);
        v = comma + 1;
    }
}

static struct mvm_wg_peer *peer_of(struct parser *p)
{
    return &p->c->peer[p->c->npeer - 1];
}

static int key_into(struct parser *p, const char *v, size_t n, const char *name, uint8_t *out,
                    struct mvm_error **err)
{
    if (!parse_key(v, n, out))
        return fail(p, err, "%s is not a base64 WireGuard key (32 bytes)", name);
    return 0;
}

static int private_key(struct parser *p, const char *v, size_t n, struct mvm_error **err)
{
    return key_into(p, v, n, "PrivateKey", p->c->private_key, err);
}

static int public_key(struct parser *p, const char *v, size_t n, struct mvm_error **err)
{
    return key_into(p, v, n, "PublicKey", peer_of(p)->public_key, err);
}

static int preshared_key(struct parser *p, const char *v, size_t n, struct mvm_error **err)
{
    peer_of(p)->has_preshared_key = true;
    return key_into(p, v, n, "PresharedKey", peer_of(p)->preshared_key, err);
}

static int address_item(struct parser *p, const char *s, size_t n, unsigned number,
                        struct mvm_error **err)
{
    struct mvm_wg_config *c = p->c;
    if (c->naddr == MVM_WG_MAX_ADDRS)
        return fail(p, err, "Address: at most %d addresses", MVM_WG_MAX_ADDRS);
    if (!parse_ip(s, n, true, &c->addr[c->naddr]))
        return fail(p, err, "Address: entry %u is not an IPv4 or IPv6 address (ADDRESS[/LENGTH])",
                    number);
    c->naddr++;
    return 0;
}

static int address(struct parser *p, const char *v, size_t n, struct mvm_error **err)
{
    return each_item(p, v, n, address_item, "Address", err);
}

/* wg-quick takes a DNS entry that is not an address as a search domain.
 * mvm refuses them: the guest's resolver is mvm's relay, which asks the
 * addresses given here, and a search list would only change which names
 * the guest's programs try. */
static int dns_item(struct parser *p, const char *s, size_t n, unsigned number,
                    struct mvm_error **err)
{
    struct mvm_wg_config *c = p->c;
    struct mvm_wg_ip ip;
    if (!parse_ip(s, n, false, &ip))
        return fail(p, err,
                    "DNS: entry %u is not an IP address (mvm takes no search domains: the guest "
                    "resolves through mvm's relay)",
                    number);
    if (c->ndns == MVM_WG_MAX_DNS)
        return fail(p, err, "DNS: at most %d resolvers", MVM_WG_MAX_DNS);
    c->dns[c->ndns++] = ip;
    return 0;
}

static int dns(struct parser *p, const char *v, size_t n, struct mvm_error **err)
{
    return each_item(p, v, n, dns_item, "DNS", err);
}

static int mtu(struct parser *p, const char *v, size_t n, struct mvm_error **err)
{
    if (!parse_uint(v, n, MVM_WG_MTU_MAX, &p->c->mtu) || p->c->mtu < MVM_WG_MTU_MIN)
        return fail(p, err, "MTU must be a number from %d to %d", MVM_WG_MTU_MIN, MVM_WG_MTU_MAX);
    return 0;
}

static int listen_port(struct parser *p, const char *v, size_t n, struct mvm_error **err)
{
    unsigned port = 0;
    if (!parse_uint(v, n, 65535, &port))
        return fail(p, err, "ListenPort must be a port number (0 to 65535)");
    p->c->listen_port = (uint16_t)port;
    return 0;
}

static bool is_host_name(const char *s, size_t n)
{
    if (n == 0 || n >= MVM_WG_HOST_MAX || s[0] == '-' || s[0] == '.')
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
              (s[i] >= '0' && s[i] <= '9') || s[i] == '-' || s[i] == '.' || s[i] == '_'))
            return false;
    return true;
}

/* HOST:PORT or [IPV6]:PORT.  A name stays a name: the caller resolves it
 * once, before the session starts. */
static int endpoint(struct parser *p, const char *v, size_t n, struct mvm_error **err)
{
    struct mvm_wg_peer *peer = peer_of(p);
    const char *colon = memrchr(v, ':', n);
    const char *h = v;
    size_t hn = colon ? (size_t)(colon - v) : 0;
    unsigned port = 0;
    struct mvm_wg_ip ip;
    bool ok = colon && parse_uint(colon + 1, n - hn - 1, 65535, &port) && port != 0;

    if (ok && hn >= 2 && h[0] == '[' && h[hn - 1] == ']') {
        h++;
        hn -= 2;
        ok = parse_ip(h, hn, false, &ip) && ip.family == 6;
    } else {
        ok = ok && is_host_name(h, hn);
    }
    if (!ok)
        return fail(p, err, "Endpoint must be HOST:PORT or [IPV6]:PORT");
    memcpy(peer->endpoint_host, h, hn);
    peer->endpoint_host[hn] = '\0';
    peer->endpoint_port = (uint16_t)port;
    return 0;
}

static int allowed_item(struct parser *p, const char *s, size_t n, unsigned number,
                        struct mvm_error **err)
{
    struct mvm_wg_peer *peer = peer_of(p);
    if (peer->nallowed == MVM_WG_MAX_ALLOWED)
        return fail(p, err, "AllowedIPs: at most %d prefixes", MVM_WG_MAX_ALLOWED);
    struct mvm_wg_ip *ip = &peer->allowed[peer->nallowed];
    if (!parse_ip(s, n, true, ip))
        return fail(p, err, "AllowedIPs: entry %u is not an IPv4 or IPv6 prefix (ADDRESS[/LENGTH])",
                    number);
    /* As the kernel keeps it. */
    clear_host_bits(ip);
    peer->nallowed++;
    return 0;
}

static int allowed_ips(struct parser *p, const char *v, size_t n, struct mvm_error **err)
{
    return each_item(p, v, n, allowed_item, "AllowedIPs", err);
}

static int keepalive(struct parser *p, const char *v, size_t n, struct mvm_error **err)
{
    unsigned secs = 0;
    if (!word_is(v, n, "off") && !parse_uint(v, n, 65535, &secs))
        return fail(p, err, "PersistentKeepalive must be off or seconds (0 to 65535)");
    peer_of(p)->keepalive = (uint16_t)secs;
    return 0;
}

struct key {
    const char *name;
    enum section section;
    bool required, repeatable;
    int (*parse)(struct parser *p, const char *v, size_t n, struct mvm_error **err);
};

static const struct key keys[] = {
    {"PrivateKey", S_INTERFACE, true, false, private_key},
    {"Address", S_INTERFACE, true, true, address},
    {"DNS", S_INTERFACE, false, true, dns},
    {"MTU", S_INTERFACE, false, false, mtu},
    {"ListenPort", S_INTERFACE, false, false, listen_port},
    {"PublicKey", S_PEER, true, false, public_key},
    {"PresharedKey", S_PEER, false, false, preshared_key},
    {"Endpoint", S_PEER, false, false, endpoint},
    {"AllowedIPs", S_PEER, false, true, allowed_ips},
    {"PersistentKeepalive", S_PEER, false, false, keepalive},
};

/* wg-quick's own keys, which mvm never acts on: it runs no command and
 * routes the session's namespace itself. */
static const struct {
    const char *name, *why;
} refused[] = {
    {"PreUp", "runs a shell command"},        {"PostUp", "runs a shell command"},
    {"PreDown", "runs a shell command"},      {"PostDown", "runs a shell command"},
    {"SaveConfig", "writes the file back"},   {"Table", "changes the host's routing"},
    {"FwMark", "changes the host's routing"},
};

static const char *section_name(enum section s)
{
    return s == S_PEER ? "Peer" : "Interface";
}

static int begin_section(struct parser *p, const char *s, size_t n, struct mvm_error **err)
{
    struct mvm_wg_config *c = p->c;
    if (n < 2 || s[n - 1] != ']')
        return fail(p, err, "a section header is [Interface] or [Peer]");
    s++;
    n -= 2;
    trim(&s, &n);
    if (word_is(s, n, "Interface")) {
        if (p->interface_line != 0)
            return fail(p, err, "a second [Interface] section (the first is at line %u)",
                        p->interface_line);
        p->interface_line = p->line;
        p->section = S_INTERFACE;
        return 0;
    }
    if (!word_is(s, n, "Peer"))
        return fail(p, err, "unknown section: mvm knows [Interface] and [Peer]");
    if (c->npeer == MVM_WG_MAX_PEERS)
        return fail(p, err, "at most %d [Peer] sections", MVM_WG_MAX_PEERS);
    c->peer[c->npeer++].line = p->line;
    p->section = S_PEER;
    return 0;
}

static int key_value(struct parser *p, const char *s, size_t n, struct mvm_error **err)
{
    const char *eq = memchr(s, '=', n);
    if (eq == NULL)
        return fail(p, err, "expected Key = Value or a [Section]");
    const char *k = s, *v = eq + 1;
    size_t kn = (size_t)(eq - s), vn = n - kn - 1;
    trim(&k, &kn);
    trim(&v, &vn);
    if (p->section == S_NONE)
        return fail(p, err, "a key before any [Interface] or [Peer] section");
    for (size_t i = 0; i < ARRAY_SIZE(refused); i++)
        if (word_is(k, kn, refused[i].name))
            return fail(p, err, "%s %s in wg-quick; mvm never does that: remove it",
                        refused[i].name, refused[i].why);
    size_t i = 0;
    while (i < ARRAY_SIZE(keys) && !word_is(k, kn, keys[i].name))
        i++;
    if (i == ARRAY_SIZE(keys))
        return fail(p, err, "unknown key in [%s]", section_name(p->section));
    const struct key *key = &keys[i];
    if (key->section != p->section)
        return fail(p, err, "%s belongs in [%s], not [%s]", key->name, section_name(key->section),
                    section_name(p->section));
    unsigned *seen = &p->seen[p->section == S_PEER ? p->c->npeer : 0];
    if ((*seen & 1u << i) && !key->repeatable)
        return fail(p, err, "%s is given twice in this section", key->name);
    *seen |= 1u << i;
    if (vn == 0)
        return fail(p, err, "%s has no value", key->name);
    return key->parse(p, v, vn, err);
}

static int parse_line(struct parser *p, const char *s, size_t n, struct mvm_error **err)
{
    if (memchr(s, '\0', n) != NULL)
        return fail(p, err, "a NUL byte: this is not a text file");
    const char *hash = memchr(s, '#', n);
    if (hash != NULL)
        n = (size_t)(hash - s);
    trim(&s, &n);
    if (n == 0)
        return 0;
    if (s[0] == '[')
        return begin_section(p, s, n, err);
    return key_value(p, s, n, err);
}

/* The required keys of the section whose seen bits are `seen`, given at
 * `line`. */
static int check_required(struct parser *p, enum section s, unsigned seen, unsigned line,
                          struct mvm_error **err)
{
    for (size_t i = 0; i < ARRAY_SIZE(keys); i++)
        if (keys[i].section == s && keys[i].required && !(seen & 1u << i)) {
            p->line = line;
            return fail(p, err, "this [%s] section has no %s", section_name(s), keys[i].name);
        }
    return 0;
}

static int finish(struct parser *p, struct mvm_error **err)
{
    const struct mvm_wg_config *c = p->c;
    if (p->interface_line == 0)
        return mvm_error_set(err, 0, "%s: no [Interface] section", p->file);
    if (c->npeer == 0)
        return mvm_error_set(err, 0, "%s: no [Peer] section: the tunnel needs the peer it leads to",
                             p->file);
    if (check_required(p, S_INTERFACE, p->seen[0], p->interface_line, err) < 0)
        return -1;
    for (size_t i = 0; i < c->npeer; i++) {
        if (check_required(p, S_PEER, p->seen[1 + i], c->peer[i].line, err) < 0)
            return -1;
        for (size_t j = 0; j < i; j++)
            if (memcmp(c->peer[j].public_key, c->peer[i].public_key, MVM_WG_KEY_LEN) == 0) {
                p->line = c->peer[i].line;
                return fail(p, err, "this [Peer] has the PublicKey of the one at line %u",
                            c->peer[j].line);
            }
    }
    return 0;
}

int mvm_wg_parse(const char *text, size_t len, const char *file, struct mvm_wg_config *c,
                 struct mvm_error **err)
{
    struct parser p = {.file = file, .c = c};
    size_t off = 0;
    int rc = 0;

    memset(c, 0, sizeof *c);
    while (rc == 0 && off < len) {
        const char *s = text + off;
        const char *nl = memchr(s, '\n', len - off);
        size_t n = nl ? (size_t)(nl - s) : len - off;
        off += n + (nl != NULL);
        p.line++;
        rc = parse_line(&p, s, n, err);
    }
    if (rc == 0)
        rc = finish(&p, err);
    if (rc < 0)
        explicit_bzero(c, sizeof *c);
    return rc;
}

int mvm_wg_check_mode(const char *file, unsigned mode, struct mvm_error **err)
{
    if ((mode & 077) == 0)
        return 0;
    return mvm_error_set(err, 0,
                         "%s holds a private key but others than its owner may %s it (mode %04o); "
                         "make it private: chmod 600 %s",
                         file, (mode & 022) ? "write" : "read", mode & 07777, file);
}

/* The UAPI text, appended with every truncation seen. */
struct out {
    char *buf;
    size_t cap, len;
    bool full;
};

__attribute__((format(printf, 2, 3))) static void put(struct out *o, const char *fmt, ...)
{
    va_list ap;
    if (o->full)
        return;
    va_start(ap, fmt);
    int n = vsnprintf(o->buf + o->len, o->cap - o->len, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= o->cap - o->len)
        o->full = true;
    else
        o->len += (size_t)n;
}

static void put_hex(struct out *o, const char *name, const uint8_t key[MVM_WG_KEY_LEN])
{
    char hex[2 * MVM_WG_KEY_LEN + 1];
    for (size_t i = 0; i < MVM_WG_KEY_LEN; i++)
        snprintf(hex + 2 * i, 3, "%02x", key[i]);
    put(o, "%s=%s\n", name, hex);
    explicit_bzero(hex, sizeof hex);
}

static const char *ip_str(const struct mvm_wg_ip *ip, char buf[INET6_ADDRSTRLEN])
{
    return inet_ntop(ip->family == 4 ? AF_INET : AF_INET6, ip->addr, buf, INET6_ADDRSTRLEN);
}

static int put_peer(struct out *o, const struct mvm_wg_peer *peer, const struct mvm_wg_ip *ep,
                    struct mvm_error **err)
{
    char text[INET6_ADDRSTRLEN];
    put_hex(o, "public_key", peer->public_key);
    if (peer->has_preshared_key)
        put_hex(o, "preshared_key", peer->preshared_key);
    if (peer->endpoint_host[0] != '\0') {
        if (ep == NULL || (ep->family != 4 && ep->family != 6))
            return mvm_error_set(err, 0, "the Endpoint of the [Peer] at line %u is not resolved",
                                 peer->line);
        put(o, ep->family == 6 ? "endpoint=[%s]:%u\n" : "endpoint=%s:%u\n", ip_str(ep, text),
            peer->endpoint_port);
    }
    put(o, "persistent_keepalive_interval=%u\n", peer->keepalive);
    put(o, "replace_allowed_ips=true\n");
    for (size_t i = 0; i < peer->nallowed; i++)
        put(o, "allowed_ip=%s/%u\n", ip_str(&peer->allowed[i], text), peer->allowed[i].len);
    return 0;
}

int mvm_wg_uapi_set(const struct mvm_wg_config *c, const struct mvm_wg_ip ep[], char *out,
                    size_t cap, size_t *outlen, struct mvm_error **err)
{
    struct out o = {.buf = out, .cap = cap, .full = cap == 0};
    put(&o, "set=1\n");
    put_hex(&o, "private_key", c->private_key);
    if (c->listen_port != 0)
        put(&o, "listen_port=%u\n", c->listen_port);
    put(&o, "replace_peers=true\n");
    for (size_t i = 0; i < c->npeer; i++)
        if (put_peer(&o, &c->peer[i], ep ? &ep[i] : NULL, err) < 0)
            goto fail;
    put(&o, "\n");
    if (o.full) {
        mvm_error_set(err, 0, "the WireGuard UAPI text does not fit in %zu bytes", cap);
        goto fail;
    }
    *outlen = o.len;
    return 0;
fail:
    explicit_bzero(out, cap);
    return -1;
}
