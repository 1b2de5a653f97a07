/* The protocol registry: modules linked in, plus shared objects named by
 * [server] modules. Main thread, before workers start. */
#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "core/config.h"
#include "core/install_dirs.h"

extern const struct pc_proto pc_echo_proto;
extern const struct pc_proto pc_metrics_proto;
extern const struct pc_proto pc_chat_proto;
extern const struct pc_proto pc_irc_proto;
extern const struct pc_proto pc_web_proto;

#define MAX_LOADED 32

static const struct pc_proto *builtin[] = {&pc_echo_proto, &pc_chat_proto, &pc_irc_proto,
                                           &pc_web_proto, &pc_metrics_proto};
static const struct pc_proto *loaded[MAX_LOADED];
static unsigned nloaded;

const struct pc_proto *pc_proto_find(const char *name)
{
    for (unsigned i = 0; i < sizeof builtin / sizeof *builtin; i++)
        if (strcmp(builtin[i]->name, name) == 0)
            return builtin[i];
    for (unsigned i = 0; i < nloaded; i++)
        if (strcmp(loaded[i]->name, name) == 0)
            return loaded[i];
    return NULL;
}

const struct pc_proto *pc_proto_builtin(unsigned i)
{
    return i < sizeof builtin / sizeof *builtin ? builtin[i] : NULL;
}

int pc_proto_load(const char *path, char *err, size_t errlen)
{
    void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        snprintf(err, errlen, "module %s: cannot load: %s", path, dlerror());
        return -ENOENT;
    }
    /* A module exports one symbol: its struct pc_proto. */
    const struct pc_proto *p = dlsym(h, "percore_module");
    if (!p) {
        snprintf(err, errlen, "module %s: no 'percore_module' symbol (declare "
                 "'const struct pc_proto percore_module = {...}')", path);
        dlclose(h);
        return -EINVAL;
    }
    if (p->abi != PC_PROTO_ABI) {
        snprintf(err, errlen, "module %s: built for percore ABI %#x, this "
                 "percored has %#x: rebuild it against these headers", path,
                 p->abi, PC_PROTO_ABI);
        dlclose(h);
        return -EINVAL;
    }
    if (!p->name || !p->on_data) {
        snprintf(err, errlen, "module %s: needs a name and on_data", path);
        dlclose(h);
        return -EINVAL;
    }
    if (pc_proto_find(p->name)) {
        /* Loaded by an earlier config read (a reload): keep that one. */
        dlclose(h);
        return 0;
    }
    if (nloaded == MAX_LOADED) {
        snprintf(err, errlen, "module %s: too many modules", path);
        dlclose(h);
        return -ENOSPC;
    }
    loaded[nloaded++] = p; /* stays loaded for the life of the process */
    /* cppcheck-suppress resourceLeak ; h stays open: p points into it */
    return 0;
}

int pc_proto_load_named(const char *spec, const char *module_dir, char *err,
                        size_t errlen)
{
    if (strchr(spec, '/'))
        return pc_proto_load(spec, err, errlen);
    /* A bare name: NAME.so in the module directory. */
    char dir[PATH_MAX], path[PATH_MAX];
    const char *from = "server.module_dir";
    if (*module_dir) {
        snprintf(dir, sizeof dir, "%s", module_dir);
    } else {
        from = "the default module directory";
        int e = pc_install_dir(PC_DIR_MODULES, dir, sizeof dir);
        if (e < 0) {
            snprintf(err, errlen, "module '%s': no module directory (%s): "
                     "set server.module_dir or give a path", spec,
                     strerror(-e));
            return e;
        }
    }
    size_t n = strlen(spec);
    bool so = n > 3 && strcmp(spec + n - 3, ".so") == 0;
    if (snprintf(path, sizeof path, "%s/%s%s", dir, spec, so ? "" : ".so") >=
        (int)sizeof path) {
        snprintf(err, errlen, "module '%s': the path is too long", spec);
        return -ENAMETOOLONG;
    }
    if (access(path, F_OK) != 0) {
        int e = errno;
        snprintf(err, errlen, "module '%s': looked for %s (in %s): %s; give "
                 "a path (with a '/') to load one from elsewhere", spec,
                 path, from, strerror(e));
        return -e;
    }
    return pc_proto_load(path, err, errlen);
}
