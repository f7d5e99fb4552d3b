/* version.h - `sluice -V`: version, plugin ABI, libraries built with. */

#ifndef SL_VERSION_H
#define SL_VERSION_H

#include <stdio.h>

void sl_version_print(FILE *out);

#endif
