/* The API client: requests through libcurl, informers as threads that list
 * then watch one collection and report to their handlers. The reflector
 * rules follow client-go's: paginated list, watch from the list's
 * resourceVersion with bookmarks, relist on 410 Gone, back off with jitter
 * on errors, and never report anything removed because the API server
 * could not be reached. */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <curl/curl.h>
#include "file.h"
#include "kube.h"
#include "log.h"

#define LIST_PAGE 500
#define LIST_BODY_MAX (128u << 20)   /* one page of 500 objects */
#define WATCH_EVENT_MAX (4u << 20)   /* etcd's object limit is 1.5 MiB */
#define ERR_BODY_MAX (64u << 10)
#define WATCH_GRACE 30               /* a watch silent this long past its timeout is dead */
#define BACKOFF_INITIAL_MS 800
#define BACKOFF_MAX_MS 30000
#define BACKOFF_RESET_MS 120000      /* this long without a failure: start again from 800 ms */
#define TOKEN_MAX (64u << 10)

/* ---- requests ------------------------------------------------------------ */

/* seconds; each watch adds up to a fifth at random so that the watches of
 * many agents do not end (and come back) together */
static atomic_uint watch_timeout = 270;

void pw_kube_set_watch_timeout(unsigned seconds)
{
	atomic_store(&watch_timeout, seconds ? seconds : 1);
}

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static void curl_init_once(void)
{
	curl_global_init(CURL_GLOBAL_DEFAULT);
}

struct kube_buf {
	char *data;
	size_t len, cap, max;
	bool truncated;
};

static int buf_append(struct kube_buf *b, const char *p, size_t n)
{
	if (n > b->max - b->len) {
		b->truncated = true;
		n = b->max - b->len;
	}
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 16384;
		char *nd;

		while (cap < b->len + n + 1)
			cap *= 2;
		nd = realloc(b->data, cap);
		if (!nd)
			return -ENOMEM;
		b->data = nd;
		b->cap = cap;
	}
	memcpy(b->data + b->len, p, n);
	b->len += n;
	b->data[b->len] = '\0';
	return 0;
}

static size_t buf_write(char *ptr, size_t size, size_t nmemb, void *ud)
{
	struct kube_buf *b = ud;
	size_t n = size * nmemb;

	/* A body past its bound aborts the transfer: truncated JSON is useless. */
	if (buf_append(b, ptr, n) < 0 || b->truncated)
		return 0;
	return n;
}

struct kube_req {
	CURL *curl;
	struct curl_slist *headers;
	char errbuf[CURL_ERROR_SIZE];
};

static void req_free(struct kube_req *q)
{
	curl_slist_free_all(q->headers);
	if (q->curl)
		curl_easy_cleanup(q->curl);
	memset(q, 0, sizeof(*q));
}

/* The bearer token: a token file is read again for every connection
 * (projected service-account tokens rotate); when that read fails the
 * token read before stays in use. */
static const char *current_token(const struct pw_kube_conn *c, char **fresh)
{
	int r;

	*fresh = NULL;
	if (c->token_file) {
		char *t = pw_file_read(c->token_file, TOKEN_MAX, NULL, &r);

		if (t) {
			t[strcspn(t, "\r\n")] = '\0';
			if (t[0]) {
				*fresh = t;
				return t;
			}
			free(t);
		} else {
			pw_warn("kube: token file \"%s\": %s; using the token read before",
				c->token_file, strerror(-r));
		}
	}
	return c->token;
}

static int set_blob(CURL *curl, CURLoption opt, const char *pem)
{
	struct curl_blob blob = { .data = (void *)pem, .len = strlen(pem), .flags = CURL_BLOB_COPY };

	return curl_easy_setopt(curl, opt, &blob) == CURLE_OK ? 0 : -ENOTSUP;
}

/* TLS: server verification against the CA (or none when insecure), the
 * client certificate and key as PEM blobs or files. */
static int req_tls(struct kube_req *q, const struct pw_kube_conn *c)
{
	CURL *e = q->curl;

	if (c->insecure) {
		curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 0L);
		curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 0L);
	} else if (c->ca_pem) {
		if (set_blob(e, CURLOPT_CAINFO_BLOB, c->ca_pem))
			return -ENOTSUP;
	} else if (c->ca_file) {
		curl_easy_setopt(e, CURLOPT_CAINFO, c->ca_file);
	}
	if (c->cert_pem) {
		curl_easy_setopt(e, CURLOPT_SSLCERTTYPE, "PEM");
		if (set_blob(e, CURLOPT_SSLCERT_BLOB, c->cert_pem))
			return -ENOTSUP;
	} else if (c->cert_file) {
		curl_easy_setopt(e, CURLOPT_SSLCERT, c->cert_file);
	}
	if (c->key_pem) {
		curl_easy_setopt(e, CURLOPT_SSLKEYTYPE, "PEM");
		if (set_blob(e, CURLOPT_SSLKEY_BLOB, c->key_pem))
			return -ENOTSUP;
	} else if (c->key_file) {
		curl_easy_setopt(e, CURLOPT_SSLKEY, c->key_file);
	}
	return 0;
}

/* An easy handle for GET url with the connection's credentials. Dead
 * peers are noticed by TCP keepalive and by the low-speed limit: a
 * transfer that moves no byte for idle_s seconds is abandoned. */
static int req_init(struct kube_req *q, const struct pw_kube_conn *c, const char *url,
		    long idle_s, long total_s)
{
	char *fresh, *auth = NULL;
	const char *token;
	int r = 0;

	pthread_once(&curl_once, curl_init_once);
	memset(q, 0, sizeof(*q));
	q->curl = curl_easy_init();
	if (!q->curl)
		return -ENOMEM;
	curl_easy_setopt(q->curl, CURLOPT_URL, url);
	curl_easy_setopt(q->curl, CURLOPT_ERRORBUFFER, q->errbuf);
	curl_easy_setopt(q->curl, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(q->curl, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
	curl_easy_setopt(q->curl, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(q->curl, CURLOPT_CONNECTTIMEOUT, 10L);
	curl_easy_setopt(q->curl, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(q->curl, CURLOPT_TCP_KEEPIDLE, 30L);
	curl_easy_setopt(q->curl, CURLOPT_TCP_KEEPINTVL, 10L);
	curl_easy_setopt(q->curl, CURLOPT_LOW_SPEED_LIMIT, 1L);
	curl_easy_setopt(q->curl, CURLOPT_LOW_SPEED_TIME, idle_s);
	curl_easy_setopt(q->curl, CURLOPT_TIMEOUT, total_s);
	curl_easy_setopt(q->curl, CURLOPT_USERAGENT, "podwire");
	q->headers = curl_slist_append(NULL, "Accept: application/json");
	token = current_token(c, &fresh);
	if (token && asprintf(&auth, "Authorization: Bearer %s", token) < 0)
		auth = NULL;
	free(fresh);
	if (token && !auth)
		r = -ENOMEM;
	if (auth) {
		struct curl_slist *h = curl_slist_append(q->headers, auth);

		free(auth);
		if (!h)
			r = -ENOMEM;
		else
			q->headers = h;
	}
	if (!q->headers)
		r = -ENOMEM;
	if (!r) {
		curl_easy_setopt(q->curl, CURLOPT_HTTPHEADER, q->headers);
		r = req_tls(q, c);
	}
	if (r)
		req_free(q);
	return r;
}

static int curl_errno(CURLcode cc)
{
	switch (cc) {
	case CURLE_OK: return 0;
	case CURLE_COULDNT_CONNECT: return -ECONNREFUSED;
	case CURLE_COULDNT_RESOLVE_HOST: return -EHOSTUNREACH;
	case CURLE_OPERATION_TIMEDOUT: return -ETIMEDOUT;
	case CURLE_OUT_OF_MEMORY: return -ENOMEM;
	case CURLE_ABORTED_BY_CALLBACK: return -ECANCELED;
	case CURLE_WRITE_ERROR: return -EFBIG;
	default: return -EIO;
	}
}

/* What went wrong with an answer: the Status message when the body is one. */
static void status_message(const struct kube_buf *body, long status, char *msg, size_t len)
{
	cJSON *st = body->data ? cJSON_ParseWithLength(body->data, body->len) : NULL;
	const cJSON *m = cJSON_GetObjectItemCaseSensitive(st, "message");

	if (cJSON_IsString(m))
		snprintf(msg, len, "HTTP %ld: %s", status, m->valuestring);
	else
		snprintf(msg, len, "HTTP %ld: %.200s", status, body->data ? body->data : "(no body)");
	cJSON_Delete(st);
}

static char *url_of(const struct pw_kube_conn *c, const char *path, const char *query)
{
	char *url;

	if (asprintf(&url, "%s%s%s%s", c->server, path, query ? (strchr(path, '?') ? "&" : "?") : "",
		     query ? query : "") < 0)
		return NULL;
	return url;
}

int pw_kube_get(const struct pw_kube_conn *c, const char *path, cJSON **out, long *status,
		char *err, size_t errlen)
{
	struct kube_buf body = { .max = LIST_BODY_MAX };
	struct kube_req q;
	char *url = url_of(c, path, NULL);
	CURLcode cc;
	int r;

	*out = NULL;
	*status = 0;
	if (!url) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	r = req_init(&q, c, url, 30, 60);
	if (r) {
		snprintf(err, errlen, "%s: cannot set up the request: %s", url, strerror(-r));
		free(url);
		return r;
	}
	curl_easy_setopt(q.curl, CURLOPT_WRITEFUNCTION, buf_write);
	curl_easy_setopt(q.curl, CURLOPT_WRITEDATA, &body);
	cc = curl_easy_perform(q.curl);
	if (cc != CURLE_OK) {
		r = body.truncated ? -EFBIG : curl_errno(cc);
		snprintf(err, errlen, "GET %s: %s", url, body.truncated ? "answer too large" :
			 q.errbuf[0] ? q.errbuf : curl_easy_strerror(cc));
	} else {
		curl_easy_getinfo(q.curl, CURLINFO_RESPONSE_CODE, status);
		*out = body.data ? cJSON_ParseWithLength(body.data, body.len) : NULL;
		if (*status < 200 || *status > 299)
			status_message(&body, *status, err, errlen);
	}
	req_free(&q);
	free(body.data);
	free(url);
	return r;
}

/* ---- informers ----------------------------------------------------------- */

struct pw_kube_informer {
	struct pw_kube_conn conn;
	char *path, *name;
	struct pw_kube_handlers h;
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	CURLM *multi;
	atomic_bool stop, synced;
	char *rv;                 /* the last resourceVersion seen */
	unsigned backoff_ms;
	long long last_failure_ms;
	unsigned seed;
};

enum watch_outcome {
	WATCH_ENDED,     /* the server closed the stream: watch again from rv */
	WATCH_GONE,      /* 410: rv is too old, relist */
	WATCH_FAILED,    /* back off, then watch again from rv */
	WATCH_STOPPED,
};

/* Values on_event returns to stop the stream (passed through the decoder). */
#define EV_GONE 1
#define EV_ERROR 2

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Sleeps ms unless stopped first; false when stopped. */
static bool informer_sleep(struct pw_kube_informer *inf, long long ms)
{
	struct timespec until;

	clock_gettime(CLOCK_MONOTONIC, &until);
	until.tv_sec += ms / 1000;
	until.tv_nsec += (ms % 1000) * 1000000;
	if (until.tv_nsec >= 1000000000) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000;
	}
	pthread_mutex_lock(&inf->lock);
	while (!atomic_load(&inf->stop) &&
	       pthread_cond_timedwait(&inf->cond, &inf->lock, &until) != ETIMEDOUT)
		;
	pthread_mutex_unlock(&inf->lock);
	return !atomic_load(&inf->stop);
}

/* Backs off after a failure: 800 ms doubling to 30 s, each wait stretched
 * by up to a quarter at random so that agents restarted together do not
 * hammer the API server in step; a failure after 2 healthy minutes starts
 * again from 800 ms. */
static bool informer_backoff(struct pw_kube_informer *inf, const char *why)
{
	long long now = now_ms(), wait;

	if (!inf->backoff_ms || now - inf->last_failure_ms > BACKOFF_RESET_MS)
		inf->backoff_ms = BACKOFF_INITIAL_MS;
	else if ((inf->backoff_ms *= 2) > BACKOFF_MAX_MS)
		inf->backoff_ms = BACKOFF_MAX_MS;
	inf->last_failure_ms = now;
	wait = inf->backoff_ms + (long long)(rand_r(&inf->seed) % (inf->backoff_ms / 4 + 1));
	pw_warn("kube %s: %s; retrying in %.1f s", inf->name, why, wait / 1000.0);
	return informer_sleep(inf, wait);
}

/* Runs one transfer on the informer's multi handle so that stop can wake
 * it at once (curl_multi_wakeup) however long the watch would last. */
static CURLcode informer_perform(struct pw_kube_informer *inf, CURL *e)
{
	CURLcode cc = CURLE_ABORTED_BY_CALLBACK;
	int running = 1, left;
	CURLMsg *m;

	if (curl_multi_add_handle(inf->multi, e) != CURLM_OK)
		return CURLE_FAILED_INIT;
	while (running && !atomic_load(&inf->stop)) {
		if (curl_multi_perform(inf->multi, &running) != CURLM_OK)
			break;
		if (running && curl_multi_poll(inf->multi, NULL, 0, 1000, NULL) != CURLM_OK)
			break;
	}
	while ((m = curl_multi_info_read(inf->multi, &left)))
		if (m->msg == CURLMSG_DONE && m->easy_handle == e)
			cc = m->data.result;
	curl_multi_remove_handle(inf->multi, e);
	return atomic_load(&inf->stop) ? CURLE_ABORTED_BY_CALLBACK : cc;
}

static const char *meta_str(const cJSON *obj, const char *field)
{
	const cJSON *md = cJSON_GetObjectItemCaseSensitive(obj, "metadata");
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(md, field);

	return cJSON_IsString(v) ? v->valuestring : NULL;
}

static void informer_set_rv(struct pw_kube_informer *inf, const char *rv)
{
	char *copy;

	if (!rv || !*rv || (inf->rv && strcmp(inf->rv, rv) == 0))
		return;
	copy = strdup(rv);
	if (!copy)
		return;  /* keep the older one: a rewatch from it only repeats events */
	free(inf->rv);
	inf->rv = copy;
}

/* One page of the list, checked: *text takes its body (the caller frees),
 * *rv its resourceVersion, *cont the next page's token (NULL: last page).
 * 0, -ESTALE for 410 (the continue token expired), -ECANCELED when
 * stopped, other -errno with why set. */
static int list_page(struct pw_kube_informer *inf, const char *cont_in, struct kube_buf *text, char **rv,
		     char **cont, char *why, size_t whylen)
{
	struct kube_buf body = { .max = LIST_BODY_MAX };
	struct kube_req q;
	char query[64], *esc = NULL, *q2 = NULL, *url;
	cJSON *page = NULL;
	const char *v;
	long status = 0;
	CURLcode cc;
	int r;

	*cont = *rv = NULL;
	snprintf(query, sizeof(query), "limit=%d", LIST_PAGE);
	if (cont_in) {
		esc = curl_easy_escape(NULL, cont_in, 0);
		if (!esc || asprintf(&q2, "%s&continue=%s", query, esc) < 0)
			q2 = NULL;
		curl_free(esc);
		if (!q2)
			return -ENOMEM;
	}
	url = url_of(&inf->conn, inf->path, q2 ? q2 : query);
	free(q2);
	if (!url)
		return -ENOMEM;
	r = req_init(&q, &inf->conn, url, 60, 300);
	if (r) {
		snprintf(why, whylen, "list: cannot set up the request: %s", strerror(-r));
		free(url);
		return r;
	}
	curl_easy_setopt(q.curl, CURLOPT_ACCEPT_ENCODING, "");
	curl_easy_setopt(q.curl, CURLOPT_WRITEFUNCTION, buf_write);
	curl_easy_setopt(q.curl, CURLOPT_WRITEDATA, &body);
	cc = informer_perform(inf, q.curl);
	curl_easy_getinfo(q.curl, CURLINFO_RESPONSE_CODE, &status);
	if (cc == CURLE_ABORTED_BY_CALLBACK) {
		r = -ECANCELED;
	} else if (cc != CURLE_OK) {
		r = body.truncated ? -EFBIG : curl_errno(cc);
		snprintf(why, whylen, "list %s: %s", url, body.truncated ? "page larger than 128 MiB" :
			 q.errbuf[0] ? q.errbuf : curl_easy_strerror(cc));
	} else if (status != 200) {
		char msg[320];

		status_message(&body, status, msg, sizeof(msg));
		snprintf(why, whylen, "list %s: %s%s", url, msg,
			 status == 401 ? " (the credentials were refused)" :
			 status == 403 ? " (not allowed: check RBAC)" : "");
		r = status == 410 ? -ESTALE : status == 401 || status == 403 ? -EACCES : -EIO;
	} else if (!(page = cJSON_ParseWithLength(body.data ? body.data : "", body.len)) ||
		   !cJSON_IsArray(cJSON_GetObjectItemCaseSensitive(page, "items")) ||
		   !(v = meta_str(page, "resourceVersion"))) {
		snprintf(why, whylen, "list %s: the answer is not a list", url);
		r = -EBADMSG;
	} else {
		*rv = strdup(v);
		v = meta_str(page, "continue");
		*cont = v && *v ? strdup(v) : NULL;
		r = !*rv || (v && *v && !*cont) ? -ENOMEM : 0;
	}
	if (!r) {
		*text = body;
		body.data = NULL;
	}
	cJSON_Delete(page);
	req_free(&q);
	free(body.data);
	free(url);
	return r;
}

static void pages_free(struct kube_buf *pages, int n)
{
	for (int i = 0; i < n; i++)
		free(pages[i].data);
	free(pages);
}

/* Every page, read at the first page's resourceVersion, kept as text. */
static int list_all(struct pw_kube_informer *inf, struct kube_buf **out, int *n_out, char **rv_out,
		    char *why, size_t whylen)
{
	struct kube_buf *pages = NULL;
	char *rv = NULL, *cont = NULL;
	int r, n = 0;

	do {
		struct kube_buf *np = realloc(pages, (size_t)(n + 1) * sizeof(*pages));
		char *next = NULL, *page_rv = NULL;

		if (!np) {
			r = -ENOMEM;
			break;
		}
		pages = np;
		r = list_page(inf, cont, &pages[n], &page_rv, &next, why, whylen);
		free(cont);
		cont = next;
		if (r)
			break;
		n++;
		if (!rv)
			rv = page_rv;
		else
			free(page_rv);
	} while (cont);
	free(cont);
	if (r) {
		pages_free(pages, n);
		free(rv);
		return r;
	}
	*out = pages;
	*n_out = n;
	*rv_out = rv;
	return 0;
}

/* The whole list, then reported at once: a list cut short by an error is
 * never half reported (the consumer would drop what the missing pages
 * hold). Pages wait as text, parsed again one at a time when reported:
 * a parsed object takes several times the memory of its JSON, and a
 * cluster's 10,000 Services would otherwise be in memory as trees. */
static int informer_list(struct pw_kube_informer *inf, char *why, size_t whylen)
{
	struct kube_buf *pages;
	char *rv;
	int r, n_pages, n = 0;

	r = list_all(inf, &pages, &n_pages, &rv, why, whylen);
	if (r)
		return r;
	if (inf->h.relist_begin)
		inf->h.relist_begin(inf->h.ctx);
	for (int i = 0; i < n_pages; i++) {
		cJSON *page = cJSON_ParseWithLength(pages[i].data, pages[i].len), *it;

		free(pages[i].data);
		pages[i].data = NULL;
		if (!page) {
			/* Parsed once already: only memory can be short. No
			 * relist_end, or the consumer would drop the rest. */
			snprintf(why, whylen, "list: out of memory while reporting");
			pages_free(pages, n_pages);
			free(rv);
			return -ENOMEM;
		}
		cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(page, "items")) {
			if (inf->h.upsert)
				inf->h.upsert(inf->h.ctx, it);
			n++;
		}
		cJSON_Delete(page);
	}
	pages_free(pages, n_pages);
	if (inf->h.relist_end)
		inf->h.relist_end(inf->h.ctx);
	atomic_store(&inf->synced, true);
	pw_info("kube %s: listed %d objects in %d page%s at resourceVersion %s", inf->name, n, n_pages,
		n_pages == 1 ? "" : "s", rv);
	informer_set_rv(inf, rv);
	free(rv);
	return 0;
}

struct watch_ctx {
	struct pw_kube_informer *inf;
	struct pw_watch_decoder *dec;
	CURL *curl;
	long status;
	struct kube_buf errbody;   /* the body of a non-200 answer */
	int result;                /* why the stream was cut: decoder error or EV_* */
	char error[320];           /* an ERROR event's message */
	unsigned events;
};

static int on_event(void *ud, const char *type, const cJSON *obj)
{
	struct watch_ctx *w = ud;
	struct pw_kube_informer *inf = w->inf;

	w->events++;
	if (strcmp(type, "ADDED") == 0 || strcmp(type, "MODIFIED") == 0) {
		if (inf->h.upsert)
			inf->h.upsert(inf->h.ctx, obj);
	} else if (strcmp(type, "DELETED") == 0) {
		if (inf->h.remove)
			inf->h.remove(inf->h.ctx, obj);
	} else if (strcmp(type, "ERROR") == 0) {
		const cJSON *code = cJSON_GetObjectItemCaseSensitive(obj, "code");
		const cJSON *msg = cJSON_GetObjectItemCaseSensitive(obj, "message");

		snprintf(w->error, sizeof(w->error), "watch ERROR event %d: %s",
			 cJSON_IsNumber(code) ? code->valueint : 0,
			 cJSON_IsString(msg) ? msg->valuestring : "(no message)");
		return cJSON_IsNumber(code) && code->valueint == 410 ? EV_GONE : EV_ERROR;
	} else if (strcmp(type, "BOOKMARK") == 0) {
		pw_debug("kube %s: bookmark at resourceVersion %s", inf->name, meta_str(obj, "resourceVersion"));
	} else {
		pw_debug("kube %s: watch event of unknown type \"%s\" ignored", inf->name, type);
		return 0;
	}
	/* Bookmarks carry only a resourceVersion: the point to resume from. */
	informer_set_rv(inf, meta_str(obj, "resourceVersion"));
	return 0;
}

static size_t watch_write(char *ptr, size_t size, size_t nmemb, void *ud)
{
	struct watch_ctx *w = ud;
	size_t n = size * nmemb;
	int r;

	if (!w->status)
		curl_easy_getinfo(w->curl, CURLINFO_RESPONSE_CODE, &w->status);
	if (w->status != 200) {
		buf_append(&w->errbody, ptr, n);  /* for the message; a cut one will do */
		return n;
	}
	r = pw_watch_decoder_feed(w->dec, ptr, n);
	if (r) {
		w->result = r;
		return 0;
	}
	return n;
}

static enum watch_outcome informer_watch(struct pw_kube_informer *inf, char *why, size_t whylen)
{
	struct watch_ctx w = { .inf = inf, .errbody = { .max = ERR_BODY_MAX } };
	struct kube_req q;
	enum watch_outcome out;
	unsigned base = atomic_load(&watch_timeout);
	long timeout = base + (long)(rand_r(&inf->seed) % (base / 5 + 1));
	long long started = now_ms();
	char query[512], *url, *rv;
	CURLcode cc;
	int r;

	rv = curl_easy_escape(NULL, inf->rv ? inf->rv : "", 0);
	if (!rv)
		return WATCH_FAILED;
	snprintf(query, sizeof(query), "watch=1&allowWatchBookmarks=true&resourceVersion=%.400s&timeoutSeconds=%ld",
		 rv, timeout);
	curl_free(rv);
	url = url_of(&inf->conn, inf->path, query);
	w.dec = pw_watch_decoder_new(WATCH_EVENT_MAX, on_event, &w);
	r = url && w.dec ? req_init(&q, &inf->conn, url, timeout + WATCH_GRACE, timeout + WATCH_GRACE) : -ENOMEM;
	if (r) {
		snprintf(why, whylen, "watch: cannot set up the request: %s", strerror(-r));
		pw_watch_decoder_free(w.dec);
		free(url);
		return WATCH_FAILED;
	}
	w.curl = q.curl;
	curl_easy_setopt(q.curl, CURLOPT_WRITEFUNCTION, watch_write);
	curl_easy_setopt(q.curl, CURLOPT_WRITEDATA, &w);
	pw_debug("kube %s: watching from resourceVersion %s for %ld s", inf->name, inf->rv, timeout);
	cc = informer_perform(inf, q.curl);
	if (!w.status)
		curl_easy_getinfo(q.curl, CURLINFO_RESPONSE_CODE, &w.status);
	if (cc == CURLE_ABORTED_BY_CALLBACK) {
		out = WATCH_STOPPED;
	} else if (w.result == EV_GONE) {
		snprintf(why, whylen, "%s", w.error);
		out = WATCH_GONE;
	} else if (w.result == EV_ERROR) {
		snprintf(why, whylen, "%s", w.error);
		out = WATCH_FAILED;
	} else if (w.result < 0) {
		snprintf(why, whylen, "watch stream: %s", w.result == -E2BIG ? "event larger than 4 MiB" :
			 w.result == -EBADMSG ? "malformed event" : strerror(-w.result));
		out = WATCH_FAILED;
	} else if (cc == CURLE_OK && w.status == 200) {
		/* A stream the server ends at once, over and over, must not
		 * become a busy loop. */
		if (w.events == 0 && now_ms() - started < 1000) {
			snprintf(why, whylen, "watch ended at once without events");
			out = WATCH_FAILED;
		} else {
			out = WATCH_ENDED;
		}
		if (pw_watch_decoder_pending(w.dec))
			pw_debug("kube %s: watch stream ended inside an event", inf->name);
	} else if (w.status && w.status != 200) {
		char msg[320];

		status_message(&w.errbody, w.status, msg, sizeof(msg));
		snprintf(why, whylen, "watch: %s%s", msg,
			 w.status == 401 ? " (the credentials were refused)" :
			 w.status == 403 ? " (not allowed: check RBAC)" : "");
		out = w.status == 410 ? WATCH_GONE : WATCH_FAILED;
	} else {
		snprintf(why, whylen, "watch: %s", q.errbuf[0] ? q.errbuf : curl_easy_strerror(cc));
		out = WATCH_FAILED;
	}
	req_free(&q);
	pw_watch_decoder_free(w.dec);
	free(w.errbody.data);
	free(url);
	return out;
}

static void *informer_main(void *arg)
{
	struct pw_kube_informer *inf = arg;
	bool need_list = true;
	long long listed_at = 0;
	char why[512];

	while (!atomic_load(&inf->stop)) {
		int r;

		why[0] = '\0';
		if (need_list) {
			r = informer_list(inf, why, sizeof(why));
			if (r == -ECANCELED)
				break;
			if (r) {
				if (!informer_backoff(inf, why[0] ? why : strerror(-r)))
					break;
				continue;
			}
			need_list = false;
			listed_at = now_ms();
		}
		switch (informer_watch(inf, why, sizeof(why))) {
		case WATCH_ENDED:
			break;
		case WATCH_GONE:
			need_list = true;
			pw_info("kube %s: resourceVersion %s is gone (%s): relisting", inf->name, inf->rv, why);
			/* 410 right after a list means something is off: do not
			 * relist in a tight loop. */
			if (now_ms() - listed_at < 1000 && !informer_backoff(inf, "410 Gone right after a list"))
				goto out;
			break;
		case WATCH_FAILED:
			if (!informer_backoff(inf, why))
				goto out;
			break;
		case WATCH_STOPPED:
			goto out;
		}
	}
out:
	return NULL;
}

static char *dup_opt(const char *s, bool *fail)
{
	char *d = s ? strdup(s) : NULL;

	if (s && !d)
		*fail = true;
	return d;
}

static int conn_copy(struct pw_kube_conn *d, const struct pw_kube_conn *s)
{
	bool fail = false;

	d->server = dup_opt(s->server, &fail);
	d->ca_pem = dup_opt(s->ca_pem, &fail);
	d->ca_file = dup_opt(s->ca_file, &fail);
	d->cert_pem = dup_opt(s->cert_pem, &fail);
	d->cert_file = dup_opt(s->cert_file, &fail);
	d->key_pem = dup_opt(s->key_pem, &fail);
	d->key_file = dup_opt(s->key_file, &fail);
	d->token = dup_opt(s->token, &fail);
	d->token_file = dup_opt(s->token_file, &fail);
	d->insecure = s->insecure;
	if (fail)
		pw_kube_conn_free(d);
	return fail ? -ENOMEM : 0;
}

static void informer_free(struct pw_kube_informer *inf)
{
	pw_kube_conn_free(&inf->conn);
	if (inf->multi)
		curl_multi_cleanup(inf->multi);
	pthread_cond_destroy(&inf->cond);
	pthread_mutex_destroy(&inf->lock);
	free(inf->path);
	free(inf->name);
	free(inf->rv);
	free(inf);
}

int pw_kube_informer_start(const struct pw_kube_conn *c, const char *path, const char *name,
			   const struct pw_kube_handlers *h, struct pw_kube_informer **out)
{
	struct pw_kube_informer *inf;
	pthread_condattr_t ca;
	int r;

	*out = NULL;
	if (!c || !c->server || !path || path[0] != '/' || !h)
		return -EINVAL;
	pthread_once(&curl_once, curl_init_once);
	inf = calloc(1, sizeof(*inf));
	if (!inf)
		return -ENOMEM;
	pthread_mutex_init(&inf->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&inf->cond, &ca);
	pthread_condattr_destroy(&ca);
	inf->h = *h;
	inf->seed = (unsigned)now_ms() ^ (unsigned)getpid() ^ (unsigned)(uintptr_t)inf;
	inf->path = strdup(path);
	inf->name = strdup(name ? name : path);
	inf->multi = curl_multi_init();
	if (!inf->path || !inf->name || !inf->multi || conn_copy(&inf->conn, c)) {
		informer_free(inf);
		return -ENOMEM;
	}
	r = pthread_create(&inf->thread, NULL, informer_main, inf);
	if (r) {
		informer_free(inf);
		return -r;
	}
	*out = inf;
	return 0;
}

bool pw_kube_informer_synced(const struct pw_kube_informer *inf)
{
	return atomic_load(&((struct pw_kube_informer *)inf)->synced);
}

void pw_kube_informer_stop(struct pw_kube_informer *inf)
{
	if (!inf)
		return;
	pthread_mutex_lock(&inf->lock);
	atomic_store(&inf->stop, true);
	pthread_cond_broadcast(&inf->cond);
	pthread_mutex_unlock(&inf->lock);
	curl_multi_wakeup(inf->multi);
	pthread_join(inf->thread, NULL);
	informer_free(inf);
}
