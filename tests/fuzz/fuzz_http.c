/* fuzz_http.c - libFuzzer harness for client-side HTTP handling: the input
 * is sent over a real loopback socket to a real sluice connection (llhttp,
 * limits, routing, gateway responses, pipelining) inside this process.
 * The route points at a closed port, so proxying ends in a quick 502. */

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
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
static struct sockaddr_in addr;

static const char conf_yaml[] = "_format_version: \"3.0\"\n"
                                "services:\n"
                                "- name: s\n"
                                "  url: http://127.0.0.1:9/base\n"
                                "  retries: 0\n"
                                "  connect_timeout: 200\n"
                                "  routes:\n"
                                "  - name: r\n"
                                "    paths: [/p, \"~/re/[0-9]+\"]\n";

static void
setup(void)
{
    sl_errors_t errs = {0};
    int alen = sizeof(addr);

    sl_log_level = SL_LOG_ERROR + 1; /* quiet */
    sl_settings_defaults(&settings);
    settings.max_body_size = 64 * 1024;
    settings.max_header_size = 8 * 1024;
    settings.client_header_timeout_ms = 200;
    settings.client_body_timeout_ms = 200;
    settings.keepalive_timeout_ms = 200;
    w.loop = uv_default_loop();
    w.settings = &settings;
    w.conf = sl_conf_load_buffer("fuzz", conf_yaml, sizeof(conf_yaml) - 1, &reg, &sl_api, &errs);
    if (w.conf == NULL) {
        for (size_t i = 0; i < errs.n; i++)
            fprintf(stderr, "%s\n", errs.msgs[i]);
        abort();
    }
    sl_uppool_options_t po = {8, 1000, 1000};
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

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int ready;
    char buf[65536];
    int fd;

    if (!ready) {
        setup();
        ready = 1;
    }
    fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    if (connect(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0 && errno != EINPROGRESS)
        abort();
    size_t off = 0;
    int eof = 0, shut = 0;
    uint64_t start = uv_hrtime();
    while (!eof && uv_hrtime() - start < 2000000000ull) {
        if (off < size) {
            ssize_t n = send(fd, data + off, size - off, MSG_NOSIGNAL);
            if (n > 0)
                off += (size_t)n;
        } else if (!shut) {
            shutdown(fd, SHUT_WR);
            shut = 1;
        }
        uv_run(w.loop, UV_RUN_NOWAIT);
        ssize_t n = recv(fd, buf, sizeof(buf), 0);
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK))
            eof = 1;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            usleep(50);
    }
    close(fd);
    /* let the server side notice and free the connection */
    for (int i = 0; i < 50 && w.nconns > 0; i++) {
        uv_run(w.loop, UV_RUN_NOWAIT);
        usleep(100);
    }
    return 0;
}
