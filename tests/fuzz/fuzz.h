/* What the fuzz targets share: invariant checks that stop the target
 * (libFuzzer then saves the input), and the list of findings reported
 * and not yet fixed (docs/fuzzing.md). */
#ifndef PC_TESTS_FUZZ_H
#define PC_TESTS_FUZZ_H

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

#define CHECK(cond)                                                            \
    do {                                                                       \
        if (!(cond)) {                                                         \
            fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__,         \
                    __LINE__, #cond);                                          \
            abort();                                                           \
        }                                                                      \
    } while (0)

/* Findings a target tolerates while they are open, so that CI goes on
 * looking for new ones; PC_FUZZ_STRICT=1 makes them fail again, to check
 * a fix. Remove a finding, and its use, with its fix. */
enum pc_fuzz_finding {
    /* F1-F5 are fixed; none is open. */
    PC_FUZZ_NO_FINDING_OPEN,
};

static inline bool known(enum pc_fuzz_finding f)
{
    (void)f;
    return getenv("PC_FUZZ_STRICT") == NULL;
}

#endif
