/* Per-session cgroups; see cgroup.h. */
#include "cgroup.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util.h"

static int write_str(const char *dir, const char *file, const char *value)
{
    cleanup_free char *path = xasprintf("%s/%s", dir, file);
    return write_existing_file(path, value);
}

static bool has_controllers(const char *root)
{
    cleanup_free char *path = xasprintf("%s/cgroup.controllers", root);
    cleanup_free char *list = read_file(path, 4096, NULL);
    if (list == NULL)
        return false;
    /* word match: "memory" and "pids" among the names */
    bool mem = false, pids = false;
    for (char *tok = strtok(list, " \n"); tok; tok = strtok(NULL, " \n")) {
        mem |= strcmp(tok, "memory") == 0;
        pids |= strcmp(tok, "pids") == 0;
    }
    return mem && pids;
}

/* mkdir -p of root/name, enabling memory and pids for the children of
 * root and of every directory on the way (v2 lets a cgroup hand
 * controllers down only while it has no processes of its own). */
static int make_v2(const char *root, const char *name, char **dir, struct mvm_error **err)
{
    cleanup_free char *path = xstrdup(root);
    cleanup_free char *rest = xstrdup(name);
    char *save = NULL;
    for (char *comp = strtok_r(rest, "/", &save); comp; comp = strtok_r(NULL, "/", &save)) {
        if (write_str(path, "cgroup.subtree_control", "+memory +pids") < 0)
            return mvm_error_set(err, errno, "enabling memory and pids in %s", path);
        char *next = xasprintf("%s/%s", path, comp);
        free(path);
        path = next;
        if (mkdir(path, 0755) < 0 && errno != EEXIST)
            return mvm_error_set(err, errno, "creating cgroup %s", path);
    }
    *dir = steal_pointer(&path);
    return 0;
}

static int create_v2(const char *root, const char *name, uint64_t mem, unsigned pids,
                     struct mvm_cgroup *cg, struct mvm_error **err)
{
    if (make_v2(root, name, &cg->dirs[0], err) < 0)
        return -1;
    cg->version = 2;
    char v[32];
    snprintf(v, sizeof v, "%llu", (unsigned long long)mem);
    if (write_str(cg->dirs[0], "memory.max", v) < 0)
        return mvm_error_set(err, errno, "setting memory.max in %s", cg->dirs[0]);
    /* Without this the kernel swaps QEMU out instead of enforcing. */
    write_str(cg->dirs[0], "memory.swap.max", "0");
    snprintf(v, sizeof v, "%u", pids);
    if (write_str(cg->dirs[0], "pids.max", v) < 0)
        return mvm_error_set(err, errno, "setting pids.max in %s", cg->dirs[0]);
    cg->procs[0] = xasprintf("%s/cgroup.procs", cg->dirs[0]);
    return 0;
}

static int create_v1(const char *root, const char *name, uint64_t mem, unsigned pids,
                     struct mvm_cgroup *cg, struct mvm_error **err)
{
    static const char *const ctl[] = {"memory", "pids"};
    cg->version = 1;
    for (int i = 0; i < 2; i++) {
        cg->dirs[i] = xasprintf("%s/%s/%s", root, ctl[i], name);
        if (mkdir_p(cg->dirs[i], 0755) < 0)
            return mvm_error_set(err, errno, "creating cgroup %s", cg->dirs[i]);
        cg->procs[i] = xasprintf("%s/cgroup.procs", cg->dirs[i]);
    }
    char v[32];
    snprintf(v, sizeof v, "%llu", (unsigned long long)mem);
    if (write_str(cg->dirs[0], "memory.limit_in_bytes", v) < 0)
        return mvm_error_set(err, errno, "setting memory.limit_in_bytes in %s", cg->dirs[0]);
    /* With swap accounting, memory+swap gets the same cap (no swapping). */
    write_str(cg->dirs[0], "memory.memsw.limit_in_bytes", v);
    snprintf(v, sizeof v, "%u", pids);
    if (write_str(cg->dirs[1], "pids.max", v) < 0)
        return mvm_error_set(err, errno, "setting pids.max in %s", cg->dirs[1]);
    return 0;
}

static bool is_v1_hierarchy(const char *root, const char *ctl)
{
    cleanup_free char *path = xasprintf("%s/%s/cgroup.procs", root, ctl);
    return access(path, F_OK) == 0;
}

int mvm_cgroup_version(const char *root)
{
    if (has_controllers(root))
        return 2;
    return is_v1_hierarchy(root, "memory") && is_v1_hierarchy(root, "pids") ? 1 : 0;
}

static int create_once(const char *root, const char *name, uint64_t memory_bytes, unsigned pids_max,
                       struct mvm_cgroup *cg, struct mvm_error **err)
{
    memset(cg, 0, sizeof *cg);
    int rc = 0, version = mvm_cgroup_version(root);
    if (version == 2)
        rc = create_v2(root, name, memory_bytes, pids_max, cg, err);
    else if (version == 1)
        rc = create_v1(root, name, memory_bytes, pids_max, cg, err);
    if (rc < 0)
        mvm_cgroup_remove(cg);
    return rc;
}

int mvm_cgroup_create(const char *root, const char *name, uint64_t memory_bytes, unsigned pids_max,
                      struct mvm_cgroup *cg, struct mvm_error **err)
{
    /* A session ending meanwhile may remove the shared parent between our
     * mkdir of it and of our own directory (ENOENT): try again. */
    for (int attempt = 0;; attempt++) {
        struct mvm_error *e = NULL;
        if (create_once(root, name, memory_bytes, pids_max, cg, &e) == 0)
            return 0;
        if (e->errnum != ENOENT || attempt == 4)
            return mvm_error_propagate(err, e);
        mvm_error_free(e);
    }
}

void mvm_cgroup_remove(struct mvm_cgroup *cg)
{
    for (int i = 1; i >= 0; i--) {
        if (cg->dirs[i] == NULL)
            continue;
        /* The last task may still be leaving: retry briefly on EBUSY. */
        for (int tries = 0; tries < 100 && rmdir(cg->dirs[i]) < 0 && errno == EBUSY; tries++)
            usleep(10000);
        /* The shared parent (".../mvm") goes with the last session. */
        char *slash = strrchr(cg->dirs[i], '/');
        if (slash) {
            *slash = '\0';
            rmdir(cg->dirs[i]);
        }
        free(cg->dirs[i]);
        cg->dirs[i] = NULL;
    }
    for (int i = 0; i < 3; i++) {
        free(cg->procs[i]);
        cg->procs[i] = NULL;
    }
    cg->version = 0;
}

int mvm_cgroup_sweep(const char *root, const char *run_dir)
{
    static const char *const parents[] = {"mvm", "memory/mvm", "pids/mvm"};
    int removed = 0;
    for (size_t i = 0; i < ARRAY_SIZE(parents); i++) {
        cleanup_free char *parent = xasprintf("%s/%s", root, parents[i]);
        cleanup_dir DIR *d = opendir(parent);
        if (d == NULL)
            continue;
        struct dirent *de;
        while ((de = readdir(d)) != NULL) {
            if (de->d_type != DT_DIR || de->d_name[0] == '.')
                continue;
            cleanup_free char *session = xasprintf("%s/%s", run_dir, de->d_name);
            cleanup_free char *cg = xasprintf("%s/%s", parent, de->d_name);
            if (access(session, F_OK) < 0 && rmdir(cg) == 0)
                removed++;
        }
        rmdir(parent); /* only when empty */
    }
    return removed;
}
