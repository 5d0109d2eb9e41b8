/* Kubernetes service benchmarks (issue 10), driven by test/bench/k8s.sh:
 * writes go through the API server, the result is read from the datapath
 * maps a node's podwired pinned (run it in the node's mount namespace, where
 * <pin-dir> is that node's bpffs, and with the API server reachable).
 *
 *   k8s_svc latency API PIN_DIR NS COUNT
 *     creates a selector-less Service and an EndpointSlice of its own
 *     (endpointslice.kubernetes.io/managed-by is not the controller's, so
 *     nothing else writes it), then COUNT times: PATCHes the slice's port to
 *     a new value and polls the node's maps (pw_services -> pw_svc_slots ->
 *     pw_backends, every 20 us) until the service's backend has that port.
 *     Prints per change the ms from sending the PATCH and from its answer
 *     (the API server has stored it) to the datapath, then the percentiles.
 *   k8s_svc bulk API PIN_DIR NS SERVICES ENDPOINTS THREADS
 *     creates SERVICES selector-less Services, each with an EndpointSlice of
 *     ENDPOINTS ready endpoints, over THREADS keep-alive connections; once
 *     the API has answered the last one, polls pw_services until every
 *     created ClusterIP is there with ENDPOINTS backends. Prints the create
 *     time and the time from the last answer to the complete datapath.
 *
 * API is "SERVER,CA,CERT,KEY" (URL and PEM files: the admin's). PIN_DIR
 * "iptables" reads kube-proxy's rules instead (iptables-save -t nat in the
 * caller's network namespace, the bridge baseline's node). */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <bpf/bpf.h>
#include <cjson/cJSON.h>
#include <curl/curl.h>
#include "podwire/abi.h"

#define SVC_PORT 80
#define POLL_NS 20000L
#define CHANGE_TIMEOUT_MS 10000.0
#define BULK_TIMEOUT_MS 120000.0

struct api {
	char *server, *ca, *cert, *key;
};

struct conn {
	CURL *curl;
	struct curl_slist *headers;
	char *body;
	size_t len;
};

/* Where the result is read: a podwire node's pinned maps, or (the
 * kube-proxy baseline) the node's iptables nat table as iptables-save
 * prints it. */
struct maps {
	bool iptables;
	int services, slots, backends;
};

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int parse_api(char *arg, struct api *a)
{
	a->server = strtok(arg, ",");
	a->ca = strtok(NULL, ",");
	a->cert = strtok(NULL, ",");
	a->key = strtok(NULL, ",");
	if (!a->key) {
		fprintf(stderr, "API must be SERVER,CA,CERT,KEY\n");
		return -EINVAL;
	}
	return 0;
}

static size_t collect(char *p, size_t size, size_t n, void *ud)
{
	struct conn *c = ud;
	char *nb = realloc(c->body, c->len + size * n + 1);

	if (!nb)
		return 0;
	memcpy(nb + c->len, p, size * n);
	c->body = nb;
	c->len += size * n;
	c->body[c->len] = '\0';
	return size * n;
}

static int conn_open(struct conn *c, const struct api *a)
{
	memset(c, 0, sizeof(*c));
	c->curl = curl_easy_init();
	if (!c->curl)
		return -ENOMEM;
	curl_easy_setopt(c->curl, CURLOPT_CAINFO, a->ca);
	curl_easy_setopt(c->curl, CURLOPT_SSLCERT, a->cert);
	curl_easy_setopt(c->curl, CURLOPT_SSLKEY, a->key);
	curl_easy_setopt(c->curl, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c->curl, CURLOPT_TIMEOUT, 30L);
	curl_easy_setopt(c->curl, CURLOPT_TCP_NODELAY, 1L);
	curl_easy_setopt(c->curl, CURLOPT_WRITEFUNCTION, collect);
	curl_easy_setopt(c->curl, CURLOPT_WRITEDATA, c);
	return 0;
}

static void conn_close(struct conn *c)
{
	curl_slist_free_all(c->headers);
	if (c->curl)
		curl_easy_cleanup(c->curl);
	free(c->body);
}

/* One request on the connection's (kept-alive) handle; the answer's body
 * is in c->body. 0 on a 2xx answer. */
static int request(struct conn *c, const struct api *a, const char *method, const char *path,
		   const char *ctype, const char *body)
{
	char url[512], hdr[128];
	long status = 0;
	CURLcode cc;

	snprintf(url, sizeof(url), "%s%s", a->server, path);
	snprintf(hdr, sizeof(hdr), "Content-Type: %s", ctype);
	curl_slist_free_all(c->headers);
	c->headers = curl_slist_append(NULL, hdr);
	c->len = 0;
	if (c->body)
		c->body[0] = '\0';
	curl_easy_setopt(c->curl, CURLOPT_URL, url);
	curl_easy_setopt(c->curl, CURLOPT_HTTPHEADER, c->headers);
	curl_easy_setopt(c->curl, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(c->curl, CURLOPT_POSTFIELDS, body);
	cc = curl_easy_perform(c->curl);
	if (cc == CURLE_OK)
		curl_easy_getinfo(c->curl, CURLINFO_RESPONSE_CODE, &status);
	if (cc != CURLE_OK || status < 200 || status > 299) {
		fprintf(stderr, "%s %s: %s\n", method, path,
			cc != CURLE_OK ? curl_easy_strerror(cc) : (c->body ? c->body : "(no body)"));
		return -EIO;
	}
	return 0;
}

/* POSTs a selector-less Service; *vip its ClusterIP (host order). */
static int create_service(struct conn *c, const struct api *a, const char *ns, const char *name,
			  uint32_t *vip)
{
	char path[256], body[512];
	cJSON *o;
	const cJSON *ip;
	struct in_addr in;
	int r;

	snprintf(path, sizeof(path), "/api/v1/namespaces/%s/services", ns);
	snprintf(body, sizeof(body),
		 "{\"apiVersion\":\"v1\",\"kind\":\"Service\",\"metadata\":{\"name\":\"%s\"},"
		 "\"spec\":{\"ports\":[{\"port\":%d,\"protocol\":\"TCP\"}]}}", name, SVC_PORT);
	r = request(c, a, "POST", path, "application/json", body);
	if (r)
		return r;
	o = cJSON_Parse(c->body);
	ip = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(o, "spec"), "clusterIP");
	r = cJSON_IsString(ip) && inet_pton(AF_INET, ip->valuestring, &in) == 1 ? 0 : -EBADMSG;
	if (r)
		fprintf(stderr, "service %s: no IPv4 clusterIP in the answer\n", name);
	else
		*vip = ntohl(in.s_addr);
	cJSON_Delete(o);
	return r;
}

/* Endpoint j's address: 10.244.128.0/17, inside the cluster CIDR but past
 * any node's Pod CIDR (nodes get 10.244.N.0/24 from the bottom). */
static void endpoint_addr(int j, char *buf, size_t len)
{
	snprintf(buf, len, "10.244.%d.%d", 128 + j / 250, 1 + j % 250);
}

/* POSTs service NAME's EndpointSlice: eps ready endpoints from first_ep on, port. */
static int create_slice(struct conn *c, const struct api *a, const char *ns, const char *name,
			int first_ep, int eps, int port)
{
	char path[256], addr[32], *body;
	size_t len = 512 + (size_t)eps * 96, n;
	int r;

	body = malloc(len);
	if (!body)
		return -ENOMEM;
	n = (size_t)snprintf(body, len,
		"{\"apiVersion\":\"discovery.k8s.io/v1\",\"kind\":\"EndpointSlice\","
		"\"metadata\":{\"name\":\"%s-1\",\"labels\":{\"kubernetes.io/service-name\":\"%s\","
		"\"endpointslice.kubernetes.io/managed-by\":\"bench.podwire.io\"}},"
		"\"addressType\":\"IPv4\",\"ports\":[{\"port\":%d,\"protocol\":\"TCP\"}],\"endpoints\":[",
		name, name, port);
	for (int k = 0; k < eps; k++) {
		endpoint_addr(first_ep + k, addr, sizeof(addr));
		n += (size_t)snprintf(body + n, len - n, "%s{\"addresses\":[\"%s\"],\"conditions\":{\"ready\":true}}",
				      k ? "," : "", addr);
	}
	snprintf(body + n, len - n, "]}");
	snprintf(path, sizeof(path), "/apis/discovery.k8s.io/v1/namespaces/%s/endpointslices", ns);
	r = request(c, a, "POST", path, "application/json", body);
	free(body);
	return r;
}

static int maps_open(const char *pin_dir, struct maps *m)
{
	char p[512];

	memset(m, 0, sizeof(*m));
	if (!strcmp(pin_dir, "iptables")) {
		m->iptables = true;
		return 0;
	}
	snprintf(p, sizeof(p), "%s/%s", pin_dir, PW_MAP_SERVICES);
	m->services = bpf_obj_get(p);
	snprintf(p, sizeof(p), "%s/%s", pin_dir, PW_MAP_SLOTS);
	m->slots = bpf_obj_get(p);
	snprintf(p, sizeof(p), "%s/%s", pin_dir, PW_MAP_BACKENDS);
	m->backends = bpf_obj_get(p);
	if (m->services < 0 || m->slots < 0 || m->backends < 0) {
		fprintf(stderr, "cannot open the maps pinned in %s: %s\n", pin_dir, strerror(errno));
		return -ENOENT;
	}
	return 0;
}

/* Runs iptables-save -t nat; each line goes to fn, which returns true to stop. */
static int nat_rules(bool (*fn)(const char *line, void *ctx), void *ctx)
{
	FILE *f = popen("iptables-save -t nat", "r");
	char *line = NULL;
	size_t cap = 0;

	if (!f)
		return -errno;
	while (getline(&line, &cap, f) > 0)
		if (fn(line, ctx))
			break;
	free(line);
	return pclose(f) == -1 ? -errno : 0;
}

struct dnat_find {
	const char *needle;
	bool found;
};

static bool dnat_find_line(const char *line, void *ctx)
{
	struct dnat_find *d = ctx;

	d->found = strstr(line, d->needle) != NULL;
	return d->found;
}

/* True when the service's endpoint of the latency test (endpoint 0) has
 * port: podwire's maps or kube-proxy's DNAT rule. */
static bool has_port(const struct maps *m, uint32_t vip, int port);

/* The port of slot 0's backend of ClusterIP vip:SVC_PORT/TCP, -1 when none. */
static int backend_port(const struct maps *m, uint32_t vip)
{
	struct pw_svc_key k = { .port = SVC_PORT, .proto = IPPROTO_TCP, .scope = PW_SVC_CLUSTERIP };
	uint32_t nvip = htonl(vip), bid;
	struct pw_slot_key sk = { 0 };
	struct pw_svc s;
	struct pw_backend b;

	memcpy(k.addr, &nvip, 4);
	if (bpf_map_lookup_elem(m->services, &k, &s) || !s.backends)
		return -1;
	sk.svc_id = s.id;
	if (bpf_map_lookup_elem(m->slots, &sk, &bid) || bpf_map_lookup_elem(m->backends, &bid, &b))
		return -1;
	return b.port;
}

static bool has_port(const struct maps *m, uint32_t vip, int port)
{
	char needle[96], addr[32];
	struct dnat_find d = { .needle = needle };

	if (!m->iptables)
		return backend_port(m, vip) == port;
	endpoint_addr(0, addr, sizeof(addr));
	snprintf(needle, sizeof(needle), "-j DNAT --to-destination %s:%d\n", addr, port);
	return !nat_rules(dnat_find_line, &d) && d.found;
}

static bool wait_port(const struct maps *m, uint32_t vip, int port, double deadline)
{
	struct timespec nap = { 0, POLL_NS };

	while (!has_port(m, vip, port)) {
		if (now_ms() > deadline)
			return false;
		nanosleep(&nap, NULL);
	}
	return true;
}

static int dbl_cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static double pct(const double *sorted, int n, double p)
{
	int i = (int)(p / 100.0 * n + 0.999999) - 1;

	return sorted[i < 0 ? 0 : i >= n ? n - 1 : i];
}

static void print_dist(const char *what, double *v, int n)
{
	qsort(v, (size_t)n, sizeof(*v), dbl_cmp);
	printf("%s n=%d p50=%.2f p90=%.2f p99=%.2f max=%.2f\n", what, n,
	       pct(v, n, 50), pct(v, n, 90), pct(v, n, 99), v[n - 1]);
}

static int cmd_latency(const struct api *a, const char *pin_dir, const char *ns, int count)
{
	struct conn c;
	struct maps m;
	double *from_send = calloc((size_t)count, sizeof(double));
	double *from_answer = calloc((size_t)count, sizeof(double));
	char path[256], body[256];
	uint32_t vip = 0;
	int r, done = 0;

	if (!from_send || !from_answer || maps_open(pin_dir, &m) || conn_open(&c, a)) {
		free(from_send);
		free(from_answer);
		return 1;
	}
	r = create_service(&c, a, ns, "lat", &vip);
	if (!r)
		r = create_slice(&c, a, ns, "lat", 0, 1, 10000);
	if (!r && !wait_port(&m, vip, 10000, now_ms() + CHANGE_TIMEOUT_MS)) {
		fprintf(stderr, "service lat never reached the datapath\n");
		r = -ETIMEDOUT;
	}
	snprintf(path, sizeof(path), "/apis/discovery.k8s.io/v1/namespaces/%s/endpointslices/lat-1", ns);
	for (int i = 0; !r && i < count; i++) {
		int port = 10001 + i;
		double t0, t1, t2;

		snprintf(body, sizeof(body), "{\"ports\":[{\"port\":%d,\"protocol\":\"TCP\"}]}", port);
		t0 = now_ms();
		r = request(&c, a, "PATCH", path, "application/merge-patch+json", body);
		t1 = now_ms();
		if (r)
			break;
		if (!wait_port(&m, vip, port, t1 + CHANGE_TIMEOUT_MS)) {
			fprintf(stderr, "change %d (port %d) not in the datapath after %.0f ms\n",
				i, port, CHANGE_TIMEOUT_MS);
			r = -ETIMEDOUT;
			break;
		}
		t2 = now_ms();
		from_send[i] = t2 - t0;
		from_answer[i] = t2 - t1;
		done++;
	}
	if (done) {
		print_dist("from_patch_sent_ms", from_send, done);
		print_dist("from_api_answer_ms", from_answer, done);
	}
	conn_close(&c);
	free(from_send);
	free(from_answer);
	return r || done != count;
}

/* ---- bulk ---- */

struct bulk {
	const struct api *a;
	const char *ns;
	int services, eps, threads;
	uint32_t *vips;           /* per service, host order */
	int failed;
	pthread_mutex_t lock;
};

struct worker {
	struct bulk *b;
	int idx;
};

static void *bulk_worker(void *arg)
{
	struct worker *w = arg;
	struct bulk *b = w->b;
	struct conn c;
	char name[32];
	int r = conn_open(&c, b->a);

	for (int i = w->idx; !r && i < b->services; i += b->threads) {
		snprintf(name, sizeof(name), "s%d", i);
		r = create_service(&c, b->a, b->ns, name, &b->vips[i]);
		if (!r)
			r = create_slice(&c, b->a, b->ns, name, i * b->eps, b->eps, 8080);
	}
	if (r) {
		pthread_mutex_lock(&b->lock);
		b->failed++;
		pthread_mutex_unlock(&b->lock);
	}
	conn_close(&c);
	return NULL;
}

static int u32_cmp(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return (x > y) - (x < y);
}

static bool count_bulk_dnat(const char *line, void *ctx)
{
	/* The bulk services' endpoints: 10.244.128.0/17 port 8080. */
	unsigned a, b;
	const char *p = strstr(line, "-j DNAT --to-destination 10.244.");

	if (p && sscanf(p, "-j DNAT --to-destination 10.244.%u.%u:8080", &a, &b) == 2 && a >= 128)
		(*(int *)ctx)++;
	return false;
}

/* How many of the sorted vips are ClusterIP frontends with eps backends
 * (kube-proxy: how many endpoints have their DNAT rule, divided by eps; it
 * writes a service's chains in one iptables-restore). */
static int count_complete(const struct maps *m, const uint32_t *vips, int n, int eps)
{
	struct pw_svc_key k, next;
	struct pw_svc s;
	int found = 0;
	void *prev = NULL;

	if (m->iptables) {
		if (nat_rules(count_bulk_dnat, &found))
			return 0;
		return found / eps;
	}

	while (!bpf_map_get_next_key(m->services, prev, &next)) {
		uint32_t vip;

		k = next;
		prev = &k;
		memcpy(&vip, k.addr, 4);
		vip = ntohl(vip);
		if (k.scope != PW_SVC_CLUSTERIP || k.port != SVC_PORT ||
		    !bsearch(&vip, vips, (size_t)n, sizeof(*vips), u32_cmp))
			continue;
		if (!bpf_map_lookup_elem(m->services, &k, &s) && s.backends == eps)
			found++;
	}
	return found;
}

static int cmd_bulk(const struct api *a, const char *pin_dir, const char *ns, int services, int eps,
		    int threads)
{
	struct bulk b = { .a = a, .ns = ns, .services = services, .eps = eps, .threads = threads };
	pthread_t *tids = calloc((size_t)threads, sizeof(*tids));
	struct worker *ws = calloc((size_t)threads, sizeof(*ws));
	struct maps m;
	double t0, t_api, t_dp = 0;
	int found = 0, passes = 0;

	b.vips = calloc((size_t)services, sizeof(*b.vips));
	pthread_mutex_init(&b.lock, NULL);
	if (!tids || !ws || !b.vips || maps_open(pin_dir, &m)) {
		free(tids);
		free(ws);
		free(b.vips);
		return 1;
	}
	t0 = now_ms();
	for (int t = 0; t < threads; t++) {
		ws[t] = (struct worker){ .b = &b, .idx = t };
		pthread_create(&tids[t], NULL, bulk_worker, &ws[t]);
	}
	for (int t = 0; t < threads; t++)
		pthread_join(tids[t], NULL);
	t_api = now_ms();
	printf("api_create_s %.2f services=%d endpoints=%d (%.0f objects/s)\n", (t_api - t0) / 1e3,
	       services, services * eps, 2.0 * services / ((t_api - t0) / 1e3));
	if (b.failed) {
		fprintf(stderr, "%d of %d creating threads failed\n", b.failed, threads);
	} else {
		qsort(b.vips, (size_t)services, sizeof(*b.vips), u32_cmp);
		while (now_ms() - t_api < BULK_TIMEOUT_MS) {
			found = count_complete(&m, b.vips, services, eps);
			passes++;
			if (found == services) {
				t_dp = now_ms();
				break;
			}
		}
		if (t_dp)
			printf("datapath_after_api_ms %.1f (%d map passes)\n", t_dp - t_api, passes);
		else
			fprintf(stderr, "datapath holds %d of %d services after %.0f s\n", found, services,
				BULK_TIMEOUT_MS / 1e3);
	}
	free(tids);
	free(ws);
	free(b.vips);
	return b.failed || !t_dp;
}

int main(int argc, char **argv)
{
	struct api a;
	int r;

	if (argc < 6 || parse_api(argv[2], &a)) {
		fprintf(stderr, "usage: k8s_svc latency API PIN_DIR NS COUNT\n"
				"       k8s_svc bulk API PIN_DIR NS SERVICES ENDPOINTS THREADS\n");
		return 2;
	}
	curl_global_init(CURL_GLOBAL_DEFAULT);
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (!strcmp(argv[1], "latency"))
		r = cmd_latency(&a, argv[3], argv[4], atoi(argv[5]));
	else if (!strcmp(argv[1], "bulk") && argc == 8)
		r = cmd_bulk(&a, argv[3], argv[4], atoi(argv[5]), atoi(argv[6]), atoi(argv[7]));
	else
		r = 2;
	curl_global_cleanup();
	return r;
}
