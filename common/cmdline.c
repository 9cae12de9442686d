/* cmdline.c — splits one request line of the line protocol into its tag,
 * command and arguments (grammar in cmdline.h).
 *
 * Gateways feed it bytes straight from sockets and terminals, so it trusts
 * nothing: it never reads past `len`, refuses what cannot become C strings
 * (NUL bytes) and bounds the argument count before allocating. It works in
 * two passes over the same bytes — measure, then copy — so the result is a
 * single allocation that sb_cmdline_destroy frees with one free(). */
#include "cmdline.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SB_STR_(x) #x
#define SB_STR(x)  SB_STR_(x)

typedef struct {
    const char *pos;
    const char *end;
} cursor_t;

/* What the measuring pass learns, so the copying pass never reallocates. */
typedef struct {
    size_t argc;
    size_t bytes;   /* unquoted bytes of all tokens, terminators excluded */
} shape_t;

static bool is_sep(char c)
{
    return c == ' ' || c == '\t';
}

static void skip_seps(cursor_t *c)
{
    while (c->pos < c->end && is_sep(*c->pos))
        c->pos++;
}

/* Like czmq's zmalloc: a hub that cannot get a few hundred bytes cannot
 * answer the client anyway, and the status enum has no code for it. */
static void *xmalloc(size_t size)
{
    void *p = malloc(size);
    if (!p)
        abort();
    return p;
}

/* Reads the token at c->pos, removing quotes and escapes. With out == NULL
 * it only validates and counts, which is how the first pass sizes the
 * result; the second pass repeats it on the same bytes with a buffer. */
static sb_cmdline_status_t read_token(cursor_t *c, char *out, size_t *n_out)
{
    bool quoted = false;
    size_t n = 0;
    while (c->pos < c->end && (quoted || !is_sep(*c->pos))) {
        char ch = *c->pos++;
        if (ch == '"') {
            quoted = !quoted;
            continue;
        }
        if (quoted && ch == '\\') {
            /* A lone backslash at the very end leaves the quote open. */
            if (c->pos == c->end)
                return SB_CMDLINE_UNTERMINATED;
            ch = *c->pos++;
            if (ch != '"' && ch != '\\')
                return SB_CMDLINE_BAD_ESCAPE;
        }
        if (out)
            out[n] = ch;
        n++;
    }
    if (quoted)
        return SB_CMDLINE_UNTERMINATED;
    *n_out = n;
    return SB_CMDLINE_OK;
}

/* The tag is taken raw (no quote processing) because it is echoed back
 * verbatim in the reply; quotes are refused rather than guessed at. */
static sb_cmdline_status_t read_tag(cursor_t *c, const char **tag,
                                    size_t *tag_len)
{
    const char *start = ++c->pos;   /* past the '@' */
    while (c->pos < c->end && !is_sep(*c->pos))
        c->pos++;
    size_t len = (size_t)(c->pos - start);
    if (len == 0 || len > SB_CMDLINE_MAX_TAG)
        return SB_CMDLINE_BAD_TAG;
    /* A NUL here is reported as SB_CMDLINE_NUL_BYTE by the caller; it only
     * matters that such a tag is never copied out. */
    if (memchr(start, '"', len) || memchr(start, '\0', len))
        return SB_CMDLINE_BAD_TAG;
    *tag = start;
    *tag_len = len;
    return SB_CMDLINE_OK;
}

static sb_cmdline_status_t measure(cursor_t c, shape_t *shape)
{
    shape->argc = 0;
    shape->bytes = 0;
    for (skip_seps(&c); c.pos < c.end; skip_seps(&c)) {
        if (shape->argc == SB_CMDLINE_MAX_ARGS)
            return SB_CMDLINE_TOO_MANY_ARGS;
        size_t n;
        sb_cmdline_status_t status = read_token(&c, NULL, &n);
        if (status != SB_CMDLINE_OK)
            return status;
        shape->argc++;
        shape->bytes += n;
    }
    return SB_CMDLINE_OK;
}

/* Everything that can fail, in the order the errors are reported: a NUL
 * byte wins over anything else so that "anywhere" really means anywhere. */
static sb_cmdline_status_t check(const char *line, size_t len, cursor_t c,
                                 sb_cmdline_status_t tag_status, bool tagged,
                                 shape_t *shape)
{
    if (memchr(line, '\0', len))
        return SB_CMDLINE_NUL_BYTE;
    if (tag_status != SB_CMDLINE_OK)
        return tag_status;
    skip_seps(&c);
    if (c.pos == c.end)
        return tagged ? SB_CMDLINE_NO_COMMAND : SB_CMDLINE_EMPTY;
    return measure(c, shape);
}

static char *copy_string(char *dest, const char *src, size_t len)
{
    memcpy(dest, src, len);
    dest[len] = '\0';
    return dest;
}

/* Layout: the struct, argc + 1 pointers, the tag, then the argument bytes.
 * sizeof(sb_cmdline_t) is a multiple of pointer alignment (it holds
 * pointers), so argv needs no padding. Sizes cannot overflow: the text is
 * at most `len` bytes of an object that already exists in memory. */
static sb_cmdline_t *build(cursor_t c, const shape_t *shape, const char *tag,
                           size_t tag_len)
{
    size_t ptrs = (shape->argc + 1) * sizeof(char *);
    size_t text = shape->bytes + shape->argc + (tag ? tag_len + 1 : 0);
    sb_cmdline_t *self = xmalloc(sizeof *self + ptrs + text);
    self->argv = (char **)(self + 1);
    self->argc = shape->argc;
    char *p = (char *)(self->argv + shape->argc + 1);
    self->tag = tag ? copy_string(p, tag, tag_len) : NULL;
    p += tag ? tag_len + 1 : 0;
    for (size_t i = 0; i < shape->argc; i++) {
        size_t n = 0;
        skip_seps(&c);
        (void)read_token(&c, p, &n);   /* measure() already accepted it */
        p[n] = '\0';
        self->argv[i] = p;
        p += n + 1;
    }
    self->argv[shape->argc] = NULL;
    return self;
}

sb_cmdline_t *sb_cmdline_parse(const char *line, size_t len,
                               sb_cmdline_status_t *status, char **tag_out)
{
    sb_cmdline_status_t ignored;
    if (!status)
        status = &ignored;
    if (tag_out)
        *tag_out = NULL;
    if (!line) {
        line = "";   /* NULL + 0 is undefined; "" + 0 is not */
        len = 0;
    }
    if (len > 0 && line[len - 1] == '\r')
        len--;

    cursor_t c = { line, line + len };
    skip_seps(&c);
    const char *tag = NULL;
    size_t tag_len = 0;
    sb_cmdline_status_t tag_status = SB_CMDLINE_OK;
    bool tagged = c.pos < c.end && *c.pos == '@';
    if (tagged)
        tag_status = read_tag(&c, &tag, &tag_len);
    if (tag && tag_out)
        *tag_out = copy_string(xmalloc(tag_len + 1), tag, tag_len);

    shape_t shape;
    *status = check(line, len, c, tag_status, tagged, &shape);
    if (*status != SB_CMDLINE_OK)
        return NULL;
    return build(c, &shape, tag, tag_len);
}

void sb_cmdline_destroy(sb_cmdline_t **self_p)
{
    if (!self_p)
        return;
    free(*self_p);   /* one allocation holds everything */
    *self_p = NULL;
}

const char *sb_cmdline_status_text(sb_cmdline_status_t status)
{
    switch (status) {
    case SB_CMDLINE_OK:
        return "ok";
    case SB_CMDLINE_EMPTY:
        return "empty line";
    case SB_CMDLINE_NO_COMMAND:
        return "missing command after tag";
    case SB_CMDLINE_BAD_TAG:
        return "bad tag (1 to " SB_STR(SB_CMDLINE_MAX_TAG)
               " bytes, no quotes)";
    case SB_CMDLINE_UNTERMINATED:
        return "unterminated quote";
    case SB_CMDLINE_BAD_ESCAPE:
        return "bad escape (only \\\" and \\\\)";
    case SB_CMDLINE_NUL_BYTE:
        return "nul byte in line";
    case SB_CMDLINE_TOO_MANY_ARGS:
        return "too many arguments (at most " SB_STR(SB_CMDLINE_MAX_ARGS) ")";
    }
    return "unknown error";
}

/* A backslash outside quotes is read as itself, so it alone needs none:
 * a word that reads back unquoted is written as it is. */
static bool needs_quotes(const char *word)
{
    if (!*word)
        return true;
    for (const unsigned char *c = (const unsigned char *) word; *c; c++)
        if (*c <= ' ' || *c == '"' || *c == 0x7f)
            return true;
    return false;
}

bool sb_cmdline_append_word(char *out, size_t size, const char *word)
{
    size_t used = strlen(out);
    bool quoted = needs_quotes(word);
    /* Room for a space, two quotes, an escape per byte at worst, and the NUL. */
    if (used + 4 + 2 * strlen(word) > size)
        return false;
    if (used)
        out[used++] = ' ';
    if (quoted)
        out[used++] = '"';
    for (const char *c = word; *c; c++) {
        if (quoted && (*c == '"' || *c == '\\'))
            out[used++] = '\\';
        out[used++] = *c;
    }
    if (quoted)
        out[used++] = '"';
    out[used] = '\0';
    return true;
}

void sb_cmdline_join(size_t argc, char *const *argv, char *out, size_t size)
{
    size_t used = 0;
    if (size == 0)
        return;
    out[0] = '\0';
    for (size_t i = 0; i < argc && used + 1 < size; i++) {
        int wrote = snprintf(out + used, size - used, "%s%s", i ? " " : "", argv[i]);
        used += wrote > 0 ? (size_t) wrote : 0;
    }
}
