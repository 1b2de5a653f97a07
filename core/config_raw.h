/* What the config reader collected before interpreting it: every key of
 * the file and of the command line, as text with where it came from.
 * Internal to core/ (config.c fills it, key_origin.c reads it); main
 * thread, during pc_config_load only. */
#ifndef PC_CORE_CONFIG_RAW_H
#define PC_CORE_CONFIG_RAW_H

#include <stdbool.h>
#include <stddef.h>

#include "core/config.h"

struct raw_entry {
    char section[PC_NAME_MAX + 16]; /* "server", "cluster", "listener X" */
    char key[PC_NAME_MAX];
    char value[PC_ADDR_MAX * 4];
    /* "file:line", "--set S.K", "--listen" or a shortcut as typed
     * ("--backend"): what an error about this key names. */
    char where[PC_ADDR_MAX + 16];
    bool used;
};

struct raw_list {
    struct raw_entry *v;
    size_t n, cap;
    const char *file;
    int line;
};

#endif
