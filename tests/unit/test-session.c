/* Unit tests for the session's pure pieces: the undo list, the state file
 * parser, the invoking user. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_undo_many),
        cmocka_unit_test(test_parse_state),
        cmocka_unit_test(test_invoking_user),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
