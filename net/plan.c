/* What the session's network will be, decided before anything exists:
 * addresses, names, and the nftables rulesets as text.  Pure. */
#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

#include "net-int.h"
#include "util.h"

/* The veths' /30s: 10.254.0.0/16, one per session slot. */
#define VETH_BASE 0x0afe0000u
#define TAP_IP    0x0a000202u /* 10.0.2.2, the guest's gateway and resolver */
#define GUEST_IP  0x0a00020fu /* 10.0.2.15 */

/* Never reachable from the guest in isolated mode: "this network", RFC
 * 1918, CGNAT, loopback, link-local (the cloud metadata service among
 * them), IETF protocol assignments, benchmarking, multicast, reserved
 * and broadcast. */
static const char *const lan4[] = {
    "0.0.0.0/8",
    "10.0.0.0/8",
    "100.64.0.0/10",
    "127.0.0.0/8",
    "169.254.0.0/16",
    "172.16.0.0/12",
    "192.0.0.0/24",
    "192.168.0.0/16",
    "198.18.0.0/15",
    "224.0.0.0/3",
    NULL,
};

bool mvm_net_in_lan(uint32_t addr, unsigned len)
{
    for (size_t i = 0; lan4[i]; i++) {
        char ip[16];
        unsigned plen;
        struct in_addr a;
        if (sscanf(lan4[i], "%15[0-9.]/%u", ip, &plen) != 2 || inet_pton(AF_INET, ip, &a) != 1)
            continue;
        unsigned n = len < plen ? len : plen;
        if (((a.s_addr ^ addr) & mvm_ip4_mask(n)) == 0)
            return true;
    }
    return false;
}

const char *mvm_ip4_str(uint32_t addr, char buf[16])
{
    struct in_addr a = {addr};
    return inet_ntop(AF_INET, &a, buf, 16) ? buf : "?";
}

int mvm_net_plan_init(struct mvm_net_plan *p, enum mvm_net_mode mode, unsigned slot, const char *id,
                      struct mvm_error **err)
{
    memset(p, 0, sizeof *p);
    if (slot >= 4096)
        return mvm_error_set(err, 0, "network slot %u out of range", slot);
    p->mode = mode;
    if (snprintf(p->host_if, sizeof p->host_if, "mvm-%.11s", id) < 0)
        return mvm_error_set(err, 0, "network interface name");
    p->host_ip = htonl(VETH_BASE + 4 * slot + 1);
    p->ns_ip = htonl(VETH_BASE + 4 * slot + 2);
    p->tap_ip = htonl(TAP_IP);
    p->guest_ip = htonl(GUEST_IP);
    p->guest_prefix = 24;
    /* Locally administered, from the session id: unique per session. */
    uint8_t mac[6] = {0x52, 0x54, 0x00, 0, 0, 0};
    for (size_t i = 0; id[i] && i < 6; i++)
        mac[3 + i % 3] ^= (uint8_t)(id[i] * (i + 1));
    memcpy(p->mac, mac, sizeof mac);
    return 0;
}

int mvm_net_plan_block(struct mvm_net_plan *p, uint32_t addr, unsigned len, struct mvm_error **err)
{
    if (len > 32)
        return mvm_error_set(err, 0, "prefix length %u", len);
    if (p->nblocked == MVM_NET_MAX_PREFIXES)
        return mvm_error_set(err, 0,
                             "the host has more than %d addresses and routes to keep from the "
                             "guest",
                             MVM_NET_MAX_PREFIXES);
    p->blocked[p->nblocked++] = (struct mvm_prefix4){addr & mvm_ip4_mask(len), len};
    return 0;
}

int mvm_net_plan_host_addr(struct mvm_net_plan *p, uint32_t addr, struct mvm_error **err)
{
    if (p->nhost_addrs == MVM_NET_MAX_PREFIXES)
        return mvm_error_set(err, 0, "the host has more than %d addresses", MVM_NET_MAX_PREFIXES);
    p->host_addrs[p->nhost_addrs++] = addr;
    return mvm_net_plan_block(p, addr, 32, err);
}

static void add_elements(struct buf *b, const struct mvm_net_plan *p)
{
    const char *sep = "";
    for (size_t i = 0; lan4[i]; i++, sep = ", ")
        buf_printf(b, "%s%s", sep, lan4[i]);
    char ip[16];
    for (size_t i = 0; i < p->nblocked; i++)
        buf_printf(b, ", %s/%u", mvm_ip4_str(p->blocked[i].addr, ip), p->blocked[i].len);
}

/* The host's addresses, and the host's end of the veth, which the guest's
 * gateway address leads to for --allow-host. */
static void add_host_elements(struct buf *b, const struct mvm_net_plan *p)
{
    char ip[16];
    buf_printf(b, "%s", mvm_ip4_str(p->host_ip, ip));
    for (size_t i = 0; i < p->nhost_addrs; i++)
        buf_printf(b, ", %s", mvm_ip4_str(p->host_addrs[i], ip));
}

char *mvm_net_ruleset_blocked(const struct mvm_net_plan *p)
{
    struct buf b = {0};
    buf_printf(&b, "flush set inet mvm blocked4\nadd element inet mvm blocked4 { ");
    add_elements(&b, p);
    buf_printf(&b, " }\nflush set inet mvm host4\nadd element inet mvm host4 { ");
    add_host_elements(&b, p);
    buf_printf(&b, " }\n");
    buf_append(&b, "", 1);
    return b.data;
}

/* "{ 80, 443 }" from a list of ports. */
static void port_list(struct buf *b, const uint16_t *ports, size_t n)
{
    buf_printf(b, "{ ");
    for (size_t i = 0; i < n; i++)
        buf_printf(b, "%s%u", i ? ", " : "", ports[i]);
    buf_printf(b, " }");
}

/* --allow-lan and --allow-host: accepted before the refusals.  The guest
 * reaches the host by any of its addresses, or by its gateway address,
 * which leads to the host's end of the veth. */
static void holes(struct buf *b, const struct mvm_net_plan *p)
{
    const struct mvm_net_policy *pol = p->policy;
    char ip[16];
    if (pol == NULL)
        return;
    for (size_t i = 0; i < pol->nlan; i++)
        buf_printf(b, "    ip daddr %s tcp dport %u accept\n", mvm_ip4_str(pol->lan[i].ip, ip),
                   pol->lan[i].port);
    if (pol->nhost_ports > 0) {
        buf_printf(b, "    ip daddr @host4 tcp dport ");
        port_list(b, pol->host_ports, pol->nhost_ports);
        buf_printf(b, " accept\n");
    }
}

static void host_dnat(struct buf *b, const struct mvm_net_plan *p)
{
    const struct mvm_net_policy *pol = p->policy;
    char tap[16], host[16];
    if (pol == NULL || pol->nhost_ports == 0)
        return;
    buf_printf(b,
               "  chain prerouting { type nat hook prerouting priority dstnat; policy accept;\n"
               "    iifname \"tap0\" ip daddr %s tcp dport ",
               mvm_ip4_str(p->tap_ip, tap));
    port_list(b, pol->host_ports, pol->nhost_ports);
    buf_printf(b, " dnat ip to %s\n  }\n", mvm_ip4_str(p->host_ip, host));
}

/* Refused fast: a TCP reset or an ICMP error, so tools fail at once. */
static void reject(struct buf *b, const char *match)
{
    const char *sp = *match ? " " : "";
    buf_printf(b, "    %s%smeta l4proto tcp reject with tcp reset\n", match, sp);
    buf_printf(b, "    %s%sreject with icmpx type admin-prohibited\n", match, sp);
}

/* allow4: the literal addresses and prefixes, fixed; allowdns4: what the
 * relay answered for the names, each element for its TTL (dnsallow.c). */
static void allow_sets(struct buf *b, const struct mvm_net_plan *p)
{
    const struct mvm_net_policy *pol = p->policy;
    const char *sep = "";
    buf_printf(b, "  set allow4 { type ipv4_addr . inet_service; flags interval;");
    for (size_t i = 0; pol && i < pol->nallow; i++) {
        const struct mvm_net_allow *a = &pol->allow[i];
        uint16_t ports[2];
        char ip[16];
        if (a->name[0])
            continue;
        for (size_t k = 0; k < mvm_net_allow_ports(a, ports); k++, sep = ",")
            buf_printf(b, "%s %s/%u . %u", *sep ? sep : " elements = {", mvm_ip4_str(a->ip, ip),
                       a->len, ports[k]);
    }
    buf_printf(b, "%s }\n", *sep ? " }" : "");
    buf_printf(b, "  set allowdns4 { type ipv4_addr . inet_service; flags timeout; size %d; }\n",
               MVM_NET_ALLOW_SET_MAX);
}

/* The session's refusals, for the guest's traffic (forward) and the
 * services' (output): the holes, then the LAN, the host and DNS
 * elsewhere refused; in allow= mode only the allowed sets pass, else the
 * rest goes out (forwarded: through the uplink only). */
static void policy_rules(struct buf *b, const struct mvm_net_plan *p, bool forward, const char *up)
{
    if (p->mode != MVM_NET_OPEN) {
        holes(b, p);
        /* DNS goes through the relay only: a resolver elsewhere would
         * answer what the relay refuses and carry data out in names. */
        reject(b, "ip daddr @blocked4");
        reject(b, "meta l4proto { tcp, udp } th dport { 53, 853 }");
    }
    if (p->mode == MVM_NET_ALLOW) {
        /* Only the listed addresses and what the relay answered for the
         * listed names; the rest is refused like the LAN. */
        buf_printf(b, "    ip daddr . tcp dport @allow4 accept\n"
                      "    ip daddr . tcp dport @allowdns4 accept\n");
        reject(b, "");
    } else {
        if (forward)
            buf_printf(b, "    oifname \"%s\" accept\n", up);
        else
            buf_printf(b, "    accept\n");
    }
}

char *mvm_net_ruleset_ns(const struct mvm_net_plan *p)
{
    struct buf b = {0};
    char tap[16];
    mvm_ip4_str(p->tap_ip, tap);
    const char *up = mvm_net_uplink_of(p->uplink)->ifname;
    buf_printf(&b, "table inet mvm {\n");
    buf_printf(&b, "  set blocked4 { type ipv4_addr; flags interval; auto-merge; elements = { ");
    add_elements(&b, p);
    buf_printf(&b, " } }\n");
    buf_printf(&b, "  set host4 { type ipv4_addr; flags interval; auto-merge; elements = { ");
    add_host_elements(&b, p);
    buf_printf(&b, " } }\n");
    host_dnat(&b, p);
    if (p->mode == MVM_NET_ALLOW)
        allow_sets(&b, p);
    /* The namespace itself answers only DNS, on the relay's address. */
    buf_printf(&b,
               "  chain input { type filter hook input priority filter; policy drop;\n"
               "    iif lo accept\n"
               "    ct state established,related accept\n"
               "    iifname \"tap0\" ip daddr %s meta l4proto { tcp, udp } th dport 53 accept\n",
               tap);
    if (p->nservices > 0) {
        buf_printf(&b, "    iifname \"tap0\" ip daddr %s tcp dport ", tap);
        port_list(&b, p->services, p->nservices);
        buf_printf(&b, " accept\n");
    }
    buf_printf(&b, "    iifname \"tap0\" meta l4proto tcp reject with tcp reset\n"
                   "    iifname \"tap0\" reject with icmpx type admin-prohibited\n  }\n");
    buf_printf(&b, "  chain forward { type filter hook forward priority filter; policy drop;\n"
                   "    ct state established,related accept\n"
                   "    iifname != \"tap0\" drop\n"
                   "    meta nfproto ipv6 reject with icmpx type admin-prohibited\n");
    policy_rules(&b, p, true, up);
    buf_printf(&b, "  }\n");
    /* The services' own connections out (the API gateway's upstream)
     * obey what the guest's do. */
    if (p->nservices > 0) {
        buf_printf(&b,
                   "  chain output { type filter hook output priority filter; policy accept;\n"
                   "    oifname != \"%s\" accept\n"
                   "    ct state established,related accept\n",
                   up);
        /* The relay's questions to the tunnel's resolver, which may
         * stand in a range refused to everything else. */
        char dns[16];
        for (size_t i = 0; p->uplink == MVM_NET_UPLINK_WG && i < p->nupstream; i++)
            buf_printf(&b, "    ip daddr %s udp dport 53 accept\n",
                       mvm_ip4_str(p->upstream[i].s_addr, dns));
        policy_rules(&b, p, false, up);
        buf_printf(&b, "  }\n");
    }
    buf_printf(&b,
               "  chain postrouting { type nat hook postrouting priority srcnat; policy accept;\n"
               "    oifname \"%s\" masquerade\n  }\n}\n",
               up);
    buf_append(&b, "", 1);
    return b.data;
}

/* Shared by every session: no rule in it names one.  Packets from a
 * session's veth to any address of the host are dropped before NAT, so a
 * port that Docker or libvirt publish through DNAT is out of reach too,
 * except the --allow-host holes: elements of host_ports, keyed by the
 * veth's interface index, which no later interface gets again, so one a
 * killed session left behind opens nothing.  Sessions cannot reach each
 * other; the /30s leave masqueraded. */
char *mvm_net_ruleset_host(void)
{
    /* The rules replaced whole, in one transaction: every session writes
     * the same.  Flushing a table keeps its sets' elements: the other
     * sessions' holes. */
    return xstrdup(
        "add table inet mvm\nflush table inet mvm\n"
        "table inet mvm {\n"
        "  set host_ports { type iface_index . inet_service; }\n"
        "  chain prerouting { type filter hook prerouting priority raw; policy accept;\n"
        "    iifname \"mvm-*\" fib daddr type local meta l4proto tcp iif . tcp dport @host_ports "
        "accept\n"
        "    iifname \"mvm-*\" fib daddr type local drop\n  }\n"
        "  chain forward { type filter hook forward priority filter; policy accept;\n"
        "    iifname \"mvm-*\" oifname \"mvm-*\" drop\n  }\n"
        "  chain postrouting { type nat hook postrouting priority srcnat; policy accept;\n"
        "    ip saddr 10.254.0.0/16 oifname != \"mvm-*\" masquerade\n  }\n}\n");
}

char *mvm_net_ruleset_host_holes(const struct mvm_net_plan *p, bool add)
{
    const struct mvm_net_policy *pol = p->policy;
    if (pol == NULL || pol->nhost_ports == 0)
        return NULL;
    struct buf b = {0};
    buf_printf(&b, "%s element inet mvm host_ports { ", add ? "add" : "delete");
    for (size_t i = 0; i < pol->nhost_ports; i++)
        buf_printf(&b, "%s\"%s\" . %u", i ? ", " : "", p->host_if, pol->host_ports[i]);
    buf_printf(&b, " }\n");
    buf_append(&b, "", 1);
    return b.data;
}
