/* The NoCloud seed as an ISO 9660 image with Joliet names (ECMA-119 and
 * Microsoft's Joliet specification), built in memory.  Pure.
 *
 * Why ISO 9660 and not FAT: a seed is written once and only read, and
 * ISO 9660 is a read-only format -- no allocation table, no free-space
 * bookkeeping, no cluster-size choice: each file is one run of 2048-byte
 * sectors and the root directory a list of records, so the writer is
 * layout arithmetic.  FAT would also need generated 8.3 aliases with LFN
 * checksums, two FAT copies and a FAT12/FAT16 choice by size, and its
 * labels are upper case by convention.  It is also cloud-localds's
 * default.
 *
 * Why Joliet and not Rock Ridge: Joliet's UCS-2 names (up to 64
 * characters, case kept) are what Linux's isofs shows when a volume has
 * Joliet and no Rock Ridge, so the guest sees "user-data" exactly.  Rock
 * Ridge needs SUSP entries (SP, ER, NM, ...) in every record, and Linux
 * would prefer it to Joliet: one tree that matters is enough.  The
 * primary tree gets 8.3 upper-case aliases for readers without Joliet.
 *
 * Layout: sectors 0-15 empty (system area), 16 the primary volume
 * descriptor, 17 Joliet's supplementary one, 18 the terminator, 19-22 the
 * path tables (primary L and M, Joliet L and M; one entry each, the
 * root), then the primary root directory, Joliet's root directory, and
 * the files, each from a sector of its own (an empty file has extent 0).
 * Every timestamp is 1970-01-01 00:00:00 UTC. */
#include "seed.h"

#include "disk-int.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define SECTOR         MVM_SEED_SECTOR
#define LBA_PVD        16
#define LBA_SVD        17
#define LBA_TERM       18
#define LBA_PATH       19 /* primary L, primary M, Joliet L, Joliet M */
#define LBA_ROOT       23
#define PATH_TABLE_LEN 10 /* one record: the root */
#define ROOT_RECORD    34 /* a record whose identifier is one byte */

struct entry {
    const struct mvm_seed_file *f;
    char base[9], ext[4]; /* the primary tree's 8.3 alias, upper case */
    uint32_t lba;
};

struct layout {
    struct entry e[MVM_SEED_FILES_MAX];
    struct entry *primary[MVM_SEED_FILES_MAX]; /* each tree's record order */
    struct entry *joliet[MVM_SEED_FILES_MAX];
    size_t n;
    uint32_t root_lba, root_len, jroot_lba, jroot_len, sectors;
};

/* ---- checks ---------------------------------------------------------------- */

static bool name_ok(const char *name)
{
    size_t n = strnlen(name, MVM_SEED_NAME_MAX + 1);
    /* isofs drops a Joliet name's trailing dots, so "a." would read as "a". */
    if (n == 0 || n > MVM_SEED_NAME_MAX || name[n - 1] == '.')
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-'))
            return false;
    }
    return true;
}

static bool label_ok(const char *label)
{
    size_t n = strnlen(label, MVM_SEED_LABEL_MAX + 1);
    if (n == 0 || n > MVM_SEED_LABEL_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = label[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-'))
            return false;
    }
    return true;
}

static int check_file(const struct mvm_seed_file *files, size_t i, struct mvm_error **err)
{
    const struct mvm_seed_file *f = &files[i];
    if (f->name == NULL || !name_ok(f->name)) {
        cleanup_free char *s = mvm_disk_shown(f->name ? f->name : "");
        return mvm_error_set(err, 0,
                             "seed: bad file name '%s': use 1 to %d of a-z, 0-9, '.', '_', '-', "
                             "not ending in '.'",
                             s, MVM_SEED_NAME_MAX);
    }
    for (size_t j = 0; j < i; j++)
        if (strcmp(files[j].name, f->name) == 0)
            return mvm_error_set(err, 0, "seed: two files named '%s'", f->name);
    if (f->len > MVM_SEED_FILE_MAX)
        return mvm_error_set(err, 0, "seed: %s is too large (%zu bytes; at most %u)", f->name,
                             f->len, MVM_SEED_FILE_MAX);
    if (f->len > 0 && f->data == NULL)
        return mvm_error_set(err, 0, "seed: %s has %zu bytes but no data", f->name, f->len);
    return 0;
}

static int check_input(const struct mvm_seed_file *files, size_t n, const char *label,
                       struct mvm_error **err)
{
    if (label == NULL || !label_ok(label)) {
        cleanup_free char *s = mvm_disk_shown(label ? label : "");
        return mvm_error_set(err, 0,
                             "seed: bad volume label '%s': use 1 to %d letters, digits, '_' or '-'",
                             s, MVM_SEED_LABEL_MAX);
    }
    if (n > MVM_SEED_FILES_MAX)
        return mvm_error_set(err, 0, "seed: too many files (%zu; at most %d)", n,
                             MVM_SEED_FILES_MAX);
    size_t total = 0;
    for (size_t i = 0; i < n; i++) {
        if (check_file(files, i, err) < 0)
            return -1;
        total += files[i].len;
    }
    if (total > MVM_SEED_TOTAL_MAX)
        return mvm_error_set(err, 0, "seed: the files come to %zu bytes; at most %u in all", total,
                             MVM_SEED_TOTAL_MAX);
    return 0;
}

/* ---- the primary tree's aliases and both trees' order ---------------------- */

static char d_char(char c)
{
    if (c >= 'a' && c <= 'z')
        return (char)(c - 'a' + 'A');
    return (c >= '0' && c <= '9') ? c : '_';
}

/* dst gets up to max d-characters of src[0..len). */
static void map_part(char *dst, size_t max, const char *src, size_t len)
{
    size_t k = len < max ? len : max;
    for (size_t i = 0; i < k; i++)
        dst[i] = d_char(src[i]);
    dst[k] = '\0';
}

static bool alias_taken(const struct layout *l, size_t upto, const struct entry *e)
{
    for (size_t j = 0; j < upto; j++)
        if (strcmp(l->e[j].base, e->base) == 0 && strcmp(l->e[j].ext, e->ext) == 0)
            return true;
    return false;
}

/* "network-config" -> NETWORK_, "agent.tar.gz" -> AGENT_TA.GZ; a clash
 * becomes the first 6 characters and two digits (at most 16 files: one
 * of 00..16 is free). */
static void make_alias(struct layout *l, size_t i)
{
    struct entry *e = &l->e[i];
    const char *name = e->f->name, *dot = strrchr(name, '.');
    size_t blen = dot ? (size_t)(dot - name) : strlen(name);
    map_part(e->base, 8, name, blen);
    map_part(e->ext, 3, dot ? dot + 1 : "", dot ? strlen(dot + 1) : 0);
    size_t keep = strnlen(e->base, 6);
    for (unsigned k = 0; alias_taken(l, i, e) && k < 100; k++) {
        e->base[keep] = (char)('0' + k / 10);
        e->base[keep + 1] = (char)('0' + k % 10);
        e->base[keep + 2] = '\0';
    }
}

/* ECMA-119 9.3: by name, then extension, each padded with spaces. */
static int cmp_padded(const char *a, size_t alen, const char *b, size_t blen)
{
    for (size_t i = 0; i < alen || i < blen; i++) {
        unsigned char ca = i < alen ? (unsigned char)a[i] : ' ';
        unsigned char cb = i < blen ? (unsigned char)b[i] : ' ';
        if (ca != cb)
            return ca < cb ? -1 : 1;
    }
    return 0;
}

static int cmp_primary(const void *pa, const void *pb)
{
    const struct entry *a = *(struct entry *const *)pa, *b = *(struct entry *const *)pb;
    int c = cmp_padded(a->base, strlen(a->base), b->base, strlen(b->base));
    return c ? c : cmp_padded(a->ext, strlen(a->ext), b->ext, strlen(b->ext));
}

/* Joliet's names split the same way, at the first '.'. */
static int cmp_joliet(const void *pa, const void *pb)
{
    const char *a = (*(struct entry *const *)pa)->f->name;
    const char *b = (*(struct entry *const *)pb)->f->name;
    size_t an = strcspn(a, "."), bn = strcspn(b, ".");
    int c = cmp_padded(a, an, b, bn);
    return c ? c : cmp_padded(a + an, strlen(a + an), b + bn, strlen(b + bn));
}

/* ---- encoding -------------------------------------------------------------- */

static void le16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static void be16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static void le32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static void be32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * (3 - i)));
}

static void both16(uint8_t *p, uint16_t v)
{
    le16(p, v);
    be16(p + 2, v);
}

static void both32(uint8_t *p, uint32_t v)
{
    le32(p, v);
    be32(p + 4, v);
}

/* A file identifier: the primary tree's "BASE.EXT;1" (ECMA-119 7.5), or
 * Joliet's name in UCS-2 big-endian without the version, which isofs
 * would strip anyway (and 64 characters with it would be 132 bytes, over
 * Joliet's 128).  Returns its length; id has room for 128 bytes. */
static size_t file_id(const struct entry *e, bool joliet, uint8_t id[128])
{
    size_t k = 0;
    if (joliet) {
        for (const char *s = e->f->name; *s; s++) {
            id[k++] = 0;
            id[k++] = (uint8_t)*s;
        }
        return k;
    }
    for (const char *s = e->base; *s; s++)
        id[k++] = (uint8_t)*s;
    id[k++] = '.';
    for (const char *s = e->ext; *s; s++)
        id[k++] = (uint8_t)*s;
    id[k++] = ';';
    id[k++] = '1';
    return k;
}

static size_t record_len(size_t id_len)
{
    return 33 + id_len + (id_len % 2 == 0); /* padded to an even length */
}

/* ECMA-119 9.1; p has room for record_len(id_len) bytes. */
static void put_record(uint8_t *p, uint32_t lba, uint32_t len, bool dir, const uint8_t *id,
                       size_t id_len)
{
    static const uint8_t epoch[7] = {70, 1, 1, 0, 0, 0, 0}; /* 1970-01-01, UTC */
    p[0] = (uint8_t)record_len(id_len);
    both32(p + 2, lba);
    both32(p + 10, len);
    memcpy(p + 18, epoch, sizeof epoch);
    p[25] = dir ? 0x02 : 0x00;
    both16(p + 28, 1); /* volume sequence number */
    p[32] = (uint8_t)id_len;
    memcpy(p + 33, id, id_len);
}

/* Lays out (dir NULL) or writes one tree's root directory: ".", "..", then
 * the files in that tree's order, no record crossing a sector boundary
 * (ECMA-119 6.8.1.1).  Returns its length, whole sectors. */
static uint32_t emit_root(uint8_t *dir, const struct layout *l, bool joliet, uint32_t self,
                          uint32_t self_len)
{
    static const uint8_t dot = 0, dotdot = 1;
    if (dir) {
        put_record(dir, self, self_len, true, &dot, 1);
        put_record(dir + ROOT_RECORD, self, self_len, true, &dotdot, 1);
    }
    size_t off = 2 * ROOT_RECORD;
    for (size_t i = 0; i < l->n; i++) {
        const struct entry *e = joliet ? l->joliet[i] : l->primary[i];
        uint8_t id[128];
        size_t id_len = file_id(e, joliet, id), len = record_len(id_len);
        if (off % SECTOR + len > SECTOR)
            off += SECTOR - off % SECTOR;
        if (dir)
            put_record(dir + off, e->lba, (uint32_t)e->f->len, false, id, id_len);
        off += len;
    }
    return (uint32_t)((off + SECTOR - 1) / SECTOR * SECTOR);
}

/* ---- layout ---------------------------------------------------------------- */

static void plan(struct layout *l, const struct mvm_seed_file *files, size_t n)
{
    l->n = n;
    for (size_t i = 0; i < n; i++) {
        l->e[i].f = &files[i];
        make_alias(l, i);
        l->primary[i] = l->joliet[i] = &l->e[i];
    }
    qsort(l->primary, n, sizeof l->primary[0], cmp_primary);
    qsort(l->joliet, n, sizeof l->joliet[0], cmp_joliet);
    l->root_lba = LBA_ROOT;
    l->root_len = emit_root(NULL, l, false, 0, 0);
    l->jroot_lba = l->root_lba + l->root_len / SECTOR;
    l->jroot_len = emit_root(NULL, l, true, 0, 0);
    uint32_t next = l->jroot_lba + l->jroot_len / SECTOR;
    for (size_t i = 0; i < n; i++) {
        l->e[i].lba = files[i].len ? next : 0;
        next += (uint32_t)((files[i].len + SECTOR - 1) / SECTOR);
    }
    l->sectors = next;
}

/* ---- volume descriptors ---------------------------------------------------- */

/* A text field: the primary's in bytes padded with spaces, Joliet's in
 * UCS-2 big-endian padded with UCS-2 spaces (an odd field's last byte 0). */
static void put_text(uint8_t *p, size_t size, const char *s, bool joliet)
{
    size_t n = strlen(s);
    for (size_t i = 0; i < size; i++) {
        size_t c = joliet ? i / 2 : i;
        char ch = c < n ? s[c] : ' ';
        if (joliet)
            p[i] = i % 2 == 0 ? 0 : (uint8_t)ch;
        else
            p[i] = (uint8_t)ch;
    }
}

/* ECMA-119 8.4.26.1: "YYYYMMDDHHMMSScc" and the zone; all '0' = unset. */
static void put_vd_date(uint8_t *p, bool set)
{
    memcpy(p, set ? "1970010100000000" : "0000000000000000", 16);
    p[16] = 0;
}

/* The primary (8.4) or Joliet's supplementary (8.5) volume descriptor. */
static void put_volume(uint8_t *p, const struct layout *l, const char *label, bool joliet)
{
    static const uint8_t dot = 0;
    p[0] = joliet ? 2 : 1;
    memcpy(p + 1, "CD001", 5);
    p[6] = 1;
    put_text(p + 8, 32, "", joliet);     /* system */
    put_text(p + 40, 32, label, joliet); /* volume */
    both32(p + 80, l->sectors);
    if (joliet)
        memcpy(p + 88, "%/E", 3); /* UCS-2 level 3 */
    both16(p + 120, 1);           /* volume set size */
    both16(p + 124, 1);           /* volume sequence number */
    both16(p + 128, SECTOR);
    both32(p + 132, PATH_TABLE_LEN);
    uint32_t path = LBA_PATH + (joliet ? 2 : 0);
    le32(p + 140, path);
    be32(p + 148, path + 1);
    put_record(p + 156, joliet ? l->jroot_lba : l->root_lba, joliet ? l->jroot_len : l->root_len,
               true, &dot, 1);
    put_text(p + 190, 128, "", joliet);    /* volume set */
    put_text(p + 318, 128, "", joliet);    /* publisher */
    put_text(p + 446, 128, "", joliet);    /* data preparer */
    put_text(p + 574, 128, "MVM", joliet); /* application */
    put_text(p + 702, 3 * 37, "", joliet); /* copyright, abstract, bibliography */
    put_vd_date(p + 813, true);            /* created */
    put_vd_date(p + 830, true);            /* modified */
    put_vd_date(p + 847, false);           /* expires */
    put_vd_date(p + 864, false);           /* effective */
    p[881] = 1;                            /* file structure version */
}

/* ECMA-119 9.4: the root's record, little-endian (L) or big-endian (M). */
static void put_path_tables(uint8_t *p, uint32_t root_lba)
{
    uint8_t *m = p + SECTOR;
    p[0] = m[0] = 1; /* identifier length */
    le32(p + 2, root_lba);
    be32(m + 2, root_lba);
    le16(p + 6, 1); /* parent: itself */
    be16(m + 6, 1);
}

/* ---- the image ------------------------------------------------------------- */

int mvm_seed_build(const struct mvm_seed_file *files, size_t n, const char *label, struct buf *out,
                   struct mvm_error **err)
{
    if (check_input(files, n, label, err) < 0)
        return -1;
    cleanup_free struct layout *l = xcalloc(1, sizeof *l);
    plan(l, files, n);
    size_t size = (size_t)l->sectors * SECTOR;
    cleanup_free uint8_t *img = xcalloc(1, size);
    put_volume(img + LBA_PVD * SECTOR, l, label, false);
    put_volume(img + LBA_SVD * SECTOR, l, label, true);
    uint8_t *term = img + LBA_TERM * SECTOR;
    term[0] = 255;
    memcpy(term + 1, "CD001", 5);
    term[6] = 1;
    put_path_tables(img + LBA_PATH * SECTOR, l->root_lba);
    put_path_tables(img + (LBA_PATH + 2) * SECTOR, l->jroot_lba);
    emit_root(img + (size_t)l->root_lba * SECTOR, l, false, l->root_lba, l->root_len);
    emit_root(img + (size_t)l->jroot_lba * SECTOR, l, true, l->jroot_lba, l->jroot_len);
    for (size_t i = 0; i < n; i++)
        if (files[i].len)
            memcpy(img + (size_t)l->e[i].lba * SECTOR, files[i].data, files[i].len);
    buf_append(out, img, size);
    return 0;
}
