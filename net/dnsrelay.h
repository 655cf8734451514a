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
 * caller passes both, already bound/connected.  UDP only for now; TCP
 * (for truncated answers) is to come. */
#ifndef MVM_DNSRELAY_H
#define MVM_DNSRELAY_H

#include <stdbool.h>

#include "dns.h"
#include "error.h"

/* Queries in flight at once; when full the guest gets SERVFAIL at once. */
#define MVM_DNS_RELAY_PENDING 256
/* How long a query waits for upstream before it is forgotten. */
#define MVM_DNS_RELAY_TIMEOUT_MS 5000

struct mvm_dns_relay_config {
    const struct mvm_dns_lan *lan; /* LAN prefixes and --allow-lan exceptions */
    int timeout_ms;                /* 0: MVM_DNS_RELAY_TIMEOUT_MS */
    bool quiet;                    /* no stderr lines for I/O errors */
};

/* Relays until guest_fd reports POLLHUP/POLLERR (returns 0) or a fatal
 * error (-1 with err).  guest_fd: a UDP socket bound to the guest-facing
 * resolver address (recvfrom gives the guest); upstream_fd: a UDP socket
 * connected to the upstream resolver.  Both are borrowed. */
int mvm_dns_relay_run(int guest_fd, int upstream_fd, const struct mvm_dns_relay_config *cfg,
                      struct mvm_error **err);

/* Entry point of `mvm __dns-relay GUESTFD UPSTREAMFD`: argv as main()'s,
 * argv[0] the command name, argv[1] and argv[2] decimal fd numbers.  Uses
 * the default LAN list.  Returns the exit status (0 or 1); prints its one
 * error line to stderr. */
int mvm_dns_relay_main(int argc, char **argv);

#endif
