/* Finding the user's command before boot: on the invoking user's PATH
 * (their login shell's, not root's), as the user, and sharing where it is
 * installed read-only when the guest would not see it otherwise. */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "json-cleanup.h"
#include "session-int.h"
#include "syscalls.h"
#include "util.h"

#define LOGIN_SHELL_MS 3000
#define PATH_MARK      "__MVM_PATH__="

/* Shells that take -l -c and print $PATH colon-separated. */
static bool posix_shell(const char *shell)
{
    const char *base = strrchr(shell, '/');
    base = base ? base + 1 : shell;
    return strcmp(base, "bash") == 0 || strcmp(base, "sh") == 0 || strcmp(base, "dash") == 0 ||
           strcmp(base, "zsh") == 0 || strcmp(base, "ksh") == 0;
}

/* $PATH as the user's login shell sets it (~/.profile and the like), or
 * NULL.  A profile that prints or waits costs at most LOGIN_SHELL_MS. */
static char *login_shell_path(const struct mvm_user *u)
{
    if (u->shell == NULL || !posix_shell(u->shell))
        return NULL;
    int p[2];
    if (pipe2(p, O_CLOEXEC) < 0)
        return NULL;
    pid_t pid = fork();
    if (pid == 0) {
        int null = open("/dev/null", O_RDWR | O_CLOEXEC);
        if (null < 0 || dup2(null, 0) < 0 || dup2(p[1], 1) < 0 || dup2(null, 2) < 0)
            _exit(127);
        mvm_close_fds_except(3, NULL, 0);
        setpgid(0, 0); /* so a timeout ends whatever the profile started */
        cleanup_free char *home = xasprintf("HOME=%s", u->home);
        cleanup_free char *user = xasprintf("USER=%s", u->name);
        cleanup_free char *logname = xasprintf("LOGNAME=%s", u->name);
        cleanup_free char *shell = xasprintf("SHELL=%s", u->shell);
        char *envp[] = {home,        user, logname, shell, "PATH=/usr/local/bin:/usr/bin:/bin",
                        "TERM=dumb", NULL};
        char *argv[] = {u->shell, "-l", "-c", "printf '\\n" PATH_MARK "%s\\n' \"$PATH\"", NULL};
        execve(u->shell, argv, envp);
        _exit(127);
    }
    close(p[1]);
    if (pid < 0) {
        close(p[0]);
        return NULL;
    }
    struct buf out = {0};
    uint64_t deadline = now_ns() + (uint64_t)LOGIN_SHELL_MS * 1000000;
    for (;;) {
        uint64_t now = now_ns();
        struct pollfd pfd = {p[0], POLLIN, 0};
        if (now >= deadline || poll(&pfd, 1, (int)((deadline - now) / 1000000) + 1) == 0) {
            kill(-pid, SIGKILL);
            break;
        }
        char chunk[4096];
        ssize_t n = read(p[0], chunk, sizeof chunk);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0 || out.len > 65536)
            break;
        buf_append(&out, chunk, (size_t)n);
    }
    close(p[0]);
    while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
        ;
    buf_append(&out, "", 1);
    char *path = NULL, *mark = out.data;
    for (char *m; (m = strstr(mark, "\n" PATH_MARK)) != NULL;)
        mark = m + 1; /* the last one: a profile may print the marker too */
    if (str_has_prefix(mark, PATH_MARK)) {
        mark += strlen(PATH_MARK);
        path = xstrndup(mark, strcspn(mark, "\n"));
    }
    buf_free(&out);
    return path;
}

struct resolve_req {
    const struct session *s;
    bool login; /* through sudo: the user's login shell's PATH */
};

static void put_strv(json_t *o, const char *key, char *const *v, size_t n)
{
    json_t *a = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(a, json_string(v[i]));
    json_object_set_new(o, key, a);
}

/* Which PATH found the command, for the notice. */
static const char *where_found(const struct mvm_program *p, bool login, const char *base_path)
{
    if (p->found == NULL)
        return "";
    size_t n = strrchr(p->found, '/') - p->found;
    for (const char *d = base_path; d && *d; d += strcspn(d, ":"), d += *d == ':') {
        if (strcspn(d, ":") == n && strncmp(d, p->found, n) == 0)
            return login ? "on your login shell's PATH" : "on your PATH";
    }
    return "in a per-user directory of installed programs";
}

/* In a child that is the user: resolve, answer in JSON on out_fd. */
static int resolve_as_user(void *arg, int out_fd)
{
    const struct resolve_req *r = arg;
    const struct session *s = r->s;
    cleanup_free char *login = r->login ? login_shell_path(&s->user) : NULL;
    const char *base_path = r->login ? login : getenv("PATH");
    cleanup_free char *path = mvm_program_user_path(s->user.home, base_path);
    const char *visible[MAX_SHARES];
    size_t nvisible = 0;
    for (size_t i = 0; i < s->nshares; i++)
        if (strcmp(s->shares[i].host, s->shares[i].guest) == 0)
            visible[nvisible++] = s->shares[i].host;
    struct mvm_program_in in = {s->o->argv[0], path, s->user.home, visible, nvisible};
    struct mvm_program p;
    cleanup_error struct mvm_error *err = NULL;
    cleanup_json json_t *o = json_object();
    if (mvm_program_resolve(&in, &p, &err) < 0) {
        json_object_set_new(o, "error", json_string(err->msg));
    } else {
        put_strv(o, "dirs", p.dirs, p.ndirs);
        put_strv(o, "links", p.links, p.nlinks);
        put_strv(o, "bins", p.bins, p.nbins);
        json_object_set_new(o, "where", json_string(where_found(&p, r->login, base_path)));
        mvm_program_clear(&p);
    }
    cleanup_free char *text = json_dumps(o, JSON_COMPACT);
    return text && write_all(out_fd, text, strlen(text)) == 0 ? 0 : EIO;
}

static char **take_strv(json_t *o, const char *key, size_t *n)
{
    json_t *a = json_object_get(o, key);
    char **v = xcalloc(json_array_size(a) + 1, sizeof *v);
    *n = 0;
    for (size_t i = 0; i < json_array_size(a); i++)
        if (json_is_string(json_array_get(a, i)))
            v[(*n)++] = xstrdup(json_string_value(json_array_get(a, i)));
    return v;
}

/* "~/x" for the user's home, the path otherwise. */
static char *tilde(const struct session *s, const char *path)
{
    size_t n = strlen(s->user.home);
    if (n > 1 && strncmp(path, s->user.home, n) == 0 && path[n] == '/')
        return xasprintf("~%s", path + n);
    return xstrdup(path);
}

int session_resolve_program(struct session *s, struct mvm_error **err)
{
    if (s->o->argv == NULL || s->o->no_resolve)
        return 0;
    struct resolve_req r = {s, getenv("SUDO_UID") != NULL || s->user.uid != 0};
    struct buf out = {0};
    int rc = run_as(s->user.uid, s->user.gid, resolve_as_user, &r, &out, 1024 * 1024);
    json_error_t jerr;
    cleanup_json json_t *o = rc == 0 ? json_loadb(out.data, out.len, 0, &jerr) : NULL;
    buf_free(&out);
    if (o == NULL)
        return mvm_error_set(err, rc > 0 ? rc : errno, "looking up %s on your PATH", s->o->argv[0]);
    json_t *e = json_object_get(o, "error");
    if (json_is_string(e))
        return mvm_error_set(err, 0, "%s", json_string_value(e));
    size_t ndirs;
    char **dirs = take_strv(o, "dirs", &ndirs);
    s->links = take_strv(o, "links", &s->nlinks);
    s->bins = take_strv(o, "bins", &s->nbins);
    struct buf list = {0};
    for (size_t i = 0; i < ndirs && rc == 0; i++) {
        cleanup_free char *shown = tilde(s, dirs[i]);
        buf_printf(&list, "%s%s", i ? ", " : "", shown);
        rc = session_add_share(s, dirs[i], dirs[i], true, err);
    }
    buf_append(&list, "", 1);
    if (rc == 0 && ndirs > 0)
        session_notice(s,
                       "sharing %s read-only: %s is installed there (found on %s; "
                       "--no-resolve turns this off)",
                       list.data, s->o->argv[0],
                       json_is_true(json_object_get(o, "login")) ? "your login shell's PATH"
                                                                 : "your PATH");
    buf_free(&list);
    mvm_strv_free(dirs);
    return rc;
}
