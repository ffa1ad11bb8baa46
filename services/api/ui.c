/* ui.c - the dashboard: GET /ui/ and GET /ui/{asset} serve the files of
 * services/api/ui/, embedded at build time (ui_assets.h), and GET /ui
 * redirects to /ui/ (so the page's relative URLs resolve).
 *
 * These routes are open (API_ROUTE_OPEN): the files hold no data. The page
 * calls /v1 with the bearer token the user typed in (kept in the tab's
 * sessionStorage), so auth applies to every piece of data it shows. Every
 * answer carries a strict Content-Security-Policy (scripts and styles only
 * from this origin, no inline code, no frames, no other connections) and
 * nosniff; the page builds its DOM with textContent, never innerHTML.
 */
#include <string.h>
#include "api.h"
#include "ui_assets.h"

#define API_UI_CSP                                                                                 \
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "              \
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

static const char *const ui_headers[] = {"Content-Security-Policy",
                                         API_UI_CSP,
                                         "X-Content-Type-Options",
                                         "nosniff",
                                         "X-Frame-Options",
                                         "DENY",
                                         "Referrer-Policy",
                                         "no-referrer",
                                         NULL};

/* send_asset serves the embedded file name, or 404 not_found. */
static int
send_asset(api_req *req, const char *name)
{
    for (const api_ui_file *a = api_ui_files; a->name != NULL; a++)
        if (strcmp(a->name, name) == 0)
            return api_send_text_h(req, 200, a->type, a->data, a->len, ui_headers);
    return api_send_error(req, 404, "not_found", NULL, "no dashboard file %s", name);
}

int
api_ui_redirect(api_req *req)
{
    static const char *const hdrs[] = {"Location", "ui/", NULL};
    return api_send_text_h(req, 301, "text/plain; charset=utf-8", "ui/\n", 4, hdrs);
}

int
api_ui_index(api_req *req)
{
    return send_asset(req, "index.html");
}

int
api_ui_asset(api_req *req)
{
    return send_asset(req, req->param);
}
