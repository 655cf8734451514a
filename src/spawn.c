/* Helper processes; see spawn.h.  Failures in the child travel back over
 * a close-on-exec pipe as (errno, step) so the parent can report them. */
#include "spawn.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "syscalls.h"
#include "util.h"

struct child_failure {
    int err;
    char what[120];
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

/* Puts the three stdio fds in place and closes everything not kept. */
static int arrange_fds(const struct mvm_spawn *s, int errpipe, int sync_fd)
{
    int null = open("/dev/null", O_RDWR | O_CLOEXEC);
    int std[3] = {s->stdin_fd, s->stdout_fd, s->stderr_fd};
    for (int i = 0; i < 3; i++) {
        int from = std[i] >= 0 ? std[i] : null;
        if (from < 0 || dup2(from, i) < 0)
            return -1;
    }
    int keep[66];
    int n = 0;
    for (int i = 0; i < s->nkeep && n < 63; i++) {
        keep[n++] = s->keep[i];
        int fl = fcntl(s->keep[i], F_GETFD);
        if (fl < 0 || fcntl(s->keep[i], F_SETFD, fl & ~FD_CLOEXEC) < 0)
            return -1;
    }
    keep[n++] = errpipe;
    if (sync_fd >= 0)
        keep[n++] = sync_fd;
    return mvm_close_fds_except(3, keep, n);
}

static int write_map(pid_t pid, const char *file, const char *map)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/%s", (int)pid, file);
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    int rc = write_all(fd, map, strlen(map));
    close(fd);
    return rc;
}

/* In the child: new user namespace, wait for the maps, become ns_uid. */
static void enter_userns(const struct mvm_spawn *s, int sync_fd, int errpipe)
{
    char c = 0;
    if (unshare(CLONE_NEWUSER) < 0)
        fail(errpipe, "creating a user namespace");
    if (write(sync_fd, &c, 1) != 1 || read(sync_fd, &c, 1) != 1)
        fail(errpipe, "waiting for the user namespace maps");
    if (prctl(PR_SET_KEEPCAPS, 1) < 0 || setresgid(s->ns_gid, s->ns_gid, s->ns_gid) < 0 ||
        setgroups(0, NULL) < 0 || setresuid(s->ns_uid, s->ns_uid, s->ns_uid) < 0)
        fail(errpipe, "switching to the namespace's user");
}

/* Every capability of the (user) namespace survives exec as ambient. */
static int raise_ambient(void)
{
    struct __user_cap_header_struct hdr = {_LINUX_CAPABILITY_VERSION_3, 0};
    struct __user_cap_data_struct data[2];
    if (syscall(SYS_capget, &hdr, data) < 0)
        return -1;
    data[0].inheritable = data[0].permitted;
    data[1].inheritable = data[1].permitted;
    data[0].effective = data[0].permitted;
    data[1].effective = data[1].permitted;
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

static void __attribute__((noreturn))
child_main(const struct mvm_spawn *s, pid_t parent, int errpipe, int sync_fd)
{
    reset_signals();
    if (setpgid(0, 0) < 0)
        fail(errpipe, "creating a process group");
    /* Before any uid change: afterwards the hard limit cannot be raised. */
    struct rlimit nofile = {s->nofile, s->nofile};
    if (s->nofile && setrlimit(RLIMIT_NOFILE, &nofile) < 0)
        fail(errpipe, "limiting open files");
    if (s->uid_map)
        enter_userns(s, sync_fd, errpipe);
    if (arrange_fds(s, errpipe, -1) < 0)
        fail(errpipe, "arranging file descriptors");
    const char *what = "setting up";
    if (s->setup && s->setup(s->setup_arg, &what) < 0)
        fail(errpipe, what);
    if (s->ambient_caps && raise_ambient() < 0)
        fail(errpipe, "keeping capabilities");
    /* After every uid change, which would clear it. */
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0)
        fail(errpipe, "setting the parent-death signal");
    if (getppid() != parent) {
        errno = ESRCH;
        fail(errpipe, "mvm exited while starting it");
    }
    execve(s->path, s->argv, s->envp);
    fail(errpipe, "executing it");
}

static int parent_userns(const struct mvm_spawn *s, pid_t pid, int sync_fd, struct mvm_error **err)
{
    char c;
    if (read(sync_fd, &c, 1) != 1)
        return 0; /* the child failed; its error arrives on the error pipe */
    if (write_map(pid, "uid_map", s->uid_map) < 0 || write_map(pid, "gid_map", s->gid_map) < 0)
        return mvm_error_set(err, errno, "writing the user namespace maps of %s", s->name);
    if (write(sync_fd, &c, 1) != 1)
        return mvm_error_set(err, errno, "releasing %s", s->name);
    return 0;
}

int mvm_spawn(const struct mvm_spawn *s, struct mvm_child *c, struct mvm_error **err)
{
    int errpipe[2], sync[2] = {-1, -1};
    if (pipe2(errpipe, O_CLOEXEC) < 0)
        return mvm_error_set(err, errno, "starting %s: pipe", s->name);
    if (s->uid_map && socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sync) < 0) {
        close(errpipe[0]);
        close(errpipe[1]);
        return mvm_error_set(err, errno, "starting %s: socketpair", s->name);
    }
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid == 0) {
        close(errpipe[0]);
        if (sync[0] >= 0)
            close(sync[0]);
        child_main(s, parent, errpipe[1], sync[1]);
    }
    close(errpipe[1]);
    if (sync[1] >= 0)
        close(sync[1]);
    cleanup_close int rd = errpipe[0];
    cleanup_close int sync_fd = sync[0];
    if (pid < 0)
        return mvm_error_set(err, errno, "starting %s: fork", s->name);
    c->name = s->name;
    c->pid = pid;
    c->reaped = false;
    c->pidfd = mvm_pidfd_open(pid);
    if (c->pidfd < 0) {
        mvm_child_kill(c);
        return mvm_error_set(err, errno, "starting %s: pidfd_open", s->name);
    }
    if (s->uid_map && parent_userns(s, pid, sync_fd, err) < 0) {
        mvm_child_kill(c);
        return -1;
    }
    struct child_failure f;
    ssize_t n;
    while ((n = read(rd, &f, sizeof f)) < 0 && errno == EINTR)
        ;
    if (n == 0)
        return 0; /* exec happened: the pipe closed on exec */
    mvm_child_kill(c);
    if (n != sizeof f)
        return mvm_error_set(err, EIO, "starting %s", s->name);
    f.what[sizeof f.what - 1] = '\0';
    return mvm_error_set(err, f.err, "starting %s (%s): %s", s->name, s->path, f.what);
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
