/* log.c - one JSON object per line on stderr, written with one write(2). */
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "jobmill/err.h"
#include "jobmill/log.h"

static const char *log_service = "jobmill";
static atomic_int log_min = JM_LOG_INFO;
static const char *const level_names[] = {"debug", "info", "warn", "error"};

void
jm_log_init(const char *service, jm_log_level level)
{
    log_service = service;
    atomic_store(&log_min, (int)level);
}

int
jm_log_level_parse(const char *name, jm_log_level *out)
{
    for (int i = 0; i < 4; i++) {
        if (name != NULL && strcmp(name, level_names[i]) == 0) {
            *out = (jm_log_level)i;
            return JM_OK;
        }
    }
    return JM_ERR_INVALID;
}

int
jm_log_enabled(jm_log_level level)
{
    return (int)level >= atomic_load(&log_min);
}

/* Appends s as a JSON string (quoted, escaped) to buf at *pos, truncating
 * safely at cap (keeps room for the closing bytes). */
static void
put_json_string(char *buf, size_t cap, size_t *pos, const char *s)
{
    size_t p = *pos;
    if (p + 1 < cap)
        buf[p++] = '"';
    for (; s != NULL && *s != '\0' && p + 8 < cap; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            buf[p++] = '\\';
            buf[p++] = (char)c;
        } else if (c == '\n') {
            buf[p++] = '\\';
            buf[p++] = 'n';
        } else if (c < 0x20) {
            p += (size_t)snprintf(buf + p, cap - p, "\\u%04x", c);
        } else {
            buf[p++] = (char)c;
        }
    }
    if (p + 1 < cap)
        buf[p++] = '"';
    *pos = p;
}

static void
put_raw(char *buf, size_t cap, size_t *pos, const char *s)
{
    size_t n = strlen(s);
    if (*pos + n + 1 < cap) {
        memcpy(buf + *pos, s, n);
        *pos += n;
    }
}

void
jm_log(jm_log_level level, const char *msg, ...)
{
    if (!jm_log_enabled(level))
        return;
    char buf[8192];
    size_t pos = 0;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    char stamp[160];
    snprintf(stamp, sizeof(stamp),
             "{\"ts\":\"%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ\",\"level\":", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000);
    put_raw(buf, sizeof(buf), &pos, stamp);
    put_json_string(buf, sizeof(buf), &pos, level_names[level & 3]);
    put_raw(buf, sizeof(buf), &pos, ",\"service\":");
    put_json_string(buf, sizeof(buf), &pos, log_service);
    put_raw(buf, sizeof(buf), &pos, ",\"msg\":");
    put_json_string(buf, sizeof(buf), &pos, msg);
    va_list ap;
    va_start(ap, msg);
    for (;;) {
        const char *key = va_arg(ap, const char *);
        if (key == NULL)
            break;
        put_raw(buf, sizeof(buf), &pos, ",");
        if (key[0] == '\x01') { /* JM_LOG_INT */
            put_json_string(buf, sizeof(buf), &pos, key + 1);
            char num[32];
            snprintf(num, sizeof(num), ":%lld", va_arg(ap, long long));
            put_raw(buf, sizeof(buf), &pos, num);
            continue;
        }
        const char *val = va_arg(ap, const char *);
        put_json_string(buf, sizeof(buf), &pos, key);
        put_raw(buf, sizeof(buf), &pos, ":");
        if (val == NULL)
            put_raw(buf, sizeof(buf), &pos, "null");
        else
            put_json_string(buf, sizeof(buf), &pos, val);
    }
    va_end(ap);
    if (pos + 2 >= sizeof(buf))
        pos = sizeof(buf) - 3;
    buf[pos++] = '}';
    buf[pos++] = '\n';
    ssize_t w = write(STDERR_FILENO, buf, pos);
    (void)w;
}
