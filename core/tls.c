/* tls.c - placeholder, being written */
