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
/* A header name's bit, one of 64, from its length (cut as written) and
 * its first and last bytes with bit 0x20 set (the same for a capital and
 * its small letter): names equal but for case share one, so no bit seen
 * twice in a list means no repeated name. */
static inline uint64_t
sl_ser_name_bit(sl_str_t name)
{
    size_t n = name.len < SL_RECORD_HEADER_NAME_MAX ? name.len : SL_RECORD_HEADER_NAME_MAX;
    const unsigned char *s = (const unsigned char *)name.ptr;

    if (n == 0)
        return 1;
    return 1ull << ((n + (s[0] | 0x20u) * 7u + (s[n - 1] | 0x20u) * 3u) & 63u);
}

/* Is a header name (cut at n bytes) one to write as "REDACTED"?  When
 * always_redact, authorization and proxy-authorization; and the names in
 * redact (NULL-terminated), case aside. */
int sl_ser_redacted(const char *s, size_t n, const char *const *redact, int always_redact);

/* A header list as the record's object of it, `{"name":"value",...}`
 * (names lower-cased, values redacted as sl_ser_redacted says), with one
 * check of room for the whole list: SL_OK; SL_DECLINED, nothing written,
 * when two names share a bit (sl_ser_name_bit: maybe a repeated name,
 * which the caller writes as an array). */
int sl_ser_json_headers_once(sl_strbuf_t *b, const sl_headers_t *h, const char *const *redact,
                             int always_redact);

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
