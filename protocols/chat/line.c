#include "protocols/chat/line.h"

#include <string.h>

const struct chat_command chat_commands[] = {
    {"nick", CHAT_NICK, CHAT_ARG_REQUIRED, "/nick NAME", "change your nick"},
    {"join", CHAT_JOIN, CHAT_ARG_REQUIRED, "/join ROOM",
     "leave your room and join ROOM"},
    {"part", CHAT_PART, CHAT_ARG_NONE, "/part", "leave your room"},
    {"rooms", CHAT_ROOMS, CHAT_ARG_NONE, "/rooms", "list rooms and members"},
    {"who", CHAT_WHO, CHAT_ARG_NONE, "/who", "list the members of your room"},
    {"msg", CHAT_MSG, CHAT_ARG_REQUIRED, "/msg NICK TEXT",
     "send TEXT to NICK only"},
    {"me", CHAT_ME, CHAT_ARG_REQUIRED, "/me TEXT", "act TEXT in your room"},
    {"quit", CHAT_QUIT, CHAT_ARG_OPTIONAL, "/quit [REASON]", "leave the server"},
    {"help", CHAT_HELP, CHAT_ARG_NONE, "/help", "this list"},
    {NULL, CHAT_UNKNOWN, CHAT_ARG_NONE, NULL, NULL},
};

enum chat_text_check chat_text_check(const char *text, size_t n)
{
    return chat_text_scan(text, n, false);
}

enum chat_text_check chat_text_scan(const char *text, size_t n,
                                    bool controls_allowed)
{
    const unsigned char *s = (const unsigned char *)text, *end = s + n;
    while (s < end) {
        unsigned c = *s;
        if (c < 0x80) {
            if (((c < 0x20 && c != '\t') || c == 0x7f) && !controls_allowed)
                return CHAT_TEXT_CONTROL;
            s++;
            continue;
        }
        unsigned len, cp, min;
        if (c >= 0xc2 && c <= 0xdf)
            len = 2, cp = c & 0x1f, min = 0x80;
        else if (c >= 0xe0 && c <= 0xef)
            len = 3, cp = c & 0x0f, min = 0x800;
        else if (c >= 0xf0 && c <= 0xf4)
            len = 4, cp = c & 0x07, min = 0x10000;
        else
            return CHAT_TEXT_BAD_UTF8;
        if ((size_t)(end - s) < len)
            return CHAT_TEXT_BAD_UTF8;
        for (unsigned i = 1; i < len; i++) {
            if ((s[i] & 0xc0) != 0x80)
                return CHAT_TEXT_BAD_UTF8;
            cp = cp << 6 | (s[i] & 0x3f);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return CHAT_TEXT_BAD_UTF8;
        if (cp >= 0x80 && cp <= 0x9f && !controls_allowed) /* C1: CSI */
            return CHAT_TEXT_CONTROL;
        s += len;
    }
    return CHAT_TEXT_OK;
}

size_t chat_utf8_cut(const char *s, size_t n, size_t max)
{
    if (n <= max)
        return n;
    /* s[max] is the first byte left out: while it continues a character,
     * that character is cut, so leave it out whole. */
    while (max > 0 && ((unsigned char)s[max] & 0xc0) == 0x80)
        max--;
    return max;
}

static bool in_set(char c, const char *extra)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c >= '0' && c <= '9') || (c && strchr(extra, c));
}

bool chat_nick_valid(const char *s, size_t n)
{
    if (n == 0 || n > CHAT_NICK_MAX || (s[0] >= '0' && s[0] <= '9') ||
        s[0] == '-')
        return false;
    for (size_t i = 0; i < n; i++)
        if (!in_set(s[i], "_-[]{}^|`"))
            return false;
    return true;
}

static void trim(const char **s, size_t *n)
{
    while (*n && (**s == ' ' || **s == '\t'))
        (*s)++, (*n)--;
    while (*n && ((*s)[*n - 1] == ' ' || (*s)[*n - 1] == '\t'))
        (*n)--;
}

void chat_line_parse(const char *s, size_t n, struct chat_line *out)
{
    memset(out, 0, sizeof *out);
    if (n == 0 || s[0] != '/' || (n > 1 && s[1] == '/')) {
        out->cmd = CHAT_SAY;
        out->arg = n && s[0] == '/' ? s + 1 : s;
        out->arg_len = n && s[0] == '/' ? n - 1 : n;
        return;
    }
    size_t w = 1;
    while (w < n && s[w] != ' ' && s[w] != '\t')
        w++;
    out->word = s;
    out->word_len = w;
    out->arg = s + w;
    out->arg_len = n - w;
    trim(&out->arg, &out->arg_len);
    out->cmd = CHAT_UNKNOWN;
    for (const struct chat_command *c = chat_commands; c->name; c++)
        if (strlen(c->name) == w - 1 && memcmp(c->name, s + 1, w - 1) == 0) {
            out->cmd = c->cmd;
            out->command = c;
            out->bad_arg = (c->arg == CHAT_ARG_REQUIRED && !out->arg_len) ||
                           (c->arg == CHAT_ARG_NONE && out->arg_len);
            break;
        }
}
