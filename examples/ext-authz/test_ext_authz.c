/* test_ext_authz.c - unit test of the ext-authz plugin with the sluice test
 * host (pkg-config sluice-testhost): no gateway runs; a tiny authorization
 * service on a loopback port (a thread here) answers the callouts.
 *
 *   make test      (ext-authz.so must be alone in this directory's plugins) */

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <sluice/testhost.h>

static int fails;
#define CHECK(c)                                                                                   \
    do {                                                                                           \
        if (!(c)) {                                                                                \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #c);                  \
            fails++;                                                                               \
        }                                                                                          \
    } while (0)

/* The authorization service: "Authorization: Bearer good" passes as alice,
 * anything else gets 401 with a JSON body. */
static void *
serve(void *arg)
{
    int ls = *(int *)arg;

    for (;;) {
        char buf[4096], out[512];
        size_t n = 0;
        ssize_t k;
        int s = accept(ls, NULL, NULL);
        if (s < 0)
            continue;
        while (n < sizeof(buf) - 1 && (k = read(s, buf + n, sizeof(buf) - 1 - n)) > 0) {
            n += (size_t)k;
            buf[n] = '\0';
            if (strstr(buf, "\r\n\r\n"))
                break;
        }
        buf[n] = '\0';
        int ok = strstr(buf, "\r\nauthorization: Bearer good\r\n") != NULL &&
                 strstr(buf, "\r\nX-Original-Method: GET\r\n") != NULL;
        int len =
            ok ? snprintf(out, sizeof(out),
                          "HTTP/1.1 200 OK\r\nX-Auth-User: alice\r\nContent-Length: 0\r\n"
                          "Connection: close\r\n\r\n")
               : snprintf(out, sizeof(out),
                          "HTTP/1.1 401 Unauthorized\r\nContent-Type: application/json\r\n"
                          "Content-Length: 16\r\nConnection: close\r\n\r\n{\"message\":\"no\"}");
        if (write(s, out, (size_t)len) != len)
            perror("write");
        close(s);
    }
    return NULL;
}

static int
start_service(void)
{
    static int ls;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof(a);
    pthread_t th;

    ls = socket(AF_INET, SOCK_STREAM, 0);
    if (ls < 0 || bind(ls, (struct sockaddr *)&a, sizeof(a)) != 0 || listen(ls, 16) != 0 ||
        getsockname(ls, (struct sockaddr *)&a, &al) != 0)
        return -1;
    pthread_create(&th, NULL, serve, &ls);
    pthread_detach(th);
    return ntohs(a.sin_port);
}

int
main(int argc, char **argv)
{
    const char *dir = argc > 1 ? argv[1] : ".";
    int port = start_service();
    char config[1024], *err = NULL;
    slt_host_t *h;
    slt_req_t *t;
    size_t len;

    if (port < 0) {
        perror("authorization service");
        return 1;
    }
    snprintf(config, sizeof(config),
             "_format_version: \"3.0\"\n"
             "services:\n"
             "- name: svc\n"
             "  url: http://127.0.0.1:1/\n"
             "  routes:\n"
             "  - name: r\n"
             "    paths: [/]\n"
             "    plugins:\n"
             "    - name: ext-authz\n"
             "      config: {url: \"http://127.0.0.1:%d/check\", timeout_ms: 500}\n"
             "  - name: down\n"
             "    paths: [/down]\n"
             "    plugins:\n"
             "    - name: ext-authz\n"
             "      config: {url: \"http://127.0.0.1:1\", status_on_error: 503}\n",
             port);
    h = slt_host_new(dir, config, &err);
    if (h == NULL) {
        fprintf(stderr, "test host: %s\n", err ? err : "?");
        return 1;
    }

    /* allowed: the service's X-Auth-User goes upstream */
    t = slt_req_new(h, "GET", "/orders?id=7");
    slt_req_header(t, "Authorization", "Bearer good");
    CHECK(slt_access(t) == SL_STATUS_CONTINUE);
    CHECK(slt_req_header_get(t, "x-auth-user") &&
          !strcmp(slt_req_header_get(t, "x-auth-user"), "alice"));
    slt_req_free(t);

    /* denied: the client gets the service's answer */
    t = slt_req_new(h, "GET", "/orders");
    slt_req_header(t, "Authorization", "Bearer bad");
    CHECK(slt_access(t) == SL_STATUS_RESPOND);
    CHECK(slt_status(t) == 401);
    CHECK(!strcmp(slt_resp_body(t, &len), "{\"message\":\"no\"}"));
    CHECK(slt_req_header_get(t, "x-auth-user") == NULL);
    slt_req_free(t);

    /* the service is down: status_on_error */
    t = slt_req_new(h, "GET", "/down/x");
    CHECK(slt_access(t) == SL_STATUS_RESPOND);
    CHECK(slt_status(t) == 503);
    slt_req_free(t);

    slt_host_free(h);

    /* a config without url is refused with the field's path */
    h = slt_host_new(dir, "_format_version: \"3.0\"\nplugins:\n- name: ext-authz\n", &err);
    CHECK(h == NULL && err && strstr(err, "plugins[0].config.url"));
    free(err);
    if (fails == 0)
        printf("ext-authz: all checks passed\n");
    return fails ? 1 : 0;
}
