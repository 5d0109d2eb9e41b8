/* Reading a node's pinned datapath state for operators: counters, endpoints,
 * peers, map fill levels and whether the agent runs. One implementation for
 * podwirectl and the agent's /metrics endpoint, so both always agree.
 * Read-only: nothing here changes a map. */
#ifndef PW_INSPECT_H
#define PW_INSPECT_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <podwire/abi.h>
#include <podwire/drop.h>
#include "paths.h"

/* ---------- pw_metrics ---------- */

/* Every slot of pw_metrics summed over libbpf_num_possible_cpus() CPUs.
 * out[slot]; slots the map does not have (shorter map) stay zero.
 * 0 or -errno. */
int pw_inspect_metrics(int metrics_fd, struct pw_metric out[PW_METRIC_MAX]);

enum pw_slot_kind {
	PW_SLOT_UNUSED = 0,   /* no meaning assigned: never counted */
	PW_SLOT_OUTCOME,      /* forwarded, passed, arp-reply */
	PW_SLOT_DROP,         /* a drop reason: code = -slot */
};

/* What a slot counts: its kind and name ("forwarded", "passed", "arp-reply",
 * or the drop reason's name from pw_drop_reason_name). NULL name for an
 * unused slot. */
enum pw_slot_kind pw_metric_slot_info(uint32_t slot, const char **name);
const char *pw_dir_name(int dir);   /* "egress" / "ingress" */

/* ---------- endpoints and peers ---------- */

/* Every value of pw_endpoints (pod IP -> endpoint), sorted by IP. *out is
 * malloc'ed (NULL when empty); free() it. 0 or -errno. */
int pw_inspect_endpoints(int endpoints_fd, struct pw_endpoint **out, size_t *n);

struct pw_peer_entry {
	struct pw_peer_key key;   /* pod CIDR: prefixlen + addr */
	struct pw_peer peer;      /* node IP */
};

/* Every entry of pw_peers, sorted by CIDR. Same ownership as above. */
int pw_inspect_peers(int peers_fd, struct pw_peer_entry **out, size_t *n);

/* ---------- map fill levels ---------- */

#define PW_INSPECT_NOT_COUNTED (-1L)

struct pw_map_fill {
	char name[64];           /* pin name (= map name) */
	uint32_t type;           /* enum bpf_map_type */
	uint32_t max_entries;    /* for a ring buffer: its size in bytes */
	long entries;            /* keys present; PW_INSPECT_NOT_COUNTED for arrays
				  * (always full by construction) and ring buffers */
	uint32_t key_size, value_size, btf_id;
	uint32_t id;             /* kernel map id, as `bpftool map show id N` */
};

/* Every map pinned directly in pin_dir (not progs/ or links/), sorted by
 * name, with its entry count. Keys are counted with bpf_map_get_next_key:
 * O(entries) syscalls, fine for an operator's command or a scrape.
 * 0 or -errno (-ENOENT: no such pin dir). */
int pw_inspect_maps(const char *pin_dir, struct pw_map_fill **out, size_t *n);
/* Keys in a hash/LRU/LPM map, or -errno. */
long pw_inspect_count_keys(int map_fd, uint32_t key_size);
/* The same, with batch lookups (4096 entries a syscall) where the map type
 * has them, else pw_inspect_count_keys: cheap enough for a 512k-entry
 * conntrack on every scrape. value_size as the map says (not per-CPU maps). */
long pw_inspect_count_entries(int map_fd, uint32_t key_size, uint32_t value_size);

/* Every entry of a hash/LRU map: keys and values in two malloc'ed arrays
 * (both NULL when empty; free() both), read with batch lookups
 * where the kernel has them for the map type, else key by key. A map that
 * changes meanwhile may be seen partly old, partly new, never torn per
 * entry. 0 or -errno. */
int pw_inspect_dump(int map_fd, uint32_t key_size, uint32_t value_size, void **keys, void **values,
		    size_t *n);
/* "hash", "lru_hash", "lpm_trie", "ringbuf", ... (libbpf's names). */
const char *pw_map_type_name(uint32_t type);

/* ---------- service load balancing ---------- */

/* "new", "established", "closing", "closed" (enum pw_ct_state), or "?". */
const char *pw_ct_state_name(uint8_t state);

/* ---------- the agent ---------- */

/* Whether some process holds a flock on path, without taking it: looks the
 * file's inode up in /proc/locks. */
bool pw_inspect_flock_held(const char *path);

/* Whether an agent holds <state_dir>/agent.lock, without taking the lock
 * (a probe that took it, even shared and briefly, could make a starting
 * agent think another one runs): looks the lock up in /proc/locks. *pid gets
 * the pid recorded in the lock file (0 if unknown). */
bool pw_inspect_agent_running(const struct pw_paths *p, int *pid);

/* Whether the instance has a datapath pinned (its pw_metrics pin exists). */
bool pw_inspect_instance_exists(const struct pw_paths *p);
#endif
