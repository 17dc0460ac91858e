/* rca: contributing factors (API.md, "Root causes") as every source reads them: a generic
 * "contributing_factors" array, "rca:<dimension>[:<category>]" labels, a dimension named in
 * a field. Each checks what it reads and refuses a bad dimension naming the field. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "doc.h"
#include "event.h"

struct error;

/* At most this many factors per incident or review; more is an invalid payload. */
#define RCA_FACTORS_MAX 32

/* The dimension s names (case-insensitive: "organizational", "technological", "partner",
 * "process"), as a static string, or NULL. Pure. */
const char *rca_dimension(const char *s);

/* Appends a factor to set (role NULL: primary), lower-casing category ("" or NULL: none)
 * and folding one already there with the same dimension and category (primary wins).
 * Refuses a bad dimension, role or category with -EBADMSG naming field. */
int rca_add(struct event_factors *set, const char *dimension, const char *category,
            const char *role, const char *field, struct error *err)
        __attribute__((warn_unused_result));

/* A generic body's "contributing_factors" array (NULL: nothing) into set. */
int rca_from_array(json_t *array, const char *field, struct event_factors *set,
                   struct error *err) __attribute__((warn_unused_result));

/* Every "rca:<dimension>[:<category>]" label (prefix case-insensitive; GitLab's scoped
 * "rca::" too) of labels into set: a JSON array of label names (member NULL) or of objects
 * whose string member is the name (GitHub "name", GitLab "title"). Other elements are
 * skipped: the source's own reading checks their types. */
int rca_from_labels(json_t *labels, const char *member, const char *field,
                    struct event_factors *set, struct error *err)
        __attribute__((warn_unused_result));

/* "<dimension>[:<category>]" as one primary factor into set (a root-cause field). */
int rca_from_text(const char *text, const char *field, struct event_factors *set,
                  struct error *err) __attribute__((warn_unused_result));

/* Moves set into a new EVENT_FACTORS event of out (subject, key, service copied; set is
 * emptied). Returns 0 or -ENOMEM. */
int rca_emit(struct event_list *out, const char *subject, const char *key,
             const char *service, int64_t updated_at, struct event_factors *set)
        __attribute__((warn_unused_result));

/* Frees what set holds (on a path that does not emit it). */
void rca_clear(struct event_factors *set);
