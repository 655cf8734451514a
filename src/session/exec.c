/* `mvm exec`: another command in a running session, and `mvm attach`: the
 * terminal of a detached session's command.  The client finds
 * the session by its summary (ps.c), connects to its socket as the
 * session's user (through sudo it drops root first, so the supervisor's
 * SO_PEERCRED check speaks for the person), and relays its own terminal
 * with the same relay `mvm run` uses: the supervisor routes the frames to
 * a stream of their own (exec-server.c).  No descriptor and no privilege
 * passes to the supervisor: only protocol frames.  mvm attach is the same
 * client, asking for the main command's stream (ATTACH) instead of
 * starting one. */
#include <errno.h>
#include <grp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "json-cleanup.h"
#include "session-int.h"
#include "session.h"
#include "tty.h"
#include "util.h"

struct exec_client_state {
    const struct mvm_exec_opts *o; /* NULL: mvm attach */
    const char *key;               /* the session as given */
    bool session_tty;              /* attach: the main command has a pty */
    bool detached;                 /* attach: ~d */
    bool tty, stdin_tty, stdout_tty;
    char **env;
    size_t nenv;
    int sock, sigfd;
    struct mvm_relay relay;
    bool relay_started;
    struct tty_state term;
    unsigned signals;
};

/* Through sudo: become the user before connecting, so that what the
 * supervisor checks (SO_PEERCRED) and what the client may do agree. */
static int drop_to_caller(bool everyone, uid_t me, struct mvm_error **err)
{
    if (everyone || geteuid() != 0)
        return 0;
    const char *g = getenv("SUDO_GID");
    char *end = NULL;
    unsigned long gid = g ? strtoul(g, &end, 10) : 0;
    if (g == NULL || *end != '\0' || end == g)
        return mvm_error_set(err, 0, "SUDO_UID is set but SUDO_GID is not a number");
    if (setgroups(0, NULL) < 0 || setgid((gid_t)gid) < 0 || setuid(me) < 0)
        return mvm_error_set(err, errno, "switching to uid %u", (unsigned)me);
    return 0;
}

static int connect_session(struct exec_client_state *c, const char *id, struct mvm_error **err)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof sa.sun_path, MVM_EXEC_DIR "/%s.sock", id);
    c->sock = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->sock < 0)
        return mvm_error_set(err, errno, "creating a socket");
    /* Non-blocking connect to a local listener completes or fails at once
     * (EAGAIN: its backlog is full). */
    if (connect(c->sock, (struct sockaddr *)&sa, sizeof sa) == 0)
        return 0;
    if (errno == ENOENT || errno == ECONNREFUSED)
        return mvm_error_set(err, 0,
                             "session '%s' takes no mvm exec now (it is starting or ending); "
                             "try again in a moment",
                             c->key);
    return mvm_error_set(err, errno, "connecting to session '%s' (%s)", c->key, sa.sun_path);
}

static int setup(struct exec_client_state *c, struct mvm_error **err)
{
    const struct mvm_exec_opts *o = c->o;
    c->stdin_tty = isatty(STDIN_FILENO);
    c->stdout_tty = isatty(STDOUT_FILENO);
    if (o == NULL) /* attach: the command's terminal was decided at its start */
        c->tty = c->session_tty;
    else
        c->tty =
            o->tty == MVM_TTY_ALWAYS || (o->tty == MVM_TTY_AUTO && c->stdin_tty && c->stdout_tty);
    sigset_t mask;
    sigemptyset(&mask);
    int sigs[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGWINCH};
    for (size_t i = 0; i < ARRAY_SIZE(sigs); i++)
        sigaddset(&mask, sigs[i]);
    if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0 ||
        (c->sigfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK)) < 0)
        return mvm_error_set(err, errno, "setting up signals");
    signal(SIGPIPE, SIG_IGN);
    if (tty_setup(&c->term, c->tty && c->stdin_tty, err) < 0)
        return -1;
    uint16_t rows, cols;
    tty_winsize(c->stdout_tty ? STDOUT_FILENO : STDIN_FILENO, &rows, &cols);
    mvm_relay_init(&c->relay, c->sock, STDIN_FILENO, STDOUT_FILENO, STDERR_FILENO, c->tty);
    mvm_relay_filter_terminals(&c->relay, c->stdout_tty, isatty(STDERR_FILENO));
    c->relay_started = true;
    if (o == NULL) {
        c->relay.escape_help = mvm_escape_help_attach;
        c->relay.escape.detach = true;
        c->relay.keep_input_open = true;
        mvm_relay_queue(&c->relay, MVM_MSG_ATTACH, MVM_PROTO_MAIN_STREAM, NULL, 0);
        if (c->tty)
            mvm_relay_winsize(&c->relay, rows, cols);
        return 0;
    }
    c->relay.escape_help = mvm_escape_help_exec;
    uint8_t flags = (uint8_t)((c->tty ? MVM_START_TTY : 0) | (o->root ? MVM_START_ROOT : 0));
    mvm_relay_start(&c->relay, o->argv, o->argc, c->env, c->nenv, flags, rows, cols);
    return 0;
}

/* -1 with err when mvm exec must end (128+N); signals the command gets
 * first: SIGINT without a terminal (with one, ^C travels as a byte),
 * SIGTERM and SIGHUP.  A second one ends mvm exec, and so the command. */
static int on_signal(struct exec_client_state *c, struct mvm_error **err)
{
    struct signalfd_siginfo si;
    while (read(c->sigfd, &si, sizeof si) == sizeof si) {
        int sig = (int)si.ssi_signo;
        if (sig == SIGWINCH) {
            uint16_t rows, cols;
            tty_winsize(c->stdout_tty ? STDOUT_FILENO : STDIN_FILENO, &rows, &cols);
            if (c->tty)
                mvm_relay_winsize(&c->relay, rows, cols);
            continue;
        }
        /* Attached, a signal (a closed terminal's SIGHUP) only detaches. */
        if (c->o == NULL)
            return mvm_error_set_code(err, 128 + sig,
                                      "received %s; detached from session '%s' "
                                      "(it runs on)",
                                      strsignal(sig), c->key);
        if (sig != SIGQUIT && c->signals++ == 0 && !(sig == SIGINT && c->tty)) {
            mvm_relay_signal(&c->relay, sig);
            continue;
        }
        return mvm_error_set_code(err, 128 + sig, "received %s; the command was killed",
                                  strsignal(sig));
    }
    return 0;
}

static int loop(struct exec_client_state *c, struct mvm_error **err)
{
    struct mvm_pollset set = {0};
    int rc = 0;
    while (rc == 0 && !c->detached && !mvm_relay_done(&c->relay)) {
        set.n = 0;
        set.n += (size_t)mvm_relay_pollfds(&c->relay, mvm_pollset_reserve(&set, 4), 0);
        int si = mvm_pollset_add(&set, c->sigfd, POLLIN);
        if (poll(set.fds, (nfds_t)set.n, -1) < 0 && errno != EINTR) {
            rc = mvm_error_set(err, errno, "poll");
            break;
        }
        if (mvm_relay_handle(&c->relay, set.fds, err) < 0)
            rc = mvm_error_wrap(err, "session '%s'", c->key);
        else if (c->relay.detach_requested)
            c->detached = true;
        else if (c->relay.kill_requested && c->o == NULL) {
            /* ~. attached: the command goes, and with it the session. */
            c->relay.kill_requested = false;
            mvm_relay_signal(&c->relay, SIGKILL);
        } else if (c->relay.kill_requested)
            rc = mvm_error_set_code(err, 137, "the command was killed from the terminal (~.)");
        else if (c->relay.ctl_closed && !c->relay.have_status)
            rc = mvm_error_set_code(err, 137,
                                    "session '%s' ended before the command did; it was killed "
                                    "with the VM",
                                    c->key);
        else if (set.fds[si].revents)
            rc = on_signal(c, err);
    }
    mvm_pollset_free(&set);
    if (rc < 0)
        return (*err)->exit_code;
    if (c->detached) {
        tty_restore(&c->term, &c->relay, c->stdout_tty);
        fprintf(stderr, "\r\nmvm: detached from session '%s' (it runs on: mvm attach %s)\n", c->key,
                c->key);
        return 0;
    }
    if (c->relay.guest_error)
        mvm_error_set_code(err, c->relay.status, "%s", c->relay.guest_error);
    return c->relay.status;
}

/* The id names a socket path: only what mvm_sessiondir_create makes. */
static bool id_ok(const char *id)
{
    size_t n = strlen(id);
    return n == MVM_ID_LEN && strspn(id, "0123456789abcdef") == n;
}

static int exec_session(struct exec_client_state *c, struct mvm_error **err)
{
    bool everyone;
    uid_t me = session_ps_caller(&everyone);
    cleanup_json json_t *info = session_ps_find(c->key, err);
    if (info == NULL)
        return 125;
    json_int_t owner = json_integer_value(json_object_get(info, "uid"));
    if (!everyone && owner != (json_int_t)me) {
        mvm_error_set(err, 0, "session '%s' is not yours; only its user or root may %s", c->key,
                      c->o ? "exec into it" : "attach to it");
        return 125;
    }
    const char *id = json_string_value(json_object_get(info, "id"));
    c->session_tty = json_is_true(json_object_get(info, "tty"));
    if (id == NULL || !id_ok(id)) {
        mvm_error_set(err, 0, "session '%s' has a malformed summary; see mvm ps", c->key);
        return 125;
    }
    if ((c->o && session_build_env(c->o->env, c->o->nenv, c->o->argv, c->o->argc, &c->env, &c->nenv,
                                   err) < 0) ||
        drop_to_caller(everyone, me, err) < 0 || connect_session(c, id, err) < 0 ||
        setup(c, err) < 0)
        return 125;
    return loop(c, err);
}

/* Runs the client, restores the terminal, says what went wrong. */
static int client_run(struct exec_client_state *c, struct mvm_error **err)
{
    int code = exec_session(c, err);
    tty_restore(&c->term, c->relay_started ? &c->relay : NULL, c->stdout_tty);
    if (*err)
        mvm_error_print(*err);
    mvm_relay_clear(&c->relay);
    for (size_t i = 0; i < c->nenv; i++)
        free(c->env[i]);
    free(c->env);
    if (c->sock >= 0)
        close(c->sock);
    if (c->sigfd >= 0)
        close(c->sigfd);
    return code;
}

int mvm_exec_main(int argc, char **argv)
{
    struct mvm_exec_opts o;
    cleanup_error struct mvm_error *err = NULL;
    int code = 0;
    if (mvm_cli_parse_exec(argc, argv, &o, &err) < 0) {
        mvm_error_print(err);
        code = 125;
    } else if (o.help) {
        fputs(mvm_exec_usage, stdout);
    } else {
        struct exec_client_state c = {.o = &o, .key = o.session, .sock = -1, .sigfd = -1};
        code = client_run(&c, &err);
    }
    mvm_exec_opts_clear(&o);
    return code;
}

int mvm_attach_main(int argc, char **argv)
{
    const char *key = NULL;
    cleanup_error struct mvm_error *err = NULL;
    if (mvm_cli_parse_attach(argc, argv, &key, &err) < 0) {
        mvm_error_print(err);
        return 125;
    }
    if (key == NULL) {
        fputs(mvm_attach_usage, stdout);
        return 0;
    }
    struct exec_client_state c = {.key = key, .sock = -1, .sigfd = -1};
    return client_run(&c, &err);
}
