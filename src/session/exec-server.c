/* The supervisor's end of `mvm exec`; see exec-server.h. */
#include "exec-server.h"

#include <dirent.h>
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "session-int.h"

/* The command line and environment with a frame header each. */
#define PENDING_MAX (MVM_COMMAND_MAX_BYTES + 64 * 1024)
/* Output within a window, even in 1-byte frames, plus CREDIT_IN frames:
 * beyond this the guest is flooding. */
#define OUT_MAX (4 * 1024 * 1024)
/* Clients are not read while this much waits for the guest. */
#define TOGUEST_SOFT (256 * 1024)
/* Output taken for nobody is credited back in pieces of at least this. */
#define OWED_BATCH (MVM_PROTO_WINDOW / 8)

static uint16_t stream_of(size_t slot)
{
    return slot == MVM_EXEC_ATTACH ? MVM_PROTO_MAIN_STREAM
                                   : (uint16_t)(MVM_PROTO_MAIN_STREAM + 1 + slot);
}

void exec_server_init(struct exec_server *x)
{
    memset(x, 0, sizeof *x);
    x->fd = -1;
    x->pi = -1;
    for (size_t i = 0; i <= MVM_EXEC_MAX; i++)
        x->c[i].fd = x->c[i].pi = -1;
}

/* Frames the client gets, as stream 1. */
static void to_client(struct exec_client *c, uint8_t type, const void *payload, uint32_t len)
{
    uint8_t hdr[MVM_PROTO_HEADER];
    mvm_proto_header(hdr, type, MVM_PROTO_MAIN_STREAM, len);
    buf_append(&c->out, hdr, sizeof hdr);
    buf_append(&c->out, payload, len);
}

static void to_guest_u32(struct exec_server *x, size_t slot, uint8_t type, uint32_t v)
{
    uint8_t p[4];
    mvm_put_u32(p, v);
    mvm_relay_queue(x->relay, type, stream_of(slot), p, sizeof p);
}

/* One frame to a socket nobody reads from yet: the refusal. */
static void refuse(int fd, const char *msg)
{
    uint8_t frame[MVM_PROTO_HEADER + 4 + 256];
    size_t len = strnlen(msg, 256);
    mvm_proto_header(frame, MVM_MSG_ERROR, MVM_PROTO_MAIN_STREAM, (uint32_t)(4 + len));
    mvm_put_u32(frame + MVM_PROTO_HEADER, 125);
    memcpy(frame + MVM_PROTO_HEADER + 4, msg, len);
    (void)!send(fd, frame, MVM_PROTO_HEADER + 4 + len, MSG_DONTWAIT | MSG_NOSIGNAL);
    close(fd);
}

static void free_slot(struct exec_client *c)
{
    free(c->dec);
    buf_free(&c->pending);
    buf_free(&c->out);
    *c = (struct exec_client){.fd = -1, .pi = -1};
}

/* The client is gone (or misbehaved): an exec'd command is killed, the
 * main one goes on detached; what either still prints is taken and
 * credited until the guest reports its end.  The window is made whole
 * again, which is what the next attached client takes it to be. */
static void drop_client(struct exec_server *x, size_t slot)
{
    struct exec_client *c = &x->c[slot];
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
    if (!c->live) {
        free_slot(c);
        return;
    }
    if (slot != MVM_EXEC_ATTACH)
        to_guest_u32(x, slot, MVM_MSG_SIGNAL, SIGKILL);
    /* What the client had not read yet is owed back; its input is stale. */
    c->owed = MVM_PROTO_WINDOW - c->credit;
    c->in_stale += c->in_sent;
    c->in_sent = 0;
    free(c->dec);
    c->dec = NULL;
    buf_free(&c->pending);
    buf_free(&c->out);
    c->out_off = 0;
}

/* A frame from the guest on a stream other than the main one. */
static int from_guest(void *arg, const struct mvm_proto_frame *f, struct mvm_error **err)
{
    struct exec_server *x = arg;
    size_t slot;
    if (f->stream == MVM_PROTO_MAIN_STREAM)
        slot = MVM_EXEC_ATTACH;
    else if (f->stream > MVM_PROTO_MAIN_STREAM &&
             f->stream - MVM_PROTO_MAIN_STREAM - 1 < MVM_EXEC_MAX)
        slot = (size_t)f->stream - MVM_PROTO_MAIN_STREAM - 1;
    else
        return 0; /* no stream of an exec'd command: made up, dropped */
    if (!x->c[slot].live)
        return 0; /* a stream that ended or never was: late, dropped */
    struct exec_client *c = &x->c[slot];
    switch (f->type) {
    case MVM_MSG_STDOUT:
    case MVM_MSG_STDERR:
        if (f->len > c->credit)
            return mvm_error_set(err, 0,
                                 "the guest broke the control protocol (output beyond "
                                 "the window of an exec'd command)");
        c->credit -= f->len;
        if (c->fd < 0) { /* nobody reads it: credited back later, in pieces */
            c->owed += f->len;
            return 0;
        }
        break;
    case MVM_MSG_CREDIT_IN: {
        /* Credit for an earlier client's input is taken here; the rest is
         * this client's, never more than it sent. */
        uint32_t n = mvm_get_u32(f->payload), stale = n < c->in_stale ? n : c->in_stale;
        c->in_stale -= stale;
        n -= stale;
        if (n > c->in_sent)
            return mvm_error_set(err, 0,
                                 "the guest broke the control protocol (stdin credit of an "
                                 "exec'd command)");
        c->in_sent -= n;
        if (n == 0 || c->fd < 0)
            return 0;
        uint8_t p[4];
        mvm_put_u32(p, n);
        to_client(c, f->type, p, sizeof p);
        return 0;
    }
    case MVM_MSG_EXIT:
    case MVM_MSG_ERROR:
        c->live = false;
        if (c->fd < 0) {
            free_slot(c);
            return 0;
        }
        break;
    default:
        return mvm_error_set(err, 0,
                             "the guest broke the control protocol (message type %u on "
                             "an exec'd stream)",
                             f->type);
    }
    if (c->fd >= 0)
        to_client(c, f->type, f->payload, f->len);
    if (c->out.len - c->out_off > OUT_MAX)
        return mvm_error_set(err, 0,
                             "the guest broke the control protocol (flooding an exec'd "
                             "command's client)");
    return 0;
}

/* A frame from the client; false when it broke the protocol.  Only a
 * command's own messages pass, in order: ARG/ENV, START, then input. */
static bool from_client(struct exec_server *x, size_t slot, const struct mvm_proto_frame *f)
{
    struct exec_client *c = &x->c[slot];
    uint16_t stream = stream_of(slot);
    switch (f->type) {
    case MVM_MSG_ARG:
    case MVM_MSG_ENV:
    case MVM_MSG_START: {
        if (c->started || c->pending.len + MVM_PROTO_HEADER + f->len > PENDING_MAX ||
            (f->type != MVM_MSG_START && ++c->nstrings > MVM_COMMAND_MAX_STRINGS))
            return false;
        uint8_t hdr[MVM_PROTO_HEADER];
        mvm_proto_header(hdr, f->type, stream, f->len);
        buf_append(&c->pending, hdr, sizeof hdr);
        buf_append(&c->pending, f->payload, f->len);
        if (f->type != MVM_MSG_START)
            return true;
        /* Now that it runs, the guest may hold the stream. */
        buf_append(&x->relay->toguest, c->pending.data, c->pending.len);
        buf_free(&c->pending);
        c->started = c->live = true;
        c->credit = MVM_PROTO_WINDOW;
        return true;
    }
    case MVM_MSG_CREDIT_OUT: {
        uint64_t w = (uint64_t)c->credit + mvm_get_u32(f->payload);
        if (!c->started || w > MVM_PROTO_WINDOW)
            return false;
        c->credit = (uint32_t)w;
        break;
    }
    case MVM_MSG_STDIN:
        /* Within the window the client was given (less what earlier
         * clients left in the guest's buffer is the guest's to drop). */
        if (!c->started || (uint64_t)c->in_sent + f->len > MVM_PROTO_WINDOW)
            return false;
        c->in_sent += f->len;
        break;
    case MVM_MSG_WINSIZE:
    case MVM_MSG_SIGNAL:
        if (!c->started)
            return false;
        break;
    default: /* SHUTDOWN, and the guest's types */
        return false;
    }
    if (c->live) /* after EXIT: dropped */
        mvm_relay_queue(x->relay, f->type, stream, f->payload, f->len);
    return true;
}

/* The client gets ERROR and is closed once it has it. */
static void fail_client(struct exec_client *c, const char *msg)
{
    uint8_t p[4 + 256];
    size_t len = strnlen(msg, 256);
    mvm_put_u32(p, 125);
    memcpy(p + 4, msg, len);
    to_client(c, MVM_MSG_ERROR, p, (uint32_t)(4 + len));
    c->started = true;
    c->live = false;
}

/* ATTACH, the first frame of a client in slot: it takes over the main
 * command's stream, when that is free; returns the slot it is in now. */
static size_t attach(struct exec_server *x, size_t slot)
{
    struct exec_client *c = &x->c[slot], *a = &x->c[MVM_EXEC_ATTACH];
    if (!x->detached) {
        fail_client(c, "this session's command has its terminal (it was not started with mvm "
                       "run --detach); mvm exec runs another command in it");
        return slot;
    }
    if (a->fd >= 0 || !a->live) {
        fail_client(c, a->live ? "a client is attached to this session already (one at a time)"
                               : "this session's command has ended");
        return slot;
    }
    a->fd = c->fd;
    a->dec = c->dec;
    a->pi = -1; /* not polled this round */
    /* The new client takes a whole window: what is owed goes back now. */
    if (a->owed > 0)
        to_guest_u32(x, MVM_EXEC_ATTACH, MVM_MSG_CREDIT_OUT, a->owed);
    a->credit += a->owed;
    a->owed = 0;
    c->fd = -1;
    c->dec = NULL;
    free_slot(c);
    /* Programs that draw the whole screen draw it again. */
    to_guest_u32(x, MVM_EXEC_ATTACH, MVM_MSG_SIGNAL, SIGWINCH);
    return MVM_EXEC_ATTACH;
}

/* The frames the client's decoder holds. */
static void take_frames(struct exec_server *x, size_t slot)
{
    struct exec_client *c = &x->c[slot];
    struct mvm_proto_frame f;
    const char *why = NULL;
    enum mvm_proto_status st;
    while ((st = mvm_proto_next(c->dec, &f, &why)) == MVM_PROTO_FRAME) {
        bool first = !c->started && c->pending.len == 0;
        if (f.type == MVM_MSG_ATTACH && first && slot != MVM_EXEC_ATTACH) {
            size_t now = attach(x, slot);
            if (now != slot)
                take_frames(x, now); /* the rest of what it sent */
            return;
        }
        if (!from_client(x, slot, &f)) {
            st = MVM_PROTO_BAD;
            break;
        }
    }
    if (st == MVM_PROTO_BAD)
        drop_client(x, slot);
}

static void read_client(struct exec_server *x, size_t slot)
{
    struct exec_client *c = &x->c[slot];
    uint8_t buf[MVM_PROTO_MAX_PAYLOAD];
    size_t room = mvm_proto_space(c->dec);
    ssize_t n = read(c->fd, buf, room < sizeof buf ? room : sizeof buf);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (n <= 0) {
        drop_client(x, slot);
        return;
    }
    mvm_proto_feed(c->dec, buf, (size_t)n);
    take_frames(x, slot);
}

static void write_client(struct exec_server *x, size_t slot)
{
    struct exec_client *c = &x->c[slot];
    while (c->out.len > c->out_off) {
        ssize_t n = send(c->fd, c->out.data + c->out_off, c->out.len - c->out_off,
                         MSG_DONTWAIT | MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN)
            return;
        if (n < 0) {
            drop_client(x, slot);
            return;
        }
        c->out_off += (size_t)n;
    }
    c->out.len = c->out_off = 0;
    if (!c->live && c->started) /* the status is out: done */
        drop_client(x, slot);
}

static void accept_client(struct exec_server *x)
{
    int fd = accept4(x->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0)
        return;
    struct ucred cred;
    socklen_t len = sizeof cred;
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0 ||
        (cred.uid != x->uid && cred.uid != 0)) {
        refuse(fd, "this session is not yours; only its user or root may exec into it");
        return;
    }
    for (size_t i = 0; i < MVM_EXEC_MAX; i++) {
        struct exec_client *c = &x->c[i];
        if (c->fd >= 0 || c->live)
            continue;
        free_slot(c);
        c->fd = fd;
        c->dec = xcalloc(1, sizeof *c->dec);
        mvm_proto_decoder_init(c->dec);
        return;
    }
    char msg[128];
    snprintf(msg, sizeof msg,
             "this session runs %d exec'd commands already; try again when one has ended",
             MVM_EXEC_MAX);
    refuse(fd, msg);
}

int exec_server_listen(struct exec_server *x, const char *id, uid_t uid, gid_t gid, bool detached,
                       struct mvm_relay *relay, struct mvm_error **err)
{
    x->uid = uid;
    x->relay = relay;
    relay->other = from_guest;
    relay->other_arg = x;
    x->detached = detached;
    relay->route_main = detached;
    if (detached) { /* the main command runs, started by the session */
        struct exec_client *a = &x->c[MVM_EXEC_ATTACH];
        a->started = a->live = true;
        a->credit = MVM_PROTO_WINDOW;
    }
    /* Others may reach sockets in it, not list them. */
    struct stat st;
    if ((mkdir(MVM_EXEC_DIR, 0711) < 0 && errno != EEXIST) || lstat(MVM_EXEC_DIR, &st) < 0)
        return mvm_error_set(err, errno, "creating %s", MVM_EXEC_DIR);
    if (!S_ISDIR(st.st_mode) || st.st_uid != 0 || chmod(MVM_EXEC_DIR, 0711) < 0)
        return mvm_error_set(err, 0, "%s is not a directory owned by root; remove it",
                             MVM_EXEC_DIR);
    x->path = xasprintf(MVM_EXEC_DIR "/%s.sock", id);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof sa.sun_path, "%s", x->path);
    x->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (x->fd < 0)
        return mvm_error_set(err, errno, "creating the mvm exec socket");
    unlink(x->path);
    /* Root's and 0600 from the start, then the user's: nobody else can
     * connect in between (and SO_PEERCRED is checked anyway). */
    mode_t old = umask(0177);
    int rc = bind(x->fd, (struct sockaddr *)&sa, sizeof sa);
    umask(old);
    if (rc < 0 || lchown(x->path, uid, gid) < 0 || listen(x->fd, MVM_EXEC_MAX) < 0)
        return mvm_error_set(err, errno, "listening on %s", x->path);
    return 0;
}

/* At the end: what the clients have not read yet (a command's status
 * above all), given up to a second to get out. */
static void flush_clients(struct exec_server *x)
{
    for (int round = 0; round < 100; round++) {
        struct pollfd p[MVM_EXEC_MAX + 1];
        size_t n = 0, slots[MVM_EXEC_MAX + 1];
        for (size_t i = 0; i <= MVM_EXEC_MAX; i++)
            if (x->c[i].fd >= 0 && x->c[i].out.len > x->c[i].out_off) {
                slots[n] = i;
                p[n++] = (struct pollfd){.fd = x->c[i].fd, .events = POLLOUT};
            }
        if (n == 0 || poll(p, n, 10) < 0)
            return;
        for (size_t j = 0; j < n; j++)
            if (p[j].revents)
                write_client(x, slots[j]);
    }
}

void exec_server_close(struct exec_server *x)
{
    flush_clients(x);
    for (size_t i = 0; i <= MVM_EXEC_MAX; i++) {
        if (x->c[i].fd >= 0)
            close(x->c[i].fd);
        free_slot(&x->c[i]);
    }
    if (x->fd >= 0) {
        close(x->fd);
        unlink(x->path);
    }
    x->fd = -1;
    free(x->path);
    x->path = NULL;
    if (x->relay)
        x->relay->other = NULL;
}

void exec_server_pollfds(struct exec_server *x, struct mvm_pollset *set)
{
    x->pi = mvm_pollset_add(set, x->fd, POLLIN);
    bool room = x->relay && mvm_relay_queued(x->relay) < TOGUEST_SOFT;
    for (size_t i = 0; i <= MVM_EXEC_MAX; i++) {
        struct exec_client *c = &x->c[i];
        short ev = (short)((room ? POLLIN : 0) | (c->out.len > c->out_off ? POLLOUT : 0));
        c->pi = c->fd >= 0 ? mvm_pollset_add(set, c->fd, ev) : -1;
    }
}

void exec_server_handle(struct exec_server *x, const struct mvm_pollset *set)
{
    for (size_t i = 0; i <= MVM_EXEC_MAX; i++) {
        struct exec_client *c = &x->c[i];
        /* Output nobody reads, credited back once the guest reads its
         * port again: the window holds the guest back meanwhile. */
        if (c->live && c->fd < 0 && c->owed > 0 &&
            (c->owed >= OWED_BATCH || c->credit < OWED_BATCH) &&
            mvm_relay_queued(x->relay) < TOGUEST_SOFT) {
            to_guest_u32(x, i, MVM_MSG_CREDIT_OUT, c->owed);
            c->credit += c->owed;
            c->owed = 0;
        }
        short rev = c->pi >= 0 && c->fd >= 0 ? set->fds[c->pi].revents : 0;
        if (rev & (POLLIN | POLLHUP | POLLERR))
            read_client(x, i);
        if (c->fd >= 0 && c->out.len > c->out_off)
            write_client(x, i);
        else if (c->fd >= 0 && c->started && !c->live)
            write_client(x, i); /* nothing left to send: closes */
    }
    if (x->pi >= 0 && (set->fds[x->pi].revents & POLLIN))
        accept_client(x);
}

void exec_server_sweep(bool (*live)(const char *id))
{
    DIR *d = opendir(MVM_EXEC_DIR);
    struct dirent *de;
    while (d && (de = readdir(d)) != NULL) {
        size_t n = strlen(de->d_name);
        if (n != MVM_ID_LEN + 5 || strcmp(de->d_name + MVM_ID_LEN, ".sock") != 0)
            continue;
        char id[MVM_ID_LEN + 1];
        memcpy(id, de->d_name, MVM_ID_LEN);
        id[MVM_ID_LEN] = '\0';
        if (!live(id))
            unlinkat(dirfd(d), de->d_name, 0);
    }
    if (d)
        closedir(d);
}
