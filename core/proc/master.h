/* master.h - the supervising master process. */

#ifndef SL_MASTER_H
#define SL_MASTER_H

#include "conf/config.h"
#include "conf/settings.h"

/* Load the plugins and the declarative config named by s.  On failure every
 * problem is in errs and SL_ERROR is returned. */
int sl_master_load(const sl_settings_t *s, sl_plugin_registry_t *reg, sl_conf_t **conf,
                   sl_errors_t *errs);

/* Bind, fork workers, supervise until stopped.  Takes ownership of reg and
 * conf.  Returns the process exit status. */
int sl_master_run(sl_settings_t *s, sl_plugin_registry_t *reg, sl_conf_t *conf);

#endif
