/* The DNS relay's loop: guest socket <-> upstream resolver, with the
 * decisions of dns.c in between.  Everything it reads is hostile (the
 * guest) or untrusted (upstream), so nothing it reads is ever printed. */
#include "dnsrelay.h"

#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>

#include "util.h"

/* A fresh id collides with a pending one with odds of at most 256/65536;
 * this many tries failing means getrandom is broken, not bad luck. */
#define ID_TRIES 16

struct pending {
    bool used;
    uint16_t up_id;         /* the id the query went upstream with */
    struct mvm_dns_query q; /* the guest's query, its own id included */
    struct sockaddr_storage guest;
    socklen_t guest_len;
    uint64_t deadline_ns;
};

struct relay {
    int guest_fd, upstream_fd;
    const struct mvm_dns_relay_config *cfg;
    uint64_t timeout_ns;
    struct pending table[MVM_DNS_RELAY_PENDING];
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

static void send_guest(const struct relay *r, const void *buf, size_t len,
                       const struct sockaddr_storage *to, socklen_t to_len)
{
    if (sendto(r->guest_fd, buf, len, MSG_DONTWAIT, (const struct sockaddr *)to, to_len) < 0)
        log_errno(r, "sending to the guest");
}

/* SERVFAIL/REFUSED built from the guest's own query. */
static void reply_error(struct relay *r, const struct mvm_dns_query *q, unsigned rcode,
                        const struct sockaddr_storage *to, socklen_t to_len)
{
    size_t n;
    if (mvm_dns_error_reply(q, rcode, r->out, sizeof r->out, &n) == 0)
        send_guest(r, r->out, n, to, to_len);
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
static void forward(struct relay *r, size_t len, const struct mvm_dns_query *q,
                    const struct sockaddr_storage *from, socklen_t from_len)
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
    *p = (struct pending){.used = true, .up_id = id, .q = *q, .guest_len = from_len};
    memcpy(&p->guest, from, from_len);
    p->deadline_ns = now_ns() + r->timeout_ns;
    return;
servfail:
    reply_error(r, q, MVM_DNS_RCODE_SERVFAIL, from, from_len);
}

static void on_guest(struct relay *r)
{
    struct sockaddr_storage from;
    socklen_t from_len = sizeof from;
    struct mvm_dns_query q;
    size_t n;

    ssize_t len = recvfrom(r->guest_fd, r->in, sizeof r->in, MSG_DONTWAIT | MSG_TRUNC,
                           (struct sockaddr *)&from, &from_len);
    if (len < 0) {
        if (errno != EAGAIN && errno != EINTR)
            log_errno(r, "receiving from the guest");
        return;
    }
    /* MSG_TRUNC gives the real length: a cut-off query is no query. */
    if ((size_t)len > sizeof r->in || from_len > sizeof from)
        return;
    if (mvm_dns_parse_query(r->in, (size_t)len, &q, NULL) == 0 &&
        mvm_dns_check_query(&q) == MVM_DNS_FORWARD)
        forward(r, (size_t)len, &q, &from, from_len);
    else if (mvm_dns_refused(r->in, (size_t)len, r->out, sizeof r->out, &n) == 0)
        send_guest(r, r->out, n, &from, from_len);
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

    if (cut) /* too big to check: upstream ignored the guest's EDNS size */
        reply_error(r, &p->q, MVM_DNS_RCODE_SERVFAIL, &p->guest, p->guest_len);
    else if (!mvm_dns_response_matches(r->in, len, &asked))
        return;
    else if (mvm_dns_check_response(r->in, len, &asked, r->cfg->lan) != MVM_DNS_FORWARD)
        reply_error(r, &p->q, MVM_DNS_RCODE_SERVFAIL, &p->guest, p->guest_len);
    else {
        r->in[0] = (uint8_t)(p->q.id >> 8);
        r->in[1] = (uint8_t)p->q.id;
        send_guest(r, r->in, len, &p->guest, p->guest_len);
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

/* Forgets queries upstream never answered (the guest's resolver retries
 * on its own) and returns the poll timeout until the next deadline. */
static int expire(struct relay *r)
{
    uint64_t now = now_ns(), next = UINT64_MAX;
    for (size_t i = 0; i < ARRAY_SIZE(r->table); i++) {
        struct pending *p = &r->table[i];
        if (p->used && p->deadline_ns <= now)
            p->used = false;
        else if (p->used && p->deadline_ns < next)
            next = p->deadline_ns;
    }
    if (next == UINT64_MAX)
        return -1;
    return (int)((next - now + 999999) / 1000000);
}

static int check_dgram(int fd, const char *what, struct mvm_error **err)
{
    int type = 0;
    socklen_t len = sizeof type;
    if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) < 0)
        return mvm_error_set(err, errno, "%s socket (fd %d)", what, fd);
    if (type != SOCK_DGRAM)
        return mvm_error_set(err, 0, "%s socket (fd %d) is not a datagram socket", what, fd);
    return 0;
}

static int relay_loop(struct relay *r, struct mvm_error **err)
{
    for (;;) {
        struct pollfd fds[2] = {{.fd = r->guest_fd, .events = POLLIN},
                                {.fd = r->upstream_fd, .events = POLLIN}};
        if (poll(fds, 2, expire(r)) < 0) {
            if (errno == EINTR)
                continue;
            return mvm_error_set(err, errno, "poll");
        }
        if ((fds[0].revents | fds[1].revents) & POLLNVAL)
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
    }
}

int mvm_dns_relay_run(int guest_fd, int upstream_fd, const struct mvm_dns_relay_config *cfg,
                      struct mvm_error **err)
{
    if (check_dgram(guest_fd, "guest", err) < 0 || check_dgram(upstream_fd, "upstream", err) < 0)
        return -1;
    cleanup_free struct relay *r = xcalloc(1, sizeof *r);
    r->guest_fd = guest_fd;
    r->upstream_fd = upstream_fd;
    r->cfg = cfg;
    int ms = cfg->timeout_ms > 0 ? cfg->timeout_ms : MVM_DNS_RELAY_TIMEOUT_MS;
    r->timeout_ns = (uint64_t)ms * 1000000;
    return relay_loop(r, err);
}

static int parse_fd(const char *s, int *fd)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v < 0 || v > INT32_MAX)
        return -1;
    *fd = (int)v;
    return 0;
}

int mvm_dns_relay_main(int argc, char **argv)
{
    cleanup_error struct mvm_error *err = NULL;
    struct mvm_dns_lan lan;
    int guest_fd, upstream_fd;

    if (argc != 3 || parse_fd(argv[1], &guest_fd) < 0 || parse_fd(argv[2], &upstream_fd) < 0) {
        mvm_error_set(&err, 0, "usage: mvm __dns-relay GUESTFD UPSTREAMFD");
        mvm_error_print(err);
        return 1;
    }
    mvm_dns_lan_default(&lan);
    struct mvm_dns_relay_config cfg = {.lan = &lan};
    if (mvm_dns_relay_run(guest_fd, upstream_fd, &cfg, &err) < 0) {
        mvm_error_wrap(&err, "dns relay");
        mvm_error_print(err);
        return 1;
    }
    return 0;
}
