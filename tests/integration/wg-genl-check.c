/* wg-genl-check: drives net/'s WireGuard uplink (uplink-wg.c's steps,
 * wggenl.c underneath) on a wg-quick file, the way a session does, but
 * into a namespace the caller names -- for wg-kernel.sh, which runs it
 * as root in a guest whose kernel has WireGuard.  Endpoints must be
 * numeric (a session resolves names in session/wireguard.c).
 *
 *   wg-genl-check up CONF NETNS IFNAME
 *       the link IFNAME made in this namespace with the kernel's
 *       WireGuard, configured from CONF, moved into NETNS (a path, e.g.
 *       /run/netns/A) as wg0, addressed, up, with the default route;
 *       waits until it is ready.  Prints "kernel", or exits 77 when this
 *       kernel has no WireGuard (the uplink would take wireguard-go).
 *   wg-genl-check fail-move CONF IFNAME
 *   wg-genl-check fail-set CONF IFNAME
 *       the same, failing on purpose after the link is made (a
 *       "namespace" that is /dev/null; the Endpoints left unresolved),
 *       then the uplink's teardown: prints the error, and "no IFNAME
 *       left" or exits 1 when the link is still in this namespace.
 *   wg-genl-check sweep RUN_DIR
 *       mvm_net_wg_sweep(RUN_DIR), as a session start or `mvm cleanup`
 *       runs it: prints how many leftovers it removed.
 *
 * Exit 0 done, 77 skip, 1 failure, 2 usage. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "net-int.h"
#include "util.h"
#include "wgconf.h"

struct check {
    struct mvm_wg_config conf;
    struct mvm_wg_ip ep[MVM_WG_MAX_PEERS];
    struct mvm_net_wg wg;
    struct mvm_net_plan plan;
    struct mvm_net net;
};

static int load(struct check *c, const char *path, const char *ifname, struct mvm_error **err)
{
    size_t len = 0;
    char *text = read_file(path, 64 * 1024, &len);
    if (text == NULL)
        return mvm_error_set(err, errno, "reading %s", path);
    int rc = mvm_wg_parse(text, len, path, &c->conf, err);
    explicit_bzero(text, len);
    free(text);
    for (size_t i = 0; rc == 0 && i < c->conf.npeer; i++) {
        const char *host = c->conf.peer[i].endpoint_host;
        if (host[0] == '\0')
            continue;
        if (inet_pton(AF_INET, host, c->ep[i].addr) == 1)
            c->ep[i].family = 4;
        else if (inet_pton(AF_INET6, host, c->ep[i].addr) == 1)
            c->ep[i].family = 6;
        else
            rc = mvm_error_set(err, 0, "%s: Endpoint %s is not numeric", path, host);
    }
    c->wg.conf = &c->conf;
    c->wg.ep = c->ep;
    snprintf(c->wg.ifname, sizeof c->wg.ifname, "%s", ifname);
    c->plan.uplink = MVM_NET_UPLINK_WG;
    c->plan.wg = &c->wg;
    c->net = (struct mvm_net)MVM_NET_INIT;
    c->net.uplink = &mvm_net_uplink_wg;
    return rc;
}

static int inside_fn(void *arg, struct mvm_error **err)
{
    const struct mvm_net_plan *p = arg;
    struct nl_sock *sk = mvm_nl_open(err);
    if (sk == NULL)
        return -1;
    int rc = mvm_nl_link_up(sk, "lo", err);
    if (rc == 0)
        rc = mvm_net_uplink_wg.inside(p, sk, err);
    nl_socket_free(sk);
    return rc;
}

/* Whether outside() failed for want of the kernel's WireGuard (it
 * would have taken wireguard-go, which this program does not start). */
static bool no_kernel(const struct check *c, const struct mvm_error *err)
{
    return !c->net.wg_kernel && err && err->errnum == EOPNOTSUPP;
}

static int up(struct check *c, struct mvm_error **err)
{
    if (mvm_net_uplink_wg.outside(&c->plan, &c->net, err) < 0)
        return no_kernel(c, *err) ? 77 : -1;
    if (mvm_net_in_ns(&c->net, inside_fn, &c->plan, err) < 0 ||
        mvm_net_uplink_wg.ready(&c->plan, &c->net, err) < 0)
        return -1;
    printf("kernel\n");
    return 0;
}

/* outside() must fail, after making the link, and destroy() leave
 * nothing here. */
static int fail(struct check *c, bool move, struct mvm_error **err)
{
    if (move)
        c->net.netns_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    else
        c->wg.ep = NULL;
    int rc = mvm_net_uplink_wg.outside(&c->plan, &c->net, err);
    if (rc == 0)
        return mvm_error_set(err, 0, "the uplink did not fail");
    if (no_kernel(c, *err))
        return 77;
    printf("failed as meant: %s\n", (*err)->msg);
    mvm_error_free(*err);
    *err = NULL;
    mvm_net_uplink_wg.destroy(&c->net);
    struct nl_sock *sk = mvm_nl_open(err);
    if (sk == NULL)
        return -1;
    int left = mvm_nl_ifindex(sk, c->wg.ifname);
    nl_socket_free(sk);
    if (left)
        return mvm_error_set(err, 0, "%s is still in this namespace after the teardown",
                             c->wg.ifname);
    printf("no %s left\n", c->wg.ifname);
    return 0;
}

int main(int argc, char **argv)
{
    const char *mode = argc > 1 ? argv[1] : "";
    bool is_up = strcmp(mode, "up") == 0;
    if (strcmp(mode, "sweep") == 0 && argc == 3) {
        printf("%d\n", mvm_net_wg_sweep(argv[2]));
        return 0;
    }
    if (!(is_up && argc == 5) &&
        !((strcmp(mode, "fail-move") == 0 || strcmp(mode, "fail-set") == 0) && argc == 4)) {
        fprintf(stderr, "usage: wg-genl-check up CONF NETNS IFNAME | fail-move|fail-set CONF "
                        "IFNAME | sweep RUN_DIR\n");
        return 2;
    }
    struct mvm_error *err = NULL;
    struct check *c = xcalloc(1, sizeof *c);
    int rc = load(c, argv[2], argv[argc - 1], &err);
    if (rc == 0 && is_up) {
        c->net.netns_fd = open(argv[3], O_RDONLY | O_CLOEXEC);
        rc = c->net.netns_fd < 0 ? mvm_error_set(&err, errno, "opening %s", argv[3]) : up(c, &err);
    } else if (rc == 0) {
        rc = fail(c, strcmp(mode, "fail-move") == 0, &err);
    }
    if (rc == 77)
        printf("skip: %s\n", err ? err->msg : "this kernel has no WireGuard");
    else if (rc < 0)
        fprintf(stderr, "wg-genl-check: %s\n", err->msg);
    if (rc != 0 && c->net.uplink)
        mvm_net_uplink_wg.destroy(&c->net);
    mvm_error_free(err);
    if (c->net.netns_fd >= 0)
        close(c->net.netns_fd);
    explicit_bzero(c, sizeof *c);
    free(c);
    return rc == 77 ? 77 : rc < 0 ? 1 : 0;
}
