/* Read-only views of a node's pinned datapath (see inspect.h). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include "datapath.h"
#include "inspect.h"

/* ---------- pw_metrics ---------- */

int pw_inspect_metrics(int metrics_fd, struct pw_metric out[PW_METRIC_MAX])
{
	int ncpu = libbpf_num_possible_cpus();
	struct pw_metric *vals;
	int err = 0;

	memset(out, 0, sizeof(*out) * PW_METRIC_MAX);
	if (ncpu <= 0)
		return ncpu < 0 ? ncpu : -EINVAL;
	vals = calloc((size_t)ncpu, sizeof(*vals));
	if (!vals)
		return -ENOMEM;
	for (uint32_t slot = 0; slot < PW_METRIC_MAX; slot++) {
		if (bpf_map_lookup_elem(metrics_fd, &slot, vals)) {
			if (errno == ENOENT)
				break;   /* a smaller map than this build knows */
			err = -errno;
			break;
		}
		for (int c = 0; c < ncpu; c++) {
			out[slot].egress.packets += vals[c].egress.packets;
			out[slot].egress.bytes += vals[c].egress.bytes;
			out[slot].ingress.packets += vals[c].ingress.packets;
			out[slot].ingress.bytes += vals[c].ingress.bytes;
		}
	}
	free(vals);
	return err;
}

enum pw_slot_kind pw_metric_slot_info(uint32_t slot, const char **name)
{
	*name = NULL;
	switch (slot) {
	case PW_METRIC_FORWARDED: *name = "forwarded"; return PW_SLOT_OUTCOME;
	case PW_METRIC_PASSED:    *name = "passed"; return PW_SLOT_OUTCOME;
	case PW_METRIC_ARP_REPLY: *name = "arp-reply"; return PW_SLOT_OUTCOME;
	case PW_METRIC_MASQUERADED: *name = "masqueraded"; return PW_SLOT_OUTCOME;
	}
	if (slot > 0 && slot < PW_DROP_REASON_COUNT) {
		*name = pw_drop_reason_name(-(int)slot);
		return PW_SLOT_DROP;
	}
	return PW_SLOT_UNUSED;
}

const char *pw_dir_name(int dir)
{
	return dir == PW_DIR_INGRESS ? "ingress" : "egress";
}

/* ---------- generic iteration ---------- */

/* Calls fn(key, value, ctx) for every entry. Entries deleted between
 * get_next_key and lookup are skipped; a map that changes while it is walked
 * may be seen partly old, partly new, never torn per entry. */
typedef int (*entry_fn)(const void *key, const void *value, void *ctx);

static int walk_map(int fd, size_t key_size, size_t value_size, entry_fn fn, void *ctx)
{
	void *key = calloc(1, key_size), *next = calloc(1, key_size), *val = calloc(1, value_size);
	void *prev = NULL;
	int err = 0;

	if (!key || !next || !val) {
		err = -ENOMEM;
		goto out;
	}
	while (bpf_map_get_next_key(fd, prev, next) == 0) {
		memcpy(key, next, key_size);
		prev = key;
		if (bpf_map_lookup_elem(fd, key, val)) {
			if (errno == ENOENT)
				continue;
			err = -errno;
			goto out;
		}
		err = fn(key, val, ctx);
		if (err)
			goto out;
	}
	if (errno != ENOENT)
		err = -errno;
out:
	free(key);
	free(next);
	free(val);
	return err;
}

/* A growing array of fixed-size records. */
struct vec {
	void *data;
	size_t n, cap, size;
};

static int vec_push(struct vec *v, const void *rec)
{
	if (v->n == v->cap) {
		size_t cap = v->cap ? v->cap * 2 : 16;
		void *d = realloc(v->data, cap * v->size);

		if (!d)
			return -ENOMEM;
		v->data = d;
		v->cap = cap;
	}
	memcpy((char *)v->data + v->n * v->size, rec, v->size);
	v->n++;
	return 0;
}

/* ---------- endpoints and peers ---------- */

static int push_endpoint(const void *key, const void *value, void *ctx)
{
	(void)key;
	return vec_push(ctx, value);
}

static int cmp_endpoint(const void *a, const void *b)
{
	return memcmp(((const struct pw_endpoint *)a)->ip, ((const struct pw_endpoint *)b)->ip, 4);
}

int pw_inspect_endpoints(int endpoints_fd, struct pw_endpoint **out, size_t *n)
{
	struct vec v = { .size = sizeof(struct pw_endpoint) };
	int err = walk_map(endpoints_fd, sizeof(struct pw_ip4), sizeof(struct pw_endpoint), push_endpoint, &v);

	if (err) {
		free(v.data);
		return err;
	}
	if (v.n)
		qsort(v.data, v.n, v.size, cmp_endpoint);
	*out = v.data;
	*n = v.n;
	return 0;
}

static int push_peer(const void *key, const void *value, void *ctx)
{
	struct pw_peer_entry e;

	memcpy(&e.key, key, sizeof(e.key));
	memcpy(&e.peer, value, sizeof(e.peer));
	return vec_push(ctx, &e);
}

static int cmp_peer(const void *a, const void *b)
{
	const struct pw_peer_entry *x = a, *y = b;
	int c = memcmp(x->key.addr, y->key.addr, 4);

	return c ? c : (int)x->key.prefixlen - (int)y->key.prefixlen;
}

int pw_inspect_peers(int peers_fd, struct pw_peer_entry **out, size_t *n)
{
	struct vec v = { .size = sizeof(struct pw_peer_entry) };
	int err = walk_map(peers_fd, sizeof(struct pw_peer_key), sizeof(struct pw_peer), push_peer, &v);

	if (err) {
		free(v.data);
		return err;
	}
	if (v.n)
		qsort(v.data, v.n, v.size, cmp_peer);
	*out = v.data;
	*n = v.n;
	return 0;
}

/* ---------- map fill levels ---------- */

long pw_inspect_count_keys(int map_fd, uint32_t key_size)
{
	void *key = calloc(1, key_size ? key_size : 1), *next = calloc(1, key_size ? key_size : 1);
	void *prev = NULL;
	long n = 0;

	if (!key || !next) {
		free(key);
		free(next);
		return -ENOMEM;
	}
	while (bpf_map_get_next_key(map_fd, prev, next) == 0) {
		memcpy(key, next, key_size);
		prev = key;
		n++;
	}
	if (errno != ENOENT)
		n = -errno;
	free(key);
	free(next);
	return n;
}

#define BATCH 4096

/* The map type has no batch ops: -EINVAL, -EOPNOTSUPP or the kernel's own
 * ENOTSUPP (524, not in the userspace headers; socket storage says it). */
static bool batch_unsupported(int err)
{
	return err == -EINVAL || err == -ENOTSUP || err == -EOPNOTSUPP || err == -524;
}

/* One bpf_map_lookup_batch step: up to BATCH entries after *token (NULL =
 * from the start) into keys/values. Returns the count (>= 0), -ENOENT after
 * the last entry (count in *got), or -errno (-EINVAL/-ENOTSUP: no batch ops
 * for this map type). */
static int batch_step(int fd, void **token, void *tokbuf, void *outtok, size_t toksz, void *keys,
		      void *values, __u32 *got)
{
	LIBBPF_OPTS(bpf_map_batch_opts, opts);
	__u32 count = BATCH;
	int err = bpf_map_lookup_batch(fd, *token, outtok, keys, values, &count, &opts);

	*got = count;
	if (err < 0) {
		err = -errno;
		if (err == -ENOENT)
			return -ENOENT;
		if (batch_unsupported(err))   /* count was never written back */
			return err;
		if (count)   /* a partial batch before an error: take it, fail next time */
			return (int)count;
		return err;
	}
	memcpy(tokbuf, outtok, toksz);
	*token = tokbuf;
	return (int)count;
}

long pw_inspect_count_entries(int map_fd, uint32_t key_size, uint32_t value_size)
{
	size_t toksz = key_size > 8 ? key_size : 8;
	void *keys = malloc((size_t)BATCH * key_size), *vals = malloc((size_t)BATCH * (value_size ? value_size : 1));
	void *tok = calloc(1, toksz), *out = calloc(1, toksz), *token = NULL;
	long n = 0;
	int r;

	if (!keys || !vals || !tok || !out) {
		n = -ENOMEM;
		goto out;
	}
	for (;;) {
		__u32 got = 0;

		r = batch_step(map_fd, &token, tok, out, toksz, keys, vals, &got);
		if (r == -ENOENT) {
			n += got;
			break;
		}
		if (r < 0) {
			n = batch_unsupported(r) && n == 0 ?
			    pw_inspect_count_keys(map_fd, key_size) : r;
			break;
		}
		n += r;
	}
out:
	free(keys);
	free(vals);
	free(tok);
	free(out);
	return n;
}

static int dump_slow(int fd, uint32_t ks, uint32_t vs, struct vec *k, struct vec *v);

int pw_inspect_dump(int map_fd, uint32_t key_size, uint32_t value_size, void **keys, void **values,
		    size_t *n)
{
	size_t toksz = key_size > 8 ? key_size : 8, cap = 0, len = 0;
	char *kb = NULL, *vb = NULL;
	void *tok = calloc(1, toksz), *out = calloc(1, toksz), *token = NULL;
	int err = 0, r;

	*keys = *values = NULL;
	*n = 0;
	if (!tok || !out) {
		err = -ENOMEM;
		goto done;
	}
	for (;;) {
		__u32 got = 0;

		if (cap - len < BATCH) {
			size_t nc = cap ? cap * 2 : BATCH * 2;
			char *nk = realloc(kb, nc * key_size), *nv;

			if (!nk) {
				err = -ENOMEM;
				break;
			}
			kb = nk;
			nv = realloc(vb, nc * value_size);
			if (!nv) {
				err = -ENOMEM;
				break;
			}
			vb = nv;
			cap = nc;
		}
		r = batch_step(map_fd, &token, tok, out, toksz, kb + len * key_size, vb + len * value_size, &got);
		if (r == -ENOENT) {
			len += got;
			break;
		}
		if (r < 0) {
			if (batch_unsupported(r) && len == 0) {
				struct vec k = { .size = key_size }, v = { .size = value_size };

				free(kb);
				free(vb);
				kb = vb = NULL;
				err = dump_slow(map_fd, key_size, value_size, &k, &v);
				kb = k.data;
				vb = v.data;
				len = k.n;
			} else {
				err = r;
			}
			break;
		}
		len += (size_t)r;
	}
done:
	free(tok);
	free(out);
	if (err || !len) {
		free(kb);
		free(vb);
		return err;
	}
	*keys = kb;
	*values = vb;
	*n = len;
	return 0;
}

struct slow_ctx {
	struct vec *k, *v;
};

static int push_kv(const void *key, const void *value, void *ctx)
{
	struct slow_ctx *c = ctx;
	int err = vec_push(c->k, key);

	return err ? err : vec_push(c->v, value);
}

static int dump_slow(int fd, uint32_t ks, uint32_t vs, struct vec *k, struct vec *v)
{
	struct slow_ctx c = { k, v };
	int err = walk_map(fd, ks, vs, push_kv, &c);

	if (err) {
		free(k->data);
		free(v->data);
		k->data = v->data = NULL;
		k->n = v->n = 0;
	}
	return err;
}

const char *pw_ct_state_name(uint8_t state)
{
	switch (state) {
	case PW_CT_NEW: return "new";
	case PW_CT_ESTABLISHED: return "established";
	case PW_CT_CLOSING: return "closing";
	case PW_CT_CLOSED: return "closed";
	}
	return "?";
}

const char *pw_map_type_name(uint32_t type)
{
	const char *s = libbpf_bpf_map_type_str((enum bpf_map_type)type);

	return s ? s : "unknown";
}

static bool counts_entries(uint32_t type)
{
	switch (type) {
	case BPF_MAP_TYPE_ARRAY:
	case BPF_MAP_TYPE_PERCPU_ARRAY:
	case BPF_MAP_TYPE_RINGBUF:
	case BPF_MAP_TYPE_PROG_ARRAY:
	case BPF_MAP_TYPE_PERF_EVENT_ARRAY:
	case BPF_MAP_TYPE_SK_STORAGE:   /* lives in the sockets: cannot be walked */
		return false;
	default:
		return true;
	}
}

/* Per-CPU values are value_size per possible CPU: batch buffers would need
 * sizing for that; these maps are small, counted key by key. */
static bool is_percpu(uint32_t type)
{
	return type == BPF_MAP_TYPE_PERCPU_HASH || type == BPF_MAP_TYPE_LRU_PERCPU_HASH;
}

/* fill from the pin at path; -ENOTSUP (skipped) when the pin is not a map. */
static int read_map_fill(const char *path, const char *name, struct pw_map_fill *f)
{
	struct bpf_map_info info;
	__u32 len = sizeof(info);
	int fd = bpf_obj_get(path), err = 0;

	if (fd < 0)
		return -errno;
	memset(&info, 0, sizeof(info));
	if (bpf_map_get_info_by_fd(fd, &info, &len)) {
		err = errno == EINVAL ? -ENOTSUP : -errno;   /* a program or link pin */
		close(fd);
		return err;
	}
	memset(f, 0, sizeof(*f));
	memcpy(f->name, name, strnlen(name, sizeof(f->name) - 1));   /* pin names are <= 15 chars */
	f->type = info.type;
	f->max_entries = info.max_entries;
	f->key_size = info.key_size;
	f->value_size = info.value_size;
	f->btf_id = info.btf_id;
	f->id = info.id;
	f->entries = !counts_entries(info.type) ? PW_INSPECT_NOT_COUNTED :
		     is_percpu(info.type) ? pw_inspect_count_keys(fd, info.key_size) :
		     pw_inspect_count_entries(fd, info.key_size, info.value_size);
	close(fd);
	return 0;
}

static int cmp_fill(const void *a, const void *b)
{
	return strcmp(((const struct pw_map_fill *)a)->name, ((const struct pw_map_fill *)b)->name);
}

int pw_inspect_maps(const char *pin_dir, struct pw_map_fill **out, size_t *n)
{
	struct vec v = { .size = sizeof(struct pw_map_fill) };
	DIR *d = opendir(pin_dir);
	struct dirent *de;
	int err = 0;

	if (!d)
		return -errno;
	while ((de = readdir(d))) {
		char path[PW_PATH_MAX + 300];
		struct pw_map_fill f;
		struct stat st;

		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", pin_dir, de->d_name);
		if (stat(path, &st) || !S_ISREG(st.st_mode))
			continue;   /* progs/, links/ */
		err = read_map_fill(path, de->d_name, &f);
		if (err == -ENOTSUP || err == -ENOENT) {
			err = 0;
			continue;
		}
		if (err || (err = vec_push(&v, &f)))
			break;
	}
	closedir(d);
	if (err) {
		free(v.data);
		return err;
	}
	if (v.n)
		qsort(v.data, v.n, v.size, cmp_fill);
	*out = v.data;
	*n = v.n;
	return 0;
}

/* ---------- the agent ---------- */

static int lock_file_pid(const char *path)
{
	char buf[32];
	int fd = open(path, O_RDONLY | O_CLOEXEC), pid = 0;
	ssize_t len;

	if (fd < 0)
		return 0;
	len = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (len > 0) {
		buf[len] = '\0';
		pid = atoi(buf);
	}
	return pid;
}

/* A line of /proc/locks: "1: FLOCK  ADVISORY  WRITE 1234 00:19:5678 0 EOF";
 * lines of blocked waiters carry a "->" after the id and do not count. */
static bool proc_locks_has(dev_t dev, ino_t ino)
{
	FILE *f = fopen("/proc/locks", "re");
	char line[256];
	bool found = false;

	if (!f)
		return false;
	while (!found && fgets(line, sizeof(line), f)) {
		char type[16], dev_ino[64];
		unsigned maj, min;
		unsigned long long i;

		if (strstr(line, "->") ||
		    sscanf(line, "%*s %15s %*s %*s %*d %63s", type, dev_ino) != 2 ||
		    strcmp(type, "FLOCK") ||
		    sscanf(dev_ino, "%x:%x:%llu", &maj, &min, &i) != 3)
			continue;
		found = maj == major(dev) && min == minor(dev) && i == (unsigned long long)ino;
	}
	fclose(f);
	return found;
}

bool pw_inspect_flock_held(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 && proc_locks_has(st.st_dev, st.st_ino);
}

bool pw_inspect_agent_running(const struct pw_paths *p, int *pid)
{
	char path[PW_PATH_MAX + 16];

	*pid = 0;
	snprintf(path, sizeof(path), "%s/agent.lock", p->state_dir);
	if (!pw_inspect_flock_held(path))
		return false;   /* never ran here, or exited (the kernel dropped its lock) */
	*pid = lock_file_pid(path);
	return true;
}

bool pw_inspect_instance_exists(const struct pw_paths *p)
{
	char path[PW_PATH_MAX + 32];

	snprintf(path, sizeof(path), "%s/" PW_MAP_METRICS, p->pin_dir);
	return access(path, F_OK) == 0;
}
