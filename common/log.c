/* log.c — logfmt lines on stderr (see log.h). Each line is written with a
 * single write(2) so lines from several processes sharing stderr never mix. */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char *s_process = "switchboard";
static sb_log_level_t s_level = SB_LOG_INFO;
static const char *s_level_names[] = { "debug", "info", "warn", "error" };

void sb_log_init(const char *process_name, sb_log_level_t level)
{
    s_process = process_name;
    s_level = level;
}

bool sb_log_level_parse(const char *text, sb_log_level_t *level_out)
{
    for (int i = SB_LOG_DEBUG; i <= SB_LOG_ERROR; i++)
        if (strcmp(text, s_level_names[i]) == 0) {
            *level_out = (sb_log_level_t) i;
            return true;
        }
    return false;
}

bool sb_log_enabled(sb_log_level_t level)
{
    return level >= s_level;
}

static bool needs_quotes(const char *text)
{
    if (*text == '\0')
        return true;
    for (const char *c = text; *c; c++)
        if (*c <= ' ' || *c == '"' || *c == '=' || *c == '\\' || *c == 0x7f)
            return true;
    return false;
}

const char *sb_log_quote(char buf[SB_LOG_QUOTE_MAX], const char *text)
{
    if (!text)
        text = "";
    if (!needs_quotes(text)) {
        snprintf(buf, SB_LOG_QUOTE_MAX, "%s", text);
        return buf;
    }
    size_t out = 0;
    buf[out++] = '"';
    for (const char *c = text; *c && out < SB_LOG_QUOTE_MAX - 4; c++) {
        unsigned char ch = (unsigned char) *c;
        if (ch == '"' || ch == '\\') {
            buf[out++] = '\\';
            buf[out++] = (char) ch;
        }
        else if (ch < ' ' || ch == 0x7f)
            buf[out++] = '?';   /* control bytes would break the one-line rule */
        else
            buf[out++] = (char) ch;
    }
    buf[out++] = '"';
    buf[out] = '\0';
    return buf;
}

void sb_log(sb_log_level_t level, const char *msg, const char *fields, ...)
{
    if (level < s_level)
        return;
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    struct tm utc;
    gmtime_r(&now.tv_sec, &utc);

    char line[2048];
    char quoted[SB_LOG_QUOTE_MAX];
    int used = snprintf(line, sizeof line,
                        "ts=%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ level=%s proc=%s pid=%d msg=%s",
                        utc.tm_year + 1900, utc.tm_mon + 1, utc.tm_mday,
                        utc.tm_hour, utc.tm_min, utc.tm_sec, now.tv_nsec / 1000000,
                        s_level_names[level], s_process, (int) getpid(),
                        sb_log_quote(quoted, msg));
    if (fields && used > 0 && (size_t) used < sizeof line - 2) {
        line[used++] = ' ';
        va_list args;
        va_start(args, fields);
        int more = vsnprintf(line + used, sizeof line - (size_t) used - 1, fields, args);
        va_end(args);
        if (more > 0)
            used += more;
    }
    if (used < 0)
        return;
    if ((size_t) used > sizeof line - 2)
        used = (int) sizeof line - 2;
    line[used++] = '\n';
    ssize_t ignored = write(STDERR_FILENO, line, (size_t) used);
    (void) ignored;
}
