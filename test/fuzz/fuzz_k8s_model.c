/* libFuzzer harness for the Kubernetes source's translation (outside input:
 * the Node, Service and EndpointSlice objects the API server sends).
 * `make fuzz` builds and runs it. Input: one operation per line, its first
 * character the operation and the rest a JSON object:
 *   N S E  upsert a Node / Service / EndpointSlice
 *   A P K  upsert a Namespace / Pod / NetworkPolicy
 *   n s e a p k  remove one
 *   [ ]    relist begin / end of the kind named by the next character
 * Afterwards the model is built; beyond "no crash, no leak" the harness
 * checks that the result is one the reconciler accepts: services inside
 * the service CIDR, no duplicate frontends or node ports, backends sorted
 * and unique, peers inside the cluster CIDR and not overlapping, a policy
 * model (when there is one) that pw_policy_model_parse takes. The model
 * is also built after every line, each build from the one before
 * (pw_k8s_build_next), and the last of those must be the whole build.
 * A second model takes the same lines object by object, as the agent
 * does (pw_k8s_policy_by_object: after each line its changes go into a
 * policy engine through pw_policy_inc_apply): at the end that engine must
 * want exactly what one loaded with the whole build's text wants. */
#include <netinet/in.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "k8s_model.h"
#include "log.h"
#include "policy.h"

static void check(int cond)
{
	if (!cond)
		abort();
}

static int kind_of(char c)
{
	switch (c) {
	case 'N': case 'n': return PW_K8S_NODE;
	case 'S': case 's': return PW_K8S_SERVICE;
	case 'E': case 'e': return PW_K8S_SLICE;
	case 'A': case 'a': return PW_K8S_NAMESPACE;
	case 'P': case 'p': return PW_K8S_POD;
	case 'K': case 'k': return PW_K8S_NETPOL;
	}
	return -1;
}

static void apply_line(struct pw_k8s_model *m, const char *line)
{
	int kind = kind_of(line[0]);
	cJSON *o;

	if (line[0] == '[' || line[0] == ']') {
		kind = kind_of(line[1]);
		if (kind < 0)
			return;
		if (line[0] == '[')
			pw_k8s_relist_begin(m, (enum pw_k8s_kind)kind);
		else
			pw_k8s_relist_end(m, (enum pw_k8s_kind)kind);
		return;
	}
	if (kind < 0 || !(o = cJSON_Parse(line + 1)))
		return;
	if (line[0] >= 'A' && line[0] <= 'Z')
		pw_k8s_upsert(m, (enum pw_k8s_kind)kind, o);
	else
		pw_k8s_remove(m, (enum pw_k8s_kind)kind, o);
	cJSON_Delete(o);
}

static void check_config(const struct pw_node_config *c)
{
	struct pw_policy_model pm;

	check(pw_policy_model_parse(c->policy_json, &pm, NULL, 0) == 0);
	pw_policy_model_free(&pm);
	check(pw_cidr_within(&c->pod_cidr, &c->cluster_cidr));
	for (int i = 0; i < c->n_peers; i++) {
		check(pw_cidr_within(&c->peers[i].pod_cidr, &c->cluster_cidr));
		check(!pw_cidr_overlaps(&c->peers[i].pod_cidr, &c->pod_cidr));
		for (int j = 0; j < i; j++)
			check(!pw_cidr_overlaps(&c->peers[i].pod_cidr, &c->peers[j].pod_cidr));
	}
	for (int i = 0; i < c->n_services; i++) {
		const struct pw_service_config *s = &c->services[i];

		check(pw_cidr_contains(&c->service_cidr, s->vip) && s->port > 0);
		check(s->protocol == IPPROTO_TCP || s->protocol == IPPROTO_UDP);
		check(strlen(s->name) > 0 && strlen(s->name) < PW_NAME_MAX);
		for (int j = 1; j < s->n_backends; j++)
			check(s->backends[j - 1].ip < s->backends[j].ip ||
			      (s->backends[j - 1].ip == s->backends[j].ip && s->backends[j - 1].port < s->backends[j].port));
		for (int j = 0; j < i; j++) {
			const struct pw_service_config *t = &c->services[j];

			check(strcmp(s->name, t->name) != 0);
			check(!(s->vip == t->vip && s->port == t->port && s->protocol == t->protocol));
			check(!(s->node_port && s->node_port == t->node_port && s->protocol == t->protocol));
		}
	}
}

static void check_same(const struct pw_node_config *a, const struct pw_node_config *b)
{
	check(a->n_services == b->n_services && a->n_peers == b->n_peers);
	check(!a->policy_json == !b->policy_json && (!a->policy_json || !strcmp(a->policy_json, b->policy_json)));
	for (int i = 0; i < a->n_services; i++) {
		const struct pw_service_config *x = &a->services[i], *y = &b->services[i];

		check(strcmp(x->name, y->name) == 0 && x->vip == y->vip && x->port == y->port &&
		      x->protocol == y->protocol && x->node_port == y->node_port && x->n_backends == y->n_backends);
		for (int j = 0; j < x->n_backends; j++)
			check(x->backends[j].ip == y->backends[j].ip && x->backends[j].port == y->backends[j].port);
	}
}

/* After each line: cur := a build from cur (when there is one). */
static void build_step(struct pw_k8s_model *m, const struct pw_node_config *base, struct pw_node_config *cur,
		       bool *have)
{
	struct pw_node_config next;
	char why[256];

	if (pw_k8s_build_next(m, base, *have ? cur : NULL, &next, why, sizeof(why)))
		return;
	if (*have)
		pw_k8s_release(m, cur);
	*cur = next;
	*have = true;
}

/* The by-object model's changes since the last call into *e. */
static void feed_step(struct pw_k8s_model *m, struct pw_policy_inc **e)
{
	struct pw_policy_change *c;
	bool reset;
	int n;

	if (pw_k8s_policy_changes(m, &c, &n, &reset))
		return;
	if (reset) {
		pw_policy_inc_free(*e);
		*e = pw_policy_inc_new(true);
		check(*e != NULL);
	}
	check(!n || *e);
	if (n)
		check(pw_policy_inc_apply(*e, c, n, NULL, 0) == 0);   /* each element was checked alone */
	pw_policy_changes_free(c, n);
}

static void wanted(struct pw_policy_inc *e, struct pw_policy_state *out)
{
	struct pw_policy_state old, new;

	memset(out, 0, sizeof(*out));
	if (!e)
		return;
	check(pw_policy_inc_flush(e, &old, &new, NULL) == 0 && pw_policy_inc_state(e, out) == 0);
	pw_policy_state_free(&old);
	pw_policy_state_free(&new);
}

/* The engine fed object by object wants what the whole text gives. */
static void check_by_object(struct pw_policy_inc *fed, const char *text)
{
	struct pw_policy_inc *whole = pw_policy_inc_new(true);
	struct pw_policy_state a, b;

	check(whole && pw_policy_inc_load_json(whole, text, NULL, 0) == 0);
	wanted(fed, &a);
	wanted(whole, &b);
	check(a.n_ids == b.n_ids && a.n_eps == b.n_eps && a.n_rules == b.n_rules);
	check(!a.n_ids || !memcmp(a.ids, b.ids, (size_t)a.n_ids * sizeof(*a.ids)));
	check(!a.n_eps || !memcmp(a.eps, b.eps, (size_t)a.n_eps * sizeof(*a.eps)));
	check(!a.n_rules || !memcmp(a.rules, b.rules, (size_t)a.n_rules * sizeof(*a.rules)));
	pw_policy_state_free(&a);
	pw_policy_state_free(&b);
	pw_policy_inc_free(whole);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct pw_policy_inc *fed = NULL;
	struct pw_k8s_model *mo;
	struct pw_cidr cluster, svc;
	struct pw_node_config base = { 0 }, out, cur;
	bool have = false;
	struct pw_k8s_model *m;
	char *text = malloc(size + 1), *line, *save = NULL;
	char why[256];

	if (!text)
		return 0;
	pw_log_init("fuzz", PW_LOG_ERROR, stderr);
	memcpy(text, data, size);
	text[size] = '\0';
	pw_cidr_parse("10.244.0.0/16", &cluster);
	pw_cidr_parse("10.96.0.0/12", &svc);
	base.cluster_cidr = cluster;
	base.service_cidr = svc;
	m = pw_k8s_model_new("node1", &cluster, &svc);
	mo = pw_k8s_model_new("node1", &cluster, &svc);
	check(m != NULL && mo != NULL);
	pw_k8s_policy_by_object(mo);
	for (line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		apply_line(m, line);
		apply_line(mo, line);
		build_step(m, &base, &cur, &have);
		feed_step(mo, &fed);
	}
	if (have)
		build_step(m, &base, &cur, &have);   /* the last change may have failed the build */
	if (pw_k8s_build(m, &base, &out, why, sizeof(why)) == 0) {
		check_config(&out);
		check_by_object(fed, out.policy_json);
		if (have)
			check_same(&cur, &out);
		pw_config_free(&out);
	} else {
		check(why[0] != '\0');
	}
	if (have)
		pw_k8s_release(m, &cur);
	pw_k8s_model_free(m);
	pw_k8s_model_free(mo);
	pw_policy_inc_free(fed);
	free(text);
	return 0;
}
