/* Internal to net/: helpers shared by its files. */
#ifndef MVM_NET_INT_H
#define MVM_NET_INT_H

#include <netlink/netlink.h>
#include <stdint.h>

#include "error.h"
#include "net.h"

/* The interfaces inside the session namespace: the guest's tap, and the
 * uplink's end. */
#define MVM_NET_TAP_IF "tap0"

/* netlink.c: libnl helpers, errors named after the interface. */
struct nl_sock *mvm_nl_open(struct mvm_error **err);
int mvm_nl_fail(struct mvm_error **err, int rc, const char *what, const char *name);
int mvm_nl_link_up(struct nl_sock *sk, const char *name, struct mvm_error **err);
int mvm_nl_ifindex(struct nl_sock *sk, const char *name);
int mvm_nl_add_addr(struct nl_sock *sk, const char *name, uint32_t ip, unsigned len,
                    struct mvm_error **err);
/* gw 0: through the link itself (a tunnel). */
int mvm_nl_add_default_route(struct nl_sock *sk, const char *name, uint32_t gw,
                             struct mvm_error **err);
/* Deletes a link in the current namespace; absent is fine. */
void mvm_nl_link_delete(const char *name);

/* link.c: runs fn in the session namespace and always comes back. */
int mvm_net_in_ns(const struct mvm_net *n, int (*fn)(void *arg, struct mvm_error **err), void *arg,
                  struct mvm_error **err);

/* The namespace's way out (uplink.c): the one piece that ties the session
 * namespace to the outside.  Everything else -- the tap, the policy, the
 * DNS relay's guest side -- is the same whatever the uplink; the policy
 * sends what it accepts out through `ifname` and masquerades it there.
 * Each step may be NULL. */
struct mvm_net_uplink {
    const char *name;   /* for messages */
    const char *ifname; /* its interface inside the namespace */
    /* In the host's namespace, after the namespace exists. */
    int (*outside)(const struct mvm_net_plan *p, struct mvm_net *n, struct mvm_error **err);
    /* In the session namespace: its end up, addressed, the default route. */
    int (*inside)(const struct mvm_net_plan *p, struct nl_sock *sk, struct mvm_error **err);
    /* n->relay_up: the DNS relay's socket to its upstream resolver, made
     * where the upstream is reachable. */
    int (*dns_upstream)(const struct mvm_net_plan *p, struct mvm_net *n, struct mvm_error **err);
    /* Last, once everything is made: waits until the way out carries
     * packets. */
    int (*ready)(const struct mvm_net_plan *p, struct mvm_net *n, struct mvm_error **err);
    /* Removes what outside() made; idempotent. */
    void (*destroy)(struct mvm_net *n);
};
const struct mvm_net_uplink *mvm_net_uplink_of(enum mvm_net_uplink_kind kind);
/* uplink-host.c: a veth to the host, NAT behind the host's own routes. */
extern const struct mvm_net_uplink mvm_net_uplink_host;
/* uplink-wg.c: a WireGuard interface made in the host's namespace and
 * moved into the session's; no veth. */
extern const struct mvm_net_uplink mvm_net_uplink_wg;

/* nft.c: applies a ruleset in the current network namespace. */
int mvm_nft_apply(const char *ruleset, const char *where, struct mvm_error **err);
/* The commands that delete them, from libnftables' JSON listing of the
 * set; NULL when there is none.  Pure. */
char *mvm_nft_stale_holes(const char *json_text);

/* publish.c: the --publish listeners, into n->publish_fds. */
int mvm_net_publish_open(const struct mvm_net_plan *p, struct mvm_net *n, struct mvm_error **err);

#endif
