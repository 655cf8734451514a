/* Helpers shared by the boot-path unit tests (cpio, compress, modules,
 * kernel, initramfs): temporary directories, fixture files, and running
 * the reference command-line tools (cpio, lz4, xz, zstd, gzip) the tests
 * check mvm's output against. */
#ifndef MVM_BOOT_TEST_UTIL_H
#define MVM_BOOT_TEST_UTIL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "error.h"
#include "util.h"

static inline void assert_error_contains(const struct mvm_error *err, const char *needle)
{
    if (err == NULL)
        fail_msg("expected an error containing \"%s\", got none", needle);
    if (strstr(err->msg, needle) == NULL)
        fail_msg("error \"%s\" does not contain \"%s\"", err->msg, needle);
}

static inline void assert_no_error(int rc, const struct mvm_error *err)
{
    if (rc < 0 || err != NULL)
        fail_msg("unexpected error: %s", err ? err->msg : "(rc < 0 without an error)");
}

/* argv (freed) is exactly want (NULL-terminated). */
static inline void assert_argv(char **argv, const char *const *want)
{
    size_t i = 0;
    for (; want[i]; i++) {
        assert_non_null(argv[i]);
        assert_string_equal(argv[i], want[i]);
    }
    assert_null(argv[i]);
    mvm_strv_free(argv);
}

/* A fresh directory under $TMPDIR; the caller removes it with remove_tree. */
static inline char *test_tmpdir(void)
{
    const char *base = getenv("TMPDIR");
    char *path = xasprintf("%s/mvm-test-XXXXXX", base && *base ? base : "/tmp");
    if (mkdtemp(path) == NULL)
        fail_msg("mkdtemp %s: %s", path, strerror(errno));
    return path;
}

static inline void write_fixture(const char *path, const void *data, size_t len, mode_t mode)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
    if (fd < 0)
        fail_msg("creating %s: %s", path, strerror(errno));
    assert_int_equal(write_all(fd, data, len), 0);
    assert_int_equal(fchmod(fd, mode), 0);
    assert_int_equal(close(fd), 0);
}

static inline void write_text(const char *path, const char *text)
{
    write_fixture(path, text, strlen(text), 0644);
}

static inline void mkdir_fixture(const char *path)
{
    if (mkdir_p(path, 0755) < 0)
        fail_msg("mkdir %s: %s", path, strerror(errno));
}

/* Runs a shell command; returns its exit status (-1 if it died). */
static inline int run_sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static inline int run_sh(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    cleanup_free char *cmd = xvasprintf(fmt, ap);
    va_end(ap);
    int st = system(cmd);
    return st != -1 && WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* A command's whole stdout; fails the test when it exits non-zero. */
static inline char *run_capture(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static inline char *run_capture(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    cleanup_free char *cmd = xvasprintf(fmt, ap);
    va_end(ap);
    FILE *p = popen(cmd, "r");
    if (p == NULL)
        fail_msg("popen %s: %s", cmd, strerror(errno));
    struct buf b = {0};
    char chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, p)) > 0)
        buf_append(&b, chunk, n);
    buf_append(&b, "", 1);
    int st = pclose(p);
    if (st == -1 || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
        fail_msg("\"%s\" failed (status %d)", cmd, st);
    return b.data;
}

static inline bool have_tool(const char *name)
{
    return run_sh("command -v %s >/dev/null 2>&1", name) == 0;
}

/* Exits 77 (skip) naming the first missing tool, before any test runs. */
static inline void require_tools(const char *const *tools)
{
    for (; *tools; tools++) {
        if (!have_tool(*tools)) {
            printf("skip: the reference tool '%s' is not installed\n", *tools);
            exit(77);
        }
    }
}

static inline char *read_fixture(const char *path, size_t *len)
{
    char *data = read_file(path, 1u << 30, len);
    if (data == NULL)
        fail_msg("reading %s: %s", path, strerror(errno));
    return data;
}

/* Deterministic bytes that compress somewhat: runs of text mixed with
 * pseudo-random noise, so codecs see both matches and literals. */
static inline void fill_test_data(char *p, size_t len, uint32_t seed)
{
    static const char text[] = "the quick brown fox jumps over the lazy dog; ";
    uint32_t x = seed ? seed : 1;
    for (size_t i = 0; i < len;) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        if (x & 1) {
            size_t n = (x >> 8) % (sizeof text - 1) + 1;
            for (size_t j = 0; j < n && i < len; j++)
                p[i++] = text[j];
        } else {
            p[i++] = (char)(x >> 16);
        }
    }
}

/* True if `line` (one line of text) appears exactly in the lines of text. */
static inline bool has_line(const char *text, const char *line)
{
    size_t n = strlen(line);
    const char *s = text;
    while (*s) {
        if (strncmp(s, line, n) == 0 && (s[n] == '\n' || s[n] == '\0'))
            return true;
        s = strchr(s, '\n');
        if (s == NULL)
            break;
        s++;
    }
    return false;
}

static inline size_t count_lines(const char *text)
{
    size_t n = 0;
    for (; *text; text++)
        n += *text == '\n';
    return n;
}

#endif
