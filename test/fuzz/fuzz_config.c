/* libFuzzer harness for the node config parser (outside input: the config
 * file, which podwirectl and operators write). Build and run:
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -D_GNU_SOURCE \
 *     -Iinclude -Iuserspace/lib -I/usr/include/cjson test/fuzz/fuzz_config.c \
 *     userspace/lib/config.c userspace/lib/cidr.c -lcjson -o /tmp/fuzz_config
 *   /tmp/fuzz_config -max_total_time=60 test/fuzz/corpus/config
 * The harness checks invariants beyond "no crash": a parse either fails
 * with a non-empty message or yields a config whose relations hold. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "config.h"
#include "policy.h"

static void check(int cond)
{
	if (!cond)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct pw_node_config cfg;
	char err[256];
	char *json = malloc(size + 1);
	int r;

	if (!json)
		return 0;
	memcpy(json, data, size);
	json[size] = '\0';
	r = pw_config_parse(json, &cfg, err, sizeof(err));
	free(json);
	if (r) {
		check(r < 0 && err[0] != '\0');
		return 0;
	}
	check(cfg.name[0] && cfg.uplink[0]);
	check(pw_cidr_within(&cfg.pod_cidr, &cfg.cluster_cidr));
	for (int i = 0; i < cfg.n_peers; i++) {
		check(pw_cidr_within(&cfg.peers[i].pod_cidr, &cfg.cluster_cidr));
		check(!pw_cidr_overlaps(&cfg.peers[i].pod_cidr, &cfg.pod_cidr));
		for (int j = 0; j < i; j++)
			check(!pw_cidr_overlaps(&cfg.peers[i].pod_cidr, &cfg.peers[j].pod_cidr));
	}
	for (int i = 0; i < cfg.n_services; i++) {
		check(pw_cidr_contains(&cfg.service_cidr, cfg.services[i].vip));
		check(cfg.services[i].port > 0);
		check(cfg.services[i].n_backends >= 0);
	}
	/* A config that parsed carries a policy model that parses again and
	 * translates (local pods: the model's first two pods, on this node),
	 * and the incremental computation, loading it, wants the same maps. */
	if (cfg.policy_json) {
		struct pw_policy_model m;
		struct pw_policy_state st, inc_st, old, new;
		struct pw_local_pod local[2];
		struct pw_policy_inc *inc;
		int rc, n_local = 0;

		check(pw_policy_model_parse(cfg.policy_json, &m, err, sizeof(err)) == 0);
		memset(local, 0, sizeof(local));
		for (int i = 0; i < m.n_pods && n_local < 2; i++, n_local++) {
			local[n_local].ip = 0x0af40102u + (uint32_t)n_local;
			memcpy(local[n_local].ns, m.pods[i].ns, sizeof(local[n_local].ns));
			memcpy(local[n_local].name, m.pods[i].name, sizeof(local[n_local].name));
		}
		rc = pw_policy_compute(&m, local, n_local, &st);
		check(rc == 0 || rc == -12 /* ENOMEM */);
		inc = pw_policy_inc_new(false);
		if (rc == 0 && inc) {
			for (int i = 1; i < st.n_rules; i++)
				check(memcmp(&st.rules[i - 1].k, &st.rules[i].k, sizeof(st.rules[i].k)) < 0);
			check(pw_policy_inc_load_json(inc, cfg.policy_json, err, sizeof(err)) == 0);
			check(pw_policy_inc_set_local(inc, local, n_local) == 0);
			check(pw_policy_inc_flush(inc, &old, &new, NULL) == 0);
			check(pw_policy_inc_state(inc, &inc_st) == 0);
			check(inc_st.n_ids == st.n_ids && inc_st.n_eps == st.n_eps && inc_st.n_rules == st.n_rules);
			check(!memcmp(inc_st.ids, st.ids, (size_t)st.n_ids * sizeof(*st.ids)));
			check(!memcmp(inc_st.eps, st.eps, (size_t)st.n_eps * sizeof(*st.eps)));
			check(!memcmp(inc_st.rules, st.rules, (size_t)st.n_rules * sizeof(*st.rules)));
			pw_policy_state_free(&old);
			pw_policy_state_free(&new);
			pw_policy_state_free(&inc_st);
		}
		if (rc == 0)
			pw_policy_state_free(&st);
		pw_policy_inc_free(inc);
		pw_policy_model_free(&m);
	}
	pw_config_free(&cfg);
	return 0;
}
