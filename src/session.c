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

void session_notice(const struct session *s, const char *fmt, ...)
{
    if (s->o->quiet)
        return;
    va_list ap;
    va_start(ap, fmt);
    cleanup_free char *msg = xvasprintf(fmt, ap);
    va_end(ap);
    sanitize_text(msg);
    cleanup_free char *line = xasprintf("mvm: %s\n", msg);
    write_all(STDERR_FILENO, line, strlen(line));
}

bool session_tracing(void)
{
    const char *e = getenv("MVM_TRACE");
    return e && strcmp(e, "1") == 0;
}

void session_trace(const struct session *s, const char *what)
{
    if (!session_tracing())
        return;
    cleanup_free char *line =
        xasprintf("mvm: +%llums %s\n", (unsigned long long)((now_ns() - s->t0) / 1000000), what);
    write_all(STDERR_FILENO, line, strlen(line));
}

void session_push_undo(struct session *s, undo_fn fn)
{
    if (s->nundo < MAX_UNDO)
        s->undo[s->nundo++] = fn;
}

void tail_add(struct tail *t, const char *d, size_t n)
{
    if (n >= TAIL_MAX) {
        memcpy(t->buf, d + n - TAIL_MAX, TAIL_MAX);
        t->len = TAIL_MAX;
        return;
    }
    if (t->len + n > TAIL_MAX) {
        size_t drop = t->len + n - TAIL_MAX;
        memmove(t->buf, t->buf + drop, t->len - drop);
        t->len -= drop;
    }
    memcpy(t->buf + t->len, d, n);
    t->len += n;
}

void drain_log(int fd, struct tail *t)
{
    char buf[4096];
    ssize_t n;
    while (fd >= 0 && (n = read(fd, buf, sizeof buf)) > 0)
        if (t)
            tail_add(t, buf, (size_t)n);
}

/* The last non-empty line of a tail, printable characters only. */
char *last_line(const struct tail *t)
{
    size_t end = t->len;
    while (end > 0 &&
           (t->buf[end - 1] == '\n' || t->buf[end - 1] == '\r' || t->buf[end - 1] == ' '))
        end--;
    size_t start = end;
    while (start > 0 && t->buf[start - 1] != '\n' && t->buf[start - 1] != '\r')
        start--;
    char *line = xstrndup(t->buf + start, end - start);
    sanitize_text(line);
    return line;
}

char *helper_last_words(int fd, struct tail *t)
{
    drain_log(fd, t);
    char *why = last_line(t);
    if (why[0] != '\0')
        return why;
    free(why);
    return xstrdup("no message");
}

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
    for (size_t i = 0; i < s->nenv; i++)
        free(s->env[i]);
    free(s->env);
    char *strs[] = {s->cwd,         s->share_dir, s->guest_home, s->guest_cwd, s->vmlinux,
                    s->initrd_base, s->initrd,    s->qemu_bin,   s->dir,       s->shutdown_reason};
    for (size_t i = 0; i < ARRAY_SIZE(strs); i++)
        free(strs[i]);
}

int mvm_session_run(const struct mvm_run_opts *o)
{
    struct session s = {.o = o,
                        .t0 = now_ns(),
                        .qemu = MVM_CHILD_INIT,
                        .qemu_log = -1,
                        .qmp_fd = -1,
                        .ctl_fd = -1,
                        .con_fd = -1,
                        .console_log = -1,
                        .sigfd = -1};
    cleanup_error struct mvm_error *err = NULL;
    int code;
    if (setup_signals(&s, &err) < 0 || session_prepare(&s, &err) < 0 ||
        session_start_vm(&s, &err) < 0 || session_terminal_setup(&s, &err) < 0)
        code = err->exit_code;
    else
        code = session_loop(&s, &err);

    /* Teardown: reverse order of creation, every path. */
    session_trace(&s, "teardown");
    while (s.nundo > 0)
        s.undo[--s.nundo](&s);
    reap_orphans(1000);
    session_trace(&s, "done");
    if (err)
        mvm_error_print(err);
    release(&s);
    return code;
}
