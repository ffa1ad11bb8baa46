/* json.c - the JSON nesting limit (see json.h). Owned by libshared.
 *
 * The scan is one loop over the bytes with a counter, no recursion and no
 * allocation, so any input is measured in constant stack. It only has to
 * agree with jansson's lexer on which brackets open a level: outside a
 * string every '[' and '{' does; a '"' starts a string that ends at the
 * next '"' not escaped by a backslash. Wherever the two could disagree
 * (control bytes in a string, a bad escape, an unterminated string) jansson
 * stops with an error before recursing any further, so counting on past
 * that point can only refuse input jansson would refuse anyway.
 *
 * The stack check needs pthread_getattr_np, hence _GNU_SOURCE in this file
 * only. Each thread looks its stack up once.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include "jobmill/json.h"

int
jm_json_depth(const char *buf, size_t len, int limit, size_t *at)
{
    if (limit < 0)
        limit = 0;
    int depth = 0, max = 0;
    for (size_t i = 0; buf != NULL && i < len; i++) {
        char c = buf[i];
        if (c == '"') {
            for (i++; i < len && buf[i] != '"'; i++)
                if (buf[i] == '\\')
                    i++; /* the escaped byte (\" included) cannot end the string */
            continue;
        }
        if (c == '[' || c == '{') {
            if (++depth > max && (max = depth) > limit) {
                if (at != NULL)
                    *at = i;
                return depth;
            }
        } else if (c == ']' || c == '}') {
            if (depth == 0 || --depth == 0)
                break; /* jansson recurses no further: an error or the end */
        }
    }
    return max;
}

/* position fills line (1-based) and column (1-based, in UTF-8 characters)
 * of the byte at offset at, as jansson counts them. */
static void
position(const char *buf, size_t at, int *line, int *column)
{
    int l = 1, c = 0;
    for (size_t i = 0; i <= at; i++) {
        if (buf[i] == '\n') {
            l++;
            c = 0;
        } else if (((unsigned char)buf[i] & 0xC0) != 0x80) {
            c++;
        }
    }
    *line = l;
    *column = c;
}

int
jm_json_check(const char *buf, size_t len, const char *what, jm_error *err)
{
    size_t at = 0;
    if (jm_json_depth(buf, len, JM_JSON_MAX_DEPTH, &at) <= JM_JSON_MAX_DEPTH)
        return JM_OK;
    int line, column;
    position(buf, at, &line, &column);
    return jm_error_set(err, JM_ERR_INVALID, NULL,
                        "%s nested deeper than the nesting limit of %d levels (line %d, column %d)",
                        what != NULL ? what : "JSON", JM_JSON_MAX_DEPTH, line, column);
}

static _Thread_local int stack_known; /* 0 not looked up, 1 known, -1 unknown */
static _Thread_local uintptr_t stack_low;

/* stack_left returns the bytes of stack below the caller's frame on this
 * thread, or SIZE_MAX when the thread's stack cannot be found out. */
static size_t
stack_left(void)
{
    if (stack_known == 0) {
        pthread_attr_t a;
        void *addr = NULL;
        size_t size = 0;
        stack_known = -1;
        if (pthread_getattr_np(pthread_self(), &a) == 0) {
            if (pthread_attr_getstack(&a, &addr, &size) == 0 && addr != NULL) {
                stack_low = (uintptr_t)addr;
                stack_known = 1;
            }
            pthread_attr_destroy(&a);
        }
    }
    if (stack_known != 1)
        return SIZE_MAX;
    uintptr_t here = (uintptr_t)__builtin_frame_address(0);
    return here > stack_low ? (size_t)(here - stack_low) : 0;
}

static void set_error(json_error_t *e, const char *source, int line, int column, size_t pos,
                      const char *fmt, ...) __attribute__((format(printf, 6, 7)));

/* set_error fills e as jansson does: text, then the code in its last byte. */
static void
set_error(json_error_t *e, const char *source, int line, int column, size_t pos, const char *fmt,
          ...)
{
    if (e == NULL)
        return;
    e->line = line;
    e->column = column;
    e->position = (int)pos;
    snprintf(e->source, sizeof(e->source), "%s", source);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->text, JSON_ERROR_TEXT_LENGTH - 1, fmt, ap);
    va_end(ap);
    e->text[JSON_ERROR_TEXT_LENGTH - 2] = '\0';
    e->text[JSON_ERROR_TEXT_LENGTH - 1] = (char)json_error_stack_overflow;
}

/* refused tells whether buf must not reach jansson (nesting past the limit,
 * or more than this thread's stack can hold), filling error when it must. */
static bool
refused(const char *buf, size_t len, json_error_t *error, const char *source)
{
    size_t at = 0;
    int depth = jm_json_depth(buf, len, JM_JSON_MAX_DEPTH, &at);
    if (depth > JM_JSON_MAX_DEPTH) {
        int line, column;
        position(buf, at, &line, &column);
        set_error(error, source, line, column, at + 1,
                  "nested deeper than the nesting limit of %d levels", JM_JSON_MAX_DEPTH);
        return true;
    }
    size_t left = stack_left();
    if (left < JM_JSON_STACK_NEED(depth)) {
        set_error(error, source, 1, 0, 0,
                  "nested %d levels deep: this thread has %zu bytes of stack left, "
                  "%zu needed",
                  depth, left, (size_t)JM_JSON_STACK_NEED(depth));
        return true;
    }
    return false;
}

json_t *
jm_json_loadb(const char *buf, size_t len, size_t flags, json_error_t *error)
{
    if (buf != NULL && refused(buf, len, error, "<buffer>"))
        return NULL;
    return json_loadb(buf, len, flags, error);
}

json_t *
jm_json_loads(const char *text, size_t flags, json_error_t *error)
{
    if (text != NULL && refused(text, strlen(text), error, "<string>"))
        return NULL;
    return json_loads(text, flags, error);
}

bool
jm_json_error_is_depth(const json_error_t *error)
{
    return error != NULL && json_error_code(error) == json_error_stack_overflow;
}
