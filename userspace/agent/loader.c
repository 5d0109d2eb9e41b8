/* Loading, pinning and attaching the datapath (architecture §4).
 *
 * Restart semantics: maps are pinned by name under the instance's pin dir,
 * so a restarted agent reuses them (endpoints, counters and later conntrack
 * survive). Its programs are fresh, though, so every attachment -- the uplink
 * and every pod veth in pw_ep_ifindex -- is moved to the new program in place
 * (tcx: bpf_link_update; tc: filter replace). Nothing is detached at any
 * point, so traffic keeps flowing through the restart. */
#include <errno.h>
#include <fcntl.h>
#include <dirent.h>
#include <ftw.h>
#include <net/if.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <linux/magic.h>
#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include "podwire/abi.h"
#include "agent.h"
#include "log.h"
#include "netlink.h"
#include "nodeinfo.h"
#include "services.h"
#include "pod.skel.h"
#include "host.skel.h"
#include "sock.skel.h"
/* The overlay object (bpf/overlay.bpf.c) is built when its source exists;
 * without it the agent still builds, and vxlan routing refuses to start. */
#if __has_include("overlay.skel.h")
#include "overlay.skel.h"
#define PW_HAVE_OVERLAY 1
#else
#define PW_HAVE_OVERLAY 0
#endif

#define BPFFS_MOUNT "/sys/fs/bpf"

struct pw_datapath {
	struct pod_bpf *pod;
	struct host_bpf *host;
#if PW_HAVE_OVERLAY
	struct overlay_bpf *overlay;   /* vxlan mode only */
#endif
	struct sock_bpf *sock;         /* socket load balancing, NULL when off or not loadable */
	struct bpf_object *objs[4];    /* the loaded ones, for lookups by name */
	int n_objs;
	int maglev_inner_fd;           /* pw_maglev's inner-map template while loading, else -1 */
};

/* libbpf's own messages into our log: warnings (a verifier log, a pinned
 * map that does not match) matter to an operator, the rest is debug. Kernel
 * netlink extack messages are debug too: bpf_tc_hook_create on an existing
 * clsact reports one on every re-attach, and real failures are logged by us
 * with their errno anyway. */
static int libbpf_print(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	char buf[1024];
	size_t n;

	vsnprintf(buf, sizeof(buf), fmt, ap);
	n = strlen(buf);
	while (n && buf[n - 1] == '\n')
		buf[--n] = '\0';
	if (n)
		pw_log(level == LIBBPF_WARN && !strstr(buf, "Kernel error message") ? PW_LOG_WARN : PW_LOG_DEBUG,
		       "%s", buf);
	return 0;
}

static bool is_bpffs(const char *path)
{
	struct statfs st;

	return statfs(path, &st) == 0 && st.f_type == BPF_FS_MAGIC;
}

static int ensure_pin_dirs(const struct pw_paths *p)
{
	const char *dirs[] = { p->pin_dir, p->prog_dir, p->link_dir };
	int err;

	if (strncmp(p->pin_dir, BPFFS_MOUNT "/", strlen(BPFFS_MOUNT) + 1) == 0 && !is_bpffs(BPFFS_MOUNT)) {
		if (mount("bpf", BPFFS_MOUNT, "bpf", 0, "mode=0700")) {
			err = -errno;
			pw_err("cannot mount a bpffs at " BPFFS_MOUNT ": %s", strerror(-err));
			return err;
		}
		/* A private mount namespace (ip netns exec) gets a private bpffs:
		 * the CNI plugin would not find the pins. */
		pw_warn("mounted a bpffs at " BPFFS_MOUNT "; if this process runs in a private mount "
			"namespace (ip netns exec), other processes will not see its pins: "
			"enter the node with nsenter --net instead");
	}
	for (unsigned i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
		err = pw_mkdirs(dirs[i], 0700);
		if (err) {
			pw_err("cannot create %s: %s", dirs[i], strerror(-err));
			return err;
		}
	}
	if (!is_bpffs(p->pin_dir)) {
		pw_err("%s is not on a bpffs: pins would not be possible", p->pin_dir);
		return -ENOTSUP;
	}
	return 0;
}

/* Per-node constants, baked into the programs before load (network order). */
#define SET_RODATA(rodata, cfg) do {                                             \
	(rodata)->cfg_gateway_ip   = htonl(pw_cidr_gateway(&(cfg)->pod_cidr));    \
	(rodata)->cfg_node_ip      = htonl((cfg)->ip);                            \
	(rodata)->cfg_pod_cidr     = htonl((cfg)->pod_cidr.addr);                 \
	(rodata)->cfg_pod_mask     = htonl(pw_cidr_mask((cfg)->pod_cidr.prefix)); \
	(rodata)->cfg_cluster_cidr = htonl((cfg)->cluster_cidr.addr);             \
	(rodata)->cfg_cluster_mask = htonl(pw_cidr_mask((cfg)->cluster_cidr.prefix)); \
	(rodata)->cfg_service_cidr = htonl((cfg)->service_cidr.addr);             \
	(rodata)->cfg_service_mask = htonl(pw_cidr_mask((cfg)->service_cidr.prefix)); \
} while (0)

static struct bpf_map *rodata_map(struct bpf_object *obj)
{
	struct bpf_map *m;

	bpf_object__for_each_map(m, obj) {
		const char *name = bpf_map__name(m);
		size_t n = strlen(name);

		if (bpf_map__is_internal(m) && n >= 7 && strcmp(name + n - 7, ".rodata") == 0)
			return m;
	}
	return NULL;
}

/* Sets the `const volatile __u32 name` global of an opened (not yet loaded)
 * object, found through its BTF: the globals that only some objects declare
 * (cfg_routing_mode, cfg_overlay_ifindex, cfg_masquerade) are set wherever
 * they exist without the agent depending on which. -ENOENT if absent. */
static int set_rodata_u32(struct bpf_object *obj, const char *name, __u32 val)
{
	const struct btf *btf = bpf_object__btf(obj);
	const struct btf_var_secinfo *vs;
	const struct btf_type *sec;
	struct bpf_map *map = rodata_map(obj);
	size_t size = 0;
	char *data;
	int id;

	if (!btf || !map)
		return -ENOENT;
	id = btf__find_by_name_kind(btf, ".rodata", BTF_KIND_DATASEC);
	data = bpf_map__initial_value(map, &size);
	if (id < 0 || !data)
		return -ENOENT;
	sec = btf__type_by_id(btf, id);
	vs = btf_var_secinfos(sec);
	for (int i = 0; i < btf_vlen(sec); i++, vs++) {
		const struct btf_type *var = btf__type_by_id(btf, vs->type);

		if (strcmp(btf__name_by_offset(btf, var->name_off), name))
			continue;
		if (vs->size != sizeof(val) || vs->offset + vs->size > size)
			return -EINVAL;
		memcpy(data + vs->offset, &val, sizeof(val));
		return 0;
	}
	return -ENOENT;
}

/* The cross-node constants, in every object that declares them. */
static int set_cross_node_rodata(struct pw_agent *a, struct bpf_object *obj)
{
	const struct { const char *name; __u32 val; } vars[] = {
		{ "cfg_routing_mode", a->cfg.routing == PW_ROUTING_VXLAN ? PW_MODE_VXLAN : PW_MODE_NATIVE },
		{ "cfg_overlay_ifindex", (__u32)a->overlay_ifindex },
		{ "cfg_masquerade", a->cfg.masquerade ? 1 : 0 },
	};

	for (unsigned i = 0; i < sizeof(vars) / sizeof(vars[0]); i++) {
		int err = set_rodata_u32(obj, vars[i].name, vars[i].val);

		if (err == -EINVAL) {
			pw_err("%s: %s is not a 32-bit global", bpf_object__name(obj), vars[i].name);
			return err;
		}
		if (err)
			pw_debug("%s: no %s", bpf_object__name(obj), vars[i].name);
	}
	return 0;
}

/* A tcx link only takes a program loaded for its hook (see datapath.h).
 * Programs the object does not have (yet) are skipped. */
static void set_attach_type(struct pw_agent *a, struct bpf_object *obj, const char *prog,
			    enum pw_hook hook)
{
	struct bpf_program *p = bpf_object__find_program_by_name(obj, prog);

	if (p && a->mode == PW_ATTACH_TCX)
		bpf_program__set_expected_attach_type(p, pw_hook_tcx_attach_type(hook));
}

/* ---- load-balancing map sizes ---- */

struct lb_map_size {
	const char *map;      /* pin name */
	const char *flag;     /* agent flag that sets it */
	uint32_t *size;       /* in a->lb: flag value (0 = not given), resolved in place */
	uint32_t def;         /* abi.h default */
};

static int lb_map_sizes(struct pw_agent *a, struct lb_map_size out[7])
{
	struct lb_map_size t[] = {
		{ PW_MAP_SERVICES, "--max-services", &a->lb.services, PW_MAX_SERVICES },
		{ PW_MAP_REVNAT, "--max-services", &a->lb.services, PW_MAX_SERVICES },
		{ PW_MAP_BACKENDS, "--max-backends", &a->lb.backends, PW_MAX_BACKENDS },
		{ PW_MAP_SLOTS, "--max-slots", &a->lb.slots, PW_MAX_SLOTS },
		{ PW_MAP_CT, "--max-ct", &a->lb.ct, PW_MAX_CT },
		{ PW_MAP_AFFINITY, "--max-affinity", &a->lb.affinity, PW_MAX_AFFINITY },
		{ PW_MAP_MAGLEV, "--max-maglev", &a->lb.maglev, PW_MAX_MAGLEV },
	};

	memcpy(out, t, sizeof(t));
	return (int)(sizeof(t) / sizeof(t[0]));
}

/* max_entries of the pinned map <pin_dir>/<name>, 0 if there is none. */
static uint32_t pinned_max_entries(const struct pw_paths *p, const char *name)
{
	struct bpf_map_info info;
	__u32 len = sizeof(info);
	int fd = pw_map_open(p, name);
	uint32_t n = 0;

	if (fd < 0)
		return 0;
	memset(&info, 0, sizeof(info));
	if (bpf_map_get_info_by_fd(fd, &info, &len) == 0)
		n = info.max_entries;
	close(fd);
	return n;
}

/* Decides every load-balancing map size before anything loads. A pinned
 * map is reused by name, and libbpf refuses to reuse one whose max_entries
 * differs from the object's ("couldn't reuse pinned map"), leaving a
 * half-loaded datapath: so a flag that contradicts a pin is refused here
 * with what to do, and without a flag the pin's size is kept (a restart
 * without the flags of the previous run must not fail). Resizing means
 * losing the map's content (conntrack: every load-balanced connection), so
 * it is never done silently: --uninstall, then start with the new size. */
static int resolve_lb_sizes(struct pw_agent *a)
{
	struct lb_map_size t[7];
	int n = lb_map_sizes(a, t);

	for (int i = 0; i < n; i++) {
		uint32_t pinned = pinned_max_entries(&a->paths, t[i].map);

		if (*t[i].size && pinned && pinned != *t[i].size) {
			pw_err("%s %u: the pinned map %s/%s has %u entries and a pinned map cannot be "
			       "resized; start with %s %u (or without it) to keep it, or run "
			       "`podwired --instance %s --uninstall` first to recreate it (its content is lost%s)",
			       t[i].flag, *t[i].size, a->paths.pin_dir, t[i].map, pinned, t[i].flag, pinned,
			       a->paths.instance, strcmp(t[i].map, PW_MAP_CT) == 0 ?
			       ": every load-balanced connection breaks" : "");
			return -EINVAL;
		}
		if (!*t[i].size)
			*t[i].size = pinned ? pinned : t[i].def;
		else if (!pinned && *t[i].size != t[i].def)
			pw_info("%s: %u entries (%s)", t[i].map, *t[i].size, t[i].flag);
	}
	if (!a->lb.maglev_m)
		a->lb.maglev_m = PW_MAGLEV_M;
	return 0;
}

/* pw_maglev's inner-map template with M entries. libbpf 1.4 crashes on
 * bpf_map__set_max_entries of the template it made from BTF (an inner map
 * has no object), so the template is ours: an ARRAY of M backend ids with
 * BPF_F_INNER_MAP, as bpf/lib/maps.h declares it, handed over with
 * bpf_map__set_inner_map_fd. Closed once everything is loaded. */
static int maglev_inner_template(struct pw_agent *a, struct pw_datapath *dp, struct bpf_map *outer)
{
	LIBBPF_OPTS(bpf_map_create_opts, opts, .map_flags = BPF_F_INNER_MAP);
	struct bpf_map *inner = bpf_map__inner_map(outer);

	if (!inner)
		return 0;   /* not a map of maps in this object: leave it */
	if (dp->maglev_inner_fd < 0) {
		opts.map_flags = bpf_map__map_flags(inner);
		dp->maglev_inner_fd = bpf_map_create(bpf_map__type(inner), "pw_maglev_inner",
						     bpf_map__key_size(inner), bpf_map__value_size(inner),
						     a->lb.maglev_m, &opts);
		if (dp->maglev_inner_fd < 0)
			return -errno;
	}
	return bpf_map__set_inner_map_fd(outer, dp->maglev_inner_fd);
}

/* Sizes every load-balancing map obj declares. Every object that declares
 * a map must get the same size: the first load pins it, the others reuse
 * the pin only if their definition matches. The Maglev inner-map template
 * gets M (BPF_F_INNER_MAP lets tables differ from it anyway), and so does
 * the programs' cfg_maglev_m (table[hash % M]). */
static int set_lb_sizes(struct pw_agent *a, struct pw_datapath *dp, struct bpf_object *obj)
{
	struct lb_map_size t[7];
	int n = lb_map_sizes(a, t), err;

	for (int i = 0; i < n; i++) {
		struct bpf_map *m = bpf_object__find_map_by_name(obj, t[i].map);

		if (!m)
			continue;
		err = bpf_map__set_max_entries(m, *t[i].size);
		if (!err && strcmp(t[i].map, PW_MAP_MAGLEV) == 0)
			err = maglev_inner_template(a, dp, m);
		if (err) {
			pw_err("%s: cannot size %s: %s", bpf_object__name(obj), t[i].map, strerror(-err));
			return err;
		}
	}
	err = set_rodata_u32(obj, "cfg_maglev_m", a->lb.maglev_m);
	if (err == -EINVAL) {
		pw_err("%s: cfg_maglev_m is not a 32-bit global", bpf_object__name(obj));
		return err;
	}
	return 0;
}

static int load_failed(const char *what, int err)
{
	pw_err("cannot load the %s datapath: %s%s", what, strerror(-err),
	       err == -EINVAL ? " (pinned maps of an incompatible version? "
				"podwired --uninstall removes them)" : "");
	return err;
}

static int load_objects(struct pw_agent *a, struct pw_datapath *dp)
{
	LIBBPF_OPTS(bpf_object_open_opts, opts, .pin_root_path = a->paths.pin_dir);
	int err;

	dp->pod = pod_bpf__open_opts(&opts);
	if (!dp->pod) {
		err = -errno;
		pw_err("cannot open the pod datapath object: %s", strerror(-err));
		return err;
	}
	SET_RODATA(dp->pod->rodata, &a->cfg);
	err = set_cross_node_rodata(a, dp->pod->obj);
	if (!err)
		err = set_lb_sizes(a, dp, dp->pod->obj);
	if (err)
		return err;
	/* The pod program follows the pod attach mode, not the node's. On
	 * netkit it runs at the netkit hook, where bpf_redirect_peer is
	 * refused: cfg_netkit_hook makes it deliver by bpf_redirect. */
	if (a->pod_mode == PW_ATTACH_TCX)
		bpf_program__set_expected_attach_type(dp->pod->progs.pod_ingress,
						      pw_hook_tcx_attach_type(PW_HOOK_INGRESS));
	if (a->pod_mode == PW_ATTACH_NETKIT) {
		bpf_program__set_expected_attach_type(dp->pod->progs.pod_ingress,
						      pw_hook_netkit_attach_type(PW_HOOK_INGRESS));
		dp->pod->rodata->cfg_netkit_hook = 1;
	}
	err = pod_bpf__load(dp->pod);
	if (err)
		return load_failed("pod", err);
	dp->objs[dp->n_objs++] = dp->pod->obj;

	/* Same pin root: host.bpf.o reuses the maps pod.bpf.o just pinned. */
	dp->host = host_bpf__open_opts(&opts);
	if (!dp->host) {
		err = -errno;
		pw_err("cannot open the uplink datapath object: %s", strerror(-err));
		return err;
	}
	SET_RODATA(dp->host->rodata, &a->cfg);
	err = set_cross_node_rodata(a, dp->host->obj);
	if (!err)
		err = set_lb_sizes(a, dp, dp->host->obj);
	if (err)
		return err;
	set_attach_type(a, dp->host->obj, PW_PROG_UPLINK, PW_HOOK_INGRESS);
	set_attach_type(a, dp->host->obj, PW_PROG_UPLINK_EGRESS, PW_HOOK_EGRESS);
	err = host_bpf__load(dp->host);
	if (err)
		return load_failed("uplink", err);
	dp->objs[dp->n_objs++] = dp->host->obj;

	if (a->cfg.routing != PW_ROUTING_VXLAN)
		return 0;
#if PW_HAVE_OVERLAY
	dp->overlay = overlay_bpf__open_opts(&opts);
	if (!dp->overlay) {
		err = -errno;
		pw_err("cannot open the overlay datapath object: %s", strerror(-err));
		return err;
	}
	SET_RODATA(dp->overlay->rodata, &a->cfg);
	err = set_cross_node_rodata(a, dp->overlay->obj);
	if (!err)
		err = set_lb_sizes(a, dp, dp->overlay->obj);
	if (err)
		return err;
	set_attach_type(a, dp->overlay->obj, PW_PROG_OVERLAY, PW_HOOK_INGRESS);
	set_attach_type(a, dp->overlay->obj, PW_PROG_OVERLAY_EGRESS, PW_HOOK_EGRESS);
	err = overlay_bpf__load(dp->overlay);
	if (err)
		return load_failed("overlay", err);
	dp->objs[dp->n_objs++] = dp->overlay->obj;
	return 0;
#else
	pw_err("cluster.routing \"vxlan\" needs the overlay datapath (bpf/overlay.bpf.c), "
	       "which this build does not have");
	return -ENOTSUP;
#endif
}

/* The socket load-balancing object, with the same maps (pin root, sizes)
 * and constants. Not fatal: a kernel or node without it still has the
 * per-packet path. */
static void load_sock(struct pw_agent *a, struct pw_datapath *dp)
{
	LIBBPF_OPTS(bpf_object_open_opts, opts, .pin_root_path = a->paths.pin_dir);
	uint64_t cookie;
	int err;

	if (a->socket_lb_off) {
		pw_info("socket load balancing off (--socket-lb off)");
		return;
	}
	err = pw_netns_cookie(-1, &cookie);
	if (err) {
		pw_warn("socket load balancing off: no network namespace cookie (%s)", strerror(-err));
		return;
	}
	dp->sock = sock_bpf__open_opts(&opts);
	if (!dp->sock) {
		pw_warn("socket load balancing off: cannot open its object: %s", strerror(errno));
		return;
	}
	SET_RODATA(dp->sock->rodata, &a->cfg);
	dp->sock->rodata->cfg_netns_cookie = cookie;
	err = set_lb_sizes(a, dp, dp->sock->obj);
	if (!err)
		err = sock_bpf__load(dp->sock);
	if (err) {
		pw_warn("socket load balancing off: cannot load its programs: %s", strerror(-err));
		sock_bpf__destroy(dp->sock);
		dp->sock = NULL;
		return;
	}
	dp->objs[dp->n_objs++] = dp->sock->obj;
}

static struct bpf_program *find_prog(struct pw_datapath *dp, const char *name)
{
	for (int i = 0; i < dp->n_objs; i++) {
		struct bpf_program *p = bpf_object__find_program_by_name(dp->objs[i], name);

		if (p)
			return p;
	}
	return NULL;
}

/* Pins prog at <prog_dir>/<name>, replacing an older pin atomically: pin
 * under a temporary name, then rename over, so the CNI plugin always finds
 * one program or the other. (bpffs refuses '.' in names: no ".new".) */
static int pin_prog(const struct pw_paths *p, struct bpf_program *prog, const char *name)
{
	char path[PW_PATH_MAX + 32], tmp[PW_PATH_MAX + 40];
	int err;

	snprintf(path, sizeof(path), "%s/%s", p->prog_dir, name);
	snprintf(tmp, sizeof(tmp), "%s/%s_new", p->prog_dir, name);
	unlink(tmp);
	if (bpf_obj_pin(bpf_program__fd(prog), tmp)) {
		err = -errno;
		pw_err("cannot pin %s: %s", tmp, strerror(-err));
		return err;
	}
	if (rename(tmp, path) == 0)
		return 0;
	/* bpffs without rename support: fall back to unlink + pin. */
	unlink(tmp);
	if (unlink(path) && errno != ENOENT)
		return -errno;
	if (bpf_obj_pin(bpf_program__fd(prog), path)) {
		err = -errno;
		pw_err("cannot pin %s: %s", path, strerror(-err));
		return err;
	}
	return 0;
}

/* After a change of attach mode across a restart (kernel upgrade, forced
 * mode), the attachment of the other mode goes once the new one is in place:
 * for a moment both run, never neither. */
static void drop_other_mode(enum pw_attach_mode now, enum pw_attach_mode before,
			    int ifindex, enum pw_hook hook, const char *pin)
{
	if (now == before)
		return;
	if (before == PW_ATTACH_TCX)
		pw_detach(PW_ATTACH_TCX, ifindex, hook, pin);
	else
		pw_detach(PW_ATTACH_TC, ifindex, hook, NULL);
}

/* Moves every pod attachment to the freshly loaded pod program. */
static void move_pod_attachments(struct pw_agent *a, struct pw_datapath *dp,
				 enum pw_attach_mode pod_before)
{
	int map_fd = bpf_map__fd(dp->pod->maps.pw_ep_ifindex);
	int prog_fd = bpf_program__fd(dp->pod->progs.pod_ingress);
	__u32 key, next;
	__u32 *prev = NULL;
	int moved = 0, gone = 0, failed = 0;

	while (bpf_map_get_next_key(map_fd, prev, &next) == 0) {
		char ifname[IF_NAMESIZE], pin[PW_PATH_MAX + 32];
		int err;

		key = next;
		prev = &key;
		if (!if_indextoname(key, ifname)) {
			/* Its veth is gone: the CNI DEL (or GC) will clean up. */
			gone++;
			continue;
		}
		err = pw_link_pin_path(&a->paths, ifname, pin, sizeof(pin));
		if (!err)
			err = pw_attach_ingress(a->pod_mode, prog_fd, (int)key, pin);
		if (err) {
			pw_warn("cannot move the pod program on %s (ifindex %u) to the new program: %s",
				ifname, key, strerror(-err));
			failed++;
		} else {
			drop_other_mode(a->pod_mode, pod_before, (int)key, PW_HOOK_INGRESS, pin);
			moved++;
		}
	}
	if (moved || gone || failed)
		pw_info("moved %d pod attachment(s) to the new program (%d without interface, %d failed)",
			moved, gone, failed);
}

static int count_entries(int map_fd)
{
	__u32 key[2], next[2];   /* large enough for every key of pw_endpoints */
	void *prev = NULL;
	int n = 0;

	while (bpf_map_get_next_key(map_fd, prev, next) == 0) {
		memcpy(key, next, sizeof(key));
		prev = key;
		n++;
	}
	return n;
}

/* The attach mode: probed, unless PODWIRE_ATTACH_MODE=tc|tcx forces it
 * (tests of the legacy path on a tcx kernel). */
static int choose_attach_mode(enum pw_attach_mode *mode)
{
	const char *force = getenv("PODWIRE_ATTACH_MODE");

	if (force && *force) {
		if (pw_attach_mode_parse(force, mode)) {
			pw_err("PODWIRE_ATTACH_MODE: \"%s\" is not one of tcx, tc", force);
			return -EINVAL;
		}
		pw_info("attach mode %s forced by PODWIRE_ATTACH_MODE", force);
		return 0;
	}
	*mode = pw_attach_probe();
	return 0;
}

/* Pods of this instance that exist now (their ifindex entries), before
 * the maps are loaded: the pinned map is all there is. */
static int pods_present(const struct pw_paths *p)
{
	int fd = pw_map_open(p, PW_MAP_EP_BY_IFIDX), n;

	if (fd < 0)
		return 0;
	n = count_entries(fd);
	close(fd);
	return n;
}

/* 0: the kernel creates netkit devices; else why not (-errno). */
static int netkit_supported(void)
{
	struct pw_nl *nl;
	int err = pw_nl_open(&nl);

	if (err)
		return err;
	err = pw_nl_netkit_probe(nl);
	pw_nl_close(nl);
	return err;
}

/* The pod device kind: --pod-device, else node.podDevice, else veth; auto
 * probes. One kind per node: pods already wired with the other kind keep
 * theirs, so auto keeps the kind they have and an explicit other kind is
 * refused, as is netkit on a kernel without it. */
static int choose_pod_device(struct pw_agent *a, const struct pw_nodeinfo *prev)
{
	enum pw_pod_device want = a->has_pod_device_flag ? a->pod_device_flag
				  : a->cfg.has_pod_device ? a->cfg.pod_device : PW_POD_DEVICE_VETH;
	int pods = prev ? pods_present(&a->paths) : 0;
	int probe = want == PW_POD_DEVICE_VETH ? 0 : netkit_supported();

	if (want == PW_POD_DEVICE_AUTO && pods)
		want = prev->pod_device;
	if (want == PW_POD_DEVICE_AUTO) {
		want = probe ? PW_POD_DEVICE_VETH : PW_POD_DEVICE_NETKIT;
		pw_info("pod devices: auto chose %s%s%s", pw_pod_device_name(want),
			probe ? ": this kernel cannot create netkit devices: " : "",
			probe ? strerror(-probe) : "");
	}
	if (want == PW_POD_DEVICE_NETKIT && probe) {
		pw_err("pod devices: netkit requested (%s) but this kernel cannot create netkit devices: %s "
		       "(netkit needs Linux >= 6.7 with CONFIG_NETKIT; use veth or auto)",
		       a->has_pod_device_flag ? "--pod-device" : "node.podDevice", strerror(-probe));
		return -EOPNOTSUPP;
	}
	if (pods && prev->pod_device != want) {
		pw_err("pod devices: %d pod(s) of this node have %s devices; %s needs a node without pods "
		       "(one kind per node: delete the pods first, or keep %s)", pods,
		       pw_pod_device_name(prev->pod_device), pw_pod_device_name(want),
		       pw_pod_device_name(prev->pod_device));
		return -EBUSY;
	}
	a->pod_device = want;
	if (want == PW_POD_DEVICE_NETKIT)
		a->pod_mode = PW_ATTACH_NETKIT;
	return 0;
}

/* Pins every program the loaded objects have under progs/; the pin of one
 * they do not have (an overlay program after a switch to native routing)
 * goes, so progs/ shows what runs. */
static int pin_progs(struct pw_agent *a, struct pw_datapath *dp)
{
	const char *names[] = { PW_PROG_POD, PW_PROG_UPLINK, PW_PROG_UPLINK_EGRESS,
				PW_PROG_OVERLAY, PW_PROG_OVERLAY_EGRESS, PW_PROG_SOCK_CONNECT4,
				PW_PROG_SOCK_SENDMSG4, PW_PROG_SOCK_RECVMSG4, PW_PROG_SOCK_GETPEERNAME4 };
	char path[PW_PATH_MAX + 32];

	for (unsigned i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		struct bpf_program *p = find_prog(dp, names[i]);
		int err;

		if (p) {
			err = pin_prog(&a->paths, p, names[i]);
			if (err)
				return err;
		} else {
			snprintf(path, sizeof(path), "%s/%s", a->paths.prog_dir, names[i]);
			unlink(path);
		}
	}
	return 0;
}

static int attach_prog(struct pw_agent *a, struct bpf_program *prog, int ifindex, const char *ifname,
		       enum pw_hook hook, const char *link_name, enum pw_attach_mode before)
{
	char pin[PW_PATH_MAX + 32];
	int err;

	err = pw_link_pin_path(&a->paths, link_name, pin, sizeof(pin));
	if (!err)
		err = pw_attach(a->mode, bpf_program__fd(prog), ifindex, hook, pin);
	if (err) {
		pw_err("cannot attach %s to %s %s (%s): %s", bpf_program__name(prog), ifname,
		       pw_hook_name(hook), pw_attach_mode_name(a->mode), strerror(-err));
		return err;
	}
	drop_other_mode(a->mode, before, ifindex, hook, pin);
	return 0;
}

/* Undoes attach_prog in whichever mode it was made. */
static void detach_prog(const struct pw_paths *p, enum pw_attach_mode mode, enum pw_attach_mode before,
			int ifindex, enum pw_hook hook, const char *link_name)
{
	char pin[PW_PATH_MAX + 32];

	if (pw_link_pin_path(p, link_name, pin, sizeof(pin)))
		return;
	pw_detach(mode, ifindex, hook, pin);
	if (before != mode)
		pw_detach(before, ifindex, hook, pin);
}

/* uplink_egress masquerades traffic leaving the cluster. Whether it runs is
 * decided here, at start: on attaches it, off detaches what an earlier run
 * attached. */
static int setup_masquerade(struct pw_agent *a, struct pw_datapath *dp, enum pw_attach_mode before)
{
	struct bpf_program *prog = find_prog(dp, PW_PROG_UPLINK_EGRESS);

	if (a->cfg.masquerade && prog)
		return attach_prog(a, prog, a->uplink_ifindex, a->cfg.uplink, PW_HOOK_EGRESS,
				   PW_LINK_UPLINK_EGRESS, before);
	detach_prog(&a->paths, a->mode, before, a->uplink_ifindex, PW_HOOK_EGRESS, PW_LINK_UPLINK_EGRESS);
	if (a->cfg.masquerade)
		pw_warn("cluster.masquerade is on but this datapath has no %s: traffic leaving "
			"the cluster is not masqueraded", PW_PROG_UPLINK_EGRESS);
	return 0;
}

/* vxlan: both overlay programs on pw_vxlan. native: no overlay at all. */
static int setup_overlay(struct pw_agent *a, struct pw_datapath *dp, enum pw_attach_mode before)
{
	struct bpf_program *in = find_prog(dp, PW_PROG_OVERLAY);
	struct bpf_program *out = find_prog(dp, PW_PROG_OVERLAY_EGRESS);
	struct pw_nl *nl;
	int err;

	if (a->cfg.routing != PW_ROUTING_VXLAN) {
		err = pw_agent_nl(a, &nl);
		return err ? err : pw_overlay_remove(&a->paths, nl);
	}
	if (!in || !out) {
		pw_err("the overlay datapath lacks %s", in ? PW_PROG_OVERLAY_EGRESS : PW_PROG_OVERLAY);
		return -ENOENT;
	}
	err = attach_prog(a, in, a->overlay_ifindex, PW_VXLAN_DEV, PW_HOOK_INGRESS, PW_LINK_OVERLAY, before);
	if (!err)
		err = attach_prog(a, out, a->overlay_ifindex, PW_VXLAN_DEV, PW_HOOK_EGRESS,
				  PW_LINK_OVERLAY_EGRESS, before);
	return err;
}

static void start_snat_gc(struct pw_agent *a)
{
	int fd = pw_loader_map_fd(a, PW_MAP_SNAT);
	int err;

	if (fd < 0) {
		pw_debug("no " PW_MAP_SNAT " map: nothing to expire");
		return;
	}
	err = pw_snat_gc_start(a, fd);
	if (err)
		pw_warn("cannot start expiring " PW_MAP_SNAT " entries: %s", strerror(-err));
}

/* The service reconciler on the pinned load-balancing maps. A datapath
 * without them (an older object) runs without services: said once. */
static void open_services(struct pw_agent *a)
{
	struct pw_services *svc = calloc(1, sizeof(*svc));
	int err;

	if (!svc) {
		pw_err("services: out of memory: running without service load balancing");
		return;
	}
	err = pw_services_open(svc, &a->paths, a->lb.maglev_m);
	if (err) {
		if (err == -ENOENT)
			pw_warn("this datapath has no service maps (%s): services in the config are not applied",
				svc->err);
		else
			pw_err("services: %s: running without service load balancing", svc->err);
		free(svc);
		return;
	}
	/* Patch Maglev tables in place: a swap of the inner map costs a kernel
	 * RCU grace period (~15 ms) per apply. A reader may briefly see a mix
	 * of old and new entries, which is harmless here: established flows
	 * keep their backend through conntrack, and a new flow that meets an
	 * entry naming a removed backend falls back to random selection. */
	svc->maglev_in_place = true;
	pw_info("services: %d service(s) found in the maps (Maglev M = %u)", pw_services_count(svc),
		svc->maglev_m);
	a->svc = svc;
}

static void start_ct_gc(struct pw_agent *a)
{
	int fd = pw_loader_map_fd(a, PW_MAP_CT);
	int err;

	if (fd < 0) {
		pw_debug("no " PW_MAP_CT " map: no conntrack to expire");
		return;
	}
	err = pw_ct_gc_start(a, fd);
	if (err)
		pw_warn("cannot start expiring " PW_MAP_CT " entries: %s", strerror(-err));
}

int pw_loader_start(struct pw_agent *a)
{
	enum pw_attach_mode before, pod_before;
	struct pw_nodeinfo prev;
	struct pw_datapath *dp;
	char pin[PW_PATH_MAX + 32], perr[256];
	bool reuse, have_prev;
	int err;

	libbpf_set_print(libbpf_print);
	err = ensure_pin_dirs(&a->paths);
	if (err)
		return err;
	snprintf(pin, sizeof(pin), "%s/" PW_MAP_ENDPOINTS, a->paths.pin_dir);
	reuse = access(pin, F_OK) == 0;

	err = choose_attach_mode(&a->mode);
	if (err)
		return err;
	/* What the previous run attached with, to clean up after a mode change. */
	if (a->pod_mode == PW_ATTACH_TCX && a->mode != PW_ATTACH_TCX)
		a->pod_mode = a->mode;   /* no tcx in this kernel */
	have_prev = pw_nodeinfo_read(a->paths.node_file, &prev, perr, sizeof(perr)) == 0;
	err = choose_pod_device(a, have_prev ? &prev : NULL);
	if (err)
		return err;
	if (have_prev) {
		before = prev.attach;
		pod_before = prev.pod_attach;
	} else {
		before = a->mode;
		pod_before = a->pod_mode;
	}
	/* The programs are built for pw_vxlan's ifindex: it exists before load. */
	if (a->cfg.routing == PW_ROUTING_VXLAN && (err = pw_overlay_setup(a)))
		return err;
	err = resolve_lb_sizes(a);
	if (err)
		return err;
	dp = calloc(1, sizeof(*dp));
	if (!dp)
		return -ENOMEM;
	dp->maglev_inner_fd = -1;
	a->dp = dp;
	err = load_objects(a, dp);
	if (!err)
		load_sock(a, dp);
	if (dp->maglev_inner_fd >= 0)
		close(dp->maglev_inner_fd);   /* the outer map keeps what it needs */
	dp->maglev_inner_fd = -1;
	if (err)
		return err;
	if (reuse)
		pw_info("reusing pinned maps in %s (%d endpoint(s) kept)", a->paths.pin_dir,
			count_entries(bpf_map__fd(dp->pod->maps.pw_endpoints)));
	else
		pw_info("created maps pinned in %s", a->paths.pin_dir);

	err = pin_progs(a, dp);
	if (err)
		return err;
	err = attach_prog(a, dp->host->progs.uplink_ingress, a->uplink_ifindex, a->cfg.uplink,
			  PW_HOOK_INGRESS, PW_LINK_UPLINK, before);
	if (!err)
		err = setup_masquerade(a, dp, before);
	if (!err)
		err = setup_overlay(a, dp, before);
	if (err)
		return err;
	move_pod_attachments(a, dp, pod_before);
	pw_socklb_attach(a, dp->sock ? dp->sock->obj : NULL);
	start_snat_gc(a);
	open_services(a);
	start_ct_gc(a);
	return 0;
}

int pw_loader_map_fd(struct pw_agent *a, const char *name)
{
	if (!a->dp)
		return -ENOENT;
	for (int i = 0; i < a->dp->n_objs; i++) {
		struct bpf_map *m = bpf_object__find_map_by_name(a->dp->objs[i], name);

		if (m)
			return bpf_map__fd(m);
	}
	return -ENOENT;
}

/* Closes our handles only: pins and attachments stay, the datapath keeps
 * forwarding without the agent. */
void pw_loader_close(struct pw_agent *a)
{
	pw_snat_gc_stop(a);
	pw_ct_gc_stop(a);
	pw_netpol_close(a);
	pw_healthcheck_stop(a);
	pw_npaddr_stop(a);
	if (a->svc) {
		pw_services_close(a->svc);
		free(a->svc);
		a->svc = NULL;
	}
	pw_nl_close(a->nl);
	a->nl = NULL;
	if (!a->dp)
		return;
#if PW_HAVE_OVERLAY
	overlay_bpf__destroy(a->dp->overlay);
#endif
	sock_bpf__destroy(a->dp->sock);
	host_bpf__destroy(a->dp->host);
	pod_bpf__destroy(a->dp->pod);
	free(a->dp);
	a->dp = NULL;
}

/* ---- uninstall ---- */

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	if ((flag == FTW_DP ? rmdir(path) : unlink(path)) && errno != ENOENT)
		pw_warn("cannot remove %s: %s", path, strerror(errno));
	return 0;
}

static void remove_tree(const char *path)
{
	if (access(path, F_OK) == 0)
		nftw(path, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* Where the uplink and attach mode came from at install time: node.json if
 * the agent ever published it, else the config file, else a probe. */
static void uninstall_facts(const struct pw_paths *p, const char *config_path,
			    enum pw_attach_mode *mode, enum pw_attach_mode *pod_mode,
			    char uplink[IF_NAMESIZE])
{
	struct pw_nodeinfo ni;
	struct pw_node_config cfg;
	char err[256];

	uplink[0] = '\0';
	if (pw_nodeinfo_read(p->node_file, &ni, err, sizeof(err)) == 0) {
		*mode = ni.attach;
		*pod_mode = ni.pod_attach;
		snprintf(uplink, IF_NAMESIZE, "%s", ni.uplink);
	} else {
		*mode = pw_attach_probe();
		*pod_mode = PW_ATTACH_TC;
	}
	if (!uplink[0] && config_path && pw_config_load(config_path, &cfg, err, sizeof(err)) == 0) {
		snprintf(uplink, IF_NAMESIZE, "%s", cfg.uplink);
		pw_config_free(&cfg);
	}
}

static void detach_pods(const struct pw_paths *p, enum pw_attach_mode mode)
{
	char path[PW_PATH_MAX + 32];
	__u32 key, next, *prev = NULL;
	int fd;

	snprintf(path, sizeof(path), "%s/" PW_MAP_EP_BY_IFIDX, p->pin_dir);
	fd = bpf_obj_get(path);
	if (fd < 0)
		return;
	while (bpf_map_get_next_key(fd, prev, &next) == 0) {
		char ifname[IF_NAMESIZE], pin[PW_PATH_MAX + 32];
		bool named;

		key = next;
		prev = &key;
		named = if_indextoname(key, ifname) &&
			pw_link_pin_path(p, ifname, pin, sizeof(pin)) == 0;
		pw_detach_ingress(mode, named ? (int)key : 0, named ? pin : NULL);
	}
	close(fd);
}

/* Whatever tcx link pins are left (pods whose endpoint entry is gone). */
static void detach_link_pins(const struct pw_paths *p)
{
	char path[PW_PATH_MAX + 300];
	struct dirent *de;
	DIR *d = opendir(p->link_dir);

	if (!d)
		return;
	while ((de = readdir(d))) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		snprintf(path, sizeof(path), "%s/%s", p->link_dir, de->d_name);
		pw_detach_ingress(PW_ATTACH_TCX, 0, path);
	}
	closedir(d);
}

/* The config the agent ran with: the one given, else the one node.json
 * names (the usual case: `podwired --uninstall` without --config, and in
 * Kubernetes mode the config the agent published). */
static bool load_uninstall_config(const struct pw_paths *p, const char *config_path, struct pw_node_config *cfg)
{
	struct pw_nodeinfo ni;
	char err[256];

	if (config_path && pw_config_load(config_path, cfg, err, sizeof(err)) == 0)
		return true;
	return pw_nodeinfo_read(p->node_file, &ni, NULL, 0) == 0 && ni.config[0] &&
	       (!config_path || strcmp(ni.config, config_path) != 0) &&
	       pw_config_load(ni.config, cfg, err, sizeof(err)) == 0;
}

/* What the agent made outside bpffs: pw_vxlan (with the routes and
 * neighbour entries through it), the peer routes, the managed neighbour
 * entries of the peers (from the routes, and from the config if it is
 * still there). */
static void uninstall_kernel_state(const struct pw_paths *p, const char *config_path, int uplink_ifindex)
{
	struct pw_node_config cfg;
	struct pw_nl *nl;
	bool have_cfg;

	if (pw_nl_open(&nl)) {
		pw_warn("cannot open an rtnetlink socket: %s and its peer routes are left", PW_VXLAN_DEV);
		return;
	}
	have_cfg = load_uninstall_config(p, config_path, &cfg);
	pw_overlay_remove(p, nl);
	pw_routes_uninstall(nl, have_cfg ? &cfg : NULL, uplink_ifindex);
	if (have_cfg)
		pw_config_free(&cfg);
	pw_nl_close(nl);
}

int pw_uninstall(const struct pw_paths *p, const char *config_path)
{
	char uplink[IF_NAMESIZE], pin[PW_PATH_MAX + 32], lock[PW_PATH_MAX + 16];
	enum pw_attach_mode mode, pod_mode;
	int lock_fd = -1, ifindex;

	if (access(p->pin_dir, F_OK) && access(p->state_dir, F_OK)) {
		pw_info("instance %s is not installed: nothing to do", p->instance);
		return 0;
	}
	snprintf(lock, sizeof(lock), "%s/agent.lock", p->state_dir);
	lock_fd = open(lock, O_RDWR | O_CLOEXEC);
	if (lock_fd >= 0 && flock(lock_fd, LOCK_EX | LOCK_NB)) {
		pw_err("podwired still runs for instance %s: stop it first", p->instance);
		close(lock_fd);
		return -EBUSY;
	}
	libbpf_set_print(libbpf_print);
	uninstall_facts(p, config_path, &mode, &pod_mode, uplink);

	detach_pods(p, pod_mode);
	ifindex = uplink[0] ? (int)if_nametoindex(uplink) : 0;
	if (pw_link_pin_path(p, PW_LINK_UPLINK, pin, sizeof(pin)) == 0)
		pw_detach_ingress(mode, ifindex, pin);
	detach_prog(p, mode, mode, ifindex, PW_HOOK_EGRESS, PW_LINK_UPLINK_EGRESS);
	detach_link_pins(p);
	uninstall_kernel_state(p, config_path, ifindex);
	pw_cni_conflist_remove(p);   /* before the state dir: it records where */
	if (pw_reserved_ports_release(p))   /* before the state dir: it records which */
		pw_warn("cannot take the NodePort range out of ip_local_reserved_ports");

	remove_tree(p->pin_dir);
	remove_tree(p->state_dir);
	if (lock_fd >= 0)
		close(lock_fd);
	pw_info("uninstalled instance %s (%s mode%s%s)", p->instance, pw_attach_mode_name(mode),
		uplink[0] ? ", uplink " : "", uplink);
	return 0;
}
