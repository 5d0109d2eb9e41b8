/* Maglev table generation (NSDI 2016, §3.4, "Pseudocode 1"). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cidr.h"
#include "maglev.h"

bool pw_is_prime(uint32_t n)
{
	if (n < 2)
		return false;
	if (n % 2 == 0)
		return n == 2;
	if (n % 3 == 0)
		return n == 3;
	for (uint64_t d = 5; d * d <= n; d += 6)
		if (n % d == 0 || n % (d + 2) == 0)
			return false;
	return true;
}

#define ROTL64(x, b) (uint64_t)(((x) << (b)) | ((x) >> (64 - (b))))
#define SIPROUND do {                                                        \
	v0 += v1; v1 = ROTL64(v1, 13); v1 ^= v0; v0 = ROTL64(v0, 32);        \
	v2 += v3; v3 = ROTL64(v3, 16); v3 ^= v2;                             \
	v0 += v3; v3 = ROTL64(v3, 21); v3 ^= v0;                             \
	v2 += v1; v1 = ROTL64(v1, 17); v1 ^= v2; v2 = ROTL64(v2, 32);        \
} while (0)

static uint64_t load_le64(const uint8_t *p)
{
	uint64_t v = 0;

	for (int i = 7; i >= 0; i--)
		v = (v << 8) | p[i];
	return v;
}

uint64_t pw_siphash24(const void *data, size_t len, uint64_t k0, uint64_t k1)
{
	const uint8_t *in = data;
	uint64_t v0 = 0x736f6d6570736575ULL ^ k0;
	uint64_t v1 = 0x646f72616e646f6dULL ^ k1;
	uint64_t v2 = 0x6c7967656e657261ULL ^ k0;
	uint64_t v3 = 0x7465646279746573ULL ^ k1;
	uint64_t last = (uint64_t)len << 56;
	size_t full = len - len % 8;

	for (size_t i = 0; i < full; i += 8) {
		uint64_t m = load_le64(in + i);

		v3 ^= m;
		SIPROUND; SIPROUND;
		v0 ^= m;
	}
	for (size_t i = 0; i < len % 8; i++)
		last |= (uint64_t)in[full + i] << (8 * i);
	v3 ^= last;
	SIPROUND; SIPROUND;
	v0 ^= last;
	v2 ^= 0xff;
	SIPROUND; SIPROUND; SIPROUND; SIPROUND;
	return v0 ^ v1 ^ v2 ^ v3;
}

void pw_maglev_permutation(const struct pw_maglev_backend *b, uint32_t m,
			   uint32_t *offset, uint32_t *skip)
{
	char ip[PW_IP4_STRLEN], name[PW_IP4_STRLEN + 8];
	int len;

	pw_ip4_format(b->ip, ip);
	len = snprintf(name, sizeof(name), "%s:%u", ip, b->port);
	*offset = (uint32_t)(pw_siphash24(name, (size_t)len, PW_MAGLEV_K0_OFFSET,
					  PW_MAGLEV_K1_OFFSET) % m);
	*skip = (uint32_t)(pw_siphash24(name, (size_t)len, PW_MAGLEV_K0_SKIP,
					PW_MAGLEV_K1_SKIP) % (m - 1)) + 1;
}

static int by_address(const void *a, const void *b)
{
	const struct pw_maglev_backend *x = a, *y = b;

	if (x->ip != y->ip)
		return x->ip < y->ip ? -1 : 1;
	if (x->port != y->port)
		return x->port < y->port ? -1 : 1;
	return x->id < y->id ? -1 : x->id > y->id;
}

/* Per backend: where its permutation stands now and its stride. */
struct cursor {
	uint32_t pos;
	uint32_t skip;
	uint32_t id;
};

int pw_maglev_build(const struct pw_maglev_backend *b, int n, uint32_t m, uint32_t *table)
{
	struct pw_maglev_backend *sorted;
	struct cursor *cur;
	uint8_t *taken;
	uint32_t filled = 0;

	if (!b || !table || n < 1 || m < 2 || m > PW_MAGLEV_M_MAX || !pw_is_prime(m) ||
	    (uint32_t)n > m)
		return -EINVAL;
	sorted = malloc((size_t)n * sizeof(*sorted));
	cur = malloc((size_t)n * sizeof(*cur));
	taken = calloc(m, 1);
	if (!sorted || !cur || !taken) {
		free(sorted);
		free(cur);
		free(taken);
		return -ENOMEM;
	}
	/* Turn order breaks ties between permutations: fix it by address. */
	memcpy(sorted, b, (size_t)n * sizeof(*sorted));
	qsort(sorted, (size_t)n, sizeof(*sorted), by_address);
	for (int i = 0; i < n; i++) {
		pw_maglev_permutation(&sorted[i], m, &cur[i].pos, &cur[i].skip);
		cur[i].id = sorted[i].id;
	}
	/* permutation[i][j] = (offset + j * skip) % m: walking pos += skip is
	 * the same sequence without the multiplication. m prime and
	 * 1 <= skip < m make each permutation visit every entry once. */
	while (filled < m) {
		for (int i = 0; i < n && filled < m; i++) {
			struct cursor *c = &cur[i];

			while (taken[c->pos]) {
				c->pos += c->skip;
				if (c->pos >= m)
					c->pos -= m;
			}
			taken[c->pos] = 1;
			table[c->pos] = c->id;
			filled++;
		}
	}
	free(sorted);
	free(cur);
	free(taken);
	return 0;
}
