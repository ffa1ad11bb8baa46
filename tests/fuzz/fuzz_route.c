/* fuzz_route.c - libFuzzer target: the api's route matcher and query
 * parsing, and the bearer-token check.
 *
 * Input: "METHOD\nPATH\nQUERY\nAUTHORIZATION". PATH is what civetweb hands
 * the api as local_uri (already URL-decoded), QUERY the raw query string.
 *
 * Invariants: api_route_match agrees with a plain segment-by-segment
 * reference matcher (same route, same parameter, 404 vs 405 and the Allow
 * list); the parameter fits API_PARAM_MAX and holds no '/'; ?wait parses to
 * 0-60 s or is refused; ?state/limit/cursor parse to a known state, a limit
 * of 1-1000 and a bounded cursor or are refused (the api's own static
 * api_req_wait and parse_list_args, compiled in from jobs_get.c and queues.c);
 * the token check accepts exactly "Bearer <known token>".
 */
#include <math.h>
#include <strings.h>
#include <unistd.h>
#include "api.h"
#include "fuzz_common.h"

int fuzz_parse_wait(const api_req *req, double *secs);
int fuzz_parse_list_args(const api_req *req, jm_state *state, int *limit, char *cursor,
                         size_t cursor_len, jm_error *err);

static api_auth *auth;
static const char *const TOKENS[] = {"s3cret-token-1", "tok2"};

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    char path[] = "/tmp/jm-fuzz-tokens-XXXXXX";
    int fd = mkstemp(path);
    if (fd < 0)
        abort();
    const char text[] = "# tokens\n  s3cret-token-1  \n\ntok2\n";
    if (write(fd, text, sizeof(text) - 1) != (ssize_t)(sizeof(text) - 1))
        abort();
    close(fd);
    jm_error err;
    jm_error_clear(&err);
    auth = api_auth_load(path, &err);
    unlink(path);
    if (auth == NULL || api_auth_count(auth) != 2)
        abort();
    return 0;
}

/* ref_match: template tpl matches path segment by segment; a {param}
 * segment matches one non-empty segment shorter than API_PARAM_MAX. */
static bool
ref_match(const char *tpl, const char *path, char *param)
{
    param[0] = '\0';
    if (tpl[0] != '/' || path[0] != '/')
        return false;
    for (;;) {
        tpl++, path++; /* past '/' */
        size_t tl = strcspn(tpl, "/"), pl = strcspn(path, "/");
        if (tl >= 2 && tpl[0] == '{' && tpl[tl - 1] == '}') {
            if (pl == 0 || pl >= API_PARAM_MAX)
                return false;
            memcpy(param, path, pl);
            param[pl] = '\0';
        } else if (tl != pl || memcmp(tpl, path, tl) != 0) {
            return false;
        }
        tpl += tl, path += pl;
        if (*tpl == '\0' || *path == '\0')
            return *tpl == '\0' && *path == '\0';
    }
}

static void
check_route(const char *method, const char *path)
{
    api_route_hit hit;
    int rc = api_route_match(method, path, &hit);
    size_t n;
    const api_route *routes = api_routes(&n);
    int want = -1, want_path = -1;
    char want_param[API_PARAM_MAX] = "", scratch[API_PARAM_MAX];
    for (size_t i = 0; i < n; i++) {
        if (!ref_match(routes[i].path, path, scratch))
            continue;
        if (strcmp(routes[i].method, method) == 0 && want < 0) {
            want = (int)i;
            memcpy(want_param, scratch, sizeof(scratch));
            break;
        }
        if (want_path < 0)
            want_path = (int)i;
    }
    FUZZ_CHECK(memchr(hit.param, '\0', sizeof(hit.param)) != NULL, "param not terminated");
    FUZZ_CHECK(memchr(hit.allow, '\0', sizeof(hit.allow)) != NULL, "allow not terminated");
    if (want >= 0) {
        FUZZ_CHECK(rc == JM_OK && hit.index == want, "%s %s: route %d, reference %d", method, path,
                   hit.index, want);
        FUZZ_CHECK(strcmp(hit.param, want_param) == 0, "param %s, reference %s", hit.param,
                   want_param);
        FUZZ_CHECK(strchr(hit.param, '/') == NULL, "param with a slash: %s", hit.param);
        FUZZ_CHECK((strchr(routes[want].path, '{') != NULL) == (hit.param[0] != '\0'),
                   "param presence for %s", routes[want].path);
        return;
    }
    FUZZ_CHECK(rc == JM_ERR_NOT_FOUND && hit.index == -1, "%s %s matched route %d", method, path,
               hit.index);
    FUZZ_CHECK(hit.path_route == want_path, "%s %s: path route %d, reference %d", method, path,
               hit.path_route, want_path);
    if (want_path >= 0) {
        FUZZ_CHECK(hit.allow[0] != '\0', "405 without Allow");
        /* every listed method serves this path, and the asked one is not listed */
        char allow[64];
        memcpy(allow, hit.allow, sizeof(allow));
        for (char *save = NULL, *m = strtok_r(allow, ", ", &save); m != NULL;
             m = strtok_r(NULL, ", ", &save)) {
            FUZZ_CHECK(strcmp(m, method) != 0, "Allow lists the refused method %s", m);
            bool serves = false;
            for (size_t i = 0; i < n; i++)
                if (strcmp(routes[i].method, m) == 0 && ref_match(routes[i].path, path, scratch))
                    serves = true;
            FUZZ_CHECK(serves, "Allow lists %s, which does not serve %s", m, path);
        }
    } else {
        FUZZ_CHECK(hit.allow[0] == '\0', "404 with Allow %s", hit.allow);
    }
}

static void
check_query(const char *query)
{
    struct mg_request_info ri;
    memset(&ri, 0, sizeof(ri));
    ri.query_string = query;
    api_req req;
    memset(&req, 0, sizeof(req));
    req.ri = &ri;
    req.route_index = -1;

    double secs = -1;
    if (fuzz_parse_wait(&req, &secs) == 0)
        FUZZ_CHECK(isfinite(secs) && secs >= 0 && secs <= 60, "wait %g", secs);

    jm_state st = JM_STATE_UNKNOWN;
    int limit = -1;
    char cursor[64];
    memset(cursor, 'x', sizeof(cursor));
    jm_error err;
    jm_error_clear(&err);
    if (fuzz_parse_list_args(&req, &st, &limit, cursor, sizeof(cursor), &err) == JM_OK) {
        FUZZ_CHECK(st >= 0 && st < JM_STATE_COUNT, "state %d", (int)st);
        FUZZ_CHECK(limit >= 1 && limit <= 1000, "limit %d", limit);
        FUZZ_CHECK(memchr(cursor, '\0', sizeof(cursor)) != NULL, "cursor not terminated");
    } else {
        FUZZ_CHECK(err.field[0] != '\0' && err.msg[0] != '\0', "refusal names no field");
    }
    char buf[8];
    int got = api_req_query(&req, "state", buf, sizeof(buf));
    FUZZ_CHECK(got >= -1 && got <= 1, "api_req_query %d", got);
    if (got == 1)
        FUZZ_CHECK(memchr(buf, '\0', sizeof(buf)) != NULL, "value not terminated");
}

static void
check_auth(const char *header)
{
    bool ok = api_auth_check(auth, header);
    const char *shown = header;
    /* reference: leading spaces, "Bearer" (any case), blanks, a known token,
     * trailing white space */
    bool want = false;
    while (*header == ' ')
        header++;
    if (strncasecmp(header, "Bearer", 6) == 0 && (header[6] == ' ' || header[6] == '\t')) {
        const char *t = header + 6;
        while (*t == ' ' || *t == '\t')
            t++;
        size_t len = strlen(t);
        while (len > 0 && strchr(" \t\r\n\v\f", t[len - 1]) != NULL)
            len--;
        for (size_t i = 0; i < sizeof(TOKENS) / sizeof(TOKENS[0]); i++)
            if (len == strlen(TOKENS[i]) && memcmp(t, TOKENS[i], len) == 0)
                want = true;
    }
    FUZZ_CHECK(ok == want, "Authorization \"%s\": check %d, reference %d", shown, ok, want);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *rest, *rest2, *rest3;
    size_t rest_len, rest2_len, rest3_len;
    size_t ml = fuzz_split(data, size, '\n', &rest, &rest_len);
    size_t pl = fuzz_split(rest, rest_len, '\n', &rest2, &rest2_len);
    size_t ql = fuzz_split(rest2, rest2_len, '\n', &rest3, &rest3_len);
    char *method = fuzz_strndup(data, ml);
    char *path = fuzz_strndup(rest, pl);
    char *query = fuzz_strndup(rest2, ql);
    char *authz = fuzz_strndup(rest3, rest3_len);
    check_route(method, path);
    check_query(query);
    check_auth(authz);
    free(method);
    free(path);
    free(query);
    free(authz);
    return 0;
}
