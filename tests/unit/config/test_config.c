/* test_config.c - the declarative config loader: the how-to config, every
 * error kind with its exact "file:line: path: message", ids, entities, and
 * plugin chains (precedence and ordering). */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <cmocka.h>

#include "conf/config.h"
#include "conf/router.h"
#include "fake_plugins.h"

static char *
data_path(const char *name)
{
    static char buf[1024];
    const char *dir = getenv("SL_TEST_DATA");

    snprintf(buf, sizeof(buf), "%s/%s", dir ? dir : "tests/unit/config/data", name);
    return buf;
}

static const char *
entity_str(json_object *e, const char *key)
{
    json_object *v = NULL;
    return json_object_object_get_ex(e, key, &v) ? json_object_get_string(v) : NULL;
}

static int
is_uuid(const char *s)
{
    if (strlen(s) != 36)
        return 0;
    for (int i = 0; i < 36; i++) {
        int hy = i == 8 || i == 13 || i == 18 || i == 23;
        if (hy ? s[i] != '-' : strchr("0123456789abcdef", s[i]) == NULL)
            return 0;
    }
    return 1;
}

static void
test_howto(void **state)
{
    sl_errors_t errs = {0};
    sl_conf_t *conf, *again;
    sl_service_t *s;
    sl_route_t *r;
    sl_route_match_t m;
    char *up;

    (void)state;
    setenv("DECK_DASHSCOPE_API_KEY", "sk-test", 1);
    conf = sl_conf_load(data_path("howto.yaml"), &sl_fake_registry, &sl_fake_api, &errs);
    sl_fake_dump_errors(&errs);
    assert_non_null(conf);
    assert_int_equal(errs.n, 0);

    assert_int_equal(conf->nservices, 1);
    s = conf->services[0];
    assert_string_equal(s->name, "example-service");
    assert_string_equal(s->protocol, "http");
    assert_string_equal(s->host, "httpbin.konghq.com");
    assert_int_equal(s->port, 80);
    assert_string_equal(s->path, "/anything");
    assert_int_equal(s->retries, 5);
    assert_int_equal(s->connect_timeout, 60000);
    assert_int_equal(s->read_timeout, 60000);
    assert_int_equal(s->write_timeout, 60000);
    assert_int_equal(s->tls_verify, -1);
    assert_true(is_uuid(s->id));
    assert_string_equal(entity_str(s->entity, "id"), s->id);
    assert_string_equal(entity_str(s->entity, "host"), "httpbin.konghq.com");
    assert_string_equal(entity_str(s->entity, "path"), "/anything");
    assert_string_equal(entity_str(s->entity, "retries"), "5");

    assert_int_equal(conf->nroutes, 1);
    r = conf->routes[0];
    assert_string_equal(r->name, "example-route");
    assert_ptr_equal(r->service, s);
    assert_int_equal(r->npaths, 1);
    assert_string_equal(r->paths[0].path, "/anything");
    assert_false(r->paths[0].is_regex);
    assert_true(r->strip_path);
    assert_false(r->preserve_host);
    {
        char want[1024];
        snprintf(
            want, sizeof(want),
            "{\"id\":\"%s\",\"name\":\"example-route\",\"protocols\":[\"http\",\"https\"],"
            "\"paths\":[\"/anything\"],\"strip_path\":true,\"preserve_host\":false,"
            "\"regex_priority\":0,\"https_redirect_status_code\":426,\"path_handling\":\"v0\","
            "\"request_buffering\":true,\"response_buffering\":true,\"service\":{\"id\":\"%s\"}}",
            r->id, s->id);
        assert_string_equal(json_object_to_json_string_ext(
                                r->entity, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE),
                            want);
    }
    assert_string_equal(entity_str(r->entity, "protocols"), "[ \"http\", \"https\" ]");
    assert_string_equal(entity_str(r->entity, "https_redirect_status_code"), "426");
    assert_string_equal(entity_str(r->entity, "path_handling"), "v0");
    assert_string_equal(entity_str(r->entity, "request_buffering"), "true");
    assert_string_equal(entity_str(json_object_object_get(r->entity, "service"), "id"), s->id);

    /* the how-to's plugins are global: both run for the route */
    assert_int_equal(conf->nplugins, 2);
    assert_null(conf->plugins[0]->route);
    assert_null(conf->plugins[0]->service);
    assert_int_equal(r->chain.n, 2);
    assert_string_equal(r->chain.items[0]->plugin->desc->name, "ai-proxy");
    assert_string_equal(r->chain.items[1]->plugin->desc->name, "file-log");
    assert_true(r->chain.has_body);
    assert_true(r->chain.has_body_filter);
    assert_int_equal(conf->global_chain.n, 2);
    assert_non_null(strstr(r->chain.items[0]->conf, "\"header_value\":\"Bearer sk-test\""));
    assert_non_null(strstr(r->chain.items[0]->conf, "\"max_tokens\":8192"));
    assert_non_null(strstr(r->chain.items[0]->conf, "\"temperature\":1.0"));
    assert_string_equal(r->chain.items[1]->conf, "{\"path\":\"/tmp/claude.json\"}");
    assert_true(is_uuid(conf->plugins[0]->id));

    /* the how-to request */
    assert_int_equal(sl_router_match(conf, SL_STR("POST"), SL_STR("localhost"),
                                     SL_STR("/anything/v1/messages"), &m),
                     SL_OK);
    assert_ptr_equal(m.route, r);
    up = sl_router_upstream_path(&m, SL_STR("/anything/v1/messages"));
    assert_string_equal(up, "/anything/v1/messages");
    free(up);

    /* same file, same ids */
    again = sl_conf_load(data_path("howto.yaml"), &sl_fake_registry, &sl_fake_api, &errs);
    assert_non_null(again);
    assert_string_equal(again->services[0]->id, s->id);
    assert_string_equal(again->routes[0]->id, r->id);
    assert_string_equal(again->plugins[0]->id, conf->plugins[0]->id);
    assert_string_not_equal(again->plugins[0]->id, again->plugins[1]->id);
    sl_conf_free(again);
    sl_conf_free(conf);
    assert_int_equal(sl_fake_live_confs, 0);

    /* without the key: decK's error, with the line of header_value */
    unsetenv("DECK_DASHSCOPE_API_KEY");
    assert_null(sl_conf_load(data_path("howto.yaml"), &sl_fake_registry, &sl_fake_api, &errs));
    assert_int_equal(errs.n, 1);
    {
        char want[1200];
        snprintf(want, sizeof(want),
                 "%s:24: environment variable 'DECK_DASHSCOPE_API_KEY' "
                 "present in state file but not set",
                 data_path("howto.yaml"));
        assert_string_equal(errs.msgs[0], want);
    }
    sl_errors_free(&errs);
}

/* A JSON file gets lines too; nested plugin paths are complete. */
static void
test_json_nested_plugin_error(void **state)
{
    sl_errors_t errs = {0};
    char want[1200];

    (void)state;
    setenv("DECK_DASHSCOPE_API_KEY", "sk-test", 1);
    assert_null(sl_conf_load(data_path("nested_bad_temperature.json"), &sl_fake_registry,
                             &sl_fake_api, &errs));
    sl_fake_dump_errors(&errs);
    assert_int_equal(errs.n, 1);
    snprintf(want, sizeof(want),
             "%s:20: services[0].routes[0].plugins[0].config.model.options."
             "temperature: value should be between 0 and 5",
             data_path("nested_bad_temperature.json"));
    assert_string_equal(errs.msgs[0], want);
    sl_errors_free(&errs);
    assert_int_equal(sl_fake_live_confs, 0);
}

static void
expect_errors(const char *yaml, const char *const *want)
{
    sl_errors_t errs = {0};
    size_t n = 0;

    assert_null(sl_fake_load(yaml, &errs));
    for (; want[n]; n++) {
        if (!sl_fake_has_error(&errs, want[n])) {
            fprintf(stderr, "missing: %s\n", want[n]);
            sl_fake_dump_errors(&errs);
            fail();
        }
    }
    if (errs.n != n) {
        sl_fake_dump_errors(&errs);
        assert_int_equal(errs.n, n);
    }
    sl_errors_free(&errs);
    assert_int_equal(sl_fake_live_confs, 0);
}

/* Every problem in one file is reported, each with file:line:path. */
static void
test_all_errors_collected(void **state)
{
    static const char yaml[] = "_format_version: \"3.0\"\n"   /* 1 */
                               "services:\n"                  /* 2 */
                               "- name: svc\n"                /* 3 */
                               "  url: ftp://x\n"             /* 4 */
                               "  retries: \"five\"\n"        /* 5 */
                               "  colour: red\n"              /* 6 */
                               "  routes:\n"                  /* 7 */
                               "  - name: r1\n"               /* 8 */
                               "    paths: /x\n"              /* 9 */
                               "- name: svc\n"                /* 10 */
                               "  host: h\n"                  /* 11 */
                               "  port: 70000\n"              /* 12 */
                               "routes:\n"                    /* 13 */
                               "- name: r2\n"                 /* 14 */
                               "  paths: [\"/a\"]\n"          /* 15 */
                               "  service: {name: missing}\n" /* 16 */
                               "plugins:\n"                   /* 17 */
                               "- name: nope\n"               /* 18 */
                               "- name: ai-proxy\n"           /* 19 */
                               "  config:\n"                  /* 20 */
                               "    model:\n"                 /* 21 */
                               "      provider: dashscope\n"  /* 22 */
                               "      options:\n"             /* 23 */
                               "        temperature: 9\n"     /* 24 */
                               "- name: file-log\n"           /* 25 */
                               "  config: {path: /a}\n"       /* 26 */
                               "- name: file-log\n"           /* 27 */
                               "  config: {path: /b}\n";      /* 28 */
    static const char *const want[] = {
        "kong.yaml:4: services[0].url: invalid url 'ftp://x': protocol 'ftp' is not supported "
        "(http, https)",
        "kong.yaml:5: services[0].retries: expected an integer",
        "kong.yaml:6: services[0].colour: unknown field",
        "kong.yaml:9: services[0].routes[0].paths: expected an array",
        "kong.yaml:10: services[1].name: duplicate service name 'svc' (also services[0])",
        "kong.yaml:12: services[1].port: value should be between 0 and 65535",
        "kong.yaml:16: routes[0].service: service 'missing' not found",
        "kong.yaml:18: plugins[0].name: plugin 'nope' is not installed (not found in plugins "
        "directory /fake/plugins)",
        "kong.yaml:20: plugins[1].config.route_type: required field missing",
        "kong.yaml:24: plugins[1].config.model.options.temperature: value should be between 0 and "
        "5",
        "kong.yaml:27: plugins[3].name: plugin 'file-log' is configured more than once for the "
        "same global scope (also plugins[2])",
        NULL};

    (void)state;
    expect_errors(yaml, want);
}

static void
test_document_errors(void **state)
{
    (void)state;
    expect_errors(
        "services: []\n",
        (const char *const[]){"kong.yaml:1: _format_version: required field missing", NULL});
    expect_errors("_format_version: \"4.0\"\n",
                  (const char *const[]){"kong.yaml:1: _format_version: unsupported version '4.0' "
                                        "(expected \"1.1\", \"2.1\" or \"3.0\")",
                                        NULL});
    expect_errors("_format_version: 3.0\n_transform: yes\nvaults: []\n",
                  (const char *const[]){"kong.yaml:1: _format_version: expected a string",
                                        "kong.yaml:2: _transform: expected a boolean",
                                        "kong.yaml:3: vaults: unknown field", NULL});
    expect_errors("- a\n",
                  (const char *const[]){"kong.yaml:1: expected a record at the top level", NULL});
    expect_errors("", (const char *const[]){"kong.yaml: empty configuration", NULL});
    expect_errors("_format_version: \"3.0\"\nservices: {name: x}\n",
                  (const char *const[]){"kong.yaml:2: services: expected an array", NULL});
    /* YAML syntax errors come with line and column */
    expect_errors(
        "_format_version: \"3.0\"\nservices: [\n",
        (const char *const[]){
            "kong.yaml:3:1: did not find expected node content while parsing a flow node", NULL});
}

static void
test_service_errors(void **state)
{
    (void)state;
    expect_errors(
        "_format_version: \"3.0\"\n"
        "services:\n"
        "- name: bad name\n"        /* 3 */
        "  id: not-a-uuid\n"        /* 4 */
        "  url: http://h:99999/x\n" /* 5 */
        "- name: b\n"               /* 6 */
        "  url: http://h/p\n"       /* 7 */
        "  host: other\n"           /* 8 */
        "- name: c\n"               /* 9 */
        "  protocol: http\n"        /* 10 */
        "  path: x//y\n"            /* 11 */
        "  tls_verify: false\n"     /* 12 */
        "  connect_timeout: 0\n"    /* 13 */
        "- name: d\n"               /* 14 */
        "  url: https://h/a b\n"    /* 15 */
        "  tags: [1]\n",            /* 16 */
        (const char *const[]){
            "kong.yaml:3: services[0].name: invalid value 'bad name': the only accepted ascii "
            "characters are alphanumerics or ., -, _, and ~",
            "kong.yaml:4: services[0].id: expected a valid UUID",
            "kong.yaml:5: services[0].url: invalid url 'http://h:99999/x': bad port",
            "kong.yaml:7: services[1].url: url cannot be combined with protocol, host, port or "
            "path",
            "kong.yaml:9: services[2].host: required field missing (give url, or "
            "protocol/host/port/path)",
            "kong.yaml:11: services[2].path: should start with: /",
            "kong.yaml:12: services[2].tls_verify: can only be set when protocol is 'https'",
            "kong.yaml:13: services[2].connect_timeout: value should be between 1 and 2147483646",
            "kong.yaml:15: services[3].url: invalid path: '/a b' (characters outside of the "
            "reserved list of RFC 3986 found)",
            "kong.yaml:16: services[3].tags[0]: expected a string", NULL});
}

static void
test_route_errors(void **state)
{
    (void)state;
    expect_errors(
        "_format_version: \"3.0\"\n"
        "services:\n"
        "- name: s\n"
        "  url: http://h\n"
        "  routes:\n"
        "  - name: r\n"                                                    /* 6 */
        "    paths: [\"/a//b\", \"x\", \"~/(?<n>[a-z]+)\", \"~/(?=x)\"]\n" /* 7 */
        "    methods: [get]\n"                                             /* 8 */
        "    hosts: [\"a.*.com\", \"*.x.*\"]\n"                            /* 9 */
        "    service: s\n"                                                 /* 10 */
        "  - name: r\n"                                                    /* 11 */
        "    strip_path: 1\n"                                              /* 12 */
        "routes:\n"
        "- name: t\n"           /* 14 */
        "  protocols: [grpc]\n" /* 15 */
        "  paths: [/t]\n"
        "  service: {title: s}\n"   /* 17 */
        "  headers: {Host: [y]}\n", /* 18 */
        (const char *const[]){
            "kong.yaml:7: services[0].routes[0].paths[0]: must not have empty segments",
            "kong.yaml:7: services[0].routes[0].paths[1]: should start with: / (fixed path) or ~/ "
            "(regex path)",
            "kong.yaml:7: services[0].routes[0].paths[3]: invalid regex: '~/(?=x)' (unsupported "
            "construct '(?=')",
            "kong.yaml:8: services[0].routes[0].methods[0]: invalid value 'get': methods must be "
            "uppercase letters",
            "kong.yaml:9: services[0].routes[0].hosts[0]: invalid wildcard: must be placed at "
            "leftmost or rightmost label",
            "kong.yaml:9: services[0].routes[0].hosts[1]: invalid wildcard: must have at most one "
            "wildcard",
            "kong.yaml:10: services[0].routes[0].service: cannot be set on a route nested under a "
            "service",
            "kong.yaml:11: services[0].routes[1].name: duplicate route name 'r' (also "
            "services[0].routes[0])",
            "kong.yaml:11: services[0].routes[1]: must set one of 'methods', 'hosts', 'headers', "
            "'paths' "
            "when 'protocols' is 'http' or 'https'",
            "kong.yaml:12: services[0].routes[1].strip_path: expected a boolean",
            "kong.yaml:15: routes[0].protocols[0]: protocol 'grpc' is not supported (http, https)",
            "kong.yaml:17: routes[0].service.title: unknown field",
            "kong.yaml:18: routes[0].headers.Host: cannot contain 'host' header, which must be "
            "specified in the 'hosts' attribute",
            NULL});
}

static void
test_plugin_errors(void **state)
{
    (void)state;
    expect_errors(
        "_format_version: \"3.0\"\n"
        "services:\n"
        "- name: s\n"
        "  url: http://h\n"
        "  routes:\n"
        "  - name: r\n"
        "    paths: [/]\n"
        "    plugins:\n"
        "    - name: file-log\n" /* 9 */
        "      route: r\n"       /* 10 */
        "      config: {}\n"     /* 11 */
        "plugins:\n"
        "- name: silent\n"                              /* 13 */
        "- name: alpha\n"                               /* 14 */
        "  config: [1]\n"                               /* 15 */
        "  route: nowhere\n"                            /* 16 */
        "- config: {}\n"                                /* 17 */
        "- name: beta\n"                                /* 18 */
        "  consumer: {username: u}\n"                   /* 19 */
        "  enabled: nope\n"                             /* 20 */
        "- name: gamma\n"                               /* 21 */
        "  route: {name: r}\n"                          /* 22 */
        "- name: gamma\n"                               /* 23 */
        "  route: r\n"                                  /* 24 */
        "  id: 2B9C3B5C-9F0B-4F4E-8D3A-3A1C2B4D5E6F\n", /* 25 */
        (const char *const[]){
            "kong.yaml:10: services[0].routes[0].plugins[0].route: cannot be set on a nested "
            "plugin",
            "kong.yaml:11: services[0].routes[0].plugins[0].config.path: required field missing",
            "kong.yaml:13: plugins[0].config: invalid configuration for plugin 'silent'",
            "kong.yaml:16: plugins[1].route: route 'nowhere' not found",
            "kong.yaml:15: plugins[1].config: expected a record",
            "kong.yaml:17: plugins[2].name: required field missing",
            "kong.yaml:19: plugins[3].consumer: consumer 'u' not found",
            "kong.yaml:20: plugins[3].enabled: expected a boolean",
            "kong.yaml:23: plugins[5].name: plugin 'gamma' is configured more than once for the "
            "same route (also plugins[4])",
            NULL});
}

/* route > service > global per plugin name; priority desc; ties reverse
 * alphabetical; disabled instances skipped (the global one applies). */
static void
test_chains(void **state)
{
    static const char yaml[] = "_format_version: \"3.0\"\n"
                               "services:\n"
                               "- name: s1\n"
                               "  url: http://a\n"
                               "  plugins:\n"
                               "  - name: alpha\n"
                               "    config: {from: service}\n"
                               "  routes:\n"
                               "  - name: r1\n"
                               "    paths: [/r1]\n"
                               "    plugins:\n"
                               "    - name: alpha\n"
                               "      config: {from: route}\n"
                               "  - name: r2\n"
                               "    paths: [/r2]\n"
                               "- name: s2\n"
                               "  url: http://b\n"
                               "  routes:\n"
                               "  - name: r3\n"
                               "    paths: [/r3]\n"
                               "    plugins:\n"
                               "    - name: beta\n"
                               "      enabled: false\n"
                               "      config: {from: route}\n"
                               "plugins:\n"
                               "- name: alpha\n"
                               "  config: {from: global}\n"
                               "- name: beta\n"
                               "  config: {from: global}\n"
                               "- name: gamma\n"
                               "- name: file-log\n"
                               "  config: {path: /x}\n"
                               "- name: ai-proxy\n"
                               "  route: r3\n"
                               "  config: {route_type: llm/v1/chat, model: {provider: dashscope}}\n"
                               "- name: file-log\n"
                               "  service: s2\n"
                               "  route: r3\n"
                               "  config: {path: /route-and-service}\n"
                               "consumers:\n"
                               "- username: u1\n"
                               "  custom_id: c1\n";
    sl_errors_t errs = {0};
    sl_conf_t *conf;
    sl_route_t *r1 = NULL, *r2 = NULL, *r3 = NULL;

    (void)state;
    conf = sl_fake_load(yaml, &errs);
    sl_fake_dump_errors(&errs);
    assert_non_null(conf);
    for (size_t i = 0; i < conf->nroutes; i++) {
        sl_route_t *r = conf->routes[i];
        if (!strcmp(r->name, "r1"))
            r1 = r;
        if (!strcmp(r->name, "r2"))
            r2 = r;
        if (!strcmp(r->name, "r3"))
            r3 = r;
    }
    assert_non_null(r1);
    assert_non_null(r2);
    assert_non_null(r3);
#define CHAIN(ch, i, nm, frag)                                                                     \
    do {                                                                                           \
        assert_string_equal((ch).items[i]->plugin->desc->name, nm);                                \
        if (*frag)                                                                                 \
            assert_non_null(strstr((ch).items[i]->conf, frag));                                    \
    } while (0)
    assert_int_equal(r1->chain.n, 4);
    CHAIN(r1->chain, 0, "gamma", "");
    CHAIN(r1->chain, 1, "beta", "global");
    CHAIN(r1->chain, 2, "alpha", "route");
    CHAIN(r1->chain, 3, "file-log", "/x");
    assert_false(r1->chain.has_body);

    assert_int_equal(r2->chain.n, 4);
    CHAIN(r2->chain, 2, "alpha", "service");

    assert_int_equal(r3->chain.n, 5);
    CHAIN(r3->chain, 0, "gamma", "");
    CHAIN(r3->chain, 1, "ai-proxy", "");
    CHAIN(r3->chain, 2, "beta", "global");
    CHAIN(r3->chain, 3, "alpha", "global");
    CHAIN(r3->chain, 4, "file-log", "route-and-service");
    assert_true(r3->chain.has_body);
    assert_true(r3->chain.has_body_filter);

    assert_int_equal(conf->services[0]->chain.n, 4);
    CHAIN(conf->services[0]->chain, 2, "alpha", "service");
    assert_int_equal(conf->global_chain.n, 4);
    CHAIN(conf->global_chain, 2, "alpha", "global");
    CHAIN(conf->global_chain, 3, "file-log", "/x");

    /* the disabled instance is kept, with its config, outside the chains */
    assert_int_equal(conf->nplugins, 9);
    assert_int_equal(conf->nconsumers, 1);
    assert_string_equal(entity_str(conf->consumers[0]->entity, "username"), "u1");
    sl_conf_free(conf);
    assert_int_equal(sl_fake_live_confs, 0);
}

static void
test_ids(void **state)
{
    static const char yaml[] = "_format_version: \"3.0\"\n"
                               "services:\n"
                               "- name: s1\n"
                               "  id: 2B9C3B5C-9F0B-4F4E-8D3A-3A1C2B4D5E6F\n"
                               "  host: h\n"
                               "  protocol: https\n"
                               "  tls_verify: false\n"
                               "- name: s2\n"
                               "  host: h\n"
                               "- host: h\n"
                               "  id: 2b9c3b5c-9f0b-4f4e-8d3a-3a1c2b4d5e6f\n";
    sl_errors_t errs = {0};
    sl_conf_t *conf;

    (void)state;
    conf = sl_fake_load(yaml, &errs);
    assert_null(conf);
    assert_int_equal(errs.n, 1);
    assert_string_equal(errs.msgs[0], "kong.yaml:11: services[2].id: duplicate service id "
                                      "'2b9c3b5c-9f0b-4f4e-8d3a-3a1c2b4d5e6f' (also services[0])");
    sl_errors_free(&errs);

    conf = sl_fake_load("_format_version: \"3.0\"\nservices:\n- name: s1\n"
                        "  id: 2B9C3B5C-9F0B-4F4E-8D3A-3A1C2B4D5E6F\n  host: h\n"
                        "  protocol: https\n  tls_verify: false\n- name: s2\n  host: h\n"
                        "  port: 8080\n",
                        &errs);
    assert_non_null(conf);
    assert_string_equal(conf->services[0]->id, "2b9c3b5c-9f0b-4f4e-8d3a-3a1c2b4d5e6f");
    assert_int_equal(conf->services[0]->port, 443);
    assert_int_equal(conf->services[0]->tls_verify, 0);
    assert_true(is_uuid(conf->services[1]->id));
    assert_int_equal(conf->services[1]->id[14], '5'); /* version 5 */
    assert_int_equal(conf->services[1]->port, 8080);
    assert_null(conf->services[1]->path);
    sl_conf_free(conf);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_howto),
        cmocka_unit_test(test_json_nested_plugin_error),
        cmocka_unit_test(test_all_errors_collected),
        cmocka_unit_test(test_document_errors),
        cmocka_unit_test(test_service_errors),
        cmocka_unit_test(test_route_errors),
        cmocka_unit_test(test_plugin_errors),
        cmocka_unit_test(test_chains),
        cmocka_unit_test(test_ids),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
