/* insights: the upkeep that keeps the insights table current (API.md, "Insights"), on a
 * thread and a database connection of its own. Every second it takes the services the
 * ingest transactions marked (insight_dirty; several daemons share them, SKIP LOCKED) and
 * recomputes each from the rule functions (sql/functions/70_insights.sql); every hour, and
 * so when the day turns, it marks every service, since windows slide with the clock. */
#pragma once

#include "../lib/store_insights.h"

struct insights;

/* Starts the upkeep, connecting with conninfo (copied), with w's window and weights
 * (copied). Returns NULL on OOM or when the thread cannot start. */
struct insights *insights_start(const char *conninfo, const struct store_insight_weights *w);

/* Stops the thread (after the recompute under way, if any) and frees it; NULL-safe,
 * returns NULL. */
struct insights *insights_stop(struct insights *u);
