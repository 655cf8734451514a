/* Starts the user's command: a new session, the pty or pipes as stdio,
 * the user's identity, the working directory, then exec.  Failures after
 * fork travel back over a close-on-exec pipe, so the host learns "not
 * found" (127) from "not executable" (126) as docker reports them. */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <libgen.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include "guest.h"

enum stage { ST_USER = 1, ST_CWD, ST_TTY, ST_EXEC };

struct failure {
    int stage;
    int err;
};

static void __attribute__((noreturn)) child_fail(int errpipe, int stage)
{
    struct failure f = {stage, errno};
    (void)!write(errpipe, &f, sizeof f);
    _exit(127);
}

static void __attribute__((noreturn))
child(const struct guest_session *s, const char *file, char **argv, char **envp, int fds[3],
      const char *slave, int errpipe)
{
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    setsid();
    if (slave != NULL) {
        int t = open(slave, O_RDWR);
        if (t < 0 || ioctl(t, TIOCSCTTY, 0) < 0)
            child_fail(errpipe, ST_TTY);
        fds[0] = fds[1] = fds[2] = t;
    }
    for (int i = 0; i < 3; i++)
        if (dup2(fds[i], i) < 0)
            child_fail(errpipe, ST_TTY);
    if (s->uid != 0 && (setgroups(0, NULL) < 0 || setgid(s->gid) < 0 || setuid(s->uid) < 0))
        child_fail(errpipe, ST_USER);
    if (chdir(s->cwd) < 0)
        child_fail(errpipe, ST_CWD);
    extern char **environ;
    environ = envp; /* execvp searches the PATH of environ */
    execvp(file, argv);
    child_fail(errpipe, ST_EXEC);
}

static int open_pty(const struct guest_session *s, uint16_t rows, uint16_t cols, int *master,
                    char *slave, size_t slavelen)
{
    *master = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC | O_NONBLOCK);
    if (*master < 0 || unlockpt(*master) < 0 || ptsname_r(*master, slave, slavelen) != 0)
        return -1;
    struct winsize ws = {.ws_row = rows, .ws_col = cols};
    ioctl(*master, TIOCSWINSZ, &ws);
    if (chown(slave, s->uid, 5) < 0)
        return -1;
    return 0;
}

static int make_pipes(int child_fds[3], int parent_fds[3])
{
    for (int i = 0; i < 3; i++) {
        int p[2];
        if (pipe2(p, O_CLOEXEC) < 0)
            return -1;
        child_fds[i] = i == 0 ? p[0] : p[1];
        parent_fds[i] = i == 0 ? p[1] : p[0];
        fcntl(parent_fds[i], F_SETFL, O_NONBLOCK);
    }
    return 0;
}

static const char *stage_name(int stage)
{
    switch (stage) {
    case ST_USER:
        return "switching to the user";
    case ST_CWD:
        return "entering the working directory";
    case ST_TTY:
        return "setting up the terminal";
    default:
        return "starting the command";
    }
}

int guest_spawn(const struct guest_session *s, const char *file, char **argv, char **envp, bool tty,
                uint16_t rows, uint16_t cols, struct guest_child *c, int *status, char *why,
                size_t whylen)
{
    int child_fds[3] = {-1, -1, -1}, parent_fds[3] = {-1, -1, -1};
    char slave[128] = "";
    int master = -1;
    *status = 125;
    if (tty ? open_pty(s, rows, cols, &master, slave, sizeof slave) < 0
            : make_pipes(child_fds, parent_fds) < 0) {
        snprintf(why, whylen, "mvm-init: setting up the command's stdio: %s", strerror(errno));
        return -1;
    }
    int errpipe[2];
    if (pipe2(errpipe, O_CLOEXEC) < 0) {
        snprintf(why, whylen, "mvm-init: pipe: %s", strerror(errno));
        return -1;
    }
    pid_t pid = fork();
    if (pid == 0)
        child(s, file, argv, envp, child_fds, tty ? slave : NULL, errpipe[1]);
    close(errpipe[1]);
    for (int i = 0; i < 3; i++)
        if (child_fds[i] >= 0)
            close(child_fds[i]);
    if (pid < 0) {
        snprintf(why, whylen, "mvm-init: fork: %s", strerror(errno));
        close(errpipe[0]);
        return -1;
    }
    struct failure f;
    ssize_t n;
    while ((n = read(errpipe[0], &f, sizeof f)) < 0 && errno == EINTR)
        ;
    close(errpipe[0]);
    c->pid = pid;
    c->master = master;
    c->in = tty ? master : parent_fds[0];
    c->out = tty ? master : parent_fds[1];
    c->err = tty ? -1 : parent_fds[2];
    if (n != sizeof f)
        return 0; /* exec succeeded: the pipe closed on exec */

    if (f.stage == ST_EXEC && (f.err == ENOENT || f.err == ENOTDIR))
        *status = 127;
    else if (f.stage == ST_EXEC)
        *status = 126;
    if (f.stage == ST_EXEC && f.err == ENOENT && strchr(file, '/') == NULL)
        snprintf(why, whylen, "%s: command not found in the guest", file);
    else if (f.stage == ST_EXEC)
        snprintf(why, whylen, "cannot run '%s' in the guest: %s", file, strerror(f.err));
    else
        snprintf(why, whylen, "mvm-init: %s (%s): %s", stage_name(f.stage),
                 f.stage == ST_CWD ? s->cwd : s->user, strerror(f.err));
    return -1;
}
