/* The invoking user and the machine's home directories. */
#include "user.h"

#include <errno.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util.h"

static int parse_id(const char *s, unsigned *out)
{
    char *end;
    errno = 0;
    unsigned long v = strtoul(s, &end, 10);
    if (errno || *end || end == s || v > 0xfffffffeUL)
        return -1;
    *out = (unsigned)v;
    return 0;
}

int mvm_user_invoking(struct mvm_user *u, struct mvm_error **err)
{
    memset(u, 0, sizeof *u);
    u->uid = getuid();
    u->gid = getgid();
    const char *su = getenv("SUDO_UID"), *sg = getenv("SUDO_GID");
    if (u->uid == 0 && su && sg) {
        unsigned uid, gid;
        if (parse_id(su, &uid) < 0 || parse_id(sg, &gid) < 0)
            return mvm_error_set(err, 0, "bad SUDO_UID/SUDO_GID in the environment");
        u->uid = uid;
        u->gid = gid;
    }
    struct passwd *pw = getpwuid(u->uid);
    if (pw == NULL)
        return mvm_error_set(err, 0, "uid %u has no passwd entry; mvm needs a name and home",
                             (unsigned)u->uid);
    u->name = xstrdup(pw->pw_name);
    u->home = xstrdup(pw->pw_dir && pw->pw_dir[0] == '/' ? pw->pw_dir : "/");
    /* A shell the guest does not have (it sees the host's /usr) falls
     * back to /bin/sh. */
    u->shell = xstrdup(pw->pw_shell && access(pw->pw_shell, X_OK) == 0 ? pw->pw_shell : "/bin/sh");
    struct group *gr = getgrgid(u->gid);
    u->group = xstrdup(gr ? gr->gr_name : u->name);
    return 0;
}

void mvm_user_clear(struct mvm_user *u)
{
    free(u->name);
    free(u->group);
    free(u->home);
    free(u->shell);
    memset(u, 0, sizeof *u);
}

static void push(char ***v, size_t *n, const char *s)
{
    for (size_t i = 0; i < *n; i++)
        if (strcmp((*v)[i], s) == 0)
            return;
    *v = xrealloc(*v, (*n + 2) * sizeof **v);
    (*v)[(*n)++] = xstrdup(s);
    (*v)[*n] = NULL;
}

char **mvm_user_homes(const char *extra, size_t *n)
{
    char **v = xcalloc(1, sizeof *v);
    *n = 0;
    setpwent();
    struct passwd *pw;
    while ((pw = getpwent()) != NULL) {
        bool real = pw->pw_uid == 0 || (pw->pw_uid >= 1000 && pw->pw_uid < 65534);
        struct stat st;
        if (real && pw->pw_dir && pw->pw_dir[0] == '/' && strcmp(pw->pw_dir, "/") != 0 &&
            stat(pw->pw_dir, &st) == 0 && S_ISDIR(st.st_mode)) {
            char resolved[PATH_MAX];
            push(&v, n, realpath(pw->pw_dir, resolved) ? resolved : pw->pw_dir);
        }
    }
    endpwent();
    if (extra && strcmp(extra, "/") != 0)
        push(&v, n, extra);
    return v;
}
