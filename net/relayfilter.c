/* The system calls each relay may make, for its seccomp allowlist
 * (mvm_jail_filter_allowlist): the relays are mvm's own code, so every
 * call they make is known, from the exec and the dynamic loader on (the
 * filter is loaded just before exec).  Found with strace -f on both
 * relays, in a plain and an ASan+UBSan build (the sanitizers' runtime
 * adds open, readlink, madvise, sigaltstack...), and kept to what that
 * showed plus the calls of exiting and aborting.  Pure data. */
#include <stddef.h>

#include "dnsrelay.h"
#include "portrelay.h"

/* Exec, the loader, libc and the sanitizer runtime; reading the clock,
 * polling, exiting.  No socket(), no namespaces, no mounts, no ptrace. */
#define RELAY_BASE                                                                                 \
    "execve", "brk", "mmap", "munmap", "mprotect", "mremap", "madvise", "arch_prctl",              \
        "set_tid_address", "set_robust_list", "rseq", "prlimit64", "openat", "open", "read",       \
        "pread64", "write", "writev", "close", "newfstatat", "fstat", "fstatfs", "statx", "lseek", \
        "access", "faccessat", "faccessat2", "readlink", "readlinkat", "uname", "getrandom",       \
        "poll", "ppoll", "fcntl", "clock_gettime", "clock_nanosleep", "nanosleep", "gettimeofday", \
        "futex", "sched_yield", "sched_getaffinity", "getpid", "gettid", "getppid", "getuid",      \
        "geteuid", "getgid", "getegid", "prctl", "sigaltstack", "rt_sigaction", "rt_sigprocmask",  \
        "rt_sigreturn", "tgkill", "exit", "exit_group"

/* Its sockets are all handed to it: it only accepts, reads and writes. */
const char *const mvm_dns_relay_syscalls[] = {
    RELAY_BASE, "accept4", "recvfrom", "sendto", "recvmsg", "sendmsg", "getsockopt", NULL,
};

/* It also makes IPv4 sockets to the guest (socket() itself is allowed by
 * the filter for AF_INET only) and connects and shuts them down. */
const char *const mvm_port_relay_syscalls[] = {
    RELAY_BASE, "accept4",    "connect",    "recvfrom", "sendto", "recvmsg",
    "sendmsg",  "getsockopt", "setsockopt", "shutdown", NULL,
};
