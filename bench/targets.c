/* The servers chat mode speaks to, and the arithmetic of a run that the
 * command line, the main thread and the load threads must agree on: which
 * connections each thread has, how many deliveries a line owes, and whose
 * receipt lets a closed-loop sender go on. */
#include <errno.h>
#include <string.h>

#include "config.h"

static const struct {
    const char *name;
    const char *port;
    bool self_echo; /* a sender receives its own lines */
} targets[PCB_TARGETS] = {
    [PCB_TARGET_PERCORE] = {"percore", "7008", true},
    [PCB_TARGET_REDIS] = {"redis", "6379", true},
    [PCB_TARGET_NATS] = {"nats", "4222", true},
    /* RFC 2812: a PRIVMSG goes to the channel's members but its sender */
    [PCB_TARGET_IRC] = {"irc", "6667", false},
    /* percored's web face says a line to its sender too */
    [PCB_TARGET_WEB] = {"web", "8080", true},
    [PCB_TARGET_BROADCAST] = {"broadcast", "8081", true},
};

const char *pcb_target_name(enum pcb_target t)
{
    return targets[t].name;
}

const char *pcb_target_port(enum pcb_target t)
{
    return targets[t].port;
}

bool pcb_target_self_echo(enum pcb_target t)
{
    return targets[t].self_echo;
}

int pcb_parse_target(const char *s, enum pcb_target *t)
{
    for (int i = 0; i < PCB_TARGETS; i++)
        if (strcmp(s, targets[i].name) == 0) {
            *t = (enum pcb_target)i;
            return 0;
        }
    return -EINVAL;
}

/* The first connections % threads threads have one more. */
void pcb_thread_share(const struct pcb_config *cfg, unsigned thread,
                      unsigned *first, unsigned *count)
{
    unsigned q = cfg->connections / cfg->threads;
    unsigned r = cfg->connections % cfg->threads;
    *count = q + (thread < r);
    *first = thread * q + (thread < r ? thread : r);
}

static unsigned thread_of(const struct pcb_config *cfg, unsigned index)
{
    unsigned q = cfg->connections / cfg->threads;
    unsigned r = cfg->connections % cfg->threads;
    unsigned big = r * (q + 1); /* connections of the larger threads */
    return index < big || !q ? index / (q + 1) : r + (index - big) / q;
}

unsigned pcb_chat_fanout(const struct pcb_config *cfg)
{
    unsigned readers = cfg->members - cfg->stalled;
    return pcb_target_self_echo(cfg->target) || !readers ? readers
                                                         : readers - 1;
}

/* Member `index` is in room index % rooms, at slot index / rooms; the
 * first --senders slots send, the last --stalled stop reading. The witness
 * is the last reader of the room on the sender's thread to connect: a
 * server that fans out in connection order serves it last. */
long pcb_chat_witness(const struct pcb_config *cfg, unsigned sender)
{
    unsigned first, count;
    pcb_thread_share(cfg, thread_of(cfg, sender), &first, &count);
    unsigned room = sender % cfg->rooms;
    unsigned readers = cfg->members - cfg->stalled;
    if (first + count <= room)
        return -1;
    unsigned x = first + count - 1;
    x -= (x - room) % cfg->rooms; /* the last of the room on the thread */
    for (;;) {
        if (x < first)
            return -1;
        if (x != sender && x / cfg->rooms < readers)
            return x;
        if (x < cfg->rooms)
            return -1;
        x -= cfg->rooms;
    }
}
