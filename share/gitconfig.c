/* git's config file syntax, read the way git's own parser (config.c,
 * git_parse_source) reads it, so that a variable git would use is never
 * one this parser missed: sections with and without a quoted subsection,
 * the old [section.subsection] form, a variable on the same line as its
 * section header, bare boolean keys, quotes, escapes, line continuations,
 * comments, CRLF and a leading UTF-8 BOM.  Pure: it works on a buffer and
 * calls back for each variable.  Input is guest-written and fuzzed. */
#include <string.h>

#include "audit.h"
#include "util.h"

struct reader {
    const char *p, *end;
    unsigned line;
    bool eof;
};

/* One character, as git's get_next_char(): CRLF reads as LF and the end
 * of the input as a final LF (with eof set). */
static int next_char(struct reader *r)
{
    if (r->p == r->end) {
        r->eof = true;
        return '\n';
    }
    int c = (unsigned char)*r->p++;
    if (c == '\r' && r->p < r->end && *r->p == '\n')
        c = (unsigned char)*r->p++;
    if (c == '\n')
        r->line++;
    return c;
}

static bool is_space(int c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static bool is_key_char(int c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-';
}

static int lower(int c)
{
    return c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c;
}

static void reset(struct buf *b)
{
    b->len = 0;
}

static void add(struct buf *b, int c)
{
    char ch = (char)c;
    buf_append(b, &ch, 1);
}

static const char *str(struct buf *b)
{
    buf_append(b, "", 1);
    b->len--;
    return b->data;
}

/* [section "sub"]: after the blank that ended the section's name. */
static int extended_header(struct reader *r, int c, struct buf *sub)
{
    do {
        if (c == '\n')
            return -1;
        c = next_char(r);
    } while (is_space(c));
    if (c != '"')
        return -1;
    for (;;) {
        c = next_char(r);
        if (c == '\n')
            return -1;
        if (c == '"')
            break;
        if (c == '\\') {
            c = next_char(r);
            if (c == '\n')
                return -1;
        }
        add(sub, c);
    }
    return next_char(r) == ']' ? 0 : -1;
}

/* After '['.  The old form [section.sub] lowercases the subsection, as
 * git does; *has_sub says whether there is one. */
static int header(struct reader *r, struct buf *section, struct buf *sub, bool *has_sub)
{
    reset(section);
    reset(sub);
    *has_sub = false;
    for (;;) {
        int c = next_char(r);
        if (r->eof)
            return -1;
        if (c == ']')
            break;
        if (is_space(c)) {
            if (*has_sub) /* [a.b "c"] is a.b.c to git */
                add(sub, '.');
            *has_sub = true;
            if (extended_header(r, c, sub) < 0)
                return -1;
            break;
        }
        if (!is_key_char(c) && c != '.')
            return -1;
        if (c == '.' && !*has_sub) {
            *has_sub = true;
            continue;
        }
        add(*has_sub ? sub : section, lower(c));
    }
    return section->len == 0 && !*has_sub ? -1 : 0;
}

/* After '=': the value up to the end of its (possibly continued) line. */
static int value(struct reader *r, struct buf *v)
{
    bool quote = false, comment = false;
    size_t trim = 0;
    reset(v);
    for (;;) {
        int c = next_char(r);
        if (c == '\n') {
            if (quote)
                return -1;
            if (trim)
                v->len = trim;
            return 0;
        }
        if (comment)
            continue;
        if (is_space(c) && !quote) {
            if (!trim)
                trim = v->len;
            if (v->len)
                add(v, c);
            continue;
        }
        if (!quote && (c == ';' || c == '#')) {
            comment = true;
            continue;
        }
        trim = 0;
        if (c == '\\') {
            c = next_char(r);
            switch (c) {
            case '\n':
                continue;
            case 't':
                c = '\t';
                break;
            case 'b':
                c = '\b';
                break;
            case 'n':
                c = '\n';
                break;
            case '\\':
            case '"':
                break;
            default:
                return -1;
            }
            add(v, c);
            continue;
        }
        if (c == '"') {
            quote = !quote;
            continue;
        }
        add(v, c);
    }
}

struct parser {
    struct reader r;
    struct buf section, sub, key, val;
    bool has_sub;
    unsigned start; /* the line the current header or variable starts on */
};

/* A variable whose first character c was read; calls fn. */
static int variable(struct parser *p, int c, mvm_gitconfig_fn fn, void *arg)
{
    reset(&p->key);
    add(&p->key, lower(c));
    for (;;) {
        c = next_char(&p->r);
        if (p->r.eof || !is_key_char(c))
            break;
        add(&p->key, lower(c));
    }
    while (c == ' ' || c == '\t')
        c = next_char(&p->r);
    bool bare = c == '\n';
    if (!bare && (c != '=' || value(&p->r, &p->val) < 0))
        return -1;
    struct mvm_gitconfig_var var = {
        .section = str(&p->section),
        .subsection = p->has_sub ? str(&p->sub) : NULL,
        .key = str(&p->key),
        .value = bare ? NULL : str(&p->val),
        .line = p->start,
    };
    return fn(arg, &var) != 0 ? 1 : 0;
}

static int parse(struct parser *p, mvm_gitconfig_fn fn, void *arg)
{
    bool comment = false;
    if (p->r.end - p->r.p >= 3 && memcmp(p->r.p, "\xef\xbb\xbf", 3) == 0)
        p->r.p += 3;
    for (;;) {
        int c = next_char(&p->r);
        if (c == '\n') {
            if (p->r.eof)
                return 0;
            comment = false;
            continue;
        }
        if (comment || is_space(c))
            continue;
        if (c == '#' || c == ';') {
            comment = true;
            continue;
        }
        p->start = p->r.line;
        if (c == '[') {
            if (header(&p->r, &p->section, &p->sub, &p->has_sub) < 0)
                return -1;
            continue;
        }
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')))
            return -1;
        int rc = variable(p, c, fn, arg);
        if (rc != 0)
            return rc;
    }
}

int mvm_gitconfig_parse(const char *text, size_t len, mvm_gitconfig_fn fn, void *arg,
                        unsigned *err_line)
{
    struct parser p = {.r = {text, text + len, 1, false}};
    int rc = parse(&p, fn, arg);
    if (rc < 0 && err_line)
        *err_line = p.start;
    buf_free(&p.section);
    buf_free(&p.sub);
    buf_free(&p.key);
    buf_free(&p.val);
    return rc < 0 ? -1 : 0;
}
