/* event_list_check: every identifier of every kind of row is accepted at its maximum and
 * refused one byte over it, with invalid_payload naming the field and never the value. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "event.h"

#include "check.h"

#define FILLER 'v'      /* the byte every over-long value is made of */

/* A malloc'd string of n FILLER bytes. */
static char *bytes(size_t n) {
        char *s = malloc(n + 1);

        if (!s)
                abort();
        memset(s, FILLER, n);
        s[n] = '\0';
        return s;
}

/* Sets the field to n bytes, checks the list, and says whether it passed; a refusal must
 * name want_field. */
static bool passes(struct event_list *l, char **field, size_t n, const char *want_field) {
        struct error err = { 0 };
        int r;

        free(*field);
        *field = bytes(n);
        r = event_list_check(l, &err);
        if (r < 0) {
                CHECK(r == -EBADMSG);
                CHECK_STR(err.code, "invalid_payload");
                CHECK_STR(err.field, want_field);
                CHECK(strstr(err.msg, want_field) != NULL);
                {
                        char run[9];    /* 8 of them: the value, which is never quoted */

                        memset(run, FILLER, 8);
                        run[8] = '\0';
                        CHECK(strstr(err.msg, run) == NULL);
                }
        }
        return r == 0;
}

static void check_bound(struct event_list *l, char **field, size_t max, const char *name) {
        CHECK(passes(l, field, max, name));
        CHECK(!passes(l, field, max + 1, name));
        CHECK(passes(l, field, 1, name));       /* leave it valid for the next field */
}

static void test_deployment(void) {
        struct event_list l = { 0 };
        struct event_deployment *d = &event_list_add(&l, EVENT_DEPLOYMENT)->deployment;

        check_bound(&l, &d->key, EVENT_KEY_MAX, "key");
        check_bound(&l, &d->service, EVENT_NAME_MAX, "service");
        check_bound(&l, &d->environment, EVENT_NAME_MAX, "environment");
        check_bound(&l, &d->status, EVENT_CATEGORY_MAX, "status");
        check_bound(&l, &d->sha, EVENT_SHA_MAX, "sha");
        check_bound(&l, &d->change_request, EVENT_KEY_MAX, "change_request");
        d->commits = calloc(3, sizeof(char *));
        d->n_commits = 2;
        d->commits[0] = bytes(40);
        check_bound(&l, &d->commits[1], EVENT_SHA_MAX, "commits");
        event_list_clear(&l);
}

static void test_other_kinds(void) {
        struct event_list l = { 0 };
        struct event_change *c;
        struct event_incident *i;
        struct event_change_request *cr;

        c = &event_list_add(&l, EVENT_CHANGE)->change;
        check_bound(&l, &c->service, EVENT_NAME_MAX, "service");
        check_bound(&l, &c->sha, EVENT_SHA_MAX, "sha");
        c->message = bytes(80 * 1024);          /* free text: not an identifier */
        CHECK(event_list_check(&l, NULL) == 0);

        i = &event_list_add(&l, EVENT_INCIDENT)->incident;
        check_bound(&l, &i->key, EVENT_KEY_MAX, "key");
        check_bound(&l, &i->service, EVENT_NAME_MAX, "service");
        check_bound(&l, &i->status, EVENT_CATEGORY_MAX, "status");
        check_bound(&l, &i->severity, EVENT_CATEGORY_MAX, "severity");
        check_bound(&l, &i->root_cause, EVENT_CATEGORY_MAX, "root_cause");
        check_bound(&l, &i->caused_by_deployment, EVENT_KEY_MAX, "caused_by_deployment");
        check_bound(&l, &i->caused_by_sha, EVENT_SHA_MAX, "caused_by_sha");
        check_bound(&l, &i->change_request, EVENT_KEY_MAX, "change_request");

        cr = &event_list_add(&l, EVENT_CHANGE_REQUEST)->change_request;
        check_bound(&l, &cr->key, EVENT_KEY_MAX, "key");
        check_bound(&l, &cr->status, EVENT_CATEGORY_MAX, "status");
        check_bound(&l, &cr->change_type, EVENT_CATEGORY_MAX, "change_type");
        check_bound(&l, &cr->risk, EVENT_CATEGORY_MAX, "risk");
        cr->services = calloc(2, sizeof(char *));
        cr->n_services = 1;
        check_bound(&l, &cr->services[0], EVENT_NAME_MAX, "services");
        event_list_clear(&l);
}

int main(void) {
        test_deployment();
        test_other_kinds();
        return check_summary();
}
