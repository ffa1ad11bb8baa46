/* tz.h - time zones from the system's zone database, read without touching
 * the process's TZ (setenv + tzset + localtime_r is process-global and not
 * thread-safe; the api and the janitor have threads): a small reader of the
 * TZif files of /usr/share/zoneinfo (RFC 8536; the version 2+ 64-bit data,
 * and the footer's POSIX TZ string for instants past the table), and the
 * civil (proleptic Gregorian) calendar arithmetic the cron module needs.
 *
 * Ownership: jm_tz_load and jm_tz_parse return a new zone the caller frees
 * with jm_tz_free; a zone is immutable, so threads may share one.
 * Leap-second ("right/") zones are read as if they had no leap seconds.
 */
#ifndef JOBMILL_TZ_H
#define JOBMILL_TZ_H

#include <stddef.h>
#include <stdint.h>
#include "jobmill/err.h"

#define JM_TZ_NAME_MAX 64
#define JM_TZ_DIR_DEFAULT "/usr/share/zoneinfo"

typedef struct jm_tz jm_tz;

/* jm_tz_name_valid: 1-64 of [A-Za-z0-9/_+-], no "..", not starting with '/'. */
int jm_tz_name_valid(const char *name);

/* jm_tz_load reads zone name ("Europe/Berlin") from $TZDIR or, unset,
 * JM_TZ_DIR_DEFAULT. "UTC" and "Etc/UTC" work without the database. A new
 * zone, or NULL with err set: JM_ERR_INVALID (field "tz") for a bad name, an
 * unknown zone or a malformed file, JM_ERR_NOMEM. */
jm_tz *jm_tz_load(const char *name, jm_error *err);

/* jm_tz_parse reads a TZif image of len bytes (borrowed). A new zone or NULL
 * with err set (JM_ERR_INVALID, field "tz"). */
jm_tz *jm_tz_parse(const unsigned char *data, size_t len, jm_error *err);

/* jm_tz_posix builds a zone from a POSIX TZ string alone ("CET-1CEST,M3.5.0,
 * M10.5.0/3"). A new zone or NULL with err set. */
jm_tz *jm_tz_posix(const char *spec, jm_error *err);

void jm_tz_free(jm_tz *tz);

/* jm_tz_offset returns the zone's UTC offset in seconds (east positive) at
 * the instant t (epoch seconds); *isdst (may be NULL) gets whether it is
 * daylight saving time. */
int32_t jm_tz_offset(const jm_tz *tz, int64_t t, int *isdst);

/* ---- civil calendar: days since 1970-01-01 <-> year, month 1-12, day ---- */

int64_t jm_civil_days(int64_t y, int m, int d);
void jm_civil_from_days(int64_t days, int64_t *y, int *m, int *d);
/* jm_civil_wday: 0 = Sunday for a day count. */
int jm_civil_wday(int64_t days);

#endif
