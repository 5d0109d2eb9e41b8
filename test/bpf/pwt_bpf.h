/* Shared by the BPF packet tests (test/bpf/test_*.c): a private sandbox
 * (netns + mount ns with its own bpffs), veth devices for real ifindexes,
 * packet builders, BPF_PROG_TEST_RUN and map/ring-buffer readers.
 * Header-only (static inline) because every test/bpf/test_*.c is linked as
 * its own program with no per-suite library. */
#ifndef PWT_BPF_H
#define PWT_BPF_H

#include <errno.h>
#include <net/if.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/udp.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include <podwire/abi.h>
#include <podwire/drop.h>
#include "pwtest.h"

#define PWT_MAX_PKT 256

/* ---------- sandbox ---------- */

static char pwt_pin_root[128];

static inline void pwt_sandbox_cleanup(void)
{
	char cmd[200];

	if (!pwt_pin_root[0])
		return;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", pwt_pin_root);
	if (system(cmd) != 0)
		fprintf(stderr, "warning: could not remove %s\n", pwt_pin_root);
	pwt_pin_root[0] = 0;
}

/* New network namespace (the veths die with the process) and a new mount
 * namespace with a fresh bpffs on /sys/fs/bpf, so pins never touch the
 * host's bpffs; inside it the pin root is still a unique pwt-<pid> dir,
 * removed at exit. Returns the pin root or NULL. */
static inline const char *pwt_sandbox(void)
{
	if (unshare(CLONE_NEWNET | CLONE_NEWNS) != 0) {
		perror("unshare");
		return NULL;
	}
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0) {
		perror("mount --make-rprivate /");
		return NULL;
	}
	if (mount("bpf", "/sys/fs/bpf", "bpf", 0, "mode=0700") != 0) {
		perror("mount bpffs");
		return NULL;
	}
	snprintf(pwt_pin_root, sizeof(pwt_pin_root), "/sys/fs/bpf/pwt-%d", (int)getpid());
	if (mkdir(pwt_pin_root, 0700) != 0) {
		perror(pwt_pin_root);
		pwt_pin_root[0] = 0;
		return NULL;
	}
	atexit(pwt_sandbox_cleanup);
	if (system("ip link set lo up") != 0)
		return NULL;
	return pwt_pin_root;
}

/* A veth pair, both ends up; the ifindex of `name` or 0. */
static inline unsigned pwt_veth(const char *name, const char *peer)
{
	char cmd[256];

	snprintf(cmd, sizeof(cmd),
		 "ip link add %s type veth peer name %s && ip link set %s up && ip link set %s up",
		 name, peer, name, peer);
	if (system(cmd) != 0)
		return 0;
	return if_nametoindex(name);
}

/* A collect-metadata VXLAN device like the agent's pw_vxlan (port 8472),
 * up; its ifindex, or 0. */
static inline unsigned pwt_vxlan(const char *name)
{
	char cmd[256];

	snprintf(cmd, sizeof(cmd), "ip link add %s type vxlan external dstport 8472 && ip link set %s up", name,
		 name);
	if (system(cmd) != 0)
		return 0;
	return if_nametoindex(name);
}

/* ---------- addresses ---------- */

static inline uint32_t pwt_ip(const char *s) /* network byte order */
{
	struct in_addr a;

	if (inet_pton(AF_INET, s, &a) != 1)
		abort();
	return a.s_addr;
}

static inline void pwt_mac(uint8_t *mac, uint8_t a, uint8_t b, uint8_t c, uint8_t d, uint8_t e, uint8_t f)
{
	mac[0] = a; mac[1] = b; mac[2] = c; mac[3] = d; mac[4] = e; mac[5] = f;
}

/* ---------- packets ---------- */

static inline uint16_t pwt_csum(const void *buf, size_t len)
{
	const uint8_t *p = buf;
	uint32_t sum = 0;

	for (size_t i = 0; i + 1 < len; i += 2)
		sum += (uint32_t)(p[i] << 8 | p[i + 1]);
	if (len & 1)
		sum += (uint32_t)p[len - 1] << 8;
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return htons((uint16_t)~sum);
}

struct pwt_udp_spec {
	const uint8_t *src_mac, *dst_mac;
	uint32_t saddr, daddr;   /* network order */
	uint16_t sport, dport;   /* host order */
	uint8_t ttl;
	uint16_t payload;        /* bytes of payload after the UDP header */
};

/* Ethernet + IPv4 (valid checksum) + UDP. Returns the frame length. */
static inline size_t pwt_build_udp(uint8_t *buf, const struct pwt_udp_spec *s)
{
	struct ethhdr *eth = (struct ethhdr *)buf;
	struct iphdr *iph = (struct iphdr *)(eth + 1);
	struct udphdr *udp = (struct udphdr *)(iph + 1);
	size_t ip_len = sizeof(*iph) + sizeof(*udp) + s->payload;

	memset(buf, 0, sizeof(*eth) + ip_len);
	memcpy(eth->h_source, s->src_mac, ETH_ALEN);
	memcpy(eth->h_dest, s->dst_mac, ETH_ALEN);
	eth->h_proto = htons(ETH_P_IP);
	iph->version = 4;
	iph->ihl = 5;
	iph->tot_len = htons((uint16_t)ip_len);
	iph->id = htons(0x1234);
	iph->frag_off = htons(0x4000); /* DF */
	iph->ttl = s->ttl;
	iph->protocol = IPPROTO_UDP;
	iph->saddr = s->saddr;
	iph->daddr = s->daddr;
	iph->check = pwt_csum(iph, sizeof(*iph));
	udp->source = htons(s->sport);
	udp->dest = htons(s->dport);
	udp->len = htons((uint16_t)(sizeof(*udp) + s->payload));
	for (uint16_t i = 0; i < s->payload; i++)
		((uint8_t *)(udp + 1))[i] = (uint8_t)(0xa0 + i);
	return sizeof(*eth) + ip_len;
}

/* An ICMP error (type, code; "fragmentation needed" carries MTU 1400) from
 * saddr to daddr about the packet in the frame quoted: its IPv4 header and
 * first 8 payload bytes, as routers quote at least. Returns the length. */
static inline size_t pwt_build_icmp_error(uint8_t *buf, const uint8_t *src_mac, const uint8_t *dst_mac,
					  uint32_t saddr, uint32_t daddr, uint8_t type, uint8_t code,
					  const uint8_t *quoted)
{
	struct ethhdr *eth = (struct ethhdr *)buf;
	struct iphdr *iph = (struct iphdr *)(eth + 1);
	uint8_t *icmp = (uint8_t *)(iph + 1);
	size_t ip_len = sizeof(*iph) + 8 + sizeof(*iph) + 8;
	uint16_t c;

	memset(buf, 0, sizeof(*eth) + ip_len);
	memcpy(eth->h_source, src_mac, ETH_ALEN);
	memcpy(eth->h_dest, dst_mac, ETH_ALEN);
	eth->h_proto = htons(ETH_P_IP);
	iph->version = 4;
	iph->ihl = 5;
	iph->tot_len = htons((uint16_t)ip_len);
	iph->ttl = 63;
	iph->protocol = IPPROTO_ICMP;
	iph->saddr = saddr;
	iph->daddr = daddr;
	iph->check = pwt_csum(iph, sizeof(*iph));
	icmp[0] = type;
	icmp[1] = code;
	if (type == 3 && code == 4) {
		icmp[6] = 1400 >> 8; /* next-hop MTU */
		icmp[7] = 1400 & 0xff;
	}
	memcpy(icmp + 8, quoted + sizeof(struct ethhdr), sizeof(*iph) + 8);
	c = pwt_csum(icmp, 8 + sizeof(*iph) + 8);
	memcpy(icmp + 2, &c, 2);
	return sizeof(*eth) + ip_len;
}

/* The quoted IPv4 header of an ICMP error frame, and a 16-bit field at
 * offset at behind it (0: source port, 2: destination port, 4: echo id). */
static inline struct iphdr *pwt_quoted_iph(uint8_t *frame)
{
	return (struct iphdr *)(frame + sizeof(struct ethhdr) + sizeof(struct iphdr) + 8);
}

static inline uint16_t pwt_quoted_u16(uint8_t *frame, size_t at)
{
	uint8_t *p = (uint8_t *)(pwt_quoted_iph(frame) + 1) + at;

	return (uint16_t)(p[0] << 8 | p[1]);
}

/* ARP as on the wire (RFC 826, Ethernet/IPv4). */
struct pwt_arp {
	uint16_t hrd, pro;
	uint8_t hln, pln;
	uint16_t op;
	uint8_t sha[6], spa[4], tha[6], tpa[4];
} __attribute__((packed));

static inline size_t pwt_build_arp_request(uint8_t *buf, const uint8_t *sha, uint32_t spa, uint32_t tpa)
{
	struct ethhdr *eth = (struct ethhdr *)buf;
	struct pwt_arp *arp = (struct pwt_arp *)(eth + 1);

	memset(buf, 0, sizeof(*eth) + sizeof(*arp));
	memset(eth->h_dest, 0xff, ETH_ALEN);
	memcpy(eth->h_source, sha, ETH_ALEN);
	eth->h_proto = htons(ETH_P_ARP);
	arp->hrd = htons(1);
	arp->pro = htons(ETH_P_IP);
	arp->hln = 6;
	arp->pln = 4;
	arp->op = htons(1);
	memcpy(arp->sha, sha, 6);
	memcpy(arp->spa, &spa, 4);
	memcpy(arp->tpa, &tpa, 4);
	return sizeof(*eth) + sizeof(*arp);
}

static inline struct iphdr *pwt_iph(uint8_t *frame)
{
	return (struct iphdr *)(frame + sizeof(struct ethhdr));
}

/* The L4 checksum over the IPv4 pseudo header (TCP, UDP) or the message
 * alone (ICMP) of the IPv4 packet in frame, computed over the segment as it
 * is, checksum field included: 0 when the checksum field is right. Set the
 * field to 0 first to get the value to store. */
static inline uint16_t pwt_l4_csum(const uint8_t *frame)
{
	const struct iphdr *iph = (const struct iphdr *)(frame + sizeof(struct ethhdr));
	size_t hlen = (size_t)iph->ihl * 4, l4_len = ntohs(iph->tot_len) - hlen;
	uint8_t buf[12 + PWT_MAX_PKT];
	size_t n = 0;

	if (l4_len > PWT_MAX_PKT)
		abort();
	if (iph->protocol != IPPROTO_ICMP) {
		memcpy(buf, &iph->saddr, 4);
		memcpy(buf + 4, &iph->daddr, 4);
		buf[8] = 0;
		buf[9] = iph->protocol;
		buf[10] = (uint8_t)(l4_len >> 8);
		buf[11] = (uint8_t)l4_len;
		n = 12;
	}
	memcpy(buf + n, (const uint8_t *)iph + hlen, l4_len);
	return pwt_csum(buf, n + l4_len);
}

/* Offset of the L4 checksum field in frame (TCP 16, UDP 6, ICMP 2). */
static inline size_t pwt_l4_csum_off(const uint8_t *frame)
{
	const struct iphdr *iph = (const struct iphdr *)(frame + sizeof(struct ethhdr));
	size_t off = sizeof(struct ethhdr) + (size_t)iph->ihl * 4;

	return off + (iph->protocol == IPPROTO_TCP ? 16 : iph->protocol == IPPROTO_UDP ? 6 : 2);
}

/* Store the right L4 checksum (for UDP, instead of "none"). */
static inline void pwt_l4_fix_csum(uint8_t *frame)
{
	size_t off = pwt_l4_csum_off(frame);
	uint16_t c;

	memset(frame + off, 0, 2);
	c = pwt_l4_csum(frame);
	if (c == 0 && pwt_iph(frame)->protocol == IPPROTO_UDP)
		c = 0xffff; /* UDP sends a computed 0 as all ones */
	memcpy(frame + off, &c, 2);
}

/* Ethernet + IPv4 + TCP (20-byte header, ACK|PSH, valid checksums). The
 * spec's payload is the TCP payload length. */
static inline size_t pwt_build_tcp(uint8_t *buf, const struct pwt_udp_spec *s)
{
	size_t len = pwt_build_udp(buf, s); /* same layout up to the ports */
	struct iphdr *iph = pwt_iph(buf);
	uint8_t *tcp = (uint8_t *)(iph + 1);
	size_t ip_len = sizeof(*iph) + 20 + s->payload;

	memset(tcp + 4, 0, 16);
	tcp[4] = 0x11; tcp[7] = 0x22;           /* seq */
	tcp[11] = 0x33;                         /* ack */
	tcp[12] = 5 << 4;                       /* data offset */
	tcp[13] = 0x18;                         /* ACK|PSH */
	tcp[14] = 0xff; tcp[15] = 0xff;         /* window */
	for (uint16_t i = 0; i < s->payload; i++)
		tcp[20 + i] = (uint8_t)(0x30 + i);
	iph->protocol = IPPROTO_TCP;
	iph->tot_len = htons((uint16_t)ip_len);
	iph->check = 0;
	iph->check = pwt_csum(iph, sizeof(*iph));
	pwt_l4_fix_csum(buf);
	(void)len;
	return sizeof(struct ethhdr) + ip_len;
}

/* Ethernet + IPv4 + ICMP echo (type 8 request or 0 reply) with identifier
 * id, sequence 1, s->payload bytes of data, valid checksums. */
static inline size_t pwt_build_icmp_echo(uint8_t *buf, const struct pwt_udp_spec *s, uint8_t type, uint16_t id)
{
	size_t len = pwt_build_udp(buf, s); /* 8-byte header too */
	struct iphdr *iph = pwt_iph(buf);
	uint8_t *icmp = (uint8_t *)(iph + 1);

	icmp[0] = type;
	icmp[1] = 0;
	icmp[4] = (uint8_t)(id >> 8);
	icmp[5] = (uint8_t)id;
	icmp[6] = 0;
	icmp[7] = 1;
	iph->protocol = IPPROTO_ICMP;
	iph->check = 0;
	iph->check = pwt_csum(iph, sizeof(*iph));
	pwt_l4_fix_csum(buf);
	return len;
}

/* Source/destination port of a TCP/UDP packet, or ICMP echo id (both). */
static inline uint16_t pwt_sport(const uint8_t *frame)
{
	const struct iphdr *iph = (const struct iphdr *)(frame + sizeof(struct ethhdr));
	const uint8_t *l4 = (const uint8_t *)iph + iph->ihl * 4;

	return iph->protocol == IPPROTO_ICMP ? (uint16_t)(l4[4] << 8 | l4[5]) : (uint16_t)(l4[0] << 8 | l4[1]);
}

static inline uint16_t pwt_dport(const uint8_t *frame)
{
	const struct iphdr *iph = (const struct iphdr *)(frame + sizeof(struct ethhdr));
	const uint8_t *l4 = (const uint8_t *)iph + iph->ihl * 4;

	return iph->protocol == IPPROTO_ICMP ? (uint16_t)(l4[4] << 8 | l4[5]) : (uint16_t)(l4[2] << 8 | l4[3]);
}

/* ---------- running programs ---------- */

struct pwt_run {
	int err;               /* bpf_prog_test_run_opts result (0 or -errno) */
	int retval;            /* the program's verdict */
	uint8_t out[PWT_MAX_PKT];
	uint32_t out_len;
};

/* BPF_PROG_TEST_RUN with __sk_buff.ifindex set: the kernel looks the device
 * up in the caller's netns and runs the program with skb->dev set to it, so
 * the program sees a real skb->ifindex. */
static inline struct pwt_run pwt_run_prog(int prog_fd, const void *pkt, size_t len, unsigned ifindex)
{
	struct pwt_run r;
	struct __sk_buff ctx;
	LIBBPF_OPTS(bpf_test_run_opts, opts);

	memset(&r, 0, sizeof(r));
	memset(&ctx, 0, sizeof(ctx));
	ctx.ifindex = ifindex;
	opts.data_in = pkt;
	opts.data_size_in = (uint32_t)len;
	opts.data_out = r.out;
	opts.data_size_out = sizeof(r.out);
	opts.ctx_in = &ctx;
	opts.ctx_size_in = sizeof(ctx);
	opts.repeat = 1;
	r.err = bpf_prog_test_run_opts(prog_fd, &opts);
	if (r.err)
		r.err = -errno;
	r.retval = (int)opts.retval;
	r.out_len = opts.data_size_out;
	return r;
}

/* ---------- maps ---------- */

/* Sum over CPUs of one pw_metrics slot. */
static inline struct pw_metric pwt_metric(int map_fd, uint32_t slot)
{
	struct pw_metric sum;
	int ncpu = libbpf_num_possible_cpus();
	struct pw_metric *vals = calloc((size_t)(ncpu > 0 ? ncpu : 1), sizeof(*vals));

	memset(&sum, 0, sizeof(sum));
	if (!vals || ncpu <= 0 || bpf_map_lookup_elem(map_fd, &slot, vals) != 0) {
		free(vals);
		return sum;
	}
	for (int i = 0; i < ncpu; i++) {
		sum.egress.packets += vals[i].egress.packets;
		sum.egress.bytes += vals[i].egress.bytes;
		sum.ingress.packets += vals[i].ingress.packets;
		sum.ingress.bytes += vals[i].ingress.bytes;
	}
	free(vals);
	return sum;
}

static inline int pwt_settings_set(int map_fd, const struct pw_settings *s)
{
	uint32_t zero = 0;

	return bpf_map_update_elem(map_fd, &zero, s, BPF_ANY);
}

/* A local pod numbered n: its IP, host-side ifindex, and MACs derived
 * from n (pod eth0 0a:58:0a:f4:01:n, host-side veth 02:50:57:00:01:n). */
static inline void pwt_endpoint_init(struct pw_endpoint *ep, unsigned ifindex, const char *ip, uint8_t n)
{
	uint32_t addr = pwt_ip(ip);

	memset(ep, 0, sizeof(*ep));
	ep->ifindex = ifindex;
	memcpy(ep->ip, &addr, 4);
	pwt_mac(ep->mac, 0x0a, 0x58, 0x0a, 0xf4, 0x01, n);
	pwt_mac(ep->host_mac, 0x02, 0x50, 0x57, 0x00, 0x01, n);
	ep->id = n;
}

static inline int pwt_endpoint_add(int ep_fd, int ifidx_fd, const struct pw_endpoint *ep)
{
	struct pw_ip4 key;
	uint32_t ifindex = ep->ifindex;

	memcpy(key.addr, ep->ip, 4);
	if (bpf_map_update_elem(ep_fd, &key, ep, BPF_ANY) != 0)
		return -errno;
	if (bpf_map_update_elem(ifidx_fd, &ifindex, ep, BPF_ANY) != 0)
		return -errno;
	return 0;
}

/* ---------- events ---------- */

#define PWT_MAX_EVENTS 64

struct pwt_events {
	struct ring_buffer *rb;
	int n;
	struct pw_event ev[PWT_MAX_EVENTS];
};

static inline int pwt_events_cb(void *ctx, void *data, size_t size)
{
	struct pwt_events *e = ctx;

	if (size >= sizeof(struct pw_event) && e->n < PWT_MAX_EVENTS)
		memcpy(&e->ev[e->n++], data, sizeof(struct pw_event));
	return 0;
}

static inline int pwt_events_open(struct pwt_events *e, int ringbuf_fd)
{
	memset(e, 0, sizeof(*e));
	e->rb = ring_buffer__new(ringbuf_fd, pwt_events_cb, e, NULL);
	return e->rb ? 0 : -errno;
}

/* Forget what was collected, read everything pending; returns the count. */
static inline int pwt_events_read(struct pwt_events *e)
{
	e->n = 0;
	if (ring_buffer__consume(e->rb) < 0)
		return -1;
	return e->n;
}

static inline void pwt_events_close(struct pwt_events *e)
{
	ring_buffer__free(e->rb);
	e->rb = NULL;
}

/* The seeds' node1 as podwired configures it before load (SET_RODATA in
 * userspace/agent/loader.c), service CIDR included: every test object starts
 * from this, and a test changes only what it is about. */
#define PWT_NODE1_CFG(rodata) do {                                      \
	(rodata)->cfg_gateway_ip = pwt_ip("10.244.1.1");                \
	(rodata)->cfg_node_ip = pwt_ip("192.168.1.11");                 \
	(rodata)->cfg_pod_cidr = pwt_ip("10.244.1.0");                  \
	(rodata)->cfg_pod_mask = pwt_ip("255.255.255.0");               \
	(rodata)->cfg_cluster_cidr = pwt_ip("10.244.0.0");              \
	(rodata)->cfg_cluster_mask = pwt_ip("255.255.0.0");             \
	(rodata)->cfg_service_cidr = pwt_ip("10.96.0.0");               \
	(rodata)->cfg_service_mask = pwt_ip("255.240.0.0");             \
} while (0)

/* The kernel id of a loaded map: equal ids prove two objects share a map. */
static inline uint32_t pwt_map_id(const struct bpf_map *m)
{
	struct bpf_map_info info;
	uint32_t len = sizeof(info);

	memset(&info, 0, sizeof(info));
	if (bpf_map_get_info_by_fd(bpf_map__fd(m), &info, &len) != 0)
		return 0;
	return info.id;
}

#endif
