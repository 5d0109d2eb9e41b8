/* NetworkPolicy in the agent: the config's policy model plus this node's
 * pods (IPAM's reservations, which carry the namespace/name the runtime
 * passed in CNI_ARGS) -> the policy maps, written incrementally
 * (userspace/lib/policy.c, docs/policy.md). Re-run on every config change
 * and when the node's pods change (pw_netpol_tick). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/inotify.h>
#include "agent.h"
#include "ipam.h"
#include "log.h"
#include "policy.h"

struct pw_netpol_state {
	struct pw_policy_fds fds;
	struct pw_policy_state applied;
	bool have_applied;        /* applied holds what the maps hold */
	uint64_t digest;          /* of the model text and the local pods last applied */
	int pods_fd;              /* inotify on the IPAM dir, -1 until it exists */
};

static uint64_t fnv64(uint64_t h, const void *p, size_t n)
{
	const unsigned char *s = p;

	for (size_t i = 0; i < n; i++) {
		h ^= s[i];
		h *= 1099511628211ull;
	}
	return h;
}

/* This node's pods with the Kubernetes names IPAM recorded; *n = count. */
static struct pw_local_pod *local_pods(struct pw_agent *a, int *n)
{
	struct pw_cidr any = { 0, 0 };
	struct pw_ipam_entry *v = NULL;
	struct pw_local_pod *out;
	struct pw_ipam ipam;
	int count;

	*n = 0;
	if (access(a->paths.ipam_dir, F_OK) < 0 || pw_ipam_open(&ipam, a->paths.ipam_dir, &any))
		return NULL;
	count = pw_ipam_list(&ipam, &v);
	pw_ipam_close(&ipam);
	if (count <= 0) {
		free(v);
		return NULL;
	}
	out = calloc((size_t)count, sizeof(*out));
	for (int i = 0; out && i < count; i++) {
		out[i].ip = v[i].ip;
		snprintf(out[i].ns, sizeof(out[i].ns), "%s", v[i].k8s_namespace);
		snprintf(out[i].name, sizeof(out[i].name), "%s", v[i].k8s_pod_name);
	}
	free(v);
	*n = out ? count : 0;
	return out;
}

static int open_state(struct pw_agent *a)
{
	struct pw_netpol_state *s;

	if (a->netpol)
		return 0;
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->pods_fd = -1;
	s->fds.ids = pw_loader_map_fd(a, PW_MAP_POL_IDS);
	s->fds.ep = pw_loader_map_fd(a, PW_MAP_POL_EP);
	s->fds.rules = pw_loader_map_fd(a, PW_MAP_POLICY);
	if (s->fds.ids < 0 || s->fds.ep < 0 || s->fds.rules < 0) {
		free(s);
		return -ENOENT;
	}
	a->netpol = s;
	return 0;
}

static double ms_since(const struct timespec *t0)
{
	struct timespec t1;

	clock_gettime(CLOCK_MONOTONIC, &t1);
	return (double)(t1.tv_sec - t0->tv_sec) * 1e3 + (double)(t1.tv_nsec - t0->tv_nsec) / 1e6;
}

/* Computes and writes the difference. 0 or -errno (the maps keep what they had). */
static int apply(struct pw_agent *a, const struct pw_node_config *cfg, const struct pw_local_pod *local,
		 int n_local, uint64_t digest)
{
	struct pw_netpol_state *s = a->netpol;
	struct pw_policy_stats st = { 0 };
	struct pw_policy_model m;
	struct pw_policy_state next;
	struct timespec t0;
	char err[512];
	int ret;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	ret = pw_policy_model_parse(cfg->policy_json, &m, err, sizeof(err));
	if (ret) {
		pw_err("network policy: %s", err);
		return ret;
	}
	/* Without a policy nothing is policed and no identity is asked for:
	 * the maps stay empty (the common case costs no writes at all). */
	memset(&next, 0, sizeof(next));
	ret = m.n_pols ? pw_policy_compute(&m, local, n_local, &next) : 0;
	if (ret) {
		pw_err("network policy: cannot compute the maps: %s", strerror(-ret));
		pw_policy_model_free(&m);
		return ret;
	}
	if (!s->have_applied) {
		/* After a restart: what the pinned maps hold is the baseline. */
		ret = pw_policy_state_read(&s->fds, &s->applied);
		if (ret) {
			pw_err("network policy: cannot read the policy maps: %s", strerror(-ret));
			pw_policy_state_free(&next);
			pw_policy_model_free(&m);
			return ret;
		}
		s->have_applied = true;
	}
	ret = pw_policy_sync(&s->fds, &s->applied, &next, &st);
	if (ret)
		pw_err("network policy: writing the maps: %s", strerror(-ret));
	pw_policy_state_free(&s->applied);
	s->applied = next;
	if (ret)   /* partly written: read back what is there next time */
		s->have_applied = false;
	else
		s->digest = digest;
	pw_log(m.n_pols || st.writes || st.deletes ? PW_LOG_INFO : PW_LOG_DEBUG,
	       "network policy: %d polic%s, %d local pod(s) policed, %d identity entr%s, %d rule entr%s in %.2f ms: "
	       "%lu write(s), %lu delete(s)", m.n_pols, m.n_pols == 1 ? "y" : "ies", next.n_eps, next.n_ids,
	       next.n_ids == 1 ? "y" : "ies", next.n_rules, next.n_rules == 1 ? "y" : "ies", ms_since(&t0), st.writes,
	       st.deletes);
	pw_policy_model_free(&m);
	return ret;
}

int pw_netpol_sync(struct pw_agent *a, const struct pw_node_config *cfg)
{
	struct pw_local_pod *local;
	uint64_t digest = 14695981039346656037ull;
	int n_local, ret;

	ret = open_state(a);
	if (ret) {
		if (cfg->policy_json)
			pw_warn("network policy: the datapath has no policy maps: policies not enforced");
		return 0;
	}
	local = local_pods(a, &n_local);
	if (cfg->policy_json)
		digest = fnv64(digest, cfg->policy_json, strlen(cfg->policy_json));
	digest = fnv64(digest, local, (size_t)n_local * sizeof(*local));
	if (a->netpol->have_applied && digest == a->netpol->digest) {
		free(local);
		return 0;
	}
	ret = apply(a, cfg, local, n_local, digest);
	free(local);
	return ret;
}

/* The CNI plugin writes a reservation (by rename) at the start of ADD and
 * removes it at DEL: an event there is a pod coming or going, usually
 * before its veth is even up. The dir appears with the first pod. */
int pw_netpol_pods_fd(struct pw_agent *a)
{
	struct pw_netpol_state *s = a->netpol;
	int fd;

	if (!s)
		return -1;
	if (s->pods_fd >= 0 || access(a->paths.ipam_dir, F_OK) < 0)
		return s->pods_fd;
	fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (fd < 0)
		return -1;
	if (inotify_add_watch(fd, a->paths.ipam_dir, IN_MOVED_TO | IN_CLOSE_WRITE | IN_DELETE | IN_MOVED_FROM) < 0) {
		pw_warn("network policy: cannot watch %s (%s): pods are noticed every %d ms", a->paths.ipam_dir,
			strerror(errno), PW_NETPOL_POLL_MS);
		close(fd);
		return -1;
	}
	s->pods_fd = fd;
	return fd;
}

void pw_netpol_pods_drain(struct pw_agent *a)
{
	char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));

	if (a->netpol && a->netpol->pods_fd >= 0)
		while (read(a->netpol->pods_fd, buf, sizeof(buf)) > 0)
			;
}

void pw_netpol_close(struct pw_agent *a)
{
	if (!a->netpol)
		return;
	if (a->netpol->pods_fd >= 0)
		close(a->netpol->pods_fd);
	pw_policy_state_free(&a->netpol->applied);
	free(a->netpol);
	a->netpol = NULL;
}
