/* utf8.h - well-formed UTF-8 (RFC 3629) for JSON the core writes out: the
 * log record (plugin/serializer.c) and the entities' JSON it copies, made
 * valid once when the configuration is loaded (conf/config.c). */

#ifndef SL_UTF8_H
#define SL_UTF8_H

#include "base/strbuf.h"

/* How many bytes of s[0..n) belong to ill-formed sequences (each one is
 * written as \ufffd by sl_utf8_fix_json): 0 for valid UTF-8.  ASCII is
 * skipped 32 bytes at a time. */
size_t sl_utf8_bad_bytes(const char *s, size_t n);

/* s[0..n), JSON text whose bytes >= 0x80 are all inside strings, with each
 * byte of an ill-formed sequence replaced by the escape \ufffd (as Go's
 * encoding/json does), appended to out.  `bad`: sl_utf8_bad_bytes(s, n). */
void sl_utf8_fix_json(sl_strbuf_t *out, const char *s, size_t n, size_t bad);

/* A malloc'd, NUL-terminated copy of JSON text s made valid UTF-8 as
 * sl_utf8_fix_json does (s itself copied when it is valid). */
char *sl_utf8_json_dup(const char *s);

#endif
