/* wggenl: the kernel's WireGuard, configured over its generic netlink
 * family ("wireguard", linux/wireguard.h) -- the way --wireguard takes
 * when the kernel has WireGuard; wireguard-go and its UAPI socket
 * (uplink-wg.c) when it has not.
 *
 * Owns: the messages (wggenl-msg.c, pure, unit-tested: a config into a
 * WG_CMD_SET_DEVICE request, a WG_CMD_GET_DEVICE request, and what mvm
 * reads from the answer), and the I/O (wggenl.c: the link of kind
 * "wireguard" made with rtnetlink, the requests sent, the answers read).
 *
 * The private key is in every set request and in every get answer: both
 * live in buffers of this module's own, wiped (explicit_bzero) before
 * they are freed, and the socket is told to echo no request in its error
 * answers (NETLINK_CAP_ACK).  No message quotes a key. */
#ifndef MVM_WGGENL_H
#define MVM_WGGENL_H

#include <netlink/msg.h>
#include <netlink/netlink.h>
#include <stdint.h>

#include "error.h"
#include "wgconf.h"

/* A set request for MVM_WG_MAX_PEERS peers of MVM_WG_MAX_ALLOWED
 * allowed IPs each takes about 11 KiB. */
#define MVM_WG_GENL_MSG_MAX (32 * 1024)

/* Builds into msg (empty, from nlmsg_alloc_size(MVM_WG_GENL_MSG_MAX))
 * the request that gives the device ifname c's private key, ListenPort
 * (when given) and peers, replacing the device's own, each peer's
 * allowed IPs replacing its own.  ep as for mvm_wg_uapi_set().  family
 * is the generic netlink family's id.  Returns 0, or -1 with err. */
int mvm_wg_genl_set_msg(struct nl_msg *msg, int family, const char *ifname,
                        const struct mvm_wg_config *c, const struct mvm_wg_ip ep[],
                        struct mvm_error **err);

/* The dump request for the device ifname.  0, or a libnl -NLE_* code. */
int mvm_wg_genl_get_msg(struct nl_msg *msg, int family, const char *ifname);

/* What mvm reads from a get answer. */
struct mvm_wg_genl_device {
    uint16_t listen_port; /* 0 until its UDP socket is bound (the link is up) */
    size_t npeer;         /* peers in this message */
};

/* Reads one message of a get answer (a WireGuard one: the caller has
 * checked nlmsg_type); 0, or -1 with err when it is malformed. */
int mvm_wg_genl_parse_device(const struct nlmsghdr *h, struct mvm_wg_genl_device *d,
                             struct mvm_error **err);

/* Makes the link ifname, of kind "wireguard", in the current network
 * namespace with rt (a NETLINK_ROUTE socket): the kernel loads its
 * module when it has one.  Returns 0, 1 when this kernel has no
 * WireGuard (nothing made: the caller falls back on wireguard-go), or
 * -1 with err. */
int mvm_wg_kernel_create(struct nl_sock *rt, const char *ifname, struct mvm_error **err);

/* Configures the kernel device ifname in the current namespace from c
 * (mvm_wg_genl_set_msg()).  0, or -1 with err. */
int mvm_wg_kernel_set(const char *ifname, const struct mvm_wg_config *c,
                      const struct mvm_wg_ip ep[], struct mvm_error **err);

/* Asks the kernel device ifname in the current namespace how it is. */
int mvm_wg_kernel_get(const char *ifname, struct mvm_wg_genl_device *d, struct mvm_error **err);

/* Whether --wireguard gets the kernel's WireGuard here (mvm doctor): a
 * link made in a network namespace of a short-lived child's own, which
 * goes with it.  1 yes, 0 no, -1 with err when it cannot tell (not
 * root).  Call it single-threaded. */
int mvm_wg_kernel_probe(struct mvm_error **err);

#endif
