/* source: the registry of webhook sources and helpers they share. */
#include "source.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "hmac.h"
#include "hook.h"

extern const struct source source_github, source_gitlab, source_jira, source_jenkins,
        source_generic;

const struct source *const source_table[] = {
        &source_github,
        &source_gitlab,
        &source_jira,
        &source_jenkins,
        &source_generic,
        NULL,
};

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

int source_body_id(const struct hook_request *req, char **ret, struct error *err) {
        char hex[HMAC_HEX_LEN + 1];

        if (sha256_hex(req->body, req->body_len, hex) < 0)
                return error_set(err, EIO, "internal", NULL, "SHA-256 failed");
        *ret = strdup(hex);
        return *ret ? 0 : -ENOMEM;
}
