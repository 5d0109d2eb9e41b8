/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include "jsonparse.h"

int pw_jerr_fail(struct pw_jerr *e, const char *fmt, ...)
{
	va_list ap;

	if (e->buf && e->len) {
		va_start(ap, fmt);
		vsnprintf(e->buf, e->len, fmt, ap);
		va_end(ap);
	}
	return -EINVAL;
}

const char *pw_json_shown(const char *v, struct pw_json_shown *out)
{
	size_t n = 0, i;

	for (i = 0; v[i] && i < PW_JSON_SHOWN_CHARS; i++) {
		unsigned char c = (unsigned char)v[i];

		if (c == '"' || c == '\\')
			n += (size_t)sprintf(out->s + n, "\\%c", c);
		else if (c < 0x20 || c == 0x7f)
			n += (size_t)sprintf(out->s + n, c == '\n' ? "\\n" : "\\x%02x", c);
		else
			out->s[n++] = (char)c;
	}
	strcpy(out->s + n, v[i] ? "..." : "");
	return out->s;
}

int pw_json_check_keys(struct pw_jerr *e, const cJSON *obj, const char *path, const char *const *allowed)
{
	const cJSON *it;

	if (!cJSON_IsObject(obj))
		return pw_jerr_fail(e, "%s: expected an object", path);
	cJSON_ArrayForEach(it, obj) {
		const char *const *a;

		for (a = allowed; *a; a++)
			if (strcmp(*a, it->string) == 0)
				break;
		if (!*a) {
			struct pw_json_shown sh;

			return pw_jerr_fail(e, "%s.%s: unknown field", path, pw_json_shown(it->string, &sh));
		}
	}
	return 0;
}
