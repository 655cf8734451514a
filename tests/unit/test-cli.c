/* Unit tests for cli.c: size and duration parsing, `mvm run` options and
 * config files; and exec.c's `mvm exec` options.  Every case checks the
 * exact value parsed, or the exact part of the error text a user needs
 * (the argument, FILE:LINE, the hint at --help), so a parser that accepts
 * too much or says too little fails. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <string.h>

#include "cli.h"
#include "error.h"
#include "util.h"

static void assert_error_contains(const struct mvm_error *err, const char *needle)
{
    if (err == NULL)
        fail_msg("expected an error containing \"%s\", got none", needle);
    if (strstr(err->msg, needle) == NULL)
        fail_msg("error \"%s\" does not contain \"%s\"", err->msg, needle);
}

/* ---- sizes ------------------------------------------------------------ */

static uint64_t size_ok(const char *s)
{
    cleanup_error struct mvm_error *err = NULL;
    uint64_t mib = 0xdead;
    if (mvm_parse_size_mib(s, &mib, &err) != 0)
        fail_msg("size '%s' rejected: %s", s, err ? err->msg : "(no error)");
    assert_null(err);
    return mib;
}

static void size_bad(const char *s, const char *needle)
{
    cleanup_error struct mvm_error *err = NULL;
    uint64_t mib = 0xdead;
    if (mvm_parse_size_mib(s, &mib, &err) >= 0)
        fail_msg("size '%s' accepted as %llu MiB", s, (unsigned long long)mib);
    assert_error_contains(err, needle);
    cleanup_free char *quoted = xasprintf("'%s'", s);
    assert_error_contains(err, quoted);
    assert_int_equal(err->exit_code, 125);
}

static void test_size_units(void **state)
{
    assert_int_equal(size_ok("512M"), 512);
    assert_int_equal(size_ok("2G"), 2048);
    assert_int_equal(size_ok("1024"), 1024);
    assert_int_equal(size_ok("1048576K"), 1024);
    assert_int_equal(size_ok("512m"), 512);
    assert_int_equal(size_ok("2g"), 2048);
    assert_int_equal(size_ok("262144k"), 256);
    assert_int_equal(size_ok("3GiB"), 3072);
    assert_int_equal(size_ok("768MB"), 768);
    assert_int_equal(size_ok("128M"), 128);
    assert_int_equal(size_ok("1024G"), 1024 * 1024);
}

static void test_size_range(void **state)
{
    size_bad("0", "out of range");
    size_bad("64M", "out of range");
    size_bad("127", "out of range");
    size_bad("1025G", "out of range");
    cleanup_error struct mvm_error *err = NULL;
    uint64_t mib;
    assert_int_equal(mvm_parse_size_mib("64M", &mib, &err), -1);
    assert_string_equal(err->msg, "memory size '64M' is out of range: use 128M to 1024G");
}

static void test_size_malformed(void **state)
{
    size_bad("", "bad memory size");
    size_bad("junk", "bad memory size");
    size_bad("-512M", "bad memory size");
    size_bad("+512M", "bad memory size");
    size_bad(" 512M", "bad memory size");
    size_bad("512 M", "bad memory size");
    size_bad("99999999999999999999G", "bad memory size");
    size_bad("18446744073709551615G", "bad memory size");
    size_bad("1.5G", "bad memory size");
    size_bad("512X", "bad memory size");
    size_bad("512T", "out of range"); /* T is a unit, for volumes */
    size_bad("512MM", "bad memory size");
    size_bad("1000K", "bad memory size"); /* not a whole MiB */
    size_bad("G", "bad memory size");
}

/* ---- durations -------------------------------------------------------- */

static uint64_t dur_ok(const char *s)
{
    cleanup_error struct mvm_error *err = NULL;
    uint64_t ms = 0xdead;
    if (mvm_parse_duration_ms(s, &ms, &err) != 0)
        fail_msg("duration '%s' rejected: %s", s, err ? err->msg : "(no error)");
    return ms;
}

static void dur_bad(const char *s)
{
    cleanup_error struct mvm_error *err = NULL;
    uint64_t ms = 0xdead;
    if (mvm_parse_duration_ms(s, &ms, &err) >= 0)
        fail_msg("duration '%s' accepted as %llu ms", s, (unsigned long long)ms);
    cleanup_free char *want = xasprintf("bad duration '%s'", s);
    assert_error_contains(err, want);
    assert_int_equal(ms, 0xdead);
}

static void test_duration(void **state)
{
    assert_int_equal(dur_ok("500ms"), 500);
    assert_int_equal(dur_ok("90s"), 90000);
    assert_int_equal(dur_ok("10m"), 600000);
    assert_int_equal(dur_ok("10min"), 600000);
    assert_int_equal(dur_ok("1h"), 3600000);
    assert_int_equal(dur_ok("5"), 5000);
    assert_int_equal(dur_ok("1ms"), 1);

    dur_bad("0");
    dur_bad("0s");
    dur_bad("");
    dur_bad("junk");
    dur_bad("10x");
    dur_bad("-5s");
    dur_bad("1.5s");
    dur_bad("10H"); /* units are lowercase only */
    dur_bad("99999999999999999999");
    dur_bad("18446744073709551615h");
}

/* ---- mvm run ---------------------------------------------------------- */

/* getopt may write to argv, and o->argv points into it: parse a private,
 * writable copy that lives as long as the test. */
struct cmdline {
    int argc;
    char *argv[64];
};

static void cmdline_free(struct cmdline *c)
{
    for (int i = 0; i < c->argc; i++)
        free(c->argv[i]);
    c->argc = 0;
}

struct fx {
    struct mvm_run_opts o;
    struct mvm_error *err;
    struct cmdline cl;
};

static int fx_setup(void **state)
{
    struct fx *fx = xcalloc(1, sizeof *fx);
    mvm_run_opts_init(&fx->o);
    *state = fx;
    return 0;
}

static int fx_teardown(void **state)
{
    struct fx *fx = *state;
    mvm_run_opts_clear(&fx->o);
    mvm_error_free(fx->err);
    cmdline_free(&fx->cl);
    free(fx);
    return 0;
}

static int parse_list(struct fx *fx, const char *const *args)
{
    cmdline_free(&fx->cl);
    mvm_error_free(fx->err);
    fx->err = NULL;
    fx->cl.argv[fx->cl.argc++] = xstrdup("run");
    for (; *args; args++) {
        assert_true(fx->cl.argc < (int)ARRAY_SIZE(fx->cl.argv) - 1);
        fx->cl.argv[fx->cl.argc++] = xstrdup(*args);
    }
    fx->cl.argv[fx->cl.argc] = NULL;
    return mvm_cli_parse_run(fx->cl.argc, fx->cl.argv, &fx->o, &fx->err);
}
#define PARSE(fx, ...) parse_list(fx, (const char *const[]){__VA_ARGS__, NULL})

static void parse_ok(struct fx *fx, const char *const *args)
{
    if (parse_list(fx, args) != 0)
        fail_msg("parse failed: %s", fx->err ? fx->err->msg : "(no error)");
    assert_null(fx->err);
}
#define PARSE_OK(fx, ...) parse_ok(fx, (const char *const[]){__VA_ARGS__, NULL})

static void parse_bad(struct fx *fx, const char *const *args, const char *needle)
{
    if (parse_list(fx, args) >= 0)
        fail_msg("parse succeeded, expected an error containing \"%s\"", needle);
    assert_error_contains(fx->err, needle);
}
#define PARSE_BAD(fx, needle, ...) parse_bad(fx, (const char *const[]){__VA_ARGS__, NULL}, needle)

static void assert_cmd(const struct fx *fx, const char *const *want)
{
    int n = 0;
    while (want[n])
        n++;
    assert_int_equal(fx->o.argc, n);
    if (n == 0) {
        assert_null(fx->o.argv);
        return;
    }
    for (int i = 0; i < n; i++)
        assert_string_equal(fx->o.argv[i], want[i]);
}
#define ASSERT_CMD(fx, ...) assert_cmd(fx, (const char *const[]){__VA_ARGS__, NULL})

static void test_run_defaults(void **state)
{
    struct fx *fx = *state;

    assert_int_equal(parse_list(fx, (const char *const[]){NULL}), 0);
    assert_int_equal(fx->o.cpus, 2);
    assert_int_equal(fx->o.memory_mib, 1024);
    assert_null(fx->o.kernel);
    assert_null(fx->o.modules);
    assert_int_equal(fx->o.accel, MVM_ACCEL_AUTO);
    assert_int_equal(fx->o.machine, MVM_MACHINE_AUTO);
    assert_int_equal(fx->o.tty, MVM_TTY_AUTO);
    assert_int_equal(fx->o.timeout_ms, 0);
    assert_false(fx->o.console || fx->o.no_cwd || fx->o.root || fx->o.quiet || fx->o.help);
    assert_int_equal(fx->o.nenv, 0);
    assert_int_equal(fx->o.nshares, 0);
    assert_int_equal(fx->o.argc, 0);
    assert_null(fx->o.argv);
}

static void test_run_every_option(void **state)
{
    struct fx *fx = *state;

    PARSE_OK(fx, "--cpus", "8", "--memory", "2G", "--kernel", "/boot/vmlinuz-x", "--modules",
             "/lib/modules/x", "--accel", "tcg", "--machine", "q35", "--no-cwd", "--net", "none",
             "--root", "--timeout", "90s", "--console", "-q", "-t", "--no-resolve", "--volume",
             "claude:~", "--volume", "cache:/var/cache/x:1G", "--disk", "2G", "--name", "agent",
             "--result", "r.json", "--console-log", "c.log", "--detach", "true");
    assert_true(fx->o.detach);
    assert_int_equal(fx->o.disk_mib, 2048);
    assert_string_equal(fx->o.name, "agent");
    assert_string_equal(fx->o.result_file, "r.json");
    assert_string_equal(fx->o.console_log_file, "c.log");
    assert_int_equal(fx->o.cpus, 8);
    assert_true(fx->o.no_resolve);
    assert_int_equal(fx->o.nvolumes, 2);
    assert_string_equal(fx->o.volumes[0].name, "claude");
    assert_string_equal(fx->o.volumes[0].guest, "~");
    assert_int_equal(fx->o.volumes[0].size_mib, 0);
    assert_string_equal(fx->o.volumes[1].guest, "/var/cache/x");
    assert_int_equal(fx->o.volumes[1].size_mib, 1024);
    assert_int_equal(fx->o.memory_mib, 2048);
    assert_string_equal(fx->o.kernel, "/boot/vmlinuz-x");
    assert_string_equal(fx->o.modules, "/lib/modules/x");
    assert_int_equal(fx->o.accel, MVM_ACCEL_TCG);
    assert_int_equal(fx->o.machine, MVM_MACHINE_Q35);
    assert_true(fx->o.no_cwd);
    assert_true(fx->o.root);
    assert_int_equal(fx->o.timeout_ms, 90000);
    assert_true(fx->o.console);
    assert_true(fx->o.quiet);
    assert_int_equal(fx->o.tty, MVM_TTY_ALWAYS);
    assert_false(fx->o.help);
    ASSERT_CMD(fx, "true");
}

static void test_run_long_forms(void **state)
{
    struct fx *fx = *state;

    PARSE_OK(fx, "--cpus=4", "--memory=512M", "--accel=kvm", "--machine=microvm", "--quiet",
             "--no-tty", "--tty", "--no-tty");
    assert_int_equal(fx->o.cpus, 4);
    assert_int_equal(fx->o.memory_mib, 512);
    assert_int_equal(fx->o.accel, MVM_ACCEL_KVM);
    assert_int_equal(fx->o.machine, MVM_MACHINE_MICROVM);
    assert_true(fx->o.quiet);
    assert_int_equal(fx->o.tty, MVM_TTY_NEVER); /* the last one wins */
    ASSERT_CMD(fx, NULL);

    mvm_run_opts_clear(&fx->o);
    PARSE_OK(fx, "-T");
    assert_int_equal(fx->o.tty, MVM_TTY_NEVER);
    mvm_run_opts_clear(&fx->o);
    PARSE_OK(fx, "-qt", "sh"); /* clustered short options */
    assert_true(fx->o.quiet);
    assert_int_equal(fx->o.tty, MVM_TTY_ALWAYS);
    ASSERT_CMD(fx, "sh");
}

static void test_run_help(void **state)
{
    struct fx *fx = *state;

    PARSE_OK(fx, "--help");
    assert_true(fx->o.help);
    mvm_run_opts_clear(&fx->o);
    PARSE_OK(fx, "-h");
    assert_true(fx->o.help);
    /* After the command, --help is the command's. */
    mvm_run_opts_clear(&fx->o);
    PARSE_OK(fx, "ls", "--help");
    assert_false(fx->o.help);
    ASSERT_CMD(fx, "ls", "--help");
    /* Every option the usage text promises exists. */
    static const char *const documented[] = {
        "--cpus N",
        "--memory SIZE",
        "--kernel PATH",
        "--modules DIR",
        "--accel MODE",
        "--machine TYPE",
        "--env NAME[=VALUE]",
        "--share HOST[:GUEST][:ro|:overlay]",
        "--no-cwd",
        "--net MODE",
        "--dns ADDR",
        "--root",
        "--timeout DURATION",
        "--console",
        "-t, --tty",
        "-T, --no-tty",
        "-q, --quiet",
        "-h, --help",
        "--no-resolve",
        "--volume NAME:GUEST[:SIZE]",
        "--disk SIZE",
        "--name NAME",
        "--result FILE",
        "--console-log FILE",
        "--audit MODE",
        "--share-limit SIZE",
        "--min-free SIZE|PERCENT",
    };
    for (size_t i = 0; i < ARRAY_SIZE(documented); i++)
        if (strstr(mvm_run_usage, documented[i]) == NULL)
            fail_msg("usage does not mention %s", documented[i]);
}

static void test_run_env(void **state)
{
    struct fx *fx = *state;

    PARSE_OK(fx, "--env", "TERM", "--env", "A=b=c", "--env=EMPTY=", "--env", "_x9=1", "env");
    assert_int_equal(fx->o.nenv, 4);
    assert_string_equal(fx->o.env[0].name, "TERM");
    assert_null(fx->o.env[0].value);
    assert_string_equal(fx->o.env[1].name, "A");
    assert_string_equal(fx->o.env[1].value, "b=c");
    assert_string_equal(fx->o.env[2].name, "EMPTY");
    assert_non_null(fx->o.env[2].value);
    assert_string_equal(fx->o.env[2].value, "");
    assert_string_equal(fx->o.env[3].name, "_x9");
    assert_string_equal(fx->o.env[3].value, "1");
    ASSERT_CMD(fx, "env");

    static const char *const bad[] = {"1ABC", "A-B", "A-B=1", "=x", "", "A B=1", "Ä=1"};
    for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
        mvm_run_opts_clear(&fx->o);
        cleanup_free char *want = xasprintf("bad --env '%s'", bad[i]);
        PARSE_BAD(fx, want, "--env", bad[i], "true");
        assert_int_equal(fx->o.nenv, 0);
    }
}

static void test_run_share(void **state)
{
    struct fx *fx = *state;

    PARSE_OK(fx, "--share", "/srv", "--share", "/data:/mnt/data", "--share", "/ro:/mnt/ro:ro",
             "--share", "rel/dir:ro", "--share", "/x:/y:rw");
    assert_int_equal(fx->o.nshares, 5);
    assert_string_equal(fx->o.shares[0].host, "/srv");
    assert_null(fx->o.shares[0].guest);
    assert_false(fx->o.shares[0].ro);
    assert_string_equal(fx->o.shares[1].host, "/data");
    assert_string_equal(fx->o.shares[1].guest, "/mnt/data");
    assert_false(fx->o.shares[1].ro);
    assert_string_equal(fx->o.shares[2].host, "/ro");
    assert_string_equal(fx->o.shares[2].guest, "/mnt/ro");
    assert_true(fx->o.shares[2].ro);
    assert_string_equal(fx->o.shares[3].host, "rel/dir"); /* made absolute later */
    assert_null(fx->o.shares[3].guest);
    assert_true(fx->o.shares[3].ro);
    assert_string_equal(fx->o.shares[4].host, "/x");
    assert_string_equal(fx->o.shares[4].guest, "/y");
    assert_false(fx->o.shares[4].ro);

    mvm_run_opts_clear(&fx->o);
    PARSE_OK(fx, "--share", "/m:/mm:ro,submounts", "--share", "/n:submounts", "--share", "/o:ro");
    assert_int_equal(fx->o.nshares, 3);
    assert_string_equal(fx->o.shares[0].guest, "/mm");
    assert_true(fx->o.shares[0].ro && fx->o.shares[0].submounts);
    assert_null(fx->o.shares[1].guest);
    assert_true(!fx->o.shares[1].ro && fx->o.shares[1].submounts);
    assert_true(fx->o.shares[2].ro && !fx->o.shares[2].submounts);
    mvm_run_opts_clear(&fx->o);
    PARSE_BAD(fx, "bad --share '/p:/q:ro,bogus': unknown option 'ro,bogus'", "--share",
              "/p:/q:ro,bogus");

    static const char *const bad[] = {"/data:mnt", "/data:mnt:ro", "/data:", ":/guest", ":ro", ""};
    for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
        mvm_run_opts_clear(&fx->o);
        cleanup_free char *want = xasprintf("bad --share '%s'", bad[i]);
        PARSE_BAD(fx, want, "--share", bad[i]);
        assert_error_contains(fx->err, "absolute GUEST path");
        assert_int_equal(fx->o.nshares, 0);
    }
}

static void test_run_volume_bad(void **state)
{
    struct fx *fx = *state;

    static const char *const bad[] = {"claude", "claude:", ":~", "claude:rel", "claude:~x"};
    for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
        mvm_run_opts_clear(&fx->o);
        cleanup_free char *want = xasprintf("bad --volume '%s'", bad[i]);
        PARSE_BAD(fx, want, "--volume", bad[i]);
        assert_int_equal(fx->o.nvolumes, 0);
    }
    mvm_run_opts_clear(&fx->o);
    PARSE_BAD(fx, "volume size '8M' is out of range", "--volume", "v:~:8M");
    mvm_run_opts_clear(&fx->o);
    PARSE_BAD(fx, "bad volume size 'big'", "--volume", "v:~:big");
    mvm_run_opts_clear(&fx->o);
    PARSE_BAD(fx, "volume v is named twice", "--volume", "v:~", "--volume", "v:/x");
    mvm_run_opts_clear(&fx->o);
    PARSE_OK(fx, "--disk", "none");
    assert_int_equal(fx->o.disk_mib, 0);
    mvm_run_opts_clear(&fx->o);
    assert_int_equal(fx->o.disk_mib, MVM_DEFAULT_DISK_MIB);
    PARSE_BAD(fx, "disk size '1M' is out of range", "--disk", "1M");
}

static void test_run_command_stops_options(void **state)
{
    struct fx *fx = *state;

    PARSE_OK(fx, "ls", "-l");
    ASSERT_CMD(fx, "ls", "-l");

    /* Options after the command are the command's, even mvm's own. */
    mvm_run_opts_clear(&fx->o);
    PARSE_OK(fx, "--cpus", "3", "make", "--cpus", "9", "-q", "--", "x");
    assert_int_equal(fx->o.cpus, 3);
    assert_false(fx->o.quiet);
    ASSERT_CMD(fx, "make", "--cpus", "9", "-q", "--", "x");
    /* borrowed from argv, not copied */
    assert_ptr_equal(fx->o.argv, &fx->cl.argv[3]);
}

static void test_run_double_dash(void **state)
{
    struct fx *fx = *state;

    PARSE_OK(fx, "-q", "--", "--cpus", "4");
    assert_true(fx->o.quiet);
    assert_int_equal(fx->o.cpus, 2);
    ASSERT_CMD(fx, "--cpus", "4");

    mvm_run_opts_clear(&fx->o);
    PARSE_OK(fx, "--");
    ASSERT_CMD(fx, NULL);

    mvm_run_opts_clear(&fx->o);
    PARSE_OK(fx, "--", "--");
    ASSERT_CMD(fx, "--");

    mvm_run_opts_clear(&fx->o);
    PARSE_OK(fx, "--", "-");
    ASSERT_CMD(fx, "-");
}

static void test_run_unknown_options(void **state)
{
    struct fx *fx = *state;

    PARSE_BAD(fx, "unknown option '--bogus'", "--bogus", "ls");
    assert_error_contains(fx->err, "mvm run --help");
    PARSE_BAD(fx, "unknown option '--bogus=3'", "-q", "--bogus=3");
    assert_error_contains(fx->err, "mvm run --help");
    PARSE_BAD(fx, "unknown option '-x'", "-x");
    assert_error_contains(fx->err, "mvm run --help");
    PARSE_BAD(fx, "unknown option '-x'", "-qx", "ls");
    /* a value given to a flag: the message names what the user typed */
    PARSE_BAD(fx, "'--tty=1'", "--tty=1", "ls");
    PARSE_BAD(fx, "'--root=yes'", "--root=yes");
    /* an ambiguous abbreviation */
    PARSE_BAD(fx, "unknown option '--c'", "--c");
}

static void test_run_missing_value(void **state)
{
    struct fx *fx = *state;

    PARSE_BAD(fx, "missing value for '--cpus'", "--cpus");
    assert_error_contains(fx->err, "mvm run --help");
    PARSE_BAD(fx, "missing value for '--memory'", "-q", "--memory");
    /* An option's value is the next argument, whatever it looks like. */
    mvm_run_opts_clear(&fx->o);
    PARSE_OK(fx, "--kernel", "--help");
    assert_string_equal(fx->o.kernel, "--help");
    assert_false(fx->o.help);
}

static void test_run_bad_values(void **state)
{
    struct fx *fx = *state;

    assert_int_equal(fx->o.net, MVM_NETOPT_ISOLATED); /* the default */
    PARSE_OK(fx, "--net", "none");
    assert_int_equal(fx->o.net, MVM_NETOPT_NONE);
    PARSE_OK(fx, "--net", "open", "--dns", "198.51.100.53", "--dns", "203.0.113.53");
    assert_int_equal(fx->o.net, MVM_NETOPT_OPEN);
    assert_int_equal(fx->o.ndns, 2);
    assert_string_equal(fx->o.dns[1], "203.0.113.53");
    PARSE_BAD(fx, "bad network mode 'bridged': use one of isolated, none, open", "--net",
              "bridged");
    PARSE_BAD(fx, "--dns example.org: not an IPv4 address", "--dns", "example.org");
    PARSE_BAD(fx, "bad accelerator 'xen': use one of auto, kvm, tcg", "--accel", "xen");
    PARSE_BAD(fx, "bad machine type 'pc': use one of auto, microvm, q35", "--machine", "pc");
    PARSE_BAD(fx, "bad CPU count '0'", "--cpus", "0");
    PARSE_BAD(fx, "bad CPU count '65'", "--cpus", "65");
    PARSE_BAD(fx, "bad CPU count '2x'", "--cpus", "2x");
    PARSE_BAD(fx, "bad CPU count ''", "--cpus=");
    PARSE_BAD(fx, "bad memory size '1.5G'", "--memory", "1.5G");
    PARSE_BAD(fx, "out of range", "--memory", "64M");
    PARSE_BAD(fx, "bad duration '0'", "--timeout", "0");

    mvm_run_opts_clear(&fx->o);
    PARSE_OK(fx, "--cpus", "64");
    assert_int_equal(fx->o.cpus, 64);
    PARSE_OK(fx, "--cpus", "1");
    assert_int_equal(fx->o.cpus, 1);
}

/* --publish, --allow-host, --allow-lan: kept as given, in order (net/
 * parses them), from the command line and from a config file. */
static void test_run_net_holes(void **state)
{
    struct fx *fx = *state;

    PARSE_OK(fx, "--publish", "8080:80", "--publish=127.0.0.1:5353:53/udp", "--allow-host", "3128",
             "--allow-lan", "192.168.1.5:80", "--allow-lan", "192.168.1.6:80", "true");
    assert_int_equal(fx->o.npublish, 2);
    assert_string_equal(fx->o.publish[0], "8080:80");
    assert_string_equal(fx->o.publish[1], "127.0.0.1:5353:53/udp");
    assert_int_equal(fx->o.nallow_host, 1);
    assert_string_equal(fx->o.allow_host[0], "3128");
    assert_int_equal(fx->o.nallow_lan, 2);
    assert_string_equal(fx->o.allow_lan[1], "192.168.1.6:80");
    ASSERT_CMD(fx, "true");
    assert_int_equal(mvm_cli_apply_config("publish = 9000:90\nallow-host = 8000\n"
                                          "allow-lan = 10.0.0.2:22\n",
                                          "/etc/mvm/config", &fx->o, NULL),
                     0);
    assert_int_equal(fx->o.npublish, 3);
    assert_string_equal(fx->o.publish[2], "9000:90");
    assert_string_equal(fx->o.allow_host[1], "8000");
    assert_string_equal(fx->o.allow_lan[2], "10.0.0.2:22");
    mvm_run_opts_clear(&fx->o);
    assert_int_equal(fx->o.npublish, 0);
    assert_null(fx->o.publish);
    PARSE_BAD(fx, "missing value for '--publish'", "--publish");
    PARSE_OK(fx, "--net", "allow=api.example.com,*.example.org:8443");
    assert_int_equal(fx->o.net, MVM_NETOPT_ALLOW);
    assert_string_equal(fx->o.net_allow, "api.example.com,*.example.org:8443");
    PARSE_OK(fx, "--net=allow=x.example", "--net", "isolated");
    assert_int_equal(fx->o.net, MVM_NETOPT_ISOLATED); /* the last --net wins */
    PARSE_BAD(fx, "use one of isolated, none, open, allow=RULE[,RULE...]", "--net", "allowed");
    static const char *const documented[] = {
        "--publish [HOSTIP:]HOSTPORT:GUESTPORT[/tcp|/udp]",
        "--allow-host PORT",
        "--allow-lan HOST:PORT",
    };
    for (size_t i = 0; i < ARRAY_SIZE(documented); i++)
        if (strstr(mvm_run_usage, documented[i]) == NULL)
            fail_msg("usage does not mention %s", documented[i]);
}

/* --wireguard: one file, the last one given wins; a config key too. */
static void test_run_wireguard(void **state)
{
    struct fx *fx = *state;
    PARSE_OK(fx, "true");
    assert_null(fx->o.wireguard);
    mvm_run_opts_clear(&fx->o);
    PARSE_OK(fx, "--wireguard", "/a/wg0.conf", "--wireguard=/b/wg1.conf", "true");
    assert_string_equal(fx->o.wireguard, "/b/wg1.conf");
    assert_int_equal(mvm_cli_apply_config("wireguard = /etc/wireguard/x.conf\n", "/etc/mvm/config",
                                          &fx->o, NULL),
                     0);
    assert_string_equal(fx->o.wireguard, "/etc/wireguard/x.conf");
    mvm_run_opts_clear(&fx->o);
    assert_null(fx->o.wireguard);
    PARSE_BAD(fx, "missing value for '--wireguard'", "--wireguard");
    assert_non_null(strstr(mvm_run_usage, "--wireguard FILE"));
}

/* --audit: warn unless told, from the command line or the two config
 * files (a security setting: nothing else may set it). */
static void test_run_audit(void **state)
{
    struct fx *fx = *state;
    PARSE_OK(fx, "true");
    assert_int_equal(fx->o.audit, MVM_AUDIT_WARN);
    mvm_run_opts_clear(&fx->o);
    PARSE_OK(fx, "--audit", "strict", "true");
    assert_int_equal(fx->o.audit, MVM_AUDIT_STRICT);
    mvm_run_opts_clear(&fx->o);
    PARSE_OK(fx, "--audit=off", "true");
    assert_int_equal(fx->o.audit, MVM_AUDIT_OFF);
    assert_int_equal(mvm_cli_apply_config("audit = strict\n", "/etc/mvm/config", &fx->o, NULL), 0);
    assert_int_equal(fx->o.audit, MVM_AUDIT_STRICT);
    mvm_run_opts_clear(&fx->o);
    assert_int_equal(fx->o.audit, MVM_AUDIT_WARN);
    PARSE_BAD(fx, "bad audit mode 'loud': use one of off, warn, strict", "--audit", "loud");
}

/* --share-limit and --min-free: sizes in bytes, a percentage, off; a
 * bad value names the option; config keys of the same names. */
static void test_run_disk_limits(void **state)
{
    struct fx *fx = *state;
    PARSE_OK(fx, "true");
    assert_int_equal(fx->o.share_limit, 0);
    assert_true(fx->o.min_free_percent);
    assert_int_equal(fx->o.min_free, MVM_DEFAULT_MIN_FREE);
    mvm_run_opts_clear(&fx->o);
    PARSE_OK(fx, "--share-limit", "64M", "--min-free", "10%", "true");
    assert_int_equal(fx->o.share_limit, 64ull << 20);
    assert_true(fx->o.min_free_percent);
    assert_int_equal(fx->o.min_free, 10);
    mvm_run_opts_clear(&fx->o);
    PARSE_OK(fx, "--share-limit=2G", "--min-free", "512M", "true");
    assert_int_equal(fx->o.share_limit, 2ull << 30);
    assert_false(fx->o.min_free_percent);
    assert_int_equal(fx->o.min_free, 512ull << 20);
    mvm_run_opts_clear(&fx->o);
    PARSE_OK(fx, "--share-limit", "none", "--min-free", "0", "true");
    assert_int_equal(fx->o.share_limit, 0);
    assert_int_equal(fx->o.min_free, 0);
    mvm_run_opts_clear(&fx->o);
    PARSE_OK(fx, "--min-free", "0%", "true");
    assert_int_equal(fx->o.min_free, 0);
    assert_int_equal(
        mvm_cli_apply_config("share-limit = 1G\nmin-free = 2G\n", "/etc/mvm/config", &fx->o, NULL),
        0);
    assert_int_equal(fx->o.share_limit, 1ull << 30);
    assert_int_equal(fx->o.min_free, 2ull << 30);
    mvm_run_opts_clear(&fx->o);
    static const char *const bad[][3] = {
        {"--share-limit", "5X", "bad --share-limit '5X'"},
        {"--share-limit", "-1", "bad --share-limit '-1'"},
        {"--min-free", "150%", "percentage from 0% to 99%"},
        {"--min-free", "100%", "percentage from 0% to 99%"},
        {"--min-free", "5.5%", "bad --min-free '5.5%'"},
        {"--min-free", "lots", "bad --min-free 'lots'"},
    };
    for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
        mvm_run_opts_clear(&fx->o);
        PARSE_BAD(fx, bad[i][2], bad[i][0], bad[i][1]);
    }
}

/* ---- config files ----------------------------------------------------- */

static int apply(struct fx *fx, const char *text)
{
    mvm_error_free(fx->err);
    fx->err = NULL;
    return mvm_cli_apply_config(text, "/etc/mvm/config", &fx->o, &fx->err);
}

static void test_config_keys(void **state)
{
    struct fx *fx = *state;
    static const char text[] = "# mvm defaults\n"
                               "\n"
                               "cpus = 4\n"
                               "  memory=3G   # more\n"
                               "\tkernel = /boot/vmlinuz-test  \n"
                               "modules = /lib/modules/test\n"
                               "accel = tcg\r\n"
                               "machine = q35\n"
                               "timeout = 10m\n"
                               "console = yes\n"
                               "quiet = true\n"
                               "   # indented comment\n"
                               "   \n";

    assert_int_equal(apply(fx, text), 0);
    assert_null(fx->err);
    assert_int_equal(fx->o.cpus, 4);
    assert_int_equal(fx->o.memory_mib, 3072);
    assert_string_equal(fx->o.kernel, "/boot/vmlinuz-test");
    assert_string_equal(fx->o.modules, "/lib/modules/test");
    assert_int_equal(fx->o.accel, MVM_ACCEL_TCG);
    assert_int_equal(fx->o.machine, MVM_MACHINE_Q35);
    assert_int_equal(fx->o.timeout_ms, 600000);
    assert_true(fx->o.console);
    assert_true(fx->o.quiet);

    /* A later file overrides an earlier one, and false turns flags off. */
    assert_int_equal(apply(fx, "console = false\nquiet = 0\ncpus = 1\nkernel = /k2"), 0);
    assert_false(fx->o.console);
    assert_false(fx->o.quiet);
    assert_int_equal(fx->o.cpus, 1);
    assert_string_equal(fx->o.kernel, "/k2");
    assert_int_equal(fx->o.memory_mib, 3072);

    assert_int_equal(apply(fx, ""), 0);
    assert_int_equal(apply(fx, "\n\n# only comments\n"), 0);
    assert_int_equal(fx->o.cpus, 1);
}

static void test_config_errors(void **state)
{
    struct fx *fx = *state;

    assert_int_equal(apply(fx, "cpus = 2\n\n# x\ncolour = blue\n"), -1);
    assert_error_contains(fx->err, "/etc/mvm/config:4: unknown key 'colour'");

    assert_int_equal(apply(fx, "cpus = 2\nmemory = lots\n"), -1);
    assert_string_equal(fx->err->msg, "/etc/mvm/config:2: bad memory size 'lots': use a number "
                                      "with K, M or G, e.g. 512M or 2G");

    assert_int_equal(apply(fx, "\n\naccel = xen\n"), -1);
    assert_error_contains(fx->err, "/etc/mvm/config:3: bad accelerator 'xen'");

    assert_int_equal(apply(fx, "console = maybe\n"), -1);
    assert_error_contains(fx->err, "/etc/mvm/config:1: bad value 'maybe' for console");

    assert_int_equal(apply(fx, "cpus 4\n"), -1);
    assert_string_equal(fx->err->msg, "/etc/mvm/config:1: expected 'key = value'");

    assert_int_equal(apply(fx, "cpus = 3\n= 4\n"), -1);
    assert_error_contains(fx->err, "/etc/mvm/config:2: unknown key ''");

    /* Options of the command line only are not config keys. */
    assert_int_equal(apply(fx, "root = true\n"), -1);
    assert_error_contains(fx->err, "/etc/mvm/config:1: unknown key 'root'");
    assert_false(fx->o.root);
}

static void test_cli_overrides_config(void **state)
{
    struct fx *fx = *state;

    assert_int_equal(apply(fx, "cpus = 6\nmemory = 4G\naccel = tcg\nquiet = yes\n"), 0);
    PARSE_OK(fx, "--cpus", "3", "--accel", "kvm", "uname");
    assert_int_equal(fx->o.cpus, 3);
    assert_int_equal(fx->o.accel, MVM_ACCEL_KVM);
    assert_int_equal(fx->o.memory_mib, 4096); /* not on the command line: config's */
    assert_true(fx->o.quiet);
    ASSERT_CMD(fx, "uname");
}

/* mvm config: every key once (a list key once per value), each value
 * with where it came from. */
static void test_config_text(void **state)
{
    struct fx *fx = *state;

    assert_int_equal(apply(fx, "memory = 4G\npublish = 9000:90\ncpus = 6\n"), 0);
    PARSE_OK(fx, "--cpus", "3", "--publish", "8000:80", "-q", "uname");
    cleanup_free char *text = mvm_cli_config_text(&fx->o);
    assert_true(str_has_prefix(text, "cpus = 3  # command line\n")); /* the table's order */
    assert_null(strstr(text, "cpus = 6"));                           /* overridden: not effective */
    assert_non_null(strstr(text, "\nmemory = 4G  # /etc/mvm/config:1\n"));
    assert_non_null(strstr(text, "publish = 9000:90  # /etc/mvm/config:2\n"
                                 "publish = 8000:80  # command line\n"));
    assert_non_null(strstr(text, "\nquiet = true  # command line\n"));
    assert_non_null(strstr(text, "\naudit = warn  # default\n"));
    assert_non_null(strstr(text, "\n# allow-host: (none)  # default\n"));
    size_t lines = 0;
    for (const char *p = text; *p; p++)
        lines += *p == '\n';
    size_t keys = 0;
    for (const struct mvm_config_key *k = mvm_config_keys; k->key; k++)
        keys++;
    assert_int_equal(lines, keys + 1); /* publish twice */
}

/* ---- mvm exec ------------------------------------------------------- */

/* Parses `mvm exec` + the NULL-terminated arguments; returns the status
 * and leaves the options (and any error) to the caller. */
static int parse_exec(struct mvm_exec_opts *o, struct mvm_error **err, ...)
{
    static char *argv[32];
    va_list ap;
    va_start(ap, err);
    int argc = 0;
    argv[argc++] = "exec";
    for (char *a; (a = va_arg(ap, char *)) != NULL && argc < 31;)
        argv[argc++] = a;
    va_end(ap);
    argv[argc] = NULL;
    return mvm_cli_parse_exec(argc, argv, o, err);
}

static void assert_exec_cmd(const struct mvm_exec_opts *o, int argc, const char *first)
{
    assert_int_equal(o->argc, argc);
    if (argc == 0)
        assert_null(o->argv);
    else
        assert_string_equal(o->argv[0], first);
}

static void test_exec_options(void **state)
{
    (void)state;
    struct mvm_exec_opts o;
    cleanup_error struct mvm_error *err = NULL;

    /* The brief's order: session, options, --, command. */
    assert_int_equal(parse_exec(&o, &err, "brisk-otter", "-T", "--root", "--env", "A=1", "--env",
                                "HOME", "--", "sh", "-c", "exit 3", NULL),
                     0);
    assert_string_equal(o.session, "brisk-otter");
    assert_int_equal(o.tty, MVM_TTY_NEVER);
    assert_true(o.root);
    assert_int_equal(o.nenv, 2);
    assert_string_equal(o.env[0].name, "A");
    assert_string_equal(o.env[0].value, "1");
    assert_string_equal(o.env[1].name, "HOME");
    assert_null(o.env[1].value);
    assert_exec_cmd(&o, 3, "sh");
    assert_string_equal(o.argv[2], "exit 3");
    mvm_exec_opts_clear(&o);

    /* Options before the session too; without "--" the first word after
     * the session's options is the command, and its options are its own. */
    assert_int_equal(parse_exec(&o, &err, "-t", "abcd", "ls", "-T", "--root", NULL), 0);
    assert_string_equal(o.session, "abcd");
    assert_int_equal(o.tty, MVM_TTY_ALWAYS);
    assert_false(o.root);
    assert_exec_cmd(&o, 3, "ls");
    assert_string_equal(o.argv[1], "-T");
    mvm_exec_opts_clear(&o);

    /* After "--", even an option's name is the command. */
    assert_int_equal(parse_exec(&o, &err, "s1", "--", "--root", NULL), 0);
    assert_false(o.root);
    assert_exec_cmd(&o, 1, "--root");
    mvm_exec_opts_clear(&o);
    assert_int_equal(parse_exec(&o, &err, "--", "s1", "-t", NULL), 0);
    assert_string_equal(o.session, "s1");
    assert_int_equal(o.tty, MVM_TTY_AUTO);
    assert_exec_cmd(&o, 1, "-t");
    mvm_exec_opts_clear(&o);

    /* No command: the login shell. */
    assert_int_equal(parse_exec(&o, &err, "s1", "--tty", NULL), 0);
    assert_int_equal(o.tty, MVM_TTY_ALWAYS);
    assert_exec_cmd(&o, 0, NULL);
    mvm_exec_opts_clear(&o);

    assert_int_equal(parse_exec(&o, &err, "s1", "--help", NULL), 0);
    assert_true(o.help);
    mvm_exec_opts_clear(&o);
    assert_null(err);
}

static void test_exec_errors(void **state)
{
    (void)state;
    struct mvm_exec_opts o;
    struct {
        const char *a, *b, *needle;
    } bad[] = {
        {NULL, NULL, "which session? give its ID or NAME"},
        {"-t", NULL, "which session?"},
        {"--", NULL, "which session?"},
        {"--bogus", "s1", "unknown option '--bogus' (see mvm exec --help)"},
        {"-x", "s1", "unknown option '-x'"},
        {"s1", "--bogus", "unknown option '--bogus'"},
        {"s1", "--env", "missing value for '--env'"},
        {"--env", "1A=b", "bad --env '1A=b'"},
        {"--root=yes", "s1", "unknown option '--root=yes'"},
    };
    for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
        cleanup_error struct mvm_error *err = NULL;
        int rc = bad[i].a == NULL   ? parse_exec(&o, &err, NULL)
                 : bad[i].b == NULL ? parse_exec(&o, &err, bad[i].a, NULL)
                                    : parse_exec(&o, &err, bad[i].a, bad[i].b, NULL);
        if (rc != -1)
            fail_msg("case %zu accepted", i);
        assert_error_contains(err, bad[i].needle);
        assert_int_equal(err->exit_code, 125);
        mvm_exec_opts_clear(&o);
    }
}

static void test_attach_args(void **state)
{
    (void)state;
    const char *key = "x";
    cleanup_error struct mvm_error *err = NULL;
    char *ok[] = {"attach", "brisk-otter", NULL};
    assert_int_equal(mvm_cli_parse_attach(2, ok, &key, &err), 0);
    assert_string_equal(key, "brisk-otter");
    char *help[] = {"attach", "--help", NULL};
    assert_int_equal(mvm_cli_parse_attach(2, help, &key, &err), 0);
    assert_null(key); /* the help */
    assert_null(err);

    char *none[] = {"attach", NULL};
    char *two[] = {"attach", "a", "b", NULL};
    char *opt[] = {"attach", "-t", "a", NULL};
    struct {
        int argc;
        char **argv;
        const char *needle;
    } bad[] = {
        {1, none, "mvm attach: which session? give its ID or NAME"},
        {3, two, "unexpected argument 'b' (see mvm attach --help)"},
        {3, opt, "unexpected argument '-t'"},
    };
    for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
        cleanup_error struct mvm_error *e = NULL;
        assert_int_equal(mvm_cli_parse_attach(bad[i].argc, bad[i].argv, &key, &e), -1);
        assert_error_contains(e, bad[i].needle);
        assert_int_equal(e->exit_code, 125);
    }
}

#define FX_TEST(f) cmocka_unit_test_setup_teardown(f, fx_setup, fx_teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_size_units),
        cmocka_unit_test(test_size_range),
        cmocka_unit_test(test_size_malformed),
        cmocka_unit_test(test_duration),
        FX_TEST(test_run_defaults),
        FX_TEST(test_run_every_option),
        FX_TEST(test_run_long_forms),
        FX_TEST(test_run_help),
        FX_TEST(test_run_disk_limits),
        FX_TEST(test_run_wireguard),
        FX_TEST(test_run_audit),
        FX_TEST(test_run_env),
        FX_TEST(test_run_share),
        FX_TEST(test_run_volume_bad),
        FX_TEST(test_run_command_stops_options),
        FX_TEST(test_run_double_dash),
        FX_TEST(test_run_unknown_options),
        FX_TEST(test_run_missing_value),
        FX_TEST(test_run_bad_values),
        FX_TEST(test_run_net_holes),
        FX_TEST(test_config_keys),
        FX_TEST(test_config_errors),
        FX_TEST(test_cli_overrides_config),
        FX_TEST(test_config_text),
        cmocka_unit_test(test_exec_options),
        cmocka_unit_test(test_exec_errors),
        cmocka_unit_test(test_attach_args),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
