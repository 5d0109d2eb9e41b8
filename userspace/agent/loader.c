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
#include <bpf/libbpf.h>
#include "podwire/abi.h"
#include "agent.h"
#include "log.h"
#include "nodeinfo.h"
#include "pod.skel.h"
#include "host.skel.h"

#define BPFFS_MOUNT "/sys/fs/bpf"

struct pw_datapath {
	struct pod_bpf *pod;
	struct host_bpf *host;
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
} while (0)

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
	/* A tcx link only takes a program loaded for tcx (see datapath.h). */
	if (a->mode == PW_ATTACH_TCX)
		bpf_program__set_expected_attach_type(dp->pod->progs.pod_ingress, BPF_TCX_INGRESS);
	err = pod_bpf__load(dp->pod);
	if (err) {
		pw_err("cannot load the pod datapath: %s%s", strerror(-err),
		       err == -EINVAL ? " (pinned maps of an incompatible version? "
					"podwired --uninstall removes them)" : "");
		return err;
	}

	/* Same pin root: host.bpf.o reuses the maps pod.bpf.o just pinned. */
	dp->host = host_bpf__open_opts(&opts);
	if (!dp->host) {
		err = -errno;
		pw_err("cannot open the uplink datapath object: %s", strerror(-err));
		return err;
	}
	SET_RODATA(dp->host->rodata, &a->cfg);
	if (a->mode == PW_ATTACH_TCX)
		bpf_program__set_expected_attach_type(dp->host->progs.uplink_ingress, BPF_TCX_INGRESS);
	err = host_bpf__load(dp->host);
	if (err) {
		pw_err("cannot load the uplink datapath: %s", strerror(-err));
		return err;
	}
	return 0;
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
			    int ifindex, const char *pin)
{
	if (now == before)
		return;
	if (before == PW_ATTACH_TCX)
		pw_detach_ingress(PW_ATTACH_TCX, ifindex, pin);
	else
		pw_detach_ingress(PW_ATTACH_TC, ifindex, NULL);
}

/* Moves every pod attachment to the freshly loaded pod program. */
static void move_pod_attachments(struct pw_agent *a, struct pw_datapath *dp,
				 enum pw_attach_mode before)
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
			err = pw_attach_ingress(a->mode, prog_fd, (int)key, pin);
		if (err) {
			pw_warn("cannot move the pod program on %s (ifindex %u) to the new program: %s",
				ifname, key, strerror(-err));
			failed++;
		} else {
			drop_other_mode(a->mode, before, (int)key, pin);
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

int pw_loader_start(struct pw_agent *a)
{
	enum pw_attach_mode before;
	struct pw_nodeinfo prev;
	struct pw_datapath *dp;
	char pin[PW_PATH_MAX + 32], perr[256];
	bool reuse;
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
	before = pw_nodeinfo_read(a->paths.node_file, &prev, perr, sizeof(perr)) == 0 ? prev.attach : a->mode;
	dp = calloc(1, sizeof(*dp));
	if (!dp)
		return -ENOMEM;
	a->dp = dp;
	err = load_objects(a, dp);
	if (err)
		return err;
	if (reuse)
		pw_info("reusing pinned maps in %s (%d endpoint(s) kept)", a->paths.pin_dir,
			count_entries(bpf_map__fd(dp->pod->maps.pw_endpoints)));
	else
		pw_info("created maps pinned in %s", a->paths.pin_dir);

	err = pin_prog(&a->paths, dp->pod->progs.pod_ingress, PW_PROG_POD);
	if (!err)
		err = pin_prog(&a->paths, dp->host->progs.uplink_ingress, PW_PROG_UPLINK);
	if (err)
		return err;

	err = pw_link_pin_path(&a->paths, PW_LINK_UPLINK, pin, sizeof(pin));
	if (!err)
		err = pw_attach_ingress(a->mode, bpf_program__fd(dp->host->progs.uplink_ingress),
					a->uplink_ifindex, pin);
	if (err) {
		pw_err("cannot attach %s to %s (%s): %s", PW_PROG_UPLINK, a->cfg.uplink,
		       pw_attach_mode_name(a->mode), strerror(-err));
		return err;
	}
	drop_other_mode(a->mode, before, a->uplink_ifindex, pin);
	move_pod_attachments(a, dp, before);
	return 0;
}

int pw_loader_map_fd(struct pw_agent *a, const char *name)
{
	struct bpf_map *m;

	if (!a->dp || !a->dp->pod)
		return -ENOENT;
	m = bpf_object__find_map_by_name(a->dp->pod->obj, name);
	return m ? bpf_map__fd(m) : -ENOENT;
}

/* Closes our handles only: pins and attachments stay, the datapath keeps
 * forwarding without the agent. */
void pw_loader_close(struct pw_agent *a)
{
	if (!a->dp)
		return;
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
			    enum pw_attach_mode *mode, char uplink[IF_NAMESIZE])
{
	struct pw_nodeinfo ni;
	struct pw_node_config cfg;
	char err[256];

	uplink[0] = '\0';
	if (pw_nodeinfo_read(p->node_file, &ni, err, sizeof(err)) == 0) {
		*mode = ni.attach;
		snprintf(uplink, IF_NAMESIZE, "%s", ni.uplink);
	} else {
		*mode = pw_attach_probe();
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

int pw_uninstall(const struct pw_paths *p, const char *config_path)
{
	char uplink[IF_NAMESIZE], pin[PW_PATH_MAX + 32], lock[PW_PATH_MAX + 16];
	enum pw_attach_mode mode;
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
	uninstall_facts(p, config_path, &mode, uplink);

	detach_pods(p, mode);
	ifindex = uplink[0] ? (int)if_nametoindex(uplink) : 0;
	if (pw_link_pin_path(p, PW_LINK_UPLINK, pin, sizeof(pin)) == 0)
		pw_detach_ingress(mode, ifindex, pin);
	detach_link_pins(p);

	remove_tree(p->pin_dir);
	remove_tree(p->state_dir);
	if (lock_fd >= 0)
		close(lock_fd);
	pw_info("uninstalled instance %s (%s mode%s%s)", p->instance, pw_attach_mode_name(mode),
		uplink[0] ? ", uplink " : "", uplink);
	return 0;
}
