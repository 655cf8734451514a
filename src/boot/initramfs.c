/* The guest's initramfs, in two parts the kernel unpacks one after the
 * other: a base (mvm-init and the modules) that only changes with the
 * kernel or mvm, built once and cached, and a small per-session part
 * written fresh for each run. */
#include "initramfs.h"

#include <fcntl.h>
#include <inttypes.h>
#include <string.h>
#include <sys/stat.h>

#include "cache.h"
#include "compress.h"
#include "cpio.h"
#include "modules.h"
#include "sha256.h"

#define MODULES_DEP_MAX (16u << 20)
#define ETC_FILE_MAX    (4u << 20)
#define ETC_DEPTH_MAX   16
/* Bump when the base layout changes, so old cache entries are not used. */
#define BASE_FORMAT \
    "mvm-initramfs-base-4" /* 2: modules without signatures, 3: nor BTF, 4: fs-order */

/* Public, harmless files only: whatever is listed here is copied into
 * every guest, where any process can read it.  Anything that holds
 * secrets (shadow, gshadow, ssh, wireguard, sudoers, environment,
 * gitconfig, ...) must never be added. */
const char *const mvm_etc_allowlist[] = {
    "ssl/certs",
    "ssl/openssl.cnf",
    "ca-certificates.conf",
    "alternatives",
    "ld.so.conf",
    "ld.so.conf.d",
    "ld.so.cache",
    "localtime",
    "timezone",
    "nsswitch.conf",
    "protocols",
    "services",
    "mime.types",
    "profile",
    "profile.d",
    "bash.bashrc",
    "inputrc",
    "os-release",
    "debian_version",
    "shells",
    "gai.conf",
    "host.conf",
    "issue",
    /* apt and dpkg for guest root's installs: the sources and their keys,
     * not apt.conf.d (proxy settings may carry passwords) nor auth.conf.d */
    "apt/sources.list",
    "apt/sources.list.d",
    "apt/trusted.gpg",
    "apt/trusted.gpg.d",
    "apt/keyrings",
    "apt/preferences.d",
    "dpkg/dpkg.cfg",
    "dpkg/origins",
    NULL,
};

/* ---- base part ------------------------------------------------------ */

int mvm_initramfs_modules(const struct mvm_kernel *k, const char *const *wanted, size_t nwanted,
                          struct mvm_modlist *mods, struct mvm_error **err)
{
    *mods = (struct mvm_modlist){0};
    const char *dir = k->modules_dir;
    if (dir == NULL || nwanted == 0)
        return 0;
    cleanup_free char *dep_path = xasprintf("%s/modules.dep", dir);
    cleanup_free char *builtin_path = xasprintf("%s/modules.builtin", dir);
    cleanup_free char *dep = read_file_as(k->uid, k->gid, dep_path, MODULES_DEP_MAX, NULL);
    if (dep == NULL)
        return mvm_error_set(err, errno, "reading %s", dep_path);
    /* Without modules.builtin every wanted module must be a file. */
    cleanup_free char *builtin = read_file_as(k->uid, k->gid, builtin_path, MODULES_DEP_MAX, NULL);
    if (builtin == NULL && errno != ENOENT)
        return mvm_error_set(err, errno, "reading %s", builtin_path);
    if (mvm_modules_resolve(dep, builtin, wanted, nwanted, mods, err) < 0)
        return mvm_error_wrap(err, "%s", dir);
    return 0;
}

static void hash_str(struct mvm_sha256 *c, const char *s)
{
    mvm_sha256_update(c, s, strlen(s) + 1); /* the NUL separates fields */
}

/* SHA-256 over what the base part is made of: a crafted --modules must
 * not be able to take over another kernel's cache entry. */
static int base_key(const struct mvm_initramfs_base *spec, const struct mvm_modlist *mods,
                    char key[33], struct mvm_error **err)
{
    const struct mvm_kernel *k = spec->kernel;
    struct mvm_sha256 c;
    mvm_sha256_init(&c);
    hash_str(&c, BASE_FORMAT);
    hash_str(&c, k->release ? k->release : "");
    hash_str(&c, k->modules_dir ? k->modules_dir : "");
    for (size_t i = 0; i < mods->n; i++) {
        cleanup_free char *path = xasprintf("%s/%s", k->modules_dir, mods->paths[i]);
        struct stat st;
        if (stat(path, &st) < 0)
            return mvm_error_set(err, errno, "module %s", path);
        hash_str(&c, path);
        uint64_t meta[] = {(uint64_t)st.st_dev,          (uint64_t)st.st_ino,
                           (uint64_t)st.st_size,         (uint64_t)st.st_mtim.tv_sec,
                           (uint64_t)st.st_mtim.tv_nsec, (uint64_t)st.st_ctim.tv_sec,
                           (uint64_t)st.st_ctim.tv_nsec};
        mvm_sha256_update(&c, meta, sizeof meta);
    }
    for (size_t i = 0; i < spec->nfs_modules; i++) /* which of them load on demand */
        hash_str(&c, spec->fs_modules[i]);
    if (spec->init_key)
        hash_str(&c, spec->init_key);
    else
        mvm_sha256_update(&c, spec->init, spec->init_len);
    mvm_sha256_key(&c, key);
    return 0;
}

static bool listed(const struct mvm_modlist *l, const char *path)
{
    for (size_t i = 0; i < l->n; i++)
        if (strcmp(l->paths[i], path) == 0)
            return true;
    return false;
}

/* mods: everything, dependencies first; those not in main go to
 * fs-order, loaded only for a root that needs them. */
static int add_modules(struct mvm_cpio *c, const struct mvm_kernel *k,
                       const struct mvm_modlist *mods, const struct mvm_modlist *main,
                       struct mvm_error **err)
{
    const char *dir = k->modules_dir;
    struct buf order = {0}, fs_order = {0};
    int rc = 0;
    for (size_t i = 0; i < mods->n && rc == 0; i++) {
        cleanup_free char *path = xasprintf("%s/%s", dir, mods->paths[i]);
        cleanup_free char *name = mvm_module_name(mods->paths[i]);
        cleanup_free char *dest = xasprintf("mvm/modules/%s.ko", name);
        struct buf ko = {0};
        rc = mvm_module_read_as(k->uid, k->gid, path, &ko, err);
        if (rc == 0) {
            mvm_module_hide_btf(ko.data, ko.len);
            mvm_cpio_file(c, dest, 0644, ko.data, mvm_module_unsigned_len(ko.data, ko.len));
            buf_printf(listed(main, mods->paths[i]) ? &order : &fs_order, "%s.ko\n", name);
        }
        buf_free(&ko);
    }
    if (rc == 0 && order.len > 0)
        mvm_cpio_file(c, "mvm/modules/order", 0644, order.data, order.len);
    if (rc == 0 && fs_order.len > 0)
        mvm_cpio_file(c, "mvm/modules/fs-order", 0644, fs_order.data, fs_order.len);
    buf_free(&order);
    buf_free(&fs_order);
    return rc;
}

/* The lz4 stream is followed by zeros up to a 512-byte boundary, at least
 * one zero word: the kernel's unlz4 would otherwise read the next
 * archive's "0707" as a block size, while a zero size ends the stream
 * and the unpacker skips the zeros up to the next header. */
static int build_base(const struct mvm_initramfs_base *spec, const struct mvm_modlist *mods,
                      const struct mvm_modlist *main, struct buf *out, struct mvm_error **err)
{
    struct buf raw = {0};
    struct mvm_cpio c;
    mvm_cpio_init(&c, &raw);
    mvm_cpio_dir(&c, "dev", 0755);
    mvm_cpio_chardev(&c, "dev/console", 0600, 5, 1);
    mvm_cpio_file(&c, "init", 0755, spec->init, spec->init_len);
    mvm_cpio_dir(&c, "mvm", 0755);
    mvm_cpio_dir(&c, "mvm/modules", 0755);
    int rc = add_modules(&c, spec->kernel, mods, main, err);
    if (rc == 0) {
        mvm_cpio_finish(&c);
        rc = mvm_lz4_legacy_compress(raw.data, raw.len, out, err);
    }
    buf_free(&raw);
    if (rc < 0)
        return -1;
    static const char zeros[512];
    buf_append(out, zeros, 4);
    if (out->len % 512)
        buf_append(out, zeros, 512 - out->len % 512);
    return 0;
}

static int write_base(const struct mvm_initramfs_base *spec, const struct mvm_modlist *mods,
                      const struct mvm_modlist *main, const char *path, struct mvm_error **err)
{
    if (spec->progress != NULL) {
        cleanup_free char *what = xasprintf("building the guest initramfs for %s (first run only)",
                                            spec->kernel->release);
        spec->progress(what);
    }
    struct buf img = {0};
    int rc = build_base(spec, mods, main, &img, err);
    if (rc == 0 && write_file_atomic(path, img.data, img.len, 0644) < 0)
        rc = mvm_error_set(err, errno, "writing %s", path);
    /* The umask may have narrowed 0644; QEMU may run as another user. */
    if (rc == 0 && chmod(path, 0644) < 0)
        rc = mvm_error_set(err, errno, "chmod %s", path);
    buf_free(&img);
    return rc;
}

int mvm_initramfs_base_path(const struct mvm_initramfs_base *spec, char **path,
                            struct mvm_error **err)
{
    struct mvm_modlist mods, main = {0};
    char key[33] = "";
    /* The filesystems' as optional: a kernel without one still boots. */
    size_t nall = spec->nmodules + spec->nfs_modules;
    cleanup_free const char **all = xcalloc(nall + 1, sizeof *all);
    cleanup_free char **opt = xcalloc(spec->nfs_modules + 1, sizeof *opt);
    for (size_t i = 0; i < spec->nmodules; i++)
        all[i] = spec->modules[i];
    for (size_t i = 0; i < spec->nfs_modules; i++)
        all[spec->nmodules + i] = opt[i] = xasprintf("?%s", spec->fs_modules[i]);
    int rc = mvm_initramfs_modules(spec->kernel, all, nall, &mods, err);
    for (size_t i = 0; i < spec->nfs_modules; i++)
        free(opt[i]);
    if (rc < 0)
        return mvm_error_wrap(err, "resolving guest kernel modules");
    rc = base_key(spec, &mods, key, err);
    if (rc == 0 && mkdir_p(spec->cache_dir, 0700) < 0)
        rc = mvm_error_set(err, errno, "creating %s", spec->cache_dir);
    char *out = NULL;
    if (rc == 0) {
        out = xasprintf("%s/initramfs-%s.img", spec->cache_dir, key);
        struct stat st;
        if (stat(out, &st) == 0 && S_ISREG(st.st_mode)) {
            mvm_cache_touch(out);
        } else {
            /* Which of them the filesystems alone need: only when
             * building, and only with filesystems (else all of them). */
            const struct mvm_modlist *m = &mods;
            if (spec->nfs_modules > 0) {
                rc = mvm_initramfs_modules(spec->kernel, spec->modules, spec->nmodules, &main, err);
                m = &main;
            }
            if (rc == 0)
                rc = write_base(spec, &mods, m, out, err);
            if (rc == 0)
                mvm_cache_sweep(spec->cache_dir, "initramfs-", MVM_CACHE_MAX_AGE, out);
        }
    }
    mvm_modlist_clear(&mods);
    mvm_modlist_clear(&main);
    if (rc < 0) {
        free(out);
        return mvm_error_wrap(err, "building the guest initramfs");
    }
    *path = out;
    return 0;
}

/* ---- session part --------------------------------------------------- */

/* Reasons to leave an /etc entry out rather than fail the session. */
static bool skippable(int e)
{
    return e == ENOENT || e == EACCES || e == EPERM || e == ENOTDIR || e == ELOOP;
}

static int skip_or_fail(const char *path, struct mvm_error **err)
{
    if (skippable(errno))
        return 0;
    return mvm_error_set(err, errno, "reading %s", path);
}

static int add_etc_symlink(struct mvm_cpio *c, const char *src, const char *dest,
                           const struct stat *st, struct mvm_error **err)
{
    size_t cap = (size_t)st->st_size + 2; /* one more, to notice a link that grew */
    cleanup_free char *target = xmalloc(cap);
    ssize_t n = readlink(src, target, cap);
    if (n < 0)
        return skip_or_fail(src, err);
    if ((size_t)n >= cap - 1)
        return 0; /* changed under us: leave it out */
    target[n] = '\0';
    mvm_cpio_symlink(c, dest, target);
    return 0;
}

static int add_etc_file(struct mvm_cpio *c, const char *src, const char *dest,
                        struct mvm_error **err)
{
    /* O_NOFOLLOW|O_NONBLOCK: whatever replaced the file since lstat() is
     * neither followed nor waited on (a FIFO). */
    cleanup_close int fd = open(src, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
    if (fd < 0)
        return skip_or_fail(src, err);
    struct stat st;
    if (fstat(fd, &st) < 0)
        return skip_or_fail(src, err);
    if (!S_ISREG(st.st_mode) || st.st_size > ETC_FILE_MAX)
        return 0;
    cleanup_free char *data = xmalloc((size_t)st.st_size + 1);
    ssize_t n = read_full(fd, data, (size_t)st.st_size);
    if (n < 0)
        return skip_or_fail(src, err);
    mvm_cpio_file(c, dest, st.st_mode & 0777, data, (size_t)n);
    return 0;
}

static int no_dots(const struct dirent *de)
{
    return strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0;
}

static int add_etc_entry(struct mvm_cpio *c, const char *src, const char *dest, int depth,
                         struct mvm_error **err);

/* Sorted, so that the same /etc gives the same archive. */
static int add_etc_dir(struct mvm_cpio *c, const char *src, const char *dest, const struct stat *st,
                       int depth, struct mvm_error **err)
{
    if (depth >= ETC_DEPTH_MAX)
        return 0;
    struct dirent **list = NULL;
    int n = scandir(src, &list, no_dots, alphasort);
    if (n < 0)
        return skip_or_fail(src, err);
    mvm_cpio_dir(c, dest, st->st_mode & 0777);
    int rc = 0;
    for (int i = 0; i < n; i++) {
        if (rc == 0) {
            cleanup_free char *s = xasprintf("%s/%s", src, list[i]->d_name);
            cleanup_free char *d = xasprintf("%s/%s", dest, list[i]->d_name);
            rc = add_etc_entry(c, s, d, depth + 1, err);
        }
        free(list[i]);
    }
    free(list);
    return rc;
}

static int add_etc_entry(struct mvm_cpio *c, const char *src, const char *dest, int depth,
                         struct mvm_error **err)
{
    struct stat st;
    if (lstat(src, &st) < 0)
        return skip_or_fail(src, err);
    if (S_ISLNK(st.st_mode))
        return add_etc_symlink(c, src, dest, &st, err);
    if (S_ISREG(st.st_mode))
        return st.st_size > ETC_FILE_MAX ? 0 : add_etc_file(c, src, dest, err);
    if (S_ISDIR(st.st_mode))
        return add_etc_dir(c, src, dest, &st, depth, err);
    return 0; /* devices, sockets, FIFOs */
}

/* The parent directories already in the archive. */
struct dirset {
    char **v;
    size_t n;
};

/* Returns true when rel was not in the set yet. */
static bool dirset_add(struct dirset *s, const char *rel)
{
    for (size_t i = 0; i < s->n; i++)
        if (strcmp(s->v[i], rel) == 0)
            return false;
    s->v = xrealloc(s->v, (s->n + 1) * sizeof *s->v);
    s->v[s->n++] = xstrdup(rel);
    return true;
}

static void dirset_free(struct dirset *s)
{
    for (size_t i = 0; i < s->n; i++)
        free(s->v[i]);
    free(s->v);
}

/* Creates mvm/etc/a, mvm/etc/a/b, ... for an entry "a/b/name", each once,
 * with the host directory's permissions. */
static void add_etc_parents(struct mvm_cpio *c, const char *etc_root, const char *entry,
                            struct dirset *done)
{
    for (const char *slash = strchr(entry, '/'); slash; slash = strchr(slash + 1, '/')) {
        cleanup_free char *rel = xstrndup(entry, (size_t)(slash - entry));
        if (!dirset_add(done, rel))
            continue;
        cleanup_free char *src = xasprintf("%s/%s", etc_root, rel);
        cleanup_free char *dest = xasprintf("mvm/etc/%s", rel);
        struct stat st;
        mvm_cpio_dir(c, dest, stat(src, &st) == 0 ? st.st_mode & 0777 : 0755);
    }
}

int mvm_initramfs_session_part(const char *session_json, const char *etc_root, struct buf *out,
                               struct mvm_error **err)
{
    size_t start = out->len;
    struct mvm_cpio c;
    mvm_cpio_init(&c, out);
    mvm_cpio_dir(&c, "mvm", 0755);
    mvm_cpio_file(&c, "mvm/session.json", 0644, session_json, strlen(session_json));
    mvm_cpio_dir(&c, "mvm/etc", 0755);
    struct dirset done = {0};
    int rc = 0;
    for (size_t i = 0; mvm_etc_allowlist[i] != NULL && rc == 0; i++) {
        const char *entry = mvm_etc_allowlist[i];
        cleanup_free char *src = xasprintf("%s/%s", etc_root, entry);
        cleanup_free char *dest = xasprintf("mvm/etc/%s", entry);
        struct stat st;
        if (lstat(src, &st) < 0)
            continue; /* absent here, or unreadable: the guest does without */
        add_etc_parents(&c, etc_root, entry, &done);
        rc = add_etc_entry(&c, src, dest, 0, err);
    }
    dirset_free(&done);
    if (rc < 0) {
        out->len = start;
        return mvm_error_wrap(err, "copying host /etc files from %s", etc_root);
    }
    mvm_cpio_finish(&c);
    return 0;
}

/* ---- the file QEMU loads -------------------------------------------- */

static int copy_fd(int in, int out)
{
    for (bool fast = true;;) {
        ssize_t n;
        if (fast) {
            n = copy_file_range(in, NULL, out, NULL, 1u << 30, 0);
            if (n < 0 &&
                (errno == EXDEV || errno == ENOSYS || errno == EINVAL || errno == EOPNOTSUPP)) {
                fast = false; /* read/write goes on from the same offsets */
                continue;
            }
        } else {
            char chunk[65536];
            n = read(in, chunk, sizeof chunk);
            if (n > 0 && write_all(out, chunk, (size_t)n) < 0)
                return -1;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return (int)n;
    }
}

static int write_parts(const char *base_path, const struct buf *session_part, int out,
                       struct mvm_error **err)
{
    cleanup_close int in = open(base_path, O_RDONLY | O_CLOEXEC);
    if (in < 0)
        return mvm_error_set(err, errno, "reading %s", base_path);
    if (copy_fd(in, out) < 0)
        return mvm_error_set(err, errno, "copying %s", base_path);
    if (write_all(out, session_part->data, session_part->len) < 0)
        return mvm_error_set(err, errno, "writing the session part");
    return 0;
}

int mvm_initramfs_write(const char *base_path, const struct buf *session_part, const char *out_path,
                        struct mvm_error **err)
{
    int fd = open(out_path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (fd < 0)
        return mvm_error_set(err, errno, "creating %s", out_path);
    int rc = write_parts(base_path, session_part, fd, err);
    /* The umask may have narrowed 0644; QEMU may run as another user. */
    if (rc == 0 && fchmod(fd, 0644) < 0)
        rc = mvm_error_set(err, errno, "chmod %s", out_path);
    if (close(fd) < 0 && rc == 0)
        rc = mvm_error_set(err, errno, "writing %s", out_path);
    if (rc < 0) {
        unlink(out_path);
        return mvm_error_wrap(err, "writing the guest initramfs %s", out_path);
    }
    return 0;
}
