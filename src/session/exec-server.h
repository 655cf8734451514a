/* exec-server: the supervisor's end of `mvm exec`.  Each session listens
 * on MVM_EXEC_DIR/<id>.sock (the directory root's, 0711; the socket the
 * session user's, 0600), takes a client only when SO_PEERCRED says it is
 * that user or root, and routes the client's control-protocol frames to
 * the guest on a stream of its own (2, 3, ...) and that stream's frames
 * back.  A client speaks the protocol as if it were the only command
 * (stream 1); the server checks every frame of both sides, so neither a
 * client nor the guest can make it buffer without bound, act on another
 * stream, or send the guest anything but a command's own messages.
 * A client whose first frame is ATTACH (mvm attach) gets the main
 * command's stream instead, when the session was started with --detach
 * and no other client is attached.  Internal to the session. */
#ifndef MVM_SESSION_EXEC_SERVER_H
#define MVM_SESSION_EXEC_SERVER_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "error.h"
#include "proto.h"
#include "relay.h"
#include "sessiondir.h"
#include "util.h"

/* mvm exec clients at once in one session (the guest allows more). */
#define MVM_EXEC_MAX 8

struct exec_client {
    int fd;          /* -1: no client */
    bool started;    /* START went to the guest */
    bool live;       /* the guest has the stream: started, no EXIT/ERROR yet */
    uint32_t credit; /* output the guest may still send (the client's window) */
    /* With nobody reading: output taken and not yet credited back; sent
     * as one CREDIT_OUT once it is worth it and the queue to the guest
     * has room, so a guest cannot make the supervisor queue without end. */
    uint32_t owed;
    /* Input credit: bytes this client sent that the guest has not
     * credited yet, and bytes earlier clients of the slot sent (attach):
     * the guest's CREDIT_IN for those is taken, never passed on. */
    uint32_t in_sent, in_stale;
    size_t nstrings; /* ARG and ENV frames so far */
    struct mvm_proto_decoder *dec;
    struct buf pending; /* ARG/ENV frames, sent with START */
    struct buf out;     /* frames for the client */
    size_t out_off;
    int pi; /* index in the poll set, -1: not polled */
};

struct exec_server {
    int fd; /* listening; -1: none */
    char *path;
    uid_t uid; /* the session's user */
    struct mvm_relay *relay;
    bool detached; /* mvm run --detach: the main command takes mvm attach */
    /* exec'd commands, then (MVM_EXEC_ATTACH) the attached client */
    struct exec_client c[MVM_EXEC_MAX + 1];
    int pi;
};
#define MVM_EXEC_ATTACH MVM_EXEC_MAX

void exec_server_init(struct exec_server *x);
/* Listens on MVM_EXEC_DIR/<id>.sock for the session of uid/gid and hooks
 * into relay, whose control socket carries the streams.  With detached
 * (mvm run --detach), the main command's I/O is routed too: to the one
 * client that sent ATTACH, else taken, credited and dropped. */
int exec_server_listen(struct exec_server *x, const char *id, uid_t uid, gid_t gid, bool detached,
                       struct mvm_relay *relay, struct mvm_error **err);
/* Closes every client (their commands die with SIGKILL) and removes the
 * socket.  Idempotent. */
void exec_server_close(struct exec_server *x);
void exec_server_pollfds(struct exec_server *x, struct mvm_pollset *set);
/* Accepts, reads and writes clients.  (What the guest sends on their
 * streams comes through the relay's hook, which fails the relay when the
 * guest broke the protocol.) */
void exec_server_handle(struct exec_server *x, const struct mvm_pollset *set);
/* Removes the sockets of sessions that no longer run (mvm cleanup):
 * live(id) says whether one does. */
void exec_server_sweep(bool (*live)(const char *id));

#endif
