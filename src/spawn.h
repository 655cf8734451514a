/* spawn: starts mvm's helpers (QEMU, virtiofsd) as children that cannot
 * outlive mvm and see only what they are given: own process group, a
 * fixed environment, only the listed fds, PR_SET_PDEATHSIG(SIGKILL) set
 * after any uid change (a uid change clears it), optionally a user
 * namespace whose maps mvm writes from outside.  Always fork from the main
 * thread: the death signal follows the forking thread. */
#ifndef MVM_SPAWN_H
#define MVM_SPAWN_H

#include <stdbool.h>
#include <sys/types.h>

#include "error.h"

struct mvm_spawn {
    const char *name; /* for errors: "QEMU", "virtiofsd for /usr" */
    const char *path;
    char *const *argv;
    char *const *envp;
    int stdin_fd, stdout_fd, stderr_fd; /* -1: /dev/null */
    const int *keep;                    /* further fds kept at their numbers */
    int nkeep;
    unsigned long nofile; /* RLIMIT_NOFILE for the child; 0: inherit */

    /* User namespace: when uid_map is set the child unshares one, waits
     * while the parent writes the maps, then switches to ns_uid/ns_gid. */
    const char *uid_map, *gid_map;
    uid_t ns_uid;
    gid_t ns_gid;
    bool ambient_caps; /* keep every capability (of the namespace) across exec */

    /* Runs in the child after the fds are arranged, before the death
     * signal and exec.  Returns -1 with errno set and *what naming it. */
    int (*setup)(void *arg, const char **what);
    void *setup_arg;
};

struct mvm_child {
    const char *name;
    pid_t pid; /* 0 when none */
    int pidfd; /* -1 when none */
    bool reaped;
    int status; /* wait status once reaped */
};

#define MVM_CHILD_INIT                                                    \
    {                                                                     \
        .name = NULL, .pid = 0, .pidfd = -1, .reaped = false, .status = 0 \
    }

int mvm_spawn(const struct mvm_spawn *s, struct mvm_child *c, struct mvm_error **err);

/* Non-blocking reap: 1 if it has exited (status saved), 0 if running. */
int mvm_child_poll(struct mvm_child *c);
/* Waits up to timeout_ms for exit; 1 if exited. */
int mvm_child_wait(struct mvm_child *c, int timeout_ms);
/* SIGKILL and reap; idempotent. */
void mvm_child_kill(struct mvm_child *c);

#endif
