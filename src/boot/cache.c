/* Cache housekeeping for extracted kernels and initramfs bases. */
#include "cache.h"

#include <dirent.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util.h"

void mvm_cache_touch(const char *path)
{
    (void)utimensat(AT_FDCWD, path, NULL, 0);
}

bool mvm_cache_stale(time_t mtime, time_t now, time_t max_age)
{
    return mtime < now && now - mtime > max_age;
}

int mvm_cache_sweep(const char *dir, const char *prefix, time_t max_age, const char *keep)
{
    cleanup_dir DIR *d = opendir(dir);
    if (d == NULL)
        return 0;
    time_t now = time(NULL);
    int removed = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (!str_has_prefix(de->d_name, prefix))
            continue;
        cleanup_free char *path = xasprintf("%s/%s", dir, de->d_name);
        struct stat st;
        if ((keep != NULL && strcmp(path, keep) == 0) ||
            fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISREG(st.st_mode) ||
            !mvm_cache_stale(st.st_mtime, now, max_age))
            continue;
        if (unlinkat(dirfd(d), de->d_name, 0) == 0)
            removed++;
    }
    return removed;
}
