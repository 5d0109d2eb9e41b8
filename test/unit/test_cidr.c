/* CIDR math and strict parsing (userspace/lib/cidr.c). */
#include <errno.h>
#include "pwtest.h"
#include "cidr.h"

static void test_parse_good(void)
{
	struct pw_cidr c;
	uint32_t ip;

	PWT_EQ_INT(pw_ip4_parse("10.244.1.5", &ip), 0, "ip parse 10.244.1.5");
	PWT_EQ_INT(ip, 0x0af40105, "ip parse value host order");
	PWT_EQ_INT(pw_ip4_parse("0.0.0.0", &ip), 0, "ip parse 0.0.0.0");
	PWT_EQ_INT(pw_ip4_parse("255.255.255.255", &ip), 0, "ip parse 255.255.255.255");
	PWT_EQ_INT(ip, 0xffffffff, "ip parse broadcast value");
	PWT_EQ_INT(pw_cidr_parse("10.244.1.0/24", &c), 0, "cidr parse 10.244.1.0/24");
	PWT_EQ_INT(c.addr, 0x0af40100, "cidr addr");
	PWT_EQ_INT(c.prefix, 24, "cidr prefix");
	PWT_EQ_INT(pw_cidr_parse("0.0.0.0/0", &c), 0, "cidr parse /0");
	PWT_EQ_INT(pw_cidr_parse("10.1.2.3/32", &c), 0, "cidr parse /32 host");
	PWT_EQ_INT(pw_cidr_parse("10.96.0.0/12", &c), 0, "cidr parse /12");
}

static void test_parse_bad(void)
{
	static const char *bad_ips[] = {
		"10.244.1", "10.244.1.5.6", "256.1.1.1", "10.244.1.", ".10.244.1.1", "010.1.1.1",
		"10.01.1.1", "10.244.1.5 ", " 10.244.1.5", "10.244.1.5x", "1..2.3", "", "a.b.c.d",
		"10.244.1.-1", "+1.2.3.4", "1.2.3.4/24", "1234.1.1.1",
	};
	static const char *bad_cidrs[] = {
		"10.244.1.5/24", "10.244.1.0/33", "10.244.1", "10.244.1.0", "10.244.1.0/",
		"10.244.1.0/24x", "10.244.1.0/024", "10.244.1.0/-1", "10.244.1.0/24/1", "/24",
		"10.244.1.0 /24", "10.244.1.0/100", "10.245.0.0/15",
	};
	struct pw_cidr c;
	uint32_t ip;
	char name[80];

	for (size_t i = 0; i < sizeof(bad_ips) / sizeof(bad_ips[0]); i++) {
		snprintf(name, sizeof(name), "ip parse rejects \"%s\"", bad_ips[i]);
		PWT_EQ_INT(pw_ip4_parse(bad_ips[i], &ip), -EINVAL, name);
	}
	for (size_t i = 0; i < sizeof(bad_cidrs) / sizeof(bad_cidrs[0]); i++) {
		snprintf(name, sizeof(name), "cidr parse rejects \"%s\"", bad_cidrs[i]);
		PWT_EQ_INT(pw_cidr_parse(bad_cidrs[i], &c), -EINVAL, name);
	}
	PWT_EQ_INT(pw_ip4_parse(NULL, &ip), -EINVAL, "ip parse rejects NULL");
}

static struct pw_cidr C(const char *s)
{
	struct pw_cidr c = { 0, 0 };

	if (pw_cidr_parse(s, &c))
		printf("# bad test fixture %s\n", s);
	return c;
}

static uint32_t IP(const char *s)
{
	uint32_t ip = 0;

	pw_ip4_parse(s, &ip);
	return ip;
}

static void test_relations(void)
{
	struct pw_cidr pod = C("10.244.1.0/24"), cluster = C("10.244.0.0/16");
	struct pw_cidr other = C("10.244.2.0/24"), all = C("0.0.0.0/0"), half = C("10.244.1.128/25");

	PWT_EXPECT(pw_cidr_contains(&pod, IP("10.244.1.0")), "contains network");
	PWT_EXPECT(pw_cidr_contains(&pod, IP("10.244.1.255")), "contains broadcast");
	PWT_EXPECT(!pw_cidr_contains(&pod, IP("10.244.2.1")), "not contains next /24");
	PWT_EXPECT(pw_cidr_contains(&all, IP("1.2.3.4")), "/0 contains all");
	PWT_EXPECT(pw_cidr_within(&pod, &cluster), "/24 within /16");
	PWT_EXPECT(!pw_cidr_within(&cluster, &pod), "/16 not within /24");
	PWT_EXPECT(pw_cidr_within(&pod, &pod), "within itself");
	PWT_EXPECT(!pw_cidr_within(&other, &pod), "sibling not within");
	PWT_EXPECT(pw_cidr_overlaps(&pod, &cluster), "overlaps container");
	PWT_EXPECT(pw_cidr_overlaps(&half, &pod), "overlaps sub-prefix");
	PWT_EXPECT(!pw_cidr_overlaps(&pod, &other), "siblings do not overlap");
}

static void test_arith(void)
{
	struct pw_cidr pod = C("10.244.1.0/24"), p29 = C("10.0.0.8/29"), all = C("0.0.0.0/0");
	struct pw_cidr host = C("10.1.2.3/32");
	uint8_t b[4];

	PWT_EQ_INT(pw_cidr_size(&pod), 256, "size /24");
	PWT_EQ_INT(pw_cidr_size(&p29), 8, "size /29");
	PWT_EQ_INT(pw_cidr_size(&all), 1ULL << 32, "size /0");
	PWT_EQ_INT(pw_cidr_size(&host), 1, "size /32");
	PWT_EQ_INT(pw_cidr_gateway(&pod), IP("10.244.1.1"), "gateway is .1");
	PWT_EQ_INT(pw_cidr_gateway(&p29), IP("10.0.0.9"), "gateway /29 first host");
	PWT_EQ_INT(pw_cidr_broadcast(&pod), IP("10.244.1.255"), "broadcast /24");
	PWT_EQ_INT(pw_cidr_broadcast(&p29), IP("10.0.0.15"), "broadcast /29");
	PWT_EQ_INT(pw_cidr_broadcast(&all), 0xffffffffu, "broadcast /0");
	PWT_EQ_INT(pw_cidr_mask(0), 0, "mask /0");
	PWT_EQ_INT(pw_cidr_mask(32), 0xffffffffu, "mask /32");
	PWT_EQ_INT(pw_cidr_mask(12), 0xfff00000u, "mask /12");
	pw_ip4_to_bytes(IP("10.244.1.2"), b);
	PWT_EXPECT(b[0] == 10 && b[1] == 244 && b[2] == 1 && b[3] == 2, "to bytes network order");
	PWT_EQ_INT(pw_ip4_from_bytes(b), IP("10.244.1.2"), "from bytes round trip");
}

static void test_format(void)
{
	struct pw_cidr c = C("10.244.1.0/24"), m = C("255.255.255.255/32"), z = C("0.0.0.0/0");
	char ip[PW_IP4_STRLEN], cs[PW_CIDR_STRLEN];

	pw_ip4_format(IP("192.168.1.11"), ip);
	PWT_EQ_STR(ip, "192.168.1.11", "format ip");
	pw_ip4_format(0xffffffffu, ip);
	PWT_EQ_STR(ip, "255.255.255.255", "format longest ip");
	pw_cidr_format(&c, cs);
	PWT_EQ_STR(cs, "10.244.1.0/24", "format cidr");
	pw_cidr_format(&m, cs);
	PWT_EQ_STR(cs, "255.255.255.255/32", "format longest cidr");
	pw_cidr_format(&z, cs);
	PWT_EQ_STR(cs, "0.0.0.0/0", "format /0");
}

int main(void)
{
	test_parse_good();
	test_parse_bad();
	test_relations();
	test_arith();
	test_format();
	return pwt_done();
}
