/* audit: what the guest left in a read-write share that the host would
 * run later, found after the VM is gone.
 *
 * Owns: the snapshot of a share taken before boot (path, type, mode,
 * owner, size, times and inode of every entry; the content of the few
 * files that make the host run something: git hooks and config files,
 * .gitmodules, editor, direnv and agent settings, package.json), the
 * comparison with the tree after the run, and the fixes: setuid/setgid
 * bits and device nodes the guest made are removed in every mode;
 * strict mode also restores what changed and removes what was added.
 *
 * Both walks run in a child with the invoking user's exact rights
 * (run_as), never follow a symlink (openat with O_NOFOLLOW, fstatat with
 * AT_SYMLINK_NOFOLLOW), never cross into another file system (st_dev),
 * and keep memory bounded (MVM_AUDIT_MAX_ENTRIES and friends).  Every
 * name is treated as hostile: mvm_audit_describe() sanitizes.
 *
 * The rules (which paths, which git variables, which npm scripts) and
 * the git config parser are pure functions, unit-tested and fuzzed. */
#ifndef MVM_AUDIT_H
#define MVM_AUDIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "error.h"

/* Bounds: past them the snapshot is incomplete (entries it does not
 * know are reported as new but never removed), and files too large to
 * keep are reported, not restored. */
#define MVM_AUDIT_MAX_ENTRIES  (1u << 20)
#define MVM_AUDIT_MAX_POOL     (128u << 20) /* paths, link targets, kept files */
#define MVM_AUDIT_MAX_KEPT     (16u << 20)  /* contents kept for restoring */
#define MVM_AUDIT_MAX_FILE     (1u << 20)   /* one kept or parsed file */
#define MVM_AUDIT_MAX_DEPTH    256          /* directories below the top */
#define MVM_AUDIT_MAX_FINDINGS 10000

/* ---- the rules (audit-rules.c, gitconfig.c): pure ------------------- */

/* One variable of a git config file: section and key lowercased (git
 * compares them so), subsection as written (NULL when there is none),
 * value NULL for a bare key (boolean true). */
struct mvm_gitconfig_var {
    const char *section, *subsection, *key, *value;
    unsigned line;
};
/* Returns non-zero to stop the parse. */
typedef int (*mvm_gitconfig_fn)(void *arg, const struct mvm_gitconfig_var *var);

/* Parses git config syntax exactly as git does and calls fn for each
 * variable.  Returns 0, or -1 at the first syntax error (git refuses the
 * whole file then) with *err_line near it. */
int mvm_gitconfig_parse(const char *text, size_t len, mvm_gitconfig_fn fn, void *arg,
                        unsigned *err_line);

/* A list of strings the caller owns. */
struct mvm_audit_strs {
    char **v;
    size_t n;
};
/* Appends x (taking it). */
void mvm_audit_strs_push(struct mvm_audit_strs *s, char *x);
void mvm_audit_strs_clear(struct mvm_audit_strs *s);
/* Whether s holds exactly the string x. */
bool mvm_audit_strs_has(const struct mvm_audit_strs *s, const char *x);

/* The variables of a git config file (.git/config, an included file,
 * .gitmodules) that make git run a program or read another file, each as
 * "name = value" ("name" alone for a bare key): core.hooksPath,
 * core.fsmonitor, core.sshCommand, core.pager, core.editor, core.worktree,
 * filter, diff and merge drivers, credential helpers, aliases starting
 * with '!', pager.*, include.path, includeIf.*.path, submodule.*.update
 * with '!', URLs git would run (ext::, a leading '-'), ... .  The include
 * paths also go to `includes` (NULL: not wanted).  Returns 0, or -1 when
 * git would refuse the file (nothing is added then). */
int mvm_audit_git_dangers(const char *text, size_t len, struct mvm_audit_strs *dangers,
                          struct mvm_audit_strs *includes);

/* The value git takes for core.hooksPath from this file (the last one),
 * or NULL. */
char *mvm_audit_git_hooks_path(const char *text, size_t len);

/* package.json's scripts that npm runs on install -- preinstall,
 * install, postinstall, preprepare, prepare, postprepare, prepublish --
 * as "scripts.NAME = VALUE".  Returns 0, or -1 when npm would refuse the
 * file (not JSON, not an object). */
int mvm_audit_npm_scripts(const char *text, size_t len, struct mvm_audit_strs *out);

/* Whether a symlink at path (relative to the share's top) whose target
 * is target leads out of the share: absolute, or ".." past the top. */
bool mvm_audit_link_leaves(const char *path, const char *target);

/* The file an include path in config file `config` (relative to the
 * share's top `top`, an absolute host path) names, relative to the top;
 * NULL when it is outside the share (~, absolute elsewhere, ".." past
 * the top) or empty.  Lexical, like git's own. */
char *mvm_audit_include_path(const char *top, const char *config, const char *inc);

/* What a path in the share is to the audit (relative to the top; is_dir
 * for a directory). */
enum mvm_audit_class {
    MVM_AUDIT_CLASS_NONE,
    MVM_AUDIT_CLASS_HOOK,       /* under .git/hooks (any repository; not *.sample) */
    MVM_AUDIT_CLASS_GIT_CONFIG, /* .git/config, .git/modules/.../config, .gitmodules */
    MVM_AUDIT_CLASS_GIT_LINK,   /* a .git that is not a directory */
    MVM_AUDIT_CLASS_TOOL,       /* .envrc, .vscode, .idea, .claude, .devcontainer, ... */
    MVM_AUDIT_CLASS_NPM,        /* package.json outside node_modules */
};
enum mvm_audit_class mvm_audit_classify(const char *path, bool is_dir);

/* Whether path is dir or below it (both relative to the top). */
bool mvm_audit_under(const char *path, const char *dir);

/* ---- snapshot and audit (audit.c, audit-walk.c) --------------------- */

struct mvm_audit_snap;

/* Records dir's tree, as uid/gid.  dir is absolute, symlinks resolved. */
int mvm_audit_snapshot(const char *dir, uid_t uid, gid_t gid, struct mvm_audit_snap **snap,
                       struct mvm_error **err);
void mvm_audit_snap_free(struct mvm_audit_snap *snap);
/* How many entries the snapshot holds; whether it stopped at a bound. */
size_t mvm_audit_snap_entries(const struct mvm_audit_snap *snap, bool *incomplete);

enum mvm_audit_kind {
    MVM_AUDIT_LINK_OUT,   /* a symlink whose target leaves the share */
    MVM_AUDIT_HOOK,       /* a file where git looks for hooks */
    MVM_AUDIT_GIT_CONFIG, /* a git variable that runs a program (detail) */
    MVM_AUDIT_GIT_LINK,   /* .git that is not a directory: git goes elsewhere */
    MVM_AUDIT_TOOL,       /* a file an editor, direnv or agent runs from */
    MVM_AUDIT_NPM_SCRIPT, /* an install script in package.json (detail) */
    MVM_AUDIT_EXEC,       /* a file made executable */
    MVM_AUDIT_SETUID,     /* setuid or setgid bit */
    MVM_AUDIT_DEVICE,     /* a device node */
    MVM_AUDIT_NOT_OWNED,  /* owned by someone else than the user */
    MVM_AUDIT_UNREADABLE, /* a directory the user cannot read: not audited */
    MVM_AUDIT_NKINDS
};

enum mvm_audit_action {
    MVM_AUDIT_REPORTED, /* left as it is */
    MVM_AUDIT_RESTORED, /* back to its content (and mode) before the run */
    MVM_AUDIT_REMOVED,
    MVM_AUDIT_CLEARED, /* the bits removed (setuid/setgid, or executable) */
    MVM_AUDIT_FAILED,  /* a fix was due and failed (error) */
};

struct mvm_audit_finding {
    enum mvm_audit_kind kind;
    enum mvm_audit_action action;
    bool added;   /* not there before the run */
    int error;    /* errno of a failed fix */
    char *path;   /* relative to the share's top */
    char *detail; /* the variable, the script, the link's target; or NULL */
};

struct mvm_audit_report {
    struct mvm_audit_finding *findings;
    size_t n;
    size_t dropped;  /* findings past MVM_AUDIT_MAX_FINDINGS */
    bool incomplete; /* a bound was hit: the tree was not all compared */
};

/* Walks the share of snap again, as its uid/gid, and lists what the
 * guest created or changed that would act on the host; removes the
 * setuid/setgid bits and device nodes it made, and with strict restores
 * what changed and removes what was added.  The VM must be gone. */
int mvm_audit_run(const struct mvm_audit_snap *snap, bool strict, struct mvm_audit_report *r,
                  struct mvm_error **err);
void mvm_audit_report_clear(struct mvm_audit_report *r);

/* Without a snapshot (--audit off): removes the setuid/setgid bits and
 * device nodes of the entries of dir changed since since_ns (CLOCK_REALTIME;
 * by ctime, which the guest cannot set), as uid/gid, and lists them. */
int mvm_audit_sweep(const char *dir, uid_t uid, gid_t gid, int64_t since_ns,
                    struct mvm_audit_report *r, struct mvm_error **err);

/* One line for f, sanitized: ".git/hooks/pre-commit: new git hook
 * (removed)". */
char *mvm_audit_describe(const struct mvm_audit_finding *f);
/* Stable names for --result: "link-out", "hook", ...; "reported",
 * "restored", ... */
const char *mvm_audit_kind_name(enum mvm_audit_kind kind);
const char *mvm_audit_action_name(enum mvm_audit_action action);

#endif
