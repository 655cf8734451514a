/* Per-session scratch disks: dir/<id>.img, unlinked as soon as it is
 * formatted; see disk.h. */
#include "disk-int.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "util.h"

#define SCRATCH_SUFFIX ".img"

int mvm_scratch_create(const char *dir, const char *id, uint64_t size_mib, struct mvm_disk *d,
                       struct mvm_error **err)
{
    *d = (struct mvm_disk){.fd = -1};
    if (!mvm_disk_name_ok(id))
        return mvm_error_set(err, 0, "bad scratch disk id (a bug in mvm)");
    const char *mkfs = NULL;
    if (mvm_disk_mkfs_find(&mkfs, err) < 0)
        return mvm_error_wrap(err, "creating the scratch disk");
    cleanup_close int dirfd = mvm_disk_dir_open(AT_FDCWD, dir, dir, 0700, true, err);
    if (dirfd < 0)
        return mvm_error_wrap(err, "creating the scratch disk");
    cleanup_free char *file = xasprintf("%s" SCRATCH_SUFFIX, id);
    cleanup_free char *path = xasprintf("%s/%s", dir, file);
    /* No journal: nothing on it outlives the session, so there is no
     * consistency to keep across a crash.  The guest lays out the root
     * directory: it stays root's. */
    struct mvm_disk_mkfs o = {.journal = false};
    if (mvm_disk_image_create(dirfd, file, path, size_mib, mkfs, &o, d, err) < 0)
        return mvm_error_wrap(err, "creating the scratch disk");
    if (unlinkat(dirfd, file, 0) < 0) {
        int e = errno;
        mvm_disk_close(d);
        return mvm_error_set(err, e, "unlinking the scratch disk %s", path);
    }
    return 0;
}

int mvm_scratch_cleanup(const char *dir, struct mvm_error **err)
{
    return mvm_disk_sweep(dir, SCRATCH_SUFFIX, err);
}
