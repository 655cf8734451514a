/* Unit tests for the WireGuard configuration (net/wgconf.c): a full and a
 * minimal file read back, each refusal with its line, the mode check, and
 * the UAPI text to the byte. */
#include <arpa/inet.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "util.h"
#include "wgconf.h"

/* Bytes 0..31, 32..63, 64..95 and 96..127 in base64. */
#define KEY0 "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
#define KEY1 "ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8="
#define KEY2 "QEFCQ0RFRkdISUpLTE1OT1BRUlNUVVZXWFlaW1xdXl8="
#define KEY3 "YGFiY2RlZmdoaWprbG1ub3BxcnN0dXZ3eHl6e3x9fn8="

static const char full[] = "# a client's config, as a VPN provider hands it out\n"
                           "[Interface]\n"
                           "PrivateKey = " KEY0 "\n"
                           "Address = 10.64.0.2/32, fd00:64::2/128\n"
                           "address=10.65.0.2   # lowercase, a second line, no prefix\n"
                           "DNS = 10.64.0.1, 2606:4700::1111\n"
                           "MTU = 1380\n"
                           "ListenPort = 51820\n"
                           "\n"
                           "[Peer]\n"
                           "PublicKey = " KEY1 "\n"
                           "PresharedKey = " KEY2 "\n"
                           "Endpoint = vpn.example.com:51820\n"
                           "AllowedIPs = 0.0.0.0/0, ::/0\n"
                           "PersistentKeepalive = 25\n"
                           "\r\n"
                           "  [ peer ]  \r\n"
                           "  publickey\t=\t" KEY3 "\r\n"
                           "ENDPOINT = [2001:db8::1]:443\n"
                           "AllowedIPs = 192.168.7.9/24\n"
                           "AllowedIPs = 2001:db8:1:2::5/62\n"
                           "PersistentKeepalive = off";

static void check_bytes(const uint8_t *key, unsigned first)
{
    for (unsigned i = 0; i < MVM_WG_KEY_LEN; i++)
        assert_int_equal(key[i], first + i);
}

static void check_ip(const struct mvm_wg_ip *ip, const char *want)
{
    char text[INET6_ADDRSTRLEN], got[64];
    inet_ntop(ip->family == 4 ? AF_INET : AF_INET6, ip->addr, text, sizeof text);
    snprintf(got, sizeof got, "%s/%u", text, ip->len);
    assert_string_equal(got, want);
}

/* A peer of the full config: its keys' first bytes (psk -1: none), and
 * its two AllowedIPs. */
struct peer_want {
    unsigned line, key;
    int psk;
    const char *host;
    unsigned port, keepalive;
    const char *allowed[2];
};

static void check_peer(const struct mvm_wg_peer *p, const struct peer_want *w)
{
    assert_int_equal(p->line, w->line);
    check_bytes(p->public_key, w->key);
    assert_int_equal(p->has_preshared_key, w->psk >= 0);
    if (w->psk >= 0)
        check_bytes(p->preshared_key, (unsigned)w->psk);
    assert_string_equal(p->endpoint_host, w->host);
    assert_int_equal(p->endpoint_port, w->port);
    assert_int_equal(p->keepalive, w->keepalive);
    assert_int_equal(p->nallowed, 2);
    check_ip(&p->allowed[0], w->allowed[0]);
    check_ip(&p->allowed[1], w->allowed[1]);
}

static void parse_ok(const char *text, struct mvm_wg_config *c)
{
    struct mvm_error *err = NULL;
    if (mvm_wg_parse(text, strlen(text), "wg.conf", c, &err) < 0)
        fail_msg("%s", err->msg);
    assert_null(err);
}

static void test_full(void **state)
{
    struct mvm_wg_config c;
    parse_ok(full, &c);
    check_bytes(c.private_key, 0);
    assert_int_equal(c.naddr, 3);
    check_ip(&c.addr[0], "10.64.0.2/32");
    check_ip(&c.addr[1], "fd00:64::2/128");
    check_ip(&c.addr[2], "10.65.0.2/32");
    assert_int_equal(c.ndns, 2);
    check_ip(&c.dns[0], "10.64.0.1/32");
    check_ip(&c.dns[1], "2606:4700::1111/128");
    assert_int_equal(c.mtu, 1380);
    assert_int_equal(c.listen_port, 51820);
    assert_int_equal(c.npeer, 2);

    check_peer(&c.peer[0], &(struct peer_want){
                               10, 32, 64, "vpn.example.com", 51820, 25, {"0.0.0.0/0", "::/0"}});
    /* Host bits cleared, as the kernel keeps them. */
    check_peer(&c.peer[1],
               &(struct peer_want){
                   17, 96, -1, "2001:db8::1", 443, 0, {"192.168.7.0/24", "2001:db8:1::/62"}});
}

static void test_minimal(void **state)
{
    struct mvm_wg_config c;
    parse_ok("[Interface]\nPrivateKey=" KEY0 "\nAddress=10.0.0.2\n[Peer]\nPublicKey=" KEY1 "\n",
             &c);
    check_bytes(c.private_key, 0);
    assert_int_equal(c.naddr, 1);
    assert_int_equal(c.ndns, 0);
    assert_int_equal(c.mtu, 0);
    assert_int_equal(c.listen_port, 0);
    assert_int_equal(c.npeer, 1);
    assert_string_equal(c.peer[0].endpoint_host, "");
    assert_int_equal(c.peer[0].nallowed, 0);
    assert_false(c.peer[0].has_preshared_key);
}

/* No message may hold a key, or the start of one. */
static void check_no_key(const char *msg)
{
    static const char *const keys[] = {KEY0, KEY1, KEY2, KEY3};
    for (size_t i = 0; i < ARRAY_SIZE(keys); i++)
        if (memmem(msg, strlen(msg), keys[i], 8) != NULL)
            fail_msg("'%s' quotes a key", msg);
}

static void parse_bad(const char *text, const char *want)
{
    struct mvm_wg_config c;
    struct mvm_error *err = NULL;
    memset(&c, 0xaa, sizeof c);
    assert_int_equal(mvm_wg_parse(text, strlen(text), "/etc/wg.conf", &c, &err), -1);
    assert_non_null(err);
    if (strcmp(err->msg, want) != 0)
        fail_msg("got '%s'\nwant '%s'", err->msg, want);
    check_no_key(err->msg);
    /* Cleared: the private key does not linger in a config not handed out. */
    static const struct mvm_wg_config zero;
    assert_memory_equal(&c, &zero, sizeof c);
    mvm_error_free(err);
}

#define IFACE "[Interface]\nPrivateKey = " KEY0 "\nAddress = 10.0.0.2/32\n"
#define PEER  "[Peer]\nPublicKey = " KEY1 "\n"

static void test_keys(void **state)
{
    /* Not base64; 31 bytes ("=="); 33 characters; not canonical (the
     * last character's spare bits set). */
    parse_bad("[Interface]\nPrivateKey = AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh*=\n",
              "/etc/wg.conf:2: PrivateKey is not a base64 WireGuard key (32 bytes)");
    parse_bad("[Interface]\nPrivateKey = AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA==\n",
              "/etc/wg.conf:2: PrivateKey is not a base64 WireGuard key (32 bytes)");
    parse_bad(IFACE PEER "[Peer]\nPublicKey = AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8\n",
              "/etc/wg.conf:7: PublicKey is not a base64 WireGuard key (32 bytes)");
    parse_bad(IFACE PEER "PresharedKey = AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh9=\n",
              "/etc/wg.conf:6: PresharedKey is not a base64 WireGuard key (32 bytes)");
    parse_bad(IFACE PEER "PublicKey = " KEY1 "\n",
              "/etc/wg.conf:6: PublicKey is given twice in this section");
    parse_bad(IFACE PEER "[Peer]\nPublicKey = " KEY1 "\n",
              "/etc/wg.conf:6: this [Peer] has the PublicKey of the one at line 4");
}

static void test_structure(void **state)
{
    parse_bad("[Interface]\nAddress = 10.0.0.2\n" PEER,
              "/etc/wg.conf:1: this [Interface] section has no PrivateKey");
    parse_bad("[Interface]\nPrivateKey = " KEY0 "\n" PEER,
              "/etc/wg.conf:1: this [Interface] section has no Address");
    parse_bad(IFACE "# no peer\n",
              "/etc/wg.conf: no [Peer] section: the tunnel needs the peer it leads to");
    parse_bad(PEER, "/etc/wg.conf: no [Interface] section");
    parse_bad(IFACE PEER "[Peer]\nEndpoint = 1.2.3.4:5\n",
              "/etc/wg.conf:6: this [Peer] section has no PublicKey");
    parse_bad(IFACE PEER IFACE, "/etc/wg.conf:6: a second [Interface] section (the first is at "
                                "line 1)");
    parse_bad(IFACE PEER "[Peer]\n[Peer]\n[Peer]\n[Peer]\n",
              "/etc/wg.conf:9: at most 4 [Peer] sections");
    parse_bad("PrivateKey = " KEY0 "\n" IFACE PEER,
              "/etc/wg.conf:1: a key before any [Interface] or [Peer] section");
    parse_bad(IFACE "[Peers]\n",
              "/etc/wg.conf:4: unknown section: mvm knows [Interface] and [Peer]");
    parse_bad(IFACE "[Peer\n", "/etc/wg.conf:4: a section header is [Interface] or [Peer]");
    parse_bad(IFACE KEY1 "\n", "/etc/wg.conf:4: unknown key in [Interface]");
    parse_bad(IFACE PEER KEY2 "\n", "/etc/wg.conf:6: unknown key in [Peer]");
    parse_bad(IFACE "Address 10.0.0.3\n", "/etc/wg.conf:4: expected Key = Value or a [Section]");
    parse_bad(IFACE "PublicKey = " KEY1 "\n", "/etc/wg.conf:4: PublicKey belongs in [Peer], not "
                                              "[Interface]");
    parse_bad(IFACE "MTU =\n", "/etc/wg.conf:4: MTU has no value");
    parse_bad(IFACE "MTU = 1400\nmtu = 1400\n",
              "/etc/wg.conf:5: MTU is given twice in this section");
    static const char nul[] = IFACE "DNS = 1.1.1.1\0\n" PEER;
    struct mvm_wg_config c;
    struct mvm_error *err = NULL;
    assert_int_equal(mvm_wg_parse(nul, sizeof nul - 1, "f", &c, &err), -1);
    assert_string_equal(err->msg, "f:4: a NUL byte: this is not a text file");
    mvm_error_free(err);
}

static void test_wg_quick_only(void **state)
{
    parse_bad(IFACE "PostUp = iptables -A FORWARD -i wg0 -j ACCEPT\n" PEER,
              "/etc/wg.conf:4: PostUp runs a shell command in wg-quick; mvm never does that: "
              "remove it");
    parse_bad(IFACE "preup = true\n", "/etc/wg.conf:4: PreUp runs a shell command in wg-quick; "
                                      "mvm never does that: remove it");
    parse_bad(IFACE PEER "PostDown = x\n", "/etc/wg.conf:6: PostDown runs a shell command in "
                                           "wg-quick; mvm never does that: remove it");
    parse_bad(IFACE "PreDown = x\n", "/etc/wg.conf:4: PreDown runs a shell command in wg-quick; "
                                     "mvm never does that: remove it");
    parse_bad(IFACE "SaveConfig = true\n", "/etc/wg.conf:4: SaveConfig writes the file back in "
                                           "wg-quick; mvm never does that: remove it");
    parse_bad(IFACE "Table = off\n", "/etc/wg.conf:4: Table changes the host's routing in "
                                     "wg-quick; mvm never does that: remove it");
    parse_bad(IFACE "FwMark = 0x1\n", "/etc/wg.conf:4: FwMark changes the host's routing in "
                                      "wg-quick; mvm never does that: remove it");
}

static void test_values(void **state)
{
    static const char *const endpoints[] = {
        "vpn.example.com",
        "vpn.example.com:",
        "vpn.example.com:0",
        "vpn.example.com:65536",
        "2001:db8::1:51820",
        "[10.0.0.1]:51820",
        "[vpn]:51820",
        "-vpn:1",
        "a b:1",
        "vpn.example.com:+1",
        ":51820",
        "[2001:db8::1:51820",
    };
    for (size_t i = 0; i < ARRAY_SIZE(endpoints); i++) {
        char *text = xasprintf(IFACE PEER "Endpoint = %s\n", endpoints[i]);
        parse_bad(text, "/etc/wg.conf:6: Endpoint must be HOST:PORT or [IPV6]:PORT");
        free(text);
    }
    static const char *const prefixes[] = {"10.0.0.0/33", "::/129", "10.0.0/8",    "10.0.0.0/",
                                           "10.0.0.0/-1", "vpn/8",  "10.0.0.0/8/8"};
    for (size_t i = 0; i < ARRAY_SIZE(prefixes); i++) {
        char *text = xasprintf(IFACE PEER "AllowedIPs = 10.1.0.0/16, %s\n", prefixes[i]);
        parse_bad(text, "/etc/wg.conf:6: AllowedIPs: entry 2 is not an IPv4 or IPv6 prefix "
                        "(ADDRESS[/LENGTH])");
        free(text);
    }
    parse_bad(IFACE PEER "AllowedIPs = 10.0.0.0/8,\n",
              "/etc/wg.conf:6: AllowedIPs: entry 2 is empty");
    parse_bad(IFACE "Address = fd00::1/64, 10.0.0.1/40\n", "/etc/wg.conf:4: Address: entry 2 is "
                                                           "not an IPv4 or IPv6 address "
                                                           "(ADDRESS[/LENGTH])");
    parse_bad(IFACE "DNS = 1.1.1.1, corp.example\n",
              "/etc/wg.conf:4: DNS: entry 2 is not an IP address (mvm takes no search domains: "
              "the guest resolves through mvm's relay)");
    parse_bad(IFACE "DNS = 1.1.1.1/32\n",
              "/etc/wg.conf:4: DNS: entry 1 is not an IP address (mvm takes no search domains: "
              "the guest resolves through mvm's relay)");
    parse_bad(IFACE "DNS = 1.1.1.1, 1.0.0.1, 8.8.8.8, 8.8.4.4\n",
              "/etc/wg.conf:4: DNS: at most 3 resolvers");
    parse_bad(IFACE "MTU = 575\n", "/etc/wg.conf:4: MTU must be a number from 576 to 9000");
    parse_bad(IFACE "MTU = 9001\n", "/etc/wg.conf:4: MTU must be a number from 576 to 9000");
    parse_bad(IFACE "ListenPort = 65536\n",
              "/etc/wg.conf:4: ListenPort must be a port number (0 to 65535)");
    parse_bad(IFACE PEER "PersistentKeepalive = 65536\n",
              "/etc/wg.conf:6: PersistentKeepalive must be off or seconds (0 to 65535)");
    parse_bad(IFACE PEER "PersistentKeepalive = on\n",
              "/etc/wg.conf:6: PersistentKeepalive must be off or seconds (0 to 65535)");
    parse_bad(IFACE "Address = 10.0.0.3, 10.0.0.4, 10.0.0.5, 10.0.0.6, 10.0.0.7, 10.0.0.8\n"
                    "Address = 10.0.0.9, 10.0.0.10\n",
              "/etc/wg.conf:5: Address: at most 8 addresses");
}

/* A key on a line of its own, or where another value goes, is not
 * quoted either. */
static void test_value_never_quoted(void **state)
{
    parse_bad(IFACE "DNS = " KEY2 "\n",
              "/etc/wg.conf:4: DNS: entry 1 is not an IP address (mvm takes no search domains: "
              "the guest resolves through mvm's relay)");
    parse_bad(IFACE PEER "Endpoint = " KEY2 "\n",
              "/etc/wg.conf:6: Endpoint must be HOST:PORT or [IPV6]:PORT");
    parse_bad(IFACE KEY2 " = x\n", "/etc/wg.conf:4: unknown key in [Interface]");
    parse_bad("[Interface]\nPrivateKey = " KEY0 "x\n",
              "/etc/wg.conf:2: PrivateKey is not a base64 WireGuard key (32 bytes)");
}

static void test_mode(void **state)
{
    struct mvm_error *err = NULL;
    assert_int_equal(mvm_wg_check_mode("/etc/wg.conf", 0100600, &err), 0);
    assert_int_equal(mvm_wg_check_mode("/etc/wg.conf", 0400, &err), 0);
    assert_null(err);
    assert_int_equal(mvm_wg_check_mode("/etc/wg.conf", 0100644, &err), -1);
    assert_string_equal(err->msg, "/etc/wg.conf holds a private key but others than its owner may "
                                  "read it (mode 0644); make it private: chmod 600 /etc/wg.conf");
    mvm_error_free(err);
    err = NULL;
    assert_int_equal(mvm_wg_check_mode("wg.conf", 0602, &err), -1);
    assert_string_equal(err->msg, "wg.conf holds a private key but others than its owner may "
                                  "write it (mode 0602); make it private: chmod 600 wg.conf");
    mvm_error_free(err);
    err = NULL;
    assert_int_equal(mvm_wg_check_mode("wg.conf", 0640, &err), -1);
    mvm_error_free(err);
}

static void test_uapi(void **state)
{
    struct mvm_wg_config c;
    struct mvm_wg_ip ep[2] = {{.family = 4, .addr = {198, 51, 100, 7}},
                              {.family = 6, .addr = {0x20, 0x01, 0x0d, 0xb8, [15] = 1}}};
    struct mvm_error *err = NULL;
    char out[MVM_WG_UAPI_MAX];
    size_t n = 0;
    parse_ok(full, &c);
    assert_int_equal(mvm_wg_uapi_set(&c, ep, out, sizeof out, &n, &err), 0);
    static const char want[] =
        "set=1\n"
        "private_key=000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f\n"
        "listen_port=51820\n"
        "replace_peers=true\n"
        "public_key=202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f\n"
        "preshared_key=404142434445464748494a4b4c4d4e4f505152535455565758595a5b5c5d5e5f\n"
        "endpoint=198.51.100.7:51820\n"
        "persistent_keepalive_interval=25\n"
        "replace_allowed_ips=true\n"
        "allowed_ip=0.0.0.0/0\n"
        "allowed_ip=::/0\n"
        "public_key=606162636465666768696a6b6c6d6e6f707172737475767778797a7b7c7d7e7f\n"
        "endpoint=[2001:db8::1]:443\n"
        "persistent_keepalive_interval=0\n"
        "replace_allowed_ips=true\n"
        "allowed_ip=192.168.7.0/24\n"
        "allowed_ip=2001:db8:1::/62\n"
        "\n";
    assert_int_equal(n, strlen(want));
    assert_string_equal(out, want);

    /* One byte short: refused, and nothing of the key left behind. */
    assert_int_equal(mvm_wg_uapi_set(&c, ep, out, n, &n, &err), -1);
    assert_string_equal(err->msg, "the WireGuard UAPI text does not fit in 612 bytes");
    assert_null(memmem(out, sizeof out, "private_key", 11));
    mvm_error_free(err);
    err = NULL;

    /* An Endpoint the caller did not resolve. */
    ep[1].family = 0;
    assert_int_equal(mvm_wg_uapi_set(&c, ep, out, sizeof out, &n, &err), -1);
    assert_string_equal(err->msg, "the Endpoint of the [Peer] at line 17 is not resolved");
    mvm_error_free(err);
    err = NULL;

    /* Without endpoints or a listen port: neither line. */
    parse_ok(IFACE PEER "AllowedIPs = 10.0.0.0/8\n", &c);
    assert_int_equal(mvm_wg_uapi_set(&c, NULL, out, sizeof out, &n, &err), 0);
    assert_string_equal(out, "set=1\n"
                             "private_key=000102030405060708090a0b0c0d0e0f101112131415161718191a1b1"
                             "c1d1e1f\n"
                             "replace_peers=true\n"
                             "public_key=202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c"
                             "3d3e3f\n"
                             "persistent_keepalive_interval=0\n"
                             "replace_allowed_ips=true\n"
                             "allowed_ip=10.0.0.0/8\n"
                             "\n");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_full),
        cmocka_unit_test(test_minimal),
        cmocka_unit_test(test_keys),
        cmocka_unit_test(test_structure),
        cmocka_unit_test(test_wg_quick_only),
        cmocka_unit_test(test_values),
        cmocka_unit_test(test_value_never_quoted),
        cmocka_unit_test(test_mode),
        cmocka_unit_test(test_uapi),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
