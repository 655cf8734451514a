/* The kernel's WireGuard: its link made with rtnetlink, its device set
 * and read over the generic netlink family.  wggenl-msg.c builds and
 * reads the messages; this file sends them.  The answers to a get hold
 * the private key, so they are read into a buffer of this file's own,
 * not libnl's, and wiped. */
#include <errno.h>
#include <linux/netlink.h>
#include <linux/wireguard.h>
#include <netlink/genl/ctrl.h>
#include <netlink/genl/genl.h>
#include <netlink/route/link.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include "net-int.h"
#include "util.h"
#include "wggenl.h"

/* Dump answers come in messages of at most 32 KiB. */
#define WG_ANSWER_MAX    (64 * 1024)
#define WG_ANSWER_WAIT_S 5

int mvm_wg_kernel_create(struct nl_sock *rt, const char *ifname, struct mvm_error **err)
{
    struct rtnl_link *link = rtnl_link_alloc();
    int rc = link ? rtnl_link_set_type(link, "wireguard") : -NLE_NOMEM;
    if (rc == 0) {
        rtnl_link_set_name(link, ifname);
        /* EXCL: never a link of someone else's, configured by mistake. */
        rc = rtnl_link_add(rt, link, NLM_F_CREATE | NLM_F_EXCL);
    }
    if (link)
        rtnl_link_put(link);
    /* EOPNOTSUPP is the kernel's "unknown link kind", after it has tried
     * to load the module. */
    if (rc == -NLE_OPNOTSUPP || rc == -NLE_NODEV)
        return 1;
    return rc < 0 ? mvm_nl_fail(err, rc, "creating the WireGuard interface", ifname) : 0;
}

/* A generic netlink socket and the WireGuard family's id. */
static struct nl_sock *genl_open(const char *ifname, int *family, struct mvm_error **err)
{
    struct nl_sock *sk = nl_socket_alloc();
    int rc = sk ? genl_connect(sk) : -NLE_NOMEM;
    if (rc == 0) {
        /* An error answer echoes only the request's header, not its keys. */
        int one = 1;
        if (setsockopt(nl_socket_get_fd(sk), SOL_NETLINK, NETLINK_CAP_ACK, &one, sizeof one) < 0) {
            mvm_error_set(err, errno, "netlink: NETLINK_CAP_ACK");
            nl_socket_free(sk);
            return NULL;
        }
        rc = genl_ctrl_resolve(sk, WG_GENL_NAME);
    }
    if (rc < 0) {
        if (sk)
            nl_socket_free(sk);
        mvm_nl_fail(err, rc, "the kernel's WireGuard family, for", ifname);
        return NULL;
    }
    *family = rc;
    return sk;
}

static void wipe_free(struct nl_msg *msg)
{
    if (msg == NULL)
        return;
    explicit_bzero(nlmsg_hdr(msg), nlmsg_get_max_size(msg));
    nlmsg_free(msg);
}

int mvm_wg_kernel_set(const char *ifname, const struct mvm_wg_config *c,
                      const struct mvm_wg_ip ep[], struct mvm_error **err)
{
    int family = 0;
    struct nl_sock *sk = genl_open(ifname, &family, err);
    if (sk == NULL)
        return -1;
    struct nl_msg *msg = nlmsg_alloc_size(MVM_WG_GENL_MSG_MAX);
    int rc = msg ? mvm_wg_genl_set_msg(msg, family, ifname, c, ep, err)
                 : mvm_error_set(err, ENOMEM, "the WireGuard request");
    if (rc == 0) {
        int nrc = nl_send_auto(sk, msg);
        if (nrc >= 0)
            nrc = nl_wait_for_ack(sk);
        if (nrc < 0)
            rc = mvm_nl_fail(err, nrc, "configuring the WireGuard interface", ifname);
    }
    wipe_free(msg);
    nl_socket_free(sk);
    return rc;
}

/* One datagram of the answer: its messages into d; *done at NLMSG_DONE. */
static int read_messages(void *buf, int len, int family, const char *ifname,
                         struct mvm_wg_genl_device *d, bool *done, struct mvm_error **err)
{
    for (struct nlmsghdr *h = buf; nlmsg_ok(h, len); h = nlmsg_next(h, &len)) {
        if (h->nlmsg_type == NLMSG_DONE) {
            *done = true;
            return 0;
        }
        if (h->nlmsg_type == NLMSG_ERROR) {
            const struct nlmsgerr *e = nlmsg_data(h);
            if (h->nlmsg_len < (unsigned)nlmsg_size(sizeof *e))
                return mvm_error_set(err, 0, "a short netlink error answer for %s", ifname);
            if (e->error == 0) /* an ack: the dump's messages come apart */
                continue;
            return mvm_error_set(err, -e->error, "asking the WireGuard interface %s", ifname);
        }
        if (h->nlmsg_type != family)
            continue;
        struct mvm_wg_genl_device one;
        if (mvm_wg_genl_parse_device(h, &one, err) < 0)
            return -1;
        if (one.listen_port) /* the device's own: in the first message */
            d->listen_port = one.listen_port;
        d->npeer += one.npeer;
    }
    return 0;
}

static int read_answer(struct nl_sock *sk, int family, const char *ifname,
                       struct mvm_wg_genl_device *d, struct mvm_error **err)
{
    int fd = nl_socket_get_fd(sk);
    struct timeval tv = {.tv_sec = WG_ANSWER_WAIT_S};
    if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) < 0)
        return mvm_error_set(err, errno, "netlink: SO_RCVTIMEO");
    char *buf = xmalloc(WG_ANSWER_MAX);
    bool done = false;
    int rc = 0;
    while (rc == 0 && !done) {
        struct iovec iov = {.iov_base = buf, .iov_len = WG_ANSWER_MAX};
        struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
        ssize_t got = recvmsg(fd, &mh, 0);
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0 || (mh.msg_flags & MSG_TRUNC))
            rc = mvm_error_set(err, got < 0 ? errno : EMSGSIZE,
                               "reading the WireGuard answer for %s", ifname);
        else
            rc = read_messages(buf, (int)got, family, ifname, d, &done, err);
    }
    explicit_bzero(buf, WG_ANSWER_MAX);
    free(buf);
    return rc;
}

int mvm_wg_kernel_get(const char *ifname, struct mvm_wg_genl_device *d, struct mvm_error **err)
{
    *d = (struct mvm_wg_genl_device){0};
    int family = 0;
    struct nl_sock *sk = genl_open(ifname, &family, err);
    if (sk == NULL)
        return -1;
    struct nl_msg *msg = nlmsg_alloc();
    int rc = msg ? mvm_wg_genl_get_msg(msg, family, ifname) : -NLE_NOMEM;
    if (rc == 0)
        rc = nl_send_auto(sk, msg);
    if (rc < 0)
        rc = mvm_nl_fail(err, rc, "asking the WireGuard interface", ifname);
    else
        rc = read_answer(sk, family, ifname, d, err);
    wipe_free(msg);
    nl_socket_free(sk);
    return rc;
}

int mvm_wg_kernel_probe(struct mvm_error **err)
{
    pid_t pid = fork();
    if (pid < 0)
        return mvm_error_set(err, errno, "WireGuard probe: fork");
    if (pid == 0) {
        alarm(10); /* a wedged netlink socket must not hang the caller */
        if (unshare(CLONE_NEWNET) < 0)
            _exit(3);
        struct nl_sock *sk = mvm_nl_open(NULL);
        int rc = sk ? mvm_wg_kernel_create(sk, "mvmwgprobe", NULL) : -1;
        _exit(rc == 0 ? 0 : rc == 1 ? 1 : 3);
    }
    int st = 0;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;
    if (WIFEXITED(st) && WEXITSTATUS(st) <= 1)
        return WEXITSTATUS(st) == 0;
    return mvm_error_set(err, 0, "the WireGuard probe could not make a link (needs root)");
}
