/* Reading the config files: /etc/mvm/config, then the invoking user's
 * ~/.config/mvm/config.  The user's file is opened with the user's file
 * system identity, so a symlink to a root-only file (/etc/shadow) cannot
 * make mvm read it and echo it back in an error. */
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <sys/fsuid.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "util.h"

#define CONFIG_MAX (64 * 1024)

static int open_as(const char *path, uid_t uid, gid_t gid)
{
    setfsgid(gid);
    setfsuid(uid);
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY);
    int saved = errno;
    setfsuid(geteuid());
    setfsgid(getegid());
    errno = saved;
    return fd;
}

static int apply_file(const char *path, uid_t uid, gid_t gid, struct mvm_run_opts *o,
                      struct mvm_error **err)
{
    cleanup_close int fd = open_as(path, uid, gid);
    if (fd < 0)
        return errno == ENOENT || errno == ENOTDIR ? 0
                                                   : mvm_error_set(err, errno, "reading %s", path);
    struct stat st;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size > CONFIG_MAX)
        return mvm_error_set(err, 0, "%s is not a regular file of at most 64 KiB", path);
    cleanup_free char *text = xmalloc((size_t)st.st_size + 1);
    ssize_t n = read_full(fd, text, (size_t)st.st_size);
    if (n < 0)
        return mvm_error_set(err, errno, "reading %s", path);
    text[n] = '\0';
    return mvm_cli_apply_config(text, path, o, err);
}

int mvm_config_load_defaults(struct mvm_run_opts *o, struct mvm_error **err)
{
    const char *sys = getenv("MVM_SYSTEM_CONFIG"); /* for tests: another system file */
    if (apply_file(sys && getuid() == 0 ? sys : "/etc/mvm/config", 0, 0, o, err) < 0)
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
