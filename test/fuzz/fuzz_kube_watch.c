/* libFuzzer harness for the watch-stream decoder (outside input: the API
 * server's watch responses, cut anywhere by the transport). Build and run
 * with `make fuzz` (FUZZ_SECONDS). The first two bytes choose max_event and
 * how the rest is cut into chunks; the check is differential: fed whole or
 * in chunks, the decoder delivers the same events and ends the same way. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "kube.h"

struct log {
	unsigned n;
	uint64_t hash;
};

static void check(int cond)
{
	if (!cond)
		abort();
}

static int record(void *ctx, const char *type, const cJSON *obj)
{
	struct log *l = ctx;
	char *s = cJSON_PrintUnformatted(obj);

	check(type != NULL && cJSON_IsObject(obj));
	l->n++;
	for (const char *p = type; *p; p++)
		l->hash = (l->hash ^ (unsigned char)*p) * 1099511628211ull;
	for (const char *p = s ? s : ""; *p; p++)
		l->hash = (l->hash ^ (unsigned char)*p) * 1099511628211ull;
	free(s);
	return 0;
}

static int run(const char *data, size_t size, size_t max_event, unsigned cut, struct log *l)
{
	struct pw_watch_decoder *d = pw_watch_decoder_new(max_event, record, l);
	size_t step = cut ? cut : size ? size : 1;
	int r = 0;

	check(d != NULL);
	for (size_t i = 0; i < size && !r; i += step)
		r = pw_watch_decoder_feed(d, data + i, size - i < step ? size - i : step);
	pw_watch_decoder_free(d);
	return r;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct log whole = { 0, 14695981039346656037ull }, cut = whole;
	size_t max_event;
	unsigned step;
	int r1, r2;

	if (size < 2)
		return 0;
	max_event = 2 + (size_t)data[0] * 8;
	step = 1 + data[1] % 17;
	data += 2;
	size -= 2;
	r1 = run((const char *)data, size, max_event, 0, &whole);
	r2 = run((const char *)data, size, max_event, step, &cut);
	check(r1 == r2);
	check(r1 == 0 || r1 == -E2BIG || r1 == -EBADMSG);
	check(whole.n == cut.n && whole.hash == cut.hash);
	return 0;
}
