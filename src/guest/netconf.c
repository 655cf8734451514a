/* The session's "net" object, parsed and checked: pure (jansson only), so
 * the host's unit tests link this file directly.  The host is trusted, but
 * a typo there must fail the session loudly rather than configure a
 * half-working network, so every field is required and range-checked. */
#include <arpa/inet.h>
#include <ctype.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "guest.h"

int guest_net_parse_ipv4(const char *str, uint32_t *out)
{
    uint32_t addr = 0;
    const char *p = str;
    for (int i = 0; i < 4; i++) {
        if (!isdigit((unsigned char)p[0]))
            return -1;
        /* A leading zero reads as octal to inet_aton(); refuse the doubt. */
        if (p[0] == '0' && isdigit((unsigned char)p[1]))
            return -1;
        unsigned v = 0;
        int digits = 0;
        while (isdigit((unsigned char)*p) && digits < 4) {
            v = v * 10 + (unsigned)(*p++ - '0');
            digits++;
        }
        if (digits > 3 || v > 255)
            return -1;
        addr = addr << 8 | v;
        if (i < 3 && *p++ != '.')
            return -1;
    }
    if (*p != '\0')
        return -1;
    *out = htonl(addr);
    return 0;
}

void guest_net_format_ipv4(uint32_t addr, char *buf, size_t len)
{
    uint32_t a = ntohl(addr);
    snprintf(buf, len, "%u.%u.%u.%u", a >> 24, (a >> 16) & 0xff, (a >> 8) & 0xff, a & 0xff);
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = (char)tolower((unsigned char)c);
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Exactly six colon-separated two-digit hex bytes; a unicast MAC. */
static int parse_mac(const char *str, struct guest_net *n)
{
    if (strlen(str) != 17)
        return -1;
    for (int i = 0; i < 6; i++) {
        const char *p = str + 3 * i;
        int hi = hexval(p[0]), lo = hexval(p[1]);
        if (hi < 0 || lo < 0 || (i < 5 && p[2] != ':'))
            return -1;
        n->mac_bytes[i] = (uint8_t)(hi << 4 | lo);
        n->mac[3 * i] = "0123456789abcdef"[hi];
        n->mac[3 * i + 1] = "0123456789abcdef"[lo];
        n->mac[3 * i + 2] = i < 5 ? ':' : '\0';
    }
    static const uint8_t zero[6];
    if ((n->mac_bytes[0] & 1) != 0 || memcmp(n->mac_bytes, zero, 6) == 0)
        return -1;
    return 0;
}

/* An address a host can have: not 0/8, loopback, multicast or reserved. */
static bool is_host_address(uint32_t addr)
{
    uint32_t a = ntohl(addr);
    return (a >> 24) != 0 && (a >> 24) != 127 && (a >> 28) < 0xe;
}

static int get_ipv4(json_t *obj, const char *key, uint32_t *out, char *why, size_t whylen)
{
    json_t *v = json_object_get(obj, key);
    if (!json_is_string(v) || guest_net_parse_ipv4(json_string_value(v), out) < 0 ||
        !is_host_address(*out)) {
        snprintf(why, whylen, "session description: net.%s is not a unicast IPv4 address", key);
        return -1;
    }
    return 0;
}

static int get_uint(json_t *obj, const char *key, unsigned lo, unsigned hi, unsigned *out,
                    char *why, size_t whylen)
{
    json_t *v = json_object_get(obj, key);
    if (!json_is_integer(v) || json_integer_value(v) < (json_int_t)lo ||
        json_integer_value(v) > (json_int_t)hi) {
        snprintf(why, whylen, "session description: net.%s is not an integer in %u..%u", key, lo,
                 hi);
        return -1;
    }
    *out = (unsigned)json_integer_value(v);
    return 0;
}

static int get_dns(json_t *obj, struct guest_net *n, char *why, size_t whylen)
{
    json_t *arr = json_object_get(obj, "dns");
    if (!json_is_array(arr) || json_array_size(arr) > GUEST_NET_MAX_DNS) {
        snprintf(why, whylen, "session description: net.dns is not an array of at most %d",
                 GUEST_NET_MAX_DNS);
        return -1;
    }
    n->ndns = json_array_size(arr);
    for (size_t i = 0; i < n->ndns; i++) {
        json_t *v = json_array_get(arr, i);
        if (!json_is_string(v) || guest_net_parse_ipv4(json_string_value(v), &n->dns[i]) < 0 ||
            !is_host_address(n->dns[i])) {
            snprintf(why, whylen, "session description: net.dns[%zu] is not a unicast IPv4 address",
                     i);
            return -1;
        }
    }
    return 0;
}

/* A key the guest does not know means host and guest disagree on the
 * format (they are built together), so it is an error, not ignored. */
static int check_keys(json_t *obj, char *why, size_t whylen)
{
    static const char *const known[] = {"mac", "address", "prefix", "gateway", "dns", "mtu"};
    const char *key;
    json_t *v;
    json_object_foreach(obj, key, v)
    {
        size_t i = 0;
        while (i < sizeof known / sizeof known[0] && strcmp(key, known[i]) != 0)
            i++;
        if (i == sizeof known / sizeof known[0]) {
            snprintf(why, whylen, "session description: net.%.64s is not known", key);
            return -1;
        }
    }
    return 0;
}

/* The gateway must be on the link, and neither end may be the subnet's
 * network or broadcast address (a /31 or /32 has neither: refused). */
static int check_subnet(const struct guest_net *n, char *why, size_t whylen)
{
    uint32_t mask = ~0u << (32 - n->prefix);
    uint32_t a = ntohl(n->address), g = ntohl(n->gateway);
    if ((a & ~mask) == 0 || (a & ~mask) == ~mask) {
        snprintf(why, whylen,
                 "session description: net.address is the subnet's network or "
                 "broadcast address");
        return -1;
    }
    if ((g & mask) != (a & mask) || (g & ~mask) == 0 || (g & ~mask) == ~mask || g == a) {
        snprintf(why, whylen,
                 "session description: net.gateway is not another host in "
                 "net.address/net.prefix");
        return -1;
    }
    return 0;
}

int guest_net_parse(json_t *v, struct guest_net *n, char *why, size_t whylen)
{
    memset(n, 0, sizeof *n);
    if (v == NULL || json_is_null(v))
        return 0;
    if (!json_is_object(v)) {
        snprintf(why, whylen, "session description: 'net' is not an object");
        return -1;
    }
    json_t *mac = json_object_get(v, "mac");
    if (!json_is_string(mac) || parse_mac(json_string_value(mac), n) < 0) {
        snprintf(why, whylen, "session description: net.mac is not a unicast MAC address");
        return -1;
    }
    if (check_keys(v, why, whylen) < 0 || get_ipv4(v, "address", &n->address, why, whylen) < 0 ||
        get_uint(v, "prefix", 1, 30, &n->prefix, why, whylen) < 0 ||
        get_ipv4(v, "gateway", &n->gateway, why, whylen) < 0 || get_dns(v, n, why, whylen) < 0 ||
        get_uint(v, "mtu", 576, 9000, &n->mtu, why, whylen) < 0 || check_subnet(n, why, whylen) < 0)
        return -1;
    n->enabled = true;
    return 0;
}
