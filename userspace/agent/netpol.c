/* NetworkPolicy in the agent: the policy model plus this node's pods
 * (IPAM's reservations, which carry the namespace/name the runtime passed
 * in CNI_ARGS) -> the policy maps, written incrementally
 * (userspace/lib/policy_inc.c: only what a change touches is recomputed
 * and written; docs/policy.md). The model comes as the config's text (the
 * JSON file: only elements whose text changed are parsed) or, from the
 * Kubernetes source, object by object (pw_netpol_feed: a watch event costs
 * what it touches, not a scan of every element). Re-run on every config
 * change and when the node's pods change. */
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
	struct pw_policy_fds fds;   /* -1 until the datapath's maps are open */
	struct pw_policy_inc *inc;  /* the model as last loaded, and what it wants in the maps */
	bool synced;                /* the maps hold what inc last flushed */
	bool by_object;             /* the model comes through pw_netpol_feed, not the config */
	bool lost;                  /* by_object: inc was dropped, every object is needed again */
	int pods_fd;                /* inotify on the IPAM dir, -1 until it exists */
};

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

static struct pw_netpol_state *state(struct pw_agent *a)
{
	struct pw_netpol_state *s = a->netpol;

	if (s)
		return s;
	s = calloc(1, sizeof(*s));
	if (!s)
		return NULL;
	s->pods_fd = -1;
	s->fds = (struct pw_policy_fds){ -1, -1, -1, -1 };
	a->netpol = s;
	return s;
}

/* The datapath's policy maps (they exist once it is loaded). */
static int open_maps(struct pw_agent *a, struct pw_netpol_state *s)
{
	if (s->fds.ids >= 0)
		return 0;
	s->fds.ids = pw_loader_map_fd(a, PW_MAP_POL_IDS);
	s->fds.ep = pw_loader_map_fd(a, PW_MAP_POL_EP);
	s->fds.rules = pw_loader_map_fd(a, PW_MAP_POLICY);
	s->fds.gate = pw_loader_map_fd(a, PW_MAP_POL_GATE);
	if (s->fds.ids < 0 || s->fds.ep < 0 || s->fds.rules < 0 || s->fds.gate < 0) {
		s->fds = (struct pw_policy_fds){ -1, -1, -1, -1 };
		return -ENOENT;
	}
	return 0;
}

/* The engine is gone (ENOMEM half way): start again from the whole model. */
static void drop_engine(struct pw_netpol_state *s)
{
	pw_policy_inc_free(s->inc);
	s->inc = NULL;
	s->synced = false;
	s->lost = s->by_object;
}

static double ms_since(const struct timespec *t0)
{
	struct timespec t1;

	clock_gettime(CLOCK_MONOTONIC, &t1);
	return (double)(t1.tv_sec - t0->tv_sec) * 1e3 + (double)(t1.tv_nsec - t0->tv_nsec) / 1e6;
}

/* The maps made to hold all that inc wants, from what they hold now (after
 * a restart, or a write that failed half way). */
static int full_sync(struct pw_netpol_state *s, struct pw_policy_stats *st)
{
	struct pw_policy_state have, want;
	int ret = pw_policy_state_read(&s->fds, &have);

	if (ret) {
		pw_err("network policy: cannot read the policy maps: %s", strerror(-ret));
		return ret;
	}
	ret = pw_policy_inc_state(s->inc, &want);
	if (!ret)
		ret = pw_policy_sync(&s->fds, &have, &want, st);
	pw_policy_state_free(&have);
	pw_policy_state_free(&want);
	return ret;
}

/* Loads the model and the node's pods into the incremental computation
 * and writes what changed. 0 or -errno (the maps keep what they had, or
 * are read back and completed next time). */
static int apply(struct pw_agent *a, const struct pw_node_config *cfg, const struct pw_local_pod *local,
		 int n_local)
{
	struct pw_netpol_state *s = a->netpol;
	struct pw_policy_inc_stats ist;
	struct pw_policy_stats st = { 0 };
	struct pw_policy_state old, new;
	struct timespec t0;
	char err[512];
	int ret;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	if (s->by_object && !s->inc)
		return 0;   /* nothing fed yet, or lost: the maps keep what they hold until the model is back */
	/* Without a policy nothing is policed and no identity is asked for:
	 * the maps stay empty (the common case costs no writes at all). */
	if (!s->inc && !(s->inc = pw_policy_inc_new(true)))
		return -ENOMEM;
	if (!s->by_object) {
		ret = pw_policy_inc_load_json(s->inc, cfg->policy_json, err, sizeof(err));
		if (ret) {
			pw_err("network policy: %s", err);
			return ret;
		}
	}
	ret = pw_policy_inc_set_local(s->inc, local, n_local);
	if (!ret)
		ret = pw_policy_inc_flush(s->inc, &old, &new, &ist);
	if (ret) {
		/* The computation lost track: start again from the model next time. */
		pw_err("network policy: cannot compute the maps: %s", strerror(-ret));
		drop_engine(s);
		return ret;
	}
	if (s->synced && !old.n_ids && !old.n_eps && !old.n_rules && !new.n_ids && !new.n_eps && !new.n_rules &&
	    !ist.pods_recomputed && !ist.identities_changed && !ist.policies_recomputed) {
		pw_policy_state_free(&old);
		pw_policy_state_free(&new);
		return 0;   /* nothing changed */
	}
	if (s->synced)
		ret = pw_policy_sync(&s->fds, &old, &new, &st);
	else
		ret = full_sync(s, &st);
	pw_policy_state_free(&old);
	pw_policy_state_free(&new);
	if (ret)
		pw_err("network policy: writing the maps: %s", strerror(-ret));
	s->synced = ret == 0;
	pw_log(pw_policy_inc_n_policies(s->inc) || st.writes || st.deletes ? PW_LOG_INFO : PW_LOG_DEBUG,
	       "network policy: %d polic%s, %d local pod(s) recomputed, %d identit%s changed, %d polic%s recomputed "
	       "in %.2f ms: %lu write(s), %lu delete(s)",
	       pw_policy_inc_n_policies(s->inc), pw_policy_inc_n_policies(s->inc) == 1 ? "y" : "ies", ist.pods_recomputed,
	       ist.identities_changed, ist.identities_changed == 1 ? "y" : "ies", ist.policies_recomputed,
	       ist.policies_recomputed == 1 ? "y" : "ies", ms_since(&t0), st.writes, st.deletes);
	return ret;
}

int pw_netpol_sync(struct pw_agent *a, const struct pw_node_config *cfg)
{
	struct pw_netpol_state *s = state(a);
	struct pw_local_pod *local;
	int n_local, ret;

	if (!s)
		return -ENOMEM;
	if (open_maps(a, s)) {
		if (cfg->policy_json || (s->inc && pw_policy_inc_n_policies(s->inc)))
			pw_warn("network policy: the datapath has no policy maps: policies not enforced");
		return 0;
	}
	local = local_pods(a, &n_local);
	ret = apply(a, cfg, local, n_local);
	free(local);
	return ret;
}

/* The CNI plugin writes a reservation (by rename) at the start of ADD and
 * removes it at DEL: an event there is a pod coming or going, usually
 * before its veth is even up. The dir appears with the first pod. */
int pw_netpol_feed(struct pw_agent *a, const struct pw_policy_change *changes, int n, bool reset)
{
	struct pw_netpol_state *s = state(a);
	char err[512] = "";
	int ret;

	if (!s)
		return -ENOMEM;
	s->by_object = true;
	if (reset) {
		/* The maps are diffed against the new engine at the next write. */
		pw_policy_inc_free(s->inc);
		s->inc = pw_policy_inc_new(true);
		s->synced = false;
		s->lost = !s->inc;
		if (!s->inc)
			return -ENOMEM;
	} else if (!s->inc) {
		s->lost = n > 0;   /* changes to a model this engine does not hold */
		return n ? -ESTALE : 0;
	}
	ret = pw_policy_inc_apply(s->inc, changes, n, err, sizeof(err));
	if (ret == -ENOMEM) {
		pw_err("network policy: cannot take the model's changes: %s", strerror(-ret));
		drop_engine(s);
		return ret;
	}
	/* The Kubernetes source checked each element alone: a refusal here is
	 * a bug, and the object keeps its last version. */
	if (ret)
		pw_err("network policy: %s", err);
	return 0;
}

bool pw_netpol_wants_all(const struct pw_agent *a)
{
	return a->netpol && a->netpol->lost;
}

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
	pw_policy_inc_free(a->netpol->inc);
	free(a->netpol);
	a->netpol = NULL;
}
