/* Unit tests for the session's pure pieces: the undo list, the state file
 * parser, the invoking user; and the last-one-out check on a scratch
 * directory. */
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "sessiondir.h"
#include "undo.h"
#include "user.h"
#include "util.h"

struct record {
    int order[200];
    int n;
};

struct step {
    struct record *r;
    int id;
};

static void record_step(void *arg)
{
    struct step *s = arg;
    s->r->order[s->r->n++] = s->id;
}

/* More steps than the old fixed list (16) held; each with its own
 * argument; run last-first, once. */
static void test_undo_many(void **state)
{
    (void)state;
    struct record r = {.n = 0};
    struct step steps[100];
    struct mvm_undo u = {0};
    for (int i = 0; i < 100; i++) {
        steps[i] = (struct step){&r, i};
        mvm_undo_push(&u, record_step, &steps[i], "step");
    }
    assert_int_equal(u.n, 100);
    mvm_undo_run(&u);
    assert_int_equal(r.n, 100);
    for (int i = 0; i < 100; i++)
        assert_int_equal(r.order[i], 99 - i);
    assert_int_equal(u.n, 0);
    mvm_undo_run(&u); /* empty: nothing runs again */
    assert_int_equal(r.n, 100);
}

static void test_parse_state(void **state)
{
    (void)state;
    struct mvm_session_state st;
    const char *good = "{\"pid\": 1234, \"starttime\": 98765, \"jail_uid\": 1879113730}";
    assert_int_equal(mvm_sessiondir_parse_state(good, strlen(good), &st), 0);
    assert_int_equal(st.pid, 1234);
    assert_int_equal(st.starttime, 98765);
    assert_int_equal(st.jail_uid, 1879113730u);
    /* A uid outside the reserved range is never one to free or keep. */
    const char *odd = "{\"pid\": 1, \"starttime\": 2, \"jail_uid\": 0}";
    assert_int_equal(mvm_sessiondir_parse_state(odd, strlen(odd), &st), 0);
    assert_int_equal(st.jail_uid, 0);
    const char *bad[] = {"",
                         "[]",
                         "{\"pid\": 0, \"starttime\": 5}",
                         "{\"pid\": 5}",
                         "{\"pid\": 99999999999, \"starttime\": 5}",
                         "{\"pid\": \"1\"}",
                         "{\"pid\": 1, \"starttime\": 2"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(mvm_sessiondir_parse_state(bad[i], strlen(bad[i]), &st), -1);
}

static void test_invoking_user(void **state)
{
    (void)state;
    struct mvm_user u;
    struct mvm_error *err = NULL;
    unsetenv("SUDO_UID");
    unsetenv("SUDO_GID");
    assert_int_equal(mvm_user_invoking(&u, &err), 0);
    assert_int_equal(u.uid, getuid());
    mvm_user_clear(&u);
    if (getuid() != 0)
        return; /* SUDO_UID is honoured for root only */
    setenv("SUDO_UID", "65534", 1);
    setenv("SUDO_GID", "65534", 1);
    assert_int_equal(mvm_user_invoking(&u, &err), 0);
    assert_int_equal(u.uid, 65534);
    assert_int_equal(u.gid, 65534);
    assert_non_null(u.name);
    assert_true(u.home[0] == '/');
    mvm_user_clear(&u);
    setenv("SUDO_UID", "12abc", 1);
    assert_int_equal(mvm_user_invoking(&u, &err), -1);
    assert_non_null(strstr(err->msg, "SUDO_UID"));
    mvm_error_free(err);
    err = NULL;
    mvm_user_clear(&u);
    unsetenv("SUDO_UID");
    unsetenv("SUDO_GID");
}

static int count_call(void *arg, struct mvm_error **err)
{
    (void)err;
    ++*(int *)arg;
    return 0;
}

static int fail_call(void *arg, struct mvm_error **err)
{
    (void)arg;
    return mvm_error_set(err, 0, "teardown failed");
}

static void test_if_last(void **state)
{
    (void)state;
    char dir[] = "/tmp/mvm-test-last.XXXXXX";
    assert_non_null(mkdtemp(dir));
    char sub[64], dot[64];
    snprintf(sub, sizeof sub, "%s/0123456789ab", dir);
    snprintf(dot, sizeof dot, "%s/.ps", dir);
    struct mvm_error *err = NULL;
    int calls = 0;
    /* Dot directories are the shared ones, not sessions. */
    assert_int_equal(mkdir(dot, 0700), 0);
    assert_int_equal(mvm_sessiondir_if_last(dir, count_call, &calls, &err), 1);
    assert_int_equal(calls, 1);
    assert_int_equal(mkdir(sub, 0700), 0);
    assert_int_equal(mvm_sessiondir_if_last(dir, count_call, &calls, &err), 0);
    assert_int_equal(calls, 1);
    assert_int_equal(rmdir(sub), 0);
    assert_int_equal(mvm_sessiondir_if_last(dir, fail_call, NULL, &err), -1);
    assert_string_equal(err->msg, "teardown failed");
    mvm_error_free(err);
    err = NULL;
    /* While another holds the lock (a session being created), it waits. */
    int lock = open(dir, O_RDONLY | O_DIRECTORY);
    assert_int_equal(flock(lock, LOCK_EX), 0);
    pid_t pid = fork();
    if (pid == 0) {
        close(lock); /* the parent's copy holds the lock */
        _exit(mvm_sessiondir_if_last(dir, count_call, &calls, NULL) == 1 ? 0 : 1);
    }
    usleep(200 * 1000);
    int status;
    assert_int_equal(waitpid(pid, &status, WNOHANG), 0);
    close(lock);
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    assert_int_equal(rmdir(dot), 0);
    assert_int_equal(rmdir(dir), 0);
    /* No run directory: no session either. */
    assert_int_equal(mvm_sessiondir_if_last(dir, count_call, &calls, &err), 1);
    assert_int_equal(calls, 2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_undo_many),
        cmocka_unit_test(test_parse_state),
        cmocka_unit_test(test_invoking_user),
        cmocka_unit_test(test_if_last),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
