/* The chat line rules: UTF-8 and control characters, names, and the
 * command table as chat_line_parse reads it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "protocols/chat/line.h"
#include "protocols/room/fold.h"

#define CHECK(s) chat_text_check(s, sizeof(s) - 1)

static void test_text(void **state)
{
    (void)state;
    assert_int_equal(CHECK("hello\tworld"), CHAT_TEXT_OK);
    assert_int_equal(CHECK("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"),
                     CHAT_TEXT_OK);
    assert_int_equal(CHECK(""), CHAT_TEXT_OK);
    /* terminal escapes: ESC, BEL, DEL, C1 CSI (U+009B) */
    assert_int_equal(CHECK("a\x1b[2Jb"), CHAT_TEXT_CONTROL);
    assert_int_equal(CHECK("\x07"), CHAT_TEXT_CONTROL);
    assert_int_equal(CHECK("x\x7f"), CHAT_TEXT_CONTROL);
    assert_int_equal(CHECK("\xc2\x9b" "31m"), CHAT_TEXT_CONTROL);
    assert_int_equal(CHECK("a\rb"), CHAT_TEXT_CONTROL);
    assert_int_equal(chat_text_check("a\0b", 3), CHAT_TEXT_CONTROL);
    /* malformed UTF-8 */
    assert_int_equal(CHECK("\xff"), CHAT_TEXT_BAD_UTF8);
    assert_int_equal(CHECK("\xc3"), CHAT_TEXT_BAD_UTF8);          /* cut */
    assert_int_equal(CHECK("\xc3(x"), CHAT_TEXT_BAD_UTF8);        /* bad tail */
    assert_int_equal(CHECK("\xc0\xaf"), CHAT_TEXT_BAD_UTF8);      /* overlong */
    assert_int_equal(CHECK("\xe0\x80\xaf"), CHAT_TEXT_BAD_UTF8);  /* overlong */
    assert_int_equal(CHECK("\xed\xa0\x80"), CHAT_TEXT_BAD_UTF8);  /* surrogate */
    assert_int_equal(CHECK("\xf4\x90\x80\x80"), CHAT_TEXT_BAD_UTF8); /* >10FFFF */
    assert_int_equal(CHECK("\x80"), CHAT_TEXT_BAD_UTF8);
}

#define NICK(s) chat_nick_valid(s, strlen(s))
#define ROOM(s) room_name_valid(s, strlen(s))

static void test_names(void **state)
{
    (void)state;
    assert_true(NICK("alice"));
    assert_true(NICK("[bob]_|^{}`-9"));
    assert_false(NICK(""));
    assert_false(NICK("9lives"));
    assert_false(NICK("-x"));
    assert_false(NICK("*bot"));
    assert_false(NICK("a b"));
    assert_false(NICK("a:b"));
    assert_true(NICK("abcdefghijklmnopqrstuvwxyz012345"));   /* 32 */
    assert_false(NICK("abcdefghijklmnopqrstuvwxyz0123456")); /* 33 */
    assert_true(room_nick_reserved("guest12", 7));
    assert_false(room_nick_reserved("guest", 5));
    assert_false(room_nick_reserved("guest1a", 7));
    assert_false(room_nick_reserved("guesthouse", 10));
    assert_true(room_nick_reserved("GUEST7", 6)); /* any case */
    assert_true(ROOM("lobby"));
    assert_true(ROOM("#rust.dev-2_x"));
    assert_false(ROOM(""));
    assert_false(ROOM("a b"));
    assert_false(ROOM("caf\xc3\xa9"));
    assert_false(ROOM("abcdefghijklmnopqrstuvwxyz0123456"));
}

static struct chat_line parse(const char *s)
{
    struct chat_line l;
    chat_line_parse(s, strlen(s), &l);
    return l;
}

static void test_commands(void **state)
{
    (void)state;
    struct chat_line l = parse("hello there");
    assert_int_equal(l.cmd, CHAT_SAY);
    assert_int_equal(l.arg_len, 11);

    l = parse("//not a command");
    assert_int_equal(l.cmd, CHAT_SAY);
    assert_memory_equal(l.arg, "/not a command", l.arg_len);

    l = parse("/nick   alice  ");
    assert_int_equal(l.cmd, CHAT_NICK);
    assert_false(l.bad_arg);
    assert_int_equal(l.arg_len, 5);
    assert_memory_equal(l.arg, "alice", 5);

    l = parse("/nick");
    assert_int_equal(l.cmd, CHAT_NICK);
    assert_true(l.bad_arg);
    assert_string_equal(l.command->usage, "/nick NAME");

    l = parse("/part now");
    assert_int_equal(l.cmd, CHAT_PART);
    assert_true(l.bad_arg);

    l = parse("/quit");
    assert_int_equal(l.cmd, CHAT_QUIT);
    assert_false(l.bad_arg);
    l = parse("/quit bye all");
    assert_false(l.bad_arg);
    assert_memory_equal(l.arg, "bye all", l.arg_len);

    l = parse("/msg bob hi there");
    assert_int_equal(l.cmd, CHAT_MSG);
    assert_memory_equal(l.arg, "bob hi there", l.arg_len);

    l = parse("/nickname x");
    assert_int_equal(l.cmd, CHAT_UNKNOWN);
    assert_int_equal(l.word_len, 9);
    l = parse("/");
    assert_int_equal(l.cmd, CHAT_UNKNOWN);

    /* every table entry parses back to itself */
    for (const struct chat_command *c = chat_commands; c->name; c++) {
        char line[64];
        snprintf(line, sizeof line, "/%s%s", c->name,
                 c->arg == CHAT_ARG_REQUIRED ? " x y" : "");
        l = parse(line);
        assert_int_equal(l.cmd, c->cmd);
        assert_ptr_equal(l.command, c);
        assert_false(l.bad_arg);
        assert_true(strncmp(c->usage + 1, c->name, strlen(c->name)) == 0);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_text),
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_commands),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
