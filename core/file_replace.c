/* Whole-or-nothing small files: written aside, then renamed over. */
#include "core/file_replace.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <unistd.h>

int pc_file_replace(const char *path, const char *text)
{
    char tmp[PATH_MAX];
    if (snprintf(tmp, sizeof tmp, "%s.%ld.tmp", path, (long)getpid()) >=
        (int)sizeof tmp)
        return -ENAMETOOLONG;
    FILE *f = fopen(tmp, "w");
    if (!f)
        return -errno;
    int e = 0;
    if (fputs(text, f) < 0 || fflush(f) != 0 || fsync(fileno(f)) != 0)
        e = errno ? errno : EIO;
    if (fclose(f) != 0 && !e)
        e = errno;
    if (!e && rename(tmp, path) != 0)
        e = errno;
    if (e)
        (void)unlink(tmp);
    return -e;
}
