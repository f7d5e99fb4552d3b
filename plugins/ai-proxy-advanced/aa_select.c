/* aa_select.c - which group of targets answers a request.
 *
 * In this order (docs/ai-proxy-advanced.md):
 *   1. an explicit "provider,model" in the request's model (claude-code-
 *      router's /model syntax): the targets of that provider and model.name;
 *   2. Claude Code scenarios, when `scenarios` names a group for them
 *      (sluice extension): image in the last user turn, long context (the
 *      local token estimate above long_context_threshold), background (a
 *      haiku-class model name), web search tool, thinking requested;
 *   3. the request's model: targets with that model_alias, else with that
 *      model.name, else the first glob alias (`claude-haiku-*`) matching it;
 *      no model at all: every target;
 *   otherwise Kong's 400 naming the accepted models.
 */

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "aa.h"

static int
sl_aa_ci_eq(char a, char b)
{
    if (a >= 'A' && a <= 'Z') {
        a = (char)(a + 32);
    }
    if (b >= 'A' && b <= 'Z') {
        b = (char)(b + 32);
    }
    return a == b;
}

int
sl_aa_glob(const char *pat, const char *s, size_t n)
{
    size_t i = 0, p = 0, star_p = (size_t)-1, star_i = 0;

    while (i < n) {
        if (pat[p] == '*') {
            star_p = ++p;
            star_i = i;
            continue;
        }
        if (pat[p] != '\0' && (pat[p] == '?' || sl_aa_ci_eq(pat[p], s[i]))) {
            p++;
            i++;
            continue;
        }
        if (star_p != (size_t)-1) {
            p = star_p;
            i = ++star_i;
            continue;
        }
        return 0;
    }
    while (pat[p] == '*') {
        p++;
    }
    return pat[p] == '\0';
}

static int
sl_aa_contains_ci(const char *s, const char *needle)
{
    size_t n = strlen(needle);

    for (; *s; s++) {
        if (strncasecmp(s, needle, n) == 0) {
            return 1;
        }
    }
    return 0;
}

/* a content array holding an image block (tool_result contents included) */
static int
sl_aa_has_image(const sl_jdoc_t *d, int content)
{
    if (content < 0 || d->t[content].type != SL_J_ARR) {
        return 0;
    }
    for (int b = SL_JSON_FIRST(d, content); b < SL_JSON_END(d, content); b = SL_JSON_NEXT(d, b)) {
        int ty;

        if (d->t[b].type != SL_J_OBJ) {
            continue;
        }
        ty = sl_json_get_t(d, b, "type", SL_J_STR);
        if (ty < 0) {
            continue;
        }
        if (sl_json_str_eq(d, ty, "image") || sl_json_str_eq(d, ty, "image_url")) {
            return 1;
        }
        if (sl_json_str_eq(d, ty, "tool_result") &&
            sl_aa_has_image(d, sl_json_get_t(d, b, "content", SL_J_ARR))) {
            return 1;
        }
    }
    return 0;
}

static int
sl_aa_scenario(const sl_aa_conf_t *c, const sl_jdoc_t *d, const char *model, int s)
{
    int msgs, tools, th, ty, last = -1;

    switch (s) {
    case SL_AA_SCEN_IMAGE:
        msgs = sl_json_get_t(d, 0, "messages", SL_J_ARR);
        if (msgs < 0) {
            return 0;
        }
        for (int m = SL_JSON_FIRST(d, msgs); m < SL_JSON_END(d, msgs); m = SL_JSON_NEXT(d, m)) {
            last = m;
        }
        if (last < 0 || d->t[last].type != SL_J_OBJ) {
            return 0;
        }
        ty = sl_json_get_t(d, last, "role", SL_J_STR);
        return ty >= 0 && sl_json_str_eq(d, ty, "user") &&
               sl_aa_has_image(d, sl_json_get(d, last, "content"));
    case SL_AA_SCEN_LONG_CONTEXT:
        return sl_ap_estimate_tokens(d) > c->long_context_threshold;
    case SL_AA_SCEN_BACKGROUND:
        return sl_aa_contains_ci(model, "haiku");
    case SL_AA_SCEN_WEB_SEARCH:
        tools = sl_json_get_t(d, 0, "tools", SL_J_ARR);
        if (tools < 0) {
            return 0;
        }
        for (int t = SL_JSON_FIRST(d, tools); t < SL_JSON_END(d, tools); t = SL_JSON_NEXT(d, t)) {
            if (d->t[t].type == SL_J_OBJ && (ty = sl_json_get_t(d, t, "type", SL_J_STR)) >= 0) {
                sl_str_t v = sl_json_sv(d, ty);

                if (v.len >= 10 && memcmp(v.ptr, "web_search", 10) == 0) {
                    return 1;
                }
            }
        }
        return 0;
    case SL_AA_SCEN_THINK:
        th = sl_json_get_t(d, 0, "thinking", SL_J_OBJ);
        if (th < 0) {
            return 0;
        }
        ty = sl_json_get_t(d, th, "type", SL_J_STR);
        return !(ty >= 0 && sl_json_str_eq(d, ty, "disabled"));
    default:
        return 0;
    }
}

static void
sl_aa_sel_init(sl_aa_sel_t *sel)
{
    sel->group = -1;
    sel->scenario = -1;
    sel->status = 0;
    sel->errmsg[0] = '\0';
    sel->model[0] = '\0';
}

/* sel->model from a JSON string's content (escaped form when esc). */
static int
sl_aa_set_model(sl_aa_sel_t *sel, const char *p, size_t n, int esc)
{
    size_t len;

    if (esc) {
        sl_ap_buf_t b = {0};

        if (sl_json_unescape(p, n, &b) != 0 || b.oom) {
            sl_ap_buf_free(&b);
            sel->status = 400;
            snprintf(sel->errmsg, sizeof(sel->errmsg), "model: invalid string");
            return -1;
        }
        len = b.len < sizeof(sel->model) - 1 ? b.len : sizeof(sel->model) - 1;
        memcpy(sel->model, b.ptr, len);
        sl_ap_buf_free(&b);
    } else {
        len = n < sizeof(sel->model) - 1 ? n : sizeof(sel->model) - 1;
        memcpy(sel->model, p, len);
    }
    sel->model[len] = '\0';
    return 0;
}

static int sl_aa_route(const sl_aa_conf_t *c, const sl_jdoc_t *d, sl_aa_sel_t *sel);

int
sl_aa_select(const sl_aa_conf_t *c, const sl_jdoc_t *d, sl_aa_sel_t *sel)
{
    int model;

    sl_aa_sel_init(sel);
    model = d->t[0].type == SL_J_OBJ ? sl_json_get(d, 0, "model") : -1;
    if (model >= 0 && d->t[model].type == SL_J_STR) {
        sl_str_t v = sl_json_sv(d, model);

        if (sl_aa_set_model(sel, v.ptr, v.len, d->t[model].esc) != 0) {
            return -1;
        }
    }
    return sl_aa_route(c, d, sel);
}

/* ---- the top-level "model" without parsing the whole body ---- */

static size_t
sl_aa_ws(const char *p, size_t i, size_t n)
{
    while (i < n && (p[i] == ' ' || p[i] == '\t' || p[i] == '\n' || p[i] == '\r')) {
        i++;
    }
    return i;
}

/* p[i] is a string's opening quote: the index after its closing one, 0 if
 * the string does not end */
static size_t
sl_aa_str_end(const char *p, size_t i, size_t n)
{
    i++;
    for (;;) {
        const char *q = i < n ? memchr(p + i, '"', n - i) : NULL;
        size_t j, k;

        if (q == NULL) {
            return 0;
        }
        j = (size_t)(q - p);
        for (k = j; k > i && p[k - 1] == '\\'; k--) {
        }
        if (((j - k) & 1) == 0) {
            return j + 1;
        }
        i = j + 1;
    }
}

/* the index after the value starting at p[i], 0 if malformed */
static size_t
sl_aa_skip(const char *p, size_t i, size_t n)
{
    size_t depth = 0;

    if (i >= n) {
        return 0;
    }
    if (p[i] == '"') {
        return sl_aa_str_end(p, i, n);
    }
    if (p[i] != '{' && p[i] != '[') {
        while (i < n && p[i] != ',' && p[i] != '}' && p[i] != ']' && p[i] != ' ' && p[i] != '\n' &&
               p[i] != '\r' && p[i] != '\t') {
            i++;
        }
        return i;
    }
    for (; i < n; i++) {
        char ch = p[i];

        if (ch == '"') {
            i = sl_aa_str_end(p, i, n);
            if (i == 0) {
                return 0;
            }
            i--;
        } else if (ch == '{' || ch == '[') {
            depth++;
        } else if ((ch == '}' || ch == ']') && --depth == 0) {
            return i + 1;
        }
    }
    return 0;
}

/* 1: the first top-level "model" is a string (copied to sel), 0: no such
 * key, -1: cannot tell cheaply (escaped keys, a non-string model, malformed
 * JSON): parse the body */
static int
sl_aa_top_model(const char *p, size_t n, sl_aa_sel_t *sel)
{
    size_t i = sl_aa_ws(p, 0, n);

    if (i >= n || p[i] != '{') {
        return -1;
    }
    i = sl_aa_ws(p, i + 1, n);
    if (i < n && p[i] == '}') {
        return 0;
    }
    while (i < n && p[i] == '"') {
        size_t ks = i + 1, ke = sl_aa_str_end(p, i, n), ve;

        if (ke == 0 || memchr(p + ks, '\\', ke - 1 - ks) != NULL) {
            return -1;
        }
        i = sl_aa_ws(p, ke, n);
        if (i >= n || p[i] != ':') {
            return -1;
        }
        i = sl_aa_ws(p, i + 1, n);
        if (ke - 1 - ks == 5 && memcmp(p + ks, "model", 5) == 0) {
            if (i >= n || p[i] != '"' || (ve = sl_aa_str_end(p, i, n)) == 0) {
                return -1;
            }
            return sl_aa_set_model(sel, p + i + 1, ve - i - 2,
                                   memchr(p + i + 1, '\\', ve - i - 2) != NULL) == 0
                       ? 1
                       : -1;
        }
        i = sl_aa_skip(p, i, n);
        if (i == 0) {
            return -1;
        }
        i = sl_aa_ws(p, i, n);
        if (i < n && p[i] == '}') {
            return 0;
        }
        if (i >= n || p[i] != ',') {
            return -1;
        }
        i = sl_aa_ws(p, i + 1, n);
    }
    return -1;
}

int
sl_aa_select_body(const sl_aa_conf_t *c, const char *body, size_t len, sl_aa_sel_t *sel)
{
    if (c->any_scenario) {
        return 1;
    }
    sl_aa_sel_init(sel);
    if (sl_aa_top_model(body, len, sel) < 0) {
        sel->model[0] = '\0';
        return 1;
    }
    return sl_aa_route(c, NULL, sel);
}

static int
sl_aa_route(const sl_aa_conf_t *c, const sl_jdoc_t *d, sl_aa_sel_t *sel)
{
    size_t len = strlen(sel->model);
    int gi;

    if (len > 0 && memchr(sel->model, ',', len) != NULL) {
        gi = sl_aa_group_find(c, sel->model, len, 1u << SL_AA_GK_EXPLICIT);
        if (gi < 0) {
            sel->status = 400;
            snprintf(sel->errmsg, sizeof(sel->errmsg),
                     "no target serves \"%s\" (provider,model) - must be one of: %s", sel->model,
                     c->accepted);
            return -1;
        }
        sel->group = gi;
        return 0;
    }
    if (c->any_scenario && d != NULL && d->t[0].type == SL_J_OBJ) {
        for (int s = 0; s < SL_AA_SCEN_MAX; s++) {
            if (c->scen[s] >= 0 && sl_aa_scenario(c, d, sel->model, s)) {
                sel->group = c->scen[s];
                sel->scenario = s;
                return 0;
            }
        }
    }
    if (len == 0) {
        sel->group = c->all_group;
        return 0;
    }
    gi = sl_aa_group_find(c, sel->model, len, 1u << SL_AA_GK_ALIAS);
    if (gi < 0) {
        gi = sl_aa_group_find(c, sel->model, len, 1u << SL_AA_GK_NAME);
    }
    for (size_t i = 0; gi < 0 && i < c->ng; i++) {
        if (c->g[i].kind == SL_AA_GK_GLOB && sl_aa_glob(c->g[i].key, sel->model, len)) {
            gi = (int)i;
        }
    }
    if (gi < 0) {
        sel->status = 400;
        snprintf(sel->errmsg, sizeof(sel->errmsg), "cannot use own model - must be one of: %s",
                 c->accepted);
        return -1;
    }
    sel->group = gi;
    return 0;
}
