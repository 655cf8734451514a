/* The DNS relay's command line: `mvm __dns-relay ...` as mvm builds it
 * (mvm_dns_relay_argv) and as the relay reads it (mvm_dns_relay_main).
 * Only mvm starts it, but it is checked all the same. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "dnsrelay.h"
#include "util.h"

static int parse_fd(const char *s, int *fd)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v < 0 || v > INT32_MAX)
        return -1;
    *fd = (int)v;
    return 0;
}

/* "RULE:NAME" or "RULE:*.NAME" into a. */
static bool parse_allow(const char *s, struct mvm_dns_allow *a)
{
    char *end;
    errno = 0;
    unsigned long rule = strtoul(s, &end, 10);
    if (errno != 0 || end == s || *end != ':' || rule > UINT16_MAX)
        return false;
    const char *name = end + 1;
    a->wildcard = str_has_prefix(name, "*.");
    if (a->wildcard)
        name += 2;
    size_t n = strlen(name);
    if (n == 0 || n >= sizeof a->name)
        return false;
    memcpy(a->name, name, n + 1);
    a->rule = (uint16_t)rule;
    return true;
}

struct relay_args {
    struct mvm_dns_lan lan;
    struct mvm_dns_allow allow[MVM_NET_MAX_ALLOW];
    struct mvm_dns_relay_config cfg;
    int guest_fd, upstream_fd;
};

static bool parse_args(int argc, char **argv, struct relay_args *a)
{
    mvm_dns_lan_default(&a->lan);
    a->cfg = (struct mvm_dns_relay_config){.lan = &a->lan, .report_fd = -1, .allow = a->allow};
    if (argc < 3 || parse_fd(argv[1], &a->guest_fd) < 0 || parse_fd(argv[2], &a->upstream_fd) < 0)
        return false;
    for (int i = 3; i < argc; i += 2) {
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        struct in_addr ip;
        bool ok = v != NULL;
        if (ok && strcmp(argv[i], "--lan") == 0)
            ok = inet_pton(AF_INET, v, &ip) == 1 &&
                 mvm_dns_lan_allow4(&a->lan, (const uint8_t *)&ip.s_addr, NULL) == 0;
        else if (ok && strcmp(argv[i], "--tcp") == 0)
            ok = parse_fd(v, &a->cfg.tcp_fd) == 0 && (a->cfg.tcp = true);
        else if (ok && strcmp(argv[i], "--report") == 0)
            ok = parse_fd(v, &a->cfg.report_fd) == 0 && (a->cfg.allow_mode = true);
        else if (ok && strcmp(argv[i], "--allow") == 0)
            ok = a->cfg.nallow < ARRAY_SIZE(a->allow) && parse_allow(v, &a->allow[a->cfg.nallow++]);
        else
            ok = false;
        if (!ok)
            return false;
    }
    /* Names to allow without a channel to report on could not be kept to. */
    return a->cfg.nallow == 0 || a->cfg.allow_mode;
}

int mvm_dns_relay_main(int argc, char **argv)
{
    cleanup_error struct mvm_error *err = NULL;
    cleanup_free struct relay_args *a = xcalloc(1, sizeof *a);

    if (!parse_args(argc, argv, a)) {
        mvm_error_set(&err, 0,
                      "usage: mvm __dns-relay GUESTFD UPSTREAMFD [--tcp FD] [--lan ADDRESS]... "
                      "[--report FD [--allow RULE:NAME]...]");
        mvm_error_print(err);
        return 1;
    }
    if (mvm_dns_relay_run(a->guest_fd, a->upstream_fd, &a->cfg, &err) < 0) {
        mvm_error_wrap(&err, "dns relay");
        mvm_error_print(err);
        return 1;
    }
    return 0;
}

char **mvm_dns_relay_argv(const char *prog, const struct mvm_dns_relay_fds *fds,
                          const struct mvm_net_plan *p)
{
    const struct mvm_net_policy *pol = p->policy;
    size_t nlan = pol ? pol->nlan : 0, nallow = pol && fds->report >= 0 ? pol->nallow : 0, n = 0;
    char **argv = xcalloc(2 * (nlan + nallow) + 9, sizeof *argv);
    argv[n++] = xstrdup(prog);
    argv[n++] = xstrdup("__dns-relay");
    argv[n++] = xasprintf("%d", fds->guest);
    argv[n++] = xasprintf("%d", fds->upstream);
    if (fds->tcp >= 0) {
        argv[n++] = xstrdup("--tcp");
        argv[n++] = xasprintf("%d", fds->tcp);
    }
    for (size_t i = 0; i < nlan; i++) {
        char ip[16];
        argv[n++] = xstrdup("--lan");
        argv[n++] = xstrdup(mvm_ip4_str(pol->lan[i].ip, ip));
    }
    if (fds->report < 0)
        return argv;
    argv[n++] = xstrdup("--report");
    argv[n++] = xasprintf("%d", fds->report);
    for (size_t i = 0; i < nallow; i++) {
        const struct mvm_net_allow *a = &pol->allow[i];
        if (a->name[0] == '\0')
            continue;
        argv[n++] = xstrdup("--allow");
        argv[n++] = xasprintf("%zu:%s%s", i, a->wildcard ? "*." : "", a->name);
    }
    return argv;
}
