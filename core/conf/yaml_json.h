/* yaml_json.h - parse YAML (and JSON, which YAML flow style accepts) into a
 * json-c tree, remembering the source line of every node so that config
 * errors can say where the offending key is.
 *
 * Key paths: "services[0].routes[1].paths" - map keys joined with '.',
 * sequence items as "[n]"; the document root is "".  For a map entry the
 * line is the key's line; for a sequence item, the line the item starts on.
 *
 * OWNERSHIP: *root belongs to the caller (json_object_put); the line table
 * is freed with sl_yaml_lines_free(). */

#ifndef SL_YAML_JSON_H
#define SL_YAML_JSON_H

#include <json-c/json.h>

#include "base/common.h"
#include "base/errors.h"

typedef struct sl_yaml_lines sl_yaml_lines_t;

/* Parse one YAML document.  Scalar typing: quoted, block and !!str scalars
 * are strings; plain ones are null (null, Null, NULL, ~, empty), booleans
 * (true/True/TRUE, false/...), integers (decimal, 0x hex, 0o octal), floats
 * (incl. .inf/.nan) or else strings.  Anchors and aliases are supported (an
 * alias is a deep copy); merge keys ("<<") are not special.  Duplicate keys,
 * non-scalar keys and multiple documents are errors.  On error, messages
 * "name:line:column: ..." are added to errs and SL_ERROR is returned with
 * *root = NULL, *lines = NULL.  An empty document gives *root = NULL. */
int sl_yaml_parse(const char *name, const char *buf, size_t len, json_object **root,
                  sl_yaml_lines_t **lines, sl_errors_t *errs);

/* Line (1-based) of the node at `path`, or 0 if there is no such node. */
int sl_yaml_line(const sl_yaml_lines_t *lines, const char *path);

/* Like sl_yaml_line, but when `path` does not exist, the line of its
 * closest existing ancestor ("a.b[2].c" -> "a.b[2]" -> "a.b" -> "a");
 * 0 if none has a line. */
int sl_yaml_line_near(const sl_yaml_lines_t *lines, const char *path);

void sl_yaml_lines_free(sl_yaml_lines_t *lines);

#endif
