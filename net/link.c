/* Creating the session's network: namespace, veth, tap, addresses and
 * routes through libnl, the rulesets through nft.c, and the relay's two
 * sockets -- one on each side.  mvm steps into the session namespace for
 * what must be made there (the tap, its own netlink socket, the rules)
 * and always steps back. */
#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <netlink/netlink.h>
#include <netlink/route/addr.h>
#include <netlink/route/link.h>
#include <netlink/route/link/veth.h>
#include <netlink/route/route.h>
#include <sched.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "net-int.h"
#include "util.h"

#define NS_IF  "up0"
#define TAP_IF "tap0"

static int nl_fail(struct mvm_error **err, int rc, const char *what, const char *name)
{
    return mvm_error_set(err, 0, "%s %s: %s", what, name, nl_geterror(rc));
}

static struct nl_sock *nl_open(struct mvm_error **err)
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

static int link_up(struct nl_sock *sk, const char *name, struct mvm_error **err)
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
    return rc < 0 ? nl_fail(err, rc, "bringing up", name) : 0;
}

static int ifindex(struct nl_sock *sk, const char *name)
{
    struct rtnl_link *link = NULL;
    if (rtnl_link_get_kernel(sk, 0, name, &link) < 0)
        return 0;
    int idx = rtnl_link_get_ifindex(link);
    rtnl_link_put(link);
    return idx;
}

static int add_addr(struct nl_sock *sk, const char *name, uint32_t ip, unsigned len,
                    struct mvm_error **err)
{
    struct rtnl_addr *a = rtnl_addr_alloc();
    struct nl_addr *local = nl_addr_build(AF_INET, &ip, 4);
    nl_addr_set_prefixlen(local, (int)len);
    rtnl_addr_set_ifindex(a, ifindex(sk, name));
    int rc = rtnl_addr_set_local(a, local);
    if (rc == 0)
        rc = rtnl_addr_add(sk, a, 0);
    nl_addr_put(local);
    rtnl_addr_put(a);
    return rc < 0 ? nl_fail(err, rc, "adding an address to", name) : 0;
}

static int add_default_route(struct nl_sock *sk, const char *name, uint32_t gw,
                             struct mvm_error **err)
{
    uint32_t any = 0;
    struct rtnl_route *r = rtnl_route_alloc();
    struct nl_addr *dst = nl_addr_build(AF_INET, &any, 4);
    struct nl_addr *via = nl_addr_build(AF_INET, &gw, 4);
    nl_addr_set_prefixlen(dst, 0);
    struct rtnl_nexthop *nh = rtnl_route_nh_alloc();
    rtnl_route_nh_set_gateway(nh, via);
    rtnl_route_nh_set_ifindex(nh, ifindex(sk, name));
    rtnl_route_set_family(r, AF_INET);
    int rc = rtnl_route_set_dst(r, dst);
    rtnl_route_add_nexthop(r, nh); /* the route owns it now */
    if (rc == 0)
        rc = rtnl_route_add(sk, r, NLM_F_CREATE);
    nl_addr_put(dst);
    nl_addr_put(via);
    rtnl_route_put(r);
    return rc < 0 ? nl_fail(err, rc, "adding the default route via", name) : 0;
}

static int make_veth(struct nl_sock *sk, const struct mvm_net_plan *p, struct mvm_net *n,
                     struct mvm_error **err)
{
    struct rtnl_link *veth = rtnl_link_veth_alloc();
    if (veth == NULL)
        return mvm_error_set(err, ENOMEM, "veth");
    struct rtnl_link *peer = rtnl_link_veth_get_peer(veth);
    rtnl_link_set_name(veth, p->host_if);
    rtnl_link_set_name(peer, NS_IF);
    rtnl_link_set_ns_fd(peer, n->netns_fd);
    int rc = rtnl_link_add(sk, veth, NLM_F_CREATE | NLM_F_EXCL);
    rtnl_link_put(peer);
    rtnl_link_veth_release(veth);
    if (rc < 0)
        return nl_fail(err, rc, "creating the veth pair", p->host_if);
    snprintf(n->host_if, sizeof n->host_if, "%s", p->host_if);
    n->veth_made = true;
    return 0;
}

/* In the session namespace: a tap the guest's NIC sits on, vnet headers
 * on (QEMU's virtio-net uses them for offloads). */
static int make_tap(struct mvm_net *n, struct mvm_error **err)
{
    n->tap_fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
    if (n->tap_fd < 0)
        return mvm_error_set(err, errno, "opening /dev/net/tun");
    struct ifreq ifr = {.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR};
    snprintf(ifr.ifr_name, sizeof ifr.ifr_name, "%s", TAP_IF);
    if (ioctl(n->tap_fd, TUNSETIFF, &ifr) < 0)
        return mvm_error_set(err, errno, "creating the guest's tap");
    return 0;
}

/* The relay's guest side: UDP and TCP at the guest's resolver address. */
static int relay_guest_socket(const struct mvm_net_plan *p, struct mvm_net *n,
                              struct mvm_error **err)
{
    n->relay_guest = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    n->relay_tcp = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(53)};
    sa.sin_addr.s_addr = p->tap_ip;
    if (n->relay_guest < 0 || bind(n->relay_guest, (struct sockaddr *)&sa, sizeof sa) < 0 ||
        n->relay_tcp < 0 || bind(n->relay_tcp, (struct sockaddr *)&sa, sizeof sa) < 0 ||
        listen(n->relay_tcp, 16) < 0)
        return mvm_error_set(err, errno, "binding the DNS relay's sockets");
    return 0;
}

static int inside(const struct mvm_net_plan *p, struct mvm_net *n, struct mvm_error **err)
{
    struct nl_sock *sk = nl_open(err);
    if (sk == NULL)
        return -1;
    int rc = link_up(sk, "lo", err);
    if (rc == 0)
        rc = add_addr(sk, NS_IF, p->ns_ip, 30, err);
    if (rc == 0)
        rc = link_up(sk, NS_IF, err);
    if (rc == 0)
        rc = add_default_route(sk, NS_IF, p->host_ip, err);
    if (rc == 0)
        rc = make_tap(n, err);
    if (rc == 0)
        rc = add_addr(sk, TAP_IF, p->tap_ip, p->guest_prefix, err);
    if (rc == 0)
        rc = link_up(sk, TAP_IF, err);
    nl_socket_free(sk);
    if (rc == 0 && write_existing_file("/proc/sys/net/ipv4/ip_forward", "1") < 0)
        rc = mvm_error_set(err, errno, "enabling forwarding in the session namespace");
    cleanup_free char *rules = rc == 0 ? mvm_net_ruleset_ns(p) : NULL;
    if (rc == 0)
        rc = mvm_nft_apply(rules, "the session namespace", err);
    if (rc == 0)
        rc = relay_guest_socket(p, n, err);
    return rc;
}

/* Runs fn in the session namespace and comes back, whatever happens:
 * mvm must never stay in it. */
static int in_session_ns(const struct mvm_net *n, int (*fn)(void *arg, struct mvm_error **err),
                         void *arg, struct mvm_error **err)
{
    cleanup_close int home = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
    if (home < 0 || setns(n->netns_fd, CLONE_NEWNET) < 0)
        return mvm_error_set(err, errno, "entering the session network namespace");
    int rc = fn(arg, err);
    if (setns(home, CLONE_NEWNET) < 0)
        abort(); /* cannot happen; staying there would be worse than dying */
    return rc;
}

struct inside_args {
    const struct mvm_net_plan *p;
    struct mvm_net *n;
};

static int inside_fn(void *arg, struct mvm_error **err)
{
    struct inside_args *a = arg;
    return inside(a->p, a->n, err);
}

static int apply_fn(void *arg, struct mvm_error **err)
{
    return mvm_nft_apply(arg, "the session namespace", err);
}

int mvm_net_apply_in_ns(const struct mvm_net *n, const char *ruleset, struct mvm_error **err)
{
    return in_session_ns(n, apply_fn, (void *)ruleset, err);
}

static int new_namespace(struct mvm_net *n, struct mvm_error **err)
{
    cleanup_close int home = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
    if (home < 0 || unshare(CLONE_NEWNET) < 0)
        return mvm_error_set(err, errno, "creating the session network namespace");
    n->netns_fd = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
    int e = errno;
    if (setns(home, CLONE_NEWNET) < 0)
        abort();
    return n->netns_fd < 0 ? mvm_error_set(err, e, "holding the session network namespace") : 0;
}

static int relay_upstream_socket(const struct mvm_net_plan *p, struct mvm_net *n,
                                 struct mvm_error **err)
{
    n->relay_up = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sa = {
        .sin_family = AF_INET, .sin_port = htons(53), .sin_addr = p->upstream[0]};
    if (n->relay_up < 0 || connect(n->relay_up, (struct sockaddr *)&sa, sizeof sa) < 0)
        return mvm_error_set(err, errno, "connecting the DNS relay to its upstream");
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

/* allow= mode: the channel on which the relay reports the addresses it
 * answered; records keep their boundaries. */
static int report_pair(struct mvm_net *n, struct mvm_error **err)
{
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
        return mvm_error_set(err, errno, "socketpair for the DNS relay's reports");
    fcntl(sv[0], F_SETFL, O_NONBLOCK);
    n->report_fd = sv[0];
    n->relay_report = sv[1];
    return 0;
}

int mvm_net_create(const struct mvm_net_plan *p, struct mvm_net *n, struct mvm_error **err)
{
    if (mvm_net_publish_open(p, n, err) < 0 || new_namespace(n, err) < 0 ||
        (p->mode == MVM_NET_ALLOW && report_pair(n, err) < 0))
        return -1;
    struct nl_sock *sk = nl_open(err);
    if (sk == NULL)
        return -1;
    int rc = make_veth(sk, p, n, err);
    if (rc == 0)
        rc = add_addr(sk, p->host_if, p->host_ip, 30, err);
    if (rc == 0)
        rc = link_up(sk, p->host_if, err);
    nl_socket_free(sk);
    cleanup_free char *host_rules = mvm_net_ruleset_host();
    if (rc == 0)
        rc = mvm_nft_apply(host_rules, "the host (table inet mvm)", err);
    if (rc == 0)
        rc = host_holes(p, n, err);
    struct inside_args args = {p, n};
    if (rc == 0)
        rc = in_session_ns(n, inside_fn, &args, err);
    if (rc == 0)
        rc = relay_upstream_socket(p, n, err);
    return rc;
}

void mvm_net_destroy(struct mvm_net *n)
{
    if (n->holes_del) { /* while the veth's name still resolves */
        mvm_nft_apply(n->holes_del, "the host (table inet mvm)", NULL);
        free(n->holes_del);
        n->holes_del = NULL;
    }
    mvm_net_publish_close(n);
    if (n->veth_made) {
        struct nl_sock *sk = nl_open(NULL);
        struct rtnl_link *link = rtnl_link_alloc();
        if (sk && link) {
            rtnl_link_set_name(link, n->host_if);
            rtnl_link_delete(sk, link); /* gone already (NLE_NODEV) is fine */
        }
        if (link)
            rtnl_link_put(link);
        if (sk)
            nl_socket_free(sk);
        n->veth_made = false;
    }
    if (n->watch) {
        nl_socket_free(n->watch); /* closes watch_fd */
        n->watch = NULL;
        n->watch_fd = -1;
    }
    int *fds[] = {&n->netns_fd, &n->tap_fd,    &n->relay_guest, &n->relay_tcp,
                  &n->relay_up, &n->report_fd, &n->relay_report};
    for (size_t i = 0; i < ARRAY_SIZE(fds); i++) {
        if (*fds[i] >= 0)
            close(*fds[i]);
        *fds[i] = -1;
    }
}
