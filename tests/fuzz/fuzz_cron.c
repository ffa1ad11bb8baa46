/* fuzz_cron.c - libFuzzer target: cron expressions, POSIX TZ rules, TZif
 * files and the next fire time (libshared cron.c, tz.c).
 *
 * Input: "TZif..." is a zone file, read by jm_tz_parse and asked for its
 * offset at a spread of instants. Otherwise the first line is a cron
 * expression, the second a POSIX TZ string (empty: UTC), the rest picks the
 * instants asked about.
 *
 * Invariants: a zone's offsets stay within +-26 h; a parsed cron's next fire
 * time is a whole second strictly after the instant asked about, and asking
 * again from just before it gives it again (next is a function of the
 * wall-clock times, not of where the search started); a refusal names the
 * field "cron" or "tz".
 */
#include "fuzz_common.h"
#include "jobmill/cron.h"
#include "jobmill/tz.h"

static void
probe_zone(const jm_tz *tz, const uint8_t *data, size_t size)
{
    for (size_t i = 0; i < 16; i++) {
        int64_t t = (int64_t)(i * 977) * 86400 * 37 - 4000000000LL;
        if (i < size)
            t += (int64_t)data[i] * 3600 * 24 * 7;
        int32_t off = jm_tz_offset(tz, t, NULL);
        FUZZ_CHECK(off > -26 * 3600 && off < 26 * 3600, "offset %d at %lld", off, (long long)t);
    }
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    jm_error err;
    jm_error_clear(&err);
    if (size >= 4 && memcmp(data, "TZif", 4) == 0) {
        jm_tz *tz = jm_tz_parse(data, size, &err);
        FUZZ_CHECK(tz != NULL || strcmp(err.field, "tz") == 0, "refusal without field");
        if (tz != NULL)
            probe_zone(tz, data + 4, size - 4);
        jm_tz_free(tz);
        return 0;
    }
    char *text = fuzz_strndup(data, size);
    char *nl = strchr(text, '\n');
    char *spec = nl != NULL ? nl + 1 : text + strlen(text);
    if (nl != NULL)
        *nl = '\0';
    char *nl2 = strchr(spec, '\n');
    const char *rest = nl2 != NULL ? nl2 + 1 : "";
    if (nl2 != NULL)
        *nl2 = '\0';
    jm_cron c;
    int rc = jm_cron_parse(text, &c, &err);
    FUZZ_CHECK(rc == JM_OK || strcmp(err.field, "cron") == 0, "cron refusal field %s", err.field);
    jm_tz *tz = jm_tz_posix(spec[0] != '\0' ? spec : "UTC0", &err);
    if (tz != NULL)
        probe_zone(tz, (const uint8_t *)rest, strlen(rest));
    if (rc == JM_OK && tz != NULL) {
        for (size_t i = 0; i < 3; i++) {
            int64_t after = 1700000000000LL + (int64_t)i * 86400000LL * 61;
            if (i < strlen(rest))
                after += (int64_t)(unsigned char)rest[i] * 3600000LL * 13 + 17;
            int64_t next = 0;
            if (jm_cron_next(&c, tz, after, &next, &err) != JM_OK)
                continue;
            FUZZ_CHECK(next > after && next % 1000 == 0, "next %lld after %lld", (long long)next,
                       (long long)after);
            int64_t again = 0;
            FUZZ_CHECK(jm_cron_next(&c, tz, next - 1, &again, &err) == JM_OK && again == next,
                       "next from %lld is %lld, from just before it %lld", (long long)after,
                       (long long)next, (long long)again);
        }
    }
    jm_tz_free(tz);
    free(text);
    return 0;
}
