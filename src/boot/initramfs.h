/* initramfs: the guest's initramfs = a cached base part (mvm-init plus
 * the modules, lz4-legacy compressed) + a small per-session part (the
 * session description and allowlisted host /etc files, uncompressed).
 * The kernel unpacks concatenated archives in order. */
#ifndef MVM_INITRAMFS_H
#define MVM_INITRAMFS_H

#include <stddef.h>

#include "error.h"
#include "kernel.h"
#include "modules.h"
#include "util.h"

struct mvm_initramfs_base {
    const struct mvm_kernel *kernel;
    const char *const *modules; /* wanted names, as for mvm_modules_resolve */
    size_t nmodules;
    /* Filesystems an image's root may need (--image: xfs, btrfs), each
     * optional: their modules, but for those the others need too, are
     * loaded only when the root is one of them. */
    const char *const *fs_modules;
    size_t nfs_modules;
    const void *init; /* the mvm-init binary */
    size_t init_len;
    const char *init_key; /* SHA-256 of init, computed at build time; NULL: hash it here */
    const char *cache_dir;
    void (*progress)(const char *what); /* may be NULL; called before a slow build */
};

/* Path of the cached base part, building it when missing.  The key covers
 * the kernel release, modules dir, the module list, the files' sizes and
 * mtimes, and mvm-init's bytes.  Layout inside:
 *   /init                    mvm-init
 *   /dev/console             char 5:1 (so PID 1 has a console)
 *   /mvm/modules/order       one file name per line, load order
 *   /mvm/modules/fs-order    the same for the fs_modules' own (optional)
 *   /mvm/modules/NAME.ko     decompressed modules */
int mvm_initramfs_base_path(const struct mvm_initramfs_base *spec, char **path,
                            struct mvm_error **err);

/* The modules of k that `wanted` (as for mvm_modules_resolve) needs, from
 * its modules.dep and modules.builtin read with k's uid/gid; none when k
 * has no modules directory. */
int mvm_initramfs_modules(const struct mvm_kernel *k, const char *const *wanted, size_t nwanted,
                          struct mvm_modlist *mods, struct mvm_error **err);

/* Appends the per-session part to `out`: /mvm/session.json and, under
 * /mvm/etc/, the host's allowlisted /etc entries read from etc_root (a
 * directory, "/etc" in production; symlinks kept as symlinks; missing
 * entries skipped; nothing outside the allowlist). */
int mvm_initramfs_session_part(const char *session_json, const char *etc_root, struct buf *out,
                               struct mvm_error **err);

/* The allowlist itself, NULL-terminated, paths relative to /etc. */
extern const char *const mvm_etc_allowlist[];

/* Writes base + session part to out_path (mode 0644, created new). */
int mvm_initramfs_write(const char *base_path, const struct buf *session_part, const char *out_path,
                        struct mvm_error **err);

#endif
