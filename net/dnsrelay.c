/* The DNS relay's loop: the guest's UDP socket and TCP connections <->
 * the upstream resolver (UDP), with the decisions of dns.c in between.
 * Everything it reads is hostile (the guest) or untrusted (upstream), so
 * nothing it reads is ever printed. */
#include "dnsrelay.h"

#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <unistd.h>

#include "util.h"

/* A fresh id collides with a pending one with odds of at most 256/65536;
 * this many tries failing means getrandom is broken, not bad luck. */
#define ID_TRIES 16

/* An idle TCP connection is closed after this long (RFC 7766 6.2.3
 * suggests seconds). */
#define TCP_IDLE_MS 10000

/* Where a reply goes: a UDP peer, or TCP connection tcp (its generation
 * too, so a reply never reaches a later connection in the same slot). */
struct client {
    int tcp; /* -1: UDP */
    uint32_t gen;
    struct sockaddr_storage addr;
    socklen_t addr_len;
};

struct pending {
    bool used;
    uint16_t up_id;         /* the id the query went upstream with */
    int rule;               /* allow= mode: the rule that allowed its name */
    struct mvm_dns_query q; /* the guest's query, its own id included */
    struct client to;
    uint64_t deadline_ns;
};

/* A guest's TCP connection: one query at a time, each framed by its
 * length (RFC 1035 4.2.2); the next one waits in the socket. */
struct tcpconn {
    int fd; /* -1: a free slot */
    uint32_t gen;
    bool waiting; /* its query is upstream */
    size_t inlen, outlen, outoff;
    uint64_t deadline_ns;
    uint8_t in[2 + MVM_DNS_MAX_MSG];
    uint8_t out[2 + MVM_DNS_MAX_MSG];
};

struct relay {
    int guest_fd, upstream_fd;
    const struct mvm_dns_relay_config *cfg;
    uint64_t timeout_ns;
    uint32_t report_seq, tcp_gen;
    struct pending table[MVM_DNS_RELAY_PENDING];
    struct tcpconn tcp[MVM_DNS_RELAY_TCP];
    uint8_t in[MVM_DNS_MAX_MSG];
    uint8_t out[MVM_DNS_MAX_MSG];
};

/* Only the relay's own I/O failures are logged, never anything a guest
 * packet decides, so the guest cannot make the relay write. */
static void log_errno(const struct relay *r, const char *what)
{
    if (!r->cfg->quiet)
        dprintf(STDERR_FILENO, "mvm: dns relay: %s: %s\n", what, strerror(errno));
}

static void tcp_close(struct tcpconn *c)
{
    close(c->fd);
    c->fd = -1;
}

/* A reply to a client: a datagram, or a framed message queued on its TCP
 * connection (which sends it as the socket takes it). */
static void send_guest(struct relay *r, const void *buf, size_t len, const struct client *to)
{
    if (to->tcp < 0) {
        if (sendto(r->guest_fd, buf, len, MSG_DONTWAIT, (const struct sockaddr *)&to->addr,
                   to->addr_len) < 0)
            log_errno(r, "sending to the guest");
        return;
    }
    struct tcpconn *c = &r->tcp[to->tcp];
    if (c->fd < 0 || c->gen != to->gen || c->outlen != 0 || len > MVM_DNS_MAX_MSG)
        return; /* gone, or (cannot happen) busy */
    c->out[0] = (uint8_t)(len >> 8);
    c->out[1] = (uint8_t)len;
    memcpy(c->out + 2, buf, len);
    c->outlen = len + 2;
    c->outoff = 0;
    c->waiting = false;
}

/* SERVFAIL/REFUSED built from the guest's own query. */
static void reply_error(struct relay *r, const struct mvm_dns_query *q, unsigned rcode,
                        const struct client *to)
{
    size_t n;
    if (mvm_dns_error_reply(q, rcode, r->out, sizeof r->out, &n) == 0)
        send_guest(r, r->out, n, to);
}

static struct pending *find_id(struct relay *r, uint16_t id)
{
    for (size_t i = 0; i < ARRAY_SIZE(r->table); i++)
        if (r->table[i].used && r->table[i].up_id == id)
            return &r->table[i];
    return NULL;
}

static struct pending *find_free(struct relay *r)
{
    for (size_t i = 0; i < ARRAY_SIZE(r->table); i++)
        if (!r->table[i].used)
            return &r->table[i];
    return NULL;
}

/* A random id (off-path spoofing has to guess it) unused by any pending
 * query, so each response maps to exactly one guest. */
static int fresh_id(struct relay *r, uint16_t *id)
{
    for (int i = 0; i < ID_TRIES; i++) {
        if (getrandom(id, sizeof *id, 0) != sizeof *id)
            return -1;
        if (find_id(r, *id) == NULL)
            return 0;
    }
    errno = EAGAIN;
    return -1;
}

/* Sends an allowed query upstream under a fresh id.  When that cannot be
 * done the guest hears SERVFAIL at once rather than waiting it out. */
static void forward(struct relay *r, size_t len, const struct mvm_dns_query *q, int rule,
                    const struct client *from)
{
    struct pending *p = find_free(r);
    uint16_t id;

    if (p == NULL)
        goto servfail;
    if (fresh_id(r, &id) < 0) {
        log_errno(r, "choosing a query id");
        goto servfail;
    }
    r->in[0] = (uint8_t)(id >> 8);
    r->in[1] = (uint8_t)id;
    if (send(r->upstream_fd, r->in, len, MSG_DONTWAIT) < 0) {
        log_errno(r, "sending upstream");
        goto servfail;
    }
    *p = (struct pending){.used = true, .up_id = id, .rule = rule, .q = *q, .to = *from};
    p->deadline_ns = now_ns() + r->timeout_ns;
    if (from->tcp >= 0)
        r->tcp[from->tcp].waiting = true;
    return;
servfail:
    reply_error(r, q, MVM_DNS_RCODE_SERVFAIL, from);
}

/* A query in r->in (len bytes), from a UDP peer or a TCP connection:
 * refused here, or sent upstream. */
static void on_query(struct relay *r, size_t len, const struct client *from)
{
    struct mvm_dns_query q;
    size_t n;
    bool ok = mvm_dns_parse_query(r->in, len, &q, NULL) == 0 &&
              mvm_dns_check_query(&q) == MVM_DNS_FORWARD;
    /* allow= mode: a name no rule allows goes nowhere, so nothing can
     * leave in it. */
    int rule = -1;
    if (ok && r->cfg->allow_mode)
        ok = (rule = mvm_dns_allow_match(q.name, r->cfg->allow, r->cfg->nallow)) >= 0;
    if (ok)
        forward(r, len, &q, rule, from);
    else if (mvm_dns_refused(r->in, len, r->out, sizeof r->out, &n) == 0)
        send_guest(r, r->out, n, from);
}

static void on_guest(struct relay *r)
{
    struct client from = {.tcp = -1, .addr_len = sizeof from.addr};
    ssize_t len = recvfrom(r->guest_fd, r->in, sizeof r->in, MSG_DONTWAIT | MSG_TRUNC,
                           (struct sockaddr *)&from.addr, &from.addr_len);
    if (len < 0) {
        if (errno != EAGAIN && errno != EINTR)
            log_errno(r, "receiving from the guest");
        return;
    }
    /* MSG_TRUNC gives the real length: a cut-off query is no query. */
    if ((size_t)len > sizeof r->in || from.addr_len > sizeof from.addr)
        return;
    on_query(r, (size_t)len, &from);
}

/* ---- TCP ------------------------------------------------------------------ */

static void on_accept(struct relay *r)
{
    struct tcpconn *c = NULL;
    for (size_t i = 0; i < ARRAY_SIZE(r->tcp) && c == NULL; i++)
        if (r->tcp[i].fd < 0)
            c = &r->tcp[i];
    if (c == NULL)
        return; /* not polled when full; the backlog holds the rest */
    int fd = accept4(r->cfg->tcp_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
        if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
            log_errno(r, "accepting a TCP connection");
        return;
    }
    c->fd = fd;
    c->gen = ++r->tcp_gen;
    c->waiting = false;
    c->inlen = c->outlen = c->outoff = 0;
    c->deadline_ns = now_ns() + (uint64_t)TCP_IDLE_MS * 1000000;
}

/* A whole query in c->in goes the way of a datagram's, with an OPT record
 * that lets upstream answer in full over UDP (the reason the guest asked
 * over TCP).  What follows it stays for the next turn. */
static void tcp_query(struct relay *r, struct tcpconn *c)
{
    if (c->waiting || c->outlen != 0 || c->inlen < 2)
        return;
    size_t qlen = (size_t)(c->in[0] << 8 | c->in[1]);
    if (qlen == 0 || qlen > MVM_DNS_MAX_MSG) {
        tcp_close(c);
        return;
    }
    if (c->inlen < 2 + qlen)
        return;
    struct client from = {.tcp = (int)(c - r->tcp), .gen = c->gen};
    size_t len;
    if (mvm_dns_with_edns(c->in + 2, qlen, MVM_DNS_MAX_MSG, r->in, sizeof r->in, &len) < 0) {
        memcpy(r->in, c->in + 2, qlen); /* malformed: answered as such */
        len = qlen;
    }
    memmove(c->in, c->in + 2 + qlen, c->inlen - 2 - qlen);
    c->inlen -= 2 + qlen;
    on_query(r, len, &from);
}

static void on_tcp(struct relay *r, struct tcpconn *c, short revents)
{
    if (revents & POLLOUT) {
        ssize_t n = send(c->fd, c->out + c->outoff, c->outlen - c->outoff, MSG_NOSIGNAL);
        if (n < 0 && errno != EAGAIN && errno != EINTR) {
            tcp_close(c);
            return;
        }
        if (n > 0 && (c->outoff += (size_t)n) == c->outlen) {
            c->outlen = c->outoff = 0;
            c->deadline_ns = now_ns() + (uint64_t)TCP_IDLE_MS * 1000000;
        }
    }
    if ((revents & (POLLIN | POLLHUP | POLLERR)) && !c->waiting && c->outlen == 0 &&
        c->inlen < sizeof c->in) {
        ssize_t n = read(c->fd, c->in + c->inlen, sizeof c->in - c->inlen);
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
            tcp_close(c); /* a reply still upstream finds the slot gone */
            return;
        }
        if (n > 0)
            c->inlen += (size_t)n;
    }
    tcp_query(r, c);
}

/* Waits for mvm's ack of answer seq; acks of earlier answers, whose wait
 * timed out, are skipped. */
static bool wait_ack(struct relay *r, uint32_t seq)
{
    int ms = r->cfg->report_ms > 0 ? r->cfg->report_ms : MVM_DNS_RELAY_REPORT_MS;
    uint64_t end = now_ns() + (uint64_t)ms * 1000000;
    for (;;) {
        uint64_t now = now_ns();
        if (now >= end)
            return false;
        struct pollfd p = {.fd = r->cfg->report_fd, .events = POLLIN};
        int rc = poll(&p, 1, (int)((end - now) / 1000000) + 1);
        if (rc < 0 && errno != EINTR)
            return false;
        if (rc <= 0)
            continue;
        struct mvm_net_report_ack a;
        ssize_t n = recv(r->cfg->report_fd, &a, sizeof a, MSG_DONTWAIT);
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
            return false;
        if (n == sizeof a && a.seq == seq)
            return a.ok == 1;
    }
}

/* allow= mode: the answer's addresses for the guest's name (and its CNAME
 * chain), reported to mvm; true once mvm has them in the set (or there
 * were none). */
static bool report(struct relay *r, const struct pending *p, size_t len)
{
    struct mvm_dns_addr a[MVM_NET_REPORT_MAX];
    int n = mvm_dns_chain_answers(r->in, len, p->q.name, a, ARRAY_SIZE(a));
    if (n <= 0)
        return n == 0;
    uint32_t seq = ++r->report_seq;
    for (int i = 0; i < n; i++) {
        struct mvm_net_report rec = {.seq = seq,
                                     .rule = (uint16_t)p->rule,
                                     .flags = i == n - 1 ? MVM_NET_REPORT_LAST : 0,
                                     .ttl = a[i].ttl};
        memcpy(rec.addr, a[i].addr, 4);
        if (send(r->cfg->report_fd, &rec, sizeof rec, MSG_DONTWAIT | MSG_NOSIGNAL) !=
            (ssize_t)sizeof rec) {
            log_errno(r, "reporting an answer to mvm");
            return false;
        }
    }
    return wait_ack(r, seq);
}

/* Hands a checked response to its guest under the guest's own id.  A
 * response that does not match its question is ignored, leaving the query
 * pending: a stray or spoofed datagram must not cancel the real answer.
 * One that matches but fails the check becomes SERVFAIL, so the guest
 * fails at once instead of retrying into the same answer. */
static void answer(struct relay *r, struct pending *p, size_t len, bool cut)
{
    struct mvm_dns_query asked = p->q;
    asked.id = p->up_id;

    /* Over TCP a truncated answer is no answer: it was asked there for
     * the whole of it. */
    bool tc_over_tcp = p->to.tcp >= 0 && len >= 4 && (r->in[2] & 0x02);
    if (cut) /* too big to check: upstream ignored the guest's EDNS size */
        reply_error(r, &p->q, MVM_DNS_RCODE_SERVFAIL, &p->to);
    else if (!mvm_dns_response_matches(r->in, len, &asked))
        return;
    else if (tc_over_tcp ||
             mvm_dns_check_response(r->in, len, &asked, r->cfg->lan) != MVM_DNS_FORWARD)
        reply_error(r, &p->q, MVM_DNS_RCODE_SERVFAIL, &p->to);
    else if (r->cfg->allow_mode && !report(r, p, len))
        reply_error(r, &p->q, MVM_DNS_RCODE_SERVFAIL, &p->to);
    else {
        r->in[0] = (uint8_t)(p->q.id >> 8);
        r->in[1] = (uint8_t)p->q.id;
        send_guest(r, r->in, len, &p->to);
    }
    p->used = false;
}

static void on_upstream(struct relay *r)
{
    ssize_t len = recv(r->upstream_fd, r->in, sizeof r->in, MSG_DONTWAIT | MSG_TRUNC);
    if (len < 0) {
        /* ECONNREFUSED: an ICMP error for an earlier query; the queries
         * it concerns expire. */
        if (errno != EAGAIN && errno != EINTR)
            log_errno(r, "receiving from upstream");
        return;
    }
    if (len < 2)
        return;
    struct pending *p = find_id(r, (uint16_t)(r->in[0] << 8 | r->in[1]));
    if (p != NULL)
        answer(r, p, (size_t)len, (size_t)len > sizeof r->in);
}

/* Forgets queries upstream never answered (a UDP guest's resolver
 * retries on its own; a TCP one hears SERVFAIL), closes idle TCP
 * connections, and returns the poll timeout until the next deadline. */
static int expire(struct relay *r)
{
    uint64_t now = now_ns(), next = UINT64_MAX;
    for (size_t i = 0; i < ARRAY_SIZE(r->table); i++) {
        struct pending *p = &r->table[i];
        if (p->used && p->deadline_ns <= now) {
            p->used = false;
            if (p->to.tcp >= 0)
                reply_error(r, &p->q, MVM_DNS_RCODE_SERVFAIL, &p->to);
        } else if (p->used && p->deadline_ns < next) {
            next = p->deadline_ns;
        }
    }
    for (size_t i = 0; i < ARRAY_SIZE(r->tcp); i++) {
        struct tcpconn *c = &r->tcp[i];
        if (c->fd < 0 || c->waiting)
            continue;
        if (c->deadline_ns <= now)
            tcp_close(c);
        else if (c->deadline_ns < next)
            next = c->deadline_ns;
    }
    if (next == UINT64_MAX)
        return -1;
    return (int)((next - now + 999999) / 1000000);
}

static int check_type(int fd, int want, const char *what, struct mvm_error **err)
{
    int type = 0;
    socklen_t len = sizeof type;
    if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) < 0)
        return mvm_error_set(err, errno, "%s socket (fd %d)", what, fd);
    if (type != want)
        return mvm_error_set(err, 0, "%s socket (fd %d) is not a %s socket", what, fd,
                             want == SOCK_DGRAM    ? "datagram"
                             : want == SOCK_STREAM ? "stream"
                                                   : "seqpacket");
    return 0;
}

static int check_dgram(int fd, const char *what, struct mvm_error **err)
{
    return check_type(fd, SOCK_DGRAM, what, err);
}

/* The poll set: the guest's socket, upstream, the TCP listener (while a
 * slot is free), then one entry per TCP slot (fd -1 when it waits for
 * nothing, so a peer's hang-up cannot make the loop spin). */
static nfds_t build_poll(struct relay *r, struct pollfd *fds)
{
    bool room = false;
    for (size_t i = 0; i < ARRAY_SIZE(r->tcp); i++) {
        const struct tcpconn *c = &r->tcp[i];
        short ev = c->outlen ? POLLOUT : c->waiting ? 0 : POLLIN;
        fds[3 + i] = (struct pollfd){.fd = c->fd >= 0 && ev ? c->fd : -1, .events = ev};
        room |= c->fd < 0;
    }
    fds[0] = (struct pollfd){.fd = r->guest_fd, .events = POLLIN};
    fds[1] = (struct pollfd){.fd = r->upstream_fd, .events = POLLIN};
    fds[2] = (struct pollfd){.fd = r->cfg->tcp && room ? r->cfg->tcp_fd : -1, .events = POLLIN};
    return 3 + ARRAY_SIZE(r->tcp);
}

static int relay_loop(struct relay *r, struct mvm_error **err)
{
    struct pollfd fds[3 + MVM_DNS_RELAY_TCP];
    for (;;) {
        int timeout = expire(r);
        nfds_t n = build_poll(r, fds);
        if (poll(fds, n, timeout) < 0) {
            if (errno == EINTR)
                continue;
            return mvm_error_set(err, errno, "poll");
        }
        for (nfds_t i = 0; i < n; i++)
            if (fds[i].revents & POLLNVAL)
                return mvm_error_set(err, EBADF, "polling the relay's sockets");
        if (fds[0].revents & (POLLHUP | POLLERR))
            return 0;
        if (fds[1].revents & POLLHUP)
            return mvm_error_set(err, 0, "the upstream socket was shut down");
        if (fds[0].revents & POLLIN)
            on_guest(r);
        /* POLLERR on a connected UDP socket is a pending ICMP error, which
         * the next recv reports and clears. */
        if (fds[1].revents & (POLLIN | POLLERR))
            on_upstream(r);
        if (fds[2].revents)
            on_accept(r);
        for (size_t i = 0; i < ARRAY_SIZE(r->tcp); i++)
            if (fds[3 + i].revents && r->tcp[i].fd == fds[3 + i].fd)
                on_tcp(r, &r->tcp[i], fds[3 + i].revents);
    }
}

int mvm_dns_relay_run(int guest_fd, int upstream_fd, const struct mvm_dns_relay_config *cfg,
                      struct mvm_error **err)
{
    if (check_dgram(guest_fd, "guest", err) < 0 || check_dgram(upstream_fd, "upstream", err) < 0)
        return -1;
    if (cfg->allow_mode && check_type(cfg->report_fd, SOCK_SEQPACKET, "report", err) < 0)
        return -1;
    if (cfg->tcp && check_type(cfg->tcp_fd, SOCK_STREAM, "TCP", err) < 0)
        return -1;
    cleanup_free struct relay *r = xcalloc(1, sizeof *r);
    for (size_t i = 0; i < ARRAY_SIZE(r->tcp); i++)
        r->tcp[i].fd = -1;
    r->guest_fd = guest_fd;
    r->upstream_fd = upstream_fd;
    r->cfg = cfg;
    int ms = cfg->timeout_ms > 0 ? cfg->timeout_ms : MVM_DNS_RELAY_TIMEOUT_MS;
    r->timeout_ns = (uint64_t)ms * 1000000;
    return relay_loop(r, err);
}
