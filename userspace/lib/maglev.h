/* Maglev consistent-hashing lookup tables (Eisenbud et al., "Maglev: A Fast
 * and Reliable Software Network Load Balancer", NSDI 2016, §3.4).
 *
 * The table is built in userspace and handed to the datapath as an array of
 * M backend ids (pw_maglev inner maps, include/podwire/abi.h); BPF picks
 * table[hash(5-tuple) % M]. See docs/services.md. */
#ifndef PW_MAGLEV_H
#define PW_MAGLEV_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Largest table accepted: 2^24 entries of 4 bytes is 64 MiB per service. */
#define PW_MAGLEV_M_MAX (1u << 24)

/* One backend as the table builder sees it. Its permutation derives only
 * from (ip, port), never from id, so the same backend gets the same slots on
 * every node even though backend ids are node-local. */
struct pw_maglev_backend {
	uint32_t id;     /* written into the table */
	uint32_t ip;     /* host byte order */
	uint16_t port;   /* host byte order */
};

/* The two seeds (SipHash keys) of the offset and skip hashes. Fixed: changing
 * them reshuffles every table in a cluster. */
#define PW_MAGLEV_K0_OFFSET 0x706f64776972652dULL   /* "podwire-" */
#define PW_MAGLEV_K1_OFFSET 0x6d61676c65762d31ULL   /* "maglev-1" */
#define PW_MAGLEV_K0_SKIP   0x6d61676c65762d32ULL   /* "maglev-2" */
#define PW_MAGLEV_K1_SKIP   0x706f64776972652bULL   /* "podwire+" */

bool pw_is_prime(uint32_t n);

/* SipHash-2-4 (Aumasson and Bernstein) of data with the 128-bit key (k0, k1),
 * k0 holding key bytes 0-7 little endian. */
uint64_t pw_siphash24(const void *data, size_t len, uint64_t k0, uint64_t k1);

/* The backend's permutation: offset = h1 % m, skip = h2 % (m - 1) + 1 with
 * h1, h2 the SipHash-2-4 of the string "a.b.c.d:port" under the two seeds. */
void pw_maglev_permutation(const struct pw_maglev_backend *b, uint32_t m,
			   uint32_t *offset, uint32_t *skip);

/* Fill table[0..m-1] with backend ids by the paper's permutation filling:
 * backends take turns claiming the next free entry of their own permutation
 * until all m entries are taken, so every backend owns floor(m/n) or
 * ceil(m/n) entries. The result depends on the set of backends only, not on
 * their order in b (they are taken in (ip, port) order).
 * 0, or -EINVAL (m not prime, m < 2 or > PW_MAGLEV_M_MAX, n < 1, n > m, NULL
 * pointer), -ENOMEM. */
int pw_maglev_build(const struct pw_maglev_backend *b, int n, uint32_t m, uint32_t *table);
#endif
