/* changectl: the deployment gate. */
#include "changectl.h"

#include <stdio.h>
#include <string.h>

#include "normalize.h"
#include "timefmt.h"

bool changectl_gate(const struct changectl_record *r, const char *service,
                    const char *environment, const char *production, int64_t now_us,
                    char *reason, size_t reason_len) {
        char a[TIMEFMT_LEN], b[TIMEFMT_LEN];
        bool covered = r->n_services == 0 || !service;

        if (environment && !normalize_in_list(production, environment)) {
                snprintf(reason, reason_len, "%s is not a production environment: no change "
                         "approval is needed", environment);
                return true;
        }
        if (!r->found) {
                snprintf(reason, reason_len, "%s is unknown: no change-management tool has "
                         "reported it", r->key);
                return false;
        }
        if (strcmp(r->status, "approved") != 0 && strcmp(r->status, "implementing") != 0) {
                snprintf(reason, reason_len, "%s is %s; it must be approved", r->key, r->status);
                return false;
        }
        if (r->planned_start != TIME_UNSET && now_us < r->planned_start) {
                snprintf(reason, reason_len, "%s's planned window opens at %s", r->key,
                         timefmt_format(r->planned_start, a));
                return false;
        }
        if (r->planned_end != TIME_UNSET && now_us > r->planned_end) {
                snprintf(reason, reason_len, "%s's planned window closed at %s", r->key,
                         timefmt_format(r->planned_end, a));
                return false;
        }
        for (size_t i = 0; !covered && i < r->n_services; i++)
                covered = strcmp(r->services[i], service) == 0;
        if (!covered) {
                snprintf(reason, reason_len, "%s does not cover service %s", r->key, service);
                return false;
        }
        if (r->planned_start != TIME_UNSET || r->planned_end != TIME_UNSET)
                snprintf(reason, reason_len, "%s is %s and inside its planned window (%s to %s)",
                         r->key, r->status,
                         r->planned_start != TIME_UNSET ? timefmt_format(r->planned_start, a) : "open",
                         r->planned_end != TIME_UNSET ? timefmt_format(r->planned_end, b) : "open");
        else
                snprintf(reason, reason_len, "%s is %s", r->key, r->status);
        return true;
}
