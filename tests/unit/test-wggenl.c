/* Unit tests for the kernel WireGuard family's messages (net/wggenl-msg.c):
 * a set request read back attribute by attribute -- keys, port, flags,
 * both endpoint families, keepalive, allowed IPs -- the refusals (an
 * Endpoint not resolved, a message too small), the get request, and
 * what is read from an answer, a malformed one refused. */
#include <arpa/inet.h>
#include <linux/wireguard.h>
#include <netlink/attr.h>
#include <netlink/genl/genl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "util.h"
#include "wggenl.h"

#define FAMILY 0x1d

/* Bytes 0..31, 32..63, 64..95 and 96..127 in base64. */
#define KEY0 "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
#define KEY1 "ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8="
#define KEY2 "QEFCQ0RFRkdISUpLTE1OT1BRUlNUVVZXWFlaW1xdXl8="
#define KEY3 "YGFiY2RlZmdoaWprbG1ub3BxcnN0dXZ3eHl6e3x9fn8="

static const char conf[] = "[Interface]\n"
                           "PrivateKey = " KEY0 "\n"
                           "Address = 10.64.0.2/32\n"
                           "ListenPort = 51820\n"
                           "[Peer]\n"
                           "PublicKey = " KEY1 "\n"
                           "PresharedKey = " KEY2 "\n"
                           "Endpoint = vpn.example.com:51821\n"
                           "AllowedIPs = 0.0.0.0/0, 2001:db8::/32\n"
                           "PersistentKeepalive = 25\n"
                           "[Peer]\n"
                           "PublicKey = " KEY3 "\n"
                           "Endpoint = [2001:db8::1]:443\n"
                           "AllowedIPs = 192.168.7.0/24\n";

struct fixture {
    struct mvm_wg_config c;
    struct mvm_wg_ip ep[MVM_WG_MAX_PEERS];
    struct nl_msg *msg;
};

static int setup(void **state)
{
    struct fixture *f = xcalloc(1, sizeof *f);
    struct mvm_error *err = NULL;
    assert_int_equal(mvm_wg_parse(conf, sizeof conf - 1, "wg.conf", &f->c, &err), 0);
    f->ep[0].family = 4;
    inet_pton(AF_INET, "198.51.100.7", f->ep[0].addr);
    f->ep[1].family = 6;
    inet_pton(AF_INET6, "2001:db8::1", f->ep[1].addr);
    f->msg = nlmsg_alloc_size(MVM_WG_GENL_MSG_MAX);
    assert_non_null(f->msg);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    nlmsg_free(f->msg);
    free(f);
    return 0;
}

static void check_key(const struct nlattr *a, unsigned first)
{
    assert_non_null(a);
    assert_int_equal(nla_len(a), MVM_WG_KEY_LEN);
    const uint8_t *key = nla_data(a);
    for (unsigned i = 0; i < MVM_WG_KEY_LEN; i++)
        assert_int_equal(key[i], first + i);
}

/* The nested attributes of a, by type, into tb (max + 1 slots). */
static void nested(struct nlattr **tb, int max, const struct nlattr *a)
{
    assert_non_null(a);
    assert_int_equal(nla_parse_nested(tb, max, (struct nlattr *)a, NULL), 0);
}

static size_t count(const struct nlattr *list)
{
    struct nlattr *a;
    int left;
    size_t n = 0;
    nla_for_each_nested(a, list, left) n++;
    return n;
}

static void check_allowed(const struct nlattr *a, int family, const char *addr, unsigned len)
{
    struct nlattr *tb[WGALLOWEDIP_A_MAX + 1];
    uint8_t want[16];
    nested(tb, WGALLOWEDIP_A_MAX, a);
    assert_int_equal(nla_get_u16(tb[WGALLOWEDIP_A_FAMILY]), family);
    assert_int_equal(inet_pton(family, addr, want), 1);
    assert_int_equal(nla_len(tb[WGALLOWEDIP_A_IPADDR]), family == AF_INET ? 4 : 16);
    assert_memory_equal(nla_data(tb[WGALLOWEDIP_A_IPADDR]), want, family == AF_INET ? 4 : 16);
    assert_int_equal(nla_get_u8(tb[WGALLOWEDIP_A_CIDR_MASK]), len);
}

/* The attribute is the sockaddr of family for addr:port, to the byte. */
static void check_endpoint(const struct nlattr *a, int family, unsigned port, const char *addr)
{
    struct sockaddr_in v4 = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    struct sockaddr_in6 v6 = {.sin6_family = AF_INET6, .sin6_port = htons((uint16_t)port)};
    bool is4 = family == AF_INET;
    assert_int_equal(inet_pton(family, addr, is4 ? (void *)&v4.sin_addr : (void *)&v6.sin6_addr),
                     1);
    assert_non_null(a);
    assert_int_equal(nla_len(a), is4 ? sizeof v4 : sizeof v6);
    assert_memory_equal(nla_data(a), is4 ? (void *)&v4 : (void *)&v6, is4 ? sizeof v4 : sizeof v6);
}

/* The peers' attributes, in order, into peers[2]. */
static void peers_of(struct nlattr *dev, struct nlattr *peers[2][WGPEER_A_MAX + 1])
{
    struct nlattr *p;
    int left, i = 0;
    assert_int_equal(count(dev), 2);
    nla_for_each_nested(p, dev, left) nested(peers[i++], WGPEER_A_MAX, p);
}

static void set_request(void **state)
{
    struct fixture *f = *state;
    struct mvm_error *err = NULL;
    assert_int_equal(mvm_wg_genl_set_msg(f->msg, FAMILY, "mvmwgabc", &f->c, f->ep, &err), 0);
    struct nlmsghdr *h = nlmsg_hdr(f->msg);
    assert_int_equal(h->nlmsg_type, FAMILY);
    assert_int_equal(h->nlmsg_flags, NLM_F_REQUEST | NLM_F_ACK);
    struct genlmsghdr *g = nlmsg_data(h);
    assert_int_equal(g->cmd, WG_CMD_SET_DEVICE);
    assert_int_equal(g->version, WG_GENL_VERSION);

    struct nlattr *tb[WGDEVICE_A_MAX + 1];
    assert_int_equal(genlmsg_parse(h, 0, tb, WGDEVICE_A_MAX, NULL), 0);
    assert_string_equal(nla_get_string(tb[WGDEVICE_A_IFNAME]), "mvmwgabc");
    check_key(tb[WGDEVICE_A_PRIVATE_KEY], 0);
    assert_null(tb[WGDEVICE_A_PUBLIC_KEY]);
    assert_int_equal(nla_get_u16(tb[WGDEVICE_A_LISTEN_PORT]), 51820);
    assert_int_equal(nla_get_u32(tb[WGDEVICE_A_FLAGS]), WGDEVICE_F_REPLACE_PEERS);

    struct nlattr *peers[2][WGPEER_A_MAX + 1];
    peers_of(tb[WGDEVICE_A_PEERS], peers);
    struct nlattr **p = peers[0];
    check_key(p[WGPEER_A_PUBLIC_KEY], 32);
    check_key(p[WGPEER_A_PRESHARED_KEY], 64);
    assert_int_equal(nla_get_u32(p[WGPEER_A_FLAGS]), WGPEER_F_REPLACE_ALLOWEDIPS);
    assert_int_equal(nla_get_u16(p[WGPEER_A_PERSISTENT_KEEPALIVE_INTERVAL]), 25);
    check_endpoint(p[WGPEER_A_ENDPOINT], AF_INET, 51821, "198.51.100.7");
    assert_int_equal(count(p[WGPEER_A_ALLOWEDIPS]), 2);
    struct nlattr *a = nla_data(p[WGPEER_A_ALLOWEDIPS]);
    check_allowed(a, AF_INET, "0.0.0.0", 0);
    check_allowed(nla_next(a, &(int){nla_len(p[WGPEER_A_ALLOWEDIPS])}), AF_INET6, "2001:db8::", 32);

    p = peers[1];
    check_key(p[WGPEER_A_PUBLIC_KEY], 96);
    assert_null(p[WGPEER_A_PRESHARED_KEY]);
    assert_int_equal(nla_get_u16(p[WGPEER_A_PERSISTENT_KEEPALIVE_INTERVAL]), 0);
    check_endpoint(p[WGPEER_A_ENDPOINT], AF_INET6, 443, "2001:db8::1");
    assert_int_equal(count(p[WGPEER_A_ALLOWEDIPS]), 1);
    check_allowed(nla_data(p[WGPEER_A_ALLOWEDIPS]), AF_INET, "192.168.7.0", 24);
}

/* Without a ListenPort, the kernel picks one: no attribute.  A peer
 * without an Endpoint has none either, and needs no resolving. */
static void set_request_minimal(void **state)
{
    struct fixture *f = *state;
    struct mvm_error *err = NULL;
    f->c.listen_port = 0;
    f->c.peer[0].endpoint_host[0] = '\0';
    f->c.peer[1].endpoint_host[0] = '\0';
    assert_int_equal(mvm_wg_genl_set_msg(f->msg, FAMILY, "wg1", &f->c, NULL, &err), 0);
    struct nlattr *tb[WGDEVICE_A_MAX + 1];
    assert_int_equal(genlmsg_parse(nlmsg_hdr(f->msg), 0, tb, WGDEVICE_A_MAX, NULL), 0);
    assert_null(tb[WGDEVICE_A_LISTEN_PORT]);
    struct nlattr *peers[2][WGPEER_A_MAX + 1];
    peers_of(tb[WGDEVICE_A_PEERS], peers);
    assert_null(peers[0][WGPEER_A_ENDPOINT]);
    assert_null(peers[1][WGPEER_A_ENDPOINT]);
}

static void set_refusals(void **state)
{
    struct fixture *f = *state;
    struct mvm_error *err = NULL;
    f->ep[1].family = 0;
    assert_int_equal(mvm_wg_genl_set_msg(f->msg, FAMILY, "wg1", &f->c, f->ep, &err), -1);
    assert_string_equal(err->msg, "the Endpoint of the [Peer] at line 11 is not resolved");
    mvm_error_free(err);
    err = NULL;
    struct nl_msg *small = nlmsg_alloc_size(256);
    assert_int_equal(mvm_wg_genl_set_msg(small, FAMILY, "wg1", &f->c, f->ep, &err), -1);
    assert_non_null(strstr(err->msg, "does not fit in"));
    mvm_error_free(err);
    nlmsg_free(small);
}

static void get_request(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(mvm_wg_genl_get_msg(f->msg, FAMILY, "wg0"), 0);
    struct nlmsghdr *h = nlmsg_hdr(f->msg);
    assert_int_equal(h->nlmsg_flags, NLM_F_REQUEST | NLM_F_DUMP);
    assert_int_equal(((struct genlmsghdr *)nlmsg_data(h))->cmd, WG_CMD_GET_DEVICE);
    struct nlattr *tb[WGDEVICE_A_MAX + 1];
    assert_int_equal(genlmsg_parse(h, 0, tb, WGDEVICE_A_MAX, NULL), 0);
    assert_string_equal(nla_get_string(tb[WGDEVICE_A_IFNAME]), "wg0");
    assert_null(tb[WGDEVICE_A_PRIVATE_KEY]);
}

/* An answer as the kernel writes one: the device's port, its peers. */
static void parse_answer(void **state)
{
    struct fixture *f = *state;
    struct mvm_error *err = NULL;
    struct mvm_wg_genl_device d;
    genlmsg_put(f->msg, 0, 0, FAMILY, 0, NLM_F_MULTI, WG_CMD_GET_DEVICE, WG_GENL_VERSION);
    nla_put_string(f->msg, WGDEVICE_A_IFNAME, "wg0");
    nla_put(f->msg, WGDEVICE_A_PRIVATE_KEY, MVM_WG_KEY_LEN, f->c.private_key);
    nla_put_u16(f->msg, WGDEVICE_A_LISTEN_PORT, 40000);
    struct nlattr *peers = nla_nest_start(f->msg, WGDEVICE_A_PEERS);
    for (int i = 0; i < 3; i++) {
        struct nlattr *p = nla_nest_start(f->msg, i);
        nla_put(f->msg, WGPEER_A_PUBLIC_KEY, MVM_WG_KEY_LEN, f->c.peer[0].public_key);
        nla_nest_end(f->msg, p);
    }
    nla_nest_end(f->msg, peers);
    assert_int_equal(mvm_wg_genl_parse_device(nlmsg_hdr(f->msg), &d, &err), 0);
    assert_int_equal(d.listen_port, 40000);
    assert_int_equal(d.npeer, 3);

    /* Down: no socket, no port. */
    struct nl_msg *down = nlmsg_alloc();
    genlmsg_put(down, 0, 0, FAMILY, 0, NLM_F_MULTI, WG_CMD_GET_DEVICE, WG_GENL_VERSION);
    nla_put_string(down, WGDEVICE_A_IFNAME, "wg0");
    assert_int_equal(mvm_wg_genl_parse_device(nlmsg_hdr(down), &d, &err), 0);
    assert_int_equal(d.listen_port, 0);
    assert_int_equal(d.npeer, 0);
    nlmsg_free(down);

    /* A port of one byte is malformed. */
    struct nl_msg *bad = nlmsg_alloc();
    genlmsg_put(bad, 0, 0, FAMILY, 0, NLM_F_MULTI, WG_CMD_GET_DEVICE, WG_GENL_VERSION);
    nla_put_u8(bad, WGDEVICE_A_LISTEN_PORT, 7);
    assert_int_equal(mvm_wg_genl_parse_device(nlmsg_hdr(bad), &d, &err), -1);
    assert_non_null(strstr(err->msg, "a malformed WireGuard answer"));
    mvm_error_free(err);
    nlmsg_free(bad);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(set_request, setup, teardown),
        cmocka_unit_test_setup_teardown(set_request_minimal, setup, teardown),
        cmocka_unit_test_setup_teardown(set_refusals, setup, teardown),
        cmocka_unit_test_setup_teardown(get_request, setup, teardown),
        cmocka_unit_test_setup_teardown(parse_answer, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
