/* The chat protocol's text rules: what a line may contain, what a nick
 * and a room may be called, and the command table. Pure functions, no
 * state: any thread. */
#ifndef PC_CHAT_LINE_H
#define PC_CHAT_LINE_H

#include <stdbool.h>
#include <stddef.h>

#define CHAT_NICK_MAX 32 /* = ROOM_NICK_MAX, the room core's */

enum chat_text_check {
    CHAT_TEXT_OK,
    CHAT_TEXT_BAD_UTF8,
    CHAT_TEXT_CONTROL, /* C0 (but tab), DEL or C1: terminal escapes */
};

/* Whether n bytes are well-formed UTF-8 (no overlong forms, surrogates or
 * code points above U+10FFFF) without control characters other than tab. */
enum chat_text_check chat_text_check(const char *s, size_t n);
/* The same with controls_allowed: only whether s is well-formed UTF-8
 * (for IRC, whose formatting codes are control characters). */
enum chat_text_check chat_text_scan(const char *s, size_t n,
                                    bool controls_allowed);

/* The longest prefix of s[0..n) of at most max bytes that does not end
 * inside a UTF-8 character: for cutting user text into a reply. */
size_t chat_utf8_cut(const char *s, size_t n, size_t max);

/* 1-32 of A-Z a-z 0-9 _ - [ ] { } ^ | `, not starting with a digit or -. */
bool chat_nick_valid(const char *s, size_t n);

enum chat_cmd {
    CHAT_SAY,     /* not a command: said to the room */
    CHAT_NICK,
    CHAT_JOIN,
    CHAT_PART,
    CHAT_ROOMS,
    CHAT_WHO,
    CHAT_MSG,
    CHAT_ME,
    CHAT_QUIT,
    CHAT_HELP,
    CHAT_UNKNOWN, /* starts with one '/', names no command */
};

enum chat_arg { CHAT_ARG_NONE, CHAT_ARG_OPTIONAL, CHAT_ARG_REQUIRED };

struct chat_command {
    const char *name; /* without the '/' */
    enum chat_cmd cmd;
    enum chat_arg arg;
    const char *usage; /* "/nick NAME" */
    const char *help;
};

/* Every command, in /help order, ended by a {NULL} entry. */
extern const struct chat_command chat_commands[];

/* A line split into what it asks for. Pointers point into the line. */
struct chat_line {
    enum chat_cmd cmd;
    const struct chat_command *command; /* NULL for SAY and UNKNOWN */
    const char *word; size_t word_len;  /* the command word, with '/' */
    const char *arg; size_t arg_len;    /* the rest, spaces trimmed; for SAY
                                           the text to say */
    bool bad_arg; /* an argument was required and is missing, or was given
                     to a command that takes none */
};

/* Parses one line (without its line end). "//x" says "/x". */
void chat_line_parse(const char *s, size_t n, struct chat_line *out);

#endif
