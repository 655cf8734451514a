/* Unit tests for the gateway's pure half (gw/): --api-key specs, key
 * checks, and the rewriting of guest requests. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "gw.h"
#include "util.h"

static struct mvm_gw_provider parse_ok(const char *spec)
{
    struct mvm_gw_provider p;
    struct mvm_error *err = NULL;
    int rc = mvm_gw_parse_spec(spec, &p, &err);
    if (rc < 0)
        fail_msg("%s: %s", spec, err->msg);
    return p;
}

static void parse_bad(const char *spec, const char *needle)
{
    struct mvm_gw_provider p;
    struct mvm_error *err = NULL;
    assert_int_equal(mvm_gw_parse_spec(spec, &p, &err), -1);
    assert_non_null(err);
    if (strstr(err->msg, needle) == NULL)
        fail_msg("%s: '%s' lacks '%s'", spec, err->msg, needle);
    mvm_error_free(err);
}

static void test_builtins(void **state)
{
    struct mvm_gw_provider p = parse_ok("anthropic");
    char url[512];
    assert_string_equal(p.host, "api.anthropic.com");
    assert_int_equal(p.port, 443);
    assert_string_equal(p.base, "");
    assert_string_equal(p.header, "x-api-key");
    assert_int_equal(p.auth, MVM_GW_AUTH_PLAIN);
    assert_string_equal(p.env, "ANTHROPIC_API_KEY");
    assert_string_equal(p.file, "");
    assert_string_equal(p.guest_key_var, "ANTHROPIC_API_KEY");
    assert_string_equal(p.guest_url_var, "ANTHROPIC_BASE_URL");
    assert_string_equal(p.guest_url_suffix, "");
    assert_int_equal(mvm_gw_upstream_url(&p, url, sizeof url), 0);
    assert_string_equal(url, "https://api.anthropic.com:443");

    p = parse_ok("openai=WORK_KEY");
    assert_string_equal(p.host, "api.openai.com");
    assert_string_equal(p.header, "Authorization");
    assert_int_equal(p.auth, MVM_GW_AUTH_BEARER);
    assert_string_equal(p.env, "WORK_KEY");
    /* The guest's variable is the SDK's, whatever the host's is called. */
    assert_string_equal(p.guest_key_var, "OPENAI_API_KEY");
    assert_string_equal(p.guest_url_var, "OPENAI_BASE_URL");
    assert_string_equal(p.guest_url_suffix, "/v1");

    p = parse_ok("anthropic=K=@/home/u/.config/key=x:y");
    assert_string_equal(p.env, "K");
    assert_string_equal(p.file, "/home/u/.config/key=x:y");
}

static void test_custom(void **state)
{
    struct mvm_gw_provider p = parse_ok("custom:https://10.0.0.1:8443/api/v2/:X-Key=MY_KEY");
    char url[512];
    assert_string_equal(p.name, "custom");
    assert_string_equal(p.host, "10.0.0.1");
    assert_int_equal(p.port, 8443);
    assert_string_equal(p.base, "/api/v2");
    assert_string_equal(p.header, "X-Key");
    assert_string_equal(p.env, "MY_KEY");
    assert_string_equal(p.guest_key_var, "MY_KEY");
    assert_string_equal(p.guest_url_var, "");
    assert_int_equal(mvm_gw_upstream_url(&p, url, sizeof url), 0);
    assert_string_equal(url, "https://10.0.0.1:8443/api/v2");
    assert_int_equal(mvm_gw_upstream_url(&p, url, 10), -1);

    p = parse_ok("custom:https://llm.example:x-api-key=K=@key");
    assert_string_equal(p.host, "llm.example");
    assert_int_equal(p.port, 443);
    assert_string_equal(p.file, "key");
}

static void test_bad_specs(void **state)
{
    parse_bad("gemini", "unknown provider 'gemini'");
    parse_bad("anthropics", "unknown provider");
    parse_bad("", "unknown provider");
    parse_bad("anthropic=", "not a variable name");
    parse_bad("anthropic=1KEY", "not a variable name");
    parse_bad("anthropic=A-B", "not a variable name");
    parse_bad("anthropic=KEY=/path", "@PATH");
    parse_bad("anthropic=KEY=@", "@PATH");
    parse_bad("custom:https://h:X-Key", "needs =ENVNAME");
    parse_bad("custom:http://h:X-Key=K", "https://");
    parse_bad("custom:https://h:X Key=K", "not a header name");
    parse_bad("custom:https://h:=K", "not a header name");
    parse_bad("custom:https://:X=K", "host name");
    parse_bad("custom:https://u@h:X=K", "no user");
    parse_bad("custom:https://h:0:X=K", "bad port");
    parse_bad("custom:https://h:65536:X=K", "bad port");
    parse_bad("custom:https://h/a?b:X=K", "query");
    parse_bad("custom:https://h/a/../b:X=K", "not plain");
    parse_bad("custom:https://[::1]:X=K", "host name");
    /* The spec is quoted so the user sees which one. */
    parse_bad("nope", "bad --api-key 'nope'");
}

static void test_check_key(void **state)
{
    struct mvm_error *err = NULL;
    size_t n = 0;
    assert_int_equal(mvm_gw_check_key("sk-ant-123\n", &n, "f", &err), 0);
    assert_int_equal(n, 10);
    assert_int_equal(mvm_gw_check_key("sk\r\n", &n, "f", &err), 0);
    assert_int_equal(n, 2);
    assert_int_equal(mvm_gw_check_key("sk", &n, "f", &err), 0);
    assert_int_equal(n, 2);
    static const char *const bad[] = {"",       "\n",   "a b",   "a\nb",
                                      "a\rb\n", "a\tb", "k\x7f", "\xc3\xa9"};
    for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
        assert_int_equal(mvm_gw_check_key(bad[i], &n, "$K", &err), -1);
        assert_non_null(strstr(err->msg, "$K"));
        mvm_error_free(err);
        err = NULL;
    }
    char big[MVM_GW_MAX_KEY + 2];
    memset(big, 'a', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    assert_int_equal(mvm_gw_check_key(big, &n, "f", &err), -1);
    assert_non_null(strstr(err->msg, "longer"));
    mvm_error_free(err);
    err = NULL;
    big[MVM_GW_MAX_KEY] = '\0';
    assert_int_equal(mvm_gw_check_key(big, &n, "f", NULL), 0);
    assert_int_equal(n, MVM_GW_MAX_KEY);
    /* The error never quotes the key. */
    assert_int_equal(mvm_gw_check_key("secret value", &n, "f", &err), -1);
    assert_null(strstr(err->msg, "secret"));
    mvm_error_free(err);
}

static void target_is(const struct mvm_gw_provider *p, const char *in, const char *want)
{
    char out[MVM_GW_MAX_TARGET + MVM_GW_MAX_BASE + 8];
    int n = mvm_gw_upstream_target(p, in, out, sizeof out);
    if (want == NULL) {
        if (n != -1)
            fail_msg("'%s' became '%s', should be refused", in, out);
        return;
    }
    if (n < 0)
        fail_msg("'%s' refused, should become '%s'", in, want);
    assert_string_equal(out, want);
    assert_int_equal((size_t)n, strlen(want));
}

static void test_target(void **state)
{
    struct mvm_gw_provider a = parse_ok("anthropic");
    struct mvm_gw_provider c = parse_ok("custom:https://h/base:X=K");
    target_is(&a, "/v1/messages", "/v1/messages");
    target_is(&a, "/v1/messages?beta=true", "/v1/messages?beta=true");
    target_is(&c, "/v1/messages", "/base/v1/messages");
    /* Absolute form: the named host is ignored, the upstream is fixed. */
    target_is(&a, "http://evil.example/v1/messages", "/v1/messages");
    target_is(&c, "HTTPS://evil.example:444/x?y=1", "/base/x?y=1");
    target_is(&c, "http://evil.example", "/base/");
    target_is(&c, "http://evil.example?q", "/base/?q");
    target_is(&a, "/", "/");
    target_is(&a, "/a/.hidden/..x/...", "/a/.hidden/..x/...");
    target_is(&a, "/x?a=/../", "/x?a=/../");
    /* Refused: other forms, bytes that could split or confuse, climbing. */
    target_is(&a, "api.anthropic.com:443", NULL);
    target_is(&a, "*", NULL);
    target_is(&a, "v1/messages", NULL);
    target_is(&a, "", NULL);
    target_is(&a, "/v1 /x", NULL);
    target_is(&a, "/v1\r\nHost: x", NULL);
    target_is(&a, "/v1#frag", NULL);
    target_is(&a, "/v1\\..\\x", NULL);
    target_is(&a, "/\xc3\xa9", NULL);
    target_is(&c, "/../x", NULL);
    target_is(&c, "/a/..", NULL);
    target_is(&c, "/a/./b", NULL);
    target_is(&c, "/a/%2e%2E/b", NULL);
    target_is(&c, "/a/.%2e?x", NULL);
    target_is(&c, "http://h/../x", NULL);
    char out[16];
    assert_int_equal(mvm_gw_upstream_target(&c, "/0123456789", out, sizeof out), -1);
}

static void test_request_headers(void **state)
{
    struct mvm_gw_provider a = parse_ok("anthropic");
    struct mvm_gw_provider c = parse_ok("custom:https://h:X-Secret=K");
    static const char *const kept[] = {"Content-Type", "anthropic-version", "Accept",
                                       "User-Agent",   "Accept-Encoding",   "anthropic-beta"};
    for (size_t i = 0; i < ARRAY_SIZE(kept); i++)
        assert_true(mvm_gw_keep_request_header(&a, kept[i]));
    static const char *const dropped[] = {"x-api-key",
                                          "X-API-KEY",
                                          "Authorization",
                                          "authorization",
                                          "Proxy-Authorization",
                                          "Host",
                                          "HOST",
                                          "Content-Length",
                                          "Transfer-Encoding",
                                          "Connection",
                                          "Keep-Alive",
                                          "Upgrade",
                                          "TE",
                                          "Trailer",
                                          "Cookie",
                                          "Forwarded",
                                          "X-Forwarded-For",
                                          "x-forwarded-host",
                                          "Expect",
                                          "",
                                          "Bad Name",
                                          "Bad:Name",
                                          "X\r\nY"};
    for (size_t i = 0; i < ARRAY_SIZE(dropped); i++)
        if (mvm_gw_keep_request_header(&a, dropped[i]))
            fail_msg("'%s' kept", dropped[i]);
    /* A custom provider's own key header goes too. */
    assert_false(mvm_gw_keep_request_header(&c, "x-secret"));
    assert_true(mvm_gw_keep_request_header(&a, "X-Secret"));
}

static void test_response_headers(void **state)
{
    assert_true(mvm_gw_keep_response_header("Content-Type"));
    assert_true(mvm_gw_keep_response_header("request-id"));
    assert_true(mvm_gw_keep_response_header("Content-Encoding"));
    assert_false(mvm_gw_keep_response_header("Transfer-Encoding"));
    assert_false(mvm_gw_keep_response_header("content-length"));
    assert_false(mvm_gw_keep_response_header("Connection"));
    assert_false(mvm_gw_keep_response_header("Set-Cookie"));
    assert_false(mvm_gw_keep_response_header("a b"));
}

static void test_key_header(void **state)
{
    struct mvm_gw_provider a = parse_ok("anthropic"), o = parse_ok("openai");
    char out[64];
    assert_int_equal(mvm_gw_key_header(&a, "sk-1xyz", 4, out, sizeof out), 15);
    assert_string_equal(out, "x-api-key: sk-1");
    assert_int_equal(mvm_gw_key_header(&o, "sk-1", 4, out, sizeof out), 26);
    assert_string_equal(out, "Authorization: Bearer sk-1");
    assert_int_equal(mvm_gw_key_header(&o, "sk-1", 4, out, 26), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_builtins),         cmocka_unit_test(test_custom),
        cmocka_unit_test(test_bad_specs),        cmocka_unit_test(test_check_key),
        cmocka_unit_test(test_target),           cmocka_unit_test(test_request_headers),
        cmocka_unit_test(test_response_headers), cmocka_unit_test(test_key_header),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
