/* One `mvm run`: the lifecycle and the teardown that runs on every path.
 * See session.h; the steps live in prepare.c, vm.c and loop.c. */
#include "session.h"

#include <errno.h>
#include <fcntl.h>
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

/* For mvm_sessiondir_if_last. */
static int host_teardown(void *with_table, struct mvm_error **err)
{
    return mvm_session_host_teardown(*(bool *)with_table, err);
}

int mvm_session_host_teardown(bool with_table, struct mvm_error **err)
{
    if (with_table && mvm_net_remove_host_table(err) < 0)
        return -1;
    if (remove_tree(MVM_PS_DIR) < 0) /* no session: no summary either */
        return mvm_error_set(err, errno, "removing %s", MVM_PS_DIR);
    if (remove_tree(MVM_EXEC_DIR) < 0) /* nor an mvm exec socket */
        return mvm_error_set(err, errno, "removing %s", MVM_EXEC_DIR);
    return 0;
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
    json_decref(s->audit_findings);
    mvm_kernel_clear(&s->kernel);
    mvm_virtiofsd_clear(&s->vfsd);
    mvm_jail_filter_free(s->filter);
    mvm_jail_filter_free(s->dns_filter);
    mvm_jail_filter_free(s->port_filter);
    mvm_jail_filter_free(s->gw_filter);
    session_api_keys_free(s);
    session_wireguard_free(s);
    for (size_t i = 0; i < s->nenv; i++)
        free(s->env[i]);
    free(s->env);
    mvm_disk_close(&s->scratch);
    mvm_image_close(&s->image);
    mvm_disk_close(&s->seed);
    free(s->boot_kernel);
    free(s->boot_kconfig);
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
    s->wg_proc = (struct mvm_child)MVM_CHILD_INIT;
    s->gateway = (struct mvm_child)MVM_CHILD_INIT;
    s->net = (struct mvm_net)MVM_NET_INIT;
    s->qemu_log = s->qmp_fd = s->ctl_fd = s->con_fd = s->console_log = s->sigfd = -1;
    s->scratch.fd = -1;
    s->seed.fd = -1;
    s->image = (struct mvm_image){.fd = -1, .overlay_fd = -1};
    exec_server_init(&s->execs);
    s->guard_tty = -1;
    return s;
}

/* mvm run --detach: the session runs on in a child of its own session
 * (no terminal: no SIGHUP when the terminal or ssh goes), whose errors
 * reach the terminal until it is up.  The parent prints the name the
 * child reports once it takes mvm attach, or returns the child's status
 * when it failed first.  Returns -1 in the child (*notify: where to
 * report), else the parent's exit status. */
static int detach_fork(int *notify)
{
    int p[2];
    if (pipe2(p, O_CLOEXEC) < 0) {
        fprintf(stderr, "mvm: --detach: pipe: %s\n", strerror(errno));
        return 125;
    }
    pid_t pid = fork();
    if (pid < 0) {
        fprintf(stderr, "mvm: --detach: fork: %s\n", strerror(errno));
        close(p[0]);
        close(p[1]);
        return 125;
    }
    if (pid == 0) {
        close(p[0]);
        setsid();
        *notify = p[1];
        return -1;
    }
    close(p[1]);
    char name[128];
    size_t len = 0;
    ssize_t n;
    while (len < sizeof name - 1 &&
           ((n = read(p[0], name + len, sizeof name - 1 - len)) > 0 || (n < 0 && errno == EINTR)))
        len += n > 0 ? (size_t)n : 0;
    close(p[0]);
    name[len] = '\0';
    if (len > 0 && name[len - 1] == '\n') {
        fputs(name, stdout);
        return 0;
    }
    int st;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;
    return WIFEXITED(st) ? WEXITSTATUS(st) : 125;
}

/* The detached session is up: its name to the parent, and stdio off the
 * terminal (its errors and notices have no one to read them now). */
static void detach_done(struct session *s, int notify)
{
    cleanup_free char *line = xasprintf("%s\n", s->name ? s->name : s->id);
    write_all(notify, line, strlen(line));
    close(notify);
    int null = open("/dev/null", O_RDWR | O_CLOEXEC);
    for (int fd = 0; null >= 0 && fd < 3; fd++)
        dup2(null, fd);
    if (null > 2)
        close(null);
}

int mvm_session_run(const struct mvm_run_opts *o)
{
    int notify = -1;
    if (o->detach) {
        int parent = detach_fork(&notify);
        if (parent >= 0)
            return parent;
    }
    struct session *s = session_new(o);
    cleanup_error struct mvm_error *err = NULL;
    int code;
    if (setup_signals(s, &err) < 0 || session_prepare(s, &err) < 0 ||
        session_audit_snapshot(s, &err) < 0 || session_start_vm(s, &err) < 0 ||
        session_terminal_setup(s, &err) < 0 || session_exec_listen(s, &err) < 0) {
        code = err->exit_code;
    } else {
        if (notify >= 0)
            detach_done(s, notify);
        notify = -1;
        code = session_loop(s, &err);
    }
    if (notify >= 0)
        close(notify);

    s->exit_code = code;
    s->end_reason = err ? err->msg : NULL;
    /* Teardown: reverse order of creation, every path. */
    session_trace(s, "teardown");
    mvm_undo_run(&s->undo);
    reap_orphans(1000);
    /* Nothing the guest could write through is left: what did it leave? */
    code = session_audit(s, code);
    session_write_result(s, code);
    bool with_table = s->o->net != MVM_NETOPT_NONE;
    cleanup_error struct mvm_error *host_err = NULL;
    if (s->dir && mvm_sessiondir_if_last(MVM_RUN_DIR, host_teardown, &with_table, &host_err) < 0)
        session_notice(s, "%s; mvm cleanup --all tries again", host_err->msg);
    session_trace(s, "done");
    if (err)
        mvm_error_print(err);
    release(s);
    free(s);
    return code;
}
