/* cron.h - cron expressions and their fire times in a time zone.
 *
 * The standard 5 fields "minute hour day-of-month month day-of-week" with
 * lists (1,5), ranges (1-5), steps (*\/15, 1-30/2, 5/10 = 5-max/10), '*',
 * names (JAN-DEC, SUN-SAT; day-of-week 0 and 7 are Sunday) and the macros
 * @yearly @annually @monthly @weekly @daily @midnight @hourly. When both day
 * fields are restricted (neither starts with '*'), a day matches if either
 * matches (the Vixie cron rule). An extension: 6 fields put a seconds field
 * first ("*\/5 * * * * *" every five seconds). See docs/schedules.md.
 *
 * Fire times (docs/schedules.md, "Daylight saving time"): a schedule names
 * wall-clock times of its zone. A matching wall time that occurs twice (the
 * autumn overlap) fires once, at its first occurrence; one that does not
 * exist (the spring gap) fires once, at the first instant after the gap.
 *
 * Ownership: a jm_cron is plain caller storage; nothing needs freeing.
 */
#ifndef JOBMILL_CRON_H
#define JOBMILL_CRON_H

#include <stdbool.h>
#include <stdint.h>
#include "jobmill/err.h"
#include "jobmill/tz.h"

#define JM_CRON_MAX 128 /* an expression's length */

typedef struct jm_cron {
    uint64_t sec, min; /* bit n: second / minute n (0-59) */
    uint32_t hour;     /* 0-23 */
    uint32_t mday;     /* 1-31 */
    uint16_t mon;      /* 1-12 */
    uint8_t wday;      /* 0-6, 0 = Sunday */
    bool mday_star, wday_star;
    bool seconds; /* the 6-field form */
} jm_cron;

/* jm_cron_parse parses expr into out. JM_OK, or JM_ERR_INVALID with err's
 * field "cron" and a message naming the part at fault. */
int jm_cron_parse(const char *expr, jm_cron *out, jm_error *err);

/* jm_cron_next: the first fire instant of c in tz strictly after after_ms
 * (epoch ms), into *next_ms (a whole second). A pure function of its
 * arguments. JM_ERR_NOT_FOUND when nothing fires within JM_CRON_HORIZON_Y
 * years (Feb 30). */
#define JM_CRON_HORIZON_Y 10
int jm_cron_next(const jm_cron *c, const jm_tz *tz, int64_t after_ms, int64_t *next_ms,
                 jm_error *err);

#endif
