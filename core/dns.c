/* dns.c - placeholder, being written */
