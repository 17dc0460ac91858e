/* decision: POST /api/v1/insights/{id}/decision (API.md, "Insights"): a person's accept or
 * dismiss of an insight, with reason and actor, recorded on the primary in one transaction
 * with its history row and, for an accept, its outbox row (sql/functions/72_decisions.sql).
 * docs/insights.md, "Decisions", gives the rules. */
#pragma once

#include "api.h"

/* The handler (api.h's api_handler, routed by daemon/routes.c as RUNS_WRITE under
 * triage_token): req->param is the id, req->body the JSON
 * {"decision":"accept"|"dismiss","reason":"...","actor":"..."}. 200 with the insight and
 * its history; 400 for a body that is not that; 404 for an unknown id; 409 for a dismiss
 * of an accepted or delivered insight. */
api_handler decision_post;
