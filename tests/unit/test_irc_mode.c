/* Channel MODE strings, user modes and the ban masks of +b. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "protocols/room/fold.h"
#include "protocols/irc/mode.h"
#include "protocols/irc/text.h"

/* ---- channel modes --------------------------------------------------- */

struct parsed {
    unsigned n;
    struct irc_mode_change c[16];
    char unknown[16];
    bool missing;
};

/* Parses modes with the arguments of a NULL-ended list. */
static struct parsed parse_args(const char *modes, char *const *args)
{
    struct parsed p;
    unsigned nargs = 0;
    while (args[nargs])
        nargs++;
    memset(&p, 0x55, sizeof p); /* nothing is left unset */
    p.n = irc_mode_parse(modes, args, nargs, p.c, 16, p.unknown,
                         sizeof p.unknown, &p.missing);
    return p;
}

#define PARSE(modes, ...) parse_args(modes, (char *[]){__VA_ARGS__, NULL})

/* The changes as their canonical text, e.g. "+ov-k nick1 nick2 *", but
 * with a list request shown as "b?" and the extra state after '|'. */
static const char *show(struct parsed p)
{
    static char buf[512];
    size_t len = irc_mode_format(p.c, p.n, buf, sizeof buf);
    assert_true(len < sizeof buf);
    for (unsigned i = 0; i < p.n; i++)
        if (p.c[i].mode == 'b' && !p.c[i].arg)
            len += (size_t)snprintf(buf + len, sizeof buf - len, " b?");
    snprintf(buf + len, sizeof buf - len, "%s|%s%s", len ? " " : "", p.unknown,
             p.missing ? " missing" : "");
    return buf;
}

#define EXPECT(p, want) assert_string_equal(show(p), want)

static void test_mode_parse_takes_arguments_in_order(void **state)
{
    struct parsed p = PARSE("+ov-k+l", "nick1", "nick2", "key", "10");
    assert_int_equal(p.n, 4);
    assert_true(p.c[0].add && p.c[0].mode == 'o');
    assert_string_equal(p.c[0].arg, "nick1");
    assert_true(p.c[1].add && p.c[1].mode == 'v');
    assert_false(p.c[2].add);
    assert_int_equal(p.c[2].mode, 'k');
    assert_string_equal(p.c[2].arg, "key");
    assert_true(p.c[3].add && p.c[3].mode == 'l');
    assert_string_equal(p.c[3].arg, "10");
    EXPECT(p, "+ov-k+l nick1 nick2 key 10 |");
}

static void test_mode_parse_arguments_point_into_args(void **state)
{
    char *args[] = {"alice", NULL};
    struct parsed p = parse_args("+o", args);
    assert_ptr_equal(p.c[0].arg, args[0]);
}

static void test_mode_without_sign_adds(void **state)
{
    EXPECT(PARSE("o", "bob"), "+o bob |");
    EXPECT(PARSE("-o+", "bob"), "-o bob |");
    EXPECT(PARSE("+-+-t", NULL), "-t |");
}

static void test_mode_flags_take_no_argument(void **state)
{
    EXPECT(PARSE("+tnmis", "x"), "+tnmis |");
    EXPECT(PARSE("-tnmis+o", "x"), "-tnmis+o x |");
}

static void test_mode_ban_takes_a_mask_both_ways(void **state)
{
    EXPECT(PARSE("+b-b", "a!*@*", "*!*@h"), "+b-b a!*@* *!*@h |");
}

static void test_mode_ban_without_argument_is_one_list_request(void **state)
{
    EXPECT(PARSE("+b", NULL), "+b b? |");
    EXPECT(PARSE("b", NULL), "+b b? |");
    EXPECT(PARSE("+bbb-b", NULL), "+b b? |");
    EXPECT(PARSE("+bb", "m!*@*"), "+bb m!*@* b? |");
    EXPECT(PARSE("+bt", NULL), "+bt b? |");
}

static void test_mode_key_is_required_to_set(void **state)
{
    EXPECT(PARSE("+k", NULL), "| missing");
    EXPECT(PARSE("+kt", NULL), "+t | missing");
    EXPECT(PARSE("+k", "secret"), "+k secret |");
}

static void test_mode_key_is_optional_to_unset(void **state)
{
    EXPECT(PARSE("-k", NULL), "-k * |");
    EXPECT(PARSE("-k", "old"), "-k old |");
    /* when there is one, -k takes it, as ircds do */
    EXPECT(PARSE("-k+l", "10"), "-k 10 | missing");
}

static void test_mode_key_with_comma_is_dropped(void **state)
{
    EXPECT(PARSE("+kt", "a,b"), "+t |");
    EXPECT(PARSE("-k", "a,b"), "-k a,b |");
}

static void test_mode_limit_is_a_positive_integer_to_set(void **state)
{
    EXPECT(PARSE("+l", "1"), "+l 1 |");
    EXPECT(PARSE("+l", "999999999"), "+l 999999999 |");
    EXPECT(PARSE("+l", NULL), "| missing");
    /* there but not a limit: consumed and dropped */
    const char *bad[] = {"0",  "-1", "+5",         "010", "1000000000",
                         "1x", "",   "4294967297", " 5",  "5 "};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        EXPECT(PARSE("+lo", (char *)bad[i], "bob"), "+o bob |");
}

static void test_mode_limit_unset_takes_no_argument(void **state)
{
    EXPECT(PARSE("-lo", "bob"), "-lo bob |");
}

static void test_mode_limit_value(void **state)
{
    assert_int_equal(irc_mode_limit("1"), 1);
    assert_int_equal(irc_mode_limit("42"), 42);
    assert_int_equal(irc_mode_limit("999999999"), IRC_MODE_LIMIT_MAX);
    assert_int_equal(irc_mode_limit("1000000000"), 0);
    assert_int_equal(irc_mode_limit("99999999999999999999"), 0);
    assert_int_equal(irc_mode_limit(""), 0);
    assert_int_equal(irc_mode_limit("0"), 0);
    assert_int_equal(irc_mode_limit("07"), 0);
    assert_int_equal(irc_mode_limit("7a"), 0);
}

static void test_mode_prefix_modes_need_a_nick(void **state)
{
    EXPECT(PARSE("+ov", "ann"), "+o ann | missing");
    EXPECT(PARSE("-v", NULL), "| missing");
}

static void test_mode_missing_param_skips_only_that_change(void **state)
{
    EXPECT(PARSE("+tk-n", NULL), "+t-n | missing");
}

static void test_mode_unusable_arguments_are_dropped(void **state)
{
    /* a trailing parameter could hold these; none could be echoed */
    EXPECT(PARSE("+ot", ":x"), "+t |");
    EXPECT(PARSE("+bt", "a b"), "+t |");
    EXPECT(PARSE("+kt", ""), "+t |");
    EXPECT(PARSE("-kt", "a b"), "-kt * |");
    EXPECT(PARSE("+bo", "", "ann"), "+o ann |");
}

static void test_mode_extra_arguments_are_ignored(void **state)
{
    EXPECT(PARSE("+o", "a", "b", "c"), "+o a |");
}

static void test_mode_unknown_letters_each_once(void **state)
{
    EXPECT(PARSE("+xtyx-Zx", NULL), "+t |xyZ");
    /* unknown letters take no argument */
    EXPECT(PARSE("+qo", "bob"), "+o bob |q");
    /* other bytes cannot be named in a reply: skipped */
    EXPECT(PARSE("+t!1 :\x80", NULL), "+t |");
}

static void test_mode_unknown_letters_are_cut_to_fit(void **state)
{
    char unknown[3] = "zz";
    bool missing;
    struct irc_mode_change c[4];
    char *none[] = {NULL};
    assert_int_equal(
        irc_mode_parse("+xyzt", none, 0, c, 4, unknown, 3, &missing), 1);
    assert_string_equal(unknown, "xy");
    assert_int_equal(irc_mode_parse("+xt", none, 0, c, 4, NULL, 0, &missing),
                     1);
}

static void test_mode_parse_stops_at_max(void **state)
{
    char *args[] = {"a", "b", "c", NULL};
    struct irc_mode_change c[2];
    char unknown[8];
    bool missing;
    assert_int_equal(irc_mode_parse("+ooo", args, 3, c, 2, unknown,
                                    sizeof unknown, &missing),
                     2);
    assert_string_equal(c[1].arg, "b");
    assert_int_equal(irc_mode_parse("+tn", args, 3, NULL, 0, unknown,
                                    sizeof unknown, &missing),
                     0);
}

static void test_mode_hostile_strings_stay_in_bounds(void **state)
{
    char modes[601];
    for (size_t i = 0; i < 600; i++)
        modes[i] = (char)(1 + i % 255);
    modes[600] = '\0';
    char *args[20];
    for (int i = 0; i < 20; i++)
        args[i] = i % 2 ? "x" : "";
    struct irc_mode_change c[64];
    char unknown[64];
    bool missing;
    unsigned n = irc_mode_parse(modes, args, 20, c, 64, unknown, sizeof unknown,
                                &missing);
    assert_true(n <= 64 && strlen(unknown) < sizeof unknown);
    /* each of a-z A-Z once, less the 10 known ones */
    assert_int_equal(strlen(unknown), 52 - 10);
    char out[2048];
    assert_true(irc_mode_format(c, n, out, sizeof out) < sizeof out);
    memset(modes, 'o', 600);
    assert_int_equal(irc_mode_parse(modes, args, 20, c, 64, unknown,
                                    sizeof unknown, &missing),
                     10);
    assert_true(missing);
}

/* Every letter announced behaves as its CHANMODES type says. */
static void test_mode_letters_match_isupport(void **state)
{
    static const char types[] = IRC_ISUPPORT_CHANMODES;
    const char *p = types;
    for (int type = 0; type < 4; type++, p++) {
        for (; *p && *p != ','; p++) {
            char set[3] = {'+', *p, '\0'}, unset[3] = {'-', *p, '\0'};
            struct parsed add = PARSE(set, "1"), del = PARSE(unset, "1");
            /* A: always an argument; B: to set (optional to unset here,
             * but taken); C: to set only; D: never */
            bool add_takes = type < 3, del_takes = type < 2;
            assert_int_equal(add.n, 1);
            assert_int_equal(del.n, 1);
            assert_int_equal(add.c[0].arg != NULL, add_takes);
            assert_int_equal(del.c[0].arg != NULL, del_takes);
            assert_non_null(strchr(IRC_MYINFO_CHANMODES, *p));
        }
    }
    /* the prefix modes take a nick both ways */
    for (const char *m = "ov"; *m; m++) {
        assert_non_null(strchr(IRC_ISUPPORT_PREFIX, *m));
        assert_non_null(strchr(IRC_MYINFO_CHANMODES, *m));
        char set[3] = {'-', *m, '\0'};
        assert_non_null(PARSE(set, "n").c[0].arg);
    }
    /* and nothing else is known */
    for (const char *m = IRC_MYINFO_CHANMODES; *m; m++) {
        char set[3] = {'+', *m, '\0'};
        assert_string_equal(PARSE(set, "1").unknown, "");
    }
    assert_int_equal(strlen(IRC_MYINFO_CHANMODES), 10);
}

/* ---- formatting changes ---------------------------------------------- */

static void test_mode_format_prints_a_sign_only_when_it_changes(void **state)
{
    struct irc_mode_change c[] = {
        {true, 'o', "a"},   {true, 'm', NULL}, {false, 'v', "b"},
        {false, 'k', NULL}, {true, 'l', "5"},
    };
    char out[64];
    assert_int_equal(irc_mode_format(c, 5, out, sizeof out),
                     strlen("+om-vk+l a b * 5"));
    assert_string_equal(out, "+om-vk+l a b * 5");
    assert_int_equal(irc_mode_format(c + 2, 1, out, sizeof out), 4);
    assert_string_equal(out, "-v b");
}

static void test_mode_format_of_nothing_is_empty(void **state)
{
    char out[4] = "zzz";
    assert_int_equal(irc_mode_format(NULL, 0, out, sizeof out), 0);
    assert_string_equal(out, "");
}

static void test_mode_format_truncates_like_snprintf(void **state)
{
    struct irc_mode_change c[] = {{true, 'o', "alice"}, {true, 'v', "bob"}};
    char out[8];
    assert_int_equal(irc_mode_format(c, 2, out, sizeof out), 13);
    assert_string_equal(out, "+ov ali");
    out[0] = 'z';
    assert_int_equal(irc_mode_format(c, 2, out, 0), 13);
    assert_int_equal(out[0], 'z');
    assert_int_equal(irc_mode_format(c, 2, out, 1), 13);
    assert_string_equal(out, "");
}

static void test_mode_format_round_trips_parse(void **state)
{
    struct parsed p = PARSE("+ov-k+l-tb", "n1", "n2", "k", "7", "m!*@*");
    char out[128];
    irc_mode_format(p.c, p.n, out, sizeof out);
    assert_string_equal(out, "+ov-k+l-tb n1 n2 k 7 m!*@*");
}

/* ---- user modes ------------------------------------------------------ */

static void test_umode_applies_i(void **state)
{
    bool inv = false;
    assert_true(irc_umode_apply("+i", &inv));
    assert_true(inv);
    assert_true(irc_umode_apply("-i", &inv));
    assert_false(inv);
    assert_true(irc_umode_apply("i", &inv));
    assert_true(inv);
    assert_true(irc_umode_apply("+i-i", &inv));
    assert_false(inv);
    assert_true(irc_umode_apply("", &inv));
    assert_false(inv);
}

static void test_umode_other_letters_are_unknown(void **state)
{
    bool inv = false;
    assert_false(irc_umode_apply("+iw", &inv));
    assert_true(inv); /* the 'i' still counts */
    assert_false(irc_umode_apply("-o", &inv));
    assert_false(irc_umode_apply("+ :", &inv));
    assert_true(inv);
}

/* ---- ban masks ------------------------------------------------------- */

static void expect_mask(const char *in, const char *want)
{
    char out[64];
    size_t n = irc_mask_normalize(in, out, sizeof out);
    assert_string_equal(out, want);
    assert_int_equal(n, strlen(want));
}

static void test_mask_normalize_completes_each_form(void **state)
{
    expect_mask("nick", "nick!*@*");
    expect_mask("user@host", "*!user@host");
    expect_mask("nick!user", "nick!user@*");
    expect_mask("host.with.dots", "*!*@host.with.dots");
    expect_mask("*.example.org", "*!*@*.example.org");
    expect_mask("2001:db8::1", "*!*@2001:db8::1");
    expect_mask("n?ck*", "n?ck*!*@*");
}

static void test_mask_normalize_keeps_full_masks(void **state)
{
    expect_mask("nick!user@host", "nick!user@host");
    expect_mask("*!*@*", "*!*@*");
    expect_mask("N!U@H.Example", "N!U@H.Example");
}

static void test_mask_normalize_empty_pieces_become_stars(void **state)
{
    expect_mask("", "*!*@*");
    expect_mask("!", "*!*@*");
    expect_mask("@", "*!*@*");
    expect_mask("!@", "*!*@*");
    expect_mask("nick!", "nick!*@*");
    expect_mask("!user", "*!user@*");
    expect_mask("@host", "*!*@host");
    expect_mask("user@", "*!user@*");
    expect_mask("nick!@host", "nick!*@host");
    expect_mask("!user@", "*!user@*");
}

static void test_mask_normalize_splits_at_first_bang_and_at(void **state)
{
    expect_mask("a!b!c@d", "a!b!c@d");
    expect_mask("a!b@c@d", "a!b@c@d");
    /* a '!' after the '@' is in the host: no nick was given */
    expect_mask("u@h!x", "*!u@h!x");
}

static void test_mask_normalize_truncates_like_snprintf(void **state)
{
    char out[8];
    memset(out, 'z', sizeof out);
    assert_int_equal(irc_mask_normalize("nickname", out, sizeof out), 12);
    assert_string_equal(out, "nicknam");
    assert_int_equal(irc_mask_normalize("a", out, 5), 5);
    assert_string_equal(out, "a!*@");
    assert_int_equal(irc_mask_normalize("a", out, 6), 5);
    assert_string_equal(out, "a!*@*");
    out[0] = 'z';
    assert_int_equal(irc_mask_normalize("a.b", out, 0), 7);
    assert_int_equal(out[0], 'z');
    assert_int_equal(irc_mask_normalize("a.b", out, 1), 7);
    assert_string_equal(out, "");
}

static void test_mask_match_globs(void **state)
{
    assert_true(room_mask_match("nick!user@host", "nick!user@host"));
    assert_true(room_mask_match("*!*@*", "a!b@c"));
    assert_true(room_mask_match("*", ""));
    assert_true(room_mask_match("", ""));
    assert_false(room_mask_match("", "a"));
    assert_true(room_mask_match("*!*@*.example.org", "a!b@x.y.example.org"));
    assert_false(room_mask_match("*!*@*.example.org", "a!b@example.org"));
    assert_true(room_mask_match("n?ck!*@*", "nick!u@h"));
    assert_false(room_mask_match("n?ck!*@*", "nck!u@h"));
    assert_false(room_mask_match("?", ""));
    assert_true(room_mask_match("???", "abc"));
    assert_false(room_mask_match("???", "abcd"));
    assert_true(room_mask_match("a**b***", "ab"));
    assert_true(room_mask_match("*a*b", "xaybzb"));
    assert_false(room_mask_match("*a*b", "xaybzbc"));
    assert_true(room_mask_match("*aab", "aaaab"));
    assert_false(room_mask_match("abc", "ab"));
    assert_false(room_mask_match("ab", "abc"));
}

static void test_mask_match_is_case_insensitive_rfc1459(void **state)
{
    assert_true(room_mask_match("NICK!*@*", "nick!u@h"));
    assert_true(room_mask_match("[bot]*!*@*", "{BOT}x!u@h"));
    assert_true(room_mask_match("a\\b~!*@*", "A|B^!u@h"));
    assert_false(room_mask_match("a!*@*", "b!u@h"));
}

static void test_mask_match_question_mark_is_one_byte(void **state)
{
    assert_false(room_mask_match("caf?!*@*", "caf\xc3\xa9!u@h"));
    assert_true(room_mask_match("caf?\?!*@*", "caf\xc3\xa9!u@h"));
}

static void test_mask_match_has_no_escape(void **state)
{
    assert_true(room_mask_match("a\\*", "a\\xyz"));
    assert_false(room_mask_match("a\\*", "a*"));
}

/* The obvious matcher, exponential but right: the reference. */
static bool slow_match(const char *p, const char *s)
{
    if (*p == '\0')
        return *s == '\0';
    if (*p == '*')
        return slow_match(p + 1, s) || (*s && slow_match(p, s + 1));
    return *s && (*p == '?' || room_fold_char(*p) == room_fold_char(*s)) &&
           slow_match(p + 1, s + 1);
}

static void test_mask_match_agrees_with_the_obvious_matcher(void **state)
{
    static const char pat[] = "ab*?A[{";
    static const char sub[] = "abAB[{";
    uint32_t seed = 7;
    char p[8], s[10];
    for (int round = 0; round < 50000; round++) {
        seed = seed * 1103515245u + 12345u;
        size_t pn = (seed >> 8) % sizeof p, sn = (seed >> 16) % sizeof s;
        for (size_t i = 0; i < pn; i++) {
            seed = seed * 1103515245u + 12345u;
            p[i] = pat[(seed >> 16) % (sizeof pat - 1)];
        }
        for (size_t i = 0; i < sn; i++) {
            seed = seed * 1103515245u + 12345u;
            s[i] = sub[(seed >> 16) % (sizeof sub - 1)];
        }
        p[pn] = s[sn] = '\0';
        if (room_mask_match(p, s) != slow_match(p, s))
            fail_msg("mask \"%s\" subject \"%s\"", p, s);
    }
}

/* A backtracking matcher tries every way of splitting the subject among
 * the stars: about (n choose 40) here, which would not end this century.
 * This one compares at most strlen(mask) * strlen(subject) bytes, about
 * 10^6, so this test ending at all is the proof; no clock is read. */
static void test_mask_match_worst_case_is_not_exponential(void **state)
{
    char mask[128], subject[8193];
    size_t m = 0;
    for (int i = 0; i < 40; i++) {
        mask[m++] = '*';
        mask[m++] = 'a';
    }
    mask[m++] = '*';
    mask[m++] = 'b';
    mask[m] = '\0';
    memset(subject, 'a', sizeof subject - 1);
    subject[sizeof subject - 1] = '\0';
    assert_false(room_mask_match(mask, subject));
    subject[sizeof subject - 2] = 'b';
    assert_true(room_mask_match(mask, subject));
    /* the greedy matcher's own worst case: the star retried at each byte */
    assert_false(
        room_mask_match("*aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaab",
                       "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
                       "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mode_parse_takes_arguments_in_order),
        cmocka_unit_test(test_mode_parse_arguments_point_into_args),
        cmocka_unit_test(test_mode_without_sign_adds),
        cmocka_unit_test(test_mode_flags_take_no_argument),
        cmocka_unit_test(test_mode_ban_takes_a_mask_both_ways),
        cmocka_unit_test(test_mode_ban_without_argument_is_one_list_request),
        cmocka_unit_test(test_mode_key_is_required_to_set),
        cmocka_unit_test(test_mode_key_is_optional_to_unset),
        cmocka_unit_test(test_mode_key_with_comma_is_dropped),
        cmocka_unit_test(test_mode_limit_is_a_positive_integer_to_set),
        cmocka_unit_test(test_mode_limit_unset_takes_no_argument),
        cmocka_unit_test(test_mode_limit_value),
        cmocka_unit_test(test_mode_prefix_modes_need_a_nick),
        cmocka_unit_test(test_mode_missing_param_skips_only_that_change),
        cmocka_unit_test(test_mode_unusable_arguments_are_dropped),
        cmocka_unit_test(test_mode_extra_arguments_are_ignored),
        cmocka_unit_test(test_mode_unknown_letters_each_once),
        cmocka_unit_test(test_mode_unknown_letters_are_cut_to_fit),
        cmocka_unit_test(test_mode_parse_stops_at_max),
        cmocka_unit_test(test_mode_hostile_strings_stay_in_bounds),
        cmocka_unit_test(test_mode_letters_match_isupport),
        cmocka_unit_test(test_mode_format_prints_a_sign_only_when_it_changes),
        cmocka_unit_test(test_mode_format_of_nothing_is_empty),
        cmocka_unit_test(test_mode_format_truncates_like_snprintf),
        cmocka_unit_test(test_mode_format_round_trips_parse),
        cmocka_unit_test(test_umode_applies_i),
        cmocka_unit_test(test_umode_other_letters_are_unknown),
        cmocka_unit_test(test_mask_normalize_completes_each_form),
        cmocka_unit_test(test_mask_normalize_keeps_full_masks),
        cmocka_unit_test(test_mask_normalize_empty_pieces_become_stars),
        cmocka_unit_test(test_mask_normalize_splits_at_first_bang_and_at),
        cmocka_unit_test(test_mask_normalize_truncates_like_snprintf),
        cmocka_unit_test(test_mask_match_globs),
        cmocka_unit_test(test_mask_match_is_case_insensitive_rfc1459),
        cmocka_unit_test(test_mask_match_question_mark_is_one_byte),
        cmocka_unit_test(test_mask_match_has_no_escape),
        cmocka_unit_test(test_mask_match_agrees_with_the_obvious_matcher),
        cmocka_unit_test(test_mask_match_worst_case_is_not_exponential),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
