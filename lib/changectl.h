/* changectl: the deployment gate. May a pipeline deploy a service to an environment under a
 * change request now? Pure: the record and the clock are parameters. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* What the gate needs to know of a change request (all borrowed). */
struct changectl_record {
        bool found;
        const char *key;
        const char *status;             /* pending | approved | ... */
        int64_t planned_start, planned_end; /* TIME_UNSET when not set */
        const char *const *services;    /* the services it covers; none: any */
        size_t n_services;
};

/* Decides, writing the rule that decided into reason (a sentence for the pipeline's log).
 * Rules in order: production environments only need approval (production is the
 * comma-separated list of them); the change must be known, approved or being
 * implemented, inside its planned window when it has one, and cover the service when it
 * names services. */
bool changectl_gate(const struct changectl_record *r, const char *service,
                    const char *environment, const char *production, int64_t now_us,
                    char *reason, size_t reason_len);
