/* source: the registry of webhook sources and helpers they share. */
#include "source.h"

#include <errno.h>
#include <pthread.h>
#include <stdalign.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "hmac.h"
#include "hook.h"
#include "normalize.h"

#define SOURCE(name) extern const struct source source_##name;
#include "sources/registry.h"
#undef SOURCE

const struct source *const source_table[] = {
#define SOURCE(name) &source_##name,
#include "sources/registry.h"
#undef SOURCE
        NULL,
};

#define N_SOURCES (sizeof(source_table) / sizeof(source_table[0]) - 1)
_Static_assert(N_SOURCES <= SOURCE_MAX, "more sources than SOURCE_MAX");

size_t source_count(void) {
        return N_SOURCES;
}

void source_names(char *buf, size_t size, const char *sep) {
        size_t used = 0;

        buf[0] = '\0';
        for (size_t i = 0; i < N_SOURCES && used < size; i++) {
                int n = snprintf(buf + used, size - used, "%s%s", i ? sep : "",
                                 source_table[i]->name);

                used += n > 0 ? (size_t) n : 0;
        }
}

size_t source_index(const struct source *s) {
        size_t i = 0;

        while (i < N_SOURCES && source_table[i] != s)
                i++;
        return i;
}

/* Each source's defaults, from its rows; the rows are checked by test_sources, so a bad
 * default cannot ship, and one would leave that field zero rather than stop a parser. */
static alignas(max_align_t) unsigned char defaults[SOURCE_MAX][SOURCE_OPTIONS_MAX];
static pthread_once_t defaults_once = PTHREAD_ONCE_INIT;

static void build_defaults(void) {
        for (size_t i = 0; i < N_SOURCES; i++)
                (void) confkey_defaults(source_table[i]->keys, source_table[i]->n_keys,
                                        defaults[i]);
}

const void *source_defaults(size_t i) {
        pthread_once(&defaults_once, build_defaults);
        return i < N_SOURCES ? defaults[i] : NULL;
}

const void *source_options(const struct normalize_options *o, const struct source *s) {
        size_t i = source_index(s);

        return i < N_SOURCES && o->sources[i] ? o->sources[i] : source_defaults(i);
}

const struct source *source_find(const char *name) {
        for (size_t i = 0; source_table[i]; i++)
                if (strcmp(source_table[i]->name, name) == 0)
                        return source_table[i];
        return NULL;
}

int source_copy_id(const char *s, const char *what, char **ret, struct error *err) {
        size_t n;

        if (!s || !*s)
                return error_set(err, EBADMSG, "invalid_payload", what, "Missing %s", what);
        n = strlen(s);
        if (n > SOURCE_ID_MAX)
                return error_set(err, EBADMSG, "invalid_payload", what,
                                 "%s is longer than %d characters", what, SOURCE_ID_MAX);
        for (size_t i = 0; i < n; i++)
                if (s[i] < 0x20 || s[i] > 0x7e)
                        return error_set(err, EBADMSG, "invalid_payload", what,
                                         "%s holds a character that is not printable ASCII",
                                         what);
        *ret = strdup(s);
        return *ret ? 0 : -ENOMEM;
}

int source_identify(const struct hook_request *req, const char *id, const char *what,
                    bool or_body, const char *event, const char *event_what,
                    char **ret_delivery_id, char **ret_event, struct error *err) {
        char *copy = NULL;
        int r = !id && or_body ? source_body_id(req, &copy, err)
                               : source_copy_id(id, what, &copy, err);

        if (r < 0)
                return r;
        r = source_copy_id(event, event_what, ret_event, err);
        if (r < 0) {
                free(copy);
                return r;
        }
        *ret_delivery_id = copy;
        return 0;
}

int source_body_id(const struct hook_request *req, char **ret, struct error *err) {
        char hex[HMAC_HEX_LEN + 1];

        if (sha256_hex(req->body, req->body_len, hex) < 0)
                return error_set(err, EIO, "internal", NULL, "SHA-256 failed");
        *ret = strdup(hex);
        return *ret ? 0 : -ENOMEM;
}
