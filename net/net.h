/* net: the session's network, host side.
 *
 * Owns: the per-session network namespace (anonymous: held by fds and by
 * QEMU, so it dies with its last holder), the veth pair from the host
 * into it, the guest's tap inside it, addresses and routes (libnl), the
 * nftables policy (libnftables) in the namespace and the one host table
 * `inet mvm`, and IPv4 forwarding on the host; the holes the user asks
 * for (--allow-host, --allow-lan) and the --publish listeners.  Knows
 * nothing about the CLI or the session; the DNS relay (dns.h, dnsrelay.h)
 * and the port relay (portrelay.h) are the pieces the guest talks to.
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
#include <sys/types.h>

#include "error.h"

enum mvm_net_mode { MVM_NET_NONE, MVM_NET_ISOLATED, MVM_NET_OPEN, MVM_NET_ALLOW };

#define MVM_NET_MAX_PREFIXES 256
#define MVM_NET_MAX_DNS      3

struct mvm_prefix4 {
    uint32_t addr; /* network order */
    unsigned len;
};

/* What the user asked for beyond the mode (policy.c, pure). */
#define MVM_NET_MAX_PUBLISH 16
/* TCP ports the namespace itself serves the guest on (--api-key's). */
#define MVM_NET_MAX_SERVICES 8
#define MVM_NET_MAX_HOLES    32

/* --publish [HOSTIP:]HOSTPORT:GUESTPORT[/tcp|/udp] */
struct mvm_net_publish {
    uint32_t host_ip; /* network order; 127.0.0.1 unless given */
    uint16_t host_port, guest_port;
    int proto; /* IPPROTO_TCP or IPPROTO_UDP */
};

/* --allow-lan HOST:PORT (TCP) */
struct mvm_net_hole {
    uint32_t ip; /* network order */
    uint16_t port;
};

/* One rule of --net allow=: a name (a wildcard means the names below it,
 * not the name itself) or an IPv4 address or prefix, with a TCP port (0:
 * 80 and 443). */
#define MVM_NET_MAX_ALLOW 64
/* Addresses the relay may have answered at once (allowdns4's size). */
#define MVM_NET_ALLOW_SET_MAX 65536
#define MVM_NET_NAME_MAX      254
struct mvm_net_allow {
    char name[MVM_NET_NAME_MAX]; /* lowercase, no "*." ; "" for an address */
    bool wildcard;
    uint32_t ip; /* network order, host bits clear */
    unsigned len;
    uint16_t port;
};

struct mvm_net_policy {
    struct mvm_net_allow allow[MVM_NET_MAX_ALLOW]; /* --net allow= */
    size_t nallow;
    struct mvm_net_publish publish[MVM_NET_MAX_PUBLISH];
    size_t npublish;
    uint16_t host_ports[MVM_NET_MAX_HOLES]; /* --allow-host, TCP */
    size_t nhost_ports;
    struct mvm_net_hole lan[MVM_NET_MAX_HOLES];
    size_t nlan;
};

/* Parse one option's value; errors name the option and show the form. */
int mvm_net_parse_publish(const char *spec, struct mvm_net_publish *out, struct mvm_error **err);
int mvm_net_parse_allow_host(const char *spec, uint16_t *port, struct mvm_error **err);
int mvm_net_parse_allow_lan(const char *spec, struct mvm_net_hole *out, struct mvm_error **err);
/* Parse and add to pol: a host port published twice is an error, the
 * same hole twice is one hole; -1 when the list is full. */
int mvm_net_policy_publish(struct mvm_net_policy *pol, const char *spec, struct mvm_error **err);
int mvm_net_policy_allow_host(struct mvm_net_policy *pol, const char *spec, struct mvm_error **err);
int mvm_net_policy_allow_lan(struct mvm_net_policy *pol, const char *spec, struct mvm_error **err);
/* --net allow=RULE[,RULE...]: each rule parsed and added; an address in
 * the LAN is refused (it needs --allow-lan). */
int mvm_net_policy_allow(struct mvm_net_policy *pol, const char *rules, struct mvm_error **err);
/* A rule as the user would write it, into buf. */
const char *mvm_net_allow_str(const struct mvm_net_allow *a, char *buf, size_t cap);
/* The ports of an allow= rule (its own, else TCP 80 and 443) into
 * ports; returns how many. */
size_t mvm_net_allow_ports(const struct mvm_net_allow *a, uint16_t ports[2]);
/* Whether allow= lets a connection to host:port out: a name rule for
 * host (or *.NAME above it), matched as the DNS relay matches, or, when
 * host is an IPv4 literal, an address rule holding it -- on one of the
 * rule's ports.  Pure. */
bool mvm_net_policy_allows(const struct mvm_net_policy *pol, const char *host, uint16_t port);
/* The network-order mask of a /len prefix. */
uint32_t mvm_ip4_mask(unsigned len);
/* "tcp" or "udp". */
const char *mvm_net_proto_name(int proto);
/* True when prefix addr/len overlaps the ranges that are never public
 * (plan.c's LAN list). */
bool mvm_net_in_lan(uint32_t addr, unsigned len);

/* The namespace's way out (net-int.h's struct mvm_net_uplink): the
 * host's own routes, through a veth and NAT, or a WireGuard tunnel
 * (--wireguard), then the namespace's only interface to the world. */
enum mvm_net_uplink_kind { MVM_NET_UPLINK_HOST, MVM_NET_UPLINK_WG };

/* The WireGuard uplink's inputs (uplink-wg.c): the kernel's WireGuard
 * where it has one, else wireguard-go.  net/ starts no process: for the
 * latter, the caller's start() runs wireguard-go (jailed) on the tun and
 * the listening UAPI socket that uplink-wg.c made, and keeps it
 * running. */
struct mvm_wg_config;
struct mvm_wg_ip;
#define MVM_NET_WG_IF "wg0" /* its name inside the session namespace */
struct mvm_net_wg {
    const struct mvm_wg_config *conf; /* holds the private key */
    const struct mvm_wg_ip *ep;       /* each peer's Endpoint, resolved */
    char ifname[16];                  /* in the host's namespace; names the UAPI socket */
    uid_t uid;                        /* wireguard-go's: the socket is its */
    int (*start)(void *arg, int tun_fd, int uapi_fd, struct mvm_error **err);
    void *arg;
};

/* Everything decided before anything is created.  Pure. */
struct mvm_net_plan {
    enum mvm_net_mode mode;
    enum mvm_net_uplink_kind uplink;
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
    /* The host's own addresses (also in blocked): where --allow-host's
     * holes lead. */
    uint32_t host_addrs[MVM_NET_MAX_PREFIXES];
    size_t nhost_addrs;
    /* The namespace's own TCP services at tap_ip (the API gateway's
     * ports): the guest may reach them, and what they send out obeys the
     * same refusals as the guest's own traffic. */
    uint16_t services[MVM_NET_MAX_SERVICES];
    size_t nservices;
    const struct mvm_net_policy *policy; /* NULL: no holes, nothing published */
    const struct mvm_net_wg *wg;         /* MVM_NET_UPLINK_WG's */
};

/* Addresses for session slot `slot` (0..4095) and the names from id. */
int mvm_net_plan_init(struct mvm_net_plan *p, enum mvm_net_mode mode, unsigned slot, const char *id,
                      struct mvm_error **err);
/* Adds a blocked prefix; an error when the list is full. */
int mvm_net_plan_block(struct mvm_net_plan *p, uint32_t addr, unsigned len, struct mvm_error **err);
/* Adds one of the host's own addresses (blocked, and a --allow-host
 * destination). */
int mvm_net_plan_host_addr(struct mvm_net_plan *p, uint32_t addr, struct mvm_error **err);
/* The nftables rulesets (text for libnftables), pure: the namespace's,
 * and the host's shared table. */
char *mvm_net_ruleset_ns(const struct mvm_net_plan *p);
char *mvm_net_ruleset_host(void);
/* The session's --allow-host holes in the host table, as elements to add
 * (add) or delete; NULL when it has none. */
char *mvm_net_ruleset_host_holes(const struct mvm_net_plan *p, bool add);
/* Dotted quad of a network-order address into buf (16 bytes). */
const char *mvm_ip4_str(uint32_t addr, char buf[16]);

/* The host's addresses and non-default routes, and its resolvers (from
 * resolv_conf, unless the plan has some already or it is NULL), into the
 * plan. */
int mvm_net_plan_host(struct mvm_net_plan *p, const char *resolv_conf, struct mvm_error **err);

/* allow= mode: the DNS relay reports the addresses it answered for an
 * allowed name over a SOCK_SEQPACKET socketpair, one record per address,
 * the answer's last one flagged; mvm checks them (allow.c), puts them in
 * the namespace's set allowdns4 for their TTL (bounded), and acks the
 * answer, which the relay hands to the guest only then: the guest never
 * connects to an address before it is allowed. */
#define MVM_NET_REPORT_LAST   1u
#define MVM_NET_REPORT_MAX    16 /* records of one answer */
#define MVM_NET_ALLOW_TTL_MIN 60
#define MVM_NET_ALLOW_TTL_MAX 3600
struct mvm_net_report {
    uint32_t seq;    /* the answer's number, echoed in the ack */
    uint16_t rule;   /* index into the policy's allow rules: a name rule */
    uint8_t flags;   /* MVM_NET_REPORT_LAST */
    uint8_t zero;    /* 0 */
    uint8_t addr[4]; /* the A record's address */
    uint32_t ttl;    /* seconds, as the answer said */
};
struct mvm_net_report_ack {
    uint32_t seq;
    uint32_t ok; /* 1: the addresses are allowed now; 0: they are not */
};

struct mvm_net_uplink;
struct mvm_net {
    int netns_fd;                        /* the session namespace, or -1 */
    int tap_fd;                          /* the guest's tap, for QEMU, or -1 */
    int relay_guest;                     /* UDP, bound to tap_ip:53 inside the namespace */
    int relay_tcp;                       /* TCP, listening at tap_ip:53 inside the namespace */
    int relay_up;                        /* UDP, connected to the upstream, in the host's */
    int watch_fd;                        /* the host's route and address events, or -1 */
    void *watch;                         /* its libnl socket */
    const struct mvm_net_uplink *uplink; /* what made the way out (net-int.h) */
    /* the host uplink's: its veth end, and what removes this session's
     * --allow-host holes (or NULL) */
    bool veth_made;
    char host_if[16];
    char *holes_del;
    /* the WireGuard uplink's: whether it is the kernel's (else
     * wireguard-go's), its tun (until wireguard-go has it), its UAPI
     * socket's path (removed at the end), and its name while it is still
     * in the host's namespace */
    bool wg_kernel;
    int wg_tun_fd;
    char wg_sock[108]; /* a sun_path */
    char wg_host_if[16];
    /* --publish listeners in the host's namespace, as the plan lists them,
     * until the port relay has them */
    int publish_fds[MVM_NET_MAX_PUBLISH];
    size_t npublish;
    /* The services' listeners inside the namespace, as the plan lists
     * them, until their helper has them */
    int service_fds[MVM_NET_MAX_SERVICES];
    size_t nservice_fds;
    /* allow= mode: the relay's report socket, mvm's end and the relay's
     * (until the relay has it), and the answer being read */
    int report_fd, relay_report;
    struct mvm_net_report batch[MVM_NET_REPORT_MAX];
    size_t nbatch;
    bool batch_bad;
};

#define MVM_NET_INIT                                                                      \
    {                                                                                     \
        .netns_fd = -1, .tap_fd = -1, .relay_guest = -1, .relay_tcp = -1, .relay_up = -1, \
        .watch_fd = -1, .report_fd = -1, .relay_report = -1, .wg_tun_fd = -1              \
    }

/* Opens the --publish listeners (first: a port in use fails before
 * anything else exists), then creates the namespace, links, addresses,
 * routes, rules, the --allow-host holes, the DNS relay's sockets and the
 * services' listeners.  On
 * failure, what was made is removed by mvm_net_destroy(). */
int mvm_net_create(const struct mvm_net_plan *p, struct mvm_net *n, struct mvm_error **err);
/* Removes the session's holes from the host table and the host's veth
 * end (the rest goes with the namespace) and closes the fds; idempotent. */
void mvm_net_destroy(struct mvm_net *n);
/* Closes the --publish listeners (once the port relay holds them). */
void mvm_net_publish_close(struct mvm_net *n);
/* Closes the services' listeners (once their helper holds them). */
void mvm_net_services_close(struct mvm_net *n);

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

/* allow.c: reads what the relay reported (n->report_fd is readable),
 * puts each checked answer's addresses in the set and acks it.  A record
 * that fails the check gets its answer refused; only mvm's own failures
 * are errors.  When the relay is gone, report_fd is closed (-1). */
int mvm_net_reports_drain(const struct mvm_net_plan *p, struct mvm_net *n, struct mvm_error **err);
/* Pure parts: whether a record may be taken (-1 with err saying why),
 * and the set update for one answer's records. */
int mvm_net_report_check(const struct mvm_net_plan *p, const struct mvm_net_report *r,
                         struct mvm_error **err);
char *mvm_net_ruleset_reports(const struct mvm_net_plan *p, const struct mvm_net_report *r,
                              size_t n);

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

/* Removes the host table's --allow-host holes whose interface is gone (a
 * session killed before its teardown; they open nothing, but should not
 * pile up).  Quietly does nothing on failure.  Each session start and
 * `mvm cleanup` call it. */
void mvm_net_sweep_holes(void);

/* Removes what killed sessions (whose directory in run_dir is gone) left
 * of their WireGuard uplink: wireguard-go's UAPI sockets (it died with
 * mvm, its socket stayed), and kernel WireGuard links still in the
 * host's namespace (killed before the move); returns how many.  Each
 * session start and `mvm cleanup` call it after the session
 * directories' own sweep. */
int mvm_net_wg_sweep(const char *run_dir);

/* Deletes the host table `inet mvm` (mvm cleanup --all); absent is fine. */
int mvm_net_remove_host_table(struct mvm_error **err);

/* Whether this kernel takes mvm's rulesets (mvm doctor): a session's and
 * the host table, loaded in a network namespace of a short-lived child's
 * own, which goes with it.  Needs root; call it single-threaded. */
int mvm_net_nft_probe(struct mvm_error **err);

#endif
