/* Service reconciler benchmark (issue 4 targets: 10,000 services with 20,000
 * backends applied in < 100 ms, one service change in < 1 ms, only what
 * changed written).
 *
 * Creates the load-balancing maps itself with bpf_map_create, with the key and
 * value sizes, types and default sizes of include/podwire/abi.h (so it needs
 * no BPF object, only root), then:
 *   1. applies N services (default 10,000, 2 distinct backends each, the first
 *      2,768 with a NodePort: the whole 30000-32767 range) to empty maps;
 *   2. re-applies the same list (nothing to write);
 *   3. one service change, several kinds, each repeated and the median taken:
 *      replace a backend, add a backend, remove a service, add a service,
 *      and (with --maglev K) replace a backend of a Maglev service;
 *   4. a "restart": a new reconciler reads the maps back, then applies.
 * Every figure is wall-clock time of the library call, in ms.
 *
 * usage: svc_apply [--services N] [--backends-per-service B] [--maglev K]
 *                  [--rounds R] [--in-place 0|1]
 * --in-place 1 sets pw_services.maglev_in_place (Maglev tables patched in
 * place instead of swapped; see services.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <netinet/in.h>
#include <bpf/bpf.h>
#include "podwire/abi.h"
#include "services.h"

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int create_maps(struct pw_svc_maps *m)
{
	LIBBPF_OPTS(bpf_map_create_opts, tmpl_opts, .map_flags = BPF_F_INNER_MAP);
	LIBBPF_OPTS(bpf_map_create_opts, outer_opts);
	int tmpl;

	m->services = bpf_map_create(BPF_MAP_TYPE_HASH, "pw_services", sizeof(struct pw_svc_key),
				     sizeof(struct pw_svc), PW_MAX_SERVICES, NULL);
	m->slots = bpf_map_create(BPF_MAP_TYPE_HASH, "pw_svc_slots", sizeof(struct pw_slot_key),
				  sizeof(__u32), PW_MAX_SLOTS, NULL);
	m->backends = bpf_map_create(BPF_MAP_TYPE_HASH, "pw_backends", sizeof(__u32),
				     sizeof(struct pw_backend), PW_MAX_BACKENDS, NULL);
	m->revnat = bpf_map_create(BPF_MAP_TYPE_HASH, "pw_revnat", sizeof(__u32),
				   sizeof(struct pw_revnat), PW_MAX_SERVICES, NULL);
	m->affinity = bpf_map_create(BPF_MAP_TYPE_LRU_HASH, "pw_affinity",
				     sizeof(struct pw_affinity_key), sizeof(struct pw_affinity),
				     PW_MAX_AFFINITY, NULL);
	m->backend_ports = bpf_map_create(BPF_MAP_TYPE_ARRAY, "pw_backend_ports", sizeof(__u32),
					  sizeof(__u64), PW_BACKEND_PORT_WORDS, NULL);
	tmpl = bpf_map_create(BPF_MAP_TYPE_ARRAY, "pw_maglev_tmpl", sizeof(__u32), sizeof(__u32),
			      PW_MAGLEV_M, &tmpl_opts);
	outer_opts.inner_map_fd = tmpl;
	m->maglev = bpf_map_create(BPF_MAP_TYPE_HASH_OF_MAPS, "pw_maglev", sizeof(__u32),
				   sizeof(__u32), PW_MAX_MAGLEV, &outer_opts);
	if (tmpl >= 0)
		close(tmpl);
	return m->services < 0 || m->slots < 0 || m->backends < 0 || m->revnat < 0 ||
	       m->affinity < 0 || m->maglev < 0 || m->backend_ports < 0 ? -errno : 0;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static void report(const char *what, double *t, int n, const struct pw_svc_stats *st)
{
	qsort(t, (size_t)n, sizeof(*t), cmp_double);
	printf("%-42s median %7.3f ms  max %7.3f ms  writes %lu deletes %lu maglev_tables %lu"
	       " (entries %lu) syscalls %lu\n", what, t[n / 2], t[n - 1], st->writes, st->deletes,
	       st->maglev_tables, st->maglev_entries, st->syscalls);
}

/* Service d's first backend replaced by other and put back, rounds times:
 * the time of each apply into samples, reported as label. 0, or 1 when an
 * apply failed. */
static int time_backend_swap(struct pw_services *s, struct pw_service_config *svcs, int nsvc,
			     struct pw_service_config *d, struct pw_backend_config other, int rounds, double *samples,
			     const char *label)
{
	struct pw_backend_config *orig = d->backends, alt[64];
	int k = d->n_backends < 64 ? d->n_backends : 64, err = 0;
	double t0;

	memcpy(alt, orig, (size_t)k * sizeof(*alt));
	alt[0] = other;
	for (int i = 0; i < rounds && !err; i++) {
		d->backends = i % 2 ? orig : alt;
		t0 = now_ms();
		err = pw_services_apply(s, svcs, nsvc);
		samples[i] = now_ms() - t0;
	}
	d->backends = orig;
	if (err)
		return fprintf(stderr, "change: %s\n", s->err), 1;
	report(label, samples, rounds, &s->last);
	pw_services_apply(s, svcs, nsvc);
	return 0;
}

int main(int argc, char **argv)
{
	int nsvc = 10000, per = 2, nmaglev = 0, rounds = 21, in_place = 0;
	struct pw_svc_maps m;
	struct pw_services s, s2;
	struct pw_service_config *svcs;
	struct pw_backend_config *be;
	double t0, t, *samples;
	int err, nbe, i;

	for (i = 1; i + 1 < argc; i += 2) {
		if (!strcmp(argv[i], "--services"))
			nsvc = atoi(argv[i + 1]);
		else if (!strcmp(argv[i], "--backends-per-service"))
			per = atoi(argv[i + 1]);
		else if (!strcmp(argv[i], "--maglev"))
			nmaglev = atoi(argv[i + 1]);
		else if (!strcmp(argv[i], "--rounds"))
			rounds = atoi(argv[i + 1]);
		else if (!strcmp(argv[i], "--in-place"))
			in_place = atoi(argv[i + 1]);
		else
			break;
	}
	if (i < argc || nsvc < 2 || per < 1 || nmaglev < 0 || nmaglev > nsvc || rounds < 1 ||
	    (long)nsvc * per > 60000) {
		fprintf(stderr, "usage: %s [--services N] [--backends-per-service B] [--maglev K]"
			" [--rounds R] [--in-place 0|1]\n", argv[0]);
		return 2;
	}
	if ((err = create_maps(&m))) {
		fprintf(stderr, "bpf_map_create: %s (needs root)\n", strerror(-err));
		return 1;
	}
	nbe = nsvc * per;
	/* +per*2 spare backends for the changes below. */
	svcs = calloc((size_t)nsvc + 1, sizeof(*svcs));
	be = calloc((size_t)nbe + (size_t)per * 4 + 4, sizeof(*be));
	samples = calloc((size_t)rounds, sizeof(*samples));
	if (!svcs || !be || !samples)
		return 1;
	for (i = 0; i < nbe + per * 4 + 4; i++) {
		be[i].ip = (10u << 24 | 244u << 16) + 2 + (uint32_t)i;   /* 10.244.0.2 on */
		be[i].port = 8080;
	}
	for (i = 0; i < nsvc; i++) {
		struct pw_service_config *d = &svcs[i];

		snprintf(d->name, sizeof(d->name), "svc-%d", i);
		d->vip = (10u << 24 | 96u << 16) + 1 + (uint32_t)i;      /* 10.96.0.1 on */
		d->port = 80;
		d->protocol = IPPROTO_TCP;
		d->node_port = i <= PW_NODEPORT_MAX - PW_NODEPORT_MIN ? (uint16_t)(PW_NODEPORT_MIN + i) : 0;
		d->maglev = i >= nsvc - nmaglev;   /* the last K services */
		d->backends = &be[i * per];
		d->n_backends = per;
	}
	printf("# %d services, %d backends (%d per service), %d with NodePort, %d Maglev (M=%u%s)\n",
	       nsvc, nbe, per, nsvc < 2768 ? nsvc : 2768, nmaglev, PW_MAGLEV_M,
	       in_place ? ", tables patched in place" : ", tables swapped");

	t0 = now_ms();
	if ((err = pw_services_init(&s, &m, 0))) {
		fprintf(stderr, "init: %s\n", s.err);
		return 1;
	}
	s.maglev_in_place = in_place;
	t = now_ms();
	printf("%-42s %7.3f ms\n", "init on empty maps", t - t0);
	t0 = now_ms();
	err = pw_services_apply(&s, svcs, nsvc);
	t = now_ms();
	if (err) {
		fprintf(stderr, "apply: %s\n", s.err);
		return 1;
	}
	printf("%-42s %7.3f ms  writes %lu deletes %lu maglev_tables %lu (entries %lu) syscalls %lu\n",
	       "apply all from scratch", t - t0, s.last.writes, s.last.deletes, s.last.maglev_tables,
	       s.last.maglev_entries, s.last.syscalls);

	for (i = 0; i < rounds; i++) {
		t0 = now_ms();
		pw_services_apply(&s, svcs, nsvc);
		samples[i] = now_ms() - t0;
	}
	report("re-apply unchanged", samples, rounds, &s.last);

	/* Replace one backend of a random-algorithm service, back and forth. */
	{
		struct pw_service_config *d = &svcs[nsvc / 2];
		struct pw_backend_config *orig = d->backends;
		struct pw_backend_config alt[65];
		int k = per < 64 ? per : 64;

		/* be[nbe]: a backend no service uses */
		if (time_backend_swap(&s, svcs, nsvc, d, be[nbe], rounds, samples, "one service: replace a backend"))
			return 1;

		/* Grow by one and shrink back. */
		memcpy(alt, orig, (size_t)k * sizeof(*alt));
		alt[k] = be[nbe + 1];
		d->backends = alt;
		for (i = 0; i < rounds; i++) {
			d->n_backends = i % 2 ? k : k + 1;
			t0 = now_ms();
			err = pw_services_apply(&s, svcs, nsvc);
			samples[i] = now_ms() - t0;
			if (err)
				return fprintf(stderr, "change: %s\n", s.err), 1;
		}
		report("one service: add/remove a backend", samples, rounds, &s.last);
		d->backends = orig;
		d->n_backends = per;
		pw_services_apply(&s, svcs, nsvc);
	}

	/* Remove the last-but-Maglev service and add it back (n-1 <-> n). */
	{
		struct pw_service_config extra = svcs[0];

		extra.vip = (10u << 24 | 97u << 16) + 1;
		extra.node_port = 0;
		extra.maglev = false;
		extra.backends = &be[nbe + 2];
		svcs[nsvc] = extra;
		for (i = 0; i < rounds; i++) {
			t0 = now_ms();
			err = pw_services_apply(&s, svcs, nsvc + (i % 2 ? 0 : 1));
			samples[i] = now_ms() - t0;
			if (err)
				return fprintf(stderr, "change: %s\n", s.err), 1;
		}
		report("one service: add (even) / delete (odd)", samples, rounds, &s.last);
		pw_services_apply(&s, svcs, nsvc);
	}

	if (nmaglev && time_backend_swap(&s, svcs, nsvc, &svcs[nsvc - 1], be[nbe + 3], rounds, samples,
					 "one Maglev service: replace a backend"))
		return 1;

	if (nmaglev > nsvc / 2)
		printf("# (with --maglev > N/2 the 'one service' rows above change a Maglev service)\n");
	pw_services_close(&s);
	t0 = now_ms();
	err = pw_services_init(&s2, &m, 0);
	t = now_ms();
	if (err)
		return fprintf(stderr, "restart init: %s\n", s2.err), 1;
	printf("%-42s %7.3f ms  (%d services read back)\n", "restart: read the maps back", t - t0,
	       pw_services_count(&s2));
	t0 = now_ms();
	err = pw_services_apply(&s2, svcs, nsvc);
	t = now_ms();
	printf("%-42s %7.3f ms  writes %lu deletes %lu maglev_tables %lu\n",
	       "restart: first apply (unchanged config)", t - t0, s2.last.writes, s2.last.deletes,
	       s2.last.maglev_tables);
	t0 = now_ms();
	err |= pw_services_apply(&s2, NULL, 0);
	t = now_ms();
	printf("%-42s %7.3f ms  deletes %lu\n", "delete all", t - t0, s2.last.deletes);
	pw_services_close(&s2);
	free(svcs);
	free(be);
	free(samples);
	return err ? 1 : 0;
}
