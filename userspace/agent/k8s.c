/* Kubernetes mode: the Kubernetes API as the agent's config source.
 *
 * Six informers (userspace/lib/kube.h) list and watch Nodes, Services,
 * EndpointSlices, and for network policy Namespaces, Pods and
 * NetworkPolicies, each in its own thread, and hand every object to the
 * translation (userspace/lib/k8s_model.h), which keeps a compact cache
 * under a mutex. A change that matters wakes the main loop through an
 * eventfd; the loop waits a few milliseconds for the changes that come
 * together (a rollout touches a slice several times), rebuilds the desired
 * node config from the cache and hands it to the one reconciler
 * (pw_reconcile), as the JSON file does in the other mode.
 *
 * Nothing is removed because the API cannot be reached: the informers
 * report removals only when the API says so (a DELETED event, or an object
 * missing from a complete relist), and the datapath is not touched at all
 * until all six resources have been listed once -- a restarted agent
 * would otherwise delete every service for a moment. */
#include <errno.h>
#include <ifaddrs.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <signal.h>
#include <time.h>
#include <unistd.h>
#include "agent.h"
#include "config.h"
#include "file.h"
#include "k8s_model.h"
#include "kube.h"
#include "log.h"
#include "metrics_http.h"

/* Builds are at least this far apart: a change after a quiet spell is
 * applied at once, the changes that follow within this long are applied
 * together (a rollout touches a slice several times). Short against the
 * target of 50 ms from an EndpointSlice change to the maps. */
#define K8S_DEBOUNCE_MS 5
/* While waiting (for the lists, for this node's podCIDR), say why again
 * this often. */
#define K8S_WAIT_LOG_MS 30000
/* The applied config is published (for podwirectl) at most this often, by
 * a thread of its own: formatting 10,000 services takes 100-250 ms on a
 * busy 2-core node, which the main loop must not wait for before the next
 * apply. */
#define K8S_PUBLISH_MS 1000
/* After the policy engine failed (out of memory), try again this late. */
#define K8S_REFEED_MS 1000

static const char *const resource_path[PW_K8S_KINDS] = {
	"/api/v1/nodes", "/api/v1/services", "/apis/discovery.k8s.io/v1/endpointslices",
	"/api/v1/namespaces", "/api/v1/pods", "/apis/networking.k8s.io/v1/networkpolicies",
};
static const char *const resource_name[PW_K8S_KINDS] = {
	"nodes", "services", "endpointslices", "namespaces", "pods", "networkpolicies",
};

struct k8s_source;

struct k8s_handler_ctx {
	struct k8s_source *src;
	enum pw_k8s_kind kind;
};

struct k8s_source {
	pthread_mutex_t lock;            /* guards model and changed_ms */
	struct pw_k8s_model *model;
	long long changed_ms;            /* first change not yet built, 0 = none */
	int event_fd;                    /* readable: the cache changed */
	struct k8s_handler_ctx ctx[PW_K8S_KINDS];
	struct pw_kube_informer *inf[PW_K8S_KINDS];
};

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- informer handlers: the informers' threads ---- */

static void wake(struct k8s_source *s)
{
	uint64_t one = 1;

	if (write(s->event_fd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		pw_warn("kubernetes: cannot wake the main loop: %s", strerror(errno));
}

/* Under the lock: a change to build. */
static void note_change(struct k8s_source *s)
{
	if (!s->changed_ms)
		s->changed_ms = now_ms();
}

static void on_object(struct k8s_handler_ctx *c, const cJSON *obj, bool removed)
{
	struct k8s_source *s = c->src;
	int r;

	pthread_mutex_lock(&s->lock);
	r = removed ? pw_k8s_remove(s->model, c->kind, obj) : pw_k8s_upsert(s->model, c->kind, obj);
	if (r == 1)
		note_change(s);
	pthread_mutex_unlock(&s->lock);
	if (r == 1)
		wake(s);
	else if (r == -EINVAL)
		pw_debug("kubernetes: a %s object without metadata.name: ignored", resource_name[c->kind]);
	else if (r < 0)
		pw_err("kubernetes: %s: %s", resource_name[c->kind], strerror(-r));
}

static void on_upsert(void *ctx, const cJSON *obj)
{
	on_object(ctx, obj, false);
}

static void on_remove(void *ctx, const cJSON *obj)
{
	on_object(ctx, obj, true);
}

static void on_relist_begin(void *ctx)
{
	struct k8s_handler_ctx *c = ctx;

	pthread_mutex_lock(&c->src->lock);
	pw_k8s_relist_begin(c->src->model, c->kind);
	pthread_mutex_unlock(&c->src->lock);
}

static void on_relist_end(void *ctx)
{
	struct k8s_handler_ctx *c = ctx;
	int dropped;

	pthread_mutex_lock(&c->src->lock);
	dropped = pw_k8s_relist_end(c->src->model, c->kind);
	note_change(c->src);   /* also: synced, which the main loop waits for */
	pthread_mutex_unlock(&c->src->lock);
	if (dropped)
		pw_info("kubernetes: %d %s gone since the last list: removed", dropped, resource_name[c->kind]);
	wake(c->src);
}

/* ---- the source ---- */

static void source_stop(struct k8s_source *s)
{
	if (!s)
		return;
	/* Threads first: they use the model until joined. */
	for (int k = 0; k < PW_K8S_KINDS; k++)
		if (s->inf[k])
			pw_kube_informer_stop(s->inf[k]);
	pw_k8s_model_free(s->model);
	if (s->event_fd >= 0)
		close(s->event_fd);
	pthread_mutex_destroy(&s->lock);
	free(s);
}

static int source_start(const struct pw_kube_conn *conn, const char *node_name,
			const struct pw_node_config *base, struct k8s_source **out)
{
	struct k8s_source *s = calloc(1, sizeof(*s));
	int err = 0;

	*out = NULL;
	if (!s)
		return -ENOMEM;
	pthread_mutex_init(&s->lock, NULL);
	s->event_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	s->model = pw_k8s_model_new(node_name, &base->cluster_cidr, &base->service_cidr);
	if (s->event_fd < 0 || !s->model) {
		err = s->event_fd < 0 ? -errno : -ENOMEM;
		source_stop(s);
		return err;
	}
	pw_k8s_policy_by_object(s->model);   /* network policy through pw_netpol_feed */
	for (int k = 0; k < PW_K8S_KINDS && !err; k++) {
		struct pw_kube_handlers h = {
			.relist_begin = on_relist_begin, .upsert = on_upsert, .remove = on_remove,
			.relist_end = on_relist_end, .ctx = &s->ctx[k],
		};

		s->ctx[k] = (struct k8s_handler_ctx){ .src = s, .kind = (enum pw_k8s_kind)k };
		err = pw_kube_informer_start(conn, resource_path[k], resource_name[k], &h, &s->inf[k]);
		if (err)
			pw_err("kubernetes: cannot start the %s informer: %s", resource_name[k], strerror(-err));
	}
	if (err) {
		source_stop(s);
		return err;
	}
	*out = s;
	return 0;
}

/* Which lists are still missing, "" when all are in. */
static void missing_lists(struct k8s_source *s, char *buf, size_t len)
{
	size_t n = 0;

	buf[0] = '\0';
	for (int k = 0; k < PW_K8S_KINDS; k++)
		if (!pw_k8s_synced(s->model, (enum pw_k8s_kind)k))
			n += (size_t)snprintf(buf + n, len - n, "%s%s", n ? ", " : "", resource_name[k]);
}

/* ---- the node's uplink ---- */

/* The interface holding ip (the node's InternalIP): the uplink when the
 * config file names none. */
static int uplink_of(uint32_t ip, char out[PW_IFNAME_MAX])
{
	struct ifaddrs *ifa, *it;
	int ret = -ENODEV;

	if (getifaddrs(&ifa))
		return -errno;
	for (it = ifa; it; it = it->ifa_next) {
		if (!it->ifa_addr || it->ifa_addr->sa_family != AF_INET ||
		    ntohl(((struct sockaddr_in *)it->ifa_addr)->sin_addr.s_addr) != ip)
			continue;
		if (strlen(it->ifa_name) < PW_IFNAME_MAX) {
			strcpy(out, it->ifa_name);
			ret = 0;
		}
		break;
	}
	freeifaddrs(ifa);
	return ret;
}

/* ---- publishing the applied config ---- */

struct publisher {
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct pw_node_config next;   /* a copy to write; replaced if not written yet */
	bool pending, stop, started;
	const char *path;
};

static void publish_write(const char *path, const struct pw_node_config *cfg)
{
	char *text = pw_config_format(cfg);
	int err = text ? pw_file_write_atomic(path, text, strlen(text)) : -ENOMEM;

	free(text);
	if (err)
		pw_warn("cannot write %s: %s (podwirectl shows no names)", path, strerror(-err));
}

/* Formatting 10,000 services takes tens of ms of CPU: on a busy node it
 * must not delay the next slice change reaching the maps (the nice value
 * is per thread on Linux). */
#define PUBLISHER_NICE 10

static void *publisher_main(void *arg)
{
	struct publisher *p = arg;

	if (setpriority(PRIO_PROCESS, (id_t)gettid(), PUBLISHER_NICE))
		pw_debug("publisher: setpriority: %s", strerror(errno));
	pthread_mutex_lock(&p->lock);
	for (;;) {
		struct pw_node_config cfg;

		while (!p->pending && !p->stop)
			pthread_cond_wait(&p->cond, &p->lock);
		if (!p->pending)
			break;   /* stopping, and everything is written */
		cfg = p->next;
		memset(&p->next, 0, sizeof(p->next));
		p->pending = false;
		pthread_mutex_unlock(&p->lock);
		publish_write(p->path, &cfg);
		pw_config_free(&cfg);
		pthread_mutex_lock(&p->lock);
	}
	pthread_mutex_unlock(&p->lock);
	return NULL;
}

static int publisher_start(struct publisher *p, const char *path)
{
	int err;

	memset(p, 0, sizeof(*p));
	p->path = path;
	pthread_mutex_init(&p->lock, NULL);
	pthread_cond_init(&p->cond, NULL);
	err = pthread_create(&p->thread, NULL, publisher_main, p);
	if (err) {
		pthread_cond_destroy(&p->cond);
		pthread_mutex_destroy(&p->lock);
		return -err;
	}
	p->started = true;
	return 0;
}

/* Hands a copy of cfg to the thread (it replaces a copy not written yet). */
static void publisher_post(struct publisher *p, const struct pw_node_config *cfg)
{
	struct pw_node_config copy, old;

	if (pw_config_copy(&copy, cfg)) {
		pw_warn("cannot publish %s: out of memory (podwirectl shows stale names)", p->path);
		return;
	}
	pthread_mutex_lock(&p->lock);
	old = p->next;
	p->next = copy;
	p->pending = true;
	pthread_cond_signal(&p->cond);
	pthread_mutex_unlock(&p->lock);
	pw_config_free(&old);
}

/* Writes what is pending, then joins. */
static void publisher_stop(struct publisher *p)
{
	if (!p->started)
		return;
	pthread_mutex_lock(&p->lock);
	p->stop = true;
	pthread_cond_signal(&p->cond);
	pthread_mutex_unlock(&p->lock);
	pthread_join(p->thread, NULL);
	pw_config_free(&p->next);
	pthread_cond_destroy(&p->cond);
	pthread_mutex_destroy(&p->lock);
	p->started = false;
}

/* ---- the main loop ---- */

struct k8s_loop {
	struct pw_agent *a;
	const struct pw_k8s_flags *f;
	struct k8s_source *src;
	struct pw_node_config base;      /* the config file's part */
	bool started;                    /* datapath loaded, first reconcile done */
	bool synced_logged;
	char last_why[512];              /* the last waiting reason logged */
	long long why_logged_ms;
	/* <state_dir>/kubernetes.json: the applied config in the config file's
	 * format, published in node.json as the node's config, so that
	 * podwirectl names services and peers as in JSON-file mode. */
	char state_path[PW_PATH_MAX + 32];
	bool state_dirty;
	long long state_written_ms;
	struct publisher pub;
	long long built_ms;              /* when the last build ended */
};

/* The policy model's text in the published config (podwirectl names
 * policies with it), made here rather than on every change: a change
 * reaches the maps object by object, and the text of 10,000 pods is made
 * at most once per K8S_PUBLISH_MS. */
static void refresh_policy_text(struct k8s_loop *l)
{
	char *text = NULL;
	bool stale;
	int ret = 0;

	pthread_mutex_lock(&l->src->lock);
	stale = pw_k8s_policy_text_stale(l->src->model);
	if (stale)
		ret = pw_k8s_policy_text(l->src->model, &text);
	pthread_mutex_unlock(&l->src->lock);
	if (!stale)
		return;
	if (ret) {
		pw_warn("cannot make the policy model's text: %s (podwirectl shows stale policy names)", strerror(-ret));
		return;
	}
	free(l->a->cfg.policy_json);
	l->a->cfg.policy_json = text;
}

/* At start in the loop itself (the file is there when "ready" is logged),
 * then through the publisher thread. */
static void publish_state(struct k8s_loop *l, bool at_start)
{
	refresh_policy_text(l);
	if (l->pub.started && !at_start)
		publisher_post(&l->pub, &l->a->cfg);
	else
		publish_write(l->state_path, &l->a->cfg);
	l->state_dirty = false;
	l->state_written_ms = now_ms();
}

/* Logs a waiting reason when it changes, and again every K8S_WAIT_LOG_MS. */
static void log_waiting(struct k8s_loop *l, const char *why)
{
	long long now = now_ms();

	if (strcmp(why, l->last_why) == 0 && now - l->why_logged_ms < K8S_WAIT_LOG_MS)
		return;
	snprintf(l->last_why, sizeof(l->last_why), "%s", why);
	l->why_logged_ms = now;
	pw_info("%s", why);
}

/* First successful build: the datapath, the first reconcile, the conflist. */
static int start_node(struct k8s_loop *l, struct pw_node_config *cfg)
{
	struct pw_agent *a = l->a;
	char ip[PW_IP4_STRLEN];
	int err, applied;

	if (!cfg->uplink[0]) {
		err = uplink_of(cfg->ip, cfg->uplink);
		pw_ip4_format(cfg->ip, ip);
		if (err) {
			pw_err("no interface of this network namespace holds node %s's InternalIP %s: "
			       "set node.uplink in the config file", l->f->node_name, ip);
			pw_config_free(cfg);
			return err;
		}
		pw_info("uplink %s (it holds the InternalIP %s)", cfg->uplink, ip);
	}
	a->cfg = *cfg;
	memset(cfg, 0, sizeof(*cfg));
	a->config_path = l->state_path;   /* what node.json names as the node's config */
	err = pw_agent_start_datapath(a, &applied);
	if (err)
		return err;
	publish_state(l, true);
	if (applied)
		pw_warn("kubernetes: first apply had errors: the next change retries");
	err = pw_cni_conflist_write(&a->paths, l->f->cni_conf_dir);
	if (err)
		return err;
	err = pw_metrics_http_start(&a->paths, l->f->metrics_port);
	if (err)
		pw_warn("cannot serve metrics on 127.0.0.1:%d (%s): running without them",
			l->f->metrics_port, strerror(-err));
	l->started = true;
	pw_info("ready");
	return 0;
}

/* Rebuild from the cache and apply. Returns -errno only when the agent
 * must exit (the datapath could not be started). */
static int rebuild(struct k8s_loop *l)
{
	struct pw_policy_change *pch = NULL;
	struct pw_node_config next;
	struct pw_k8s_counts n;
	char why[512], missing[128];
	long long changed;
	int ret, pret = 0, n_pch = 0;
	bool preset = false;

	pthread_mutex_lock(&l->src->lock);
	missing_lists(l->src, missing, sizeof(missing));
	changed = l->src->changed_ms;
	l->src->changed_ms = 0;
	ret = missing[0] ? -EAGAIN :
	      pw_k8s_build_next(l->src->model, &l->base, l->started ? &l->a->cfg : NULL, &next, why, sizeof(why));
	if (!ret) {
		if (pw_netpol_wants_all(l->a))
			pw_k8s_policy_refeed(l->src->model);
		pret = pw_k8s_policy_changes(l->src->model, &pch, &n_pch, &preset);
	}
	pw_k8s_counts(l->src->model, &n);
	pthread_mutex_unlock(&l->src->lock);

	/* Into the policy engine before the reconcile writes the maps (the
	 * first one too: a restarted agent must not write an empty model). */
	if (!ret && !pret)
		pret = pw_netpol_feed(l->a, pch, n_pch, preset);
	pw_policy_changes_free(pch, n_pch);
	if (pret) {
		pw_err("network policy: the model's changes were not taken (%s): all of it again on the next change",
		       strerror(-pret));
		pthread_mutex_lock(&l->src->lock);
		pw_k8s_policy_refeed(l->src->model);
		pthread_mutex_unlock(&l->src->lock);
	}

	if (missing[0]) {
		snprintf(why, sizeof(why), "waiting for the API server's first list of %s", missing);
		log_waiting(l, why);
		return 0;
	}
	if (!l->synced_logged) {
		pw_info("kubernetes: synced: %d node(s), %d service(s), %d endpointslice(s) with %ld endpoint(s), "
			"%d namespace(s), %d pod(s), %d networkpolic%s", n.nodes, n.services, n.slices, n.endpoints,
			n.namespaces, n.pods, n.netpols, n.netpols == 1 ? "y" : "ies");
		l->synced_logged = true;
	}
	if (ret) {
		if (ret == -EINVAL)
			pw_err("%s", why);
		log_waiting(l, why);
		return 0;   /* the running config stays */
	}
	l->last_why[0] = '\0';
	if (!l->started)
		return start_node(l, &next);
	/* Restart-only fields as they run (an uplink found at start is no change). */
	memcpy(next.uplink, l->a->cfg.uplink, sizeof(next.uplink));
	ret = pw_reconcile(l->a, &l->a->cfg, &next);
	if (ret) {
		pw_metrics_reconcile_error();
		pw_warn("kubernetes: applied with errors (see above)");
	}
	pthread_mutex_lock(&l->src->lock);
	pw_k8s_release(l->src->model, &l->a->cfg);   /* what next did not take over */
	pthread_mutex_unlock(&l->src->lock);
	l->a->cfg = next;
	l->state_dirty = true;
	if (changed)
		pw_debug("kubernetes: applied %lld ms after the change", now_ms() - changed);
	return 0;
}

static void drain(int fd)
{
	uint64_t v;

	while (read(fd, &v, sizeof(v)) == sizeof(v))
		;
}

/* True when a termination signal arrived; a SIGHUP asks for a rebuild. */
static bool read_signals(int sig_fd, long long *rebuild_at)
{
	struct signalfd_siginfo si;

	while (read(sig_fd, &si, sizeof(si)) == sizeof(si)) {
		if (si.ssi_signo == SIGHUP) {
			*rebuild_at = now_ms();
			continue;
		}
		pw_info("received %s: exiting; the datapath stays pinned and attached", strsignal((int)si.ssi_signo));
		return true;
	}
	return false;
}

static int loop(struct k8s_loop *l, int sig_fd)
{
	long long rebuild_at = now_ms();   /* says what it waits for from the start */

	for (;;) {
		/* This node's pods come and go in IPAM (the CNI plugin's
		 * reservations, with their namespace/name) before the API says
		 * so: a new pod gets its policy at once (-1: none yet). */
		struct pollfd fds[3] = {
			{ .fd = sig_fd, .events = POLLIN },
			{ .fd = l->src->event_fd, .events = POLLIN },
			{ .fd = l->started ? pw_netpol_pods_fd(l->a) : -1, .events = POLLIN },
		};
		long long now = now_ms(), wake_at = rebuild_at;
		/* Policy maps there, but no IPAM dir to watch yet: look again
		 * every PW_NETPOL_POLL_MS, as the JSON-file mode does. */
		bool pods_poll = l->started && l->a->netpol && fds[2].fd < 0;
		int ret;

		if (l->last_why[0] && (wake_at < 0 || l->why_logged_ms + K8S_WAIT_LOG_MS < wake_at))
			wake_at = l->why_logged_ms + K8S_WAIT_LOG_MS;
		if (l->state_dirty && (wake_at < 0 || l->state_written_ms + K8S_PUBLISH_MS < wake_at))
			wake_at = l->state_written_ms + K8S_PUBLISH_MS;
		if (pods_poll && (wake_at < 0 || now + PW_NETPOL_POLL_MS < wake_at))
			wake_at = now + PW_NETPOL_POLL_MS;   /* until the IPAM dir exists */
		if (poll(fds, 3, wake_at < 0 ? -1 : (int)(wake_at > now ? wake_at - now : 0)) < 0 && errno != EINTR) {
			pw_err("poll: %s", strerror(errno));
			return -errno;
		}
		if ((fds[0].revents & POLLIN) && read_signals(sig_fd, &rebuild_at))
			return 0;
		if (fds[1].revents & POLLIN) {
			drain(l->src->event_fd);
			if (rebuild_at < 0)
				rebuild_at = l->built_ms + K8S_DEBOUNCE_MS;   /* now, after a quiet spell */
		}
		now = now_ms();
		if ((rebuild_at >= 0 && now >= rebuild_at) ||
		    (l->last_why[0] && now >= l->why_logged_ms + K8S_WAIT_LOG_MS)) {
			rebuild_at = -1;
			ret = rebuild(l);
			l->built_ms = now_ms();
			if (ret)
				return ret;
		}
		if (l->started && ((fds[2].revents & POLLIN) || pods_poll)) {
			pw_netpol_pods_drain(l->a);
			pw_netpol_sync(l->a, &l->a->cfg);   /* nothing written when the pods are the same */
		}
		/* The policy engine lost the model: a build hands it over again. */
		if (l->started && rebuild_at < 0 && pw_netpol_wants_all(l->a))
			rebuild_at = now_ms() + K8S_REFEED_MS;
		if (l->state_dirty && now_ms() >= l->state_written_ms + K8S_PUBLISH_MS)
			publish_state(l, false);
	}
}

/* The config file's part: what the API does not say. Without --config,
 * the defaults (docs/config.md). */
static int load_base(const struct pw_agent *a, struct pw_node_config *base)
{
	char err[512];
	size_t len;
	int ret;
	char *text;

	if (!a->config_path)
		return pw_config_parse_k8s("{}", base, err, sizeof(err));
	text = pw_config_read(a->config_path, &len, &ret, err, sizeof(err));
	if (text) {
		ret = pw_config_parse_k8s(text, base, err, sizeof(err));
		free(text);
	}
	if (ret)
		pw_err("config %s: %s", a->config_path, err);
	return ret;
}

static int load_conn(const struct pw_k8s_flags *f, struct pw_kube_conn *conn)
{
	bool incluster = strcmp(f->kubeconfig, PW_KUBECONFIG_INCLUSTER) == 0;
	char err[512];
	int ret;

	memset(conn, 0, sizeof(*conn));
	ret = pw_kube_conn_load(incluster ? NULL : f->kubeconfig, conn, err, sizeof(err));
	if (ret) {
		pw_kube_conn_free(conn);
		pw_err("%s: %s", incluster ? "in-cluster config" : f->kubeconfig, err);
		return ret;
	}
	pw_info("kubernetes: API server %s (%s), node %s", conn->server,
		incluster ? "in-cluster config" : f->kubeconfig, f->node_name);
	return 0;
}

int pw_k8s_main(struct pw_agent *a, const struct pw_k8s_flags *f, int sig_fd)
{
	struct k8s_loop l = { .a = a, .f = f };
	struct pw_kube_conn conn;
	int ret;

	snprintf(l.state_path, sizeof(l.state_path), "%s/kubernetes.json", a->paths.state_dir);
	ret = load_base(a, &l.base);
	if (ret)
		return ret;
	ret = load_conn(f, &conn);
	if (ret)
		return ret;
	/* The lock before anything else: a second agent for this instance
	 * must not even start watching. */
	ret = pw_mkdirs(a->paths.state_dir, 0755);
	if (ret)
		pw_err("cannot create %s: %s", a->paths.state_dir, strerror(-ret));
	if (!ret)
		ret = pw_agent_lock(a);
	if (!ret)
		ret = source_start(&conn, f->node_name, &l.base, &l.src);
	pw_kube_conn_free(&conn);
	if (ret)
		return ret;
	ret = publisher_start(&l.pub, l.state_path);
	if (ret)
		pw_warn("cannot start the publishing thread (%s): publishing in the main loop", strerror(-ret));
	ret = loop(&l, sig_fd);
	publisher_stop(&l.pub);
	if (l.started)
		pw_metrics_http_stop();
	source_stop(l.src);
	pw_config_free(&l.base);
	return ret;
}
