/* Session directories; see sessiondir.h. */
#include "sessiondir.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "json-cleanup.h"
#include "util.h"

int mvm_sessiondir_create(const char *run_dir, char id[MVM_ID_LEN + 1], char **dir,
                          struct mvm_error **err)
{
    if (mkdir(run_dir, 0700) < 0 && errno != EEXIST)
        return mvm_error_set(err, errno, "creating %s", run_dir);
    struct stat st;
    if (lstat(run_dir, &st) < 0 || !S_ISDIR(st.st_mode) || st.st_uid != 0)
        return mvm_error_set(err, 0, "%s is not a directory owned by root; remove it", run_dir);
    /* Under the lock mvm_sessiondir_if_last takes: a session that ends
     * either sees this one's directory or is done before it exists. */
    cleanup_close int lock = open(run_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (lock < 0 || flock(lock, LOCK_EX) < 0)
        return mvm_error_set(err, errno, "locking %s", run_dir);
    for (int attempt = 0; attempt < 8; attempt++) {
        unsigned char rnd[MVM_ID_LEN / 2];
        if (getrandom(rnd, sizeof rnd, 0) != (ssize_t)sizeof rnd)
            return mvm_error_set(err, errno, "getrandom");
        for (size_t i = 0; i < sizeof rnd; i++)
            snprintf(id + 2 * i, 3, "%02x", rnd[i]);
        char *path = xasprintf("%s/%s", run_dir, id);
        if (mkdir(path, 0700) == 0) {
            *dir = path;
            return 0;
        }
        int e = errno;
        free(path);
        if (e != EEXIST)
            return mvm_error_set(err, e, "creating a session directory in %s", run_dir);
    }
    return mvm_error_set(err, EEXIST, "creating a session directory in %s", run_dir);
}

int mvm_sessiondir_write_state(const char *dir, json_t *state, struct mvm_error **err)
{
    cleanup_free char *text = json_dumps(state, JSON_COMPACT);
    cleanup_free char *path = xasprintf("%s/state.json", dir);
    if (text == NULL || write_file_atomic(path, text, strlen(text), 0600) < 0)
        return mvm_error_set(err, errno, "writing %s", path);
    return 0;
}

uint64_t mvm_proc_starttime(pid_t pid)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    cleanup_free char *stat = read_file(path, 4096, NULL);
    if (stat == NULL)
        return 0;
    /* comm (field 2) may contain spaces and parentheses: skip past the
     * last ')'; starttime is then the 20th field. */
    char *p = strrchr(stat, ')');
    if (p == NULL)
        return 0;
    p++;
    for (int field = 3; field < 22 && p; field++) {
        p = strchr(p + 1, ' ');
    }
    unsigned long long t;
    return p && sscanf(p, " %llu", &t) == 1 ? t : 0;
}

/* Reads dir/state.json: -1 when there is none (or it is unreadable);
 * else whether its mvm (pid + start time) still runs, and the jail uid it
 * claimed (0 if none). */
int mvm_sessiondir_parse_state(const char *text, size_t len, struct mvm_session_state *st)
{
    *st = (struct mvm_session_state){0};
    cleanup_json json_t *state = json_loadb(text, len, 0, NULL);
    if (!json_is_object(state))
        return -1;
    json_int_t pid = json_integer_value(json_object_get(state, "pid"));
    json_int_t start = json_integer_value(json_object_get(state, "starttime"));
    json_int_t uid = json_integer_value(json_object_get(state, "jail_uid"));
    if (pid <= 0 || pid > INT32_MAX || start <= 0)
        return -1;
    st->pid = (pid_t)pid;
    st->starttime = (uint64_t)start;
    /* Only an id of the reserved range is one to free or keep. */
    if (uid >= MVM_JAIL_UID_BASE && uid < (json_int_t)MVM_JAIL_UID_BASE + MVM_JAIL_UID_COUNT)
        st->jail_uid = (uid_t)uid;
    return 0;
}

static int read_state(const char *dir, uid_t *jail_uid)
{
    cleanup_free char *path = xasprintf("%s/state.json", dir);
    size_t len = 0;
    cleanup_free char *text = read_file(path, 64 * 1024, &len);
    struct mvm_session_state st;
    *jail_uid = 0;
    if (text == NULL || mvm_sessiondir_parse_state(text, len, &st) < 0)
        return -1;
    *jail_uid = st.jail_uid;
    return mvm_proc_starttime(st.pid) == st.starttime;
}

static bool session_alive(const char *dir)
{
    uid_t unused;
    int alive = read_state(dir, &unused);
    if (alive >= 0)
        return alive;
    /* No state yet: a session being created, unless it is old. */
    struct stat st;
    return stat(dir, &st) == 0 && time(NULL) - st.st_mtime < 60;
}

int mvm_sessiondir_cleanup(const char *run_dir, struct mvm_error **err)
{
    cleanup_dir DIR *d = opendir(run_dir);
    if (d == NULL)
        return errno == ENOENT ? 0 : mvm_error_set(err, errno, "reading %s", run_dir);
    int removed = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.')
            continue;
        cleanup_free char *dir = xasprintf("%s/%s", run_dir, de->d_name);
        struct stat st;
        if (lstat(dir, &st) < 0 || !S_ISDIR(st.st_mode) || session_alive(dir))
            continue;
        if (remove_tree(dir) < 0)
            return mvm_error_set(err, errno, "removing %s", dir);
        removed++;
    }
    return removed;
}

/* The jail uid a live session holds, or 0. */
static uid_t live_jail_uid(const char *dir)
{
    uid_t uid = 0;
    return read_state(dir, &uid) == 1 ? uid : 0;
}

static void mark_taken(const char *run_dir, const char *self, bool *taken)
{
    DIR *d = opendir(run_dir);
    if (d == NULL)
        return;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.')
            continue;
        cleanup_free char *dir = xasprintf("%s/%s", run_dir, de->d_name);
        if (strcmp(dir, self) == 0)
            continue;
        uid_t u = live_jail_uid(dir);
        if (u >= MVM_JAIL_UID_BASE && u < MVM_JAIL_UID_BASE + MVM_JAIL_UID_COUNT)
            taken[u - MVM_JAIL_UID_BASE] = true;
    }
    closedir(d);
}

int mvm_sessiondir_claim_uid(const char *run_dir, const char *dir, json_t *state, uid_t *uid,
                             struct mvm_error **err)
{
    /* The directory itself is the lock: no lock file to leave behind. */
    cleanup_close int fd = open(run_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0 || flock(fd, LOCK_EX) < 0)
        return mvm_error_set(err, errno, "locking %s", run_dir);
    cleanup_free bool *taken = xcalloc(MVM_JAIL_UID_COUNT, sizeof *taken);
    mark_taken(run_dir, dir, taken);
    for (uid_t i = 0; i < MVM_JAIL_UID_COUNT; i++) {
        uid_t u = MVM_JAIL_UID_BASE + i;
        if (taken[i] || getpwuid(u) != NULL || getgrgid(u) != NULL)
            continue;
        json_object_set_new(state, "jail_uid", json_integer(u));
        if (mvm_sessiondir_write_state(dir, state, err) < 0)
            return -1;
        *uid = u;
        return 0; /* the lock goes with fd */
    }
    return mvm_error_set(err, 0, "all %u uids reserved for mvm's jails are in use",
                         MVM_JAIL_UID_COUNT);
}

int mvm_sessiondir_if_last(const char *run_dir, int (*fn)(void *arg, struct mvm_error **err),
                           void *arg, struct mvm_error **err)
{
    cleanup_close int lock = open(run_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (lock < 0 && errno != ENOENT) /* no run_dir: no session either */
        return mvm_error_set(err, errno, "opening %s", run_dir);
    if (lock >= 0 && flock(lock, LOCK_EX) < 0)
        return mvm_error_set(err, errno, "locking %s", run_dir);
    cleanup_dir DIR *d = lock >= 0 ? opendir(run_dir) : NULL;
    struct dirent *de;
    while (d && (de = readdir(d)) != NULL)
        if (de->d_name[0] != '.' && de->d_type == DT_DIR)
            return 0;
    return fn(arg, err) < 0 ? -1 : 1; /* the lock goes with its descriptor */
}
