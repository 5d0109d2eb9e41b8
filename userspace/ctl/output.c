/* Shared output of podwirectl: aligned tables for humans, JSON for scripts,
 * and the formatting of addresses and interfaces both use. */
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include "ctl.h"
#include <bpf/bpf.h>
#include "datapath.h"
#include "inspect.h"
#include "cidr.h"

int ctl_fail(int code, const char *fmt, ...)
{
	va_list ap;

	fputs("podwirectl: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return code;
}

int ctl_usage(const struct ctl_cmd *cmd)
{
	fprintf(stderr, "usage: podwirectl [--instance NAME] [-o json] %s %s\n", cmd->name, cmd->args);
	return CTL_USAGE;
}

int ctl_map_open(const struct ctl *c, const char *name)
{
	int fd = pw_map_open(&c->paths, name);

	if (fd < 0) {
		ctl_fail(CTL_ERROR, "cannot open %s/%s: %s", c->paths.pin_dir, name, strerror(-fd));
		return -1;
	}
	return fd;
}

long ctl_count_map(const struct ctl *c, const char *name)
{
	struct bpf_map_info info;
	__u32 len = sizeof(info);
	int fd = pw_map_open(&c->paths, name);
	long n;

	if (fd < 0)
		return fd;
	memset(&info, 0, sizeof(info));
	if (bpf_map_get_info_by_fd(fd, &info, &len))
		n = -errno;
	else if (info.type == BPF_MAP_TYPE_PERCPU_HASH || info.type == BPF_MAP_TYPE_LRU_PERCPU_HASH)
		n = pw_inspect_count_keys(fd, info.key_size);
	else   /* batch lookups: a 512k-entry conntrack counts in a few ms */
		n = pw_inspect_count_entries(fd, info.key_size, info.value_size);
	close(fd);
	return n;
}

void ctl_fmt_ip(const uint8_t ip[4], char buf[16])
{
	snprintf(buf, 16, "%u.%u.%u.%u", ip[0], ip[1], ip[2], ip[3]);
}

void ctl_fmt_mac(const uint8_t m[6], char buf[18])
{
	snprintf(buf, 18, "%02x:%02x:%02x:%02x:%02x:%02x", m[0], m[1], m[2], m[3], m[4], m[5]);
}

const char *ctl_proto_name(uint8_t proto, char buf[8])
{
	switch (proto) {
	case 1: return "icmp";
	case 6: return "tcp";
	case 17: return "udp";
	}
	snprintf(buf, 8, "%u", proto);
	return buf;
}

static bool ifname_has_mac(const char *name, const uint8_t *mac)
{
	struct ifreq ifr;
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	bool same = false;

	if (fd < 0)
		return true;   /* cannot tell: trust the name */
	memset(&ifr, 0, sizeof(ifr));
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", name);
	if (ioctl(fd, SIOCGIFHWADDR, &ifr) == 0)
		same = memcmp(ifr.ifr_hwaddr.sa_data, mac, 6) == 0;
	close(fd);
	return same;
}

const char *ctl_ifname(unsigned ifindex, const uint8_t *expect_mac, char buf[IF_NAMESIZE])
{
	if (!ifindex || !if_indextoname(ifindex, buf) || (expect_mac && !ifname_has_mac(buf, expect_mac)))
		snprintf(buf, IF_NAMESIZE, "?");
	return buf;
}

/* ---------- tables ---------- */

struct ctl_table {
	int ncols;
	size_t nrows, cap;
	char **cells;        /* row-major, (nrows + 1) * ncols, row 0 = header */
};

static void table_push(struct ctl_table *t, va_list ap)
{
	if (t->nrows + 1 == t->cap) {
		size_t cap = t->cap * 2;
		char **cells = realloc(t->cells, cap * (size_t)t->ncols * sizeof(*cells));

		if (!cells)
			return;   /* out of memory: the row is lost, the table still prints */
		t->cells = cells;
		t->cap = cap;
	}
	for (int i = 0; i < t->ncols; i++) {
		const char *s = va_arg(ap, const char *);

		t->cells[(t->nrows + 1) * (size_t)t->ncols + (size_t)i] = strdup(s ? s : "");
	}
	t->nrows++;
}

struct ctl_table *ctl_table_new(int ncols, ...)
{
	struct ctl_table *t = calloc(1, sizeof(*t));
	va_list ap;

	if (!t)
		return NULL;
	t->ncols = ncols;
	t->cap = 16;
	t->cells = calloc(t->cap * (size_t)ncols, sizeof(*t->cells));
	if (!t->cells) {
		free(t);
		return NULL;
	}
	va_start(ap, ncols);
	for (int i = 0; i < ncols; i++)
		t->cells[i] = strdup(va_arg(ap, const char *));
	va_end(ap);
	return t;
}

void ctl_table_add(struct ctl_table *t, ...)
{
	va_list ap;

	if (!t)
		return;
	va_start(ap, t);
	table_push(t, ap);
	va_end(ap);
}

void ctl_table_print(struct ctl_table *t, FILE *out)
{
	size_t width[16] = { 0 };
	int nc;

	if (!t)
		return;
	nc = t->ncols < 16 ? t->ncols : 16;
	for (size_t r = 0; r <= t->nrows; r++)
		for (int i = 0; i < nc; i++) {
			const char *s = t->cells[r * (size_t)t->ncols + (size_t)i];
			size_t n = s ? strlen(s) : 0;

			if (n > width[i])
				width[i] = n;
		}
	for (size_t r = 0; r <= t->nrows; r++) {
		for (int i = 0; i < nc; i++) {
			const char *s = t->cells[r * (size_t)t->ncols + (size_t)i];

			if (i == nc - 1)
				fprintf(out, "%s\n", s ? s : "");
			else
				fprintf(out, "%-*s  ", (int)width[i], s ? s : "");
		}
	}
	for (size_t k = 0; k < (t->nrows + 1) * (size_t)t->ncols; k++)
		free(t->cells[k]);
	free(t->cells);
	free(t);
}

int ctl_json_print(cJSON *doc)
{
	char *s = doc ? cJSON_Print(doc) : NULL;

	cJSON_Delete(doc);
	if (!s)
		return ctl_fail(CTL_ERROR, "out of memory building the JSON output");
	printf("%s\n", s);
	free(s);
	return CTL_OK;
}

uint64_t ctl_mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

double ctl_age_s(uint64_t last_seen_ns, uint64_t now)
{
	return last_seen_ns >= now ? 0 : (double)(now - last_seen_ns) / 1e9;
}

int ctl_parse_addr_filter(const struct ctl_cmd *cmd, int argc, char **argv, bool *filter, uint8_t addr[4])
{
	*filter = false;
	for (int i = 1; i < argc; i++) {
		const char *v = NULL;
		uint32_t ip;

		if (strcmp(argv[i], "--addr") == 0 && i + 1 < argc)
			v = argv[++i];
		else if (strncmp(argv[i], "--addr=", 7) == 0)
			v = argv[i] + 7;
		else
			return ctl_usage(cmd);
		if (pw_ip4_parse(v, &ip))
			return ctl_fail(CTL_USAGE, "--addr: \"%s\" is not an IPv4 address", v);
		pw_ip4_to_bytes(ip, addr);
		*filter = true;
	}
	return CTL_OK;
}

int ctl_dump_pinned(const struct ctl *c, const char *name, const char *what, size_t ksz, size_t vsz,
		    void **keys, void **vals, size_t *n, uint64_t *now)
{
	int fd = pw_map_open(&c->paths, name), err;

	if (fd == -ENOENT)
		return ctl_fail(CTL_UNSUPPORTED, "this datapath has no %s map (%s/%s)", what, c->paths.pin_dir, name);
	if (fd < 0)
		return ctl_fail(CTL_ERROR, "cannot open %s/%s: %s", c->paths.pin_dir, name, strerror(-fd));
	err = pw_inspect_dump(fd, ksz, vsz, keys, vals, n);
	*now = ctl_mono_ns();
	close(fd);
	if (err)
		return ctl_fail(CTL_ERROR, "cannot read %s: %s", name, strerror(-err));
	return CTL_OK;
}
