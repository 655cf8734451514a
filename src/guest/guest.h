/* mvm-init: the static PID 1 of every guest.
 *
 * Owns, inside the guest: loading the initramfs' modules, assembling the
 * root filesystem from the session description, creating the user, and
 * running the command with its I/O relayed over the control port.  It
 * trusts the host's messages (the host is the trusted side) and nothing
 * the guest's own processes can change: it runs before them, and after
 * the command it only reads its own pipes and its own wait status. */
#ifndef MVM_GUEST_H
#define MVM_GUEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define GUEST_SESSION_PATH "/mvm/session.json"
#define GUEST_MODULES_DIR  "/mvm/modules"
#define GUEST_HOST_ETC_DIR "/mvm/etc"
#define GUEST_NEWROOT      "/newroot"

struct guest_share {
    char *tag;
    char *path; /* absolute guest path */
    bool ro;
};

struct guest_session {
    char *hostname;
    char *user, *group, *home, *shell, *cwd;
    uid_t uid;
    gid_t gid;
    char *usr_tag; /* virtiofs tag of the host's /usr */
    struct guest_share *shares;
    size_t nshares;
};

/* log.c: writes "mvm-init: <msg>\n" to the console (the kernel log the host
 * keeps); used for diagnostics the user sees only on failure. */
void guest_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* log.c: a timestamped step on the console when tracing (mvm.trace on
 * the kernel command line, which init.c reads). */
void guest_trace(const char *what);
void guest_trace_enable(bool on);

/* session.c */
int guest_session_load(const char *path, struct guest_session *s, char *why, size_t whylen);

/* modules.c: loads every module listed in GUEST_MODULES_DIR/order. */
int guest_load_modules(char *why, size_t whylen);

/* rootfs.c: builds the root under GUEST_NEWROOT and switches to it. */
int guest_setup_root(const struct guest_session *s, char *why, size_t whylen);

/* exec.c: the started command.  With a pty, in == out == master. */
struct guest_child {
    pid_t pid;
    int master;       /* pty master or -1 */
    int in, out, err; /* err is -1 with a pty */
};
/* Returns 0, or -1 with *status (125/126/127) and a message for the user;
 * the child (if any) then has exited by itself and is reaped as usual. */
int guest_spawn(const struct guest_session *s, const char *file, char **argv, char **envp, bool tty,
                uint16_t rows, uint16_t cols, struct guest_child *c, int *status, char *why,
                size_t whylen);

/* relay.c: runs the command the host describes over the control port,
 * relays its I/O and reports its status.  Returns when the host has the
 * status (or the port is gone). */
void guest_run(int port, const struct guest_session *s);

/* log.c: sends an ERROR frame (best effort). */
void guest_send_error(int port, int status, const char *msg);

#endif
