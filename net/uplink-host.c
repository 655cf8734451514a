/* The host uplink: a veth pair from the host into the session namespace
 * (routed: the host end holds 10.254.X.1/30, the namespace end .2 with
 * the default route), the shared host table `inet mvm` that keeps the
 * guest off the host, the session's --allow-host holes in it, and the
 * DNS relay's upstream socket in the host's namespace, where the host's
 * resolvers (127.0.0.53 included) are reachable.  Traffic leaves by the
 * host's own routes behind the host's NAT, VPN or not. */
#include <errno.h>
#include <netlink/netlink.h>
#include <netlink/route/link.h>
#include <netlink/route/link/veth.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "net-int.h"
#include "util.h"

#define HOST_UPLINK_IF "up0"

static int make_veth(struct nl_sock *sk, const struct mvm_net_plan *p, struct mvm_net *n,
                     struct mvm_error **err)
{
    struct rtnl_link *veth = rtnl_link_veth_alloc();
    if (veth == NULL)
        return mvm_error_set(err, ENOMEM, "veth");
    struct rtnl_link *peer = rtnl_link_veth_get_peer(veth);
    rtnl_link_set_name(veth, p->host_if);
    rtnl_link_set_name(peer, HOST_UPLINK_IF);
    rtnl_link_set_ns_fd(peer, n->netns_fd);
    int rc = rtnl_link_add(sk, veth, NLM_F_CREATE | NLM_F_EXCL);
    rtnl_link_put(peer);
    rtnl_link_veth_release(veth);
    if (rc < 0)
        return mvm_nl_fail(err, rc, "creating the veth pair", p->host_if);
    snprintf(n->host_if, sizeof n->host_if, "%s", p->host_if);
    n->veth_made = true;
    return 0;
}

/* The session's --allow-host holes in the shared host table, once its
 * veth exists (the elements name its interface index). */
static int host_holes(const struct mvm_net_plan *p, struct mvm_net *n, struct mvm_error **err)
{
    mvm_net_sweep_holes();
    cleanup_free char *add = mvm_net_ruleset_host_holes(p, true);
    if (add == NULL)
        return 0;
    if (mvm_nft_apply(add, "the host (table inet mvm)", err) < 0)
        return mvm_error_wrap(err, "--allow-host");
    n->holes_del = mvm_net_ruleset_host_holes(p, false);
    return 0;
}

static int outside(const struct mvm_net_plan *p, struct mvm_net *n, struct mvm_error **err)
{
    struct nl_sock *sk = mvm_nl_open(err);
    if (sk == NULL)
        return -1;
    int rc = make_veth(sk, p, n, err);
    if (rc == 0)
        rc = mvm_nl_add_addr(sk, p->host_if, p->host_ip, 30, err);
    if (rc == 0)
        rc = mvm_nl_link_up(sk, p->host_if, err);
    nl_socket_free(sk);
    cleanup_free char *host_rules = mvm_net_ruleset_host();
    if (rc == 0)
        rc = mvm_nft_apply(host_rules, "the host (table inet mvm)", err);
    if (rc == 0)
        rc = host_holes(p, n, err);
    return rc;
}

static int inside(const struct mvm_net_plan *p, struct nl_sock *sk, struct mvm_error **err)
{
    int rc = mvm_nl_add_addr(sk, HOST_UPLINK_IF, p->ns_ip, 30, err);
    if (rc == 0)
        rc = mvm_nl_link_up(sk, HOST_UPLINK_IF, err);
    if (rc == 0)
        rc = mvm_nl_add_default_route(sk, HOST_UPLINK_IF, p->host_ip, err);
    return rc;
}

static int dns_upstream(const struct mvm_net_plan *p, struct mvm_net *n, struct mvm_error **err)
{
    n->relay_up = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sa = {
        .sin_family = AF_INET, .sin_port = htons(53), .sin_addr = p->upstream[0]};
    if (n->relay_up < 0 || connect(n->relay_up, (struct sockaddr *)&sa, sizeof sa) < 0)
        return mvm_error_set(err, errno, "connecting the DNS relay to its upstream");
    return 0;
}

static void destroy(struct mvm_net *n)
{
    if (n->holes_del) { /* while the veth's name still resolves */
        mvm_nft_apply(n->holes_del, "the host (table inet mvm)", NULL);
        free(n->holes_del);
        n->holes_del = NULL;
    }
    if (n->veth_made) {
        mvm_nl_link_delete(n->host_if);
        n->veth_made = false;
    }
}

const struct mvm_net_uplink mvm_net_uplink_host = {
    .name = "the host's routes",
    .ifname = HOST_UPLINK_IF,
    .outside = outside,
    .inside = inside,
    .dns_upstream = dns_upstream,
    .destroy = destroy,
};
