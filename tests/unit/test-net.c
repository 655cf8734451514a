/* Unit tests for net/'s pure parts: the plan, the rulesets as text, and
 * the reading of another firewall's forward chains. */
#include <arpa/inet.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "net.h"

static void test_plan_addresses(void **state)
{
    (void)state;
    struct mvm_net_plan p;
    assert_int_equal(mvm_net_plan_init(&p, MVM_NET_ISOLATED, 5, "0123456789abcdef", NULL), 0);
    char a[16], b[16];
    assert_string_equal(mvm_ip4_str(p.host_ip, a), "10.254.0.21");
    assert_string_equal(mvm_ip4_str(p.ns_ip, b), "10.254.0.22");
    assert_string_equal(p.host_if, "mvm-0123456789a");
    assert_int_equal(p.mac[0] & 1, 0); /* unicast */
    assert_int_equal(p.mac[0] & 2, 2); /* locally administered */
    assert_int_equal(mvm_net_plan_init(&p, MVM_NET_ISOLATED, 4096, "x", NULL), -1);
}

static void test_ruleset_ns(void **state)
{
    (void)state;
    struct mvm_net_plan p;
    mvm_net_plan_init(&p, MVM_NET_ISOLATED, 0, "abc", NULL);
    assert_int_equal(mvm_net_plan_block(&p, inet_addr("203.0.113.77"), 24, NULL), 0);
    char *r = mvm_net_ruleset_ns(&p);
    /* The prefix is normalised; the LAN ranges and the DNS refusal are
     * there, each refusal as its own rule with its match. */
    assert_non_null(strstr(r, "203.0.113.0/24"));
    assert_non_null(strstr(r, "169.254.0.0/16"));
    assert_non_null(strstr(r, "ip daddr @blocked4 meta l4proto tcp reject with tcp reset"));
    assert_non_null(strstr(r, "ip daddr @blocked4 reject with icmpx type admin-prohibited"));
    assert_non_null(strstr(r, "th dport { 53, 853 }"));
    assert_int_equal(r[strlen(r) - 1], '\n'); /* a C string that ends where the text does */
    free(r);
    /* Open mode refuses nothing but IPv6. */
    p.mode = MVM_NET_OPEN;
    r = mvm_net_ruleset_ns(&p);
    assert_null(strstr(r, "ip daddr @blocked4"));
    assert_non_null(strstr(r, "meta nfproto ipv6 reject"));
    free(r);
    char *u = mvm_net_ruleset_blocked(&p);
    assert_true(strncmp(u, "flush set inet mvm blocked4\n", 28) == 0);
    assert_non_null(strstr(u, "203.0.113.0/24"));
    free(u);
}

static void test_plan_block_full(void **state)
{
    (void)state;
    static struct mvm_net_plan p;
    mvm_net_plan_init(&p, MVM_NET_ISOLATED, 0, "abc", NULL);
    struct mvm_error *err = NULL;
    for (int i = 0; i < MVM_NET_MAX_PREFIXES; i++)
        assert_int_equal(mvm_net_plan_block(&p, htonl(0xc6336400u + (uint32_t)i), 32, NULL), 0);
    assert_int_equal(mvm_net_plan_block(&p, inet_addr("192.0.2.1"), 32, &err), -1);
    assert_non_null(strstr(err->msg, "more than"));
    mvm_error_free(err);
}

static void test_forward_dropper(void **state)
{
    (void)state;
    const char *accepting =
        "{\"nftables\": [{\"metainfo\": {}}, {\"chain\": {\"family\": \"inet\", \"table\": "
        "\"mvm\", \"name\": \"forward\", \"hook\": \"forward\", \"policy\": \"accept\"}}]}";
    assert_null(mvm_nft_forward_dropper(accepting));
    const char *ours_dropping = "{\"nftables\": [{\"chain\": {\"family\": \"inet\", \"table\": "
                                "\"mvm\", \"name\": \"f\", \"hook\": \"forward\", \"policy\": "
                                "\"drop\"}}]}";
    assert_null(mvm_nft_forward_dropper(ours_dropping));
    const char *docker = "{\"nftables\": [{\"chain\": {\"family\": \"ip\", \"table\": \"filter\", "
                         "\"name\": \"FORWARD\", \"hook\": \"forward\", \"policy\": \"drop\"}}]}";
    char *d = mvm_nft_forward_dropper(docker);
    assert_string_equal(d, "ip filter, chain FORWARD");
    free(d);
    assert_null(mvm_nft_forward_dropper("not json"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plan_addresses),
        cmocka_unit_test(test_ruleset_ns),
        cmocka_unit_test(test_plan_block_full),
        cmocka_unit_test(test_forward_dropper),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
