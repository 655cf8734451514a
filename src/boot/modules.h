/* modules: which kernel modules the guest needs, in load order, resolved
 * through the kernel's modules.dep, and their contents decompressed. */
#ifndef MVM_MODULES_H
#define MVM_MODULES_H

#include <stddef.h>
#include <sys/types.h>

#include "error.h"
#include "util.h"

struct mvm_modlist {
    char **paths; /* relative to the modules dir, dependencies first */
    size_t n;
};

/* Resolves `wanted` module names ("virtio_mmio"; '-' and '_' are the same;
 * a leading '?' marks an optional module) against the text of modules.dep
 * and modules.builtin (may be NULL).  Built-in modules and their
 * dependencies are skipped.  A required module that is neither built in
 * nor listed is an error naming it.  Pure. */
int mvm_modules_resolve(const char *dep_text, const char *builtin_text, const char *const *wanted,
                        size_t nwanted, struct mvm_modlist *out, struct mvm_error **err);
void mvm_modlist_clear(struct mvm_modlist *l);

/* The module's file name without directory or .ko[.xz|.zst|.gz] suffix. */
char *mvm_module_name(const char *path);

/* The length of a module without its appended signature (len when it
 * has none, or the trailer does not add up).  The guest kernel would
 * hash and RSA-verify every signed module it loads -- hundreds of
 * milliseconds under TCG for ext4 -- and proves nothing by it: the host
 * picked the modules, and the kernel does not force signatures.  Pure. */
size_t mvm_module_unsigned_len(const void *data, size_t len);

/* Renames a module's ".BTF" section (ELF64, little-endian) so that the
 * guest kernel does not validate the module's type information when it
 * loads it.  Validating the first module's BTF parses the whole kernel's
 * (~100 ms under TCG), and each module's own costs more; only BPF
 * programs in the guest would use it.  Returns whether a section was
 * renamed; anything that is not a well-formed ELF64 object is left as
 * it is.  Pure. */
bool mvm_module_hide_btf(void *data, size_t len);

/* Reads a module file, decompressing .ko.xz / .ko.zst / .ko.gz. */
int mvm_module_read(const char *path, struct buf *out, struct mvm_error **err);
/* The same with uid/gid's rights (read_file_as). */
int mvm_module_read_as(uid_t uid, gid_t gid, const char *path, struct buf *out,
                       struct mvm_error **err);

#endif
