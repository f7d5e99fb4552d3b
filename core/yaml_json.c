/* yaml_json.c - placeholder, being written */
