/* target_jpd: Jira Product Discovery (API.md) over Jira's REST API v3, basic auth
 * jpd_email:jpd_api_token. The first version of an insight creates an idea (POST
 * /rest/api/3/issue: project, issue type, summary = title, an Atlassian Document Format
 * description with the score parts, the evidence and a link back, labels ["doraloop",
 * rule]); later versions comment on it (POST /rest/api/3/issue/{key}/comment). The issue
 * key is the external id, {jpd_url}/browse/{key} its address. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../lib/utf8.h"
#include "config.h"
#include "target.h"

#define SUMMARY_MAX 255         /* Jira refuses a longer summary (characters; bytes are more) */

static bool configured(const struct config *cfg) {
        return *cfg->jpd_url && *cfg->jpd_project && *cfg->jpd_email && cfg->jpd_api_token &&
               *cfg->jpd_api_token;
}

/* Appends an ADF paragraph of text (a link to href when not NULL) to content. */
static int paragraph(json_t *content, const char *text, const char *href) {
        json_t *t = href ? json_pack("{s:s, s:s, s:[{s:s, s:{s:s}}]}", "type", "text", "text",
                                     text, "marks", "type", "link", "attrs", "href", href)
                         : json_pack("{s:s, s:s}", "type", "text", "text", text);

        return json_array_append_new(content, json_pack("{s:s, s:[o]}", "type", "paragraph",
                                                        "content", t));
}

/* The ADF document: an opening line (the version, for a comment), the score, the evidence
 * by kind and the link back. */
static json_t *document(const struct target_export *e, const char *opening) {
        static const char *const kinds[] = { "incidents", "problems", "observations",
                                             "deployments" };
        json_t *content = json_array();
        char line[2048];
        int r = content ? 0 : -1;

        if (opening && r == 0)
                r = paragraph(content, opening, NULL);
        target_score_line(e->item, line, sizeof(line));
        if (r == 0)
                r = paragraph(content, line, NULL);
        for (size_t k = 0; r == 0 && k < sizeof(kinds) / sizeof(kinds[0]); k++) {
                target_evidence_line(e->item, kinds[k], line, sizeof(line));
                if (*line)
                        r = paragraph(content, line, NULL);
        }
        if (r == 0)
                r = paragraph(content, "Open in doraloop", e->link);
        if (r < 0) {
                json_decref(content);
                return NULL;
        }
        return json_pack("{s:s, s:i, s:o}", "type", "doc", "version", 1, "content", content);
}

static int send_export(const struct config *cfg, const struct target_export *e,
                       atomic_bool *stop, struct target_result *ret) {
        char url[TARGET_URL_MAX + TARGET_ID_MAX + 64], userpwd[1024], opening[128],
                summary[SUMMARY_MAX + 1];
        const char *key = e->known_id, *title = json_string_value(json_object_get(e->item,
                                                                                  "title"));
        json_t *body;
        int r;

        if (key) {
                snprintf(opening, sizeof(opening), "doraloop: version %d of this insight",
                         e->version);
                body = json_pack("{s:o?}", "body", document(e, opening));
                snprintf(url, sizeof(url), "%s/rest/api/3/issue/%s/comment", cfg->jpd_url, key);
        } else {
                size_t n = title ? strlen(title) : 0;

                if (n > SUMMARY_MAX)
                        n = utf8_cut(title, SUMMARY_MAX);
                memcpy(summary, title ? title : "", n);
                summary[n] = '\0';
                body = json_pack("{s:{s:{s:s}, s:{s:s}, s:s, s:o?, s:[s, O?]}}", "fields",
                                 "project", "key", cfg->jpd_project,
                                 "issuetype", "name", cfg->jpd_issue_type,
                                 "summary", summary,
                                 "description", document(e, NULL),
                                 "labels", "doraloop", json_object_get(e->item, "rule"));
                snprintf(url, sizeof(url), "%s/rest/api/3/issue", cfg->jpd_url);
        }
        if (!body) {
                memset(ret, 0, sizeof(*ret));
                snprintf(ret->answer.error, sizeof(ret->answer.error), "out of memory");
                return -ENOMEM;
        }
        snprintf(userpwd, sizeof(userpwd), "%s:%s", cfg->jpd_email, cfg->jpd_api_token);
        r = target_post_json(cfg, e, url, body, NULL, userpwd, stop, ret);
        json_decref(body);
        if (r == 0 && ret->answer.status / 100 == 2) {
                if (key)
                        snprintf(ret->external_id, sizeof(ret->external_id), "%s", key);
                else
                        target_answer_string(ret->answer.body, NULL, "key", ret->external_id,
                                             sizeof(ret->external_id));
                if (*ret->external_id)
                        snprintf(ret->external_url, sizeof(ret->external_url), "%s/browse/%s",
                                 cfg->jpd_url, ret->external_id);
        }
        return r;
}

const struct target target_jpd = { "jpd", configured, send_export };
