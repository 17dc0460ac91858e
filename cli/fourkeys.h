/* fourkeys: Google Four Keys' events_raw rows (as `bq extract --destination_format
 * NEWLINE_DELIMITED_JSON` writes them) mapped to import lines (API.md). GitHub and GitLab
 * rows become recorded deliveries of those sources; Cloud Build, CircleCI, Argo CD, Tekton and
 * PagerDuty rows generic bodies, as Four Keys' own queries read them. The delivery id is
 * fourkeys:<msg_id>. */
#pragma once

#include <stddef.h>

struct buf;

/* Maps one row (len bytes of JSON) and appends its import line, without a newline, to out.
 * Returns 0, or -1 with why in why (the row cannot be mapped: it is reported, not sent). */
int fourkeys_map(const char *row, size_t len, struct buf *out, char *why, size_t why_len);
