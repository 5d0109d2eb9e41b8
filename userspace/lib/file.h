/* Whole-file reads and atomic writes, shared by every reader and writer of
 * podwire's own files (node config, node.json, applied.json). */
#ifndef PW_FILE_H
#define PW_FILE_H
#include <stddef.h>

/* The file at path, whole and NUL-terminated (caller frees); NULL with
 * *err = -errno, or -EFBIG past max bytes. *len (if given) is its length. */
char *pw_file_read(const char *path, size_t max, size_t *len, int *err);

/* data replaces path atomically: a temporary file in the same directory,
 * with the original's mode (0644 for a new file), flushed and renamed over
 * it, so a reader (or an inotify watch) sees the old or the new file, never
 * half of one. 0 or -errno; the temporary file never stays behind. */
int pw_file_write_atomic(const char *path, const char *data, size_t len);
#endif
