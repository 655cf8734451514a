/* The audit's snapshot of a share before boot: one walk, as the user, in
 * a child (run_as) that sends the record back -- every entry's type,
 * mode, owner, size, times and inode, every symlink's target, and the
 * content of the files a strict audit restores (git hooks and configs,
 * what they include, editor, direnv and agent settings, package.json).
 * Also the index the comparison looks entries up in, and the lines that
 * describe findings. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <string.h>
#include <unistd.h>

#include "audit-int.h"
#include "audit.h"
#include "util.h"

#define SNAP_MAGIC        0x3170616e736d766dULL /* "mvmsnap1" */
#define MAX_INCLUDE_FILES 64
#define SNAP_MAX_BYTES                  \
    (sizeof(struct audit_snap_header) + \
     (size_t)MVM_AUDIT_MAX_ENTRIES * sizeof(struct audit_entry) + MVM_AUDIT_MAX_POOL)

/* ---- the index ---------------------------------------------------------- */

static uint64_t hash_path(const char *path, size_t len)
{
    return fnv1a64(FNV1A64_INIT, path, len);
}

void audit_index_build(struct audit_index *ix, const struct audit_entry *e, size_t n,
                       const char *pool)
{
    size_t cap = 16;
    while (cap < 2 * n)
        cap *= 2;
    ix->slots = xcalloc(cap, sizeof *ix->slots);
    ix->mask = cap - 1;
    for (size_t i = 0; i < n; i++) {
        size_t h = hash_path(pool + e[i].path, e[i].path_len) & ix->mask;
        while (ix->slots[h])
            h = (h + 1) & ix->mask;
        ix->slots[h] = (uint32_t)i + 1;
    }
}

const struct audit_entry *audit_index_find(const struct audit_index *ix,
                                           const struct audit_entry *e, const char *pool,
                                           const char *path, size_t len)
{
    if (ix->slots == NULL)
        return NULL;
    for (size_t h = hash_path(path, len) & ix->mask; ix->slots[h]; h = (h + 1) & ix->mask) {
        const struct audit_entry *c = &e[ix->slots[h] - 1];
        if (c->path_len == len && memcmp(pool + c->path, path, len) == 0)
            return c;
    }
    return NULL;
}

void audit_index_free(struct audit_index *ix)
{
    free(ix->slots);
    ix->slots = NULL;
}

/* ---- building the snapshot (in the child) ------------------------------ */

struct builder {
    struct audit_snap_header h;
    struct audit_entry *e;
    size_t cap;
    struct buf pool;
    size_t kept;
    int rootfd;
    const char *top;
};

/* Appends to the pool; AUDIT_NO_DATA when it is full. */
static uint32_t pool_add(struct builder *b, const void *p, size_t n)
{
    if (b->pool.len + n + 1 > MVM_AUDIT_MAX_POOL) {
        b->h.incomplete = 1;
        return AUDIT_NO_DATA;
    }
    uint32_t off = (uint32_t)b->pool.len;
    buf_append(&b->pool, p, n);
    buf_append(&b->pool, "", 1); /* every string NUL-terminated */
    return off;
}

static void keep_data(struct builder *b, struct audit_entry *e, const char *data, size_t len)
{
    uint32_t off = pool_add(b, data, len);
    if (off != AUDIT_NO_DATA) {
        e->data = off;
        e->data_len = (uint32_t)len;
    }
}

/* Keeps a file's content if it fits the bounds (else a strict audit
 * reports it changed but cannot restore it). */
static void keep_file(struct builder *b, struct audit_entry *e, int dirfd, const char *name)
{
    if (e->size > MVM_AUDIT_MAX_FILE || b->kept + e->size > MVM_AUDIT_MAX_KEPT)
        return;
    size_t len = 0;
    cleanup_free char *data = audit_read_at(dirfd, name, MVM_AUDIT_MAX_FILE, &len);
    if (data == NULL)
        return;
    b->kept += len;
    keep_data(b, e, data, len);
}

static int snap_visit(void *arg, const struct audit_entry_view *v)
{
    struct builder *b = arg;
    if (b->h.n == MVM_AUDIT_MAX_ENTRIES) {
        b->h.incomplete = 1;
        return -E2BIG;
    }
    uint32_t path = pool_add(b, v->path, v->path_len);
    if (path == AUDIT_NO_DATA)
        return -E2BIG;
    if (b->h.n == b->cap) {
        b->cap = b->cap ? 2 * b->cap : 4096;
        b->e = xrealloc(b->e, b->cap * sizeof *b->e);
    }
    struct audit_entry *e = &b->e[b->h.n++];
    *e = (struct audit_entry){
        .ino = v->st.st_ino,
        .size = (uint64_t)v->st.st_size,
        .mtime_ns = audit_ns(&v->st.st_mtim),
        .ctime_ns = audit_ns(&v->st.st_ctim),
        .mode = v->st.st_mode,
        .uid = v->st.st_uid,
        .path = path,
        .path_len = (uint32_t)v->path_len,
        .data = AUDIT_NO_DATA,
        .data_len = AUDIT_NO_DATA,
    };
    if (S_ISLNK(v->st.st_mode)) {
        char target[PATH_MAX];
        ssize_t n = readlinkat(v->dirfd, v->name, target, sizeof target);
        if (n >= 0 && (size_t)n < sizeof target)
            keep_data(b, e, target, (size_t)n);
    } else if (S_ISREG(v->st.st_mode) &&
               mvm_audit_classify(v->path, false) != MVM_AUDIT_CLASS_NONE) {
        keep_file(b, e, v->dirfd, v->name);
    }
    return 0;
}

/* The content of the regular file at path, unless already kept. */
static struct audit_entry *keep_path(struct builder *b, struct audit_index *ix, const char *path)
{
    struct audit_entry *e =
        (struct audit_entry *)audit_index_find(ix, b->e, b->pool.data, path, strlen(path));
    if (e == NULL || !S_ISREG(e->mode) || audit_has_data(e))
        return e;
    const char *name;
    int dfd = audit_open_parent(b->rootfd, (dev_t)b->h.dev, path, &name);
    if (dfd >= 0) {
        keep_file(b, e, dfd, name);
        close(dfd);
    }
    return e;
}

static bool is_repo_config(const char *path)
{
    size_t n = strlen(path);
    return strcmp(path, ".git/config") == 0 ||
           (n > 12 && strcmp(path + n - 12, "/.git/config") == 0);
}

/* core.hooksPath of a work tree's .git/config, relative to the work tree
 * (as git takes it), when it is inside the share. */
static void add_hook_dir(struct builder *b, const char *config, const char *data, size_t len)
{
    cleanup_free char *hp = mvm_audit_git_hooks_path(data, len);
    if (hp == NULL || !is_repo_config(config) || b->h.nhooks == AUDIT_MAX_HOOKS)
        return;
    /* A file in the work tree's top, so that its directory is the top. */
    cleanup_free char *anchor =
        xasprintf("%.*s", (int)(strlen(config) - strlen(".git/config")), config);
    cleanup_free char *in_top = xasprintf("%sx", anchor);
    cleanup_free char *dir = mvm_audit_include_path(b->top, in_top, hp);
    if (dir == NULL)
        return;
    uint32_t off = pool_add(b, dir, strlen(dir));
    if (off != AUDIT_NO_DATA)
        b->h.hooks[b->h.nhooks++] = (struct audit_span){off, (uint32_t)strlen(dir)};
}

/* Git configs: the files they include (a strict audit restores those as
 * well) and the hook directories they name. */
static void keep_config_refs(struct builder *b)
{
    struct audit_index ix = {0};
    audit_index_build(&ix, b->e, b->h.n, b->pool.data);
    size_t n = b->h.n, followed = 0;
    struct mvm_audit_strs queue = {0};
    for (size_t i = 0; i < n; i++)
        if (S_ISREG(b->e[i].mode) &&
            mvm_audit_classify(b->pool.data + b->e[i].path, false) == MVM_AUDIT_CLASS_GIT_CONFIG)
            mvm_audit_strs_push(&queue, xstrdup(b->pool.data + b->e[i].path));
    for (size_t q = 0; q < queue.n; q++) {
        const struct audit_entry *e = keep_path(b, &ix, queue.v[q]);
        if (e == NULL || !audit_has_data(e))
            continue;
        const char *data = b->pool.data + e->data;
        struct mvm_audit_strs dangers = {0}, incs = {0};
        if (mvm_audit_git_dangers(data, e->data_len, &dangers, &incs) == 0) {
            add_hook_dir(b, queue.v[q], data, e->data_len);
            for (size_t k = 0; k < incs.n; k++) {
                char *p = mvm_audit_include_path(b->top, queue.v[q], incs.v[k]);
                if (p && !mvm_audit_strs_has(&queue, p) && followed < MAX_INCLUDE_FILES) {
                    followed++;
                    mvm_audit_strs_push(&queue, p);
                } else {
                    free(p);
                }
            }
        }
        mvm_audit_strs_clear(&dangers);
        mvm_audit_strs_clear(&incs);
    }
    mvm_audit_strs_clear(&queue);
    audit_index_free(&ix);
}

static void keep_hook_dirs(struct builder *b)
{
    for (uint32_t k = 0; k < b->h.nhooks; k++) {
        const char *dir = b->pool.data + b->h.hooks[k].off;
        for (size_t i = 0; i < b->h.n; i++) {
            struct audit_entry *e = &b->e[i];
            const char *path = b->pool.data + e->path;
            if (!S_ISREG(e->mode) || audit_has_data(e) || !mvm_audit_under(path, dir))
                continue;
            const char *name;
            int dfd = audit_open_parent(b->rootfd, (dev_t)b->h.dev, path, &name);
            if (dfd >= 0) {
                keep_file(b, e, dfd, name);
                close(dfd);
            }
        }
    }
}

struct snap_job {
    const char *dir;
};

/* In a child that is the user: walks, then writes header, entries, pool. */
static int snapshot_child(void *arg, int out_fd)
{
    const struct snap_job *job = arg;
    struct builder b = {.h = {.magic = SNAP_MAGIC}, .top = job->dir};
    b.rootfd = open(job->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    struct stat st;
    if (b.rootfd < 0 || fstat(b.rootfd, &st) < 0)
        return errno;
    b.h.dev = st.st_dev;
    b.h.ino = st.st_ino;
    bool incomplete = false;
    int rc = audit_walk(b.rootfd, st.st_dev, snap_visit, &b, &incomplete);
    if (rc < 0 && rc != -E2BIG)
        return -rc;
    if (incomplete)
        b.h.incomplete = 1;
    keep_config_refs(&b);
    keep_hook_dirs(&b);
    b.h.pool_len = b.pool.len;
    if (write_all(out_fd, &b.h, sizeof b.h) < 0 ||
        write_all(out_fd, b.e, b.h.n * sizeof *b.e) < 0 ||
        write_all(out_fd, b.pool.data, b.pool.len) < 0)
        return errno;
    return 0;
}

/* ---- the snapshot, in mvm ------------------------------------------------ */

static int snap_decode(struct mvm_audit_snap *s, struct buf *out)
{
    if (out->len < sizeof s->h)
        return -1;
    memcpy(&s->h, out->data, sizeof s->h);
    if (s->h.magic != SNAP_MAGIC || s->h.n > MVM_AUDIT_MAX_ENTRIES ||
        s->h.pool_len > MVM_AUDIT_MAX_POOL || s->h.nhooks > AUDIT_MAX_HOOKS ||
        out->len != sizeof s->h + s->h.n * sizeof(struct audit_entry) + s->h.pool_len)
        return -1;
    s->raw = steal_pointer(&out->data);
    s->e = (const struct audit_entry *)(s->raw + sizeof s->h);
    s->pool = s->raw + sizeof s->h + s->h.n * sizeof(struct audit_entry);
    for (size_t i = 0; i < s->h.n; i++) {
        const struct audit_entry *e = &s->e[i];
        if ((uint64_t)e->path + e->path_len >= s->h.pool_len ||
            (audit_has_data(e) && (uint64_t)e->data + e->data_len >= s->h.pool_len))
            return -1;
    }
    for (uint32_t k = 0; k < s->h.nhooks; k++)
        if ((uint64_t)s->h.hooks[k].off + s->h.hooks[k].len >= s->h.pool_len)
            return -1;
    audit_index_build(&s->index, s->e, s->h.n, s->pool);
    return 0;
}

int mvm_audit_snapshot(const char *dir, uid_t uid, gid_t gid, struct mvm_audit_snap **snap,
                       struct mvm_error **err)
{
    struct mvm_audit_snap *s = xcalloc(1, sizeof *s);
    s->dir = xstrdup(dir);
    s->uid = uid;
    s->gid = gid;
    struct snap_job job = {dir};
    struct buf out = {0};
    int rc = run_as(uid, gid, snapshot_child, &job, &out, SNAP_MAX_BYTES);
    int e = rc > 0 ? rc : errno;
    if (rc == 0 && snap_decode(s, &out) < 0) {
        rc = -1;
        e = EPROTO;
    }
    buf_free(&out);
    if (rc != 0) {
        mvm_audit_snap_free(s);
        return mvm_error_set(err, e, "taking the audit's snapshot of %s", dir);
    }
    *snap = s;
    return 0;
}

void mvm_audit_snap_free(struct mvm_audit_snap *snap)
{
    if (snap == NULL)
        return;
    audit_index_free(&snap->index);
    free(snap->raw);
    free(snap->dir);
    free(snap);
}

size_t mvm_audit_snap_entries(const struct mvm_audit_snap *snap, bool *incomplete)
{
    if (incomplete)
        *incomplete = snap->h.incomplete != 0;
    return snap->h.n;
}

bool audit_in_hook_dir(const struct mvm_audit_snap *snap, const char *path)
{
    for (uint32_t k = 0; k < snap->h.nhooks; k++)
        if (mvm_audit_under(path, snap->pool + snap->h.hooks[k].off))
            return true;
    return false;
}

/* ---- describing findings ------------------------------------------------ */

static const char *what_of(const struct mvm_audit_finding *f)
{
    static const char *const what[MVM_AUDIT_NKINDS] = {
        [MVM_AUDIT_LINK_OUT] = "symlink leading out of the share",
        [MVM_AUDIT_HOOK] = "git hook",
        [MVM_AUDIT_GIT_CONFIG] = "git setting that runs a program",
        [MVM_AUDIT_GIT_LINK] = ".git that is not a directory (git would use another repository)",
        [MVM_AUDIT_TOOL] = "configuration that editors, direnv or agents act on",
        [MVM_AUDIT_NPM_SCRIPT] = "npm install script",
        [MVM_AUDIT_EXEC] = "executable file",
        [MVM_AUDIT_SETUID] = "setuid/setgid file",
        [MVM_AUDIT_DEVICE] = "device node",
        [MVM_AUDIT_NOT_OWNED] = "file not owned by you",
        [MVM_AUDIT_UNREADABLE] = "directory mvm cannot read (not audited)",
    };
    return (unsigned)f->kind < MVM_AUDIT_NKINDS ? what[f->kind] : "?";
}

static char *action_of(const struct mvm_audit_finding *f)
{
    switch (f->action) {
    case MVM_AUDIT_RESTORED:
        return xstrdup(" (restored)");
    case MVM_AUDIT_REMOVED:
        return xstrdup(" (removed)");
    case MVM_AUDIT_CLEARED:
        return xstrdup(f->kind == MVM_AUDIT_EXEC ? " (no longer executable)"
                                                 : " (setuid/setgid bits removed)");
    case MVM_AUDIT_FAILED:
        return f->error ? xasprintf(" (could not fix it: %s)", strerror(f->error))
                        : xstrdup(" (not restored: mvm kept no copy of it)");
    default:
        return xstrdup("");
    }
}

char *mvm_audit_describe(const struct mvm_audit_finding *f)
{
    cleanup_free char *action = action_of(f);
    const char *detail = f->detail ? f->detail : "";
    int dlen = (int)strnlen(detail, 200);
    char *line = xasprintf("%s: %s %s%s%.*s%s%s", f->path, f->added ? "new" : "changed", what_of(f),
                           f->detail ? ": " : "", dlen, detail, detail[dlen] ? "..." : "", action);
    sanitize_text(line);
    return line;
}

const char *mvm_audit_kind_name(enum mvm_audit_kind kind)
{
    static const char *const names[MVM_AUDIT_NKINDS] = {
        [MVM_AUDIT_LINK_OUT] = "link-out",     [MVM_AUDIT_HOOK] = "hook",
        [MVM_AUDIT_GIT_CONFIG] = "git-config", [MVM_AUDIT_GIT_LINK] = "git-link",
        [MVM_AUDIT_TOOL] = "tool-config",      [MVM_AUDIT_NPM_SCRIPT] = "npm-script",
        [MVM_AUDIT_EXEC] = "executable",       [MVM_AUDIT_SETUID] = "setuid",
        [MVM_AUDIT_DEVICE] = "device",         [MVM_AUDIT_NOT_OWNED] = "not-owned",
        [MVM_AUDIT_UNREADABLE] = "unreadable",
    };
    return (unsigned)kind < MVM_AUDIT_NKINDS ? names[kind] : "unknown";
}

const char *mvm_audit_action_name(enum mvm_audit_action action)
{
    switch (action) {
    case MVM_AUDIT_REPORTED:
        return "reported";
    case MVM_AUDIT_RESTORED:
        return "restored";
    case MVM_AUDIT_REMOVED:
        return "removed";
    case MVM_AUDIT_CLEARED:
        return "cleared";
    case MVM_AUDIT_FAILED:
        return "failed";
    }
    return "unknown";
}
