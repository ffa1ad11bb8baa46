/* text.h - a growable text buffer for responses built by hand (job JSON,
 * the metrics exposition).
 *
 * Ownership: a jm_text is caller storage; its bytes are owned by it until
 * jm_text_take hands them over (free them) or jm_text_free releases them.
 * Appends never fail loudly: on out of memory the buffer is marked failed,
 * later appends do nothing, and the caller checks jm_text_failed once at
 * the end.
 */
#ifndef JOBMILL_TEXT_H
#define JOBMILL_TEXT_H

#include <stdbool.h>
#include <stddef.h>

typedef struct jm_text {
    char *buf; /* NUL-terminated when len > 0 */
    size_t len;
    size_t cap;
    bool failed;
} jm_text;

#define JM_TEXT_INIT                                                                               \
    {                                                                                              \
        NULL, 0, 0, false                                                                          \
    }

/* jm_text_add appends n bytes of s; jm_text_puts a C string; jm_text_putc one byte. */
void jm_text_add(jm_text *t, const char *s, size_t n);
void jm_text_puts(jm_text *t, const char *s);
void jm_text_putc(jm_text *t, char c);
/* jm_text_json_string appends s as a JSON string, quoted and escaped as
 * jansson does (control characters, quote and backslash); bytes that are not
 * valid UTF-8 become U+FFFD, so the output is always valid JSON. */
void jm_text_json_string(jm_text *t, const char *s);
/* jm_text_utf8_len returns the length of the valid UTF-8 sequence at s
 * (1-4; 1 for any ASCII byte), or 0 when the bytes there are not one
 * (overlong forms, surrogates and truncated sequences included). */
size_t jm_text_utf8_len(const unsigned char *s);
/* jm_text_failed tells whether an append ran out of memory. */
bool jm_text_failed(const jm_text *t);
/* jm_text_take returns the bytes (NUL-terminated; "" for none) for the caller
 * to free and empties t; NULL when t failed (t is then released). */
char *jm_text_take(jm_text *t, size_t *len);
void jm_text_free(jm_text *t);

#endif
