/* GET /metrics for Prometheus (see metrics_http.h). Everything is read at
 * scrape time from the pinned maps through userspace/lib/inspect.h, so the
 * numbers are exactly what `podwirectl metrics/status` print, and the HTTP
 * thread shares no state with the agent's loop but one atomic counter. */
#include <errno.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <microhttpd.h>
#include "datapath.h"
#include "inspect.h"
#include "log.h"
#include "metrics_http.h"
#include "nodeinfo.h"

static struct MHD_Daemon *daemon_;
static struct pw_paths paths;
static atomic_ulong reconcile_errors;
static atomic_ulong ct_gc_deleted;

void pw_metrics_reconcile_error(void)
{
	atomic_fetch_add(&reconcile_errors, 1);
}

void pw_metrics_ct_gc_deleted(unsigned long n)
{
	atomic_fetch_add(&ct_gc_deleted, n);
}

/* ---------- exposition ---------- */

static void header(FILE *f, const char *name, const char *type, const char *help)
{
	fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* One outcome slot as <prefix>_packets_total / _bytes_total by direction. */
static void outcome(FILE *f, const struct pw_metric *m, const char *prefix, const char *what)
{
	char name[96], help[160];

	snprintf(name, sizeof(name), "%s_packets_total", prefix);
	snprintf(help, sizeof(help), "Packets %s, by direction (egress = leaving a local pod).", what);
	header(f, name, "counter", help);
	fprintf(f, "%s{direction=\"egress\"} %llu\n", name, (unsigned long long)m->egress.packets);
	fprintf(f, "%s{direction=\"ingress\"} %llu\n", name, (unsigned long long)m->ingress.packets);
	snprintf(name, sizeof(name), "%s_bytes_total", prefix);
	snprintf(help, sizeof(help), "Bytes (frames with their Ethernet header) %s, by direction.", what);
	header(f, name, "counter", help);
	fprintf(f, "%s{direction=\"egress\"} %llu\n", name, (unsigned long long)m->egress.bytes);
	fprintf(f, "%s{direction=\"ingress\"} %llu\n", name, (unsigned long long)m->ingress.bytes);
}

/* Every known reason and direction, zeros included: a series that appears
 * only on the first drop breaks rate() and alerts on "increase > 0". */
static void drops(FILE *f, const struct pw_metric *m)
{
	static const char *const unit[2] = { "packets", "bytes" };

	for (int u = 0; u < 2; u++) {
		char name[48];

		snprintf(name, sizeof(name), "podwire_drop_%s_total", unit[u]);
		header(f, name, "counter", u == 0 ? "Packets dropped by the datapath, by reason and direction."
						  : "Bytes dropped by the datapath, by reason and direction.");
		for (uint32_t slot = 1; slot < PW_DROP_REASON_COUNT; slot++) {
			const char *reason;

			if (pw_metric_slot_info(slot, &reason) != PW_SLOT_DROP)
				continue;
			for (int dir = PW_DIR_EGRESS; dir <= PW_DIR_INGRESS; dir++) {
				const struct pw_counter *c = dir == PW_DIR_INGRESS ? &m[slot].ingress : &m[slot].egress;

				fprintf(f, "%s{reason=\"%s\",direction=\"%s\"} %llu\n", name, reason, pw_dir_name(dir),
					(unsigned long long)(u == 0 ? c->packets : c->bytes));
			}
		}
	}
}

static void counters(FILE *f)
{
	struct pw_metric m[PW_METRIC_MAX];
	int fd = pw_map_open(&paths, PW_MAP_METRICS), err;

	err = fd < 0 ? fd : pw_inspect_metrics(fd, m);
	if (fd >= 0)
		close(fd);
	if (err) {
		fprintf(f, "# podwire: cannot read %s/%s: %s\n", paths.pin_dir, PW_MAP_METRICS, strerror(-err));
		return;
	}
	outcome(f, &m[PW_METRIC_FORWARDED], "podwire_forward", "redirected by the datapath (to a local pod, a peer or the overlay)");
	outcome(f, &m[PW_METRIC_PASSED], "podwire_pass", "handed to the host stack");
	outcome(f, &m[PW_METRIC_ARP_REPLY], "podwire_arp_reply", "that were ARP requests for the gateway, answered in BPF");
	outcome(f, &m[PW_METRIC_MASQUERADED], "podwire_masquerade", "whose source was rewritten to the node IP");
	drops(f, m);
}

static const struct pw_map_fill *find_map(const struct pw_map_fill *maps, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(maps[i].name, name) == 0)
			return &maps[i];
	return NULL;
}

static void gauge_from_map(FILE *f, const struct pw_map_fill *maps, size_t n, const char *metric,
			   const char *map, const char *help)
{
	const struct pw_map_fill *m = find_map(maps, n, map);

	if (!m || m->entries < 0)
		return;   /* not in this datapath */
	header(f, metric, "gauge", help);
	fprintf(f, "%s %ld\n", metric, m->entries);
}

static void map_pressure(FILE *f)
{
	struct pw_map_fill *maps = NULL;
	size_t n = 0;
	int err = pw_inspect_maps(paths.pin_dir, &maps, &n);

	if (err) {
		fprintf(f, "# podwire: cannot list the maps in %s: %s\n", paths.pin_dir, strerror(-err));
		return;
	}
	gauge_from_map(f, maps, n, "podwire_endpoints", PW_MAP_ENDPOINTS, "Pods (endpoints) on this node.");
	gauge_from_map(f, maps, n, "podwire_peers", PW_MAP_PEERS, "Peer nodes' pod CIDRs known to this node.");
	gauge_from_map(f, maps, n, "podwire_services", PW_MAP_REVNAT,
		       "Services installed in the datapath (one per ClusterIP frontend; a NodePort is part of its service).");
	gauge_from_map(f, maps, n, "podwire_service_frontends", PW_MAP_SERVICES,
		       "Service frontends (ClusterIP and NodePort each count one).");
	gauge_from_map(f, maps, n, "podwire_backends", PW_MAP_BACKENDS,
		       "Distinct backend addresses (IP, port) of all services.");
	gauge_from_map(f, maps, n, "podwire_ct_entries", PW_MAP_CT,
		       "Conntrack entries of load-balanced flows (two per flow: forward and reply).");
	header(f, "podwire_map_entries", "gauge",
	       "Entries in each pinned hash/LRU/LPM map (arrays and ring buffers have no such count).");
	for (size_t i = 0; i < n; i++)
		if (maps[i].entries >= 0)
			fprintf(f, "podwire_map_entries{map=\"%s\"} %ld\n", maps[i].name, maps[i].entries);
	header(f, "podwire_map_capacity", "gauge", "max_entries of each pinned map (ring buffer: bytes).");
	for (size_t i = 0; i < n; i++)
		fprintf(f, "podwire_map_capacity{map=\"%s\"} %u\n", maps[i].name, maps[i].max_entries);
	free(maps);
}

static void agent_info(FILE *f)
{
	struct pw_nodeinfo ni;
	char cidr[PW_CIDR_STRLEN];

	header(f, "podwire_agent_reconcile_errors_total", "counter",
	       "Times applying the node config to the maps failed (see the agent's log).");
	fprintf(f, "podwire_agent_reconcile_errors_total %lu\n", atomic_load(&reconcile_errors));
	header(f, "podwire_ct_gc_deleted_total", "counter",
	       "Conntrack entries the agent deleted because their flow expired (idle past its state's timeout).");
	fprintf(f, "podwire_ct_gc_deleted_total %lu\n", atomic_load(&ct_gc_deleted));
	if (pw_nodeinfo_read(paths.node_file, &ni, NULL, 0))
		return;
	pw_cidr_format(&ni.pod_cidr, cidr);
	header(f, "podwire_agent_info", "gauge", "Constant 1, labelled with what this agent runs.");
	fprintf(f, "podwire_agent_info{instance=\"%s\",node=\"%s\",pod_cidr=\"%s\",attach=\"%s\"} 1\n",
		paths.instance, ni.node, cidr, pw_attach_mode_name(ni.attach));
}

/* The whole exposition in a malloc'ed buffer (MHD frees it). */
static char *render(size_t *len)
{
	char *buf = NULL;
	FILE *f = open_memstream(&buf, len);

	if (!f)
		return NULL;
	counters(f);
	map_pressure(f);
	agent_info(f);
	if (fclose(f)) {
		free(buf);
		return NULL;
	}
	return buf;
}

/* ---------- HTTP ---------- */

static enum MHD_Result reply(struct MHD_Connection *conn, unsigned status, const char *type, char *body,
			     size_t len, enum MHD_ResponseMemoryMode mode)
{
	struct MHD_Response *r = MHD_create_response_from_buffer(len, body, mode);
	enum MHD_Result ret;

	if (!r)
		return MHD_NO;
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
	ret = MHD_queue_response(conn, status, r);
	MHD_destroy_response(r);
	return ret;
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
			      const char *version, const char *upload_data, size_t *upload_size, void **req)
{
	static char not_found[] = "not found: the metrics are at /metrics\n";
	static char bad_method[] = "only GET\n";
	static char failed[] = "cannot render the metrics\n";
	char *body;
	size_t len;

	(void)cls;
	(void)version;
	(void)upload_data;
	(void)upload_size;
	(void)req;
	if (strcmp(method, MHD_HTTP_METHOD_GET) && strcmp(method, MHD_HTTP_METHOD_HEAD))
		return reply(conn, MHD_HTTP_METHOD_NOT_ALLOWED, "text/plain", bad_method, strlen(bad_method),
			     MHD_RESPMEM_PERSISTENT);
	if (strcmp(url, "/metrics"))
		return reply(conn, MHD_HTTP_NOT_FOUND, "text/plain", not_found, strlen(not_found),
			     MHD_RESPMEM_PERSISTENT);
	body = render(&len);
	if (!body)
		return reply(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, "text/plain", failed, strlen(failed),
			     MHD_RESPMEM_PERSISTENT);
	return reply(conn, MHD_HTTP_OK, "text/plain; version=0.0.4; charset=utf-8", body, len,
		     MHD_RESPMEM_MUST_FREE);
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
	char msg[512];

	(void)cls;
	vsnprintf(msg, sizeof(msg), fmt, ap);
	msg[strcspn(msg, "\n")] = '\0';
	pw_warn("metrics endpoint: %s", msg);
}

int pw_metrics_http_start(const struct pw_paths *p, int port)
{
	struct sockaddr_in addr;

	if (port <= 0)
		return 0;
	if (daemon_)
		return -EALREADY;
	paths = *p;
	memset(&addr, 0, sizeof(addr));
	addr.sin_family = AF_INET;
	addr.sin_port = htons((uint16_t)port);
	addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);   /* never reachable from outside the node */
	daemon_ = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG, (uint16_t)port, NULL, NULL,
				   handle, NULL,
				   MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL,   /* first, or MHD warns */
				   MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr,
				   MHD_OPTION_CONNECTION_LIMIT, (unsigned)16,
				   MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)10,
				   MHD_OPTION_END);
	if (!daemon_)
		return errno ? -errno : -EADDRINUSE;
	pw_info("serving Prometheus metrics on http://127.0.0.1:%d/metrics", port);
	return 0;
}

void pw_metrics_http_stop(void)
{
	if (daemon_) {
		MHD_stop_daemon(daemon_);
		daemon_ = NULL;
	}
}
