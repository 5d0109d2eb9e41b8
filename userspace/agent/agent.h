/* podwired: the node agent. One process per node (network namespace); it
 * loads, pins and attaches the datapath, publishes node.json for the CNI
 * plugin and reconciles node-level state from the config file. */
#ifndef PW_AGENT_H
#define PW_AGENT_H
#include <stdbool.h>
#include "config.h"
#include "datapath.h"
#include "paths.h"

struct pw_datapath;   /* loader.c: the open skeletons */

struct pw_agent {
	struct pw_paths paths;
	const char *config_path;
	struct pw_node_config cfg;     /* the config currently applied */
	enum pw_attach_mode mode;
	int uplink_ifindex;
	int pod_mtu;
	struct pw_datapath *dp;
	int lock_fd;                   /* flock on <state_dir>/agent.lock: one agent per instance */
};

/* loader.c */
int pw_loader_start(struct pw_agent *a);
void pw_loader_close(struct pw_agent *a);
int pw_loader_map_fd(struct pw_agent *a, const char *name);
int pw_uninstall(const struct pw_paths *p, const char *config_path);

/* node.c: the node's kernel settings and what the agent publishes */
int pw_node_check(const struct pw_node_config *cfg, int *uplink_ifindex);
int pw_node_setup(struct pw_agent *a);
int pw_agent_lock(struct pw_agent *a);

/* reconcile.c: apply the difference between two configs. old may be an
 * empty (zeroed) config at start-up: then everything in new is applied and
 * anything left in the maps from before a restart that new does not want is
 * removed. Fields that are baked into the loaded programs (node.*,
 * cluster.podCIDR) cannot change while running; a change is reported and
 * ignored until restart: new gets old's values for them, so new is what
 * actually runs. Returns 0 or -errno. */
int pw_reconcile(struct pw_agent *a, const struct pw_node_config *old,
		 struct pw_node_config *new);

/* watch.c: inotify on the config file's directory. */
int pw_watch_open(const char *config_path);
/* Drains pending events; true when one concerned the config file. */
bool pw_watch_changed(int fd, const char *config_path);
#endif
