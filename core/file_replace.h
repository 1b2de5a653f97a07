/* Writing a small file whole or not at all, for the files other programs
 * read while percored runs (the pid file, the reload outcome). */
#ifndef PC_CORE_FILE_REPLACE_H
#define PC_CORE_FILE_REPLACE_H

/* Writes text to "<path>.<pid>.tmp", syncs it and renames it over path,
 * so a reader sees the old content or the new, never half of it. Returns
 * 0, or -errno with the temporary file removed. Any thread (the temporary
 * name is per process: one writer per path in a process). */
int pc_file_replace(const char *path, const char *text);

#endif
