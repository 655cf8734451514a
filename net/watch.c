/* Keeping the refused prefixes current: the host's route and address
 * events, read through libnl in the host's namespace, trigger a fresh
 * reading that replaces the namespace's set in one transaction. */
#include <netlink/netlink.h>
#include <netlink/route/rtnl.h>

#include "net-int.h"
#include "util.h"

int mvm_net_watch(struct mvm_net *n, struct mvm_error **err)
{
    struct nl_sock *sk = nl_socket_alloc();
    if (sk == NULL)
        return mvm_error_set(err, ENOMEM, "netlink socket");
    nl_socket_disable_seq_check(sk); /* events, not replies */
    int rc = nl_connect(sk, NETLINK_ROUTE);
    if (rc == 0)
        rc = nl_socket_add_memberships(sk, RTNLGRP_IPV4_ROUTE, RTNLGRP_IPV4_IFADDR, 0);
    if (rc == 0)
        rc = nl_socket_set_nonblocking(sk);
    if (rc < 0) {
        nl_socket_free(sk);
        return mvm_error_set(err, 0, "watching the host's routes: %s", nl_geterror(rc));
    }
    n->watch = sk;
    n->watch_fd = nl_socket_get_fd(sk);
    return 0;
}

static int ignore(struct nl_msg *msg, void *arg)
{
    return NL_OK;
}

int mvm_net_refresh(struct mvm_net_plan *p, struct mvm_net *n, struct mvm_error **err)
{
    /* What arrived says only that something changed: read it all, then
     * read the whole state once. */
    nl_socket_modify_cb(n->watch, NL_CB_VALID, NL_CB_CUSTOM, ignore, NULL);
    while (nl_recvmsgs_default(n->watch) >= 0)
        ;
    p->nblocked = 0;
    p->nhost_addrs = 0;
    if (mvm_net_plan_host(p, NULL, err) < 0)
        return mvm_error_wrap(err, "re-reading the host's routes");
    cleanup_free char *update = mvm_net_ruleset_blocked(p);
    if (mvm_net_apply_in_ns(n, update, err) < 0)
        return mvm_error_wrap(err, "updating the refused prefixes");
    return 0;
}
