/* main.c - command line entry: settings, `-t`, then the master. */

#include <stdio.h>
#include <stdlib.h>

#include "base/log.h"
#include "proc/master.h"
#include "proc/version.h"

int
main(int argc, char **argv)
{
    sl_settings_t s;
    sl_plugin_registry_t reg;
    sl_conf_t *conf = NULL;
    sl_errors_t errs = {0};
    int rc;

    sl_settings_defaults(&s);
    rc = sl_settings_from_args(&s, argc, argv);
    if (rc != 0) {
        if (rc > 0 && s.show_version)
            sl_version_print(stdout);
        sl_settings_free(&s);
        return rc > 0 ? 0 : 1;
    }
    sl_log_level = s.log_level;
    sl_settings_publish(&s); /* api->setting_get, in the master and the workers */

    if (sl_master_load(&s, &reg, &conf, &errs) != SL_OK) {
        for (size_t i = 0; i < errs.n; i++)
            fprintf(stderr, "%s\n", errs.msgs[i]);
        fprintf(stderr, "sluice: configuration %s has %zu error(s)\n",
                s.declarative_config ? s.declarative_config : "(none)", errs.n);
        sl_errors_free(&errs);
        sl_plugins_free(&reg);
        sl_settings_free(&s);
        return 1;
    }
    if (s.test_only) {
        printf("configuration ok\n");
        sl_conf_free(conf);
        sl_plugins_free(&reg);
        sl_settings_free(&s);
        return 0;
    }
    rc = sl_master_run(&s, &reg, conf);
    sl_settings_free(&s);
    return rc;
}
