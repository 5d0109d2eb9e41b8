/* IPv4 address and prefix arithmetic. Parsing is strict: exactly four
 * decimal octets 0..255 without leading zeros (so "010.1.1.1" is refused
 * instead of being read as octal by inet_aton or as decimal by others),
 * no surrounding whitespace, no trailing junk. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include "cidr.h"

/* Parses a decimal number of at most max_digits digits without a leading
 * zero; advances *s past it. -EINVAL if there is none. */
static int parse_decimal(const char **s, unsigned max_digits, unsigned long *out)
{
	const char *p = *s;
	unsigned long v = 0;
	unsigned n = 0;

	while (*p >= '0' && *p <= '9') {
		if (++n > max_digits)
			return -EINVAL;
		v = v * 10 + (unsigned long)(*p - '0');
		p++;
	}
	if (n == 0 || (n > 1 && **s == '0'))
		return -EINVAL;
	*s = p;
	*out = v;
	return 0;
}

/* Parses a dotted quad at *s, advancing past it. */
static int parse_ip4_prefix(const char **s, uint32_t *out)
{
	uint32_t ip = 0;

	for (int i = 0; i < 4; i++) {
		unsigned long octet;

		if (i > 0) {
			if (**s != '.')
				return -EINVAL;
			(*s)++;
		}
		if (parse_decimal(s, 3, &octet) || octet > 255)
			return -EINVAL;
		ip = (ip << 8) | (uint32_t)octet;
	}
	*out = ip;
	return 0;
}

int pw_ip4_parse(const char *s, uint32_t *out)
{
	uint32_t ip;

	if (!s || parse_ip4_prefix(&s, &ip) || *s != '\0')
		return -EINVAL;
	*out = ip;
	return 0;
}

int pw_cidr_parse(const char *s, struct pw_cidr *out)
{
	unsigned long prefix;
	uint32_t ip;

	if (!s || parse_ip4_prefix(&s, &ip) || *s != '/')
		return -EINVAL;
	s++;
	if (parse_decimal(&s, 2, &prefix) || prefix > 32 || *s != '\0')
		return -EINVAL;
	if (ip & ~pw_cidr_mask((uint8_t)prefix))
		return -EINVAL;
	out->addr = ip;
	out->prefix = (uint8_t)prefix;
	return 0;
}

void pw_ip4_format(uint32_t ip, char buf[PW_IP4_STRLEN])
{
	snprintf(buf, PW_IP4_STRLEN, "%u.%u.%u.%u", ip >> 24, (ip >> 16) & 0xff,
		 (ip >> 8) & 0xff, ip & 0xff);
}

void pw_cidr_format(const struct pw_cidr *c, char buf[PW_CIDR_STRLEN])
{
	uint32_t ip = c->addr;

	/* prefix <= 32 keeps the worst case within PW_CIDR_STRLEN. */
	snprintf(buf, PW_CIDR_STRLEN, "%u.%u.%u.%u/%u", ip >> 24, (ip >> 16) & 0xff,
		 (ip >> 8) & 0xff, ip & 0xff, c->prefix > 32 ? 32u : (unsigned)c->prefix);
}

uint32_t pw_cidr_mask(uint8_t prefix)
{
	/* Shifting a 32-bit value by 32 is undefined: /0 is its own case. */
	if (prefix == 0)
		return 0;
	if (prefix >= 32)
		return 0xffffffffu;
	return 0xffffffffu << (32 - prefix);
}

bool pw_cidr_contains(const struct pw_cidr *c, uint32_t ip)
{
	return (ip & pw_cidr_mask(c->prefix)) == c->addr;
}

bool pw_cidr_within(const struct pw_cidr *inner, const struct pw_cidr *outer)
{
	return inner->prefix >= outer->prefix && pw_cidr_contains(outer, inner->addr);
}

bool pw_cidr_overlaps(const struct pw_cidr *a, const struct pw_cidr *b)
{
	/* Two prefixes overlap exactly when one contains the other. */
	return pw_cidr_within(a, b) || pw_cidr_within(b, a);
}

uint64_t pw_cidr_size(const struct pw_cidr *c)
{
	return (uint64_t)1 << (32 - (c->prefix > 32 ? 32 : c->prefix));
}

uint32_t pw_cidr_broadcast(const struct pw_cidr *c)
{
	return c->addr | ~pw_cidr_mask(c->prefix);
}

uint32_t pw_cidr_gateway(const struct pw_cidr *c)
{
	return c->addr + 1;
}

void pw_ip4_to_bytes(uint32_t ip, uint8_t out[4])
{
	out[0] = (uint8_t)(ip >> 24);
	out[1] = (uint8_t)(ip >> 16);
	out[2] = (uint8_t)(ip >> 8);
	out[3] = (uint8_t)ip;
}

uint32_t pw_ip4_from_bytes(const uint8_t in[4])
{
	return ((uint32_t)in[0] << 24) | ((uint32_t)in[1] << 16) |
	       ((uint32_t)in[2] << 8) | (uint32_t)in[3];
}
