/* libnl helpers for net/'s files: a route socket, links up, addresses,
 * a default route, a link's removal.  libnl's NLE_* codes become errors
 * here, where they enter; errno is never read after a libnl call. */
#include <errno.h>
#include <linux/if.h>
#include <netlink/netlink.h>
#include <netlink/route/addr.h>
#include <netlink/route/link.h>
#include <netlink/route/route.h>
#include <sys/socket.h>

#include "net-int.h"

int mvm_nl_fail(struct mvm_error **err, int rc, const char *what, const char *name)
{
    return mvm_error_set(err, 0, "%s %s: %s", what, name, nl_geterror(rc));
}

struct nl_sock *mvm_nl_open(struct mvm_error **err)
{
    struct nl_sock *sk = nl_socket_alloc();
    int rc = sk ? nl_connect(sk, NETLINK_ROUTE) : -NLE_NOMEM;
    if (rc < 0) {
        if (sk)
            nl_socket_free(sk);
        mvm_error_set(err, 0, "netlink: %s", nl_geterror(rc));
        return NULL;
    }
    return sk;
}

int mvm_nl_link_up(struct nl_sock *sk, const char *name, struct mvm_error **err)
{
    struct rtnl_link *link = NULL, *change = rtnl_link_alloc();
    int rc = rtnl_link_get_kernel(sk, 0, name, &link);
    if (rc == 0) {
        rtnl_link_set_flags(change, IFF_UP);
        rc = rtnl_link_change(sk, link, change, 0);
    }
    if (link)
        rtnl_link_put(link);
    rtnl_link_put(change);
    return rc < 0 ? mvm_nl_fail(err, rc, "bringing up", name) : 0;
}

int mvm_nl_ifindex(struct nl_sock *sk, const char *name)
{
    struct rtnl_link *link = NULL;
    if (rtnl_link_get_kernel(sk, 0, name, &link) < 0)
        return 0;
    int idx = rtnl_link_get_ifindex(link);
    rtnl_link_put(link);
    return idx;
}

int mvm_nl_add_addr(struct nl_sock *sk, const char *name, uint32_t ip, unsigned len,
                    struct mvm_error **err)
{
    struct rtnl_addr *a = rtnl_addr_alloc();
    struct nl_addr *local = nl_addr_build(AF_INET, &ip, 4);
    nl_addr_set_prefixlen(local, (int)len);
    rtnl_addr_set_ifindex(a, mvm_nl_ifindex(sk, name));
    int rc = rtnl_addr_set_local(a, local);
    if (rc == 0)
        rc = rtnl_addr_add(sk, a, 0);
    nl_addr_put(local);
    rtnl_addr_put(a);
    return rc < 0 ? mvm_nl_fail(err, rc, "adding an address to", name) : 0;
}

int mvm_nl_add_default_route(struct nl_sock *sk, const char *name, uint32_t gw,
                             struct mvm_error **err)
{
    uint32_t any = 0;
    struct rtnl_route *r = rtnl_route_alloc();
    struct nl_addr *dst = nl_addr_build(AF_INET, &any, 4);
    struct nl_addr *via = nl_addr_build(AF_INET, &gw, 4);
    nl_addr_set_prefixlen(dst, 0);
    struct rtnl_nexthop *nh = rtnl_route_nh_alloc();
    if (gw != 0) /* else a point-to-point link: the route needs no gateway */
        rtnl_route_nh_set_gateway(nh, via);
    rtnl_route_nh_set_ifindex(nh, mvm_nl_ifindex(sk, name));
    rtnl_route_set_family(r, AF_INET);
    int rc = rtnl_route_set_dst(r, dst);
    rtnl_route_add_nexthop(r, nh); /* the route owns it now */
    if (rc == 0)
        rc = rtnl_route_add(sk, r, NLM_F_CREATE);
    nl_addr_put(dst);
    nl_addr_put(via);
    rtnl_route_put(r);
    return rc < 0 ? mvm_nl_fail(err, rc, "adding the default route via", name) : 0;
}

void mvm_nl_link_delete(const char *name)
{
    struct nl_sock *sk = mvm_nl_open(NULL);
    struct rtnl_link *link = rtnl_link_alloc();
    if (sk && link) {
        rtnl_link_set_name(link, name);
        rtnl_link_delete(sk, link); /* gone already (NLE_NODEV) is fine */
    }
    if (link)
        rtnl_link_put(link);
    if (sk)
        nl_socket_free(sk);
}
