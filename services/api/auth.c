/* auth.c - optional bearer-token authentication.
 *
 * The tokens file (api.tokens_file) holds one token per line; blank lines and
 * lines starting with # are ignored, surrounding whitespace is trimmed. It is
 * read at start and again on SIGHUP (api_auth_reload swaps the set under
 * app->auth_lock; a bad file keeps the old set). A request carries
 * "Authorization: Bearer <token>". Every configured token is compared, each in
 * time that depends only on the presented token's length, so neither which
 * token matched nor how many leading bytes matched leaks through timing.
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
add_line(api_auth *a, const char *path, int lineno, char *line, jm_error *err)
{
    while (is_space(*line))
        line++;
    size_t n = strlen(line);
    while (n > 0 && is_space(line[n - 1]))
        line[--n] = '\0';
    if (n == 0 || line[0] == '#')
        return JM_OK;
    if (n > API_TOKEN_MAX)
        return jm_error_set(err, JM_ERR_INVALID, "api.tokens_file",
                            "%s:%d: token longer than %d bytes", path, lineno, API_TOKEN_MAX);
    for (size_t i = 0; i < n; i++)
        if (is_space(line[i]) || (unsigned char)line[i] < 0x21 || line[i] == 0x7f)
            return jm_error_set(err, JM_ERR_INVALID, "api.tokens_file",
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

api_auth *
api_auth_load(const char *path, jm_error *err)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        jm_error_set(err, JM_ERR_INVALID, "api.tokens_file", "%s: cannot open: %s", path,
                     strerror(errno));
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
        jm_error_set(err, JM_ERR_INVALID, "api.tokens_file", "%s: cannot read: %s", path,
                     strerror(errno));
        goto failed;
    }
    if (len > API_TOKENS_FILE_MAX) {
        jm_error_set(err, JM_ERR_INVALID, "api.tokens_file", "%s: file is over %ld bytes", path,
                     API_TOKENS_FILE_MAX);
        goto failed;
    }
    buf[len] = '\0';
    if (strlen(buf) != len) {
        jm_error_set(err, JM_ERR_INVALID, "api.tokens_file", "%s: file contains a NUL byte", path);
        goto failed;
    }
    int lineno = 1;
    for (char *line = buf; line != NULL; lineno++) {
        char *nl = strchr(line, '\n');
        if (nl != NULL)
            *nl = '\0';
        if (add_line(a, path, lineno, line, err) != JM_OK)
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

bool
api_auth_allowed(api_app *app, const char *header)
{
    pthread_rwlock_rdlock(&app->auth_lock);
    bool ok = app->auth == NULL || api_auth_check(app->auth, header);
    pthread_rwlock_unlock(&app->auth_lock);
    return ok;
}

void
api_auth_reload(api_app *app)
{
    const char *path = app->cfg->api_tokens_file;
    if (path == NULL || path[0] == '\0') {
        jm_log_warn("SIGHUP: no tokens file configured; nothing to reload", NULL);
        return;
    }
    jm_error err;
    jm_error_clear(&err);
    api_auth *fresh = api_auth_load(path, &err);
    if (fresh == NULL) {
        jm_log_error("SIGHUP: tokens file not reloaded; the old tokens stay", "error", err.msg,
                     NULL);
        return;
    }
    pthread_rwlock_wrlock(&app->auth_lock);
    api_auth *old = app->auth;
    app->auth = fresh;
    pthread_rwlock_unlock(&app->auth_lock);
    api_auth_free(old);
    jm_log_info("tokens file reloaded", "file", path, JM_LOG_INT("tokens", api_auth_count(fresh)),
                NULL);
}
