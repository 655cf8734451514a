/* jail: the one way mvm starts a helper process (QEMU, virtiofsd).
 *
 * A description goes in, a started child with a pidfd comes out.  The
 * child is forked from the main thread (the parent-death signal follows
 * the forking thread) and, before exec, in this order: its own process
 * group; rlimits; the session's cgroup, then a cgroup namespace rooted
 * there; the network namespace; optional pre-namespace setup and user
 * namespace (virtiofsd); only the listed fds (any number of them),
 * a fixed environment; a new mount namespace whose root (pivot_root, old
 * root detached) holds only read-only /usr, the loader's files, a minimal
 * /dev and the files bound in; an unprivileged uid/gid; no capabilities
 * (bounding and ambient sets included); no_new_privs; the parent-death
 * signal, set after the uid change and followed by a check that mvm is
 * still there; seccomp last.
 *
 * Every layer can be switched off: the tests run each forbidden action
 * with its layer off too, to prove the check can fail. */
#ifndef MVM_JAIL_H
#define MVM_JAIL_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "error.h"

/* The uids (and gids of the same number) reserved for jailed helpers:
 * one per live session, so an escaped QEMU cannot signal or inspect
 * another session's.  Outside the ranges systemd hands out (system,
 * regular, dynamic and container users). */
#define MVM_JAIL_UID_BASE  1879113728u /* 0x70010000 */
#define MVM_JAIL_UID_COUNT 4096u
/* And a block of ids per session for virtiofsd (share.h), found from the
 * session's jail uid: base + (jail uid - MVM_JAIL_UID_BASE) * block. */
#define MVM_HELPER_ID_BASE 1880096768u /* 0x70100000 */

enum mvm_jail_layer {
    MVM_JAIL_MOUNTNS = 1 << 0, /* new mount ns, pivot_root into a minimal root */
    MVM_JAIL_PIDNS = 1 << 1,   /* new PID namespace */
    MVM_JAIL_NETNS = 1 << 2,   /* netns_fd, or a new empty network namespace */
    MVM_JAIL_UID = 1 << 3,     /* the unprivileged uid/gid */
    MVM_JAIL_CAPS = 1 << 4,    /* no capabilities, bounding and ambient included */
    MVM_JAIL_NNP = 1 << 5,     /* PR_SET_NO_NEW_PRIVS */
    MVM_JAIL_SECCOMP = 1 << 6, /* mvm's filter (jail-filter.c) */
    MVM_JAIL_RLIMITS = 1 << 7, /* no core dumps, bounded open files */
    MVM_JAIL_CGROUP = 1 << 8,  /* join cgroup_procs */
    MVM_JAIL_IPCNS = 1 << 9,   /* new IPC, UTS and cgroup namespaces */
    MVM_JAIL_ALL = (1 << 10) - 1,
};

/* A host file or directory bound read-only into the jail at dst. */
struct mvm_jail_bind {
    const char *src, *dst;
};

struct mvm_jail {
    const char *name; /* for errors: "QEMU", "virtiofsd for /usr" */
    const char *path;
    char *const *argv;
    char *const *envp;
    int stdin_fd, stdout_fd, stderr_fd; /* -1: /dev/null */
    const int *keep;                    /* further fds kept at their numbers */
    int nkeep;
    unsigned long nofile; /* RLIMIT_NOFILE; 0: inherit (always set when given) */

    unsigned layers; /* MVM_JAIL_* */
    const struct mvm_jail_bind *binds;
    size_t nbinds;
    bool dev_kvm; /* /dev/kvm in the jail, kvm as supplementary group */
    bool proc;    /* a read-only /proc of the jail's PID namespace (not for QEMU) */
    gid_t kvm_gid;
    int netns_fd; /* -1: a new, empty network namespace */
    uid_t uid;
    gid_t gid;
    const void *seccomp;       /* from mvm_jail_filter_new() */
    char *const *cgroup_procs; /* NULL-terminated cgroup.procs files to join */

    /* For virtiofsd, which is not jailed: setup runs first (still root,
     * host namespaces), then an optional user namespace whose maps mvm
     * writes from outside. */
    int (*setup)(void *arg, const char **what);
    void *setup_arg;
    const char *uid_map, *gid_map;
    uid_t ns_uid;
    gid_t ns_gid;
    bool ambient_caps; /* keep the namespace's capabilities across exec */
    /* With MVM_JAIL_CAPS: CAP_NET_ADMIN alone kept, ambient, across the
     * uid change and exec (wireguard-go sets its tun's MTU). */
    bool net_admin;
};

struct mvm_child {
    const char *name;
    pid_t pid; /* 0 when none */
    int pidfd; /* -1 when none */
    bool reaped;
    int status; /* wait status once reaped */
};

#define MVM_CHILD_INIT                                                    \
    {                                                                     \
        .name = NULL, .pid = 0, .pidfd = -1, .reaped = false, .status = 0 \
    }

int mvm_jail_start(const struct mvm_jail *j, struct mvm_child *c, struct mvm_error **err);

/* A user namespace with the given maps and no process left in it, as an
 * fd (O_CLOEXEC): what an idmapped mount takes.  A short-lived child
 * creates it and mvm writes the maps from outside. */
int mvm_jail_userns_fd(const char *uid_map, const char *gid_map, struct mvm_error **err);

/* jail-filter.c: mvm's seccomp filter (a libseccomp context), its rule
 * count, and its release. */
void *mvm_jail_filter_new(unsigned *nrules, struct mvm_error **err);
/* The same without its socket rules: for a helper that makes its own
 * network sockets (wireguard-go, whose Go runtime rules out an
 * allowlist). */
void *mvm_jail_filter_new_net(struct mvm_error **err);
/* An allowlist filter for mvm's own helpers: only the named system calls
 * (NULL-terminated; names this architecture lacks are skipped), socket()
 * only for AF_INET of the kinds in flags; the rest fails with EPERM. */
#define MVM_JAIL_SOCK_INET_STREAM 1u
#define MVM_JAIL_SOCK_INET_DGRAM  2u
/* Also threads: clone() with CLONE_THREAD (a thread shares everything,
 * so no namespace can come with it), clone3 ENOSYS so libc uses clone. */
#define MVM_JAIL_THREADS 4u
/* Also socketpair(AF_UNIX): a pair of ends that lead nowhere else
 * (libcurl's resolver wakes its caller through one). */
#define MVM_JAIL_SOCKETPAIR 8u
void *mvm_jail_filter_allowlist(const char *const *syscalls, unsigned flags,
                                struct mvm_error **err);
/* Everything but the named system calls, which fail with errnum: for a
 * helper that brings its own filter (virtiofsd), to take calls away. */
void *mvm_jail_filter_deny(const char *const *syscalls, int errnum, struct mvm_error **err);
void mvm_jail_filter_free(void *filter);

/* jail-root.c, in the child: builds the minimal root and pivots into it. */
int mvm_jail_enter_root(const struct mvm_jail *j, const char **what);

/* Non-blocking reap: 1 if it has exited (status saved), 0 if running. */
int mvm_child_poll(struct mvm_child *c);
/* Waits up to timeout_ms for exit; 1 if exited. */
int mvm_child_wait(struct mvm_child *c, int timeout_ms);
/* SIGKILL and reap; idempotent. */
void mvm_child_kill(struct mvm_child *c);

/* cleanup_pid: a child that is killed (through its pidfd) and reaped when
 * its variable goes out of scope, unless handed on with steal_child(). */
static inline void cleanup_child_fn(struct mvm_child *c)
{
    mvm_child_kill(c);
}
#define cleanup_pid __attribute__((cleanup(cleanup_child_fn)))
static inline struct mvm_child steal_child(struct mvm_child *c)
{
    struct mvm_child out = *c;
    *c = (struct mvm_child)MVM_CHILD_INIT;
    return out;
}

#endif
