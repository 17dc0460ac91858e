/* dashboard: the embedded dashboard page and the headers it is served with. */
#include "dashboard.h"


static const struct dashboard_header headers[] = {
        { "Content-Type", "text/html; charset=utf-8" },
        { "Content-Security-Policy", dashboard_csp },
        { "X-Content-Type-Options", "nosniff" },
        { "Cache-Control", "no-cache" },
        { "Referrer-Policy", "no-referrer" },
};


struct dashboard_page dashboard_page(void) {
        return (struct dashboard_page) {
                .body = dashboard_html,
                .len = dashboard_html_len,
                .headers = headers,
                .n_headers = sizeof(headers) / sizeof(headers[0]),
        };
}
