/* The session's event loop: the relay, QMP events, the console, helper
 * logs and exits, signals and deadlines -- until the command's status is
 * known or something ends the session early. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include "json-cleanup.h"
#include "qmp.h"
#include "session-int.h"
#include "tty.h"
#include "util.h"

/* relay (4) + QMP, console, QEMU log, signals, QEMU pidfd + 2 per share */

static void undo_terminal(void *arg)
{
    session_terminal_restore(arg);
}

/* Raw mode for the user's terminal, non-blocking stdio for the relay;
 * both undone at exit. */
int session_terminal_setup(struct session *s, struct mvm_error **err)
{
    uint16_t rows, cols;
    tty_winsize(s->stdout_tty ? STDOUT_FILENO : STDIN_FILENO, &rows, &cols);
    if (s->o->detach) {
        /* No terminal here: mvm attach's client has it (exec-server.c),
         * and no stdin, so none ends. */
        mvm_relay_init(&s->relay, s->ctl_fd, -1, -1, -1, s->tty);
        s->relay.in_done = true;
    } else {
        mvm_undo_push(&s->undo, undo_terminal, s, "terminal");
        if (tty_setup(&s->term, s->tty && s->stdin_tty, err) < 0)
            return -1;
        mvm_relay_init(&s->relay, s->ctl_fd, STDIN_FILENO, STDOUT_FILENO, STDERR_FILENO, s->tty);
        mvm_relay_filter_terminals(&s->relay, s->stdout_tty, isatty(STDERR_FILENO));
        s->relay_started = true;
    }
    mvm_relay_start(&s->relay, s->o->argv, s->o->argc, s->env, s->nenv, s->tty ? MVM_START_TTY : 0,
                    rows, cols);
    return 0;
}

static void undo_exec(void *arg)
{
    exec_server_close(arg);
}

int session_exec_listen(struct session *s, struct mvm_error **err)
{
    mvm_undo_push(&s->undo, undo_exec, &s->execs, "mvm exec socket");
    return exec_server_listen(&s->execs, s->id, s->user.uid, s->user.gid, s->o->detach, &s->relay,
                              err);
}

void session_terminal_restore(struct session *s)
{
    tty_restore(&s->term, s->relay_started ? &s->relay : NULL, s->stdout_tty);
}

static void drain_console(struct session *s)
{
    char buf[16384];
    ssize_t n;
    while ((n = read(s->con_fd, buf, sizeof buf)) > 0) {
        tail_add(&s->console_tail, buf, (size_t)n);
        if (s->console_written < CONSOLE_LOG_MAX) {
            size_t w = (size_t)n;
            if (w > CONSOLE_LOG_MAX - s->console_written)
                w = CONSOLE_LOG_MAX - s->console_written;
            if (write_all(s->console_log, buf, w) == 0)
                s->console_written += w;
        }
        if (s->o->console || session_tracing()) {
            /* Guest root writes what it likes to the serial port. */
            struct buf out = {0};
            mvm_outfilter_feed(&s->console_filter, buf, (size_t)n, &out);
            write_all(STDERR_FILENO, out.data, out.len);
            buf_free(&out);
        }
    }
}

/* QEMU ended before the command's status arrived: say why. */
static int vm_died(struct session *s, struct mvm_error **err)
{
    if (s->qmp && !mvm_qmp_closed(s->qmp)) { /* SHUTDOWN/GUEST_PANICKED may be unread */
        cleanup_error struct mvm_error *ignored = NULL;
        mvm_qmp_dispatch(s->qmp, &ignored);
    }
    drain_console(s);
    drain_log(s->qemu_log, &s->qemu_tail);
    cleanup_free char *con = last_line(&s->console_tail);
    cleanup_free char *q = last_line(&s->qemu_tail);
    const char *reason = s->shutdown_reason ? s->shutdown_reason : "";
    bool panic_on_console = memmem(s->console_tail.buf, s->console_tail.len, "Kernel panic",
                                   strlen("Kernel panic")) != NULL;
    if (s->panicked || panic_on_console || strcmp(reason, "guest-panic") == 0)
        return mvm_error_set(err, 0,
                             "the guest kernel crashed before the command finished (console: %s); "
                             "rerun with --console to see its log",
                             con[0] ? con : "empty");
    /* With -no-reboot, a guest reboot (RESET) ends QEMU as guest-reset. */
    if (strcmp(reason, "guest-reset") == 0 || s->resets > 0)
        return mvm_error_set(err, 0,
                             "the guest rebooted before the command finished (console: %s); "
                             "rerun with --console to see its log",
                             con[0] ? con : "empty");
    if (!s->relay.ready)
        return mvm_error_set(
            err, 0, "the VM stopped before mvm-init started (%s%s%s); rerun with --console",
            q[0] ? "QEMU: " : "console: ", q[0] ? q : (con[0] ? con : "empty"), "");
    return mvm_error_set(err, 0,
                         "the VM stopped before the command finished (%s%s); rerun with "
                         "--console to see the guest's log",
                         q[0] ? "QEMU: " : "console: ", q[0] ? q : (con[0] ? con : "empty"));
}

/* mvm pauses the VM only at a disk limit (guard.c): any other STOP means
 * QEMU stopped it (an internal or I/O error); a paused guest would
 * otherwise hang the session. */
static int vm_paused(struct session *s, struct mvm_error **err)
{
    cleanup_json json_t *status = NULL;
    cleanup_error struct mvm_error *qerr = NULL;
    const char *why = "unknown";
    if (mvm_qmp_execute(s->qmp, "query-status", NULL, &status, 2000, &qerr) == 0)
        why = json_string_value(json_object_get(status, "status"));
    if (why && strcmp(why, "running") == 0) { /* resumed meanwhile */
        s->vm_stopped = false;
        return 0;
    }
    return mvm_error_set(err, 0, "QEMU paused the VM (status: %s); the VM was destroyed",
                         why ? why : "unknown");
}

/* Returns -1 when the session must end (err says why, with 128+N), 0 to
 * go on. */
static int on_signal(struct session *s, struct mvm_error **err)
{
    struct signalfd_siginfo si;
    while (read(s->sigfd, &si, sizeof si) == sizeof si) {
        int sig = (int)si.ssi_signo;
        if (sig == SIGWINCH) {
            uint16_t rows, cols;
            tty_winsize(s->stdout_tty ? STDOUT_FILENO : STDIN_FILENO, &rows, &cols);
            if (s->tty)
                mvm_relay_winsize(&s->relay, rows, cols);
            continue;
        }
        /* SIGTERM (mvm stop, systemd, kill) first asks the command, with
         * the time mvm stop gave in the value (-1: none); a second one,
         * or one before the guest is up, destroys the VM. */
        bool queued = si.ssi_code == SI_QUEUE;
        /* A VM paused at a disk limit runs no command to ask. */
        if (sig == SIGTERM && !s->stopping && s->relay.ready && !s->guard_paused &&
            !(queued && si.ssi_int < 0)) {
            uint64_t ms = queued && si.ssi_int > 0 ? (uint64_t)si.ssi_int : STOP_TIMEOUT_MS;
            s->stopping = true;
            s->stop_deadline = now_ns() + ms * 1000000ULL;
            mvm_relay_signal(&s->relay, SIGTERM);
            continue;
        }
        /* Without a terminal, the first Ctrl-C goes to the command. */
        if (sig == SIGINT && !s->tty && s->sigints++ == 0 && s->relay.ready) {
            mvm_relay_signal(&s->relay, SIGINT);
            continue;
        }
        return mvm_error_set_code(err, 128 + sig, "received %s; the VM was destroyed",
                                  strsignal(sig));
    }
    return 0;
}

/* Indices into the poll set (-1: not polled this round). */
struct poll_set {
    struct mvm_pollset set;
    int qmp, con, qlog, sig, qemu, routes, reports, tty, gateway, vlog[MAX_SHARES],
        vproc[MAX_SHARES];
    int wg; /* wireguard-go's pidfd */
};

static void build_poll(struct session *s, struct poll_set *ps)
{
    struct mvm_pollset *set = &ps->set;
    set->n = 0;
    set->n += (size_t)mvm_relay_pollfds(&s->relay, mvm_pollset_reserve(set, 4), 0);
    /* Paused at a disk limit: keys are for mvm (the same terminal). */
    if (s->guard_paused && s->relay.pi_in >= 0)
        set->fds[s->relay.pi_in].fd = -1;
    ps->tty = mvm_pollset_add(set, s->guard_paused ? s->guard_tty : -1, POLLIN);
    ps->qmp = mvm_pollset_add(set, mvm_qmp_closed(s->qmp) ? -1 : s->qmp_fd, POLLIN);
    ps->con = mvm_pollset_add(set, s->con_fd, POLLIN);
    ps->qlog = mvm_pollset_add(set, s->qemu_log, POLLIN);
    ps->sig = mvm_pollset_add(set, s->sigfd, POLLIN);
    ps->qemu = mvm_pollset_add(set, s->qemu.pidfd, POLLIN);
    ps->routes = mvm_pollset_add(set, s->net.watch_fd, POLLIN);
    ps->reports = mvm_pollset_add(set, s->net.report_fd, POLLIN);
    ps->gateway = mvm_pollset_add(set, s->gateway.pidfd, POLLIN);
    ps->wg = mvm_pollset_add(set, s->wg_proc.pidfd, POLLIN);
    for (size_t i = 0; i < s->nshares; i++) {
        ps->vlog[i] = mvm_pollset_add(set, s->shares[i].log_fd, POLLIN);
        ps->vproc[i] = mvm_pollset_add(set, s->shares[i].proc.pidfd, POLLIN);
    }
    exec_server_pollfds(&s->execs, set);
}

/* How long the guest has to report READY. */
static uint64_t boot_timeout_ms(const struct session *s)
{
    return s->o->boot_image ? BOOT_IMAGE_TIMEOUT_MS : BOOT_TIMEOUT_MS;
}

static int deadline_ms(struct session *s, uint64_t now)
{
    uint64_t end = UINT64_MAX;
    if (s->o->timeout_ms)
        end = s->t0 + s->o->timeout_ms * 1000000ULL;
    if (!s->relay.ready && !s->guard_paused && s->t0 + boot_timeout_ms(s) * 1000000ULL < end)
        end = s->t0 + boot_timeout_ms(s) * 1000000ULL;
    if (s->stopping && s->stop_deadline < end)
        end = s->stop_deadline;
    if (session_guard_deadline(s) < end)
        end = session_guard_deadline(s);
    if (end == UINT64_MAX)
        return -1;
    return end <= now ? 0 : (int)((end - now) / 1000000ULL + 1);
}

static int check_deadlines(struct session *s, struct mvm_error **err)
{
    uint64_t now = now_ns();
    if (s->o->timeout_ms && now >= s->t0 + s->o->timeout_ms * 1000000ULL)
        return mvm_error_set_code(err, 124,
                                  s->relay.ready
                                      ? "the command ran longer than --timeout; the VM was "
                                        "destroyed"
                                      : "--timeout passed while the VM was still booting; the "
                                        "VM was destroyed");
    if (s->stopping && now >= s->stop_deadline)
        return mvm_error_set_code(err, 128 + SIGTERM,
                                  "stopped: the command did not exit after SIGTERM; the VM was "
                                  "destroyed");
    if (!s->relay.ready && !s->guard_paused && now >= s->t0 + boot_timeout_ms(s) * 1000000ULL) {
        drain_console(s);
        cleanup_free char *con = last_line(&s->console_tail);
        return mvm_error_set(err, 0,
                             "the VM did not start mvm-init within %d s (console: %s); rerun "
                             "with --console to see why",
                             (int)(boot_timeout_ms(s) / 1000), con[0] ? con : "empty");
    }
    return 0;
}

static bool ready(const struct poll_set *ps, int i)
{
    return i >= 0 && ps->set.fds[i].revents != 0;
}

/* A helper the session cannot do without exited (wait status st). */
static int helper_died(const char *what, int st, struct mvm_error **err)
{
    return mvm_error_set(err, 0, "%s exited unexpectedly (%s %d); the VM was destroyed", what,
                         WIFSIGNALED(st) ? "signal" : "status",
                         WIFSIGNALED(st) ? WTERMSIG(st) : WEXITSTATUS(st));
}

static int handle(struct session *s, struct poll_set *ps, struct mvm_error **err)
{
    if (mvm_relay_handle(&s->relay, ps->set.fds, err) < 0)
        return -1;
    exec_server_handle(&s->execs, &ps->set);
    if (mvm_relay_done(&s->relay)) /* the rest of this round no longer matters */
        return 0;
    if (s->relay.kill_requested)
        return mvm_error_set_code(err, 137, "VM killed from the terminal (~.)");
    if (ready(ps, ps->qmp)) {
        if (mvm_qmp_dispatch(s->qmp, err) < 0)
            return mvm_error_wrap(err, "QMP");
        if (s->vm_stopped && !s->guard_paused) /* mvm's own pause is no surprise */
            return vm_paused(s, err);
    }
    if (ready(ps, ps->con))
        drain_console(s);
    if (ready(ps, ps->qlog))
        drain_log(s->qemu_log, &s->qemu_tail);
    for (size_t i = 0; i < s->nshares; i++) {
        if (ready(ps, ps->vlog[i]))
            drain_log(s->shares[i].log_fd, &s->share_tail[i]);
        if (ready(ps, ps->vproc[i]) && mvm_child_poll(&s->shares[i].proc)) {
            /* virtiofsd also exits when QEMU goes away: then QEMU's end
             * is the story. */
            if (mvm_child_wait(&s->qemu, 300) && !mvm_relay_done(&s->relay)) {
                if (mvm_relay_read_ctl(&s->relay, err) < 0)
                    return -1;
                if (!s->relay.have_status)
                    return vm_died(s, err);
                continue;
            }
            cleanup_free char *why = helper_last_words(s->shares[i].log_fd, &s->share_tail[i]);
            return mvm_error_set(err, 0,
                                 "virtiofsd for %s exited unexpectedly (%s); the VM was "
                                 "destroyed",
                                 s->shares[i].host, why);
        }
    }
    /* Without its gateway the agent's every API request would fail: the
     * session ends, saying why, rather than leave it retrying. */
    if (ready(ps, ps->gateway) && mvm_child_poll(&s->gateway))
        return helper_died("the API gateway (--api-key)", s->gateway.status, err);
    /* Without wireguard-go the tunnel is gone and nothing leaves (its tun
     * and the default route went with it): say so rather than leave the
     * command failing to connect. */
    if (ready(ps, ps->wg) && mvm_child_poll(&s->wg_proc))
        return helper_died("wireguard-go (--wireguard)", s->wg_proc.status, err);
    /* The host's routes changed: refuse the new prefixes at once, or end
     * the session rather than leave them reachable. */
    if (ready(ps, ps->routes) && mvm_net_refresh(&s->netplan, &s->net, err) < 0)
        return mvm_error_wrap(err, "the VM was destroyed");
    /* --net allow=: the DNS relay's answers, let through once checked. */
    if (ready(ps, ps->reports) && mvm_net_reports_drain(&s->netplan, &s->net, err) < 0)
        return mvm_error_wrap(err, "the VM was destroyed");
    if (ready(ps, ps->sig) && on_signal(s, err) < 0)
        return -1;
    if (ready(ps, ps->tty) && session_guard_key(s, err) < 0)
        return -1;
    if (session_guard_tick(s, err) < 0)
        return -1;
    if (ready(ps, ps->qemu) && mvm_child_poll(&s->qemu) && !mvm_relay_done(&s->relay)) {
        /* Output may still be in flight on the control socket. */
        if (mvm_relay_read_ctl(&s->relay, err) < 0)
            return -1;
        if (!s->relay.have_status)
            return vm_died(s, err);
    }
    return check_deadlines(s, err);
}

int session_loop(struct session *s, struct mvm_error **err)
{
    bool was_ready = false;
    struct poll_set ps = {.set = {0}};
    int rc = 0;
    while (rc == 0 && !mvm_relay_done(&s->relay)) {
        if (s->relay.ready && !was_ready) {
            was_ready = true;
            s->t_ready = now_ns();
            session_trace(s, "mvm-init ready");
        }
        build_poll(s, &ps);
        int n = poll(ps.set.fds, (nfds_t)ps.set.n, deadline_ms(s, now_ns()));
        if (n < 0 && errno != EINTR)
            rc = mvm_error_set(err, errno, "poll");
        else
            rc = handle(s, &ps, err);
    }
    mvm_pollset_free(&ps.set);
    session_guard_end(s); /* the terminal, if it was asked */
    if (rc < 0)
        return (*err)->exit_code;
    session_trace(s, "exit status received");
    s->t_done = now_ns();
    if (s->relay.guest_error)
        mvm_error_set_code(err, s->relay.status, "%s", s->relay.guest_error);
    /* mvm-init synced the guest's disks before it reported (its power-off
     * would take another ~80 ms under TCG): QEMU is told to quit, and
     * flushes its own block layer as it does. */
    session_qemu_quit(s);
    mvm_child_wait(&s->qemu, 3000);
    session_trace(s, "QEMU exited");
    return s->relay.status;
}
