/* dashboard: GET / is the dashboard page (web/dashboard.html), embedded at build time by
 * scripts/embed-html with the Content-Security-Policy that admits exactly its inline style
 * and script. The page holds no data: it reads the query API from the browser. */
#pragma once

#include <stddef.h>

struct dashboard_header {
        const char *name, *value;
};

struct dashboard_page {
        const char *body;                       /* HTML, UTF-8 */
        size_t len;
        const struct dashboard_header *headers; /* Content-Type, CSP, caching... */
        size_t n_headers;
};

/* The page and the headers to answer GET (or HEAD) with; everything it points to is static,
 * never freed. Thread-safe. */
struct dashboard_page dashboard_page(void);

/* Defined in the generated $(BUILD)/dashboard_page.c (scripts/embed-html). */
extern const char dashboard_html[];
extern const size_t dashboard_html_len;
extern const char dashboard_csp[];
