/* reaper: a test module (test_faults_signals.Reaper) that ends
 * connections from inside the callbacks of other connections of its
 * worker. Lines:
 *
 *   kill    aborts every other connection (PC_CLOSE_ERROR: no goodbye),
 *           each twice, then answers "killed N"
 *   cut     aborts every other connection (PC_CLOSE_MODULE: whole units,
 *           then the goodbye "bye"), each twice, then answers "cut N"
 *   chain   answers "chained"; when this connection closes, for whatever
 *           reason, its on_close aborts every other one (PC_CLOSE_MODULE)
 *   die     aborts itself; what it writes afterwards ("zombie") is dropped
 *   other   echoed
 *
 * and "hi W" (W: the worker id) on open. */
#include <stdio.h>
#include <string.h>

#include <percore/percore.h>

struct reaper_conn {
    struct pc_conn *c;
    struct reaper_conn *prev, *next;
    int chain, aborted;
};

struct reaper_worker {
    struct reaper_conn *head;
    unsigned id;
};

static int reaper_worker_init(struct pc_worker *w, const struct pc_section *cfg,
                              void **wstate)
{
    (void)cfg;
    static struct reaper_worker workers[64];
    unsigned id = pc_worker_id(w);
    if (id >= 64)
        return -1;
    workers[id].id = id;
    *wstate = &workers[id];
    return 0;
}

/* Aborts every connection of the worker but self. The list changes under
 * us (on_close unlinks, and a chained on_close aborts more), so each pass
 * starts again from the head and skips those already aborted. */
static unsigned reap(struct reaper_worker *rw, struct reaper_conn *self,
                     enum pc_close_reason why)
{
    unsigned n = 0;
    for (;;) {
        struct reaper_conn *r = rw->head;
        while (r && (r == self || r->aborted))
            r = r->next;
        if (!r)
            return n;
        r->aborted = 1;
        pc_conn_abort(r->c, why);
        pc_conn_abort(r->c, why); /* twice: the second does nothing */
        n++;
    }
}

static void reaper_open(struct pc_conn *c)
{
    struct reaper_conn *r = pc_conn_state(c);
    struct reaper_worker *rw = pc_conn_wstate(c);
    r->c = c;
    r->next = rw->head;
    if (rw->head)
        rw->head->prev = r;
    rw->head = r;
    char buf[32];
    int n = snprintf(buf, sizeof buf, "hi %u\n", rw->id);
    pc_conn_write(c, buf, (size_t)n);
}

static void reaper_close(struct pc_conn *c, enum pc_close_reason why)
{
    (void)why;
    struct reaper_conn *r = pc_conn_state(c);
    struct reaper_worker *rw = pc_conn_wstate(c);
    if (r->prev)
        r->prev->next = r->next;
    else
        rw->head = r->next;
    if (r->next)
        r->next->prev = r->prev;
    r->aborted = 1;
    if (r->chain)
        reap(rw, r, PC_CLOSE_MODULE);
}

static void answer(struct pc_conn *c, const char *what, unsigned n)
{
    char buf[32];
    int len = snprintf(buf, sizeof buf, "%s %u\n", what, n);
    pc_conn_write(c, buf, (size_t)len);
}

static size_t reaper_data(struct pc_conn *c, const char *data, size_t len)
{
    struct reaper_conn *r = pc_conn_state(c);
    struct reaper_worker *rw = pc_conn_wstate(c);
    size_t used = 0;
    const char *nl;
    while ((nl = memchr(data + used, '\n', len - used))) {
        const char *line = data + used;
        size_t n = (size_t)(nl - line);
        used += n + 1;
        if (n == 4 && memcmp(line, "kill", 4) == 0) {
            answer(c, "killed", reap(rw, r, PC_CLOSE_ERROR));
        } else if (n == 3 && memcmp(line, "cut", 3) == 0) {
            answer(c, "cut", reap(rw, r, PC_CLOSE_MODULE));
        } else if (n == 5 && memcmp(line, "chain", 5) == 0) {
            r->chain = 1;
            pc_conn_write(c, "chained\n", 8);
        } else if (n == 3 && memcmp(line, "die", 3) == 0) {
            pc_conn_abort(c, PC_CLOSE_MODULE);
            pc_conn_write(c, "zombie\n", 7);
            return len;
        } else {
            pc_conn_write(c, line, n + 1);
        }
    }
    return used;
}

static size_t reaper_goodbye(struct pc_conn *c, enum pc_close_reason why,
                             char *buf, size_t size)
{
    (void)c;
    (void)why;
    if (size < 4)
        return 0;
    memcpy(buf, "bye\n", 4);
    return 4;
}

const struct pc_proto percore_module = {
    .abi = PC_PROTO_ABI,
    .name = "reaper",
    .conn_size = sizeof(struct reaper_conn),
    .worker_init = reaper_worker_init,
    .on_open = reaper_open,
    .on_data = reaper_data,
    .on_close = reaper_close,
    .goodbye = reaper_goodbye,
};
