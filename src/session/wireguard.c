/* --wireguard FILE: the tunnel's config read in prepare, with the
 * invoking user's rights and its mode checked (net/wgconf.c parses it),
 * each peer's Endpoint resolved once on the host, the DNS decided; then
 * net/uplink-wg.c configures the kernel's WireGuard, or, where the
 * kernel has none, asks for wireguard-go, started here jailed on the tun
 * and the UAPI socket net/ made.  The config holds the private key: it
 * is wiped at the end, and goes to the tunnel only in net/'s requests
 * (netlink, or wireguard-go's UAPI socket). */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "session-int.h"
#include "wgconf.h"

#define WG_CONF_MAX (64 * 1024)

/* Below /usr, which every jail has. */
const char *session_wireguard_go(void)
{
    static const char *const paths[] = {"/usr/bin/wireguard-go", "/usr/sbin/wireguard-go",
                                        "/usr/local/bin/wireguard-go"};
    for (size_t i = 0; i < ARRAY_SIZE(paths); i++)
        if (access(paths[i], X_OK) == 0)
            return paths[i];
    return NULL;
}

/* A file name in a modules.dep or modules.builtin text. */
static bool lists_module(const char *dir, const char *list, const char *file)
{
    cleanup_free char *path = xasprintf("%s/%s", dir, list);
    cleanup_free char *text = read_file(path, 16u << 20, NULL);
    return text && strstr(text, file) != NULL;
}

const char *session_wireguard_module(void)
{
    struct utsname u;
    if (access("/sys/module/wireguard", F_OK) == 0)
        return "loaded";
    if (uname(&u) < 0)
        return NULL;
    cleanup_free char *dir = xasprintf("/lib/modules/%s", u.release);
    if (lists_module(dir, "modules.builtin", "/wireguard.ko"))
        return "loaded";
    return lists_module(dir, "modules.dep", "/wireguard.ko") ? "available" : NULL;
}

struct session_wg {
    struct mvm_wg_config conf;
    struct mvm_wg_ip ep[MVM_WG_MAX_PEERS];
    struct mvm_net_wg net;
};

static int read_conf(struct session *s, const char *path, struct mvm_wg_config *c,
                     struct mvm_error **err)
{
    struct stat st;
    size_t len = 0;
    char *text = read_regular_as(s->user.uid, s->user.gid, path, WG_CONF_MAX, true, &st, &len);
    int rc = 0;
    if (text == NULL && errno == EINVAL)
        rc = mvm_error_set(err, 0, "%s is not a regular file of at most 64 KiB", path);
    else if (text == NULL && errno == ELOOP)
        rc = mvm_error_set(err, 0, "%s is a symbolic link: name the file itself", path);
    else if (text == NULL)
        rc = mvm_error_set(err, errno, "reading %s", path);
    if (rc == 0)
        rc = mvm_wg_check_mode(path, st.st_mode & 07777, err);
    if (rc == 0)
        rc = mvm_wg_parse(text, len, path, c, err);
    if (text)
        explicit_bzero(text, len);
    free(text);
    return rc < 0 ? -1 : 0;
}

/* Once, on the host, before boot: the tunnel's UDP leaves from here. */
static int resolve_endpoints(const char *path, struct session_wg *w, struct mvm_error **err)
{
    for (size_t i = 0; i < w->conf.npeer; i++) {
        const struct mvm_wg_peer *peer = &w->conf.peer[i];
        if (peer->endpoint_host[0] == '\0')
            continue;
        struct addrinfo hints = {.ai_socktype = SOCK_DGRAM}, *res = NULL;
        int rc = getaddrinfo(peer->endpoint_host, NULL, &hints, &res);
        if (rc != 0)
            return mvm_error_set(err, 0, "%s:%u: Endpoint %s: %s", path, peer->line,
                                 peer->endpoint_host, gai_strerror(rc));
        struct mvm_wg_ip *ep = &w->ep[i];
        if (res->ai_family == AF_INET) {
            ep->family = 4;
            memcpy(ep->addr, &((struct sockaddr_in *)res->ai_addr)->sin_addr, 4);
        } else if (res->ai_family == AF_INET6) {
            ep->family = 6;
            memcpy(ep->addr, &((struct sockaddr_in6 *)res->ai_addr)->sin6_addr, 16);
        }
        freeaddrinfo(res);
    }
    return 0;
}

/* The relay's resolvers: the config's DNS line (IPv4), else --dns; the
 * host's are never asked.  And at least one IPv4 address to masquerade
 * the guest behind. */
static int check_dns_and_addr(const struct session *s, const char *path,
                              const struct mvm_wg_config *c, struct mvm_error **err)
{
    size_t v4 = 0, a4 = 0;
    for (size_t i = 0; i < c->ndns; i++)
        v4 += c->dns[i].family == 4;
    for (size_t i = 0; i < c->naddr; i++)
        a4 += c->addr[i].family == 4;
    if (a4 == 0)
        return mvm_error_set(err, 0, "%s: no IPv4 Address (the guest has IPv4 only)", path);
    if (v4 == 0 && s->o->ndns == 0)
        return mvm_error_set(err, 0,
                             "%s: no IPv4 DNS line: give --dns ADDR (asked through the tunnel; "
                             "the host's resolvers never are)",
                             path);
    return 0;
}

int session_plan_wireguard(struct session *s, struct mvm_error **err)
{
    const char *path = s->o->wireguard;
    if (path == NULL)
        return 0;
    if (s->o->net == MVM_NETOPT_NONE)
        return mvm_error_set(err, 0, "--net none has no network: --wireguard needs another --net");
    /* No veth, so no way to the host: the hole would lead into the tunnel. */
    if (s->o->nallow_host > 0)
        return mvm_error_set(err, 0,
                             "--allow-host needs the host's uplink: with --wireguard the tunnel "
                             "is the only way out");
    if (session_wireguard_go() == NULL && session_wireguard_module() == NULL)
        return mvm_error_set(err, 0,
                             "--wireguard needs the kernel's WireGuard module or wireguard-go: "
                             "apt-get install wireguard-go (mvm doctor checks it)");
    struct session_wg *w = xcalloc(1, sizeof *w);
    s->wg = w;
    if (read_conf(s, path, &w->conf, err) < 0 || check_dns_and_addr(s, path, &w->conf, err) < 0 ||
        resolve_endpoints(path, w, err) < 0)
        return -1;
    w->net.conf = &w->conf;
    w->net.ep = w->ep;
    return 0;
}

/* The plan's uplink, its resolvers: before mvm_net_plan_host, which
 * would take the host's otherwise. */
void session_wireguard_plan(struct session *s, struct mvm_net_plan *p, uid_t uid)
{
    struct session_wg *w = s->wg;
    p->uplink = MVM_NET_UPLINK_WG;
    p->wg = &w->net;
    /* net/uplink-wg.c's sweep finds the session by this name. */
    snprintf(w->net.ifname, sizeof w->net.ifname, "mvmwg%.10s", s->id);
    w->net.uid = uid;
    w->net.start = session_wireguard_start;
    w->net.arg = s;
    size_t n = 0;
    for (size_t i = 0; i < w->conf.ndns && n < MVM_NET_MAX_DNS; i++)
        if (w->conf.dns[i].family == 4)
            memcpy(&p->upstream[n++], w->conf.dns[i].addr, 4);
    if (n > 0)
        p->nupstream = n;
}

static void undo_wg(void *arg)
{
    mvm_child_kill(arg);
}

/* Where the kernel has no WireGuard: wireguard-go in the host's network
 * namespace (its UDP socket), with
 * the tun and the UAPI listener net/ made, in the jail but for
 * CAP_NET_ADMIN, which it needs to set its tun's MTU, and under mvm's
 * deny-list filter without its socket rules (it makes UDP and netlink
 * sockets; Go's runtime rules out an allowlist). */
int session_wireguard_start(void *arg, int tun_fd, int uapi_fd, struct mvm_error **err)
{
    struct session *s = arg;
    struct session_wg *w = s->wg;
    if (session_wireguard_go() == NULL)
        return mvm_error_set(err, 0,
                             "this kernel has no WireGuard, and wireguard-go is not installed: "
                             "apt-get install wireguard-go");
    if (s->wg_filter == NULL && (s->wg_filter = mvm_jail_filter_new_net(err)) == NULL)
        return -1;
    cleanup_close int host_ns = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
    if (host_ns < 0)
        return mvm_error_set(err, errno, "holding the host's network namespace");
    char tun_env[32], uapi_env[32];
    snprintf(tun_env, sizeof tun_env, "WG_TUN_FD=%d", tun_fd);
    snprintf(uapi_env, sizeof uapi_env, "WG_UAPI_FD=%d", uapi_fd);
    char *const envp[] = {"PATH=/usr/bin:/bin",      tun_env,           uapi_env,
                          "WG_PROCESS_FOREGROUND=1", "LOG_LEVEL=error", NULL};
    char *const argv[] = {"wireguard-go", "-f", w->net.ifname, NULL};
    /* It watches its socket's path, and exits when it goes. */
    const struct mvm_jail_bind binds[] = {{"/run/wireguard", "/var/run/wireguard"}};
    int keep[] = {tun_fd, uapi_fd};
    struct mvm_jail j = {
        .name = "wireguard-go",
        .path = session_wireguard_go(),
        .argv = argv,
        .envp = envp,
        .stdin_fd = -1,
        .stdout_fd = -1,
        .stderr_fd = -1,
        .keep = keep,
        .nkeep = 2,
        .nofile = 256,
        .layers = MVM_JAIL_ALL & ~(unsigned)MVM_JAIL_CGROUP,
        .binds = binds,
        .nbinds = ARRAY_SIZE(binds),
        .netns_fd = host_ns,
        .uid = w->net.uid,
        .gid = (gid_t)w->net.uid,
        .net_admin = true,
        .seccomp = s->wg_filter,
    };
    mvm_undo_push(&s->undo, undo_wg, &s->wg_proc, "wireguard-go");
    return mvm_jail_start(&j, &s->wg_proc, err);
}

void session_wireguard_free(struct session *s)
{
    mvm_jail_filter_free(s->wg_filter);
    s->wg_filter = NULL;
    if (s->wg == NULL)
        return;
    explicit_bzero(s->wg, sizeof *s->wg);
    free(s->wg);
    s->wg = NULL;
}
