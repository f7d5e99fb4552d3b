/* serializer.c - placeholder, being written */
