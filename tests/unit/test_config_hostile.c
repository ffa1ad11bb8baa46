/* test_config_hostile.c - unit tests of config_yaml.c against hostile YAML:
 * nesting 100,000 levels deep (flow, block, mappings, complex keys), alias
 * expansion bombs ("billion laughs"), merge keys, undefined aliases and
 * 100,000 anchors. Each must be refused with the config module's
 * "FILE:LINE: problem" message, quickly and in bounded memory; nothing may
 * recurse or expand. Pins issue 9 item 1 for the config parser.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "jobmill/config.h"

#define DEEP 100000

static double
now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Loads text (len bytes) as the YAML document "hostile.yaml" into a fresh
 * config and expects JM_ERR_INVALID with exactly the message want, within
 * two seconds. */
static void
expect_refused(const char *text, size_t len, const char *want)
{
    jm_config cfg;
    jm_error err;
    jm_error_clear(&err);
    cr_assert_eq(jm_config_defaults(&cfg), JM_OK);
    double t0 = now_s();
    int rc = jm_config_load_yaml(&cfg, "hostile.yaml", text, len, &err);
    double took = now_s() - t0;
    jm_config_free(&cfg);
    cr_assert_eq(rc, JM_ERR_INVALID, "rc %d: %s", rc, err.msg);
    cr_assert_str_eq(err.msg, want);
    cr_assert_lt(took, 2.0, "took %.3f s", took);
}

/* repeat returns prefix + n copies of unit + middle + n copies of close +
 * suffix in a new string (close may be ""). */
static char *
repeat(const char *prefix, const char *unit, size_t n, const char *middle, const char *close,
       const char *suffix, size_t *len)
{
    size_t ul = strlen(unit), cl = strlen(close);
    size_t cap = strlen(prefix) + n * (ul + cl) + strlen(middle) + strlen(suffix) + 1;
    char *s = malloc(cap);
    cr_assert_not_null(s);
    size_t k = 0;
    memcpy(s + k, prefix, strlen(prefix));
    k += strlen(prefix);
    for (size_t i = 0; i < n; i++, k += ul)
        memcpy(s + k, unit, ul);
    memcpy(s + k, middle, strlen(middle));
    k += strlen(middle);
    for (size_t i = 0; i < n; i++, k += cl)
        memcpy(s + k, close, cl);
    memcpy(s + k, suffix, strlen(suffix) + 1);
    k += strlen(suffix);
    *len = k;
    return s;
}

Test(config_hostile, flow_sequences_100000_deep)
{
    size_t len;
    char *s = repeat("worker:\n  queues: ", "[", DEEP, "a", "]", "\n", &len);
    expect_refused(s, len, "hostile.yaml:2: nested deeper than 8 levels");
    free(s);
}

Test(config_hostile, unterminated_flow_100000_deep)
{
    size_t len;
    char *s = repeat("worker:\n  queues: ", "[", DEEP, "", "", "", &len);
    expect_refused(s, len, "hostile.yaml:2: nested deeper than 8 levels");
    free(s);
}

Test(config_hostile, flow_mappings_100000_deep)
{
    size_t len;
    char *s = repeat("api:\n  x: ", "{a: ", DEEP, "1", "}", "\n", &len);
    expect_refused(s, len, "hostile.yaml:2: nested deeper than 8 levels");
    free(s);
}

Test(config_hostile, block_sequences_100000_deep)
{
    /* "- - - a": each dash opens a block sequence one column further in */
    size_t len;
    char *s = repeat("worker:\n  queues:\n    ", "- ", DEEP, "a", "", "\n", &len);
    expect_refused(s, len, "hostile.yaml:3: nested deeper than 8 levels");
    free(s);
}

Test(config_hostile, block_mappings_deep)
{
    /* one level per line, indented one more column each time */
    size_t n = 2000, cap = n * (n + 4) + 64, k = 0;
    char *s = malloc(cap);
    cr_assert_not_null(s);
    for (size_t i = 0; i < n; i++) {
        memset(s + k, ' ', i);
        k += i;
        memcpy(s + k, "a:\n", 3);
        k += 3;
    }
    s[k] = '\0';
    expect_refused(s, k, "hostile.yaml:9: nested deeper than 8 levels");
    free(s);
}

Test(config_hostile, complex_keys_100000_deep)
{
    size_t len;
    char *s = repeat("? ", "[", DEEP, "a", "]", "\n: 1\n", &len);
    expect_refused(s, len, "hostile.yaml:1: nested deeper than 8 levels");
    free(s);
}

Test(config_hostile, billion_laughs_refused_before_any_expansion)
{
    /* Expanded, "lol9" would be 10^9 strings. */
    static const char bomb[] =
        "worker:\n"
        "  id: &lol lol\n"
        "  queues: &lol1 [*lol, *lol, *lol, *lol, *lol, *lol, *lol, *lol, *lol, *lol]\n"
        "x2: &lol2 [*lol1, *lol1, *lol1, *lol1, *lol1, *lol1, *lol1, *lol1, *lol1, *lol1]\n"
        "x3: &lol3 [*lol2, *lol2, *lol2, *lol2, *lol2, *lol2, *lol2, *lol2, *lol2, *lol2]\n"
        "x4: &lol4 [*lol3, *lol3, *lol3, *lol3, *lol3, *lol3, *lol3, *lol3, *lol3, *lol3]\n"
        "x5: &lol5 [*lol4, *lol4, *lol4, *lol4, *lol4, *lol4, *lol4, *lol4, *lol4, *lol4]\n"
        "x6: &lol6 [*lol5, *lol5, *lol5, *lol5, *lol5, *lol5, *lol5, *lol5, *lol5, *lol5]\n"
        "x7: &lol7 [*lol6, *lol6, *lol6, *lol6, *lol6, *lol6, *lol6, *lol6, *lol6, *lol6]\n"
        "x8: &lol8 [*lol7, *lol7, *lol7, *lol7, *lol7, *lol7, *lol7, *lol7, *lol7, *lol7]\n"
        "x9: &lol9 [*lol8, *lol8, *lol8, *lol8, *lol8, *lol8, *lol8, *lol8, *lol8, *lol8]\n";
    expect_refused(bomb, sizeof(bomb) - 1, "hostile.yaml:3: aliases are not supported");
}

Test(config_hostile, self_referencing_alias_refused)
{
    static const char loop[] = "worker: &w\n  handlers: *w\n";
    expect_refused(loop, sizeof(loop) - 1, "hostile.yaml:2: aliases are not supported");
}

Test(config_hostile, merge_key_refused)
{
    static const char merge[] = "worker: &base\n  lease_ms: 20000\napi:\n  <<: *base\n";
    expect_refused(merge, sizeof(merge) - 1, "hostile.yaml:4: aliases are not supported");
}

Test(config_hostile, undefined_alias_refused)
{
    static const char undef[] = "worker:\n  id: *nowhere\n";
    expect_refused(undef, sizeof(undef) - 1, "hostile.yaml:2: aliases are not supported");
}

Test(config_hostile, anchors_refused_in_linear_time)
{
    /* libyaml's loader compares each new anchor with every earlier one
     * (quadratic: 80,000 anchors took 13 s); the event pass refuses the
     * first anchor before the loader runs. */
    size_t n = 100000, cap = n * 16 + 64, k = 0;
    char *s = malloc(cap);
    cr_assert_not_null(s);
    k += (size_t)snprintf(s + k, cap - k, "log:\n  level: info\nworker:\n  id: [");
    for (size_t i = 0; i < n; i++)
        k += (size_t)snprintf(s + k, cap - k, "%s&a%zx x", i ? "," : "", i);
    k += (size_t)snprintf(s + k, cap - k, "]\n");
    expect_refused(s, k, "hostile.yaml:4: anchors are not supported");
    free(s);
    /* one anchor, anywhere, is enough */
    static const char one[] = "worker:\n  id: &me w1\n";
    expect_refused(one, sizeof(one) - 1, "hostile.yaml:2: anchors are not supported");
    static const char on_map[] = "worker: &w\n  id: w1\n";
    expect_refused(on_map, sizeof(on_map) - 1, "hostile.yaml:1: anchors are not supported");
}
