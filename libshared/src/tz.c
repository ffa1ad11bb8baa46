/* tz.c - a TZif reader (RFC 8536) and POSIX TZ rules: see tz.h.
 *
 * A zone is its transition table (instants and the local time type each one
 * starts) plus, for instants past the last transition, the footer's POSIX
 * TZ rule. Offsets are looked up by binary search; nothing global is read or
 * written, so any thread may use any zone.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "jobmill/tz.h"

#define TZ_FILE_MAX (1 << 20)

/* One date of a POSIX rule: Jn (1-365, no Feb 29), n (0-365), Mm.w.d. */
typedef struct tz_date {
    char kind; /* 'J', 'N', 'M' */
    int m, w, d, n;
    int32_t secs; /* local time of day of the change (may be < 0 or > 24 h) */
} tz_date;

typedef struct tz_rule {
    int32_t std_off, dst_off; /* UTC offsets, east positive */
    int has_dst;
    tz_date start, end;
} tz_rule;

typedef struct tz_type {
    int32_t off;
    int isdst;
} tz_type;

struct jm_tz {
    size_t n;       /* transitions */
    int64_t *at;    /* n instants, ascending */
    uint8_t *idx;   /* n type indexes */
    size_t ntypes;  /* at least 1 */
    tz_type *types; /* ntypes */
    int has_rule;   /* the footer (or the spec) gave a rule */
    tz_rule rule;
};

/* ---- civil calendar ---- */

static int64_t
floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

int64_t
jm_civil_days(int64_t y, int m, int d)
{
    /* years counted from March, so the leap day is the last of a year */
    y -= m <= 2;
    int64_t era = floor_div(y, 400);
    int64_t yoe = y - era * 400;                                            /* 0-399 */
    int64_t doy = (153 * (int64_t)(m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1; /* 0-365 */
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;                    /* 0-146096 */
    return era * 146097 + doe - 719468;
}

void
jm_civil_from_days(int64_t days, int64_t *y, int *m, int *d)
{
    days += 719468;
    int64_t era = floor_div(days, 146097);
    int64_t doe = days - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = yoe + era * 400 + (*m <= 2);
}

int
jm_civil_wday(int64_t days)
{
    return (int)((days % 7 + 7 + 4) % 7); /* 1970-01-01 was a Thursday */
}

static int
leap_year(int64_t y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

/* ---- POSIX TZ strings ---- */

static int
bad(jm_error *err, const char *what)
{
    return jm_error_set(err, JM_ERR_INVALID, "tz", "time zone: %s", what);
}

/* Parses [+-]hh[:mm[:ss]] (hours up to max_h); seconds into *out. */
static const char *
parse_hms(const char *p, int max_h, int32_t *out)
{
    int sign = 1;
    if (*p == '+' || *p == '-')
        sign = *p++ == '-' ? -1 : 1;
    if (!isdigit((unsigned char)*p))
        return NULL;
    long v[3] = {0, 0, 0};
    for (int i = 0; i < 3; i++) {
        if (i > 0) {
            if (*p != ':')
                break;
            p++;
        }
        if (!isdigit((unsigned char)*p))
            return NULL;
        char *end;
        v[i] = strtol(p, &end, 10);
        if (end - p > 3 || v[i] > (i == 0 ? max_h : 59))
            return NULL;
        p = end;
    }
    *out = (int32_t)(sign * (v[0] * 3600 + v[1] * 60 + v[2]));
    return p;
}

/* A zone abbreviation: 3+ letters, or <...> quoted. */
static const char *
parse_name(const char *p)
{
    const char *s = p;
    if (*p == '<') {
        while (*p != '\0' && *p != '>')
            p++;
        return *p == '>' && p - s >= 4 ? p + 1 : NULL;
    }
    while (isalpha((unsigned char)*p))
        p++;
    return p - s >= 3 ? p : NULL;
}

static const char *
parse_date(const char *p, tz_date *d)
{
    char *end;
    d->secs = 7200; /* 02:00 by default */
    if (*p == 'M') {
        d->kind = 'M';
        d->m = (int)strtol(p + 1, &end, 10);
        if (end == p + 1 || *end != '.')
            return NULL;
        p = end + 1;
        d->w = (int)strtol(p, &end, 10);
        if (end == p || *end != '.')
            return NULL;
        p = end + 1;
        d->d = (int)strtol(p, &end, 10);
        if (end == p || d->m < 1 || d->m > 12 || d->w < 1 || d->w > 5 || d->d < 0 || d->d > 6)
            return NULL;
    } else {
        d->kind = 'N';
        if (*p == 'J') {
            d->kind = 'J';
            p++;
        }
        if (!isdigit((unsigned char)*p))
            return NULL;
        d->n = (int)strtol(p, &end, 10);
        if (d->n > 365 || (d->kind == 'J' && d->n < 1))
            return NULL;
    }
    p = end;
    if (*p == '/') {
        p = parse_hms(p + 1, 167, &d->secs);
        if (p == NULL)
            return NULL;
    }
    return p;
}

static int
parse_rule(const char *spec, tz_rule *r)
{
    memset(r, 0, sizeof(*r));
    const char *p = parse_name(spec);
    int32_t v;
    if (p == NULL || (p = parse_hms(p, 24, &v)) == NULL)
        return -1;
    r->std_off = -v;
    if (*p == '\0')
        return 0;
    if ((p = parse_name(p)) == NULL)
        return -1;
    r->has_dst = 1;
    r->dst_off = r->std_off + 3600;
    if (*p != ',' && *p != '\0') {
        if ((p = parse_hms(p, 24, &v)) == NULL)
            return -1;
        r->dst_off = -v;
    }
    if (*p == '\0') { /* no rule given: the US rules, as glibc assumes */
        r->start = (tz_date){.kind = 'M', .m = 3, .w = 2, .d = 0, .secs = 7200};
        r->end = (tz_date){.kind = 'M', .m = 11, .w = 1, .d = 0, .secs = 7200};
        return 0;
    }
    if (*p++ != ',' || (p = parse_date(p, &r->start)) == NULL || *p++ != ',' ||
        (p = parse_date(p, &r->end)) == NULL || *p != '\0')
        return -1;
    return 0;
}

/* The day (since the epoch) a rule date falls on in year y. */
static int64_t
rule_day(const tz_date *d, int64_t y)
{
    if (d->kind == 'J') /* 1-365, Feb 29 never counted */
        return jm_civil_days(y, 1, 1) + d->n - 1 + (leap_year(y) && d->n >= 60);
    if (d->kind == 'N')
        return jm_civil_days(y, 1, 1) + d->n;
    int64_t first = jm_civil_days(y, d->m, 1);
    int64_t day = first + (d->d - jm_civil_wday(first) + 7) % 7 + 7 * (d->w - 1);
    int mdays = d->m == 12 ? 31 : (int)(jm_civil_days(y, d->m + 1, 1) - first);
    while (day >= first + mdays) /* week 5 = the last such weekday */
        day -= 7;
    return day;
}

static int32_t
rule_offset(const tz_rule *r, int64_t t, int *isdst)
{
    *isdst = 0;
    if (!r->has_dst)
        return r->std_off;
    int64_t y;
    int m, d;
    jm_civil_from_days(floor_div(t + r->std_off, 86400), &y, &m, &d);
    /* the change into DST happens at local standard time, out of it at local DST */
    int64_t start = rule_day(&r->start, y) * 86400 + r->start.secs - r->std_off;
    int64_t end = rule_day(&r->end, y) * 86400 + r->end.secs - r->dst_off;
    int dst = start < end ? (t >= start && t < end) : !(t >= end && t < start);
    *isdst = dst;
    return dst ? r->dst_off : r->std_off;
}

/* ---- zones ---- */

void
jm_tz_free(jm_tz *tz)
{
    if (tz == NULL)
        return;
    free(tz->at);
    free(tz->idx);
    free(tz->types);
    free(tz);
}

int32_t
jm_tz_offset(const jm_tz *tz, int64_t t, int *isdst)
{
    int dummy;
    if (isdst == NULL)
        isdst = &dummy;
    if (tz->has_rule && (tz->n == 0 || t >= tz->at[tz->n - 1]))
        return rule_offset(&tz->rule, t, isdst);
    const tz_type *ty = &tz->types[0]; /* before the first transition: type 0 */
    if (tz->n > 0 && t >= tz->at[0]) {
        size_t lo = 0, hi = tz->n; /* the last transition <= t */
        while (hi - lo > 1) {
            size_t mid = lo + (hi - lo) / 2;
            if (tz->at[mid] <= t)
                lo = mid;
            else
                hi = mid;
        }
        ty = &tz->types[tz->idx[lo]];
    }
    *isdst = ty->isdst;
    return ty->off;
}

static uint32_t
be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static int64_t
be64(const unsigned char *p)
{
    return (int64_t)((uint64_t)be32(p) << 32 | be32(p + 4));
}

/* The six counts of a TZif header at p (44 bytes). */
typedef struct tz_head {
    uint32_t isut, isstd, leap, time, type, chars;
} tz_head;

static size_t
block_len(const tz_head *h, size_t tsize)
{
    return h->time * tsize + h->time + h->type * 6 + h->chars + h->leap * (tsize + 4) + h->isstd +
           h->isut;
}

static int
read_head(const unsigned char *p, size_t len, tz_head *h, int *version)
{
    if (len < 44 || memcmp(p, "TZif", 4) != 0)
        return -1;
    *version = p[4] == 0 ? 1 : p[4] - '0';
    h->isut = be32(p + 20), h->isstd = be32(p + 24), h->leap = be32(p + 28);
    h->time = be32(p + 32), h->type = be32(p + 36), h->chars = be32(p + 40);
    if (h->type < 1 || h->type > 256 || h->time > 100000 || h->chars > 100000 || h->leap > 100000 ||
        (h->isut != 0 && h->isut != h->type) || (h->isstd != 0 && h->isstd != h->type))
        return -1;
    return 0;
}

jm_tz *
jm_tz_parse(const unsigned char *data, size_t len, jm_error *err)
{
    tz_head h;
    int version;
    if (read_head(data, len, &h, &version) != 0)
        return bad(err, "not a TZif file"), NULL;
    size_t tsize = 4, off = 44;
    if (version >= 2) { /* skip the 32-bit block: the 64-bit one follows */
        off += block_len(&h, 4);
        if (off > len || read_head(data + off, len - off, &h, &version) != 0)
            return bad(err, "truncated TZif file"), NULL;
        off += 44;
        tsize = 8;
    }
    if (block_len(&h, tsize) > len - off)
        return bad(err, "truncated TZif file"), NULL;
    jm_tz *tz = calloc(1, sizeof(*tz));
    if (tz == NULL)
        return jm_error_set(err, JM_ERR_NOMEM, NULL, "out of memory"), NULL;
    tz->n = h.time;
    tz->ntypes = h.type;
    tz->at = malloc((h.time + 1) * sizeof(int64_t));
    tz->idx = malloc(h.time + 1);
    tz->types = malloc(h.type * sizeof(tz_type));
    if (tz->at == NULL || tz->idx == NULL || tz->types == NULL) {
        jm_tz_free(tz);
        return jm_error_set(err, JM_ERR_NOMEM, NULL, "out of memory"), NULL;
    }
    const unsigned char *p = data + off;
    for (size_t i = 0; i < h.time; i++, p += tsize)
        tz->at[i] = tsize == 8 ? be64(p) : (int64_t)(int32_t)be32(p);
    for (size_t i = 0; i < h.time; i++, p++) {
        tz->idx[i] = *p;
        if (*p >= h.type || (i > 0 && tz->at[i] <= tz->at[i - 1])) {
            jm_tz_free(tz);
            return bad(err, "malformed TZif transition table"), NULL;
        }
    }
    for (size_t i = 0; i < h.type; i++, p += 6) {
        tz->types[i].off = (int32_t)be32(p);
        tz->types[i].isdst = p[4] != 0;
        if (tz->types[i].off < -89999 || tz->types[i].off > 93599) {
            jm_tz_free(tz);
            return bad(err, "malformed TZif time type"), NULL;
        }
    }
    p += h.chars + h.leap * (tsize + 4) + h.isstd + h.isut;
    /* the footer: "\n<POSIX TZ string>\n" (version 2+) */
    size_t left = len - (size_t)(p - data);
    if (tsize == 8 && left >= 2 && p[0] == '\n') {
        const unsigned char *nl = memchr(p + 1, '\n', left - 1);
        char spec[128];
        size_t sl = nl != NULL ? (size_t)(nl - p - 1) : 0;
        if (nl != NULL && sl > 0 && sl < sizeof(spec)) {
            memcpy(spec, p + 1, sl);
            spec[sl] = '\0';
            if (parse_rule(spec, &tz->rule) == 0)
                tz->has_rule = 1;
        }
    }
    return tz;
}

jm_tz *
jm_tz_posix(const char *spec, jm_error *err)
{
    jm_tz *tz = calloc(1, sizeof(*tz));
    if (tz == NULL)
        return jm_error_set(err, JM_ERR_NOMEM, NULL, "out of memory"), NULL;
    tz->types = calloc(1, sizeof(tz_type));
    if (tz->types == NULL) {
        jm_tz_free(tz);
        return jm_error_set(err, JM_ERR_NOMEM, NULL, "out of memory"), NULL;
    }
    tz->ntypes = 1;
    if (parse_rule(spec, &tz->rule) != 0) {
        jm_tz_free(tz);
        return bad(err, "malformed POSIX TZ string"), NULL;
    }
    tz->types[0].off = tz->rule.std_off;
    tz->has_rule = 1;
    return tz;
}

int
jm_tz_name_valid(const char *name)
{
    size_t n = strlen(name);
    if (n < 1 || n > JM_TZ_NAME_MAX || name[0] == '/' || strstr(name, "..") != NULL)
        return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)name[i];
        if (!isalnum(c) && c != '/' && c != '_' && c != '+' && c != '-')
            return 0;
    }
    return 1;
}

jm_tz *
jm_tz_load(const char *name, jm_error *err)
{
    if (!jm_tz_name_valid(name))
        return jm_error_set(err, JM_ERR_INVALID, "tz",
                            "tz must be a zone name like \"Europe/Berlin\" (1-%d of "
                            "[A-Za-z0-9/_+-])",
                            JM_TZ_NAME_MAX),
               NULL;
    const char *dir = getenv("TZDIR");
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", dir != NULL && dir[0] != '\0' ? dir : JM_TZ_DIR_DEFAULT,
             name);
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        if (strcmp(name, "UTC") == 0 || strcmp(name, "Etc/UTC") == 0)
            return jm_tz_posix("UTC0", err);
        return jm_error_set(err, JM_ERR_INVALID, "tz", "unknown time zone \"%s\"", name), NULL;
    }
    unsigned char *buf = malloc(TZ_FILE_MAX);
    if (buf == NULL) {
        fclose(f);
        return jm_error_set(err, JM_ERR_NOMEM, NULL, "out of memory"), NULL;
    }
    size_t len = fread(buf, 1, TZ_FILE_MAX, f);
    fclose(f);
    jm_tz *tz = jm_tz_parse(buf, len, err);
    free(buf);
    if (tz == NULL && err != NULL && err->code == JM_ERR_INVALID) {
        char why[sizeof(err->msg)];
        snprintf(why, sizeof(why), "%s", err->msg);
        jm_error_set(err, JM_ERR_INVALID, "tz", "\"%s\" is not a time zone (%s)", name, why);
    }
    return tz;
}
