/* mvm image build's steps on the host: the build directory, mmdebstrap's
 * tarball (cached), the ext4 image made from it, the qcow2 file, its
 * digest and recipe, and the rename into the store (see disk.h).  The
 * provisioning VM between them is the session's (session/image.c). */
#include "disk-int.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <string.h>
#include <sys/file.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "sha256.h"
#include "util.h"

#define CACHE_MAX_AGE (24 * 3600) /* a day: security updates come often */

static const char *const mmdebstrap_tool[] = {"/usr/bin/mmdebstrap", NULL};
static const char *const tar_tool[] = {"/usr/bin/tar", "/bin/tar", NULL};

const char *mvm_image_mmdebstrap(void)
{
    return mvm_disk_find_tool(mmdebstrap_tool);
}

void mvm_image_build_progress(const struct mvm_image_build *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    cleanup_free char *what = xvasprintf(fmt, ap);
    va_end(ap);
    uint64_t s = (now_ns() - b->started_ns) / 1000000000ULL;
    fprintf(stderr, "mvm image build %s: [%um%02us] %s\n", b->r->name, (unsigned)(s / 60),
            (unsigned)(s % 60), what);
}

/* NAME's lock in the store, held by the build from start to end. */
static int lock_name(struct mvm_image_build *b, int store, struct mvm_error **err)
{
    cleanup_free char *file = xasprintf(".%s.lock", b->r->name);
    b->lockfd = openat(store, file, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (b->lockfd < 0)
        return mvm_error_set(err, errno, "opening %s/%s", b->store, file);
    if (flock(b->lockfd, LOCK_EX | LOCK_NB) == 0)
        return 0;
    if (errno == EWOULDBLOCK)
        return mvm_error_set(err, 0, "another mvm image build of %s is running; wait for it",
                             b->r->name);
    return mvm_error_set(err, errno, "locking %s/%s", b->store, file);
}

int mvm_image_build_begin(struct mvm_image_build *b, struct mvm_error **err)
{
    b->dirfd = -1;
    b->lockfd = -1;
    b->started_ns = now_ns();
    cleanup_close int store = mvm_disk_dir_open(AT_FDCWD, b->store, b->store, 0755, true, err);
    if (store < 0 || lock_name(b, store, err) < 0)
        return -1;
    mvm_image_sweep(b->store, NULL);
    cleanup_free char *file = xasprintf(".build-%s-%ld", b->r->name, (long)getpid());
    if (mkdirat(store, file, 0700) < 0)
        return mvm_error_set(err, errno, "creating %s/%s", b->store, file);
    b->dir = xasprintf("%s/%s", b->store, file);
    b->dirfd = openat(store, file, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    /* Held until the build ends: a sweep leaves it be. */
    if (b->dirfd < 0 || flock(b->dirfd, LOCK_EX | LOCK_NB) < 0) {
        int e = errno;
        mvm_image_build_end(b);
        return mvm_error_set(err, e, "opening %s", b->dir);
    }
    return 0;
}

void mvm_image_build_end(struct mvm_image_build *b)
{
    if (b->dir != NULL)
        remove_tree(b->dir);
    if (b->dirfd >= 0)
        close(b->dirfd);
    b->dirfd = -1;
    if (b->lockfd >= 0) {
        /* Still held: no other build can be between its open and flock. */
        if (!mvm_image_exists(b->store, b->r->name)) {
            cleanup_free char *lock = xasprintf("%s/.%s.lock", b->store, b->r->name);
            unlink(lock);
        }
        close(b->lockfd);
    }
    b->lockfd = -1;
    free(b->dir);
    free(b->tar);
    free(b->raw);
    free(b->kernel);
    b->dir = b->tar = b->raw = b->kernel = NULL;
}

static int run(const struct mvm_image_build *b, char **argv, bool private_mounts, const char *doing,
               struct mvm_error **err)
{
    struct mvm_disk_tool t = {
        .sigfd = b->sigfd, .private_mounts = private_mounts, .tail = true, .tmpdir = b->dir};
    int rc = mvm_disk_run_tool_with(argv, &t, doing, err);
    mvm_strv_free(argv);
    return rc;
}

/* Tarballs of any recipe past their day: no longer used. */
static void expire(const char *cache)
{
    cleanup_dir DIR *d = opendir(cache);
    struct dirent *de;
    time_t now = time(NULL);
    while (d && (de = readdir(d)) != NULL) {
        struct stat st;
        if (str_has_prefix(de->d_name, "mmdebstrap-") && mvm_disk_has_suffix(de->d_name, ".tar") &&
            fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode) &&
            now - st.st_mtime > CACHE_MAX_AGE)
            unlinkat(dirfd(d), de->d_name, 0);
    }
}

/* A cached tarball for this recipe, if one is fresh enough. */
static char *cached(const struct mvm_image_build *b, const char *path, time_t *when)
{
    struct stat st;
    if (b->refresh || stat(path, &st) < 0 || !S_ISREG(st.st_mode) ||
        time(NULL) - st.st_mtime > CACHE_MAX_AGE)
        return NULL;
    *when = st.st_mtime;
    return xstrdup(path);
}

int mvm_image_build_bootstrap(struct mvm_image_build *b, struct mvm_error **err)
{
    char key[33];
    mvm_image_cache_key(b->r, key);
    expire(b->cache);
    cleanup_free char *cache = xasprintf("%s/mmdebstrap-%s.tar", b->cache, key);
    time_t when = 0;
    b->tar = cached(b, cache, &when);
    if (b->tar != NULL) {
        char t[32] = "?";
        struct tm tm;
        if (localtime_r(&when, &tm))
            strftime(t, sizeof t, "%Y-%m-%d %H:%M", &tm);
        mvm_image_build_progress(b, "reusing mmdebstrap's tarball of %s (--refresh for a new one)",
                                 t);
        return 0;
    }
    const char *tool = mvm_image_mmdebstrap();
    if (tool == NULL)
        return mvm_error_set(err, 0,
                             "mmdebstrap not found (mvm image build needs it): "
                             "apt-get install mmdebstrap");
    cleanup_free char *out = xasprintf("%s/rootfs.tar", b->dir);
    mvm_image_build_progress(b, "mmdebstrap %s (%s, %zu more package%s) from %s; a minute or more",
                             b->r->suite, MVM_IMAGE_VARIANT, b->r->npackages,
                             b->r->npackages == 1 ? "" : "s", b->r->mirror);
    if (run(b, mvm_image_mmdebstrap_argv(tool, b->r, out), true, "bootstrapping Debian", err) < 0)
        return -1;
    /* Kept for the next build of the same recipe (same filesystem: a
     * rename; else the next build fetches again). */
    if (mkdir_p(b->cache, 0755) == 0 && rename(out, cache) == 0) {
        b->tar = steal_pointer(&cache);
        return 0;
    }
    b->tar = steal_pointer(&out);
    return 0;
}

const char *const mvm_image_boot_suffix[MVM_IMAGE_BOOT_FILES] = {".vmlinuz", ".initrd", ".kconfig"};

/* A kernel release as it may appear in messages and the recipe. */
static bool release_ok(const char *r)
{
    size_t n = strlen(r);
    return n > 0 && n < 128 &&
           strspn(r, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                     "0123456789.+_-") == n;
}

static bool regular_at(int dir, const char *name)
{
    struct stat st;
    return fstatat(dir, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode);
}

/* The newest kernel the packages installed -- /boot/vmlinuz-RELEASE with
 * its initrd.img-RELEASE (and config-RELEASE) -- linked out of the tree
 * before it goes, as boot<suffix> in the build directory: what --boot
 * image boots.  None (no linux-image package, or no cloud-init and
 * systemd to start the agent): the image boots with mvm's kernel only. */
static int keep_kernel(struct mvm_image_build *b, const char *tree, struct mvm_error **err)
{
    cleanup_free char *path = xasprintf("%s/boot", tree);
    cleanup_close int boot = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    int fd = boot < 0 ? -1 : dup(boot);
    cleanup_dir DIR *d = fd < 0 ? NULL : fdopendir(fd);
    if (d == NULL) {
        if (fd >= 0)
            close(fd);
        return 0;
    }
    cleanup_free char *best = NULL;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        const char *rel = de->d_name + strlen("vmlinuz-");
        if (!str_has_prefix(de->d_name, "vmlinuz-") || !release_ok(rel) ||
            (best && strverscmp(rel, best) <= 0) || !regular_at(boot, de->d_name))
            continue;
        cleanup_free char *initrd = xasprintf("initrd.img-%s", rel);
        if (regular_at(boot, initrd)) {
            free(best);
            best = xstrdup(rel);
        }
    }
    if (best == NULL)
        return 0;
    /* What boots the agent: without them --boot image would wait for
     * nothing; said now, and the image boots with mvm's kernel only. */
    cleanup_free char *ci = xasprintf("%s/usr/bin/cloud-init", tree);
    cleanup_free char *run = xasprintf("%s/usr/bin/systemd-run", tree);
    if (access(ci, F_OK) != 0 || access(run, F_OK) != 0) {
        mvm_image_build_progress(b,
                                 "it has kernel %s but not cloud-init and systemd, which "
                                 "--boot image needs (add cloud-init,systemd-sysv to --packages)",
                                 best);
        return 0;
    }
    const char *from[MVM_IMAGE_BOOT_FILES] = {"vmlinuz-", "initrd.img-", "config-"};
    for (size_t i = 0; i < MVM_IMAGE_BOOT_FILES; i++) {
        cleanup_free char *src = xasprintf("%s%s", from[i], best);
        cleanup_free char *dst = xasprintf("boot%s", mvm_image_boot_suffix[i]);
        if (i == 2 && !regular_at(boot, src))
            continue; /* the config only sets lpj= */
        /* Root's and 0644 whatever the package said: QEMU's jail reads
         * them, and no user may change what other users' VMs boot. */
        if (linkat(boot, src, b->dirfd, dst, 0) < 0 ||
            fchownat(b->dirfd, dst, 0, 0, AT_SYMLINK_NOFOLLOW) < 0 ||
            fchmodat(b->dirfd, dst, 0644, 0) < 0)
            return mvm_error_set(err, errno, "keeping the image's kernel (%s/%s)", path, src);
    }
    mvm_image_build_progress(b, "keeping its kernel %s for --boot image", best);
    b->kernel = steal_pointer(&best);
    return 0;
}

/* The script, where the provisioning VM runs it. */
static int put_script(const struct mvm_image_build *b, const char *tree, struct mvm_error **err)
{
    if (b->r->script_path == NULL)
        return 0;
    cleanup_free char *root = xasprintf("%s/root", tree);
    cleanup_free char *path = xasprintf("%s%s", tree, MVM_IMAGE_SCRIPT_GUEST);
    if (mkdir_p(root, 0700) < 0)
        return mvm_error_set(err, errno, "creating %s", root);
    cleanup_close int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0700);
    if (fd < 0 || write_all(fd, b->r->script, b->r->script_len) < 0)
        return mvm_error_set(err, errno, "writing the script into the image");
    return 0;
}

int mvm_image_build_filesystem(struct mvm_image_build *b, struct mvm_error **err)
{
    const char *tar = mvm_disk_find_tool(tar_tool), *mkfs = NULL;
    if (tar == NULL)
        return mvm_error_set(err, 0,
                             "tar not found (mvm image build needs it): apt-get install tar");
    if (mvm_disk_mkfs_find(&mkfs, err) < 0)
        return -1;
    struct stat st;
    if (stat(b->tar, &st) < 0)
        return mvm_error_set(err, errno, "reading %s", b->tar);
    cleanup_free char *tree = xasprintf("%s/tree", b->dir);
    if (mkdirat(b->dirfd, "tree", 0755) < 0)
        return mvm_error_set(err, errno, "creating %s", tree);
    mvm_image_build_progress(b, "unpacking the tarball");
    if (run(b, mvm_image_untar_argv(tar, b->tar, tree), false, "unpacking mmdebstrap's tarball",
            err) < 0 ||
        put_script(b, tree, err) < 0 || keep_kernel(b, tree, err) < 0)
        return -1;
    uint64_t mib = mvm_image_size_mib((uint64_t)st.st_size);
    mvm_image_build_progress(b, "making an ext4 filesystem of %llu MiB with mkfs.ext4 -d",
                             (unsigned long long)mib);
    cleanup_free char *raw = xasprintf("%s/root.img", b->dir);
    struct mvm_disk_mkfs o = {
        .label = b->r->name, .journal = true, .root_dir = tree, .sigfd = &b->sigfd};
    struct mvm_disk d = {.fd = -1};
    if (mvm_disk_image_create(b->dirfd, "root.img", raw, mib, mkfs, &o, &d, err) < 0)
        return -1;
    mvm_disk_close(&d);
    b->raw = steal_pointer(&raw);
    /* The tree is in the image now: its space back before the VM. */
    remove_tree_at(b->dirfd, "tree");
    return 0;
}

static int digest_of(int fd, const char *path, char hex[65], struct mvm_error **err)
{
    struct mvm_sha256 c;
    mvm_sha256_init(&c);
    cleanup_free char *chunk = xmalloc(1 << 20);
    ssize_t n;
    while ((n = read(fd, chunk, 1 << 20)) > 0)
        mvm_sha256_update(&c, chunk, (size_t)n);
    if (n < 0)
        return mvm_error_set(err, errno, "reading %s", path);
    uint8_t d[32];
    mvm_sha256_final(&c, d);
    mvm_image_hex(d, hex);
    return 0;
}

/* The recipe beside the image in the build directory. */
static int write_recipe(struct mvm_image_build *b, int fd, const char *qcow2,
                        struct mvm_error **err)
{
    struct stat st;
    struct mvm_image_meta m = {.version = MVM_VERSION,
                               .created = time(NULL),
                               .builder_uid = b->builder_uid,
                               .kernel = b->kernel};
    if (fstat(fd, &st) < 0)
        return mvm_error_set(err, errno, "examining %s", qcow2);
    m.size = (uint64_t)st.st_size;
    struct stat raw;
    m.virtual_size = stat(b->raw, &raw) == 0 ? (uint64_t)raw.st_size : 0;
    mvm_image_build_progress(b, "computing the image's digest");
    if (digest_of(fd, qcow2, m.digest, err) < 0)
        return -1;
    cleanup_free char *json = mvm_image_recipe_json(b->r, &m);
    cleanup_free char *path = xasprintf("%s/image.json", b->dir);
    if (json == NULL)
        return mvm_error_set(err, 0, "writing the recipe of %s (a bug in mvm)", b->r->name);
    if (write_file_atomic(path, json, strlen(json), 0644) < 0)
        return mvm_error_set(err, errno, "writing %s", path);
    return 0;
}

/* The kernel kept for --boot image beside the image; an older image's
 * files of that name go when this one has none. */
static int install_boot_files(const struct mvm_image_build *b, struct mvm_error **err)
{
    for (size_t i = 0; i < MVM_IMAGE_BOOT_FILES; i++) {
        cleanup_free char *src = xasprintf("boot%s", mvm_image_boot_suffix[i]);
        cleanup_free char *dst =
            xasprintf("%s/%s%s", b->store, b->r->name, mvm_image_boot_suffix[i]);
        if (renameat(b->dirfd, src, AT_FDCWD, dst) < 0 &&
            (errno != ENOENT || (unlink(dst) < 0 && errno != ENOENT)))
            return mvm_error_set(err, errno, "installing %s", dst);
    }
    return 0;
}

int mvm_image_build_finish(struct mvm_image_build *b, struct mvm_error **err)
{
    const char *tool = mvm_disk_find_tool(mvm_disk_qemu_img);
    if (tool == NULL)
        return mvm_error_set(err, 0,
                             "qemu-img not found (mvm image build needs it): "
                             "apt-get install qemu-utils");
    cleanup_free char *qcow2 = xasprintf("%s/image.qcow2", b->dir);
    mvm_image_build_progress(b, "converting to qcow2");
    if (run(b, mvm_image_convert_argv(tool, b->raw, qcow2), false, "converting the image", err) < 0)
        return -1;
    cleanup_close int fd = open(qcow2, O_RDONLY | O_CLOEXEC);
    if (fd < 0 || fchmod(fd, 0644) < 0)
        return mvm_error_set(err, errno, "opening %s", qcow2);
    if (write_recipe(b, fd, qcow2, err) < 0)
        return -1;
    cleanup_free char *image = xasprintf("%s/%s.qcow2", b->store, b->r->name);
    cleanup_free char *json = xasprintf("%s/%s.json", b->store, b->r->name);
    cleanup_free char *json_tmp = xasprintf("%s/image.json", b->dir);
    /* A signal during the digest: nothing is installed. */
    struct signalfd_siginfo si;
    if (b->sigfd >= 0 && read(b->sigfd, &si, sizeof si) == (ssize_t)sizeof si)
        return mvm_error_set(err, 0, "interrupted (%s)", strsignal((int)si.ssi_signo));
    /* The image first: --image NAME finds it; then its recipe.  Without
     * force, one made meanwhile (by mvm image build of another mvm, or by
     * hand) is not replaced. */
    if (renameat2(AT_FDCWD, qcow2, AT_FDCWD, image, b->force ? 0 : RENAME_NOREPLACE) < 0) {
        if (errno == EEXIST)
            return mvm_error_set(err, 0,
                                 "image %s appeared while this build ran; build again "
                                 "with --force to replace it",
                                 b->r->name);
        return mvm_error_set(err, errno, "installing %s", image);
    }
    if (install_boot_files(b, err) < 0) {
        unlink(image);
        return -1;
    }
    if (rename(json_tmp, json) < 0) {
        int e = errno;
        unlink(image);
        return mvm_error_set(err, e, "installing %s", json);
    }
    return 0;
}
