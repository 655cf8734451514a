/* portrelay: --publish's relay, a jailed helper process.
 *
 * Owns: the loop between the listening sockets mvm opened in the host's
 * network namespace and the guest's ports.  The process itself runs in
 * the session's namespace, so each socket it creates there leads to the
 * guest: a TCP connection accepted on the host side gets its own
 * connection to the guest's port; a UDP datagram from a new host-side
 * peer gets its own flow (a socket connected to the guest's port) that
 * carries the replies back.  It reads no protocol: bytes in, bytes out.
 *
 * Bounded: at most MVM_PORT_RELAY_MAX_CONN connections (more wait in the
 * listen backlog) and MVM_PORT_RELAY_MAX_FLOWS flows (the least recently
 * used one gives way), each with fixed buffers, so neither the guest nor
 * a host client can make it grow. */
#ifndef MVM_PORTRELAY_H
#define MVM_PORTRELAY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "net.h"

#define MVM_PORT_RELAY_MAX_CONN  64
#define MVM_PORT_RELAY_MAX_FLOWS 64
/* A UDP flow nobody used for this long is forgotten. */
#define MVM_PORT_RELAY_FLOW_IDLE_MS (60 * 1000)

struct mvm_port_relay_port {
    int fd;    /* listening (TCP) or bound (UDP), in the host's namespace */
    int proto; /* IPPROTO_TCP or IPPROTO_UDP */
    uint16_t guest_port;
};

struct mvm_port_relay_config {
    uint32_t guest_ip; /* network order */
    struct mvm_port_relay_port ports[MVM_NET_MAX_PUBLISH];
    size_t nports;
    int flow_idle_ms; /* 0: MVM_PORT_RELAY_FLOW_IDLE_MS */
    bool quiet;       /* no stderr lines for I/O errors */
};

/* Relays until killed, or a fatal error (-1 with err).  The fds are
 * borrowed; sockets to the guest are made in the caller's namespace. */
int mvm_port_relay_run(const struct mvm_port_relay_config *cfg, struct mvm_error **err);

/* argv for `mvm __port-relay GUESTIP PROTO:FD:GUESTPORT...`, one port
 * per listener (fds[i] for p->policy->publish[i]), argv[0] = prog.
 * Pure; free with mvm_strv_free(). */
char **mvm_port_relay_argv(const char *prog, const struct mvm_net_plan *p, const int *fds);

/* relayfilter.c: the system calls it may make (its seccomp allowlist,
 * with socket() for AF_INET stream and datagram sockets). */
extern const char *const mvm_port_relay_syscalls[];

/* Entry point of `mvm __port-relay ...`: argv as main()'s with argv[0]
 * the command name.  Returns the exit status (1 on a bad argument or a
 * fatal error, with one line on stderr). */
int mvm_port_relay_main(int argc, char **argv);

#endif
