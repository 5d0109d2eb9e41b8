/* NodePort addresses and the reserved NodePort range (docs/services.md,
 * "NodePort addresses").
 *
 * pw_np_addrs holds the addresses of the node's network namespace that
 * serve NodePorts: every IPv4 address but loopback (127/8), or only those
 * inside the --nodeport-addresses / cluster.nodePortAddresses CIDRs, as
 * kube-proxy's --nodeport-addresses. A thread listens to the kernel's
 * address changes (RTMGRP_IPV4_IFADDR) and re-reads the whole list on any
 * of them, so an address added to or removed from any interface at runtime
 * starts or stops serving within milliseconds.
 *
 * The NodePort range is reserved in the netns's ip_local_reserved_ports (a
 * per-netns sysctl: the agent runs in the node's netns, so this never
 * touches another namespace), merged with what is there; the ports the
 * agent added are recorded in <state_dir>/reserved-ports, so that a change
 * of range and --uninstall take back only those. */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include "podwire/abi.h"
#include "agent.h"
#include "file.h"
#include "log.h"
#include "netlink.h"

#define RESERVED_PORTS_SYSCTL "/proc/sys/net/ipv4/ip_local_reserved_ports"
#define RESERVED_PORTS_STATE  "reserved-ports"

struct pw_npaddr {
	pthread_t thread;
	int map_fd, watch_fd, stop_fd;
	struct pw_nl *nl;            /* the thread's own rtnetlink socket */
	pthread_mutex_t lock;        /* cidrs: written by the main thread on reload */
	struct pw_cidr cidrs[PW_NODEPORT_CIDRS_MAX];
	int n_cidrs;
};

/* ---- NodePort addresses ---- */

static bool serves_nodeports(const struct pw_cidr *cidrs, int n, uint32_t ip)
{
	if ((ip >> 24) == 127)
		return false;   /* loopback: the socket path serves 127.0.0.1 */
	if (!n)
		return true;
	for (int i = 0; i < n; i++)
		if (pw_cidr_contains(&cidrs[i], ip))
			return true;
	return false;
}

/* Deletes the map's addresses not in want[0..n-1] (collected first: a
 * hash map walk must not delete under its own cursor). */
static int drop_stale(int fd, const struct pw_addr *want, int n)
{
	struct pw_ip4 stale[PW_MAX_NP_ADDRS], key, next, *prev = NULL;
	int n_stale = 0, err = 0;

	while (n_stale < PW_MAX_NP_ADDRS && bpf_map_get_next_key(fd, prev, &next) == 0) {
		uint32_t ip = pw_ip4_from_bytes(next.addr);
		bool keep = false;

		for (int i = 0; i < n && !keep; i++)
			keep = want[i].ip == ip;
		if (!keep)
			stale[n_stale++] = next;
		key = next;
		prev = &key;
	}
	for (int i = 0; i < n_stale; i++) {
		char s[PW_IP4_STRLEN];

		if (bpf_map_delete_elem(fd, &stale[i]) && errno != ENOENT) {
			err = -errno;
			continue;
		}
		pw_ip4_format(pw_ip4_from_bytes(stale[i].addr), s);
		pw_info("nodeport addresses: %s no longer serves NodePorts", s);
	}
	return err;
}

/* pw_np_addrs := the netns's addresses that serve NodePorts. */
static int np_sync(struct pw_npaddr *np)
{
	struct pw_cidr cidrs[PW_NODEPORT_CIDRS_MAX];
	struct pw_addr *all = NULL;
	int n_all = 0, n_cidrs, n_want = 0, err;

	/* One sync at a time (the thread on events, the main thread on a
	 * reload): they share the netlink socket and the map. */
	pthread_mutex_lock(&np->lock);
	n_cidrs = np->n_cidrs;
	memcpy(cidrs, np->cidrs, sizeof(cidrs));
	err = pw_nl_addr_list(np->nl, &all, &n_all);
	if (err) {
		pthread_mutex_unlock(&np->lock);
		return err;
	}
	for (int i = 0; i < n_all; i++) {
		bool dup = false;

		/* An address on two interfaces: the first one is shown. */
		for (int j = 0; j < n_want && !dup; j++)
			dup = all[j].ip == all[i].ip;
		if (!dup && serves_nodeports(cidrs, n_cidrs, all[i].ip))
			all[n_want++] = all[i];
	}
	err = drop_stale(np->map_fd, all, n_want);
	for (int i = 0; i < n_want; i++) {
		struct pw_np_addr v = { .ifindex = (__u32)all[i].ifindex }, old;
		char s[PW_IP4_STRLEN];
		struct pw_ip4 key;

		pw_ip4_to_bytes(all[i].ip, key.addr);
		if (bpf_map_lookup_elem(np->map_fd, &key, &old) == 0 && old.ifindex == v.ifindex)
			continue;
		if (bpf_map_update_elem(np->map_fd, &key, &v, BPF_ANY)) {
			err = -errno;
			continue;
		}
		pw_ip4_format(all[i].ip, s);
		pw_info("nodeport addresses: %s (ifindex %d) serves NodePorts", s, all[i].ifindex);
	}
	pthread_mutex_unlock(&np->lock);
	free(all);
	return err;
}

static void *np_thread(void *arg)
{
	struct pw_npaddr *np = arg;

	for (;;) {
		struct pollfd fds[2] = { { .fd = np->stop_fd, .events = POLLIN },
					 { .fd = np->watch_fd, .events = POLLIN } };
		int err;

		if (poll(fds, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			pw_err("nodeport addresses: poll: %s", strerror(errno));
			return NULL;
		}
		if (fds[0].revents)
			return NULL;
		err = pw_nl_addr_watch_drain(np->watch_fd);
		if (err < 0)
			pw_warn("nodeport addresses: reading address events: %s", strerror(-err));
		if (err != 0 && (err = np_sync(np)))
			pw_warn("nodeport addresses: %s", strerror(-err));
	}
}

static void np_free(struct pw_npaddr *np)
{
	if (np->watch_fd >= 0)
		close(np->watch_fd);
	if (np->stop_fd >= 0)
		close(np->stop_fd);
	if (np->map_fd >= 0)
		close(np->map_fd);
	pw_nl_close(np->nl);
	pthread_mutex_destroy(&np->lock);
	free(np);
}

static int np_start(struct pw_agent *a, const struct pw_cidr *cidrs, int n)
{
	struct pw_npaddr *np;
	int fd = pw_loader_map_fd(a, PW_MAP_NP_ADDRS), err;

	if (fd < 0) {
		static bool said;

		if (!said)
			pw_warn("this datapath has no " PW_MAP_NP_ADDRS " map: NodePorts are not served");
		said = true;
		return 0;
	}
	np = calloc(1, sizeof(*np));
	if (!np)
		return -ENOMEM;
	pthread_mutex_init(&np->lock, NULL);
	memcpy(np->cidrs, cidrs, (size_t)n * sizeof(*cidrs));
	np->n_cidrs = n;
	np->map_fd = dup(fd);
	np->stop_fd = eventfd(0, EFD_CLOEXEC);
	/* Subscribed before the first read: no change falls in between. */
	np->watch_fd = pw_nl_addr_watch_open();
	if (np->map_fd < 0 || np->stop_fd < 0) {
		err = -errno;
		goto fail;
	}
	if (np->watch_fd < 0) {
		err = np->watch_fd;
		goto fail;
	}
	err = pw_nl_open(&np->nl);
	if (err)
		goto fail;
	err = np_sync(np);
	if (err)
		pw_warn("nodeport addresses: %s", strerror(-err));
	err = -pthread_create(&np->thread, NULL, np_thread, np);
	if (err)
		goto fail;
	a->npaddr = np;
	return 0;
fail:
	np_free(np);
	return err;
}

void pw_npaddr_stop(struct pw_agent *a)
{
	struct pw_npaddr *np = a->npaddr;
	uint64_t one = 1;

	if (!np)
		return;
	if (write(np->stop_fd, &one, sizeof(one)) != sizeof(one))
		pw_warn("cannot stop the nodeport address thread cleanly");
	else
		pthread_join(np->thread, NULL);
	np_free(np);
	a->npaddr = NULL;
}

/* ---- reserved ports ---- */

#define PORT_WORDS (65536 / 64)
typedef uint64_t portset[PORT_WORDS];

static void ports_set(uint64_t *s, unsigned lo, unsigned hi, bool on)
{
	for (unsigned p = lo; p <= hi; p++) {
		if (on)
			s[p / 64] |= 1ull << (p % 64);
		else
			s[p / 64] &= ~(1ull << (p % 64));
	}
}

static bool ports_has(const uint64_t *s, unsigned p)
{
	return (s[p / 64] >> (p % 64)) & 1;
}

/* "a-b,c,..." as the sysctl prints and takes it (also our state file). */
static int ports_parse(const char *text, uint64_t *s)
{
	const char *p = text;

	memset(s, 0, sizeof(portset));
	while (*p && *p != '\n') {
		char *end;
		unsigned long lo = strtoul(p, &end, 10), hi = lo;

		if (end == p)
			return -EINVAL;
		if (*end == '-') {
			p = end + 1;
			hi = strtoul(p, &end, 10);
			if (end == p)
				return -EINVAL;
		}
		if (lo > hi || hi > 65535)
			return -EINVAL;
		ports_set(s, (unsigned)lo, (unsigned)hi, true);
		p = end;
		if (*p == ',')
			p++;
	}
	return 0;
}

static void ports_format(const uint64_t *s, char *buf, size_t len)
{
	size_t off = 0;

	buf[0] = '\0';
	for (unsigned p = 0; p < 65536 && off < len; p++) {
		unsigned q = p;

		if (!ports_has(s, p))
			continue;
		while (q + 1 < 65536 && ports_has(s, q + 1))
			q++;
		off += (size_t)snprintf(buf + off, len - off, "%s%u", off ? "," : "", p);
		if (q > p && off < len)
			off += (size_t)snprintf(buf + off, len - off, "-%u", q);
		p = q;
	}
}

static int read_ports(const char *path, uint64_t *s, bool missing_ok)
{
	char buf[65536];
	FILE *f = fopen(path, "re");
	size_t n;

	if (!f) {
		if (missing_ok && errno == ENOENT) {
			memset(s, 0, sizeof(portset));
			return 0;
		}
		return -errno;
	}
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	return ports_parse(buf, s);
}

static int write_sysctl(const char *text)
{
	FILE *f = fopen(RESERVED_PORTS_SYSCTL, "we");
	int err = 0;

	if (!f)
		return -errno;
	/* An empty list would not parse: "\n" clears the sysctl. */
	if (fprintf(f, "%s\n", text) < 0)
		err = -EIO;
	if (fclose(f) && !err)
		err = -errno;
	return err;
}

static void state_path(const struct pw_paths *p, char *buf, size_t len)
{
	snprintf(buf, len, "%s/" RESERVED_PORTS_STATE, p->state_dir);
}

/* The sysctl := (now - (owned - want)) + want; owned := the ports of want
 * the agent added or owned before. */
static int reserve_ports(const struct pw_paths *paths, unsigned lo, unsigned hi)
{
	static portset now, owned, want, next_owned;
	static char text[65536 * 7];
	char path[PW_PATH_MAX + 32];
	int err;

	state_path(paths, path, sizeof(path));
	if ((err = read_ports(RESERVED_PORTS_SYSCTL, now, false)) || (err = read_ports(path, owned, true)))
		return err;
	memset(want, 0, sizeof(want));
	if (hi)
		ports_set(want, lo, hi, true);
	for (int i = 0; i < PORT_WORDS; i++) {
		uint64_t before = now[i];

		next_owned[i] = (owned[i] & want[i]) | (want[i] & ~before);
		now[i] = (before & ~(owned[i] & ~want[i])) | want[i];
	}
	ports_format(now, text, sizeof(text));
	err = write_sysctl(text);
	if (err)
		return err;
	ports_format(next_owned, text, sizeof(text));
	return pw_file_write_atomic(path, text, strlen(text));
}

int pw_reserved_ports_release(const struct pw_paths *paths)
{
	static portset now, owned;
	static char text[65536 * 7];
	char path[PW_PATH_MAX + 32];
	int err;

	state_path(paths, path, sizeof(path));
	if (access(path, F_OK))
		return 0;
	if ((err = read_ports(RESERVED_PORTS_SYSCTL, now, false)) || (err = read_ports(path, owned, true)))
		return err;
	for (int i = 0; i < PORT_WORDS; i++)
		now[i] &= ~owned[i];
	ports_format(now, text, sizeof(text));
	err = write_sysctl(text);
	if (!err)
		unlink(path);
	return err;
}

/* ---- both, from the config and the flags ---- */

int pw_nodeport_sync(struct pw_agent *a, const struct pw_node_config *cfg)
{
	const struct pw_cidr *cidrs = a->np_flags.cidrs_set ? a->np_flags.cidrs : cfg->nodeport_cidrs;
	int n = a->np_flags.cidrs_set ? a->np_flags.n_cidrs : cfg->n_nodeport_cidrs;
	unsigned lo = a->np_flags.range_set ? a->np_flags.range_min : cfg->nodeport_range_min;
	unsigned hi = a->np_flags.range_set ? a->np_flags.range_max : cfg->nodeport_range_max;
	int err, ret = 0;

	if (!a->np_reserved_applied || lo != a->np_reserved_min || hi != a->np_reserved_max) {
		/* Tried once per range: a read-only sysctl is said once, not
		 * at every reload. */
		a->np_reserved_applied = true;
		a->np_reserved_min = (uint16_t)lo;
		a->np_reserved_max = (uint16_t)hi;
		err = reserve_ports(&a->paths, lo, hi);
		if (err) {
			pw_warn("cannot reserve the NodePort range %u-%u in " RESERVED_PORTS_SYSCTL ": %s", lo, hi,
				strerror(-err));
			ret = err;
		} else if (hi) {
			pw_info("nodeport range %u-%u reserved in " RESERVED_PORTS_SYSCTL, lo, hi);
		}
	}
	if (!a->npaddr)
		return (err = np_start(a, cidrs, n)) ? err : ret;
	pthread_mutex_lock(&a->npaddr->lock);
	memcpy(a->npaddr->cidrs, cidrs, (size_t)n * sizeof(*cidrs));
	a->npaddr->n_cidrs = n;
	pthread_mutex_unlock(&a->npaddr->lock);
	err = np_sync(a->npaddr);
	return err ? err : ret;
}
