/* Unit tests for --publish's relay (net/portrelay.c): a real relay in a
 * child process between sockets on loopback, a fake "guest" on the other
 * side; and its argv. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <seccomp.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "jail.h"
#include "portrelay.h"
#include "util.h"

static int bound(int type, uint16_t *port)
{
    int fd = socket(AF_INET, type | SOCK_CLOEXEC, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof sa;
    assert_true(fd >= 0);
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    if (type == SOCK_STREAM)
        assert_int_equal(listen(fd, 256), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
    *port = ntohs(sa.sin_port);
    return fd;
}

static int connected(int type, uint16_t port)
{
    int fd = socket(AF_INET, type | SOCK_CLOEXEC, 0);
    struct sockaddr_in sa = {
        .sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_true(fd >= 0);
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    return fd;
}

static bool readable(int fd, int ms)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    return poll(&p, 1, ms) == 1;
}

/* The relay in a child: one port, host fd -> guest_port on loopback. */
/* In a child: the relay's own seccomp allowlist, as the jail loads it. */
static void load_filter(void)
{
    void *f = mvm_jail_filter_allowlist(mvm_port_relay_syscalls,
                                        MVM_JAIL_SOCK_INET_STREAM | MVM_JAIL_SOCK_INET_DGRAM, NULL);
    if (f == NULL || prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 || seccomp_load(f) < 0)
        _exit(99);
}

static pid_t start_relay(int fd, int proto, uint16_t guest_port, int idle_ms, int guest_fd)
{
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        close(guest_fd); /* the guest's side is the test's alone */
        load_filter();   /* every test runs the relay under its own filter */
        static struct mvm_port_relay_config cfg;
        cfg.guest_ip = htonl(INADDR_LOOPBACK);
        cfg.ports[0] = (struct mvm_port_relay_port){fd, proto, guest_port};
        cfg.nports = 1;
        cfg.flow_idle_ms = idle_ms;
        cfg.quiet = true;
        _exit(mvm_port_relay_run(&cfg, NULL) == 0 ? 0 : 1);
    }
    return pid;
}

/* A fake guest's socket, the host-side one and the relay between them. */
struct rig {
    int guest, host;
    uint16_t gport, hport;
    pid_t relay;
};

static struct rig rig_start(int type, int idle_ms)
{
    struct rig r;
    r.guest = bound(type, &r.gport);
    r.host = bound(type, &r.hport);
    r.relay = start_relay(r.host, type == SOCK_STREAM ? IPPROTO_TCP : IPPROTO_UDP, r.gport, idle_ms,
                          r.guest);
    return r;
}

static void rig_stop(struct rig *r)
{
    kill(r->relay, SIGKILL);
    waitpid(r->relay, NULL, 0);
    if (r->guest >= 0)
        close(r->guest);
    close(r->host);
}

static int accept_within(int lfd, int ms)
{
    if (!readable(lfd, ms))
        return -1;
    return accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
}

/* Writes len pattern bytes while reading what comes back, so that
 * neither side's buffers have to hold it all; returns the bytes read. */
static size_t pump(int fd, size_t len, uint8_t seed, uint64_t *sum)
{
    size_t sent = 0, got = 0;
    uint8_t buf[8192];
    *sum = 0;
    fcntl(fd, F_SETFL, O_NONBLOCK);
    for (;;) {
        struct pollfd p = {.fd = fd, .events = POLLIN | (sent < len ? POLLOUT : 0)};
        if (poll(&p, 1, 5000) != 1)
            fail_msg("stalled after sending %zu and reading %zu", sent, got);
        if ((p.revents & POLLOUT) && sent < len) {
            size_t n = len - sent < sizeof buf ? len - sent : sizeof buf;
            for (size_t i = 0; i < n; i++)
                buf[i] = (uint8_t)(seed + sent + i);
            ssize_t w = write(fd, buf, n);
            if (w > 0)
                sent += (size_t)w;
            if (sent == len)
                shutdown(fd, SHUT_WR);
        }
        if (p.revents & (POLLIN | POLLHUP)) {
            ssize_t r = read(fd, buf, sizeof buf);
            if (r == 0)
                return got;
            if (r < 0 && errno != EAGAIN)
                fail_msg("read: %s", strerror(errno));
            for (ssize_t i = 0; i < r; i++)
                *sum = *sum * 31 + buf[i];
            if (r > 0)
                got += (size_t)r;
        }
    }
}

/* The fake guest: echoes one connection until EOF, then closes. */
static pid_t echo_server(int lfd)
{
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        int c = accept(lfd, NULL, NULL);
        uint8_t buf[65536];
        ssize_t n;
        while ((n = read(c, buf, sizeof buf)) > 0)
            if (write_all(c, buf, (size_t)n) < 0)
                _exit(1);
        _exit(n == 0 ? 0 : 1);
    }
    return pid;
}

static void test_tcp_stream(void **state)
{
    (void)state;
    struct rig r = rig_start(SOCK_STREAM, 0);
    pid_t echo = echo_server(r.guest);

    /* 4 MiB each way, both at once, then the half-close travels through:
     * the echo sees EOF, closes, and the client sees EOF after all of it. */
    int c = connected(SOCK_STREAM, r.hport);
    size_t len = 4 << 20;
    uint64_t sum, want = 0;
    for (size_t i = 0; i < len; i++)
        want = want * 31 + (uint8_t)(7 + i);
    assert_int_equal(pump(c, len, 7, &sum), len);
    assert_true(sum == want);
    int status;
    assert_int_equal(waitpid(echo, &status, 0), echo);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    close(c);
    rig_stop(&r);
}

static void test_tcp_refused(void **state)
{
    (void)state;
    struct rig r = rig_start(SOCK_STREAM, 0);
    close(r.guest); /* nothing listens on the guest's port */
    r.guest = -1;
    int c = connected(SOCK_STREAM, r.hport);
    char b;
    assert_true(readable(c, 2000));
    assert_int_equal(read(c, &b, 1), -1);
    assert_int_equal(errno, ECONNRESET);
    close(c);
    rig_stop(&r);
}

/* At most MVM_PORT_RELAY_MAX_CONN at once; one more waits in the
 * backlog until another ends, then gets through. */
static void test_tcp_bounded(void **state)
{
    (void)state;
    struct rig r = rig_start(SOCK_STREAM, 0);
    int clients[MVM_PORT_RELAY_MAX_CONN + 1], served[MVM_PORT_RELAY_MAX_CONN + 1];
    for (int i = 0; i <= MVM_PORT_RELAY_MAX_CONN; i++)
        clients[i] = connected(SOCK_STREAM, r.hport);
    int n = 0;
    while (n <= MVM_PORT_RELAY_MAX_CONN && (served[n] = accept_within(r.guest, 500)) >= 0)
        n++;
    assert_int_equal(n, MVM_PORT_RELAY_MAX_CONN);
    /* One ends (both sides), and the waiting one is relayed. */
    close(clients[0]);
    close(served[0]);
    served[n] = accept_within(r.guest, 2000);
    assert_true(served[n] >= 0);
    assert_int_equal(write(clients[MVM_PORT_RELAY_MAX_CONN], "x", 1), 1);
    char b = 0;
    assert_true(readable(served[n], 2000));
    assert_int_equal(read(served[n], &b, 1), 1);
    assert_int_equal(b, 'x');
    for (int i = 1; i <= MVM_PORT_RELAY_MAX_CONN; i++) {
        close(clients[i]);
        close(served[i]);
    }
    rig_stop(&r);
}

static void test_udp(void **state)
{
    (void)state;
    struct rig r = rig_start(SOCK_DGRAM, 300);
    int guest = r.guest, a = connected(SOCK_DGRAM, r.hport), b = connected(SOCK_DGRAM, r.hport);
    struct sockaddr_in from[3];
    socklen_t flen = sizeof from[0];
    char buf[64];

    /* Each host peer has its own flow: the guest answers each, and each
     * answer reaches only its own peer. */
    assert_int_equal(send(a, "from-a", 6, 0), 6);
    assert_true(readable(guest, 2000));
    assert_int_equal(recvfrom(guest, buf, sizeof buf, 0, (struct sockaddr *)&from[0], &flen), 6);
    assert_int_equal(send(b, "from-b", 6, 0), 6);
    assert_true(readable(guest, 2000));
    flen = sizeof from[1];
    assert_int_equal(recvfrom(guest, buf, sizeof buf, 0, (struct sockaddr *)&from[1], &flen), 6);
    assert_memory_equal(buf, "from-b", 6);
    assert_int_not_equal(from[0].sin_port, from[1].sin_port);
    assert_int_equal(sendto(guest, "to-a", 4, 0, (struct sockaddr *)&from[0], sizeof from[0]), 4);
    assert_int_equal(sendto(guest, "to-b", 4, 0, (struct sockaddr *)&from[1], sizeof from[1]), 4);
    assert_true(readable(a, 2000));
    assert_int_equal(recv(a, buf, sizeof buf, 0), 4);
    assert_memory_equal(buf, "to-a", 4);
    assert_true(readable(b, 2000));
    assert_int_equal(recv(b, buf, sizeof buf, 0), 4);
    assert_memory_equal(buf, "to-b", 4);
    assert_false(readable(a, 100));

    /* An idle flow is forgotten: the next datagram comes from a new one. */
    nanosleep(&(struct timespec){.tv_nsec = 600 * 1000 * 1000}, NULL);
    assert_int_equal(send(a, "again", 5, 0), 5);
    assert_true(readable(guest, 2000));
    flen = sizeof from[2];
    assert_int_equal(recvfrom(guest, buf, sizeof buf, 0, (struct sockaddr *)&from[2], &flen), 5);
    assert_int_not_equal(from[2].sin_port, from[0].sin_port);
    close(a);
    close(b);
    rig_stop(&r);
}

/* More peers than flows: the least recently used gives way, and the
 * relay keeps answering the new ones. */
static void test_udp_bounded(void **state)
{
    (void)state;
    struct rig r = rig_start(SOCK_DGRAM, 0);
    int guest = r.guest, peers[MVM_PORT_RELAY_MAX_FLOWS + 8];
    char buf[16];
    for (size_t i = 0; i < ARRAY_SIZE(peers); i++) {
        peers[i] = connected(SOCK_DGRAM, r.hport);
        assert_int_equal(send(peers[i], "p", 1, 0), 1);
        struct sockaddr_in from;
        socklen_t flen = sizeof from;
        assert_true(readable(guest, 2000));
        assert_int_equal(recvfrom(guest, buf, sizeof buf, 0, (struct sockaddr *)&from, &flen), 1);
        assert_int_equal(sendto(guest, "r", 1, 0, (struct sockaddr *)&from, flen), 1);
        assert_true(readable(peers[i], 2000));
        assert_int_equal(recv(peers[i], buf, sizeof buf, 0), 1);
    }
    for (size_t i = 0; i < ARRAY_SIZE(peers); i++)
        close(peers[i]);
    rig_stop(&r);
}

/* The filter: IPv4 stream and datagram sockets, nothing else of the
 * network, no namespaces, no mounts, no tracing -- each refusal after a
 * call that must work. */
static void test_filter(void **state)
{
    (void)state;
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        load_filter();
        int code = 0;
        int ok[][3] = {{AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0},
                       {AF_INET, SOCK_DGRAM, 0}};
        for (size_t i = 0; i < ARRAY_SIZE(ok); i++)
            if (socket(ok[i][0], ok[i][1], ok[i][2]) < 0)
                code |= 1;
        int no[][3] = {{AF_INET6, SOCK_STREAM, 0}, {AF_UNIX, SOCK_STREAM, 0},
                       {AF_NETLINK, SOCK_RAW, 0},  {AF_INET, SOCK_RAW, IPPROTO_ICMP},
                       {AF_PACKET, SOCK_RAW, 0},   {AF_INET, SOCK_STREAM, IPPROTO_SCTP}};
        for (size_t i = 0; i < ARRAY_SIZE(no); i++)
            if (socket(no[i][0], no[i][1], no[i][2]) >= 0 || errno != EPERM)
                code |= 2;
        int sv[2];
        if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0 || unshare(CLONE_NEWNET) == 0 ||
            mount("none", "/tmp", "tmpfs", 0, NULL) == 0 || ptrace(PTRACE_TRACEME, 0, 0, 0) == 0 ||
            setns(0, 0) == 0 || kill(getppid(), 0) == 0)
            code |= 4;
        _exit(code);
    }
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
}

static void test_argv(void **state)
{
    (void)state;
    static struct mvm_net_plan p;
    static struct mvm_net_policy pol;
    mvm_net_plan_init(&p, MVM_NET_ISOLATED, 0, "abc", NULL);
    p.policy = &pol;
    mvm_net_policy_publish(&pol, "8080:80", NULL);
    mvm_net_policy_publish(&pol, "0.0.0.0:5353:53/udp", NULL);
    int fds[] = {7, 9};
    char **argv = mvm_port_relay_argv("/mvm", &p, fds);
    const char *want[] = {"/mvm", "__port-relay", "10.0.2.15", "tcp:7:80", "udp:9:53", NULL};
    for (size_t i = 0; i < ARRAY_SIZE(want); i++) {
        if (want[i] == NULL)
            assert_null(argv[i]);
        else
            assert_string_equal(argv[i], want[i]);
    }
    mvm_strv_free(argv);
}

static void test_main_usage(void **state)
{
    (void)state;
    uint16_t port;
    int udp = bound(SOCK_DGRAM, &port);
    char fd[32], tcp_arg[32];
    snprintf(fd, sizeof fd, "%d", udp);
    snprintf(tcp_arg, sizeof tcp_arg, "tcp:%d:80", udp);
    char *bad[][4] = {
        {"__port-relay", "10.0.2.15", NULL},
        {"__port-relay", "x", "tcp:3:80", NULL},
        {"__port-relay", "10.0.2.15", "sctp:3:80", NULL},
        {"__port-relay", "10.0.2.15", "tcp:3:0", NULL},
        {"__port-relay", "10.0.2.15", "tcp:3:80x", NULL},
        {"__port-relay", "10.0.2.15", tcp_arg, NULL}, /* a UDP socket said to be TCP */
    };
    int devnull = open("/dev/null", O_WRONLY | O_CLOEXEC);
    int saved = dup(STDERR_FILENO);
    dup2(devnull, STDERR_FILENO);
    int rc[ARRAY_SIZE(bad)];
    for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
        int argc = 0;
        while (bad[i][argc])
            argc++;
        rc[i] = mvm_port_relay_main(argc, bad[i]);
    }
    dup2(saved, STDERR_FILENO);
    close(saved);
    close(devnull);
    close(udp);
    for (size_t i = 0; i < ARRAY_SIZE(bad); i++)
        assert_int_equal(rc[i], 1);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tcp_stream),  cmocka_unit_test(test_tcp_refused),
        cmocka_unit_test(test_tcp_bounded), cmocka_unit_test(test_udp),
        cmocka_unit_test(test_udp_bounded), cmocka_unit_test(test_filter),
        cmocka_unit_test(test_argv),        cmocka_unit_test(test_main_usage),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
