#include "protocols/irc/text.h"

#include <string.h>

/* ---- messages ------------------------------------------------------- */

static char *skip_spaces(char *p, const char *end)
{
    while (p < end && *p == ' ')
        p++;
    return p;
}

/* Ends the word at p: returns where the next one may start. */
static char *cut_word(char *p, const char *end)
{
    while (p < end && *p != ' ')
        p++;
    if (p < end)
        *p++ = '\0';
    return p;
}

int irc_message_parse(char *line, size_t n, struct irc_message *m)
{
    memset(m, 0, sizeof *m);
    line[n] = '\0';
    /* Every field is handed on as a C string, so bytes after a NUL could
     * never be seen anyway: the line ends there. */
    n = strnlen(line, n);
    char *p = line, *end = line + n;

    p = skip_spaces(p, end);
    if (p == end)
        return IRC_PARSE_EMPTY;
    if (*p == '@') {
        m->tags = p + 1;
        p = skip_spaces(cut_word(p + 1, end), end);
    }
    if (p < end && *p == ':') {
        m->source = p + 1;
        p = skip_spaces(cut_word(p + 1, end), end);
    }
    if (p == end)
        return IRC_PARSE_NO_COMMAND;
    m->command = p;
    for (; p < end && *p != ' '; p++)
        if (*p >= 'a' && *p <= 'z')
            *p = (char)(*p - 'a' + 'A');
    p = cut_word(p, end);

    for (;;) {
        p = skip_spaces(p, end);
        if (p == end)
            break;
        if (*p == ':' || m->nparams == IRC_PARAMS_MAX - 1) {
            /* The rest of the line, already ended by line[n]. */
            m->params[m->nparams++] = *p == ':' ? p + 1 : p;
            break;
        }
        m->params[m->nparams++] = p;
        p = cut_word(p, end);
    }
    return 0;
}

/* ---- names ----------------------------------------------------------- */

static bool is_letter(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* A byte from a fixed set, where NUL is never in the set: strchr would
 * find the terminator. */
static bool one_of(char c, const char *set)
{
    return c != '\0' && strchr(set, c) != NULL;
}

bool irc_nick_valid(const char *s, size_t n, size_t maxlen)
{
    static const char special[] = "[]\\`_^{|}";
    if (n == 0 || n > maxlen)
        return false;
    if (!is_letter(s[0]) && !one_of(s[0], special))
        return false;
    for (size_t i = 1; i < n; i++)
        if (!is_letter(s[i]) && !is_digit(s[i]) && !one_of(s[i], special) &&
            s[i] != '-')
            return false;
    return true;
}

bool irc_channel_valid(const char *s, size_t n, size_t maxlen)
{
    if (n < 2 || n > maxlen || s[0] != '#')
        return false;
    for (size_t i = 1; i < n; i++)
        if (!is_letter(s[i]) && !is_digit(s[i]) && !one_of(s[i], "_-.#"))
            return false;
    return true;
}

/* ---- formatting and CTCP --------------------------------------------- */

static bool is_hex(char c)
{
    return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* Whether s[0..n) starts with six hex digits. */
static bool hex6(const char *s, size_t n)
{
    if (n < 6)
        return false;
    for (size_t i = 0; i < 6; i++)
        if (!is_hex(s[i]))
            return false;
    return true;
}

/* How many digits (at most two) s[0..n) starts with. */
static size_t digits2(const char *s, size_t n)
{
    size_t i = 0;
    while (i < n && i < 2 && is_digit(s[i]))
        i++;
    return i;
}

size_t irc_strip_formatting(const char *in, size_t n, char *out)
{
    size_t i = 0, j = 0;
    while (i < n) {
        char c = in[i++];
        switch (c) {
        case '\x02':
        case '\x1d':
        case '\x1f':
        case '\x1e':
        case '\x11':
        case '\x16':
        case '\x0f':
            continue;
        case '\x03': {
            size_t fg = digits2(in + i, n - i);
            i += fg;
            /* The comma is part of the code only between two colours:
             * "\x03,5" is a reset then the text ",5", and the comma of
             * "\x035,x" is text. */
            if (fg && i + 1 < n && in[i] == ',' && is_digit(in[i + 1]))
                i += 1 + digits2(in + i + 1, n - i - 1);
            continue;
        }
        case '\x04':
            if (hex6(in + i, n - i)) {
                i += 6;
                if (i < n && in[i] == ',' && hex6(in + i + 1, n - i - 1))
                    i += 7;
            }
            continue;
        default:
            out[j++] = c;
        }
    }
    return j;
}

bool irc_ctcp_split(const char *text, size_t n, const char **cmd,
                    size_t *cmdlen, const char **arg, size_t *arglen)
{
    if (n == 0 || text[0] != '\x01')
        return false;
    const char *body = text + 1;
    const char *close = memchr(body, '\x01', n - 1);
    size_t len = close ? (size_t)(close - body) : n - 1;
    const char *space = memchr(body, ' ', len);
    size_t w = space ? (size_t)(space - body) : len;

    *cmd = body;
    *cmdlen = w;
    *arg = space ? space + 1 : body + len;
    *arglen = space ? len - w - 1 : 0;
    return true;
}
