/* --net allow=, mvm's side: the DNS relay says which addresses it
 * answered for an allowed name; mvm checks each record (the relay is
 * jailed because it parses hostile bytes, so what it says is checked
 * too), adds the addresses to the namespace's set allowdns4 for their TTL
 * (bounded), and acks the answer, which the relay releases only then. */
#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "net.h"
#include "util.h"

/* One answer's records a turn, at most: the relay waits for each ack. */
#define DRAIN_MAX (4 * MVM_NET_REPORT_MAX)

_Static_assert(sizeof(struct mvm_net_report) == 16, "the report record is 16 bytes");
_Static_assert(sizeof(struct mvm_net_report_ack) == 8, "the ack is 8 bytes");

int mvm_net_report_check(const struct mvm_net_plan *p, const struct mvm_net_report *r,
                         struct mvm_error **err)
{
    const struct mvm_net_policy *pol = p->policy;
    uint32_t ip;
    memcpy(&ip, r->addr, 4);
    if (pol == NULL || p->mode != MVM_NET_ALLOW)
        return mvm_error_set(err, 0, "an address report outside allow= mode");
    if (r->rule >= pol->nallow || pol->allow[r->rule].name[0] == '\0')
        return mvm_error_set(err, 0, "an address report for rule %u, which is no name rule",
                             r->rule);
    if ((r->flags & ~MVM_NET_REPORT_LAST) != 0 || r->zero != 0)
        return mvm_error_set(err, 0, "a malformed address report");
    /* The relay drops answers into the LAN; a report of one means it is
     * not doing its job.  The namespace refuses the LAN before the set in
     * any case. */
    if (mvm_net_in_lan(ip, 32))
        return mvm_error_set(err, 0, "an address report into the LAN");
    for (size_t i = 0; i < p->nblocked; i++) {
        const struct mvm_prefix4 *b = &p->blocked[i];
        if (((ip ^ b->addr) & mvm_ip4_mask(b->len)) == 0)
            return mvm_error_set(err, 0, "an address report for a refused prefix");
    }
    return 0;
}

static uint32_t bounded_ttl(uint32_t ttl)
{
    return ttl < MVM_NET_ALLOW_TTL_MIN   ? MVM_NET_ALLOW_TTL_MIN
           : ttl > MVM_NET_ALLOW_TTL_MAX ? MVM_NET_ALLOW_TTL_MAX
                                         : ttl;
}

/* Each address with each of its rule's ports.  An element that is there
 * already keeps its old timeout on a plain add: added, deleted and added
 * again in one transaction, it gets the new one. */
char *mvm_net_ruleset_reports(const struct mvm_net_plan *p, const struct mvm_net_report *r,
                              size_t n)
{
    struct buf b = {0};
    for (size_t i = 0; i < n; i++) {
        const struct mvm_net_allow *a = &p->policy->allow[r[i].rule];
        uint16_t ports[2];
        size_t np = mvm_net_allow_ports(a, ports);
        uint32_t ip;
        char text[16];
        memcpy(&ip, r[i].addr, 4);
        mvm_ip4_str(ip, text);
        for (size_t k = 0; k < np; k++) {
            unsigned t = bounded_ttl(r[i].ttl);
            buf_printf(&b, "add element inet mvm allowdns4 { %s . %u timeout %us }\n", text,
                       ports[k], t);
            buf_printf(&b, "delete element inet mvm allowdns4 { %s . %u }\n", text, ports[k]);
            buf_printf(&b, "add element inet mvm allowdns4 { %s . %u timeout %us }\n", text,
                       ports[k], t);
        }
    }
    buf_append(&b, "", 1);
    return b.data;
}

static void ack(struct mvm_net *n, uint32_t seq, bool ok)
{
    struct mvm_net_report_ack a = {.seq = seq, .ok = ok};
    /* Lost only if the relay stopped reading: it times out then. */
    send(n->report_fd, &a, sizeof a, MSG_DONTWAIT | MSG_NOSIGNAL);
}

static int finish_answer(const struct mvm_net_plan *p, struct mvm_net *n, uint32_t seq,
                         struct mvm_error **err)
{
    bool ok = !n->batch_bad;
    if (ok) {
        cleanup_free char *text = mvm_net_ruleset_reports(p, n->batch, n->nbatch);
        /* A full set, or nftables failing: the answer is refused, the
         * session goes on. */
        ok = mvm_net_apply_in_ns(n, text, NULL) == 0;
    }
    ack(n, seq, ok);
    n->nbatch = 0;
    n->batch_bad = false;
    return 0;
}

int mvm_net_reports_drain(const struct mvm_net_plan *p, struct mvm_net *n, struct mvm_error **err)
{
    for (int i = 0; i < DRAIN_MAX && n->report_fd >= 0; i++) {
        struct mvm_net_report r;
        ssize_t got = recv(n->report_fd, &r, sizeof r, MSG_DONTWAIT | MSG_TRUNC);
        if (got < 0) {
            if (errno == EAGAIN || errno == EINTR)
                return 0;
            return mvm_error_set(err, errno, "reading the DNS relay's reports");
        }
        if (got == 0) { /* the relay is gone */
            close(n->report_fd);
            n->report_fd = -1;
            return 0;
        }
        bool bad = got != sizeof r || mvm_net_report_check(p, &r, NULL) < 0;
        if (n->nbatch > 0 && r.seq != n->batch[0].seq)
            bad = true; /* an answer cut short */
        if (n->nbatch == MVM_NET_REPORT_MAX)
            bad = true;
        else if (!bad)
            n->batch[n->nbatch++] = r;
        n->batch_bad |= bad;
        if (bad || (r.flags & MVM_NET_REPORT_LAST))
            finish_answer(p, n, r.seq, err);
    }
    return 0;
}
