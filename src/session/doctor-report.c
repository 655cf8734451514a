/* mvm doctor's results, printed as lines or JSON, and QEMU's answers
 * read.  Pure: no I/O. */
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "doctor.h"
#include "json-cleanup.h"
#include "util.h"

static const char *const status_word[] = {"ok", "warn", "FAIL"};
static const char *const status_json[] = {"ok", "warn", "fail"};

void mvm_doctor_add(struct mvm_doctor_report *r, const char *name, enum mvm_doctor_status st,
                    const char *fix, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *detail = xvasprintf(fmt, ap);
    va_end(ap);
    sanitize_text(detail);
    char *f = fix ? xstrdup(fix) : NULL;
    if (f)
        sanitize_text(f);
    r->checks = xrealloc(r->checks, (r->n + 1) * sizeof *r->checks);
    r->checks[r->n++] = (struct mvm_doctor_check){xstrdup(name), st, detail, f};
}

void mvm_doctor_report_clear(struct mvm_doctor_report *r)
{
    for (size_t i = 0; i < r->n; i++) {
        free(r->checks[i].name);
        free(r->checks[i].detail);
        free(r->checks[i].fix);
    }
    free(r->checks);
    *r = (struct mvm_doctor_report){0};
}

static size_t count(const struct mvm_doctor_report *r, enum mvm_doctor_status st)
{
    size_t n = 0;
    for (size_t i = 0; i < r->n; i++)
        n += r->checks[i].status == st;
    return n;
}

char *mvm_doctor_text(const struct mvm_doctor_report *r)
{
    struct buf b = {0};
    for (size_t i = 0; i < r->n; i++) {
        const struct mvm_doctor_check *c = &r->checks[i];
        buf_printf(&b, "%-4s  %-12s  %s", status_word[c->status], c->name, c->detail);
        if (c->fix && c->status != MVM_DOCTOR_OK)
            buf_printf(&b, "; fix: %s", c->fix);
        buf_printf(&b, "\n");
    }
    size_t failed = count(r, MVM_DOCTOR_FAIL), warned = count(r, MVM_DOCTOR_WARN);
    if (failed > 0)
        buf_printf(&b,
                   "mvm run cannot work here: %zu check%s failed (the FAIL lines say what to do)\n",
                   failed, failed == 1 ? "" : "s");
    else if (warned > 0)
        buf_printf(&b, "mvm run can work here (%zu warning%s)\n", warned, warned == 1 ? "" : "s");
    else
        buf_printf(&b, "mvm run can work here\n");
    buf_append(&b, "", 1);
    return b.data;
}

char *mvm_doctor_json(const struct mvm_doctor_report *r)
{
    cleanup_json json_t *a = json_array();
    for (size_t i = 0; i < r->n; i++) {
        const struct mvm_doctor_check *c = &r->checks[i];
        json_array_append_new(a, json_pack("{s:s, s:s, s:s, s:s?}", "check", c->name, "status",
                                           status_json[c->status], "detail", c->detail, "fix",
                                           c->fix));
    }
    char *text = json_dumps(a, JSON_INDENT(2));
    return text ? text : xstrdup("[]");
}

int mvm_doctor_exit_status(const struct mvm_doctor_report *r)
{
    return count(r, MVM_DOCTOR_FAIL) > 0 ? 1 : 0;
}

int mvm_doctor_qemu_version(const char *text, unsigned v[3])
{
    const char *p = text ? strstr(text, "QEMU emulator version ") : NULL;
    v[0] = v[1] = v[2] = 0;
    if (p == NULL || sscanf(p, "QEMU emulator version %u.%u.%u", &v[0], &v[1], &v[2]) < 2)
        return -1;
    return 0;
}

/* Whether line (up to its newline) names name as the listing does. */
static bool line_names(const char *line, const char *name, bool machines)
{
    size_t len = strlen(name);
    if (machines)
        return strncmp(line, name, len) == 0 && (line[len] == ' ' || line[len] == '\n');
    return str_has_prefix(line, "name \"") && strncmp(line + 6, name, len) == 0 &&
           line[6 + len] == '"';
}

char *mvm_doctor_qemu_lacks(const char *listing, const char *const *names, size_t n, bool machines)
{
    struct buf b = {0};
    for (size_t i = 0; i < n; i++) {
        bool found = false;
        for (const char *line = listing; line && *line && !found;) {
            found = line_names(line, names[i], machines);
            line = strchr(line, '\n');
            line = line ? line + 1 : NULL;
        }
        if (!found)
            buf_printf(&b, "%s%s", b.len ? ", " : "", names[i]);
    }
    if (b.len == 0)
        return NULL;
    buf_append(&b, "", 1);
    return b.data;
}
