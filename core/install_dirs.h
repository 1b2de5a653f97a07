/* Where percored's own files are (its docs, its modules), found from where
 * the running binary is, so one build serves the package (/usr), `cmake
 * --install --prefix /usr/local` and the build tree alike. Any thread. */
#ifndef PC_CORE_INSTALL_DIRS_H
#define PC_CORE_INSTALL_DIRS_H

#include <stddef.h>

enum pc_install_dir {
    PC_DIR_DOC,     /* PREFIX/share/doc/percored; the source tree's docs/ */
    PC_DIR_MODULES, /* PREFIX/lib/percore/modules; the build's modules/ */
};

/* The directory `which` into buf: PREFIX when the binary runs from
 * PREFIX/sbin or PREFIX/bin, else the build tree's. Returns 0, or -errno
 * (the binary's path unreadable, or too long for buf). */
int pc_install_dir(enum pc_install_dir which, char *buf, size_t size);

#endif
