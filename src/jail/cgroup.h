/* cgroup: a per-session control group that caps the memory and the
 * number of tasks of the jailed QEMU.  cgroup v2 where the host's
 * unified hierarchy has the memory and pids controllers; otherwise the
 * v1 memory and pids hierarchies (the layout of the development
 * machines).  Removed at teardown. */
#ifndef MVM_CGROUP_H
#define MVM_CGROUP_H

#include <stdint.h>

#include "error.h"

struct mvm_cgroup {
    int version;    /* 2, 1, or 0 when the host offers neither */
    char *dirs[2];  /* v2: one directory; v1: memory and pids */
    char *procs[3]; /* their cgroup.procs files, NULL-terminated */
};

/* Creates <root>/<name> (v2) or <root>/{memory,pids}/<name> (v1) with
 * memory.max / memory.limit_in_bytes = memory_bytes and pids.max =
 * pids_max.  root is /sys/fs/cgroup except in tests.  When the host has
 * no usable controllers, cg->version is 0 and this succeeds. */
int mvm_cgroup_create(const char *root, const char *name, uint64_t memory_bytes, unsigned pids_max,
                      struct mvm_cgroup *cg, struct mvm_error **err);

/* Which layout mvm_cgroup_create() would use under root: 2 (the unified
 * hierarchy has memory and pids), 1 (the v1 memory and pids
 * hierarchies) or 0 (neither: no caps). */
int mvm_cgroup_version(const char *root);

/* Removes the directories (the processes must have exited); idempotent. */
void mvm_cgroup_remove(struct mvm_cgroup *cg);

/* Removes the cgroups of sessions that no longer have a directory in
 * run_dir (left by kill -9 of mvm); a cgroup still in use stays
 * (rmdir refuses).  Returns how many were removed. */
int mvm_cgroup_sweep(const char *root, const char *run_dir);

#endif
