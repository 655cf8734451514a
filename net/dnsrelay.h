/* dnsrelay: the session's DNS relay, a jailed helper process.
 *
 * Owns: the loop between the guest-facing socket and the upstream
 * resolver: each guest query is parsed and judged (dns.h), refused ones
 * are answered here, allowed ones go upstream under a fresh random id;
 * each upstream response is matched to its pending query, checked for
 * rebinding and handed back under the guest's own id.  State is one fixed
 * table: the guest cannot make the relay grow.
 *
 * It never creates a socket (its seccomp profile forbids socket()): the
 * caller passes them, already bound/connected/listening.  The guest may
 * ask over UDP or TCP (for an answer too big for a datagram); upstream is
 * asked over UDP, with room for answers of up to MVM_DNS_MAX_MSG. */
#ifndef MVM_DNSRELAY_H
#define MVM_DNSRELAY_H

#include <stdbool.h>

#include "dns.h"
#include "error.h"
#include "net.h"

/* Queries in flight at once; when full the guest gets SERVFAIL at once. */
#define MVM_DNS_RELAY_PENDING 256
/* The guest's TCP connections at once; more wait in the listen backlog. */
#define MVM_DNS_RELAY_TCP 8
/* How long a query waits for upstream before it is forgotten. */
#define MVM_DNS_RELAY_TIMEOUT_MS 5000

/* allow= mode: how long the relay waits for mvm to allow an answer's
 * addresses before the guest hears SERVFAIL instead. */
#define MVM_DNS_RELAY_REPORT_MS 2000

struct mvm_dns_relay_config {
    const struct mvm_dns_lan *lan; /* LAN prefixes and --allow-lan exceptions */
    int timeout_ms;                /* 0: MVM_DNS_RELAY_TIMEOUT_MS */
    bool quiet;                    /* no stderr lines for I/O errors */
    /* allow= mode: only names in allow are asked upstream (the rest are
     * REFUSED here), and the addresses of each answer are reported on
     * report_fd (struct mvm_net_report, SOCK_SEQPACKET) and acknowledged
     * before the guest gets the answer. */
    bool allow_mode;
    int report_fd;
    const struct mvm_dns_allow *allow;
    size_t nallow;
    int report_ms; /* 0: MVM_DNS_RELAY_REPORT_MS */
    /* tcp: also queries over TCP, on connections accepted from tcp_fd (a
     * listening socket at the guest's resolver address), sent upstream
     * over UDP with an EDNS size of MVM_DNS_MAX_MSG. */
    bool tcp;
    int tcp_fd;
};

/* Relays until guest_fd reports POLLHUP/POLLERR (returns 0) or a fatal
 * error (-1 with err).  guest_fd: a UDP socket bound to the guest-facing
 * resolver address (recvfrom gives the guest); upstream_fd: a UDP socket
 * connected to the upstream resolver.  Both are borrowed. */
int mvm_dns_relay_run(int guest_fd, int upstream_fd, const struct mvm_dns_relay_config *cfg,
                      struct mvm_error **err);

/* Entry point of `mvm __dns-relay GUESTFD UPSTREAMFD [--tcp FD] [--lan
 * ADDRESS]... [--report FD [--allow RULE:NAME]...]`: argv as main()'s,
 * argv[0] the command name, argv[1] and argv[2] decimal fd numbers; --tcp:
 * the listening TCP socket at the guest's resolver address; --lan: a LAN
 * address answers may point at (--allow-lan); --report: allow= mode, each
 * --allow a name (or *.NAME) and the index of its rule.  Uses the default
 * LAN list.  Returns the exit status (0 or 1); prints its one error line
 * to stderr. */
int mvm_dns_relay_main(int argc, char **argv);
/* relayfilter.c: the system calls it may make (its seccomp allowlist;
 * it creates no socket). */
extern const char *const mvm_dns_relay_syscalls[];

/* Its descriptors (-1: none). */
struct mvm_dns_relay_fds {
    int guest, upstream, tcp, report;
};
/* Its argv (argv[0] = prog), with p's --allow-lan addresses and, given a
 * report fd, its allow= names.  Pure; free with mvm_strv_free(). */
char **mvm_dns_relay_argv(const char *prog, const struct mvm_dns_relay_fds *fds,
                          const struct mvm_net_plan *p);

#endif
