/* no_symbol.c - a shared object without the sluice_plugin descriptor (a
 * library dropped into the plugins directory by mistake): refused. */

#include <sluice/plugin.h>

SL_PLUGIN_EXPORT int not_a_plugin = 1;
