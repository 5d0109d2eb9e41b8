/* podwirectl monitor: live drop (and optionally trace) events from the
 * pw_events ring buffer.
 *
 * Events cost nothing while nobody listens: the datapath checks pw_settings
 * and only then reserves ring-buffer space. So the monitor switches them on
 * for its lifetime and off again when it ends (signal, --count, --timeout).
 *
 * A BPF ring buffer has exactly one consumer position: two readers would
 * steal each other's records. So one monitor per instance holds the event
 * stream, proven by an exclusive flock on <state_dir>/monitor.lock (the
 * kernel drops it when the process dies, however it dies); a second one is
 * refused with the holder's pid. Holding the lock also means that whatever
 * events-on state it finds was left by a monitor that was killed, and that
 * it may switch events off on exit without hurting another listener. */
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <getopt.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include "ctl.h"
#include "datapath.h"
#include "inspect.h"

#define POLL_MS 200
/* The first pw_event layout (through len): what every datapath sends. */
#define PW_EVENT_MIN_SIZE (offsetof(struct pw_event, len) + sizeof(((struct pw_event *)0)->len))

struct monitor {
	const struct ctl *c;
	int ep_ifindex_fd;          /* to check pod veth names; -1 if unavailable */
	unsigned long long start_ns;/* CLOCK_MONOTONIC at start: older records are stale */
	long long mono_to_real_ns;  /* add to a bpf_ktime_get_ns() stamp for wall time */
	long count;                 /* stop after this many events; 0 = no limit */
	long seen;
	bool write_failed;
};

static volatile sig_atomic_t stop_requested;

static void on_signal(int sig)
{
	(void)sig;
	stop_requested = 1;
}

static void install_signals(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;   /* no SA_RESTART: poll returns EINTR at once */
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);    /* a closed pipe shows as a write error: we stop and restore */
}

static long long clock_ns(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* ---------- the event stream lock ---------- */

static void lock_path(const struct ctl *c, char *buf, size_t len)
{
	snprintf(buf, len, "%s/monitor.lock", c->paths.state_dir);
}

static int read_pid(int fd)
{
	char buf[32];
	ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);

	if (n <= 0)
		return 0;
	buf[n] = '\0';
	return atoi(buf);
}

int ctl_monitor_holder(const struct ctl *c)
{
	char path[PW_PATH_MAX + 16];
	int fd, pid;

	lock_path(c, path, sizeof(path));
	if (!pw_inspect_flock_held(path))
		return 0;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	pid = read_pid(fd);
	close(fd);
	return pid > 0 ? pid : -1;
}

static const char *pid_str(int pid, char buf[32])
{
	snprintf(buf, 32, "%d", pid);
	return buf;
}

/* fd holding the lock, or -exit code after printing why. */
static int take_stream(const struct ctl *c)
{
	char path[PW_PATH_MAX + 16], pid[32];
	int fd, err;

	err = pw_mkdirs(c->paths.state_dir, 0755);
	if (err)
		return -ctl_fail(CTL_ERROR, "cannot create %s: %s", c->paths.state_dir, strerror(-err));
	lock_path(c, path, sizeof(path));
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0)
		return -ctl_fail(CTL_ERROR, "cannot open %s: %s", path, strerror(errno));
	if (flock(fd, LOCK_EX | LOCK_NB)) {
		int err = errno, holder = err == EWOULDBLOCK ? read_pid(fd) : 0;

		close(fd);
		errno = err;
		if (err == EWOULDBLOCK)
			return -ctl_fail(CTL_ERROR, "another podwirectl monitor (pid %s) is reading the events of "
					 "instance %s: the ring buffer has a single reader",
					 holder > 0 ? pid_str(holder, pid) : "?", c->paths.instance);
		return -ctl_fail(CTL_ERROR, "cannot lock %s: %s", path, strerror(errno));
	}
	snprintf(pid, sizeof(pid), "%d\n", (int)getpid());
	if (ftruncate(fd, 0) || pwrite(fd, pid, strlen(pid), 0) < 0)
		fprintf(stderr, "podwirectl: warning: cannot record the pid in %s\n", path);
	return fd;
}

/* ---------- printing ---------- */

static const char *point_name(uint8_t point)
{
	switch (point) {
	case PW_TRACE_TO_POD: return "to-pod";
	case PW_TRACE_TO_STACK: return "to-stack";
	case PW_TRACE_TO_PEER: return "to-peer";
	case PW_TRACE_TO_TUNNEL: return "to-tunnel";
	case PW_TRACE_ARP_REPLY: return "arp-reply";
	case PW_TRACE_MASQUERADE: return "masquerade";
	}
	return "unknown";
}

/* Pod veths are checked against the endpoint's host MAC, so a name from the
 * wrong namespace is never printed as if it were right. */
static const char *event_ifname(const struct monitor *m, uint32_t ifindex, char buf[IF_NAMESIZE])
{
	struct pw_endpoint ep;

	if (m->ep_ifindex_fd >= 0 && bpf_map_lookup_elem(m->ep_ifindex_fd, &ifindex, &ep) == 0)
		return ctl_ifname(ifindex, ep.host_mac, buf);
	return ctl_ifname(ifindex, NULL, buf);
}

static void fmt_time(const struct monitor *m, uint64_t ts_ns, bool iso, char *buf, size_t len)
{
	long long real = (long long)ts_ns + m->mono_to_real_ns;
	time_t sec = (time_t)(real / 1000000000LL);
	struct tm tm;
	char base[32];

	if (iso) {
		gmtime_r(&sec, &tm);
		strftime(base, sizeof(base), "%Y-%m-%dT%H:%M:%S", &tm);
		snprintf(buf, len, "%s.%06lldZ", base, (real % 1000000000LL) / 1000);
	} else {
		localtime_r(&sec, &tm);
		strftime(base, sizeof(base), "%H:%M:%S", &tm);
		snprintf(buf, len, "%s.%06lld", base, (real % 1000000000LL) / 1000);
	}
}

static bool ip_zero(const uint8_t ip[4])
{
	return !(ip[0] | ip[1] | ip[2] | ip[3]);
}

/* " via NEXTHOP", " nat ADDR:PORT" for traces that carry them. */
static void fmt_extra(const struct pw_event *ev, char *buf, size_t len)
{
	char a[16], b[16];

	buf[0] = '\0';
	ctl_fmt_ip(ev->nexthop, a);
	ctl_fmt_ip(ev->nat_addr, b);
	snprintf(buf, len, "%s%s%s%s", ip_zero(ev->nexthop) ? "" : " via ", ip_zero(ev->nexthop) ? "" : a,
		 ip_zero(ev->nat_addr) ? "" : " nat ", ip_zero(ev->nat_addr) ? "" : b);
	if (!ip_zero(ev->nat_addr) && ev->nat_port)
		snprintf(buf + strlen(buf), len - strlen(buf), ":%u", ev->nat_port);
}

static void fmt_endpoint(const uint8_t ip[4], uint16_t port, bool with_port, char *buf, size_t len)
{
	char a[16];

	ctl_fmt_ip(ip, a);
	if (with_port)
		snprintf(buf, len, "%s:%u", a, port);
	else
		snprintf(buf, len, "%s", a);
}

static int print_json(const struct monitor *m, const struct pw_event *ev)
{
	char t[48], ip[16], ifn[IF_NAMESIZE], pbuf[8];
	cJSON *o = cJSON_CreateObject();
	char *s;
	int ret;

	fmt_time(m, ev->ts_ns, true, t, sizeof(t));
	cJSON_AddStringToObject(o, "time", t);
	cJSON_AddNumberToObject(o, "tsNs", (double)ev->ts_ns);
	if (ev->type == PW_EVENT_DROP) {
		cJSON_AddStringToObject(o, "type", "drop");
		cJSON_AddStringToObject(o, "reason", pw_drop_reason_name(ev->reason));
		cJSON_AddNumberToObject(o, "code", ev->reason);
		cJSON_AddStringToObject(o, "reasonText", pw_drop_reason_text(ev->reason));
		if (ev->reason == PW_DROP_POLICY) {
			char pol[320];

			cJSON_AddNumberToObject(o, "policyId", ev->policy_id);
			cJSON_AddStringToObject(o, "policy", ctl_policy_name(m->c, ev->policy_id, pol, sizeof(pol)));
		}
	} else {
		cJSON_AddStringToObject(o, "type", "trace");
		cJSON_AddStringToObject(o, "point", point_name(ev->point));
		cJSON_AddNumberToObject(o, "targetIfindex", ev->target_ifindex);
		cJSON_AddStringToObject(o, "targetIfname",
					ev->target_ifindex ? event_ifname(m, ev->target_ifindex, ifn) : "");
	}
	cJSON_AddStringToObject(o, "direction", pw_dir_name(ev->dir));
	cJSON_AddNumberToObject(o, "ifindex", ev->ifindex);
	cJSON_AddStringToObject(o, "ifname", event_ifname(m, ev->ifindex, ifn));
	cJSON_AddNumberToObject(o, "proto", ev->proto);
	cJSON_AddStringToObject(o, "protoName", ev->proto ? ctl_proto_name(ev->proto, pbuf) : "");
	ctl_fmt_ip(ev->saddr, ip);
	cJSON_AddStringToObject(o, "saddr", ip);
	ctl_fmt_ip(ev->daddr, ip);
	cJSON_AddStringToObject(o, "daddr", ip);
	cJSON_AddNumberToObject(o, "sport", ev->sport);
	cJSON_AddNumberToObject(o, "dport", ev->dport);
	cJSON_AddNumberToObject(o, "len", ev->len);
	if (!ip_zero(ev->nexthop)) {
		ctl_fmt_ip(ev->nexthop, ip);
		cJSON_AddStringToObject(o, "nexthop", ip);
	}
	if (!ip_zero(ev->nat_addr)) {
		ctl_fmt_ip(ev->nat_addr, ip);
		cJSON_AddStringToObject(o, "natAddr", ip);
		cJSON_AddNumberToObject(o, "natPort", ev->nat_port);
	}
	s = cJSON_PrintUnformatted(o);
	cJSON_Delete(o);
	if (!s)
		return -ENOMEM;
	ret = printf("%s\n", s);
	free(s);
	return ret < 0 ? -EIO : 0;
}

static int print_text(const struct monitor *m, const struct pw_event *ev)
{
	char t[32], src[24], dst[24], ifn[IF_NAMESIZE], tifn[IF_NAMESIZE], pbuf[8], where[64];
	bool ports = ev->proto == 6 || ev->proto == 17;
	const char *proto = ev->proto ? ctl_proto_name(ev->proto, pbuf) : "-";
	int ret;

	fmt_time(m, ev->ts_ns, false, t, sizeof(t));
	fmt_endpoint(ev->saddr, ev->sport, ports, src, sizeof(src));
	fmt_endpoint(ev->daddr, ev->dport, ports, dst, sizeof(dst));
	if (!ev->proto && ip_zero(ev->saddr) && ip_zero(ev->daddr)) {
		src[0] = '\0';   /* ARP, IPv6, ...: nothing parsed to show */
		snprintf(dst, sizeof(dst), "(not IPv4)");
	}
	event_ifname(m, ev->ifindex, ifn);
	if (ev->type == PW_EVENT_DROP) {
		char pol[340] = "";

		snprintf(where, sizeof(where), "%s(%u)", ifn, ev->ifindex);
		if (ev->reason == PW_DROP_POLICY) {
			char name[320];

			snprintf(pol, sizeof(pol), " (policy %s)", ctl_policy_name(m->c, ev->policy_id, name, sizeof(name)));
		}
		ret = printf("%s DROP  %-18s %-7s %-18s %s %s%s%s len %u: %s%s\n", t,
			     pw_drop_reason_name(ev->reason), pw_dir_name(ev->dir), where, proto, src,
			     src[0] ? " -> " : "", dst, ev->len, pw_drop_reason_text(ev->reason), pol);
	} else {
		if (ev->target_ifindex)
			snprintf(where, sizeof(where), "%s(%u) -> %s(%u)", ifn, ev->ifindex,
				 event_ifname(m, ev->target_ifindex, tifn), ev->target_ifindex);
		else
			snprintf(where, sizeof(where), "%s(%u)", ifn, ev->ifindex);
		char extra[64];

		fmt_extra(ev, extra, sizeof(extra));
		ret = printf("%s TRACE %-18s %-7s %-18s %s %s%s%s len %u%s\n", t, point_name(ev->point),
			     pw_dir_name(ev->dir), where, proto, src, src[0] ? " -> " : "", dst, ev->len, extra);
	}
	return ret < 0 ? -EIO : 0;
}

static int on_event(void *ctx, void *data, size_t size)
{
	struct monitor *m = ctx;
	struct pw_event ev;
	int err;

	/* Records only grow at the end: a datapath loaded by an older agent
	 * sends shorter ones, whose missing fields read as zero. */
	if (size < PW_EVENT_MIN_SIZE)
		return 0;   /* not a pw_event */
	memset(&ev, 0, sizeof(ev));
	memcpy(&ev, data, size < sizeof(ev) ? size : sizeof(ev));
	if (ev.ts_ns < m->start_ns)
		return 0;   /* left in the ring by an earlier monitor */
	err = m->c->json ? print_json(m, &ev) : print_text(m, &ev);
	if (err || fflush(stdout)) {
		m->write_failed = true;
		return -EIO;
	}
	m->seen++;
	/* A negative return makes libbpf stop after consuming this record. */
	return m->count && m->seen >= m->count ? -ECANCELED : 0;
}

/* ---------- the command ---------- */

struct options {
	bool trace;
	uint8_t addr[4];
	uint32_t sample;
	long count;
	double timeout;     /* seconds; 0 = none */
};

static int parse_options(int argc, char **argv, struct options *o)
{
	static const struct option longopts[] = {
		{ "trace", no_argument, NULL, 't' },
		{ "addr", required_argument, NULL, 'a' },
		{ "sample", required_argument, NULL, 's' },
		{ "count", required_argument, NULL, 'c' },
		{ "timeout", required_argument, NULL, 'T' },
		{ NULL, 0, NULL, 0 },
	};
	struct in_addr in;
	char *end;
	int opt;

	memset(o, 0, sizeof(*o));
	optind = 1;
	while ((opt = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (opt) {
		case 't': o->trace = true; break;
		case 'a':
			if (inet_pton(AF_INET, optarg, &in) != 1)
				return ctl_fail(CTL_USAGE, "--addr: \"%s\" is not an IPv4 address", optarg);
			memcpy(o->addr, &in, 4);
			break;
		case 's': {
			unsigned long v = strtoul(optarg, &end, 10);

			if (*end || !*optarg || v > UINT32_MAX)
				return ctl_fail(CTL_USAGE, "--sample: \"%s\" is not a number", optarg);
			o->sample = (uint32_t)v;
			break;
		}
		case 'c':
			o->count = strtol(optarg, &end, 10);
			if (*end || !*optarg || o->count < 0)
				return ctl_fail(CTL_USAGE, "--count: \"%s\" is not a number >= 0", optarg);
			break;
		case 'T':
			o->timeout = strtod(optarg, &end);
			if (*end || !*optarg || o->timeout < 0)
				return ctl_fail(CTL_USAGE, "--timeout: \"%s\" is not a number of seconds", optarg);
			break;
		default:
			return ctl_usage(&ctl_cmd_monitor);
		}
	}
	if (optind < argc)
		return ctl_usage(&ctl_cmd_monitor);
	if (!o->trace && (o->addr[0] || o->addr[1] || o->addr[2] || o->addr[3] || o->sample))
		fprintf(stderr, "podwirectl: note: --addr and --sample filter trace events: they take effect "
				"with --trace (drops are always all reported)\n");
	return CTL_OK;
}

static int settings_write(int fd, const struct pw_settings *s)
{
	__u32 zero = 0;

	return bpf_map_update_elem(fd, &zero, s, BPF_ANY) ? -errno : 0;
}

static void announce(const struct ctl *c, const struct options *o)
{
	char addr[16];

	ctl_fmt_ip(o->addr, addr);
	fprintf(stderr, "podwirectl: monitoring instance %s: drops%s%s%s", c->paths.instance,
		o->trace ? ", traces" : "", o->trace && strcmp(addr, "0.0.0.0") ? " for " : "",
		o->trace && strcmp(addr, "0.0.0.0") ? addr : "");
	if (o->trace && o->sample > 1)
		fprintf(stderr, " (1 in %u)", o->sample);
	fprintf(stderr, "; Ctrl-C to stop\n");
}

static int monitor_loop(struct ring_buffer *rb, struct monitor *m, double timeout)
{
	long long deadline = timeout > 0 ? clock_ns(CLOCK_MONOTONIC) + (long long)(timeout * 1e9) : 0;

	while (!stop_requested) {
		int wait = POLL_MS, err;

		if (deadline) {
			long long left = (deadline - clock_ns(CLOCK_MONOTONIC)) / 1000000;

			if (left <= 0)
				break;
			if (left < wait)
				wait = (int)left;
		}
		err = ring_buffer__poll(rb, wait);
		if (err == -ECANCELED)
			break;                    /* --count reached */
		if (m->write_failed)
			return CTL_ERROR;
		if (err < 0 && err != -EINTR)
			return ctl_fail(CTL_ERROR, "reading " PW_MAP_EVENTS ": %s", strerror(-err));
	}
	return CTL_OK;
}

static int run_monitor(struct ctl *c, int argc, char **argv)
{
	struct monitor m = { .c = c, .ep_ifindex_fd = -1 };
	struct pw_settings prev, want;
	struct ring_buffer *rb = NULL;
	struct options o;
	int lock_fd, settings_fd = -1, events_fd = -1, ret, err;
	__u32 zero = 0;

	ret = parse_options(argc, argv, &o);
	if (ret)
		return ret;
	lock_fd = take_stream(c);
	if (lock_fd < 0)
		return -lock_fd;
	ret = CTL_ERROR;
	settings_fd = ctl_map_open(c, PW_MAP_SETTINGS);
	events_fd = ctl_map_open(c, PW_MAP_EVENTS);
	if (settings_fd < 0 || events_fd < 0)
		goto out;
	m.ep_ifindex_fd = pw_map_open(&c->paths, PW_MAP_EP_BY_IFIDX);
	if (bpf_map_lookup_elem(settings_fd, &zero, &prev)) {
		ctl_fail(CTL_ERROR, "cannot read " PW_MAP_SETTINGS ": %s", strerror(errno));
		goto out;
	}
	if (prev.drop_events || prev.trace_events)
		fprintf(stderr, "podwirectl: note: events were on with no monitor running (one was killed?); "
				"they go off when this monitor ends\n");
	m.count = o.count;
	m.start_ns = (unsigned long long)clock_ns(CLOCK_MONOTONIC);
	m.mono_to_real_ns = clock_ns(CLOCK_REALTIME) - clock_ns(CLOCK_MONOTONIC);
	rb = ring_buffer__new(events_fd, on_event, &m, NULL);
	if (!rb) {
		ctl_fail(CTL_ERROR, "cannot map " PW_MAP_EVENTS ": %s", strerror(errno));
		goto out;
	}

	install_signals();
	memset(&want, 0, sizeof(want));
	want.drop_events = 1;
	want.trace_events = o.trace;
	memcpy(want.trace_addr, o.addr, 4);
	want.trace_sample = o.sample;
	err = settings_write(settings_fd, &want);
	if (err) {
		ctl_fail(CTL_ERROR, "cannot switch events on in " PW_MAP_SETTINGS ": %s", strerror(-err));
		goto out;
	}
	announce(c, &o);
	ret = monitor_loop(rb, &m, o.timeout);

	/* Off again: with the lock held nobody else reads, so nobody loses
	 * events; the rest of what we found (filters) is put back. */
	prev.drop_events = 0;
	prev.trace_events = 0;
	err = settings_write(settings_fd, &prev);
	if (err) {
		ctl_fail(CTL_ERROR, "cannot switch events off in " PW_MAP_SETTINGS " (%s): the datapath keeps "
			 "emitting them until a monitor exits cleanly", strerror(-err));
		ret = CTL_ERROR;
	}
	fprintf(stderr, "podwirectl: %ld event(s); events switched off\n", m.seen);
out:
	ring_buffer__free(rb);
	if (m.ep_ifindex_fd >= 0)
		close(m.ep_ifindex_fd);
	if (settings_fd >= 0)
		close(settings_fd);
	if (events_fd >= 0)
		close(events_fd);
	close(lock_fd);
	return ret;
}

const struct ctl_cmd ctl_cmd_monitor = {
	.name = "monitor",
	.args = "[--trace] [--addr IP] [--sample N] [--count N] [--timeout S]",
	.summary = "live drop (and trace) events",
	.run = run_monitor,
};
