/* The gateway process of --api-key: `mvm __api-gateway SECRETS LISTEN
 * SPEC [LISTEN SPEC...]`, a jailed helper in the session's network
 * namespace (see gw.h for what is decided where).
 *
 * libmicrohttpd parses the guest's HTTP (one thread per connection, so
 * each request may block on its upstream); libcurl speaks TLS to the one
 * upstream of each port, certificates checked against the bundle that
 * came over the secrets pipe with the keys.  A reply streams back as it
 * arrives: the response's reader drives the transfer until it has bytes
 * to give, through a bounded buffer, so a server-sent event reaches the
 * guest as soon as the upstream sends it.  Nothing is logged: a failure
 * is the guest's HTTP error (502 with one line saying why). */
#include <curl/curl.h>
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "gw.h"
#include "util.h"

/* At most this many of the guest's connections per port. */
#define GW_MAX_CONN 32
/* A buffered reply holds this much before the transfer pauses. */
#define GW_OUT_CAP (256 * 1024)
/* The upstream's headers, all together. */
#define GW_MAX_RESPONSE_HEADERS (64 * 1024)
/* An upstream that sends nothing for this long is given up. */
#define GW_IDLE_S 600
/* One that acknowledges nothing we sent for this long is gone (a dead
 * --wireguard tunnel sends no reset), as is one that does not answer a
 * connect within GW_CONNECT_S. */
#define GW_UNACKED_S 20
#define GW_CONNECT_S 20

struct gw_port {
    struct mvm_gw_provider p;
    char origin[MVM_GW_MAX_HOST + 16]; /* "https://HOST:PORT" */
    char *key_header;                  /* "x-api-key: KEY", locked in memory */
    struct MHD_Daemon *daemon;
};

static struct {
    struct gw_port ports[MVM_GW_MAX_PROVIDERS];
    size_t nports;
    X509_STORE *ca; /* the bundle from the pipe, parsed once */
    CURLSH *share;
    pthread_mutex_t locks[CURL_LOCK_DATA_LAST];
} gw;

/* One request of the guest, from its request line to the end of its reply. */
struct gw_req {
    struct gw_port *port;
    int client_fd;    /* the guest's connection, watched for its end */
    bool client_busy; /* it sent more meanwhile: only checked, not waited on */
    char target[MVM_GW_MAX_TARGET];
    bool bad_target, started;
    char *body;
    size_t len, cap;
    bool too_big;
    /* The upstream's side. */
    CURLM *multi;
    CURL *easy;
    struct curl_slist *headers;
    long status;
    bool headers_done, done, paused;
    CURLcode result;
    char (*resp)[2][512]; /* the kept response headers: name, value */
    size_t nresp, resp_bytes;
    char *out;
    size_t out_len, out_off;
    uint64_t total;
    char errbuf[CURL_ERROR_SIZE];
};

/* Each new upstream connection verifies against the store parsed at
 * start: curl's own loading of a bundle of some 150 certificates took
 * about 30 ms per connection. */
static CURLcode use_store(CURL *h, void *sslctx, void *arg)
{
    (void)h, (void)arg;
    SSL_CTX_set1_cert_store(sslctx, gw.ca);
    return CURLE_OK;
}

/* Without a TCP user timeout, a request on a kept-alive connection whose
 * path died would wait GW_IDLE_S for a reply, its bytes retransmitted
 * into nowhere; with it, the send fails, and curl retries once on a
 * fresh connection, which fails within GW_CONNECT_S. */
static int set_user_timeout(void *arg, curl_socket_t fd, curlsocktype purpose)
{
    (void)arg;
    unsigned ms = GW_UNACKED_S * 1000;
    if (purpose == CURLSOCKTYPE_IPCXN)
        setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &ms, sizeof ms);
    return CURL_SOCKOPT_OK;
}

static void share_lock(CURL *h, curl_lock_data data, curl_lock_access a, void *arg)
{
    (void)h, (void)a, (void)arg;
    pthread_mutex_lock(&gw.locks[data]);
}

static void share_unlock(CURL *h, curl_lock_data data, void *arg)
{
    (void)h, (void)arg;
    pthread_mutex_unlock(&gw.locks[data]);
}

/* The raw request target, before libmicrohttpd splits and unescapes it:
 * the rewriting needs it as the guest sent it. */
static void *on_uri(void *cls, const char *uri, struct MHD_Connection *c)
{
    (void)c;
    struct gw_req *r = calloc(1, sizeof *r);
    if (r == NULL)
        return NULL;
    r->port = cls;
    r->bad_target = mvm_gw_upstream_target(&r->port->p, uri, r->target, sizeof r->target) < 0;
    return r;
}

static void req_free(struct gw_req *r)
{
    if (r->multi && r->easy)
        curl_multi_remove_handle(r->multi, r->easy);
    curl_easy_cleanup(r->easy);
    curl_multi_cleanup(r->multi);
    /* The list holds the key header: wiped before it goes. */
    for (struct curl_slist *l = r->headers; l; l = l->next)
        explicit_bzero(l->data, strlen(l->data));
    curl_slist_free_all(r->headers);
    if (r->body)
        explicit_bzero(r->body, r->len);
    free(r->body);
    free(r->resp);
    free(r->out);
    free(r);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode code)
{
    (void)cls, (void)c, (void)code;
    if (*con_cls)
        req_free(*con_cls);
    *con_cls = NULL;
}

/* Each event goes out as written: without TCP_NODELAY a small write
 * after the headers waits for the guest's delayed ACK (40 ms). */
static void on_connection(void *cls, struct MHD_Connection *c, void **socket_context,
                          enum MHD_ConnectionNotificationCode code)
{
    (void)cls, (void)socket_context;
    if (code != MHD_CONNECTION_NOTIFY_STARTED)
        return;
    const union MHD_ConnectionInfo *info =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
    int one = 1;
    if (info)
        setsockopt(info->connect_fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

static enum MHD_Result reply_text(struct MHD_Connection *c, unsigned status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* An error of the gateway's own, as one line the agent can show. */
static enum MHD_Result reply_text(struct MHD_Connection *c, unsigned status, const char *fmt, ...)
{
    char text[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(text, sizeof text - 1, fmt, ap);
    va_end(ap);
    if (n < 0)
        n = 0;
    if ((size_t)n > sizeof text - 2)
        n = (int)sizeof text - 2;
    text[n++] = '\n';
    struct MHD_Response *resp =
        MHD_create_response_from_buffer((size_t)n, text, MHD_RESPMEM_MUST_COPY);
    if (resp == NULL)
        return MHD_NO;
    MHD_add_response_header(resp, "Content-Type", "text/plain; charset=utf-8");
    enum MHD_Result rc = MHD_queue_response(c, status, resp);
    MHD_destroy_response(resp);
    return rc;
}

/* The guest's headers that go on, then the key's. */
static enum MHD_Result add_header(void *cls, enum MHD_ValueKind kind, const char *name,
                                  const char *value)
{
    (void)kind;
    struct gw_req *r = cls;
    if (!mvm_gw_keep_request_header(&r->port->p, name))
        return MHD_YES;
    cleanup_free char *line = xasprintf("%s: %s", name, value ? value : "");
    struct curl_slist *l = curl_slist_append(r->headers, line);
    if (l)
        r->headers = l;
    return MHD_YES;
}

static size_t on_header(char *buf, size_t size, size_t n, void *arg)
{
    struct gw_req *r = arg;
    size_t len = size * n;
    r->resp_bytes += len;
    if (r->resp_bytes > GW_MAX_RESPONSE_HEADERS)
        return 0;
    if (len >= 5 && memcmp(buf, "HTTP/", 5) == 0) {
        /* A new response (an interim 1xx, or the final one). */
        const char *sp = memchr(buf, ' ', len);
        r->status = sp ? strtol(sp + 1, NULL, 10) : 0;
        r->nresp = 0;
        return len;
    }
    size_t end = len;
    while (end > 0 && (buf[end - 1] == '\r' || buf[end - 1] == '\n'))
        end--;
    if (end == 0) {
        if (r->status >= 200)
            r->headers_done = true;
        return len;
    }
    const char *colon = memchr(buf, ':', end);
    if (colon == NULL)
        return len;
    size_t nlen = (size_t)(colon - buf), v = nlen + 1;
    while (v < end && (buf[v] == ' ' || buf[v] == '\t'))
        v++;
    if (nlen == 0 || nlen >= sizeof r->resp[0][0] || end - v >= sizeof r->resp[0][1])
        return len;
    char name[512];
    memcpy(name, buf, nlen);
    name[nlen] = '\0';
    if (!mvm_gw_is_token(name, nlen) || !mvm_gw_keep_response_header(name))
        return len;
    void *grown = realloc(r->resp, (r->nresp + 1) * sizeof *r->resp);
    if (grown == NULL)
        return 0;
    r->resp = grown;
    memcpy(r->resp[r->nresp][0], name, nlen + 1);
    memcpy(r->resp[r->nresp][1], buf + v, end - v);
    r->resp[r->nresp][1][end - v] = '\0';
    r->nresp++;
    return len;
}

static size_t on_body(char *buf, size_t size, size_t n, void *arg)
{
    struct gw_req *r = arg;
    size_t len = size * n;
    if (r->total + len > MVM_GW_MAX_RESPONSE)
        return 0;
    if (r->out_off == r->out_len)
        r->out_off = r->out_len = 0;
    if (r->out_len + len > GW_OUT_CAP && r->out_off > 0) {
        memmove(r->out, r->out + r->out_off, r->out_len - r->out_off);
        r->out_len -= r->out_off;
        r->out_off = 0;
    }
    if (r->out_len + len > GW_OUT_CAP) {
        r->paused = true;
        return CURL_WRITEFUNC_PAUSE;
    }
    memcpy(r->out + r->out_len, buf, len);
    r->out_len += len;
    r->total += len;
    r->headers_done = true;
    return len;
}

static bool have_headers(const struct gw_req *r)
{
    return r->headers_done;
}

static bool have_output(const struct gw_req *r)
{
    return r->out_off < r->out_len;
}

/* Whether the guest has hung up (or reset) the connection: then the
 * transfer is abandoned at once rather than when the reply ends. */
static bool client_gone(struct gw_req *r)
{
    struct pollfd p = {.fd = r->client_fd, .events = POLLRDHUP};
    if (poll(&p, 1, 0) <= 0)
        return false;
    if (p.revents & (POLLRDHUP | POLLHUP | POLLERR))
        return true;
    r->client_busy = true; /* readable, yet not closed: a next request */
    return false;
}

/* Runs the transfer until enough() holds, it ends, or the guest goes;
 * its connection wakes the wait when it becomes readable. */
static void drive(struct gw_req *r, bool (*enough)(const struct gw_req *))
{
    while (!r->done && !enough(r)) {
        int running = 0;
        if (curl_multi_perform(r->multi, &running) != CURLM_OK) {
            r->done = true;
            r->result = CURLE_FAILED_INIT;
            break;
        }
        int left;
        for (CURLMsg *m; (m = curl_multi_info_read(r->multi, &left)) != NULL;)
            if (m->msg == CURLMSG_DONE) {
                r->done = true;
                r->result = m->data.result;
            }
        if (r->done || enough(r))
            break;
        if (client_gone(r)) {
            r->done = true;
            r->result = CURLE_ABORTED_BY_CALLBACK;
            break;
        }
        struct curl_waitfd w = {.fd = r->client_fd, .events = CURL_WAIT_POLLIN};
        bool watch = r->client_fd >= 0 && !r->client_busy;
        curl_multi_poll(r->multi, watch ? &w : NULL, watch ? 1 : 0, 1000, NULL);
    }
}

static ssize_t read_reply(void *cls, uint64_t pos, char *buf, size_t max)
{
    (void)pos;
    struct gw_req *r = cls;
    if (!have_output(r)) {
        if (r->paused) {
            r->paused = false;
            curl_easy_pause(r->easy, CURLPAUSE_CONT);
        }
        drive(r, have_output);
    }
    if (have_output(r)) {
        size_t n = r->out_len - r->out_off;
        if (n > max)
            n = max;
        memcpy(buf, r->out + r->out_off, n);
        r->out_off += n;
        return (ssize_t)n;
    }
    /* Cut short upstream: the guest sees the reply end with an error. */
    return r->result == CURLE_OK ? MHD_CONTENT_READER_END_OF_STREAM
                                 : MHD_CONTENT_READER_END_WITH_ERROR;
}

static const char *const methods[] = {"GET",    "POST",    "PUT",  "PATCH",
                                      "DELETE", "OPTIONS", "HEAD", NULL};

static bool known_method(const char *m)
{
    for (size_t i = 0; methods[i]; i++)
        if (strcmp(m, methods[i]) == 0)
            return true;
    return false;
}

static int set_up_transfer(struct gw_req *r, const char *method, struct MHD_Connection *c)
{
    struct gw_port *port = r->port;
    MHD_get_connection_values(c, MHD_HEADER_KIND, add_header, r);
    /* No Expect: 100-continue of curl's own; no Content-Type curl would
     * invent for a body the guest sent without one. */
    const char *extra[] = {
        port->key_header, "Expect:",
        MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Type") ? NULL : "Content-Type:"};
    for (size_t i = 0; i < ARRAY_SIZE(extra); i++) {
        if (extra[i] == NULL)
            continue;
        struct curl_slist *l = curl_slist_append(r->headers, extra[i]);
        if (l == NULL)
            return -1;
        r->headers = l;
    }
    r->multi = curl_multi_init();
    r->easy = curl_easy_init();
    r->out = malloc(GW_OUT_CAP);
    if (r->multi == NULL || r->easy == NULL || r->out == NULL)
        return -1;
    cleanup_free char *url = xasprintf("%s%s", port->origin, r->target);
    CURL *e = r->easy;
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "https");
    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_IPRESOLVE, (long)CURL_IPRESOLVE_V4);
    curl_easy_setopt(e, CURLOPT_CAINFO, NULL);
    curl_easy_setopt(e, CURLOPT_CAPATH, NULL);
    curl_easy_setopt(e, CURLOPT_SSL_CTX_FUNCTION, use_store);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 2L);
    curl_easy_setopt(e, CURLOPT_SHARE, gw.share);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT, (long)GW_CONNECT_S);
    curl_easy_setopt(e, CURLOPT_SOCKOPTFUNCTION, set_user_timeout);
    curl_easy_setopt(e, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(e, CURLOPT_LOW_SPEED_TIME, (long)GW_IDLE_S);
    curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, r->headers);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, r);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, r->errbuf);
    bool bodyless = (strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0) && r->len == 0;
    if (strcmp(method, "HEAD") == 0)
        curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
    if (!bodyless) {
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)r->len);
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, r->body ? r->body : "");
    }
    if (!bodyless && strcmp(method, "POST") != 0)
        curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
    return curl_multi_add_handle(r->multi, e) == CURLM_OK ? 0 : -1;
}

static enum MHD_Result forward(struct gw_req *r, struct MHD_Connection *c, const char *method)
{
    const union MHD_ConnectionInfo *info =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
    r->client_fd = info ? info->connect_fd : -1;
    if (set_up_transfer(r, method, c) < 0)
        return reply_text(c, 500, "mvm api gateway: out of memory");
    drive(r, have_headers);
    if (!r->headers_done) {
        const char *why = r->errbuf[0] ? r->errbuf : curl_easy_strerror(r->result);
        return reply_text(c, 502, "mvm api gateway: %s: %s", r->port->origin, why);
    }
    struct MHD_Response *resp =
        MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 32 * 1024, read_reply, r, NULL);
    if (resp == NULL)
        return MHD_NO;
    for (size_t i = 0; i < r->nresp; i++)
        MHD_add_response_header(resp, r->resp[i][0], r->resp[i][1]);
    enum MHD_Result rc = MHD_queue_response(c, (unsigned)r->status, resp);
    MHD_destroy_response(resp);
    return rc;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version, const char *upload,
                                  size_t *upload_size, void **con_cls)
{
    (void)cls, (void)url, (void)version;
    struct gw_req *r = *con_cls;
    if (r == NULL)
        return MHD_NO;
    if (!r->started) { /* the headers are in; the body, if any, follows */
        r->started = true;
        return MHD_YES;
    }
    if (*upload_size > 0) {
        size_t n = *upload_size;
        *upload_size = 0;
        if (r->too_big || r->len + n > MVM_GW_MAX_REQUEST) {
            r->too_big = true;
            return MHD_YES;
        }
        if (r->len + n > r->cap) {
            size_t cap = r->cap ? r->cap : 64 * 1024;
            while (cap < r->len + n)
                cap *= 2;
            char *grown = realloc(r->body, cap);
            if (grown == NULL)
                return MHD_NO;
            r->body = grown;
            r->cap = cap;
        }
        memcpy(r->body + r->len, upload, n);
        r->len += n;
        return MHD_YES;
    }
    if (r->bad_target)
        return reply_text(c, 400, "mvm api gateway: a request target it does not forward");
    if (!known_method(method))
        return reply_text(c, 405, "mvm api gateway: method %s is not forwarded", method);
    if (r->too_big)
        return reply_text(c, 413, "mvm api gateway: the request is over %d MiB",
                          MVM_GW_MAX_REQUEST >> 20);
    return forward(r, c, method);
}

/* The secrets pipe: for each port a 32-bit length and the key, then the
 * CA bundle the same way; all of it read before anything listens. */
static int read_exact(int fd, void *buf, size_t n)
{
    for (size_t got = 0; got < n;) {
        ssize_t k = read(fd, (char *)buf + got, n - got);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return -1;
        got += (size_t)k;
    }
    return 0;
}

static char *read_item(int fd, size_t max, size_t *len)
{
    uint32_t n;
    if (read_exact(fd, &n, sizeof n) < 0 || n > max)
        return NULL;
    char *s = malloc((size_t)n + 1);
    if (s == NULL || read_exact(fd, s, n) < 0) {
        free(s);
        return NULL;
    }
    s[n] = '\0';
    *len = n;
    return s;
}

/* The CA bundle (PEM) into the store every connection verifies with. */
static int load_store(const char *pem, size_t len)
{
    BIO *bio = BIO_new_mem_buf(pem, (int)len);
    STACK_OF(X509_INFO) *infos = bio ? PEM_X509_INFO_read_bio(bio, NULL, NULL, NULL) : NULL;
    gw.ca = X509_STORE_new();
    int n = 0;
    for (int i = 0; gw.ca && infos && i < sk_X509_INFO_num(infos); i++) {
        X509_INFO *info = sk_X509_INFO_value(infos, i);
        if (info->x509 && X509_STORE_add_cert(gw.ca, info->x509) == 1)
            n++;
    }
    sk_X509_INFO_pop_free(infos, X509_INFO_free);
    BIO_free(bio);
    return n > 0 ? 0 : -1;
}

static int load_secrets(int fd)
{
    for (size_t i = 0; i < gw.nports; i++) {
        struct gw_port *port = &gw.ports[i];
        size_t len;
        char *key = read_item(fd, MVM_GW_MAX_KEY, &len);
        if (key == NULL)
            return -1;
        size_t hsize = MVM_GW_MAX_HEADER + MVM_GW_MAX_KEY + 16;
        port->key_header = malloc(hsize);
        int n =
            port->key_header ? mvm_gw_key_header(&port->p, key, len, port->key_header, hsize) : -1;
        explicit_bzero(key, len);
        free(key);
        if (n < 0)
            return -1;
        mlock(port->key_header, hsize); /* best effort: not in swap */
    }
    size_t len;
    cleanup_free char *pem = read_item(fd, MVM_GW_MAX_CA, &len);
    close(fd);
    return pem ? load_store(pem, len) : -1;
}

static int start_port(struct gw_port *port, int fd)
{
    unsigned flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL;
    port->daemon = MHD_start_daemon(
        flags, 0, NULL, NULL, on_request, port, MHD_OPTION_LISTEN_SOCKET, fd,
        MHD_OPTION_URI_LOG_CALLBACK, on_uri, port, MHD_OPTION_NOTIFY_COMPLETED, on_completed, NULL,
        MHD_OPTION_NOTIFY_CONNECTION, on_connection, NULL, MHD_OPTION_CONNECTION_LIMIT,
        (unsigned)GW_MAX_CONN, MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)GW_IDLE_S,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)(128 * 1024), MHD_OPTION_END);
    return port->daemon ? 0 : -1;
}

static int parse_fd(const char *s)
{
    char *end;
    long v = strtol(s, &end, 10);
    return *s && *end == '\0' && v >= 3 && v < 65536 ? (int)v : -1;
}

int mvm_gw_main(int argc, char **argv)
{
    if (argc < 4 || (argc - 2) % 2 != 0 || (size_t)(argc - 2) / 2 > MVM_GW_MAX_PROVIDERS) {
        fprintf(stderr, "usage: mvm __api-gateway SECRETS-FD LISTEN-FD SPEC...\n");
        return 1;
    }
    /* The keys are in this process's memory: no core dump, no ptrace. */
    prctl(PR_SET_DUMPABLE, 0);
    int secrets = parse_fd(argv[1]);
    int listen_fds[MVM_GW_MAX_PROVIDERS];
    for (int i = 2; i + 1 < argc; i += 2) {
        struct gw_port *port = &gw.ports[gw.nports];
        struct mvm_error *err = NULL;
        listen_fds[gw.nports] = parse_fd(argv[i]);
        if (listen_fds[gw.nports] < 0 || mvm_gw_parse_spec(argv[i + 1], &port->p, &err) < 0) {
            fprintf(stderr, "mvm __api-gateway: bad port '%s %s'\n", argv[i], argv[i + 1]);
            mvm_error_free(err);
            return 1;
        }
        /* The origin alone: the target carries the base path. */
        char origin[sizeof port->origin];
        snprintf(origin, sizeof origin, "https://%s:%u", port->p.host, (unsigned)port->p.port);
        memcpy(port->origin, origin, sizeof origin);
        gw.nports++;
    }
    if (secrets < 0 || load_secrets(secrets) < 0) {
        fprintf(stderr, "mvm __api-gateway: reading the keys failed\n");
        return 1;
    }
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK || (gw.share = curl_share_init()) == NULL)
        return 1;
    for (size_t i = 0; i < ARRAY_SIZE(gw.locks); i++)
        pthread_mutex_init(&gw.locks[i], NULL);
    curl_share_setopt(gw.share, CURLSHOPT_LOCKFUNC, share_lock);
    curl_share_setopt(gw.share, CURLSHOPT_UNLOCKFUNC, share_unlock);
    curl_share_setopt(gw.share, CURLSHOPT_SHARE, CURL_LOCK_DATA_CONNECT);
    curl_share_setopt(gw.share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
    curl_share_setopt(gw.share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION);
    for (size_t i = 0; i < gw.nports; i++)
        if (start_port(&gw.ports[i], listen_fds[i]) < 0) {
            fprintf(stderr, "mvm __api-gateway: cannot serve %s\n", gw.ports[i].origin);
            return 1;
        }
    for (;;)
        pause(); /* until mvm kills it */
}
