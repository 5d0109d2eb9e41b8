/* Where the API server is and who we are to it: the current context of a
 * kubeconfig (libyaml), or the in-cluster service account. Only what a
 * node agent needs: server, CA, client certificate and key, bearer token.
 * Errors name the field as a path into the file, e.g.
 * `users[0].user.client-key-data: invalid base64`. */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <yaml.h>
#include "file.h"
#include "kube.h"

#define KUBECONFIG_MAX (1u << 20)
#define TOKEN_MAX (64u << 10)
#define SA_DIR "/var/run/secrets/kubernetes.io/serviceaccount"

struct kc_parse {
	yaml_document_t *doc;
	const char *base_dir;
	char *err;
	size_t errlen;
};

static int fail(struct kc_parse *p, int r, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(struct kc_parse *p, int r, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(p->err, p->errlen, fmt, ap);
	va_end(ap);
	return r;
}

static bool scalar_is(const yaml_node_t *n, const char *s)
{
	size_t len = strlen(s);

	return n && n->type == YAML_SCALAR_NODE && n->data.scalar.length == len &&
	       memcmp(n->data.scalar.value, s, len) == 0;
}

/* The value of key in a mapping node, or NULL (also when n is no mapping). */
static yaml_node_t *map_get(yaml_document_t *doc, yaml_node_t *n, const char *key)
{
	if (!n || n->type != YAML_MAPPING_NODE)
		return NULL;
	for (yaml_node_pair_t *pr = n->data.mapping.pairs.start; pr < n->data.mapping.pairs.top; pr++) {
		if (scalar_is(yaml_document_get_node(doc, pr->key), key))
			return yaml_document_get_node(doc, pr->value);
	}
	return NULL;
}

/* A string field: *out stays NULL when the key is absent or empty (YAML
 * `key:` or `key: ""`, which kubectl treats as unset). */
static int get_str(struct kc_parse *p, yaml_node_t *map, const char *key, const char *where, char **out)
{
	yaml_node_t *n = map_get(p->doc, map, key);

	*out = NULL;
	if (!n)
		return 0;
	if (n->type != YAML_SCALAR_NODE)
		return fail(p, -EINVAL, "%s.%s: not a string", where, key);
	if (n->data.scalar.length == 0)
		return 0;
	if (memchr(n->data.scalar.value, '\0', n->data.scalar.length))
		return fail(p, -EINVAL, "%s.%s: contains a NUL byte", where, key);
	*out = strndup((const char *)n->data.scalar.value, n->data.scalar.length);
	return *out ? 0 : fail(p, -ENOMEM, "%s.%s: out of memory", where, key);
}

static int b64_value(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

/* Standard base64 (RFC 4648 section 4), line breaks and spaces allowed
 * between characters, '=' padding optional but only at the end. The result
 * is NUL-terminated; NULL on any invalid input. */
static char *b64_decode(const char *s, size_t *out_len)
{
	size_t n = strlen(s), len = 0, pad = 0;
	unsigned acc = 0, bits = 0, digits = 0;
	char *out = malloc(n / 4 * 3 + 4);

	if (!out)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		int v;

		if (c == ' ' || c == '\n' || c == '\r' || c == '\t')
			continue;
		if (c == '=') {
			pad++;
			continue;
		}
		v = b64_value(c);
		if (v < 0 || pad)
			goto bad;
		acc = (acc << 6) | (unsigned)v;
		bits += 6;
		digits++;
		if (bits >= 8) {
			bits -= 8;
			out[len++] = (char)((acc >> bits) & 0xff);
		}
	}
	/* One digit alone carries no byte; padding must fill the last group
	 * exactly when present; leftover bits must be zero (canonical). */
	if (digits % 4 == 1 || (pad && (digits + pad) % 4) || pad > 2 || (acc & ((1u << bits) - 1)))
		goto bad;
	out[len] = '\0';
	*out_len = len;
	return out;
bad:
	free(out);
	return NULL;
}

/* A *-data field: base64 of a PEM block. */
static int get_pem_data(struct kc_parse *p, yaml_node_t *map, const char *key, const char *where, char **out)
{
	char *b64, *pem;
	size_t len;
	int r = get_str(p, map, key, where, &b64);

	if (r || !b64)
		return r;
	pem = b64_decode(b64, &len);
	free(b64);
	if (!pem)
		return fail(p, -EINVAL, "%s.%s: invalid base64", where, key);
	if (memchr(pem, '\0', len) || !strstr(pem, "-----BEGIN ")) {
		free(pem);
		return fail(p, -EINVAL, "%s.%s: not PEM (no \"-----BEGIN\" line after base64 decoding)", where, key);
	}
	*out = pem;
	return 0;
}

/* path made absolute against the kubeconfig's directory (or the working
 * directory when there is none). */
static char *resolve_path(const char *base_dir, const char *path)
{
	char cwd[PATH_MAX], *out;

	if (path[0] == '/')
		return strdup(path);
	if (!base_dir || base_dir[0] != '/') {
		if (!getcwd(cwd, sizeof(cwd)))
			return NULL;
		if (base_dir && asprintf(&out, "%s/%s/%s", cwd, base_dir, path) < 0)
			return NULL;
		if (base_dir)
			return out;
		base_dir = cwd;
	}
	return asprintf(&out, "%s/%s", base_dir, path) < 0 ? NULL : out;
}

/* A file field: absolute path of a readable file. */
static int get_file(struct kc_parse *p, yaml_node_t *map, const char *key, const char *where, char **out)
{
	char *rel, *abs;
	int r = get_str(p, map, key, where, &rel);

	if (r || !rel)
		return r;
	abs = resolve_path(p->base_dir, rel);
	free(rel);
	if (!abs)
		return fail(p, -ENOMEM, "%s.%s: cannot resolve path", where, key);
	if (access(abs, R_OK) < 0) {
		r = -errno;
		fail(p, r, "%s.%s: \"%s\": %s", where, key, abs, strerror(-r));
		free(abs);
		return r;
	}
	*out = abs;
	return 0;
}

/* The token in a file, surrounding whitespace removed (files written by
 * `echo` end in a newline). */
static int read_token(const char *path, char **out, char *err, size_t errlen, const char *where)
{
	int r;
	char *t = pw_file_read(path, TOKEN_MAX, NULL, &r), *s, *e;

	if (!t) {
		snprintf(err, errlen, "%s: \"%s\": %s", where, path,
			 r == -EFBIG ? "too large for a token" : strerror(-r));
		return r;
	}
	for (s = t; *s == ' ' || *s == '\n' || *s == '\r' || *s == '\t'; s++)
		;
	e = s + strlen(s);
	while (e > s && (e[-1] == ' ' || e[-1] == '\n' || e[-1] == '\r' || e[-1] == '\t'))
		e--;
	*e = '\0';
	if (!*s || strpbrk(s, "\r\n")) {
		snprintf(err, errlen, "%s: \"%s\": %s", where, path, *s ? "token spans lines" : "empty");
		free(t);
		return -EINVAL;
	}
	memmove(t, s, (size_t)(e - s) + 1);
	*out = t;
	return 0;
}

/* The entry of a named list (contexts, clusters, users) called name:
 * its inner mapping (entry.<inner>) and its index, for error messages. */
static int find_named(struct kc_parse *p, yaml_node_t *root, const char *list, const char *inner,
		      const char *name, yaml_node_t **out, int *index)
{
	yaml_node_t *seq = map_get(p->doc, root, list);
	int i = 0;

	if (!seq)
		return fail(p, -EINVAL, "%s: missing (looking for \"%s\")", list, name);
	if (seq->type != YAML_SEQUENCE_NODE)
		return fail(p, -EINVAL, "%s: not a list", list);
	for (yaml_node_item_t *it = seq->data.sequence.items.start; it < seq->data.sequence.items.top; it++, i++) {
		yaml_node_t *entry = yaml_document_get_node(p->doc, *it);

		if (!scalar_is(map_get(p->doc, entry, "name"), name))
			continue;
		*out = map_get(p->doc, entry, inner);
		*index = i;
		if (!*out || (*out)->type != YAML_MAPPING_NODE)
			return fail(p, -EINVAL, "%s[%d].%s: missing or not a mapping", list, i, inner);
		return 0;
	}
	return fail(p, -EINVAL, "%s: no entry named \"%s\"", list, name);
}

static int parse_bool(struct kc_parse *p, yaml_node_t *map, const char *key, const char *where, bool *out)
{
	char *s;
	int r = get_str(p, map, key, where, &s);

	*out = false;
	if (r || !s)
		return r;
	if (strcasecmp(s, "true") == 0)
		*out = true;
	else if (strcasecmp(s, "false") != 0)
		r = fail(p, -EINVAL, "%s.%s: \"%s\" is not true or false", where, key, s);
	free(s);
	return r;
}

/* Both halves of a pair (file and inline data) given is an error, as in
 * kubectl: which one was meant is anyone's guess. */
static int one_of(struct kc_parse *p, const char *where, const char *a, const char *b, const void *va, const void *vb)
{
	if (va && vb)
		return fail(p, -EINVAL, "%s: both %s and %s are set", where, a, b);
	return 0;
}

static int parse_cluster(struct kc_parse *p, yaml_node_t *cl, const char *where, struct pw_kube_conn *c)
{
	size_t n;
	int r;

	if ((r = get_str(p, cl, "server", where, &c->server)))
		return r;
	if (!c->server)
		return fail(p, -EINVAL, "%s.server: missing", where);
	if (strncmp(c->server, "https://", 8) != 0 && strncmp(c->server, "http://", 7) != 0)
		return fail(p, -EINVAL, "%s.server: \"%s\" is not an http(s):// URL", where, c->server);
	n = strlen(c->server);
	while (n > 8 && c->server[n - 1] == '/')
		c->server[--n] = '\0';
	if ((r = get_pem_data(p, cl, "certificate-authority-data", where, &c->ca_pem)) ||
	    (r = get_file(p, cl, "certificate-authority", where, &c->ca_file)) ||
	    (r = one_of(p, where, "certificate-authority", "certificate-authority-data", c->ca_file, c->ca_pem)))
		return r;
	return parse_bool(p, cl, "insecure-skip-tls-verify", where, &c->insecure);
}

static int parse_user(struct kc_parse *p, yaml_node_t *u, const char *where, struct pw_kube_conn *c)
{
	char field[160];
	int r;

	if ((r = get_pem_data(p, u, "client-certificate-data", where, &c->cert_pem)) ||
	    (r = get_file(p, u, "client-certificate", where, &c->cert_file)) ||
	    (r = get_pem_data(p, u, "client-key-data", where, &c->key_pem)) ||
	    (r = get_file(p, u, "client-key", where, &c->key_file)) ||
	    (r = get_str(p, u, "token", where, &c->token)) ||
	    (r = get_file(p, u, "tokenFile", where, &c->token_file)))
		return r;
	if ((r = one_of(p, where, "client-certificate", "client-certificate-data", c->cert_file, c->cert_pem)) ||
	    (r = one_of(p, where, "client-key", "client-key-data", c->key_file, c->key_pem)) ||
	    (r = one_of(p, where, "token", "tokenFile", c->token, c->token_file)))
		return r;
	if ((c->cert_file || c->cert_pem) && !(c->key_file || c->key_pem))
		return fail(p, -EINVAL, "%s.client-key: missing (a client certificate needs its key)", where);
	if ((c->key_file || c->key_pem) && !(c->cert_file || c->cert_pem))
		return fail(p, -EINVAL, "%s.client-certificate: missing (a client key needs its certificate)", where);
	if (c->token_file) {
		snprintf(field, sizeof(field), "%s.tokenFile", where);
		return read_token(c->token_file, &c->token, p->err, p->errlen, field);
	}
	if (!c->token && !c->cert_file && !c->cert_pem &&
	    (map_get(p->doc, u, "exec") || map_get(p->doc, u, "auth-provider")))
		return fail(p, -ENOTSUP, "%s: exec and auth-provider credentials are not supported "
			    "(use a client certificate or a token)", where);
	return 0;
}

static int parse_doc(struct kc_parse *p, struct pw_kube_conn *c)
{
	yaml_node_t *root = yaml_document_get_root_node(p->doc), *ctx, *cl, *u;
	char *cur = NULL, *cluster = NULL, *user = NULL, where[96];
	int r, i;

	if (!root || root->type != YAML_MAPPING_NODE)
		return fail(p, -EINVAL, "kubeconfig: not a YAML mapping");
	if ((r = get_str(p, root, "current-context", "kubeconfig", &cur)))
		return r;
	if (!cur)
		return fail(p, -EINVAL, "current-context: missing");
	r = find_named(p, root, "contexts", "context", cur, &ctx, &i);
	if (r)
		goto out;
	snprintf(where, sizeof(where), "contexts[%d].context", i);
	if ((r = get_str(p, ctx, "cluster", where, &cluster)) || (r = get_str(p, ctx, "user", where, &user)))
		goto out;
	if (!cluster) {
		r = fail(p, -EINVAL, "%s.cluster: missing", where);
		goto out;
	}
	if ((r = find_named(p, root, "clusters", "cluster", cluster, &cl, &i)))
		goto out;
	snprintf(where, sizeof(where), "clusters[%d].cluster", i);
	if ((r = parse_cluster(p, cl, where, c)))
		goto out;
	/* A context without a user is anonymous access: allowed. */
	if (user) {
		if ((r = find_named(p, root, "users", "user", user, &u, &i)))
			goto out;
		snprintf(where, sizeof(where), "users[%d].user", i);
		r = parse_user(p, u, where, c);
	}
out:
	free(cur);
	free(cluster);
	free(user);
	return r;
}

int pw_kubeconfig_parse(const char *yaml, size_t len, const char *base_dir,
			struct pw_kube_conn *c, char *err, size_t errlen)
{
	struct kc_parse p = { .base_dir = base_dir, .err = err, .errlen = errlen };
	yaml_parser_t parser;
	yaml_document_t doc;
	int r;

	memset(c, 0, sizeof(*c));
	if (errlen)
		err[0] = '\0';
	if (!yaml_parser_initialize(&parser))
		return fail(&p, -ENOMEM, "kubeconfig: out of memory");
	yaml_parser_set_input_string(&parser, (const unsigned char *)yaml, len);
	if (!yaml_parser_load(&parser, &doc)) {
		r = fail(&p, -EINVAL, "kubeconfig: line %zu column %zu: %s",
			 parser.problem_mark.line + 1, parser.problem_mark.column + 1,
			 parser.problem ? parser.problem : "invalid YAML");
		yaml_parser_delete(&parser);
		return r;
	}
	p.doc = &doc;
	r = parse_doc(&p, c);
	yaml_document_delete(&doc);
	yaml_parser_delete(&parser);
	if (r)
		pw_kube_conn_free(c);
	return r;
}

int pw_kube_conn_in_cluster(const char *sa_dir, struct pw_kube_conn *c, char *err, size_t errlen)
{
	const char *host = getenv("KUBERNETES_SERVICE_HOST"), *port = getenv("KUBERNETES_SERVICE_PORT");
	bool v6;
	int r;

	memset(c, 0, sizeof(*c));
	if (!sa_dir)
		sa_dir = SA_DIR;
	if (!host || !*host || !port || !*port) {
		snprintf(err, errlen, "in-cluster: KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT "
			 "are not set (not running in a pod? give a kubeconfig)");
		return -ENOENT;
	}
	v6 = strchr(host, ':') != NULL;
	if (asprintf(&c->server, "https://%s%s%s:%s", v6 ? "[" : "", host, v6 ? "]" : "", port) < 0)
		c->server = NULL;
	if (asprintf(&c->ca_file, "%s/ca.crt", sa_dir) < 0)
		c->ca_file = NULL;
	if (asprintf(&c->token_file, "%s/token", sa_dir) < 0)
		c->token_file = NULL;
	if (!c->server || !c->ca_file || !c->token_file) {
		pw_kube_conn_free(c);
		snprintf(err, errlen, "in-cluster: out of memory");
		return -ENOMEM;
	}
	if (access(c->ca_file, R_OK) < 0) {
		r = -errno;
		snprintf(err, errlen, "in-cluster: \"%s\": %s", c->ca_file, strerror(-r));
		pw_kube_conn_free(c);
		return r;
	}
	r = read_token(c->token_file, &c->token, err, errlen, "in-cluster");
	if (r)
		pw_kube_conn_free(c);
	return r;
}

int pw_kube_conn_load(const char *path, struct pw_kube_conn *c, char *err, size_t errlen)
{
	char *yaml, *dir, *slash;
	size_t len;
	int r;

	if (!path)
		return pw_kube_conn_in_cluster(NULL, c, err, errlen);
	memset(c, 0, sizeof(*c));
	yaml = pw_file_read(path, KUBECONFIG_MAX, &len, &r);
	if (!yaml) {
		snprintf(err, errlen, "\"%s\": %s", path, r == -EFBIG ? "too large for a kubeconfig" : strerror(-r));
		return r;
	}
	dir = strdup(path);
	if (!dir) {
		free(yaml);
		snprintf(err, errlen, "\"%s\": out of memory", path);
		return -ENOMEM;
	}
	slash = strrchr(dir, '/');
	if (slash)
		*(slash == dir ? slash + 1 : slash) = '\0';
	r = pw_kubeconfig_parse(yaml, len, slash ? dir : NULL, c, err, errlen);
	free(dir);
	free(yaml);
	return r;
}

void pw_kube_conn_free(struct pw_kube_conn *c)
{
	free(c->server);
	free(c->ca_pem);
	free(c->ca_file);
	free(c->cert_pem);
	free(c->cert_file);
	free(c->key_pem);
	free(c->key_file);
	free(c->token);
	free(c->token_file);
	memset(c, 0, sizeof(*c));
}
