/* Channel commands: JOIN, PART, TOPIC, NAMES, LIST, MODE, KICK, INVITE,
 * and the numerics of their answers. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "protocols/irc/irc.h"
#include "protocols/irc/mode.h"

const char *irc_room_of(struct irc_conn *ic, const char *channel)
{
    if (!irc_channel_valid(channel, strlen(channel), IRC_CHANNEL_MAX)) {
        irc_numeric(ic, "403", "%.64s :No such channel", channel);
        return NULL;
    }
    return channel + 1;
}

/* The standing of a member as NAMES and WHO show it. */
static void prefix_text(struct irc_conn *ic, uint8_t prefix, char *out)
{
    char *p = out;
    if (prefix & ROOM_OP)
        *p++ = '@';
    if ((prefix & ROOM_VOICE) && (p == out || ic->cap_multi_prefix))
        *p++ = '+';
    *p = '\0';
}

void irc_send_names(struct irc_conn *ic, const char *room,
                    const struct room_answer *a)
{
    char line[IRC_LINE_MAX];
    size_t len = 0;
    int head = snprintf(line, sizeof line, "= #%s :", room);
    for (unsigned i = 0; i <= a->nmembers; i++) {
        char entry[ROOM_NICK_MAX + 4];
        if (i < a->nmembers) {
            prefix_text(ic, a->members[i].prefix, entry);
            /* NOLINTNEXTLINE(*insecureAPI.strcpy): "@+" + nick + NUL fit */
            strcat(entry, a->members[i].nick);
        }
        /* A line per ~400 bytes, so ours stay under 512 with the prefix. */
        /* cppcheck-suppress uninitvar ; entry is read only if i < nmembers */
        if (len && (i == a->nmembers || len + strlen(entry) + 1 > 400)) {
            irc_numeric(ic, "353", "%.*s", (int)(head + len), line);
            len = 0;
        }
        if (i < a->nmembers)
            len += (size_t)snprintf(line + head + len,
                                    sizeof line - (size_t)head - len, "%s%s",
                                    len ? " " : "", entry);
    }
    irc_numeric(ic, "366", "#%s :End of /NAMES list.", room);
}

/* ---- commands --------------------------------------------------------- */

void irc_cmd_join(struct irc_conn *ic, char **p, unsigned n)
{
    if (strcmp(p[0], "0") == 0) { /* leave every channel */
        char rooms[IRC_CHANNELS_MAX][ROOM_NAME_MAX + 1];
        unsigned k = room_user_rooms(&ic->u, rooms, IRC_CHANNELS_MAX);
        for (unsigned i = 0; i < k; i++)
            room_part(&ic->u, rooms[i], NULL);
        return;
    }
    char channels[IRC_LINE_MAX], keys[IRC_LINE_MAX];
    snprintf(channels, sizeof channels, "%s", p[0]);
    snprintf(keys, sizeof keys, "%s", n > 1 ? p[1] : "");
    char *ks = NULL, *key = strtok_r(keys, ",", &ks);
    char joined[IRC_CHANNELS_MAX][ROOM_NAME_MAX + 1];
    unsigned in = room_user_rooms(&ic->u, joined, IRC_CHANNELS_MAX);
    unsigned count = 0;
    for (char *cs = NULL, *c = strtok_r(channels, ",", &cs); c;
         c = strtok_r(NULL, ",", &cs), key = key ? strtok_r(NULL, ",", &ks)
                                                 : NULL) {
        if (++count > 8) {
            irc_numeric(ic, "407", "%.64s :Too many targets", c);
            break;
        }
        const char *room = irc_room_of(ic, c);
        if (room && in >= IRC_CHANNELS_MAX) {
            irc_numeric(ic, "405", "%.64s :You have joined too many "
                        "channels", c);
            break;
        }
        if (room) {
            room_join(&ic->u, room, key ? key : "", true);
            in++; /* an upper bound: a JOIN of a channel one is in counts */
        }
    }
}

void irc_cmd_part(struct irc_conn *ic, char **p, unsigned n)
{
    char channels[IRC_LINE_MAX];
    snprintf(channels, sizeof channels, "%s", p[0]);
    for (char *cs = NULL, *c = strtok_r(channels, ",", &cs); c;
         c = strtok_r(NULL, ",", &cs)) {
        const char *room = irc_room_of(ic, c);
        if (room)
            room_part(&ic->u, room, n > 1 ? p[1] : NULL);
    }
}

void irc_cmd_topic(struct irc_conn *ic, char **p, unsigned n)
{
    const char *room = irc_room_of(ic, p[0]);
    if (!room)
        return;
    ic->asked = n > 1 ? ASKED_NONE : ASKED_TOPIC;
    room_topic(&ic->u, room, n > 1 ? p[1] : NULL);
}

void irc_cmd_names(struct irc_conn *ic, char **p, unsigned n)
{
    if (n == 0) {
        irc_numeric(ic, "366", "* :End of /NAMES list.");
        return;
    }
    p[0][strcspn(p[0], ",")] = '\0'; /* NAMES #a,#b: the first */
    const char *room = irc_room_of(ic, p[0]);
    if (!room)
        return;
    ic->asked = ASKED_NAMES;
    room_names(&ic->u, room);
}

void irc_cmd_list(struct irc_conn *ic, char **p, unsigned n)
{
    (void)p, (void)n;
    room_list(&ic->u);
}

void irc_cmd_kick(struct irc_conn *ic, char **p, unsigned n)
{
    const char *room = irc_room_of(ic, p[0]);
    if (room)
        room_kick(&ic->u, room, p[1], n > 2 ? p[2] : ic->u.nick);
}

void irc_cmd_invite(struct irc_conn *ic, char **p, unsigned n)
{
    (void)n;
    const char *room = irc_room_of(ic, p[1]);
    if (room)
        room_invite(&ic->u, room, p[0]);
}

static void user_mode(struct irc_conn *ic, char **p, unsigned n)
{
    char a[ROOM_NICK_MAX + 1], b[ROOM_NICK_MAX + 1];
    room_fold(a, p[0], sizeof a);
    room_fold(b, ic->u.nick, sizeof b);
    if (strlen(p[0]) > ROOM_NICK_MAX || strcmp(a, b) != 0) {
        irc_numeric(ic, "502", ":Can't change mode for other users");
        return;
    }
    if (n == 1) {
        irc_numeric(ic, "221", "+%s", ic->u.invisible ? "i" : "");
        return;
    }
    bool was = ic->u.invisible;
    if (!irc_umode_apply(p[1], &ic->u.invisible))
        irc_numeric(ic, "501", ":Unknown MODE flag");
    if (was != ic->u.invisible) /* the change itself, as a MODE */
        irc_send(ic, ":%s!%s@%s MODE %s :%ci", ic->u.nick, ic->u.user,
                 ic->u.host, ic->u.nick, ic->u.invisible ? '+' : '-');
}

void irc_cmd_mode(struct irc_conn *ic, char **p, unsigned n)
{
    if (p[0][0] != '#') {
        user_mode(ic, p, n);
        return;
    }
    const char *room = irc_room_of(ic, p[0]);
    if (!room)
        return;
    if (n == 1) {
        room_modes(&ic->u, room);
        return;
    }
    struct irc_mode_change c[16];
    char unknown[64], masks[16][ROOM_NICK_MAX + ROOM_USER_MAX +
                                 ROOM_HOST_MAX + 3];
    bool missing = false;
    unsigned k = irc_mode_parse(p[1], p + 2, n - 2, c, 16, unknown,
                                sizeof unknown, &missing);
    for (const char *u = unknown; *u; u++)
        irc_numeric(ic, "472", "%c :is unknown mode char to me", *u);
    if (missing)
        irc_numeric(ic, "461", "MODE :Not enough parameters");
    struct room_mode_change rc[16];
    unsigned m = 0;
    bool list_bans = false;
    for (unsigned i = 0; i < k; i++) {
        if (c[i].mode == 'b' && !c[i].arg) {
            list_bans = true;
            continue;
        }
        const char *arg = c[i].arg;
        if (c[i].mode == 'b') { /* bans are kept as full masks */
            size_t len = irc_mask_normalize(arg, masks[m], sizeof masks[m]);
            if (len >= sizeof masks[m])
                continue;
            arg = masks[m];
        }
        rc[m++] = (struct room_mode_change){c[i].add, c[i].mode, arg};
    }
    if (m)
        room_mode(&ic->u, room, rc, m);
    else if (list_bans)
        room_bans(&ic->u, room);
}

/* ---- answers ---------------------------------------------------------------- */

static void refused(struct irc_conn *ic, const struct room_answer *a)
{
    const char *r = a->room;
    switch (a->status) {
    case ROOM_NO_SUCH_ROOM:
        irc_numeric(ic, "403", "#%s :No such channel", r);
        break;
    case ROOM_NOT_MEMBER:
        irc_numeric(ic, "442", "#%s :You're not on that channel", r);
        break;
    case ROOM_NOT_OP:
        irc_numeric(ic, "482", "#%s :You're not channel operator", r);
        break;
    case ROOM_TARGET_NOT_MEMBER:
        irc_numeric(ic, "441", "%s #%s :They aren't on that channel",
                    a->nick, r);
        break;
    case ROOM_ALREADY_MEMBER:
        irc_numeric(ic, "443", "%s #%s :is already on channel", a->nick, r);
        break;
    case ROOM_NO_SUCH_NICK:
        irc_numeric(ic, "401", "%s :No such nick/channel", a->nick);
        break;
    case ROOM_BANNED:
        irc_numeric(ic, "474", "#%s :Cannot join channel (+b)", r);
        break;
    case ROOM_INVITE_ONLY:
        irc_numeric(ic, "473", "#%s :Cannot join channel (+i)", r);
        break;
    case ROOM_BAD_KEY:
        irc_numeric(ic, "475", "#%s :Cannot join channel (+k)", r);
        break;
    case ROOM_FULL:
        irc_numeric(ic, "471", "#%s :Cannot join channel (+l)", r);
        break;
    case ROOM_CANNOT_SPEAK:
        irc_numeric(ic, "404", "#%s :Cannot send to channel", r);
        break;
    case ROOM_BAN_LIST_FULL:
        irc_numeric(ic, "478", "#%s %s :Channel ban list is full", r,
                    a->nick);
        break;
    default:
        irc_send(ic, ":%s NOTICE %s :Server error (out of memory)",
                 irc_server(ic), irc_me(ic));
        break;
    }
}

static void topic_lines(struct irc_conn *ic, const struct room_answer *a)
{
    if (!a->topic || !a->topic[0]) {
        irc_numeric(ic, "331", "#%s :No topic is set", a->room);
        return;
    }
    irc_numeric(ic, "332", "#%s :%s", a->room, a->topic);
    irc_numeric(ic, "333", "#%s %s %lld", a->room, a->topic_by,
                (long long)(a->topic_time / 1000));
}

void irc_answer_channel(struct irc_conn *ic, const struct room_answer *a)
{
    if (a->status == ROOM_ALREADY_MEMBER && a->kind == ROOM_ANS_JOIN)
        return; /* JOIN of a channel we are in: nothing to say */
    if (a->status != ROOM_OK && a->kind != ROOM_ANS_NAMES) {
        refused(ic, a);
        return;
    }
    switch (a->kind) {
    case ROOM_ANS_JOIN:
        if (a->topic && a->topic[0])
            topic_lines(ic, a);
        irc_send_names(ic, a->room, a);
        break;
    case ROOM_ANS_TOPIC:
        if (ic->asked == ASKED_TOPIC) /* else a new topic: TOPIC said it */
            topic_lines(ic, a);
        ic->asked = ASKED_NONE;
        break;
    case ROOM_ANS_MODE:
        if (a->mode) /* a change, refused above or applied: nothing */
            break;
        if (a->text && a->text[0] == '+') {
            irc_numeric(ic, "324", "#%s %s", a->room, a->text);
            irc_numeric(ic, "329", "#%s %lld", a->room,
                        (long long)(a->created / 1000));
        }
        break;
    case ROOM_ANS_BANS: {
        char *copy = strndup(a->text, a->len);
        for (char *s = NULL, *l = copy ? strtok_r(copy, "\n", &s) : NULL; l;
             l = strtok_r(NULL, "\n", &s))
            irc_numeric(ic, "367", "#%s %s", a->room, l);
        free(copy);
        irc_numeric(ic, "368", "#%s :End of channel ban list", a->room);
        break;
    }
    case ROOM_ANS_INVITE:
        irc_numeric(ic, "341", "%s #%s", a->nick, a->room);
        break;
    case ROOM_ANS_ROOMS: {
        irc_numeric(ic, "321", "Channel :Users  Name");
        char *copy = strndup(a->text, a->len);
        for (char *s = NULL, *l = copy ? strtok_r(copy, "\n", &s) : NULL; l;
             l = strtok_r(NULL, "\n", &s)) {
            char *topic = strchr(l, ' ');
            topic = topic ? strchr(topic + 1, ' ') : NULL;
            if (!topic)
                continue;
            *topic++ = '\0';
            char *space = strchr(l, ' ');
            *space = '\0';
            irc_numeric(ic, "322", "#%s %s :%s", l, space + 1, topic);
        }
        free(copy);
        irc_numeric(ic, "323", ":End of /LIST");
        break;
    }
    default:
        break;
    }
}
