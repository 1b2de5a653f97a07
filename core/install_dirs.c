/* PREFIX from /proc/self/exe; the build tree's directories otherwise. */
#include "core/install_dirs.h"

#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* Set by CMake: where the sources and this build are. */
#ifndef PC_SOURCE_DIR
#define PC_SOURCE_DIR "."
#endif

int pc_install_dir(enum pc_install_dir which, char *buf, size_t size)
{
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0)
        return n < 0 ? -errno : -ENOENT;
    exe[n] = '\0';
    char *slash = strrchr(exe, '/');
    if (!slash)
        return -ENOENT;
    *slash = '\0'; /* exe is now the binary's directory */
    const char *dir = strrchr(exe, '/');
    bool installed = dir && (strcmp(dir, "/sbin") == 0 ||
                             strcmp(dir, "/bin") == 0);
    int r;
    if (installed) {
        exe[dir - exe] = '\0'; /* PREFIX ("" for /sbin itself) */
        r = snprintf(buf, size, "%s/%s", exe,
                     which == PC_DIR_DOC ? "share/doc/percored"
                                         : "lib/percore/modules");
    } else if (which == PC_DIR_DOC) {
        r = snprintf(buf, size, "%s/docs", PC_SOURCE_DIR);
    } else {
        r = snprintf(buf, size, "%s/modules", exe);
    }
    return r < 0 || (size_t)r >= size ? -ENAMETOOLONG : 0;
}
