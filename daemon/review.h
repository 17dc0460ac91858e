/* review: GET /api/v1/review, the agenda of the recurring review where support,
 * development and operations meet (API.md, "Insights"; docs/review.md), per service, as
 * JSON or as Markdown (format=markdown), read by the store (sql/functions/78_review.sql). */
#pragma once

#include "api.h"

/* The handler (api.h's api_handler), routed by daemon/routes.c: 0 with the JSON answer, or
 * REPLY_MARKDOWN (daemon/reply.h) with the Markdown as a JSON string. */
api_handler review_agenda;
