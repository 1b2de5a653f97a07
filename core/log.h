/* Server log: one line per call, to stderr. Under systemd (JOURNAL_STREAM
 * set) each line carries a "<N>" syslog priority prefix the journal reads;
 * otherwise a human timestamp. */
#ifndef PC_CORE_LOG_H
#define PC_CORE_LOG_H

#include "percore/percore.h"

/* Decides the output format from the environment. Main thread, before any
 * other thread starts. */
void pc_log_init(void);
/* Whether stderr is the journal's stream (JOURNAL_STREAM): then a line
 * starting with "<N>" gets priority N. */
bool pc_log_journal(void);
/* Lines above `level` are dropped. Any thread (atomic). */
void pc_log_set_level(enum pc_log_level level);
enum pc_log_level pc_log_get_level(void);
/* "err", "warning", "notice", "info", "debug" -> level; -EINVAL if unknown. */
int pc_log_level_parse(const char *name);

#endif
