/* Socket load balancing (bpf/sock.bpf.c) on the cgroup v2 hierarchy.
 *
 * The programs go on the root of the cgroup2 mount, which every network
 * namespace of the machine shares; they act only on this node's namespace
 * (cfg_netns_cookie), so several instances each attach their own link
 * (links are always multi-attach). The links are pinned under the
 * instance's links/ dir: the hooks keep working without the agent, a
 * restarted agent moves each pinned link to its new program in place
 * (bpf_link_update: no moment without a program), and --uninstall removes
 * them with the other link pins (loader.c detach_link_pins). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include "podwire/abi.h"
#include "agent.h"
#include "log.h"

static const char *const sock_progs[] = {
	PW_PROG_SOCK_CONNECT4, PW_PROG_SOCK_SENDMSG4, PW_PROG_SOCK_RECVMSG4, PW_PROG_SOCK_GETPEERNAME4,
};
#define N_SOCK_PROGS (sizeof(sock_progs) / sizeof(sock_progs[0]))

/* The mount point of the cgroup2 hierarchy from /proc/self/mountinfo
 * ("... mountpoint ... - cgroup2 source opts"). -ENOENT without one. */
static int cgroup2_mount(char *buf, size_t len)
{
	FILE *f = fopen("/proc/self/mountinfo", "re");
	char line[4096], mnt[4096], *sep;
	int err = -ENOENT;

	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		sep = strstr(line, " - ");
		if (!sep || strncmp(sep + 3, "cgroup2 ", 8))
			continue;
		if (sscanf(line, "%*s %*s %*s %*s %4095s", mnt) != 1)
			continue;
		if ((size_t)snprintf(buf, len, "%s", mnt) >= len) {
			err = -ENAMETOOLONG;
			continue;
		}
		err = 0;
		break;
	}
	fclose(f);
	return err;
}

static void link_pin(const struct pw_agent *a, const char *prog, char *buf, size_t len)
{
	if (pw_link_pin_path(&a->paths, prog, buf, len))
		buf[0] = '\0';
}

/* Removes the pinned link of prog, which detaches it. */
static void unpin_link(const struct pw_agent *a, const char *prog)
{
	char pin[PW_PATH_MAX + 32];
	int fd;

	link_pin(a, prog, pin, sizeof(pin));
	if (!pin[0])
		return;
	fd = bpf_obj_get(pin);
	if (fd >= 0) {
		bpf_link_detach(fd);   /* now, even if someone else holds it open */
		close(fd);
	}
	if (unlink(pin) && errno != ENOENT)
		pw_warn("cannot remove %s: %s", pin, strerror(errno));
}

/* prog on the cgroup at cg_fd through the link pinned at pin: the pinned
 * link updated in place when there is one, else a new link pinned. */
static int attach_one(struct bpf_program *prog, int cg_fd, const char *pin)
{
	struct bpf_link *link;
	int fd, err;

	fd = bpf_obj_get(pin);
	if (fd >= 0) {
		err = bpf_link_update(fd, bpf_program__fd(prog), NULL) ? -errno : 0;
		close(fd);
		if (!err)
			return 0;
		/* A link the kernel no longer attaches (its cgroup is gone): replace it. */
		pw_warn("cannot move the link %s to the new program (%s): attaching anew", pin, strerror(-err));
		unlink(pin);
	}
	link = bpf_program__attach_cgroup(prog, cg_fd);
	if (!link)
		return -errno;
	err = bpf_link__pin(link, pin);
	bpf_link__destroy(link);   /* the pin keeps it attached (or nothing does: err) */
	return err;
}

static void detach_all(const struct pw_agent *a)
{
	for (unsigned i = 0; i < N_SOCK_PROGS; i++)
		unpin_link(a, sock_progs[i]);
}

void pw_socklb_attach(struct pw_agent *a, struct bpf_object *obj)
{
	char cg[4096], pin[PW_PATH_MAX + 32];
	int cg_fd, err = 0;
	unsigned i;

	if (!obj) {
		detach_all(a);
		return;
	}
	err = cgroup2_mount(cg, sizeof(cg));
	if (err) {
		pw_warn("socket load balancing off: no cgroup2 mount (%s); the node's own processes "
			"cannot reach services (pods can)", strerror(-err));
		detach_all(a);
		return;
	}
	cg_fd = open(cg, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (cg_fd < 0) {
		pw_warn("socket load balancing off: cannot open %s: %s", cg, strerror(errno));
		detach_all(a);
		return;
	}
	for (i = 0; i < N_SOCK_PROGS && !err; i++) {
		struct bpf_program *prog = bpf_object__find_program_by_name(obj, sock_progs[i]);

		link_pin(a, sock_progs[i], pin, sizeof(pin));
		err = !prog ? -ENOENT : !pin[0] ? -ENAMETOOLONG : attach_one(prog, cg_fd, pin);
		if (err)
			pw_warn("socket load balancing off: cannot attach %s to %s: %s", sock_progs[i], cg,
				strerror(-err));
	}
	close(cg_fd);
	if (err) {
		detach_all(a);   /* all hooks or none: connect without getpeername would lie */
		return;
	}
	pw_info("socket load balancing on %s (cgroup2)", cg);
}

/* pw_sock_netns entries whose pod is gone: no pw_endpoints entry for its
 * IP, or one of another veth (the IP was given to a new pod). The CNI
 * plugin removes a pod's entry on DEL; this catches a DEL that never came
 * (the node rebooted, the runtime lost the pod). Collected first:
 * deleting while iterating restarts get_next_key. */
void pw_socklb_sweep(struct pw_agent *a)
{
	int netns_fd = pw_loader_map_fd(a, PW_MAP_SOCK_NETNS), ep_fd = pw_loader_map_fd(a, PW_MAP_ENDPOINTS);
	__u64 key, next, *prev = NULL, stale[256];
	int nstale = 0, removed = 0;

	if (netns_fd < 0 || ep_fd < 0)
		return;
	do {
		nstale = 0;
		prev = NULL;
		while (nstale < 256 && bpf_map_get_next_key(netns_fd, prev, &next) == 0) {
			struct pw_sock_netns pod;
			struct pw_endpoint ep;

			if (bpf_map_lookup_elem(netns_fd, &next, &pod) == 0 &&
			    (bpf_map_lookup_elem(ep_fd, pod.ip, &ep) || ep.ifindex != pod.ifindex))
				stale[nstale++] = next;
			key = next;
			prev = &key;
		}
		for (int i = 0; i < nstale; i++)
			removed += bpf_map_delete_elem(netns_fd, &stale[i]) == 0;
	} while (nstale == 256);
	if (removed)
		pw_info("socket load balancing: forgot %d pod network namespace(s) whose endpoint is gone", removed);
}
