/* cron.c - cron expressions (parse) and fire times (next): see cron.h.
 *
 * next works in civil time (the zone's wall clock counted as seconds, as if
 * it were UTC): it finds the next matching wall time by skipping whole
 * months, days, hours and minutes that cannot match, maps that wall time to
 * an instant (the first of two in an overlap, the end of the gap for one in
 * a gap), and repeats until the instant is past the given one. The mapping
 * is monotone, so the first such instant is the answer.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "jobmill/cron.h"

static const char *const month_names[] = {"JAN", "FEB", "MAR", "APR", "MAY", "JUN",
                                          "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"};
static const char *const day_names[] = {"SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"};

typedef struct field_def {
    const char *name;
    int lo, hi;
    const char *const *names; /* NULL or hi - lo + 1 names (day-of-week: 7 for 0-6) */
} field_def;

static const field_def F_SEC = {"second", 0, 59, NULL};
static const field_def F_MIN = {"minute", 0, 59, NULL};
static const field_def F_HOUR = {"hour", 0, 23, NULL};
static const field_def F_MDAY = {"day-of-month", 1, 31, NULL};
static const field_def F_MON = {"month", 1, 12, month_names};
static const field_def F_WDAY = {"day-of-week", 0, 7, day_names};

static int
bad(jm_error *err, const field_def *f, const char *text, const char *why)
{
    /* quoted with control characters shown as '?': an error is one line */
    char shown[JM_CRON_MAX + 1];
    size_t n = 0;
    for (; text[n] != '\0' && n < JM_CRON_MAX; n++)
        shown[n] = (unsigned char)text[n] < 0x20 || text[n] == 0x7f ? '?' : text[n];
    shown[n] = '\0';
    return jm_error_set(err, JM_ERR_INVALID, "cron", "cron %s field \"%s\": %s", f->name, shown,
                        why);
}

/* One value: a number or (month, day-of-week) a three-letter name. */
static const char *
parse_value(const field_def *f, const char *p, int *out)
{
    if (isdigit((unsigned char)*p)) {
        char *end;
        long v = strtol(p, &end, 10);
        if (end - p > 2 || v < f->lo || v > f->hi)
            return NULL;
        *out = (int)v;
        return end;
    }
    if (f->names == NULL)
        return NULL;
    int n = f == &F_WDAY ? 7 : f->hi - f->lo + 1;
    for (int i = 0; i < n; i++) {
        if (strncasecmp(p, f->names[i], 3) == 0 && !isalpha((unsigned char)p[3])) {
            *out = f->lo + i;
            return p + 3;
        }
    }
    return NULL;
}

/* One field (text of len bytes, copied) into the bit set *bits. */
static int
parse_field(const field_def *f, const char *text, size_t len, uint64_t *bits, bool *star,
            jm_error *err)
{
    char buf[JM_CRON_MAX + 1];
    memcpy(buf, text, len);
    buf[len] = '\0';
    *bits = 0;
    *star = buf[0] == '*';
    char *save = NULL;
    if (buf[0] == ',' || buf[len - 1] == ',' || strstr(buf, ",,") != NULL)
        return bad(err, f, buf, "empty list item");
    char copy[JM_CRON_MAX + 1];
    memcpy(copy, buf, len + 1);
    for (char *item = strtok_r(copy, ",", &save); item != NULL; item = strtok_r(NULL, ",", &save)) {
        int lo, hi, step = 1;
        const char *p = item;
        if (*p == '*') {
            lo = f->lo, hi = f->hi == 7 ? 6 : f->hi;
            p++;
        } else {
            if ((p = parse_value(f, p, &lo)) == NULL)
                return bad(err, f, buf, "not a valid value");
            hi = lo;
            if (*p == '-') {
                if ((p = parse_value(f, p + 1, &hi)) == NULL)
                    return bad(err, f, buf, "not a valid range end");
                if (hi < lo)
                    return bad(err, f, buf, "a range must not run backwards");
            }
        }
        if (*p == '/') {
            if (item[0] != '*' && hi == lo && strchr(item, '-') == NULL)
                hi = f->hi; /* "5/10": from 5 to the end, every 10 */
            char *end;
            long s = strtol(p + 1, &end, 10);
            if (end == p + 1 || s < 1 || s > f->hi + 1)
                return bad(err, f, buf, "not a valid step");
            step = (int)s;
            p = end;
        }
        if (*p != '\0')
            return bad(err, f, buf, "unexpected characters");
        for (int v = lo; v <= hi; v += step)
            *bits |= 1ull << (f == &F_WDAY && v == 7 ? 0 : v);
    }
    return JM_OK;
}

static const struct {
    const char *name, *expr;
} macros[] = {
    {"@yearly", "0 0 1 1 *"}, {"@annually", "0 0 1 1 *"}, {"@monthly", "0 0 1 * *"},
    {"@weekly", "0 0 * * 0"}, {"@daily", "0 0 * * *"},    {"@midnight", "0 0 * * *"},
    {"@hourly", "0 * * * *"},
};

int
jm_cron_parse(const char *expr, jm_cron *out, jm_error *err)
{
    memset(out, 0, sizeof(*out));
    if (expr == NULL || strlen(expr) > JM_CRON_MAX)
        return jm_error_set(err, JM_ERR_INVALID, "cron",
                            "cron must be a string of at most %d characters", JM_CRON_MAX);
    while (isspace((unsigned char)*expr))
        expr++;
    if (expr[0] == '@') {
        size_t n = strcspn(expr, " \t");
        for (size_t i = 0; i < sizeof(macros) / sizeof(macros[0]); i++)
            if (strlen(macros[i].name) == n && strncasecmp(expr, macros[i].name, n) == 0 &&
                expr[n + strspn(expr + n, " \t")] == '\0')
                return jm_cron_parse(macros[i].expr, out, err);
        return jm_error_set(err, JM_ERR_INVALID, "cron",
                            "cron: unknown macro (use @yearly, "
                            "@monthly, @weekly, @daily or @hourly)");
    }
    const char *part[6];
    size_t plen[6], n = 0;
    for (const char *p = expr; *p != '\0';) {
        size_t l = strcspn(p, " \t");
        if (n == 6)
            return jm_error_set(err, JM_ERR_INVALID, "cron",
                                "cron must have 5 fields (6 with "
                                "seconds first)");
        part[n] = p, plen[n++] = l;
        p += l;
        p += strspn(p, " \t");
    }
    if (n != 5 && n != 6)
        return jm_error_set(err, JM_ERR_INVALID, "cron",
                            "cron must have 5 fields: minute hour day-of-month month day-of-week");
    size_t i = 0;
    uint64_t b;
    bool star;
    int rc = JM_OK;
    out->seconds = n == 6;
    if (n == 6) {
        rc = parse_field(&F_SEC, part[i], plen[i], &out->sec, &star, err);
        i++;
    } else {
        out->sec = 1; /* second 0 */
    }
    if (rc == JM_OK)
        rc = parse_field(&F_MIN, part[i], plen[i], &out->min, &star, err);
    if (rc == JM_OK && (rc = parse_field(&F_HOUR, part[i + 1], plen[i + 1], &b, &star, err)) == 0)
        out->hour = (uint32_t)b;
    if (rc == JM_OK &&
        (rc = parse_field(&F_MDAY, part[i + 2], plen[i + 2], &b, &out->mday_star, err)) == 0)
        out->mday = (uint32_t)b;
    if (rc == JM_OK && (rc = parse_field(&F_MON, part[i + 3], plen[i + 3], &b, &star, err)) == 0)
        out->mon = (uint16_t)b;
    if (rc == JM_OK &&
        (rc = parse_field(&F_WDAY, part[i + 4], plen[i + 4], &b, &out->wday_star, err)) == 0)
        out->wday = (uint8_t)b;
    return rc;
}

/* ---- fire times ---- */

static int64_t
floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

static bool
day_matches(const jm_cron *c, int64_t days, int mday)
{
    bool dm = (c->mday >> mday) & 1u, wm = (c->wday >> jm_civil_wday(days)) & 1u;
    if (c->mday_star || c->wday_star)
        return dm && wm;
    return dm || wm; /* both restricted: either (Vixie cron) */
}

/* The lowest bit of bits at or above from, or -1. */
static int
next_bit(uint64_t bits, int from, int max)
{
    for (int v = from; v <= max; v++)
        if ((bits >> v) & 1u)
            return v;
    return -1;
}

/* The first matching wall time (civil seconds) at or after w and not past
 * limit, into *out. */
static bool
next_wall(const jm_cron *c, int64_t w, int64_t limit, int64_t *out)
{
    while (w <= limit) {
        int64_t days = floor_div(w, 86400), y;
        int64_t sod = w - days * 86400;
        int m, d;
        jm_civil_from_days(days, &y, &m, &d);
        if (!((c->mon >> m) & 1u)) {
            w = jm_civil_days(m == 12 ? y + 1 : y, m == 12 ? 1 : m + 1, 1) * 86400;
            continue;
        }
        if (!day_matches(c, days, d)) {
            w = (days + 1) * 86400;
            continue;
        }
        int h = (int)(sod / 3600), mi = (int)(sod / 60 % 60), s = (int)(sod % 60);
        int nh = next_bit(c->hour, h, 23);
        if (nh < 0) {
            w = (days + 1) * 86400;
            continue;
        }
        if (nh != h) {
            w = days * 86400 + nh * 3600;
            continue;
        }
        int nm = next_bit(c->min, mi, 59);
        if (nm < 0) {
            w = days * 86400 + (h + 1) * 3600;
            continue;
        }
        if (nm != mi) {
            w = days * 86400 + h * 3600 + nm * 60;
            continue;
        }
        int ns = next_bit(c->sec, s, 59);
        if (ns < 0) {
            w = days * 86400 + h * 3600 + (mi + 1) * 60;
            continue;
        }
        *out = w - s + ns;
        return true;
    }
    return false;
}

/* The instant wall time w fires at in tz: its only instant; the first of
 * two (overlap); or, in a gap, the first instant after the gap. */
static int64_t
fire_instant(const jm_tz *tz, int64_t w)
{
    int32_t o[3] = {jm_tz_offset(tz, w - 86400, NULL), jm_tz_offset(tz, w, NULL),
                    jm_tz_offset(tz, w + 86400, NULL)};
    int64_t best = INT64_MAX, lo = INT64_MAX, hi = INT64_MIN;
    for (int i = 0; i < 3; i++) {
        int64_t t = w - o[i];
        if (jm_tz_offset(tz, t, NULL) == o[i] && t < best)
            best = t;
        lo = t < lo ? t : lo;
        hi = t > hi ? t : hi;
    }
    if (best != INT64_MAX)
        return best;
    /* a gap: the first instant whose wall time is past w, in [lo, hi] */
    while (lo < hi) {
        int64_t mid = lo + (hi - lo) / 2;
        if (mid + jm_tz_offset(tz, mid, NULL) > w)
            hi = mid;
        else
            lo = mid + 1;
    }
    return lo;
}

int
jm_cron_next(const jm_cron *c, const jm_tz *tz, int64_t after_ms, int64_t *next_ms, jm_error *err)
{
    int64_t after = floor_div(after_ms, 1000); /* fire (whole s) > after_ms <=> > this */
    int32_t omin = jm_tz_offset(tz, after, NULL);
    for (int64_t d = -86400; d <= 86400; d += 172800) {
        int32_t o = jm_tz_offset(tz, after + d, NULL);
        omin = o < omin ? o : omin;
    }
    /* no wall time before this can fire after `after` (see the header) */
    int64_t w = after + omin;
    int64_t limit = w + (int64_t)JM_CRON_HORIZON_Y * 366 * 86400;
    int64_t wall;
    while (next_wall(c, w, limit, &wall)) {
        int64_t t = fire_instant(tz, wall);
        if (t > after) {
            *next_ms = t * 1000;
            return JM_OK;
        }
        w = wall + 1;
    }
    return jm_error_set(err, JM_ERR_NOT_FOUND, "cron", "cron never fires (within %d years)",
                        JM_CRON_HORIZON_Y);
}
