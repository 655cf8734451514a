/* The disk guard in the session (--share-limit, --min-free): the read-write
 * shares' filesystems sampled on the event loop's clock, the VM paused
 * over QMP when share/guard.c says a limit is crossed, and the user asked
 * on the controlling terminal whether to resume (r, after the limits are
 * checked again) or stop (s).  Without a terminal to ask, the session
 * ends with MVM_EXIT_DISK_LIMIT. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "session-int.h"
#include "util.h"

int session_guard_open(struct session *s, struct mvm_error **err)
{
    char *dirs[MAX_SHARES];
    size_t n = 0;
    for (size_t i = 0; i < s->nshares; i++)
        if (!s->shares[i].ro)
            dirs[n++] = s->shares[i].host;
    const struct mvm_guard_limits l = {
        .share_limit = s->o->share_limit,
        .min_free = s->o->min_free,
        .min_free_percent = s->o->min_free_percent,
    };
    s->guard_tty = -1;
    if (mvm_guard_open(&s->guard, &l, dirs, n, err) < 0)
        return mvm_error_wrap(err, "the read-write shares");
    s->guard_next = now_ns();
    return 0;
}

uint64_t session_guard_deadline(const struct session *s)
{
    return mvm_guard_active(&s->guard) && !s->guard_paused ? s->guard_next : UINT64_MAX;
}

/* Always shown, -q or not: it asks for a key.  In raw mode a line needs
 * its carriage return. */
static void say(const struct session *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void say(const struct session *s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    cleanup_free char *msg = xvasprintf(fmt, ap);
    va_end(ap);
    sanitize_text(msg);
    cleanup_free char *line = xasprintf("mvm: %s%s", msg, s->term.tio_saved ? "\r\n" : "\n");
    write_all(STDERR_FILENO, line, strlen(line));
}

static void tty_release(struct session *s)
{
    if (s->guard_tty < 0)
        return;
    if (s->guard_tio_set)
        tcsetattr(s->guard_tty, TCSADRAIN, &s->guard_tio);
    s->guard_tio_set = false;
    close(s->guard_tty);
    s->guard_tty = -1;
}

/* The controlling terminal, if mvm has one in the foreground, one key at
 * a time (it is raw already when the session's stdin is that terminal). */
static bool tty_take(struct session *s)
{
    int fd = open("/dev/tty", O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0)
        return false;
    if (tcgetpgrp(fd) != getpgrp()) { /* in the background: reading stops mvm */
        close(fd);
        return false;
    }
    s->guard_tty = fd;
    struct termios t;
    if (tcgetattr(fd, &t) == 0 && (t.c_lflag & ICANON)) {
        s->guard_tio = t;
        t.c_lflag &= ~(tcflag_t)(ICANON | ECHO);
        t.c_cc[VMIN] = 1;
        t.c_cc[VTIME] = 0;
        s->guard_tio_set = tcsetattr(fd, TCSADRAIN, &t) == 0;
    }
    return true;
}

static void written(const struct mvm_guard_verdict *v, char out[96])
{
    char sz[24];
    mvm_guard_size(v->added_bytes, sz);
    snprintf(out, 96, "%s and %llu inodes", sz, (unsigned long long)v->added_files);
}

static int pause_vm(struct session *s, struct mvm_guard_verdict *v, struct mvm_error **err)
{
    s->guard_paused = true; /* before the STOP event arrives */
    if (mvm_qmp_execute(s->qmp, "stop", NULL, NULL, QMP_TIMEOUT_MS, err) < 0)
        return mvm_error_wrap(err, "pausing the VM at a disk limit");
    /* QEMU has stopped virtiofsd's queues: what it had in flight is on
     * the host now, and counted. */
    struct mvm_guard_verdict after;
    if (mvm_guard_sample(&s->guard, err) < 0)
        return -1;
    if (mvm_guard_check(&s->guard, &after) != MVM_GUARD_OK)
        *v = after;
    else
        v->added_bytes = after.added_bytes, v->added_files = after.added_files;
    cleanup_free char *what = mvm_guard_describe(&s->guard, v);
    char w[96];
    written(v, w);
    if (!tty_take(s))
        return mvm_error_set_code(err, MVM_EXIT_DISK_LIMIT,
                                  "%s (since the start: %s more in use); with no terminal to ask "
                                  "whether to resume, the VM was destroyed",
                                  what, w);
    say(s, "paused the VM: %s (since the start: %s more in use)", what, w);
    say(s, "free some space, then press r to resume, or s to stop the session");
    return 0;
}

int session_guard_tick(struct session *s, struct mvm_error **err)
{
    uint64_t now = now_ns();
    if (!mvm_guard_active(&s->guard) || s->guard_paused || now < s->guard_next)
        return 0;
    if (mvm_guard_sample(&s->guard, err) < 0)
        return mvm_error_wrap(err, "the VM was destroyed");
    struct mvm_guard_verdict v;
    if (mvm_guard_check(&s->guard, &v) != MVM_GUARD_OK)
        return pause_vm(s, &v, err);
    s->guard_next = now + mvm_guard_next_ms(&s->guard) * 1000000ULL;
    return 0;
}

static int try_resume(struct session *s, struct mvm_error **err)
{
    struct mvm_guard_verdict v;
    if (mvm_guard_sample(&s->guard, err) < 0)
        return mvm_error_wrap(err, "the VM was destroyed");
    if (mvm_guard_check(&s->guard, &v) != MVM_GUARD_OK) {
        cleanup_free char *what = mvm_guard_describe(&s->guard, &v);
        say(s, "still paused: %s; press r to resume once there is room, or s to stop", what);
        return 0;
    }
    if (mvm_qmp_execute(s->qmp, "cont", NULL, NULL, QMP_TIMEOUT_MS, err) < 0)
        return mvm_error_wrap(err, "resuming the VM");
    tty_release(s);
    s->guard_paused = false;
    s->guard_next = now_ns();
    say(s, "resumed the VM");
    return 0;
}

int session_guard_key(struct session *s, struct mvm_error **err)
{
    char keys[64];
    ssize_t n = read(s->guard_tty, keys, sizeof keys);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return 0;
    if (n <= 0)
        return mvm_error_set_code(err, MVM_EXIT_DISK_LIMIT,
                                  "the terminal went away while the VM was paused at a disk "
                                  "limit; the VM was destroyed");
    for (ssize_t i = 0; i < n; i++) {
        char k = keys[i];
        if (k == 'r' || k == 'R')
            return try_resume(s, err);
        /* s, or Ctrl-C / Ctrl-D / q as a user would try them. */
        if (k == 's' || k == 'S' || k == 'q' || k == 0x03 || k == 0x04) {
            struct mvm_guard_verdict v;
            mvm_guard_check(&s->guard, &v);
            cleanup_free char *what = mvm_guard_describe(&s->guard, &v);
            return mvm_error_set_code(err, MVM_EXIT_DISK_LIMIT,
                                      "stopped from the terminal while the VM was paused (%s); "
                                      "the VM was destroyed",
                                      what);
        }
    }
    say(s, "the VM is paused at a disk limit: press r to resume, or s to stop the session");
    return 0;
}

void session_guard_end(struct session *s)
{
    tty_release(s);
    mvm_guard_clear(&s->guard);
}
