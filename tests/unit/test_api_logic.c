/* test_api_logic.c - the api's pure logic without a server: route matching
 * (404 vs 405 and the Allow list, the admin flags), the bearer tokens file and
 * what a token may do with and without an admin tokens file. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "api.h"

static const api_route *
route_of(const api_route_hit *hit)
{
    size_t n;
    return &api_routes(&n)[hit->index];
}

Test(api_routes, matches_method_and_template_and_extracts_the_parameter)
{
    api_route_hit hit;
    cr_assert_eq(api_route_match("POST", "/v1/jobs", &hit), JM_OK);
    cr_assert_str_eq(route_of(&hit)->path, "/v1/jobs");
    cr_assert_eq(api_route_match("POST", "/v1/jobs/batch", &hit), JM_OK);
    cr_assert_str_eq(route_of(&hit)->path, "/v1/jobs/batch", "a literal beats {id}");
    cr_assert_eq(api_route_match("GET", "/v1/jobs/abcd-123", &hit), JM_OK);
    cr_assert_str_eq(route_of(&hit)->path, "/v1/jobs/{id}");
    cr_assert_str_eq(hit.param, "abcd-123");
    cr_assert_eq(api_route_match("POST", "/v1/queues/emails/pause", &hit), JM_OK);
    cr_assert_str_eq(hit.param, "emails");
    cr_assert_eq(api_route_match("GET", "/healthz", &hit), JM_OK);
}

Test(api_routes, unknown_path_is_404_and_wrong_method_405_with_allow)
{
    api_route_hit hit;
    cr_assert_eq(api_route_match("GET", "/v2/jobs", &hit), JM_ERR_NOT_FOUND);
    cr_assert_lt(hit.path_route, 0, "no template matches: 404");
    cr_assert_eq(api_route_match("GET", "/v1/jobs/a/b/c", &hit), JM_ERR_NOT_FOUND);
    cr_assert_lt(hit.path_route, 0);
    cr_assert_eq(api_route_match("DELETE", "/v1/jobs/x1", &hit), JM_ERR_NOT_FOUND);
    cr_assert_geq(hit.path_route, 0, "the path exists: 405");
    cr_assert_str_eq(hit.allow, "GET");
    cr_assert_eq(api_route_match("GET", "/v1/jobs", &hit), JM_ERR_NOT_FOUND);
    cr_assert_str_eq(hit.allow, "POST");
    cr_assert_eq(api_route_match("GET", "/v1/jobs/", &hit), JM_ERR_NOT_FOUND,
                 "an empty parameter is not a job id");
}

static char *
tokens_file(const char *text)
{
    char *path = strdup("/tmp/jm-tokens-XXXXXX");
    int fd = mkstemp(path);
    cr_assert_geq(fd, 0);
    cr_assert_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    return path;
}

Test(api_auth, tokens_file_skips_comments_and_blanks_and_trims)
{
    char *path = tokens_file("# ops team\n\n  alpha-1  \n\tbeta_2\r\n#gamma\n");
    jm_error err;
    api_auth *a = api_auth_load(path, &err);
    cr_assert_not_null(a, "%s", err.msg);
    cr_assert_eq(api_auth_count(a), 2);
    cr_assert(api_auth_check(a, "Bearer alpha-1"));
    cr_assert(api_auth_check(a, "Bearer beta_2"));
    cr_assert(!api_auth_check(a, "Bearer gamma"), "a comment is no token");
    cr_assert(!api_auth_check(a, "Bearer alpha-"), "no prefix match");
    cr_assert(!api_auth_check(a, "Bearer alpha-12"));
    cr_assert(!api_auth_check(a, "Basic alpha-1"));
    cr_assert(!api_auth_check(a, NULL));
    cr_assert(!api_auth_check(a, ""));
    api_auth_free(a);
    unlink(path);
    free(path);
}

Test(api_auth, bad_tokens_files_are_refused_with_the_line)
{
    jm_error err;
    char *path = tokens_file("ok\nhas space\n");
    cr_assert_null(api_auth_load(path, &err));
    cr_assert_eq(err.code, JM_ERR_INVALID);
    cr_assert_not_null(strstr(err.msg, ":2:"), "%s", err.msg);
    unlink(path);
    free(path);
    cr_assert_null(api_auth_load("/nonexistent/tokens", &err));
    cr_assert_eq(err.code, JM_ERR_INVALID);
}

Test(api_routes, operator_actions_are_admin_routes_and_submit_and_reads_are_not)
{
    size_t n;
    const api_route *r = api_routes(&n);
    static const char *const admin[] = {"/v1/jobs/{id}/cancel", "/v1/jobs/{id}/retry",
                                        "/v1/queues/{queue}/pause", "/v1/queues/{queue}/resume",
                                        "/v1/queues/{queue}/limits"};
    int seen = 0;
    for (size_t i = 0; i < n; i++) {
        bool is_admin = (r[i].flags & API_ROUTE_ADMIN) != 0;
        cr_assert(!(is_admin && (r[i].flags & API_ROUTE_OPEN)), "%s is open and admin", r[i].path);
        for (size_t k = 0; k < sizeof(admin) / sizeof(admin[0]); k++)
            if (strcmp(r[i].path, admin[k]) == 0) {
                cr_assert(is_admin, "%s %s must be an admin route", r[i].method, r[i].path);
                seen++;
            }
        if (strcmp(r[i].path, "/v1/jobs") == 0 || strcmp(r[i].path, "/v1/jobs/batch") == 0 ||
            strcmp(r[i].method, "GET") == 0)
            cr_assert(!is_admin, "%s %s is for submitters and readers", r[i].method, r[i].path);
    }
    cr_assert_eq(seen, 5);
}

/* decide loads the given sets (NULL text: that file unset) into an app and
 * returns what hdr may do on a plain route and on an admin route. */
static void
decide(const char *user, const char *admin, const char *hdr, api_access *plain, api_access *adm)
{
    api_app app;
    memset(&app, 0, sizeof(app));
    pthread_rwlock_init(&app.auth_lock, NULL);
    jm_error err;
    char *up = user != NULL ? tokens_file(user) : NULL;
    char *ap = admin != NULL ? tokens_file(admin) : NULL;
    if (up != NULL)
        cr_assert_not_null(app.auth = api_auth_load(up, &err), "%s", err.msg);
    if (ap != NULL)
        cr_assert_not_null(app.admin_auth = api_auth_load(ap, &err), "%s", err.msg);
    *plain = api_auth_decide(&app, hdr, false);
    *adm = api_auth_decide(&app, hdr, true);
    api_auth_free(app.auth);
    api_auth_free(app.admin_auth);
    pthread_rwlock_destroy(&app.auth_lock);
    char *paths[] = {up, ap};
    for (size_t i = 0; i < 2; i++) {
        if (paths[i] != NULL)
            unlink(paths[i]);
        free(paths[i]);
    }
}

Test(api_auth, admin_set_keeps_submit_tokens_off_admin_routes)
{
    api_access p, a;
    decide(NULL, NULL, NULL, &p, &a);
    cr_assert_eq(p, API_ACCESS_OK, "auth off");
    cr_assert_eq(a, API_ACCESS_OK, "auth off");
    decide("sub\n", NULL, "Bearer sub", &p, &a);
    cr_assert_eq(p, API_ACCESS_OK);
    cr_assert_eq(a, API_ACCESS_OK, "without an admin file every token may do everything");
    decide("sub\n", "adm\n", "Bearer sub", &p, &a);
    cr_assert_eq(p, API_ACCESS_OK);
    cr_assert_eq(a, API_ACCESS_FORBIDDEN);
    decide("sub\n", "adm\n", "Bearer adm", &p, &a);
    cr_assert_eq(p, API_ACCESS_OK, "an admin token may submit");
    cr_assert_eq(a, API_ACCESS_OK);
    decide("sub\n", "adm\n", "Bearer nope", &p, &a);
    cr_assert_eq(p, API_ACCESS_UNAUTHORIZED);
    cr_assert_eq(a, API_ACCESS_UNAUTHORIZED);
    decide("sub\n", "adm\n", NULL, &p, &a);
    cr_assert_eq(p, API_ACCESS_UNAUTHORIZED);
    cr_assert_eq(a, API_ACCESS_UNAUTHORIZED);
    decide(NULL, "adm\n", "Bearer sub", &p, &a);
    cr_assert_eq(p, API_ACCESS_UNAUTHORIZED, "an admin file alone turns auth on");
    cr_assert_eq(a, API_ACCESS_UNAUTHORIZED);
    decide(NULL, "adm\n", "Bearer adm", &p, &a);
    cr_assert_eq(p, API_ACCESS_OK);
    cr_assert_eq(a, API_ACCESS_OK);
    decide("", "", "Bearer adm", &p, &a);
    cr_assert_eq(p, API_ACCESS_UNAUTHORIZED, "empty files: nobody gets in");
    cr_assert_eq(a, API_ACCESS_UNAUTHORIZED);
}
