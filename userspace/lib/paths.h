/* Every path a node uses derives from its instance name (architecture §3). */
#ifndef PW_PATHS_H
#define PW_PATHS_H
#include <stddef.h>

#define PW_BPFFS_ROOT "/sys/fs/bpf/podwire"
#define PW_RUN_ROOT   "/run/podwire"
#define PW_DEFAULT_INSTANCE "default"
#define PW_PATH_MAX 256

struct pw_paths {
	char instance[64];
	char pin_dir[PW_PATH_MAX];    /* /sys/fs/bpf/podwire/<inst>        maps pinned by name */
	char prog_dir[PW_PATH_MAX];   /* <pin_dir>/progs                    programs */
	char link_dir[PW_PATH_MAX];   /* <pin_dir>/links                    tcx links */
	char state_dir[PW_PATH_MAX];  /* /run/podwire/<inst> */
	char node_file[PW_PATH_MAX];  /* <state_dir>/node.json              what the agent publishes for CNI */
	char ipam_dir[PW_PATH_MAX];   /* <state_dir>/ipam */
	char sock_path[PW_PATH_MAX];  /* <state_dir>/agent.sock */
};

/* Instance names are [A-Za-z0-9_-]{1,63}: they become path components.
 * 0 on success, -EINVAL for a bad name. Roots can be overridden with the
 * environment variables PODWIRE_BPFFS_ROOT and PODWIRE_RUN_ROOT (tests). */
int pw_paths_init(struct pw_paths *p, const char *instance);
/* Pin path of the tcx link on interface ifname: <link_dir>/<ifname>; the
 * uplink's is <link_dir>/uplink (PW_LINK_UPLINK). Shared by the agent (which
 * moves every pod link to a new program on restart) and the CNI plugin.
 * A '.' in ifname becomes ':' (bpffs reserves '.').
 * 0 or -ENAMETOOLONG / -EINVAL (ifname empty or containing '/'). */
#define PW_LINK_UPLINK "uplink"
int pw_link_pin_path(const struct pw_paths *p, const char *ifname, char *buf, size_t len);
/* mkdir -p */
int pw_mkdirs(const char *path, unsigned mode);
#endif
