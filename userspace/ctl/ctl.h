/* podwirectl: the operator's view of one node instance. main.c parses the
 * global flags and dispatches; each command group is one file exporting one
 * struct ctl_cmd (listed in main.c); output.c holds the shared table/JSON
 * output. Everything is read from the instance's pinned maps, so it works
 * whether or not the agent runs. See docs/podwirectl.md. */
#ifndef PW_CTL_H
#define PW_CTL_H
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <net/if.h>
#include <cjson/cJSON.h>
#include "paths.h"

/* Exit codes scripts can rely on (docs/podwirectl.md). */
enum ctl_exit {
	CTL_OK          = 0,
	CTL_ERROR       = 1,   /* a map could not be read, a write failed, ... */
	CTL_USAGE       = 2,   /* bad command line */
	CTL_NO_INSTANCE = 3,   /* no datapath pinned for --instance */
	CTL_UNSUPPORTED = 4,   /* the pinned datapath has no such feature (yet) */
	CTL_NOT_APPLIED = 5,   /* service add|del: the config was changed, but no running agent
				* confirmed applying it (not running, or not within --wait) */
	CTL_DENIED      = 6,   /* policy check: the maps deny the flow */
};

struct ctl {
	struct pw_paths paths;
	bool json;                /* -o json */
	bool agent_running;
	int agent_pid;            /* 0 if unknown */
	bool in_agent_netns;      /* interface names are resolved where the agent runs */
};

struct ctl_cmd {
	const char *name;
	const char *args;         /* usage after the name, "" if none */
	const char *summary;
	int (*run)(struct ctl *c, int argc, char **argv);   /* argv[0] is the command */
	/* For `status`: how many entries this group has (endpoints, peers, ...),
	 * -ENOTSUP when the datapath has none, -errno on failure. NULL: not a
	 * countable group. A new group shows up in status by filling this in. */
	long (*count)(const struct ctl *c);
	const char *count_label;  /* name in status if not .name ("conntrack" for ct) */
	bool config_only;         /* works without a pinned datapath (edits the agent's config) */
};

/* One per file. */
extern const struct ctl_cmd ctl_cmd_status, ctl_cmd_endpoints, ctl_cmd_peers,
	ctl_cmd_services, ctl_cmd_ct, ctl_cmd_nat, ctl_cmd_metrics, ctl_cmd_monitor, ctl_cmd_service,
	ctl_cmd_policy;

/* service.c: the agent's config file for this instance: "config" in
 * node.json (what the running or last agent uses), else
 * /etc/podwire/<instance>.json (podwired's default). */
void ctl_config_path(const struct ctl *c, char *buf, size_t len);
/* pw_config_parse of the file, of any size the agent takes (pw_config_load
 * stops at 1 MiB; 10,000 services are more). */
struct pw_node_config;

/* monitor.c: pid of the podwirectl monitor that holds the instance's event
 * stream (the ring buffer has one consumer), 0 when none runs. */
int ctl_monitor_holder(const struct ctl *c);

/* policy.c: "namespace/name" of a policy id from the agent's config (read
 * once), "default deny" for 0, "#<hex id>" for one the config lacks. */
const char *ctl_policy_name(const struct ctl *c, uint32_t id, char *buf, size_t len);

/* ---------- shared helpers (output.c) ---------- */

/* Open a pinned map of the instance; prints why on failure. fd or -1. */
int ctl_map_open(const struct ctl *c, const char *name);

/* Entries of a pinned map, counted like status does; -errno. */
long ctl_count_map(const struct ctl *c, const char *name);

/* Messages to stderr, "podwirectl: ..."; return the exit code given. */
int ctl_fail(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Command-local usage error: prints "usage: podwirectl <cmd> <args>". */
int ctl_usage(const struct ctl_cmd *cmd);

void ctl_fmt_ip(const uint8_t ip[4], char buf[16]);

/* Every entry of the instance's pinned map name (keys and values in two
 * arrays the caller frees), read at *now (ctl_mono_ns()). what names the
 * map's content in the "this datapath has no ..." message (exit
 * CTL_UNSUPPORTED when it is not pinned). CTL_OK or the exit code, the
 * reason printed. */
int ctl_dump_pinned(const struct ctl *c, const char *name, const char *what, size_t ksz, size_t vsz,
		    void **keys, void **vals, size_t *n, uint64_t *now);

/* CLOCK_MONOTONIC in ns: bpf_ktime_get_ns()'s clock, which the maps'
 * last_seen_ns fields use. */
uint64_t ctl_mono_ns(void);
/* Seconds from last_seen_ns to now (0 if in the future). */
double ctl_age_s(uint64_t last_seen_ns, uint64_t now);

/* The optional "--addr IP" (or --addr=IP) of the listing commands: *filter
 * and addr set when given; CTL_OK, or a usage error for cmd. */
int ctl_parse_addr_filter(const struct ctl_cmd *cmd, int argc, char **argv, bool *filter, uint8_t addr[4]);
void ctl_fmt_mac(const uint8_t mac[6], char buf[18]);
const char *ctl_proto_name(uint8_t proto, char buf[8]);   /* "tcp", "udp", "icmp", or the number */

/* Name of ifindex in the current netns. With expect_mac, a device whose MAC
 * differs is reported as "?" rather than a wrong name (ifindexes are per
 * network namespace: run where the agent runs, or while it runs). */
const char *ctl_ifname(unsigned ifindex, const uint8_t *expect_mac, char buf[IF_NAMESIZE]);

/* Tables: columns aligned, header in capitals. */
struct ctl_table;
struct ctl_table *ctl_table_new(int ncols, ...);          /* ncols header strings */
void ctl_table_add(struct ctl_table *t, ...);              /* ncols cell strings */
void ctl_table_print(struct ctl_table *t, FILE *out);      /* and frees it */

/* Prints a JSON document (indented) and deletes it. CTL_OK, or CTL_ERROR
 * when doc is NULL (an allocation failed while building it). */
int ctl_json_print(cJSON *doc);
#endif
