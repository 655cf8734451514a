/* The guest half of the control protocol: collect the command the host
 * sends, start it (under a pty when the host has a terminal, on pipes
 * otherwise), relay its I/O within the credit windows, report its status.
 *
 * Memory stays bounded: stdin is held only up to the window we granted,
 * output is read only while the host has granted window and our queue to
 * the port is short. */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "guest.h"
#include "proto.h"

#define MAX_ARGS        65536
#define MAX_ARG_BYTES   (4 * 1024 * 1024)
#define OUTQ_SOFT_LIMIT (64 * 1024)
#define READ_CHUNK      (32 * 1024)
#define CREDIT_BATCH    (32 * 1024)
/* After the command exits, output still in a pty's flip buffer may take
 * a moment to become readable; wait this long for silence. */
#define PTY_DRAIN_MS 100

struct outfd {
    int fd;
    uint8_t type; /* MVM_MSG_STDOUT / STDERR */
};

struct relay {
    const struct guest_session *s;
    int port;
    struct mvm_proto_decoder dec;
    uint8_t *outq; /* frames waiting for the port */
    size_t outq_len, outq_cap;

    char **argv, **envp;
    size_t argc, envc, arg_bytes;
    bool started, tty;
    uint16_t rows, cols;

    pid_t child;
    int status;
    bool exited;
    int sigfd;

    int in_fd; /* child's stdin (pipe write end or pty master) */
    uint8_t *inbuf;
    size_t in_len, in_off;
    bool in_eof;
    uint32_t in_credit_owed; /* stdin bytes consumed, not yet credited */

    struct outfd out[2];
    size_t nout;
    uint32_t out_window; /* bytes the host lets us send */
    uint64_t drain_deadline_ms;
    bool port_gone;
    bool failed; /* the command could not start: ERROR already queued */
};

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void queue_frame(struct relay *r, uint8_t type, const void *payload, uint32_t len)
{
    size_t need = r->outq_len + MVM_PROTO_HEADER + len;
    if (need > r->outq_cap) {
        size_t cap = r->outq_cap ? r->outq_cap : 65536;
        while (cap < need)
            cap *= 2;
        uint8_t *q = realloc(r->outq, cap);
        if (q == NULL)
            return; /* out of memory in the guest: drop; the host times out */
        r->outq = q;
        r->outq_cap = cap;
    }
    mvm_proto_header(r->outq + r->outq_len, type, MVM_PROTO_MAIN_STREAM, len);
    if (len)
        memcpy(r->outq + r->outq_len + MVM_PROTO_HEADER, payload, len);
    r->outq_len = need;
}

static void queue_u32(struct relay *r, uint8_t type, uint32_t v)
{
    uint8_t p[4];
    mvm_put_u32(p, v);
    queue_frame(r, type, p, 4);
}

static void flush_port(struct relay *r)
{
    while (r->outq_len > 0) {
        ssize_t n = write(r->port, r->outq, r->outq_len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno != EAGAIN)
                r->port_gone = true;
            return;
        }
        memmove(r->outq, r->outq + n, r->outq_len - (size_t)n);
        r->outq_len -= (size_t)n;
    }
}

/* Blocks until everything queued has reached the port (final messages). */
static void flush_port_blocking(struct relay *r)
{
    while (r->outq_len > 0 && !r->port_gone) {
        struct pollfd p = {.fd = r->port, .events = POLLOUT};
        if (poll(&p, 1, 5000) <= 0)
            return;
        flush_port(r);
    }
}

static void report_error(struct relay *r, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void report_error(struct relay *r, int status, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    uint8_t payload[4 + sizeof msg];
    mvm_put_u32(payload, (uint32_t)status);
    size_t len = strlen(msg);
    memcpy(payload + 4, msg, len);
    queue_frame(r, MVM_MSG_ERROR, payload, (uint32_t)(4 + len));
}

static char *dup_payload(const struct mvm_proto_frame *f)
{
    char *s = malloc(f->len + 1);
    if (s) {
        memcpy(s, f->payload, f->len);
        s[f->len] = '\0';
    }
    return s;
}

static int push_string(struct relay *r, char ***vec, size_t *n, const struct mvm_proto_frame *f)
{
    if (*n + 2 > MAX_ARGS || r->arg_bytes + f->len > MAX_ARG_BYTES)
        return -1;
    char **v = realloc(*vec, (*n + 2) * sizeof *v);
    if (v == NULL)
        return -1;
    *vec = v;
    if ((v[*n] = dup_payload(f)) == NULL)
        return -1;
    v[++*n] = NULL;
    r->arg_bytes += f->len;
    return 0;
}

/* Host entries win over the defaults; a default is added only when the
 * host sent no entry of that name. */
static bool has_name(char **env, size_t n, const char *entry)
{
    size_t nlen = strcspn(entry, "=");
    for (size_t i = 0; i < n; i++)
        if (strncmp(env[i], entry, nlen + 1) == 0)
            return true;
    return false;
}

static char **build_env(struct relay *r)
{
    const struct guest_session *s = r->s;
    char *defaults[9];
    size_t nd = 0;
    const char *path = s->uid == 0 ? "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
                                   : "/usr/local/bin:/usr/bin:/bin:/usr/local/games:/usr/games";
    size_t plen = strlen(path) + 1;
    for (size_t i = 0; i < s->nbins; i++)
        plen += strlen(s->bins[i]) + 1;
    char *full = malloc(plen);
    if (full == NULL)
        return NULL;
    full[0] = '\0';
    for (size_t i = 0; i < s->nbins; i++)
        strcat(strcat(full, s->bins[i]), ":");
    strcat(full, path);
    int rc = asprintf(&defaults[nd++], "PATH=%s", full);
    free(full);
    if (rc < 0 || asprintf(&defaults[nd++], "HOME=%s", s->home) < 0 ||
        asprintf(&defaults[nd++], "USER=%s", s->user) < 0 ||
        asprintf(&defaults[nd++], "LOGNAME=%s", s->user) < 0 ||
        asprintf(&defaults[nd++], "SHELL=%s", s->shell) < 0 ||
        asprintf(&defaults[nd++], "TERM=%s", r->tty ? "xterm-256color" : "dumb") < 0)
        return NULL;
    /* With a writable /usr, /usr/local is the user's: npm -g goes there
     * (Debian's npm would pick /usr, which stays root's). */
    if (s->scratch != NULL && (defaults[nd++] = strdup("NPM_CONFIG_PREFIX=/usr/local")) == NULL)
        return NULL;
    char **env = calloc(r->envc + nd + 1, sizeof *env);
    if (env == NULL)
        return NULL;
    size_t n = 0;
    for (size_t i = 0; i < r->envc; i++)
        env[n++] = r->envp[i];
    for (size_t i = 0; i < nd; i++)
        if (!has_name(r->envp, r->envc, defaults[i]))
            env[n++] = defaults[i];
    env[n] = NULL;
    return env;
}

static void start_command(struct relay *r)
{
    char **env = build_env(r);
    /* No command: the user's shell as a login shell (argv[0] "-bash"). */
    const char *base = strrchr(r->s->shell, '/');
    char *login_name = NULL;
    if (r->argc == 0 && asprintf(&login_name, "-%s", base ? base + 1 : r->s->shell) < 0)
        login_name = NULL;
    char *login_argv[2] = {login_name, NULL};
    if (env == NULL || (r->argc == 0 && login_name == NULL)) {
        report_error(r, 125, "mvm-init: out of memory");
        r->failed = true;
        return;
    }
    const char *file = r->argc ? r->argv[0] : r->s->shell;
    struct guest_child c;
    int status;
    char why[1024];
    int rc = guest_spawn(r->s, file, r->argc ? r->argv : login_argv, env, r->tty, r->rows, r->cols,
                         &c, &status, why, sizeof why);
    if (rc < 0) {
        report_error(r, status, "%s", why);
        r->failed = true;
        return;
    }
    guest_trace("command started");
    r->child = c.pid;
    r->in_fd = c.in;
    r->out[r->nout++] = (struct outfd){c.out, MVM_MSG_STDOUT};
    if (c.err >= 0)
        r->out[r->nout++] = (struct outfd){c.err, MVM_MSG_STDERR};
}

static void on_stdin(struct relay *r, const struct mvm_proto_frame *f)
{
    if (f->len == 0) {
        r->in_eof = true;
        return;
    }
    if (r->in_off > 0) { /* the window counts unconsumed bytes only */
        memmove(r->inbuf, r->inbuf + r->in_off, r->in_len - r->in_off);
        r->in_len -= r->in_off;
        r->in_off = 0;
    }
    if (r->in_len + f->len > MVM_PROTO_WINDOW) {
        guest_log("host sent stdin beyond its window; dropping it");
        return;
    }
    memcpy(r->inbuf + r->in_len, f->payload, f->len);
    r->in_len += f->len;
}

static void on_frame(struct relay *r, const struct mvm_proto_frame *f)
{
    switch (f->type) {
    case MVM_MSG_ARG:
        if (!r->started && push_string(r, &r->argv, &r->argc, f) < 0)
            report_error(r, 125, "mvm-init: command line too long");
        break;
    case MVM_MSG_ENV:
        if (!r->started && push_string(r, &r->envp, &r->envc, f) < 0)
            report_error(r, 125, "mvm-init: environment too large");
        break;
    case MVM_MSG_START:
        if (!r->started) {
            r->tty = f->payload[0] & 1;
            r->rows = mvm_get_u16(f->payload + 1);
            r->cols = mvm_get_u16(f->payload + 3);
            r->started = true;
            start_command(r);
        }
        break;
    case MVM_MSG_STDIN:
        on_stdin(r, f);
        break;
    case MVM_MSG_WINSIZE:
        r->rows = mvm_get_u16(f->payload);
        r->cols = mvm_get_u16(f->payload + 2);
        if (r->tty && r->in_fd >= 0) {
            struct winsize ws = {.ws_row = r->rows, .ws_col = r->cols};
            ioctl(r->in_fd, TIOCSWINSZ, &ws);
        }
        break;
    case MVM_MSG_SIGNAL: {
        uint32_t sig = mvm_get_u32(f->payload);
        if (r->child > 0 && !r->exited && sig > 0 && sig < 65)
            kill(-r->child, (int)sig);
        break;
    }
    case MVM_MSG_SHUTDOWN:
        if (r->child > 0 && !r->exited)
            kill(-r->child, SIGKILL);
        else if (!r->started)
            r->port_gone = true; /* nothing to wait for */
        break;
    case MVM_MSG_CREDIT_OUT: {
        uint64_t w = (uint64_t)r->out_window + mvm_get_u32(f->payload);
        r->out_window = w > 0xffffffffu ? 0xffffffffu : (uint32_t)w;
        break;
    }
    default:
        break; /* guest->host types are ignored here */
    }
}

static void read_port(struct relay *r)
{
    for (;;) {
        uint8_t buf[65536];
        size_t room = mvm_proto_space(&r->dec);
        if (room == 0)
            break;
        ssize_t n = read(r->port, buf, room < sizeof buf ? room : sizeof buf);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno != EAGAIN)
                r->port_gone = true;
            break;
        }
        if (n == 0) {
            r->port_gone = true;
            break;
        }
        mvm_proto_feed(&r->dec, buf, (size_t)n);
        struct mvm_proto_frame f;
        const char *why = NULL;
        enum mvm_proto_status st;
        while ((st = mvm_proto_next(&r->dec, &f, &why)) == MVM_PROTO_FRAME)
            on_frame(r, &f);
        if (st == MVM_PROTO_BAD) {
            guest_log("protocol error from the host: %s", why);
            r->port_gone = true;
            return;
        }
    }
}

static void write_stdin(struct relay *r)
{
    while (r->in_off < r->in_len) {
        ssize_t n = write(r->in_fd, r->inbuf + r->in_off, r->in_len - r->in_off);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno != EAGAIN) { /* reader gone: discard, keep credits flowing */
                r->in_credit_owed += (uint32_t)(r->in_len - r->in_off);
                r->in_off = r->in_len;
            }
            break;
        }
        r->in_off += (size_t)n;
        r->in_credit_owed += (uint32_t)n;
    }
    if (r->in_off == r->in_len)
        r->in_off = r->in_len = 0;
    if (r->in_credit_owed >= CREDIT_BATCH || (r->in_len == 0 && r->in_credit_owed > 0)) {
        queue_u32(r, MVM_MSG_CREDIT_IN, r->in_credit_owed);
        r->in_credit_owed = 0;
    }
    if (r->in_eof && r->in_len == 0 && r->in_fd >= 0) {
        if (r->tty) {
            /* A pty cannot be half-closed; ^D is EOF for canonical readers. */
            (void)!write(r->in_fd, "\x04", 1);
        } else {
            close(r->in_fd);
            r->in_fd = -1;
        }
        r->in_eof = false;
    }
}

/* Reads one chunk of output within the window.  Returns false once the fd
 * is finished (EOF, EIO from a hung-up pty, or silent after the exit). */
static bool read_output(struct relay *r, struct outfd *o)
{
    uint8_t buf[READ_CHUNK];
    size_t want = r->out_window < sizeof buf ? r->out_window : sizeof buf;
    ssize_t n = read(o->fd, buf, want);
    if (n > 0) {
        r->out_window -= (uint32_t)n;
        queue_frame(r, o->type, buf, (uint32_t)n);
        r->drain_deadline_ms = r->exited && r->tty ? now_ms() + PTY_DRAIN_MS : 0;
        return true;
    }
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
        if (!r->exited)
            return true;
        if (r->tty && now_ms() < r->drain_deadline_ms)
            return true;
        return false;
    }
    return false;
}

static void reap(struct relay *r)
{
    struct signalfd_siginfo si;
    while (read(r->sigfd, &si, sizeof si) == sizeof si)
        ;
    int st;
    pid_t pid;
    while ((pid = waitpid(-1, &st, WNOHANG)) > 0) {
        if (pid == r->child && !r->exited) {
            r->exited = true;
            guest_trace("command exited");
            r->status = mvm_proto_status_from_wait(st);
            r->drain_deadline_ms = now_ms() + PTY_DRAIN_MS;
            if (r->tty && r->in_fd >= 0) {
                int fl = fcntl(r->in_fd, F_GETFL);
                fcntl(r->in_fd, F_SETFL, fl | O_NONBLOCK);
            }
        }
    }
}

static void close_out(struct relay *r, size_t i)
{
    int fd = r->out[i].fd;
    r->out[i] = r->out[--r->nout];
    if (fd == r->in_fd) /* the pty master is both */
        r->in_fd = -1;
    close(fd);
}

/* One round of poll; returns false when the relay is finished. */
static bool relay_step(struct relay *r)
{
    struct pollfd p[5];
    size_t np = 0;
    p[np++] =
        (struct pollfd){.fd = r->port, .events = (short)(POLLIN | (r->outq_len ? POLLOUT : 0))};
    p[np++] = (struct pollfd){.fd = r->sigfd, .events = POLLIN};
    bool can_read = r->out_window > 0 && r->outq_len < OUTQ_SOFT_LIMIT;
    size_t out_base = np;
    for (size_t i = 0; i < r->nout; i++)
        p[np++] = (struct pollfd){.fd = r->out[i].fd, .events = can_read ? POLLIN : 0};
    size_t in_idx = np;
    if (r->in_fd >= 0 && (r->in_len > r->in_off || r->in_eof))
        p[np++] = (struct pollfd){.fd = r->in_fd, .events = POLLOUT};

    int timeout = -1;
    if (r->exited && can_read)
        timeout = r->tty ? PTY_DRAIN_MS : 0;
    int n = poll(p, (nfds_t)np, timeout);
    if (n < 0 && errno != EINTR)
        return false;

    if (p[1].revents)
        reap(r);
    if (p[0].revents & (POLLIN | POLLHUP | POLLERR))
        read_port(r);
    if (r->in_fd >= 0 && in_idx < np && p[in_idx].revents)
        write_stdin(r);
    else if (r->in_fd >= 0 && r->in_len > r->in_off)
        write_stdin(r); /* data that arrived in this round */
    for (size_t i = r->nout; i-- > 0;) {
        bool ready = p[out_base + i].revents != 0 || (r->exited && can_read);
        if (ready && can_read && !read_output(r, &r->out[i]))
            close_out(r, i);
    }
    flush_port(r);

    if (r->port_gone) {
        if (r->child > 0 && !r->exited)
            kill(-r->child, SIGKILL);
        return false;
    }
    if (r->failed)
        return false;
    return !(r->exited && r->nout == 0);
}

void guest_run(int port, const struct guest_session *s)
{
    struct relay r = {.s = s, .port = port, .in_fd = -1, .out_window = MVM_PROTO_WINDOW};
    mvm_proto_decoder_init(&r.dec);
    r.inbuf = malloc(MVM_PROTO_WINDOW);
    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGCHLD);
    sigprocmask(SIG_BLOCK, &mask, NULL);
    r.sigfd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
    if (r.inbuf == NULL || r.sigfd < 0) {
        guest_send_error(port, 125, "mvm-init: cannot set up the relay");
        return;
    }
    while (relay_step(&r))
        ;
    if (r.exited && !r.port_gone && !r.failed)
        queue_u32(&r, MVM_MSG_EXIT, (uint32_t)r.status);
    flush_port_blocking(&r);
    guest_trace("exit reported");
}
