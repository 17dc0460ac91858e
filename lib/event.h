/* event: the source-neutral rows a delivery normalizes into (DESIGN.md, "Model"). Every
 * string is owned by its event; times are microseconds since the Unix epoch, or
 * TIME_UNSET. The store turns these into upserts; sources fill them from payloads. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "timefmt.h"

struct error;

enum event_kind {
        EVENT_CHANGE,
        EVENT_DEPLOYMENT,
        EVENT_INCIDENT,
        EVENT_CHANGE_REQUEST,
        EVENT_OBSERVATION,
        EVENT_FACTORS,
        EVENT_PROBLEM,
        _EVENT_MAX,
};

/* A commit. Identity: (service, sha): a monorepo commit is one change per service it
 * touches (normalize_map_paths). */
struct event_change {
        char *service, *repo, *sha, *branch, *author, *message;
        int64_t committed_at;
        char **files;           /* the paths it touched, when the source lists them and
                                 * service_paths names its repository; only the core's
                                 * mapping reads them, the store never does */
        size_t n_files;
};

/* One attempt to deploy a service to an environment. Identity: (source, key). */
struct event_deployment {
        char *key;              /* unique within the source, e.g. the GitHub deployment id */
        char *service, *environment;
        char *status;           /* pending | in_progress | success | failure | canceled */
        char *sha;
        char *change_request;   /* a change-request key it names, or NULL */
        int64_t started_at, finished_at;
        int64_t updated_at;     /* the source's own time of this state: later wins */
        bool rollback, hotfix;
        char **commits;         /* shas it ships, when the source lists them */
        size_t n_commits;
};

/* An incident. Identity: (source, key). */
struct event_incident {
        char *key, *service, *title;
        char *status;           /* open | resolved | deleted */
        char *severity;
        char *root_cause;       /* organizational | technological | partner | process | NULL */
        char *caused_by_deployment, *caused_by_sha, *change_request; /* explicit references */
        int64_t opened_at, resolved_at, updated_at;
        char **customers;       /* the customers it names, or NULL: none named (those held
                                 * stay) */
        size_t n_customers;
};

/* An incident names at most this many customers. */
#define EVENT_CUSTOMERS_MAX 100

/* A change-control record. Identity: key (e.g. CHG-12). */
struct event_change_request {
        char *key, *title;
        char *status;           /* pending | approved | declined | implementing | completed | canceled */
        char *change_type;      /* standard | normal | emergency */
        char *risk;             /* low | medium | high | NULL */
        char **services;
        size_t n_services;
        int64_t planned_start, planned_end, updated_at;
        char *actor;            /* who made this change of it (a name), or NULL */
};

/* Support load: a JSM service request (kind support) or a generic observation. Identity:
 * (source, key). Later states win by updated_at (else occurred_at). */
struct event_observation {
        char *key;
        char *kind;             /* support | feedback | usage | ux */
        char *service, *feature, *customer, *summary, *url;
        int64_t count;          /* occurrences this record stands for, >= 0 (default 1) */
        int64_t occurred_at, resolved_at, updated_at;
        char **incidents;       /* keys of the incidents it links */
        size_t n_incidents;
        bool deleted;           /* the source deleted it (a Jira issue): it counts no more */
};

/* An observation links at most this many incidents. */
#define EVENT_OBSERVATION_LINKS_MAX 100

/* One contributing factor (API.md, "Root causes"): dimension is one of the four ITIL 4
 * dimensions, category lower-case text or NULL, role primary | contributing. */
struct event_factor {
        char *dimension, *category, *role;
};

/* The contributing factors of an incident or of a post-incident review, as a set that
 * replaces the one held when it is newer. Identity: (source, subject, key). A review's
 * factors attach to the incidents it links that have none of their own. */
struct event_factors {
        char *subject;          /* incident | review | problem */
        char *key, *service;
        struct event_factor *items;
        size_t n;
        char **links;           /* the incident keys a review or problem links */
        size_t n_links;
        int64_t updated_at;
};

/* A problem (ITIL problem management): the state of one, as its source reports it. Identity:
 * (source, key); later states win by updated_at. Its factors and the incidents it links
 * come as an event_factors of subject problem in the same delivery. */
struct event_problem {
        char *key, *service, *summary;
        char *status;           /* open | known_error | resolved */
        char *workaround;       /* a known error has one; NULL: none */
        int64_t opened_at, resolved_at, updated_at;
        char **incidents;       /* keys of the incidents it links */
        size_t n_incidents;
        bool deleted;           /* the source deleted it (a Jira issue): it counts no more */
};

struct event {
        enum event_kind kind;
        union {
                struct event_change change;
                struct event_deployment deployment;
                struct event_incident incident;
                struct event_change_request change_request;
                struct event_observation observation;
                struct event_factors factors;
                struct event_problem problem;
        };
};

/* The longest value, in bytes, of each kind of identifier a row may hold: every one of them
 * is in a btree index (a row of at most ~2700 bytes), so nothing longer may reach the
 * database. A delivery holding a longer one is refused (event_list_check). */
#define EVENT_NAME_MAX 200      /* a service or an environment */
#define EVENT_KEY_MAX 256       /* a deployment, incident or change-request key, or a
                                 * reference to one */
#define EVENT_SHA_MAX 64        /* a commit sha (SHA-256 repositories: 64 hex digits) */
#define EVENT_CATEGORY_MAX 64   /* a status, severity, root cause, change type or risk */

/* A growable list of events; at most EVENT_LIST_MAX (a push lists at most a few thousand
 * commits; anything beyond is refused as invalid_payload). */
#define EVENT_LIST_MAX 10000

struct event_list {
        struct event *items;
        size_t n, cap;
};

/* Appends a zeroed event of kind (times TIME_UNSET) and returns it, or NULL on OOM or past
 * EVENT_LIST_MAX. The list owns it. */
struct event *event_list_add(struct event_list *l, enum event_kind kind);

/* Frees every event's strings and the array; the list is empty and reusable after. */
void event_list_clear(struct event_list *l);

/* Checks every identifier of every event against its maximum above. Returns 0, or
 * -EBADMSG (err: invalid_payload, field the row's field, msg naming it and its length).
 * Thread-safe. */
int event_list_check(const struct event_list *l, struct error *err)
        __attribute__((warn_unused_result));

/* strdup that passes NULL through; *ok becomes false on OOM (so callers check once). */
char *event_strdup(const char *s, bool *ok);
