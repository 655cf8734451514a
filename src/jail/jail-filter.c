/* mvm's own seccomp filter for jailed helpers, installed under QEMU's
 * -sandbox filter.  A deny list: QEMU needs too many system calls for an
 * allow list that stays right across QEMU versions, and what matters is
 * that an escaped QEMU cannot reach the kernel's riskiest interfaces or
 * leave its cell.  Calls with no legitimate use in QEMU kill the process;
 * the rest fail with EPERM, which QEMU handles for the ones it probes. */
#include <errno.h>
#include <linux/sched.h>
#include <netinet/in.h>
#include <seccomp.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#include "jail.h"

/* Namespace creation and entry, mounts, tracing, kernel extension and
 * key interfaces, privileged I/O, clock and host settings. */
static const char *const deny_eperm[] = {
    "unshare",
    "setns",
    "mount",
    "umount2",
    "pivot_root",
    "chroot",
    "fsopen",
    "fsconfig",
    "fsmount",
    "fspick",
    "move_mount",
    "open_tree",
    "mount_setattr",
    "ptrace",
    "process_vm_readv",
    "process_vm_writev",
    "process_madvise",
    "pidfd_getfd",
    "bpf",
    "perf_event_open",
    "keyctl",
    "add_key",
    "request_key",
    "userfaultfd",
    "swapon",
    "swapoff",
    "acct",
    "iopl",
    "ioperm",
    "open_by_handle_at",
    "name_to_handle_at",
    "quotactl",
    "syslog",
    "settimeofday",
    "clock_settime",
    "clock_adjtime",
    "adjtimex",
    "sethostname",
    "setdomainname",
    "vhangup",
    "lookup_dcookie",
    "fanotify_init",
    /* Segment descriptors of its own: 16-bit code and old exploits. */
    "modify_ldt",
    /* io_uring runs operations (socket creation among them) that seccomp
     * never sees, and is a large attack surface; QEMU falls back without. */
    "io_uring_setup",
    "io_uring_enter",
    "io_uring_register",
};

/* No legitimate use at all: kill the process. */
static const char *const deny_kill[] = {
    "kexec_load", "kexec_file_load", "init_module", "finit_module", "delete_module", "reboot",
};

/* clone() flags that create namespaces (CLONE_NEWTIME is 0x80). */
static const unsigned long clone_ns_flags[] = {
    CLONE_NEWNS,   CLONE_NEWCGROUP, CLONE_NEWUTS, CLONE_NEWIPC,
    CLONE_NEWUSER, CLONE_NEWPID,    CLONE_NEWNET, 0x80,
};

static int add_by_name(scmp_filter_ctx ctx, uint32_t action, const char *name, unsigned *n)
{
    int nr = seccomp_syscall_resolve_name(name);
    if (nr == __NR_SCMP_ERROR)
        return 0; /* not on this architecture */
    int rc = seccomp_rule_add(ctx, action, nr, 0);
    if (rc == 0)
        (*n)++;
    return rc;
}

static int add_rules(scmp_filter_ctx ctx, bool sockets, unsigned *n)
{
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < sizeof deny_eperm / sizeof deny_eperm[0]; i++)
        rc = add_by_name(ctx, SCMP_ACT_ERRNO(EPERM), deny_eperm[i], n);
    for (size_t i = 0; rc == 0 && i < sizeof deny_kill / sizeof deny_kill[0]; i++)
        rc = add_by_name(ctx, SCMP_ACT_KILL_PROCESS, deny_kill[i], n);
    for (size_t i = 0; rc == 0 && i < sizeof clone_ns_flags / sizeof clone_ns_flags[0]; i++) {
        unsigned long f = clone_ns_flags[i];
        rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(clone), 1,
                              SCMP_A0(SCMP_CMP_MASKED_EQ, f, f));
        if (rc == 0)
            (*n)++;
    }
    /* clone3 passes its flags in memory a filter cannot read: make libc
     * fall back to clone(), whose flags are checked above. */
    if (rc == 0 && (rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3), 0)) == 0)
        (*n)++;
    /* Another execution domain (READ_IMPLIES_EXEC, a 32-bit address
     * space...) weakens the process: only the default persona (0) may be
     * set.  A filter rule compares an argument once, so the query
     * (0xffffffff) is refused too; QEMU does not ask. */
    if (rc == 0 && (rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(personality), 1,
                                          SCMP_A0(SCMP_CMP_NE, 0))) == 0)
        (*n)++;
    /* Sockets: QEMU gets every network endpoint as a descriptor. */
    if (!sockets)
        return rc;
    if (rc == 0 && (rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(socket), 1,
                                          SCMP_A0(SCMP_CMP_NE, AF_UNIX))) == 0)
        (*n)++;
    if (rc == 0 && (rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(socketpair), 1,
                                          SCMP_A0(SCMP_CMP_NE, AF_UNIX))) == 0)
        (*n)++;
    return rc;
}

static void *filter_new(bool sockets, unsigned *nrules, struct mvm_error **err)
{
    /* Only the native architecture; a call through another ABI (x32,
     * i386 int 0x80) kills the process. */
    scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
    if (ctx == NULL)
        return mvm_error_set(err, ENOMEM, "creating the seccomp filter"), NULL;
    unsigned n = 0;
    int rc = seccomp_attr_set(ctx, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS);
    if (rc == 0)
        rc = add_rules(ctx, sockets, &n);
    if (rc < 0) {
        seccomp_release(ctx);
        mvm_error_set(err, -rc, "building the seccomp filter");
        return NULL;
    }
    if (nrules)
        *nrules = n;
    return ctx;
}

void *mvm_jail_filter_new(unsigned *nrules, struct mvm_error **err)
{
    return filter_new(true, nrules, err);
}

void *mvm_jail_filter_new_net(struct mvm_error **err)
{
    return filter_new(false, NULL, err);
}

/* An allowlist: for a helper of mvm's own (a relay), whose every system
 * call is known.  Anything else fails with EPERM, which the helper
 * handles like any failure; socket() only for the IPv4 kinds asked for. */
void *mvm_jail_filter_allowlist(const char *const *syscalls, unsigned flags, struct mvm_error **err)
{
    scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ERRNO(EPERM));
    if (ctx == NULL)
        return mvm_error_set(err, ENOMEM, "creating the seccomp filter"), NULL;
    unsigned n = 0;
    int rc = seccomp_attr_set(ctx, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS);
    for (size_t i = 0; rc == 0 && syscalls[i]; i++)
        rc = add_by_name(ctx, SCMP_ACT_ALLOW, syscalls[i], &n);
    /* The protocol 0 or named: IPPROTO_TCP for a stream, UDP for a datagram. */
    const int types[] = {SOCK_STREAM, SOCK_DGRAM};
    const int protos[] = {IPPROTO_TCP, IPPROTO_UDP};
    const unsigned kinds[] = {MVM_JAIL_SOCK_INET_STREAM, MVM_JAIL_SOCK_INET_DGRAM};
    for (size_t i = 0; rc == 0 && i < 2; i++)
        for (int named = 0; rc == 0 && named < 2 && (flags & kinds[i]); named++)
            rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(socket), 3,
                                  SCMP_A0(SCMP_CMP_EQ, AF_INET),
                                  SCMP_A1(SCMP_CMP_MASKED_EQ, 0xf, (scmp_datum_t)types[i]),
                                  SCMP_A2(SCMP_CMP_EQ, named ? (scmp_datum_t)protos[i] : 0));
    if (rc == 0 && (flags & MVM_JAIL_THREADS)) {
        rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(clone), 1,
                              SCMP_A0(SCMP_CMP_MASKED_EQ, CLONE_THREAD, CLONE_THREAD));
        if (rc == 0)
            rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3), 0);
    }
    if (rc == 0 && (flags & MVM_JAIL_SOCKETPAIR))
        rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(socketpair), 1,
                              SCMP_A0(SCMP_CMP_EQ, AF_UNIX));
    if (rc < 0) {
        seccomp_release(ctx);
        mvm_error_set(err, -rc, "building the seccomp filter");
        return NULL;
    }
    return ctx;
}

/* A denylist on top of a helper's own filter: everything is allowed but
 * the named calls, which fail with errnum. */
void *mvm_jail_filter_deny(const char *const *syscalls, int errnum, struct mvm_error **err)
{
    scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
    if (ctx == NULL)
        return mvm_error_set(err, ENOMEM, "creating the seccomp filter"), NULL;
    unsigned n = 0;
    int rc = 0;
    for (size_t i = 0; rc == 0 && syscalls[i]; i++)
        rc = add_by_name(ctx, SCMP_ACT_ERRNO((uint32_t)errnum), syscalls[i], &n);
    if (rc < 0) {
        seccomp_release(ctx);
        mvm_error_set(err, -rc, "building the seccomp filter");
        return NULL;
    }
    return ctx;
}

void mvm_jail_filter_free(void *filter)
{
    if (filter)
        seccomp_release((scmp_filter_ctx)filter);
}
