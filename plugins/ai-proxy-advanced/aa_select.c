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

int
sl_aa_select(const sl_aa_conf_t *c, const sl_jdoc_t *d, sl_aa_sel_t *sel)
{
    int model, gi;
    size_t len = 0;

    sel->group = -1;
    sel->scenario = -1;
    sel->status = 0;
    sel->errmsg[0] = '\0';
    sel->model[0] = '\0';

    model = d->t[0].type == SL_J_OBJ ? sl_json_get(d, 0, "model") : -1;
    if (model >= 0 && d->t[model].type == SL_J_STR) {
        sl_str_t v = sl_json_sv(d, model);

        if (d->t[model].esc) {
            sl_ap_buf_t b = {0};

            if (sl_json_unescape(v.ptr, v.len, &b) != 0 || b.oom) {
                sl_ap_buf_free(&b);
                sel->status = 400;
                snprintf(sel->errmsg, sizeof(sel->errmsg), "model: invalid string");
                return -1;
            }
            len = b.len < sizeof(sel->model) - 1 ? b.len : sizeof(sel->model) - 1;
            memcpy(sel->model, b.ptr, len);
            sl_ap_buf_free(&b);
        } else {
            len = v.len < sizeof(sel->model) - 1 ? v.len : sizeof(sel->model) - 1;
            memcpy(sel->model, v.ptr, len);
        }
        sel->model[len] = '\0';
        if (memchr(sel->model, '\0', len) != NULL) {
            len = strlen(sel->model);
        }
    }

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
    if (c->any_scenario && d->t[0].type == SL_J_OBJ) {
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
