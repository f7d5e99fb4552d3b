/* prom_scrape.c - how long one GET /metrics of the prometheus plugin takes
 * for N series (default 10,000): fills the default 5 MiB zone with N
 * kong_http_requests_total series, as the plugin's log phase would, then
 * times the exporter (copy out, sort, format) over 20 runs. */

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "base/shm.h"
#include "plugin/host.h"
#include "prometheus.h"

static int
sink(void *w, const char *data, size_t len)
{
    (void)data;
    *(size_t *)w += len;
    return 0;
}

static double
now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int
cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int
main(int argc, char **argv)
{
    int n = argc > 1 ? atoi(argv[1]) : 10000;
    char err[256], key[256];
    prom_conf_t conf = {0};
    double t[20];
    size_t bytes = 0;

    conf.zone = sl_shm_zone_get(PROM_ZONE, (size_t)PROM_ZONE_SIZE_DEFAULT, 0, err, sizeof(err));
    if (conf.zone == NULL) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    for (int i = 0; i < n; i++) {
        int len = snprintf(key, sizeof(key), "%cservice-%d%croute-%d%c200%cservice%cdefault%c%c%c",
                           PROM_HTTP_REQUESTS, i % 100, PROM_SEP, i, PROM_SEP, PROM_SEP, PROM_SEP,
                           PROM_SEP, PROM_SEP, PROM_END);
        key[len++] = PROM_PART_VALUE;
        if (sl_shm_incr(conf.zone, (sl_str_t){key, (size_t)len}, i + 1, 0, NULL) != 0) {
            fprintf(stderr, "zone full at %d\n", i);
            return 1;
        }
    }
    for (int r = 0; r < 20; r++) {
        bytes = 0;
        double t0 = now_ms();
        prom_export(&sl_api, &conf, sink, &bytes);
        t[r] = now_ms() - t0;
    }
    qsort(t, 20, sizeof(t[0]), cmp);
    printf("{\"series\":%d,\"bytes\":%zu,\"scrape_ms_median\":%.2f,\"scrape_ms_min\":%.2f,"
           "\"scrape_ms_max\":%.2f}\n",
           n, bytes, t[10], t[0], t[19]);
    return 0;
}
