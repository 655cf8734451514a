/* The guest's network, set with raw rtnetlink (the binary is static and
 * small, so no libnl): lo up always; with a "net" object also the NIC the
 * host gave (found by MAC), its MTU, its address and the default route.
 * No DHCP, nothing to wait for but the NIC's asynchronous probe.  IPv6 is
 * turned off first: the host filters only IPv4.  Runs before any guest
 * process exists, and still only believes replies from the kernel. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "guest.h"

#define NET_WAIT_TRIES 200 /* x 10 ms: virtio_net probes after its module loads */

struct nl {
    int fd;
    uint32_t seq;
};

/* Request: fixed and small; reply: a link dump holds one interface per
 * message, and a message with all its stats fits well in 32 KiB. */
union nl_req {
    struct nlmsghdr h;
    char b[512];
};
union nl_reply {
    struct nlmsghdr h;
    char b[32768];
};

struct link_info {
    int index;
    char name[IFNAMSIZ];
};

struct links {
    struct link_info lo, nic; /* index 0: not seen */
};

static void *msg_start(union nl_req *m, uint16_t type, uint16_t flags, size_t bodylen)
{
    memset(m, 0, sizeof *m);
    m->h.nlmsg_len = (uint32_t)NLMSG_LENGTH(bodylen);
    m->h.nlmsg_type = type;
    m->h.nlmsg_flags = NLM_F_REQUEST | flags;
    return NLMSG_DATA(&m->h);
}

static int add_attr(union nl_req *m, uint16_t type, const void *data, size_t len)
{
    size_t off = NLMSG_ALIGN(m->h.nlmsg_len);
    if (off + RTA_SPACE(len) > sizeof m->b)
        return -1;
    struct rtattr *rta = (struct rtattr *)(m->b + off);
    rta->rta_type = type;
    rta->rta_len = (uint16_t)RTA_LENGTH(len);
    memcpy(RTA_DATA(rta), data, len);
    m->h.nlmsg_len = (uint32_t)(off + RTA_SPACE(len));
    return 0;
}

static int nl_open(struct nl *nl)
{
    nl->fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
    nl->seq = 0;
    if (nl->fd < 0)
        return -1;
    /* The kernel always answers; the timeout only keeps PID 1 from hanging
     * forever should it not. */
    struct timeval tv = {2, 0};
    struct sockaddr_nl sa = {.nl_family = AF_NETLINK};
    if (setsockopt(nl->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) < 0 ||
        bind(nl->fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
        int saved = errno;
        close(nl->fd);
        errno = saved;
        return -1;
    }
    return 0;
}

static int nl_send(struct nl *nl, union nl_req *m)
{
    m->h.nlmsg_seq = ++nl->seq;
    struct sockaddr_nl kernel = {.nl_family = AF_NETLINK};
    ssize_t n = sendto(nl->fd, m, m->h.nlmsg_len, 0, (struct sockaddr *)&kernel, sizeof kernel);
    if (n < 0)
        return -errno;
    return n == (ssize_t)m->h.nlmsg_len ? 0 : -EMSGSIZE;
}

/* One datagram from the kernel (port 0), whole; others are dropped. */
static ssize_t nl_recv(struct nl *nl, union nl_reply *r)
{
    for (;;) {
        struct sockaddr_nl from;
        socklen_t flen = sizeof from;
        ssize_t n = recvfrom(nl->fd, r->b, sizeof r->b, MSG_TRUNC, (struct sockaddr *)&from, &flen);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -errno;
        if ((size_t)n > sizeof r->b)
            return -EMSGSIZE;
        if (flen == sizeof from && from.nl_family == AF_NETLINK && from.nl_pid == 0)
            return n;
    }
}

/* Sends m with NLM_F_ACK and returns the kernel's verdict: 0 or -errno. */
static int nl_call(struct nl *nl, union nl_req *m)
{
    m->h.nlmsg_flags |= NLM_F_ACK;
    int rc = nl_send(nl, m);
    if (rc < 0)
        return rc;
    union nl_reply r;
    for (;;) {
        ssize_t n = nl_recv(nl, &r);
        if (n < 0)
            return (int)n;
        size_t len = (size_t)n;
        for (struct nlmsghdr *h = &r.h; NLMSG_OK(h, len); h = NLMSG_NEXT(h, len)) {
            if (h->nlmsg_seq != nl->seq || h->nlmsg_type != NLMSG_ERROR)
                continue;
            if (h->nlmsg_len < NLMSG_LENGTH(sizeof(struct nlmsgerr)))
                return -EBADMSG;
            const struct nlmsgerr *e = NLMSG_DATA(h);
            return e->error > 0 ? -EBADMSG : e->error;
        }
    }
}

static void note_link(const struct nlmsghdr *h, const struct guest_net *net, struct links *l)
{
    const struct ifinfomsg *ifi = NLMSG_DATA(h);
    struct link_info info = {.index = ifi->ifi_index};
    bool mac_matches = false;
    size_t len = h->nlmsg_len - NLMSG_LENGTH(sizeof *ifi);
    for (const struct rtattr *a = IFLA_RTA(ifi); RTA_OK(a, len); a = RTA_NEXT(a, len)) {
        size_t alen = RTA_PAYLOAD(a);
        if (a->rta_type == IFLA_IFNAME && alen > 0 && alen <= sizeof info.name)
            memcpy(info.name, RTA_DATA(a), alen);
        else if (a->rta_type == IFLA_ADDRESS && alen == 6)
            mac_matches = memcmp(RTA_DATA(a), net->mac_bytes, 6) == 0;
    }
    info.name[sizeof info.name - 1] = '\0';
    /* The name goes into a /proc path: a kernel name never holds '/', but
     * a path is built only from one that is certain not to. */
    if (info.name[0] == '\0' || strchr(info.name, '/') != NULL || info.name[0] == '.')
        return;
    if ((ifi->ifi_flags & IFF_LOOPBACK) != 0 && l->lo.index == 0)
        l->lo = info;
    else if (net->enabled && mac_matches && l->nic.index == 0)
        l->nic = info;
}

/* RTM_GETLINK dump: records lo and the interface with net->mac. */
static int dump_links(struct nl *nl, const struct guest_net *net, struct links *l)
{
    union nl_req m;
    struct ifinfomsg *ifi = msg_start(&m, RTM_GETLINK, NLM_F_DUMP, sizeof *ifi);
    ifi->ifi_family = AF_UNSPEC;
    int rc = nl_send(nl, &m);
    if (rc < 0)
        return rc;
    memset(l, 0, sizeof *l);
    union nl_reply r;
    for (;;) {
        ssize_t n = nl_recv(nl, &r);
        if (n < 0)
            return (int)n;
        size_t len = (size_t)n;
        for (struct nlmsghdr *h = &r.h; NLMSG_OK(h, len); h = NLMSG_NEXT(h, len)) {
            if (h->nlmsg_seq != nl->seq)
                continue;
            if (h->nlmsg_type == NLMSG_DONE)
                return 0;
            if (h->nlmsg_type == NLMSG_ERROR) {
                const struct nlmsgerr *e = NLMSG_DATA(h);
                bool ok = h->nlmsg_len >= NLMSG_LENGTH(sizeof *e) && e->error < 0;
                return ok ? e->error : -EBADMSG;
            }
            if (h->nlmsg_type == RTM_NEWLINK && h->nlmsg_len >= NLMSG_LENGTH(sizeof *ifi))
                note_link(h, net, l);
        }
    }
}

/* The NIC appears when virtio_net's probe finishes, some time after the
 * module loaded; lo exists from the start. */
static int find_links(struct nl *nl, const struct guest_net *net, struct links *l, char *why,
                      size_t whylen)
{
    for (int i = 0; i < NET_WAIT_TRIES; i++) {
        int rc = dump_links(nl, net, l);
        if (rc < 0)
            return guest_fail(why, whylen, -rc, "network setup: listing network interfaces");
        if (l->lo.index != 0 && (!net->enabled || l->nic.index != 0))
            return 0;
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    if (l->lo.index == 0)
        snprintf(why, whylen, "network setup: no loopback interface");
    else
        snprintf(why, whylen, "network setup: no network interface with MAC %s (waited %d ms)",
                 net->mac, NET_WAIT_TRIES * 10);
    return -1;
}

/* A missing file means no IPv6 in this kernel: nothing to turn off. */
static int disable_ipv6(const char *conf, char *why, size_t whylen)
{
    char path[128];
    if (snprintf(path, sizeof path, "/proc/sys/net/ipv6/conf/%s/disable_ipv6", conf) >=
        (int)sizeof path)
        return guest_fail(why, whylen, ENAMETOOLONG, "network setup: turning IPv6 off for %s",
                          conf);
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0 && errno == ENOENT)
        return 0;
    if (fd < 0 || write(fd, "1\n", 2) != 2) {
        int saved = errno;
        if (fd >= 0)
            close(fd);
        return guest_fail(why, whylen, saved, "network setup: turning IPv6 off for %s", conf);
    }
    if (close(fd) < 0)
        return guest_fail(why, whylen, errno, "network setup: turning IPv6 off for %s", conf);
    return 0;
}

static int set_link(struct nl *nl, const struct link_info *li, unsigned mtu, char *why,
                    size_t whylen)
{
    union nl_req m;
    struct ifinfomsg *ifi = msg_start(&m, RTM_NEWLINK, 0, sizeof *ifi);
    ifi->ifi_family = AF_UNSPEC;
    ifi->ifi_index = li->index;
    uint32_t mtu32 = mtu;
    if (mtu != 0) {
        if (add_attr(&m, IFLA_MTU, &mtu32, sizeof mtu32) < 0)
            return guest_fail(why, whylen, EMSGSIZE, "network setup: building the request for %s",
                              li->name);
        int rc = nl_call(nl, &m);
        if (rc < 0)
            return guest_fail(why, whylen, -rc, "network setup: setting MTU %u on %s", mtu,
                              li->name);
    }
    ifi = msg_start(&m, RTM_NEWLINK, 0, sizeof *ifi);
    ifi->ifi_family = AF_UNSPEC;
    ifi->ifi_index = li->index;
    ifi->ifi_flags = IFF_UP;
    ifi->ifi_change = IFF_UP;
    int rc = nl_call(nl, &m);
    if (rc < 0)
        return guest_fail(why, whylen, -rc, "network setup: bringing %s up", li->name);
    return 0;
}

static int add_address(struct nl *nl, const struct link_info *li, const struct guest_net *net,
                       char *why, size_t whylen)
{
    union nl_req m;
    struct ifaddrmsg *ifa = msg_start(&m, RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL, sizeof *ifa);
    ifa->ifa_family = AF_INET;
    ifa->ifa_prefixlen = (uint8_t)net->prefix;
    ifa->ifa_scope = RT_SCOPE_UNIVERSE;
    ifa->ifa_index = (uint32_t)li->index;
    uint32_t brd = net->address | htonl(~(~0u << (32 - net->prefix)));
    char addr[16];
    guest_net_format_ipv4(net->address, addr, sizeof addr);
    if (add_attr(&m, IFA_LOCAL, &net->address, 4) < 0 ||
        add_attr(&m, IFA_ADDRESS, &net->address, 4) < 0 || add_attr(&m, IFA_BROADCAST, &brd, 4) < 0)
        return guest_fail(why, whylen, EMSGSIZE, "network setup: building the request for %s",
                          li->name);
    int rc = nl_call(nl, &m);
    if (rc < 0)
        return guest_fail(why, whylen, -rc, "network setup: adding %s/%u to %s", addr, net->prefix,
                          li->name);
    return 0;
}

static int add_default_route(struct nl *nl, const struct link_info *li, const struct guest_net *net,
                             char *why, size_t whylen)
{
    union nl_req m;
    struct rtmsg *rt = msg_start(&m, RTM_NEWROUTE, NLM_F_CREATE | NLM_F_EXCL, sizeof *rt);
    rt->rtm_family = AF_INET;
    rt->rtm_dst_len = 0;
    rt->rtm_table = RT_TABLE_MAIN;
    rt->rtm_protocol = RTPROT_BOOT;
    rt->rtm_scope = RT_SCOPE_UNIVERSE;
    rt->rtm_type = RTN_UNICAST;
    uint32_t oif = (uint32_t)li->index;
    char gw[16];
    guest_net_format_ipv4(net->gateway, gw, sizeof gw);
    if (add_attr(&m, RTA_GATEWAY, &net->gateway, 4) < 0 ||
        add_attr(&m, RTA_OIF, &oif, sizeof oif) < 0)
        return guest_fail(why, whylen, EMSGSIZE, "network setup: building the request for %s",
                          li->name);
    int rc = nl_call(nl, &m);
    if (rc < 0)
        return guest_fail(why, whylen, -rc, "network setup: adding the default route via %s on %s",
                          gw, li->name);
    return 0;
}

static int configure(struct nl *nl, const struct guest_net *net, char *why, size_t whylen)
{
    struct links l;
    if (find_links(nl, net, &l, why, whylen) < 0 || disable_ipv6(l.lo.name, why, whylen) < 0 ||
        set_link(nl, &l.lo, 0, why, whylen) < 0)
        return -1;
    if (!net->enabled)
        return 0;
    if (disable_ipv6(l.nic.name, why, whylen) < 0 ||
        set_link(nl, &l.nic, net->mtu, why, whylen) < 0 ||
        add_address(nl, &l.nic, net, why, whylen) < 0 ||
        add_default_route(nl, &l.nic, net, why, whylen) < 0)
        return -1;
    return 0;
}

int guest_setup_net(const struct guest_session *s, char *why, size_t whylen)
{
    /* "all" reaches interfaces that exist now, "default" those probed
     * later; each interface's own switch is set below before it goes up. */
    if (disable_ipv6("all", why, whylen) < 0 || disable_ipv6("default", why, whylen) < 0)
        return -1;
    struct nl nl;
    if (nl_open(&nl) < 0)
        return guest_fail(why, whylen, errno, "network setup: opening a netlink socket");
    int rc = configure(&nl, &s->net, why, whylen);
    close(nl.fd);
    return rc;
}
