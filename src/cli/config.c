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

/* Reads path as uid/gid, in a child: the system file as mvm itself, the
 * user's with the user's rights only, so a symlink to a root-only file
 * such as /etc/shadow cannot make mvm read it and echo it back in an
 * error. */
static int apply_file(const char *path, uid_t uid, gid_t gid, struct mvm_run_opts *o,
                      struct mvm_error **err)
{
    struct stat st;
    cleanup_free char *text = read_regular_as(uid, gid, path, CONFIG_MAX, true, &st, NULL);
    if (text == NULL && (errno == ENOENT || errno == ENOTDIR))
        return 0;
    if (text == NULL && errno == EINVAL)
        return mvm_error_set(err, 0, "%s is not a regular file of at most 64 KiB", path);
    if (text == NULL)
        return mvm_error_set(err, errno, "reading %s", path);
    return mvm_cli_apply_config(text, path, o, err);
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
