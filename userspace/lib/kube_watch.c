/* The watch-stream decoder. The API server writes one JSON object per
 * event, each followed by a newline, but the transport cuts the stream
 * anywhere (inside a string, between \r and \n, in a UTF-8 sequence). The
 * decoder finds where each object ends by tracking brace depth outside
 * strings, carried across chunks, so it needs neither the newline nor a
 * second pass over bytes it has already seen; only the bytes of the
 * event in progress are kept, at most max_event of them. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "kube.h"

struct pw_watch_decoder {
	pw_watch_event_fn fn;
	void *ctx;
	size_t max_event;
	char *buf;       /* the event in progress, from its '{' */
	size_t len, cap;
	unsigned depth;  /* open braces/brackets outside strings */
	bool in_string, escaped;
};

struct pw_watch_decoder *pw_watch_decoder_new(size_t max_event, pw_watch_event_fn fn, void *ctx)
{
	struct pw_watch_decoder *d;

	if (!fn || max_event < 2)
		return NULL;
	d = calloc(1, sizeof(*d));
	if (!d)
		return NULL;
	d->fn = fn;
	d->ctx = ctx;
	d->max_event = max_event;
	return d;
}

void pw_watch_decoder_reset(struct pw_watch_decoder *d)
{
	d->len = 0;
	d->depth = 0;
	d->in_string = d->escaped = false;
}

void pw_watch_decoder_free(struct pw_watch_decoder *d)
{
	if (!d)
		return;
	free(d->buf);
	free(d);
}

bool pw_watch_decoder_pending(const struct pw_watch_decoder *d)
{
	return d->len > 0;
}

static int append(struct pw_watch_decoder *d, const char *p, size_t n)
{
	if (n > d->max_event - d->len)
		return -E2BIG;
	if (d->len + n > d->cap) {
		/* Grow geometrically but never past max_event: the bound is the
		 * memory an endless or hostile event can take. */
		size_t cap = d->cap ? d->cap : 4096;
		char *nb;

		while (cap < d->len + n)
			cap *= 2;
		if (cap > d->max_event)
			cap = d->max_event;
		nb = realloc(d->buf, cap + 1);
		if (!nb)
			return -ENOMEM;
		d->buf = nb;
		d->cap = cap;
	}
	memcpy(d->buf + d->len, p, n);
	d->len += n;
	return 0;
}

/* A complete object is in buf: it must be {"type": string, "object": object}. */
static int deliver(struct pw_watch_decoder *d)
{
	cJSON *ev, *type, *obj;
	int r;

	ev = cJSON_ParseWithLength(d->buf, d->len);
	d->len = 0;
	if (!ev)
		return -EBADMSG;
	type = cJSON_GetObjectItemCaseSensitive(ev, "type");
	obj = cJSON_GetObjectItemCaseSensitive(ev, "object");
	if (!cJSON_IsObject(ev) || !cJSON_IsString(type) || !cJSON_IsObject(obj)) {
		cJSON_Delete(ev);
		return -EBADMSG;
	}
	r = d->fn(d->ctx, type->valuestring, obj);
	cJSON_Delete(ev);
	return r;
}

/* Scans p[0..n) from the decoder's state; *used = bytes up to and
 * including the closing brace of an event (then 1 is returned) or all of
 * them (0). -EBADMSG for bytes that cannot start an event. */
static int scan(struct pw_watch_decoder *d, const char *p, size_t n, size_t *used)
{
	for (size_t i = 0; i < n; i++) {
		char c = p[i];

		if (d->depth == 0) {
			if (c == ' ' || c == '\t' || c == '\r' || c == '\n')
				continue;
			if (c != '{')
				return -EBADMSG;
			d->depth = 1;
			continue;
		}
		if (d->in_string) {
			if (d->escaped)
				d->escaped = false;
			else if (c == '\\')
				d->escaped = true;
			else if (c == '"')
				d->in_string = false;
		} else if (c == '"') {
			d->in_string = true;
		} else if (c == '{' || c == '[') {
			d->depth++;
		} else if (c == '}' || c == ']') {
			if (--d->depth == 0) {
				*used = i + 1;
				return 1;
			}
		}
	}
	*used = n;
	return 0;
}

int pw_watch_decoder_feed(struct pw_watch_decoder *d, const char *buf, size_t len)
{
	while (len > 0) {
		size_t start = 0, used = 0;
		bool was_idle = d->depth == 0;
		int r;

		r = scan(d, buf, len, &used);
		if (r < 0)
			return r;
		/* An event that starts in this chunk starts at its '{': the
		 * whitespace before it is not part of it. */
		if (was_idle) {
			size_t i = 0;

			while (i < len && buf[i] != '{')
				i++;
			start = i;
		}
		if (r == 0) {
			if (d->depth > 0) {
				int e = append(d, buf + start, len - start);

				if (e)
					return e;
			}
			return 0;
		}
		r = append(d, buf + start, used - start);
		if (r)
			return r;
		r = deliver(d);
		if (r)
			return r;
		buf += used;
		len -= used;
	}
	return 0;
}
