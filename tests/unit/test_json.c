/* test_json.c - unit tests of libshared/src/json.c, the one JSON nesting
 * limit (issue 9 item 1): the iterative depth scan (brackets inside strings,
 * escaped quotes and backslashes, where the scan stops), the limit itself
 * (exactly JM_JSON_MAX_DEPTH parses, one more is refused with its position
 * and json_error_stack_overflow), 100,000 levels refused without recursion,
 * and the stack guard: a value at the limit parses, dumps and frees on a
 * thread with JM_JSON_STACK_NEED bytes, and a thread with less refuses it
 * instead of crashing.
 */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include "jobmill/job.h"
#include "jobmill/json.h"

/* nest returns n opening brackets of kind ('[' or '{'), then inner, then
 * the n closers, in a new string: "{" levels are {"k":...}. */
static char *
nest(char kind, size_t n, const char *inner)
{
    const char *open = kind == '[' ? "[" : "{\"k\":";
    const char *close = kind == '[' ? "]" : "}";
    size_t ol = strlen(open), il = strlen(inner);
    char *s = malloc(n * (ol + 1) + il + 1);
    cr_assert_not_null(s);
    size_t k = 0;
    for (size_t i = 0; i < n; i++, k += ol)
        memcpy(s + k, open, ol);
    memcpy(s + k, inner, il);
    k += il;
    for (size_t i = 0; i < n; i++)
        s[k++] = close[0];
    s[k] = '\0';
    return s;
}

static int
depth_of(const char *s)
{
    return jm_json_depth(s, strlen(s), 1000, NULL);
}

Test(json, depth_of_simple_values)
{
    cr_assert_eq(depth_of("1"), 0);
    cr_assert_eq(depth_of("\"x\""), 0);
    cr_assert_eq(depth_of(""), 0);
    cr_assert_eq(depth_of("[]"), 1);
    cr_assert_eq(depth_of("{}"), 1);
    cr_assert_eq(depth_of("[[],[[]],{}]"), 3);
    cr_assert_eq(depth_of("{\"a\":{\"b\":[1,{\"c\":[]}]}}"), 5);
    cr_assert_eq(depth_of(" \n\t[ [ ] ]\n"), 2);
}

Test(json, brackets_inside_strings_do_not_count)
{
    cr_assert_eq(depth_of("[\"[[[[{{{{\"]"), 1);
    cr_assert_eq(depth_of("{\"[[[\":\"]]]}}}\"}"), 1);
    cr_assert_eq(depth_of("\"[[[[\""), 0);
    /* an escaped quote does not end the string */
    cr_assert_eq(depth_of("[\"a\\\"[[[[\"]"), 1);
    cr_assert_eq(depth_of("[\"\\\"\",[\"\\\"]]]\"]]"), 2);
    /* an escaped backslash does not escape the quote after it */
    cr_assert_eq(depth_of("[\"\\\\\",[[1]]]"), 3);
    cr_assert_eq(depth_of("[\"\\\\\\\"[\",[1]]"), 2);
    /* \u escapes and UTF-8 are plain string bytes */
    cr_assert_eq(depth_of("[\"\\u005b\\u005b\xc3\xa9[\",[]]"), 2);
}

Test(json, scan_stops_where_jansson_stops_recursing)
{
    /* after the first complete value nothing is parsed as nested */
    char *tail = nest('[', 500, "1");
    char *s = malloc(strlen(tail) + 4);
    strcpy(s, "[] ");
    strcat(s, tail);
    cr_assert_eq(jm_json_depth(s, strlen(s), JM_JSON_MAX_DEPTH, NULL), 1);
    json_error_t e;
    cr_assert_null(jm_json_loads(s, 0, &e));
    cr_assert_not(jm_json_error_is_depth(&e), "%s", e.text); /* jansson's own error */
    /* a closer with nothing open ends it too */
    strcpy(s, "]  ");
    strcat(s, tail);
    cr_assert_eq(jm_json_depth(s, strlen(s), JM_JSON_MAX_DEPTH, NULL), 0);
    free(s);
    free(tail);
    /* an unterminated string swallows the rest */
    cr_assert_eq(depth_of("[\"[[[[[["), 1);
    cr_assert_eq(depth_of("[\"abc\\"), 1);
}

Test(json, length_bounds_the_scan)
{
    const char *s = "[[[[]]]]";
    cr_assert_eq(jm_json_depth(s, 2, 1000, NULL), 2);
    cr_assert_eq(jm_json_depth(s, 0, 1000, NULL), 0);
    cr_assert_eq(jm_json_depth(NULL, 10, 1000, NULL), 0);
    /* NUL bytes are plain bytes to a length-bounded scan */
    const char nul[] = "[\"\0[[\",[\0]]";
    cr_assert_eq(jm_json_depth(nul, sizeof(nul) - 1, 1000, NULL), 2);
}

Test(json, exactly_at_limit_parses_one_more_is_refused)
{
    for (int k = 0; k < 2; k++) {
        char kind = k == 0 ? '[' : '{';
        char *at = nest(kind, JM_JSON_MAX_DEPTH, "1");
        char *over = nest(kind, JM_JSON_MAX_DEPTH + 1, "1");
        size_t pos = 0;
        cr_assert_eq(jm_json_depth(at, strlen(at), JM_JSON_MAX_DEPTH, &pos), JM_JSON_MAX_DEPTH);
        cr_assert_eq(jm_json_depth(over, strlen(over), JM_JSON_MAX_DEPTH, &pos),
                     JM_JSON_MAX_DEPTH + 1);
        size_t open_len = kind == '[' ? 1 : 5;
        cr_assert_eq(pos, JM_JSON_MAX_DEPTH * open_len, "offset of the first bracket too deep");

        json_error_t e;
        json_t *v = jm_json_loads(at, 0, &e);
        cr_assert_not_null(v, "%s", e.text);
        char *text = json_dumps(v, JSON_COMPACT);
        cr_assert_str_eq(text, at);
        free(text);
        json_decref(v);

        cr_assert_null(jm_json_loads(over, 0, &e));
        cr_assert(jm_json_error_is_depth(&e));
        cr_assert_eq(json_error_code(&e), json_error_stack_overflow);
        cr_assert_str_eq(e.text, "nested deeper than the nesting limit of 100 levels");
        cr_assert_eq(e.line, 1);
        cr_assert_eq(e.column, (int)(JM_JSON_MAX_DEPTH * open_len + 1));
        cr_assert_eq(e.position, (int)(JM_JSON_MAX_DEPTH * open_len + 1));
        cr_assert_str_eq(e.source, "<string>");

        cr_assert_null(jm_json_loadb(over, strlen(over), 0, &e));
        cr_assert(jm_json_error_is_depth(&e));
        cr_assert_str_eq(e.source, "<buffer>");
        cr_assert_null(jm_json_loadb(over, strlen(over), 0, NULL)); /* no error storage */
        free(at);
        free(over);
    }
}

Test(json, limit_counts_any_mix_of_arrays_and_objects)
{
    /* [{"k":[{"k":...}]}] alternating, 101 levels */
    size_t n = JM_JSON_MAX_DEPTH + 1;
    char *s = malloc(n * 6 + 8);
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (i % 2 == 0) {
            s[k++] = '[';
        } else {
            memcpy(s + k, "{\"k\":", 5);
            k += 5;
        }
    }
    s[k++] = '0';
    for (size_t i = n; i-- > 0;)
        s[k++] = i % 2 == 0 ? ']' : '}';
    s[k] = '\0';
    json_error_t e;
    cr_assert_null(jm_json_loads(s, JSON_DECODE_ANY, &e));
    cr_assert(jm_json_error_is_depth(&e));
    /* drop the outermost array: exactly the limit */
    s[k - 1] = '\0';
    json_t *v = jm_json_loads(s + 1, JSON_DECODE_ANY, &e);
    cr_assert_not_null(v, "%s", e.text);
    json_decref(v);
    free(s);
}

Test(json, hundred_thousand_levels_refused_at_once, .timeout = 10)
{
    char *s = nest('[', 100000, "");
    json_error_t e;
    cr_assert_null(jm_json_loads(s, 0, &e));
    cr_assert(jm_json_error_is_depth(&e));
    cr_assert_eq(e.column, JM_JSON_MAX_DEPTH + 1);
    free(s);
    /* unterminated, with strings of brackets in between */
    size_t n = 100000;
    char *u = malloc(n * 8 + 1);
    for (size_t i = 0; i < n; i++)
        memcpy(u + i * 8, "[\"]]]\",", 7), u[i * 8 + 7] = ' ';
    u[n * 8] = '\0';
    cr_assert_null(jm_json_loads(u, 0, &e));
    cr_assert(jm_json_error_is_depth(&e));
    free(u);
}

Test(json, position_counts_lines_and_characters)
{
    /* two lines, then "é" (two bytes, one column) before the brackets */
    char *deep = nest('[', JM_JSON_MAX_DEPTH + 1, "");
    char *s = malloc(strlen(deep) + 16);
    strcpy(s, "\n  \n\xc3\xa9");
    strcat(s, deep);
    json_error_t e;
    cr_assert_null(jm_json_loadb(s, strlen(s), JSON_DECODE_ANY, &e));
    cr_assert(jm_json_error_is_depth(&e));
    cr_assert_eq(e.line, 3);
    cr_assert_eq(e.column, JM_JSON_MAX_DEPTH + 2);
    free(s);
    free(deep);
}

Test(json, check_names_the_limit)
{
    char *over = nest('{', JM_JSON_MAX_DEPTH + 1, "null");
    jm_error err;
    jm_error_clear(&err);
    cr_assert_eq(jm_json_check(over, strlen(over), "stdout", &err), JM_ERR_INVALID);
    cr_assert_str_eq(
        err.msg, "stdout nested deeper than the nesting limit of 100 levels (line 1, column 501)");
    cr_assert_eq(jm_json_check(over + 5, strlen(over + 5) - 1, NULL, &err), JM_OK);
    free(over);
}

Test(json, other_errors_and_flags_pass_through)
{
    json_error_t e;
    cr_assert_null(jm_json_loads("{\"a\":1,\"a\":2}", JSON_REJECT_DUPLICATES, &e));
    cr_assert_not(jm_json_error_is_depth(&e));
    cr_assert_eq(json_error_code(&e), json_error_duplicate_key);
    cr_assert_null(jm_json_loads("[1,", 0, &e));
    cr_assert_not(jm_json_error_is_depth(&e));
    cr_assert_null(jm_json_loads(NULL, 0, &e));
    json_t *v = jm_json_loads("\"x\"", JSON_DECODE_ANY, &e);
    cr_assert(json_is_string(v));
    json_decref(v);
    cr_assert_null(jm_json_loads("\"x\"", 0, &e)); /* not an array or object */
}

Test(json, stored_text_deeper_than_the_limit_reads_as_null)
{
    char *over = nest('[', JM_JSON_MAX_DEPTH + 1, "");
    json_t *v = jm_json_parse_text(over);
    cr_assert(json_is_null(v));
    json_decref(v);
    free(over);
}

Test(json, submit_spec_refuses_a_payload_past_the_limit)
{
    /* a body built in code (not parsed through the limit) */
    json_t *inner = json_array();
    for (int i = 1; i < JM_JSON_MAX_DEPTH + 1; i++) {
        json_t *outer = json_array();
        json_array_append_new(outer, inner);
        inner = outer;
    }
    json_t *body = json_pack("{s:s, s:o}", "type", "t", "payload", inner);
    jm_job_spec spec;
    jm_error err;
    jm_error_clear(&err);
    cr_assert_eq(jm_job_spec_from_json(body, "", &spec, &err), JM_ERR_INVALID);
    cr_assert_str_eq(err.field, "payload");
    cr_assert_str_eq(err.msg, "payload is nested deeper than the nesting limit of 100 levels");
    jm_job_spec_clear(&spec);
    /* one level less is fine */
    json_object_set(body, "payload", json_array_get(json_object_get(body, "payload"), 0));
    cr_assert_eq(jm_job_spec_from_json(body, "", &spec, &err), JM_OK, "%s", err.msg);
    jm_job_spec_clear(&spec);
    json_decref(body);
}

/* ---- the stack guard ---- */

typedef struct stack_run {
    char kind;
    int depth;
    int parsed; /* 1 parsed, dumped and freed; 0 refused */
    char text[JSON_ERROR_TEXT_LENGTH];
} stack_run;

static void *
stack_main(void *arg)
{
    stack_run *r = arg;
    char *s = nest(r->kind, (size_t)r->depth, "0");
    json_error_t e;
    json_t *v = jm_json_loads(s, 0, &e);
    if (v != NULL) {
        char *text = json_dumps(v, JSON_COMPACT);
        r->parsed = text != NULL && strcmp(text, s) == 0;
        free(text);
        json_decref(v);
    } else {
        r->parsed = 0;
        snprintf(r->text, sizeof(r->text), "%s", e.text);
    }
    free(s);
    return NULL;
}

/* on_thread runs stack_main on a thread with a stack of size bytes. */
static stack_run
on_thread(char kind, int depth, size_t size)
{
    stack_run r = {.kind = kind, .depth = depth, .parsed = -1};
    pthread_attr_t a;
    pthread_t t;
    cr_assert_eq(pthread_attr_init(&a), 0);
    cr_assert_eq(pthread_attr_setstacksize(&a, size), 0);
    cr_assert_eq(pthread_create(&t, &a, stack_main, &r), 0);
    pthread_join(t, NULL);
    pthread_attr_destroy(&a);
    return r;
}

Test(json, limit_fits_the_stack_it_claims_to_need)
{
    /* What the guard asks for at the limit, plus a little for the thread's
     * own frames, is enough for jansson to parse, dump and free the value. */
    size_t size = JM_JSON_STACK_NEED(JM_JSON_MAX_DEPTH) + 16384;
    for (int k = 0; k < 2; k++) {
        stack_run r = on_thread(k == 0 ? '[' : '{', JM_JSON_MAX_DEPTH, size);
        cr_assert_eq(r.parsed, 1, "%s", r.text);
    }
}

Test(json, a_thread_short_of_stack_refuses_instead_of_crashing)
{
    size_t small = 32768;
    stack_run r = on_thread('[', JM_JSON_MAX_DEPTH, small);
    cr_assert_eq(r.parsed, 0);
    cr_assert_not_null(strstr(r.text, "bytes of stack left"), "%s", r.text);
    /* shallow values still parse there */
    r = on_thread('{', 3, small);
    cr_assert_eq(r.parsed, 1, "%s", r.text);
}
