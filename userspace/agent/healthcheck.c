/* Health checks of externalTrafficPolicy Local services, as kube-proxy
 * answers them: a load balancer (or anyone) asks a node's
 * healthCheckNodePort whether the node has endpoints of the service, since
 * that node's node port serves only those (pw_services_localize). 200 with
 * the local endpoint count when it has some, 503 when it has none, whatever
 * the path; the body is kube-proxy's JSON.
 *
 * One thread polls every listener; a request is answered at once and the
 * connection closed (a health checker opens one per probe). The listeners
 * follow the config: pw_healthcheck_sync after each services apply. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include "agent.h"
#include "log.h"
#include "services.h"

#define HC_MAX 1024   /* listeners; a node with more ETP-Local services logs and skips the rest */

struct hc_port {
	uint16_t port;
	int fd;
	char ns[PW_NAME_MAX], name[PW_NAME_MAX];
	int local;           /* local endpoints */
};

struct pw_healthcheck {
	pthread_t thread;
	pthread_mutex_t lock;
	int wake[2];         /* a pipe: sync and stop interrupt the poll */
	bool stop;
	struct hc_port *ports;
	int n;
};

/* "ns/name:port/proto" (Kubernetes source) -> ns, name; a file's "web" -> "", "web". */
static void split_name(const char *full, char ns[PW_NAME_MAX], char name[PW_NAME_MAX])
{
	const char *slash = strchr(full, '/'), *start = slash ? slash + 1 : full;
	size_t len = strcspn(start, ":");

	snprintf(ns, PW_NAME_MAX, "%.*s", slash ? (int)(slash - full) : 0, full);
	snprintf(name, PW_NAME_MAX, "%.*s", (int)len, start);
}

static int listen_on(uint16_t port)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = INADDR_ANY };
	int one = 1, fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);

	if (fd < 0)
		return -errno;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) || listen(fd, 64)) {
		int err = -errno;

		close(fd);
		return err;
	}
	return fd;
}

static void answer(int fd, const struct hc_port *p)
{
	char req[1024], body[320], resp[512];
	struct timeval tv = { .tv_sec = 1 };
	int n;

	/* The request itself says nothing we need: read it so the peer sees a
	 * clean close, never wait long for it. */
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (recv(fd, req, sizeof(req), 0) < 0)
		return;
	snprintf(body, sizeof(body),
		 "{\"service\":{\"namespace\":\"%s\",\"name\":\"%s\"},\"localEndpoints\":%d,"
		 "\"serviceProxyHealthy\":true}\n", p->ns, p->name, p->local);
	n = snprintf(resp, sizeof(resp),
		     "HTTP/1.1 %s\r\nContent-Type: application/json\r\nX-Content-Type-Options: nosniff\r\n"
		     "Content-Length: %zu\r\nConnection: close\r\n\r\n%s",
		     p->local > 0 ? "200 OK" : "503 Service Unavailable", strlen(body), body);
	if (n > 0 && send(fd, resp, (size_t)n, MSG_NOSIGNAL) < 0)
		pw_debug("health check on port %u: %s", p->port, strerror(errno));
}

static void serve_ready(struct pw_healthcheck *h, const struct pollfd *pfd, int n)
{
	for (int i = 0; i < n; i++) {
		int c;

		if (!(pfd[i].revents & POLLIN))
			continue;
		c = accept4(pfd[i].fd, NULL, NULL, SOCK_CLOEXEC);
		if (c < 0)
			continue;
		pthread_mutex_lock(&h->lock);
		for (int j = 0; j < h->n; j++)
			if (h->ports[j].fd == pfd[i].fd) {
				struct hc_port p = h->ports[j];

				pthread_mutex_unlock(&h->lock);
				answer(c, &p);
				pthread_mutex_lock(&h->lock);
				break;
			}
		pthread_mutex_unlock(&h->lock);
		close(c);
	}
}

static void *hc_thread(void *arg)
{
	struct pw_healthcheck *h = arg;
	struct pollfd pfd[HC_MAX + 1];

	for (;;) {
		int n = 0;
		char b[64];

		pthread_mutex_lock(&h->lock);
		if (h->stop) {
			pthread_mutex_unlock(&h->lock);
			return NULL;
		}
		for (int i = 0; i < h->n; i++)
			pfd[n++] = (struct pollfd){ .fd = h->ports[i].fd, .events = POLLIN };
		pthread_mutex_unlock(&h->lock);
		pfd[n] = (struct pollfd){ .fd = h->wake[0], .events = POLLIN };
		if (poll(pfd, (nfds_t)n + 1, -1) < 0 && errno != EINTR)
			return NULL;
		if (pfd[n].revents & POLLIN)
			while (read(h->wake[0], b, sizeof(b)) > 0)
				;
		serve_ready(h, pfd, n);
	}
}

static void wake(struct pw_healthcheck *h)
{
	if (write(h->wake[1], "x", 1) < 0 && errno != EAGAIN)
		pw_debug("health checks: wake: %s", strerror(errno));
}

static struct pw_healthcheck *hc_start(void)
{
	struct pw_healthcheck *h = calloc(1, sizeof(*h));

	if (!h)
		return NULL;
	if (pipe2(h->wake, O_CLOEXEC | O_NONBLOCK)) {
		free(h);
		return NULL;
	}
	pthread_mutex_init(&h->lock, NULL);
	if (pthread_create(&h->thread, NULL, hc_thread, h)) {
		close(h->wake[0]);
		close(h->wake[1]);
		pthread_mutex_destroy(&h->lock);
		free(h);
		return NULL;
	}
	return h;
}

/* The local endpoints of the service entries naming health check port hc:
 * distinct addresses, as kube-proxy counts endpoints, not ports. */
static int local_endpoints(const struct pw_node_config *cfg, uint16_t hc)
{
	uint32_t seen[256];
	int n = 0;

	for (int i = 0; i < cfg->n_services; i++) {
		const struct pw_service_config *s = &cfg->services[i];

		if (s->health_check_port != hc)
			continue;
		for (int j = 0; j < s->n_backends; j++) {
			uint32_t ip = s->backends[j].ip;
			bool dup = false;

			if (!pw_services_backend_local(&s->backends[j], &cfg->pod_cidr, cfg->ip))
				continue;
			for (int k = 0; k < n && !dup; k++)
				dup = seen[k] == ip;
			if (!dup && n < (int)(sizeof(seen) / sizeof(seen[0])))
				seen[n++] = ip;
		}
	}
	return n;
}

static struct hc_port *find_port(struct hc_port *ports, int n, uint16_t port)
{
	for (int i = 0; i < n; i++)
		if (ports[i].port == port)
			return &ports[i];
	return NULL;
}

/* The wanted listeners: one per distinct health check port of an
 * externalTrafficPolicy Local service. */
static int wanted(const struct pw_node_config *cfg, struct hc_port *out)
{
	int n = 0;

	for (int i = 0; i < cfg->n_services; i++) {
		const struct pw_service_config *s = &cfg->services[i];
		struct hc_port *p;

		if (!s->external_local || !s->health_check_port || find_port(out, n, s->health_check_port))
			continue;
		if (n == HC_MAX) {
			pw_warn("health checks: more than %d ports, %s's port %u not served", HC_MAX, s->name,
				s->health_check_port);
			continue;
		}
		p = &out[n++];
		p->port = s->health_check_port;
		p->fd = -1;
		split_name(s->name, p->ns, p->name);
		p->local = local_endpoints(cfg, p->port);
	}
	return n;
}

static bool any_health_check(const struct pw_node_config *cfg)
{
	for (int i = 0; i < cfg->n_services; i++)
		if (cfg->services[i].external_local && cfg->services[i].health_check_port)
			return true;
	return false;
}

void pw_healthcheck_sync(struct pw_agent *a, const struct pw_node_config *cfg)
{
	struct pw_healthcheck *h = a->hc;
	struct hc_port *want;
	int n;

	/* Most nodes never serve one: nothing to allocate on each apply. */
	if (!h && !any_health_check(cfg))
		return;
	want = calloc(HC_MAX, sizeof(*want));
	if (!want)
		return;
	n = wanted(cfg, want);
	if (!h && !(h = a->hc = hc_start())) {
		pw_warn("health checks: cannot start their thread");
		free(want);
		return;
	}
	pthread_mutex_lock(&h->lock);
	for (int i = 0; i < n; i++) {
		struct hc_port *had = find_port(h->ports, h->n, want[i].port);

		if (had) {
			want[i].fd = had->fd;
			had->fd = -1;
		} else if ((want[i].fd = listen_on(want[i].port)) < 0) {
			pw_warn("health checks: cannot listen on port %u for %s/%s: %s", want[i].port, want[i].ns,
				want[i].name, strerror(-want[i].fd));
		} else {
			pw_info("health checks: port %u answers for %s/%s (%d local endpoint%s)", want[i].port,
				want[i].ns, want[i].name, want[i].local, want[i].local == 1 ? "" : "s");
		}
	}
	for (int i = 0; i < h->n; i++)
		if (h->ports[i].fd >= 0) {
			pw_info("health checks: port %u closed", h->ports[i].port);
			close(h->ports[i].fd);
		}
	free(h->ports);
	h->ports = want;
	h->n = n;
	/* Listeners that failed stay out of the poll set. */
	for (int i = 0; i < h->n; i++)
		if (h->ports[i].fd < 0)
			h->ports[i--] = h->ports[--h->n];
	pthread_mutex_unlock(&h->lock);
	wake(h);
}

void pw_healthcheck_stop(struct pw_agent *a)
{
	struct pw_healthcheck *h = a->hc;

	if (!h)
		return;
	pthread_mutex_lock(&h->lock);
	h->stop = true;
	pthread_mutex_unlock(&h->lock);
	wake(h);
	pthread_join(h->thread, NULL);
	for (int i = 0; i < h->n; i++)
		close(h->ports[i].fd);
	free(h->ports);
	close(h->wake[0]);
	close(h->wake[1]);
	pthread_mutex_destroy(&h->lock);
	free(h);
	a->hc = NULL;
}
