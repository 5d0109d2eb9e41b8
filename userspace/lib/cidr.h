/* IPv4 addresses and prefixes. Addresses are host byte order uint32_t here;
 * convert at the edges (maps hold byte arrays, sockets network order). */
#ifndef PW_CIDR_H
#define PW_CIDR_H
#include <stdbool.h>
#include <stdint.h>
#include <stddef.h>

struct pw_cidr {
	uint32_t addr;   /* network address, host bits zero */
	uint8_t prefix;  /* 0..32 */
};

#define PW_IP4_STRLEN 16   /* "255.255.255.255" + NUL */
#define PW_CIDR_STRLEN 19  /* "255.255.255.255/32" + NUL */

/* Strict dotted quad. 0 on success, -EINVAL otherwise. */
int pw_ip4_parse(const char *s, uint32_t *out);
/* "a.b.c.d/n" with host bits zero (so "10.244.1.5/24" is refused: a typo
 * in a pod CIDR must not silently become another network). */
int pw_cidr_parse(const char *s, struct pw_cidr *out);
void pw_ip4_format(uint32_t ip, char buf[PW_IP4_STRLEN]);
void pw_cidr_format(const struct pw_cidr *c, char buf[PW_CIDR_STRLEN]);

uint32_t pw_cidr_mask(uint8_t prefix);
bool pw_cidr_contains(const struct pw_cidr *c, uint32_t ip);
/* Whether inner lies wholly inside outer. */
bool pw_cidr_within(const struct pw_cidr *inner, const struct pw_cidr *outer);
bool pw_cidr_overlaps(const struct pw_cidr *a, const struct pw_cidr *b);
uint64_t pw_cidr_size(const struct pw_cidr *c);      /* 2^(32-prefix) */
uint32_t pw_cidr_broadcast(const struct pw_cidr *c); /* last address */
/* The node's gateway address for its pods: the first host address (.1). */
uint32_t pw_cidr_gateway(const struct pw_cidr *c);
/* Byte-array form used in map keys and values (network order bytes). */
void pw_ip4_to_bytes(uint32_t ip, uint8_t out[4]);
uint32_t pw_ip4_from_bytes(const uint8_t in[4]);
#endif
