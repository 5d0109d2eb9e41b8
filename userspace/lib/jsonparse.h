/* SPDX-License-Identifier: Apache-2.0 */
/* What the strict JSON parsers (config.c, policy.c) share: an error sink
 * for the first failure's message, values shown safely inside messages, and
 * the refusal of unknown keys (a misspelt optional key would otherwise
 * silently fall back to its default). */
#ifndef PW_JSONPARSE_H
#define PW_JSONPARSE_H

#include <stddef.h>
#include <cjson/cJSON.h>

struct pw_jerr {
	char *buf;      /* NULL or len 0: the message is dropped */
	size_t len;
};

/* Formats the message into e and returns -EINVAL. */
int __attribute__((format(printf, 2, 3))) pw_jerr_fail(struct pw_jerr *e, const char *fmt, ...);

/* A value from the input as it goes into a message: at most
 * PW_JSON_SHOWN_CHARS characters, '"', '\\' and control characters escaped,
 * "..." when cut. A long value must not push the reason out of the caller's
 * (bounded) buffer, nor a newline in it forge a log line. */
#define PW_JSON_SHOWN_CHARS 40
struct pw_json_shown {
	char s[PW_JSON_SHOWN_CHARS * 4 + 4];
};
const char *pw_json_shown(const char *v, struct pw_json_shown *out);

/* obj must be an object whose keys are all in allowed (NULL-terminated):
 * 0, or -EINVAL with "PATH: expected an object" / "PATH.KEY: unknown field". */
int pw_json_check_keys(struct pw_jerr *e, const cJSON *obj, const char *path, const char *const *allowed);

#endif
