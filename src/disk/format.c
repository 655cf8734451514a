/* The pure part of disk/: volume names, sizes and the volume table as
 * text, and mkfs.ext4's command line. */
#include "disk-int.h"

#include <string.h>

#include "util.h"

bool mvm_disk_name_chars_ok(const char *name, size_t max, bool upper)
{
    size_t n = strlen(name);
    if (n == 0 || n > max)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        bool alnum =
            (c >= 'a' && c <= 'z') || (upper && c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
        if (!alnum && (i == 0 || (c != '.' && c != '_' && c != '-')))
            return false;
    }
    return true;
}

bool mvm_disk_name_ok(const char *name)
{
    return strstr(name, "..") == NULL && mvm_disk_name_chars_ok(name, MVM_VOLUME_NAME_MAX, true);
}

int mvm_volume_name_check(const char *name, struct mvm_error **err)
{
    if (mvm_disk_name_ok(name))
        return 0;
    /* The name came from the command line: never print it raw. */
    cleanup_free char *shown = mvm_disk_shown(name);
    return mvm_error_set(err, 0,
                         "bad volume name '%s%s': use 1 to %d letters, digits, '.', '_' or '-', "
                         "starting with a letter or digit, without '..'",
                         shown, strlen(name) > 80 ? "..." : "", MVM_VOLUME_NAME_MAX);
}

char *mvm_disk_shown(const char *s)
{
    char *t = xstrndup(s, 80);
    sanitize_text(t);
    return t;
}

bool mvm_disk_has_suffix(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && strcmp(s + n - k, suffix) == 0;
}

void mvm_disk_human_size(uint64_t bytes, char out[16])
{
    static const char units[] = "BKMGTPE";
    double v = (double)bytes;
    size_t u = 0;
    /* 1023.6K would print as "1024K": carry it to "1.0M". */
    while (v >= 1023.5 && u + 1 < sizeof units - 1) {
        v /= 1024;
        u++;
    }
    if (u == 0)
        snprintf(out, 16, "%uB", (unsigned)bytes);
    else if (v < 9.95)
        snprintf(out, 16, "%.1f%c", v, units[u]);
    else
        snprintf(out, 16, "%.0f%c", v, units[u]);
}

void mvm_disk_volume_table(FILE *out, const struct mvm_disk_volume *v, size_t n)
{
    if (n == 0) {
        fputs("no volumes\n", out);
        return;
    }
    int w = 4; /* "NAME" */
    for (size_t i = 0; i < n; i++)
        if ((int)strlen(v[i].name) > w)
            w = (int)strlen(v[i].name);
    fprintf(out, "%-*s  %6s  %6s  %-16s  %s\n", w, "NAME", "SIZE", "USED", "LAST-USE", "STATE");
    for (size_t i = 0; i < n; i++) {
        char size[16], used[16], when[32] = "?";
        struct tm tm;
        mvm_disk_human_size(v[i].size, size);
        mvm_disk_human_size(v[i].used, used);
        if (localtime_r(&v[i].last_use, &tm) != NULL)
            strftime(when, sizeof when, "%Y-%m-%d %H:%M", &tm);
        fprintf(out, "%-*s  %6s  %6s  %-16s  %s\n", w, v[i].name, size, used, when,
                v[i].in_use ? "in use" : "idle");
    }
}

char **mvm_disk_mkfs_argv(const char *mkfs, const char *image, const struct mvm_disk_mkfs *o)
{
    char **argv = xcalloc(16, sizeof *argv);
    size_t n = 0;
    const char *fixed[] = {mkfs, "-q", "-F", "-m", "0"};
    for (size_t i = 0; i < ARRAY_SIZE(fixed); i++)
        argv[n++] = xstrdup(fixed[i]);
    if (o->label) {
        argv[n++] = xstrdup("-L");
        argv[n++] = xstrndup(o->label, 16); /* ext4's s_volume_name */
    }
    if (!o->journal) {
        argv[n++] = xstrdup("-O");
        argv[n++] = xstrdup("^has_journal");
    }
    /* Lazy init and no discard: the image is a fresh sparse file, already
     * zeros, and stays sparse. */
    cleanup_free char *owner =
        o->owner ? xasprintf("root_owner=%u:%u,", (unsigned)o->uid, (unsigned)o->gid) : xstrdup("");
    argv[n++] = xstrdup("-E");
    argv[n++] = xasprintf("%slazy_itable_init=1,%snodiscard", owner,
                          o->journal ? "lazy_journal_init=1," : "");
    if (o->root_dir) {
        argv[n++] = xstrdup("-d");
        argv[n++] = xstrdup(o->root_dir);
    }
    argv[n++] = xstrdup(image);
    argv[n] = NULL;
    return argv;
}
