/* The --publish relay's loop: host-side listeners -> the guest's ports.
 * One fixed table of connections and one of UDP flows, one poll set laid
 * out in the same order: listeners, two entries per connection, one per
 * flow; an entry with nothing to wait for is left out (fd -1), so a peer
 * that hung up cannot make the loop spin. */
#include "portrelay.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "util.h"

#define CONN_BUF  (16 * 1024)
#define DGRAM_MAX 65536
#define NPOLL     (MVM_NET_MAX_PUBLISH + 2 * MVM_PORT_RELAY_MAX_CONN + MVM_PORT_RELAY_MAX_FLOWS)

/* One direction's end: what was read from fd waits in buf for the other
 * side's fd. */
struct side {
    int fd;
    size_t len, off;
    bool eof;  /* fd said EOF: once buf is empty, the other side is shut */
    bool shut; /* shutdown(fd, SHUT_WR) done: nothing more goes to fd */
    uint8_t buf[CONN_BUF];
};

struct conn {
    bool used, connecting;
    struct side s[2]; /* 0: the host's client, 1: the guest */
};

struct flow {
    bool used;
    size_t port; /* index into the config's ports */
    int fd;      /* connected to the guest's port */
    struct sockaddr_in peer;
    uint64_t last_ns;
};

struct relay {
    const struct mvm_port_relay_config *cfg;
    uint64_t idle_ns;
    size_t nconns;
    struct conn conns[MVM_PORT_RELAY_MAX_CONN];
    struct flow flows[MVM_PORT_RELAY_MAX_FLOWS];
    struct pollfd pfd[NPOLL];
    uint8_t dgram[DGRAM_MAX];
};

static void log_errno(const struct relay *r, const char *what)
{
    if (!r->cfg->quiet)
        dprintf(STDERR_FILENO, "mvm: port relay: %s: %s\n", what, strerror(errno));
}

static struct sockaddr_in guest_addr(const struct relay *r, size_t port)
{
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_port = htons(r->cfg->ports[port].guest_port)};
    sa.sin_addr.s_addr = r->cfg->guest_ip;
    return sa;
}

/* A reset rather than an orderly close, so the peer knows the other end
 * failed instead of taking a cut-off stream for a whole one. */
static void reset_close(int fd)
{
    struct linger l = {.l_onoff = 1, .l_linger = 0};
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
    close(fd);
}

static void conn_end(struct relay *r, struct conn *c, bool reset)
{
    for (int i = 0; i < 2; i++) {
        if (reset)
            reset_close(c->s[i].fd);
        else
            close(c->s[i].fd);
    }
    c->used = false;
    r->nconns--;
}

static void on_accept(struct relay *r, size_t port)
{
    while (r->nconns < MVM_PORT_RELAY_MAX_CONN) {
        int cfd = accept4(r->cfg->ports[port].fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (cfd < 0) {
            if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
                log_errno(r, "accepting a connection");
            return;
        }
        /* Made in the session's namespace: the only way it leads is the
         * guest. */
        int gfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        struct sockaddr_in to = guest_addr(r, port);
        if (gfd < 0 ||
            (connect(gfd, (struct sockaddr *)&to, sizeof to) < 0 && errno != EINPROGRESS)) {
            if (gfd < 0)
                log_errno(r, "a socket to the guest");
            else
                close(gfd);
            reset_close(cfd);
            continue;
        }
        struct conn *c = NULL;
        for (size_t i = 0; c == NULL; i++)
            if (!r->conns[i].used)
                c = &r->conns[i];
        memset(c, 0, sizeof *c);
        c->used = c->connecting = true;
        c->s[0].fd = cfd;
        c->s[1].fd = gfd;
        r->nconns++;
    }
}

static short side_events(const struct conn *c, int i)
{
    if (c->connecting)
        return i == 1 ? POLLOUT : 0;
    short ev = 0;
    if (!c->s[i].eof && c->s[i].len == 0)
        ev |= POLLIN;
    if (c->s[1 - i].off < c->s[1 - i].len)
        ev |= POLLOUT;
    return ev;
}

/* Moves what can move on side i; false when the connection failed. */
static bool side_io(struct conn *c, int i, short ev)
{
    struct side *me = &c->s[i], *other = &c->s[1 - i];
    if (ev & POLLIN) {
        ssize_t n = read(me->fd, me->buf, sizeof me->buf);
        if (n > 0) {
            me->len = (size_t)n;
            me->off = 0;
        } else if (n == 0) {
            me->eof = true;
        } else if (errno != EAGAIN && errno != EINTR) {
            return false;
        }
    }
    if (ev & POLLOUT) {
        ssize_t n = send(me->fd, other->buf + other->off, other->len - other->off, MSG_NOSIGNAL);
        if (n >= 0) {
            other->off += (size_t)n;
            if (other->off == other->len)
                other->off = other->len = 0;
        } else if (errno != EAGAIN && errno != EINTR) {
            return false;
        }
    }
    return true;
}

static void on_conn(struct relay *r, struct conn *c, const struct pollfd *pfd)
{
    if (c->connecting) {
        if (pfd[1].revents == 0)
            return;
        int e = 0;
        socklen_t len = sizeof e;
        if (getsockopt(c->s[1].fd, SOL_SOCKET, SO_ERROR, &e, &len) < 0 || e != 0) {
            conn_end(r, c, true); /* the guest refused: the client hears a reset */
            return;
        }
        c->connecting = false;
        return;
    }
    for (int i = 0; i < 2; i++) {
        /* An error or hang-up shows in the operation it was asked for. */
        short ev = pfd[i].revents ? pfd[i].events : 0;
        if (!side_io(c, i, ev)) {
            conn_end(r, c, true);
            return;
        }
    }
    /* A direction whose data is all delivered after EOF is shut. */
    for (int i = 0; i < 2; i++) {
        if (c->s[i].eof && c->s[i].len == 0 && !c->s[1 - i].shut) {
            shutdown(c->s[1 - i].fd, SHUT_WR);
            c->s[1 - i].shut = true;
        }
    }
    if (c->s[0].shut && c->s[1].shut)
        conn_end(r, c, false);
}

/* ---- UDP ------------------------------------------------------------------ */

static void flow_end(struct flow *f)
{
    close(f->fd);
    f->used = false;
}

static struct flow *flow_find(struct relay *r, size_t port, const struct sockaddr_in *peer)
{
    for (size_t i = 0; i < ARRAY_SIZE(r->flows); i++) {
        struct flow *f = &r->flows[i];
        if (f->used && f->port == port && f->peer.sin_addr.s_addr == peer->sin_addr.s_addr &&
            f->peer.sin_port == peer->sin_port)
            return f;
    }
    return NULL;
}

/* A free entry, or the least recently used one, given up. */
static struct flow *flow_slot(struct relay *r)
{
    struct flow *lru = &r->flows[0];
    for (size_t i = 0; i < ARRAY_SIZE(r->flows); i++) {
        if (!r->flows[i].used)
            return &r->flows[i];
        if (r->flows[i].last_ns < lru->last_ns)
            lru = &r->flows[i];
    }
    flow_end(lru);
    return lru;
}

static struct flow *flow_new(struct relay *r, size_t port, const struct sockaddr_in *peer)
{
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    struct sockaddr_in to = guest_addr(r, port);
    if (fd < 0 || connect(fd, (struct sockaddr *)&to, sizeof to) < 0) {
        log_errno(r, "a UDP socket to the guest");
        if (fd >= 0)
            close(fd);
        return NULL;
    }
    struct flow *f = flow_slot(r);
    *f = (struct flow){.used = true, .port = port, .fd = fd, .peer = *peer};
    return f;
}

static void on_dgram(struct relay *r, size_t port)
{
    struct sockaddr_in peer;
    socklen_t plen = sizeof peer;
    ssize_t n = recvfrom(r->cfg->ports[port].fd, r->dgram, sizeof r->dgram,
                         MSG_DONTWAIT | MSG_TRUNC, (struct sockaddr *)&peer, &plen);
    if (n < 0 || (size_t)n > sizeof r->dgram || plen != sizeof peer || peer.sin_family != AF_INET)
        return;
    struct flow *f = flow_find(r, port, &peer);
    if (f == NULL && (f = flow_new(r, port, &peer)) == NULL)
        return;
    f->last_ns = now_ns();
    send(f->fd, r->dgram, (size_t)n, MSG_DONTWAIT); /* lost like any datagram */
}

static void on_flow(struct relay *r, struct flow *f)
{
    ssize_t n = recv(f->fd, r->dgram, sizeof r->dgram, MSG_DONTWAIT | MSG_TRUNC);
    if (n < 0 || (size_t)n > sizeof r->dgram) /* ECONNREFUSED: nobody listens there yet */
        return;
    f->last_ns = now_ns();
    sendto(r->cfg->ports[f->port].fd, r->dgram, (size_t)n, MSG_DONTWAIT,
           (const struct sockaddr *)&f->peer, sizeof f->peer);
}

/* Closes idle flows; the poll timeout until the next one expires. */
static int expire(struct relay *r)
{
    uint64_t now = now_ns(), next = UINT64_MAX;
    for (size_t i = 0; i < ARRAY_SIZE(r->flows); i++) {
        struct flow *f = &r->flows[i];
        if (!f->used)
            continue;
        uint64_t end = f->last_ns + r->idle_ns;
        if (end <= now)
            flow_end(f);
        else if (end < next)
            next = end;
    }
    return next == UINT64_MAX ? -1 : (int)((next - now + 999999) / 1000000);
}

/* ---- the loop ------------------------------------------------------------- */

static void build_poll(struct relay *r)
{
    const struct mvm_port_relay_config *cfg = r->cfg;
    for (size_t i = 0; i < NPOLL; i++)
        r->pfd[i] = (struct pollfd){.fd = -1};
    for (size_t i = 0; i < cfg->nports; i++) {
        bool tcp = cfg->ports[i].proto == IPPROTO_TCP;
        /* A full table leaves new connections waiting in the backlog. */
        if (!tcp || r->nconns < MVM_PORT_RELAY_MAX_CONN)
            r->pfd[i] = (struct pollfd){.fd = cfg->ports[i].fd, .events = POLLIN};
    }
    struct pollfd *cp = r->pfd + MVM_NET_MAX_PUBLISH;
    for (size_t i = 0; i < ARRAY_SIZE(r->conns); i++) {
        const struct conn *c = &r->conns[i];
        for (int k = 0; c->used && k < 2; k++) {
            short ev = side_events(c, k);
            if (ev)
                cp[2 * i + (size_t)k] = (struct pollfd){.fd = c->s[k].fd, .events = ev};
        }
    }
    struct pollfd *fp = cp + 2 * MVM_PORT_RELAY_MAX_CONN;
    for (size_t i = 0; i < ARRAY_SIZE(r->flows); i++)
        if (r->flows[i].used)
            fp[i] = (struct pollfd){.fd = r->flows[i].fd, .events = POLLIN};
}

static int relay_loop(struct relay *r, struct mvm_error **err)
{
    const struct mvm_port_relay_config *cfg = r->cfg;
    for (;;) {
        int timeout = expire(r);
        build_poll(r);
        if (poll(r->pfd, NPOLL, timeout) < 0) {
            if (errno == EINTR)
                continue;
            return mvm_error_set(err, errno, "poll");
        }
        for (size_t i = 0; i < NPOLL; i++)
            if (r->pfd[i].revents & POLLNVAL)
                return mvm_error_set(err, EBADF, "polling the relay's sockets");
        for (size_t i = 0; i < cfg->nports; i++) {
            if (r->pfd[i].revents == 0)
                continue;
            if (cfg->ports[i].proto == IPPROTO_TCP)
                on_accept(r, i);
            else
                on_dgram(r, i);
        }
        struct pollfd *cp = r->pfd + MVM_NET_MAX_PUBLISH;
        for (size_t i = 0; i < ARRAY_SIZE(r->conns); i++)
            if (r->conns[i].used && (cp[2 * i].revents | cp[2 * i + 1].revents))
                on_conn(r, &r->conns[i], cp + 2 * i);
        struct pollfd *fp = cp + 2 * MVM_PORT_RELAY_MAX_CONN;
        for (size_t i = 0; i < ARRAY_SIZE(r->flows); i++)
            if (r->flows[i].used && fp[i].revents)
                on_flow(r, &r->flows[i]);
    }
}

static int check_port(const struct mvm_port_relay_port *p, struct mvm_error **err)
{
    int type = 0, listening = 0, domain = 0;
    socklen_t len = sizeof type;
    if (getsockopt(p->fd, SOL_SOCKET, SO_TYPE, &type, &len) < 0 ||
        getsockopt(p->fd, SOL_SOCKET, SO_DOMAIN, &domain, &(socklen_t){sizeof domain}) < 0 ||
        getsockopt(p->fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &(socklen_t){sizeof listening}) <
            0)
        return mvm_error_set(err, errno, "fd %d", p->fd);
    bool tcp = p->proto == IPPROTO_TCP;
    if (domain != AF_INET || type != (tcp ? SOCK_STREAM : SOCK_DGRAM) || listening != tcp)
        return mvm_error_set(err, 0, "fd %d is no %s socket", p->fd,
                             tcp ? "listening TCP" : "bound UDP");
    return 0;
}

int mvm_port_relay_run(const struct mvm_port_relay_config *cfg, struct mvm_error **err)
{
    if (cfg->nports == 0 || cfg->nports > MVM_NET_MAX_PUBLISH)
        return mvm_error_set(err, 0, "%zu ports to relay", cfg->nports);
    for (size_t i = 0; i < cfg->nports; i++) {
        if (check_port(&cfg->ports[i], err) < 0)
            return -1;
        /* The accept loop stops at EAGAIN. */
        int fl = fcntl(cfg->ports[i].fd, F_GETFL);
        if (fl < 0 || fcntl(cfg->ports[i].fd, F_SETFL, fl | O_NONBLOCK) < 0)
            return mvm_error_set(err, errno, "fd %d", cfg->ports[i].fd);
    }
    cleanup_free struct relay *r = xcalloc(1, sizeof *r);
    r->cfg = cfg;
    int ms = cfg->flow_idle_ms > 0 ? cfg->flow_idle_ms : MVM_PORT_RELAY_FLOW_IDLE_MS;
    r->idle_ns = (uint64_t)ms * 1000000;
    return relay_loop(r, err);
}

char **mvm_port_relay_argv(const char *prog, const struct mvm_net_plan *p, const int *fds)
{
    const struct mvm_net_policy *pol = p->policy;
    size_t n = pol ? pol->npublish : 0;
    char **argv = xcalloc(n + 4, sizeof *argv);
    char ip[16];
    argv[0] = xstrdup(prog);
    argv[1] = xstrdup("__port-relay");
    argv[2] = xstrdup(mvm_ip4_str(p->guest_ip, ip));
    for (size_t i = 0; i < n; i++)
        argv[3 + i] = xasprintf("%s:%d:%u", mvm_net_proto_name(pol->publish[i].proto), fds[i],
                                pol->publish[i].guest_port);
    return argv;
}

/* "tcp:FD:PORT" / "udp:FD:PORT" */
static bool parse_port_arg(const char *s, struct mvm_port_relay_port *p)
{
    int fd, used = 0;
    unsigned port;
    char proto[4];
    if (sscanf(s, "%3[a-z]:%d:%u%n", proto, &fd, &port, &used) != 3 || s[used] != '\0' || fd < 0 ||
        port == 0 || port > 65535)
        return false;
    if (strcmp(proto, "tcp") == 0)
        p->proto = IPPROTO_TCP;
    else if (strcmp(proto, "udp") == 0)
        p->proto = IPPROTO_UDP;
    else
        return false;
    p->fd = fd;
    p->guest_port = (uint16_t)port;
    return true;
}

int mvm_port_relay_main(int argc, char **argv)
{
    cleanup_error struct mvm_error *err = NULL;
    cleanup_free struct mvm_port_relay_config *cfg = xcalloc(1, sizeof *cfg);
    struct in_addr guest;
    bool ok =
        argc >= 3 && argc - 2 <= MVM_NET_MAX_PUBLISH && inet_pton(AF_INET, argv[1], &guest) == 1;
    for (int i = 2; ok && i < argc; i++)
        ok = parse_port_arg(argv[i], &cfg->ports[cfg->nports++]);
    if (!ok) {
        mvm_error_set(&err, 0, "usage: mvm __port-relay GUESTIP tcp|udp:FD:GUESTPORT...");
        mvm_error_print(err);
        return 1;
    }
    cfg->guest_ip = guest.s_addr;
    if (mvm_port_relay_run(cfg, &err) < 0) {
        mvm_error_wrap(&err, "port relay");
        mvm_error_print(err);
        return 1;
    }
    return 0;
}
