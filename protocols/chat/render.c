/* The room core's events and answers as chat lines (the table in
 * docs/protocols/chat.md). One shared buffer per event per worker for all
 * its chat members. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "protocols/chat/chat.h"
#include "protocols/irc/text.h"

void chat_put(struct chat_conn *cc, const char *text, size_t len)
{
    room_write(&cc->u, text, len);
}

void chat_putf(struct chat_conn *cc, const char *fmt, ...)
{
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n >= sizeof buf) /* keep the line end of a cut line */
        n = sizeof buf - 1, buf[n - 1] = '\n';
    chat_put(cc, buf, (size_t)n);
}

/* ---- rendering the core's events ------------------------------------------ */

/* Text from other faces may carry IRC formatting, which chat forbids
 * (no control bytes reach a chat screen): it is removed, and a line left
 * with other control bytes is not shown. */
static size_t plain(const char *text, size_t len, char *out)
{
    size_t n = irc_strip_formatting(text, len, out);
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)out[i] < 0x20 && out[i] != '\t')
            return 0;
    return n;
}

static int render(const struct room_event *ev, const char *me, char *buf,
                  size_t size)
{
    char *text = malloc(ev->len + 1);
    size_t n = text ? plain(ev->text, ev->len, text) : 0;
    int r = -1;
    const char *room = ev->room, *who = ev->nick;
    switch (ev->kind) {
    case ROOM_EV_SAY:
        if (n)
            r = room ? snprintf(buf, size, "%s: %.*s\n", who, (int)n, text)
                     : snprintf(buf, size, "%s -> %s: %.*s\n", who, me,
                                (int)n, text);
        break;
    case ROOM_EV_ACTION:
        if (n)
            r = room ? snprintf(buf, size, "* %s %.*s\n", who, (int)n, text)
                     : snprintf(buf, size, "* %s -> %s %.*s\n", who, me,
                                (int)n, text);
        break;
    case ROOM_EV_NOTICE:
        if (n)
            r = snprintf(buf, size, "-%s- %.*s\n", who, (int)n, text);
        break;
    case ROOM_EV_CTCP:
        break; /* requests for IRC clients' software */
    case ROOM_EV_JOIN:
        r = snprintf(buf, size, "*** %s joined %s\n", who, room);
        break;
    case ROOM_EV_PART:
        r = n ? snprintf(buf, size, "*** %s left %s (%.*s)\n", who, room,
                         (int)n, text)
              : snprintf(buf, size, "*** %s left %s\n", who, room);
        break;
    case ROOM_EV_QUIT:
        r = snprintf(buf, size, "*** %s quit (%.*s)\n", who, (int)n, text);
        break;
    case ROOM_EV_NICK:
        r = snprintf(buf, size, "*** %s is now known as %s\n", who,
                     ev->target);
        break;
    case ROOM_EV_TOPIC:
        r = snprintf(buf, size, "*** %s set the topic of %s to: %.*s\n", who,
                     room, (int)n, text);
        break;
    case ROOM_EV_MODE:
        r = snprintf(buf, size, "*** %s sets mode %.*s on %s\n", who, (int)n,
                     text, room);
        break;
    case ROOM_EV_KICK:
        r = snprintf(buf, size, "*** %s was kicked from %s by %s (%.*s)\n",
                     ev->target, room, who, (int)n, text);
        break;
    case ROOM_EV_INVITE:
        r = snprintf(buf, size, "*** %s invites you to join %s\n", who, room);
        break;
    case ROOM_EV_MISSED:
        r = snprintf(buf, size, "*** some lines of %s may have been missed\n",
                     room);
        break;
    }
    free(text);
    if (r >= (int)size) /* keep the line end of a cut line */
        r = (int)size - 1, buf[r - 1] = '\n';
    return r;
}

static void chat_deliver(struct room_user *u, const struct room_event *ev,
                         struct pc_sbuf **cache)
{
    struct chat_conn *cc = (struct chat_conn *)u;
    if (ev->kind == ROOM_EV_KICK && ev->room &&
        strcmp(ev->target, u->nick) == 0)
        cc->room[0] = '\0'; /* the core unlists us right after */
    if (ev->kind == ROOM_EV_PART && ev->from == u->id)
        return; /* chat answers its own part with "OK part" */
    if (!ev->room) { /* to one user: no sharing */
        char buf[4200];
        int n = render(ev, u->nick, buf, sizeof buf);
        if (n > 0)
            chat_put(cc, buf, (size_t)n);
        return;
    }
    if (!cache[0]) {
        size_t size = ev->len + (size_t)3 * ROOM_NICK_MAX + ROOM_NAME_MAX + 64;
        char *buf = malloc(size);
        int n = buf ? render(ev, u->nick, buf, size) : -1;
        if (n > 0 && (cache[0] = pc_sbuf_new((size_t)n)))
            memcpy(cache[0]->data, buf, (size_t)n);
        free(buf);
        if (!cache[0])
            return;
    }
    room_write_shared(u, cache[0]);
}

/* ---- answers --------------------------------------------------------------- */

static const char *refusal(enum room_status st)
{
    switch (st) {
    case ROOM_BANNED: return "you are banned from";
    case ROOM_INVITE_ONLY: return "an invitation is needed for";
    case ROOM_BAD_KEY: return "a key is needed for (/join ROOM KEY)";
    case ROOM_FULL: return "there is no room left in";
    case ROOM_ALREADY_MEMBER: return "you are already in";
    case ROOM_NO_MEMORY: return "out of memory joining";
    default: return "cannot join";
    }
}

/* "OK who ROOM N: a b c" in one write: one unit, never cut in two. */
static void answer_who(struct chat_conn *cc, const struct room_answer *a)
{
    size_t size = 64 + ROOM_NAME_MAX + a->nmembers * (ROOM_NICK_MAX + 1);
    char *line = malloc(size);
    if (!line) {
        chat_putf(cc, "ERR out of memory\n");
        return;
    }
    size_t len = (size_t)snprintf(line, size, "OK who %s %u:", a->room,
                                  a->nmembers);
    for (unsigned i = 0; i < a->nmembers; i++)
        len += (size_t)snprintf(line + len, size - len, " %s",
                                a->members[i].nick);
    line[len++] = '\n';
    chat_put(cc, line, len);
    free(line);
}

static void answer_rooms(struct chat_conn *cc, const struct room_answer *a);

static void chat_answer(struct room_user *u, const struct room_answer *a)
{
    struct chat_conn *cc = (struct chat_conn *)u;
    switch (a->kind) {
    case ROOM_ANS_NICK:
        if (a->status == ROOM_OK)
            chat_putf(cc, "OK nick %s\n", a->nick);
        else
            chat_putf(cc, "ERR nick %s is taken\n", a->nick);
        return;
    case ROOM_ANS_JOIN:
        if (a->status != ROOM_OK) {
            chat_putf(cc, "ERR %s %s\n", refusal(a->status), a->room);
            cc->greeting = false;
            return;
        }
        snprintf(cc->room, sizeof cc->room, "%s", a->room);
        if (!cc->greeting)
            chat_putf(cc, "OK join %s\n", a->room);
        cc->greeting = false;
        return;
    case ROOM_ANS_PART:
        cc->room[0] = '\0';
        if (cc->next_room[0]) { /* a /join: its answer is the OK join */
            room_join(u, cc->next_room, cc->next_key, false);
            cc->next_room[0] = '\0';
            return;
        }
        if (a->status == ROOM_OK)
            chat_putf(cc, "OK part %s\n", a->room);
        else
            chat_putf(cc, "ERR you are not in a room\n");
        return;
    case ROOM_ANS_SAID:
        if (a->status == ROOM_OK)
            chat_putf(cc, "OK msg %s\n", a->nick);
        else
            chat_putf(cc, "ERR no such nick %s\n", a->nick);
        return;
    case ROOM_ANS_NAMES:
        if (a->status != ROOM_OK) {
            chat_putf(cc, "ERR you are not in a room\n");
            return;
        }
        answer_who(cc, a);
        return;
    case ROOM_ANS_ROOMS:
        answer_rooms(cc, a);
        return;
    case ROOM_ANS_CANNOT_SPEAK:
        if (a->status == ROOM_NOT_DELIVERED)
            chat_putf(cc, "ERR not delivered to %s: the cluster is "
                      "unreachable\n", a->room);
        else
            chat_putf(cc, "ERR you cannot speak in %s now\n", a->room);
        return;
    default:
        return; /* chat asks nothing else */
    }
}

/* "name members topic\n" lines into "OK rooms N: name(members) ...". */
static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void answer_rooms(struct chat_conn *cc, const struct room_answer *a)
{
    char *text = strndup(a->text, a->len);
    size_t count = 0;
    for (size_t i = 0; i < a->len; i++)
        count += a->text[i] == '\n';
    char **lines = malloc((count + 1) * sizeof *lines);
    if (!text || !lines) {
        chat_putf(cc, "ERR out of memory\n");
        free(text);
        free(lines);
        return;
    }
    size_t k = 0;
    for (char *save = NULL, *l = strtok_r(text, "\n", &save); l;
         l = strtok_r(NULL, "\n", &save))
        lines[k++] = l;
    qsort(lines, k, sizeof *lines, cmp_str);
    size_t size = 64 + k * (ROOM_NAME_MAX + 16);
    char *out = malloc(size);
    if (out) {
        size_t len = (size_t)snprintf(out, size, "OK rooms %zu:", k);
        for (size_t i = 0; i < k; i++) {
            char name[ROOM_NAME_MAX + 1];
            unsigned members = 0;
            /* NOLINTNEXTLINE(cert-err34-c): the home's own "name count" */
            if (sscanf(lines[i], "%32s %u", name, &members) == 2)
                len += (size_t)snprintf(out + len, size - len, " %s(%u)",
                                        name, members);
        }
        out[len++] = '\n';
        chat_put(cc, out, len); /* one write: one unit */
    }
    free(out);
    free(lines);
    free(text);
}

const struct room_face chat_face = {
    .name = "chat",
    .deliver = chat_deliver,
    .answer = chat_answer,
};

