/* cmdline.h — parses one request line of the line protocol (§3.1):
 *
 *     [@TAG ]COMMAND [ARG ...]
 *
 * Arguments are separated by runs of spaces (tabs count as spaces); an
 * argument may be double-quoted, with \" and \\ as the only escapes inside
 * quotes. Every gateway that accepts typed commands uses this parser. */
#ifndef SB_CMDLINE_H
#define SB_CMDLINE_H

#include <stdbool.h>
#include <stddef.h>

#define SB_CMDLINE_MAX_ARGS 1024
#define SB_CMDLINE_MAX_TAG  64

typedef enum {
    SB_CMDLINE_OK = 0,
    SB_CMDLINE_EMPTY,          /* blank line: nothing to answer */
    SB_CMDLINE_NO_COMMAND,     /* a tag but no command */
    SB_CMDLINE_BAD_TAG,        /* "@" with nothing after it, or tag too long */
    SB_CMDLINE_UNTERMINATED,   /* a quote that is never closed */
    SB_CMDLINE_BAD_ESCAPE,     /* a backslash before anything but " or \ */
    SB_CMDLINE_NUL_BYTE,       /* the line contains a NUL byte */
    SB_CMDLINE_TOO_MANY_ARGS,  /* more than SB_CMDLINE_MAX_ARGS arguments */
} sb_cmdline_status_t;

typedef struct {
    char *tag;        /* without the '@'; NULL when the request is untagged */
    size_t argc;      /* >= 1 on success: argv[0] is the command */
    char **argv;      /* argc strings, then NULL */
} sb_cmdline_t;

/* Parses `len` bytes of `line` (no trailing '\n'; a trailing '\r' is
 * ignored). Returns a new sb_cmdline_t, or NULL with *status set. Even on
 * failure, when a valid tag was read *tag_out (if given) receives a copy of
 * it (free() it) so the error can be answered with the tag. */
sb_cmdline_t *sb_cmdline_parse(const char *line, size_t len,
                               sb_cmdline_status_t *status, char **tag_out);

void sb_cmdline_destroy(sb_cmdline_t **self_p);

/* Joins `argc` words with single spaces into `out` (cut to fit, always
 * terminated): how `echo`, `pub` and `tell` turn arguments back into text. */
void sb_cmdline_join(size_t argc, char *const *argv, char *out, size_t size);

/* Appends `word` to `out` (after a space unless it is the first), quoted
 * when it must be so that sb_cmdline_parse reads it back as one word (a
 * space, a quote or a control byte in it, or empty; inside quotes `"` and
 * `\` are escaped). False, with `out` as it was, when it does not fit. */
bool sb_cmdline_append_word(char *out, size_t size, const char *word);

/* Human-readable reason for a status, for an `ERR bad-args` reply. */
const char *sb_cmdline_status_text(sb_cmdline_status_t status);

#endif
