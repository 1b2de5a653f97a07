/* The IRC face's text rules: message parsing, rfc1459 case mapping,
 * names, mIRC formatting and CTCP, hostile input included. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "protocols/room/fold.h"
#include "protocols/irc/text.h"

/* ---- messages ------------------------------------------------------- */

/* The parser writes line[n]: give it exactly n + 1 bytes, so that ASan
 * sees any access past them. The caller frees the line. */
static char *parse_n(const char *s, size_t n, struct irc_message *m, int *rc)
{
    char *line = malloc(n + 1);
    assert_non_null(line);
    /* cppcheck-suppress uninitvar ; n == 0 when s is not filled yet */
    memcpy(line, s, n);
    *rc = irc_message_parse(line, n, m);
    return line;
}

/* A parse as one string: "@tags :source COMMAND [p1] [p2]", EMPTY or
 * "... NO_COMMAND", so a case is one line of a table. */
static void render(int rc, const struct irc_message *m, char *buf, size_t size)
{
    size_t len = 0;
    if (m->tags)
        len += (size_t)snprintf(buf + len, size - len, "@%s ", m->tags);
    if (m->source)
        len += (size_t)snprintf(buf + len, size - len, ":%s ", m->source);
    len += (size_t)snprintf(buf + len, size - len, "%s",
                            rc == 0                 ? m->command
                            : rc == IRC_PARSE_EMPTY ? "EMPTY"
                                                    : "NO_COMMAND");
    for (unsigned i = 0; i < m->nparams && len < size; i++)
        len += (size_t)snprintf(buf + len, size - len, " [%s]", m->params[i]);
}

/* Parses s[0..n) and compares the rendering with want. */
static void check_parse(const char *s, size_t n, const char *want)
{
    int rc;
    struct irc_message m;
    char *line = parse_n(s, n, &m, &rc);
    char got[1024];
    render(rc, &m, got, sizeof got);
    if (strcmp(got, want) != 0)
        fail_msg("\"%s\" parsed as \"%s\", not \"%s\"", s, got, want);
    free(line);
}

struct parse_case {
    const char *line, *want;
};

static void check_parses(const struct parse_case *c)
{
    for (; c->line; c++)
        check_parse(c->line, strlen(c->line), c->want);
}

#define PARSES(...)                                                            \
    check_parses((const struct parse_case[]){__VA_ARGS__, {NULL, NULL}})
/* A literal holding NUL bytes. */
#define PARSES_NUL(s, want) check_parse(s, sizeof(s) - 1, want)

static void test_parse_command_and_middle_params(void **state)
{
    PARSES({"USER alice 0 * :Alice Liddell",
            "USER [alice] [0] [*] [Alice Liddell]"},
           {"quit", "QUIT"}, {"NICK a", "NICK [a]"});
}

static void test_parse_command_is_upper_cased(void **state)
{
    PARSES({"privMsg #Aa :Hi There", "PRIVMSG [#Aa] [Hi There]"},
           {"001 alice :hi", "001 [alice] [hi]"},
           /* not validated: the command table answers 421 for these */
           {"j\xc3\xa9n_1 x", "J\xc3\xa9N_1 [x]"}, {"a:b", "A:B"});
}

static void test_parse_trailing_keeps_spaces_and_colons(void **state)
{
    PARSES({"PRIVMSG #a :  two  spaces  ", "PRIVMSG [#a] [  two  spaces  ]"},
           {"PRIVMSG #a :   ", "PRIVMSG [#a] [   ]"},
           {"PRIVMSG #a :x    ", "PRIVMSG [#a] [x    ]"},
           {"PRIVMSG #a ::) and : more", "PRIVMSG [#a] [:) and : more]"},
           {"PRIVMSG #a :::", "PRIVMSG [#a] [::]"});
}

static void test_parse_trailing_may_be_empty(void **state)
{
    /* TOPIC #a : clears the topic; TOPIC #a asks for it */
    PARSES({"TOPIC #a :", "TOPIC [#a] []"}, {"TOPIC #a", "TOPIC [#a]"},
           {"PRIVMSG :", "PRIVMSG []"}, {"PRIVMSG   :", "PRIVMSG []"});
}

static void test_parse_colon_inside_middle_is_not_trailing(void **state)
{
    PARSES({"PRIVMSG a:b c: d", "PRIVMSG [a:b] [c:] [d]"});
}

static void test_parse_runs_of_spaces_are_one_separator(void **state)
{
    PARSES(
        {"   :src    MODE    #a   +o    bob    ", ":src MODE [#a] [+o] [bob]"},
        {"PRIVMSG #a    :x", "PRIVMSG [#a] [x]"}, {"  PING  x  ", "PING [x]"});
}

static void test_parse_only_space_separates(void **state)
{
    PARSES({"NICK a\tb", "NICK [a\tb]"}, {"\tNICK", "\tNICK"});
}

static void test_parse_tags_and_source(void **state)
{
    PARSES({"@label=1;+draft/x=y :me!u@h privmsg #a :hi",
            "@label=1;+draft/x=y :me!u@h PRIVMSG [#a] [hi]"},
           {"@a=b PING x", "@a=b PING [x]"}, {":s PING x", ":s PING [x]"},
           /* the source is read after the tags only */
           {":s @a=b PING", ":s @A=B [PING]"});
}

static void test_parse_empty_tags_and_source(void **state)
{
    PARSES({"@ : ping x", "@ : PING [x]"}, {"@ ping", "@ PING"},
           {": ping", ": PING"}, {"::: ping", "::: PING"});
}

static void test_parse_only_spaces_is_empty(void **state)
{
    PARSES({"", "EMPTY"}, {" ", "EMPTY"}, {"      ", "EMPTY"});
    char spaces[601] = "";
    memset(spaces, ' ', 600);
    check_parse(spaces, 600, "EMPTY");
}

static void test_parse_tags_or_source_without_command(void **state)
{
    PARSES({"@a=b", "@a=b NO_COMMAND"}, {"@a=b   ", "@a=b NO_COMMAND"},
           {":src", ":src NO_COMMAND"}, {":src   ", ":src NO_COMMAND"},
           {"@t :s", "@t :s NO_COMMAND"}, {"@", "@ NO_COMMAND"},
           {":", ": NO_COMMAND"}, {"@ :", "@ : NO_COMMAND"},
           {"@  :  ", "@ : NO_COMMAND"});
}

static void test_parse_fifteen_params_fit(void **state)
{
    PARSES({"C 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15",
            "C [1] [2] [3] [4] [5] [6] [7] [8] [9] [10] [11] [12] [13] [14] "
            "[15]"},
           {"C 1 2 3 4 5 6 7 8 9 10 11 12 13 14 :last one",
            "C [1] [2] [3] [4] [5] [6] [7] [8] [9] [10] [11] [12] [13] [14] "
            "[last one]"});
}

static void test_parse_fifteenth_param_takes_the_rest(void **state)
{
    /* RFC 2812: the ':' of a 15th parameter is optional, dropped if there */
    PARSES({"C 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20  ",
            "C [1] [2] [3] [4] [5] [6] [7] [8] [9] [10] [11] [12] [13] [14] "
            "[15 16 17 18 19 20  ]"},
           {"C 1 2 3 4 5 6 7 8 9 10 11 12 13 14    :a b :c",
            "C [1] [2] [3] [4] [5] [6] [7] [8] [9] [10] [11] [12] [13] [14] "
            "[a b :c]"});
}

static void test_parse_nul_byte_ends_the_line(void **state)
{
    PARSES_NUL("PRIVMSG #a :hi\0 there", "PRIVMSG [#a] [hi]");
    PARSES_NUL("NICK\0 alice", "NICK");
    PARSES_NUL("\0PRIVMSG #a :x", "EMPTY");
    PARSES_NUL(":src\0 CMD", ":src NO_COMMAND");
    PARSES_NUL("@a\0b c", "@a NO_COMMAND");
}

static void test_parse_writes_nothing_past_line_n(void **state)
{
    char buf[32];
    memset(buf, '!', sizeof buf);
    memcpy(buf, "JOIN #a", 7);
    struct irc_message m;
    assert_int_equal(irc_message_parse(buf, 4, &m), 0);
    assert_string_equal(m.command, "JOIN");
    assert_int_equal(m.nparams, 0);
    assert_int_equal(buf[4], '\0');
    assert_memory_equal(buf + 5, "#a!!", 4);
}

static void test_parse_long_lines(void **state)
{
    char buf[1201];
    int rc;
    struct irc_message m;
    /* a 600-byte line, 588 of them the trailing parameter */
    memcpy(buf, "PRIVMSG #a :", 12);
    memset(buf + 12, 'x', 588);
    char *line = parse_n(buf, 600, &m, &rc);
    assert_true(rc == 0 && m.nparams == 2 && strlen(m.params[1]) == 588);
    free(line);
    /* 600 one-byte words: 15 parameters, the last holding the rest */
    buf[0] = 'X';
    for (size_t i = 1; i < sizeof buf; i += 2)
        memcpy(buf + i, " y", 2);
    line = parse_n(buf, sizeof buf, &m, &rc);
    assert_true(rc == 0 && m.nparams == 15);
    assert_int_equal(strlen(m.params[14]), sizeof buf - 1 - 14 * 2 - 1);
    free(line);
    /* one 600-byte command word, upper-cased */
    memset(buf, 'a', 600);
    line = parse_n(buf, 600, &m, &rc);
    assert_true(rc == 0 && strlen(m.command) == 600 && m.command[599] == 'A');
    free(line);
}

/* Any bytes at all: fields stay inside the line and are NUL-terminated
 * there (ASan checks the rest, the buffer being exactly n + 1 bytes). */
static void test_parse_random_bytes_stay_in_bounds(void **state)
{
    static const char alphabet[] = {' ', ' ', ' ',  ':',  ':',    '@',   'a',
                                    'B', '1', '\0', '\t', '\001', '\xff'};
    uint32_t seed = 12345;
    char s[64];
    for (int round = 0; round < 20000; round++) {
        size_t n = (size_t)(round % 64);
        for (size_t i = 0; i < n; i++) {
            seed = seed * 1103515245u + 12345u;
            s[i] = alphabet[(seed >> 16) % sizeof alphabet];
        }
        int rc;
        struct irc_message m;
        char *line = parse_n(s, n, &m, &rc);
        assert_true(rc == 0 || rc == IRC_PARSE_EMPTY ||
                    rc == IRC_PARSE_NO_COMMAND);
        assert_true(m.nparams <= IRC_PARAMS_MAX);
        assert_true((rc == 0) == (m.command != NULL));
        char *fields[IRC_PARAMS_MAX + 3] = {m.tags, m.source, m.command};
        for (unsigned i = 0; i < m.nparams; i++)
            fields[3 + i] = m.params[i];
        for (unsigned i = 0; i < 3 + m.nparams; i++) {
            if (!fields[i])
                continue;
            assert_true(fields[i] >= line && fields[i] <= line + n);
            assert_true(fields[i] + strlen(fields[i]) <= line + n);
        }
        if (m.command)
            assert_true(m.command[0] != '\0' && m.command[0] != ' ');
        for (unsigned i = 0; i + 1 < m.nparams; i++)
            assert_true(m.params[i][0] != '\0' && !strchr(m.params[i], ' '));
        free(line);
    }
}

/* ---- case mapping ---------------------------------------------------- */

static void test_fold_char_maps_rfc1459_pairs_only(void **state)
{
    static const char upper[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ[]\\~";
    static const char lower[] = "abcdefghijklmnopqrstuvwxyz{}|^";
    for (int c = 0; c < 256; c++) {
        const char *u = c ? strchr(upper, c) : NULL;
        assert_int_equal(room_fold_char((char)c),
                         u ? lower[u - upper] : (char)c);
    }
}

static void test_fold_truncates_and_terminates(void **state)
{
    char out[8] = "zzzzzzz";
    room_fold(out, "ABC", 0);
    assert_int_equal(out[0], 'z');
    room_fold(out, "ABC", 1);
    assert_string_equal(out, "");
    room_fold(out, "Nick[Away]", sizeof out);
    assert_string_equal(out, "nick{aw");
    room_fold(out, "A~", sizeof out);
    assert_string_equal(out, "a^");
}

static void test_fold_in_place(void **state)
{
    char s[] = "#Rust-Dev[EU]";
    room_fold(s, s, sizeof s);
    assert_string_equal(s, "#rust-dev{eu}");
}

static void test_casecmp_equal_under_rfc1459(void **state)
{
    assert_int_equal(room_casecmp("Nick[A]\\~", "nick{a}|^"), 0);
    assert_int_equal(room_casecmp("", ""), 0);
    assert_true(room_casecmp("alice", "bob") < 0);
    assert_true(room_casecmp("BOB", "alice") > 0);
    assert_true(room_casecmp("ann", "ANNA") < 0);
    assert_true(room_casecmp("anna", "ANN") > 0);
    /* '[' (0x5b) sorts as '{' (0x7b), after 'z' */
    assert_true(room_casecmp("[", "z") > 0);
    /* bytes compare unsigned: 0xe9 after 'z' */
    assert_true(room_casecmp("\xe9", "z") > 0);
    assert_true(room_casecmp("a", "a\xe9") < 0);
}

/* ---- names ----------------------------------------------------------- */

static bool nick(const char *s)
{
    return irc_nick_valid(s, strlen(s), 30);
}

static bool channel(const char *s)
{
    return irc_channel_valid(s, strlen(s), 32);
}

/* Whether check(s) is want for every s of a list. */
static void all(bool (*check)(const char *), bool want, const char **s)
{
    for (; *s; s++)
        if (check(*s) != want)
            fail_msg("\"%s\" should be %s", *s, want ? "valid" : "invalid");
}

#define VALID(check, ...) all(check, true, (const char *[]){__VA_ARGS__, NULL})
#define INVALID(check, ...)                                                    \
    all(check, false, (const char *[]){__VA_ARGS__, NULL})

static void test_nick_valid_first_char_rules(void **state)
{
    VALID(nick, "alice", "Z", "[a", "]a", "\\a", "`a", "_a", "^a", "{a", "|a",
          "}a");
    INVALID(nick, "9lives", "-x", "~x", "#x", ":x", "*x", "@x", "&x", "+x",
            "!x", " x", "$x", "%x");
}

static void test_nick_valid_rest_allows_digits_and_dash(void **state)
{
    VALID(nick, "a9-[]\\`_^{|}", "R2-D2");
    INVALID(nick, "a b", "a:b", "a!b", "a@b", "a,b", "a*b", "a?b", "a.b", "a#b",
            "a~b", "a$b", "caf\xc3\xa9", "a\001");
    assert_false(irc_nick_valid("a\0b", 3, 30));
}

static void test_nick_valid_length_bounds(void **state)
{
    assert_false(irc_nick_valid("", 0, 30));
    assert_true(irc_nick_valid("abcdefghi", 9, 9));
    assert_false(irc_nick_valid("abcdefghij", 10, 9));
    assert_false(irc_nick_valid("a", 1, 0));
    /* only n bytes are read: what follows does not matter */
    assert_true(irc_nick_valid("alice bob", 5, 30));
}

static void test_channel_valid(void **state)
{
    VALID(channel, "#a", "#Rust.dev-2_x", "##linux", "#a#b");
    INVALID(channel, "#", "", "rust", "&local", "+modeless", "!ABCDErust",
            "#a b", "#a,b", "#a:b", "#a\007", "#caf\xc3\xa9", "#a[b]", "#a!b",
            "#a*", "#a\t");
    assert_false(irc_channel_valid("#a\0b", 4, 32));
}

static void test_channel_valid_length_counts_the_hash(void **state)
{
    assert_true(irc_channel_valid("#abc", 4, 4));
    assert_false(irc_channel_valid("#abcd", 5, 4));
    assert_true(irc_channel_valid("#ab!", 3, 32)); /* only n bytes read */
}

/* ---- formatting ------------------------------------------------------ */

/* Codes are written in octal, which stops after three digits where hex
 * would swallow the text after it: \002 bold, \035 italic, \037
 * underline, \036 strikethrough, \021 monospace, \026 reverse, \017
 * reset, \003 colour, \004 hex colour; \001 delimits CTCP. */

static void expect_stripped(const char *in, size_t n, const char *want,
                            size_t wantlen)
{
    char out[128];
    assert_true(n <= sizeof out);
    size_t len = irc_strip_formatting(in, n, out);
    assert_int_equal(len, wantlen);
    assert_memory_equal(out, want, len);
}

/* Literals, which may hold NUL bytes. */
#define STRIP(in, want)                                                        \
    expect_stripped(in, sizeof(in) - 1, want, sizeof(want) - 1)

static void test_strip_removes_toggles(void **state)
{
    STRIP("\002bold\002 \035it\035 \037un\037 \036st\036 \021mono\021 "
          "\026rev\026 \017reset",
          "bold it un st mono rev reset");
    STRIP("plain text", "plain text");
    STRIP("", "");
}

static void test_strip_removes_colours(void **state)
{
    STRIP("\0034red", "red");
    STRIP("\00304red", "red");
    STRIP("\003041", "1"); /* two digits at most */
    STRIP("\0034,12on blue", "on blue");
    STRIP("\00304,02x", "x");
    STRIP("\00304,021", "1");
    STRIP("\003off", "off");
    STRIP("a\003b", "ab");
}

static void test_strip_colour_comma_needs_digits_on_both_sides(void **state)
{
    STRIP("\0034,x", ",x");
    STRIP("\0034,", ",");
    STRIP("\003,5x", ",5x");
    STRIP("\00312,,3", ",,3");
}

static void test_strip_removes_hex_colours(void **state)
{
    STRIP("\004FF0000red", "red");
    STRIP("\004ff0000,00ff00x", "x");
    STRIP("\004ff0000,00ff0", ",00ff0");
    STRIP("\004ff000", "ff000"); /* five digits: a bare reset */
    STRIP("\004gg0000", "gg0000");
    STRIP("\004abcdef,", ",");
    STRIP("\004x", "x");
}

static void test_strip_codes_cut_at_the_end(void **state)
{
    STRIP("a\003", "a");
    STRIP("a\0031", "a");
    STRIP("a\00312,", "a,");
    STRIP("a\0031,2", "a");
    STRIP("a\004", "a");
    STRIP("a\004abc", "aabc");
    STRIP("a\004abcdef", "a");
    STRIP("a\004abcdef,12345", "a,12345");
}

static void test_strip_keeps_other_bytes_and_nul(void **state)
{
    STRIP("a\0b\001c\007\xc3\xa9", "a\0b\001c\007\xc3\xa9");
    /* a NUL ends nothing: the code after it is still stripped */
    STRIP("\0\002x", "\0x");
    /* the colour code does not read past n */
    expect_stripped("\00312", 2, "", 0);
}

static void test_strip_in_place(void **state)
{
    char s[] = "\002hi\0034,5 there\017!";
    size_t n = irc_strip_formatting(s, sizeof s - 1, s);
    assert_int_equal(n, 9);
    assert_memory_equal(s, "hi there!", 9);
}

static void test_strip_hostile_input_stays_in_bounds(void **state)
{
    /* every length of a string made of codes and their arguments, in a
     * buffer of exactly that length (ASan checks the reads) */
    static const char soup[] = "\003\0031,\004abcde\004abcdef,\00399,9\002\017";
    char out[sizeof soup];
    for (size_t n = 0; n < sizeof soup; n++) {
        char *in = malloc(n ? n : 1);
        assert_non_null(in);
        memcpy(in, soup, n);
        assert_true(irc_strip_formatting(in, n, out) <= n);
        free(in);
    }
}

/* ---- CTCP ------------------------------------------------------------ */

static void check_ctcp(const char *s, size_t n, const char *cmd, size_t cmdlen,
                       const char *arg, size_t arglen)
{
    const char *c, *a;
    size_t cl, al;
    assert_true(irc_ctcp_split(s, n, &c, &cl, &a, &al));
    assert_int_equal(cl, cmdlen);
    assert_memory_equal(c, cmd, cl);
    assert_int_equal(al, arglen);
    assert_memory_equal(a, arg, al);
    assert_true(c >= s && c + cl <= s + n && a >= s && a + al <= s + n);
}

/* Literals, which may hold NUL bytes. */
#define CTCP(s, cmd, arg)                                                      \
    check_ctcp(s, sizeof(s) - 1, cmd, sizeof(cmd) - 1, arg, sizeof(arg) - 1)

static void test_ctcp_action(void **state)
{
    CTCP("\001ACTION waves hello\001", "ACTION", "waves hello");
}

static void test_ctcp_closing_delimiter_is_optional(void **state)
{
    CTCP("\001ACTION waves", "ACTION", "waves");
    CTCP("\001VERSION", "VERSION", "");
}

static void test_ctcp_argument_after_one_space(void **state)
{
    CTCP("\001ACTION  two spaces \001", "ACTION", " two spaces ");
    CTCP("\001ACTION \001", "ACTION", "");
    CTCP("\001PING 123\001", "PING", "123");
}

static void test_ctcp_body_ends_at_the_next_delimiter(void **state)
{
    CTCP("\001ACTION a\001b\001", "ACTION", "a");
    CTCP("\001\001ACTION x", "", "");
}

static void test_ctcp_empty_command(void **state)
{
    CTCP("\001", "", "");
    CTCP("\001 x", "", "x");
}

static void test_ctcp_not_ctcp_touches_nothing(void **state)
{
    const char *cmd = NULL, *arg = NULL;
    size_t cmdlen = 99, arglen = 99;
    assert_false(irc_ctcp_split("hi \001ACTION x\001", 14, &cmd, &cmdlen, &arg,
                                &arglen));
    assert_false(irc_ctcp_split("", 0, &cmd, &cmdlen, &arg, &arglen));
    assert_false(irc_ctcp_split("\001", 0, &cmd, &cmdlen, &arg, &arglen));
    assert_false(irc_ctcp_split(" \001A", 3, &cmd, &cmdlen, &arg, &arglen));
    assert_true(cmd == NULL && arg == NULL && cmdlen == 99 && arglen == 99);
}

static void test_ctcp_reads_only_n_bytes(void **state)
{
    check_ctcp("\001ACTION waves\001", 9, "ACTION", 6, "w", 1);
    CTCP("\001ACTION a\0b\001", "ACTION", "a\0b");
    char *one = malloc(1); /* ASan sees a read past it */
    assert_non_null(one);
    one[0] = '\001';
    check_ctcp(one, 1, "", 0, "", 0);
    free(one);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_command_and_middle_params),
        cmocka_unit_test(test_parse_command_is_upper_cased),
        cmocka_unit_test(test_parse_trailing_keeps_spaces_and_colons),
        cmocka_unit_test(test_parse_trailing_may_be_empty),
        cmocka_unit_test(test_parse_colon_inside_middle_is_not_trailing),
        cmocka_unit_test(test_parse_runs_of_spaces_are_one_separator),
        cmocka_unit_test(test_parse_only_space_separates),
        cmocka_unit_test(test_parse_tags_and_source),
        cmocka_unit_test(test_parse_empty_tags_and_source),
        cmocka_unit_test(test_parse_only_spaces_is_empty),
        cmocka_unit_test(test_parse_tags_or_source_without_command),
        cmocka_unit_test(test_parse_fifteen_params_fit),
        cmocka_unit_test(test_parse_fifteenth_param_takes_the_rest),
        cmocka_unit_test(test_parse_nul_byte_ends_the_line),
        cmocka_unit_test(test_parse_writes_nothing_past_line_n),
        cmocka_unit_test(test_parse_long_lines),
        cmocka_unit_test(test_parse_random_bytes_stay_in_bounds),
        cmocka_unit_test(test_fold_char_maps_rfc1459_pairs_only),
        cmocka_unit_test(test_fold_truncates_and_terminates),
        cmocka_unit_test(test_fold_in_place),
        cmocka_unit_test(test_casecmp_equal_under_rfc1459),
        cmocka_unit_test(test_nick_valid_first_char_rules),
        cmocka_unit_test(test_nick_valid_rest_allows_digits_and_dash),
        cmocka_unit_test(test_nick_valid_length_bounds),
        cmocka_unit_test(test_channel_valid),
        cmocka_unit_test(test_channel_valid_length_counts_the_hash),
        cmocka_unit_test(test_strip_removes_toggles),
        cmocka_unit_test(test_strip_removes_colours),
        cmocka_unit_test(test_strip_colour_comma_needs_digits_on_both_sides),
        cmocka_unit_test(test_strip_removes_hex_colours),
        cmocka_unit_test(test_strip_codes_cut_at_the_end),
        cmocka_unit_test(test_strip_keeps_other_bytes_and_nul),
        cmocka_unit_test(test_strip_in_place),
        cmocka_unit_test(test_strip_hostile_input_stays_in_bounds),
        cmocka_unit_test(test_ctcp_action),
        cmocka_unit_test(test_ctcp_closing_delimiter_is_optional),
        cmocka_unit_test(test_ctcp_argument_after_one_space),
        cmocka_unit_test(test_ctcp_body_ends_at_the_next_delimiter),
        cmocka_unit_test(test_ctcp_empty_command),
        cmocka_unit_test(test_ctcp_not_ctcp_touches_nothing),
        cmocka_unit_test(test_ctcp_reads_only_n_bytes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
