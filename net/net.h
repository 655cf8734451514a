/* net: the session's network, host side.
 *
 * Owns: the per-session network namespace (anonymous: held by fds and by
 * QEMU, so it dies with its last holder), the veth pair from the host
 * into it, the guest's tap inside it, addresses and routes (libnl), the
 * nftables policy (libnftables) in the namespace and the one host table
 * `inet mvm`, and IPv4 forwarding on the host.  Knows nothing about the
 * CLI or the session; the DNS relay (dns.h, dnsrelay.h) is the piece the
 * guest talks to.
 *
 * Layout, routed (not bridged: the namespace is the guest's router, so
 * its forward chain sees every packet the guest sends, and the host sees
 * only the veth's /30):
 *
 *   guest eth0 10.0.2.15/24 --tap0 10.0.2.2 [session netns] up0 10.254.X.2/30
 *     --veth-- host mvm-<id> 10.254.X.1/30 --NAT--> the host's uplink
 *
 * The namespace masquerades the guest behind up0 and the host
 * masquerades the /30 behind its uplink, so every session has the same
 * guest addresses and no two sessions can see each other. */
#ifndef MVM_NET_H
#define MVM_NET_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"

enum mvm_net_mode { MVM_NET_NONE, MVM_NET_ISOLATED, MVM_NET_OPEN };

#define MVM_NET_MAX_PREFIXES 256
#define MVM_NET_MAX_DNS      3

struct mvm_prefix4 {
    uint32_t addr; /* network order */
    unsigned len;
};

/* Everything decided before anything is created.  Pure. */
struct mvm_net_plan {
    enum mvm_net_mode mode;
    char host_if[16];          /* "mvm-" + the session id's start */
    uint32_t host_ip, ns_ip;   /* the veth's /30, network order */
    uint32_t tap_ip, guest_ip; /* the guest's /24 */
    unsigned guest_prefix;
    uint8_t mac[6];
    struct in_addr upstream[MVM_NET_MAX_DNS]; /* resolvers the relay asks */
    size_t nupstream;
    /* What the guest may never reach besides the fixed LAN ranges: the
     * host's own addresses and the prefixes it reaches without its
     * default route. */
    struct mvm_prefix4 blocked[MVM_NET_MAX_PREFIXES];
    size_t nblocked;
};

/* Addresses for session slot `slot` (0..4095) and the names from id. */
int mvm_net_plan_init(struct mvm_net_plan *p, enum mvm_net_mode mode, unsigned slot, const char *id,
                      struct mvm_error **err);
/* Adds a blocked prefix; an error when the list is full. */
int mvm_net_plan_block(struct mvm_net_plan *p, uint32_t addr, unsigned len, struct mvm_error **err);
/* The nftables rulesets (text for libnftables), pure: the namespace's,
 * and the host's shared table. */
char *mvm_net_ruleset_ns(const struct mvm_net_plan *p);
char *mvm_net_ruleset_host(void);
/* Dotted quad of a network-order address into buf (16 bytes). */
const char *mvm_ip4_str(uint32_t addr, char buf[16]);

/* The host's addresses and non-default routes, and its resolvers (from
 * resolv_conf, unless the plan has some already or it is NULL), into the
 * plan. */
int mvm_net_plan_host(struct mvm_net_plan *p, const char *resolv_conf, struct mvm_error **err);

struct mvm_net {
    int netns_fd;    /* the session namespace, or -1 */
    int tap_fd;      /* the guest's tap, for QEMU, or -1 */
    int relay_guest; /* UDP, bound to tap_ip:53 inside the namespace */
    int relay_up;    /* UDP, connected to the upstream, in the host's */
    int watch_fd;    /* the host's route and address events, or -1 */
    void *watch;     /* its libnl socket */
    bool veth_made;
    char host_if[16];
};

#define MVM_NET_INIT                                                                    \
    {                                                                                   \
        .netns_fd = -1, .tap_fd = -1, .relay_guest = -1, .relay_up = -1, .watch_fd = -1 \
    }

/* Creates the namespace, links, addresses, routes, rules and the relay's
 * sockets.  On failure, what was made is removed by mvm_net_destroy(). */
int mvm_net_create(const struct mvm_net_plan *p, struct mvm_net *n, struct mvm_error **err);
/* Removes the host's veth end (the rest goes with the namespace) and
 * closes the fds; idempotent. */
void mvm_net_destroy(struct mvm_net *n);

/* watch.c: the host's routes and addresses change during a session (a
 * VPN comes up, a new LAN): mvm_net_watch() subscribes to those events
 * (n->watch_fd to poll); when it is readable, mvm_net_refresh() drains it
 * and replaces the namespace's set of refused prefixes with a fresh
 * reading.  A failure there must end the session: fail closed. */
int mvm_net_watch(struct mvm_net *n, struct mvm_error **err);
int mvm_net_refresh(struct mvm_net_plan *p, struct mvm_net *n, struct mvm_error **err);
/* The set update, as text for libnftables.  Pure. */
char *mvm_net_ruleset_blocked(const struct mvm_net_plan *p);
/* Runs nft text in the session namespace (link.c). */
int mvm_net_apply_in_ns(const struct mvm_net *n, const char *ruleset, struct mvm_error **err);

/* Another firewall whose forward chain drops by default (Docker's
 * iptables, ufw, firewalld) would drop the guest's traffic whatever mvm's
 * table says: names the first such chain ("ip filter, chain FORWARD"),
 * NULL when there is none.  The pure part reads `nft -j list chains`. */
char *mvm_net_forward_blocked(void);
char *mvm_nft_forward_dropper(const char *json_text);

/* IPv4 forwarding on the host: on if it was off, recording the earlier
 * value in state_file (once); *changed says whether this call turned it
 * on.  mvm_net_forwarding_restore() puts the recorded value back. */
int mvm_net_forwarding_on(const char *state_file, bool *changed, struct mvm_error **err);
int mvm_net_forwarding_restore(const char *state_file, struct mvm_error **err);

/* Deletes the host table `inet mvm` (mvm cleanup --all); absent is fine. */
int mvm_net_remove_host_table(struct mvm_error **err);

#endif
