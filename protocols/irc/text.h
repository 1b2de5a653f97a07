/* The IRC face's text rules: splitting a client line into a message, the
 * rfc1459 case mapping, what a nick and a channel may be called, mIRC
 * formatting codes and CTCP. Channel modes and ban masks: mode.h.
 *
 * Every function here is pure: no state, no allocation, any thread. They
 * read network input, so none of them reads outside the bytes it is given
 * whatever those bytes are. */
#ifndef PC_IRC_TEXT_H
#define PC_IRC_TEXT_H

#include <stdbool.h>
#include <stddef.h>

/* ---- messages ------------------------------------------------------- */

/* RFC 1459 allows 15 parameters: a 16th stays part of the 15th. */
#define IRC_PARAMS_MAX 15

/* One client line split in place. Every pointer points into the line the
 * message was parsed from and lives as long as that line's buffer. */
struct irc_message {
    char *tags;    /* IRCv3 tags, after '@', unparsed ("a=1;b"); or NULL */
    char *source;  /* after ':' (clients seldom send one); or NULL */
    char *command; /* ASCII letters upper-cased in place; not validated:
                      an unknown word is the command table's 421 */
    unsigned nparams;
    char *params[IRC_PARAMS_MAX]; /* each NUL-terminated */
};

enum {
    IRC_PARSE_EMPTY = -1,      /* only spaces: ignore the line silently */
    IRC_PARSE_NO_COMMAND = -2, /* tags or a source, and no command */
};

/* Parses one line, without its CR LF, in place: line[0..n) is cut with
 * NUL bytes and line[n] is set to '\0', so the buffer must hold n + 1
 * bytes; the caller owns it. Returns 0 or one of IRC_PARSE_*; on error *m
 * holds what came before the error (command NULL).
 *
 * Runs of spaces count as one separator and spaces at either end are
 * dropped. A parameter starting with ':' is the trailing one: it takes the
 * rest of the line, spaces and all, and may be empty. The 15th parameter
 * takes the rest of the line whatever it starts with (RFC 2812, where the
 * ':' is optional: dropped if present). A NUL byte ends the line where it
 * is: IRC forbids NUL and the caller refuses such lines, but they parse
 * safely. */
int irc_message_parse(char *line, size_t n, struct irc_message *m);

/* ---- names ----------------------------------------------------------- */

/* 1..maxlen bytes; the first a letter or one of [ ] \ ` _ ^ { | }, the
 * rest those, digits and '-'. s[0..n) need not be NUL-terminated.
 * One more than the chat module allows: '\', so a nick with one cannot be
 * named from chat (/msg). */
bool irc_nick_valid(const char *s, size_t n, size_t maxlen);

/* '#' then 1..maxlen-1 bytes of A-Z a-z 0-9 _ - . # (maxlen counts the
 * '#'). Narrower than IRC allows: this server's rooms are shared with the
 * chat module, whose room names are those characters only, so every
 * channel can be named from both faces. '&', '+' and '!' channels do not
 * exist here. */
bool irc_channel_valid(const char *s, size_t n, size_t maxlen);

/* ---- formatting and CTCP --------------------------------------------- */

/* Copies in[0..n) to out without mIRC formatting codes: \x02 bold, \x1d
 * italic, \x1f underline, \x1e strikethrough, \x11 monospace, \x16
 * reverse, \x0f reset, \x03 colour with up to two digits and, only after
 * those and only if a digit follows the comma, ",NN" background, and \x04
 * with six hex digits and, likewise, ",RRGGBB" (a bare \x03 or \x04 is a
 * colour reset: dropped alone). Other bytes, NUL included, are kept.
 * out needs room for n bytes and may be in itself; nothing is
 * NUL-terminated. Returns the new length. */
size_t irc_strip_formatting(const char *in, size_t n, char *out);

/* Whether text[0..n) is a CTCP message: it starts with \x01. The body
 * runs to the next \x01 or, as that closing \x01 is optional, to the end.
 * *cmd is the body up to its first space (maybe empty), *arg the rest
 * after that one space (maybe empty, spaces kept). Both point into
 * text; the command is left as sent (compare "ACTION" as the face sees
 * fit). Returns false, touching nothing, when text is not CTCP. */
bool irc_ctcp_split(const char *text, size_t n, const char **cmd,
                    size_t *cmdlen, const char **arg, size_t *arglen);

#endif
