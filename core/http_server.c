/* http_server.c - placeholder, being written */
