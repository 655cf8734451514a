/* disk/seed.c: the NoCloud seed image -- its layout and determinism, read
 * back by the reference tools (isoinfo with Joliet, xorriso, blkid), each
 * refusal right after a case that passes, and -- as "test-seed mount",
 * skipped (77) with the reason without root, loop devices or the kernel's
 * iso9660 -- loop-mounted read-only by Linux's own isofs, the reader the
 * guest uses. */
#include <dirent.h>
#include <stdlib.h>
#include <unistd.h>

#include "tests/unit/boot-test-util.h"

#include "seed.h"

static const char USER_DATA[] = "#cloud-config\nruncmd:\n  - [ echo, hello ]\n";
static const char META_DATA[] = "instance-id: mvm-test\nlocal-hostname: mvm\n";
static const char NET_CONFIG[] = "version: 2\nethernets: {}\n";

static const struct mvm_seed_file three[] = {
    {"user-data", USER_DATA, sizeof USER_DATA - 1},
    {"meta-data", META_DATA, sizeof META_DATA - 1},
    {"network-config", NET_CONFIG, sizeof NET_CONFIG - 1},
};

/* The fullest seed: 16 files, 12 of them with names of 64 characters
 * (so Joliet's root directory takes two sectors and a record must skip
 * to the second), one starting with '.', whose 8.3 aliases clash, an
 * empty file and a 3 MiB "agent". */
struct big_seed {
    struct mvm_seed_file f[MVM_SEED_FILES_MAX];
    char names[MVM_SEED_FILES_MAX][MVM_SEED_NAME_MAX + 1];
    char *agent;
};

static void long_name(char *name, size_t i)
{
    memset(name, 'x', MVM_SEED_NAME_MAX);
    name[MVM_SEED_NAME_MAX] = '\0';
    name[2] = '.'; /* all alias to XX.XX_ but the one starting with '.' */
    name[5] = '-';
    name[8] = '_';
    name[MVM_SEED_NAME_MAX - 1] = (char)('a' + i);
    if (i == 5)
        name[0] = '.';
}

static void big_seed_init(struct big_seed *s)
{
    static const char *const fixed[] = {"user-data", "meta-data", "network-config", "agent"};
    size_t agent_len = 3u << 20;
    s->agent = xmalloc(agent_len);
    fill_test_data(s->agent, agent_len, 7);
    for (size_t i = 0; i < MVM_SEED_FILES_MAX; i++) {
        char *name = s->names[i];
        if (i < ARRAY_SIZE(fixed))
            snprintf(name, sizeof s->names[i], "%s", fixed[i]);
        else
            long_name(name, i);
        s->f[i].name = name;
        s->f[i].data = i == 3 ? s->agent : name;
        s->f[i].len = i == 3 ? agent_len : i == 4 ? 0 : strlen(name);
    }
}

static char *write_image(const char *dir, const struct mvm_seed_file *f, size_t n,
                         const char *label)
{
    struct buf img = {0};
    cleanup_error struct mvm_error *err = NULL;
    assert_no_error(mvm_seed_build(f, n, label, &img, &err), err);
    char *path = xasprintf("%s/seed.iso", dir);
    write_fixture(path, img.data, img.len, 0644);
    buf_free(&img);
    return path;
}

/* ---- the bytes ------------------------------------------------------------- */

static void test_layout(void **state)
{
    (void)state;
    struct buf a = {0}, b = {0};
    cleanup_error struct mvm_error *err = NULL;
    assert_no_error(mvm_seed_build(three, 3, MVM_SEED_LABEL, &a, &err), err);
    /* 16 system sectors, 3 descriptors, 4 path tables, 2 root
     * directories, one sector per file. */
    assert_int_equal(a.len, 28 * MVM_SEED_SECTOR);
    assert_memory_equal(a.data + 16 * 2048, "\001CD001\001", 7);
    assert_memory_equal(a.data + 17 * 2048, "\002CD001\001", 7);
    assert_memory_equal(a.data + 17 * 2048 + 88, "%/E", 3);
    assert_memory_equal(a.data + 18 * 2048, "\377CD001\001", 7);
    assert_memory_equal(a.data + 16 * 2048 + 40, "cidata                          ", 32);
    assert_memory_equal(a.data + 17 * 2048 + 40, "\0c\0i\0d\0a\0t\0a\0 ", 14);
    /* The same input, the same bytes; out is appended to. */
    buf_append(&b, "x", 1);
    assert_no_error(mvm_seed_build(three, 3, MVM_SEED_LABEL, &b, &err), err);
    assert_int_equal(b.len, a.len + 1);
    assert_memory_equal(b.data + 1, a.data, a.len);
    buf_free(&a);
    buf_free(&b);
}

static void test_sizes(void **state)
{
    (void)state;
    struct big_seed s;
    big_seed_init(&s);
    struct buf img = {0};
    cleanup_error struct mvm_error *err = NULL;
    assert_no_error(mvm_seed_build(s.f, MVM_SEED_FILES_MAX, "CIDATA", &img, &err), err);
    assert_int_equal(img.len % MVM_SEED_SECTOR, 0);
    /* Joliet's root (the SVD's root record's data length) is two sectors,
     * the primary one's one. */
    const unsigned char *svd = (unsigned char *)img.data + 17 * 2048;
    const unsigned char *pvd = (unsigned char *)img.data + 16 * 2048;
    assert_int_equal(svd[156 + 10] | svd[156 + 11] << 8, 2 * MVM_SEED_SECTOR);
    assert_int_equal(pvd[156 + 10] | pvd[156 + 11] << 8, MVM_SEED_SECTOR);
    /* 23 sectors before the primary root, 1 + 2 for the roots, the
     * agent's 3 MiB (1536 sectors) and 14 files of a sector each (the
     * empty one has none). */
    assert_int_equal(img.len, (23u + 3 + 1536 + 14) * MVM_SEED_SECTOR);
    buf_free(&img);
    free(s.agent);
}

/* ---- read back by the reference tools -------------------------------------- */

/* f[i]'s bytes are exactly the file at path. */
static void check_file(const char *path, const struct mvm_seed_file *f)
{
    size_t len;
    cleanup_free char *got = read_fixture(path, &len);
    if (len != f->len)
        fail_msg("%s: %zu bytes, want %zu", path, len, f->len);
    if (len)
        assert_memory_equal(got, f->data, len);
}

static void check_isoinfo(const char *tmp, const char *img, const struct mvm_seed_file *f, size_t n,
                          const char *label)
{
    cleanup_free char *d = run_capture("isoinfo -d -i %s", img);
    cleanup_free char *vol = xasprintf("Volume id: %s", label);
    assert_true(has_line(d, vol));
    assert_true(has_line(d, "Joliet with UCS level 3 found"));
    assert_true(has_line(d, "NO Rock Ridge present"));
    cleanup_free char *names = run_capture("isoinfo -J -f -i %s | sort", img);
    assert_int_equal(count_lines(names), n);
    for (size_t i = 0; i < n; i++) {
        cleanup_free char *line = xasprintf("/%s", f[i].name);
        assert_true(has_line(names, line));
        cleanup_free char *out = xasprintf("%s/isoinfo.out", tmp);
        assert_int_equal(run_sh("isoinfo -J -x /%s -i %s > %s", f[i].name, img, out), 0);
        check_file(out, &f[i]);
    }
    /* The primary tree: one 8.3 alias per file, all different. */
    cleanup_free char *primary = run_capture("isoinfo -f -i %s | sort -u | wc -l", img);
    assert_int_equal(atoi(primary), (int)n);
    cleanup_free char *blk = run_capture("blkid -p -o value -s LABEL %s", img);
    cleanup_free char *want = xasprintf("%s\n", label);
    assert_string_equal(blk, want);
    cleanup_free char *type = run_capture("blkid -p -o value -s TYPE %s", img);
    assert_string_equal(type, "iso9660\n");
}

/* Every file's bytes under dir are exactly f's, and dir holds nothing else. */
static void check_tree(const char *dir, const struct mvm_seed_file *f, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        cleanup_free char *path = xasprintf("%s/%s", dir, f[i].name);
        check_file(path, &f[i]);
    }
    cleanup_dir DIR *d = opendir(dir);
    assert_non_null(d);
    size_t seen = 0;
    for (struct dirent *e; (e = readdir(d)) != NULL;) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        bool known = false;
        for (size_t i = 0; i < n; i++)
            known = known || strcmp(e->d_name, f[i].name) == 0;
        if (!known)
            fail_msg("unexpected name '%s' in %s", e->d_name, dir);
        seen++;
    }
    assert_int_equal(seen, n);
}

static void check_xorriso(const char *tmp, const char *img, const struct mvm_seed_file *f, size_t n)
{
    cleanup_free char *out = xasprintf("%s/x", tmp);
    /* Exit status 32 on any SORRY or worse: a malformed image fails. */
    assert_int_equal(run_sh("xorriso -abort_on FAILURE -return_with SORRY 32 -joliet on "
                            "-osirrox on -indev %s -extract / %s >/dev/null 2>&1",
                            img, out),
                     0);
    check_tree(out, f, n);
}

static void test_reference_tools(void **state)
{
    (void)state;
    cleanup_free char *tmp = test_tmpdir();
    cleanup_free char *img = write_image(tmp, three, 3, MVM_SEED_LABEL);
    check_isoinfo(tmp, img, three, 3, MVM_SEED_LABEL);
    check_xorriso(tmp, img, three, 3);
    remove_tree(tmp);
}

static void test_reference_tools_big(void **state)
{
    (void)state;
    struct big_seed s;
    big_seed_init(&s);
    cleanup_free char *tmp = test_tmpdir();
    cleanup_free char *img = write_image(tmp, s.f, MVM_SEED_FILES_MAX, "CIDATA");
    check_isoinfo(tmp, img, s.f, MVM_SEED_FILES_MAX, "CIDATA");
    check_xorriso(tmp, img, s.f, MVM_SEED_FILES_MAX);
    remove_tree(tmp);
    free(s.agent);
}

/* ---- refusals, each after a case that passes ------------------------------- */

/* files[0..n) with files[i] replaced by f is refused with want, out
 * untouched; files itself passes. */
static void refused_with(const struct mvm_seed_file *files, size_t n, size_t i,
                         struct mvm_seed_file f, const char *label, const char *want)
{
    struct mvm_seed_file copy[MVM_SEED_FILES_MAX + 1];
    struct buf out = {0};
    cleanup_error struct mvm_error *err = NULL;
    assert_true(n <= ARRAY_SIZE(copy));
    memcpy(copy, files, n * sizeof *files);
    assert_no_error(mvm_seed_build(copy, n, MVM_SEED_LABEL, &out, &err), err);
    buf_free(&out);
    if (i < n)
        copy[i] = f;
    assert_int_equal(mvm_seed_build(copy, n, label, &out, &err), -1);
    assert_error_contains(err, want);
    assert_int_equal(out.len, 0);
}

static void test_refuse_names(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "",          "User-data",
        "user data", "a/b",
        "a.",        "..",
        ".",         "seed\n",
        "ü",         "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", /* 65 */
    };
    for (size_t k = 0; k < ARRAY_SIZE(bad); k++) {
        struct mvm_seed_file f = {bad[k], "x", 1};
        refused_with(three, 3, 1, f, MVM_SEED_LABEL, "seed: bad file name '");
    }
    struct mvm_seed_file unnamed = {NULL, "x", 1};
    refused_with(three, 3, 1, unnamed, MVM_SEED_LABEL, "seed: bad file name ''");
    struct mvm_seed_file twice = {"user-data", "x", 1};
    refused_with(three, 3, 2, twice, MVM_SEED_LABEL, "seed: two files named 'user-data'");
}

static void test_refuse_label(void **state)
{
    (void)state;
    static const char *const bad[] = {"", "ci data", "cidata.", "cidatacidatacidat" /* 17 */,
                                      "ci\033[2J"};
    for (size_t k = 0; k < ARRAY_SIZE(bad); k++)
        refused_with(three, 3, 3, three[0], bad[k], "seed: bad volume label '");
    refused_with(three, 3, 3, three[0], NULL, "seed: bad volume label ''");
    /* The label's longest and its other characters pass. */
    struct buf out = {0};
    cleanup_error struct mvm_error *err = NULL;
    assert_no_error(mvm_seed_build(three, 3, "Cidata_cidata-16", &out, &err), err);
    buf_free(&out);
}

static void test_refuse_sizes(void **state)
{
    (void)state;
    struct big_seed s;
    big_seed_init(&s);
    struct mvm_seed_file many[MVM_SEED_FILES_MAX + 1];
    memcpy(many, s.f, sizeof s.f);
    many[MVM_SEED_FILES_MAX] = (struct mvm_seed_file){"one-more", "x", 1};
    struct buf out = {0};
    cleanup_error struct mvm_error *err = NULL;
    assert_no_error(mvm_seed_build(many, MVM_SEED_FILES_MAX, MVM_SEED_LABEL, &out, &err), err);
    buf_free(&out);
    assert_int_equal(mvm_seed_build(many, MVM_SEED_FILES_MAX + 1, MVM_SEED_LABEL, &out, &err), -1);
    assert_error_contains(err, "seed: too many files (17; at most 16)");
    assert_int_equal(out.len, 0);
    mvm_error_cleanup(&err);

    /* One file at the limit passes; one byte more does not. */
    char *max = xcalloc(1, MVM_SEED_FILE_MAX + 1);
    struct mvm_seed_file at_max[] = {{"agent", max, MVM_SEED_FILE_MAX}};
    refused_with(at_max, 1, 0, (struct mvm_seed_file){"agent", max, MVM_SEED_FILE_MAX + 1},
                 MVM_SEED_LABEL, "seed: agent is too large (16777217 bytes; at most 16777216)");
    refused_with(three, 3, 0, (struct mvm_seed_file){"user-data", NULL, 1}, MVM_SEED_LABEL,
                 "seed: user-data has 1 bytes but no data");

    /* Four at the limit pass (64 MiB in all); a fifth byte does not. */
    struct mvm_seed_file total[5] = {
        {"a", max, MVM_SEED_FILE_MAX},
        {"b", max, MVM_SEED_FILE_MAX},
        {"c", max, MVM_SEED_FILE_MAX},
        {"d", max, MVM_SEED_FILE_MAX},
        {"e", max, 1},
    };
    assert_no_error(mvm_seed_build(total, 4, MVM_SEED_LABEL, &out, &err), err);
    buf_free(&out);
    assert_int_equal(mvm_seed_build(total, 5, MVM_SEED_LABEL, &out, &err), -1);
    assert_error_contains(err, "seed: the files come to 67108865 bytes; at most 67108864 in all");
    assert_int_equal(out.len, 0);
    free(max);
    free(s.agent);
}

/* ---- loop-mounted by Linux's isofs ------------------------------------------ */

struct mounted {
    char *tmp, *mnt, *dev; /* dev: the loop device, once attached */
    bool is_mounted;
};

static int mount_setup(void **state)
{
    struct mounted *m = xcalloc(1, sizeof *m);
    m->tmp = test_tmpdir();
    m->mnt = xasprintf("%s/mnt", m->tmp);
    mkdir_fixture(m->mnt);
    *state = m;
    return 0;
}

/* Runs however the test ended: the mount and the loop device never
 * outlive it. */
static int mount_teardown(void **state)
{
    struct mounted *m = *state;
    int rc = 0;
    if (m->is_mounted && run_sh("umount %s", m->mnt) != 0)
        rc = -1;
    if (m->dev && run_sh("losetup -d %s", m->dev) != 0)
        rc = -1;
    remove_tree(m->tmp);
    free(m->tmp);
    free(m->mnt);
    free(m->dev);
    free(m);
    return rc;
}

static void mount_and_check(struct mounted *m, const struct mvm_seed_file *f, size_t n,
                            const char *label)
{
    cleanup_free char *img = write_image(m->tmp, f, n, label);
    m->dev = run_capture("losetup --find --show --read-only %s", img);
    m->dev[strcspn(m->dev, "\n")] = '\0';
    assert_int_equal(run_sh("mount -t iso9660 -o ro %s %s", m->dev, m->mnt), 0);
    m->is_mounted = true;
    check_tree(m->mnt, f, n);
    cleanup_free char *blk = run_capture("blkid -p -o value -s LABEL %s", m->dev);
    cleanup_free char *want = xasprintf("%s\n", label);
    assert_string_equal(blk, want);
    /* Mounted read-only, as the guest's cloud-init gets it. */
    cleanup_free char *probe = xasprintf("%s/new", m->mnt);
    assert_int_equal(open(probe, O_WRONLY | O_CREAT, 0644), -1);
}

static void test_mount_three(void **state)
{
    mount_and_check(*state, three, 3, MVM_SEED_LABEL);
}

static void test_mount_big(void **state)
{
    struct big_seed s;
    big_seed_init(&s);
    mount_and_check(*state, s.f, MVM_SEED_FILES_MAX, "CIDATA");
    free(s.agent);
}

static bool kernel_has_iso9660(void)
{
    (void)run_sh("modprobe -q isofs 2>/dev/null");
    return run_sh("grep -qw iso9660 /proc/filesystems") == 0;
}

/* Run as "test-seed mount": a CTest case of its own, skipped (77) with
 * the reason when this machine cannot loop-mount an ISO 9660 image. */
static int mount_tests(void)
{
    if (geteuid() != 0) {
        printf("SKIP: loop-mounting needs root: sudo ctest -R test-seed-mount\n");
        return 77;
    }
    if (!kernel_has_iso9660()) {
        printf("SKIP: this kernel has no iso9660 filesystem (CONFIG_ISO9660_FS)\n");
        return 77;
    }
    if (run_sh("losetup --find >/dev/null 2>&1") != 0) {
        printf("SKIP: no free loop device (losetup --find failed)\n");
        return 77;
    }
    static const char *const tools[] = {"losetup", "mount", "umount", "blkid", NULL};
    require_tools(tools);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_mount_three, mount_setup, mount_teardown),
        cmocka_unit_test_setup_teardown(test_mount_big, mount_setup, mount_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

int main(int argc, char **argv)
{
    if (argc == 2 && strcmp(argv[1], "mount") == 0)
        return mount_tests();
    static const char *const tools[] = {"isoinfo", "xorriso", "blkid", NULL};
    require_tools(tools);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_layout),          cmocka_unit_test(test_sizes),
        cmocka_unit_test(test_reference_tools), cmocka_unit_test(test_reference_tools_big),
        cmocka_unit_test(test_refuse_names),    cmocka_unit_test(test_refuse_label),
        cmocka_unit_test(test_refuse_sizes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
