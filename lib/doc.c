/* doc: parsing a webhook body with jansson, and typed lookups into the tree. */
#include "doc.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "error.h"

/* Every value but the root follows a '[', a '{'+key+':' or a ','; a ':' introduces the value
 * of a key already counted with its container's first member or a comma. So values = 1 +
 * commas + containers that are not empty, all counted outside strings. */
size_t doc_count_elements(const char *body, size_t len, size_t stop_after) {
        size_t n = len ? 1 : 0;
        bool in_string = false, escaped = false, opened = false;

        for (size_t i = 0; i < len && n <= stop_after; i++) {
                char c = body[i];

                if (in_string) {
                        if (escaped)
                                escaped = false;
                        else if (c == '\\')
                                escaped = true;
                        else if (c == '"')
                                in_string = false;
                        continue;
                }
                if (c == ' ' || c == '\t' || c == '\n' || c == '\r')
                        continue;
                if (opened && c != '}' && c != ']')
                        n++;            /* a container's first member */
                opened = c == '{' || c == '[';
                if (c == ',')
                        n++;
                else if (c == '"')
                        in_string = true;
        }
        return n;
}

int doc_parse_bounded(const char *body, size_t len, size_t max_elements, json_t **ret_doc,
                      struct error *err) {
        json_error_t jerr;
        /* JSON_REJECT_DUPLICATES stays, measured (bench/json, bench/README.md): it costs 1.6%
         * of the parse (23k of 1.41M instructions for the 8.8 KB push) and keeps one body one
         * meaning. jansson keeps the last of two equal keys, other readers of the same bytes
         * (events_raw keeps them; a proxy or a script in front of us) may keep the first, so
         * with duplicates two readers could see two values. A signature proves who sent a
         * body, not that everyone reads it alike, and the generic source's token proves less
         * (whoever holds it, e.g. a CI script writing JSON by hand). docs/operations.md promises 400. */
        json_t *doc;

        if (max_elements == 0)
                max_elements = DOC_MAX_ELEMENTS_DEFAULT;
        /* jansson's tree costs ~60-220 bytes a value whatever the text: a 1 MiB body of
         * empty objects would take ~78 MB. Counting first bounds that by the limit. */
        if (doc_count_elements(body, len, max_elements) > max_elements)
                return error_set(err, EBADMSG, "invalid_json", "max_json_elements",
                                 "The body has more than %zu JSON values (max_json_elements)",
                                 max_elements);
        doc = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
        if (!doc)
                return error_set(err, EBADMSG, "invalid_json", NULL,
                                 "Invalid JSON at line %d column %d: %s",
                                 jerr.line, jerr.column, jerr.text);
        if (!json_is_object(doc)) {
                json_decref(doc);
                return error_set(err, EBADMSG, "invalid_payload", NULL,
                                 "The body must be a JSON object");
        }
        *ret_doc = doc;
        return 0;
}

int doc_parse(const char *body, size_t len, json_t **ret_doc, struct error *err) {
        return doc_parse_bounded(body, len, DOC_MAX_ELEMENTS_DEFAULT, ret_doc, err);
}

json_t *doc_get(json_t *obj, const char *path) {
        char key[128];

        while (obj && *path) {
                const char *dot = strchr(path, '.');
                size_t n = dot ? (size_t) (dot - path) : strlen(path);

                if (!json_is_object(obj) || n >= sizeof(key))
                        return NULL;
                memcpy(key, path, n);
                key[n] = '\0';
                obj = json_object_get(obj, key);
                path += n + (dot ? 1 : 0);
        }
        return obj;
}

const char *doc_string(json_t *obj, const char *path) {
        return json_string_value(doc_get(obj, path));
}

json_t *doc_error(const char *code, const char *fmt, ...) {
        char msg[512];
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        return json_pack("{s:{s:s,s:s}}", "error", "code", code, "message", msg);
}
