/* The pure part of mvm image: image names, --from and --packages, the
 * Debian mirror in apt's sources, the tools' command lines, the image's
 * size, the recipe as JSON and mvm image ls's table. */
#include "disk-int.h"

#include <ctype.h>
#include <string.h>

#include "json-cleanup.h"
#include "sha256.h"
#include "util.h"

static const char *const suites[] = {"bookworm", "trixie"};

bool mvm_image_name_ok(const char *name)
{
    return mvm_disk_name_chars_ok(name, MVM_IMAGE_NAME_MAX, false);
}

int mvm_image_name_check(const char *name, struct mvm_error **err)
{
    if (mvm_image_name_ok(name))
        return 0;
    cleanup_free char *s = mvm_disk_shown(name);
    return mvm_error_set(err, 0,
                         "bad image name '%s%s': use 1 to %d lowercase letters, digits, '.', '_' "
                         "or '-', starting with a letter or digit",
                         s, strlen(name) > 80 ? "..." : "", MVM_IMAGE_NAME_MAX);
}

int mvm_image_recipe_from(struct mvm_image_recipe *r, const char *from, struct mvm_error **err)
{
    for (size_t i = 0; i < ARRAY_SIZE(suites); i++) {
        cleanup_free char *want = xasprintf("debian:%s", suites[i]);
        if (strcmp(from, want) == 0) {
            free(r->from);
            r->from = steal_pointer(&want);
            r->suite = suites[i];
            return 0;
        }
    }
    cleanup_free char *s = mvm_disk_shown(from);
    return mvm_error_set(err, 0, "--from %s: mvm builds debian:bookworm or debian:trixie", s);
}

/* Debian's rule for package names (policy 5.6.1). */
static bool package_ok(const char *p, size_t n)
{
    if (n < 2 || !(islower((unsigned char)p[0]) || isdigit((unsigned char)p[0])))
        return false;
    for (size_t i = 1; i < n; i++)
        if (!islower((unsigned char)p[i]) && !isdigit((unsigned char)p[i]) && !strchr("+-.", p[i]))
            return false;
    return true;
}

int mvm_image_recipe_packages(struct mvm_image_recipe *r, const char *list, struct mvm_error **err)
{
    const char *p = list;
    for (;;) {
        size_t n = strcspn(p, ",");
        if (!package_ok(p, n)) {
            cleanup_free char *s = mvm_disk_shown(list);
            return mvm_error_set(err, 0,
                                 "--packages %s: give Debian package names separated by commas "
                                 "(e.g. --packages git,curl)",
                                 s);
        }
        r->packages = xrealloc(r->packages, (r->npackages + 1) * sizeof *r->packages);
        r->packages[r->npackages++] = xstrndup(p, n);
        if (p[n] == '\0')
            return 0;
        p += n + 1;
    }
}

void mvm_image_recipe_clear(struct mvm_image_recipe *r)
{
    for (size_t i = 0; i < r->npackages; i++)
        free(r->packages[i]);
    free(r->packages);
    free(r->from);
    free(r->mirror);
    free(r->script);
    free(r->script_path);
    *r = (struct mvm_image_recipe){0};
}

/* A Debian archive: its path's last component is "debian" (not
 * debian-security, not another distribution's). */
static bool debian_archive(const char *uri, size_t n)
{
    while (n > 0 && uri[n - 1] == '/')
        n--;
    return n > 7 && (strncmp(uri, "http://", 7) == 0 || strncmp(uri, "https://", 8) == 0) &&
           n >= 7 && strncmp(uri + n - 7, "/debian", 7) == 0;
}

/* The first word of s (after blanks) and its length. */
static const char *word(const char *s, size_t *n)
{
    s += strspn(s, " \t");
    *n = strcspn(s, " \t\r\n");
    return s;
}

/* One-line format: "deb [OPTIONS] URI SUITE COMPONENTS". */
static char *one_line(const char *line)
{
    size_t n;
    const char *w = word(line, &n);
    if (n != 3 || strncmp(w, "deb", 3) != 0)
        return NULL;
    w = word(w + n, &n);
    if (n > 0 && w[0] == '[') { /* options up to ']' */
        const char *close = memchr(w, ']', strcspn(w, "\n"));
        if (close == NULL)
            return NULL;
        w = word(close + 1, &n);
    }
    return debian_archive(w, n) ? xstrndup(w, n) : NULL;
}

/* deb822: a "URIs:" field in a stanza whose Types holds deb. */
static char *deb822(const char *text)
{
    bool deb = false;
    char *uri = NULL;
    for (const char *l = text; *l; l += strcspn(l, "\n"), l += *l == '\n') {
        size_t n;
        const char *w = word(l, &n);
        if (n == 0) { /* end of stanza */
            if (deb && uri)
                return uri;
            free(uri);
            uri = NULL;
            deb = false;
        } else if (strncasecmp(l, "Types:", 6) == 0) {
            for (w = word(l + 6, &n); n > 0; w = word(w + n, &n))
                deb |= n == 3 && strncmp(w, "deb", 3) == 0;
        } else if (strncasecmp(l, "URIs:", 5) == 0) {
            for (w = word(l + 5, &n); n > 0 && uri == NULL; w = word(w + n, &n))
                if (debian_archive(w, n))
                    uri = xstrndup(w, n);
        }
    }
    if (deb && uri)
        return uri;
    free(uri);
    return NULL;
}

char *mvm_image_mirror_in(const char *text)
{
    for (const char *l = text; *l; l += strcspn(l, "\n"), l += *l == '\n') {
        char *uri = one_line(l);
        if (uri)
            return uri;
    }
    return deb822(text);
}

char **mvm_image_mmdebstrap_argv(const char *tool, const struct mvm_image_recipe *r,
                                 const char *out)
{
    char **argv = xcalloc(10, sizeof *argv);
    size_t n = 0;
    argv[n++] = xstrdup(tool);
    /* As root, unshare mode still gives the chroot its own mount and pid
     * namespaces. */
    argv[n++] = xstrdup("--mode=unshare");
    argv[n++] = xstrdup("--variant=" MVM_IMAGE_VARIANT);
    argv[n++] = xstrdup("--format=tar");
    if (r->npackages > 0) {
        struct buf b = {0};
        buf_printf(&b, "--include=");
        for (size_t i = 0; i < r->npackages; i++)
            buf_printf(&b, "%s%s", i ? "," : "", r->packages[i]);
        buf_append(&b, "", 1);
        argv[n++] = b.data;
    }
    argv[n++] = xstrdup(r->suite);
    argv[n++] = xstrdup(out);
    argv[n++] = xstrdup(r->mirror);
    argv[n] = NULL;
    return argv;
}

/* A fixed command line as a strv of copies. */
static char **strv_of(const char *const *v, size_t n)
{
    char **argv = xcalloc(n + 1, sizeof *argv);
    for (size_t i = 0; i < n; i++)
        argv[i] = xstrdup(v[i]);
    return argv;
}

char **mvm_image_untar_argv(const char *tool, const char *tar, const char *dir)
{
    const char *const v[] = {tool,
                             "--extract",
                             "--numeric-owner",
                             "--preserve-permissions",
                             "--xattrs",
                             "--xattrs-include=*",
                             "-C",
                             dir,
                             "-f",
                             tar};
    return strv_of(v, ARRAY_SIZE(v));
}

char **mvm_image_convert_argv(const char *tool, const char *raw, const char *qcow2)
{
    const char *const v[] = {tool, "convert", "-q", "-f", "raw", "-O", "qcow2", raw, qcow2};
    return strv_of(v, ARRAY_SIZE(v));
}

uint64_t mvm_image_size_mib(uint64_t content_bytes)
{
    /* A quarter more for ext4's metadata and what the script adds, and
     * room for a session's writes: free space costs nothing in qcow2. */
    uint64_t mib = ((content_bytes + content_bytes / 4) >> 20) + MVM_IMAGE_HEADROOM_MIB;
    return (mib + 255) / 256 * 256;
}

void mvm_image_cache_key(const struct mvm_image_recipe *r, char hex[33])
{
    struct mvm_sha256 c;
    mvm_sha256_init(&c);
    const char *parts[] = {MVM_IMAGE_VARIANT, r->suite, r->mirror};
    for (size_t i = 0; i < ARRAY_SIZE(parts); i++)
        mvm_sha256_update(&c, parts[i], strlen(parts[i]) + 1);
    for (size_t i = 0; i < r->npackages; i++)
        mvm_sha256_update(&c, r->packages[i], strlen(r->packages[i]) + 1);
    mvm_sha256_key(&c, hex);
}

void mvm_image_hex(const uint8_t digest[32], char hex[65])
{
    for (size_t i = 0; i < 32; i++)
        snprintf(hex + 2 * i, 3, "%02x", digest[i]);
}

static json_t *script_json(const struct mvm_image_recipe *r)
{
    if (r->script_path == NULL)
        return json_null();
    struct mvm_sha256 c;
    uint8_t d[32];
    char hex[65];
    mvm_sha256_init(&c);
    mvm_sha256_update(&c, r->script, r->script_len);
    mvm_sha256_final(&c, d);
    mvm_image_hex(d, hex);
    /* Its text when it is UTF-8 (JSON's strings are): what it did. */
    json_t *text = json_stringn(r->script, r->script_len);
    return json_pack("{s:s, s:s, s:o}", "path", r->script_path, "sha256", hex, "text",
                     text ? text : json_null());
}

char *mvm_image_recipe_json(const struct mvm_image_recipe *r, const struct mvm_image_meta *m)
{
    cleanup_json json_t *pkgs = json_array();
    for (size_t i = 0; i < r->npackages; i++)
        json_array_append_new(pkgs, json_string(r->packages[i]));
    char when[32] = "";
    struct tm tm;
    if (gmtime_r(&m->created, &tm) != NULL)
        strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
    cleanup_free char *digest = xasprintf("sha256:%s", m->digest);
    cleanup_json json_t *j =
        json_pack("{s:s, s:s, s:s, s:s, s:O, s:o, s:s, s:s, s:I, s:I, s:s, s:I}", "name", r->name,
                  "from", r->from, "mirror", r->mirror, "variant", MVM_IMAGE_VARIANT, "packages",
                  pkgs, "script", script_json(r), "mvm_version", m->version, "created", when,
                  "size", (json_int_t)m->size, "virtual_size", (json_int_t)m->virtual_size,
                  "digest", digest, "builder_uid", (json_int_t)m->builder_uid);
    if (j == NULL)
        return NULL;
    json_object_set_new(j, "kernel", m->kernel ? json_string(m->kernel) : json_null());
    char *text = json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    if (text == NULL)
        return NULL;
    char *with_nl = xasprintf("%s\n", text);
    free(text);
    return with_nl;
}

void mvm_image_table(FILE *out, const struct mvm_image_entry *e, size_t n)
{
    if (n == 0) {
        fputs("no images (build one: sudo mvm image build NAME)\n", out);
        return;
    }
    int w = 4; /* "NAME" */
    for (size_t i = 0; i < n; i++)
        if ((int)strlen(e[i].name) > w)
            w = (int)strlen(e[i].name);
    fprintf(out, "%-*s  %6s  %-16s  %s\n", w, "NAME", "SIZE", "CREATED", "FROM");
    for (size_t i = 0; i < n; i++) {
        char size[16];
        mvm_disk_human_size(e[i].size, size);
        /* "2026-12-03T16:20:05Z" as "2026-12-03 16:20" (UTC). */
        char when[17] = "?";
        if (e[i].created && strlen(e[i].created) >= 16) {
            snprintf(when, sizeof when, "%s", e[i].created);
            when[10] = ' ';
        }
        fprintf(out, "%-*s  %6s  %-16s  %s\n", w, e[i].name, size, when,
                e[i].from ? e[i].from : "?");
    }
}
