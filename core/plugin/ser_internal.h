/* ser_internal.h - what the serializer's files share (plugin/ only): the
 * pending values plugins set (serializer.c keeps them, record_values.c
 * writes them) and the record's JSON string and number writers. */

#ifndef SL_SER_INTERNAL_H
#define SL_SER_INTERNAL_H

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

/* s[0..n) as a JSON string, escaped as json-c does (no escaping of '/'). */
void sl_ser_json_str(sl_strbuf_t *b, const char *s, size_t n);
/* v in decimal. */
void sl_ser_json_int(sl_strbuf_t *b, int64_t v);
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
