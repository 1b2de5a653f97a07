/* A test module for test_reload_listeners: echo, except that it refuses
 * to start on the worker its `refuse_on` option names, so a test can see
 * what a reload does when a module starts on some workers only. */
#include <percore/percore.h>

static const struct pc_option balky_options[] = {
    {"refuse_on", PC_OPT_INT, "-1", -1, 1024,
     "the worker whose worker_init fails; -1: none"},
    {NULL, 0, NULL, 0, 0, NULL},
};

static int balky_worker_init(struct pc_worker *w, const struct pc_section *cfg,
                             void **wstate)
{
    *wstate = NULL;
    if ((int64_t)pc_worker_id(w) == pc_section_int(cfg, "refuse_on"))
        return -1;
    return 0;
}

static size_t balky_on_data(struct pc_conn *c, const char *data, size_t len)
{
    (void)pc_conn_write(c, data, len); /* a failure closes c */
    return len;
}

const struct pc_proto percore_module = {
    .abi = PC_PROTO_ABI,
    .name = "balky",
    .options = balky_options,
    .worker_init = balky_worker_init,
    .on_data = balky_on_data,
};
