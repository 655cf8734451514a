/* The kernel WireGuard family's messages (linux/wireguard.h): built and
 * read, no I/O.  The set request carries what wgconf.c's UAPI text does,
 * as attributes. */
#include <arpa/inet.h>
#include <linux/wireguard.h>
#include <netinet/in.h>
#include <netlink/attr.h>
#include <netlink/genl/genl.h>
#include <string.h>
#include <sys/socket.h>

#include "wggenl.h"

static int put_endpoint(struct nl_msg *msg, const struct mvm_wg_peer *peer,
                        const struct mvm_wg_ip *ep)
{
    if (ep->family == 4) {
        struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(peer->endpoint_port)};
        memcpy(&sa.sin_addr, ep->addr, 4);
        return nla_put(msg, WGPEER_A_ENDPOINT, sizeof sa, &sa);
    }
    struct sockaddr_in6 sa = {.sin6_family = AF_INET6, .sin6_port = htons(peer->endpoint_port)};
    memcpy(&sa.sin6_addr, ep->addr, 16);
    return nla_put(msg, WGPEER_A_ENDPOINT, sizeof sa, &sa);
}

static int put_allowed(struct nl_msg *msg, const struct mvm_wg_peer *peer)
{
    struct nlattr *list = nla_nest_start(msg, WGPEER_A_ALLOWEDIPS);
    if (list == NULL)
        return -NLE_NOMEM;
    for (size_t i = 0; i < peer->nallowed; i++) {
        const struct mvm_wg_ip *a = &peer->allowed[i];
        struct nlattr *one = nla_nest_start(msg, (int)i);
        if (one == NULL ||
            nla_put_u16(msg, WGALLOWEDIP_A_FAMILY, a->family == 4 ? AF_INET : AF_INET6) < 0 ||
            nla_put(msg, WGALLOWEDIP_A_IPADDR, a->family == 4 ? 4 : 16, a->addr) < 0 ||
            nla_put_u8(msg, WGALLOWEDIP_A_CIDR_MASK, a->len) < 0)
            return -NLE_NOMEM;
        nla_nest_end(msg, one);
    }
    nla_nest_end(msg, list);
    return 0;
}

/* -NLE_* for a full message; -NLE_INVAL (err set) for an Endpoint not
 * resolved. */
static int put_peer(struct nl_msg *msg, size_t index, const struct mvm_wg_peer *peer,
                    const struct mvm_wg_ip *ep, struct mvm_error **err)
{
    struct nlattr *nest = nla_nest_start(msg, (int)index);
    if (nest == NULL || nla_put(msg, WGPEER_A_PUBLIC_KEY, MVM_WG_KEY_LEN, peer->public_key) < 0 ||
        nla_put_u32(msg, WGPEER_A_FLAGS, WGPEER_F_REPLACE_ALLOWEDIPS) < 0 ||
        nla_put_u16(msg, WGPEER_A_PERSISTENT_KEEPALIVE_INTERVAL, peer->keepalive) < 0)
        return -NLE_NOMEM;
    if (peer->has_preshared_key &&
        nla_put(msg, WGPEER_A_PRESHARED_KEY, MVM_WG_KEY_LEN, peer->preshared_key) < 0)
        return -NLE_NOMEM;
    if (peer->endpoint_host[0] != '\0') {
        if (ep == NULL || (ep->family != 4 && ep->family != 6)) {
            mvm_error_set(err, 0, "the Endpoint of the [Peer] at line %u is not resolved",
                          peer->line);
            return -NLE_INVAL;
        }
        if (put_endpoint(msg, peer, ep) < 0)
            return -NLE_NOMEM;
    }
    if (put_allowed(msg, peer) < 0)
        return -NLE_NOMEM;
    nla_nest_end(msg, nest);
    return 0;
}

int mvm_wg_genl_set_msg(struct nl_msg *msg, int family, const char *ifname,
                        const struct mvm_wg_config *c, const struct mvm_wg_ip ep[],
                        struct mvm_error **err)
{
    int rc = genlmsg_put(msg, NL_AUTO_PORT, NL_AUTO_SEQ, family, 0, NLM_F_REQUEST | NLM_F_ACK,
                         WG_CMD_SET_DEVICE, WG_GENL_VERSION)
                 ? 0
                 : -NLE_NOMEM;
    if (rc == 0)
        rc = nla_put_string(msg, WGDEVICE_A_IFNAME, ifname);
    if (rc == 0)
        rc = nla_put(msg, WGDEVICE_A_PRIVATE_KEY, MVM_WG_KEY_LEN, c->private_key);
    if (rc == 0 && c->listen_port != 0)
        rc = nla_put_u16(msg, WGDEVICE_A_LISTEN_PORT, c->listen_port);
    if (rc == 0)
        rc = nla_put_u32(msg, WGDEVICE_A_FLAGS, WGDEVICE_F_REPLACE_PEERS);
    struct nlattr *peers = rc == 0 ? nla_nest_start(msg, WGDEVICE_A_PEERS) : NULL;
    if (rc == 0 && peers == NULL)
        rc = -NLE_NOMEM;
    for (size_t i = 0; rc == 0 && i < c->npeer; i++)
        rc = put_peer(msg, i, &c->peer[i], ep ? &ep[i] : NULL, err);
    if (rc == -NLE_INVAL)
        return -1; /* err says which peer */
    if (rc < 0)
        return mvm_error_set(err, 0, "the WireGuard request does not fit in %zu bytes",
                             nlmsg_get_max_size(msg));
    nla_nest_end(msg, peers);
    return 0;
}

int mvm_wg_genl_get_msg(struct nl_msg *msg, int family, const char *ifname)
{
    if (!genlmsg_put(msg, NL_AUTO_PORT, NL_AUTO_SEQ, family, 0, NLM_F_REQUEST | NLM_F_DUMP,
                     WG_CMD_GET_DEVICE, WG_GENL_VERSION))
        return -NLE_NOMEM;
    return nla_put_string(msg, WGDEVICE_A_IFNAME, ifname);
}

int mvm_wg_genl_parse_device(const struct nlmsghdr *h, struct mvm_wg_genl_device *d,
                             struct mvm_error **err)
{
    static struct nla_policy policy[WGDEVICE_A_MAX + 1] = {
        [WGDEVICE_A_LISTEN_PORT] = {.type = NLA_U16},
        [WGDEVICE_A_PEERS] = {.type = NLA_NESTED},
    };
    struct nlattr *tb[WGDEVICE_A_MAX + 1];
    int rc = genlmsg_parse((struct nlmsghdr *)h, 0, tb, WGDEVICE_A_MAX, policy);
    if (rc < 0)
        return mvm_error_set(err, 0, "a malformed WireGuard answer: %s", nl_geterror(rc));
    *d = (struct mvm_wg_genl_device){0};
    if (tb[WGDEVICE_A_LISTEN_PORT])
        d->listen_port = nla_get_u16(tb[WGDEVICE_A_LISTEN_PORT]);
    if (tb[WGDEVICE_A_PEERS]) {
        struct nlattr *peer;
        int left;
        nla_for_each_nested(peer, tb[WGDEVICE_A_PEERS], left) d->npeer++;
    }
    return 0;
}
