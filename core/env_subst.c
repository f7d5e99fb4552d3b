/* env_subst.c - placeholder, being written */
