/* A reload's listener set: match, slots, sockets, commit (see
 * core/reload_listeners.h). Main thread only. */
#include "core/reload_listeners.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/log.h"
#include "core/server.h"
#include "workers/acceptor.h"

enum change { KEPT, MOVED, ADDED };

struct pc_listener_plan {
    struct pc_config *cfg;
    /* Per listener of cfg: what it was (NULL: added), where its sockets
     * come from (a running slot, or -1: opened[i]), whether its backlog
     * changes. */
    const struct pc_listener_config *was[PC_MAX_LISTENERS];
    int from[PC_MAX_LISTENERS];
    bool relisten[PC_MAX_LISTENERS];
    struct pc_listener opened[PC_MAX_LISTENERS];
    struct pc_acceptor *acceptor; /* started for this reload, or NULL */
};

static const struct pc_listener_config *
by_name(const struct pc_config *c, const char *name)
{
    for (unsigned i = 0; i < c->nlisteners; i++)
        if (strcmp(c->listeners[i].name, name) == 0)
            return &c->listeners[i];
    return NULL;
}

static bool in_config(const struct pc_config *c, unsigned slot)
{
    for (unsigned i = 0; i < c->nlisteners; i++)
        if (c->listeners[i].slot == slot)
            return true;
    return false;
}

/* A slot no listener, retired service, acceptor or mail may still name:
 * every worker and the acceptor have moved past the reload that removed
 * its listener, and every worker has freed its service there. Picked
 * round-robin, so a slot rests as long as possible before it is used
 * again. */
static int free_slot(struct pc_server *srv, const struct pc_config *cfg)
{
    uint64_t oldest = pc_acceptor_generation(srv->acceptor);
    uint_fast64_t busy = 0;
    for (unsigned k = 0; k < srv->nworkers; k++) {
        uint64_t g = atomic_load_explicit(&srv->workers[k].cfg_generation,
                                          memory_order_acquire);
        if (g < oldest)
            oldest = g;
        busy |= atomic_load_explicit(&srv->workers[k].busy_slots,
                                     memory_order_acquire);
    }
    for (unsigned n = 0; n < PC_MAX_SLOTS; n++) {
        unsigned s = (srv->next_slot + n) % PC_MAX_SLOTS;
        if (in_config(srv->cfg, s) || in_config(cfg, s) ||
            (busy >> s & 1) || srv->slot_retired_at[s] > oldest)
            continue;
        srv->next_slot = s + 1;
        return (int)s;
    }
    return -1;
}

/* The running listener whose sockets no kept listener needs and that are
 * on lc's address with lc's distribution, or NULL. */
static const struct pc_listener_config *
released_on(const struct pc_server *srv, const struct pc_listener_plan *p,
            const struct pc_listener_config *lc)
{
    const struct pc_config *old = srv->cfg;
    for (unsigned i = 0; i < old->nlisteners; i++) {
        const struct pc_listener_config *o = &old->listeners[i];
        bool claimed = false;
        for (unsigned k = 0; k < p->cfg->nlisteners && !claimed; k++)
            claimed = p->from[k] == (int)o->slot;
        if (!claimed && strcmp(o->listen, lc->listen) == 0 &&
            o->distribution == lc->distribution)
            return o;
    }
    return NULL;
}

static int open_sockets(const struct pc_server *srv,
                        const struct pc_listener_config *lc,
                        struct pc_listener *l, char *err, size_t errlen)
{
    char why[PC_ERR_MAX];
    int r = pc_server_bind(srv, lc, l, why, sizeof why);
    if (r < 0)
        snprintf(err, errlen, "[listener %s] (%s): %s", lc->name,
                 lc->listen_where[0] ? lc->listen_where : lc->where, why);
    return r;
}

static void close_opened(struct pc_listener_plan *p)
{
    for (unsigned i = 0; i < p->cfg->nlisteners; i++) {
        struct pc_listener *l = &p->opened[i];
        for (unsigned k = 0; k < l->nfds; k++)
            close(l->fds[k]);
        if (l->nfds && strncmp(p->cfg->listeners[i].listen, "unix:", 5) == 0)
            unlink(p->cfg->listeners[i].listen + 5);
        l->nfds = 0;
    }
}

/* Same name and protocol: the same listener. A socket systemd passed
 * stays the acceptor's while the address stays (core/systemd.c). */
static void match_names(const struct pc_server *srv,
                        struct pc_listener_plan *p)
{
    for (unsigned i = 0; i < p->cfg->nlisteners; i++) {
        struct pc_listener_config *lc = &p->cfg->listeners[i];
        const struct pc_listener_config *o = by_name(srv->cfg, lc->name);
        p->from[i] = -1;
        p->was[i] = o && o->proto == lc->proto ? o : NULL;
        if (!p->was[i])
            continue;
        lc->slot = o->slot;
        bool same_address = strcmp(o->listen, lc->listen) == 0;
        if (same_address && srv->listeners[o->slot].inherited)
            lc->distribution = PC_DIST_ACCEPTOR;
        if (same_address && o->distribution == lc->distribution) {
            p->from[i] = (int)o->slot;
            p->relisten[i] = o->backlog != lc->backlog;
        }
    }
}

int pc_listeners_prepare(struct pc_server *srv, struct pc_config *cfg,
                         struct pc_listener_plan **out, char *err,
                         size_t errlen)
{
    struct pc_listener_plan *p = calloc(1, sizeof *p);
    if (!p) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    p->cfg = cfg;
    match_names(srv, p);
    int r = 0;
    bool acceptor = false;
    for (unsigned i = 0; i < cfg->nlisteners && r == 0; i++) {
        struct pc_listener_config *lc = &cfg->listeners[i];
        const struct pc_listener_config *o = p->was[i];
        acceptor |= lc->distribution == PC_DIST_ACCEPTOR;
        if (p->from[i] >= 0)
            continue;
        if (o && strcmp(o->listen, lc->listen) == 0) {
            snprintf(err, errlen, "[listener %s] (%s): its distribution "
                     "changes only with its address (new sockets cannot "
                     "bind beside the running ones on %s)", lc->name,
                     lc->where, lc->listen);
            r = -EINVAL;
            break;
        }
        const struct pc_listener_config *prev = released_on(srv, p, lc);
        if (prev) {
            p->from[i] = (int)prev->slot;
            p->relisten[i] = prev->backlog != lc->backlog;
        } else {
            r = open_sockets(srv, lc, &p->opened[i], err, errlen);
        }
    }
    /* Slots last: a free one must not be any slot the new set keeps. */
    for (unsigned i = 0; i < cfg->nlisteners && r == 0; i++) {
        if (p->was[i])
            continue;
        int s = free_slot(srv, cfg);
        if (s < 0) {
            snprintf(err, errlen, "no free listener slot for [listener %s]: "
                     "%d slots are held by listeners and by removed "
                     "listeners whose connections are still open",
                     cfg->listeners[i].name, PC_MAX_SLOTS);
            r = -ENOSPC;
            break;
        }
        cfg->listeners[i].slot = (unsigned)s;
    }
    if (r == 0 && acceptor && !srv->acceptor &&
        (r = pc_acceptor_start(srv, true, &p->acceptor)) < 0)
        snprintf(err, errlen, "cannot start the acceptor thread: %s",
                 strerror(-r));
    if (r < 0) {
        pc_listeners_abandon(srv, p);
        return r;
    }
    for (unsigned i = 0; i < cfg->nlisteners; i++)
        cfg->listeners[i].section.service = cfg->listeners[i].slot;
    *out = p;
    return 0;
}

void pc_listeners_abandon(struct pc_server *srv, struct pc_listener_plan *p)
{
    (void)srv;
    close_opened(p);
    pc_acceptor_stop(p->acceptor);
    free(p);
}

static void release(struct pc_server *srv, const struct pc_listener_config *o,
                    const struct pc_listener *l, uint64_t generation)
{
    /* A worker closes its own reuseport sockets. */
    if (o->distribution == PC_DIST_REUSEPORT || !l->nfds)
        return;
    if (srv->nreleased_socks == srv->released_socks_cap) {
        unsigned cap = srv->released_socks_cap ? srv->released_socks_cap * 2 : 8;
        struct pc_released_socket *a =
            realloc(srv->released_socks, cap * sizeof *a);
        if (!a) {
            /* A socket left open would keep a listener the config no
             * longer has, and its clients would wait unserved. */
            pc_log(PC_LOG_ERR, "out of memory releasing a listener");
            abort();
        }
        srv->released_socks = a;
        srv->released_socks_cap = cap;
    }
    struct pc_released_socket *r = &srv->released_socks[srv->nreleased_socks++];
    r->fd = l->fds[0];
    r->generation = generation;
    r->unlink_path[0] = '\0';
    if (strncmp(o->listen, "unix:", 5) == 0 && !l->inherited)
        snprintf(r->unlink_path, sizeof r->unlink_path, "%s", o->listen + 5);
}

static void log_change(const struct pc_listener_plan *p, unsigned i,
                       const struct pc_listener *l)
{
    const struct pc_listener_config *lc = &p->cfg->listeners[i];
    const struct pc_listener_config *o = p->was[i];
    const char *dist =
        lc->distribution == PC_DIST_REUSEPORT ? "reuseport" : "acceptor";
    if (!o)
        pc_log(PC_LOG_NOTICE, "reload: listener %s added on %s (%s, %s%s)",
               lc->name, l->bound, lc->protocol, dist,
               lc->tls_ctx ? ", TLS" : "");
    else if (p->from[i] != (int)o->slot)
        pc_log(PC_LOG_NOTICE, "reload: listener %s moved from %s to %s (%s); "
               "its open connections stay", lc->name, o->listen, l->bound,
               dist);
    else if (p->relisten[i])
        pc_log(PC_LOG_NOTICE, "reload: listener %s: backlog %lld",
               lc->name, (long long)lc->backlog);
}

void pc_listeners_commit(struct pc_server *srv, struct pc_listener_plan *p)
{
    const struct pc_config *old = srv->cfg;
    struct pc_config *cfg = p->cfg;
    uint64_t gen = cfg->generation;
    /* The running sockets, by slot, before any slot is rewritten. */
    struct pc_listener *was = malloc(PC_MAX_SLOTS * sizeof *was);
    if (!was) {
        pc_log(PC_LOG_ERR, "out of memory committing a reload");
        abort();
    }
    memcpy(was, srv->listeners, PC_MAX_SLOTS * sizeof *was);
    bool kept[PC_MAX_SLOTS] = {false};
    for (unsigned i = 0; i < old->nlisteners; i++)
        srv->listeners[old->listeners[i].slot].nfds = 0;
    for (unsigned i = 0; i < cfg->nlisteners; i++) {
        struct pc_listener_config *lc = &cfg->listeners[i];
        struct pc_listener *l = &srv->listeners[lc->slot];
        if (p->from[i] >= 0) {
            *l = was[p->from[i]];
            kept[p->from[i]] = true;
            lc->sockets_generation = p->from[i] == (int)lc->slot
                                         ? p->was[i]->sockets_generation
                                         : gen;
            for (unsigned k = 0; p->relisten[i] && k < l->nfds; k++)
                if (listen(l->fds[k], (int)lc->backlog) < 0)
                    pc_log(PC_LOG_WARN, "reload: listener %s: backlog "
                           "%lld not applied: %s", lc->name,
                           (long long)lc->backlog, strerror(errno));
        } else {
            *l = p->opened[i];
            p->opened[i].nfds = 0;
            lc->sockets_generation = gen;
        }
        if (!p->was[i]) {
            /* A slot used before: its counters start again. */
            for (unsigned k = 0; k < PC_LISTENER_STAT_VALUES; k++)
                atomic_store_explicit(&(&srv->acceptor_stats[lc->slot]
                                           .accepted)[k],
                                      0, memory_order_relaxed);
            srv->slot_retired_at[lc->slot] = 0;
        }
        log_change(p, i, l);
    }
    for (unsigned i = 0; i < old->nlisteners; i++) {
        const struct pc_listener_config *o = &old->listeners[i];
        if (!kept[o->slot])
            release(srv, o, &was[o->slot], gen);
        if (in_config(cfg, o->slot))
            continue;
        srv->slot_retired_at[o->slot] = gen;
        uint64_t open = atomic_load_explicit(
            &srv->listener_connections[o->slot], memory_order_relaxed);
        pc_log(PC_LOG_NOTICE, "reload: listener %s removed from %s: new "
               "connections are refused, its %llu open ones are served "
               "until they close", o->name, was[o->slot].bound,
               (unsigned long long)open);
    }
    if (p->acceptor)
        srv->acceptor = p->acceptor;
    free(was);
    free(p);
}

int *pc_listeners_worker_fds(const struct pc_server *srv,
                             const struct pc_config *cfg, unsigned worker)
{
    int *fds = malloc(PC_MAX_SLOTS * sizeof *fds);
    if (!fds)
        return NULL;
    for (unsigned i = 0; i < PC_MAX_SLOTS; i++)
        fds[i] = -1;
    for (unsigned i = 0; i < cfg->nlisteners; i++) {
        const struct pc_listener_config *lc = &cfg->listeners[i];
        if (lc->distribution == PC_DIST_REUSEPORT)
            fds[lc->slot] = srv->listeners[lc->slot].fds[worker];
    }
    return fds;
}

void pc_listeners_close_released(struct pc_server *srv, bool all)
{
    uint64_t done = all ? UINT64_MAX : pc_acceptor_generation(srv->acceptor);
    unsigned kept = 0;
    for (unsigned i = 0; i < srv->nreleased_socks; i++) {
        struct pc_released_socket *r = &srv->released_socks[i];
        if (r->generation > done) {
            srv->released_socks[kept++] = *r;
            continue;
        }
        close(r->fd);
        if (r->unlink_path[0])
            unlink(r->unlink_path);
    }
    srv->nreleased_socks = kept;
}
