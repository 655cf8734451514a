/* Unit tests for mvm-init's "net" parser (src/guest/netconf.c): a valid
 * description, then each field broken alone against that valid control,
 * and the absent/null cases that mean "no network". */
#include <arpa/inet.h>
#include <jansson.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "guest.h"

#define GOOD_NET                                                                    \
    "{\"mac\": \"52:54:00:12:34:56\", \"address\": \"10.0.2.15\", \"prefix\": 24, " \
    "\"gateway\": \"10.0.2.2\", \"dns\": [\"10.0.2.2\"], \"mtu\": 1500}"

/* Parses text with the result in *n; -1 and the message in why on error. */
static int parse_text(const char *text, struct guest_net *n, char *why, size_t whylen)
{
    json_error_t jerr;
    json_t *v = json_loads(text, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, &jerr);
    assert_non_null(v);
    why[0] = '\0';
    int rc = guest_net_parse(v, n, why, whylen);
    json_decref(v);
    return rc;
}

/* GOOD_NET with one field replaced (or, with value NULL, removed). */
static int parse_with(const char *key, const char *value, struct guest_net *n, char *why,
                      size_t whylen)
{
    json_t *v = json_loads(GOOD_NET, 0, NULL);
    assert_non_null(v);
    if (value == NULL) {
        assert_int_equal(json_object_del(v, key), 0);
    } else {
        json_t *nv = json_loads(value, JSON_DECODE_ANY, NULL);
        assert_non_null(nv);
        assert_int_equal(json_object_set_new(v, key, nv), 0);
    }
    why[0] = '\0';
    int rc = guest_net_parse(v, n, why, whylen);
    json_decref(v);
    return rc;
}

static void test_valid(void **state)
{
    (void)state;
    struct guest_net n;
    char why[256];
    assert_int_equal(parse_text(GOOD_NET, &n, why, sizeof why), 0);
    assert_true(n.enabled);
    assert_string_equal(n.mac, "52:54:00:12:34:56");
    const uint8_t mac[6] = {0x52, 0x54, 0x00, 0x12, 0x34, 0x56};
    assert_memory_equal(n.mac_bytes, mac, 6);
    assert_int_equal(n.address, htonl(0x0a00020f));
    assert_int_equal(n.gateway, htonl(0x0a000202));
    assert_int_equal(n.prefix, 24);
    assert_int_equal(n.mtu, 1500);
    assert_int_equal(n.ndns, 1);
    assert_int_equal(n.dns[0], htonl(0x0a000202));
}

/* Upper-case hex is normalised; bounds of prefix and mtu are inclusive;
 * up to three resolvers, or none. */
static void test_valid_edges(void **state)
{
    (void)state;
    struct guest_net n;
    char why[256];
    assert_int_equal(parse_with("mac", "\"52:54:00:AB:cd:EF\"", &n, why, sizeof why), 0);
    assert_string_equal(n.mac, "52:54:00:ab:cd:ef");
    assert_int_equal(parse_with("mtu", "576", &n, why, sizeof why), 0);
    assert_int_equal(parse_with("mtu", "9000", &n, why, sizeof why), 0);
    assert_int_equal(n.mtu, 9000);
    assert_int_equal(parse_with("dns", "[]", &n, why, sizeof why), 0);
    assert_int_equal(n.ndns, 0);
    assert_int_equal(
        parse_with("dns", "[\"1.1.1.1\", \"8.8.8.8\", \"9.9.9.9\"]", &n, why, sizeof why), 0);
    assert_int_equal(n.ndns, 3);
    assert_int_equal(n.dns[2], htonl(0x09090909));
    assert_int_equal(parse_text("{\"mac\": \"52:54:00:12:34:56\", \"address\": \"10.0.0.1\", "
                                "\"prefix\": 30, \"gateway\": \"10.0.0.2\", \"dns\": [], "
                                "\"mtu\": 1500}",
                                &n, why, sizeof why),
                     0);
    assert_int_equal(parse_text("{\"mac\": \"52:54:00:12:34:56\", \"address\": \"10.0.0.1\", "
                                "\"prefix\": 1, \"gateway\": \"100.200.0.1\", \"dns\": [], "
                                "\"mtu\": 1500}",
                                &n, why, sizeof why),
                     0);
    assert_int_equal(n.prefix, 1);
}

static void test_absent(void **state)
{
    (void)state;
    struct guest_net n;
    memset(&n, 0xff, sizeof n);
    char why[256] = "";
    assert_int_equal(guest_net_parse(NULL, &n, why, sizeof why), 0);
    assert_false(n.enabled);
    memset(&n, 0xff, sizeof n);
    assert_int_equal(parse_text("null", &n, why, sizeof why), 0);
    assert_false(n.enabled);
    assert_int_equal(n.ndns, 0);
}

struct bad {
    const char *key, *value; /* value NULL: the key is removed */
    const char *message;     /* a part of the error the user sees */
};

static const struct bad bads[] = {
    {"mac", NULL, "net.mac"},
    {"mac", "\"52:54:00:12:34\"", "net.mac"},
    {"mac", "\"52:54:00:12:34:567\"", "net.mac"},
    {"mac", "\"52-54-00-12-34-56\"", "net.mac"},
    {"mac", "\"52:54:00:12:34:5g\"", "net.mac"},
    {"mac", "\"53:54:00:12:34:56\"", "net.mac"}, /* multicast */
    {"mac", "\"00:00:00:00:00:00\"", "net.mac"},
    {"mac", "5254", "net.mac"},
    {"address", NULL, "net.address"},
    {"address", "\"10.0.2\"", "net.address"},
    {"address", "\"10.0.2.15.1\"", "net.address"},
    {"address", "\"10.0.2.256\"", "net.address"},
    {"address", "\"10.0.2.015\"", "net.address"},
    {"address", "\"10.0.2.15 \"", "net.address"},
    {"address", "\" 10.0.2.15\"", "net.address"},
    {"address", "\"10.0.2.+15\"", "net.address"},
    {"address", "\"10..2.15\"", "net.address"},
    {"address", "\"::1\"", "net.address"},
    {"address", "\"127.0.0.1\"", "net.address"},
    {"address", "\"224.0.0.1\"", "net.address"},
    {"address", "\"0.0.2.15\"", "net.address"},
    {"address", "167772687", "net.address"},
    {"address", "\"10.0.2.0\"", "network or broadcast"},
    {"address", "\"10.0.2.255\"", "network or broadcast"},
    {"prefix", NULL, "net.prefix"},
    {"prefix", "0", "net.prefix"},
    {"prefix", "31", "net.prefix"},
    {"prefix", "32", "net.prefix"},
    {"prefix", "-24", "net.prefix"},
    {"prefix", "\"24\"", "net.prefix"},
    {"prefix", "24.0", "net.prefix"},
    {"gateway", NULL, "net.gateway"},
    {"gateway", "\"10.0.3.2\"", "net.gateway"},
    {"gateway", "\"10.0.2.15\"", "net.gateway"},
    {"gateway", "\"10.0.2.0\"", "net.gateway"},
    {"gateway", "\"10.0.2.255\"", "net.gateway"},
    {"gateway", "\"10.0.2.2x\"", "net.gateway"},
    {"dns", NULL, "net.dns"},
    {"dns", "\"10.0.2.2\"", "net.dns"},
    {"dns", "[\"10.0.2.2\", \"1.1.1.1\", \"8.8.8.8\", \"9.9.9.9\"]", "net.dns"},
    {"dns", "[\"10.0.2.2\", \"fe80::1\"]", "net.dns[1]"},
    {"dns", "[\"0.0.0.0\"]", "net.dns[0]"},
    {"dns", "[1]", "net.dns[0]"},
    {"mtu", NULL, "net.mtu"},
    {"mtu", "575", "net.mtu"},
    {"mtu", "9001", "net.mtu"},
    {"mtu", "\"1500\"", "net.mtu"},
    {"mtu", "1e3", "net.mtu"},
    {"extra", "1", "net.extra"},
};

/* Each bad field fails with a message naming it, and the same call with
 * the field as in GOOD_NET (the control) succeeds: the test can fail. */
static void test_invalid(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof bads / sizeof bads[0]; i++) {
        struct guest_net n;
        char why[256];
        assert_int_equal(parse_text(GOOD_NET, &n, why, sizeof why), 0);
        int rc = parse_with(bads[i].key, bads[i].value, &n, why, sizeof why);
        if (rc != -1 || strstr(why, bads[i].message) == NULL)
            fail_msg("%s=%s: rc %d, message '%s'", bads[i].key,
                     bads[i].value ? bads[i].value : "(absent)", rc, why);
        assert_false(n.enabled);
    }
}

static void test_not_object(void **state)
{
    (void)state;
    struct guest_net n;
    char why[256];
    assert_int_equal(parse_text("[]", &n, why, sizeof why), -1);
    assert_non_null(strstr(why, "'net' is not an object"));
    assert_int_equal(parse_text("\"none\"", &n, why, sizeof why), -1);
    assert_int_equal(parse_text("false", &n, why, sizeof why), -1);
    assert_false(n.enabled);
}

static void test_ipv4_roundtrip(void **state)
{
    (void)state;
    static const char *const good[] = {"0.0.0.0", "1.2.3.4", "255.255.255.255", "10.0.2.15",
                                       "192.168.100.200"};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        uint32_t a;
        char back[16];
        assert_int_equal(guest_net_parse_ipv4(good[i], &a), 0);
        guest_net_format_ipv4(a, back, sizeof back);
        assert_string_equal(back, good[i]);
    }
    static const char *const bad[] = {"",           "1",         "1.2.3",    "1.2.3.4.",
                                      ".1.2.3.4",   "1.2.3.4.5", "01.2.3.4", "1.2.3.0004",
                                      "1.2.3.1000", "0x1.2.3.4", "1.2.3.-4", "1. 2.3.4"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        uint32_t a = 7;
        if (guest_net_parse_ipv4(bad[i], &a) != -1)
            fail_msg("'%s' accepted", bad[i]);
        assert_int_equal(a, 7);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid),      cmocka_unit_test(test_valid_edges),
        cmocka_unit_test(test_absent),     cmocka_unit_test(test_invalid),
        cmocka_unit_test(test_not_object), cmocka_unit_test(test_ipv4_roundtrip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
