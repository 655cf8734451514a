/* sessiondir: /run/mvm/<id>/ (0700) -- the session's state file, console
 * log and initramfs -- and the removal of directories whose session died
 * (kill -9) after checking that the recorded process is really gone. */
#ifndef MVM_SESSIONDIR_H
#define MVM_SESSIONDIR_H

#include <jansson.h>
#include <stdint.h>
#include <sys/types.h>

#include "error.h"

#define MVM_RUN_DIR   "/run/mvm"
#define MVM_CACHE_DIR "/var/cache/mvm"
#define MVM_ID_LEN    12

/* Creates run_dir (0700) if needed and a fresh run_dir/<id> (0700). */
int mvm_sessiondir_create(const char *run_dir, char id[MVM_ID_LEN + 1], char **dir,
                          struct mvm_error **err);

/* The uids (and gids of the same number) reserved for jailed helpers:
 * one per live session, so an escaped QEMU cannot signal or inspect
 * another session's.  Outside the ranges systemd hands out (system,
 * regular, dynamic and container users). */
#define MVM_JAIL_UID_BASE  1879113728u /* 0x70010000 */
#define MVM_JAIL_UID_COUNT 4096u
/* And a block of ids per session for virtiofsd (share.h), found from the
 * session's jail uid: base + (jail uid - MVM_JAIL_UID_BASE) * block. */
#define MVM_HELPER_ID_BASE 1880096768u /* 0x70100000 */

/* Picks the lowest reserved uid that no live session under run_dir holds
 * and no passwd/group entry uses, records it as "jail_uid" in state and
 * writes dir/state.json -- under a lock, so concurrent sessions differ. */
int mvm_sessiondir_claim_uid(const char *run_dir, const char *dir, json_t *state, uid_t *uid,
                             struct mvm_error **err);

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
