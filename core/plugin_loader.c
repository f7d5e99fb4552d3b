/* plugin_loader.c - placeholder, being written */
