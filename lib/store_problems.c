/* store_problems: the read queries behind problems. */
#include "store_problems.h"

#include "error.h"

/* The columns of one problems row p, and how they read (store.h's kinds); the list adds the
 * keys of its incidents, the one-item view the incidents themselves. */
#define PROBLEM_COLUMNS                                                                    \
        "p.id, p.source, p.key, p.service, p.status, p.summary, p.workaround, "             \
        "dl_rfc3339(p.opened_at) AS opened_at, dl_rfc3339(p.resolved_at) AS resolved_at, "  \
        "dl_rfc3339(p.updated_at) AS updated_at"
#define PROBLEM_KINDS "nsssssssss"

static const char list_sql[] =
        "SELECT " PROBLEM_COLUMNS ", to_json(p.incidents)::text AS incidents FROM problems p "
        "WHERE NOT p.deleted AND ($1::text IS NULL OR p.service = $1) "
        "AND ($2::text IS NULL OR p.status = $2) "
        "AND ($3::bigint IS NULL OR p.id < $3::bigint) "
        "ORDER BY p.id DESC LIMIT $4::int";

int store_problems(struct store *s, const char *const *params, store_row_fn *row, void *ctx,
                   struct error *err) {
        return store_rows(s, list_sql, 4, params, PROBLEM_KINDS "j", NULL, row, ctx,
                          "Listing problems", err);
}

/* Its incidents: every key it links, with what is known of the incident (of any source:
 * links name incidents by key alone); its factors (as dl_apply_factors holds them); its
 * history in the source's order. */
static const char one_sql[] =
        "SELECT " PROBLEM_COLUMNS ", "
        "(SELECT coalesce(jsonb_agg(jsonb_build_object("
        "    'key', k.key, 'source', i.source, 'service', i.service, 'status', i.status, "
        "    'opened_at', dl_rfc3339(i.opened_at), 'resolved_at', dl_rfc3339(i.resolved_at)) "
        "    ORDER BY k.key, i.source), '[]') "
        "  FROM unnest(p.incidents) AS k(key) "
        "  LEFT JOIN incidents i ON i.key = k.key AND i.status <> 'deleted')::text "
        "  AS incidents, "
        "(SELECT coalesce(jsonb_agg(jsonb_build_object("
        "    'dimension', f.dimension, 'category', nullif(f.category, ''), 'role', f.role) "
        "    ORDER BY f.dimension, f.category), '[]') "
        "  FROM rca_factors f WHERE (f.source, f.subject, f.key) = (p.source, 'problem', "
        "  p.key))::text AS contributing_factors, "
        "(SELECT coalesce(jsonb_agg(jsonb_build_object("
        "    'at', dl_rfc3339(h.at), 'status', h.status, 'delivery_id', h.delivery_id) "
        "    ORDER BY h.at, h.status), '[]') "
        "  FROM problem_history h WHERE (h.source, h.key) = (p.source, p.key))::text "
        "  AS history "
        "FROM problems p WHERE p.key = $1 AND ($2::text IS NULL OR p.source = $2) "
        "AND NOT p.deleted ORDER BY p.source LIMIT 1";

int store_problem(struct store *s, const char *const *params, store_row_fn *row, void *ctx,
                  struct error *err) {
        return store_rows(s, one_sql, 2, params, PROBLEM_KINDS "jjj", NULL, row, ctx,
                          "Reading a problem", err);
}

int store_problems_open(struct store *s, store_row_fn *row, void *ctx, struct error *err) {
        return store_rows(s, "SELECT service, others, known_errors FROM dl_problems_open()", 0,
                          NULL, "snn", NULL, row, ctx, "Reading the open problems", err);
}
