/* replay: POST /api/v1/replay as a background job. One job at a time runs on a thread of
 * its own with a database connection of its own, in chunks of a transaction each, so
 * intake and health keep answering while it goes; an advisory lock holds "one at a time"
 * across every daemon on the database. */
#pragma once

#include <jansson.h>

#include "api.h"

struct config;

struct replay;

/* A job machinery with no job yet, connecting with conninfo (copied), telling mirror
 * (borrowed; it must outlive the replay) what it changed. NULL on OOM. */
struct mirror;
struct replay *replay_new(const char *conninfo, struct mirror *mirror);

/* Stops a running job after its current chunk (its status becomes "failed", the tables
 * stay as far as it got: the next replay rebuilds them), waits for its thread, and frees
 * everything; NULL-safe, returns NULL. No request may be using r any more. */
struct replay *replay_free(struct replay *r);

/* Starts a job under cfg (borrowed for the job's lifetime: configs are retired, never freed
 * while the process runs). Returns 0 with {"job":..,"status":"running"}, -EBUSY (409) when a
 * job runs here or on another daemon sharing the database (the error names it, and the body
 * carries "job" and "status"), or -EAGAIN (503); *ret_body is a new document the caller
 * owns in every case. Thread-safe. */
int replay_start(struct replay *r, const struct config *cfg, json_t **ret_body);

/* The current or last job, as API.md's GET /api/v1/replay: 0 and a new document the
 * caller owns. Thread-safe. */
int replay_status(struct replay *r, json_t **ret_body);

/* POST /api/v1/replay: replay_start() on api->replay, 202 (REPLY_ACCEPTED) once started. */
api_handler replay_post;

/* GET /api/v1/replay: replay_status(). */
api_handler replay_get;
