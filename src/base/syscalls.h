/* Wrappers for system calls that Debian 12's glibc (2.36) lacks or that
 * need an ENOSYS fallback on older kernels. */
#ifndef MVM_SYSCALLS_H
#define MVM_SYSCALLS_H

#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
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

#ifndef SYS_mount_setattr
#define SYS_mount_setattr 442
#endif
#ifndef MOUNT_ATTR_RDONLY
#define MOUNT_ATTR_RDONLY 0x00000001
#define MOUNT_ATTR_NOSUID 0x00000002
#define MOUNT_ATTR_NODEV  0x00000004
#endif
#ifndef AT_RECURSIVE
#define AT_RECURSIVE 0x8000
#endif

/* Sets mount attributes (MOUNT_ATTR_*) on path and, recursively, on the
 * mounts below it (5.12+; ENOSYS before). */
static inline int mvm_mount_setattr_recursive(const char *path, uint64_t set)
{
    struct {
        uint64_t attr_set, attr_clr, propagation, userns_fd;
    } a = {set, 0, 0, 0};
    return (int)syscall(SYS_mount_setattr, -100 /* AT_FDCWD */, path, AT_RECURSIVE, &a, sizeof a);
}

#ifndef SYS_open_tree
#define SYS_open_tree 428
#endif
#ifndef SYS_move_mount
#define SYS_move_mount 429
#endif
#ifndef OPEN_TREE_CLONE
#define OPEN_TREE_CLONE 1
#endif
#ifndef MOVE_MOUNT_F_EMPTY_PATH
#define MOVE_MOUNT_F_EMPTY_PATH 0x00000004
#endif
#ifndef MOUNT_ATTR_IDMAP
#define MOUNT_ATTR_IDMAP 0x00100000
#endif

/* A detached copy of the mount tree at path (5.2+), close-on-exec. */
static inline int mvm_open_tree_clone(const char *path, bool recursive)
{
    unsigned flags = OPEN_TREE_CLONE | 02000000 /* O_CLOEXEC */ | (recursive ? AT_RECURSIVE : 0);
    return (int)syscall(SYS_open_tree, -100 /* AT_FDCWD */, path, flags);
}

/* Makes the detached tree fd idmapped through userns_fd (and read-only if
 * asked), recursively when it was cloned so (5.12+). */
static inline int mvm_mount_setattr_idmap(int fd, int userns_fd, bool rdonly, bool recursive)
{
    struct {
        uint64_t attr_set, attr_clr, propagation, userns_fd;
    } a = {MOUNT_ATTR_IDMAP | (rdonly ? MOUNT_ATTR_RDONLY : 0), 0, 0, (uint64_t)userns_fd};
    return (int)syscall(SYS_mount_setattr, fd, "",
                        0x1000 /* AT_EMPTY_PATH */ | (recursive ? AT_RECURSIVE : 0), &a, sizeof a);
}

/* Attaches the detached tree fd at path. */
static inline int mvm_move_mount_to(int fd, const char *path)
{
    return (int)syscall(SYS_move_mount, fd, "", -100 /* AT_FDCWD */, path, MOVE_MOUNT_F_EMPTY_PATH);
}

static inline int mvm_pidfd_open(pid_t pid)
{
    return (int)syscall(SYS_pidfd_open, pid, 0);
}

static inline int mvm_pidfd_send_signal(int pidfd, int sig)
{
    return (int)syscall(SYS_pidfd_send_signal, pidfd, sig, NULL, 0);
}

/* Closes every fd >= lowest except the ones in keep[] (any number, in any
 * order; sorted in place), allocating nothing.  Falls back to a
 * /proc-free loop when close_range is missing. */
int mvm_close_fds_except(int lowest, int *keep, int nkeep);

#endif
