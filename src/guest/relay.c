/* The guest half of the control protocol: collect each command the host
 * sends (the session's main command on stream 1, `mvm exec`'s on others),
 * start it (under a pty when the host has a terminal, on pipes
 * otherwise), relay its I/O within its stream's credit windows, report
 * its status.  The main command's end ends the relay; the others die
 * with the VM.
 *
 * Memory stays bounded: at most MAX_STREAMS commands at once, stdin is
 * held only up to the window we granted, output is read only while the
 * host has granted window and our queue to the port is short. */
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
/* The main command and the exec'd ones (the host allows fewer). */
#define MAX_STREAMS MVM_PROTO_MAX_STREAMS
/* After the command exits, output still in a pty's flip buffer may take
 * a moment to become readable; wait this long for silence. */
#define PTY_DRAIN_MS 100
/* port + signals + stdin and two outputs per stream */
#define MAX_POLL (2 + 3 * MAX_STREAMS)

struct outfd {
    int fd;
    uint8_t type; /* MVM_MSG_STDOUT / STDERR */
};

/* One command: its stream id, what the host sent of it, its process and
 * its stdio. */
struct stream {
    uint16_t id; /* 0: slot free */
    char **argv, **envp;
    size_t argc, envc, arg_bytes;
    bool started, tty, root;
    uint16_t rows, cols;

    pid_t child;
    int status;
    bool exited;

    int in_fd; /* child's stdin (pipe write end or pty master) */
    uint8_t *inbuf;
    size_t in_len, in_off;
    bool in_eof;
    uint32_t in_credit_owed; /* stdin bytes consumed, not yet credited */

    struct outfd out[2];
    size_t nout;
    uint32_t out_window; /* bytes the host lets us send */
    uint64_t drain_deadline_ms;
    bool failed; /* the command could not start: ERROR already queued */
    /* Its command line or environment did not fit: ERROR queued; the
     * stream waits for START (then fails) so that the rest of the
     * description cannot open a new one under the same id. */
    bool rejected;
};

struct relay {
    const struct guest_session *s;
    int port;
    struct mvm_proto_decoder dec;
    uint8_t *outq; /* frames waiting for the port */
    size_t outq_len, outq_cap;
    int sigfd;
    bool port_gone;
    bool main_done; /* the main command's status is queued (or it failed) */
    struct stream st[MAX_STREAMS];
};

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void queue_frame(struct relay *r, uint16_t stream, uint8_t type, const void *payload,
                        uint32_t len)
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
    mvm_proto_header(r->outq + r->outq_len, type, stream, len);
    if (len)
        memcpy(r->outq + r->outq_len + MVM_PROTO_HEADER, payload, len);
    r->outq_len = need;
}

static void queue_u32(struct relay *r, uint16_t stream, uint8_t type, uint32_t v)
{
    uint8_t p[4];
    mvm_put_u32(p, v);
    queue_frame(r, stream, type, p, 4);
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

static void report_error(struct relay *r, uint16_t stream, int status, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void report_error(struct relay *r, uint16_t stream, int status, const char *fmt, ...)
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
    queue_frame(r, stream, MVM_MSG_ERROR, payload, (uint32_t)(4 + len));
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

static int push_string(struct stream *st, char ***vec, size_t *n, const struct mvm_proto_frame *f)
{
    if (*n + 2 > MAX_ARGS || st->arg_bytes + f->len > MAX_ARG_BYTES)
        return -1;
    char **v = realloc(*vec, (*n + 2) * sizeof *v);
    if (v == NULL)
        return -1;
    *vec = v;
    if ((v[*n] = dup_payload(f)) == NULL)
        return -1;
    v[++*n] = NULL;
    st->arg_bytes += f->len;
    return 0;
}

static void free_strv(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

static struct stream *find_stream(struct relay *r, uint16_t id)
{
    for (size_t i = 0; i < MAX_STREAMS; i++)
        if (r->st[i].id == id)
            return &r->st[i];
    return NULL;
}

/* The stream of a host frame: an unknown id opens one while the host is
 * still describing a command (ARG, ENV, START). */
static struct stream *stream_for(struct relay *r, const struct mvm_proto_frame *f)
{
    struct stream *st = f->stream ? find_stream(r, f->stream) : NULL;
    bool opens = f->type == MVM_MSG_ARG || f->type == MVM_MSG_ENV || f->type == MVM_MSG_START;
    if (st != NULL || !opens || f->stream == 0)
        return st;
    st = find_stream(r, 0);
    uint8_t *inbuf = st ? malloc(MVM_PROTO_WINDOW) : NULL;
    if (inbuf == NULL) {
        if (f->type == MVM_MSG_START)
            report_error(r, f->stream, 125, "mvm-init: too many commands at once (at most %d)",
                         MAX_STREAMS);
        return NULL;
    }
    *st = (struct stream){
        .id = f->stream, .in_fd = -1, .inbuf = inbuf, .out_window = MVM_PROTO_WINDOW};
    return st;
}

static void stream_free(struct stream *st)
{
    for (size_t i = 0; i < st->nout; i++)
        if (st->out[i].fd != st->in_fd)
            close(st->out[i].fd);
    if (st->in_fd >= 0)
        close(st->in_fd);
    free_strv(st->argv, st->argc);
    free_strv(st->envp, st->envc);
    free(st->inbuf);
    *st = (struct stream){.id = 0, .in_fd = -1};
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

/* The environment: the host's entries, then the defaults it did not
 * name (allocated into defaults[], *nd of them, for the caller to free). */
static char **build_env(const struct guest_session *s, struct stream *st, char *defaults[9],
                        size_t *nd)
{
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
    int rc = asprintf(&defaults[(*nd)++], "PATH=%s", full);
    free(full);
    if (rc < 0 || asprintf(&defaults[(*nd)++], "HOME=%s", s->home) < 0 ||
        asprintf(&defaults[(*nd)++], "USER=%s", s->user) < 0 ||
        asprintf(&defaults[(*nd)++], "LOGNAME=%s", s->user) < 0 ||
        asprintf(&defaults[(*nd)++], "SHELL=%s", s->shell) < 0 ||
        asprintf(&defaults[(*nd)++], "TERM=%s", st->tty ? "xterm-256color" : "dumb") < 0) {
        defaults[--*nd] = NULL; /* asprintf left it undefined */
        return NULL;
    }
    /* With a writable /usr, /usr/local is the user's: npm -g goes there
     * (Debian's npm would pick /usr, which stays root's). */
    if (s->scratch != NULL && (defaults[(*nd)++] = strdup("NPM_CONFIG_PREFIX=/usr/local")) == NULL)
        return NULL;
    char **env = calloc(st->envc + *nd + 1, sizeof *env);
    if (env == NULL)
        return NULL;
    size_t n = 0;
    for (size_t i = 0; i < st->envc; i++)
        env[n++] = st->envp[i];
    for (size_t i = 0; i < *nd; i++)
        if (defaults[i] && !has_name(st->envp, st->envc, defaults[i]))
            env[n++] = defaults[i];
    env[n] = NULL;
    return env;
}

static void start_command(struct relay *r, struct stream *st)
{
    /* `mvm exec --root`: guest root, in the session's working directory. */
    struct guest_session as = *r->s;
    if (st->root) {
        as.uid = 0;
        as.gid = 0;
        as.user = "root";
        as.home = "/root";
        as.shell = "/bin/sh";
    }
    char *defaults[9] = {NULL};
    size_t nd = 0;
    char **env = build_env(&as, st, defaults, &nd);
    /* No command: the user's shell as a login shell (argv[0] "-bash"). */
    const char *base = strrchr(as.shell, '/');
    char *login_name = NULL;
    if (st->argc == 0 && asprintf(&login_name, "-%s", base ? base + 1 : as.shell) < 0)
        login_name = NULL;
    char *login_argv[2] = {login_name, NULL};
    int status = 125;
    char why[1024] = "mvm-init: out of memory";
    struct guest_child c;
    int rc = -1;
    if (env != NULL && (st->argc > 0 || login_name != NULL)) {
        const char *file = st->argc ? st->argv[0] : as.shell;
        rc = guest_spawn(&as, file, st->argc ? st->argv : login_argv, env, st->tty, st->rows,
                         st->cols, &c, &status, why, sizeof why);
    }
    free(env);
    free(login_name);
    for (size_t i = 0; i < nd; i++)
        free(defaults[i]);
    if (rc < 0) {
        report_error(r, st->id, status, "%s", why);
        st->failed = true;
        return;
    }
    guest_trace("command started");
    st->child = c.pid;
    st->in_fd = c.in;
    st->out[st->nout++] = (struct outfd){c.out, MVM_MSG_STDOUT};
    if (c.err >= 0)
        st->out[st->nout++] = (struct outfd){c.err, MVM_MSG_STDERR};
}

static void on_stdin(struct stream *st, const struct mvm_proto_frame *f)
{
    if (f->len == 0) {
        st->in_eof = true;
        return;
    }
    if (st->in_off > 0) { /* the window counts unconsumed bytes only */
        memmove(st->inbuf, st->inbuf + st->in_off, st->in_len - st->in_off);
        st->in_len -= st->in_off;
        st->in_off = 0;
    }
    if (st->in_len + f->len > MVM_PROTO_WINDOW) {
        guest_log("host sent stdin beyond its window; dropping it");
        return;
    }
    memcpy(st->inbuf + st->in_len, f->payload, f->len);
    st->in_len += f->len;
}

static void kill_all(struct relay *r)
{
    for (size_t i = 0; i < MAX_STREAMS; i++)
        if (r->st[i].child > 0 && !r->st[i].exited)
            kill(-r->st[i].child, SIGKILL);
}

static void on_frame(struct relay *r, const struct mvm_proto_frame *f)
{
    if (f->type == MVM_MSG_SHUTDOWN) {
        struct stream *m = find_stream(r, MVM_PROTO_MAIN_STREAM);
        kill_all(r);
        if (m == NULL || !m->started)
            r->port_gone = true; /* nothing to wait for */
        return;
    }
    struct stream *st = stream_for(r, f);
    if (st == NULL)
        return; /* a command that ended (or never started): late frames */
    switch (f->type) {
    case MVM_MSG_ARG:
    case MVM_MSG_ENV:
        if (st->started || st->rejected)
            break;
        if (f->type == MVM_MSG_ARG ? push_string(st, &st->argv, &st->argc, f) < 0
                                   : push_string(st, &st->envp, &st->envc, f) < 0) {
            report_error(r, st->id, 125,
                         f->type == MVM_MSG_ARG ? "mvm-init: command line too long"
                                                : "mvm-init: environment too large");
            st->rejected = true;
        }
        break;
    case MVM_MSG_START:
        if (st->rejected && !st->started) { /* its ERROR is out: ends it */
            st->started = st->failed = true;
        } else if (!st->started) {
            st->tty = f->payload[0] & MVM_START_TTY;
            st->root = f->payload[0] & MVM_START_ROOT;
            st->rows = mvm_get_u16(f->payload + 1);
            st->cols = mvm_get_u16(f->payload + 3);
            st->started = true;
            start_command(r, st);
        }
        break;
    case MVM_MSG_STDIN:
        on_stdin(st, f);
        break;
    case MVM_MSG_WINSIZE:
        st->rows = mvm_get_u16(f->payload);
        st->cols = mvm_get_u16(f->payload + 2);
        if (st->tty && st->in_fd >= 0) {
            struct winsize ws = {.ws_row = st->rows, .ws_col = st->cols};
            ioctl(st->in_fd, TIOCSWINSZ, &ws);
        }
        break;
    case MVM_MSG_SIGNAL: {
        uint32_t sig = mvm_get_u32(f->payload);
        if (st->child > 0 && !st->exited && sig > 0 && sig < 65)
            kill(-st->child, (int)sig);
        break;
    }
    case MVM_MSG_CREDIT_OUT: {
        uint64_t w = (uint64_t)st->out_window + mvm_get_u32(f->payload);
        st->out_window = w > 0xffffffffu ? 0xffffffffu : (uint32_t)w;
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

static void write_stdin(struct relay *r, struct stream *st)
{
    while (st->in_off < st->in_len) {
        ssize_t n = write(st->in_fd, st->inbuf + st->in_off, st->in_len - st->in_off);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno != EAGAIN) { /* reader gone: discard, keep credits flowing */
                st->in_credit_owed += (uint32_t)(st->in_len - st->in_off);
                st->in_off = st->in_len;
            }
            break;
        }
        st->in_off += (size_t)n;
        st->in_credit_owed += (uint32_t)n;
    }
    if (st->in_off == st->in_len)
        st->in_off = st->in_len = 0;
    if (st->in_credit_owed >= CREDIT_BATCH || (st->in_len == 0 && st->in_credit_owed > 0)) {
        queue_u32(r, st->id, MVM_MSG_CREDIT_IN, st->in_credit_owed);
        st->in_credit_owed = 0;
    }
    if (st->in_eof && st->in_len == 0 && st->in_fd >= 0) {
        if (st->tty) {
            /* A pty cannot be half-closed; ^D is EOF for canonical readers. */
            (void)!write(st->in_fd, "\x04", 1);
        } else {
            close(st->in_fd);
            st->in_fd = -1;
        }
        st->in_eof = false;
    }
}

/* Reads one chunk of output within the window.  Returns false once the fd
 * is finished (EOF, EIO from a hung-up pty, or silent after the exit). */
static bool read_output(struct relay *r, struct stream *st, struct outfd *o)
{
    uint8_t buf[READ_CHUNK];
    size_t want = st->out_window < sizeof buf ? st->out_window : sizeof buf;
    ssize_t n = read(o->fd, buf, want);
    if (n > 0) {
        st->out_window -= (uint32_t)n;
        queue_frame(r, st->id, o->type, buf, (uint32_t)n);
        st->drain_deadline_ms = st->exited && st->tty ? now_ms() + PTY_DRAIN_MS : 0;
        return true;
    }
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
        if (!st->exited)
            return true;
        if (st->tty && now_ms() < st->drain_deadline_ms)
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
    int wst;
    pid_t pid;
    while ((pid = waitpid(-1, &wst, WNOHANG)) > 0) {
        for (size_t i = 0; i < MAX_STREAMS; i++) {
            struct stream *st = &r->st[i];
            if (st->id == 0 || pid != st->child || st->exited)
                continue;
            st->exited = true;
            guest_trace("command exited");
            st->status = mvm_proto_status_from_wait(wst);
            st->drain_deadline_ms = now_ms() + PTY_DRAIN_MS;
            if (st->tty && st->in_fd >= 0) {
                int fl = fcntl(st->in_fd, F_GETFL);
                fcntl(st->in_fd, F_SETFL, fl | O_NONBLOCK);
            }
        }
    }
}

static void close_out(struct stream *st, size_t i)
{
    int fd = st->out[i].fd;
    st->out[i] = st->out[--st->nout];
    if (fd == st->in_fd) /* the pty master is both */
        st->in_fd = -1;
    close(fd);
}

static bool can_read(const struct relay *r, const struct stream *st)
{
    return st->out_window > 0 && r->outq_len < OUTQ_SOFT_LIMIT;
}

/* A stream whose command failed to start, or exited with all its output
 * sent, reports and frees its slot; the main one ends the relay. */
static void finish(struct relay *r, struct stream *st)
{
    if (!st->failed && !(st->exited && st->nout == 0))
        return;
    /* Everything the session wrote reaches the host's files before the
     * host hears the end: from then on it may stop QEMU at once. */
    if (st->id == MVM_PROTO_MAIN_STREAM)
        sync();
    if (!st->failed)
        queue_u32(r, st->id, MVM_MSG_EXIT, (uint32_t)st->status);
    if (st->id == MVM_PROTO_MAIN_STREAM)
        r->main_done = true;
    stream_free(st);
}

/* The stream's fds into p; returns the poll timeout it needs (-1: none). */
static int stream_pollfds(const struct relay *r, const struct stream *st, struct pollfd *p,
                          size_t *np, size_t *out_base, size_t *in_idx)
{
    bool readable = can_read(r, st);
    *out_base = *np;
    for (size_t i = 0; i < st->nout; i++)
        p[(*np)++] = (struct pollfd){.fd = st->out[i].fd, .events = readable ? POLLIN : 0};
    *in_idx = SIZE_MAX;
    if (st->in_fd >= 0 && (st->in_len > st->in_off || st->in_eof)) {
        *in_idx = *np;
        p[(*np)++] = (struct pollfd){.fd = st->in_fd, .events = POLLOUT};
    }
    if (st->exited && readable)
        return st->tty ? PTY_DRAIN_MS : 0;
    return -1;
}

/* out_base/npolled: where the stream's outputs were in p and how many
 * (0 for fds opened this round, by a START just read). */
static void stream_handle(struct relay *r, struct stream *st, const struct pollfd *p,
                          size_t out_base, size_t npolled, size_t in_idx)
{
    if (st->in_fd >= 0 && ((in_idx != SIZE_MAX && p[in_idx].revents) || st->in_len > st->in_off))
        write_stdin(r, st); /* also data that arrived in this round */
    bool readable = can_read(r, st);
    for (size_t i = st->nout; i-- > 0;) {
        bool ready = (i < npolled && p[out_base + i].revents != 0) || (st->exited && readable);
        if (ready && readable && !read_output(r, st, &st->out[i]))
            close_out(st, i);
    }
}

/* One round of poll; returns false when the relay is finished. */
static bool relay_step(struct relay *r)
{
    struct pollfd p[MAX_POLL];
    size_t np = 0, out_base[MAX_STREAMS], nout[MAX_STREAMS], in_idx[MAX_STREAMS];
    p[np++] =
        (struct pollfd){.fd = r->port, .events = (short)(POLLIN | (r->outq_len ? POLLOUT : 0))};
    p[np++] = (struct pollfd){.fd = r->sigfd, .events = POLLIN};
    int timeout = -1;
    for (size_t i = 0; i < MAX_STREAMS; i++) {
        nout[i] = r->st[i].nout;
        out_base[i] = in_idx[i] = SIZE_MAX;
        if (r->st[i].id == 0)
            continue;
        int t = stream_pollfds(r, &r->st[i], p, &np, &out_base[i], &in_idx[i]);
        if (t >= 0 && (timeout < 0 || t < timeout))
            timeout = t;
    }
    int n = poll(p, (nfds_t)np, timeout);
    if (n < 0 && errno != EINTR)
        return false;

    if (p[1].revents)
        reap(r);
    if (p[0].revents & (POLLIN | POLLHUP | POLLERR))
        read_port(r);
    for (size_t i = 0; i < MAX_STREAMS; i++) {
        struct stream *st = &r->st[i];
        if (st->id == 0)
            continue;
        stream_handle(r, st, p, out_base[i], nout[i], in_idx[i]);
        finish(r, st);
    }
    flush_port(r);

    if (r->port_gone) {
        kill_all(r);
        return false;
    }
    return !r->main_done;
}

void guest_run(int port, const struct guest_session *s)
{
    struct relay r = {.s = s, .port = port};
    mvm_proto_decoder_init(&r.dec);
    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGCHLD);
    sigprocmask(SIG_BLOCK, &mask, NULL);
    r.sigfd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
    if (r.sigfd < 0) {
        guest_send_error(port, 125, "mvm-init: cannot set up the relay");
        return;
    }
    while (relay_step(&r))
        ;
    flush_port_blocking(&r);
    guest_trace("exit reported");
}
