/* The disk guard's decisions, without system calls: floors, whether a
 * limit is crossed, how soon to look again, and the words for it. */
#include "guard.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

void mvm_guard_floors(const struct mvm_guard_limits *l, const struct mvm_fs_usage *u,
                      uint64_t *floor_bytes, uint64_t *floor_files)
{
    *floor_bytes = *floor_files = 0;
    if (l->min_free == 0)
        return;
    if (l->min_free_percent) {
        *floor_bytes = (uint64_t)((unsigned __int128)u->bytes * l->min_free / 100);
        *floor_files = (uint64_t)((unsigned __int128)u->files * l->min_free / 100);
        return;
    }
    *floor_bytes = l->min_free;
    /* The same share of the inodes as of the space (all of them when
     * SIZE is the whole filesystem or more). */
    if (u->bytes == 0 || l->min_free >= u->bytes)
        *floor_files = u->files;
    else
        *floor_files = (uint64_t)((unsigned __int128)u->files * l->min_free / u->bytes);
}

static uint64_t grown(uint64_t now, uint64_t base)
{
    return now > base ? now - base : 0;
}

enum mvm_guard_what mvm_guard_check(const struct mvm_guard *g, struct mvm_guard_verdict *v)
{
    *v = (struct mvm_guard_verdict){.what = MVM_GUARD_OK};
    /* A filesystem that shrank (the host deleted something) gives the
     * guest no credit on another one. */
    for (size_t i = 0; i < g->nfs; i++) {
        v->added_bytes += grown(g->fs[i].now.bytes_used, g->fs[i].base.bytes_used);
        v->added_files += grown(g->fs[i].now.files_used, g->fs[i].base.files_used);
    }
    uint64_t lim = g->lim.share_limit;
    if (lim && v->added_bytes > lim)
        return v->what = MVM_GUARD_LIMIT_BYTES;
    if (lim && v->added_files > lim / MVM_GUARD_INODE_BYTES)
        return v->what = MVM_GUARD_LIMIT_FILES;
    for (size_t i = 0; i < g->nfs; i++) {
        const struct mvm_guard_fs *f = &g->fs[i];
        v->fs = i;
        if (f->floor_bytes && f->now.bytes_avail < f->floor_bytes)
            return v->what = MVM_GUARD_FLOOR_BYTES;
        if (f->floor_files && f->now.files > 0 && f->now.files_avail < f->floor_files)
            return v->what = MVM_GUARD_FLOOR_FILES;
    }
    v->fs = 0;
    return MVM_GUARD_OK;
}

void mvm_guard_size(uint64_t bytes, char out[24])
{
    static const char *const units[] = {"bytes", "KiB", "MiB", "GiB", "TiB", "PiB"};
    if (bytes < 1024) {
        snprintf(out, 24, "%llu bytes", (unsigned long long)bytes);
        return;
    }
    double v = (double)bytes;
    size_t u = 0;
    while (v >= 1024 && u + 1 < ARRAY_SIZE(units)) {
        v /= 1024;
        u++;
    }
    snprintf(out, 24, "%.1f %s", v, units[u]);
}

static void limit_text(const struct mvm_guard_limits *l, char out[48])
{
    if (l->min_free_percent) {
        snprintf(out, 48, "%llu%%", (unsigned long long)l->min_free);
        return;
    }
    char sz[24];
    mvm_guard_size(l->min_free, sz);
    snprintf(out, 48, "%s", sz);
}

char *mvm_guard_describe(const struct mvm_guard *g, const struct mvm_guard_verdict *v)
{
    char a[24], b[24], mf[48];
    const struct mvm_guard_fs *f = g->nfs ? &g->fs[v->fs] : NULL;
    switch (v->what) {
    case MVM_GUARD_LIMIT_BYTES:
        mvm_guard_size(v->added_bytes, a);
        mvm_guard_size(g->lim.share_limit, b);
        return xasprintf("the read-write shares grew by %s, over --share-limit %s", a, b);
    case MVM_GUARD_LIMIT_FILES:
        mvm_guard_size(g->lim.share_limit, b);
        return xasprintf("the read-write shares hold %llu more files and directories, over "
                         "the %llu that --share-limit %s allows (one per %u KiB)",
                         (unsigned long long)v->added_files,
                         (unsigned long long)(g->lim.share_limit / MVM_GUARD_INODE_BYTES), b,
                         MVM_GUARD_INODE_BYTES / 1024);
    case MVM_GUARD_FLOOR_BYTES:
        mvm_guard_size(f->now.bytes_avail, a);
        mvm_guard_size(f->floor_bytes, b);
        limit_text(&g->lim, mf);
        if (!g->lim.min_free_percent) /* the floor is the size itself */
            return xasprintf("the filesystem holding %s has %s free, under --min-free %s", f->path,
                             a, mf);
        return xasprintf("the filesystem holding %s has %s free, under --min-free %s (%s)", f->path,
                         a, mf, b);
    case MVM_GUARD_FLOOR_FILES:
        limit_text(&g->lim, mf);
        return xasprintf("the filesystem holding %s has %llu free inodes, under the %llu that "
                         "--min-free %s keeps",
                         f->path, (unsigned long long)f->now.files_avail,
                         (unsigned long long)f->floor_files, mf);
    case MVM_GUARD_OK:
        break;
    }
    return xstrdup("no disk limit is crossed");
}

/* Milliseconds the guest needs, at the assumed rate, to use up headroom. */
static uint64_t time_for(uint64_t have, uint64_t floor, uint64_t rate)
{
    return have > floor ? (have - floor) * 1000 / rate : 0;
}

unsigned mvm_guard_next_ms(const struct mvm_guard *g)
{
    struct mvm_guard_verdict v;
    mvm_guard_check(g, &v);
    uint64_t ms = MVM_GUARD_MAX_MS;
    uint64_t lim = g->lim.share_limit;
    if (lim) {
        uint64_t t = time_for(lim, v.added_bytes, MVM_GUARD_RATE_BYTES);
        ms = t < ms ? t : ms;
        t = time_for(lim / MVM_GUARD_INODE_BYTES, v.added_files, MVM_GUARD_RATE_FILES);
        ms = t < ms ? t : ms;
    }
    for (size_t i = 0; i < g->nfs; i++) {
        const struct mvm_guard_fs *f = &g->fs[i];
        uint64_t t = MVM_GUARD_MAX_MS;
        if (f->floor_bytes)
            t = time_for(f->now.bytes_avail, f->floor_bytes, MVM_GUARD_RATE_BYTES);
        ms = t < ms ? t : ms;
        if (f->floor_files && f->now.files > 0)
            t = time_for(f->now.files_avail, f->floor_files, MVM_GUARD_RATE_FILES);
        ms = t < ms ? t : ms;
    }
    return (unsigned)(ms < MVM_GUARD_MIN_MS ? MVM_GUARD_MIN_MS : ms);
}

/* mountinfo escapes space, tab, newline and backslash as \ooo. */
static char *unescape(const char *s, size_t len)
{
    char *out = xmalloc(len + 1);
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '\\' && i + 3 < len && s[i + 1] >= '0' && s[i + 1] <= '3' && s[i + 2] >= '0' &&
            s[i + 2] <= '7' && s[i + 3] >= '0' && s[i + 3] <= '7') {
            out[o++] = (char)((s[i + 1] - '0') * 64 + (s[i + 2] - '0') * 8 + (s[i + 3] - '0'));
            i += 3;
        } else {
            out[o++] = s[i];
        }
    }
    out[o] = '\0';
    return out;
}

char **mvm_guard_mounts_below(const char *mountinfo, const char *dir, size_t *n)
{
    size_t dlen = strlen(dir);
    while (dlen > 1 && dir[dlen - 1] == '/')
        dlen--;
    char **v = xcalloc(1, sizeof *v);
    *n = 0;
    for (const char *line = mountinfo; line && *line;) {
        const char *eol = strchr(line, '\n');
        const char *end = eol ? eol : line + strlen(line);
        /* ID PARENT MAJ:MIN ROOT MOUNTPOINT ...: the fifth field. */
        const char *p = line;
        for (int field = 0; field < 4 && p < end; field++) {
            const char *sp = memchr(p, ' ', (size_t)(end - p));
            p = sp ? sp + 1 : end;
        }
        const char *sp = memchr(p, ' ', (size_t)(end - p));
        const char *mend = sp ? sp : end;
        if (p < end) {
            char *mp = unescape(p, (size_t)(mend - p));
            bool below =
                dlen == 1 ? mp[0] == '/' && mp[1] != '\0'
                          : strncmp(mp, dir, dlen) == 0 && mp[dlen] == '/' && mp[dlen + 1] != '\0';
            if (below) {
                v = xrealloc(v, (*n + 2) * sizeof *v);
                v[(*n)++] = mp;
                v[*n] = NULL;
            } else {
                free(mp);
            }
        }
        line = eol ? eol + 1 : NULL;
    }
    return v;
}
