/* Module resolution in the way modprobe does it, from the text of
 * modules.dep ("kernel/a/b.ko: kernel/c/d.ko ...", every line listing the
 * module's whole dependency closure) and modules.builtin. */
#include "modules.h"

#include <string.h>

#include "compress.h"

#define MODULE_FILE_MAX (64u << 20)

enum visit { UNSEEN, VISITING, DONE };

struct dep_entry {
    char *path;  /* points into the parse copy */
    char *name;  /* normalised, owned */
    char **deps; /* point into the parse copy */
    size_t ndeps;
    enum visit state;
};

struct dep_table {
    char *text; /* modified copy of modules.dep */
    struct dep_entry *e;
    size_t n;
    char **builtin; /* normalised names */
    size_t nbuiltin;
};

static const char *const suffixes[] = {".ko.xz", ".ko.zst", ".ko.gz", ".ko"};

char *mvm_module_name(const char *path)
{
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    size_t n = strlen(base);
    for (size_t i = 0; i < ARRAY_SIZE(suffixes); i++) {
        size_t sl = strlen(suffixes[i]);
        if (n > sl && strcmp(base + n - sl, suffixes[i]) == 0)
            return xstrndup(base, n - sl);
    }
    return xstrdup(base);
}

/* The kernel treats '-' and '_' in module names as the same character. */
static char *normalised_name(const char *path_or_name)
{
    char *name = mvm_module_name(path_or_name);
    for (char *s = name; *s; s++)
        if (*s == '-')
            *s = '_';
    return name;
}

static void parse_dep_line(struct dep_table *t, char *line)
{
    char *colon = strchr(line, ':');
    if (colon == NULL)
        return;
    *colon = '\0';
    struct dep_entry *e = &t->e[t->n++];
    *e = (struct dep_entry){.path = line, .name = normalised_name(line)};
    char *save = NULL;
    for (char *tok = strtok_r(colon + 1, " \t", &save); tok; tok = strtok_r(NULL, " \t", &save)) {
        e->deps = xrealloc(e->deps, (e->ndeps + 1) * sizeof *e->deps);
        e->deps[e->ndeps++] = tok;
    }
}

static void parse_builtin(struct dep_table *t, const char *text)
{
    cleanup_free char *copy = xstrdup(text);
    char *save = NULL;
    for (char *l = strtok_r(copy, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
        if (*l == '\0')
            continue;
        t->builtin = xrealloc(t->builtin, (t->nbuiltin + 1) * sizeof *t->builtin);
        t->builtin[t->nbuiltin++] = normalised_name(l);
    }
}

static void table_load(struct dep_table *t, const char *dep_text, const char *builtin_text)
{
    *t = (struct dep_table){.text = xstrdup(dep_text)};
    size_t lines = 1;
    for (const char *s = dep_text; *s; s++)
        lines += *s == '\n';
    t->e = xcalloc(lines, sizeof *t->e);
    char *save = NULL;
    for (char *l = strtok_r(t->text, "\n", &save); l; l = strtok_r(NULL, "\n", &save))
        parse_dep_line(t, l);
    if (builtin_text != NULL)
        parse_builtin(t, builtin_text);
}

static void table_free(struct dep_table *t)
{
    for (size_t i = 0; i < t->n; i++) {
        free(t->e[i].name);
        free(t->e[i].deps);
    }
    for (size_t i = 0; i < t->nbuiltin; i++)
        free(t->builtin[i]);
    free(t->builtin);
    free(t->e);
    free(t->text);
}

static bool is_builtin(const struct dep_table *t, const char *name)
{
    for (size_t i = 0; i < t->nbuiltin; i++)
        if (strcmp(t->builtin[i], name) == 0)
            return true;
    return false;
}

static struct dep_entry *find_name(struct dep_table *t, const char *name)
{
    for (size_t i = 0; i < t->n; i++)
        if (strcmp(t->e[i].name, name) == 0)
            return &t->e[i];
    return NULL;
}

static struct dep_entry *find_path(struct dep_table *t, const char *path)
{
    for (size_t i = 0; i < t->n; i++)
        if (strcmp(t->e[i].path, path) == 0)
            return &t->e[i];
    return NULL;
}

static void push(struct mvm_modlist *out, const char *path)
{
    out->paths = xrealloc(out->paths, (out->n + 1) * sizeof *out->paths);
    out->paths[out->n++] = xstrdup(path);
}

static bool listed(const struct mvm_modlist *l, const char *path)
{
    for (size_t i = 0; i < l->n; i++)
        if (strcmp(l->paths[i], path) == 0)
            return true;
    return false;
}

/* Dependencies first.  modules.dep lists them so that the last one is
 * loaded first (modprobe walks the list backwards); recursing as well
 * keeps the order right for a hand-written file.  A module already on the
 * path (a cycle, which depmod rejects anyway) is not revisited. */
static void add_module(struct dep_table *t, struct dep_entry *e, struct mvm_modlist *out)
{
    if (e->state != UNSEEN)
        return;
    e->state = VISITING;
    for (size_t i = e->ndeps; i-- > 0;) {
        struct dep_entry *d = find_path(t, e->deps[i]);
        if (d != NULL) {
            add_module(t, d, out);
        } else if (!listed(out, e->deps[i])) {
            push(out, e->deps[i]); /* no line of its own: a leaf */
        }
    }
    e->state = DONE;
    push(out, e->path);
}

void mvm_modlist_clear(struct mvm_modlist *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->paths[i]);
    free(l->paths);
    l->paths = NULL;
    l->n = 0;
}

int mvm_modules_resolve(const char *dep_text, const char *builtin_text, const char *const *wanted,
                        size_t nwanted, struct mvm_modlist *out, struct mvm_error **err)
{
    struct dep_table t;
    table_load(&t, dep_text ? dep_text : "", builtin_text);
    *out = (struct mvm_modlist){0};
    int rc = 0;
    for (size_t i = 0; i < nwanted && rc == 0; i++) {
        bool optional = wanted[i][0] == '?';
        cleanup_free char *name = normalised_name(wanted[i] + optional);
        if (is_builtin(&t, name))
            continue;
        struct dep_entry *e = find_name(&t, name);
        if (e != NULL)
            add_module(&t, e, out);
        else if (!optional)
            rc = mvm_error_set(err, 0,
                               "kernel module %s is neither built in nor listed in modules.dep",
                               wanted[i]);
    }
    table_free(&t);
    if (rc < 0)
        mvm_modlist_clear(out);
    return rc;
}

static enum mvm_compress_fmt module_format(const char *path)
{
    static const struct {
        const char *suffix;
        enum mvm_compress_fmt fmt;
    } kinds[] = {{".ko", MVM_FMT_NONE},
                 {".ko.xz", MVM_FMT_XZ},
                 {".ko.zst", MVM_FMT_ZSTD},
                 {".ko.gz", MVM_FMT_GZIP}};
    size_t n = strlen(path);
    for (size_t i = 0; i < ARRAY_SIZE(kinds); i++) {
        size_t sl = strlen(kinds[i].suffix);
        if (n > sl && strcmp(path + n - sl, kinds[i].suffix) == 0)
            return kinds[i].fmt;
    }
    return MVM_FMT_UNKNOWN;
}

#define MODULE_SIG_MAGIC "~Module signature appended~\n"

size_t mvm_module_unsigned_len(const void *data, size_t len)
{
    const unsigned char *p = data;
    const size_t magic = sizeof MODULE_SIG_MAGIC - 1, info = 12; /* struct module_signature */
    if (len < magic + info || memcmp(p + len - magic, MODULE_SIG_MAGIC, magic) != 0)
        return len;
    const unsigned char *ms = p + len - magic - info;
    uint64_t sig_len =
        (uint64_t)ms[8] << 24 | (uint64_t)ms[9] << 16 | (uint64_t)ms[10] << 8 | ms[11];
    uint64_t extra = sig_len + ms[3] + ms[4]; /* signature, signer, key id */
    if (extra > len - magic - info)
        return len;
    return len - magic - info - (size_t)extra;
}

/* ELF64 header and section header fields used below (elf(5)). */
#define EH_SHOFF     0x28
#define EH_SHENTSIZE 0x3a
#define EH_SHNUM     0x3c
#define EH_SHSTRNDX  0x3e
#define EH_SIZE      0x40
#define SH_NAME      0x00
#define SH_OFFSET    0x18
#define SH_SIZE      0x20
#define SHDR_SIZE    0x40

static uint64_t get_le(const unsigned char *p, size_t n)
{
    uint64_t v = 0;
    while (n-- > 0)
        v = v << 8 | p[n];
    return v;
}

/* The section header of index i, NULL when it lies outside the file. */
static unsigned char *section(unsigned char *p, size_t len, uint64_t i)
{
    uint64_t off = get_le(p + EH_SHOFF, 8), num = get_le(p + EH_SHNUM, 2);
    if (i >= num || off > len || num > (len - off) / SHDR_SIZE)
        return NULL;
    return p + off + i * SHDR_SIZE;
}

bool mvm_module_hide_btf(void *data, size_t len)
{
    unsigned char *p = data;
    static const char btf[] = ".BTF";
    static const unsigned char elf64_le[] = {0x7f, 'E', 'L', 'F', 2 /* 64-bit */, 1 /* LE */};
    if (len < EH_SIZE || memcmp(p, elf64_le, sizeof elf64_le) != 0 ||
        get_le(p + EH_SHENTSIZE, 2) != SHDR_SIZE)
        return false;
    unsigned char *strtab = section(p, len, get_le(p + EH_SHSTRNDX, 2));
    if (strtab == NULL)
        return false;
    uint64_t str_off = get_le(strtab + SH_OFFSET, 8), str_size = get_le(strtab + SH_SIZE, 8);
    if (str_off > len || str_size > len - str_off)
        return false;
    bool renamed = false;
    unsigned char *sh;
    for (uint64_t i = 0; (sh = section(p, len, i)) != NULL; i++) {
        uint64_t name = get_le(sh + SH_NAME, 4);
        if (name < str_size && str_size - name >= sizeof btf &&
            memcmp(p + str_off + name, btf, sizeof btf) == 0) {
            p[str_off + name] = '_'; /* "_BTF": a name the kernel ignores */
            renamed = true;
        }
    }
    return renamed;
}

int mvm_module_read(const char *path, struct buf *out, struct mvm_error **err)
{
    return mvm_module_read_as(0, 0, path, out, err);
}

int mvm_module_read_as(uid_t uid, gid_t gid, const char *path, struct buf *out,
                       struct mvm_error **err)
{
    enum mvm_compress_fmt fmt = module_format(path);
    if (fmt == MVM_FMT_UNKNOWN)
        return mvm_error_set(err, 0, "module %s: not a .ko, .ko.xz, .ko.zst or .ko.gz file", path);
    size_t len = 0;
    cleanup_free char *data = read_file_as(uid, gid, path, MODULE_FILE_MAX, &len);
    if (data == NULL)
        return mvm_error_set(err, errno, "reading %s", path);
    if (mvm_decompress(fmt, data, len, MODULE_FILE_MAX, out, err) < 0)
        return mvm_error_wrap(err, "decompressing %s", path);
    return 0;
}
