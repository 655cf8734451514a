/* share: host directories served to the guest over virtiofs.
 *
 * Owns: finding virtiofsd (QEMU 7.2's C one or the Rust one), starting
 * one per share on an already-listening socket (--fd=, so nothing is left
 * in the filesystem), the isolation mvm adds around it (a read-only bind
 * mount in a private mount namespace for read-only shares; a user
 * namespace for all, mapping only the invoking user for read-write ones),
 * and the
 * rules for the automatic share of the working directory.  Knows nothing
 * about the CLI or the session. */
#ifndef MVM_SHARE_H
#define MVM_SHARE_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "error.h"
#include "jail.h"

enum mvm_virtiofsd_flavor { MVM_VIRTIOFSD_C, MVM_VIRTIOFSD_RUST };

struct mvm_virtiofsd {
    char *path;
    enum mvm_virtiofsd_flavor flavor;
};

/* Looks for virtiofsd in the places Debian, Fedora and QEMU install it;
 * tells the flavours apart by their options (read from the binary). */
int mvm_virtiofsd_find(struct mvm_virtiofsd *v, struct mvm_error **err);
void mvm_virtiofsd_clear(struct mvm_virtiofsd *v);

/* Who owns what the guest writes: every file created through a
 * read-write share belongs to uid/gid on the host.  guest_uid/guest_gid is
 * the guest identity mapped to it (the user, or 0 with --root); any other
 * guest identity is unmapped (nobody) and cannot create files. */
struct mvm_share_owner {
    uid_t uid, guest_uid;
    gid_t gid, guest_gid;
};

struct mvm_share {
    char *host;  /* absolute, symlinks resolved */
    char *guest; /* absolute path in the guest */
    bool ro;
    bool system; /* the host's /usr: served with the host's ids, read-only */
    char *tag;   /* virtiofs tag */
    int qemu_fd; /* connected vhost-user socket for QEMU, or -1 */
    int log_fd;  /* read end of virtiofsd's stderr, or -1 */
    struct mvm_child proc;
};

void mvm_share_init(struct mvm_share *sh, const char *host, const char *guest, bool ro,
                    const char *tag);

/* Starts virtiofsd for sh.  sock_dir is a private directory (0700) for
 * the moment the listening socket needs a name; the name is unlinked
 * before this returns.  On success sh->qemu_fd is ready for
 * -chardev socket,fd=. */
int mvm_share_start(struct mvm_share *sh, const struct mvm_virtiofsd *v, const char *sock_dir,
                    const struct mvm_share_owner *owner, struct mvm_error **err);

/* Kills virtiofsd (if still running) and closes the fds; idempotent. */
void mvm_share_stop(struct mvm_share *sh);
void mvm_share_clear(struct mvm_share *sh);

/* The directory to share automatically for cwd: the top of its git
 * repository (so the guest sees .git), else cwd itself.  Refused -- with
 * an error suggesting --no-cwd or a project directory -- when it is /,
 * a system directory, inside /etc, /boot, /proc, /sys or /dev, one of
 * `homes` or a parent of one, or holds .ssh, .gnupg, .aws, .kube or
 * .password-store.  `homes` are the home directories of real users. */
int mvm_share_auto_dir(const char *cwd, char *const *homes, size_t nhomes, char **dir,
                       struct mvm_error **err);

/* Whether uid/gid (no supplementary groups) can read and enter dir, and
 * write it unless ro, as virtiofsd will. */
int mvm_share_check_access(const char *dir, bool ro, uid_t uid, gid_t gid, struct mvm_error **err);

#endif
