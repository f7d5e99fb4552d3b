/* env_subst.c - decK's template step: `${{ env "DECK_X" }}` is replaced by
 * the environment variable before the YAML is parsed, with optional pipes
 * `| toInt`, `| toFloat`, `| toBool` (typed: the text produced is a YAML
 * scalar of that type) and `| indent N`.
 *
 * decK renders the file as a Go template; we implement the subset decK
 * documents, with decK's own error texts.  Lines whose first non-blank
 * character is '#' are copied untouched, so commented-out references to
 * unset variables do not fail. */

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "conf/config.h"

typedef struct sl_sbuf {
    char *p;
    size_t n, cap;
} sl_sbuf_t;

static void
sb_add(sl_sbuf_t *b, const char *s, size_t n)
{
    if (b->n + n + 1 > b->cap) {
        while (b->n + n + 1 > b->cap)
            b->cap = b->cap ? b->cap * 2 : 256;
        b->p = sl_xrealloc(b->p, b->cap);
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = '\0';
}

typedef enum { SL_TV_STR, SL_TV_INT, SL_TV_FLOAT, SL_TV_BOOL } sl_tv_type_t;

typedef struct sl_tmpl {
    const char *name;    /* file name for messages */
    const char *p, *end; /* cursor inside the action */
    int line;            /* line of the action's "${{" */
    sl_errors_t *errs;
} sl_tmpl_t;

static void
skip_ws(sl_tmpl_t *t)
{
    while (t->p < t->end && (*t->p == ' ' || *t->p == '\t' || *t->p == '\n' || *t->p == '\r'))
        t->p++;
}

static int
at_close(sl_tmpl_t *t)
{
    return t->end - t->p >= 2 && t->p[0] == '}' && t->p[1] == '}';
}

/* An identifier (function name); returns its length (0 if none). */
static size_t
lex_ident(sl_tmpl_t *t, const char **start)
{
    *start = t->p;
    while (t->p < t->end && (((*t->p | 0x20) >= 'a' && (*t->p | 0x20) <= 'z') ||
                             (*t->p >= '0' && *t->p <= '9') || *t->p == '_'))
        t->p++;
    return (size_t)(t->p - *start);
}

/* A Go string literal: "..." with backslash escapes, or `raw`. Returns a
 * malloc'd string, or NULL (error added). */
static char *
lex_string(sl_tmpl_t *t)
{
    sl_sbuf_t b = {0};
    char q;

    if (t->p >= t->end || (*t->p != '"' && *t->p != '`')) {
        sl_errors_add(t->errs, "%s:%d: expected a quoted string after env", t->name, t->line);
        return NULL;
    }
    q = *t->p++;
    sb_add(&b, "", 0);
    while (t->p < t->end && *t->p != q) {
        char c = *t->p++;
        if (q == '"' && c == '\\' && t->p < t->end) {
            c = *t->p++;
            c = c == 'n' ? '\n' : c == 't' ? '\t' : c;
        } else if (q == '"' && c == '\n') {
            break;
        }
        sb_add(&b, &c, 1);
    }
    if (t->p >= t->end || *t->p != q) {
        sl_errors_add(t->errs, "%s:%d: unterminated quoted string", t->name, t->line);
        free(b.p);
        return NULL;
    }
    t->p++;
    return b.p;
}

static char *
fmt_float(double d)
{
    char buf[64];

    if (isnan(d))
        return sl_strndup(".nan", 4);
    if (isinf(d))
        return d < 0 ? sl_strndup("-.inf", 5) : sl_strndup(".inf", 4);
    /* shortest text that reads back as the same double */
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(buf, sizeof(buf), "%.*g", prec, d);
        if (strtod(buf, NULL) == d)
            break;
    }
    if (strpbrk(buf, ".e") == NULL)
        strcat(buf, ".0"); /* keep it a YAML float, not an int */
    return sl_strndup(buf, strlen(buf));
}

/* Apply one pipe function to the current value (in place). */
static int
apply_func(sl_tmpl_t *t, const char *fn, size_t fnlen, char **val, sl_tv_type_t *type)
{
    char *v = *val, *end, *out = NULL;

    if (fnlen == 5 && !memcmp(fn, "toInt", 5)) {
        long long i;
        errno = 0;
        i = strtoll(v, &end, 10);
        if (*v == '\0' || *end != '\0' || errno != 0 || *v == ' ') {
            sl_errors_add(t->errs, "%s:%d: strconv.Atoi: parsing \"%s\": %s", t->name, t->line, v,
                          errno == ERANGE ? "value out of range" : "invalid syntax");
            return SL_ERROR;
        }
        if (asprintf(&out, "%lld", i) < 0)
            abort();
        *type = SL_TV_INT;
    } else if (fnlen == 7 && !memcmp(fn, "toFloat", 7)) {
        double d;
        errno = 0;
        d = strtod(v, &end);
        if (*v == '\0' || *end != '\0' || *v == ' ') {
            sl_errors_add(t->errs, "%s:%d: strconv.ParseFloat: parsing \"%s\": invalid syntax",
                          t->name, t->line, v);
            return SL_ERROR;
        }
        out = fmt_float(d);
        *type = SL_TV_FLOAT;
    } else if (fnlen == 6 && !memcmp(fn, "toBool", 6)) {
        static const char *const yes[] = {"1", "t", "T", "TRUE", "true", "True"};
        static const char *const no[] = {"0", "f", "F", "FALSE", "false", "False"};
        for (size_t i = 0; i < sl_nelems(yes) && out == NULL; i++) {
            if (!strcmp(v, yes[i]))
                out = sl_strndup("true", 4);
            else if (!strcmp(v, no[i]))
                out = sl_strndup("false", 5);
        }
        if (out == NULL) {
            sl_errors_add(t->errs, "%s:%d: strconv.ParseBool: parsing \"%s\": invalid syntax",
                          t->name, t->line, v);
            return SL_ERROR;
        }
        *type = SL_TV_BOOL;
    } else if (fnlen == 6 && !memcmp(fn, "indent", 6)) {
        const char *ns;
        size_t nl;
        long n;
        sl_sbuf_t b = {0};
        skip_ws(t);
        nl = lex_ident(t, &ns);
        n = nl ? strtol(ns, &end, 10) : -1;
        if (nl == 0 || end != ns + nl || n < 0 || n > 1000) {
            sl_errors_add(t->errs, "%s:%d: indent needs a number of spaces", t->name, t->line);
            return SL_ERROR;
        }
        sb_add(&b, "", 0);
        for (const char *c = v; *c; c++) {
            sb_add(&b, c, 1);
            for (long k = 0; *c == '\n' && k < n; k++)
                sb_add(&b, " ", 1);
        }
        out = b.p;
    } else {
        sl_errors_add(t->errs, "%s:%d: function \"%.*s\" not defined", t->name, t->line, (int)fnlen,
                      fn);
        return SL_ERROR;
    }
    free(*val);
    *val = out;
    return SL_OK;
}

/* Evaluate one action; t->p is just after "${{".  On success appends the
 * result to out and leaves t->p after "}}". */
static int
eval_action(sl_tmpl_t *t, sl_sbuf_t *out)
{
    const char *fn;
    size_t fnlen;
    char *var, *val;
    const char *env;
    sl_tv_type_t type = SL_TV_STR;

    skip_ws(t);
    fnlen = lex_ident(t, &fn);
    if (fnlen != 3 || memcmp(fn, "env", 3) != 0) {
        if (fnlen == 0)
            sl_errors_add(t->errs,
                          "%s:%d: unsupported template expression (expected env \"DECK_NAME\")",
                          t->name, t->line);
        else
            sl_errors_add(t->errs, "%s:%d: function \"%.*s\" not defined", t->name, t->line,
                          (int)fnlen, fn);
        return SL_ERROR;
    }
    skip_ws(t);
    if ((var = lex_string(t)) == NULL)
        return SL_ERROR;
    if (strncmp(var, "DECK_", 5) != 0) {
        sl_errors_add(t->errs,
                      "%s:%d: environment variables in the state file must be "
                      "prefixed with 'DECK_', found: '%s'",
                      t->name, t->line, var);
        free(var);
        return SL_ERROR;
    }
    if ((env = getenv(var)) == NULL) {
        sl_errors_add(t->errs, "%s:%d: environment variable '%s' present in state file but not set",
                      t->name, t->line, var);
        free(var);
        return SL_ERROR;
    }
    free(var);
    val = sl_strndup(env, strlen(env));
    for (;;) {
        skip_ws(t);
        if (at_close(t))
            break;
        if (t->p >= t->end || *t->p != '|') {
            sl_errors_add(t->errs, "%s:%d: unexpected \"%c\" in template expression", t->name,
                          t->line, t->p < t->end ? *t->p : ' ');
            free(val);
            return SL_ERROR;
        }
        t->p++;
        skip_ws(t);
        fnlen = lex_ident(t, &fn);
        if (apply_func(t, fn, fnlen, &val, &type) != SL_OK) {
            free(val);
            return SL_ERROR;
        }
    }
    t->p += 2;
    sb_add(out, val, strlen(val));
    free(val);
    (void)type;
    return SL_OK;
}

char *
sl_conf_env_substitute(const char *name, const char *buf, size_t len, sl_errors_t *errs)
{
    sl_sbuf_t out = {0};
    const char *p = buf, *end = buf + len;
    int line = 1, failed = 0, line_start = 1;

    sb_add(&out, "", 0);
    while (p < end) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        const char *q = p, *lend = eol ? eol + 1 : end;

        while (q < lend && (*q == ' ' || *q == '\t'))
            q++;
        if (line_start && q < lend && *q == '#') {
            sb_add(&out, p, (size_t)(lend - p));
            p = lend;
            line++;
            continue;
        }
        line_start = 0;
        /* copy up to the next action on this line */
        const char *a = p;
        while (a + 2 < lend && !(a[0] == '$' && a[1] == '{' && a[2] == '{'))
            a++;
        if (a + 2 >= lend) {
            sb_add(&out, p, (size_t)(lend - p));
            p = lend;
            line++;
            line_start = 1;
            continue;
        }
        sb_add(&out, p, (size_t)(a - p));
        sl_tmpl_t t = {.name = name, .p = a + 3, .end = end, .line = line, .errs = errs};
        const char *close = a + 3;
        while (close + 1 < end && !(close[0] == '}' && close[1] == '}'))
            close++;
        if (close + 1 >= end) {
            sl_errors_add(errs, "%s:%d: unclosed action", name, line);
            failed = 1;
            break;
        }
        if (eval_action(&t, &out) != SL_OK) {
            failed = 1;
            t.p = close + 2; /* skip it, keep checking the rest */
        }
        for (const char *c = a; c < t.p; c++)
            line += *c == '\n';
        p = t.p;
        if (p > buf && p[-1] == '\n')
            line_start = 1;
    }
    if (failed) {
        free(out.p);
        return NULL;
    }
    return out.p;
}
