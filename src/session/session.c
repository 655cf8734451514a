/* One `mvm run`: the lifecycle and the teardown that runs on every path.
 * See session.h; the steps live in prepare.c, vm.c and loop.c. */
#include "session.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include "session-int.h"
#include "util.h"

/* Signals become events on a signalfd; children get a clean mask back
 * in jail.c.  SIGPIPE is ignored: a closed stdout shows up as EPIPE. */
static int setup_signals(struct session *s, struct mvm_error **err)
{
    sigset_t mask;
    sigemptyset(&mask);
    int sigs[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGWINCH};
    for (size_t i = 0; i < ARRAY_SIZE(sigs); i++)
        sigaddset(&mask, sigs[i]);
    if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0)
        return mvm_error_set(err, errno, "blocking signals");
    signal(SIGPIPE, SIG_IGN);
    prctl(PR_SET_CHILD_SUBREAPER, 1);
    s->sigfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
    if (s->sigfd < 0)
        return mvm_error_set(err, errno, "signalfd");
    return 0;
}

/* virtiofsd serves from a child it forks; when the waiting parent is
 * killed, that child is re-parented to us (we are a subreaper) and must
 * be reaped here, or it lingers as a zombie. */
static void reap_orphans(int timeout_ms)
{
    uint64_t end = now_ns() + (uint64_t)timeout_ms * 1000000ULL;
    for (;;) {
        pid_t pid = waitpid(-1, NULL, WNOHANG);
        if (pid < 0) /* ECHILD: none left */
            return;
        if (pid == 0) {
            if (now_ns() >= end)
                return;
            usleep(5000);
        }
    }
}

static void close_fd(int *fd)
{
    if (*fd >= 0)
        close(*fd);
    *fd = -1;
}

static void release(struct session *s)
{
    for (size_t i = 0; i < s->nshares; i++)
        mvm_share_clear(&s->shares[i]);
    if (s->qmp)
        mvm_qmp_free(s->qmp);
    mvm_relay_clear(&s->relay);
    int *fds[] = {&s->qemu_log, &s->qmp_fd, &s->ctl_fd, &s->con_fd, &s->console_log, &s->sigfd};
    for (size_t i = 0; i < ARRAY_SIZE(fds); i++)
        close_fd(fds[i]);
    mvm_user_clear(&s->user);
    mvm_kernel_clear(&s->kernel);
    mvm_virtiofsd_clear(&s->vfsd);
    mvm_jail_filter_free(s->filter);
    mvm_jail_filter_free(s->dns_filter);
    mvm_jail_filter_free(s->port_filter);
    for (size_t i = 0; i < s->nenv; i++)
        free(s->env[i]);
    free(s->env);
    mvm_disk_close(&s->scratch);
    free(s->name);
    for (size_t i = 0; i < s->ndisks; i++)
        mvm_disk_close(&s->disks[i]);
    for (size_t i = 0; i < MAX_DISKS; i++) /* a refused volume's path too */
        free(s->disk_paths[i]);
    session_guard_end(s);
    mvm_strv_free(s->links);
    mvm_strv_free(s->bins);
    char *strs[] = {s->cwd,         s->share_dir, s->guest_home, s->guest_cwd, s->vmlinux,
                    s->initrd_base, s->initrd,    s->qemu_bin,   s->dir,       s->shutdown_reason};
    for (size_t i = 0; i < ARRAY_SIZE(strs); i++)
        free(strs[i]);
}

/* On the heap: with its log tails the session is too big for a stack
 * frame of its own. */
static struct session *session_new(const struct mvm_run_opts *o)
{
    struct session *s = xcalloc(1, sizeof *s);
    s->o = o;
    s->t0 = now_ns();
    s->qemu = (struct mvm_child)MVM_CHILD_INIT;
    s->dns_relay = (struct mvm_child)MVM_CHILD_INIT;
    s->port_relay = (struct mvm_child)MVM_CHILD_INIT;
    s->net = (struct mvm_net)MVM_NET_INIT;
    s->qemu_log = s->qmp_fd = s->ctl_fd = s->con_fd = s->console_log = s->sigfd = -1;
    s->scratch.fd = -1;
    s->guard_tty = -1;
    return s;
}

int mvm_session_run(const struct mvm_run_opts *o)
{
    struct session *s = session_new(o);
    cleanup_error struct mvm_error *err = NULL;
    int code;
    if (setup_signals(s, &err) < 0 || session_prepare(s, &err) < 0 ||
        session_audit_snapshot(s, &err) < 0 || session_start_vm(s, &err) < 0 ||
        session_terminal_setup(s, &err) < 0)
        code = err->exit_code;
    else
        code = session_loop(s, &err);

    s->exit_code = code;
    s->end_reason = err ? err->msg : NULL;
    /* Teardown: reverse order of creation, every path. */
    session_trace(s, "teardown");
    mvm_undo_run(&s->undo);
    reap_orphans(1000);
    /* Nothing the guest could write through is left: what did it leave? */
    code = session_audit(s, code);
    session_trace(s, "done");
    if (err)
        mvm_error_print(err);
    release(s);
    free(s);
    return code;
}
