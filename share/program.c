/* Where the user's command is installed, and the least the guest must
 * see to run it.  Runs with the caller's identity: the session calls it
 * in a child that is the invoking user (run_as), so every symlink on the
 * way is followed with the user's rights. */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "share.h"
#include "util.h"

/* The directories of the guest's default PATH (relay.c in mvm-init). */
static const char *const guest_path[] = {"/usr/local/bin", "/usr/bin", "/bin", "/usr/local/sbin",
                                         "/usr/sbin",      "/sbin",    NULL};

/* Below the home: where people install agents when not system-wide. */
static const char *const user_bins[] = {
    ".local/bin",        "bin",        ".npm-global/bin",
    ".local/share/pnpm", ".bun/bin",   ".volta/bin",
    ".deno/bin",         ".cargo/bin", NULL,
};

/* A directory holding any of these (or inside one) is never shared. */
static const char *const secrets[] = {
    ".ssh",
    ".gnupg",
    ".aws",
    ".kube",
    ".password-store",
    ".docker",
    ".netrc",
    ".claude",
    ".claude.json",
    ".codex",
    ".gemini",
    ".git-credentials",
    ".config",
    ".npmrc",
    ".pypirc",
    ".local/share/keyrings",
    NULL,
};

static bool is_under(const char *path, const char *dir)
{
    size_t n = strlen(dir);
    if (n == 1 && dir[0] == '/')
        return path[0] == '/';
    return strncmp(path, dir, n) == 0 && (path[n] == '/' || path[n] == '\0');
}

static char *dir_of(const char *path)
{
    const char *slash = strrchr(path, '/');
    if (slash == NULL)
        return xstrdup(".");
    return slash == path ? xstrdup("/") : xstrndup(path, (size_t)(slash - path));
}

static bool is_dir(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

static bool is_exec_file(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode) && access(path, X_OK) == 0;
}

static void strv_push(char ***v, size_t *n, const char *s)
{
    *v = xrealloc(*v, (*n + 2) * sizeof **v);
    (*v)[(*n)++] = xstrdup(s);
    (*v)[*n] = NULL;
}

static bool strv_has(char *const *v, size_t n, const char *s)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(v[i], s) == 0)
            return true;
    return false;
}

void mvm_program_clear(struct mvm_program *p)
{
    free(p->found);
    free(p->real);
    mvm_strv_free(p->dirs);
    mvm_strv_free(p->links);
    mvm_strv_free(p->bins);
    memset(p, 0, sizeof *p);
}

/* "v20.11.1" > "v20.9.0": component by component, as numbers. */
static int version_cmp(const char *a, const char *b)
{
    while (*a || *b) {
        while (*a && !isdigit((unsigned char)*a))
            a++;
        while (*b && !isdigit((unsigned char)*b))
            b++;
        unsigned long x = strtoul(a, (char **)&a, 10), y = strtoul(b, (char **)&b, 10);
        if (x != y)
            return x < y ? -1 : 1;
    }
    return 0;
}

/* nvm's default node: the newest installed version matching
 * ~/.nvm/alias/default ("20", "v20.11.1"), else the newest. */
static char *nvm_bin(const char *home)
{
    cleanup_free char *versions = xasprintf("%s/.nvm/versions/node", home);
    cleanup_free char *alias_path = xasprintf("%s/.nvm/alias/default", home);
    cleanup_free char *alias = read_file(alias_path, 256, NULL);
    const char *want = NULL;
    if (alias) {
        alias[strcspn(alias, "\r\n")] = '\0';
        want = alias[0] == 'v' ? alias + 1 : alias;
        if (!isdigit((unsigned char)want[0]))
            want = NULL; /* "node" or an lts alias: the newest */
    }
    DIR *d = opendir(versions);
    if (d == NULL)
        return NULL;
    cleanup_free char *best = NULL;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] != 'v')
            continue;
        if (want &&
            !(str_has_prefix(de->d_name + 1, want) &&
              (de->d_name[1 + strlen(want)] == '\0' || de->d_name[1 + strlen(want)] == '.')))
            continue;
        if (best == NULL || version_cmp(de->d_name, best) > 0) {
            free(best);
            best = xstrdup(de->d_name);
        }
    }
    closedir(d);
    return best ? xasprintf("%s/%s/bin", versions, best) : NULL;
}

char *mvm_program_user_path(const char *home, const char *login_path)
{
    char **dirs = NULL;
    size_t n = 0;
    cleanup_free char *copy = xstrdup(login_path ? login_path : "");
    char *save = NULL;
    for (char *d = strtok_r(copy, ":", &save); d; d = strtok_r(NULL, ":", &save))
        if (d[0] == '/' && !strv_has(dirs, n, d))
            strv_push(&dirs, &n, d);
    for (size_t i = 0; user_bins[i]; i++) {
        cleanup_free char *d = xasprintf("%s/%s", home, user_bins[i]);
        if (is_dir(d) && !strv_has(dirs, n, d))
            strv_push(&dirs, &n, d);
    }
    cleanup_free char *nvm = nvm_bin(home);
    if (nvm && is_dir(nvm) && !strv_has(dirs, n, nvm))
        strv_push(&dirs, &n, nvm);
    struct buf b = {0};
    for (size_t i = 0; i < n; i++)
        buf_printf(&b, "%s%s", i ? ":" : "", dirs[i]);
    buf_append(&b, "", 1);
    mvm_strv_free(dirs);
    return b.data;
}

/* An executable file at p; a name there that the user may not follow
 * (a link into a directory they cannot enter) is an error, not a miss. */
static int try_path(const char *p, struct mvm_error **err)
{
    struct stat st;
    if (is_exec_file(p))
        return 1;
    if (lstat(p, &st) == 0 && stat(p, &st) < 0 && errno == EACCES)
        return mvm_error_set(err, EACCES,
                             "%s is a link you cannot follow (make its target readable to you, or "
                             "pass --no-resolve)",
                             p);
    return 0;
}

/* Where name is on path: 1 and *found, 0 when nowhere, -1 on error. */
static int search(const char *name, const char *path, char **found, struct mvm_error **err)
{
    *found = NULL;
    if (strchr(name, '/')) {
        int rc = name[0] == '/' ? try_path(name, err) : 0;
        if (rc > 0)
            *found = xstrdup(name);
        return rc;
    }
    cleanup_free char *copy = xstrdup(path);
    char *save = NULL;
    for (char *d = strtok_r(copy, ":", &save); d; d = strtok_r(NULL, ":", &save)) {
        size_t dl = strlen(d);
        if (d[0] != '/')
            continue; /* a relative PATH entry means nothing in the guest */
        /* pyenv, rbenv, asdf: a shim needs its manager's whole tree; the
         * guest's own python3 or ruby is the better bet. */
        if (dl >= 6 && strcmp(d + dl - 6, "/shims") == 0)
            continue;
        char *p = xasprintf("%s/%s", d, name);
        int rc = try_path(p, err);
        if (rc != 0) {
            *found = rc > 0 ? p : NULL;
            if (rc < 0)
                free(p);
            return rc;
        }
        free(p);
    }
    return 0;
}

/* What the guest's root holds of the host: /usr, and the links into it. */
static const char *const guest_root[] = {"/usr", "/bin", "/sbin", "/lib", "/lib64", NULL};

static bool visible(const struct mvm_program_in *in, const struct mvm_program *p, const char *path)
{
    for (size_t i = 0; guest_root[i]; i++)
        if (is_under(path, guest_root[i]))
            return true;
    for (size_t i = 0; i < in->nvisible; i++)
        if (is_under(path, in->visible[i]))
            return true;
    for (size_t i = 0; i < p->ndirs; i++)
        if (is_under(path, p->dirs[i]))
            return true;
    return false;
}

static bool on_guest_path(const char *dir)
{
    for (size_t i = 0; guest_path[i]; i++)
        if (strcmp(dir, guest_path[i]) == 0)
            return true;
    return false;
}

/* The smallest directory that holds the installation of real. */
static char *install_dir(const char *real)
{
    const char *nm = strstr(real, "/lib/node_modules/");
    if (nm) {
        cleanup_free char *prefix = xstrndup(real, (size_t)(nm - real));
        cleanup_free char *node = xasprintf("%s/bin/node", prefix);
        if (is_exec_file(node)) /* a node installation (nvm): all of it */
            return steal_pointer(&prefix);
        const char *pkg = nm + strlen("/lib/node_modules/");
        const char *end = strchr(pkg, '/');
        if (end && pkg[0] == '@')
            end = strchr(end + 1, '/');
        return end ? xstrndup(real, (size_t)(end - real)) : xstrdup(real);
    }
    cleanup_free char *bin = dir_of(real);
    const char *base = strrchr(bin, '/');
    if (base && strcmp(base, "/bin") == 0) {
        cleanup_free char *top = dir_of(bin);
        cleanup_free char *cfg = xasprintf("%s/pyvenv.cfg", top);
        const char *exe = strrchr(real, '/') + 1;
        struct stat st;
        /* A virtual environment (pipx, uv tool), or a Python build whose
         * library sits beside its bin. */
        if (stat(cfg, &st) == 0 || str_has_prefix(exe, "python"))
            return steal_pointer(&top);
    }
    return steal_pointer(&bin);
}

static int check_safe(const struct mvm_program_in *in, const char *name, const char *dir,
                      struct mvm_error **err)
{
    const char *why = NULL;
    cleanup_free char *what = NULL;
    if (strcmp(dir, "/") == 0 || is_under(in->home, dir))
        why = strcmp(dir, in->home) == 0 ? "it is your home directory" : "it holds your home";
    else if (is_under(dir, "/proc") || is_under(dir, "/sys") || is_under(dir, "/dev") ||
             is_under(dir, "/etc") || is_under(dir, "/boot"))
        why = "it is a system directory";
    for (size_t i = 0; why == NULL && secrets[i]; i++) {
        cleanup_free char *s = xasprintf("%s/%s", in->home, secrets[i]);
        cleanup_free char *inside = xasprintf("%s/%s", dir, secrets[i]);
        struct stat st;
        if (is_under(dir, s))
            why = what = xasprintf("it is inside %s", s);
        else if (lstat(inside, &st) == 0)
            why = what = xasprintf("it holds %s", secrets[i]);
    }
    if (why == NULL)
        return 0;
    return mvm_error_set(err, 0,
                         "%s is installed in %s, which mvm does not share (%s); share what it "
                         "needs with --share DIR:ro, or pass --no-resolve",
                         name, dir, why);
}

static void add_dir(struct mvm_program *p, const char *dir)
{
    /* A directory below one already shared adds nothing; one above
     * replaces those below it. */
    size_t k = 0;
    for (size_t i = 0; i < p->ndirs; i++) {
        if (is_under(p->dirs[i], dir))
            free(p->dirs[i]);
        else
            p->dirs[k++] = p->dirs[i];
    }
    p->ndirs = k;
    if (p->dirs)
        p->dirs[k] = NULL;
    strv_push(&p->dirs, &p->ndirs, dir);
}

/* The interpreter a script names: "#!/usr/bin/env [-S] NAME" gives NAME,
 * "#!/ABS/PATH" the path; NULL for anything else. */
static char *interpreter(const char *real)
{
    int fd = open(real, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return NULL;
    char line[256];
    ssize_t n = read(fd, line, sizeof line - 1);
    close(fd);
    if (n < 3 || line[0] != '#' || line[1] != '!')
        return NULL;
    line[n] = '\0';
    line[strcspn(line, "\n")] = '\0';
    char *save = NULL;
    char *prog = strtok_r(line + 2, " \t", &save);
    if (prog == NULL || prog[0] != '/')
        return NULL;
    const char *base = strrchr(prog, '/') + 1;
    if (strcmp(base, "env") != 0)
        return xstrdup(prog);
    char *arg = strtok_r(NULL, " \t", &save);
    while (arg && (arg[0] == '-' || strchr(arg, '=')))
        arg = strtok_r(NULL, " \t", &save);
    return arg ? xstrdup(arg) : NULL;
}

static int resolve(const struct mvm_program_in *in, const char *name, struct mvm_program *p,
                   bool top, struct mvm_error **err)
{
    cleanup_free char *found = NULL;
    int rc = search(name, in->path, &found, err);
    if (rc <= 0)
        return rc; /* not found: the guest says "command not found", as it would */
    cleanup_free char *found_dir = dir_of(found);
    char buf[PATH_MAX];
    if (realpath(found, buf) == NULL)
        return mvm_error_set(err, errno, "resolving %s", found);
    if (top) {
        p->found = xstrdup(found);
        p->real = xstrdup(buf);
    }
    if (!visible(in, p, buf)) {
        cleanup_free char *dir = install_dir(buf);
        if (check_safe(in, name, dir, err) < 0)
            return -1;
        add_dir(p, dir);
    }
    if (!visible(in, p, found)) { /* the name on the PATH is a link */
        strv_push(&p->links, &p->nlinks, found);
        strv_push(&p->links, &p->nlinks, buf);
    }
    if (!on_guest_path(found_dir) && !strv_has(p->bins, p->nbins, found_dir))
        strv_push(&p->bins, &p->nbins, found_dir);
    if (!top)
        return 0;
    cleanup_free char *interp = interpreter(buf);
    if (interp == NULL)
        return 0;
    cleanup_free char *where = NULL;
    if (search(interp, in->path, &where, NULL) <= 0)
        return 0; /* the guest's own error names a missing interpreter */
    cleanup_free char *real_interp = realpath(where, NULL);
    if (real_interp && visible(in, p, real_interp) && visible(in, p, where))
        return 0;
    return resolve(in, interp, p, false, err);
}

int mvm_program_resolve(const struct mvm_program_in *in, struct mvm_program *p,
                        struct mvm_error **err)
{
    memset(p, 0, sizeof *p);
    if (resolve(in, in->cmd, p, true, err) < 0) {
        mvm_program_clear(p);
        return -1;
    }
    return 0;
}
