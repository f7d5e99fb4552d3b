/* notify.h - tell the service manager (systemd, Type=notify) what the master
 * is doing.  A no-op when sluice is built without libsystemd or when it is
 * not started by systemd (no $NOTIFY_SOCKET). */

#ifndef SL_NOTIFY_H
#define SL_NOTIFY_H

typedef enum sl_notify_state {
    SL_NOTIFY_READY,     /* listening, workers started; also: a reload ended */
    SL_NOTIFY_RELOADING, /* SIGHUP taken: loading the configuration again */
    SL_NOTIFY_STOPPING,  /* graceful or immediate stop begun */
} sl_notify_state_t;

/* Send one state change.  Failures are logged at debug level only: the
 * service manager's absence must never stop the gateway. */
void sl_notify(sl_notify_state_t state);

#endif
