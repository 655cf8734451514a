/* --publish: the host side's listening sockets, opened by mvm in the
 * host's network namespace before anything else of the network exists,
 * so that a port in use fails the session with nothing made yet.  The
 * jailed port relay (portrelay.c) gets them and does the rest. */
#include <errno.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "net-int.h"
#include "util.h"

static int listen_one(const struct mvm_net_publish *p, struct mvm_error **err)
{
    char ip[16];
    mvm_ip4_str(p->host_ip, ip);
    bool tcp = p->proto == IPPROTO_TCP;
    int fd = socket(AF_INET, (tcp ? SOCK_STREAM : SOCK_DGRAM) | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return mvm_error_set(err, errno, "--publish %u: socket", p->host_port);
    /* TCP: a port whose last connections linger in TIME_WAIT is free.
     * Never for UDP, where it would let two sessions bind one port. */
    int one = 1;
    if (tcp)
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(p->host_port)};
    sa.sin_addr.s_addr = p->host_ip;
    if (bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0 || (tcp && listen(fd, 128) < 0)) {
        int e = errno;
        close(fd);
        if (e == EADDRINUSE)
            return mvm_error_set(err, 0,
                                 "--publish: %s:%u/%s is in use (another session or program "
                                 "has it); pick another host port",
                                 ip, p->host_port, mvm_net_proto_name(p->proto));
        if (e == EADDRNOTAVAIL)
            return mvm_error_set(err, 0, "--publish: %s is not an address of this host", ip);
        return mvm_error_set(err, e, "--publish: listening on %s:%u/%s", ip, p->host_port,
                             mvm_net_proto_name(p->proto));
    }
    return fd;
}

int mvm_net_publish_open(const struct mvm_net_plan *p, struct mvm_net *n, struct mvm_error **err)
{
    const struct mvm_net_policy *pol = p->policy;
    for (size_t i = 0; pol && i < pol->npublish; i++) {
        int fd = listen_one(&pol->publish[i], err);
        if (fd < 0)
            return -1;
        n->publish_fds[n->npublish++] = fd;
    }
    return 0;
}

void mvm_net_publish_close(struct mvm_net *n)
{
    for (size_t i = 0; i < n->npublish; i++)
        if (n->publish_fds[i] >= 0)
            close(n->publish_fds[i]);
    n->npublish = 0;
}
