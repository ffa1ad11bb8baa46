/* text.c - the growable text buffer (see text.h). */
#include "jobmill/text.h"
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool
reserve(jm_text *t, size_t extra)
{
    if (t->failed)
        return false;
    if (t->len + extra + 1 <= t->cap)
        return true;
    size_t cap = t->cap ? t->cap : 1024;
    while (cap < t->len + extra + 1)
        cap *= 2;
    char *p = realloc(t->buf, cap);
    if (p == NULL) {
        t->failed = true;
        return false;
    }
    t->buf = p;
    t->cap = cap;
    return true;
}

void
jm_text_add(jm_text *t, const char *s, size_t n)
{
    if (!reserve(t, n))
        return;
    memcpy(t->buf + t->len, s, n);
    t->len += n;
    t->buf[t->len] = '\0';
}

void
jm_text_puts(jm_text *t, const char *s)
{
    jm_text_add(t, s, strlen(s));
}

void
jm_text_putc(jm_text *t, char c)
{
    jm_text_add(t, &c, 1);
}

size_t
jm_text_utf8_len(const unsigned char *s)
{
    if (s[0] < 0x80)
        return 1;
    size_t n = s[0] >= 0xc2 && s[0] <= 0xdf   ? 2
               : s[0] >= 0xe0 && s[0] <= 0xef ? 3
               : s[0] >= 0xf0 && s[0] <= 0xf4 ? 4
                                              : 0;
    for (size_t i = 1; i < n; i++)
        if ((s[i] & 0xc0) != 0x80)
            return 0;
    if (n == 3 && ((s[0] == 0xe0 && s[1] < 0xa0) || (s[0] == 0xed && s[1] >= 0xa0)))
        return 0;
    if (n == 4 && ((s[0] == 0xf0 && s[1] < 0x90) || (s[0] == 0xf4 && s[1] >= 0x90)))
        return 0;
    return n;
}

void
jm_text_json_string(jm_text *t, const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    jm_text_putc(t, '"');
    const unsigned char *run = p;
    while (*p != '\0') {
        const char *rep = NULL;
        char u[8];
        size_t n = jm_text_utf8_len(p);
        if (n > 1) {
            p += n;
            continue;
        }
        if (n == 0)
            rep = "\xef\xbf\xbd"; /* U+FFFD */
        else if (*p == '"')
            rep = "\\\"";
        else if (*p == '\\')
            rep = "\\\\";
        else if (*p == '\n')
            rep = "\\n";
        else if (*p == '\r')
            rep = "\\r";
        else if (*p == '\t')
            rep = "\\t";
        else if (*p == '\b')
            rep = "\\b";
        else if (*p == '\f')
            rep = "\\f";
        else if (*p < 0x20) {
            snprintf(u, sizeof(u), "\\u%04X", *p); /* as jansson writes it */
            rep = u;
        }
        if (rep == NULL) {
            p++;
            continue;
        }
        jm_text_add(t, (const char *)run, (size_t)(p - run));
        jm_text_puts(t, rep);
        p++;
        run = p;
    }
    jm_text_add(t, (const char *)run, (size_t)(p - run));
    jm_text_putc(t, '"');
}

bool
jm_text_failed(const jm_text *t)
{
    return t->failed;
}

char *
jm_text_take(jm_text *t, size_t *len)
{
    if (t->failed) {
        jm_text_free(t);
        return NULL;
    }
    char *out = t->buf != NULL ? t->buf : strdup("");
    if (len != NULL)
        *len = t->len;
    t->buf = NULL;
    t->len = t->cap = 0;
    return out;
}

void
jm_text_free(jm_text *t)
{
    free(t->buf);
    t->buf = NULL;
    t->len = t->cap = 0;
    t->failed = false;
}
