/* Guest kernel discovery and vmlinux extraction.  The x86 boot protocol
 * (Documentation/arch/x86/boot.rst) describes where a bzImage keeps its
 * compressed payload; the decompressed payload is the ELF vmlinux that
 * QEMU can boot directly through its PVH note. */
#include "kernel.h"

#include <fcntl.h>
#include <inttypes.h>
#include <string.h>
#include <sys/stat.h>

#include "cache.h"
#include "compress.h"
#include "sha256.h"

#define HDR_SETUP_SECTS    0x1f1
#define HDR_MAGIC          0x202 /* "HdrS" */
#define HDR_VERSION        0x206
#define HDR_KERNEL_VERSION 0x20e
#define HDR_PAYLOAD_OFFSET 0x248
#define HDR_PAYLOAD_LENGTH 0x24c
#define HDR_END            0x250
#define HDR_READ_MAX       (64u << 10) /* the setup code, where the version string lives */
#define KERNEL_FILE_MAX    (256u << 20)
#define VMLINUX_MAX        (512u << 20)

#if defined(__aarch64__)
#define KERNEL_PACKAGE "linux-image-arm64"
#else
#define KERNEL_PACKAGE "linux-image-amd64"
#endif

static uint16_t get_le16(const unsigned char *p)
{
    return (uint16_t)(p[0] | p[1] << 8);
}

static uint32_t get_le32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static bool is_elf(const void *p, size_t len)
{
    return len >= 4 && memcmp(p,
                              "\x7f"
                              "ELF",
                              4) == 0;
}

static bool is_bzimage(const unsigned char *p, size_t len)
{
    return len >= HDR_END && memcmp(p + HDR_MAGIC, "HdrS", 4) == 0;
}

char *mvm_kernel_image_release(const void *img, size_t len)
{
    const unsigned char *p = img;
    if (!is_bzimage(p, len))
        return NULL;
    uint16_t off = get_le16(p + HDR_KERNEL_VERSION);
    if (off == 0 || (size_t)off + 0x200 >= len)
        return NULL;
    /* "6.1.0-56-amd64 (debian-kernel@lists.debian.org) #1 SMP ..." */
    const char *s = (const char *)p + off + 0x200;
    size_t max = len - (off + 0x200u);
    size_t n = 0;
    while (n < max && s[n] != '\0' && s[n] != ' ')
        n++;
    if (n == 0 || n == max)
        return NULL;
    return xstrndup(s, n);
}

/* Locates the payload per boot protocol 2.08+ (payload_offset counts from
 * the start of the protected-mode code, after the setup sectors). */
static int bzimage_payload(const unsigned char *p, size_t len, const unsigned char **payload,
                           size_t *plen, struct mvm_error **err)
{
    if (!is_bzimage(p, len))
        return mvm_error_set(err, 0, "not a bzImage or ELF kernel (no HdrS header)");
    if (get_le16(p + HDR_VERSION) < 0x208)
        return mvm_error_set(err, 0, "boot protocol %#x is older than 2.08 (no payload info)",
                             get_le16(p + HDR_VERSION));
    unsigned setup_sects = p[HDR_SETUP_SECTS] ? p[HDR_SETUP_SECTS] : 4;
    uint64_t start = (uint64_t)(setup_sects + 1) * 512 + get_le32(p + HDR_PAYLOAD_OFFSET);
    uint64_t length = get_le32(p + HDR_PAYLOAD_LENGTH);
    if (length == 0 || start > len || length > len - start)
        return mvm_error_set(
            err, 0, "payload (%" PRIu64 " bytes at %" PRIu64 ") lies outside the %zu-byte image",
            length, start, len);
    *payload = p + start;
    *plen = (size_t)length;
    return 0;
}

int mvm_kernel_extract(const void *img, size_t len, struct buf *vmlinux, struct mvm_error **err)
{
    if (is_elf(img, len)) {
        buf_append(vmlinux, img, len);
        return 0;
    }
    const unsigned char *payload = NULL;
    size_t plen = 0;
    if (bzimage_payload(img, len, &payload, &plen, err) < 0)
        return -1;
    enum mvm_compress_fmt fmt = mvm_compress_detect(payload, plen);
    if (fmt == MVM_FMT_NONE || fmt == MVM_FMT_UNKNOWN) {
        unsigned char m[4] = {0};
        memcpy(m, payload, plen < 4 ? plen : 4);
        return mvm_error_set(err, 0,
                             "kernel payload is compressed with an unsupported format (magic "
                             "%02x %02x %02x %02x); mvm reads gzip, xz, zstd and lz4",
                             m[0], m[1], m[2], m[3]);
    }
    size_t start = vmlinux->len;
    if (mvm_decompress(fmt, payload, plen, VMLINUX_MAX, vmlinux, err) < 0)
        return mvm_error_wrap(err, "decompressing the %s kernel payload", mvm_compress_name(fmt));
    if (!is_elf(vmlinux->data + start, vmlinux->len - start)) {
        vmlinux->len = start;
        return mvm_error_set(err, 0, "the decompressed kernel payload is not an ELF image");
    }
    return 0;
}

void mvm_kernel_clear(struct mvm_kernel *k)
{
    free(k->image);
    free(k->release);
    free(k->modules_dir);
    k->image = k->release = k->modules_dir = NULL;
}

static bool is_dir(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

static bool is_file(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/* Release from the image's header; failing that, from a vmlinuz-/vmlinux-
 * file name (an ELF vmlinux has no boot header). */
static char *release_of(const struct mvm_kernel *k, const char *image)
{
    size_t n = 0;
    cleanup_free char *img = read_file_head_as(k->uid, k->gid, image, HDR_READ_MAX, &n);
    if (img != NULL) {
        char *rel = mvm_kernel_image_release(img, n);
        if (rel != NULL)
            return rel;
    }
    const char *base = strrchr(image, '/');
    base = base ? base + 1 : image;
    if ((str_has_prefix(base, "vmlinuz-") || str_has_prefix(base, "vmlinux-")) && base[8])
        return xstrdup(base + 8);
    return NULL;
}

static int check_modules_dir(const char *dir, struct mvm_error **err)
{
    struct stat st;
    if (stat(dir, &st) < 0)
        return mvm_error_set(err, errno, "modules %s", dir);
    if (!S_ISDIR(st.st_mode))
        return mvm_error_set(err, ENOTDIR, "modules %s", dir);
    return 0;
}

static const char *base_name(const char *path)
{
    const char *s = strrchr(path, '/');
    return s && s[1] ? s + 1 : path;
}

/* --kernel given: trust it, and find its modules by release unless told. */
static int resolve_explicit(const char *kernel_opt, const char *modules_opt,
                            const struct mvm_kernel_search *where, struct mvm_kernel *k,
                            struct mvm_error **err)
{
    struct stat st;
    if (stat(kernel_opt, &st) < 0)
        return mvm_error_set(err, errno, "kernel %s", kernel_opt);
    if (!S_ISREG(st.st_mode))
        return mvm_error_set(err, 0, "kernel %s: not a regular file", kernel_opt);
    k->image = xstrdup(kernel_opt);
    k->release = release_of(k, kernel_opt);
    if (modules_opt != NULL) {
        k->modules_dir = xstrdup(modules_opt);
    } else if (k->release != NULL) {
        char *dir = xasprintf("%s/%s", where->modules_root, k->release);
        if (is_dir(dir))
            k->modules_dir = dir;
        else
            free(dir); /* a kernel with everything built in needs none */
    }
    if (k->release == NULL)
        k->release = xstrdup(modules_opt ? base_name(modules_opt) : "unknown");
    return 0;
}

/* A boot_dir/vmlinuz-<release> that has a modules_root/<release>. */
static bool usable(const struct mvm_kernel_search *where, const char *release)
{
    cleanup_free char *image = xasprintf("%s/vmlinuz-%s", where->boot_dir, release);
    cleanup_free char *mods = xasprintf("%s/%s", where->modules_root, release);
    return is_file(image) && is_dir(mods);
}

/* The newest usable release in boot_dir, in version order ("6.10" after
 * "6.9"); *out stays NULL when there is none. */
static int newest_release(const struct mvm_kernel_search *where, char **out, struct mvm_error **err)
{
    cleanup_dir DIR *d = opendir(where->boot_dir);
    if (d == NULL) {
        if (errno == ENOENT || errno == ENOTDIR)
            return 0;
        return mvm_error_set(err, errno, "reading %s", where->boot_dir);
    }
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        const char *rel = de->d_name + strlen("vmlinuz-");
        if (!str_has_prefix(de->d_name, "vmlinuz-") || *rel == '\0' || !usable(where, rel))
            continue;
        if (*out == NULL || strverscmp(rel, *out) > 0) {
            free(*out);
            *out = xstrdup(rel);
        }
    }
    return 0;
}

static int resolve_auto(const struct mvm_kernel_search *where, struct mvm_kernel *k,
                        struct mvm_error **err)
{
    char *release = NULL;
    if (where->running_release != NULL && usable(where, where->running_release))
        release = xstrdup(where->running_release);
    else if (newest_release(where, &release, err) < 0)
        return -1;
    if (release == NULL)
        return mvm_error_set(err, 0,
                             "no guest kernel found: no %s/vmlinuz-* with modules in %s; "
                             "install one (apt-get install " KERNEL_PACKAGE
                             ") or pass --kernel PATH",
                             where->boot_dir, where->modules_root);
    k->release = release;
    k->image = xasprintf("%s/vmlinuz-%s", where->boot_dir, release);
    k->modules_dir = xasprintf("%s/%s", where->modules_root, release);
    return 0;
}

int mvm_kernel_resolve(const char *kernel_opt, const char *modules_opt,
                       const struct mvm_kernel_search *where, struct mvm_kernel *k,
                       struct mvm_error **err)
{
    *k = (struct mvm_kernel){0};
    if (kernel_opt != NULL || modules_opt != NULL) {
        k->uid = where->uid;
        k->gid = where->gid;
    }
    if (modules_opt != NULL && check_modules_dir(modules_opt, err) < 0)
        return -1;
    int rc = kernel_opt != NULL ? resolve_explicit(kernel_opt, modules_opt, where, k, err)
                                : resolve_auto(where, k, err);
    if (rc < 0) {
        mvm_kernel_clear(k);
        return -1;
    }
    /* --modules alone: the automatic kernel, with the modules given. */
    if (kernel_opt == NULL && modules_opt != NULL) {
        free(k->modules_dir);
        k->modules_dir = xstrdup(modules_opt);
    }
    return 0;
}

#define CONFIG_FILE_MAX (4u << 20)

char *mvm_kernel_config(const struct mvm_kernel *k, const char *boot_dir)
{
    if (k->release == NULL)
        return NULL;
    const char *slash = k->image ? strrchr(k->image, '/') : NULL;
    cleanup_free char *beside =
        slash ? xasprintf("%.*s/config-%s", (int)(slash - k->image), k->image, k->release)
              : xasprintf("config-%s", k->release);
    char *config = read_file_as(k->uid, k->gid, beside, CONFIG_FILE_MAX, NULL);
    if (config != NULL)
        return config;
    cleanup_free char *boot = xasprintf("%s/config-%s", boot_dir, k->release);
    return read_file_as(k->uid, k->gid, boot, CONFIG_FILE_MAX, NULL);
}

/* The value of option on a line of its own ("CONFIG_HZ=250"), NULL when
 * the config does not set it. */
static const char *config_value(const char *config, const char *option)
{
    size_t n = strlen(option);
    for (const char *line = config; *line != '\0';) {
        if (strncmp(line, option, n) == 0 && line[n] == '=')
            return line + n + 1;
        const char *nl = strchr(line, '\n');
        if (nl == NULL)
            break;
        line = nl + 1;
    }
    return NULL;
}

unsigned mvm_kernel_config_hz(const char *config)
{
    const char *v = config_value(config, "CONFIG_HZ");
    unsigned hz = 0;
    if (v == NULL || sscanf(v, "%u", &hz) != 1 || hz < 24 || hz > 10000)
        return 0;
    return hz;
}

bool mvm_kernel_config_builtin(const char *config, const char *option)
{
    const char *v = config_value(config, option);
    return v != NULL && v[0] == 'y' && (v[1] == '\n' || v[1] == '\0');
}

/* What builds each guest module in; virtiofs needs FUSE too. */
static const struct {
    const char *module, *options[2];
} module_options[] = {
    {"virtio_mmio", {"CONFIG_VIRTIO_MMIO"}},
    {"virtio_pci", {"CONFIG_VIRTIO_PCI"}},
    {"virtio_console", {"CONFIG_VIRTIO_CONSOLE"}},
    {"virtiofs", {"CONFIG_VIRTIO_FS", "CONFIG_FUSE_FS"}},
    {"virtio_net", {"CONFIG_VIRTIO_NET"}},
    {"virtio_blk", {"CONFIG_VIRTIO_BLK"}},
    {"ext4", {"CONFIG_EXT4_FS"}},
    {"crc32c_generic", {"CONFIG_CRYPTO_CRC32C"}},
    {"overlay", {"CONFIG_OVERLAY_FS"}},
};

static bool module_builtin(const char *config, const char *module)
{
    for (size_t i = 0; i < sizeof module_options / sizeof module_options[0]; i++) {
        if (strcmp(module_options[i].module, module) != 0)
            continue;
        for (size_t j = 0; j < 2 && module_options[i].options[j]; j++)
            if (!mvm_kernel_config_builtin(config, module_options[i].options[j]))
                return false;
        return true;
    }
    return false;
}

size_t mvm_kernel_config_missing(const char *config, const char *const *mods, size_t n,
                                 struct buf *out)
{
    size_t missing = 0;
    for (size_t i = 0; i < n; i++) {
        if (module_builtin(config, mods[i]))
            continue;
        buf_printf(out, "%s%s", missing ? "," : "", mods[i]);
        missing++;
    }
    return missing;
}

/* Everything that identifies the image file's contents without reading
 * it; SHA-256, so a crafted --kernel cannot take over another kernel's
 * cache entry. */
static void vmlinux_key(const struct mvm_kernel *k, const struct stat *st, char key[33])
{
    struct mvm_sha256 c;
    mvm_sha256_init(&c);
    const char *release = k->release ? k->release : "";
    mvm_sha256_update(&c, k->image, strlen(k->image) + 1);
    mvm_sha256_update(&c, release, strlen(release) + 1);
    uint64_t meta[] = {(uint64_t)st->st_dev,          (uint64_t)st->st_ino,
                       (uint64_t)st->st_size,         (uint64_t)st->st_mtim.tv_sec,
                       (uint64_t)st->st_mtim.tv_nsec, (uint64_t)st->st_ctim.tv_sec,
                       (uint64_t)st->st_ctim.tv_nsec};
    mvm_sha256_update(&c, meta, sizeof meta);
    mvm_sha256_key(&c, key);
}

static int extract_to(const struct mvm_kernel *k, const char *out_path,
                      void (*progress)(const char *what), struct mvm_error **err)
{
    const char *image = k->image;
    size_t len = 0;
    cleanup_free char *img = read_file_as(k->uid, k->gid, image, KERNEL_FILE_MAX, &len);
    if (img == NULL)
        return mvm_error_set(err, errno, "reading %s", image);
    /* Announce only real work, and only for something that is a kernel. */
    if (progress && is_bzimage((const unsigned char *)img, len)) {
        cleanup_free char *what =
            xasprintf("extracting the guest kernel from %s (first run only)", image);
        progress(what);
    }
    struct buf vmlinux = {0};
    if (mvm_kernel_extract(img, len, &vmlinux, err) < 0) {
        buf_free(&vmlinux);
        return mvm_error_wrap(err, "%s", image);
    }
    int rc = write_file_atomic(out_path, vmlinux.data, vmlinux.len, 0644);
    /* The umask may have narrowed 0644; QEMU may run as another user. */
    if (rc < 0 || chmod(out_path, 0644) < 0)
        rc = mvm_error_set(err, errno, "writing %s", out_path);
    buf_free(&vmlinux);
    return rc;
}

int mvm_kernel_vmlinux(const struct mvm_kernel *k, const char *cache_dir,
                       void (*progress)(const char *what), char **path, struct mvm_error **err)
{
    struct stat st;
    if (stat(k->image, &st) < 0)
        return mvm_error_set(err, errno, "kernel %s", k->image);
    if (mkdir_p(cache_dir, 0700) < 0)
        return mvm_error_set(err, errno, "creating %s", cache_dir);
    char key[33];
    vmlinux_key(k, &st, key);
    char *out = xasprintf("%s/vmlinux-%s", cache_dir, key);
    if (is_file(out)) {
        mvm_cache_touch(out);
    } else if (extract_to(k, out, progress, err) < 0) {
        free(out);
        return mvm_error_wrap(err, "extracting the kernel");
    } else {
        mvm_cache_sweep(cache_dir, "vmlinux-", MVM_CACHE_MAX_AGE, out);
    }
    *path = out;
    return 0;
}
