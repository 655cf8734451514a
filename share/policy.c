/* Which directory the automatic working-directory share may expose. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "share.h"
#include "util.h"

/* Directories that are never a project. */
static const char *const system_dirs[] = {
    "/",     "/bin", "/boot", "/dev", "/etc", "/home", "/lib", "/lib64", "/opt", "/proc",
    "/root", "/run", "/sbin", "/srv", "/sys", "/tmp",  "/usr", "/var",   NULL,
};

/* Trees whose contents the host acts on or that hold secrets. */
static const char *const system_trees[] = {"/etc", "/boot", "/proc", "/sys", "/dev", NULL};

/* Markers of a directory that holds credentials. */
static const char *const secret_entries[] = {".ssh",  ".gnupg",          ".aws",
                                             ".kube", ".password-store", NULL};

static bool is_under(const char *path, const char *dir)
{
    size_t n = strlen(dir);
    return strncmp(path, dir, n) == 0 && (path[n] == '/' || path[n] == '\0');
}

/* The nearest directory at or above dir holding a .git; *git_uid gets the
 * owner of that .git. */
static char *git_top(const char *dir, uid_t *git_uid)
{
    cleanup_free char *p = xstrdup(dir);
    for (;;) {
        cleanup_free char *dotgit = xasprintf("%s/.git", strcmp(p, "/") == 0 ? "" : p);
        struct stat st;
        if (lstat(dotgit, &st) == 0) {
            *git_uid = st.st_uid;
            return steal_pointer(&p);
        }
        char *slash = strrchr(p, '/');
        if (slash == NULL || slash == p)
            return NULL; /* never treat "/" as a repository */
        *slash = '\0';
    }
}

/* Why dir may not be shared read-write (NULL: it may); *owned holds a
 * reason that was formatted (free it). */
static const char *refusal(const char *dir, char *const *homes, size_t nhomes, char **owned)
{
    *owned = NULL;
    for (size_t i = 0; system_dirs[i]; i++)
        if (strcmp(dir, system_dirs[i]) == 0)
            return "it is a system directory";
    for (size_t i = 0; system_trees[i]; i++)
        if (is_under(dir, system_trees[i]))
            return "it is inside a system directory";
    for (size_t i = 0; i < nhomes; i++) {
        if (strcmp(dir, homes[i]) == 0)
            return "it is a home directory";
        if (is_under(homes[i], dir))
            return "it contains a home directory";
    }
    for (size_t i = 0; secret_entries[i]; i++) {
        cleanup_free char *p = xasprintf("%s/%s", dir, secret_entries[i]);
        struct stat st;
        if (lstat(p, &st) == 0)
            return *owned = xasprintf("it contains %s", secret_entries[i]);
    }
    return NULL;
}

static int check_dir(const char *dir, char *const *homes, size_t nhomes, struct mvm_error **err)
{
    cleanup_free char *owned = NULL;
    const char *why = refusal(dir, homes, nhomes, &owned);
    if (why == NULL)
        return 0;
    return mvm_error_set(err, 0,
                         "refusing to share %s with the guest: %s; run mvm from a project "
                         "directory, or pass --no-cwd",
                         dir, why);
}

int mvm_share_check_rw(const char *dir, char *const *homes, size_t nhomes, struct mvm_error **err)
{
    cleanup_free char *owned = NULL;
    const char *why = refusal(dir, homes, nhomes, &owned);
    if (why == NULL)
        return 0;
    return mvm_error_set(err, 0,
                         "--share %s: refusing to share it read-write: %s; share it read-only "
                         "(:ro), a directory below it, or pass --force-share",
                         dir, why);
}

int mvm_share_auto_dir(const char *cwd, uid_t uid, char *const *homes, size_t nhomes, char **dir,
                       char **note, struct mvm_error **err)
{
    *note = NULL;
    /* A repository whose top may not be shared (a dotfiles repository in
     * the home directory) falls back to the working directory itself. */
    uid_t git_uid = 0;
    cleanup_free char *top = git_top(cwd, &git_uid);
    /* Anyone may plant a .git in a shared directory above the project
     * (/var/tmp/.git): only the user's own repository widens the share. */
    if (top && git_uid != uid) {
        *note = xasprintf("not sharing the repository at %s: its .git belongs to uid %u, not to "
                          "uid %u; sharing %s alone",
                          top, (unsigned)git_uid, (unsigned)uid, cwd);
        free(steal_pointer(&top));
    }
    if (top && check_dir(top, homes, nhomes, NULL) == 0) {
        *dir = steal_pointer(&top);
        return 0;
    }
    if (check_dir(cwd, homes, nhomes, err) < 0)
        return -1;
    *dir = xstrdup(cwd);
    return 0;
}

struct access_req {
    const char *dir;
    int mode;
};

static int check_in_child(void *arg, int out_fd)
{
    const struct access_req *r = arg;
    return faccessat(AT_FDCWD, r->dir, r->mode, AT_EACCESS) == 0 ? 0 : errno;
}

int mvm_share_check_access(const char *dir, bool ro, uid_t uid, gid_t gid, struct mvm_error **err)
{
    /* virtiofsd serves the share with the user's identity and no
     * supplementary groups: check with exactly that, in a child. */
    struct access_req r = {dir, R_OK | X_OK | (ro ? 0 : W_OK)};
    int rc = run_as(uid, gid, check_in_child, &r, NULL, 0);
    if (rc == 0)
        return 0;
    return mvm_error_set(err, rc > 0 ? rc : errno,
                         "cannot share %s %s: uid %u cannot %s it (check the permissions of it "
                         "and of its parent directories)",
                         dir, ro ? "read-only" : "read-write", (unsigned)uid, ro ? "read" : "use");
}
