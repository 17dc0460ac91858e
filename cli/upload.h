/* upload: an NDJSON body streamed to POST /api/v1/import with progress, and its answer
 * printed, for `import`, `import --fourkeys` and `import-git` alike. */
#pragma once

#include <jansson.h>
#include <stdint.h>

#include "client.h"
#include "ctl.h"

struct upload_source {
        client_producer produce;        /* makes the body as it is sent */
        void *arg;
        const uint64_t *pos;            /* how much of the input is read, for progress */
        uint64_t total;                 /* the input's size, or 0 when unknown */
};

/* Sends the body and prints the answer (text, or JSON under --json) with local_errors
 * (borrowed; lines the command refused itself, {"line","code","message"}) merged into its
 * errors by line. Returns CTL_OK, CTL_NO when some line was refused, or CTL_ERROR. */
int upload_import(const struct ctl *c, const struct upload_source *s, json_t *local_errors);
