/* kwatch -g KUBECONFIG PATH: one GET (pw_kube_get), prints "status N" and
 * the body on one line.
 * kwatch KUBECONFIG PATH [SECONDS]: runs one informer on the collection
 * PATH (e.g. /api/v1/namespaces/default/configmaps) and prints one line
 * per handler call, for the integration tests and for debugging:
 *   relist_begin | upsert NS/NAME rv=RV | remove NS/NAME rv=RV | relist_end
 * plus "synced" once pw_kube_informer_synced turns true, and at the end
 * "stopped in N ms" (how long pw_kube_informer_stop took). Runs SECONDS
 * seconds (default: until SIGINT/SIGTERM). KUBECONFIG "-" means in-cluster.
 * Logs (PW_LOG_LEVEL=debug for more) go to stderr; KWATCH_WATCH_TIMEOUT
 * sets the watches' timeoutSeconds (pw_kube_set_watch_timeout). */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "kube.h"
#include "log.h"

static pthread_mutex_t out_lock = PTHREAD_MUTEX_INITIALIZER;
static volatile sig_atomic_t done;

static void on_signal(int sig)
{
	(void)sig;
	done = 1;
}

static void say(const char *what, const cJSON *obj)
{
	const cJSON *md = cJSON_GetObjectItemCaseSensitive(obj, "metadata");
	const cJSON *ns = cJSON_GetObjectItemCaseSensitive(md, "namespace");
	const cJSON *name = cJSON_GetObjectItemCaseSensitive(md, "name");
	const cJSON *rv = cJSON_GetObjectItemCaseSensitive(md, "resourceVersion");

	pthread_mutex_lock(&out_lock);
	if (obj)
		printf("%s %s%s%s rv=%s\n", what, cJSON_IsString(ns) ? ns->valuestring : "",
		       cJSON_IsString(ns) ? "/" : "", cJSON_IsString(name) ? name->valuestring : "?",
		       cJSON_IsString(rv) ? rv->valuestring : "?");
	else
		printf("%s\n", what);
	fflush(stdout);
	pthread_mutex_unlock(&out_lock);
}

static void relist_begin(void *ctx) { (void)ctx; say("relist_begin", NULL); }
static void relist_end(void *ctx) { (void)ctx; say("relist_end", NULL); }
static void upsert(void *ctx, const cJSON *obj) { (void)ctx; say("upsert", obj); }
static void removed(void *ctx, const cJSON *obj) { (void)ctx; say("remove", obj); }

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int get_once(const char *kubeconfig, const char *path)
{
	struct pw_kube_conn c;
	char err[512] = "", *body;
	cJSON *out;
	long status;
	int r = pw_kube_conn_load(strcmp(kubeconfig, "-") ? kubeconfig : NULL, &c, err, sizeof(err));

	if (r) {
		fprintf(stderr, "kwatch: %s\n", err);
		return 1;
	}
	r = pw_kube_get(&c, path, &out, &status, err, sizeof(err));
	pw_kube_conn_free(&c);
	if (r) {
		fprintf(stderr, "kwatch: %s\n", err);
		return 1;
	}
	body = out ? cJSON_PrintUnformatted(out) : NULL;
	printf("status %ld\n%s\n", status, body ? body : "");
	if (err[0])
		fprintf(stderr, "kwatch: %s\n", err);
	free(body);
	cJSON_Delete(out);
	return 0;
}

int main(int argc, char **argv)
{
	struct pw_kube_handlers h = { relist_begin, upsert, removed, relist_end, NULL };
	enum pw_log_level level = PW_LOG_INFO;
	struct pw_kube_informer *inf;
	struct pw_kube_conn c;
	bool synced = false;
	long long end, t;
	char err[512];
	int r;

	if (argc == 4 && strcmp(argv[1], "-g") == 0)
		return get_once(argv[2], argv[3]);
	if (argc < 3 || argc > 4) {
		fprintf(stderr, "usage: kwatch KUBECONFIG|- PATH [SECONDS]\n       kwatch -g KUBECONFIG|- PATH\n");
		return 2;
	}
	if (getenv("PW_LOG_LEVEL") && pw_log_level_parse(getenv("PW_LOG_LEVEL"), &level)) {
		fprintf(stderr, "kwatch: PW_LOG_LEVEL: unknown level\n");
		return 2;
	}
	pw_log_init("kwatch", level, stderr);
	r = pw_kube_conn_load(strcmp(argv[1], "-") ? argv[1] : NULL, &c, err, sizeof(err));
	if (r) {
		fprintf(stderr, "kwatch: %s\n", err);
		return 1;
	}
	if (getenv("KWATCH_WATCH_TIMEOUT"))
		pw_kube_set_watch_timeout((unsigned)atoi(getenv("KWATCH_WATCH_TIMEOUT")));
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	r = pw_kube_informer_start(&c, argv[2], "kwatch", &h, &inf);
	pw_kube_conn_free(&c);
	if (r) {
		fprintf(stderr, "kwatch: cannot start the informer: %s\n", strerror(-r));
		return 1;
	}
	end = argc == 4 ? now_ms() + atol(argv[3]) * 1000 : -1;
	while (!done && (end < 0 || now_ms() < end)) {
		if (!synced && pw_kube_informer_synced(inf)) {
			synced = true;
			say("synced", NULL);
		}
		usleep(20000);
	}
	t = now_ms();
	pw_kube_informer_stop(inf);
	printf("stopped in %lld ms\n", now_ms() - t);
	return 0;
}
