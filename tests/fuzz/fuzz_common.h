/* fuzz_common.h - what the libFuzzer targets in tests/fuzz share: an
 * invariant check that crashes (so libFuzzer saves the input), and small
 * input helpers. */
#ifndef JM_FUZZ_COMMON_H
#define JM_FUZZ_COMMON_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* FUZZ_CHECK(cond, ...) aborts with a message when an invariant fails. */
#define FUZZ_CHECK(cond, ...)                                                                      \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "invariant failed at %s:%d: %s: ", __FILE__, __LINE__, #cond);         \
            fprintf(stderr, __VA_ARGS__);                                                          \
            fputc('\n', stderr);                                                                   \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

/* fuzz_strndup copies n bytes into a new NUL-terminated string (the input
 * may hold NULs: the copy then ends at the first one, as a C caller sees). */
static inline char *
fuzz_strndup(const uint8_t *data, size_t n)
{
    char *s = malloc(n + 1);
    if (s == NULL)
        abort();
    memcpy(s, data, n);
    s[n] = '\0';
    return s;
}

/* fuzz_split cuts [data, data+size) at the first byte sep: *head is the part
 * before, the rest after (or empty). Returns the length of the head. */
static inline size_t
fuzz_split(const uint8_t *data, size_t size, uint8_t sep, const uint8_t **rest, size_t *rest_len)
{
    const uint8_t *p = memchr(data, sep, size);
    if (p == NULL) {
        *rest = data + size;
        *rest_len = 0;
        return size;
    }
    *rest = p + 1;
    *rest_len = size - (size_t)(p - data) - 1;
    return (size_t)(p - data);
}

/* The stack of the api's server threads (Debian's civetweb is built with
 * USE_STACK_SIZE 102400): the targets that parse what the api parses run on
 * a thread of that size, so a recursion the api could not afford crashes
 * here too. */
#define FUZZ_API_STACK 102400

/* One input, handed to a target's thread. */
typedef struct fuzz_input {
    const uint8_t *data;
    size_t size;
} fuzz_input;

/* fuzz_on_api_stack runs fn on a thread with the api's stack, passing it a
 * fuzz_input of data, and waits for it. */
static inline void
fuzz_on_api_stack(void *(*fn)(void *), const uint8_t *data, size_t size)
{
    fuzz_input in = {data, size};
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, FUZZ_API_STACK);
    pthread_t t;
    if (pthread_create(&t, &attr, fn, &in) != 0)
        abort();
    pthread_join(t, NULL);
    pthread_attr_destroy(&attr);
}

#endif
