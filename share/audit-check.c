/* The audit after the run: the share walked again, as the user, in a
 * child (run_as) that holds the snapshot (inherited across fork).  Each
 * entry that is new or changed (inode, type, mode, owner, size, mtime or
 * ctime -- the guest can set mtime back, never ctime) is checked against
 * the rules; git configs are checked with the files they include.  The
 * child fixes what it found -- setuid/setgid bits and device nodes in
 * every mode, the rest in strict mode, children before their parents --
 * and sends the findings back. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <string.h>
#include <unistd.h>

#include "audit-int.h"
#include "audit.h"
#include "util.h"

#define OUT_MAGIC         0x3174756f6d766dULL /* "mvmout1" */
#define OUT_MAX           (32u << 20)
#define MAX_CONFIG_FILES  256
#define MAX_INCLUDE_DEPTH 10 /* git's own limit */
#define MAX_DETAIL        512
#define BIT(k)            (1u << (k))
/* What strict mode takes back: the entry restored or removed. */
#define STRICT_KINDS                                                             \
    (BIT(MVM_AUDIT_LINK_OUT) | BIT(MVM_AUDIT_HOOK) | BIT(MVM_AUDIT_GIT_CONFIG) | \
     BIT(MVM_AUDIT_GIT_LINK) | BIT(MVM_AUDIT_TOOL) | BIT(MVM_AUDIT_NPM_SCRIPT) | \
     BIT(MVM_AUDIT_NOT_OWNED))

struct status {
    const struct audit_entry *old;
    bool added, changed, unknown;
};

/* One flagged entry and what was done to it. */
struct item {
    char *path;
    uint32_t kinds;
    struct status s;
    enum mvm_audit_action whole; /* REMOVED/RESTORED/FAILED, or REPORTED: untouched */
    int error;
    enum mvm_audit_action suid, exec; /* the bits: CLEARED/FAILED, or REPORTED */
    int suid_error, exec_error;
};

struct pending {
    size_t item;
    enum mvm_audit_kind kind;
    char *detail;
};

struct checker {
    const struct mvm_audit_snap *snap;
    bool strict;
    int rootfd;
    dev_t dev;
    struct item *items;
    size_t nitems, cap, post; /* items from post on: found after the walk */
    struct pending *pend;
    size_t npend, pcap;
    size_t cur; /* the item of the entry being visited, or SIZE_MAX */
    struct mvm_audit_strs configs;
    size_t dropped;
    bool incomplete;
    int64_t since; /* a sweep (no snapshot): entries changed since then */
    bool sweep;
};

static bool differs(const struct audit_entry *o, const struct stat *st)
{
    return o->ino != st->st_ino || o->mode != st->st_mode || o->uid != st->st_uid ||
           o->size != (uint64_t)st->st_size || o->mtime_ns != audit_ns(&st->st_mtim) ||
           o->ctime_ns != audit_ns(&st->st_ctim);
}

static struct status status_of(const struct checker *c, const char *path, size_t len,
                               const struct stat *st)
{
    const struct mvm_audit_snap *snap = c->snap;
    struct status s = {audit_index_find(&snap->index, snap->e, snap->pool, path, len), false, false,
                       false};
    s.added = s.old == NULL;
    s.unknown = s.added && snap->h.incomplete;
    s.changed = s.old && differs(s.old, st);
    return s;
}

static size_t new_item(struct checker *c, const char *path, const struct status *s)
{
    if (c->nitems == MVM_AUDIT_MAX_ENTRIES) {
        c->incomplete = true;
        return SIZE_MAX;
    }
    if (c->nitems == c->cap) {
        c->cap = c->cap ? 2 * c->cap : 64;
        c->items = xrealloc(c->items, c->cap * sizeof *c->items);
    }
    c->items[c->nitems] = (struct item){
        xstrdup(path), 0, *s, MVM_AUDIT_REPORTED, 0, MVM_AUDIT_REPORTED, MVM_AUDIT_REPORTED, 0, 0};
    return c->nitems++;
}

static void add_pending(struct checker *c, size_t item, enum mvm_audit_kind kind,
                        const char *detail)
{
    if (item == SIZE_MAX)
        return;
    c->items[item].kinds |= BIT(kind);
    if (c->npend == MVM_AUDIT_MAX_FINDINGS) {
        c->dropped++;
        return;
    }
    if (c->npend == c->pcap) {
        c->pcap = c->pcap ? 2 * c->pcap : 64;
        c->pend = xrealloc(c->pend, c->pcap * sizeof *c->pend);
    }
    c->pend[c->npend++] =
        (struct pending){item, kind, detail ? xstrndup(detail, MAX_DETAIL) : NULL};
}

/* A finding about the entry being visited. */
static size_t flag(struct checker *c, const struct audit_entry_view *v, const struct status *s,
                   enum mvm_audit_kind kind, const char *detail)
{
    if (c->cur == SIZE_MAX)
        c->cur = new_item(c, v->path, s);
    add_pending(c, c->cur, kind, detail);
    return c->cur;
}

/* A finding about a path met after the walk (a config, an included file). */
static void flag_path(struct checker *c, const char *path, const struct status *s,
                      enum mvm_audit_kind kind, const char *detail)
{
    size_t it = SIZE_MAX;
    for (size_t i = c->post; i < c->nitems && it == SIZE_MAX; i++)
        if (strcmp(c->items[i].path, path) == 0)
            it = i;
    if (it == SIZE_MAX)
        it = new_item(c, path, s);
    add_pending(c, it, kind, detail);
}

/* The strings of after that before lacks, each a finding. */
static void flag_new(struct checker *c, const char *path, const struct status *s,
                     enum mvm_audit_kind kind, const struct mvm_audit_strs *after,
                     const struct mvm_audit_strs *before, const char *by)
{
    for (size_t i = 0; i < after->n; i++) {
        if (mvm_audit_strs_has(before, after->v[i]))
            continue;
        cleanup_free char *d =
            by ? xasprintf("%s (included from %s)", after->v[i], by) : xstrdup(after->v[i]);
        flag_path(c, path, s, kind, d);
    }
}

/* The old content of an entry, when the snapshot kept it. */
static const char *old_data(const struct checker *c, const struct status *s, size_t *len)
{
    if (s->old == NULL || !audit_has_data(s->old) || !S_ISREG(s->old->mode))
        return NULL;
    *len = s->old->data_len;
    return c->snap->pool + s->old->data;
}

static const char *unreadable_why(int e)
{
    return e == EFBIG ? "larger than 1 MiB: not checked" : "cannot be read: not checked";
}

/* ---- the walk's checks -------------------------------------------------- */

static void check_npm(struct checker *c, const struct audit_entry_view *v, const struct status *s)
{
    size_t len = 0, olen = 0;
    cleanup_free char *after = audit_read_at(v->dirfd, v->name, MVM_AUDIT_MAX_FILE, &len);
    struct mvm_audit_strs a = {0}, b = {0};
    if (after == NULL) {
        flag(c, v, s, MVM_AUDIT_NPM_SCRIPT, unreadable_why(errno));
        return;
    }
    if (mvm_audit_npm_scripts(after, len, &a) < 0) {
        flag(c, v, s, MVM_AUDIT_NPM_SCRIPT, "not valid JSON");
        return;
    }
    const char *before = old_data(c, s, &olen);
    if (before)
        mvm_audit_npm_scripts(before, olen, &b);
    flag_new(c, v->path, s, MVM_AUDIT_NPM_SCRIPT, &a, &b, NULL);
    mvm_audit_strs_clear(&a);
    mvm_audit_strs_clear(&b);
}

static bool in_git_dir(const char *path)
{
    return str_has_prefix(path, ".git/") || strstr(path, "/.git/") != NULL;
}

/* What a .git that is not a directory points at: a link's target, or a
 * gitfile's first line ("gitdir: ..."). */
static char *git_link_detail(const struct audit_entry_view *v, const char *target)
{
    if (target)
        return xstrdup(target);
    size_t len = 0;
    char *text = audit_read_at(v->dirfd, v->name, 4096, &len);
    if (text)
        text[strcspn(text, "\n")] = '\0';
    return text;
}

static void check_class(struct checker *c, const struct audit_entry_view *v, const struct status *s,
                        enum mvm_audit_class cls, const char *target)
{
    bool reg = S_ISREG(v->st.st_mode), is_dir = S_ISDIR(v->st.st_mode);
    switch (cls) {
    case MVM_AUDIT_CLASS_HOOK:
        flag(c, v, s, MVM_AUDIT_HOOK, target);
        break;
    case MVM_AUDIT_CLASS_GIT_LINK: {
        cleanup_free char *d = git_link_detail(v, target);
        flag(c, v, s, MVM_AUDIT_GIT_LINK, d);
        break;
    }
    case MVM_AUDIT_CLASS_GIT_CONFIG: /* regular ones: after the walk, with their includes */
        if (!reg)
            flag(c, v, s, MVM_AUDIT_GIT_CONFIG, target ? target : "not a regular file");
        break;
    case MVM_AUDIT_CLASS_TOOL:
        if (!is_dir || s->added)
            flag(c, v, s, MVM_AUDIT_TOOL, target);
        break;
    case MVM_AUDIT_CLASS_NPM:
        if (reg)
            check_npm(c, v, s);
        else
            flag(c, v, s, MVM_AUDIT_NPM_SCRIPT, target ? target : "not a regular file");
        break;
    default:
        break;
    }
}

/* Executable bits the file did not have (all of them when new). */
static bool made_executable(const struct audit_entry_view *v, const struct status *s)
{
    mode_t had = s->old && S_ISREG(s->old->mode) ? s->old->mode : 0;
    return (v->st.st_mode & 0111 & ~had) != 0;
}

/* In every mode: setuid/setgid bits off, device nodes gone. */
static void check_special(struct checker *c, const struct audit_entry_view *v,
                          const struct status *s)
{
    mode_t m = v->st.st_mode;
    if (!S_ISDIR(m) && !S_ISLNK(m) && (m & (S_ISUID | S_ISGID))) {
        size_t it = flag(c, v, s, MVM_AUDIT_SETUID, NULL);
        int rc = audit_chmod_at(v->dirfd, v->name, m & 07777 & ~(mode_t)(S_ISUID | S_ISGID));
        if (it != SIZE_MAX) {
            c->items[it].suid = rc == 0 ? MVM_AUDIT_CLEARED : MVM_AUDIT_FAILED;
            c->items[it].suid_error = rc == 0 ? 0 : errno;
        }
    }
    if (S_ISCHR(m) || S_ISBLK(m)) {
        size_t it = flag(c, v, s, MVM_AUDIT_DEVICE, NULL);
        int rc = unlinkat(v->dirfd, v->name, 0);
        if (it != SIZE_MAX) {
            c->items[it].whole = rc == 0 ? MVM_AUDIT_REMOVED : MVM_AUDIT_FAILED;
            c->items[it].error = rc == 0 ? 0 : errno;
        }
    }
}

static void check_mode(struct checker *c, const struct audit_entry_view *v, const struct status *s,
                       enum mvm_audit_class cls)
{
    mode_t m = v->st.st_mode;
    if (S_ISREG(m) && cls != MVM_AUDIT_CLASS_HOOK && !in_git_dir(v->path) && made_executable(v, s))
        flag(c, v, s, MVM_AUDIT_EXEC, NULL);
    check_special(c, v, s);
    if (v->st.st_uid != c->snap->uid) {
        cleanup_free char *d = xasprintf("uid %u", (unsigned)v->st.st_uid);
        flag(c, v, s, MVM_AUDIT_NOT_OWNED, d);
    }
}

/* A kept file rewritten with the same type, mode and bytes (an editor's
 * save, a restore of ours) is no change. */
static bool same_content(const struct checker *c, const struct audit_entry_view *v,
                         const struct status *s)
{
    size_t olen = 0, len = 0;
    const char *before = old_data(c, s, &olen);
    if (before == NULL || s->old->mode != v->st.st_mode || (uint64_t)v->st.st_size != olen)
        return false;
    cleanup_free char *now = audit_read_at(v->dirfd, v->name, MVM_AUDIT_MAX_FILE, &len);
    return now && len == olen && memcmp(now, before, len) == 0;
}

/* Without a snapshot only ctime, which the guest cannot set, tells what
 * it touched: setuid/setgid bits and device nodes among those go. */
static int sweep_visit(struct checker *c, const struct audit_entry_view *v)
{
    if (audit_ns(&v->st.st_ctim) < c->since)
        return 0;
    struct status s = {NULL, true, false, false};
    c->cur = SIZE_MAX;
    check_special(c, v, &s);
    return 0;
}

static int check_visit(void *arg, const struct audit_entry_view *v)
{
    struct checker *c = arg;
    if (c->sweep)
        return sweep_visit(c, v);
    bool is_dir = S_ISDIR(v->st.st_mode);
    struct status s = status_of(c, v->path, v->path_len, &v->st);
    if (s.changed && S_ISREG(v->st.st_mode) && v->st.st_uid == s.old->uid && same_content(c, v, &s))
        s.changed = false;
    enum mvm_audit_class cls = mvm_audit_classify(v->path, is_dir);
    if (cls == MVM_AUDIT_CLASS_NONE && !is_dir && audit_in_hook_dir(c->snap, v->path))
        cls = MVM_AUDIT_CLASS_HOOK;
    if (cls == MVM_AUDIT_CLASS_GIT_CONFIG && S_ISREG(v->st.st_mode) &&
        c->configs.n < MAX_CONFIG_FILES)
        mvm_audit_strs_push(&c->configs, xstrdup(v->path));
    if (!s.added && !s.changed)
        return 0;
    c->cur = SIZE_MAX;
    if (v->unreadable) {
        c->incomplete = true;
        flag(c, v, &s, MVM_AUDIT_UNREADABLE, NULL);
    }
    char target[PATH_MAX];
    const char *link = NULL;
    if (S_ISLNK(v->st.st_mode)) {
        ssize_t n = readlinkat(v->dirfd, v->name, target, sizeof target - 1);
        if (n >= 0) {
            target[n] = '\0';
            link = target;
            if (mvm_audit_link_leaves(v->path, target))
                flag(c, v, &s, MVM_AUDIT_LINK_OUT, target);
        }
    }
    check_class(c, v, &s, cls, link);
    check_mode(c, v, &s, cls);
    return 0;
}

/* ---- git configs, after the walk ---------------------------------------- */

static void check_config(struct checker *c, const char *path, const char *by, int depth,
                         struct mvm_audit_strs *seen);

static void check_config_text(struct checker *c, const char *path, const struct status *s,
                              const char *text, size_t len, const char *by, int depth,
                              struct mvm_audit_strs *seen)
{
    struct mvm_audit_strs a = {0}, b = {0}, incs = {0};
    bool parsed = mvm_audit_git_dangers(text, len, &a, &incs) == 0;
    if ((s->added || s->changed) && !parsed) {
        cleanup_free char *d = by ? xasprintf("git cannot parse it (included from %s)", by)
                                  : xstrdup("git cannot parse it");
        flag_path(c, path, s, MVM_AUDIT_GIT_CONFIG, d);
    } else if (s->added || s->changed) {
        size_t olen = 0;
        const char *before = old_data(c, s, &olen);
        if (before)
            mvm_audit_git_dangers(before, olen, &b, NULL);
        flag_new(c, path, s, MVM_AUDIT_GIT_CONFIG, &a, &b, by);
    }
    for (size_t i = 0; parsed && depth < MAX_INCLUDE_DEPTH && i < incs.n; i++) {
        cleanup_free char *p = mvm_audit_include_path(c->snap->dir, path, incs.v[i]);
        if (p)
            check_config(c, p, path, depth + 1, seen);
    }
    mvm_audit_strs_clear(&a);
    mvm_audit_strs_clear(&b);
    mvm_audit_strs_clear(&incs);
}

/* A git config (or a file one includes) as it is now, against its
 * snapshot; then what it includes. */
static void check_config(struct checker *c, const char *path, const char *by, int depth,
                         struct mvm_audit_strs *seen)
{
    if (seen->n >= MAX_CONFIG_FILES || mvm_audit_strs_has(seen, path))
        return;
    mvm_audit_strs_push(seen, xstrdup(path));
    const char *name;
    int dfd = audit_open_parent(c->rootfd, c->dev, path, &name);
    struct stat st;
    if (dfd < 0)
        return;
    if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
        close(dfd);
        return;
    }
    struct status s = status_of(c, path, strlen(path), &st);
    size_t len = 0;
    cleanup_free char *text =
        S_ISREG(st.st_mode) ? audit_read_at(dfd, name, MVM_AUDIT_MAX_FILE, &len) : NULL;
    int e = errno;
    close(dfd);
    if (text)
        check_config_text(c, path, &s, text, len, by, depth, seen);
    else if (s.added || s.changed)
        flag_path(c, path, &s, MVM_AUDIT_GIT_CONFIG,
                  S_ISREG(st.st_mode) ? unreadable_why(e) : "not a regular file");
}

/* ---- fixes ----------------------------------------------------------------- */

static void restore_or_remove(struct checker *c, struct item *it, int dfd, const char *name,
                              const struct stat *st)
{
    const struct audit_entry *o = it->s.added ? NULL : it->s.old;
    int rc = 0;
    if (o && audit_has_data(o) && (S_ISREG(o->mode) || S_ISLNK(o->mode))) {
        const char *data = c->snap->pool + o->data;
        struct timespec mtime = {(time_t)(o->mtime_ns / 1000000000LL),
                                 (long)(o->mtime_ns % 1000000000LL)};
        if (S_ISDIR(st->st_mode))
            rc = audit_remove_at(dfd, name, c->dev);
        if (rc == 0)
            rc = S_ISREG(o->mode)
                     ? audit_replace_file(dfd, name, data, o->data_len, o->mode & 0777, &mtime)
                     : audit_replace_link(dfd, name, data);
        it->whole = rc == 0 ? MVM_AUDIT_RESTORED : MVM_AUDIT_FAILED;
    } else if (it->s.added || !(S_ISREG(st->st_mode) || S_ISDIR(st->st_mode))) {
        /* New, or now something that holds no data of the user's. */
        rc = audit_remove_at(dfd, name, c->dev);
        it->whole = rc == 0 ? MVM_AUDIT_REMOVED : MVM_AUDIT_FAILED;
    } else {
        it->whole = MVM_AUDIT_FAILED; /* changed, and no copy to go back to */
    }
    it->error = rc == 0 ? 0 : errno;
}

/* Strict mode: executable bits back to what they were (none when new). */
static void restore_exec(struct item *it, int dfd, const char *name, const struct stat *st)
{
    mode_t had = it->s.old && S_ISREG(it->s.old->mode) ? it->s.old->mode & 0111 : 0;
    mode_t m = (st->st_mode & 07666) | had;
    int rc = audit_chmod_at(dfd, name, m);
    it->exec = rc == 0 ? MVM_AUDIT_CLEARED : MVM_AUDIT_FAILED;
    it->exec_error = rc == 0 ? 0 : errno;
}

/* Directories the guest made only to hold what strict mode removed go
 * as well, up to the first one that was there before or is not empty. */
static void prune_added_parents(struct checker *c, const char *path)
{
    const struct mvm_audit_snap *snap = c->snap;
    cleanup_free char *p = xstrdup(path);
    for (char *slash = strrchr(p, '/'); slash && !snap->h.incomplete; slash = strrchr(p, '/')) {
        *slash = '\0';
        if (audit_index_find(&snap->index, snap->e, snap->pool, p, strlen(p)))
            return;
        const char *name;
        int dfd = audit_open_parent(c->rootfd, c->dev, p, &name);
        if (dfd < 0)
            return;
        int rc = unlinkat(dfd, name, AT_REMOVEDIR);
        close(dfd);
        if (rc < 0)
            return;
    }
}

static void fix_item(struct checker *c, struct item *it)
{
    bool strict = c->strict && !it->s.unknown;
    bool whole = strict && (it->kinds & STRICT_KINDS);
    bool exec = strict && (it->kinds & BIT(MVM_AUDIT_EXEC));
    if (it->whole == MVM_AUDIT_REMOVED) { /* a device node, in the walk */
        if (strict && it->s.added)
            prune_added_parents(c, it->path);
        return;
    }
    if (!whole && !exec)
        return;
    const char *name;
    int dfd = audit_open_parent(c->rootfd, c->dev, it->path, &name);
    struct stat st;
    if (dfd < 0 || fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
        int e = errno;
        if (whole) { /* gone already: with a directory removed before it */
            it->whole = e == ENOENT ? MVM_AUDIT_REMOVED : MVM_AUDIT_FAILED;
            it->error = e == ENOENT ? 0 : e;
        }
        if (dfd >= 0)
            close(dfd);
        return;
    }
    if (whole)
        restore_or_remove(c, it, dfd, name, &st);
    else if (S_ISREG(st.st_mode))
        restore_exec(it, dfd, name, &st);
    close(dfd);
    if (it->whole == MVM_AUDIT_REMOVED && it->s.added)
        prune_added_parents(c, it->path);
}

static enum mvm_audit_action action_for(const struct item *it, enum mvm_audit_kind k, int *error)
{
    *error = 0;
    if (it->whole == MVM_AUDIT_REMOVED || it->whole == MVM_AUDIT_RESTORED)
        return it->whole;
    if (k == MVM_AUDIT_SETUID) {
        *error = it->suid_error;
        return it->suid;
    }
    if (k == MVM_AUDIT_EXEC) {
        *error = it->exec_error;
        return it->exec;
    }
    if (it->whole == MVM_AUDIT_FAILED && (k == MVM_AUDIT_DEVICE || (BIT(k) & STRICT_KINDS))) {
        *error = it->error;
        return MVM_AUDIT_FAILED;
    }
    return MVM_AUDIT_REPORTED;
}

/* ---- the report, across the pipe --------------------------------------- */

struct out_header {
    uint64_t magic, n, dropped;
    uint32_t incomplete, pad;
};

struct out_rec {
    uint8_t kind, action, added, pad;
    int32_t error;
    uint32_t path_len, detail_len; /* UINT32_MAX: no detail */
};

static void encode(const struct checker *c, struct buf *b)
{
    struct out_header h = {OUT_MAGIC, 0, c->dropped, c->incomplete || c->snap->h.incomplete, 0};
    buf_append(b, &h, sizeof h); /* its counts patched in at the end */
    for (size_t i = 0; i < c->npend; i++) {
        const struct pending *p = &c->pend[i];
        const struct item *it = &c->items[p->item];
        size_t plen = strlen(it->path), dlen = p->detail ? strlen(p->detail) : 0;
        if (b->len + sizeof(struct out_rec) + plen + dlen > OUT_MAX) {
            h.dropped++;
            continue;
        }
        int error;
        struct out_rec r = {
            (uint8_t)p->kind, (uint8_t)action_for(it, p->kind, &error), it->s.added, 0, error,
            (uint32_t)plen,   p->detail ? (uint32_t)dlen : UINT32_MAX};
        buf_append(b, &r, sizeof r);
        buf_append(b, it->path, plen);
        buf_append(b, p->detail ? p->detail : "", dlen);
        h.n++;
    }
    memcpy(b->data, &h, sizeof h);
}

struct audit_job {
    const struct mvm_audit_snap *snap;
    bool strict, sweep;
    int64_t since;
};

/* In a child that is the user: walk, configs, fixes, then the report. */
static int audit_child(void *arg, int out_fd)
{
    const struct audit_job *job = arg;
    struct checker c = {.snap = job->snap,
                        .strict = job->strict,
                        .cur = SIZE_MAX,
                        .since = job->since,
                        .sweep = job->sweep};
    c.rootfd = open(job->snap->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    struct stat st;
    if (c.rootfd < 0 || fstat(c.rootfd, &st) < 0)
        return errno;
    if (!c.sweep && (st.st_dev != job->snap->h.dev || st.st_ino != job->snap->h.ino))
        return ESTALE; /* not the directory the snapshot was taken of */
    c.dev = st.st_dev;
    int rc = audit_walk(c.rootfd, c.dev, check_visit, &c, &c.incomplete);
    if (rc < 0)
        return -rc;
    c.post = c.nitems;
    struct mvm_audit_strs seen = {0};
    for (size_t i = 0; i < c.configs.n; i++)
        check_config(&c, c.configs.v[i], NULL, 0, &seen);
    for (size_t i = c.nitems; i-- > 0;)
        fix_item(&c, &c.items[i]);
    struct buf b = {0};
    encode(&c, &b);
    return write_all(out_fd, b.data, b.len) < 0 ? errno : 0;
}

static int decode(const struct buf *b, struct mvm_audit_report *r)
{
    struct out_header h;
    if (b->len < sizeof h)
        return -1;
    memcpy(&h, b->data, sizeof h);
    if (h.magic != OUT_MAGIC || h.n > MVM_AUDIT_MAX_FINDINGS)
        return -1;
    r->findings = xcalloc(h.n ? h.n : 1, sizeof *r->findings);
    r->dropped = h.dropped;
    r->incomplete = h.incomplete != 0;
    size_t off = sizeof h;
    for (r->n = 0; r->n < h.n; r->n++) {
        struct out_rec rec;
        if (b->len - off < sizeof rec)
            return -1;
        memcpy(&rec, b->data + off, sizeof rec);
        off += sizeof rec;
        size_t dlen = rec.detail_len == UINT32_MAX ? 0 : rec.detail_len;
        if (rec.kind >= MVM_AUDIT_NKINDS || rec.action > MVM_AUDIT_FAILED ||
            b->len - off < (size_t)rec.path_len + dlen)
            return -1;
        struct mvm_audit_finding *f = &r->findings[r->n];
        *f = (struct mvm_audit_finding){(enum mvm_audit_kind)rec.kind,
                                        (enum mvm_audit_action)rec.action,
                                        rec.added != 0,
                                        rec.error,
                                        xstrndup(b->data + off, rec.path_len),
                                        NULL};
        off += rec.path_len;
        if (rec.detail_len != UINT32_MAX)
            f->detail = xstrndup(b->data + off, dlen);
        off += dlen;
    }
    return off == b->len ? 0 : -1;
}

/* By path, then kind: the order a reader looks things up in. */
static int by_path(const void *a, const void *b)
{
    const struct mvm_audit_finding *x = a, *y = b;
    int c = strcmp(x->path, y->path);
    if (c == 0)
        c = (int)x->kind - (int)y->kind;
    if (c == 0)
        c = strcmp(x->detail ? x->detail : "", y->detail ? y->detail : "");
    return c;
}

static int run_job(const struct audit_job *job, struct mvm_audit_report *r, struct mvm_error **err)
{
    const struct mvm_audit_snap *snap = job->snap;
    *r = (struct mvm_audit_report){0};
    struct buf out = {0};
    int rc = run_as(snap->uid, snap->gid, audit_child, (void *)job, &out, OUT_MAX);
    int e = rc > 0 ? rc : errno;
    if (rc == 0 && decode(&out, r) < 0) {
        rc = -1;
        e = EPROTO;
    }
    buf_free(&out);
    if (rc != 0) {
        mvm_audit_report_clear(r);
        return mvm_error_set(err, e, "auditing %s", snap->dir);
    }
    qsort(r->findings, r->n, sizeof *r->findings, by_path);
    return 0;
}

int mvm_audit_run(const struct mvm_audit_snap *snap, bool strict, struct mvm_audit_report *r,
                  struct mvm_error **err)
{
    struct audit_job job = {snap, strict, false, 0};
    return run_job(&job, r, err);
}

int mvm_audit_sweep(const char *dir, uid_t uid, gid_t gid, int64_t since_ns,
                    struct mvm_audit_report *r, struct mvm_error **err)
{
    struct mvm_audit_snap snap = {.dir = (char *)dir, .uid = uid, .gid = gid};
    struct audit_job job = {&snap, false, true, since_ns};
    return run_job(&job, r, err);
}

void mvm_audit_report_clear(struct mvm_audit_report *r)
{
    for (size_t i = 0; i < r->n; i++) {
        free(r->findings[i].path);
        free(r->findings[i].detail);
    }
    free(r->findings);
    *r = (struct mvm_audit_report){0};
}
