/* `percored --reload`: asks a running percored to reload and waits for its
 * answer, so that `systemctl reload` (ExecReload=) fails when the reload
 * was refused. Main thread of the client process. */
#ifndef PC_CORE_RELOAD_CLI_H
#define PC_CORE_RELOAD_CLI_H

/* How long the client waits for the outcome of its SIGHUP. */
#define PC_RELOAD_WAIT_SECONDS 30

/* pid is "1234" (systemd's $MAINPID: the outcome is then looked for in
 * $RUNTIME_DIRECTORY) or a pid file. Sends SIGHUP to that process once it
 * has recorded that it handles signals, then waits for a newer outcome.
 * Prints the outcome; returns the exit status: 0 applied, 1 refused or
 * any error (printed, naming the file or process at fault). */
int pc_reload_request(const char *pid);

#endif
