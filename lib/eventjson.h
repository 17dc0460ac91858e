/* eventjson: normalized rows as JSON, for the fixture tests' .expect files and for
 * debugging; field names match the database columns. */
#pragma once

#include <jansson.h>

struct event_list;

/* A new JSON array of the events, owned by the caller; NULL on OOM. */
json_t *eventjson_dump(const struct event_list *l);
