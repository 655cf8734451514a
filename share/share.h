/* share: host directories served to the guest over virtiofs.
 *
 * Owns: finding virtiofsd (QEMU 7.2's C one or the Rust one), starting
 * one per share on an already-listening socket (--fd=, so nothing is left
 * in the filesystem), the isolation mvm adds around it, and the rules for
 * the automatic share of the working directory.  Knows nothing about the
 * CLI or the session.
 *
 * Isolation: each virtiofsd gets a private mount namespace in which the
 * share is mounted at a fixed path (so no host path reaches its command
 * line), read-only for read-only shares; a user namespace and an IPC
 * namespace of its own; and host ids that are never root's: the invoking
 * user's for their shares, else ids of mvm's helper block, onto which an
 * idmapped mount shifts the files' owners (the system's /usr, and shares
 * of a root invocation). */
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

/* Host ids a session's virtiofsd may run as: a block per session, outside
 * every range of real accounts.  The system tree's server takes the first
 * MVM_SHARE_SYSTEM_IDS (the host's ids 0..1023 appear to it shifted onto
 * them); a share whose owner is root, one id after those. */
#define MVM_SHARE_SYSTEM_IDS 1024u
#define MVM_SHARE_IDS        2048u

struct mvm_share {
    char *host;  /* absolute, symlinks resolved */
    char *guest; /* absolute path in the guest */
    bool ro;
    bool system; /* the host's /usr: served with the host's ids, read-only */
    /* Serve the file systems mounted below host too (the system tree
     * always; a user's share only when asked: a mount there may be
     * something the user never meant to hand over). */
    bool submounts;
    /* Served read-only; the guest puts a writable overlay on it whose
     * changes stay in the guest (on its scratch disk). */
    bool overlay;
    char *tag;     /* virtiofs tag */
    int qemu_fd;   /* connected vhost-user socket for QEMU, or -1 */
    int log_fd;    /* read end of virtiofsd's stderr, or -1 */
    bool no_idmap; /* system tree served without idmapped mounts */
    /* Disk limits apply (guard.h): virtiofsd may not fallocate or
     * copy_file_range, the two requests that allocate without bound in
     * one go; the guest kernel then falls back to writes it can pace. */
    bool bounded;
    struct mvm_child proc;
};

void mvm_share_init(struct mvm_share *sh, const char *host, const char *guest, bool ro,
                    const char *tag);

/* Starts virtiofsd for sh.  sock_dir is a private directory (0700) for
 * the moment the listening socket needs a name; the name is unlinked
 * before this returns.  server_id is the host uid/gid it runs as where
 * the owner is not the invoking user (see MVM_SHARE_IDS): the first of
 * the block for the system tree, another one for each other share.  On
 * success sh->qemu_fd is ready for -chardev socket,fd=. */
int mvm_share_start(struct mvm_share *sh, const struct mvm_virtiofsd *v, const char *sock_dir,
                    const struct mvm_share_owner *owner, uid_t server_id, struct mvm_error **err);

/* virtiofsd's argv for serving dir on the listening socket fd, or NULL
 * (with err) when this flavour cannot take dir.  Pure.  Any byte of dir
 * reaches virtiofsd as that byte: escaped for the C flavour's -o, a
 * --shared-dir= of its own for the Rust one.  Free with mvm_strv_free(). */
char **mvm_virtiofsd_argv(const struct mvm_virtiofsd *v, const char *dir, bool ro, int fd,
                          struct mvm_error **err);

/* Whether dir's file system takes the idmapped mount the system tree's
 * server is given: a detached, idmapped clone of it is made and dropped.
 * Needs root (mvm doctor). */
int mvm_share_idmap_probe(const char *dir, struct mvm_error **err);

/* Kills virtiofsd (if still running) and closes the fds; idempotent. */
void mvm_share_stop(struct mvm_share *sh);
void mvm_share_clear(struct mvm_share *sh);

/* The directory to share automatically for cwd: the top of its git
 * repository (so the guest sees .git) when that .git belongs to uid (the
 * invoking user), else cwd itself -- with *note saying why (free it; NULL
 * when there is nothing to say).  Refused -- with
 * an error suggesting --no-cwd or a project directory -- when it is /,
 * a system directory, inside /etc, /boot, /proc, /sys or /dev, one of
 * `homes` or a parent of one, or holds .ssh, .gnupg, .aws, .kube or
 * .password-store.  `homes` are the home directories of real users. */
int mvm_share_auto_dir(const char *cwd, uid_t uid, char *const *homes, size_t nhomes, char **dir,
                       char **note, struct mvm_error **err);

/* The automatic share's refusals, for an explicit read-write --share:
 * an error naming the directory, why, and the ways out (:ro, a
 * subdirectory, --force-share). */
int mvm_share_check_rw(const char *dir, char *const *homes, size_t nhomes, struct mvm_error **err);

/* Whether uid/gid (no supplementary groups) can read and enter dir, and
 * write it unless ro, as virtiofsd will. */
int mvm_share_check_access(const char *dir, bool ro, uid_t uid, gid_t gid, struct mvm_error **err);

/* program.c: where the command is installed, and what the guest needs
 * to run it.  Works with the caller's identity (call it as the user). */
struct mvm_program_in {
    const char *cmd;  /* argv[0]: a name, or an absolute path */
    const char *path; /* the PATH to search (mvm_program_user_path) */
    const char *home; /* the user's home */
    /* Host directories the guest already sees at the same path (its
     * shares); /usr always counts. */
    const char *const *visible;
    size_t nvisible;
};
struct mvm_program {
    char *found, *real; /* where cmd is on the PATH, and what that is; NULL: not found */
    char **dirs;        /* to share read-only, at the same path */
    size_t ndirs;
    char **links;  /* pairs: a path to create in the guest, its target */
    size_t nlinks; /* strings in links: twice the links */
    char **bins;   /* directories to put first on the guest's PATH, in order */
    size_t nbins;
};

/* Finds cmd on in->path and picks the least that makes it run in the
 * guest: nothing when it is under /usr or a share; else its installation
 * -- a node prefix's package (or the whole node installation for nvm),
 * a Python virtual environment, else the directory of the program file
 * itself (the native installer's version directory) -- plus the same for
 * the interpreter a script names (#!/usr/bin/env node).  The name found
 * on the PATH becomes a link in the guest, its directory first on the
 * PATH.  Refused, with an error suggesting --share or --no-resolve: a
 * directory that is the home or holds it, a system directory, or one
 * holding or inside credentials (.ssh, .gnupg, .aws, .claude, .config,
 * ...).  A cmd not found is no error (p->found NULL). */
int mvm_program_resolve(const struct mvm_program_in *in, struct mvm_program *p,
                        struct mvm_error **err);
void mvm_program_clear(struct mvm_program *p);

/* login_path's absolute entries (version managers' .../shims directories
 * are skipped when searching: a shim needs the manager's whole tree), then those well-known
 * per-user directories that exist -- ~/.local/bin, ~/bin, ~/.npm-global/bin, pnpm, bun, volta,
 * deno, cargo, and nvm's default node -- which shells add in ~/.bashrc, where a non-interactive
 * login shell does not look. */
char *mvm_program_user_path(const char *home, const char *login_path);

#endif
