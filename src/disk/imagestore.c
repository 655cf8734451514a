/* The image store of mvm image: finding an image by name for --image,
 * listing, inspecting and removing images, sweeping what an interrupted
 * build left, and the host's Debian mirror (see disk.h). */
#include "disk-int.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "json-cleanup.h"
#include "util.h"

#define QCOW2_SUFFIX ".qcow2"
#define BUILD_PREFIX ".build-"

static char *read_sources(const char *path)
{
    return read_file(path, 1 << 20, NULL);
}

static int by_name(const struct dirent **a, const struct dirent **b)
{
    return strcmp((*a)->d_name, (*b)->d_name);
}

char *mvm_image_host_mirror(void)
{
    cleanup_free char *main_list = read_sources("/etc/apt/sources.list");
    char *uri = main_list ? mvm_image_mirror_in(main_list) : NULL;
    struct dirent **de = NULL;
    int n = uri ? 0 : scandir("/etc/apt/sources.list.d", &de, NULL, by_name);
    for (int i = 0; i < n; i++) {
        const char *f = de[i]->d_name;
        if (uri == NULL &&
            (mvm_disk_has_suffix(f, ".list") || mvm_disk_has_suffix(f, ".sources"))) {
            cleanup_free char *path = xasprintf("/etc/apt/sources.list.d/%s", f);
            cleanup_free char *text = read_sources(path);
            uri = text ? mvm_image_mirror_in(text) : NULL;
        }
        free(de[i]);
    }
    free(de);
    return uri ? uri : xstrdup("http://deb.debian.org/debian");
}

static int no_image(struct mvm_error **err, const char *name)
{
    return mvm_error_set(err, 0,
                         "no image %s (see sudo mvm image ls; build it with sudo mvm image build "
                         "%s)",
                         name, name);
}

int mvm_image_resolve(const char *dir, const char *value, char **path, struct mvm_error **err)
{
    *path = NULL;
    struct stat st;
    /* An image file of that name here wins; a directory of it (a debian/
     * in a source tree) does not hide the stored image. */
    bool here = lstat(value, &st) == 0;
    if (strchr(value, '/') != NULL || !mvm_image_name_ok(value) ||
        (here && (S_ISREG(st.st_mode) || S_ISBLK(st.st_mode))))
        return 0;
    cleanup_free char *p = xasprintf("%s/%s" QCOW2_SUFFIX, dir, value);
    if (lstat(p, &st) < 0) {
        if (here)
            return 0; /* not stored: the path's own error says what it is */
        no_image(err, value);
        return mvm_error_wrap(err, "--image %s: no such file here either", value);
    }
    *path = steal_pointer(&p);
    return 0;
}

bool mvm_image_exists(const char *dir, const char *name)
{
    cleanup_free char *p = xasprintf("%s/%s" QCOW2_SUFFIX, dir, name);
    struct stat st;
    return lstat(p, &st) == 0;
}

/* The recipe of an image, or NULL. */
static json_t *recipe(int dirfd, const char *name)
{
    cleanup_free char *file = xasprintf("%s.json", name);
    cleanup_close int fd = openat(dirfd, file, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return NULL;
    return json_loadfd(fd, 0, NULL);
}

long mvm_image_builder(const char *dir, const char *name)
{
    if (!mvm_image_name_ok(name))
        return -1;
    cleanup_close int dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    cleanup_json json_t *j = dirfd < 0 ? NULL : recipe(dirfd, name);
    json_t *uid = j ? json_object_get(j, "builder_uid") : NULL;
    return json_is_integer(uid) && json_integer_value(uid) >= 0 ? (long)json_integer_value(uid)
                                                                : -1;
}

static bool describe(int dirfd, const char *file, struct mvm_image_entry *e)
{
    struct stat st;
    if (!mvm_disk_has_suffix(file, QCOW2_SUFFIX) ||
        fstatat(dirfd, file, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISREG(st.st_mode))
        return false;
    cleanup_free char *name = xstrndup(file, strlen(file) - strlen(QCOW2_SUFFIX));
    if (!mvm_image_name_ok(name))
        return false;
    cleanup_json json_t *j = recipe(dirfd, name);
    const char *from = json_string_value(json_object_get(j, "from"));
    const char *created = json_string_value(json_object_get(j, "created"));
    *e = (struct mvm_image_entry){
        .name = steal_pointer(&name),
        .from = from ? xstrdup(from) : NULL,
        .created = created ? xstrdup(created) : NULL,
        .size = (uint64_t)st.st_size,
    };
    return true;
}

static int compare_name(const void *a, const void *b)
{
    const struct mvm_image_entry *x = a, *y = b;
    return strcmp(x->name, y->name);
}

int mvm_image_list(const char *dir, FILE *out, struct mvm_error **err)
{
    cleanup_dir DIR *d = opendir(dir);
    if (d == NULL && errno != ENOENT)
        return mvm_error_set(err, errno, "reading %s", dir);
    struct mvm_image_entry *e = NULL;
    size_t n = 0;
    struct dirent *de;
    while (d && (de = readdir(d)) != NULL) {
        e = xrealloc(e, (n + 1) * sizeof *e);
        if (describe(dirfd(d), de->d_name, &e[n]))
            n++;
    }
    qsort(e, n, sizeof *e, compare_name);
    mvm_image_table(out, e, n);
    for (size_t i = 0; i < n; i++) {
        free(e[i].name);
        free(e[i].from);
        free(e[i].created);
    }
    free(e);
    return 0;
}

int mvm_image_inspect(const char *dir, const char *name, FILE *out, struct mvm_error **err)
{
    if (mvm_image_name_check(name, err) < 0)
        return -1;
    if (!mvm_image_exists(dir, name))
        return no_image(err, name);
    cleanup_free char *path = xasprintf("%s/%s.json", dir, name);
    cleanup_free char *text = read_file(path, 1 << 20, NULL);
    if (text == NULL)
        return mvm_error_set(err, errno,
                             "image %s has no readable recipe %s; rebuild it (sudo mvm image "
                             "build --force %s)",
                             name, path, name);
    fputs(text, out);
    return 0;
}

int mvm_image_boot_files(const char *dir, const char *name, char **kernel, char **initrd,
                         char **kconfig, struct mvm_error **err)
{
    char *f[MVM_IMAGE_BOOT_FILES];
    for (size_t i = 0; i < MVM_IMAGE_BOOT_FILES; i++)
        f[i] = xasprintf("%s/%s%s", dir, name, mvm_image_boot_suffix[i]);
    struct stat st;
    if (stat(f[0], &st) < 0 || !S_ISREG(st.st_mode) || stat(f[1], &st) < 0 ||
        !S_ISREG(st.st_mode)) {
        for (size_t i = 0; i < MVM_IMAGE_BOOT_FILES; i++)
            free(f[i]);
        return mvm_error_set(err, 0,
                             "--boot image: image %s has no kernel, systemd and cloud-init of "
                             "its own; build it with --packages "
                             "linux-image-amd64,systemd-sysv,udev,cloud-init (or run it without "
                             "--boot image)",
                             name);
    }
    *kernel = f[0];
    *initrd = f[1];
    if (stat(f[2], &st) == 0 && S_ISREG(st.st_mode)) {
        *kconfig = f[2];
    } else {
        *kconfig = NULL;
        free(f[2]);
    }
    return 0;
}

int mvm_image_remove(const char *dir, const char *name, struct mvm_error **err)
{
    if (mvm_image_name_check(name, err) < 0)
        return -1;
    cleanup_free char *image = xasprintf("%s/%s" QCOW2_SUFFIX, dir, name);
    cleanup_free char *json = xasprintf("%s/%s.json", dir, name);
    struct stat st;
    if (lstat(image, &st) < 0 && lstat(json, &st) < 0)
        return no_image(err, name);
    /* A session booted on it keeps its open file; new ones no longer
     * find it. */
    if (unlink(image) < 0 && errno != ENOENT)
        return mvm_error_set(err, errno, "removing %s", image);
    if (unlink(json) < 0 && errno != ENOENT)
        return mvm_error_set(err, errno, "removing %s", json);
    for (size_t i = 0; i < MVM_IMAGE_BOOT_FILES; i++) {
        cleanup_free char *f = xasprintf("%s/%s%s", dir, name, mvm_image_boot_suffix[i]);
        if (unlink(f) < 0 && errno != ENOENT)
            return mvm_error_set(err, errno, "removing %s", f);
    }
    cleanup_free char *lock = xasprintf("%s/.%s.lock", dir, name);
    unlink(lock); /* its builds' lock (a build of it now holds its own fd) */
    return 0;
}

int mvm_image_sweep(const char *dir, struct mvm_error **err)
{
    cleanup_dir DIR *d = opendir(dir);
    if (d == NULL)
        return errno == ENOENT ? 0 : mvm_error_set(err, errno, "reading %s", dir);
    int removed = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        struct stat st;
        /* A minute's grace: a build locks its directory just after
         * making it. */
        if (!str_has_prefix(de->d_name, BUILD_PREFIX) ||
            fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISDIR(st.st_mode) ||
            time(NULL) - st.st_mtime < 60 || mvm_disk_locked(dirfd(d), de->d_name))
            continue;
        if (remove_tree_at(dirfd(d), de->d_name) < 0)
            return mvm_error_set(err, errno, "removing %s/%s", dir, de->d_name);
        removed++;
    }
    return removed;
}
