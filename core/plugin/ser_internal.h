/* ser_internal.h - what the serializer's files share (plugin/ only): the
 * pending values plugins set (serializer.c keeps them, record_values.c
 * writes them) and the record's JSON string, name and number writers
 * (record_text.c). */

#ifndef SL_SER_INTERNAL_H
#define SL_SER_INTERNAL_H

#include "base/fmt.h"
#include "base/strbuf.h"
#include "http/request.h"

/* A value waiting to be put into the tree: set_serialize_string and
 * set_serialize_typed only copy (most records are never read back), the
 * first reader of the tree builds it; the record writes them straight from
 * this list when no tree was built (record_values.c). */
struct sl_ser_pending {
    struct sl_ser_pending *next;
    const char *key; /* pool copy, a dotted key checked by key_ok() */
    size_t klen;
    sl_value_type_t type;
    int64_t i;  /* BOOL, INT */
    double d;   /* DOUBLE, finite */
    sl_str_t s; /* STRING: pool copy */
};

/* Header names in the record are lower-cased and cut at this many bytes. */
#define SL_RECORD_HEADER_NAME_MAX 255

/* Every byte the text writers copied since sl_serialize began, OR-ed
 * together (SL_SER_HIGHS when text came from elsewhere): the record needs
 * its UTF-8 check only when some byte had its high bit set.  The loop
 * thread only, as the record's buffer (record_text.c). */
#define SL_SER_HIGHS 0x8080808080808080ull
extern uint64_t sl_ser_seen;

/* s[0..n) as a JSON string, escaped as json-c does (no escaping of '/'). */
void sl_ser_json_str(sl_strbuf_t *b, const char *s, size_t n);
/* A header name s[0..n) as the record's key: cut to
 * SL_RECORD_HEADER_NAME_MAX bytes, lower-cased, a JSON string, then ':'. */
void sl_ser_json_name(sl_strbuf_t *b, const char *s, size_t n);
/* One header as a member of the record's headers object: a ',' first
 * unless comma is 0, the name as sl_ser_json_name writes it, then the value
 * as a JSON string, or "REDACTED" when value is NULL; one call and one
 * check of room for the three. */
void sl_ser_json_header(sl_strbuf_t *b, int comma, sl_str_t name, const sl_str_t *value);

/* v in decimal. */
static inline __attribute__((always_inline)) void
sl_ser_json_int(sl_strbuf_t *b, int64_t v)
{
    sl_strbuf_need(b, SL_FMT_DEC_MAX + 1);
    b->len += sl_fmt_i64(b->p + b->len, v);
}
/* d as Kong's cjson writes numbers and the tree holds them: "%.14g". */
void sl_ser_json_double(sl_strbuf_t *b, double d);

/* Append the pending values as the record's trailing members (",name":value
 * for each top-level member, in the order json-c's tree would hold them:
 * a member set again keeps its place).  SL_OK; SL_DECLINED, with nothing
 * written, when a top-level name is one of `reserved` (the record's own
 * keys: the values merge into the record, serializer.c's job) or when the
 * values form more nodes than this writer keeps. */
int sl_ser_write_pending(sl_strbuf_t *b, const struct sl_ser_pending *head,
                         const char *const *reserved);

#endif
