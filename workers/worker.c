/* A worker thread: its loop, its mailbox, its listeners (reuseport), the
 * pass that flushes output before the loop blocks, and the drain. */
#include "workers/worker.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifdef PC_HAVE_JEMALLOC
#include <jemalloc/jemalloc.h>
#endif

#include "core/log.h"
#include "core/server.h"
#include "workers/accept.h"
#include "workers/cpus.h"
#include "workers/services.h"

#define PC_SCRATCH_SIZE ((size_t)64 * 1024)

/* ---- mail ------------------------------------------------------------ */

static void msg_release(struct pc_msg *m)
{
    if (atomic_fetch_sub_explicit(&m->refs, 1, memory_order_acq_rel) == 1)
        m->destroy(m);
}

static void drain_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
    (void)loop;
    (void)revents;
    struct pc_worker *w = t->data;
    pc_log(PC_LOG_NOTICE, "worker %u: drain timeout: closing %llu "
           "connections", w->id,
           (unsigned long long)PC_STAT_GET(w, connections));
    pc_conn_cut_all(w, PC_CLOSE_SHUTDOWN);
}

static void begin_drain(struct pc_worker *w)
{
    if (w->draining) { /* asked twice: the operator will not wait */
        pc_conn_cut_all(w, PC_CLOSE_SHUTDOWN);
        return;
    }
    w->draining = true;
    pc_services_stop_accepting(w);
    pc_conn_end_handshakes(w);
    pc_conn_stop_all(w);
    if (PC_STAT_GET(w, connections) == 0) {
        pc_worker_check_drained(w);
        return;
    }
    /* From now, not from the loop's cached time, which is as old as the
     * callback that got us here (mail handling can take a while). */
    ev_now_update(w->loop);
    ev_timer_set(&w->drain_timer, w->cfg->drain_timeout, 0.);
    ev_timer_start(w->loop, &w->drain_timer);
}

void pc_worker_check_drained(struct pc_worker *w)
{
    if (!w->draining || w->drained || PC_STAT_GET(w, connections) != 0)
        return;
    w->drained = true;
    ev_timer_stop(w->loop, &w->drain_timer);
    struct pc_server *srv = w->srv;
    if (atomic_fetch_add(&srv->workers_drained, 1) + 1 != w->count)
        return;
    ev_async_send(srv->loop, &srv->drained);
    pc_server_broadcast_mail(srv, PC_MAIL_STOP, NULL);
}

static struct pc_worker_slot *slot_of(struct pc_worker *w, const void *key)
{
    for (unsigned i = 0; i < w->nslots; i++)
        if (w->slots[i].key == key)
            return &w->slots[i];
    return NULL;
}

/* A message for a slot's value (pc_worker_slot_on_message); dropped when
 * nothing receives it there (the sharing state is gone). */
static void deliver_to_slot(struct pc_worker *w, struct pc_msg *m)
{
    struct pc_worker_slot *s = slot_of(w, m->slot_key);
    if (s && s->on_message) {
        PC_STAT_ADD(w, messages_in, 1);
        s->on_message(w, s->value, m);
    }
}

static void handle_mail(struct pc_worker *w, struct pc_mail *m)
{
    switch (m->kind) {
    case PC_MAIL_CONN:
        /* A slot the acceptor still served when the reload that removed
         * its listener came: the retired service takes it while it lives. */
        if (m->listener < PC_MAX_SLOTS && w->svcs[m->listener].proto)
            pc_conn_adopt(&w->svcs[m->listener], m->fd);
        else
            close(m->fd);
        break;
    case PC_MAIL_MSG:
        if (m->msg->slot_key) {
            deliver_to_slot(w, m->msg);
        } else if (m->msg->service < PC_MAX_SLOTS &&
            pc_service_open(&w->svcs[m->msg->service])) {
            struct pc_service *s = &w->svcs[m->msg->service];
            PC_STAT_ADD(w, messages_in, 1);
            if (s->proto->on_message)
                s->proto->on_message(w, s->wstate, m->msg);
        }
        msg_release(m->msg);
        break;
    case PC_MAIL_DRAIN:
        begin_drain(w);
        break;
    case PC_MAIL_RELOAD:
        pc_services_reload(w, m->cfg, m->fds);
        free(m->fds);
        break;
    case PC_MAIL_STOP:
        ev_break(w->loop, EVBREAK_ALL);
        break;
    }
    free(m);
}

#ifdef PC_FAULT_HOOKS
/* Debug builds only (see pc_worker_fault_hang): the worker to hang. */
static atomic_int fault_hang_id = -1;

void pc_worker_fault_hang(struct pc_worker *w)
{
    atomic_store(&fault_hang_id, (int)w->id);
    ev_async_send(w->loop, &w->doorbell);
}

static void fault_check(struct pc_worker *w)
{
    if (atomic_load(&fault_hang_id) != (int)w->id)
        return;
    pc_log(PC_LOG_WARN, "worker %u: hanging on purpose (fault hook)", w->id);
    for (;;)
        sleep(3600);
}
#endif

static void doorbell_cb(struct ev_loop *loop, ev_async *a, int revents)
{
    (void)loop;
    (void)revents;
    struct pc_worker *w = a->data;
#ifdef PC_FAULT_HOOKS
    fault_check(w);
#endif
    /* One take per ring: a push rings only when it finds the box empty,
     * and the take empties it, so mail pushed after the take rings again
     * (libev clears the async before calling back). Taking until empty
     * instead let a flood from another worker keep this one here, its
     * sockets and timers waiting. A ring with no mail is the watchdog
     * asking for proof of life: waking up moves the loop counter. */
    struct pc_mail *m = pc_mailbox_take(&w->mailbox);
    while (m) {
        struct pc_mail *next = m->next;
        handle_mail(w, m);
        m = next;
    }
}

void pc_worker_send(struct pc_worker *w, struct pc_mail *m)
{
    if (pc_mailbox_push(&w->mailbox, m))
        ev_async_send(w->loop, &w->doorbell);
}

static void send_msg(struct pc_worker *from, unsigned to, struct pc_msg *m)
{
    struct pc_mail *mail = calloc(1, sizeof *mail);
    if (!mail) {
        pc_log(PC_LOG_ERR, "worker %u: out of memory posting a message",
               from->id);
        msg_release(m);
        return;
    }
    mail->kind = PC_MAIL_MSG;
    mail->msg = m;
    pc_worker_send(&from->srv->workers[to], mail);
}

int pc_post(struct pc_worker *w, unsigned to, struct pc_msg *m)
{
    if (to >= w->count) {
        m->destroy(m);
        return -EINVAL;
    }
    m->from = w->id;
    atomic_store_explicit(&m->refs, 1, memory_order_relaxed);
    send_msg(w, to, m);
    return 0;
}

void pc_broadcast(struct pc_worker *w, struct pc_msg *m)
{
    if (w->count < 2) {
        m->destroy(m);
        return;
    }
    m->from = w->id;
    atomic_store_explicit(&m->refs, w->count - 1, memory_order_relaxed);
    for (unsigned i = 0; i < w->count; i++)
        if (i != w->id)
            send_msg(w, i, m);
}

/* ---- the loop -------------------------------------------------------- */

static void prepare_cb(struct ev_loop *loop, ev_prepare *p, int revents)
{
    (void)loop;
    (void)revents;
    struct pc_worker *w = p->data;
    pc_conn_run_pending(w);
    PC_STAT_ADD(w, loops, 1);
}

static void idle_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
    (void)loop;
    (void)revents;
    pc_conn_expire_idle(t->data);
}

static void cut_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
    (void)loop;
    (void)revents;
    pc_conn_expire_cut(t->data);
}

int pc_worker_create(struct pc_worker *w, struct pc_server *srv, unsigned id,
                     unsigned count, unsigned backend)
{
    memset(w, 0, sizeof *w);
    w->id = id;
    w->count = count;
    w->srv = srv;
    w->access_log = srv->access_log;
    w->cfg = srv->cfg;
    w->cpu = pc_cpus_nth(id);
    w->spare_fd = -1;
    w->arena = -1;
    w->loop = ev_loop_new(backend | EVFLAG_NOENV | EVFLAG_NOSIGMASK);
    if (!w->loop)
        return -ENOSYS;
    pc_mailbox_init(&w->mailbox);
    ev_async_init(&w->doorbell, doorbell_cb);
    w->doorbell.data = w;
    ev_async_start(w->loop, &w->doorbell);
    ev_prepare_init(&w->prepare, prepare_cb);
    w->prepare.data = w;
    ev_prepare_start(w->loop, &w->prepare);
    ev_init(&w->idle_timer, idle_cb);
    w->idle_timer.data = w;
    ev_init(&w->drain_timer, drain_cb);
    w->drain_timer.data = w;
    ev_init(&w->cut_timer, cut_cb);
    w->cut_timer.data = w;
    /* Whole cache lines: the counters in each service are written by
     * this worker alone and must share no line with another's. */
    size_t size = PC_MAX_SLOTS * sizeof *w->svcs;
    w->svcs = aligned_alloc(PC_CACHE_LINE, size);
    if (!w->svcs)
        return -ENOMEM;
    memset(w->svcs, 0, size);
    for (unsigned i = 0; i < PC_MAX_SLOTS; i++) {
        w->svcs[i].w = w;
        w->svcs[i].slot = i;
        w->svcs[i].fd = -1;
    }
    const struct pc_config *cfg = srv->cfg;
    for (unsigned i = 0; i < cfg->nlisteners; i++) {
        const struct pc_listener_config *lc = &cfg->listeners[i];
        pc_service_setup(w, &w->svcs[lc->slot], cfg, lc,
                         lc->distribution == PC_DIST_REUSEPORT
                             ? srv->listeners[lc->slot].fds[id]
                             : -1);
    }
    return 0;
}

static void use_own_arena(struct pc_worker *w)
{
#ifdef PC_HAVE_JEMALLOC
    unsigned arena;
    size_t sz = sizeof arena;
    if (mallctl("arenas.create", &arena, &sz, NULL, 0) != 0 ||
        mallctl("thread.arena", NULL, NULL, &arena, sizeof arena) != 0)
        pc_log(PC_LOG_WARN, "worker %u: no jemalloc arena of its own",
               w->id);
    else
        w->arena = (int)arena; /* read by metrics once the workers run */
#else
    (void)w;
#endif
}

static void *worker_main(void *arg)
{
    struct pc_worker *w = arg;
    /* top -H, perf and gdb tell the threads apart by name (15 bytes). */
    char name[16];
    snprintf(name, sizeof name, "pc-worker/%u", w->id);
    (void)pthread_setname_np(pthread_self(), name);
    if (w->cpu >= 0 && pc_cpus_pin_self(w->cpu) < 0)
        pc_log(PC_LOG_WARN, "worker %u: cannot pin to CPU %d", w->id, w->cpu);
    use_own_arena(w);
    pc_sbuf_gauge = &w->stats.shared_bytes;
    w->scratch_size = PC_SCRATCH_SIZE;
    w->scratch = malloc(w->scratch_size);
    w->spare_fd = pc_accept_spare_open();
    int error = w->scratch ? pc_services_init(w) : -ENOMEM;
    if (pc_server_worker_ready(w->srv, error))
        ev_run(w->loop, 0);
    /* Stopped: whatever is still open is closed now. */
    pc_services_stop_accepting(w);
    pc_conn_close_all(w, PC_CLOSE_SHUTDOWN);
    pc_conn_run_pending(w);
    ev_timer_stop(w->loop, &w->cut_timer);
    pc_services_fini(w); /* their connection lists are empty now */
    return NULL;
}

int pc_worker_start(struct pc_worker *w)
{
    return -pthread_create(&w->thread, NULL, worker_main, w);
}

void pc_worker_join(struct pc_worker *w)
{
    pthread_join(w->thread, NULL);
}

void pc_worker_destroy(struct pc_worker *w)
{
    /* Mail that arrived after the loop ended: free it so nothing leaks. */
    for (struct pc_mail *m = pc_mailbox_take(&w->mailbox), *next; m;
         m = next) {
        next = m->next;
        if (m->kind == PC_MAIL_CONN)
            close(m->fd);
        if (m->kind == PC_MAIL_MSG)
            msg_release(m->msg);
        free(m);
    }
    if (w->spare_fd >= 0)
        close(w->spare_fd);
    for (unsigned i = 0; w->svcs && i < PC_MAX_SLOTS; i++) {
        if (w->svcs[i].fd >= 0)
            close(w->svcs[i].fd); /* the thread never ran */
        free(w->svcs[i].delayed);
    }
    free(w->scratch);
    free(w->pending);
    free(w->pending_spare);
    free(w->svcs);
    free(w->slots);
    free(w->cut);
    free(w->cut_at);
    ev_loop_destroy(w->loop);
}

/* ---- small public accessors ------------------------------------------ */

unsigned pc_worker_id(const struct pc_worker *w)
{
    return w->id;
}

unsigned pc_worker_count(const struct pc_worker *w)
{
    return w->count;
}

void **pc_worker_slot(struct pc_worker *w, const void *key)
{
    struct pc_worker_slot *s = slot_of(w, key);
    if (s)
        return &s->value;
    /* A handful of keys per process (one per shared library of modules):
     * a linear array is enough. */
    struct pc_worker_slot *grown =
        realloc(w->slots, (w->nslots + 1) * sizeof *grown);
    if (!grown)
        return NULL;
    w->slots = grown;
    w->slots[w->nslots] = (struct pc_worker_slot){key, NULL, NULL};
    return &w->slots[w->nslots++].value;
}

int pc_worker_slot_on_message(struct pc_worker *w, const void *key,
                              void (*on_message)(struct pc_worker *w,
                                                 void *value,
                                                 struct pc_msg *m))
{
    if (!pc_worker_slot(w, key))
        return -ENOMEM;
    slot_of(w, key)->on_message = on_message;
    return 0;
}

double pc_worker_now(struct pc_worker *w)
{
    return ev_now(w->loop);
}

struct ev_loop *pc_worker_loop(struct pc_worker *w)
{
    return w->loop;
}

const struct pc_section *pc_cluster_section(struct pc_worker *w)
{
    return w->cfg->has_cluster ? &w->cfg->cluster : NULL;
}

_Static_assert(sizeof(ev_timer) <= sizeof(((struct pc_timer *)0)->opaque),
               "pc_timer.opaque must hold an ev_timer");

static void timer_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
    (void)loop;
    (void)revents;
    struct pc_timer *pt = t->data;
    pt->cb(pt);
}

void pc_timer_init(struct pc_timer *t, void (*cb)(struct pc_timer *t),
                   void *data)
{
    ev_timer *et = (ev_timer *)(void *)t->opaque;
    t->cb = cb;
    t->data = data;
    ev_init(et, timer_cb);
    et->data = t;
}

void pc_timer_start(struct pc_worker *w, struct pc_timer *t, double seconds)
{
    ev_timer *et = (ev_timer *)(void *)t->opaque;
    ev_timer_stop(w->loop, et);
    ev_timer_set(et, seconds, 0.);
    ev_timer_start(w->loop, et);
}

void pc_timer_stop(struct pc_worker *w, struct pc_timer *t)
{
    ev_timer_stop(w->loop, (ev_timer *)(void *)t->opaque);
}
