/* Maglev table generation (userspace/lib/maglev.c).
 *
 * Balance: Maglev's turn-taking gives every backend floor(M/N) or ceil(M/N)
 * entries, so "within 1% of equal" only needs M >= 100 N. The big cases use
 * M = 65537 (the paper's production size), the default PW_MAGLEV_M = 1021 is
 * checked with N = 3.
 * Disruption: removing one of N backends must move its own 1/N of the
 * entries plus only a little more (the paper's Fig. 11 shows the extra churn
 * shrinking as M/N grows). Measured here with M = 65537, N = 10, every
 * backend removed in turn: the worst case is printed as a diagnostic and
 * asserted to stay under 1/N + 0.02. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "pwtest.h"
#include "podwire/abi.h"
#include "maglev.h"

#define BIG_M 65537u

static void make_backends(struct pw_maglev_backend *b, int n)
{
	for (int i = 0; i < n; i++) {
		b[i].id = 100 + (uint32_t)i;
		b[i].ip = (10u << 24) | (244u << 16) | ((uint32_t)(i / 250 + 1) << 8) |
			  (uint32_t)(i % 250 + 2);
		b[i].port = 8080;
	}
}

static void test_siphash_vectors(void)
{
	/* The reference vectors of the SipHash paper: key 00..0f, message 00..(len-1). */
	uint8_t msg[15];
	uint64_t k0 = 0x0706050403020100ULL, k1 = 0x0f0e0d0c0b0a0908ULL;

	for (int i = 0; i < 15; i++)
		msg[i] = (uint8_t)i;
	PWT_EQ_INT(pw_siphash24(msg, 0, k0, k1), (long long)0x726fdb47dd0e0e31ULL,
		   "siphash24: empty message vector");
	PWT_EQ_INT(pw_siphash24(msg, 8, k0, k1), (long long)0x93f5f5799a932462ULL,
		   "siphash24: 8-byte message vector");
	PWT_EQ_INT(pw_siphash24(msg, 15, k0, k1), (long long)0xa129ca6149be45e5ULL,
		   "siphash24: 15-byte message vector");
}

static void test_primes(void)
{
	static const uint32_t primes[] = { 2, 3, 5, 1021, 16381, 65537, 4294967291u };
	static const uint32_t composites[] = { 0, 1, 4, 9, 25, 1020, 65535, 4294967295u };
	bool ok = true;

	for (size_t i = 0; i < sizeof(primes) / sizeof(primes[0]); i++)
		ok &= pw_is_prime(primes[i]);
	PWT_EXPECT(ok, "pw_is_prime accepts primes up to 2^32-5");
	ok = true;
	for (size_t i = 0; i < sizeof(composites) / sizeof(composites[0]); i++)
		ok &= !pw_is_prime(composites[i]);
	PWT_EXPECT(ok, "pw_is_prime rejects 0, 1 and composites");
	PWT_EXPECT(pw_is_prime(PW_MAGLEV_M), "the default PW_MAGLEV_M is prime");
}

static void test_rejects(void)
{
	struct pw_maglev_backend b[4];
	uint32_t table[1024];

	make_backends(b, 4);
	PWT_EQ_INT(pw_maglev_build(b, 4, 1020, table), -EINVAL, "non-prime M rejected");
	PWT_EQ_INT(pw_maglev_build(b, 4, 1, table), -EINVAL, "M = 1 rejected");
	PWT_EQ_INT(pw_maglev_build(b, 0, 1021, table), -EINVAL, "no backends rejected");
	PWT_EQ_INT(pw_maglev_build(b, 4, 3, table), -EINVAL, "more backends than M rejected");
	PWT_EQ_INT(pw_maglev_build(NULL, 4, 1021, table), -EINVAL, "NULL backends rejected");
	PWT_EQ_INT(pw_maglev_build(b, 3, 3, table), 0, "n == M accepted");
	PWT_EXPECT(table[0] != table[1] && table[1] != table[2] && table[0] != table[2],
		   "n == M: each backend owns exactly one entry");
}

/* Every entry holds one of the backends' ids; fills counts[i] for b[i]. */
static bool all_filled(const uint32_t *table, uint32_t m, const struct pw_maglev_backend *b,
		       int n, uint32_t *counts)
{
	memset(counts, 0, (size_t)n * sizeof(*counts));
	for (uint32_t s = 0; s < m; s++) {
		int found = -1;

		for (int i = 0; i < n && found < 0; i++)
			if (b[i].id == table[s])
				found = i;
		if (found < 0)
			return false;
		counts[found]++;
	}
	return true;
}

/* Worst relative deviation of a backend's share from m/n. */
static double worst_imbalance(const uint32_t *counts, int n, uint32_t m)
{
	double ideal = (double)m / n, worst = 0;

	for (int i = 0; i < n; i++) {
		double d = (counts[i] - ideal) / ideal;

		if (d < 0)
			d = -d;
		if (d > worst)
			worst = d;
	}
	return worst;
}

static void check_balance(int n, uint32_t m)
{
	struct pw_maglev_backend *b = calloc((size_t)n, sizeof(*b));
	uint32_t *table = malloc(m * sizeof(*table));
	uint32_t *counts = calloc((size_t)n, sizeof(*counts));
	char name[96];
	double worst;

	if (!b || !table || !counts) {
		PWT_CHECK(0, "balance: allocation", "out of memory");
		goto out;
	}
	make_backends(b, n);
	memset(table, 0xff, m * sizeof(*table));
	snprintf(name, sizeof(name), "N=%d M=%u: table built", n, m);
	PWT_EQ_INT(pw_maglev_build(b, n, m, table), 0, name);
	snprintf(name, sizeof(name), "N=%d M=%u: every entry holds a backend", n, m);
	PWT_EXPECT(all_filled(table, m, b, n, counts), name);
	worst = worst_imbalance(counts, n, m);
	printf("# N=%d M=%u: worst share deviation %.4f%% of M/N\n", n, m, worst * 100);
	snprintf(name, sizeof(name), "N=%d M=%u: each share within 1%% of M/N", n, m);
	PWT_CHECK(worst <= 0.01, name, "worst deviation %.4f%%", worst * 100);
out:
	free(b);
	free(table);
	free(counts);
}

static void test_deterministic(void)
{
	enum { N = 10 };
	struct pw_maglev_backend b[N], rev[N];
	static uint32_t t1[BIG_M], t2[BIG_M], t3[BIG_M];

	make_backends(b, N);
	for (int i = 0; i < N; i++)
		rev[i] = b[N - 1 - i];
	pw_maglev_build(b, N, BIG_M, t1);
	pw_maglev_build(b, N, BIG_M, t2);
	pw_maglev_build(rev, N, BIG_M, t3);
	PWT_EXPECT(memcmp(t1, t2, sizeof(t1)) == 0, "same backends, same table");
	PWT_EXPECT(memcmp(t1, t3, sizeof(t1)) == 0, "backend order does not change the table");
}

/* Fraction of entries whose backend changed between two tables. */
static double moved(const uint32_t *a, const uint32_t *b, uint32_t m)
{
	uint32_t n = 0;

	for (uint32_t s = 0; s < m; s++)
		n += a[s] != b[s];
	return (double)n / m;
}

static void check_disruption(int n, uint32_t m, double margin)
{
	struct pw_maglev_backend *b = calloc((size_t)n, sizeof(*b));
	struct pw_maglev_backend *less = calloc((size_t)n, sizeof(*less));
	uint32_t *full = malloc(m * sizeof(*full)), *after = malloc(m * sizeof(*after));
	double worst = 0, sum = 0, bound = 1.0 / n + margin;
	bool gone = true;
	char name[128];

	if (!b || !less || !full || !after) {
		PWT_CHECK(0, "disruption: allocation", "out of memory");
		goto out;
	}
	make_backends(b, n);
	pw_maglev_build(b, n, m, full);
	for (int r = 0; r < n; r++) {
		int k = 0;
		double f;

		for (int i = 0; i < n; i++)
			if (i != r)
				less[k++] = b[i];
		pw_maglev_build(less, n - 1, m, after);
		f = moved(full, after, m);
		sum += f;
		if (f > worst)
			worst = f;
		for (uint32_t s = 0; s < m; s++)
			gone &= after[s] != b[r].id;
	}
	printf("# N=%d M=%u remove one: moved mean %.4f worst %.4f of M (1/N = %.4f)\n",
	       n, m, sum / n, worst, 1.0 / n);
	snprintf(name, sizeof(name), "N=%d M=%u: a removed backend owns no entry", n, m);
	PWT_EXPECT(gone, name);
	snprintf(name, sizeof(name), "N=%d M=%u: removing one moves <= 1/N + %.2f of the entries",
		 n, m, margin);
	PWT_CHECK(worst <= bound, name, "worst %.4f > %.4f", worst, bound);
out:
	free(b);
	free(less);
	free(full);
	free(after);
}

int main(void)
{
	test_siphash_vectors();
	test_primes();
	test_rejects();
	check_balance(3, PW_MAGLEV_M);
	check_balance(3, BIG_M);
	check_balance(10, BIG_M);
	check_balance(100, BIG_M);
	check_balance(500, BIG_M);
	test_deterministic();
	check_disruption(10, BIG_M, 0.02);
	check_disruption(3, BIG_M, 0.02);
	check_disruption(10, PW_MAGLEV_M, 0.05);
	return pwt_done();
}
