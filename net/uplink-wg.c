/* The WireGuard uplink (--wireguard): the tunnel is the session
 * namespace's only interface to the world, so when it is down nothing
 * leaves -- there is no veth, no host route to leak to.
 *
 * The interface is made in the host's namespace, so that its UDP socket
 * lives there, then moves into the session namespace as wg0, where it
 * gets the config's IPv4 addresses, its MTU and the default route.  Two
 * ways to make it, tried in this order:
 *
 * - The kernel's WireGuard (wggenl.c): a link of kind "wireguard" (the
 *   kernel loads its module), configured over the generic netlink
 *   family.  The kernel opens the UDP socket in the namespace that made
 *   the link when it goes up in the session's (ready() sees its port).
 * - Where the kernel has none, wireguard-go: the tun is made here, and
 *   its UAPI socket (/run/wireguard/IF.sock, the path wireguard-go
 *   watches), and the caller's start() runs wireguard-go on both.  Once
 *   it has answered the configuration (the config's `set=1` text, never
 *   on a command line or in a file), the tun moves.  wireguard-go keeps
 *   working across the move: it holds the tun by its fd and asks the
 *   tun, not the link's events, whether it is up (ready()).
 *
 * Either way the private key reaches the tunnel only in a request of
 * this file's, wiped once sent.  The DNS relay's upstream socket is made
 * inside the namespace, so DNS goes through the tunnel too. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <netlink/netlink.h>
#include <netlink/route/link.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "net-int.h"
#include "util.h"
#include "wgconf.h"
#include "wggenl.h"

#define WG_SOCK_DIR  "/run/wireguard"
#define WG_IF_PREFIX "mvmwg" /* session/wireguard.c names the interface so */
#define WG_MTU       1420    /* wg-quick's and wireguard-go's default */
/* How long wireguard-go may take to start and answer, and to see its
 * link up (it looks every second). */
#define WG_UAPI_TIMEOUT_MS 5000
#define WG_UP_TIMEOUT_MS   5000
#define WG_UP_POLL_MS      20

static int make_tun(const struct mvm_net_wg *wg, struct mvm_net *n, struct mvm_error **err)
{
    n->wg_tun_fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC | O_NONBLOCK);
    if (n->wg_tun_fd < 0)
        return mvm_error_set(err, errno, "opening /dev/net/tun");
    /* With the 4-byte packet information header: wireguard-go (0.0.20220316)
     * expects it on a tun it is handed (it strips it from every packet read). */
    struct ifreq ifr = {.ifr_flags = IFF_TUN};
    snprintf(ifr.ifr_name, sizeof ifr.ifr_name, "%s", wg->ifname);
    if (ioctl(n->wg_tun_fd, TUNSETIFF, &ifr) < 0)
        return mvm_error_set(err, errno, "creating the tunnel's interface %s", wg->ifname);
    snprintf(n->wg_host_if, sizeof n->wg_host_if, "%s", wg->ifname);
    return 0;
}

/* Listening, owned by wireguard-go's uid (it watches the path and exits
 * when it goes), 0600; root connects to it. */
static int uapi_listen(const struct mvm_net_wg *wg, struct mvm_net *n, int *fd,
                       struct mvm_error **err)
{
    if (mkdir(WG_SOCK_DIR, 0755) < 0 && errno != EEXIST)
        return mvm_error_set(err, errno, "creating %s", WG_SOCK_DIR);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (snprintf(sa.sun_path, sizeof sa.sun_path, WG_SOCK_DIR "/%s.sock", wg->ifname) >=
        (int)sizeof sa.sun_path)
        return mvm_error_set(err, ENAMETOOLONG, "the tunnel's UAPI socket");
    unlink(sa.sun_path); /* a killed session's: the name is this session's own */
    *fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (*fd < 0)
        return mvm_error_set(err, errno, "making the tunnel's UAPI socket");
    mode_t old = umask(0177);
    int rc = bind(*fd, (struct sockaddr *)&sa, sizeof sa);
    umask(old);
    if (rc < 0)
        return mvm_error_set(err, errno, "binding %s", sa.sun_path);
    snprintf(n->wg_sock, sizeof n->wg_sock, "%s", sa.sun_path);
    if (chown(sa.sun_path, wg->uid, wg->uid) < 0 || listen(*fd, 4) < 0)
        return mvm_error_set(err, errno, "listening on %s", sa.sun_path);
    return 0;
}

/* Reads an answer into reply (cap bytes, NUL-terminated): lines, then
 * "errno=N" and an empty line. */
static int uapi_read(int fd, char *reply, size_t cap, struct mvm_error **err)
{
    size_t len = 0;
    reply[0] = '\0';
    while (len < cap - 1 && !strstr(reply, "\n\n")) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        int r = poll(&p, 1, WG_UAPI_TIMEOUT_MS);
        if (r == 0)
            return mvm_error_set(err, ETIMEDOUT, "wireguard-go did not answer");
        ssize_t got = r < 0 ? -1 : read(fd, reply + len, cap - 1 - len);
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0)
            return mvm_error_set(err, got < 0 ? errno : 0, "wireguard-go closed its UAPI socket");
        len += (size_t)got;
        reply[len] = '\0';
    }
    return 0;
}

/* One request over the UAPI socket; 0 when the answer ends in errno=0.
 * Answers to get=1 hold the private key: only the errno line is ever
 * quoted, and the caller wipes reply. */
static int uapi_call(const struct mvm_net *n, const char *req, size_t len, char *reply, size_t cap,
                     struct mvm_error **err)
{
    cleanup_close int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof sa.sun_path, "%s", n->wg_sock);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0)
        return mvm_error_set(err, errno, "connecting to wireguard-go");
    if (write_all(fd, req, len) < 0)
        return mvm_error_set(err, errno, "writing to wireguard-go");
    if (uapi_read(fd, reply, cap, err) < 0)
        return -1;
    const char *e = strncmp(reply, "errno=", 6) == 0 ? reply : strstr(reply, "\nerrno=");
    e = e && *e == '\n' ? e + 1 : e;
    if (e && strncmp(e, "errno=0\n", 8) == 0)
        return 0;
    return mvm_error_set(err, 0, "wireguard-go refused the request (%.*s)",
                         e ? (int)strcspn(e, "\n") : 0, e ? e : "");
}

/* The config's `set=1`, the text wiped.  Without its ListenPort: until
 * the device is up, listen_port then tells whether it is (ready()). */
static int uapi_configure(const struct mvm_net_wg *wg, const struct mvm_net *n,
                          struct mvm_error **err)
{
    struct mvm_wg_config *c = xmalloc(sizeof *c);
    *c = *wg->conf;
    c->listen_port = 0;
    char *text = xmalloc(MVM_WG_UAPI_MAX);
    char reply[256];
    size_t len = 0;
    int rc = mvm_wg_uapi_set(c, wg->ep, text, MVM_WG_UAPI_MAX, &len, err);
    if (rc == 0)
        rc = uapi_call(n, text, len, reply, sizeof reply, err);
    explicit_bzero(text, MVM_WG_UAPI_MAX);
    explicit_bzero(c, sizeof *c);
    free(text);
    free(c);
    return rc;
}

/* Applies change (which it frees) to the link name in sk's namespace. */
static int change_link(struct nl_sock *sk, const char *name, struct rtnl_link *change)
{
    struct rtnl_link *link = NULL;
    int rc = change ? rtnl_link_get_kernel(sk, 0, name, &link) : -NLE_NOMEM;
    if (rc == 0)
        rc = rtnl_link_change(sk, link, change, 0);
    if (link)
        rtnl_link_put(link);
    if (change)
        rtnl_link_put(change);
    return rc;
}

/* Into the session namespace, renamed wg0 on the way (one request). */
static int move_in(struct nl_sock *sk, struct mvm_net *n, struct mvm_error **err)
{
    struct rtnl_link *change = rtnl_link_alloc();
    if (change) {
        rtnl_link_set_ns_fd(change, n->netns_fd);
        rtnl_link_set_name(change, MVM_NET_WG_IF);
    }
    int rc = change_link(sk, n->wg_host_if, change);
    if (rc < 0)
        return mvm_nl_fail(err, rc, "moving into the session namespace:", n->wg_host_if);
    n->wg_host_if[0] = '\0'; /* no longer ours to delete in the host's */
    return 0;
}

/* wireguard-go's way: the tun, its UAPI socket, wireguard-go on both,
 * then the configuration. */
static int userspace(const struct mvm_net_wg *wg, struct mvm_net *n, struct mvm_error **err)
{
    cleanup_close int uapi = -1;
    if (wg->start == NULL)
        return mvm_error_set(err, EOPNOTSUPP, "this kernel has no WireGuard");
    if (make_tun(wg, n, err) < 0 || uapi_listen(wg, n, &uapi, err) < 0 ||
        wg->start(wg->arg, n->wg_tun_fd, uapi, err) < 0)
        return -1;
    /* wireguard-go holds both now. */
    close(n->wg_tun_fd);
    n->wg_tun_fd = -1;
    if (uapi_configure(wg, n, err) < 0)
        return mvm_error_wrap(err, "starting the WireGuard tunnel");
    return 0;
}

/* The kernel's way; 1 when this kernel has no WireGuard. */
static int kernel(struct nl_sock *sk, const struct mvm_net_wg *wg, struct mvm_net *n,
                  struct mvm_error **err)
{
    int rc = mvm_wg_kernel_create(sk, wg->ifname, err);
    if (rc != 0)
        return rc;
    snprintf(n->wg_host_if, sizeof n->wg_host_if, "%s", wg->ifname); /* destroy() deletes it */
    n->wg_kernel = true;
    if (mvm_wg_kernel_set(wg->ifname, wg->conf, wg->ep, err) < 0)
        return mvm_error_wrap(err, "starting the WireGuard tunnel");
    return 0;
}

static int outside(const struct mvm_net_plan *p, struct mvm_net *n, struct mvm_error **err)
{
    const struct mvm_net_wg *wg = p->wg;
    if (wg == NULL)
        return mvm_error_set(err, EINVAL, "internal: a WireGuard uplink without its config");
    struct nl_sock *sk = mvm_nl_open(err);
    if (sk == NULL)
        return -1;
    int rc = kernel(sk, wg, n, err);
    if (rc > 0)
        rc = userspace(wg, n, err);
    if (rc == 0)
        rc = move_in(sk, n, err);
    nl_socket_free(sk);
    return rc;
}

static int set_mtu(struct nl_sock *sk, unsigned mtu, struct mvm_error **err)
{
    struct rtnl_link *change = rtnl_link_alloc();
    if (change)
        rtnl_link_set_mtu(change, mtu);
    int rc = change_link(sk, MVM_NET_WG_IF, change);
    return rc < 0 ? mvm_nl_fail(err, rc, "setting the MTU of", MVM_NET_WG_IF) : 0;
}

/* The config's IPv4 addresses (the guest has no IPv6: the namespace
 * refuses it), its MTU, the default route through the tunnel. */
static int inside(const struct mvm_net_plan *p, struct nl_sock *sk, struct mvm_error **err)
{
    const struct mvm_wg_config *c = p->wg->conf;
    /* No IPv6 in the session (the rules refuse it): not even the link's
     * own solicitations into the tunnel.  Absent without IPv6 at all. */
    if (write_existing_file("/proc/sys/net/ipv6/conf/" MVM_NET_WG_IF "/disable_ipv6", "1") < 0 &&
        errno != ENOENT)
        return mvm_error_set(err, errno, "turning IPv6 off on %s", MVM_NET_WG_IF);
    int rc = set_mtu(sk, c->mtu ? c->mtu : WG_MTU, err);
    for (size_t i = 0; rc == 0 && i < c->naddr; i++) {
        if (c->addr[i].family != 4)
            continue;
        uint32_t ip;
        memcpy(&ip, c->addr[i].addr, 4);
        rc = mvm_nl_add_addr(sk, MVM_NET_WG_IF, ip, c->addr[i].len, err);
    }
    if (rc == 0)
        rc = mvm_nl_link_up(sk, MVM_NET_WG_IF, err);
    if (rc == 0)
        rc = mvm_nl_add_default_route(sk, MVM_NET_WG_IF, 0, err);
    return rc;
}

static int upstream_fn(void *arg, struct mvm_error **err)
{
    const struct mvm_net_plan *p = ((void **)arg)[0];
    struct mvm_net *n = ((void **)arg)[1];
    n->relay_up = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sa = {
        .sin_family = AF_INET, .sin_port = htons(53), .sin_addr = p->upstream[0]};
    if (n->relay_up < 0 || connect(n->relay_up, (struct sockaddr *)&sa, sizeof sa) < 0)
        return mvm_error_set(err, errno, "connecting the DNS relay to its upstream in the tunnel");
    return 0;
}

/* Inside the namespace: the relay's questions go through the tunnel. */
static int dns_upstream(const struct mvm_net_plan *p, struct mvm_net *n, struct mvm_error **err)
{
    if (p->nupstream == 0) /* the caller refuses a tunnel without resolvers */
        return mvm_error_set(err, EINVAL, "internal: a WireGuard uplink without a resolver");
    void *args[] = {(void *)p, n};
    return mvm_net_in_ns(n, upstream_fn, args, err);
}

/* Whether wireguard-go has its device up: it binds its UDP socket then,
 * so get=1 names a listen_port.  It cannot see the link's events once
 * the tun is in another namespace and asks the tun instead, once a
 * second, with a write of nothing -- which a tun with the packet
 * information header refuses with EINVAL, "up", from the start; so this
 * passes at once in practice (measured: the whole tunnel setup adds
 * ~20 ms), but a wireguard-go that behaves otherwise is waited for. */
static int device_up(const struct mvm_net *n, bool *up, struct mvm_error **err)
{
    static const char get[] = "get=1\n\n";
    size_t cap = 2 * MVM_WG_UAPI_MAX;
    char *reply = xmalloc(cap);
    int rc = uapi_call(n, get, sizeof get - 1, reply, cap, err);
    *up = rc == 0 && strstr(reply, "\nlisten_port=") != NULL;
    explicit_bzero(reply, cap);
    free(reply);
    return rc;
}

static int kernel_get_fn(void *arg, struct mvm_error **err)
{
    return mvm_wg_kernel_get(MVM_NET_WG_IF, arg, err);
}

/* The kernel's device binds its UDP socket when the link goes up in the
 * session namespace (inside()), in the namespace that made it: then it
 * names a listen_port. */
static int kernel_up(const struct mvm_net *n, bool *up, struct mvm_error **err)
{
    struct mvm_wg_genl_device d;
    int rc = mvm_net_in_ns(n, kernel_get_fn, &d, err);
    *up = rc == 0 && d.listen_port != 0;
    return rc;
}

/* Before the guest boots, so that its first packets are not dropped:
 * the device up, then (wireguard-go's) the config's ListenPort, if any;
 * the kernel's has it from the start. */
static int ready(const struct mvm_net_plan *p, struct mvm_net *n, struct mvm_error **err)
{
    bool up = false;
    for (int waited = 0; !up; waited += WG_UP_POLL_MS) {
        if (waited >= WG_UP_TIMEOUT_MS)
            return mvm_error_set(err, ETIMEDOUT, "the WireGuard tunnel did not come up");
        if ((n->wg_kernel ? kernel_up(n, &up, err) : device_up(n, &up, err)) < 0)
            return mvm_error_wrap(err, "starting the WireGuard tunnel");
        if (!up)
            usleep(WG_UP_POLL_MS * 1000);
    }
    if (n->wg_kernel || p->wg->conf->listen_port == 0)
        return 0;
    char req[64], reply[256];
    int len = snprintf(req, sizeof req, "set=1\nlisten_port=%u\n\n", p->wg->conf->listen_port);
    if (uapi_call(n, req, (size_t)len, reply, sizeof reply, err) < 0)
        return mvm_error_wrap(err, "setting the tunnel's ListenPort %u", p->wg->conf->listen_port);
    return 0;
}

static void destroy(struct mvm_net *n)
{
    if (n->wg_tun_fd >= 0) {
        close(n->wg_tun_fd);
        n->wg_tun_fd = -1;
    }
    /* The kernel's link until it moved (then it goes with the
     * namespace); a tun goes with its last fd, but in case. */
    if (n->wg_host_if[0]) {
        mvm_nl_link_delete(n->wg_host_if);
        n->wg_host_if[0] = '\0';
    }
    if (n->wg_sock[0]) {
        unlink(n->wg_sock);
        n->wg_sock[0] = '\0';
    }
}

const struct mvm_net_uplink mvm_net_uplink_wg = {
    .name = "the WireGuard tunnel",
    .ifname = MVM_NET_WG_IF,
    .outside = outside,
    .inside = inside,
    .dns_upstream = dns_upstream,
    .ready = ready,
    .destroy = destroy,
};

/* Whether run_dir holds a session directory whose name starts with the
 * id part of an interface name. */
static bool session_alive(const char *run_dir, const char *id_part)
{
    DIR *d = opendir(run_dir);
    if (d == NULL)
        return true; /* cannot tell: keep it */
    bool found = false;
    for (struct dirent *e; !found && (e = readdir(d)) != NULL;)
        found = e->d_name[0] != '.' && str_has_prefix(e->d_name, id_part);
    closedir(d);
    return found;
}

/* The id part of a name WG_IF_PREFIX + id + suffix, into id (16 bytes);
 * false for a name not of that form. */
static bool id_of(const char *name, size_t suffix, char id[16])
{
    size_t len = strlen(name);
    if (!str_has_prefix(name, WG_IF_PREFIX) || len <= 5 + suffix || len > 5 + 10 + suffix)
        return false;
    snprintf(id, 16, "%.*s", (int)(len - 5 - suffix), name + 5);
    return true;
}

/* The kernel's links of killed sessions, made and not yet moved: a tun
 * goes with wireguard-go, a kernel link stays. */
static int sweep_links(const char *run_dir)
{
    struct nl_sock *sk = mvm_nl_open(NULL);
    struct nl_cache *cache = NULL;
    if (sk == NULL || rtnl_link_alloc_cache(sk, AF_UNSPEC, &cache) < 0) {
        if (sk)
            nl_socket_free(sk);
        return 0;
    }
    int n = 0;
    for (struct nl_object *o = nl_cache_get_first(cache); o; o = nl_cache_get_next(o)) {
        struct rtnl_link *link = (struct rtnl_link *)o;
        const char *name = rtnl_link_get_name(link);
        const char *kind = rtnl_link_get_type(link);
        char id[16];
        if (name == NULL || kind == NULL || strcmp(kind, "wireguard") != 0 || !id_of(name, 0, id) ||
            session_alive(run_dir, id))
            continue;
        n += rtnl_link_delete(sk, link) == 0;
    }
    nl_cache_free(cache);
    nl_socket_free(sk);
    return n;
}

int mvm_net_wg_sweep(const char *run_dir)
{
    int n = sweep_links(run_dir);
    DIR *d = opendir(WG_SOCK_DIR);
    if (d == NULL)
        return n;
    for (struct dirent *e; (e = readdir(d)) != NULL;) {
        char id[16];
        size_t len = strlen(e->d_name);
        if (len < 5 || strcmp(e->d_name + len - 5, ".sock") != 0 || !id_of(e->d_name, 5, id) ||
            session_alive(run_dir, id))
            continue;
        if (unlinkat(dirfd(d), e->d_name, 0) == 0)
            n++;
    }
    closedir(d);
    return n;
}
