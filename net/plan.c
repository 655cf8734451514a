/* What the session's network will be, decided before anything exists:
 * addresses, names, and the nftables rulesets as text.  Pure. */
#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

#include "net.h"
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
    uint32_t mask = len ? htonl(~0u << (32 - len)) : 0;
    p->blocked[p->nblocked++] = (struct mvm_prefix4){addr & mask, len};
    return 0;
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

char *mvm_net_ruleset_blocked(const struct mvm_net_plan *p)
{
    struct buf b = {0};
    buf_printf(&b, "flush set inet mvm blocked4\nadd element inet mvm blocked4 { ");
    add_elements(&b, p);
    buf_printf(&b, " }\n");
    buf_append(&b, "", 1);
    return b.data;
}

/* Refused fast: a TCP reset or an ICMP error, so tools fail at once. */
static void reject(struct buf *b, const char *match)
{
    buf_printf(b, "    %s meta l4proto tcp reject with tcp reset\n", match);
    buf_printf(b, "    %s reject with icmpx type admin-prohibited\n", match);
}

char *mvm_net_ruleset_ns(const struct mvm_net_plan *p)
{
    struct buf b = {0};
    char tap[16];
    mvm_ip4_str(p->tap_ip, tap);
    buf_printf(&b, "table inet mvm {\n");
    buf_printf(&b, "  set blocked4 { type ipv4_addr; flags interval; auto-merge; elements = { ");
    add_elements(&b, p);
    buf_printf(&b, " } }\n");
    /* The namespace itself answers only DNS, on the relay's address. */
    buf_printf(&b,
               "  chain input { type filter hook input priority filter; policy drop;\n"
               "    iif lo accept\n"
               "    ct state established,related accept\n"
               "    iifname \"tap0\" ip daddr %s meta l4proto { tcp, udp } th dport 53 accept\n"
               "    iifname \"tap0\" meta l4proto tcp reject with tcp reset\n"
               "    iifname \"tap0\" reject with icmpx type admin-prohibited\n  }\n",
               tap);
    buf_printf(&b, "  chain forward { type filter hook forward priority filter; policy drop;\n"
                   "    ct state established,related accept\n"
                   "    iifname != \"tap0\" drop\n"
                   "    meta nfproto ipv6 reject with icmpx type admin-prohibited\n");
    if (p->mode == MVM_NET_ISOLATED) {
        /* DNS goes through the relay only: a resolver elsewhere would
         * answer what the relay refuses and carry data out in names. */
        reject(&b, "ip daddr @blocked4");
        reject(&b, "meta l4proto { tcp, udp } th dport { 53, 853 }");
    }
    buf_printf(&b, "    oifname \"up0\" accept\n  }\n");
    buf_printf(&b,
               "  chain postrouting { type nat hook postrouting priority srcnat; policy accept;\n"
               "    oifname \"up0\" masquerade\n  }\n}\n");
    buf_append(&b, "", 1);
    return b.data;
}

/* Shared by every session: nothing in it names one.  Packets from a
 * session's veth to any address of the host are dropped before NAT, so a
 * port that Docker or libvirt publish through DNAT is out of reach too;
 * sessions cannot reach each other; the /30s leave masqueraded. */
char *mvm_net_ruleset_host(void)
{
    /* Replaced whole, in one transaction: every session writes the same. */
    return xstrdup(
        "add table inet mvm\ndelete table inet mvm\n"
        "table inet mvm {\n"
        "  chain prerouting { type filter hook prerouting priority raw; policy accept;\n"
        "    iifname \"mvm-*\" fib daddr type local drop\n  }\n"
        "  chain forward { type filter hook forward priority filter; policy accept;\n"
        "    iifname \"mvm-*\" oifname \"mvm-*\" drop\n  }\n"
        "  chain postrouting { type nat hook postrouting priority srcnat; policy accept;\n"
        "    ip saddr 10.254.0.0/16 oifname != \"mvm-*\" masquerade\n  }\n}\n");
}
