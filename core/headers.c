/* headers.c - placeholder, being written */
