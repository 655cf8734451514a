/* Wrappers for system calls that Debian 12's glibc (2.36) lacks or that
 * need an ENOSYS fallback on older kernels. */
#ifndef MVM_SYSCALLS_H
#define MVM_SYSCALLS_H

#include <errno.h>
#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif
#ifndef SYS_pidfd_send_signal
#define SYS_pidfd_send_signal 424
#endif
#ifndef SYS_close_range
#define SYS_close_range 436
#endif
#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif

static inline int mvm_pidfd_open(pid_t pid)
{
    return (int)syscall(SYS_pidfd_open, pid, 0);
}

static inline int mvm_pidfd_send_signal(int pidfd, int sig)
{
    return (int)syscall(SYS_pidfd_send_signal, pidfd, sig, NULL, 0);
}

/* Closes every fd >= lowest except the ones in keep[] (sorted or not).
 * Falls back to a /proc-free loop when close_range is missing. */
int mvm_close_fds_except(int lowest, const int *keep, int nkeep);

#endif
