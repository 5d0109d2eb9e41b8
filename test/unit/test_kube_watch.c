/* The watch-stream decoder (userspace/lib/kube_watch.c): the same events
 * come out however the stream is cut, a partial event waits for its end,
 * oversized and malformed events are refused, on_event's value stops it. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "pwtest.h"
#include "kube.h"

struct seen {
	int n;
	char log[4096];  /* "TYPE name rv;" per event */
	int stop_at;     /* on_event returns 7 on this event (1-based), 0: never */
};

static int record(void *ctx, const char *type, const cJSON *obj)
{
	struct seen *s = ctx;
	const cJSON *md = cJSON_GetObjectItemCaseSensitive(obj, "metadata");
	const cJSON *name = cJSON_GetObjectItemCaseSensitive(md, "name");
	const cJSON *rv = cJSON_GetObjectItemCaseSensitive(md, "resourceVersion");
	size_t l = strlen(s->log);

	s->n++;
	snprintf(s->log + l, sizeof(s->log) - l, "%s %s %s;", type,
		 cJSON_IsString(name) ? name->valuestring : "-", cJSON_IsString(rv) ? rv->valuestring : "-");
	return s->n == s->stop_at ? 7 : 0;
}

/* Strings hold braces, brackets, escaped quotes and backslashes; lines end
 * in \n or \r\n, as a proxy may rewrite them. */
static const char *stream =
	"{\"type\":\"ADDED\",\"object\":{\"kind\":\"ConfigMap\",\"metadata\":{\"name\":\"a\",\"resourceVersion\":\"11\"},"
	"\"data\":{\"k\":\"}{ ][ \\\"}\\\\\",\"n\":[1,{\"x\":[]}]}}}\n"
	"{\"type\":\"MODIFIED\",\"object\":{\"metadata\":{\"name\":\"b\",\"resourceVersion\":\"12\"},\"data\":{\"u\":\"\xc3\xa9t\xc3\xa9\"}}}\r\n"
	"{\"type\":\"BOOKMARK\",\"object\":{\"kind\":\"ConfigMap\",\"metadata\":{\"resourceVersion\":\"13\"}}}\n"
	"  {\"type\":\"DELETED\",\"object\":{\"metadata\":{\"name\":\"c\",\"resourceVersion\":\"14\"}}}\n";
static const char *want = "ADDED a 11;MODIFIED b 12;BOOKMARK - 13;DELETED c 14;";

static void test_whole(void)
{
	struct seen s = { 0 };
	struct pw_watch_decoder *d = pw_watch_decoder_new(1 << 16, record, &s);
	int r = pw_watch_decoder_feed(d, stream, strlen(stream));

	PWT_EQ_INT(r, 0, "whole stream in one chunk decodes");
	PWT_EQ_STR(s.log, want, "several events in one chunk, in order");
	PWT_EXPECT(!pw_watch_decoder_pending(d), "nothing pending after the last event");
	pw_watch_decoder_free(d);
}

/* Cut in two at every byte boundary, then fed one byte at a time. */
static void test_every_split(void)
{
	size_t len = strlen(stream);
	int bad = 0;
	struct seen s;

	for (size_t cut = 0; cut <= len; cut++) {
		struct pw_watch_decoder *d;

		memset(&s, 0, sizeof(s));
		d = pw_watch_decoder_new(1 << 16, record, &s);
		if (pw_watch_decoder_feed(d, stream, cut) || pw_watch_decoder_feed(d, stream + cut, len - cut) ||
		    strcmp(s.log, want) != 0) {
			if (!bad)
				printf("# cut at %zu: %s\n", cut, s.log);
			bad++;
		}
		pw_watch_decoder_free(d);
	}
	PWT_CHECK(bad == 0, "stream cut at every byte boundary decodes the same", "%d cuts differ", bad);

	memset(&s, 0, sizeof(s));
	struct pw_watch_decoder *d = pw_watch_decoder_new(1 << 16, record, &s);
	int r = 0;

	for (size_t i = 0; i < len && !r; i++)
		r = pw_watch_decoder_feed(d, stream + i, 1);
	PWT_CHECK(r == 0 && strcmp(s.log, want) == 0, "stream fed one byte at a time", "r=%d log=%s", r, s.log);
	pw_watch_decoder_free(d);
}

static void test_partial(void)
{
	struct seen s = { 0 };
	struct pw_watch_decoder *d = pw_watch_decoder_new(1 << 16, record, &s);
	const char *second = strstr(stream, "{\"type\":\"MODIFIED\"");
	size_t half = (size_t)(second - stream) + 20;

	pw_watch_decoder_feed(d, stream, half);
	PWT_EQ_INT(s.n, 1, "partial trailing event: only the complete one delivered");
	PWT_EXPECT(pw_watch_decoder_pending(d), "partial trailing event is pending");
	pw_watch_decoder_feed(d, stream + half, strlen(stream) - half);
	PWT_EQ_STR(s.log, want, "partial event completes with the next chunk");
	pw_watch_decoder_reset(d);
	PWT_EXPECT(!pw_watch_decoder_pending(d), "reset drops the partial event");
	pw_watch_decoder_free(d);
}

static void test_oversized(void)
{
	char big[600];
	struct seen s = { 0 };
	struct pw_watch_decoder *d;
	int r = 0, len;

	len = snprintf(big, sizeof(big), "{\"type\":\"ADDED\",\"object\":{\"metadata\":{\"name\":\"%0400d\"}}}\n", 0);
	d = pw_watch_decoder_new(200, record, &s);
	r = pw_watch_decoder_feed(d, big, (size_t)len);
	PWT_EQ_INT(r, -E2BIG, "event over max_event refused (one chunk)");
	PWT_EQ_INT(s.n, 0, "oversized event not delivered");
	pw_watch_decoder_reset(d);
	r = 0;
	for (int i = 0; i < len && !r; i += 7)
		r = pw_watch_decoder_feed(d, big + i, (size_t)(len - i < 7 ? len - i : 7));
	PWT_EQ_INT(r, -E2BIG, "event over max_event refused (small chunks)");
	pw_watch_decoder_reset(d);
	r = pw_watch_decoder_feed(d, stream, strstr(stream, "\n") - stream + 1);
	PWT_EQ_INT(r, 0, "after reset a small event decodes");
	PWT_EQ_INT(s.n, 1, "after reset the event is delivered");
	pw_watch_decoder_free(d);

	/* Exactly max_event bytes (without the newline) is allowed. */
	memset(&s, 0, sizeof(s));
	d = pw_watch_decoder_new((size_t)len - 1, record, &s);
	r = pw_watch_decoder_feed(d, big, (size_t)len);
	PWT_CHECK(r == 0 && s.n == 1, "event of exactly max_event bytes accepted", "r=%d n=%d", r, s.n);
	pw_watch_decoder_free(d);
}

static int feed_one(size_t max, const char *text, int *n)
{
	struct seen s = { 0 };
	struct pw_watch_decoder *d = pw_watch_decoder_new(max, record, &s);
	int r = pw_watch_decoder_feed(d, text, strlen(text));

	*n = s.n;
	pw_watch_decoder_free(d);
	return r;
}

static void test_malformed(void)
{
	static const struct { const char *name, *text; } bad[] = {
		{ "invalid JSON inside braces", "{\"type\":\"ADDED\",\"object\":{\"a\":}}\n" },
		{ "garbage before an event", "x{\"type\":\"ADDED\",\"object\":{}}\n" },
		{ "top-level array", "[{\"type\":\"ADDED\",\"object\":{}}]\n" },
		{ "no type", "{\"object\":{}}\n" },
		{ "type not a string", "{\"type\":1,\"object\":{}}\n" },
		{ "no object", "{\"type\":\"ADDED\"}\n" },
		{ "object not an object", "{\"type\":\"ADDED\",\"object\":\"x\"}\n" },
		{ "mismatched brackets", "{\"type\":\"ADDED\",\"object\":{\"a\":[}]}\n" },
		{ "second event bad", "{\"type\":\"ADDED\",\"object\":{}}\n{\"type\":}\n" },
	};
	char name[128];
	int n, r;

	for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		r = feed_one(1 << 16, bad[i].text, &n);
		snprintf(name, sizeof(name), "malformed: %s -> -EBADMSG", bad[i].name);
		PWT_CHECK(r == -EBADMSG, name, "feed returned %d", r);
	}
	r = feed_one(1 << 16, "{\"type\":\"ADDED\",\"object\":{}}\n{\"type\":}\n", &n);
	PWT_EQ_INT(n, 1, "events before a malformed one are delivered");
	r = feed_one(1 << 16, "\r\n\n  \t", &n);
	PWT_CHECK(r == 0 && n == 0, "whitespace alone is no event", "r=%d n=%d", r, n);
}

static void test_stop_value(void)
{
	struct seen s = { .stop_at = 2 };
	struct pw_watch_decoder *d = pw_watch_decoder_new(1 << 16, record, &s);
	int r = pw_watch_decoder_feed(d, stream, strlen(stream));

	PWT_EQ_INT(r, 7, "on_event's non-zero value is returned by feed");
	PWT_EQ_INT(s.n, 2, "no event is delivered after on_event says stop");
	pw_watch_decoder_free(d);
	PWT_EXPECT(pw_watch_decoder_new(1 << 16, NULL, NULL) == NULL, "new without a callback fails");
}

int main(void)
{
	test_whole();
	test_every_split();
	test_partial();
	test_oversized();
	test_malformed();
	test_stop_value();
	return pwt_done();
}
