/* The session cgroup, tested for real: a child started through the jail
 * with only the cgroup layer is killed when it exceeds the memory limit
 * and cannot exceed the task limit; without the layer it can (proof that
 * the check can fail); the cgroup is gone after removal.
 *
 *   test-cgroup                  the host's layout (v1 here, v2 elsewhere)
 *   test-cgroup --mount-v2 DIR   mounts cgroup2 at DIR first and requires v2;
 *                                the integration test runs this inside a VM,
 *                                whose kernel has the controllers in v2
 * Needs root (exit 77 otherwise). */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cgroup.h"
#include "jail.h"
#include "util.h"

#define LIMIT_MIB 32
#define HOG_MIB   128
#define PIDS_MAX  8
#define FORKS     32

static int failures;

static void check(bool ok, const char *what, const char *detail)
{
    printf("%s: %s%s%s\n", ok ? "ok" : "FAIL", what, detail ? ": " : "", detail ? detail : "");
    failures += !ok;
}

/* Child modes, run through the jail. */
static int hog(void)
{
    size_t n = (size_t)HOG_MIB << 20;
    /* volatile: the stores must really touch every page */
    volatile char *p = malloc(n);
    if (p == NULL)
        return 2;
    for (size_t i = 0; i < n; i += 4096)
        p[i] = 1;
    int rc = p[n - 4096] == 1 ? 0 : 3;
    free((void *)p);
    return rc;
}

static int forks(void)
{
    int made = 0;
    for (int i = 0; i < FORKS; i++) {
        pid_t p = fork();
        if (p == 0) {
            pause();
            _exit(0);
        }
        if (p > 0)
            made++;
    }
    printf("%d\n", made);
    fflush(stdout);
    kill(0, SIGKILL); /* the children, and us: they share our group */
    return 0;
}

/* Runs this program with `mode` through the jail; returns the wait
 * status and the first line of its output in out. */
static int run(const struct mvm_cgroup *cg, bool in_cgroup, const char *mode, char *out, size_t len)
{
    int p[2];
    if (pipe2(p, O_CLOEXEC) < 0)
        abort();
    char *const argv[] = {"test-cgroup", (char *)mode, NULL};
    char *const envp[] = {NULL};
    struct mvm_jail j = {
        .name = "cgroup child",
        .path = "/proc/self/exe",
        .argv = argv,
        .envp = envp,
        .stdin_fd = -1,
        .stdout_fd = p[1],
        .stderr_fd = 2,
        .netns_fd = -1,
        .layers = in_cgroup ? MVM_JAIL_CGROUP : 0,
        .cgroup_procs = cg->procs,
    };
    struct mvm_child c = MVM_CHILD_INIT;
    struct mvm_error *err = NULL;
    if (mvm_jail_start(&j, &c, &err) < 0) {
        printf("FAIL: starting %s: %s\n", mode, err->msg);
        exit(1);
    }
    close(p[1]);
    ssize_t n = read_full(p[0], out, len - 1);
    out[n > 0 ? n : 0] = '\0';
    close(p[0]);
    mvm_child_wait(&c, 30000);
    mvm_child_kill(&c);
    return c.status;
}

static void test_limits(const struct mvm_cgroup *cg)
{
    char out[64], detail[128];
    int st = run(cg, true, "--hog", out, sizeof out);
    snprintf(detail, sizeof detail, "wait status 0x%x", st);
    check(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL, "a child over the memory limit is killed",
          detail);
    st = run(cg, false, "--hog", out, sizeof out);
    snprintf(detail, sizeof detail, "wait status 0x%x", st);
    check(WIFEXITED(st) && WEXITSTATUS(st) == 0, "twin: outside the cgroup the same child lives",
          detail);
    run(cg, true, "--forks", out, sizeof out);
    int made = atoi(out);
    snprintf(detail, sizeof detail, "%d of %d forks succeeded", made, FORKS);
    check(made > 0 && made < PIDS_MAX, "the task limit holds", detail);
    run(cg, false, "--forks", out, sizeof out);
    made = atoi(out);
    snprintf(detail, sizeof detail, "%d of %d forks succeeded", made, FORKS);
    check(made == FORKS, "twin: outside the cgroup all forks succeed", detail);
}

int main(int argc, char **argv)
{
    if (argc == 2 && strcmp(argv[1], "--hog") == 0)
        return hog();
    if (argc == 2 && strcmp(argv[1], "--forks") == 0)
        return forks();
    if (geteuid() != 0) {
        printf("SKIP: the cgroup test needs root\n");
        return 77;
    }
    const char *root = "/sys/fs/cgroup";
    int want = 0;
    if (argc == 3 && strcmp(argv[1], "--mount-v2") == 0) {
        root = argv[2];
        want = 2;
        if ((mkdir(root, 0755) < 0 && errno != EEXIST) ||
            mount("cgroup2", root, "cgroup2", 0, NULL) < 0) {
            printf("FAIL: mounting cgroup2 on %s: %s\n", root, strerror(errno));
            return 1;
        }
    }
    cleanup_free char *name = xasprintf("mvm-test/%d", (int)getpid());
    struct mvm_cgroup cg;
    struct mvm_error *err = NULL;
    if (mvm_cgroup_create(root, name, (uint64_t)LIMIT_MIB << 20, PIDS_MAX, &cg, &err) < 0) {
        printf("FAIL: creating the cgroup: %s\n", err->msg);
        return 1;
    }
    if (cg.version == 0) {
        printf("SKIP: this host has no memory and pids cgroup controllers\n");
        return 77;
    }
    char detail[64];
    snprintf(detail, sizeof detail, "cgroup v%d", cg.version);
    check(want == 0 || cg.version == want, "the expected cgroup version is used", detail);
    test_limits(&cg);
    char *dirs[2] = {cg.dirs[0] ? xstrdup(cg.dirs[0]) : NULL,
                     cg.dirs[1] ? xstrdup(cg.dirs[1]) : NULL};
    mvm_cgroup_remove(&cg);
    for (int i = 0; i < 2; i++) {
        struct stat st;
        if (dirs[i])
            check(stat(dirs[i], &st) < 0 && errno == ENOENT, "the cgroup is removed", dirs[i]);
        free(dirs[i]);
    }
    printf("%s: %d failure(s)\n", failures ? "FAIL" : "PASS", failures);
    return failures ? 1 : 0;
}
