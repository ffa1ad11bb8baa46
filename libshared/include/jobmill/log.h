/* log.h - JSON log lines on stderr.
 *
 * One object per line: {"ts":..., "level":..., "service":..., "msg":..., k: v...}.
 * Thread-safe (one write(2) per line). Never call from a signal handler.
 */
#ifndef JOBMILL_LOG_H
#define JOBMILL_LOG_H

typedef enum jm_log_level {
    JM_LOG_DEBUG = 0,
    JM_LOG_INFO = 1,
    JM_LOG_WARN = 2,
    JM_LOG_ERROR = 3,
} jm_log_level;

/* jm_log_init sets the service name (borrowed: must outlive logging, a string
 * literal in practice) and the minimum level. */
void jm_log_init(const char *service, jm_log_level level);

/* jm_log_level_parse maps "debug"/"info"/"warn"/"error" to a level; returns
 * JM_OK or JM_ERR_INVALID. */
int jm_log_level_parse(const char *name, jm_log_level *out);

/* jm_log_enabled tells whether a line at level would be written. */
int jm_log_enabled(jm_log_level level);

/* jm_log writes msg plus fields given as key, value pairs ending with NULL:
 * jm_log(JM_LOG_INFO, "job done", "job_id", id, JM_LOG_INT("attempt", n), NULL).
 * A value is a string (NULL is written as JSON null) unless the field is
 * given with JM_LOG_INT, which writes an integer. All strings are borrowed. */
void jm_log(jm_log_level level, const char *msg, ...) __attribute__((sentinel));

/* JM_LOG_INT(key, value) is an integer field of jm_log; key must be a string
 * literal (it is marked by a leading \x01 byte that jm_log strips). */
#define JM_LOG_INT(key, value) "\x01" key, (long long)(value)

#define jm_log_debug(...)                                                                          \
    do {                                                                                           \
        if (jm_log_enabled(JM_LOG_DEBUG))                                                          \
            jm_log(JM_LOG_DEBUG, __VA_ARGS__);                                                     \
    } while (0)
#define jm_log_info(...) jm_log(JM_LOG_INFO, __VA_ARGS__)
#define jm_log_warn(...) jm_log(JM_LOG_WARN, __VA_ARGS__)
#define jm_log_error(...) jm_log(JM_LOG_ERROR, __VA_ARGS__)

#endif
