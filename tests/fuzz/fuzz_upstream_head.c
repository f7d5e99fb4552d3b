/* fuzz_upstream_head.c - libFuzzer harness for the upstream response head
 * parser (http/proxy.c: llhttp in response mode, the status range, interim
 * 1xx, the head bounds and read timeouts).  A real sluice connection in this
 * process proxies one GET to an upstream that this harness plays on a
 * loopback socket: it reads the request and answers with the fuzzer's bytes,
 * then closes.  Oracle (issue 21): what the client receives starts with a
 * status line, and every status line up to the final one (interim 1xx heads
 * are passed on) has a status in 100-599 - a status outside it never
 * reaches the client. */

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "base/log.h"
#include "http/http_server.h"
#include "http/server.h"
#include "plugin/host.h"
#include "plugin/phase.h"

static sl_server_t w;
static sl_settings_t settings;
static sl_plugin_registry_t reg;
static uv_tcp_t listener;
static struct sockaddr_in addr, up_addr;
static int up_fd = -1;

static void
setup(void)
{
    sl_errors_t errs = {0};
    int alen = sizeof(addr);
    socklen_t ulen = sizeof(up_addr);
    char conf_yaml[512];
    int n;

    sl_log_level = SL_LOG_ERROR + 1; /* quiet */
    /* the upstream: a listening socket this harness answers on */
    up_fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    memset(&up_addr, 0, sizeof(up_addr));
    up_addr.sin_family = AF_INET;
    up_addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(up_fd, (struct sockaddr *)&up_addr, sizeof(up_addr)) < 0 || listen(up_fd, 16) < 0 ||
        getsockname(up_fd, (struct sockaddr *)&up_addr, &ulen) < 0)
        abort();
    n = snprintf(conf_yaml, sizeof(conf_yaml),
                 "_format_version: \"3.0\"\n"
                 "services:\n"
                 "- name: s\n"
                 "  url: http://127.0.0.1:%d/base\n"
                 "  retries: 0\n"
                 "  connect_timeout: 500\n"
                 "  read_timeout: 300\n"
                 "  routes:\n"
                 "  - name: r\n"
                 "    paths: [/p]\n",
                 ntohs(up_addr.sin_port));
    sl_settings_defaults(&settings);
    settings.client_header_timeout_ms = 500;
    settings.keepalive_timeout_ms = 200;
    w.loop = uv_default_loop();
    w.settings = &settings;
    w.conf = sl_conf_load_buffer("fuzz", conf_yaml, (size_t)n, &reg, &sl_api, &errs);
    if (w.conf == NULL) {
        for (size_t i = 0; i < errs.n; i++)
            fprintf(stderr, "%s\n", errs.msgs[i]);
        abort();
    }
    sl_uppool_options_t po = {0, 1000, 1000}; /* no keep-alive: one exchange each */
    w.uppool = sl_uppool_new(w.loop, &po);
    w.phases = &sl_plugin_phases;
    uv_tcp_init(w.loop, &listener);
    listener.data = &w;
    uv_ip4_addr("127.0.0.1", 0, &addr);
    if (uv_tcp_bind(&listener, (struct sockaddr *)&addr, 0) ||
        uv_listen((uv_stream_t *)&listener, 128, sl_http_on_connection))
        abort();
    uv_tcp_getsockname(&listener, (struct sockaddr *)&addr, &alen);
}

/* Every status line the client got, up to the final one: 100-599. */
static void
check(const char *p, size_t n)
{
    size_t pos = 0;

    if (n == 0)
        return; /* the gateway may close without an answer only if ... never */
    for (;;) {
        if (n - pos < 13 || memcmp(p + pos, "HTTP/1.1 ", 9) != 0) {
            fprintf(stderr, "no status line at %zu: %.*s\n", pos,
                    (int)(n - pos > 64 ? 64 : n - pos), p + pos);
            abort();
        }
        const char *s = p + pos + 9;
        if (s[0] < '1' || s[0] > '5' || s[1] < '0' || s[1] > '9' || s[2] < '0' || s[2] > '9' ||
            s[3] != ' ') {
            fprintf(stderr, "status out of range: %.16s\n", s);
            abort();
        }
        if (s[0] != '1')
            return; /* the final answer */
        const char *end = memmem(p + pos, n - pos, "\r\n\r\n", 4);
        if (end == NULL)
            return;
        pos = (size_t)(end + 4 - p);
        if (pos == n)
            return;
    }
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int ready;
    static char got[1 << 20];
    static const char req[] = "GET /p/x HTTP/1.1\r\nHost: f\r\nConnection: close\r\n\r\n";
    char buf[65536];
    size_t ngot = 0, off = 0, sent = 0;
    int fd, ufd = -1, eof = 0, head_read = 0, up_done = 0;
    uint64_t start;

    if (!ready) {
        setup();
        ready = 1;
    }
    fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    if (connect(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0 && errno != EINPROGRESS)
        abort();
    start = uv_hrtime();
    while (!eof && uv_hrtime() - start < 3000000000ull) {
        if (off < sizeof(req) - 1) {
            ssize_t k = send(fd, req + off, sizeof(req) - 1 - off, MSG_NOSIGNAL);
            if (k > 0)
                off += (size_t)k;
        }
        uv_run(w.loop, UV_RUN_NOWAIT);
        /* the upstream's side */
        if (ufd < 0 && !up_done)
            ufd = accept4(up_fd, NULL, NULL, SOCK_NONBLOCK);
        if (ufd >= 0) {
            ssize_t k = recv(ufd, buf, sizeof(buf), 0);
            if (k > 0 && memmem(buf, (size_t)k, "\r\n\r\n", 4))
                head_read = 1; /* the GET has no body */
            if (head_read && sent < size) {
                k = send(ufd, data + sent, size - sent, MSG_NOSIGNAL);
                if (k > 0)
                    sent += (size_t)k;
                else if (k < 0 && errno != EAGAIN && errno != EWOULDBLOCK)
                    sent = size;
            }
            if (head_read && sent >= size) {
                close(ufd);
                ufd = -1;
                up_done = 1;
            }
        }
        uv_run(w.loop, UV_RUN_NOWAIT);
        ssize_t k = recv(fd, buf, sizeof(buf), 0);
        if (k > 0) {
            size_t c = (size_t)k < sizeof(got) - ngot ? (size_t)k : sizeof(got) - ngot;
            memcpy(got + ngot, buf, c);
            ngot += c;
        }
        if (k == 0 || (k < 0 && errno != EAGAIN && errno != EWOULDBLOCK))
            eof = 1;
        if (k < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            usleep(50);
    }
    if (ufd >= 0)
        close(ufd);
    close(fd);
    check(got, ngot);
    for (int i = 0; i < 50 && w.nconns > 0; i++) {
        uv_run(w.loop, UV_RUN_NOWAIT);
        usleep(100);
    }
    return 0;
}
