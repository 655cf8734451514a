/* Starting helpers, jailed or not; see jail.h.  Failures in the child
 * travel back over a close-on-exec pipe as (errno, step), so the parent
 * can say which step failed. */
#include "jail.h"

#include <cap-ng.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <linux/sched.h>
#include <poll.h>
#include <sched.h>
#include <seccomp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "syscalls.h"
#include "util.h"

#ifndef SYS_clone3
#define SYS_clone3 435
#endif

struct child_failure {
    int err;
    char what[120];
};

/* The child's end of the plumbing between parent and child. */
struct child_fds {
    int errpipe; /* write: a struct child_failure, or EOF at exec */
    int sync;    /* user namespace handshake, or -1 */
    int alive;   /* read end; hangs up when mvm is gone */
    int *keep;   /* room for nkeep + 2: allocated before the fork */
};

static void __attribute__((noreturn)) fail(int errpipe, const char *what)
{
    struct child_failure f = {.err = errno};
    snprintf(f.what, sizeof f.what, "%s", what);
    (void)!write(errpipe, &f, sizeof f);
    _exit(127);
}

static void reset_signals(void)
{
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    for (int sig = 1; sig < NSIG; sig++)
        signal(sig, SIG_DFL); /* SIGKILL/SIGSTOP and reserved ones just fail */
}

static int set_rlimits(const struct mvm_jail *j)
{
    struct rlimit nofile = {j->nofile, j->nofile}, none = {0, 0};
    if (j->nofile && setrlimit(RLIMIT_NOFILE, &nofile) < 0)
        return -1;
    if ((j->layers & MVM_JAIL_RLIMITS) && setrlimit(RLIMIT_CORE, &none) < 0)
        return -1;
    return 0;
}

static int join_cgroup(const struct mvm_jail *j)
{
    for (char *const *p = j->cgroup_procs; p && *p; p++)
        if (write_existing_file(*p, "0\n") < 0)
            return -1;
    return 0;
}

/* Puts the three stdio fds in place and closes everything not kept. */
static int arrange_fds(const struct mvm_jail *j, const struct child_fds *cf)
{
    int null = open("/dev/null", O_RDWR | O_CLOEXEC);
    int std[3] = {j->stdin_fd, j->stdout_fd, j->stderr_fd};
    for (int i = 0; i < 3; i++) {
        int from = std[i] >= 0 ? std[i] : null;
        if (from < 0 || dup2(from, i) < 0)
            return -1;
    }
    int *keep = cf->keep, n = 0;
    for (int i = 0; i < j->nkeep; i++) {
        keep[n++] = j->keep[i];
        int fl = fcntl(j->keep[i], F_GETFD);
        if (fl < 0 || fcntl(j->keep[i], F_SETFD, fl & ~FD_CLOEXEC) < 0)
            return -1;
    }
    keep[n++] = cf->errpipe;
    keep[n++] = cf->alive;
    return mvm_close_fds_except(3, keep, n);
}

static int write_map(pid_t pid, const char *file, const char *map)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/%s", (int)pid, file);
    return write_existing_file(path, map);
}

/* In the child: new user namespace, wait for the maps, become ns_uid. */
static void enter_userns(const struct mvm_jail *j, const struct child_fds *cf)
{
    char c = 0;
    if (unshare(CLONE_NEWUSER) < 0)
        fail(cf->errpipe, "creating a user namespace");
    if (write(cf->sync, &c, 1) != 1 || read(cf->sync, &c, 1) != 1)
        fail(cf->errpipe, "waiting for the user namespace maps");
    close(cf->sync);
    if (prctl(PR_SET_KEEPCAPS, 1) < 0 || setresgid(j->ns_gid, j->ns_gid, j->ns_gid) < 0 ||
        setgroups(0, NULL) < 0 || setresuid(j->ns_uid, j->ns_uid, j->ns_uid) < 0)
        fail(cf->errpipe, "switching to the namespace's user");
}

/* Every capability of the (user) namespace survives exec as ambient. */
static int raise_ambient(void)
{
    struct __user_cap_header_struct hdr = {_LINUX_CAPABILITY_VERSION_3, 0};
    struct __user_cap_data_struct data[2];
    if (syscall(SYS_capget, &hdr, data) < 0)
        return -1;
    for (int i = 0; i < 2; i++)
        data[i].inheritable = data[i].effective = data[i].permitted;
    if (syscall(SYS_capset, &hdr, data) < 0)
        return -1;
    for (int cap = 0; cap <= CAP_LAST_CAP; cap++) {
        uint32_t word = data[cap / 32].permitted;
        if ((word & (1u << (cap % 32))) &&
            prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, cap, 0, 0) < 0 && errno != EINVAL)
            return -1;
    }
    return 0;
}

/* The unprivileged identity and no capabilities at all.  The bounding set
 * goes first, while we still hold CAP_SETPCAP; the uid change then clears
 * the permitted and effective sets. */
static int drop_privileges(const struct mvm_jail *j, const char **what)
{
    bool uid = j->layers & MVM_JAIL_UID, caps = j->layers & MVM_JAIL_CAPS;
    *what = "setting supplementary groups";
    if (uid && (j->dev_kvm && j->kvm_gid != 0 ? setgroups(1, &j->kvm_gid) : setgroups(0, NULL)) < 0)
        return -1;
    *what = "dropping capabilities";
    if (caps) {
        capng_clear(CAPNG_SELECT_ALL);
        if (j->net_admin)
            capng_update(CAPNG_ADD, CAPNG_BOUNDING_SET, CAP_NET_ADMIN);
        if (capng_apply(CAPNG_SELECT_BOUNDS) < 0 ||
            prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0)
            return -1;
    }
    *what = "switching to the jail's user";
    if (uid && (!caps || j->net_admin) && prctl(PR_SET_KEEPCAPS, 1) < 0)
        return -1;
    if (uid && (setresgid(j->gid, j->gid, j->gid) < 0 || setresuid(j->uid, j->uid, j->uid) < 0))
        return -1;
    *what = "dropping capabilities";
    if (caps) {
        capng_clear(CAPNG_SELECT_BOTH);
        if (j->net_admin)
            capng_update(CAPNG_ADD, CAPNG_EFFECTIVE | CAPNG_PERMITTED | CAPNG_INHERITABLE,
                         CAP_NET_ADMIN);
        if (capng_apply(CAPNG_SELECT_BOTH) < 0)
            return -1;
        if (j->net_admin && prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, CAP_NET_ADMIN, 0, 0) < 0)
            return -1;
    }
    return 0;
}

/* After every uid change, which would clear it.  A parent in another PID
 * namespace shows up as getppid() == 0, so "still there" is asked of the
 * pipe whose write end only mvm holds. */
static int set_death_signal(const struct child_fds *cf)
{
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0)
        return -1;
    struct pollfd p = {.fd = cf->alive, .events = POLLIN};
    if (poll(&p, 1, 0) != 0) { /* POLLHUP: mvm is gone */
        errno = ESRCH;
        return -1;
    }
    close(cf->alive);
    return 0;
}

static void __attribute__((noreturn)) child_main(const struct mvm_jail *j, struct child_fds *cf)
{
    const char *what = "setting up";
    reset_signals();
    if (setpgid(0, 0) < 0)
        fail(cf->errpipe, "creating a process group");
    /* Before any uid change: afterwards the hard limit cannot be raised. */
    if (set_rlimits(j) < 0)
        fail(cf->errpipe, "setting resource limits");
    if ((j->layers & MVM_JAIL_CGROUP) && join_cgroup(j) < 0)
        fail(cf->errpipe, "joining the session's cgroup");
    /* After joining: the namespace is rooted where the process is then,
     * so it sees its own cgroup as / and nothing above it. */
    if ((j->layers & MVM_JAIL_IPCNS) && unshare(CLONE_NEWCGROUP) < 0)
        fail(cf->errpipe, "creating a cgroup namespace");
    /* While still root in the host's user namespace: joining a network
     * namespace needs CAP_SYS_ADMIN over its owner, which a new user
     * namespace would not have. */
    if ((j->layers & MVM_JAIL_NETNS) && j->netns_fd >= 0 && setns(j->netns_fd, CLONE_NEWNET) < 0)
        fail(cf->errpipe, "entering the session's network namespace");
    if (j->setup && j->setup(j->setup_arg, &what) < 0)
        fail(cf->errpipe, what);
    if (j->uid_map)
        enter_userns(j, cf);
    if (arrange_fds(j, cf) < 0)
        fail(cf->errpipe, "arranging file descriptors");
    if ((j->layers & MVM_JAIL_MOUNTNS) && mvm_jail_enter_root(j, &what) < 0)
        fail(cf->errpipe, what);
    if (drop_privileges(j, &what) < 0)
        fail(cf->errpipe, what);
    if (j->ambient_caps && raise_ambient() < 0)
        fail(cf->errpipe, "keeping capabilities");
    if ((j->layers & MVM_JAIL_NNP) && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
        fail(cf->errpipe, "setting no_new_privs");
    if (set_death_signal(cf) < 0)
        fail(cf->errpipe, "mvm exited while starting it");
    /* Last: from here on, only exec. */
    if ((j->layers & MVM_JAIL_SECCOMP) && j->seccomp) {
        int rc = seccomp_load((scmp_filter_ctx)j->seccomp);
        if (rc < 0) {
            errno = -rc;
            fail(cf->errpipe, "loading the seccomp filter");
        }
    }
    execve(j->path, j->argv, j->envp);
    fail(cf->errpipe, "executing it");
}

static int parent_userns(const struct mvm_jail *j, pid_t pid, int sync_fd, struct mvm_error **err)
{
    char c;
    if (read(sync_fd, &c, 1) != 1)
        return 0; /* the child failed; its error arrives on the error pipe */
    if (write_map(pid, "uid_map", j->uid_map) < 0 || write_map(pid, "gid_map", j->gid_map) < 0)
        return mvm_error_set(err, errno, "writing the user namespace maps of %s", j->name);
    if (write(sync_fd, &c, 1) != 1)
        return mvm_error_set(err, errno, "releasing %s", j->name);
    return 0;
}

/* fork(), but with the namespaces the jail asks for created at once (a
 * new PID namespace can only be entered by a new process) and a pidfd. */
static pid_t clone_child(const struct mvm_jail *j, int *pidfd)
{
    uint64_t flags = CLONE_PIDFD;
    if (j->layers & MVM_JAIL_PIDNS)
        flags |= CLONE_NEWPID;
    if (j->layers & MVM_JAIL_MOUNTNS)
        flags |= CLONE_NEWNS;
    if ((j->layers & MVM_JAIL_NETNS) && j->netns_fd < 0)
        flags |= CLONE_NEWNET;
    /* SysV IPC and POSIX message queues are per IPC namespace; without
     * one, an escaped QEMU could reach the host's objects.  The cgroup
     * namespace comes later, once the child is in its cgroup. */
    if (j->layers & MVM_JAIL_IPCNS)
        flags |= CLONE_NEWIPC | CLONE_NEWUTS;
    struct clone_args args = {
        .flags = flags,
        .pidfd = (uint64_t)(uintptr_t)pidfd,
        .exit_signal = SIGCHLD,
    };
    return (pid_t)syscall(SYS_clone3, &args, sizeof args);
}

static void close_pair(int p[2])
{
    for (int i = 0; i < 2; i++)
        if (p[i] >= 0)
            close(p[i]);
}

static int make_pipes(const struct mvm_jail *j, int errp[2], int alive[2], int sync[2],
                      struct mvm_error **err)
{
    if (pipe2(errp, O_CLOEXEC) < 0 || pipe2(alive, O_CLOEXEC) < 0 ||
        (j->uid_map && socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sync) < 0)) {
        int e = errno;
        close_pair(errp);
        close_pair(alive);
        return mvm_error_set(err, e, "starting %s: pipe", j->name);
    }
    return 0;
}

/* After the fork: wait for exec (the error pipe closes) or a failure. */
static int await_exec(const struct mvm_jail *j, struct mvm_child *c, int rd, struct mvm_error **err)
{
    struct child_failure f;
    ssize_t n;
    while ((n = read(rd, &f, sizeof f)) < 0 && errno == EINTR)
        ;
    if (n == 0)
        return 0;
    mvm_child_kill(c);
    if (n != sizeof f)
        return mvm_error_set(err, EIO, "starting %s", j->name);
    f.what[sizeof f.what - 1] = '\0';
    return mvm_error_set(err, f.err, "starting %s (%s): %s", j->name, j->path, f.what);
}

int mvm_jail_start(const struct mvm_jail *j, struct mvm_child *c, struct mvm_error **err)
{
    if (j->nkeep < 0)
        return mvm_error_set(err, EINVAL, "starting %s: %d fds to keep", j->name, j->nkeep);
    int errp[2] = {-1, -1}, alive[2] = {-1, -1}, sync[2] = {-1, -1};
    if (make_pipes(j, errp, alive, sync, err) < 0)
        return -1;
    /* The child allocates nothing: it may be a copy of a threaded mvm. */
    cleanup_free int *keep = xmalloc(((size_t)j->nkeep + 2) * sizeof *keep);
    int pidfd = -1;
    pid_t pid = clone_child(j, &pidfd);
    if (pid == 0) {
        struct child_fds cf = {
            .errpipe = errp[1], .sync = sync[1], .alive = alive[0], .keep = keep};
        close(errp[0]);
        close(alive[1]);
        if (sync[0] >= 0)
            close(sync[0]);
        child_main(j, &cf);
    }
    close(errp[1]);
    close(alive[0]);
    if (sync[1] >= 0)
        close(sync[1]);
    cleanup_close int rd = errp[0];
    cleanup_close int alive_w = alive[1]; /* held until exec: see set_death_signal */
    cleanup_close int sync_fd = sync[0];
    if (pid < 0)
        return mvm_error_set(err, errno, "starting %s: clone", j->name);
    c->name = j->name;
    c->pid = pid;
    c->pidfd = pidfd;
    c->reaped = false;
    if (j->uid_map && parent_userns(j, pid, sync_fd, err) < 0) {
        mvm_child_kill(c);
        return -1;
    }
    return await_exec(j, c, rd, err);
}

int mvm_jail_userns_fd(const char *uid_map, const char *gid_map, struct mvm_error **err)
{
    int p[2];
    if (pipe2(p, O_CLOEXEC) < 0)
        return mvm_error_set(err, errno, "creating a user namespace: pipe");
    struct clone_args args = {.flags = CLONE_NEWUSER, .exit_signal = SIGCHLD};
    pid_t pid = (pid_t)syscall(SYS_clone3, &args, sizeof args);
    if (pid == 0) { /* holds the namespace until mvm has opened it */
        char c;
        close(p[1]);
        (void)!read(p[0], &c, 1);
        _exit(0);
    }
    close(p[0]);
    int fd = -1;
    if (pid > 0 && write_map(pid, "uid_map", uid_map) == 0 &&
        write_map(pid, "gid_map", gid_map) == 0) {
        char path[64];
        snprintf(path, sizeof path, "/proc/%d/ns/user", (int)pid);
        fd = open(path, O_RDONLY | O_CLOEXEC);
    }
    int e = pid < 0 ? errno : fd < 0 ? errno : 0;
    close(p[1]);
    if (pid > 0)
        while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
            ;
    if (fd < 0)
        return mvm_error_set(err, e, "creating a user namespace for an idmapped mount");
    return fd;
}

int mvm_child_poll(struct mvm_child *c)
{
    if (c->pid <= 0 || c->reaped)
        return 1;
    int st;
    pid_t r = waitpid(c->pid, &st, WNOHANG);
    if (r == 0)
        return 0;
    c->reaped = true;
    c->status = r == c->pid ? st : 0;
    if (c->pidfd >= 0) {
        close(c->pidfd);
        c->pidfd = -1;
    }
    return 1;
}

int mvm_child_wait(struct mvm_child *c, int timeout_ms)
{
    if (mvm_child_poll(c))
        return 1;
    if (c->pidfd >= 0) {
        struct pollfd p = {.fd = c->pidfd, .events = POLLIN};
        uint64_t end = now_ns() + (uint64_t)timeout_ms * 1000000ULL;
        for (;;) {
            uint64_t now = now_ns();
            int left = now >= end ? 0 : (int)((end - now) / 1000000ULL);
            int r = poll(&p, 1, left);
            if (r > 0 || (r == 0 && left == 0) || (r < 0 && errno != EINTR))
                break;
        }
    }
    return mvm_child_poll(c);
}

void mvm_child_kill(struct mvm_child *c)
{
    if (c->pid <= 0 || c->reaped)
        return;
    if (c->pidfd >= 0)
        mvm_pidfd_send_signal(c->pidfd, SIGKILL);
    else
        kill(c->pid, SIGKILL);
    int st = 0;
    while (waitpid(c->pid, &st, 0) < 0 && errno == EINTR)
        ;
    c->reaped = true;
    c->status = st;
    if (c->pidfd >= 0) {
        close(c->pidfd);
        c->pidfd = -1;
    }
}
