/* notify.c - sd_notify() state changes for systemd (see notify.h). */

#include "proc/notify.h"
#include "sl_build_config.h"

#if SL_HAVE_SYSTEMD

#include <string.h>
#include <systemd/sd-daemon.h>
#include <time.h>

#include "base/log.h"

static const char *const notify_text[] = {
    [SL_NOTIFY_READY] = "READY=1\nSTATUS=serving",
    [SL_NOTIFY_RELOADING] = "RELOADING=1\nSTATUS=reloading the configuration",
    [SL_NOTIFY_STOPPING] = "STOPPING=1\nSTATUS=stopping",
};

void
sl_notify(sl_notify_state_t state)
{
    struct timespec ts;
    int rc;

    if (state == SL_NOTIFY_RELOADING) {
        /* MONOTONIC_USEC lets systemd >= 253 (Type=notify-reload) match the
         * READY=1 that ends this reload; older versions ignore it. */
        clock_gettime(CLOCK_MONOTONIC, &ts);
        rc = sd_notifyf(0, "%s\nMONOTONIC_USEC=%llu", notify_text[state],
                        (unsigned long long)ts.tv_sec * 1000000ull +
                            (unsigned long long)ts.tv_nsec / 1000ull);
    } else {
        rc = sd_notify(0, notify_text[state]);
    }
    if (rc < 0)
        sl_log_debug("sd_notify: %s", strerror(-rc));
}

#else

void
sl_notify(sl_notify_state_t state)
{
    (void)state;
}

#endif
