/* Allocation, I/O and filesystem helpers shared by host and tests. */
#include "util.h"

#include <fcntl.h>
#include <grp.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>

static void oom(void)
{
    static const char msg[] = "mvm: out of memory\n";
    (void)!write(STDERR_FILENO, msg, sizeof msg - 1);
    abort();
}

void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (p == NULL)
        oom();
    return p;
}

void *xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (p == NULL)
        oom();
    return p;
}

void *xrealloc(void *p, size_t n)
{
    p = realloc(p, n ? n : 1);
    if (p == NULL)
        oom();
    return p;
}

char *xstrdup(const char *s)
{
    char *p = strdup(s);
    if (p == NULL)
        oom();
    return p;
}

char *xstrndup(const char *s, size_t n)
{
    char *p = strndup(s, n);
    if (p == NULL)
        oom();
    return p;
}

char *xvasprintf(const char *fmt, va_list ap)
{
    char *p = NULL;
    if (vasprintf(&p, fmt, ap) < 0)
        oom();
    return p;
}

char *xasprintf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *p = xvasprintf(fmt, ap);
    va_end(ap);
    return p;
}

int write_all(int fd, const void *buf, size_t len)
{
    const char *p = buf;
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

ssize_t read_full(int fd, void *buf, size_t len)
{
    char *p = buf;
    size_t got = 0;
    while (got < len) {
        ssize_t n = read(fd, p + got, len - got);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        if (n == 0)
            break;
        got += (size_t)n;
    }
    return (ssize_t)got;
}

char *read_file(const char *path, size_t max, size_t *len_out)
{
    cleanup_close int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0)
        return NULL;
    struct buf b = {0};
    char chunk[8192];
    for (;;) {
        ssize_t n = read(fd, chunk, sizeof chunk);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            buf_free(&b);
            return NULL;
        }
        if (n == 0)
            break;
        if (b.len + (size_t)n > max) {
            buf_free(&b);
            errno = EFBIG;
            return NULL;
        }
        buf_append(&b, chunk, (size_t)n);
    }
    buf_append(&b, "", 1);
    if (len_out)
        *len_out = b.len - 1;
    return b.data;
}

char *read_file_head(const char *path, size_t max, size_t *len_out)
{
    cleanup_close int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0)
        return NULL;
    char *data = xmalloc(max + 1);
    ssize_t n = read_full(fd, data, max);
    if (n < 0) {
        int e = errno;
        free(data);
        errno = e;
        return NULL;
    }
    data[n] = '\0';
    if (len_out)
        *len_out = (size_t)n;
    return data;
}

void mvm_strv_free(char **v)
{
    if (v == NULL)
        return;
    for (char **p = v; *p; p++)
        free(*p);
    free(v);
}

int write_existing_file(const char *path, const char *text)
{
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    int rc = write_all(fd, text, strlen(text));
    int e = errno;
    close(fd);
    errno = e;
    return rc;
}

int write_file_atomic(const char *path, const void *buf, size_t len, mode_t mode)
{
    cleanup_free char *tmp = xasprintf("%s.tmp.%d", path, (int)getpid());
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, mode);
    if (fd < 0)
        return -1;
    if (write_all(fd, buf, len) < 0 || close(fd) < 0) {
        int saved = errno;
        unlink(tmp);
        errno = saved;
        return -1;
    }
    if (rename(tmp, path) < 0) {
        int saved = errno;
        unlink(tmp);
        errno = saved;
        return -1;
    }
    return 0;
}

int mkdir_p(const char *path, mode_t mode)
{
    cleanup_free char *p = xstrdup(path);
    for (char *s = p + 1; *s; s++) {
        if (*s != '/')
            continue;
        *s = '\0';
        if (mkdir(p, mode) < 0 && errno != EEXIST)
            return -1;
        *s = '/';
    }
    if (mkdir(p, mode) < 0 && errno != EEXIST)
        return -1;
    return 0;
}

int remove_tree_at(int parent, const char *name)
{
    if (unlinkat(parent, name, 0) == 0 || errno == ENOENT)
        return 0;
    if (errno != EISDIR && errno != EPERM)
        return -1;
    int fd = openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return -1;
    DIR *d = fdopendir(fd);
    if (d == NULL) {
        close(fd);
        return -1;
    }
    int rc = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        if (remove_tree_at(dirfd(d), de->d_name) < 0)
            rc = -1;
    }
    closedir(d);
    if (unlinkat(parent, name, AT_REMOVEDIR) < 0 && errno != ENOENT)
        rc = -1;
    return rc;
}

int remove_tree(const char *path)
{
    return remove_tree_at(AT_FDCWD, path);
}

uint64_t fnv1a64(uint64_t h, const void *data, size_t len)
{
    const unsigned char *p = data;
    for (size_t i = 0; i < len; i++) {
        h ^= p[i];
        h *= 0x100000001b3ULL;
    }
    return h;
}

uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

void buf_append(struct buf *b, const void *data, size_t len)
{
    if (b->len + len > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + len)
            cap *= 2;
        b->data = xrealloc(b->data, cap);
        b->cap = cap;
    }
    if (len)
        memcpy(b->data + b->len, data, len);
    b->len += len;
}

void buf_printf(struct buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    cleanup_free char *s = xvasprintf(fmt, ap);
    va_end(ap);
    buf_append(b, s, strlen(s));
}

struct pollfd *mvm_pollset_reserve(struct mvm_pollset *ps, size_t k)
{
    if (ps->n + k > ps->cap) {
        ps->cap = ps->n + k > 2 * ps->cap ? ps->n + k : 2 * ps->cap;
        ps->fds = xrealloc(ps->fds, ps->cap * sizeof *ps->fds);
    }
    return ps->fds + ps->n;
}

int mvm_pollset_add(struct mvm_pollset *ps, int fd, short events)
{
    if (fd < 0)
        return -1;
    *mvm_pollset_reserve(ps, 1) = (struct pollfd){.fd = fd, .events = events};
    return (int)ps->n++;
}

void mvm_pollset_free(struct mvm_pollset *ps)
{
    free(ps->fds);
    *ps = (struct mvm_pollset){0};
}

void buf_free(struct buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

/* Length of the valid UTF-8 sequence at p (1..4), 0 if invalid.  C1
 * controls (U+0080..U+009F) count as invalid: terminals act on them. */
static size_t utf8_len(const unsigned char *p)
{
    unsigned c = p[0];
    size_t n = c < 0x80             ? 1
               : (c & 0xe0) == 0xc0 ? 2
               : (c & 0xf0) == 0xe0 ? 3
               : (c & 0xf8) == 0xf0 ? 4
                                    : 0;
    if (n == 0 || (n == 2 && c < 0xc2) || (c == 0xc2 && p[1] < 0xa0))
        return 0; /* a continuation byte, overlong, or C1 */
    for (size_t i = 1; i < n; i++)
        if ((p[i] & 0xc0) != 0x80)
            return 0;
    return n;
}

void sanitize_text(char *s)
{
    unsigned char *r = (unsigned char *)s, *w = r;
    while (*r) {
        size_t n = utf8_len(r);
        if (n == 0 || (n == 1 && (*r < 0x20 || *r == 0x7f))) {
            *w++ = '?';
            r++;
            continue;
        }
        memmove(w, r, n);
        w += n;
        r += n;
    }
    *w = '\0';
}

struct read_req {
    const char *path;
    size_t max;
    bool head; /* the first max bytes, not the whole file */
};

static int read_in_child(void *arg, int out_fd)
{
    const struct read_req *r = arg;
    size_t len = 0;
    cleanup_free char *data =
        r->head ? read_file_head(r->path, r->max, &len) : read_file(r->path, r->max, &len);
    if (data == NULL)
        return errno ? errno : EIO;
    return write_all(out_fd, data, len) < 0 ? errno : 0;
}

static char *read_as(uid_t uid, gid_t gid, const struct read_req *req, size_t *len_out)
{
    if (uid == 0)
        return req->head ? read_file_head(req->path, req->max, len_out)
                         : read_file(req->path, req->max, len_out);
    struct buf b = {0};
    struct read_req r = *req;
    int rc = run_as(uid, gid, read_in_child, &r, &b, r.max);
    if (rc != 0) {
        int e = rc > 0 ? rc : errno;
        buf_free(&b);
        errno = e;
        return NULL;
    }
    buf_append(&b, "", 1);
    if (len_out)
        *len_out = b.len - 1;
    return b.data;
}

char *read_file_as(uid_t uid, gid_t gid, const char *path, size_t max, size_t *len_out)
{
    return read_as(uid, gid, &(struct read_req){path, max, false}, len_out);
}

char *read_file_head_as(uid_t uid, gid_t gid, const char *path, size_t max, size_t *len_out)
{
    return read_as(uid, gid, &(struct read_req){path, max, true}, len_out);
}

struct regular_req {
    const char *path;
    size_t max;
    bool nofollow;
};

/* In the child: the opened file's stat, then its bytes. */
static int read_regular_child(void *arg, int out_fd)
{
    const struct regular_req *r = arg;
    int fd = open(r->path,
                  O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY | (r->nofollow ? O_NOFOLLOW : 0));
    if (fd < 0)
        return errno;
    struct stat st;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || (uint64_t)st.st_size > r->max)
        return EINVAL;
    if (write_all(out_fd, &st, sizeof st) < 0)
        return errno;
    char buf[4096];
    ssize_t n;
    int rc = 0;
    while (rc == 0 && (n = read(fd, buf, sizeof buf)) != 0)
        rc = n < 0 ? errno : write_all(out_fd, buf, (size_t)n) < 0 ? errno : 0;
    explicit_bzero(buf, sizeof buf);
    return rc;
}

char *read_regular_as(uid_t uid, gid_t gid, const char *path, size_t max, bool nofollow,
                      struct stat *st, size_t *len_out)
{
    struct buf b = {0};
    struct regular_req r = {path, max, nofollow};
    int rc = run_as(uid, gid, read_regular_child, &r, &b, sizeof *st + max);
    if (rc != 0 || b.len < sizeof *st) {
        int e = rc > 0 ? rc : rc < 0 ? errno : EIO;
        if (b.data)
            explicit_bzero(b.data, b.cap);
        buf_free(&b);
        errno = e;
        return NULL;
    }
    memcpy(st, b.data, sizeof *st);
    size_t len = b.len - sizeof *st;
    memmove(b.data, b.data + sizeof *st, len);
    explicit_bzero(b.data + len, sizeof *st);
    b.len = len;
    buf_append(&b, "", 1);
    if (len_out)
        *len_out = len;
    return b.data;
}

int run_as(uid_t uid, gid_t gid, int (*fn)(void *arg, int out_fd), void *arg, struct buf *out,
           size_t max)
{
    int p[2];
    if (pipe2(p, O_CLOEXEC) < 0)
        return -1;
    pid_t pid = fork();
    if (pid < 0) {
        close(p[0]);
        close(p[1]);
        return -1;
    }
    if (pid == 0) {
        close(p[0]);
        bool already = uid == geteuid() && gid == getegid(); /* nothing to drop to */
        if (!already && (setgroups(0, NULL) < 0 || setresgid(gid, gid, gid) < 0 ||
                         setresuid(uid, uid, uid) < 0))
            _exit(errno & 0xff);
        _exit(fn(arg, p[1]) & 0xff);
    }
    close(p[1]);
    char chunk[4096];
    ssize_t n;
    while ((n = read(p[0], chunk, sizeof chunk)) > 0 || (n < 0 && errno == EINTR))
        if (n > 0 && out && out->len + (size_t)n <= max)
            buf_append(out, chunk, (size_t)n);
    close(p[0]);
    int st;
    while (waitpid(pid, &st, 0) < 0)
        if (errno != EINTR)
            return -1;
    if (!WIFEXITED(st)) {
        errno = EINTR;
        return -1;
    }
    return WEXITSTATUS(st);
}
