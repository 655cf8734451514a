/* kernel: finds the guest kernel and its modules, and extracts the
 * uncompressed vmlinux (booted through its PVH entry, which saves the
 * ~0.75 s of in-guest decompression under TCG), cached on disk. */
#ifndef MVM_KERNEL_H
#define MVM_KERNEL_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "error.h"
#include "util.h"

struct mvm_kernel {
    char *image;       /* the vmlinuz (or vmlinux) given or found */
    char *release;     /* e.g. "6.1.0-56-amd64" */
    char *modules_dir; /* e.g. /lib/modules/6.1.0-56-amd64, or NULL */
    /* Whose rights read the image and modules: the invoking user's when
     * they named them (--kernel, --modules), else 0 (mvm's). */
    uid_t uid;
    gid_t gid;
};

/* Where to look; tests point these at fixtures. */
struct mvm_kernel_search {
    const char *boot_dir;        /* "/boot" */
    const char *modules_root;    /* "/lib/modules" */
    const char *running_release; /* uname -r */
    uid_t uid;                   /* reads --kernel and --modules (see above) */
    gid_t gid;
};

/* --kernel PATH (may be NULL) with --modules DIR (may be NULL); else
 * boot_dir/vmlinuz-<running> when its modules exist; else the newest
 * boot_dir/vmlinuz-* (version order) with a modules_root/<release>.  The
 * error for "nothing usable" names the Debian package to install.
 * With --kernel, the release comes from the image header (else its
 * vmlinuz-/vmlinux- file name, else the --modules DIR's name, else
 * "unknown"); without --modules, modules_dir is modules_root/<release> if
 * that exists, else NULL.  With --modules alone, the kernel is found as
 * above and DIR replaces its modules_dir. */
int mvm_kernel_resolve(const char *kernel_opt, const char *modules_opt,
                       const struct mvm_kernel_search *where, struct mvm_kernel *k,
                       struct mvm_error **err);
void mvm_kernel_clear(struct mvm_kernel *k);

/* The kernel's build configuration (the text of its .config): the
 * config-<release> beside the image (where contrib/kernel/build.sh
 * installs one), else boot_dir/config-<release> (Debian's), read with
 * k's rights; NULL when neither is there. */
char *mvm_kernel_config(const struct mvm_kernel *k, const char *boot_dir);

/* CONFIG_HZ in a config's text; 0 when it has none or an implausible one. */
unsigned mvm_kernel_config_hz(const char *config);

/* Whether a config's text builds option ("CONFIG_VIRTIO_NET") in (=y). */
bool mvm_kernel_config_builtin(const char *config, const char *option);

/* The guest modules among mods (names as session_modules() gives them)
 * that a config does not build in, appended to out comma-separated;
 * returns how many.  A name mvm does not know counts as not built in. */
size_t mvm_kernel_config_missing(const char *config, const char *const *mods, size_t n,
                                 struct buf *out);

/* Reads the release string from a bzImage's header (kernel_version
 * field), e.g. "6.1.0-56-amd64".  Returns NULL when it has none. */
char *mvm_kernel_image_release(const void *img, size_t len);

/* bzImage -> ELF vmlinux (payload located through the boot header, format
 * by magic).  An ELF input is copied through unchanged. */
int mvm_kernel_extract(const void *img, size_t len, struct buf *vmlinux, struct mvm_error **err);

/* Path of the cached vmlinux for k under cache_dir (created 0700 if
 * needed), extracting it on first use.  The key covers the image's path,
 * size and mtime; a partial file never survives a failure.  progress (may
 * be NULL) is called before a (slow) extraction. */
int mvm_kernel_vmlinux(const struct mvm_kernel *k, const char *cache_dir,
                       void (*progress)(const char *what), char **path, struct mvm_error **err);

#endif
