/* The IRC face's text rules on one client line, the way the face uses
 * them: irc_message_parse (protocols/irc/text.c) splits the line, then
 * its parameters go through the MODE parser and formatter and the ban
 * mask completion (protocols/irc/mode.c), the rfc1459 folding and the
 * mask matcher of the room core (protocols/room/fold.c); the whole line
 * goes through the formatting stripper and the CTCP splitter. Each result
 * is checked against a reference written from the header's comments or
 * against properties that must hold whatever the input. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "protocols/irc/mode.h"
#include "protocols/irc/text.h"
#include "protocols/room/fold.h"
#include "tests/fuzz/fuzz.h"

/* ---- irc_message_parse ----------------------------------------------- */

/* Whether p, with its terminator, lies inside buf[0..n]. */
static bool inside(const char *p, const char *buf, size_t n)
{
    return p >= buf && p <= buf + n && p + strlen(p) <= buf + n;
}

/* The reference split of text.h, on an untouched copy: spaces separate,
 * '@' tags and ':' source first, a ':' parameter or the 15th takes the
 * rest. Returns the parse result; words are (offset, length) pairs. */
struct ref_message {
    int result;
    size_t command, command_len;
    unsigned nparams;
    size_t param[IRC_PARAMS_MAX], param_len[IRC_PARAMS_MAX];
    bool tags, source;
};

static size_t word_end(const char *s, size_t i, size_t n)
{
    while (i < n && s[i] != ' ')
        i++;
    return i;
}

static size_t spaces_end(const char *s, size_t i, size_t n)
{
    while (i < n && s[i] == ' ')
        i++;
    return i;
}

static void ref_parse(const char *s, size_t n, struct ref_message *r)
{
    memset(r, 0, sizeof *r);
    n = strnlen(s, n);
    size_t i = spaces_end(s, 0, n);
    if (i == n) {
        r->result = IRC_PARSE_EMPTY;
        return;
    }
    if (s[i] == '@') {
        r->tags = true;
        i = spaces_end(s, word_end(s, i, n), n);
    }
    if (i < n && s[i] == ':') {
        r->source = true;
        i = spaces_end(s, word_end(s, i, n), n);
    }
    if (i == n) {
        r->result = IRC_PARSE_NO_COMMAND;
        return;
    }
    r->command = i;
    r->command_len = word_end(s, i, n) - i;
    i += r->command_len;
    while ((i = spaces_end(s, i, n)) < n) {
        if (s[i] == ':' || r->nparams == IRC_PARAMS_MAX - 1) {
            size_t from = s[i] == ':' ? i + 1 : i;
            r->param[r->nparams] = from;
            r->param_len[r->nparams++] = n - from;
            return;
        }
        r->param[r->nparams] = i;
        r->param_len[r->nparams++] = word_end(s, i, n) - i;
        i += r->param_len[r->nparams - 1];
    }
}

static void check_message(const char *orig, size_t n, char *buf,
                          struct irc_message *m)
{
    memcpy(buf, orig, n);
    int r = irc_message_parse(buf, n, m);
    struct ref_message ref;
    ref_parse(orig, n, &ref);
    CHECK(r == ref.result);
    CHECK(m->nparams <= IRC_PARAMS_MAX);
    CHECK(buf[n] == '\0');
    CHECK((m->tags != NULL) == ref.tags);
    CHECK((m->source != NULL) == ref.source);
    if (m->tags)
        CHECK(inside(m->tags, buf, n) && !strchr(m->tags, ' '));
    if (m->source)
        CHECK(inside(m->source, buf, n) && !strchr(m->source, ' '));
    if (r != 0) {
        CHECK(m->command == NULL && m->nparams == 0);
        return;
    }
    CHECK(m->command && inside(m->command, buf, n));
    CHECK(strlen(m->command) == ref.command_len && ref.command_len > 0);
    for (size_t i = 0; i < ref.command_len; i++) {
        char c = orig[ref.command + i];
        if (c >= 'a' && c <= 'z')
            c = (char)(c - 'a' + 'A');
        CHECK(m->command[i] == c);
    }
    CHECK(m->nparams == ref.nparams);
    for (unsigned i = 0; i < m->nparams; i++) {
        const char *p = m->params[i];
        CHECK(inside(p, buf, n));
        CHECK(strlen(p) == ref.param_len[i]);
        CHECK(memcmp(p, orig + ref.param[i], ref.param_len[i]) == 0);
        /* A middle parameter is one non-empty word. */
        if (i + 1 < m->nparams)
            CHECK(*p && *p != ':' && !strchr(p, ' '));
    }
}

/* ---- formatting and CTCP --------------------------------------------- */

static bool dig(const char *s, size_t i, size_t n)
{
    return i < n && s[i] >= '0' && s[i] <= '9';
}

static bool hex6_at(const char *s, size_t i, size_t n)
{
    if (n < i + 6)
        return false;
    for (size_t k = i; k < i + 6; k++)
        if (!strchr("0123456789abcdefABCDEF", s[k]) || !s[k])
            return false;
    return true;
}

/* How many bytes the formatting code at s[i] spans (0: not a code). */
static size_t code_len(const char *s, size_t i, size_t n)
{
    switch (s[i]) {
    case '\x02':
    case '\x1d':
    case '\x1f':
    case '\x1e':
    case '\x11':
    case '\x16':
    case '\x0f':
        return 1;
    case '\x03': {
        size_t j = i + 1, fg = 0;
        while (fg < 2 && dig(s, j, n))
            j++, fg++;
        if (fg && j < n && s[j] == ',' && dig(s, j + 1, n)) {
            j += 2;
            if (dig(s, j, n))
                j++;
        }
        return j - i;
    }
    case '\x04': {
        size_t j = i + 1;
        if (hex6_at(s, j, n)) {
            j += 6;
            if (j < n && s[j] == ',' && hex6_at(s, j + 1, n))
                j += 7;
        }
        return j - i;
    }
    default:
        return 0;
    }
}

static void check_strip(const char *in, size_t n, char *out, char *ref)
{
    size_t len = irc_strip_formatting(in, n, out);
    CHECK(len <= n);
    size_t k = 0;
    for (size_t i = 0; i < n;) {
        size_t c = code_len(in, i, n);
        if (c) {
            i += c;
            continue;
        }
        ref[k++] = in[i++];
    }
    CHECK(len == k && memcmp(out, ref, k) == 0);
    static const char codes[] = "\x02\x1d\x1f\x1e\x11\x16\x0f\x03\x04";
    for (size_t i = 0; i < len; i++)
        CHECK(!memchr(codes, out[i], sizeof codes - 1));
    /* In place gives the same. */
    memcpy(ref, in, n);
    CHECK(irc_strip_formatting(ref, n, ref) == len);
    CHECK(memcmp(ref, out, len) == 0);
}

static void check_ctcp(const char *text, size_t n)
{
    const char *cmd = (const char *)1, *arg = (const char *)2;
    size_t cmdlen = 3, arglen = 4;
    bool is = irc_ctcp_split(text, n, &cmd, &cmdlen, &arg, &arglen);
    CHECK(is == (n > 0 && text[0] == '\x01'));
    if (!is) { /* nothing touched */
        CHECK(cmd == (const char *)1 && arg == (const char *)2);
        CHECK(cmdlen == 3 && arglen == 4);
        return;
    }
    const char *end = text + n;
    CHECK(cmd == text + 1 && cmdlen <= (size_t)(end - cmd));
    CHECK(!memchr(cmd, ' ', cmdlen) && !memchr(cmd, '\x01', cmdlen));
    CHECK(arg >= cmd + cmdlen && arglen <= (size_t)(end - arg));
    CHECK(!memchr(arg, '\x01', arglen));
    /* The body is the command, one space and the argument, up to the
     * closing \x01 or the end. */
    const char *close = memchr(text + 1, '\x01', n - 1);
    const char *body_end = close ? close : end;
    bool spaced = cmd + cmdlen < body_end;
    if (spaced) {
        CHECK(cmd[cmdlen] == ' ' && arg == cmd + cmdlen + 1);
        CHECK(arg + arglen == body_end);
    } else {
        CHECK(arglen == 0);
    }
}

/* ---- modes ----------------------------------------------------------- */

static bool kind_flag(char c)
{
    return c && strchr("imnst", c);
}

static bool sendable(const char *a)
{
    return a[0] && a[0] != ':' && !strchr(a, ' ');
}

static void check_changes(const struct irc_mode_change *c, unsigned n,
                          char *const *args, unsigned nargs)
{
    unsigned next = 0;
    bool listed = false;
    for (unsigned i = 0; i < n; i++) {
        CHECK(c[i].mode && strchr(IRC_MYINFO_CHANMODES, c[i].mode));
        if (kind_flag(c[i].mode) || (c[i].mode == 'l' && !c[i].add)) {
            CHECK(c[i].arg == NULL);
            continue;
        }
        if (c[i].mode == 'b' && !c[i].arg) {
            CHECK(!listed); /* written once */
            listed = true;
            continue;
        }
        if (!c[i].arg) {
            CHECK(c[i].mode == 'k' && !c[i].add);
            continue;
        }
        /* Arguments are taken in order, each at most once, and only
         * those that can be sent back. */
        unsigned k = next;
        while (k < nargs && args[k] != c[i].arg)
            k++;
        CHECK(k < nargs);
        next = k + 1;
        CHECK(sendable(c[i].arg));
        if (c[i].mode == 'k' && c[i].add)
            CHECK(!strchr(c[i].arg, ','));
        if (c[i].mode == 'l')
            CHECK(irc_mode_limit(c[i].arg) >= 1 &&
                  irc_mode_limit(c[i].arg) <= IRC_MODE_LIMIT_MAX);
    }
}

/* Formats the applied changes (a list request is no change), parses the
 * text again and expects the same changes. */
static void check_round_trip(const struct irc_mode_change *c, unsigned n)
{
    struct irc_mode_change applied[16];
    unsigned m = 0;
    for (unsigned i = 0; i < n; i++)
        if (!(c[i].mode == 'b' && !c[i].arg))
            applied[m++] = c[i];
    static char text[16 * 520], again[16 * 520];
    size_t len = irc_mode_format(applied, m, text, sizeof text);
    CHECK(len < sizeof text && strlen(text) == len);
    CHECK(m != 0 || len == 0);
    /* Cut outputs are prefixes of the whole, snprintf-style. */
    for (size_t cap = 0; cap <= len + 1; cap += 1 + len / 16) {
        memset(again, 'x', cap + 1);
        CHECK(irc_mode_format(applied, m, again, cap) == len);
        if (cap) {
            size_t kept = len < cap ? len : cap - 1;
            CHECK(again[kept] == '\0' && memcmp(again, text, kept) == 0);
        }
        CHECK(again[cap] == 'x');
    }
    if (m == 0)
        return;
    char *args[16], *save;
    unsigned nargs = 0;
    memcpy(again, text, len + 1);
    char *modes = strtok_r(again, " ", &save);
    CHECK(modes != NULL);
    for (char *a; (a = strtok_r(NULL, " ", &save));)
        args[nargs++] = a;
    struct irc_mode_change back[16];
    char unknown[64];
    bool missing;
    unsigned k = irc_mode_parse(modes, args, nargs, back, 16, unknown,
                                sizeof unknown, &missing);
    CHECK(k == m && !missing && unknown[0] == '\0');
    for (unsigned i = 0; i < m; i++) {
        CHECK(back[i].add == applied[i].add);
        CHECK(back[i].mode == applied[i].mode);
        const char *want = applied[i].arg;
        if (!want && applied[i].mode == 'k')
            want = "*"; /* -k without a key is formatted with "*" */
        CHECK((want == NULL) == (back[i].arg == NULL));
        if (want)
            CHECK(strcmp(want, back[i].arg) == 0);
    }
}

static void check_modes(const char *modes, char *const *args, unsigned nargs,
                        unsigned max, size_t unknown_size)
{
    struct irc_mode_change c[16];
    char unknown[64];
    bool missing = true;
    memset(unknown, 'u', sizeof unknown);
    unsigned n = irc_mode_parse(modes, args, nargs, c, max, unknown,
                                unknown_size, &missing);
    CHECK(n <= max);
    check_changes(c, n, args, nargs);
    if (unknown_size) {
        size_t ul = strnlen(unknown, unknown_size);
        CHECK(ul < unknown_size);
        for (size_t i = 0; i < ul; i++) {
            char u = unknown[i];
            CHECK((u >= 'a' && u <= 'z') || (u >= 'A' && u <= 'Z'));
            CHECK(!strchr(IRC_MYINFO_CHANMODES, u) && strchr(modes, u));
            CHECK(!memchr(unknown, u, i)); /* each once */
        }
        /* Unstopped and with room for all 52 letters: every unknown
         * letter is named. */
        if (n < max && unknown_size > 52)
            for (const char *p = modes; *p; p++)
                if (((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z')) &&
                    !strchr(IRC_MYINFO_CHANMODES, *p))
                    CHECK(memchr(unknown, *p, ul));
    }
    for (size_t i = unknown_size; i < sizeof unknown; i++)
        CHECK(unknown[i] == 'u');
    check_round_trip(c, n);
}

/* A user MODE string: 'i' the one mode, a sign applying to the letters
 * after it, no sign meaning '+'. */
static void check_umode(const char *modes)
{
    bool add = true, known_only = true, has_i = false, want = false;
    for (const char *p = modes; *p; p++) {
        if (*p == '+' || *p == '-')
            add = *p == '+';
        else if (*p == 'i')
            has_i = true, want = add;
        else
            known_only = false;
    }
    for (int before = 0; before < 2; before++) {
        bool invisible = before;
        CHECK(irc_umode_apply(modes, &invisible) == known_only);
        CHECK(invisible == (has_i ? want : (bool)before));
    }
}

/* ---- masks and folding ----------------------------------------------- */

static char ref_fold(char c)
{
    static const char from[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ[]\\~";
    static const char to[] = "abcdefghijklmnopqrstuvwxyz{}|^";
    const char *p = c ? strchr(from, c) : NULL;
    return p ? to[p - from] : c;
}

/* Dynamic programming over (mask, subject) prefixes: '*' any run, '?' one
 * byte, the rest one folded byte. */
static bool ref_match(const char *mask, const char *subject)
{
    size_t m = strlen(mask), n = strlen(subject);
    bool *row = calloc(n + 1, 1), *prev = calloc(n + 1, 1);
    CHECK(row && prev);
    prev[0] = true; /* empty mask, empty subject */
    for (size_t i = 1; i <= m; i++) {
        char p = mask[i - 1];
        row[0] = prev[0] && p == '*';
        for (size_t j = 1; j <= n; j++) {
            if (p == '*')
                row[j] = prev[j] || row[j - 1];
            else
                row[j] = prev[j - 1] &&
                         (p == '?' || ref_fold(p) == ref_fold(subject[j - 1]));
        }
        bool *t = prev;
        prev = row;
        row = t;
    }
    bool r = prev[n];
    free(row);
    free(prev);
    return r;
}

static void check_fold(const char *s)
{
    size_t n = strlen(s);
    char *a = malloc(n + 1), *b = malloc(n + 1);
    CHECK(a && b);
    room_fold(a, s, n + 1);
    CHECK(strlen(a) == n);
    for (size_t i = 0; i < n; i++)
        CHECK(a[i] == ref_fold(s[i]));
    room_fold(b, a, n + 1);
    CHECK(strcmp(a, b) == 0); /* idempotent */
    b[0] = 'z';
    room_fold(b, s, 0); /* no room: nothing written */
    CHECK(b[0] == 'z');
    memcpy(b, s, n + 1);
    room_fold(b, b, n + 1); /* in place */
    CHECK(strcmp(a, b) == 0);
    if (n) {
        room_fold(b, s, n); /* cut, terminated */
        CHECK(strlen(b) == n - 1 && memcmp(a, b, n - 1) == 0);
    }
    CHECK(room_casecmp(s, a) == 0 && room_casecmp(a, s) == 0);
    free(a);
    free(b);
}

static void check_pair(const char *x, const char *y)
{
    /* casecmp orders as strcmp of the folded strings. */
    size_t nx = strlen(x), ny = strlen(y);
    char *fx = malloc(nx + 1), *fy = malloc(ny + 1);
    CHECK(fx && fy);
    room_fold(fx, x, nx + 1);
    room_fold(fy, y, ny + 1);
    int want = strcmp(fx, fy), got = room_casecmp(x, y);
    CHECK((want < 0) == (got < 0) && (want > 0) == (got > 0));
    free(fx);
    free(fy);
    /* The matcher against the reference, both ways round; long inputs
     * only for its running time (the fuzzer's -timeout catches a
     * backtracking blow-up). */
    bool r = room_mask_match(x, y);
    if (nx <= 64 && ny <= 128)
        CHECK(r == ref_match(x, y));
    r = room_mask_match(y, x);
    if (ny <= 64 && nx <= 128)
        CHECK(r == ref_match(y, x));
    /* A mask matches itself ('*' and '?' match themselves too), and "*"
     * matches everything. */
    CHECK(room_mask_match(y, y));
    CHECK(room_mask_match("*", y));
}

static void check_mask(const char *in)
{
    static char out[2048], again[2048], cut[4200];
    size_t len = irc_mask_normalize(in, out, sizeof out);
    if (len >= sizeof out)
        return; /* longer than any parameter of a 512-byte line */
    CHECK(strlen(out) == len);
    /* nick!user@host, each piece non-empty, the nick without '!' or '@',
     * the user without '@'. */
    const char *bang = strchr(out, '!'), *at = strchr(out, '@');
    CHECK(bang && at && bang < at);
    CHECK(bang > out && at > bang + 1 && at[1] != '\0');
    CHECK(!memchr(out, '@', (size_t)(bang - out)));
    /* Completing a complete mask changes nothing. */
    CHECK(irc_mask_normalize(out, again, sizeof again) == len);
    CHECK(strcmp(out, again) == 0);
    /* Without wildcards of its own, the mask's only '*' are the pieces
     * it filled in: any text there matches. */
    if (!strpbrk(in, "*?")) {
        size_t k = 0;
        for (const char *p = out; *p; p++)
            if (*p == '*')
                cut[k++] = 'x', cut[k++] = 'y';
            else
                cut[k++] = *p;
        cut[k] = '\0';
        CHECK(room_mask_match(out, cut));
    }
    for (size_t cap = 0; cap <= len + 1; cap += 1 + len / 8) {
        memset(cut, 'x', cap + 1);
        CHECK(irc_mask_normalize(in, cut, cap) == len);
        if (cap) {
            size_t kept = len < cap ? len : cap - 1;
            CHECK(cut[kept] == '\0' && memcmp(cut, out, kept) == 0);
        }
        CHECK(cut[cap] == 'x');
    }
}

/* ---- names ----------------------------------------------------------- */

static bool ref_special(char c)
{
    return c && strchr("[]\\`_^{|}", c);
}

static bool ref_letter(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool ref_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* "guest" in any case, then one digit or more: the core's nicks. */
static bool ref_reserved(const char *s, size_t n)
{
    if (n < 6 || strncasecmp(s, "guest", 5) != 0)
        return false;
    for (size_t i = 5; i < n; i++)
        if (!ref_digit(s[i]))
            return false;
    return true;
}

static void check_names(const char *s, size_t n)
{
    CHECK(room_nick_reserved(s, n) == ref_reserved(s, n));
    bool nick = n >= 1 && n <= 30 && (ref_letter(s[0]) || ref_special(s[0]));
    for (size_t i = 1; nick && i < n; i++)
        nick = ref_letter(s[i]) || ref_digit(s[i]) || ref_special(s[i]) ||
               s[i] == '-';
    CHECK(irc_nick_valid(s, n, 30) == nick);
    bool room = n >= 1 && n <= 32;
    for (size_t i = 0; room && i < n; i++)
        room = ref_letter(s[i]) || ref_digit(s[i]) ||
               (s[i] && strchr("_-.#", s[i]));
    CHECK(room_name_valid(s, n) == room);
    CHECK(irc_channel_valid(s, n, 33) ==
          (n >= 2 && s[0] == '#' && room_name_valid(s + 1, n - 1)));
}

/* ---- the input ------------------------------------------------------- */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 4096) /* a line is 512 bytes; leave room for garbage */
        return 0;
    const char *orig = (const char *)data;
    char *buf = malloc(size + 1), *out = malloc(size + 1),
         *ref = malloc(size + 1);
    CHECK(buf && out && ref);

    check_strip(orig, size, out, ref);
    check_ctcp(orig, size);

    struct irc_message m;
    check_message(orig, size, buf, &m);
    if (m.command) {
        check_names(m.command, strlen(m.command));
        check_fold(m.command);
    }
    for (unsigned i = 0; i < m.nparams; i++) {
        const char *p = m.params[i];
        size_t pl = strlen(p);
        check_names(p, pl);
        check_fold(p);
        check_mask(p);
        check_ctcp(p, pl);
        if (i + 1 < m.nparams)
            check_pair(p, m.params[i + 1]);
    }
    /* MODE #c modes args..., and modes args... from the first parameter,
     * with the face's limits and with small ones taken from the input. */
    for (unsigned k = 0; k < 2 && k < m.nparams; k++) {
        char *const *args = m.params + k + 1;
        unsigned nargs = m.nparams - k - 1;
        check_modes(m.params[k], args, nargs, 16, 64);
        check_modes(m.params[k], args, nargs, size % 17, size % 7);
        check_umode(m.params[k]);
    }
    free(buf);
    free(out);
    free(ref);
    return 0;
}
