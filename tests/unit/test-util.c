/* util.c: the text sanitizer that every printed guest/QEMU-derived
 * message goes through. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "sha256.h"
#include "util.h"

static void check(const char *in, const char *want)
{
    char *s = xstrdup(in);
    sanitize_text(s);
    assert_string_equal(s, want);
    free(s);
}

static void test_plain_text_unchanged(void **state)
{
    check("hello, world: /tmp/x (42)", "hello, world: /tmp/x (42)");
    check("", "");
}

static void test_utf8_kept(void **state)
{
    check("caf\xc3\xa9 \xc2\xa9 \xe2\x82\xac \xf0\x9f\x98\x80",
          "caf\xc3\xa9 \xc2\xa9 \xe2\x82\xac \xf0\x9f\x98\x80");
}

static void test_c0_and_del_replaced(void **state)
{
    check("a\x1b]52;c;SGk=\x07z", "a?]52;c;SGk=?z");
    check("tab\there\nnl\rcr\x7f", "tab?here?nl?cr?");
}

static void test_c1_replaced(void **state)
{
    /* U+009B (CSI) and U+009D (OSC) encoded, and raw 8-bit bytes */
    check("x\xc2\x9b"
          "21t",
          "x?"
          "?"
          "21t");
    check("\xc2\x9d"
          "52;c;x\xc2\x9c",
          "??52;c;x??");
    check("raw\x9b"
          "1m",
          "raw?1m");
}

static void test_invalid_utf8_replaced(void **state)
{
    check("\xc0\xaf", "??");          /* overlong '/' */
    check("\xe2\x82", "??");          /* truncated */
    check("\xff\xfe", "??");          /* never valid */
    check("ok\xe2\x28\xa1", "ok?(?"); /* bad continuation */
}

static void hex(const uint8_t *d, char *out)
{
    for (int i = 0; i < 32; i++)
        sprintf(out + 2 * i, "%02x", d[i]);
}

/* FIPS 180-4 / NIST example vectors. */
/* More fds than the event loop's old fixed array (41) held: each one
 * keeps its index, a missing one (-1) takes none. */
static void test_pollset_grows(void **state)
{
    (void)state;
    struct mvm_pollset ps = {0};
    for (int i = 0; i < 500; i++) {
        assert_int_equal(mvm_pollset_add(&ps, -1, POLLIN), -1);
        assert_int_equal(mvm_pollset_add(&ps, 1000 + i, POLLIN), i);
    }
    assert_int_equal(ps.n, 500);
    for (int i = 0; i < 500; i++)
        assert_int_equal(ps.fds[i].fd, 1000 + i);
    struct pollfd *room = mvm_pollset_reserve(&ps, 4);
    assert_ptr_equal(room, ps.fds + 500);
    room[0] = (struct pollfd){.fd = 7, .events = POLLOUT};
    ps.n++;
    assert_int_equal(mvm_pollset_add(&ps, 8, POLLIN), 501);
    assert_int_equal(ps.fds[500].fd, 7);
    mvm_pollset_free(&ps);
    assert_null(ps.fds);
    assert_int_equal(ps.n, 0);
}

static void test_sha256_vectors(void **state)
{
    static const struct {
        const char *in;
        const char *want;
    } v[] = {
        {"", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
        {"abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"},
        {"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
         "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"},
    };
    for (size_t i = 0; i < ARRAY_SIZE(v); i++) {
        struct mvm_sha256 c;
        uint8_t d[32];
        char out[65];
        mvm_sha256_init(&c);
        /* fed one byte at a time: block boundaries in every position */
        for (size_t j = 0; v[i].in[j]; j++)
            mvm_sha256_update(&c, v[i].in + j, 1);
        mvm_sha256_final(&c, d);
        hex(d, out);
        assert_string_equal(out, v[i].want);
    }
    struct mvm_sha256 c;
    uint8_t d[32];
    char out[65];
    char *a = xmalloc(1000000);
    memset(a, 'a', 1000000);
    mvm_sha256_init(&c);
    mvm_sha256_update(&c, a, 1000000);
    mvm_sha256_final(&c, d);
    free(a);
    hex(d, out);
    assert_string_equal(out, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

/* dir/f holding text, with mode; its path in file. */
static void write_test_file(const char *dir, char *file, size_t size, const char *text, mode_t mode)
{
    snprintf(file, size, "%s/f", dir);
    FILE *f = fopen(file, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    assert_int_equal(chmod(file, mode), 0);
}

/* read_regular_as: the text and the opened file's stat; what is not a
 * regular file, is too large, or (nofollow) is a symlink is refused. */
static void test_read_regular_as(void **state)
{
    (void)state;
    char dir[] = "/tmp/mvm-test-util.XXXXXX";
    assert_non_null(mkdtemp(dir));
    char file[64], link[64];
    write_test_file(dir, file, sizeof file, "key=value\n", 0640);
    snprintf(link, sizeof link, "%s/l", dir);
    assert_int_equal(symlink(file, link), 0);
    struct stat st;
    size_t len = 0;
    char *t = read_regular_as(getuid(), getgid(), file, 64, true, &st, &len);
    assert_non_null(t);
    assert_string_equal(t, "key=value\n");
    assert_int_equal(len, 10);
    assert_int_equal(st.st_mode & 07777, 0640);
    assert_int_equal(st.st_uid, getuid());
    free(t);
    t = read_regular_as(getuid(), getgid(), link, 64, false, &st, &len);
    assert_non_null(t);
    free(t);
    errno = 0;
    assert_null(read_regular_as(getuid(), getgid(), link, 64, true, &st, &len));
    assert_int_equal(errno, ELOOP);
    assert_null(read_regular_as(getuid(), getgid(), file, 9, true, &st, &len));
    assert_int_equal(errno, EINVAL);
    assert_null(read_regular_as(getuid(), getgid(), dir, 64, true, &st, &len));
    assert_int_equal(errno, EINVAL);
    unlink(link);
    unlink(file);
    rmdir(dir);
}

/* read_file_head_as: the first bytes only, a shorter file whole; with
 * the given user's rights (as nobody when the test runs as root). */
static void test_read_file_head_as(void **state)
{
    (void)state;
    char dir[] = "/tmp/mvm-test-util.XXXXXX";
    assert_non_null(mkdtemp(dir));
    assert_int_equal(chmod(dir, 0755), 0);
    char file[64];
    write_test_file(dir, file, sizeof file, "0123456789", 0644);
    uid_t uid = getuid() == 0 ? 65534 : getuid();
    gid_t gid = getuid() == 0 ? 65534 : getgid();
    size_t len = 0;
    char *t = read_file_head_as(uid, gid, file, 4, &len);
    assert_non_null(t);
    assert_string_equal(t, "0123");
    assert_int_equal(len, 4);
    free(t);
    t = read_file_head_as(uid, gid, file, 64, &len);
    assert_non_null(t);
    assert_string_equal(t, "0123456789");
    assert_int_equal(len, 10);
    free(t);
    if (getuid() == 0) { /* the user's rights, not root's */
        assert_int_equal(chmod(file, 0600), 0);
        errno = 0;
        assert_null(read_file_head_as(uid, gid, file, 4, &len));
        assert_int_equal(errno, EACCES);
        t = read_file_head_as(0, 0, file, 4, &len);
        assert_non_null(t);
        free(t);
    }
    errno = 0;
    assert_null(read_file_head_as(uid, gid, "/nonexistent/mvm", 4, &len));
    assert_int_equal(errno, ENOENT);
    unlink(file);
    rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plain_text_unchanged),  cmocka_unit_test(test_utf8_kept),
        cmocka_unit_test(test_c0_and_del_replaced),   cmocka_unit_test(test_c1_replaced),
        cmocka_unit_test(test_invalid_utf8_replaced), cmocka_unit_test(test_sha256_vectors),
        cmocka_unit_test(test_pollset_grows),         cmocka_unit_test(test_read_regular_as),
        cmocka_unit_test(test_read_file_head_as),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
