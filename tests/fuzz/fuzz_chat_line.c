/* The chat face's text rules (protocols/chat/line.c) against references
 * written from the documentation, not from the code: what a line may
 * hold, where a reply may cut user text, how a line splits into a
 * command, and what a nick may be (reserved nicks: fuzz_irc_message).
 * The input is one line as a client sends it, without its line end. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "protocols/chat/line.h"
#include "tests/fuzz/fuzz.h"

/* ---- references ------------------------------------------------------ */

/* The length of the well-formed UTF-8 sequence at s[0..n), 0 if there is
 * none: the table of well-formed byte sequences of the Unicode standard
 * (chapter 3, table 3-7), which leaves out overlong forms, surrogates
 * and code points above U+10FFFF by the ranges of the second byte. */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
    static const struct {
        unsigned char lo0, hi0, lo1, hi1;
        size_t len;
    } table[] = {
        {0x00, 0x7f, 0, 0, 1},       {0xc2, 0xdf, 0x80, 0xbf, 2},
        {0xe0, 0xe0, 0xa0, 0xbf, 3}, {0xe1, 0xec, 0x80, 0xbf, 3},
        {0xed, 0xed, 0x80, 0x9f, 3}, {0xee, 0xef, 0x80, 0xbf, 3},
        {0xf0, 0xf0, 0x90, 0xbf, 4}, {0xf1, 0xf3, 0x80, 0xbf, 4},
        {0xf4, 0xf4, 0x80, 0x8f, 4},
    };
    if (n == 0)
        return 0;
    for (size_t t = 0; t < sizeof table / sizeof *table; t++) {
        if (s[0] < table[t].lo0 || s[0] > table[t].hi0)
            continue;
        size_t len = table[t].len;
        if (len == 1)
            return 1;
        if (n < len || s[1] < table[t].lo1 || s[1] > table[t].hi1)
            return 0;
        for (size_t i = 2; i < len; i++)
            if (s[i] < 0x80 || s[i] > 0xbf)
                return 0;
        return len;
    }
    return 0;
}

static bool utf8_valid(const unsigned char *s, size_t n)
{
    for (size_t i = 0, len; i < n; i += len)
        if ((len = utf8_seq(s + i, n - i)) == 0)
            return false;
    return true;
}

/* docs/protocols/chat.md: valid UTF-8 and no control character but tab,
 * the first fault deciding which. C1 controls are U+0080..U+009F, which
 * UTF-8 writes as C2 80..C2 9F. */
static enum chat_text_check ref_text(const unsigned char *s, size_t n,
                                     bool controls_allowed)
{
    for (size_t i = 0, len; i < n; i += len) {
        if ((len = utf8_seq(s + i, n - i)) == 0)
            return CHAT_TEXT_BAD_UTF8;
        if (controls_allowed)
            continue;
        if (len == 1 && ((s[i] < 0x20 && s[i] != '\t') || s[i] == 0x7f))
            return CHAT_TEXT_CONTROL;
        if (len == 2 && s[i] == 0xc2 && s[i + 1] <= 0x9f)
            return CHAT_TEXT_CONTROL;
    }
    return CHAT_TEXT_OK;
}

static bool is_cont(unsigned char c)
{
    return (c & 0xc0) == 0x80;
}

static bool ref_nick_valid(const char *s, size_t n)
{
    if (n < 1 || n > CHAT_NICK_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        bool alnum = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
                     (c >= '0' && c <= '9');
        bool special = c && memchr("_-[]{}^|`", c, 9);
        if (!alnum && !special)
            return false;
    }
    return !(s[0] >= '0' && s[0] <= '9') && s[0] != '-';
}

/* ---- properties ------------------------------------------------------ */

static void check_text(const unsigned char *s, size_t n)
{
    enum chat_text_check strict = chat_text_check((const char *)s, n);
    CHECK(strict == ref_text(s, n, false));
    CHECK(chat_text_scan((const char *)s, n, false) == strict);
    enum chat_text_check loose = chat_text_scan((const char *)s, n, true);
    CHECK(loose == ref_text(s, n, true));
    CHECK(loose != CHAT_TEXT_CONTROL);
    CHECK((loose == CHAT_TEXT_OK) == utf8_valid(s, n));
}

static void check_cut(const unsigned char *s, size_t n, size_t max, bool valid)
{
    size_t r = chat_utf8_cut((const char *)s, n, max);
    CHECK(r <= n);
    if (n <= max) {
        CHECK(r == n);
        return;
    }
    CHECK(r <= max);
    /* The byte left out first starts a character (or r is 0). */
    CHECK(r == 0 || !is_cont(s[r]));
    /* Nothing between r and max starts a character: the longest such
     * prefix. */
    for (size_t i = r + 1; i <= max; i++)
        CHECK(is_cont(s[i]));
    if (valid) {
        /* A cut of valid text is valid text, and loses at most the three
         * bytes of one character. */
        CHECK(utf8_valid(s, r));
        CHECK(max - r <= 3);
    }
}

static void check_parse(const char *s, size_t n)
{
    struct chat_line l;
    chat_line_parse(s, n, &l);
    const char *end = s + n;
    CHECK(l.arg == NULL ? l.arg_len == 0 : l.arg >= s && l.arg <= end);
    CHECK(l.arg_len <= n);
    CHECK(l.arg == NULL || l.arg_len <= (size_t)(end - l.arg));

    bool say = n == 0 || s[0] != '/' || (n > 1 && s[1] == '/');
    if (say) {
        /* The whole line is said, one '/' less for "//x". */
        CHECK(l.cmd == CHAT_SAY && l.command == NULL && !l.bad_arg);
        CHECK(l.word == NULL && l.word_len == 0);
        size_t skip = n && s[0] == '/' ? 1 : 0;
        CHECK(l.arg == s + skip && l.arg_len == n - skip);
        return;
    }
    CHECK(l.cmd != CHAT_SAY);
    CHECK(l.word == s && l.word_len >= 1 && l.word_len <= n);
    CHECK(memchr(l.word, ' ', l.word_len) == NULL);
    CHECK(memchr(l.word, '\t', l.word_len) == NULL);
    CHECK(l.word_len == n || s[l.word_len] == ' ' || s[l.word_len] == '\t');
    CHECK(l.arg >= l.word + l.word_len);
    if (l.arg_len) {
        CHECK(l.arg[0] != ' ' && l.arg[0] != '\t');
        CHECK(l.arg[l.arg_len - 1] != ' ' && l.arg[l.arg_len - 1] != '\t');
    }
    /* What was trimmed off both ends of the argument is blanks only. */
    for (const char *p = l.word + l.word_len; p < l.arg; p++)
        CHECK(*p == ' ' || *p == '\t');
    for (const char *p = l.arg + l.arg_len; p < end; p++)
        CHECK(*p == ' ' || *p == '\t');

    const struct chat_command *named = NULL;
    for (const struct chat_command *c = chat_commands; c->name; c++)
        if (strlen(c->name) == l.word_len - 1 &&
            memcmp(c->name, s + 1, l.word_len - 1) == 0)
            named = c;
    CHECK(l.command == named);
    if (!named) {
        CHECK(l.cmd == CHAT_UNKNOWN && !l.bad_arg);
        return;
    }
    CHECK(l.cmd == named->cmd);
    bool bad = (named->arg == CHAT_ARG_REQUIRED && l.arg_len == 0) ||
               (named->arg == CHAT_ARG_NONE && l.arg_len != 0);
    CHECK(l.bad_arg == bad);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* An exact-size copy: ASan stops any read past the end. */
    char *s = malloc(size ? size : 1);
    if (!s)
        return 0;
    memcpy(s, data, size);
    const unsigned char *u = (const unsigned char *)s;

    check_text(u, size);
    bool valid = utf8_valid(u, size);
    /* Every cut of a short line, a spread of cuts of a long one. */
    size_t step = size <= 512 ? 1 : size / 256;
    for (size_t max = 0; max <= size + 1; max += step)
        check_cut(u, size, max, valid);
    check_parse(s, size);

    CHECK(chat_nick_valid(s, size) == ref_nick_valid(s, size));
    /* Every word of the line as a nick, as /nick and /msg take them. */
    for (size_t i = 0; i < size;) {
        size_t j = i;
        while (j < size && s[j] != ' ')
            j++;
        CHECK(chat_nick_valid(s + i, j - i) == ref_nick_valid(s + i, j - i));
        i = j + 1;
    }
    free(s);
    return 0;
}
