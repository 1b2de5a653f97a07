/* One worker's link to Redis: a command connection and a subscription
 * connection (a subscribed connection takes no other commands), both
 * driven by hiredis's libev adapter on the worker's own loop, so no call
 * ever waits for Redis. hiredis 0.14 has no timeouts: every command's
 * send time is kept, and a timer on the worker's loop declares the link
 * down when the oldest reply is late (a stopped or overloaded Redis), as
 * it does a connect or setup that takes too long. Down means both
 * connections are freed (hiredis calls every pending callback with NULL)
 * and a new attempt is scheduled with exponential back-off. */
#include <errno.h>
#include <hiredis/adapters/libev.h>
#include <hiredis/async.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "protocols/room/cluster.h"

#define BACKOFF_MIN 0.1
#define BACKOFF_MAX 5.0

enum link_state { LINK_DOWN, LINK_CONNECTING, LINK_UP };

/* A command in flight on the command connection, oldest first. */
struct cl_req {
    struct cl_req *next;
    struct cl_link *l;
    cl_reply_cb *cb;
    void *arg;
    double sent;
};

struct cl_conn {
    redisAsyncContext *ac;
    struct cl_link *l;
    bool connected;
};

struct cl_link {
    struct pc_worker *w;
    struct cl_link_events ev;
    char host[256];
    int port;              /* 0: host is a Unix socket path */
    char password[256], user[128];
    double timeout;
    enum link_state state;
    struct cl_conn cmd, sub;
    struct cl_req *head, *tail;
    unsigned setup;        /* setup replies still due while connecting */
    unsigned sub_pending;  /* (un)subscriptions not yet confirmed */
    double sub_since;      /* when the oldest of them was sent */
    double since;          /* when the current attempt began */
    double backoff;
    double last_reply;     /* of the command connection: for the PING */
    uint32_t jitter;       /* a small generator's state, for back-off */
    bool ping_out;
    char sha[CL_SCRIPTS][41];
    struct pc_timer retry, watch;
    struct cl_link_stats stats;
};

static void link_connect(struct cl_link *l);

static double now(struct cl_link *l)
{
    return pc_worker_now(l->w);
}

/* ---- going down ------------------------------------------------------------ */

static void free_conn(struct cl_conn *c)
{
    redisAsyncContext *ac = c->ac;
    c->ac = NULL;
    c->connected = false;
    if (ac)
        redisAsyncFree(ac); /* deferred by hiredis inside its callbacks */
}

static void link_down(struct cl_link *l, const char *why)
{
    if (l->state == LINK_DOWN)
        return;
    bool was_up = l->state == LINK_UP;
    l->state = LINK_DOWN;
    l->stats.failures++;
    pc_timer_stop(l->w, &l->watch);
    free_conn(&l->cmd);
    free_conn(&l->sub);
    l->sub_pending = 0;
    l->ping_out = false;
    /* Every reply hiredis still owed has been answered NULL by now, but
     * a context freed from inside its own callback is freed later: drop
     * what is left so nothing waits. */
    while (l->head) {
        struct cl_req *q = l->head;
        l->head = q->next;
        q->l = NULL; /* its callback, if hiredis still runs it, is void */
        if (q->cb)
            q->cb(l, NULL, q->arg);
        q->cb = NULL;
    }
    l->tail = NULL;
    /* Jitter: nodes that lost Redis together do not return together. */
    l->jitter = l->jitter * 1664525u + 1013904223u;
    double delay = l->backoff * (0.75 + 0.5 * (double)(l->jitter >> 8) /
                                            (double)(1u << 24));
    l->backoff = l->backoff * 2 > BACKOFF_MAX ? BACKOFF_MAX : l->backoff * 2;
    if (strcmp(why, "stopping") != 0)
        pc_log(was_up ? PC_LOG_WARN : PC_LOG_INFO,
               "cluster: worker %u: Redis %s%s%.0d %s: %s; again in %.1f s",
               pc_worker_id(l->w), l->host, l->port ? ":" : "", l->port,
               was_up ? "lost" : "unreachable", why, delay);
    pc_timer_start(l->w, &l->retry, delay);
    if (was_up && l->ev.down)
        l->ev.down(l->ev.owner);
}

/* ---- callbacks from hiredis -------------------------------------------------- */

static void on_reply(redisAsyncContext *ac, void *reply, void *priv)
{
    struct cl_req *q = priv;
    struct cl_link *l = q->l;
    if (l) { /* still on our list: it is its head (replies are FIFO) */
        l->head = q->next;
        if (!l->head)
            l->tail = NULL;
        l->last_reply = now(l);
        if (q->cb)
            q->cb(l, reply, q->arg);
    }
    (void)ac;
    free(q);
}

static void setup_done(struct cl_link *l)
{
    if (l->state != LINK_CONNECTING || l->setup || !l->cmd.connected ||
        !l->sub.connected)
        return;
    l->state = LINK_UP;
    l->backoff = BACKOFF_MIN;
    l->stats.connects++;
    l->last_reply = now(l);
    pc_log(PC_LOG_INFO, "cluster: worker %u: Redis link up", pc_worker_id(l->w));
    if (l->ev.up)
        l->ev.up(l->ev.owner);
}

/* What a setup reply answers: a script's index, or AUTH. */
static const int setup_ids[] = {0, 1, 2, 3, 4, 5, 6, 7, 8};
#define SETUP_AUTH CL_SCRIPTS
_Static_assert(CL_SCRIPTS + 1 == sizeof setup_ids / sizeof setup_ids[0],
               "setup_ids: one per script, then AUTH");

static void on_setup(struct cl_link *l, const redisReply *r, void *arg)
{
    int id = *(const int *)arg;
    int script = id == SETUP_AUTH ? -1 : id;
    if (!r || r->type == REDIS_REPLY_ERROR) {
        char why[160];
        snprintf(why, sizeof why, "%s: %s", script < 0 ? "AUTH" : "SCRIPT LOAD",
                 r ? r->str : "no reply");
        link_down(l, why);
        return;
    }
    if (script >= 0 && r->type == REDIS_REPLY_STRING && r->len == 40)
        memcpy(l->sha[script], r->str, 41);
    l->setup--;
    setup_done(l);
}

static void on_connect(const redisAsyncContext *ac, int status)
{
    struct cl_conn *c = ac->data;
    struct cl_link *l = c->l;
    if (status != REDIS_OK) {
        /* hiredis frees the context after this returns. */
        c->ac = NULL;
        link_down(l, ac->errstr[0] ? ac->errstr : "connect failed");
        return;
    }
    c->connected = true;
    setup_done(l);
}

static void on_disconnect(const redisAsyncContext *ac, int status)
{
    struct cl_conn *c = ac->data;
    if (c->ac != ac)
        return; /* we freed it ourselves */
    c->ac = NULL; /* hiredis is freeing it */
    link_down(c->l, status == REDIS_OK ? "closed" : ac->errstr);
}

/* Every reply of the subscription connection: confirmations and
 * messages. One callback for all, so hiredis's per-channel table only
 * decides whether a channel is known. */
static void on_sub(redisAsyncContext *ac, void *reply, void *priv)
{
    struct cl_link *l = priv;
    const redisReply *r = reply;
    (void)ac;
    if (!r || l->state == LINK_DOWN)
        return;
    if (r->type != REDIS_REPLY_ARRAY || r->elements < 3 ||
        r->element[0]->type != REDIS_REPLY_STRING ||
        r->element[1]->type != REDIS_REPLY_STRING)
        return;
    const char *type = r->element[0]->str;
    const redisReply *ch = r->element[1], *d = r->element[2];
    if (strcmp(type, "message") == 0 && d->type == REDIS_REPLY_STRING) {
        l->ev.sub(l->ev.owner, ch->str, ch->len, d->str, d->len, CL_MESSAGE);
        return;
    }
    bool on = strcmp(type, "subscribe") == 0;
    if (!on && strcmp(type, "unsubscribe") != 0)
        return;
    if (l->sub_pending && --l->sub_pending)
        l->sub_since = now(l); /* progress: the next one is the oldest */
    l->ev.sub(l->ev.owner, ch->str, ch->len, NULL, 0,
              on ? CL_SUBSCRIBED : CL_UNSUBSCRIBED);
}

/* ---- the watch: timeouts and keep-alive --------------------------------- */

static void on_ping(struct cl_link *l, const redisReply *r, void *arg)
{
    (void)r;
    (void)arg;
    l->ping_out = false;
}

static void watch(struct pc_timer *t)
{
    struct cl_link *l = t->data;
    double n = now(l);
    if (l->state == LINK_CONNECTING && n - l->since > l->timeout) {
        l->stats.timeouts++;
        link_down(l, "connect and setup timed out");
        return;
    }
    if (l->state != LINK_UP)
        return;
    if ((l->head && n - l->head->sent > l->timeout) ||
        (l->sub_pending && n - l->sub_since > l->timeout)) {
        l->stats.timeouts++;
        char why[64];
        snprintf(why, sizeof why, "no reply in %.2f s", l->timeout);
        link_down(l, why);
        return;
    }
    /* An idle link is asked something now and then: a Redis that stopped
     * answering is noticed within about the timeout, not at the next
     * line. (The subscription connection fails with the server.) */
    if (!l->head && !l->ping_out && n - l->last_reply > l->timeout / 2) {
        const char *argv[] = {"PING"};
        size_t lens[] = {4};
        if (cl_cmd(l, on_ping, NULL, 1, argv, lens) == 0)
            l->ping_out = true;
    }
    pc_timer_start(l->w, &l->watch, l->timeout / 4);
}

/* ---- connecting ----------------------------------------------------------- */

static int open_conn(struct cl_link *l, struct cl_conn *c)
{
    c->l = l;
    c->connected = false;
    c->ac = l->port ? redisAsyncConnect(l->host, l->port)
                    : redisAsyncConnectUnix(l->host);
    if (!c->ac)
        return -ENOMEM;
    if (c->ac->err) {
        pc_log(PC_LOG_INFO, "cluster: connect: %s", c->ac->errstr);
        redisAsyncFree(c->ac);
        c->ac = NULL;
        return -ECONNREFUSED;
    }
    c->ac->data = c;
    redisLibevAttach(pc_worker_loop(l->w), c->ac);
    redisAsyncSetConnectCallback(c->ac, on_connect);
    redisAsyncSetDisconnectCallback(c->ac, on_disconnect);
    return 0;
}

static int send_req(struct cl_link *l, redisAsyncContext *ac, cl_reply_cb *cb,
                    void *arg, int argc, const char **argv, const size_t *lens)
{
    struct cl_req *q = malloc(sizeof *q);
    if (!q)
        return -ENOMEM;
    *q = (struct cl_req){.l = l, .cb = cb, .arg = arg, .sent = now(l)};
    if (redisAsyncCommandArgv(ac, on_reply, q, argc, argv, lens) !=
        REDIS_OK) {
        free(q);
        return -ENOTCONN;
    }
    if (l->tail)
        l->tail->next = q;
    else
        l->head = q;
    l->tail = q;
    l->stats.commands++;
    return 0;
}

static void auth(struct cl_link *l, redisAsyncContext *ac, bool counted)
{
    if (!l->password[0])
        return;
    const char *argv[3] = {"AUTH"};
    size_t lens[3] = {4};
    int n = 1;
    if (l->user[0])
        argv[n] = l->user, lens[n++] = strlen(l->user);
    argv[n] = l->password, lens[n++] = strlen(l->password);
    if (counted) {
        l->setup++;
        send_req(l, ac, on_setup, (void *)&setup_ids[SETUP_AUTH], n, argv,
                 lens);
    } else { /* the subscription connection: a refusal closes it */
        redisAsyncCommandArgv(ac, NULL, NULL, n, argv, lens);
    }
}

static void link_connect(struct cl_link *l)
{
    l->state = LINK_CONNECTING;
    l->since = now(l);
    l->setup = 0;
    if (open_conn(l, &l->cmd) < 0 || open_conn(l, &l->sub) < 0) {
        link_down(l, "cannot connect");
        return;
    }
    auth(l, l->cmd.ac, true);
    auth(l, l->sub.ac, false);
    for (int i = 0; i < CL_SCRIPTS; i++) {
        const char *argv[] = {"SCRIPT", "LOAD", cl_script_source[i]};
        size_t lens[] = {6, 4, strlen(cl_script_source[i])};
        l->setup++;
        if (send_req(l, l->cmd.ac, on_setup, (void *)&setup_ids[i], 3, argv,
                     lens) < 0) {
            link_down(l, "cannot send");
            return;
        }
    }
    pc_timer_start(l->w, &l->watch, l->timeout / 4);
}

static void retry(struct pc_timer *t)
{
    link_connect(t->data);
}

/* "host:port", "[v6]:port" or "unix:/path". */
static int parse_address(struct cl_link *l, const char *a)
{
    if (strncmp(a, "unix:", 5) == 0) {
        l->port = 0;
        snprintf(l->host, sizeof l->host, "%s", a + 5);
        return 0;
    }
    const char *colon = strrchr(a, ':');
    if (!colon)
        return -EINVAL;
    const char *h = a;
    size_t n = (size_t)(colon - a);
    if (a[0] == '[' && n >= 2 && a[n - 1] == ']')
        h++, n -= 2;
    if (n >= sizeof l->host)
        return -EINVAL;
    memcpy(l->host, h, n);
    l->host[n] = '\0';
    char *end;
    long port = strtol(colon + 1, &end, 10);
    if (*end || port < 1 || port > 65535)
        return -EINVAL;
    l->port = (int)port;
    return 0;
}

/* ---- the interface ------------------------------------------------------- */

struct cl_link *cl_link_new(struct pc_worker *w,
                            const struct cl_link_config *cfg,
                            const struct cl_link_events *ev)
{
    struct cl_link *l = calloc(1, sizeof *l);
    if (!l)
        return NULL;
    if (parse_address(l, cfg->redis) < 0) {
        free(l);
        return NULL;
    }
    l->w = w;
    l->ev = *ev;
    l->timeout = cfg->timeout;
    l->backoff = BACKOFF_MIN;
    l->jitter = (uint32_t)(pc_worker_now(w) * 1e6) ^ (pc_worker_id(w) << 20);
    snprintf(l->password, sizeof l->password, "%s",
             cfg->password ? cfg->password : "");
    snprintf(l->user, sizeof l->user, "%s", cfg->user ? cfg->user : "");
    pc_timer_init(&l->retry, retry, l);
    pc_timer_init(&l->watch, watch, l);
    link_connect(l);
    return l;
}

void cl_link_free(struct cl_link *l)
{
    if (!l)
        return;
    l->ev.down = NULL; /* the owner is going too */
    l->ev.up = NULL;
    link_down(l, "stopping");
    pc_timer_stop(l->w, &l->retry);
    pc_timer_stop(l->w, &l->watch);
    free(l);
}

bool cl_link_up(const struct cl_link *l)
{
    return l->state == LINK_UP;
}

int cl_cmd(struct cl_link *l, cl_reply_cb *cb, void *arg, int argc,
           const char **argv, const size_t *lens)
{
    if (l->state != LINK_UP || !l->cmd.ac)
        return -ENOTCONN;
    return send_req(l, l->cmd.ac, cb, arg, argc, argv, lens);
}

int cl_eval(struct cl_link *l, unsigned script, cl_reply_cb *cb, void *arg,
            int nkeys, int argc, const char **argv, const size_t *lens)
{
    const char *av[CL_EVAL_ARGS + 3];
    size_t al[CL_EVAL_ARGS + 3];
    char nk[12];
    if (argc > CL_EVAL_ARGS || script >= CL_SCRIPTS)
        return -EINVAL;
    int n = snprintf(nk, sizeof nk, "%d", nkeys);
    av[0] = "EVALSHA", al[0] = 7;
    av[1] = l->sha[script], al[1] = 40;
    av[2] = nk, al[2] = (size_t)n;
    for (int i = 0; i < argc; i++)
        av[3 + i] = argv[i], al[3 + i] = lens[i];
    return cl_cmd(l, cb, arg, argc + 3, av, al);
}

int cl_subscribe(struct cl_link *l, bool on, int n, const char **channels,
                 const size_t *lens)
{
    if (l->state != LINK_UP || !l->sub.ac || n <= 0)
        return -ENOTCONN;
    const char **argv = malloc((size_t)(n + 1) * sizeof *argv);
    size_t *al = malloc((size_t)(n + 1) * sizeof *al);
    int r = -ENOMEM;
    if (argv && al) {
        argv[0] = on ? "SUBSCRIBE" : "UNSUBSCRIBE";
        al[0] = strlen(argv[0]);
        memcpy(argv + 1, channels, (size_t)n * sizeof *argv);
        memcpy(al + 1, lens, (size_t)n * sizeof *al);
        r = redisAsyncCommandArgv(l->sub.ac, on_sub, l, n + 1, argv, al) ==
                    REDIS_OK
                ? 0
                : -ENOTCONN;
        if (r == 0) {
            if (!l->sub_pending)
                l->sub_since = now(l);
            l->sub_pending += (unsigned)n; /* one confirmation each */
        }
    }
    free(argv);
    free(al);
    return r;
}

const struct cl_link_stats *cl_link_stats(const struct cl_link *l)
{
    return &l->stats;
}
