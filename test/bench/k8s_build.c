/* The Kubernetes source's build cost (userspace/lib/k8s_model.c), no API
 * server needed: a model of SERVICES Services (one TCP port) with an
 * EndpointSlice of 2 ready endpoints each, then
 *   - whole builds (pw_k8s_build), median and max of 5;
 *   - CHANGES slice changes (each a new port on one Service's slice), each
 *     followed by an incremental build (pw_k8s_build_next + pw_k8s_release,
 *     as the agent does): mean, p99 and max;
 *   - the deep copy the agent hands to its publisher thread.
 *   k8s_build [SERVICES [CHANGES]]   (defaults 10000, 1000) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <cjson/cJSON.h>
#include "config.h"
#include "k8s_model.h"
#include "log.h"

static double now_ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
}

static int dbl_cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static void put(struct pw_k8s_model *m, enum pw_k8s_kind kind, const char *json)
{
	cJSON *o = cJSON_Parse(json);

	if (!o || pw_k8s_upsert(m, kind, o) < 0) {
		fprintf(stderr, "k8s_build: cannot apply %s\n", json);
		exit(1);
	}
	cJSON_Delete(o);
}

static void put_slice(struct pw_k8s_model *m, int i, int port)
{
	char json[512];

	snprintf(json, sizeof(json),
		 "{\"metadata\":{\"name\":\"s%d-x\",\"namespace\":\"bench\",\"labels\":"
		 "{\"kubernetes.io/service-name\":\"s%d\"}},\"addressType\":\"IPv4\","
		 "\"ports\":[{\"port\":%d,\"protocol\":\"TCP\"}],\"endpoints\":["
		 "{\"addresses\":[\"10.244.%d.%d\"]},{\"addresses\":[\"10.244.%d.%d\"]}]}",
		 i, i, port, 2 + (i >> 8) % 200, i & 255, 3 + (i >> 8) % 200, i & 255);
	put(m, PW_K8S_SLICE, json);
}

static struct pw_k8s_model *fill(const struct pw_node_config *base, int services)
{
	struct pw_k8s_model *m = pw_k8s_model_new("node1", &base->cluster_cidr, &base->service_cidr);
	char json[512];

	if (!m)
		exit(1);
	put(m, PW_K8S_NODE, "{\"metadata\":{\"name\":\"node1\"},\"spec\":{\"podCIDR\":\"10.244.1.0/24\"},"
			    "\"status\":{\"addresses\":[{\"type\":\"InternalIP\",\"address\":\"192.168.1.11\"}]}}");
	for (int i = 0; i < services; i++) {
		snprintf(json, sizeof(json),
			 "{\"metadata\":{\"name\":\"s%d\",\"namespace\":\"bench\"},\"spec\":{\"type\":\"ClusterIP\","
			 "\"clusterIP\":\"10.%d.%d.%d\",\"ports\":[{\"port\":80,\"protocol\":\"TCP\"}]}}",
			 i, 96 + (i >> 16), (i >> 8) & 255, i & 255);
		put(m, PW_K8S_SERVICE, json);
		put_slice(m, i, 8080);
	}
	return m;
}

int main(int argc, char **argv)
{
	int services = argc > 1 ? atoi(argv[1]) : 10000, changes = argc > 2 ? atoi(argv[2]) : 1000;
	struct pw_node_config base = { 0 }, cur, next, copy;
	struct pw_k8s_counts counts;
	double whole[5], *inc, t0, sum = 0, copy_ms;
	struct pw_k8s_model *m;
	char why[256];

	if (services < 1 || services > 65000 || changes < 1) {
		fprintf(stderr, "usage: k8s_build [SERVICES (1-65000) [CHANGES]]\n");
		return 2;
	}
	pw_log_init("k8s_build", PW_LOG_ERROR, stderr);
	pw_cidr_parse("10.244.0.0/16", &base.cluster_cidr);
	pw_cidr_parse("10.96.0.0/12", &base.service_cidr);
	m = fill(&base, services);
	inc = calloc((size_t)changes, sizeof(*inc));
	for (int r = 0; r < 5; r++) {
		t0 = now_ms();
		if (pw_k8s_build(m, &base, &cur, why, sizeof(why))) {
			fprintf(stderr, "k8s_build: %s\n", why);
			return 1;
		}
		whole[r] = now_ms() - t0;
		if (r < 4)
			pw_config_free(&cur);
	}
	for (int c = 0; c < changes; c++) {
		put_slice(m, (int)((unsigned)c * 7919u % (unsigned)services), 9000 + c % 1000);
		t0 = now_ms();
		if (pw_k8s_build_next(m, &base, &cur, &next, why, sizeof(why))) {
			fprintf(stderr, "k8s_build: %s\n", why);
			return 1;
		}
		pw_k8s_release(m, &cur);
		cur = next;
		inc[c] = now_ms() - t0;
		sum += inc[c];
	}
	t0 = now_ms();
	pw_config_copy(&copy, &cur);
	copy_ms = now_ms() - t0;
	pw_config_free(&copy);
	pw_k8s_counts(m, &counts);
	qsort(whole, 5, sizeof(*whole), dbl_cmp);
	qsort(inc, (size_t)changes, sizeof(*inc), dbl_cmp);
	printf("%d services, %d service entries\n", services, cur.n_services);
	printf("whole build: median %.2f ms, max %.2f ms (5 builds)\n", whole[2], whole[4]);
	printf("incremental build after one slice change: mean %.3f ms, p99 %.3f ms, max %.3f ms "
	       "(%d changes: %lu incremental, %lu whole builds)\n", sum / changes, inc[changes * 99 / 100],
	       inc[changes - 1], changes, counts.builds_incremental, counts.builds_whole - 5);
	printf("copy for the publisher: %.2f ms\n", copy_ms);
	pw_k8s_release(m, &cur);
	pw_k8s_model_free(m);
	free(inc);
	return 0;
}
