/* commands: the commands that are one or a few requests each: gate, replay, status,
 * insights, decide and review. Each prints text, or with --json the API's JSON. */
#include "ctl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../lib/buf.h"
#include "../lib/source.h"
#include "args.h"
#include "client.h"
#include "progress.h"

#define PATH_MAX_LEN 4096

/* The exit status of a parse that did not go on. */
static int args_exit(int r) {
        return r == ARGS_HELP ? CTL_OK : CTL_ERROR;
}

/* path followed by ?name=value&... for each non-NULL value, escaped; false on OOM. */
static bool build_path(struct buf *b, const char *path, const char *const *pairs) {
        char sep = '?';

        buf_init(b, PATH_MAX_LEN);
        if (buf_puts(b, path) < 0)
                return false;
        for (size_t i = 0; pairs && pairs[i]; i += 2) {
                char *v;
                int r;

                if (!pairs[i + 1])
                        continue;
                v = client_escape(pairs[i + 1]);
                r = v ? buf_append(b, &sep, 1) : -1;
                if (r == 0)
                        r = buf_puts(b, pairs[i]);
                if (r == 0)
                        r = buf_puts(b, "=");
                if (r == 0)
                        r = buf_puts(b, v);
                free(v);
                if (r < 0)
                        return false;
                sep = '&';
        }
        return true;
}

/* One request; on a transport failure says why and returns CTL_ERROR. */
static int call(const struct ctl *c, const char *what, const char *method, const char *path,
                enum ctl_token tk, const char *body, struct client_answer *ret) {
        char err[512];

        if (client_call(c, method, path, tk, body, body ? "application/json" : NULL, ret, err,
                        sizeof(err)) < 0) {
                ctl_error("%s: %s", what, err);
                return CTL_ERROR;
        }
        return CTL_OK;
}

static void print_json(const json_t *doc) {
        char *text = json_dumps(doc, JSON_INDENT(2) | JSON_PRESERVE_ORDER);

        if (text)
                printf("%s\n", text);
        free(text);
}

static const char gate_usage[] =
        "Usage: doraloopctl gate KEY --service S [--environment E] [--json]\n"
        "Asks whether a pipeline may deploy service S under change request KEY now.\n"
        "Exit 0 allowed, 1 refused (the reason on stderr), 2 any error (the daemon\n"
        "unreachable included). Token: DORALOOP_API_TOKEN or --token-file.\n";

int cmd_gate(const struct ctl *cc, int argc, char **argv) {
        struct ctl c = *cc;
        const char *key = NULL, *service = NULL, *environment = NULL;
        const struct args_option opts[] = { { "--service", &service, NULL },
                                            { "--environment", &environment, NULL },
                                            { NULL, NULL, NULL } };
        struct client_answer a;
        struct buf path;
        char *ekey;
        int r = args_parse(&c, argc, argv, opts, &key, 1, 1, gate_usage);
        json_t *allowed;
        const char *reason;

        if (r != ARGS_OK)
                return args_exit(r);
        if (!service) {
                ctl_error("gate: --service is required");
                fputs(gate_usage, stderr);
                return CTL_ERROR;
        }
        ekey = client_escape(key);
        {
                char base[PATH_MAX_LEN];

                snprintf(base, sizeof(base), "/api/v1/changes/%s/gate", ekey ? ekey : "");
                free(ekey);
                if (!build_path(&path, base, (const char *const[]) {
                                "service", service, "environment", environment, NULL })) {
                        buf_free(&path);
                        ctl_error("gate: the arguments are too long");
                        return CTL_ERROR;
                }
        }
        r = call(&c, "gate", "GET", path.data, CTL_TOKEN_API, NULL, &a);
        buf_free(&path);
        if (r != CTL_OK)
                return r;
        allowed = json_object_get(a.doc, "allowed");
        if (a.status != 200 || !json_is_boolean(allowed)) {
                r = client_print_failure(&c, "gate", &a);
                client_answer_free(&a);
                return r;
        }
        reason = json_string_value(json_object_get(a.doc, "reason"));
        if (c.json)
                print_json(a.doc);
        if (json_is_true(allowed)) {
                if (!c.json)
                        printf("allowed: %s\n", reason ? reason : "");
                r = CTL_OK;
        } else {
                fprintf(stderr, "refused: %s\n", reason ? reason : "");
                r = CTL_NO;
        }
        client_answer_free(&a);
        return r;
}

static const char replay_usage[] =
        "Usage: doraloopctl replay [--json]\n"
        "Re-derives every normalized table from the stored deliveries (POST /api/v1/replay),\n"
        "then follows the job to its end with a progress bar (plain lines when stderr is not\n"
        "a terminal). A replay already running is followed. Token: DORALOOP_ADMIN_TOKEN.\n";

static void pause_ms(long ms) {
        nanosleep(&(struct timespec) { .tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000 },
                  NULL);
}

int cmd_replay(const struct ctl *cc, int argc, char **argv) {
        struct ctl c = *cc;
        struct client_answer a;
        struct progress p;
        const char *status;
        int r = args_parse(&c, argc, argv, NULL, NULL, 0, 0, replay_usage);

        if (r != ARGS_OK)
                return args_exit(r);
        r = call(&c, "replay", "POST", "/api/v1/replay", CTL_TOKEN_ADMIN, NULL, &a);
        if (r != CTL_OK)
                return r;
        if (a.status != 202 && a.status != 409) {
                r = client_print_failure(&c, "replay", &a);
                client_answer_free(&a);
                return r;
        }
        if (a.status == 409 && !c.json)
                fprintf(stderr, "replay: one is already running; following it\n");
        client_answer_free(&a);
        progress_start(&p, "replay", "deliveries", c.tty, 0);
        for (;;) {
                r = call(&c, "replay", "GET", "/api/v1/replay", CTL_TOKEN_ADMIN, NULL, &a);
                if (r != CTL_OK)
                        return r;
                status = json_string_value(json_object_get(a.doc, "status"));
                if (a.status != 200 || !status) {
                        r = client_print_failure(&c, "replay", &a);
                        client_answer_free(&a);
                        return r;
                }
                progress_update(&p, (uint64_t) json_integer_value(json_object_get(a.doc, "done")),
                                (uint64_t) json_integer_value(json_object_get(a.doc,
                                                                              "deliveries")));
                if (strcmp(status, "running") != 0)
                        break;
                client_answer_free(&a);
                pause_ms(200);
        }
        progress_end(&p);
        if (c.json)
                print_json(a.doc);
        else
                printf("replay %s: %lld of %lld deliveries, %zu skipped\n", status,
                       (long long) json_integer_value(json_object_get(a.doc, "done")),
                       (long long) json_integer_value(json_object_get(a.doc, "deliveries")),
                       json_array_size(json_object_get(a.doc, "skipped")));
        r = strcmp(status, "done") == 0 ? CTL_OK : CTL_ERROR;
        client_answer_free(&a);
        return r;
}

static const char status_usage[] =
        "Usage: doraloopctl status [--json]\n"
        "Readiness (GET /readyz), the writer queue, the spool backlog, and the last delivery\n"
        "of each source with its status (GET /api/v1/deliveries). Exit 0 ready, 1 not ready,\n"
        "2 any error. Token: DORALOOP_API_TOKEN.\n";

/* The last delivery of source into *ret (a new reference, json null when none). */
static int last_delivery(const struct ctl *c, const char *source, json_t **ret) {
        struct client_answer a;
        struct buf path;
        json_t *items;
        int r;

        if (!build_path(&path, "/api/v1/deliveries", (const char *const[]) {
                        "source", source, "limit", "1", NULL })) {
                buf_free(&path);
                return CTL_ERROR;
        }
        r = call(c, "status", "GET", path.data, CTL_TOKEN_API, NULL, &a);
        buf_free(&path);
        if (r != CTL_OK)
                return r;
        items = json_object_get(a.doc, "items");
        if (a.status != 200 || !json_is_array(items)) {
                r = client_print_failure(c, "status", &a);
                client_answer_free(&a);
                return r;
        }
        *ret = json_array_size(items) ? json_incref(json_array_get(items, 0)) : json_null();
        client_answer_free(&a);
        return CTL_OK;
}

int cmd_status(const struct ctl *cc, int argc, char **argv) {
        struct ctl c = *cc;
        struct client_answer a;
        json_t *sources, *doc;
        const char *state, *reason;
        int r = args_parse(&c, argc, argv, NULL, NULL, 0, 0, status_usage);
        bool ready;

        if (r != ARGS_OK)
                return args_exit(r);
        r = call(&c, "status", "GET", "/readyz", CTL_TOKEN_API, NULL, &a);
        if (r != CTL_OK)
                return r;
        state = json_string_value(json_object_get(a.doc, "status"));
        if ((a.status != 200 && a.status != 503) || !state) {
                r = client_print_failure(&c, "status", &a);
                client_answer_free(&a);
                return r;
        }
        ready = a.status == 200;
        sources = json_object();
        /* Every source the daemon routes, from the one table (lib/source.h). */
        for (size_t i = 0; source_table[i] && r == CTL_OK; i++) {
                json_t *last = NULL;

                r = last_delivery(&c, source_table[i]->name, &last);
                if (r == CTL_OK)
                        json_object_set_new(sources, source_table[i]->name, last);
        }
        if (r != CTL_OK) {
                json_decref(sources);
                client_answer_free(&a);
                return r;
        }
        doc = json_pack("{s:O,s:o}", "readiness", a.doc, "sources", sources);
        if (c.json) {
                print_json(doc);
        } else {
                const char *name;
                json_t *last;

                reason = json_string_value(json_object_get(a.doc, "reason"));
                printf("readiness: %s%s%s\n", state, reason ? ": " : "", reason ? reason : "");
                printf("queue: %lld waiting to be stored\n",
                       (long long) json_integer_value(json_object_get(a.doc, "queued")));
                printf("spool: %lld deliveries waiting to be replayed\n",
                       (long long) json_integer_value(json_object_get(a.doc, "spooled")));
                printf("last delivery per source:\n");
                json_object_foreach(sources, name, last) {
                        if (json_is_null(last)) {
                                printf("  %-8s none\n", name);
                                continue;
                        }
                        printf("  %-8s %s %s %s (%s)\n", name,
                               json_string_value(json_object_get(last, "received_at")),
                               json_string_value(json_object_get(last, "status")),
                               json_string_value(json_object_get(last, "event")),
                               json_string_value(json_object_get(last, "delivery_id")));
                }
        }
        json_decref(doc);
        client_answer_free(&a);
        return ready ? CTL_OK : CTL_NO;
}

/* GET path: the JSON printed as is under --json, else through text(); an answer that is
 * not a success printed as an error. */
static int show(const struct ctl *c, const char *what, const char *path, enum ctl_token tk,
                void (*text)(const struct client_answer *a)) {
        struct client_answer a;
        int r = call(c, what, "GET", path, tk, NULL, &a);

        if (r != CTL_OK)
                return r;
        if (a.status != 200) {
                r = client_print_failure(c, what, &a);
        } else if (c->json || !a.doc) {
                printf("%s%s", a.body, a.len && a.body[a.len - 1] == '\n' ? "" : "\n");
        } else {
                text(&a);
        }
        client_answer_free(&a);
        return r;
}

static void insights_text(const struct client_answer *a) {
        json_t *items = json_object_get(a->doc, "items"), *it;
        size_t i;

        if (!json_array_size(items))
                printf("no insights\n");
        json_array_foreach(items, i, it)
                printf("%6.1f  %-9s %s  %s\n", json_number_value(json_object_get(it, "score")),
                       json_string_value(json_object_get(it, "status")),
                       json_string_value(json_object_get(it, "id")),
                       json_string_value(json_object_get(it, "title")));
}

static const char insights_usage[] =
        "Usage: doraloopctl insights [--service S] [--json]\n"
        "The insights, highest score first (GET /api/v1/insights). Token: DORALOOP_API_TOKEN.\n";

int cmd_insights(const struct ctl *cc, int argc, char **argv) {
        struct ctl c = *cc;
        const char *service = NULL;
        const struct args_option opts[] = { { "--service", &service, NULL },
                                            { NULL, NULL, NULL } };
        struct buf path;
        int r = args_parse(&c, argc, argv, opts, NULL, 0, 0, insights_usage);

        if (r != ARGS_OK)
                return args_exit(r);
        if (!build_path(&path, "/api/v1/insights", (const char *const[]) {
                        "service", service, NULL }))
                r = CTL_ERROR;
        else
                r = show(&c, "insights", path.data, CTL_TOKEN_API, insights_text);
        buf_free(&path);
        return r;
}

static const char decide_usage[] =
        "Usage: doraloopctl decide ID accept|dismiss --reason R [--actor A] [--json]\n"
        "Records a triage decision on insight ID (POST /api/v1/insights/ID/decision).\n"
        "Token: DORALOOP_TRIAGE_TOKEN, else DORALOOP_ADMIN_TOKEN.\n";

int cmd_decide(const struct ctl *cc, int argc, char **argv) {
        struct ctl c = *cc;
        const char *pos[2] = { NULL, NULL }, *reason = NULL, *actor = NULL;
        const struct args_option opts[] = { { "--reason", &reason, NULL },
                                            { "--actor", &actor, NULL },
                                            { NULL, NULL, NULL } };
        char path[PATH_MAX_LEN], *id, *body;
        struct client_answer a;
        json_t *doc;
        int r = args_parse(&c, argc, argv, opts, pos, 2, 2, decide_usage);

        if (r != ARGS_OK)
                return args_exit(r);
        if ((strcmp(pos[1], "accept") != 0 && strcmp(pos[1], "dismiss") != 0) || !reason) {
                ctl_error("decide: the decision is accept or dismiss, with --reason");
                fputs(decide_usage, stderr);
                return CTL_ERROR;
        }
        id = client_escape(pos[0]);
        snprintf(path, sizeof(path), "/api/v1/insights/%s/decision", id ? id : "");
        free(id);
        doc = json_pack("{s:s,s:s,s:s?}", "decision", pos[1], "reason", reason, "actor", actor);
        body = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
        json_decref(doc);
        if (!body) {
                ctl_error("decide: the reason or actor is not UTF-8");
                return CTL_ERROR;
        }
        r = call(&c, "decide", "POST", path, CTL_TOKEN_TRIAGE, body, &a);
        free(body);
        if (r != CTL_OK)
                return r;
        if (a.status != 200)
                r = client_print_failure(&c, "decide", &a);
        else if (c.json)
                printf("%s\n", a.body);
        else
                printf("%s: %s\n", pos[0], json_string_value(json_object_get(a.doc, "status")));
        client_answer_free(&a);
        return r;
}

static void review_text(const struct client_answer *a) {
        printf("%s\n", a->body);
}

static const char review_usage[] =
        "Usage: doraloopctl review [--window 7d] [--json]\n"
        "The review agenda (GET /api/v1/review), as Markdown, or JSON with --json.\n"
        "Token: DORALOOP_API_TOKEN.\n";

int cmd_review(const struct ctl *cc, int argc, char **argv) {
        struct ctl c = *cc;
        const char *window = "7d";
        const struct args_option opts[] = { { "--window", &window, NULL },
                                            { NULL, NULL, NULL } };
        struct buf path;
        int r = args_parse(&c, argc, argv, opts, NULL, 0, 0, review_usage);

        if (r != ARGS_OK)
                return args_exit(r);
        if (!build_path(&path, "/api/v1/review", (const char *const[]) {
                        "window", window, "format", c.json ? "json" : "markdown", NULL }))
                r = CTL_ERROR;
        else
                r = show(&c, "review", path.data, CTL_TOKEN_API, review_text);
        buf_free(&path);
        return r;
}
