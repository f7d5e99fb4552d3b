/* testhost-check.c - a plugin author's unit test, built by tests/package/run
 * against the installed sluice-dev alone (pkg-config sluice-testhost): the
 * example plugin request-id-header, run by the test host on a route, gives
 * the request an X-Request-Id on its way upstream and keeps a client's.
 *
 *     testhost-check PLUGINS_DIR  (exit 0 when every check passes) */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sluice/testhost.h>

static const char config[] = "_format_version: \"3.0\"\n"
                             "services:\n"
                             "- name: svc\n"
                             "  url: http://127.0.0.1:9/base\n"
                             "  routes:\n"
                             "  - name: with-plugin\n"
                             "    paths: [/with]\n"
                             "    plugins:\n"
                             "    - name: request-id-header\n";

static int failures;

static void
check(int ok, const char *what)
{
    printf("%s: %s\n", ok ? "ok" : "FAILED", what);
    failures += !ok;
}

int
main(int argc, char **argv)
{
    char *errors = NULL;
    slt_host_t *h;
    slt_req_t *t;
    const char *v;

    if (argc != 2) {
        fprintf(stderr, "usage: testhost-check PLUGINS_DIR\n");
        return 2;
    }
    h = slt_host_new(argv[1], config, &errors);
    if (h == NULL) {
        fprintf(stderr, "slt_host_new: %s\n", errors ? errors : "?");
        free(errors);
        return 1;
    }

    t = slt_req_new(h, "GET", "/with/x?y=1");
    check(slt_access(t) == SL_STATUS_CONTINUE, "access continues");
    v = slt_req_header_get(t, "x-request-id");
    check(v != NULL && *v != '\0', "X-Request-Id added upstream");
    v = slt_upstream_url(t);
    check(v != NULL && strncmp(v, "http://127.0.0.1:9/base", 23) == 0, "upstream URL");
    slt_req_free(t);

    t = slt_req_new(h, "GET", "/with/y");
    slt_req_header(t, "X-Request-Id", "client-id-1");
    check(slt_access(t) == SL_STATUS_CONTINUE, "access continues (client id)");
    v = slt_req_header_get(t, "x-request-id");
    check(v != NULL && strcmp(v, "client-id-1") == 0, "a client's X-Request-Id is kept");
    slt_req_free(t);

    t = slt_req_new(h, "GET", "/elsewhere");
    check(slt_access(t) == -1, "no route: -1");
    slt_req_free(t);

    slt_host_free(h);
    return failures ? 1 : 0;
}
