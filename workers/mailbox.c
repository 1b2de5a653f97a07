#include "workers/mailbox.h"

#include <stddef.h>

void pc_mailbox_init(struct pc_mailbox *mb)
{
    atomic_init(&mb->top, NULL);
}

bool pc_mailbox_push(struct pc_mailbox *mb, struct pc_mail *m)
{
    struct pc_mail *top = atomic_load_explicit(&mb->top, memory_order_relaxed);
    do
        m->next = top;
    /* release: the consumer's acquire exchange must see m's contents. */
    while (!atomic_compare_exchange_weak_explicit(
        &mb->top, &top, m, memory_order_release, memory_order_relaxed));
    return top == NULL;
}

struct pc_mail *pc_mailbox_take(struct pc_mailbox *mb)
{
    struct pc_mail *m =
        atomic_exchange_explicit(&mb->top, NULL, memory_order_acquire);
    struct pc_mail *fifo = NULL;
    while (m) {
        struct pc_mail *next = m->next;
        m->next = fifo;
        fifo = m;
        m = next;
    }
    return fifo;
}
