/* The supervisor's side of mvm exec and attach, against a hostile guest:
 * its static frame handlers are included and driven directly (no socket,
 * no VM). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "../../src/session/exec-server.c"

struct fx {
    struct exec_server x;
    struct mvm_relay r;
};

/* A detached session's server with nobody attached. */
static int fx_setup(void **state)
{
    struct fx *fx = xcalloc(1, sizeof *fx);
    exec_server_init(&fx->x);
    mvm_relay_init(&fx->r, -1, -1, -1, -1, false);
    fx->x.relay = &fx->r;
    fx->r.other = from_guest;
    fx->r.other_arg = &fx->x;
    fx->x.detached = fx->r.route_main = true;
    struct exec_client *a = &fx->x.c[MVM_EXEC_ATTACH];
    a->started = a->live = true;
    a->credit = MVM_PROTO_WINDOW;
    *state = fx;
    return 0;
}

static int fx_teardown(void **state)
{
    struct fx *fx = *state;
    exec_server_close(&fx->x);
    mvm_relay_clear(&fx->r);
    free(fx);
    return 0;
}

static int guest_frame(struct fx *fx, uint8_t type, uint16_t stream, const void *p, uint32_t len)
{
    struct mvm_proto_frame f = {.type = type, .stream = stream, .len = len, .payload = p};
    cleanup_error struct mvm_error *err = NULL;
    return from_guest(&fx->x, &f, &err);
}

static void handle_round(struct fx *fx)
{
    struct mvm_pollset set = {0};
    exec_server_pollfds(&fx->x, &set);
    exec_server_handle(&fx->x, &set);
    mvm_pollset_free(&set);
}

/* Output nobody reads is credited back in pieces, not frame by frame: a
 * guest sending 1-byte frames and never reading its port cannot make
 * the supervisor queue without end -- the window stops it. */
static void test_unread_output_is_bounded(void **state)
{
    struct fx *fx = *state;
    uint8_t b = 'x';
    for (uint32_t i = 0; i < MVM_PROTO_WINDOW; i++)
        assert_int_equal(guest_frame(fx, MVM_MSG_STDOUT, MVM_PROTO_MAIN_STREAM, &b, 1), 0);
    assert_int_equal(mvm_relay_queued(&fx->r), 0);
    /* Past the window: the guest broke the protocol. */
    assert_int_equal(guest_frame(fx, MVM_MSG_STDOUT, MVM_PROTO_MAIN_STREAM, &b, 1), -1);
    handle_round(fx); /* one CREDIT_OUT for all of it */
    assert_int_equal(mvm_relay_queued(&fx->r), MVM_PROTO_HEADER + 4);
    assert_int_equal(fx->x.c[MVM_EXEC_ATTACH].credit, MVM_PROTO_WINDOW);
    handle_round(fx); /* nothing more owed */
    assert_int_equal(mvm_relay_queued(&fx->r), MVM_PROTO_HEADER + 4);
}

/* Stream ids past the exec'd commands' are nobody's: an EXIT there must
 * not end the attach slot (the main command). */
static void test_stream_past_the_last_slot(void **state)
{
    struct fx *fx = *state;
    uint8_t status[4] = {0};
    uint16_t past = MVM_PROTO_MAIN_STREAM + 1 + MVM_EXEC_MAX;
    assert_int_equal(guest_frame(fx, MVM_MSG_EXIT, past, status, 4), 0);
    assert_int_equal(guest_frame(fx, MVM_MSG_EXIT, 0, status, 4), 0);
    assert_true(fx->x.c[MVM_EXEC_ATTACH].live);
    assert_int_equal(guest_frame(fx, MVM_MSG_EXIT, MVM_PROTO_MAIN_STREAM, status, 4), 0);
    assert_false(fx->x.c[MVM_EXEC_ATTACH].live);
}

/* Input credit for what an earlier client typed is taken by the server;
 * more than anyone sent is the guest breaking the protocol. */
static void test_stale_input_credit(void **state)
{
    struct fx *fx = *state;
    struct exec_client *a = &fx->x.c[MVM_EXEC_ATTACH];
    a->in_stale = 100; /* what a detached client left in the guest's buffer */
    uint8_t n[4];
    mvm_put_u32(n, 60);
    assert_int_equal(guest_frame(fx, MVM_MSG_CREDIT_IN, MVM_PROTO_MAIN_STREAM, n, 4), 0);
    assert_int_equal(a->in_stale, 40);
    mvm_put_u32(n, 41); /* 40 stale + 1 nobody sent */
    assert_int_equal(guest_frame(fx, MVM_MSG_CREDIT_IN, MVM_PROTO_MAIN_STREAM, n, 4), -1);
}

#define FX_TEST(f) cmocka_unit_test_setup_teardown(f, fx_setup, fx_teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        FX_TEST(test_unread_output_is_bounded),
        FX_TEST(test_stream_past_the_last_slot),
        FX_TEST(test_stale_input_credit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
