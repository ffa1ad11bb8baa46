/* format.c - job fields for humans: times in UTC ISO 8601, any JSON value
 * on one (cut) line, and the small JSON accessors the commands share. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "cli.h"

char *
cli_fmt_time(const json_t *v, char *buf, size_t len)
{
    if (!json_is_number(v)) {
        snprintf(buf, len, "-");
        return buf;
    }
    double s = json_number_value(v);
    time_t t = (time_t)floor(s);
    struct tm tm;
    if (gmtime_r(&t, &tm) == NULL || strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        snprintf(buf, len, "%.3f", s);
    return buf;
}

char *
cli_fmt_value(const json_t *v, size_t max_chars, char *buf, size_t len)
{
    char *text = NULL;
    const char *s;
    if (v == NULL || json_is_null(v))
        s = "-";
    else if (json_is_string(v))
        s = json_string_value(v);
    else
        s = text = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
    if (s == NULL)
        s = "?";
    size_t n = 0, count = 0;
    bool cut = false;
    while (s[n] != '\0') {
        size_t clen = 1;
        while (s[n + clen] != '\0' && ((unsigned char)s[n + clen] & 0xc0) == 0x80)
            clen++;
        if ((max_chars > 0 && count == max_chars) || n + clen + 4 > len) {
            cut = true;
            break;
        }
        n += clen;
        count++;
    }
    memcpy(buf, s, n);
    strcpy(buf + n, cut ? "..." : "");
    /* one line: control characters (newlines of a string) become spaces */
    for (char *p = buf; *p != '\0'; p++)
        if ((unsigned char)*p < 0x20)
            *p = ' ';
    free(text);
    return buf;
}

void
cli_print_json(FILE *out, const json_t *v)
{
    json_dumpf(v, out, JSON_INDENT(2) | JSON_ENCODE_ANY);
    fputc('\n', out);
}

const char *
cli_str(const json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));
    return s != NULL ? s : "";
}

long long
cli_int(const json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    return json_is_integer(v)  ? (long long)json_integer_value(v)
           : json_is_number(v) ? (long long)json_number_value(v)
                               : 0;
}
