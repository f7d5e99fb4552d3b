/* fake_api.h - a stand-in sl_api_t for file-log's unit tests (no core). */

#ifndef SL_TEST_FAKE_API_H
#define SL_TEST_FAKE_API_H

#include <stddef.h>
#include <stdint.h>

#include <sluice/plugin.h>

/* The fake request: log_serialize returns `record` (a JSON object) with
 * every serialize value merged in, and remembers the redact list. */
struct sl_req {
    const char *record;
    size_t record_len;
    void *values;       /* json_object *, serialize values */
    char redacted[256]; /* "x-api-key,api-key," as last passed */
    char *out;          /* what log_serialize returned */
};

extern const sl_api_t fake_api;

/* Messages from conf_error ("field: message\n" each) and log (one per line). */
extern char fake_conf_errors[8192];
extern char fake_log_lines[8192];
extern int fake_log_count;

void fake_reset(void);
void fake_bump_reopen_generation(void);

void fake_req_init(sl_req_t *r, const char *record, size_t len);
void fake_req_done(sl_req_t *r);

/* config_parse through the descriptor; returns its result. */
int fake_parse(const char *json, void **conf);

#endif
