/* Small helpers used everywhere: scoped cleanup, allocation that aborts on
 * exhaustion (there is no sensible recovery), and whole-buffer I/O. */
#ifndef MVM_UTIL_H
#define MVM_UTIL_H

#include <dirent.h>
#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

void *xmalloc(size_t n);
void *xcalloc(size_t n, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
char *xvasprintf(const char *fmt, va_list ap) __attribute__((format(printf, 1, 0)));

static inline void cleanup_free_fn(void *p)
{
    free(*(void **)p);
}
static inline void cleanup_close_fn(int *fd)
{
    if (*fd >= 0) {
        int saved = errno;
        close(*fd);
        errno = saved;
    }
}
static inline void cleanup_file_fn(FILE **f)
{
    if (*f != NULL)
        fclose(*f);
}
static inline void cleanup_dir_fn(DIR **d)
{
    if (*d != NULL)
        closedir(*d);
}

#define cleanup_free  __attribute__((cleanup(cleanup_free_fn)))
#define cleanup_close __attribute__((cleanup(cleanup_close_fn)))
#define cleanup_file  __attribute__((cleanup(cleanup_file_fn)))
#define cleanup_dir   __attribute__((cleanup(cleanup_dir_fn)))

/* Hands ownership out of a cleanup_* variable; type-checked. */
#define steal_pointer(pp)                  \
    ({                                     \
        __typeof__(*(pp)) _stolen = *(pp); \
        *(pp) = NULL;                      \
        _stolen;                           \
    })

static inline int steal_fd(int *fd)
{
    int v = *fd;
    *fd = -1;
    return v;
}

/* write(2)/read(2) until done; retry EINTR.  Return 0 / -1 with errno. */
int write_all(int fd, const void *buf, size_t len);
/* Returns bytes read (< len only at EOF) or -1. */
ssize_t read_full(int fd, void *buf, size_t len);

/* Reads a whole small file (at most max bytes) into a NUL-terminated heap
 * buffer.  Returns NULL with errno set (EFBIG when larger than max). */
char *read_file(const char *path, size_t max, size_t *len_out);

/* The first max bytes of a file (all of a shorter one), NUL-terminated;
 * NULL with errno set. */
char *read_file_head(const char *path, size_t max, size_t *len_out);

/* Frees a NULL-terminated array of strings and the strings (an argv). */
void mvm_strv_free(char **v);

/* Writes text to a file that must already exist (/proc, /sys, cgroup
 * files: opened without O_CREAT or O_TRUNC); -1 with errno on failure.
 * Allocates nothing (fine in a forked child). */
int write_existing_file(const char *path, const char *text);

/* Writes a file atomically: tmp file in the same directory, fsync-free
 * rename.  The tmp file never survives a failure. */
int write_file_atomic(const char *path, const void *buf, size_t len, mode_t mode);

/* mkdir -p; existing directories are fine. */
int mkdir_p(const char *path, mode_t mode);

/* rm -rf of a directory tree without following symlinks; ENOENT is fine. */
int remove_tree(const char *path);
/* The same for name in the directory open as dirfd. */
int remove_tree_at(int dirfd, const char *name);

/* 64-bit FNV-1a: quick fingerprints (the fuzzers compare runs), never
 * security or cache keys (sha256.h). */
uint64_t fnv1a64(uint64_t h, const void *data, size_t len);
#define FNV1A64_INIT 0xcbf29ce484222325ULL

/* Makes text safe to print on a terminal, in place: control characters
 * (C0, DEL, C1 in any encoding) and invalid UTF-8 become '?'.  For every
 * message that may carry guest or QEMU bytes. */
void sanitize_text(char *s);

/* Monotonic clock in nanoseconds. */
uint64_t now_ns(void);

/* True if s starts with prefix. */
static inline bool str_has_prefix(const char *s, const char *prefix)
{
    while (*prefix)
        if (*s++ != *prefix++)
            return false;
    return true;
}

/* A growable poll set: an fd is never dropped for lack of room. */
struct mvm_pollset {
    struct pollfd *fds;
    size_t n, cap;
};
/* Appends fd with events and returns its index; fd < 0 adds nothing and
 * returns -1 (an fd that is not there is never ready). */
int mvm_pollset_add(struct mvm_pollset *ps, int fd, short events);
/* Room for k more entries at fds + n, for a caller that fills them and
 * then adds what it filled to n. */
struct pollfd *mvm_pollset_reserve(struct mvm_pollset *ps, size_t k);
void mvm_pollset_free(struct mvm_pollset *ps);

/* A growable byte buffer. */
struct buf {
    char *data;
    size_t len, cap;
};
void buf_append(struct buf *b, const void *data, size_t len);
void buf_printf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void buf_free(struct buf *b);

/* Runs fn(arg, out_fd) in a child process that is uid/gid with no
 * supplementary groups -- for looking at the invoking user's files with
 * exactly the user's rights (when the caller already is uid/gid, it keeps
 * its identity as it is).  What fn writes to out_fd is collected into
 * out (at most max bytes; out may be NULL).  Returns what fn returned
 * (0..255, by convention 0 or an errno), or -1 with errno set when the
 * child could not run. */
int run_as(uid_t uid, gid_t gid, int (*fn)(void *arg, int out_fd), void *arg, struct buf *out,
           size_t max);

/* read_file() with uid/gid's rights (run_as), for files a user names:
 * sudo must not let them read what they could not.  uid 0 reads directly. */
char *read_file_as(uid_t uid, gid_t gid, const char *path, size_t max, size_t *len_out);
/* read_file_head() with uid/gid's rights. */
char *read_file_head_as(uid_t uid, gid_t gid, const char *path, size_t max, size_t *len_out);

/* The same for a file whose owner or mode matter (a key, a config): only
 * a regular file of at most max bytes (else EINVAL), not through a
 * symlink when nofollow (ELOOP), with *st the opened file's stat for the
 * caller to judge.  Always in a run_as child; what passed through the
 * pipe is wiped when the call fails.  NUL-terminated, or NULL with
 * errno. */
char *read_regular_as(uid_t uid, gid_t gid, const char *path, size_t max, bool nofollow,
                      struct stat *st, size_t *len_out);

#endif
