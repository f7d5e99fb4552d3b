/* native.c - what the gemini and bedrock request translators share: the
 * checks of an Anthropic Messages request, the model rule, tool names. */

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "native.h"

int
sl_ap_nat_fail(sl_ap_nat_t *n, int status, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(n->info->errmsg, sizeof(n->info->errmsg), fmt, ap);
    va_end(ap);
    n->info->status = status;
    return -1;
}

void
sl_ap_nat_sv(sl_ap_nat_t *n, int tok)
{
    sl_str_t s = sl_json_sv(n->d, tok);

    sl_ap_buf_add(n->out, s.ptr, s.len);
}

void
sl_ap_nat_raw(sl_ap_nat_t *n, int tok)
{
    sl_str_t s = sl_json_raw(n->d, tok);

    sl_ap_buf_add(n->out, s.ptr, s.len);
}

void
sl_ap_nat_number(sl_ap_nat_t *n, int *first, const char *key, int have_conf, double conf_v,
                 int req_tok)
{
    if (!have_conf && !(req_tok >= 0 && n->d->t[req_tok].type == SL_J_NUM)) {
        return;
    }
    sl_ap_buf_addf(n->out, "%s\"%s\":", *first ? "" : ",", key);
    *first = 0;
    if (have_conf) {
        sl_ap_buf_addf(n->out, "%.15g", conf_v);
    } else {
        sl_ap_nat_raw(n, req_tok);
    }
}

void
sl_ap_uri_encode(sl_ap_buf_t *out, const char *p, size_t len)
{
    size_t i;

    for (i = 0; i < len; i++) {
        unsigned char c = (unsigned char)p[i];

        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
            c == '-' || c == '.' || c == '_' || c == '~') {
            sl_ap_buf_addc(out, (char)c);
        } else {
            sl_ap_buf_addf(out, "%%%02X", c);
        }
    }
}

/* One system value: a string, or an array of text blocks (anything else
 * in the array is refused once here, for every codec); each non-empty
 * text goes to fn. */
static int
sl_ap_nat_system_value(sl_ap_nat_t *n, int v, const char *where, sl_ap_nat_system_fn fn, void *arg,
                       int *count)
{
    const sl_jdoc_t *d = n->d;
    int b, end;

    if (v < 0) {
        return 0;
    }
    if (d->t[v].type == SL_J_STR) {
        return d->t[v].len > 0 ? fn(arg, v, -1, count) : 0;
    }
    if (d->t[v].type != SL_J_ARR) {
        return 0;
    }
    end = SL_JSON_END(d, v);
    for (b = v + 1; b < end; b = SL_JSON_NEXT(d, b)) {
        int text = d->t[b].type == SL_J_OBJ ? sl_json_get_t(d, b, "text", SL_J_STR) : -1;

        if (text < 0 || !sl_json_str_eq(d, sl_json_get_t(d, b, "type", SL_J_STR), "text")) {
            return sl_ap_nat_fail(n, 400, "%s: only text blocks are allowed in system content",
                                  where);
        }
        if (d->t[text].len > 0 && fn(arg, text, b, count) != 0) {
            return -1;
        }
    }
    return 0;
}

int
sl_ap_nat_each_system(sl_ap_nat_t *n, sl_ap_nat_system_fn fn, void *arg, int *count)
{
    const sl_jdoc_t *d = n->d;
    int m, end = SL_JSON_END(d, n->msgs), mi = 0;
    char where[48];

    if (n->system >= 0 && sl_ap_nat_system_value(n, n->system, "system", fn, arg, count) != 0) {
        return -1;
    }
    for (m = n->msgs + 1; m < end; m = SL_JSON_NEXT(d, m), mi++) {
        if (!sl_json_str_eq(d, sl_json_get_t(d, m, "role", SL_J_STR), "system")) {
            continue;
        }
        snprintf(where, sizeof(where), "messages.%d.content", mi);
        if (sl_ap_nat_system_value(n, sl_json_get(d, m, "content"), where, fn, arg, count) != 0) {
            return -1;
        }
    }
    return 0;
}

int
sl_ap_nat_tool_name(const sl_ap_nat_t *n, int before, int id_tok)
{
    const sl_jdoc_t *d = n->d;
    int m, mi = 0, end = SL_JSON_END(d, n->msgs), found = -1;
    sl_str_t want = sl_json_sv(d, id_tok);

    for (m = n->msgs + 1; m < end && mi < before; m = SL_JSON_NEXT(d, m), mi++) {
        int c = sl_json_get_t(d, m, "content", SL_J_ARR);
        int b, cend;

        if (c < 0) {
            continue;
        }
        cend = SL_JSON_END(d, c);
        for (b = c + 1; b < cend; b = SL_JSON_NEXT(d, b)) {
            int id;

            if (d->t[b].type != SL_J_OBJ ||
                !sl_json_str_eq(d, sl_json_get_t(d, b, "type", SL_J_STR), "tool_use")) {
                continue;
            }
            id = sl_json_get_t(d, b, "id", SL_J_STR);
            if (id >= 0 && d->t[id].len == want.len &&
                memcmp(d->src + d->t[id].start, want.ptr, want.len) == 0) {
                found = sl_json_get_t(d, b, "name", SL_J_STR); /* the latest wins */
            }
        }
    }
    return found;
}

static int
sl_ap_nat_types(sl_ap_nat_t *n)
{
    static const struct {
        const char *key;
        sl_jtype_t type;
        const char *what;
    } fields[] = {
        {"model", SL_J_STR, "a string"},        {"max_tokens", SL_J_NUM, "an integer >= 1"},
        {"temperature", SL_J_NUM, "a number"},  {"top_p", SL_J_NUM, "a number"},
        {"top_k", SL_J_NUM, "an integer >= 0"}, {"stop_sequences", SL_J_ARR, "an array of strings"},
        {"tools", SL_J_ARR, "an array"},        {"tool_choice", SL_J_OBJ, "an object"},
        {"thinking", SL_J_OBJ, "an object"},
    };
    const sl_jdoc_t *d = n->d;
    size_t i;
    int t, e;
    int64_t v;

    for (i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
        t = sl_json_get(d, 0, fields[i].key);
        if (t >= 0 && d->t[t].type != fields[i].type) {
            return sl_ap_nat_fail(n, 400, "%s: must be %s", fields[i].key, fields[i].what);
        }
    }
    t = sl_json_get(d, 0, "max_tokens");
    if (t >= 0 && (sl_json_int(d, t, &v) != 0 || v < 1)) {
        return sl_ap_nat_fail(n, 400, "max_tokens: must be an integer >= 1");
    }
    t = sl_json_get(d, 0, "top_k");
    if (t >= 0 && (sl_json_int(d, t, &v) != 0 || v < 0)) {
        return sl_ap_nat_fail(n, 400, "top_k: must be an integer >= 0");
    }
    t = sl_json_get(d, 0, "stream");
    if (t >= 0 && d->t[t].type != SL_J_TRUE && d->t[t].type != SL_J_FALSE) {
        return sl_ap_nat_fail(n, 400, "stream: must be a boolean");
    }
    t = sl_json_get(d, 0, "stop_sequences");
    for (e = t + 1; t >= 0 && e < SL_JSON_END(d, t); e = SL_JSON_NEXT(d, e)) {
        if (d->t[e].type != SL_J_STR) {
            return sl_ap_nat_fail(n, 400, "stop_sequences: must be an array of strings");
        }
    }
    t = sl_json_get(d, 0, "tools");
    for (e = t + 1, i = 0; t >= 0 && e < SL_JSON_END(d, t); e = SL_JSON_NEXT(d, e), i++) {
        int schema = d->t[e].type == SL_J_OBJ ? sl_json_get(d, e, "input_schema") : -1;

        if (d->t[e].type != SL_J_OBJ) {
            return sl_ap_nat_fail(n, 400, "tools.%zu: must be an object", i);
        }
        if (schema >= 0 && d->t[schema].type != SL_J_OBJ) {
            return sl_ap_nat_fail(n, 400, "tools.%zu.input_schema: must be an object", i);
        }
    }
    t = sl_json_get(d, 0, "tool_choice");
    if (t >= 0) {
        int ct = sl_json_get_t(d, t, "type", SL_J_STR);

        if (!sl_json_str_eq(d, ct, "auto") && !sl_json_str_eq(d, ct, "any") &&
            !sl_json_str_eq(d, ct, "tool") && !sl_json_str_eq(d, ct, "none")) {
            return sl_ap_nat_fail(n, 400, "tool_choice.type: must be auto, any, tool or none");
        }
        if (sl_json_str_eq(d, ct, "tool") && sl_json_get_t(d, t, "name", SL_J_STR) < 0) {
            return sl_ap_nat_fail(n, 400, "tool_choice.name: required for type tool");
        }
    }
    t = sl_json_get(d, 0, "thinking");
    if (t >= 0) {
        int ty = sl_json_get_t(d, t, "type", SL_J_STR);

        if (!sl_json_str_eq(d, ty, "enabled") && !sl_json_str_eq(d, ty, "disabled") &&
            !sl_json_str_eq(d, ty, "adaptive")) {
            return sl_ap_nat_fail(n, 400, "thinking.type: must be enabled, disabled or adaptive");
        }
        e = sl_json_get(d, t, "budget_tokens");
        if (e >= 0 && (sl_json_int(d, e, &v) != 0 || v < 0)) {
            return sl_ap_nat_fail(n, 400, "thinking.budget_tokens: must be an integer >= 0");
        }
    }
    return 0;
}

int
sl_ap_nat_begin(sl_ap_nat_t *n, const sl_ap_target_t *conf, const char *body, size_t len,
                sl_jdoc_t *d, sl_ap_buf_t *out, sl_ap_req_info_t *info)
{
    int rc, model, stream, m, end, mi = 0;

    memset(n, 0, sizeof(*n));
    n->conf = conf;
    n->d = d;
    n->out = out;
    n->info = info;
    n->system = -1;
    info->status = 0;
    info->errmsg[0] = '\0';
    rc = sl_json_parse(d, body, len);
    if (rc == -2) {
        return -2;
    }
    if (rc != 0) {
        return sl_ap_nat_fail(n, 400, "invalid JSON in request body: %s at offset %zu", d->err,
                              d->err_off);
    }
    if (d->t[0].type != SL_J_OBJ) {
        return sl_ap_nat_fail(n, 400, "request body must be a JSON object");
    }
    if (sl_ap_policy_dups(conf, d, info) != 0 || sl_ap_nat_types(n) != 0) {
        return -1;
    }
    model = sl_json_get(d, 0, "model");
    if (model >= 0 && d->t[model].len > 0) {
        if (conf->model_name && !sl_json_str_eq(d, model, conf->model_name) &&
            !(conf->model_alias && sl_json_str_eq(d, model, conf->model_alias))) {
            return sl_ap_nat_fail(n, 400, "cannot use own model - must be: %s", conf->model_name);
        }
        if (conf->model_name) {
            info->model = (sl_str_t){conf->model_name, strlen(conf->model_name)};
        } else if (d->t[model].esc) {
            return sl_ap_nat_fail(n, 400, "model: escapes are not accepted in a model name");
        } else {
            info->model = sl_json_sv(d, model);
        }
    } else if (conf->model_name) {
        info->model = (sl_str_t){conf->model_name, strlen(conf->model_name)};
    } else {
        return sl_ap_nat_fail(n, 400,
                              "model parameter not found in request, nor in gateway configuration");
    }
    n->msgs = sl_json_get_t(d, 0, "messages", SL_J_ARR);
    if (n->msgs < 0) {
        return sl_ap_nat_fail(n, 400, "messages: field required (an array)");
    }
    if (SL_JSON_END(d, n->msgs) == n->msgs + 1) {
        return sl_ap_nat_fail(n, 400, "messages: at least one message is required");
    }
    end = SL_JSON_END(d, n->msgs);
    for (m = n->msgs + 1; m < end; m = SL_JSON_NEXT(d, m), mi++) {
        int role = d->t[m].type == SL_J_OBJ ? sl_json_get_t(d, m, "role", SL_J_STR) : -1;
        int c = d->t[m].type == SL_J_OBJ ? sl_json_get(d, m, "content") : -1;

        if (!sl_json_str_eq(d, role, "user") && !sl_json_str_eq(d, role, "assistant") &&
            !sl_json_str_eq(d, role, "system")) {
            return sl_ap_nat_fail(n, 400, "messages.%d.role: must be user or assistant", mi);
        }
        if (c < 0 || (d->t[c].type != SL_J_STR && d->t[c].type != SL_J_ARR)) {
            return sl_ap_nat_fail(n, 400, "messages.%d.content: must be a string or an array", mi);
        }
    }
    n->system = sl_json_get(d, 0, "system");
    if (n->system >= 0 && d->t[n->system].type != SL_J_STR && d->t[n->system].type != SL_J_ARR &&
        d->t[n->system].type != SL_J_NULL) {
        return sl_ap_nat_fail(n, 400, "system: must be a string or an array of text blocks");
    }
    stream = sl_json_get(d, 0, "stream");
    info->stream = stream >= 0 && d->t[stream].type == SL_J_TRUE;
    if (info->stream && conf->response_streaming == SL_AP_STREAM_DENY) {
        return sl_ap_nat_fail(n, 400, "response streaming is not enabled for this LLM");
    }
    if (conf->response_streaming == SL_AP_STREAM_ALWAYS) {
        info->stream = 1;
    }
    info->input_estimate = sl_ap_estimate_tokens(d);
    return 0;
}
