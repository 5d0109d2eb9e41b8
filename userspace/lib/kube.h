/* A small Kubernetes API client for podwired's Kubernetes source: the
 * connection (kubeconfig or in-cluster), the watch-stream decoder and
 * informers (list then watch one resource, in a thread of its own).
 * HTTP/TLS through libcurl, JSON through cJSON, kubeconfig YAML through
 * libyaml. See docs/kubernetes.md. */
#ifndef PW_KUBE_H
#define PW_KUBE_H
#include <stdbool.h>
#include <stddef.h>
#include <cjson/cJSON.h>

/* Where and how to reach the API server. Credentials are kept as PEM
 * blobs (kubeconfig *-data fields, decoded) or file paths (absolute:
 * relative kubeconfig paths are resolved against the kubeconfig's
 * directory); at most one of each pair is set. */
struct pw_kube_conn {
	char *server;            /* "https://host:port", no trailing slash */
	char *ca_pem;            /* certificate-authority-data */
	char *ca_file;           /* certificate-authority */
	char *cert_pem;          /* client-certificate-data */
	char *cert_file;         /* client-certificate */
	char *key_pem;           /* client-key-data */
	char *key_file;          /* client-key */
	char *token;             /* bearer token (token, or tokenFile read at load) */
	char *token_file;        /* re-read on every (re)connect: service-account tokens rotate */
	bool insecure;           /* insecure-skip-tls-verify */
};

/* Loads the current context of a kubeconfig file (path), or the in-cluster
 * config when path is NULL (KUBERNETES_SERVICE_HOST/PORT, the service
 * account's token and ca.crt under /var/run/secrets/kubernetes.io/
 * serviceaccount). 0, or -errno with err naming the field or file at fault,
 * e.g. `users[0].user.client-key: "/x/key.pem": No such file or directory`. */
int pw_kube_conn_load(const char *path, struct pw_kube_conn *c, char *err, size_t errlen);
/* The kubeconfig parser alone, on YAML text; base_dir resolves relative
 * file paths. For unit tests and the fuzz harness. */
int pw_kubeconfig_parse(const char *yaml, size_t len, const char *base_dir,
			struct pw_kube_conn *c, char *err, size_t errlen);
void pw_kube_conn_free(struct pw_kube_conn *c);
/* The in-cluster config with the service account's files under sa_dir
 * (NULL: /var/run/secrets/kubernetes.io/serviceaccount); what
 * pw_kube_conn_load(NULL, ...) does, testable. */
int pw_kube_conn_in_cluster(const char *sa_dir, struct pw_kube_conn *c, char *err, size_t errlen);

/* One GET of path (e.g. "/api/v1/nodes/n1", "/version"): *out the parsed
 * JSON body (caller frees; also set for non-2xx answers that carry one,
 * such as a Status), *status the HTTP status (0 when no answer came). 0
 * when an answer came (whatever its status), -errno otherwise, with err
 * saying why. For one-off reads and tests; informers keep state in step. */
int pw_kube_get(const struct pw_kube_conn *c, const char *path, cJSON **out, long *status,
		char *err, size_t errlen);

/* Watch-stream decoder: a watch response is a stream of JSON objects
 * {"type": ..., "object": {...}}, one per line, arriving in chunks cut
 * anywhere. Fed the chunks, it calls on_event once per complete event.
 * Events larger than max_event bytes are refused (-E2BIG from feed), as
 * are malformed ones (-EBADMSG); after an error the decoder must be reset. */
struct pw_watch_decoder;
typedef int (*pw_watch_event_fn)(void *ctx, const char *type, const cJSON *object);
struct pw_watch_decoder *pw_watch_decoder_new(size_t max_event, pw_watch_event_fn fn, void *ctx);
/* 0, a non-zero value returned by on_event (passed through: stop), or -errno. */
int pw_watch_decoder_feed(struct pw_watch_decoder *d, const char *buf, size_t len);
void pw_watch_decoder_reset(struct pw_watch_decoder *d);
/* True while part of an event is buffered (a stream that ends then was cut). */
bool pw_watch_decoder_pending(const struct pw_watch_decoder *d);
void pw_watch_decoder_free(struct pw_watch_decoder *d);

/* An informer keeps one resource in step: list (paginated, limit/continue),
 * then watch from the list's resourceVersion with allowWatchBookmarks and
 * a timeoutSeconds of about 5 minutes, re-watching from the last seen
 * resourceVersion when the stream ends; relist on 410 Gone (also when it
 * arrives as an ERROR event inside a 200 stream); back off with jitter on
 * errors (800 ms doubling to 30 s, like client-go's reflector). While the
 * API cannot be reached nothing is reported removed: the consumer keeps
 * the last known state.
 *
 * The handlers run in the informer's thread, one at a time. A (re)list is
 * reported as relist_begin, upsert for every listed object, relist_end:
 * the consumer drops whatever it holds that was not upserted in between.
 * The object passed is only valid during the call. Listed objects come
 * without "kind" and "apiVersion" (the API server leaves them out of list
 * items); watched ones carry them. */
struct pw_kube_handlers {
	void (*relist_begin)(void *ctx);
	void (*upsert)(void *ctx, const cJSON *obj);   /* listed, ADDED or MODIFIED */
	void (*remove)(void *ctx, const cJSON *obj);   /* DELETED */
	void (*relist_end)(void *ctx);
	void *ctx;
};

struct pw_kube_informer;
/* Starts the thread. path is the collection, e.g. "/api/v1/nodes",
 * "/api/v1/services", "/apis/discovery.k8s.io/v1/endpointslices"; name is
 * for logs ("nodes"). The connection is copied. 0 or -errno. */
int pw_kube_informer_start(const struct pw_kube_conn *c, const char *path, const char *name,
			   const struct pw_kube_handlers *h, struct pw_kube_informer **out);
/* The watch timeoutSeconds of informers started from now on: each watch
 * asks for seconds plus up to a fifth more at random (default 270: 270-324,
 * about 5 minutes). Tests use a few seconds to see bookmarks and re-watches. */
void pw_kube_set_watch_timeout(unsigned seconds);
/* True once the first complete list has been delivered. */
bool pw_kube_informer_synced(const struct pw_kube_informer *inf);
/* Stops and joins the thread (interrupts a watch in progress), frees. */
void pw_kube_informer_stop(struct pw_kube_informer *inf);
#endif
