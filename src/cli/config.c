/* Reading the config files: /etc/mvm/config, then the invoking user's
 * ~/.config/mvm/config.  The user's file is opened with the user's file
 * system identity, so a symlink to a root-only file (/etc/shadow) cannot
 * make mvm read it and echo it back in an error. */
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "util.h"

#define CONFIG_MAX (64 * 1024)

struct read_req {
    const char *path;
};

/* In a child that is the user: copy the file to out_fd, or say why not. */
static int read_in_child(void *arg, int out_fd)
{
    const struct read_req *r = arg;
    int fd = open(r->path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY);
    if (fd < 0)
        return errno;
    struct stat st;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size > CONFIG_MAX)
        return EINVAL;
    char buf[4096];
    ssize_t n;
    while ((n = read(fd, buf, sizeof buf)) > 0)
        if (write_all(out_fd, buf, (size_t)n) < 0)
            return errno;
    return n < 0 ? errno : 0;
}

/* Reads path as uid/gid, in a child: the system file as mvm itself, the
 * user's with the user's rights only, so a symlink to a root-only file
 * such as /etc/shadow cannot make mvm read it and echo it back in an
 * error. */
static int apply_file(const char *path, uid_t uid, gid_t gid, struct mvm_run_opts *o,
                      struct mvm_error **err)
{
    struct buf text = {0};
    struct read_req r = {path};
    int rc = run_as(uid, gid, read_in_child, &r, &text, CONFIG_MAX);
    if (rc == ENOENT || rc == ENOTDIR) {
        buf_free(&text);
        return 0;
    }
    if (rc == EINVAL) {
        buf_free(&text);
        return mvm_error_set(err, 0, "%s is not a regular file of at most 64 KiB", path);
    }
    if (rc != 0) {
        buf_free(&text);
        return mvm_error_set(err, rc > 0 ? rc : errno, "reading %s", path);
    }
    buf_append(&text, "", 1);
    rc = mvm_cli_apply_config(text.data, path, o, err);
    buf_free(&text);
    return rc;
}

int mvm_config_load_defaults(struct mvm_run_opts *o, struct mvm_error **err)
{
    /* For tests: another system file, honoured only for root itself (not
     * under sudo, which lets a user pick the environment it keeps). */
    const char *sys = getenv("MVM_SYSTEM_CONFIG");
    bool direct_root = getuid() == 0 && getenv("SUDO_UID") == NULL;
    if (apply_file(sys && direct_root ? sys : "/etc/mvm/config", geteuid(), getegid(), o, err) < 0)
        return -1;
    uid_t uid = getuid();
    gid_t gid = getgid();
    const char *su = getenv("SUDO_UID"), *sg = getenv("SUDO_GID");
    if (uid == 0 && su && sg) {
        uid = (uid_t)strtoul(su, NULL, 10);
        gid = (gid_t)strtoul(sg, NULL, 10);
    }
    struct passwd *pw = getpwuid(uid);
    if (pw == NULL || pw->pw_dir == NULL || pw->pw_dir[0] != '/')
        return 0;
    cleanup_free char *path = xasprintf("%s/.config/mvm/config", pw->pw_dir);
    return apply_file(path, uid, gid, o, err);
}
