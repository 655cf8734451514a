/* Creating the session's network: the namespace, its way out (the
 * plan's uplink), the guest's tap, the namespace's rules through nft.c,
 * and the DNS relay's sockets.  mvm steps into the session namespace for
 * what must be made there (the tap, its own netlink socket, the rules)
 * and always steps back. */
#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <netlink/netlink.h>
#include <sched.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "net-int.h"
#include "util.h"

/* In the session namespace: a tap the guest's NIC sits on, vnet headers
 * on (QEMU's virtio-net uses them for offloads). */
static int make_tap(struct mvm_net *n, struct mvm_error **err)
{
    n->tap_fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
    if (n->tap_fd < 0)
        return mvm_error_set(err, errno, "opening /dev/net/tun");
    struct ifreq ifr = {.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR};
    snprintf(ifr.ifr_name, sizeof ifr.ifr_name, "%s", MVM_NET_TAP_IF);
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

/* The services' listeners, at tap_ip inside the namespace. */
static int service_sockets(const struct mvm_net_plan *p, struct mvm_net *n, struct mvm_error **err)
{
    for (size_t i = 0; i < p->nservices; i++) {
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
            return mvm_error_set(err, errno, "making a listener in the session namespace");
        n->service_fds[n->nservice_fds++] = fd;
        struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(p->services[i])};
        sa.sin_addr.s_addr = p->tap_ip;
        if (bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(fd, 64) < 0)
            return mvm_error_set(err, errno, "listening on port %u in the session namespace",
                                 p->services[i]);
    }
    return 0;
}

void mvm_net_services_close(struct mvm_net *n)
{
    for (size_t i = 0; i < n->nservice_fds; i++)
        close(n->service_fds[i]);
    n->nservice_fds = 0;
}

static int inside(const struct mvm_net_plan *p, struct mvm_net *n, struct mvm_error **err)
{
    struct nl_sock *sk = mvm_nl_open(err);
    if (sk == NULL)
        return -1;
    int rc = mvm_nl_link_up(sk, "lo", err);
    if (rc == 0 && n->uplink->inside)
        rc = n->uplink->inside(p, sk, err);
    if (rc == 0)
        rc = make_tap(n, err);
    if (rc == 0)
        rc = mvm_nl_add_addr(sk, MVM_NET_TAP_IF, p->tap_ip, p->guest_prefix, err);
    if (rc == 0)
        rc = mvm_nl_link_up(sk, MVM_NET_TAP_IF, err);
    nl_socket_free(sk);
    if (rc == 0 && write_existing_file("/proc/sys/net/ipv4/ip_forward", "1") < 0)
        rc = mvm_error_set(err, errno, "enabling forwarding in the session namespace");
    cleanup_free char *rules = rc == 0 ? mvm_net_ruleset_ns(p) : NULL;
    if (rc == 0)
        rc = mvm_nft_apply(rules, "the session namespace", err);
    if (rc == 0)
        rc = relay_guest_socket(p, n, err);
    if (rc == 0)
        rc = service_sockets(p, n, err);
    return rc;
}

/* Runs fn in the session namespace and comes back, whatever happens:
 * mvm must never stay in it. */
int mvm_net_in_ns(const struct mvm_net *n, int (*fn)(void *arg, struct mvm_error **err), void *arg,
                  struct mvm_error **err)
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
    return mvm_net_in_ns(n, apply_fn, (void *)ruleset, err);
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
    n->uplink = mvm_net_uplink_of(p->uplink);
    if (mvm_net_publish_open(p, n, err) < 0 || new_namespace(n, err) < 0 ||
        (p->mode == MVM_NET_ALLOW && report_pair(n, err) < 0))
        return -1;
    if (n->uplink->outside && n->uplink->outside(p, n, err) < 0)
        return -1;
    struct inside_args args = {p, n};
    if (mvm_net_in_ns(n, inside_fn, &args, err) < 0)
        return -1;
    if (n->uplink->dns_upstream && n->uplink->dns_upstream(p, n, err) < 0)
        return -1;
    return n->uplink->ready ? n->uplink->ready(p, n, err) : 0;
}

void mvm_net_destroy(struct mvm_net *n)
{
    mvm_net_publish_close(n);
    mvm_net_services_close(n);
    if (n->uplink && n->uplink->destroy)
        n->uplink->destroy(n);
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
