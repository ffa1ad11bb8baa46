/* auth.c - optional bearer-token authentication, with an optional admin set.
 *
 * A tokens file holds one token per line; blank lines and lines starting
 * with # are ignored, surrounding whitespace is trimmed. Two files may be
 * configured: api.tokens_file (submit and read tokens) and
 * api.admin_tokens_file (admin tokens). Auth is on when either is set. With
 * no admin file every valid token may use every route (as before the admin
 * set existed); with one, routes flagged API_ROUTE_ADMIN (cancel, retry,
 * pause, resume) take only admin tokens: a valid non-admin token gets 403,
 * an unknown one 401. Admin tokens may use every route.
 *
 * Both files are read at start and again on SIGHUP (api_auth_reload swaps
 * both sets together under app->auth_lock; a bad file keeps the old sets).
 * A request carries "Authorization: Bearer <token>". Every configured token
 * of both sets is compared, each in time that depends only on the presented
 * token's length, so neither which token (or set) matched nor how many
 * leading bytes matched leaks through timing. Tokens are never logged.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "api.h"
#include "jobmill/log.h"

#define API_TOKENS_FILE_MAX (1024L * 1024L)
#define API_TOKEN_MAX 4096

struct api_auth {
    char **tokens;
    size_t n;
};

void
api_auth_free(api_auth *a)
{
    if (a == NULL)
        return;
    for (size_t i = 0; i < a->n; i++) {
        /* scrub secrets before handing memory back */
        volatile char *p = a->tokens[i];
        while (*p != '\0')
            *p++ = '\0';
        free(a->tokens[i]);
    }
    free(a->tokens);
    free(a);
}

static bool
is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f';
}

/* add_line trims one line and stores it unless blank or a comment. */
static int
add_line(api_auth *a, const char *key, const char *path, int lineno, char *line, jm_error *err)
{
    while (is_space(*line))
        line++;
    size_t n = strlen(line);
    while (n > 0 && is_space(line[n - 1]))
        line[--n] = '\0';
    if (n == 0 || line[0] == '#')
        return JM_OK;
    if (n > API_TOKEN_MAX)
        return jm_error_set(err, JM_ERR_INVALID, key, "%s:%d: token longer than %d bytes", path,
                            lineno, API_TOKEN_MAX);
    for (size_t i = 0; i < n; i++)
        if (is_space(line[i]) || (unsigned char)line[i] < 0x21 || line[i] == 0x7f)
            return jm_error_set(err, JM_ERR_INVALID, key,
                                "%s:%d: a token must not contain spaces or control characters",
                                path, lineno);
    char **v = realloc(a->tokens, sizeof(*v) * (a->n + 1));
    if (v == NULL)
        return jm_error_set(err, JM_ERR_NOMEM, NULL, "out of memory");
    a->tokens = v;
    if ((a->tokens[a->n] = strdup(line)) == NULL)
        return jm_error_set(err, JM_ERR_NOMEM, NULL, "out of memory");
    a->n++;
    return JM_OK;
}

/* load_file reads one tokens file; errors name the setting key. */
static api_auth *
load_file(const char *path, const char *key, jm_error *err)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        jm_error_set(err, JM_ERR_INVALID, key, "%s: cannot open: %s", path, strerror(errno));
        return NULL;
    }
    size_t len = 0;
    api_auth *a = calloc(1, sizeof(*a));
    char *buf = malloc(API_TOKENS_FILE_MAX + 1);
    if (a == NULL || buf == NULL) {
        jm_error_set(err, JM_ERR_NOMEM, NULL, "out of memory");
        goto failed;
    }
    len = fread(buf, 1, API_TOKENS_FILE_MAX + 1, f);
    if (ferror(f)) {
        jm_error_set(err, JM_ERR_INVALID, key, "%s: cannot read: %s", path, strerror(errno));
        goto failed;
    }
    if (len > API_TOKENS_FILE_MAX) {
        jm_error_set(err, JM_ERR_INVALID, key, "%s: file is over %ld bytes", path,
                     API_TOKENS_FILE_MAX);
        goto failed;
    }
    buf[len] = '\0';
    if (strlen(buf) != len) {
        jm_error_set(err, JM_ERR_INVALID, key, "%s: file contains a NUL byte", path);
        goto failed;
    }
    int lineno = 1;
    for (char *line = buf; line != NULL; lineno++) {
        char *nl = strchr(line, '\n');
        if (nl != NULL)
            *nl = '\0';
        if (add_line(a, key, path, lineno, line, err) != JM_OK)
            goto failed;
        line = nl != NULL ? nl + 1 : NULL;
    }
    memset(buf, 0, len);
    free(buf);
    fclose(f);
    return a;

failed:
    if (buf != NULL)
        memset(buf, 0, len < API_TOKENS_FILE_MAX ? len : API_TOKENS_FILE_MAX);
    free(buf);
    api_auth_free(a);
    fclose(f);
    return NULL;
}

api_auth *
api_auth_load(const char *path, jm_error *err)
{
    return load_file(path, "api.tokens_file", err);
}

size_t
api_auth_count(const api_auth *a)
{
    return a != NULL ? a->n : 0;
}

/* ct_equal compares presented (len n) with token in time depending only on n. */
static int
ct_equal(const unsigned char *presented, size_t n, const char *token)
{
    size_t tn = strlen(token);
    unsigned diff = (unsigned)(n != tn);
    for (size_t i = 0; i < n; i++)
        diff |= presented[i] ^ (unsigned char)token[tn > 0 ? i % tn : 0];
    return diff == 0;
}

bool
api_auth_check(const api_auth *a, const char *header)
{
    if (header == NULL)
        return false;
    while (*header == ' ')
        header++;
    if (strncasecmp(header, "Bearer", 6) != 0 || (header[6] != ' ' && header[6] != '\t'))
        return false;
    const char *tok = header + 6;
    while (*tok == ' ' || *tok == '\t')
        tok++;
    size_t n = strlen(tok);
    while (n > 0 && is_space(tok[n - 1]))
        n--;
    if (n == 0 || n > API_TOKEN_MAX)
        return false;
    int ok = 0;
    for (size_t i = 0; i < a->n; i++)
        ok |= ct_equal((const unsigned char *)tok, n, a->tokens[i]);
    return ok != 0;
}

api_access
api_auth_decide(api_app *app, const char *header, bool admin_route)
{
    pthread_rwlock_rdlock(&app->auth_lock);
    const api_auth *user = app->auth, *admin = app->admin_auth;
    /* both sets are always compared: the time never tells which matched */
    bool is_user = user != NULL && api_auth_check(user, header);
    bool is_admin = admin != NULL && api_auth_check(admin, header);
    pthread_rwlock_unlock(&app->auth_lock);
    if (user == NULL && admin == NULL)
        return API_ACCESS_OK; /* auth off */
    if (is_admin)
        return API_ACCESS_OK;
    if (!is_user)
        return API_ACCESS_UNAUTHORIZED;
    return admin_route && admin != NULL ? API_ACCESS_FORBIDDEN : API_ACCESS_OK;
}

/* load_sets reads the configured files: *user and *admin stay NULL for an
 * unset setting. On error both are NULL and err names the file. */
static int
load_sets(const jm_config *cfg, api_auth **user, api_auth **admin, jm_error *err)
{
    *user = *admin = NULL;
    const char *up = cfg->api_tokens_file, *ap = cfg->api_admin_tokens_file;
    if (up != NULL && (*user = load_file(up, "api.tokens_file", err)) == NULL)
        return err->code;
    if (ap != NULL && (*admin = load_file(ap, "api.admin_tokens_file", err)) == NULL) {
        api_auth_free(*user);
        *user = NULL;
        return err->code;
    }
    return JM_OK;
}

int
api_auth_init(api_app *app, jm_error *err)
{
    const jm_config *cfg = app->cfg;
    int rc = load_sets(cfg, &app->auth, &app->admin_auth, err);
    if (rc != JM_OK || (app->auth == NULL && app->admin_auth == NULL))
        return rc;
    if (api_auth_count(app->auth) + api_auth_count(app->admin_auth) == 0)
        jm_log_warn("the tokens files hold no token: every /v1 request will get 401", NULL);
    else if (app->admin_auth == NULL)
        jm_log_info("bearer-token auth on", JM_LOG_INT("tokens", api_auth_count(app->auth)), NULL);
    else
        jm_log_info("bearer-token auth on; admin routes take admin tokens only",
                    JM_LOG_INT("tokens", api_auth_count(app->auth)),
                    JM_LOG_INT("admin_tokens", api_auth_count(app->admin_auth)), NULL);
    return JM_OK;
}

void
api_auth_reload(api_app *app)
{
    const jm_config *cfg = app->cfg;
    if (cfg->api_tokens_file == NULL && cfg->api_admin_tokens_file == NULL) {
        jm_log_warn("SIGHUP: no tokens file configured; nothing to reload", NULL);
        return;
    }
    jm_error err;
    jm_error_clear(&err);
    api_auth *user, *admin;
    if (load_sets(cfg, &user, &admin, &err) != JM_OK) {
        jm_log_error("SIGHUP: tokens file not reloaded; the old tokens stay", "error", err.msg,
                     NULL);
        return;
    }
    pthread_rwlock_wrlock(&app->auth_lock);
    api_auth *old_user = app->auth, *old_admin = app->admin_auth;
    app->auth = user;
    app->admin_auth = admin;
    pthread_rwlock_unlock(&app->auth_lock);
    api_auth_free(old_user);
    api_auth_free(old_admin);
    jm_log_info("tokens file reloaded", JM_LOG_INT("tokens", api_auth_count(user)),
                JM_LOG_INT("admin_tokens", api_auth_count(admin)), NULL);
}
