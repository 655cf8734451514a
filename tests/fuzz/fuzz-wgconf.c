/* Fuzzes the WireGuard configuration (net/wgconf.c): the input is the
 * file.  What parses keeps every bound and turns into UAPI text that fits
 * MVM_WG_UAPI_MAX; what does not gets one line naming the file, and the
 * config is cleared. */
#include <stdint.h>
#include <string.h>

#include "util.h"
#include "wgconf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Far beyond any real config: the parser's cost is linear anyway. */
#define MAX_INPUT_SIZE 16384

static void check_ip(const struct mvm_wg_ip *ip, bool prefix_only)
{
    unsigned max = ip->family == 4 ? 32 : 128;
    if ((ip->family != 4 && ip->family != 6) || ip->len > max)
        __builtin_trap();
    /* AllowedIPs come out with their host bits clear. */
    for (unsigned bit = ip->len; prefix_only && bit < max; bit++)
        if (ip->addr[bit / 8] & (0x80 >> (bit % 8)))
            __builtin_trap();
}

static void check_config(const struct mvm_wg_config *c)
{
    if (c->npeer < 1 || c->npeer > MVM_WG_MAX_PEERS || c->naddr < 1 ||
        c->naddr > MVM_WG_MAX_ADDRS || c->ndns > MVM_WG_MAX_DNS ||
        (c->mtu != 0 && (c->mtu < MVM_WG_MTU_MIN || c->mtu > MVM_WG_MTU_MAX)))
        __builtin_trap();
    for (size_t i = 0; i < c->naddr; i++)
        check_ip(&c->addr[i], false);
    for (size_t i = 0; i < c->ndns; i++)
        check_ip(&c->dns[i], false);
    for (size_t i = 0; i < c->npeer; i++) {
        const struct mvm_wg_peer *p = &c->peer[i];
        size_t hn = strnlen(p->endpoint_host, sizeof p->endpoint_host);
        if (hn == sizeof p->endpoint_host || (hn > 0) != (p->endpoint_port != 0) ||
            p->nallowed > MVM_WG_MAX_ALLOWED)
            __builtin_trap();
        for (size_t k = 0; k < p->nallowed; k++)
            check_ip(&p->allowed[k], true);
    }
}

/* Every peer's Endpoint resolved (to IPv6 for the odd ones), the text
 * always fits, is one "key=value" a line, and ends with an empty one. */
static void check_uapi(const struct mvm_wg_config *c)
{
    static char out[MVM_WG_UAPI_MAX];
    struct mvm_wg_ip ep[MVM_WG_MAX_PEERS];
    size_t n = 0;
    for (size_t i = 0; i < MVM_WG_MAX_PEERS; i++)
        ep[i] = (struct mvm_wg_ip){.family = i % 2 ? 6 : 4, .addr = {0xff, 0xff, 0xff, 0xff}};
    if (mvm_wg_uapi_set(c, ep, out, sizeof out, &n, NULL) < 0)
        __builtin_trap();
    if (n < 8 || strlen(out) != n || strncmp(out, "set=1\n", 6) != 0 ||
        strcmp(out + n - 2, "\n\n") != 0)
        __builtin_trap();
    for (const char *line = out; line < out + n - 1;) {
        const char *nl = strchr(line, '\n');
        const char *eq = memchr(line, '=', (size_t)(nl - line));
        if (eq == NULL || eq == line || nl == eq + 1)
            __builtin_trap();
        line = nl + 1;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const struct mvm_wg_config zero;
    struct mvm_wg_config c;
    struct mvm_error *err = NULL;

    if (size > MAX_INPUT_SIZE)
        return 0;
    /* The mode check looks at the permission bits only. */
    unsigned mode = size >= 2 ? (unsigned)(data[0] << 8 | data[1]) : 0600;
    if ((mvm_wg_check_mode("fuzz.conf", mode, NULL) == 0) != ((mode & 077) == 0))
        __builtin_trap();
    if (mvm_wg_parse((const char *)data, size, "fuzz.conf", &c, &err) == 0) {
        if (err != NULL)
            __builtin_trap();
        check_config(&c);
        check_uapi(&c);
        return 0;
    }
    if (err == NULL || strncmp(err->msg, "fuzz.conf:", 10) != 0 || strchr(err->msg, '\n') ||
        memcmp(&c, &zero, sizeof c) != 0)
        __builtin_trap();
    mvm_error_free(err);
    return 0;
}
