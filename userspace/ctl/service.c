/* podwirectl service add|del|list: services managed through the agent's
 * config source (architecture §8, §10), never behind its back.
 *
 * add/del edit the config file the agent watches: under an flock on
 * <config>.lock (two podwirectl never interleave a read-modify-write), the
 * file is read, its services array changed with everything else kept
 * (userspace/lib/svcedit.c), the result checked with the agent's own
 * parser -- a bad service is refused with the parser's message and the
 * file is not touched -- and written to a temporary file renamed over the
 * config. Then the agent is waited for: after every (re)load it writes
 * <state_dir>/applied.json with the digest of the bytes it read and
 * whether the services applied; once the digest is ours, the change is in
 * the datapath (or the agent refused it: then the previous file is put
 * back, so that config and datapath agree again). */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include "ctl.h"
#include "file.h"
#include "config.h"
#include "inspect.h"
#include "file.h"
#include "nodeinfo.h"
#include "services.h"
#include "svcedit.h"

#define WAIT_DEFAULT_S 5.0

void ctl_config_path(const struct ctl *c, char *buf, size_t len)
{
	struct pw_nodeinfo ni;

	if (pw_nodeinfo_read(c->paths.node_file, &ni, NULL, 0) == 0 && ni.config[0])
		snprintf(buf, len, "%s", ni.config);
	else
		snprintf(buf, len, "/etc/podwire/%s.json", c->paths.instance);
}

static double mono_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---------- the config file ---------- */

/* The agent's watch sees one IN_MOVED_TO and never half a file. */
static int write_text(const char *path, const char *text)
{
	return pw_file_write_atomic(path, text, strlen(text));
}

/* flock on <config>.lock, created next to the config: held for the whole
 * read-modify-write-wait. fd or -errno. */
static int lock_config(const char *path)
{
	char lock[PW_PATH_MAX + 80];
	int fd;

	snprintf(lock, sizeof(lock), "%s.lock", path);
	fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0)
		return -errno;
	if (flock(fd, LOCK_EX)) {
		int err = -errno;

		close(fd);
		return err;
	}
	return fd;
}

/* Whether path is the config a Kubernetes-mode agent publishes ("source":
 * "kubernetes", written by pw_config_format): a view of what the API says,
 * which the agent rewrites and never reads back, so an edit there would
 * only wait for a confirmation that cannot come. */
static bool published_by_kubernetes_mode(const char *path)
{
	int err;
	char *text = pw_file_read(path, PW_CONFIG_MAX, NULL, &err);
	cJSON *root = text ? cJSON_Parse(text) : NULL;
	const cJSON *src = cJSON_GetObjectItemCaseSensitive(root, "source");
	bool k8s = cJSON_IsString(src) && strcmp(src->valuestring, "kubernetes") == 0;

	cJSON_Delete(root);
	free(text);
	return k8s;
}

/* ---------- waiting for the agent ---------- */

enum wait_result { APPLIED, REFUSED, NOT_RUNNING, TIMED_OUT };

static enum wait_result wait_applied(const struct ctl *c, uint64_t digest, double wait_s,
				     struct pw_applied *ap)
{
	char path[PW_PATH_MAX + 16];
	double deadline = mono_s() + wait_s;
	int pid;

	pw_applied_path(c->paths.state_dir, path, sizeof(path));
	for (;;) {
		if (!pw_inspect_agent_running(&c->paths, &pid))
			return NOT_RUNNING;
		if (pw_applied_read(path, ap) == 0 && ap->digest == digest)
			return ap->services_ok ? APPLIED : REFUSED;
		if (mono_s() >= deadline)
			return TIMED_OUT;
		usleep(20 * 1000);
	}
}

struct edit {
	const char *verb;             /* "add", "del" */
	const char *name;
	const struct pw_svc_edit *svc;
	bool replace;
	double wait_s;
	const char *config;           /* --config, or NULL */
};

static int report(const struct ctl *c, const struct edit *e, const char *path, const char *done,
		  bool applied, const char *why, double ms)
{
	if (c->json) {
		cJSON *o = cJSON_CreateObject();

		cJSON_AddStringToObject(o, "service", e->name);
		cJSON_AddStringToObject(o, "action", done);
		cJSON_AddStringToObject(o, "config", path);
		cJSON_AddBoolToObject(o, "applied", applied);
		if (why)
			cJSON_AddStringToObject(o, "reason", why);
		else
			cJSON_AddNullToObject(o, "reason");
		cJSON_AddNumberToObject(o, "ms", (double)(long)(ms * 10) / 10);
		ctl_json_print(o);
	} else if (applied) {
		printf("service %s %s: applied by podwired in %.0f ms\n", e->name, done, ms);
	}
	return applied ? CTL_OK : CTL_NOT_APPLIED;
}

/* The read-modify-write-wait. */
static int edit_config(struct ctl *c, const struct edit *e)
{
	char path[PW_PATH_MAX + 64], err[600];
	char *old = NULL, *new = NULL;
	struct pw_applied ap;
	const char *done;
	bool replaced = false;
	size_t len;
	int lock, r, ret;
	double t0;

	if (e->config)
		snprintf(path, sizeof(path), "%s", e->config);
	else
		ctl_config_path(c, path, sizeof(path));
	if (published_by_kubernetes_mode(path))
		return ctl_fail(CTL_ERROR, "service %s %s refused: podwired for instance %s runs in Kubernetes mode "
				"(--kubeconfig): services come from the Kubernetes API, and %s is the agent's published "
				"view of them, not a config to edit; change Services and EndpointSlices with kubectl "
				"(e.g. kubectl apply -f, kubectl delete service)", e->verb, e->name, c->paths.instance, path);
	lock = lock_config(path);
	if (lock < 0)
		return ctl_fail(CTL_ERROR, "cannot lock %s.lock: %s", path, strerror(-lock));
	old = pw_file_read(path, PW_CONFIG_MAX, &len, &r);
	if (!old) {
		ret = ctl_fail(CTL_ERROR, "cannot read the config %s: %s%s", path, strerror(-r),
			       r == -ENOENT && !e->config ? " (the agent's config: see --config)" : "");
		goto out;
	}
	err[0] = '\0';
	if (e->svc)
		r = pw_svcedit_put(old, e->svc, e->replace, &new, &replaced, err, sizeof(err));
	else
		r = pw_svcedit_del(old, e->name, &new, err, sizeof(err));
	if (r) {
		ret = ctl_fail(CTL_ERROR, "service %s %s refused: %s%s; %s unchanged", e->verb, e->name,
			       err[0] ? err : strerror(-r), r == -EEXIST ? " (--replace changes it)" : "", path);
		goto out;
	}
	done = e->svc ? (replaced ? "replaced" : "added") : "deleted";
	t0 = mono_s();
	r = write_text(path, new);
	if (r) {
		ret = ctl_fail(CTL_ERROR, "cannot write %s: %s", path, strerror(-r));
		goto out;
	}
	switch (wait_applied(c, pw_config_digest(new, strlen(new)), e->wait_s, &ap)) {
	case APPLIED:
		ret = report(c, e, path, done, true, NULL, (mono_s() - t0) * 1000);
		break;
	case REFUSED:
		/* Put the previous file back: the agent still runs the old
		 * services, and config and datapath must say the same. */
		r = write_text(path, old);
		ret = ctl_fail(CTL_ERROR, "service %s %s refused by podwired: %s; %s", e->verb, e->name, ap.error,
			       r ? "could not restore the previous config" : "the previous config is restored");
		break;
	case NOT_RUNNING:
		ctl_fail(CTL_NOT_APPLIED, "service %s %s in %s, but podwired is not running for instance %s: "
			 "it applies when the agent starts", e->name, done, path, c->paths.instance);
		ret = report(c, e, path, done, false, "agent not running", (mono_s() - t0) * 1000);
		break;
	default:
		ctl_fail(CTL_NOT_APPLIED, "service %s %s in %s, but podwired did not confirm applying it within "
			 "%.1f s (is %s the config it runs with? see its log)", e->name, done, path, e->wait_s, path);
		ret = report(c, e, path, done, false, "not confirmed in time", (mono_s() - t0) * 1000);
		break;
	}
out:
	free(old);
	free(new);
	close(lock);
	return ret;
}

/* ---------- command line ---------- */

static int usage_service(void)
{
	fprintf(stderr,
		"usage: podwirectl [--instance NAME] [-o json] service add NAME --vip IP --port N [--protocol tcp|udp]\n"
		"           [--node-port N] [--algorithm random|maglev] [--affinity-timeout S]\n"
		"           --backend IP:PORT [--backend IP:PORT ...] [--replace] [--config FILE] [--wait S]\n"
		"       podwirectl [--instance NAME] [-o json] service del NAME [--config FILE] [--wait S]\n"
		"       podwirectl [--instance NAME] [-o json] service list [--config FILE]\n");
	return CTL_USAGE;
}

/* A decimal number (the parser judges its range): -1 and a message if not. */
static long number(const char *flag, const char *s)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (!*s || *end || errno || v < 0) {
		ctl_fail(CTL_USAGE, "%s: \"%s\" is not a number", flag, s);
		return -1;
	}
	return v;
}

enum { O_VIP = 1, O_PORT, O_PROTO, O_NODEPORT, O_ALGO, O_AFFINITY, O_BACKEND, O_REPLACE, O_CONFIG, O_WAIT };

static int run_add_del(struct ctl *c, int argc, char **argv, bool add)
{
	static const struct option opts[] = {
		{ "vip", required_argument, NULL, O_VIP },
		{ "port", required_argument, NULL, O_PORT },
		{ "protocol", required_argument, NULL, O_PROTO },
		{ "node-port", required_argument, NULL, O_NODEPORT },
		{ "algorithm", required_argument, NULL, O_ALGO },
		{ "affinity-timeout", required_argument, NULL, O_AFFINITY },
		{ "backend", required_argument, NULL, O_BACKEND },
		{ "replace", no_argument, NULL, O_REPLACE },
		{ "config", required_argument, NULL, O_CONFIG },
		{ "wait", required_argument, NULL, O_WAIT },
		{ NULL, 0, NULL, 0 },
	};
	struct pw_svc_edit svc = { .port = -1, .node_port = -1, .affinity_timeout = -1 };
	struct pw_svc_backend_edit *bes = calloc((size_t)argc, sizeof(*bes));
	struct edit e = { .verb = add ? "add" : "del", .wait_s = WAIT_DEFAULT_S };
	int o, ret = CTL_USAGE;
	char *end;

	if (!bes)
		return ctl_fail(CTL_ERROR, "out of memory");
	opterr = 0;
	optind = 1;
	while (optind < argc) {
		/* NAME may come first, last or among the flags ("+": getopt stops
		 * at it instead of permuting argv). */
		if (argv[optind][0] != '-') {
			if (e.name) {
				ctl_fail(CTL_USAGE, "service %s: unexpected argument \"%s\"", e.verb, argv[optind]);
				goto out;
			}
			e.name = argv[optind++];
			continue;
		}
		o = getopt_long(argc, argv, "+", opts, NULL);
		if (o == -1)
			break;   /* "--" */
		if (!add && o != O_CONFIG && o != O_WAIT && o != '?') {
			ctl_fail(CTL_USAGE, "service del takes only NAME, --config and --wait");
			goto out;
		}
		switch (o) {
		case O_VIP: svc.vip = optarg; break;
		case O_PROTO: svc.protocol = optarg; break;
		case O_ALGO: svc.algorithm = optarg; break;
		case O_REPLACE: e.replace = true; break;
		case O_CONFIG: e.config = optarg; break;
		case O_PORT:
			if ((svc.port = number("--port", optarg)) < 0)
				goto out;
			break;
		case O_NODEPORT:
			if ((svc.node_port = number("--node-port", optarg)) < 0)
				goto out;
			break;
		case O_AFFINITY:
			if ((svc.affinity_timeout = number("--affinity-timeout", optarg)) < 0)
				goto out;
			break;
		case O_BACKEND:
			if (pw_ip_port_parse(optarg, &bes[svc.n_backends].ip, &bes[svc.n_backends].port)) {
				ctl_fail(CTL_USAGE, "--backend: \"%s\" is not IP:PORT (e.g. 10.244.1.2:8080)", optarg);
				goto out;
			}
			svc.n_backends++;
			break;
		case O_WAIT:
			e.wait_s = strtod(optarg, &end);
			if (!*optarg || *end || e.wait_s < 0 || e.wait_s > 3600) {
				ctl_fail(CTL_USAGE, "--wait: \"%s\" is not a number of seconds (0-3600)", optarg);
				goto out;
			}
			break;
		default:
			ctl_fail(CTL_USAGE, "service %s: unknown or incomplete option \"%s\"", e.verb, argv[optind - 1]);
			usage_service();
			goto out;
		}
	}
	for (; optind < argc; optind++) {   /* after "--" */
		if (e.name) {
			ctl_fail(CTL_USAGE, "service %s: unexpected argument \"%s\"", e.verb, argv[optind]);
			goto out;
		}
		e.name = argv[optind];
	}
	if (!e.name) {
		ctl_fail(CTL_USAGE, "service %s: which service? (NAME)", e.verb);
		usage_service();
		goto out;
	}
	if (add) {
		if (!svc.vip || svc.port < 0) {
			ctl_fail(CTL_USAGE, "service add: --vip and --port are required");
			goto out;
		}
		if (!svc.n_backends) {
			ctl_fail(CTL_USAGE, "service add: at least one --backend IP:PORT (a service without "
				 "backends, which refuses connections, can be written in the config file)");
			goto out;
		}
		svc.name = e.name;
		svc.backends = bes;
		e.svc = &svc;
	}
	ret = edit_config(c, &e);
out:
	free(bes);
	return ret;
}

/* ---------- list: the config's services, and whether the datapath has them ---------- */

/* Whether the datapath holds service s exactly (frontend, NodePort,
 * algorithm, affinity, backend set). */
static bool applied_one(const struct pw_services *svc, const struct pw_service_config *s)
{
	struct pw_svc_view v;

	for (int i = 0; i < pw_services_count(svc); i++) {
		if (pw_services_get(svc, i, &v) || v.vip != s->vip || v.port != s->port || v.proto != s->protocol)
			continue;
		if (v.node_port != s->node_port || v.maglev != s->maglev || v.affinity_timeout != s->affinity_timeout ||
		    v.n_backends != (uint32_t)s->n_backends)
			return false;
		for (int b = 0; b < s->n_backends; b++) {
			bool found = false;

			for (uint32_t k = 0; k < v.n_backends && !found; k++) {
				uint32_t ip;
				uint16_t port;

				found = pw_services_backend(svc, v.backend_ids[k], &ip, &port) == 0 &&
					ip == s->backends[b].ip && port == s->backends[b].port;
			}
			if (!found)
				return false;
		}
		return true;
	}
	return false;
}

/* The same, for s as this node's maps hold it: a traffic policy "Local"
 * keeps only the node's backends, perhaps in two services
 * (pw_services_localize). */
static bool applied(const struct pw_services *svc, const struct pw_node_config *cfg,
		    const struct pw_service_config *s)
{
	struct pw_service_config *local;
	bool ok = true;
	int n;

	if (pw_services_localize(s, 1, &cfg->pod_cidr, cfg->ip, &local, &n))
		return false;
	if (!local)
		return applied_one(svc, s);
	for (int i = 0; i < n && ok; i++)
		ok = applied_one(svc, &local[i]);
	pw_services_localized_free(local);
	return ok;
}

static int run_list(struct ctl *c, int argc, char **argv)
{
	struct pw_node_config cfg;
	struct pw_services svc;
	char path[PW_PATH_MAX + 64], err[512], ip[PW_IP4_STRLEN], pb[8];
	const char *config = NULL;
	bool have_svc;
	int ret;

	for (int i = 2; i < argc; i++) {
		if (strcmp(argv[i], "--config") == 0 && i + 1 < argc)
			config = argv[++i];
		else if (strncmp(argv[i], "--config=", 9) == 0)
			config = argv[i] + 9;
		else
			return usage_service();
	}
	if (config)
		snprintf(path, sizeof(path), "%s", config);
	else
		ctl_config_path(c, path, sizeof(path));
	if (pw_config_load(path, &cfg, err, sizeof(err)))
		return ctl_fail(CTL_ERROR, "config %s: %s", path, err);
	have_svc = pw_services_open(&svc, &c->paths, 0) == 0;

	if (c->json) {
		cJSON *arr = cJSON_CreateArray();

		for (int i = 0; i < cfg.n_services; i++) {
			const struct pw_service_config *s = &cfg.services[i];
			cJSON *o = cJSON_CreateObject(), *bes;

			cJSON_AddStringToObject(o, "name", s->name);
			pw_ip4_format(s->vip, ip);
			cJSON_AddStringToObject(o, "vip", ip);
			cJSON_AddNumberToObject(o, "port", s->port);
			cJSON_AddStringToObject(o, "protocol", ctl_proto_name(s->protocol, pb));
			if (s->node_port)
				cJSON_AddNumberToObject(o, "nodePort", s->node_port);
			else
				cJSON_AddNullToObject(o, "nodePort");
			cJSON_AddStringToObject(o, "algorithm", s->maglev ? "maglev" : "random");
			cJSON_AddNumberToObject(o, "affinityTimeoutSeconds", s->affinity_timeout);
			bes = cJSON_AddArrayToObject(o, "backends");
			for (int b = 0; b < s->n_backends; b++) {
				cJSON *bo = cJSON_CreateObject();

				pw_ip4_format(s->backends[b].ip, ip);
				cJSON_AddStringToObject(bo, "ip", ip);
				cJSON_AddNumberToObject(bo, "port", s->backends[b].port);
				cJSON_AddItemToArray(bes, bo);
			}
			cJSON_AddBoolToObject(o, "applied", have_svc && applied(&svc, &cfg, s));
			cJSON_AddItemToArray(arr, o);
		}
		ret = ctl_json_print(arr);
	} else {
		struct ctl_table *t = ctl_table_new(7, "NAME", "FRONTEND", "NODEPORT", "ALGORITHM", "AFFINITY",
						    "BACKENDS", "APPLIED");

		for (int i = 0; i < cfg.n_services; i++) {
			const struct pw_service_config *s = &cfg.services[i];
			char fe[40], np[8], aff[16], *bes = malloc(32 + (size_t)s->n_backends * 24);
			size_t len = 0;

			pw_ip4_format(s->vip, ip);
			snprintf(fe, sizeof(fe), "%s:%u/%s", ip, s->port, ctl_proto_name(s->protocol, pb));
			snprintf(np, sizeof(np), s->node_port ? "%u" : "-", s->node_port);
			snprintf(aff, sizeof(aff), s->affinity_timeout ? "%us" : "-", s->affinity_timeout);
			if (bes) {
				bes[0] = '\0';
				for (int b = 0; b < s->n_backends; b++) {
					pw_ip4_format(s->backends[b].ip, ip);
					len += (size_t)sprintf(bes + len, "%s%s:%u", b ? ", " : "", ip, s->backends[b].port);
				}
				if (!s->n_backends)
					strcpy(bes, "(none)");
			}
			ctl_table_add(t, s->name, fe, np, s->maglev ? "maglev" : "random", aff, bes ? bes : "?",
				      !have_svc ? "?" : applied(&svc, &cfg, s) ? "yes" : "no");
			free(bes);
		}
		ctl_table_print(t, stdout);
		ret = CTL_OK;
	}
	if (have_svc)
		pw_services_close(&svc);
	pw_config_free(&cfg);
	return ret;
}

static int run_service(struct ctl *c, int argc, char **argv)
{
	if (argc < 2)
		return usage_service();
	if (strcmp(argv[1], "add") == 0)
		return run_add_del(c, argc - 1, argv + 1, true);
	if (strcmp(argv[1], "del") == 0 || strcmp(argv[1], "delete") == 0)
		return run_add_del(c, argc - 1, argv + 1, false);
	if (strcmp(argv[1], "list") == 0)
		return run_list(c, argc, argv);
	ctl_fail(CTL_USAGE, "service: \"%s\" is not one of add, del, list", argv[1]);
	return usage_service();
}

const struct ctl_cmd ctl_cmd_service = {
	.name = "service",
	.args = "add NAME --vip IP --port N [--protocol tcp|udp] [--node-port N] [--algorithm random|maglev]\n"
		"          [--affinity-timeout S] --backend IP:PORT [--backend ...] [--replace] | del NAME | list",
	.summary = "change services through the agent's config (waits until the agent applied it)",
	.run = run_service,
	.config_only = true,
};
