/* Room modes at the home: applying an operator's changes (flags, key,
 * limit, bans, operator and voice), and answering what they are. The
 * letters are IRC's, the one vocabulary every face shares; a mode set
 * from one face holds for members of every face. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "protocols/room/cluster.h"

static const struct {
    char letter;
    unsigned bit;
} flags[] = {
    {'i', ROOM_MODE_INVITE_ONLY}, {'m', ROOM_MODE_MODERATED},
    {'n', ROOM_MODE_NO_EXTERNAL}, {'s', ROOM_MODE_SECRET},
    {'t', ROOM_MODE_TOPIC_LOCK},
};

static unsigned flag_bit(char letter)
{
    for (size_t i = 0; i < sizeof flags / sizeof flags[0]; i++)
        if (flags[i].letter == letter)
            return flags[i].bit;
    return 0;
}

/* Builds "+o-v alice bob" as changes are applied. */
/* Room for 16 changes with full masks: a face sends at most 16. */
struct applied {
    char modes[64], args[16 * (sizeof(((struct room_ban *)0)->mask) + 1)];
    size_t nmodes, nargs;
    char sign;
};

static void applied_add(struct applied *ap, bool add, char mode,
                        const char *arg)
{
    char sign = add ? '+' : '-';
    size_t alen = arg ? strlen(arg) + 1 : 0;
    /* A letter goes with its argument or not at all: a MODE line that
     * lost one would put every client out of step. */
    if (ap->nmodes + 3 >= sizeof ap->modes ||
        ap->nargs + alen >= sizeof ap->args)
        return;
    if (ap->sign != sign)
        ap->modes[ap->nmodes++] = ap->sign = sign;
    ap->modes[ap->nmodes++] = mode;
    ap->modes[ap->nmodes] = '\0';
    if (arg)
        ap->nargs += (size_t)snprintf(ap->args + ap->nargs,
                                      sizeof ap->args - ap->nargs, " %s", arg);
}

static int ban_index(const struct room_home *r, const char *mask)
{
    for (unsigned i = 0; i < r->nbans; i++)
        if (room_casecmp(r->bans[i].mask, mask) == 0) /* one ban, any case */
            return (int)i;
    return -1;
}

/* Applies one change; returns its refusal or ROOM_OK. */
static enum room_status apply(struct room_core *core, struct room_home *r,
                              const struct room_msg *m, bool add, char mode,
                              const char *arg, struct applied *ap)
{
    unsigned bit = flag_bit(mode);
    if (bit) {
        if (!!(r->modes & bit) != add) {
            r->modes = add ? r->modes | bit : r->modes & ~bit;
            applied_add(ap, add, mode, NULL);
        }
        return ROOM_OK;
    }
    switch (mode) {
    case 'o':
    case 'v': {
        struct room_member *t = arg ? room_member_by_nick(r, arg) : NULL;
        if (!t)
            return ROOM_TARGET_NOT_MEMBER;
        uint8_t p = mode == 'o' ? ROOM_OP : ROOM_VOICE;
        t->prefix = add ? (uint8_t)(t->prefix | p) : (uint8_t)(t->prefix & ~p);
        applied_add(ap, add, mode, t->nick);
        return ROOM_OK;
    }
    case 'k':
        if (add && arg && *arg) {
            snprintf(r->pass, sizeof r->pass, "%s", arg);
            applied_add(ap, true, 'k', r->pass);
        } else if (!add && r->pass[0]) {
            r->pass[0] = '\0';
            applied_add(ap, false, 'k', "*");
        }
        return ROOM_OK;
    case 'l': {
        /* atoi's range without its overflow (undefined) on long digits. */
        long lim = add && arg ? strtol(arg, NULL, 10) : 0;
        if (lim > 0 && lim <= INT_MAX) {
            r->limit = (unsigned)lim;
            char n[16];
            snprintf(n, sizeof n, "%u", r->limit);
            applied_add(ap, true, 'l', n);
        } else if (!add && r->limit) {
            r->limit = 0;
            applied_add(ap, false, 'l', NULL);
        }
        return ROOM_OK;
    }
    case 'b': {
        if (!arg || !*arg)
            return ROOM_OK;
        int i = ban_index(r, arg);
        if (add && i < 0) {
            if (r->nbans == ROOM_BANS_MAX)
                return ROOM_BAN_LIST_FULL;
            void *grown = realloc(r->bans, (r->nbans + 1) * sizeof *r->bans);
            if (!grown)
                return ROOM_NO_MEMORY;
            r->bans = grown;
            struct room_ban *b = &r->bans[r->nbans++];
            snprintf(b->mask, sizeof b->mask, "%s", arg);
            memcpy(b->by, m->nick, sizeof b->by);
            b->time_ms = room_now_ms(core);
            applied_add(ap, true, 'b', b->mask);
        } else if (!add && i >= 0) {
            applied_add(ap, false, 'b', r->bans[i].mask);
            r->bans[i] = r->bans[--r->nbans];
        }
        return ROOM_OK;
    }
    default:
        return ROOM_OK; /* faces refuse unknown letters themselves */
    }
}

/* m->text: one change per line, "+o alice" or "-k". */
void room_home_mode(struct room_core *core, struct room_msg *m)
{
    struct room_home *r = room_home_find(core, m->room);
    struct room_member *mb = r ? room_member_find(r, m->id) : NULL;
    if (!r || !mb || !(mb->prefix & ROOM_OP)) {
        room_home_answer(core, m, ROOM_ANS_MODE,
                         !r ? ROOM_NO_SUCH_ROOM : ROOM_NOT_OP, NULL);
        return;
    }
    memcpy(m->room, r->name, sizeof m->room);
    struct applied ap = {.nmodes = 0};
    enum room_status st = ROOM_OK;
    char refused = 0, refused_arg[ROOM_NICK_MAX + 1] = "";
    for (char *save = NULL, *line = strtok_r(m->text, "\n", &save); line;
         line = strtok_r(NULL, "\n", &save)) {
        if (strlen(line) < 2)
            continue;
        const char *arg = line[2] == ' ' ? line + 3 : NULL;
        enum room_status s = apply(core, r, m, line[0] == '+', line[1], arg,
                                   &ap);
        if (s != ROOM_OK && st == ROOM_OK) {
            st = s;
            refused = line[1];
            snprintf(refused_arg, sizeof refused_arg, "%s", arg ? arg : "");
        }
    }
    if (ap.nmodes) {
        char text[sizeof ap.modes + sizeof ap.args];
        int n = snprintf(text, sizeof text, "%s%s", ap.modes, ap.args);
        room_fanout(core, r, m, ROOM_EV_MODE, NULL, text, (size_t)n, 0);
    }
    struct room_msg *a = room_msg_new(core, OP_ANSWER, NULL, 0, NULL, 0);
    if (a) {
        a->mode = refused;
        memcpy(a->nick, refused_arg, sizeof a->nick);
    }
    room_home_answer(core, m, ROOM_ANS_MODE, st, a);
}

/* Modes ("+nt" and parameters), bans, or members. */
void room_home_modes(struct room_core *core, struct room_msg *m)
{
    static const enum room_answer_kind kinds[] = {
        [MODES_MODES] = ROOM_ANS_MODE, [MODES_BANS] = ROOM_ANS_BANS,
        [MODES_NAMES] = ROOM_ANS_NAMES};
    enum room_answer_kind kind = kinds[m->flag <= MODES_NAMES ? m->flag : 0];
    struct room_home *r = room_home_find(core, m->room);
    if (!r) {
        room_home_answer(core, m, kind, ROOM_NO_SUCH_ROOM, NULL);
        return;
    }
    memcpy(m->room, r->name, sizeof m->room);
    if (m->flag == MODES_NAMES && core->cluster &&
        cl_names(core->cluster, m, ROOM_ANS_NAMES))
        return; /* with the other nodes' members, when Redis answers */
    struct room_msg *a = NULL;
    if (m->flag == MODES_NAMES) {
        a = room_pack_members(core, r);
    } else if (m->flag == MODES_BANS) {
        size_t line = sizeof r->bans[0].mask + ROOM_NICK_MAX + 24;
        char *text = malloc(r->nbans * line + 1);
        if (text) {
            size_t len = 0;
            text[0] = '\0';
            for (unsigned i = 0; i < r->nbans; i++)
                len += (size_t)snprintf(text + len, line + 1, "%s %s %lld\n",
                                        r->bans[i].mask, r->bans[i].by,
                                        (long long)(r->bans[i].time_ms / 1000));
            a = room_msg_new(core, OP_ANSWER, text, len, NULL, 0);
            free(text);
        }
    } else {
        char text[96], *p = text;
        *p++ = '+';
        for (size_t i = 0; i < sizeof flags / sizeof flags[0]; i++)
            if (r->modes & flags[i].bit)
                *p++ = flags[i].letter;
        if (r->pass[0])
            *p++ = 'k';
        if (r->limit)
            *p++ = 'l';
        *p = '\0';
        size_t len = (size_t)(p - text);
        /* The key is shown to members only. */
        bool member = room_member_find(r, m->id) != NULL;
        if (r->pass[0])
            len += (size_t)snprintf(text + len, sizeof text - len, " %s",
                                    member ? r->pass : "*");
        if (r->limit)
            len += (size_t)snprintf(text + len, sizeof text - len, " %u",
                                    r->limit);
        a = room_msg_new(core, OP_ANSWER, text, len, NULL, 0);
        if (a)
            a->time2 = r->created;
    }
    room_home_answer(core, m, kind, a ? ROOM_OK : ROOM_NO_MEMORY, a);
}
