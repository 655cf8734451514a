/* sessiondir: /run/mvm/<id>/ (0700) -- the session's state file, console
 * log and initramfs -- and the removal of directories whose session died
 * (kill -9) after checking that the recorded process is really gone. */
#ifndef MVM_SESSIONDIR_H
#define MVM_SESSIONDIR_H

#include <jansson.h>
#include <stdint.h>
#include <sys/types.h>

#include "error.h"
#include "jail.h"

#define MVM_RUN_DIR "/run/mvm"
/* Session summaries (ps.c): a dot name, which the sweeps skip. */
#define MVM_PS_DIR MVM_RUN_DIR "/.ps"
/* mvm exec's sockets (exec-server.c): <id>.sock, the session user's. */
#define MVM_EXEC_DIR  MVM_RUN_DIR "/.exec"
#define MVM_CACHE_DIR "/var/cache/mvm"
#define MVM_ID_LEN    12

/* Creates run_dir (0700) if needed and a fresh run_dir/<id> (0700), under
 * run_dir's lock (see mvm_sessiondir_if_last). */
int mvm_sessiondir_create(const char *run_dir, char id[MVM_ID_LEN + 1], char **dir,
                          struct mvm_error **err);

/* Calls fn(arg, err) when run_dir holds no session directory (live or
 * stale), under the lock mvm_sessiondir_create takes, so that no session
 * starts meanwhile: the last one out takes down what the sessions share.
 * 1 when fn ran, 0 when a session is left, -1 (err) when fn or the lock
 * failed. */
int mvm_sessiondir_if_last(const char *run_dir, int (*fn)(void *arg, struct mvm_error **err),
                           void *arg, struct mvm_error **err);

/* Picks the lowest reserved uid that no live session under run_dir holds
 * and no passwd/group entry uses, records it as "jail_uid" in state and
 * writes dir/state.json -- under a lock, so concurrent sessions differ. */
int mvm_sessiondir_claim_uid(const char *run_dir, const char *dir, json_t *state, uid_t *uid,
                             struct mvm_error **err);

/* What state.json says of its session. */
struct mvm_session_state {
    pid_t pid;          /* mvm's */
    uint64_t starttime; /* mvm's, see mvm_proc_starttime() */
    uid_t jail_uid;     /* 0 when none of the reserved range was claimed */
};

/* Parses state.json's text; -1 when it is not a session's state (no
 * positive pid and start time).  Pure. */
int mvm_sessiondir_parse_state(const char *text, size_t len, struct mvm_session_state *st);

/* Writes dir/state.json atomically. */
int mvm_sessiondir_write_state(const char *dir, json_t *state, struct mvm_error **err);

/* The start time (clock ticks since boot, /proc/PID/stat field 22) of a
 * live process, 0 when there is none.  With the pid it names a process
 * uniquely: pids are reused, start times with them are not. */
uint64_t mvm_proc_starttime(pid_t pid);

/* Removes every session directory under run_dir whose recorded mvm
 * process (pid + start time) no longer exists.  Directories without a
 * state file are removed once older than a minute (a session being
 * created writes its state at once).  Returns the number removed. */
int mvm_sessiondir_cleanup(const char *run_dir, struct mvm_error **err);

#endif
