/* json.h - the one JSON nesting limit of jobmill and the loaders that
 * enforce it. Owned by libshared; every JSON text the project parses (api
 * request bodies, handler results, payloads, stored records, the bodies of
 * HTTP workers to come) goes through jm_json_loadb / jm_json_loads.
 *
 * jansson parses and (like its encoder and json_decref) frees nested values
 * by recursion, about 80 bytes of stack per level to parse and 300 to dump.
 * A civetweb server thread has 100 KiB of stack (Debian builds civetweb
 * 1.15 with USE_STACK_SIZE=102400; there is no run-time option), so a
 * hostile body of 100,000 nested arrays crashed the api. The loaders here
 * first measure the nesting with an iterative byte scan (no recursion,
 * strings and their escapes skipped) and refuse anything deeper than
 * JM_JSON_MAX_DEPTH before jansson sees a byte; a value that passed can then
 * be dumped and freed safely. They also refuse to parse on a thread whose
 * remaining stack could not hold the value's dump (JM_JSON_STACK_PER_LEVEL
 * per level plus JM_JSON_STACK_SLACK), so a small stack gives an error, not
 * a crash.
 */
#ifndef JOBMILL_JSON_H
#define JOBMILL_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <jansson.h>
#include "jobmill/err.h"

/* The deepest nesting accepted anywhere: "[]" and "{}" are depth 1, a
 * scalar 0. 100 is the default max_nesting of Ruby's JSON (so Sidekiq's
 * effective limit as well): what Sidekiq accepts, jobmill accepts. */
#define JM_JSON_MAX_DEPTH 100

/* Stack a thread must have left to parse, dump and free a value of depth d:
 * (d + 8) * JM_JSON_STACK_PER_LEVEL + JM_JSON_STACK_SLACK bytes (jansson 2.14
 * measured at 304 bytes per level for json_dumps, its deepest path; the 8
 * extra levels cover a value embedded in a response). At the limit: ~49 KiB. */
#define JM_JSON_STACK_PER_LEVEL 384
#define JM_JSON_STACK_SLACK 8192
#define JM_JSON_STACK_NEED(d) (((size_t)(d) + 8) * JM_JSON_STACK_PER_LEVEL + JM_JSON_STACK_SLACK)

/* jm_json_depth scans len bytes of JSON text without recursion and returns
 * its deepest nesting, stopping at the first bracket that goes past limit
 * (it then returns limit + 1 and stores that bracket's byte offset in *at,
 * when at is not NULL). Brackets inside strings do not count (escapes,
 * \" included, are skipped). The scan ends where jansson's parse would
 * stop recursing: at the end of the first complete top-level array or
 * object, or at a closing bracket with nothing open. Never fails. */
int jm_json_depth(const char *buf, size_t len, int limit, size_t *at);

/* jm_json_check returns JM_OK when buf nests at most JM_JSON_MAX_DEPTH
 * deep, or JM_ERR_INVALID with err naming the limit and the line and column
 * of the first bracket past it. what ("payload", "stdout", ...) starts the
 * message and may be NULL ("JSON"). */
int jm_json_check(const char *buf, size_t len, const char *what, jm_error *err);

/* jm_json_loadb / jm_json_loads are json_loadb / json_loads (same flags,
 * same json_error_t) that first refuse nesting deeper than
 * JM_JSON_MAX_DEPTH, and any value this thread's stack could not hold:
 * then they return NULL with error->text "nested deeper than the nesting
 * limit of 100 levels" (or a stack message), the position of the offending
 * bracket, and json_error_code(error) == json_error_stack_overflow. */
json_t *jm_json_loadb(const char *buf, size_t len, size_t flags, json_error_t *error);
json_t *jm_json_loads(const char *text, size_t flags, json_error_t *error);

/* jm_json_error_is_depth tells whether a failed jm_json_load* refused the
 * input for its nesting (or for this thread's stack). */
bool jm_json_error_is_depth(const json_error_t *error);

#endif
