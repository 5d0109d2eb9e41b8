/* podwired: flags, signals and the main loop. See docs/agent.md. */
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>
#include <fcntl.h>
#include "podwire/abi.h"
#include "agent.h"
#include "log.h"
#include "maglev.h"
#include "metrics_http.h"
#include "nodeinfo.h"

#define RELOAD_DEBOUNCE_MS 100   /* editors write a file in several steps */

struct options {
	const char *instance;
	const char *config;
	const char *kubeconfig;
	const char *node_name;
	const char *cni_conf_dir;
	enum pw_log_level level;
	bool uninstall;
	int metrics_port;
	bool socket_lb_off;
	int snat_timeout;
	enum pw_attach_mode pod_mode;
	enum pw_pod_device pod_device;
	bool has_pod_device;
	struct pw_lb_sizes lb;
	struct pw_ct_timeouts ct;
	struct pw_nodeport_flags np;
};

static void usage(FILE *out)
{
	fprintf(out,
		"usage: podwired [--instance NAME] [--config FILE] [--log-level debug|info|warn|error]\n"
		"       podwired [--instance NAME] --kubeconfig FILE|incluster --node-name NODE [--config FILE]\n"
		"                [--cni-conf-dir DIR] [other flags as above]\n"
		"       podwired [--instance NAME] --uninstall\n"
		"  --instance NAME  node instance (default \"default\"): pins under /sys/fs/bpf/podwire/NAME,\n"
		"                   state under /run/podwire/NAME\n"
		"  --config FILE    node config (default /etc/podwire/NAME.json), watched for changes;\n"
		"                   in Kubernetes mode only its cluster section and node.uplink/mtu (optional)\n"
		"  --kubeconfig F   Kubernetes mode: nodes, services and endpoints from the API server of\n"
		"                   kubeconfig F (its current context), or \"incluster\" for the pod's\n"
		"                   service account (KUBERNETES_SERVICE_HOST/PORT)\n"
		"  --node-name N    Kubernetes mode: this node's Node object (as its kubelet registered it)\n"
		"  --cni-conf-dir D write D/" PW_CNI_CONFLIST_NAME " once the datapath is ready (default in\n"
		"                   Kubernetes mode " PW_CNI_CONF_DIR_DEFAULT "; else only when given)\n"
		"  --snat-timeout S seconds before an idle masquerade entry expires (default %d; ICMP at most %d)\n"
		"  --metrics-port N Prometheus /metrics on 127.0.0.1:N (default " PW_METRICS_PORT_DEFAULT_STR ", 0 = off)\n"
		"  --pod-attach M   how pod veths get the pod program: tc (cls_bpf, default: attaching\n"
		"                   costs no RCU grace period) or tcx (where the kernel has it)\n"
		"  --pod-device D   pod devices: veth, netkit (kernel >= 6.7 with CONFIG_NETKIT) or auto\n"
		"                   (netkit where the kernel has it, else veth); overrides node.podDevice;\n"
		"                   default veth. One kind per node: a change needs a node without pods\n"
		"  --socket-lb on|off  load-balance services at connect()/sendmsg() for this node's own\n"
		"                   processes and hostNetwork pods (cgroup v2 hooks; default on)\n"
		"  --nodeport-addresses CIDR[,CIDR...]  only the node's addresses inside these serve NodePorts\n"
		"                   (default: cluster.nodePortAddresses, else every address but loopback)\n"
		"  --nodeport-range LO-HI|none  ports reserved in the netns's ip_local_reserved_ports\n"
		"                   (default: cluster.nodePortRange, else " PW_NODEPORT_RANGE_DEFAULT ")\n"
		"  --uninstall      detach and remove everything of the instance, then exit\n"
		"service load balancing (sizes: default, or the pinned map's size when it exists;\n"
		"a pinned map cannot be resized: a different size needs --uninstall first):\n"
		"  --max-services N   frontends (ClusterIP and NodePort each count one) (default %u)\n"
		"  --max-backends N   distinct backend addresses (default %u)\n"
		"  --max-slots N      backend slots, the sum of all services' backends (default %u)\n"
		"  --max-ct N         conntrack entries, two per flow (default %u)\n"
		"  --max-affinity N   ClientIP session affinity entries (default %u)\n"
		"  --max-maglev N     services using Maglev (default %u)\n"
		"  --maglev-size M    Maglev table size, a prime >= the backends of any Maglev service (default %u)\n"
		"conntrack expiry (seconds idle, by state):\n"
		"  --ct-timeout-tcp S        TCP established (default %d)\n"
		"  --ct-timeout-tcp-syn S    TCP opening: SYN seen, no answer yet (default %d)\n"
		"  --ct-timeout-tcp-close S  TCP closing or closed: FIN or RST seen (default %d)\n"
		"  --ct-timeout-udp S        UDP (default %d)\n",
		PW_SNAT_TIMEOUT_DEFAULT, PW_SNAT_TIMEOUT_ICMP, PW_MAX_SERVICES, PW_MAX_BACKENDS, PW_MAX_SLOTS,
		PW_MAX_CT, PW_MAX_AFFINITY, PW_MAX_MAGLEV, PW_MAGLEV_M, PW_CT_TIMEOUT_TCP, PW_CT_TIMEOUT_TCP_SYN,
		PW_CT_TIMEOUT_TCP_CLOSE, PW_CT_TIMEOUT_UDP);
}

/* A decimal in [min, max]; prints why not. */
static int parse_num(const char *flag, const char *arg, long min, long max, long *out)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(arg, &end, 10);
	if (*arg == '\0' || *end || errno || v < min || v > max) {
		fprintf(stderr, "podwired: --%s: \"%s\" is not a number in %ld..%ld\n", flag, arg, min, max);
		return -EINVAL;
	}
	*out = v;
	return 0;
}

enum {
	OPT_MAX_SERVICES = 1000, OPT_MAX_BACKENDS, OPT_MAX_SLOTS, OPT_MAX_CT, OPT_MAX_AFFINITY,
	OPT_MAX_MAGLEV, OPT_MAGLEV_SIZE, OPT_CT_TCP, OPT_CT_TCP_SYN, OPT_CT_TCP_CLOSE, OPT_CT_UDP,
	OPT_NODEPORT_ADDRESSES, OPT_NODEPORT_RANGE,
};

/* --nodeport-addresses and --nodeport-range. 1 if c is not one of them. */
static int parse_nodeport_option(int c, const char *arg, struct options *o)
{
	char err[128];

	if (c == OPT_NODEPORT_ADDRESSES) {
		if (pw_cidr_list_parse(arg, o->np.cidrs, PW_NODEPORT_CIDRS_MAX, &o->np.n_cidrs, err, sizeof(err))) {
			fprintf(stderr, "podwired: --nodeport-addresses: %s\n", err);
			return -EINVAL;
		}
		o->np.cidrs_set = true;
		return 0;
	}
	if (c == OPT_NODEPORT_RANGE) {
		if (pw_port_range_parse(arg, &o->np.range_min, &o->np.range_max)) {
			fprintf(stderr, "podwired: --nodeport-range: \"%s\" is not LO-HI (ports 1..65535, LO <= HI) "
				"or none\n", arg);
			return -EINVAL;
		}
		o->np.range_set = true;
		return 0;
	}
	return 1;
}

/* The load-balancing flags: sizes and conntrack timeouts. 1 if c is not one. */
static int parse_lb_option(int c, const char *name, const char *arg, struct options *o)
{
	const long max_map = 1L << 24;   /* hash maps beyond 16M entries: surely a typo */
	struct { int opt; uint32_t *size; int *secs; } t[] = {
		{ OPT_MAX_SERVICES, &o->lb.services, NULL }, { OPT_MAX_BACKENDS, &o->lb.backends, NULL },
		{ OPT_MAX_SLOTS, &o->lb.slots, NULL },       { OPT_MAX_CT, &o->lb.ct, NULL },
		{ OPT_MAX_AFFINITY, &o->lb.affinity, NULL }, { OPT_MAX_MAGLEV, &o->lb.maglev, NULL },
		{ OPT_CT_TCP, NULL, &o->ct.tcp },            { OPT_CT_TCP_SYN, NULL, &o->ct.tcp_syn },
		{ OPT_CT_TCP_CLOSE, NULL, &o->ct.tcp_close }, { OPT_CT_UDP, NULL, &o->ct.udp },
	};
	long v;

	if (c == OPT_MAGLEV_SIZE) {
		if (parse_num(name, arg, 2, PW_MAGLEV_M_MAX, &v))
			return -EINVAL;
		if (!pw_is_prime((uint32_t)v)) {
			fprintf(stderr, "podwired: --maglev-size: %ld is not a prime (e.g. 251, 1021, 4093, 16381, 65537)\n", v);
			return -EINVAL;
		}
		o->lb.maglev_m = (uint32_t)v;
		return 0;
	}
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		if (t[i].opt != c)
			continue;
		if (parse_num(name, arg, 1, t[i].size ? max_map : 7 * 86400, &v))
			return -EINVAL;
		if (t[i].size)
			*t[i].size = (uint32_t)v;
		else
			*t[i].secs = (int)v;
		return 0;
	}
	return 1;
}

static int parse_options(int argc, char **argv, struct options *o)
{
	static const struct option longopts[] = {
		{ "instance", required_argument, NULL, 'i' },
		{ "config", required_argument, NULL, 'c' },
		{ "kubeconfig", required_argument, NULL, 'K' },
		{ "node-name", required_argument, NULL, 'N' },
		{ "cni-conf-dir", required_argument, NULL, 'D' },
		{ "log-level", required_argument, NULL, 'l' },
		{ "uninstall", no_argument, NULL, 'u' },
		{ "metrics-port", required_argument, NULL, 'm' },
		{ "snat-timeout", required_argument, NULL, 'T' },
		{ "pod-attach", required_argument, NULL, 'P' },
		{ "socket-lb", required_argument, NULL, 'S' },
		{ "pod-device", required_argument, NULL, 'd' },
		{ "max-services", required_argument, NULL, OPT_MAX_SERVICES },
		{ "max-backends", required_argument, NULL, OPT_MAX_BACKENDS },
		{ "max-slots", required_argument, NULL, OPT_MAX_SLOTS },
		{ "max-ct", required_argument, NULL, OPT_MAX_CT },
		{ "max-affinity", required_argument, NULL, OPT_MAX_AFFINITY },
		{ "max-maglev", required_argument, NULL, OPT_MAX_MAGLEV },
		{ "maglev-size", required_argument, NULL, OPT_MAGLEV_SIZE },
		{ "ct-timeout-tcp", required_argument, NULL, OPT_CT_TCP },
		{ "ct-timeout-tcp-syn", required_argument, NULL, OPT_CT_TCP_SYN },
		{ "ct-timeout-tcp-close", required_argument, NULL, OPT_CT_TCP_CLOSE },
		{ "ct-timeout-udp", required_argument, NULL, OPT_CT_UDP },
		{ "nodeport-addresses", required_argument, NULL, OPT_NODEPORT_ADDRESSES },
		{ "nodeport-range", required_argument, NULL, OPT_NODEPORT_RANGE },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int c, idx = 0;

	o->instance = PW_DEFAULT_INSTANCE;
	o->level = PW_LOG_INFO;
	o->metrics_port = PW_METRICS_PORT_DEFAULT;
	o->pod_mode = PW_ATTACH_TC;
	while ((c = getopt_long(argc, argv, "i:c:l:uh", longopts, &idx)) != -1) {
		if (c >= OPT_NODEPORT_ADDRESSES) {
			if (parse_nodeport_option(c, optarg, o))
				return -EINVAL;
			continue;
		}
		if (c >= OPT_MAX_SERVICES) {
			if (parse_lb_option(c, longopts[idx].name, optarg, o))
				return -EINVAL;
			continue;
		}
		switch (c) {
		case 'i': o->instance = optarg; break;
		case 'c': o->config = optarg; break;
		case 'K': o->kubeconfig = optarg; break;
		case 'N': o->node_name = optarg; break;
		case 'D': o->cni_conf_dir = optarg; break;
		case 'u': o->uninstall = true; break;
		case 'm': {
			char *end;
			long v = strtol(optarg, &end, 10);

			if (*optarg == '\0' || *end || v < 0 || v > 65535) {
				fprintf(stderr, "podwired: --metrics-port: \"%s\" is not a port number (0 = off)\n", optarg);
				return -EINVAL;
			}
			o->metrics_port = (int)v;
			break;
		}
		case 'T': {
			char *end;
			long v = strtol(optarg, &end, 10);

			if (*optarg == '\0' || *end || v < 1 || v > 86400) {
				fprintf(stderr, "podwired: --snat-timeout: \"%s\" is not a number of seconds in 1..86400\n", optarg);
				return -EINVAL;
			}
			o->snat_timeout = (int)v;
			break;
		}
		case 'P':
			if (pw_attach_mode_parse(optarg, &o->pod_mode)) {
				fprintf(stderr, "podwired: --pod-attach: \"%s\" is not tc or tcx\n", optarg);
				return -EINVAL;
			}
			break;
		case 'd':
			if (pw_pod_device_parse(optarg, &o->pod_device)) {
				fprintf(stderr, "podwired: --pod-device: \"%s\" is not one of veth, netkit, auto\n", optarg);
				return -EINVAL;
			}
			o->has_pod_device = true;
			break;
		case 'S':
			if (strcmp(optarg, "on") && strcmp(optarg, "off")) {
				fprintf(stderr, "podwired: --socket-lb: \"%s\" is not on or off\n", optarg);
				return -EINVAL;
			}
			o->socket_lb_off = strcmp(optarg, "off") == 0;
			break;
		case 'l':
			if (pw_log_level_parse(optarg, &o->level)) {
				fprintf(stderr, "podwired: --log-level: \"%s\" is not one of debug, info, warn, error\n", optarg);
				return -EINVAL;
			}
			break;
		case 'h': usage(stdout); exit(0);
		default: usage(stderr); return -EINVAL;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "podwired: unexpected argument \"%s\"\n", argv[optind]);
		usage(stderr);
		return -EINVAL;
	}
	if (!o->uninstall && !!o->kubeconfig != !!o->node_name) {
		fprintf(stderr, "podwired: %s\n", o->kubeconfig ?
			"--kubeconfig needs --node-name: the Node object of this node, as its kubelet registered it" :
			"--node-name is for Kubernetes mode: it needs --kubeconfig FILE (or --kubeconfig incluster)");
		return -EINVAL;
	}
	return 0;
}

static void set_log_tag(const char *tag, enum pw_log_level level)
{
	char prog[96];

	snprintf(prog, sizeof(prog), "podwired[%s]", tag);
	pw_log_init(prog, level, stderr);
}

/* Termination and reload signals arrive through a signalfd: handled between
 * steps, never in the middle of attaching something. */
static int signals_open(void)
{
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	if (sigprocmask(SIG_BLOCK, &set, NULL))
		return -errno;
	signal(SIGPIPE, SIG_IGN);
	return signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
}

/* applied.json after every (re)load, for podwirectl service add|del.
 * parse_err: the file did not parse (nothing applied); else the outcome of
 * the reconcile (ret), services judged by a->svc_err. */
static void publish_applied(struct pw_agent *a, uint64_t digest, const char *parse_err, int ret)
{
	struct pw_applied ap = { .digest = digest };
	char path[PW_PATH_MAX + 16];
	int err;

	if (parse_err) {
		snprintf(ap.error, sizeof(ap.error), "config: %s", parse_err);
	} else {
		/* A restart that would fail is not ok, though nothing failed yet:
		 * the operator learns it now, not at the next reboot. */
		ap.ok = ret == 0 && !a->restart_err[0];
		ap.services_ok = !a->svc_err[0];
		ap.services = a->cfg.n_services;
		snprintf(ap.restart_pending, sizeof(ap.restart_pending), "%s", a->restart_pending);
		if (a->svc_err[0])
			snprintf(ap.error, sizeof(ap.error), "services: %s", a->svc_err);
		else if (ret)
			snprintf(ap.error, sizeof(ap.error), "applied with errors: see the agent's log");
		else if (a->restart_err[0])
			snprintf(ap.error, sizeof(ap.error), "%s", a->restart_err);
	}
	pw_applied_path(a->paths.state_dir, path, sizeof(path));
	err = pw_applied_write(path, &ap);
	if (err)
		pw_warn("cannot write %s: %s", path, strerror(-err));
}

static void reload(struct pw_agent *a)
{
	struct pw_node_config next;
	char err[512];
	uint64_t digest;
	int ret;

	if (pw_config_load_digest(a->config_path, &next, &digest, err, sizeof(err))) {
		pw_err("config %s: %s; keeping the running config", a->config_path, err);
		publish_applied(a, digest, err, 0);
		return;
	}
	pw_info("config %s changed: applying", a->config_path);
	pw_socklb_sweep(a);
	ret = pw_reconcile(a, &a->cfg, &next);
	if (ret) {
		pw_metrics_reconcile_error();
		pw_warn("config applied with errors (see above)");
	}
	pw_config_free(&a->cfg);
	a->cfg = next;
	publish_applied(a, digest, NULL, ret);
}

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Returns when SIGTERM or SIGINT arrives. */
static void run(struct pw_agent *a, int sig_fd, int watch_fd)
{
	long long reload_at = -1;

	for (;;) {
		/* poll ignores negative fds: an unwatched config, no IPAM dir yet. */
		struct pollfd fds[3] = {
			{ .fd = sig_fd, .events = POLLIN },
			{ .fd = watch_fd, .events = POLLIN },
			{ .fd = pw_netpol_pods_fd(a), .events = POLLIN },
		};
		/* Pods the CNI plugin adds or deletes get their policy at once
		 * (the IPAM dir's events), and at the latest after the timeout. */
		int timeout = fds[2].fd >= 0 ? PW_NETPOL_POLL_SLOW_MS : PW_NETPOL_POLL_MS;

		if (reload_at >= 0) {
			long long left = reload_at - now_ms();

			timeout = left > 0 ? (left < timeout ? (int)left : timeout) : 0;
		}
		if (poll(fds, 3, timeout) < 0 && errno != EINTR) {
			pw_err("poll: %s", strerror(errno));
			return;
		}
		if (fds[0].revents & POLLIN) {
			struct signalfd_siginfo si;

			while (read(sig_fd, &si, sizeof(si)) == sizeof(si)) {
				if (si.ssi_signo == SIGHUP) {
					reload_at = now_ms();
				} else {
					pw_info("received %s: exiting; the datapath stays pinned and attached",
						strsignal((int)si.ssi_signo));
					return;
				}
			}
		}
		if (watch_fd >= 0 && (fds[1].revents & POLLIN) && pw_watch_changed(watch_fd, a->config_path))
			reload_at = now_ms() + RELOAD_DEBOUNCE_MS;
		if (reload_at >= 0 && now_ms() >= reload_at) {
			reload_at = -1;
			reload(a);
		}
		if (fds[2].revents & POLLIN)
			pw_netpol_pods_drain(a);
		pw_netpol_sync(a, &a->cfg);
	}
}

int pw_agent_start_datapath(struct pw_agent *a, int *applied)
{
	char cidr[PW_CIDR_STRLEN], gw[PW_IP4_STRLEN];
	struct pw_node_config empty;
	int ret;

	set_log_tag(a->cfg.name, (enum pw_log_level)a->log_level);
	ret = pw_node_check(&a->cfg, &a->uplink_ifindex);
	if (ret)
		return ret;

	ret = pw_mkdirs(a->paths.state_dir, 0755);
	if (ret) {
		pw_err("cannot create %s: %s", a->paths.state_dir, strerror(-ret));
		return ret;
	}
	if (a->lock_fd < 0) {
		ret = pw_agent_lock(a);
		if (ret)
			return ret;
	}
	ret = pw_loader_start(a);
	if (ret)
		return ret;
	ret = pw_node_setup(a);
	if (ret)
		return ret;
	pw_socklb_sweep(a);
	memset(&empty, 0, sizeof(empty));
	*applied = pw_reconcile(a, &empty, &a->cfg);
	if (*applied) {
		pw_metrics_reconcile_error();
		pw_warn("initial config applied with errors (see above)");
	}

	pw_cidr_format(&a->cfg.pod_cidr, cidr);
	pw_ip4_format(pw_cidr_gateway(&a->cfg.pod_cidr), gw);
	pw_info("loaded datapath (%s), pod CIDR %s, gateway %s, uplink %s, pod MTU %d",
		pw_attach_mode_name(a->mode), cidr, gw, a->cfg.uplink, a->pod_mtu);
	return 0;
}

/* Everything up to "ready". Nothing is created before the config and the
 * uplink check out. */
static int start(struct pw_agent *a, const char *cni_conf_dir)
{
	char err[512];
	uint64_t digest;
	int ret, applied;

	ret = pw_config_load_digest(a->config_path, &a->cfg, &digest, err, sizeof(err));
	if (ret) {
		pw_err("config %s: %s", a->config_path, err);
		return ret;
	}
	ret = pw_agent_start_datapath(a, &applied);
	if (ret)
		return ret;
	publish_applied(a, digest, NULL, applied);
	return cni_conf_dir ? pw_cni_conflist_write(&a->paths, cni_conf_dir) : 0;
}

/* Kubernetes mode: runs until a termination signal. */
static int run_kubernetes(struct pw_agent *a, const struct options *o, int sig_fd)
{
	struct pw_k8s_flags f = {
		.kubeconfig = o->kubeconfig,
		.node_name = o->node_name,
		.cni_conf_dir = o->cni_conf_dir ? o->cni_conf_dir : PW_CNI_CONF_DIR_DEFAULT,
		.metrics_port = o->metrics_port,
	};

	return pw_k8s_main(a, &f, sig_fd);
}

int main(int argc, char **argv)
{
	struct pw_agent a = { .lock_fd = -1 };
	struct options o = { 0 };
	char config_path[PW_PATH_MAX + 32];
	int sig_fd, watch_fd, ret;

	if (parse_options(argc, argv, &o))
		return 1;
	set_log_tag(o.instance, o.level);
	if (pw_paths_init(&a.paths, o.instance)) {
		pw_err("--instance: \"%s\" is not a valid instance name ([A-Za-z0-9_-], 1-63 characters)",
		       o.instance);
		return 1;
	}
	/* Kubernetes mode runs without a config file when none is given. */
	if (!o.config && (!o.kubeconfig || o.uninstall)) {
		snprintf(config_path, sizeof(config_path), "/etc/podwire/%s.json", a.paths.instance);
		o.config = config_path;
	}
	a.config_path = o.config;
	a.log_level = o.level;
	a.snat_timeout = o.snat_timeout;
	a.pod_mode = o.pod_mode;
	a.pod_device_flag = o.pod_device;
	a.has_pod_device_flag = o.has_pod_device;
	a.socket_lb_off = o.socket_lb_off;
	a.lb = o.lb;
	a.np_flags = o.np;
	a.ct_timeout.tcp = o.ct.tcp ? o.ct.tcp : PW_CT_TIMEOUT_TCP;
	a.ct_timeout.tcp_syn = o.ct.tcp_syn ? o.ct.tcp_syn : PW_CT_TIMEOUT_TCP_SYN;
	a.ct_timeout.tcp_close = o.ct.tcp_close ? o.ct.tcp_close : PW_CT_TIMEOUT_TCP_CLOSE;
	a.ct_timeout.udp = o.ct.udp ? o.ct.udp : PW_CT_TIMEOUT_UDP;
	if (o.uninstall)
		return pw_uninstall(&a.paths, o.config) ? 1 : 0;

	sig_fd = signals_open();
	if (sig_fd < 0) {
		pw_err("cannot set up signal handling: %s", strerror(-sig_fd));
		return 1;
	}
	if (o.kubeconfig) {
		ret = run_kubernetes(&a, &o, sig_fd);
		close(sig_fd);
		pw_loader_close(&a);
		pw_config_free(&a.cfg);
		if (a.lock_fd >= 0)
			close(a.lock_fd);
		return ret ? 1 : 0;
	}
	ret = start(&a, o.cni_conf_dir);
	if (ret) {
		pw_loader_close(&a);
		pw_config_free(&a.cfg);
		return 1;
	}
	watch_fd = pw_watch_open(a.config_path);
	if (watch_fd < 0)
		pw_warn("cannot watch %s (%s): send SIGHUP to reload", a.config_path, strerror(-watch_fd));
	ret = pw_metrics_http_start(&a.paths, o.metrics_port);
	if (ret)
		pw_warn("cannot serve metrics on 127.0.0.1:%d (%s): running without them", o.metrics_port, strerror(-ret));
	pw_info("ready");

	run(&a, sig_fd, watch_fd);
	pw_metrics_http_stop();

	if (watch_fd >= 0)
		close(watch_fd);
	close(sig_fd);
	pw_loader_close(&a);
	pw_config_free(&a.cfg);
	if (a.lock_fd >= 0)
		close(a.lock_fd);
	return 0;
}
