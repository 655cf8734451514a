/* What the guest must never reach on the host's side, read from the
 * host's namespace through libnl: every local address and every prefix
 * routed without the default route (on-link networks, VPNs, other
 * sessions).  And the host's resolvers, for the relay. */
#include <arpa/inet.h>
#include <netlink/netlink.h>
#include <netlink/route/addr.h>
#include <netlink/route/route.h>
#include <stdio.h>
#include <string.h>

#include "net.h"
#include "util.h"

struct walk {
    struct mvm_net_plan *p;
    int rc;
    struct mvm_error **err;
};

static void block_nl_addr(struct walk *w, struct nl_addr *a)
{
    if (w->rc < 0 || a == NULL || nl_addr_get_family(a) != AF_INET || nl_addr_get_len(a) != 4)
        return;
    uint32_t ip;
    memcpy(&ip, nl_addr_get_binary_addr(a), 4);
    unsigned len = nl_addr_get_prefixlen(a);
    if (len == 0) /* the default route: the internet itself */
        return;
    w->rc = mvm_net_plan_block(w->p, ip, len, w->err);
}

static void on_addr(struct nl_object *o, void *arg)
{
    struct walk *w = arg;
    struct nl_addr *local = rtnl_addr_get_local((struct rtnl_addr *)o);
    if (w->rc < 0 || local == NULL || nl_addr_get_family(local) != AF_INET ||
        nl_addr_get_len(local) != 4)
        return;
    /* The address itself, whatever its prefix says. */
    uint32_t ip;
    memcpy(&ip, nl_addr_get_binary_addr(local), 4);
    w->rc = mvm_net_plan_host_addr(w->p, ip, w->err);
}

static void on_route(struct nl_object *o, void *arg)
{
    struct rtnl_route *r = (struct rtnl_route *)o;
    if (rtnl_route_get_family(r) == AF_INET && rtnl_route_get_type(r) == RTN_UNICAST)
        block_nl_addr(arg, rtnl_route_get_dst(r));
}

static int read_resolvers(struct mvm_net_plan *p, const char *resolv_conf, struct mvm_error **err)
{
    cleanup_free char *text = read_file(resolv_conf, 64 * 1024, NULL);
    if (text == NULL)
        return mvm_error_set(err, errno, "reading %s (or pass --dns ADDR)", resolv_conf);
    for (char *line = strtok(text, "\n"); line && p->nupstream < MVM_NET_MAX_DNS;
         line = strtok(NULL, "\n")) {
        char addr[64];
        struct in_addr a;
        if (sscanf(line, " nameserver %63s", addr) == 1 && inet_pton(AF_INET, addr, &a) == 1)
            p->upstream[p->nupstream++] = a;
    }
    if (p->nupstream == 0)
        return mvm_error_set(err, 0, "no IPv4 nameserver in %s; pass --dns ADDR", resolv_conf);
    return 0;
}

int mvm_net_plan_host(struct mvm_net_plan *p, const char *resolv_conf, struct mvm_error **err)
{
    if (p->nupstream == 0 && resolv_conf && read_resolvers(p, resolv_conf, err) < 0)
        return -1;
    struct nl_sock *sk = nl_socket_alloc();
    if (sk == NULL)
        return mvm_error_set(err, ENOMEM, "netlink socket");
    int rc = nl_connect(sk, NETLINK_ROUTE);
    struct nl_cache *addrs = NULL, *routes = NULL;
    if (rc == 0)
        rc = rtnl_addr_alloc_cache(sk, &addrs);
    if (rc == 0)
        rc = rtnl_route_alloc_cache(sk, AF_INET, 0, &routes);
    struct walk w = {p, 0, err};
    if (rc == 0) {
        nl_cache_foreach(addrs, on_addr, &w);
        nl_cache_foreach(routes, on_route, &w);
    } else {
        w.rc =
            mvm_error_set(err, 0, "reading the host's addresses and routes: %s", nl_geterror(rc));
    }
    if (addrs)
        nl_cache_free(addrs);
    if (routes)
        nl_cache_free(routes);
    nl_socket_free(sk);
    return w.rc;
}
