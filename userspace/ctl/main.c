/* podwirectl: global flags, finding the instance, dispatch. See
 * docs/podwirectl.md for the commands and exit codes. */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "ctl.h"
#include "datapath.h"
#include "inspect.h"

static const struct ctl_cmd *const commands[] = {
	&ctl_cmd_status, &ctl_cmd_endpoints, &ctl_cmd_peers, &ctl_cmd_services,
	&ctl_cmd_ct, &ctl_cmd_nat, &ctl_cmd_metrics, &ctl_cmd_monitor, &ctl_cmd_service,
	&ctl_cmd_policy,
};
#define N_COMMANDS (sizeof(commands) / sizeof(commands[0]))

static void usage(FILE *out)
{
	fprintf(out, "usage: podwirectl [--instance NAME] [-o table|json] COMMAND [ARGS]\n\n");
	for (size_t i = 0; i < N_COMMANDS; i++)
		fprintf(out, "  %s %s\n      %s\n", commands[i]->name, commands[i]->args, commands[i]->summary);
	fprintf(out, "\n  --instance NAME  node instance (default \"default\"): pins under /sys/fs/bpf/podwire/NAME\n"
		     "  -o json          JSON for scripts (one document; monitor: one object per line)\n"
		     "exit codes: 0 ok, 1 error, 2 usage, 3 instance not found, 4 not in this datapath yet,\n"
		     "            5 config changed but not (yet) applied by a running agent\n");
}

static const struct ctl_cmd *find_command(const char *name)
{
	for (size_t i = 0; i < N_COMMANDS; i++)
		if (strcmp(commands[i]->name, name) == 0)
			return commands[i];
	return NULL;
}

static ino_t netns_inode(const char *path)
{
	struct stat st;

	return stat(path, &st) ? 0 : st.st_ino;
}

/* Interface indexes only mean something in the agent's network namespace.
 * When the agent runs elsewhere (podwirectl started from the host), join
 * its namespace so names resolve right; maps do not care where we are. */
static void join_agent_netns(struct ctl *c)
{
	char path[64];
	ino_t agent_ns;
	int fd;

	c->in_agent_netns = false;
	if (!c->agent_running || c->agent_pid <= 0)
		return;
	snprintf(path, sizeof(path), "/proc/%d/ns/net", c->agent_pid);
	agent_ns = netns_inode(path);
	if (!agent_ns)
		return;
	if (agent_ns == netns_inode("/proc/self/ns/net")) {
		c->in_agent_netns = true;
		return;
	}
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	if (setns(fd, CLONE_NEWNET) == 0)
		c->in_agent_netns = true;
	close(fd);
}

/* With the agent down, tell whether we run in the node's namespace: the
 * first endpoint's host veth must exist here with the MAC the map records. */
static bool endpoints_resolve_here(const struct ctl *c)
{
	struct pw_endpoint *eps = NULL;
	char name[IF_NAMESIZE];
	size_t n = 0;
	int fd = pw_map_open(&c->paths, PW_MAP_ENDPOINTS);
	bool here = false;

	if (fd < 0)
		return false;
	if (pw_inspect_endpoints(fd, &eps, &n) == 0 && n)
		here = strcmp(ctl_ifname(eps[0].ifindex, eps[0].host_mac, name), "?") != 0;
	free(eps);
	close(fd);
	return here;
}

static int parse_global(int argc, char **argv, struct ctl *c, int *cmd_index)
{
	const char *instance = PW_DEFAULT_INSTANCE;
	int i;

	for (i = 1; i < argc; i++) {
		const char *a = argv[i];

		if (strcmp(a, "--instance") == 0 && i + 1 < argc) {
			instance = argv[++i];
		} else if (strncmp(a, "--instance=", 11) == 0) {
			instance = a + 11;
		} else if ((strcmp(a, "-o") == 0 || strcmp(a, "--output") == 0) && i + 1 < argc) {
			const char *f = argv[++i];

			if (strcmp(f, "json") && strcmp(f, "table"))
				return ctl_fail(CTL_USAGE, "-o: \"%s\" is not one of table, json", f);
			c->json = strcmp(f, "json") == 0;
		} else if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
			usage(stdout);
			exit(CTL_OK);
		} else if (a[0] == '-') {
			usage(stderr);
			return ctl_fail(CTL_USAGE, "unknown or incomplete option \"%s\"", a);
		} else {
			break;
		}
	}
	if (i >= argc) {
		usage(stderr);
		return CTL_USAGE;
	}
	if (pw_paths_init(&c->paths, instance))
		return ctl_fail(CTL_USAGE, "--instance: \"%s\" is not a valid instance name "
				"([A-Za-z0-9_-], 1-63 characters)", instance);
	*cmd_index = i;
	return CTL_OK;
}

int main(int argc, char **argv)
{
	struct ctl c = { 0 };
	const struct ctl_cmd *cmd;
	int ret, ci = 0;

	ret = parse_global(argc, argv, &c, &ci);
	if (ret)
		return ret;
	cmd = find_command(argv[ci]);
	if (!cmd) {
		usage(stderr);
		return ctl_fail(CTL_USAGE, "unknown command \"%s\"", argv[ci]);
	}
	/* Flags after the command may also be global ones (`podwirectl status -o json`). */
	for (int i = ci + 1; i < argc; i++) {
		if ((strcmp(argv[i], "-o") == 0 || strcmp(argv[i], "--output") == 0) && i + 1 < argc &&
		    (strcmp(argv[i + 1], "json") == 0 || strcmp(argv[i + 1], "table") == 0)) {
			c.json = strcmp(argv[i + 1], "json") == 0;
			memmove(&argv[i], &argv[i + 2], (size_t)(argc - i - 1) * sizeof(*argv)); /* and the NULL */
			argc -= 2;
			i--;
		}
	}
	if (!cmd->config_only && !pw_inspect_instance_exists(&c.paths))
		return ctl_fail(CTL_NO_INSTANCE, "instance \"%s\": no datapath pinned in %s "
				"(no podwired ever started for it, or it was uninstalled; see --instance)",
				c.paths.instance, c.paths.pin_dir);
	c.agent_running = pw_inspect_agent_running(&c.paths, &c.agent_pid);
	join_agent_netns(&c);
	if (!c.in_agent_netns)
		c.in_agent_netns = endpoints_resolve_here(&c);
	return cmd->run(&c, argc - ci, argv + ci);
}
