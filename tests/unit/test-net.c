/* Unit tests for net/'s pure parts: the plan, the rulesets as text, and
 * the reading of another firewall's forward chains. */
#include <arpa/inet.h>
#include <errno.h>
#include <net/if.h>
#include <netinet/in.h>
#include <netlink/netlink.h>
#include <netlink/route/link.h>
#include <netlink/route/link/veth.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "net-int.h"
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

/* A plan for mode with an empty policy of its own. */
static void fresh_plan(struct mvm_net_plan *p, struct mvm_net_policy *pol, enum mvm_net_mode mode,
                       unsigned slot, const char *id)
{
    memset(pol, 0, sizeof *pol);
    assert_int_equal(mvm_net_plan_init(p, mode, slot, id, NULL), 0);
    p->policy = pol;
}

static void test_policy_publish(void **state)
{
    (void)state;
    struct mvm_net_publish p;
    char ip[16];
    assert_int_equal(mvm_net_parse_publish("8080:80", &p, NULL), 0);
    assert_string_equal(mvm_ip4_str(p.host_ip, ip), "127.0.0.1");
    assert_int_equal(p.host_port, 8080);
    assert_int_equal(p.guest_port, 80);
    assert_int_equal(p.proto, IPPROTO_TCP);
    assert_int_equal(mvm_net_parse_publish("0.0.0.0:5353:53/udp", &p, NULL), 0);
    assert_string_equal(mvm_ip4_str(p.host_ip, ip), "0.0.0.0");
    assert_int_equal(p.proto, IPPROTO_UDP);
    assert_int_equal(mvm_net_parse_publish("10.1.2.3:1:65535/tcp", &p, NULL), 0);
    assert_int_equal(p.guest_port, 65535);
    const char *bad[] = {
        "80",     "0:80",      "80:0", "80:65536",  "x:80:80",       "80:80/sctp",
        "80:80/", ":80",       "80:",  "+80:80",    "1.2.3:8:8",     "a:b:80:80",
        "80:80 ", "999999:80", "",     "::1:80:80", "80:80/udp/tcp", "1.2.3.4:80:80:80"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct mvm_error *err = NULL;
        if (mvm_net_parse_publish(bad[i], &p, &err) != -1)
            fail_msg("accepted --publish '%s'", bad[i]);
        assert_non_null(strstr(err->msg, "[HOSTIP:]HOSTPORT:GUESTPORT"));
        mvm_error_free(err);
    }
}

static void test_policy_lists(void **state)
{
    (void)state;
    static struct mvm_net_policy pol;
    struct mvm_error *err = NULL;
    memset(&pol, 0, sizeof pol);
    assert_int_equal(mvm_net_policy_publish(&pol, "8080:80", NULL), 0);
    assert_int_equal(mvm_net_policy_publish(&pol, "8080:80/udp", NULL), 0); /* another protocol */
    assert_int_equal(mvm_net_policy_publish(&pol, "10.0.0.1:8081:80", NULL), 0);
    assert_int_equal(mvm_net_policy_publish(&pol, "10.0.0.2:8081:80", NULL), 0);
    /* The same port twice, or under 0.0.0.0, which covers every address. */
    assert_int_equal(mvm_net_policy_publish(&pol, "127.0.0.1:8080:81", &err), -1);
    assert_non_null(strstr(err->msg, "8080/tcp is published twice"));
    mvm_error_free(err);
    err = NULL;
    assert_int_equal(mvm_net_policy_publish(&pol, "0.0.0.0:8081:80", &err), -1);
    mvm_error_free(err);
    err = NULL;
    assert_int_equal(pol.npublish, 4);

    assert_int_equal(mvm_net_policy_allow_host(&pol, "3128", NULL), 0);
    assert_int_equal(mvm_net_policy_allow_host(&pol, "3128", NULL), 0);
    assert_int_equal(pol.nhost_ports, 1);
    assert_int_equal(mvm_net_policy_allow_host(&pol, "3128/tcp", &err), -1);
    assert_non_null(strstr(err->msg, "--allow-host '3128/tcp'"));
    mvm_error_free(err);
    err = NULL;
    for (int i = 1; i < MVM_NET_MAX_HOLES; i++) {
        char port[8];
        snprintf(port, sizeof port, "%d", 4000 + i);
        assert_int_equal(mvm_net_policy_allow_host(&pol, port, NULL), 0);
    }
    assert_int_equal(mvm_net_policy_allow_host(&pol, "5000", &err), -1);
    assert_non_null(strstr(err->msg, "at most"));
    mvm_error_free(err);
    err = NULL;

    assert_int_equal(mvm_net_policy_allow_lan(&pol, "192.168.1.5:3128", NULL), 0);
    assert_int_equal(mvm_net_policy_allow_lan(&pol, "192.168.1.5:3128", NULL), 0);
    assert_int_equal(pol.nlan, 1);
    char ip[16];
    assert_string_equal(mvm_ip4_str(pol.lan[0].ip, ip), "192.168.1.5");
    assert_int_equal(pol.lan[0].port, 3128);
    const char *bad[] = {"192.168.1.5",   "192.168.1.5:", "nas:80",
                         "192.168.1.5:0", ":80",          "192.168.1.0/24:80"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (mvm_net_policy_allow_lan(&pol, bad[i], &err) != -1)
            fail_msg("accepted --allow-lan '%s'", bad[i]);
        assert_non_null(strstr(err->msg, "IPV4ADDRESS:PORT"));
        mvm_error_free(err);
        err = NULL;
    }
}

/* Holes: accepted before the refusals in the namespace, the gateway
 * address led to the host, and the host table's elements. */
static void test_ruleset_holes(void **state)
{
    (void)state;
    static struct mvm_net_plan p;
    static struct mvm_net_policy pol;
    fresh_plan(&p, &pol, MVM_NET_ISOLATED, 1, "abcdef");
    p.policy = NULL;
    char *r = mvm_net_ruleset_ns(&p);
    assert_null(strstr(r, "@host4 tcp dport"));
    assert_null(strstr(r, "dnat"));
    free(r);
    assert_null(mvm_net_ruleset_host_holes(&p, true));
    p.policy = &pol;
    assert_int_equal(mvm_net_policy_allow_host(&pol, "3128", NULL), 0);
    assert_int_equal(mvm_net_policy_allow_host(&pol, "8000", NULL), 0);
    assert_int_equal(mvm_net_policy_allow_lan(&pol, "192.168.77.10:80", NULL), 0);
    assert_int_equal(mvm_net_plan_host_addr(&p, inet_addr("203.0.113.2"), NULL), 0);
    r = mvm_net_ruleset_ns(&p);
    const char *lan = strstr(r, "ip daddr 192.168.77.10 tcp dport 80 accept");
    const char *host = strstr(r, "ip daddr @host4 tcp dport { 3128, 8000 } accept");
    const char *refuse = strstr(r, "ip daddr @blocked4 meta l4proto tcp reject");
    assert_non_null(lan);
    assert_non_null(host);
    assert_non_null(refuse);
    assert_true(lan < refuse && host < refuse);
    assert_non_null(strstr(r, "set host4 { type ipv4_addr; flags interval; auto-merge; elements = "
                              "{ 10.254.0.5, 203.0.113.2 } }"));
    assert_non_null(strstr(r, "iifname \"tap0\" ip daddr 10.0.2.2 tcp dport { 3128, 8000 } dnat "
                              "ip to 10.254.0.5"));
    /* The host's address is refused like the rest of it, hole or not. */
    assert_non_null(strstr(r, "203.0.113.2/32"));
    free(r);
    char *u = mvm_net_ruleset_blocked(&p);
    assert_non_null(strstr(u, "flush set inet mvm host4\nadd element inet mvm host4 { 10.254.0.5, "
                              "203.0.113.2 }"));
    free(u);
    char *add = mvm_net_ruleset_host_holes(&p, true);
    assert_string_equal(add,
                        "add element inet mvm host_ports { \"mvm-abcdef\" . 3128, \"mvm-abcdef\" "
                        ". 8000 }\n");
    free(add);
    char *del = mvm_net_ruleset_host_holes(&p, false);
    assert_true(strncmp(del, "delete element inet mvm host_ports { ", 37) == 0);
    free(del);
    /* Open mode refuses nothing, so it needs no holes. */
    p.mode = MVM_NET_OPEN;
    r = mvm_net_ruleset_ns(&p);
    assert_null(strstr(r, "192.168.77.10"));
    free(r);
}

static void test_ruleset_host(void **state)
{
    (void)state;
    char *h = mvm_net_ruleset_host();
    /* Rules replaced whole, the holes' set kept (flush, not delete); the
     * hole is accepted before the drop. */
    assert_true(strncmp(h, "add table inet mvm\nflush table inet mvm\n", 40) == 0);
    assert_null(strstr(h, "delete table"));
    const char *hole = strstr(h, "iif . tcp dport @host_ports accept");
    const char *drop = strstr(h, "fib daddr type local drop");
    assert_non_null(hole);
    assert_non_null(drop);
    assert_true(hole < drop);
    free(h);
}

static void test_stale_holes(void **state)
{
    (void)state;
    const char *json =
        "{\"nftables\": [{\"metainfo\": {}}, {\"set\": {\"family\": \"inet\", \"name\": "
        "\"host_ports\", \"table\": \"mvm\", \"elem\": [{\"concat\": [\"3\", 80]}, "
        "{\"concat\": [\"mvm-abc\", 81]}, {\"concat\": [\"17\", 3128]}, {\"concat\": "
        "[\"4; flush ruleset\", 1]}, {\"concat\": [\"5\", 0]}]}}]}";
    char *del = mvm_nft_stale_holes(json);
    assert_string_equal(del, "delete element inet mvm host_ports { 3 . 80 }\n"
                             "delete element inet mvm host_ports { 17 . 3128 }\n");
    free(del);
    const char *live = "{\"nftables\": [{\"set\": {\"elem\": [{\"concat\": [\"mvm-a\", 80]}]}}]}";
    assert_null(mvm_nft_stale_holes(live));
    assert_null(mvm_nft_stale_holes("{\"nftables\": [{\"set\": {\"name\": \"host_ports\"}}]}"));
    assert_null(mvm_nft_stale_holes("garbage"));
}

static void test_policy_allow(void **state)
{
    (void)state;
    static struct mvm_net_policy pol;
    struct mvm_error *err = NULL;
    char text[300], ip[16];
    memset(&pol, 0, sizeof pol);
    assert_int_equal(mvm_net_policy_allow(&pol,
                                          "API.Anthropic.com,*.githubusercontent.com:8443,"
                                          "198.51.100.7,203.0.113.77/24:22,pypi.org.",
                                          &err),
                     0);
    assert_int_equal(pol.nallow, 5);
    assert_string_equal(pol.allow[0].name, "api.anthropic.com");
    assert_false(pol.allow[0].wildcard);
    assert_int_equal(pol.allow[0].port, 0);
    assert_string_equal(pol.allow[1].name, "githubusercontent.com");
    assert_true(pol.allow[1].wildcard);
    assert_int_equal(pol.allow[1].port, 8443);
    assert_string_equal(pol.allow[2].name, "");
    assert_string_equal(mvm_ip4_str(pol.allow[2].ip, ip), "198.51.100.7");
    assert_int_equal(pol.allow[2].len, 32);
    assert_string_equal(mvm_ip4_str(pol.allow[3].ip, ip), "203.0.113.0"); /* host bits cleared */
    assert_int_equal(pol.allow[3].len, 24);
    assert_int_equal(pol.allow[3].port, 22);
    assert_string_equal(pol.allow[4].name, "pypi.org");
    assert_string_equal(mvm_net_allow_str(&pol.allow[1], text, sizeof text),
                        "*.githubusercontent.com:8443");
    assert_string_equal(mvm_net_allow_str(&pol.allow[3], text, sizeof text), "203.0.113.0/24:22");

    const char *bad[] = {"",
                         "a..b",
                         "*",
                         "*.com.*",
                         "local",
                         "x.com:0",
                         "x.com:http",
                         "1.2.3",
                         "1.2.3.4/33",
                         "1.2.3.4/",
                         "a b.com",
                         "-x.com,",
                         "x.com,,y.com",
                         "ex\xc3\xa4mple.com",
                         "a.*.com"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        memset(&pol, 0, sizeof pol);
        if (mvm_net_policy_allow(&pol, bad[i], &err) != -1)
            fail_msg("accepted allow=%s", bad[i]);
        mvm_error_free(err);
        err = NULL;
    }
    /* The LAN is never opened by allow=. */
    const char *lan[] = {"192.168.1.5", "10.0.0.0/8", "0.0.0.0/0", "169.254.169.254:80",
                         "100.64.0.1"};
    for (size_t i = 0; i < sizeof lan / sizeof lan[0]; i++) {
        memset(&pol, 0, sizeof pol);
        assert_int_equal(mvm_net_policy_allow(&pol, lan[i], &err), -1);
        assert_non_null(strstr(err->msg, "use --allow-lan"));
        mvm_error_free(err);
        err = NULL;
    }
    memset(&pol, 0, sizeof pol);
    for (int i = 0; i < MVM_NET_MAX_ALLOW; i++)
        assert_int_equal(mvm_net_policy_allow(&pol, "a.example", NULL), 0);
    assert_int_equal(mvm_net_policy_allow(&pol, "a.example", &err), -1);
    assert_non_null(strstr(err->msg, "at most"));
    mvm_error_free(err);
}

/* The namespace's own services (the API gateway): the guest reaches
 * their ports, and their connections out meet the guest's refusals in an
 * output chain; without services there is no output chain. */
/* What --api-key asks of allow= before anything exists: the gateway's
 * upstream matched by the relay's name rules, address rules and the
 * rules' ports. */
static void test_policy_allows(void **state)
{
    (void)state;
    static struct mvm_net_policy pol;
    memset(&pol, 0, sizeof pol);
    assert_int_equal(
        mvm_net_policy_allow(&pol, "api.anthropic.com,*.example.org,198.51.100.0/24:8443", NULL),
        0);
    assert_true(mvm_net_policy_allows(&pol, "api.anthropic.com", 443));
    assert_true(mvm_net_policy_allows(&pol, "API.Anthropic.COM", 443));
    assert_true(mvm_net_policy_allows(&pol, "api.anthropic.com", 80));
    assert_false(mvm_net_policy_allows(&pol, "api.anthropic.com", 8443));
    assert_false(mvm_net_policy_allows(&pol, "anthropic.com", 443));
    assert_true(mvm_net_policy_allows(&pol, "a.b.example.org", 443));
    assert_false(mvm_net_policy_allows(&pol, "example.org", 443)); /* *.NAME is not NAME */
    assert_false(mvm_net_policy_allows(&pol, "badexample.org", 443));
    assert_true(mvm_net_policy_allows(&pol, "198.51.100.7", 8443));
    assert_false(mvm_net_policy_allows(&pol, "198.51.100.7", 443));
    assert_false(mvm_net_policy_allows(&pol, "198.51.101.7", 8443));
    assert_int_equal(mvm_ip4_mask(0), 0);
    assert_int_equal(mvm_ip4_mask(24), htonl(0xffffff00u));
}

static void test_ruleset_services(void **state)
{
    (void)state;
    static struct mvm_net_plan p;
    static struct mvm_net_policy pol;
    fresh_plan(&p, &pol, MVM_NET_ISOLATED, 0, "abc");
    char *r = mvm_net_ruleset_ns(&p);
    assert_null(strstr(r, "chain output"));
    assert_null(strstr(r, "tcp dport { 7480"));
    free(r);
    p.services[p.nservices++] = 7480;
    p.services[p.nservices++] = 7481;
    r = mvm_net_ruleset_ns(&p);
    assert_non_null(
        strstr(r, "iifname \"tap0\" ip daddr 10.0.2.2 tcp dport { 7480, 7481 } accept"));
    const char *out = strstr(r, "chain output { type filter hook output priority filter; policy "
                                "accept;\n    oifname != \"up0\" accept\n"
                                "    ct state established,related accept\n");
    assert_non_null(out);
    assert_non_null(strstr(out, "ip daddr @blocked4 meta l4proto tcp reject"));
    assert_non_null(strstr(out, "th dport { 53, 853 } meta l4proto tcp reject"));
    assert_non_null(strstr(out, "    accept\n  }"));
    free(r);
    /* allow= mode: only the allowed sets pass out, the rest is refused. */
    p.mode = MVM_NET_ALLOW;
    r = mvm_net_ruleset_ns(&p);
    out = strstr(r, "chain output");
    assert_non_null(out);
    assert_non_null(strstr(out, "ip daddr . tcp dport @allowdns4 accept\n"
                                "    meta l4proto tcp reject with tcp reset\n"));
    assert_null(strstr(out, "    accept\n  }"));
    free(r);
}

/* The WireGuard uplink: what is accepted goes out through wg0 and is
 * masqueraded there, the refusals as before; the services' output chain
 * lets the relay ask the tunnel's resolver, which may stand in a refused
 * range, and nothing else there. */
static void test_ruleset_wg(void **state)
{
    (void)state;
    static struct mvm_net_plan p;
    static struct mvm_net_policy pol;
    fresh_plan(&p, &pol, MVM_NET_ISOLATED, 0, "abc");
    p.uplink = MVM_NET_UPLINK_WG;
    inet_pton(AF_INET, "10.64.0.1", &p.upstream[p.nupstream++]);
    char *r = mvm_net_ruleset_ns(&p);
    assert_null(strstr(r, "up0"));
    assert_non_null(strstr(r, "ip daddr @blocked4 meta l4proto tcp reject"));
    assert_non_null(strstr(r, "    oifname \"wg0\" accept\n"));
    assert_non_null(strstr(r, "    oifname \"wg0\" masquerade\n"));
    assert_null(strstr(r, "10.64.0.1")); /* no output chain: the guest never gets it */
    free(r);
    p.services[p.nservices++] = 7480;
    r = mvm_net_ruleset_ns(&p);
    const char *out = strstr(r, "chain output");
    assert_non_null(out);
    assert_non_null(strstr(out, "    oifname != \"wg0\" accept\n"
                                "    ct state established,related accept\n"
                                "    ip daddr 10.64.0.1 udp dport 53 accept\n"));
    free(r);
    /* --net open with the tunnel: no refusals, and still only wg0 out. */
    p.mode = MVM_NET_OPEN;
    p.nservices = 0;
    r = mvm_net_ruleset_ns(&p);
    assert_null(strstr(r, "ip daddr @blocked4 meta l4proto tcp reject"));
    assert_non_null(strstr(r, "    oifname \"wg0\" accept\n  }"));
    free(r);
    p.mode = MVM_NET_ISOLATED;
    p.services[p.nservices++] = 7480;
    p.uplink = MVM_NET_UPLINK_HOST;
    r = mvm_net_ruleset_ns(&p);
    assert_null(strstr(r, "10.64.0.1")); /* the host's uplink: the relay asks from the host */
    free(r);
}

static void test_ruleset_allow(void **state)
{
    (void)state;
    static struct mvm_net_plan p;
    static struct mvm_net_policy pol;
    fresh_plan(&p, &pol, MVM_NET_ALLOW, 0, "abc");
    assert_int_equal(
        mvm_net_policy_allow(&pol, "api.example.com,198.51.100.7,203.0.113.0/24:22", NULL), 0);
    char *r = mvm_net_ruleset_ns(&p);
    assert_non_null(strstr(r, "set allow4 { type ipv4_addr . inet_service; flags interval; "
                              "elements = { 198.51.100.7/32 . 80, 198.51.100.7/32 . 443, "
                              "203.0.113.0/24 . 22 } }"));
    assert_non_null(strstr(r, "set allowdns4 { type ipv4_addr . inet_service; flags timeout; "
                              "size 65536; }"));
    /* The refusals first, then the allowed, then everything else refused:
     * nothing leaves up0 just because it is there. */
    const char *lanref = strstr(r, "ip daddr @blocked4 meta l4proto tcp reject");
    const char *dnsref = strstr(r, "th dport { 53, 853 } meta l4proto tcp reject");
    const char *allow = strstr(r, "ip daddr . tcp dport @allowdns4 accept");
    const char *rest = strstr(r, "accept\n    meta l4proto tcp reject with tcp reset\n"
                                 "    reject with icmpx type admin-prohibited\n  }");
    assert_non_null(lanref);
    assert_non_null(dnsref);
    assert_non_null(allow);
    assert_non_null(rest);
    assert_true(lanref < allow && dnsref < allow);
    assert_null(strstr(r, "oifname \"up0\" accept"));
    free(r);
    /* Only names: an empty static set. */
    memset(&pol, 0, sizeof pol);
    mvm_net_policy_allow(&pol, "api.example.com", NULL);
    r = mvm_net_ruleset_ns(&p);
    assert_non_null(strstr(r, "set allow4 { type ipv4_addr . inet_service; flags interval; }"));
    free(r);
}

static void test_reports(void **state)
{
    (void)state;
    static struct mvm_net_plan p;
    static struct mvm_net_policy pol;
    fresh_plan(&p, &pol, MVM_NET_ALLOW, 0, "abc");
    mvm_net_policy_allow(&pol, "api.example.com,198.51.100.7,*.cdn.example:8443", NULL);
    mvm_net_plan_block(&p, inet_addr("203.0.113.0"), 24, NULL);
    struct mvm_net_report ok = {.seq = 9, .rule = 0, .flags = MVM_NET_REPORT_LAST, .ttl = 5};
    memcpy(ok.addr, "\xc6\x33\x64\x51", 4); /* 198.51.100.81 */
    assert_int_equal(mvm_net_report_check(&p, &ok, NULL), 0);
    struct mvm_error *err = NULL;
    struct mvm_net_report bad = ok;
    bad.rule = 1; /* an address rule */
    assert_int_equal(mvm_net_report_check(&p, &bad, &err), -1);
    assert_non_null(strstr(err->msg, "no name rule"));
    mvm_error_free(err);
    bad.rule = 3; /* past the end */
    assert_int_equal(mvm_net_report_check(&p, &bad, NULL), -1);
    bad = ok;
    bad.flags = 2;
    assert_int_equal(mvm_net_report_check(&p, &bad, NULL), -1);
    bad = ok;
    bad.zero = 1;
    assert_int_equal(mvm_net_report_check(&p, &bad, NULL), -1);
    bad = ok;
    memcpy(bad.addr, "\xc0\xa8\x01\x05", 4); /* 192.168.1.5 */
    assert_int_equal(mvm_net_report_check(&p, &bad, NULL), -1);
    memcpy(bad.addr, "\xcb\x00\x71\x02", 4); /* 203.0.113.2: refused by the plan */
    assert_int_equal(mvm_net_report_check(&p, &bad, NULL), -1);
    p.mode = MVM_NET_ISOLATED;
    assert_int_equal(mvm_net_report_check(&p, &ok, NULL), -1);
    p.mode = MVM_NET_ALLOW;

    /* Each address with its rule's ports, the TTL bounded, and the
     * timeout renewed for an element that is there already. */
    struct mvm_net_report two[2] = {ok, ok};
    two[1].rule = 2;
    two[1].ttl = 1u << 30;
    char *r = mvm_net_ruleset_reports(&p, two, 2);
    assert_string_equal(r,
                        "add element inet mvm allowdns4 { 198.51.100.81 . 80 timeout 60s }\n"
                        "delete element inet mvm allowdns4 { 198.51.100.81 . 80 }\n"
                        "add element inet mvm allowdns4 { 198.51.100.81 . 80 timeout 60s }\n"
                        "add element inet mvm allowdns4 { 198.51.100.81 . 443 timeout 60s }\n"
                        "delete element inet mvm allowdns4 { 198.51.100.81 . 443 }\n"
                        "add element inet mvm allowdns4 { 198.51.100.81 . 443 timeout 60s }\n"
                        "add element inet mvm allowdns4 { 198.51.100.81 . 8443 timeout 3600s }\n"
                        "delete element inet mvm allowdns4 { 198.51.100.81 . 8443 }\n"
                        "add element inet mvm allowdns4 { 198.51.100.81 . 8443 timeout 3600s }\n");
    free(r);
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

/* ---- the rulesets in a real kernel (root, a network namespace of the
 * test's own) ---------------------------------------------------------- */

static void apply_ok(const char *ruleset)
{
    struct mvm_error *err = NULL;
    if (mvm_nft_apply(ruleset, "the test namespace", &err) < 0)
        fail_msg("%s\n--- in:\n%s", err->msg, ruleset);
}

static void veth(const char *name, bool add)
{
    struct nl_sock *sk = nl_socket_alloc();
    assert_int_equal(nl_connect(sk, NETLINK_ROUTE), 0);
    struct rtnl_link *l = add ? rtnl_link_veth_alloc() : rtnl_link_alloc();
    rtnl_link_set_name(l, name);
    if (add) {
        char peer[16];
        snprintf(peer, sizeof peer, "%s-p", name);
        struct rtnl_link *p = rtnl_link_veth_get_peer(l); /* a reference of its own */
        rtnl_link_set_name(p, peer);
        rtnl_link_put(p);
        assert_int_equal(rtnl_link_add(sk, l, NLM_F_CREATE | NLM_F_EXCL), 0);
        rtnl_link_veth_release(l);
    } else {
        assert_int_equal(rtnl_link_delete(sk, l), 0);
        rtnl_link_put(l);
    }
    nl_socket_free(sk);
}

static void test_kernel_rulesets(void **state)
{
    (void)state;
    static struct mvm_net_plan p;
    static struct mvm_net_policy pol;
    fresh_plan(&p, &pol, MVM_NET_ISOLATED, 1, "kernel");
    mvm_net_policy_allow_host(&pol, "3128", NULL);
    mvm_net_policy_allow_lan(&pol, "192.168.77.10:80", NULL);
    mvm_net_plan_host_addr(&p, inet_addr("203.0.113.2"), NULL);
    mvm_net_plan_block(&p, inet_addr("198.51.100.0"), 24, NULL);

    /* The host table, then a session's holes, then the table written
     * again by the next session: the holes survive it. */
    veth("mvm-kernel", true);
    char *host = mvm_net_ruleset_host();
    apply_ok(host);
    char *add = mvm_net_ruleset_host_holes(&p, true);
    apply_ok(add);
    apply_ok(host);
    char *del = mvm_net_ruleset_host_holes(&p, false);
    apply_ok(del); /* fails unless the element is still there */
    /* A session killed before its teardown: its veth goes, the element
     * stays under the interface's number, and the sweep removes it. */
    char by_number[128];
    snprintf(by_number, sizeof by_number, "delete element inet mvm host_ports { %u . 3128 }\n",
             if_nametoindex("mvm-kernel"));
    apply_ok(add);
    veth("mvm-kernel", false);
    struct mvm_error *err = NULL;
    assert_int_equal(mvm_nft_apply(del, "the test namespace", &err), -1); /* the name is gone */
    mvm_error_free(err);
    err = NULL;
    mvm_net_sweep_holes();
    assert_int_equal(mvm_nft_apply(by_number, "the test namespace", &err), -1);
    mvm_error_free(err);
    /* Control: without the sweep, the element is there to delete. */
    veth("mvm-kernel", true);
    snprintf(by_number, sizeof by_number, "delete element inet mvm host_ports { %u . 3128 }\n",
             if_nametoindex("mvm-kernel"));
    apply_ok(add);
    veth("mvm-kernel", false);
    apply_ok(by_number);
    free(host);
    free(add);
    free(del);

    /* The namespace's rules with every kind of hole, and their update. */
    mvm_nft_apply("add table inet mvm\ndelete table inet mvm\n", "the test namespace", NULL);
    char *ns = mvm_net_ruleset_ns(&p);
    apply_ok(ns);
    char *upd = mvm_net_ruleset_blocked(&p);
    apply_ok(upd);
    free(ns);
    free(upd);
    p.mode = MVM_NET_OPEN;
    mvm_nft_apply("add table inet mvm\ndelete table inet mvm\n", "the test namespace", NULL);
    ns = mvm_net_ruleset_ns(&p);
    apply_ok(ns);
    free(ns);

    /* allow= mode, and a report's addresses added twice: the second time
     * renews the element rather than failing. */
    p.mode = MVM_NET_ALLOW;
    mvm_net_policy_allow(&pol, "api.example.com,198.51.100.7,203.0.113.0/24:22", NULL);
    mvm_nft_apply("add table inet mvm\ndelete table inet mvm\n", "the test namespace", NULL);
    ns = mvm_net_ruleset_ns(&p);
    apply_ok(ns);
    free(ns);
    struct mvm_net_report rep = {.seq = 1, .rule = 1, .flags = MVM_NET_REPORT_LAST, .ttl = 0};
    memcpy(rep.addr, "\xc6\x33\x64\x51", 4);
    char *add_rep = mvm_net_ruleset_reports(&p, &rep, 1);
    apply_ok(add_rep);
    apply_ok(add_rep);
    free(add_rep);
    apply_ok("delete element inet mvm allowdns4 { 198.51.100.81 . 443 }\n");

    /* The WireGuard uplink's, with the services' output chain. */
    p.mode = MVM_NET_ISOLATED;
    p.uplink = MVM_NET_UPLINK_WG;
    p.services[p.nservices++] = 7480;
    inet_pton(AF_INET, "10.64.0.1", &p.upstream[p.nupstream++]);
    mvm_nft_apply("add table inet mvm\ndelete table inet mvm\n", "the test namespace", NULL);
    ns = mvm_net_ruleset_ns(&p);
    apply_ok(ns);
    free(ns);
}

static int kernel_tests(void)
{
    if (geteuid() != 0) {
        printf("SKIP: needs root (nftables in a network namespace of its own)\n");
        return 77;
    }
    if (unshare(CLONE_NEWNET) < 0) {
        printf("SKIP: cannot create a network namespace: %s\n", strerror(errno));
        return 77;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kernel_rulesets),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

int main(int argc, char **argv)
{
    if (argc == 2 && strcmp(argv[1], "kernel") == 0)
        return kernel_tests();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plan_addresses),  cmocka_unit_test(test_ruleset_ns),
        cmocka_unit_test(test_plan_block_full), cmocka_unit_test(test_forward_dropper),
        cmocka_unit_test(test_policy_publish),  cmocka_unit_test(test_policy_lists),
        cmocka_unit_test(test_ruleset_holes),   cmocka_unit_test(test_ruleset_host),
        cmocka_unit_test(test_stale_holes),     cmocka_unit_test(test_policy_allow),
        cmocka_unit_test(test_ruleset_allow),   cmocka_unit_test(test_ruleset_services),
        cmocka_unit_test(test_policy_allows),   cmocka_unit_test(test_reports),
        cmocka_unit_test(test_ruleset_wg),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
