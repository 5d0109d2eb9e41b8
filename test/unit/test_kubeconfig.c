/* kubeconfig loading (userspace/lib/kubeconfig.c): inline (base64) and
 * file credentials land in the right fields, relative paths resolve
 * against the kubeconfig's directory, token files are read, the in-cluster
 * config comes from the service account's files, and every bad input
 * fails with a message naming the field. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "pwtest.h"
#include "kube.h"

static char dir[64];

#define CA_PEM   "-----BEGIN CERTIFICATE-----\nQ0EgY2VydA==\n-----END CERTIFICATE-----\n"
#define CERT_PEM "-----BEGIN CERTIFICATE-----\nY2xpZW50IGNlcnQ=\n-----END CERTIFICATE-----\n"
#define KEY_PEM  "-----BEGIN PRIVATE KEY-----\na2V5\n-----END PRIVATE KEY-----\n"

static char *b64(const char *s)
{
	static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	size_t n = strlen(s), o = 0;
	char *out = malloc(n / 3 * 4 + 8);

	for (size_t i = 0; i < n; i += 3) {
		unsigned v = (unsigned char)s[i] << 16;

		v |= i + 1 < n ? (unsigned char)s[i + 1] << 8 : 0;
		v |= i + 2 < n ? (unsigned char)s[i + 2] : 0;
		out[o++] = tab[v >> 18 & 63];
		out[o++] = tab[v >> 12 & 63];
		out[o++] = i + 1 < n ? tab[v >> 6 & 63] : '=';
		out[o++] = i + 2 < n ? tab[v & 63] : '=';
	}
	out[o] = '\0';
	return out;
}

static void write_file(const char *name, const char *text)
{
	char path[128];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "w");
	if (f) {
		fputs(text, f);
		fclose(f);
	}
}

/* A kubeconfig with a decoy context/cluster/user first, so that the
 * current context's entries are found by name, not position. */
static char *kubeconfig(const char *cluster_fields, const char *user_fields)
{
	char *s;

	if (asprintf(&s,
		     "apiVersion: v1\nkind: Config\n"
		     "current-context: ctx\n"
		     "contexts:\n"
		     "- name: other\n  context: {cluster: other, user: other}\n"
		     "- name: ctx\n  context:\n    cluster: c1\n    user: u1\n"
		     "clusters:\n"
		     "- name: other\n  cluster: {server: \"https://10.0.0.1:1\"}\n"
		     "- name: c1\n  cluster:\n    server: https://127.0.0.1:6443/\n%s"
		     "users:\n"
		     "- name: other\n  user: {token: nope}\n"
		     "- name: u1\n  user:\n%s",
		     cluster_fields, user_fields) < 0)
		return NULL;
	return s;
}

static int parse(const char *cluster, const char *user, struct pw_kube_conn *c, char *err, size_t errlen)
{
	char *y = kubeconfig(cluster, user);
	int r = pw_kubeconfig_parse(y, strlen(y), dir, c, err, errlen);

	free(y);
	return r;
}

static void test_inline(void)
{
	char *ca = b64(CA_PEM), *cert = b64(CERT_PEM), *key = b64(KEY_PEM), *cl, *u, err[256];
	struct pw_kube_conn c;
	int r;

	asprintf(&cl, "    certificate-authority-data: %s\n", ca);
	asprintf(&u, "    client-certificate-data: %s\n    client-key-data: %s\n", cert, key);
	r = parse(cl, u, &c, err, sizeof(err));
	PWT_CHECK(r == 0, "inline certificates parse", "%d: %s", r, err);
	PWT_EQ_STR(c.server, "https://127.0.0.1:6443", "server, trailing slash dropped");
	PWT_EQ_STR(c.ca_pem, CA_PEM, "certificate-authority-data decoded");
	PWT_EQ_STR(c.cert_pem, CERT_PEM, "client-certificate-data decoded");
	PWT_EQ_STR(c.key_pem, KEY_PEM, "client-key-data decoded");
	PWT_EXPECT(!c.ca_file && !c.cert_file && !c.key_file && !c.token && !c.insecure, "no other field set");
	pw_kube_conn_free(&c);
	PWT_EXPECT(!c.server && !c.ca_pem, "free resets");
	free(cl);
	free(u);

	/* base64 wrapped over lines (a YAML block scalar) decodes too. */
	asprintf(&cl, "    certificate-authority-data: |\n      %.20s\n      %s\n", ca, ca + 20);
	r = parse(cl, "    token: abc\n", &c, err, sizeof(err));
	PWT_CHECK(r == 0 && c.ca_pem && strcmp(c.ca_pem, CA_PEM) == 0, "base64 across lines decodes",
		  "%d: %s", r, err);
	pw_kube_conn_free(&c);
	free(cl);
	free(ca);
	free(cert);
	free(key);
}

static void test_files(void)
{
	struct pw_kube_conn c;
	char err[256], want[160], path[128], *y;
	int r;

	write_file("ca.crt", CA_PEM);
	write_file("client.crt", CERT_PEM);
	write_file("client.key", KEY_PEM);
	mkdir(strcat(strcpy(path, dir), "/sub"), 0700);
	write_file("sub/client.key", KEY_PEM);
	r = parse("    certificate-authority: ca.crt\n",
		  "    client-certificate: ./client.crt\n    client-key: sub/client.key\n", &c, err, sizeof(err));
	PWT_CHECK(r == 0, "file certificates parse", "%d: %s", r, err);
	snprintf(want, sizeof(want), "%s/ca.crt", dir);
	PWT_EQ_STR(c.ca_file, want, "relative certificate-authority resolved against the kubeconfig's dir");
	snprintf(want, sizeof(want), "%s/sub/client.key", dir);
	PWT_EQ_STR(c.key_file, want, "relative client-key in a subdirectory");
	PWT_EXPECT(!c.ca_pem && !c.cert_pem && !c.key_pem, "no inline fields set");
	pw_kube_conn_free(&c);

	/* Absolute paths stay as they are; load() resolves against the file's dir. */
	snprintf(path, sizeof(path), "    client-certificate: %s/client.crt\n    client-key: client.key\n", dir);
	y = kubeconfig("    certificate-authority: ca.crt\n", path);
	write_file("config", y);
	free(y);
	snprintf(path, sizeof(path), "%s/config", dir);
	r = pw_kube_conn_load(path, &c, err, sizeof(err));
	PWT_CHECK(r == 0, "pw_kube_conn_load reads a kubeconfig file", "%d: %s", r, err);
	snprintf(want, sizeof(want), "%s/client.crt", dir);
	PWT_EQ_STR(c.cert_file, want, "absolute client-certificate kept");
	snprintf(want, sizeof(want), "%s/client.key", dir);
	PWT_EQ_STR(c.key_file, want, "load resolves relative paths against the file's directory");
	pw_kube_conn_free(&c);

	r = parse("", "    client-certificate: client.crt\n    client-key: missing.key\n", &c, err, sizeof(err));
	snprintf(want, sizeof(want), "users[1].user.client-key: \"%s/missing.key\": No such file or directory", dir);
	PWT_EQ_INT(r, -ENOENT, "missing key file fails with -ENOENT");
	PWT_EQ_STR(err, want, "missing key file: message names field and path");
	r = pw_kube_conn_load("/nonexistent/kubeconfig", &c, err, sizeof(err));
	PWT_CHECK(r == -ENOENT && strstr(err, "/nonexistent/kubeconfig"), "missing kubeconfig file named",
		  "%d: %s", r, err);
}

static void test_tokens(void)
{
	struct pw_kube_conn c;
	char err[256], want[160];
	int r;

	r = parse("    insecure-skip-tls-verify: true\n", "    token: s3cr3t\n", &c, err, sizeof(err));
	PWT_CHECK(r == 0, "token and insecure parse", "%d: %s", r, err);
	PWT_EQ_STR(c.token, "s3cr3t", "token");
	PWT_EXPECT(c.insecure, "insecure-skip-tls-verify: true");
	PWT_EXPECT(!c.token_file, "no token file");
	pw_kube_conn_free(&c);

	write_file("token", "  tok-from-file\n");
	r = parse("", "    tokenFile: token\n", &c, err, sizeof(err));
	PWT_CHECK(r == 0, "tokenFile parses", "%d: %s", r, err);
	PWT_EQ_STR(c.token, "tok-from-file", "tokenFile read at load, whitespace trimmed");
	snprintf(want, sizeof(want), "%s/token", dir);
	PWT_EQ_STR(c.token_file, want, "token_file kept for re-reading");
	PWT_EXPECT(!c.insecure, "insecure defaults to false");
	pw_kube_conn_free(&c);

	write_file("empty", "\n");
	r = parse("", "    tokenFile: empty\n", &c, err, sizeof(err));
	PWT_CHECK(r == -EINVAL && strstr(err, "users[1].user.tokenFile") && strstr(err, "empty"),
		  "empty token file refused", "%d: %s", r, err);

	/* A context without a user: anonymous, allowed. */
	const char *anon = "current-context: a\ncontexts:\n- name: a\n  context: {cluster: c}\n"
			   "clusters:\n- name: c\n  cluster: {server: \"http://localhost:8080\"}\n";
	r = pw_kubeconfig_parse(anon, strlen(anon), dir, &c, err, sizeof(err));
	PWT_CHECK(r == 0 && c.server && strcmp(c.server, "http://localhost:8080") == 0 && !c.token,
		  "context without a user is anonymous", "%d: %s", r, err);
	pw_kube_conn_free(&c);
}

static void expect_error(const char *name, const char *yaml, const char *cluster, const char *user,
			 const char *want)
{
	struct pw_kube_conn c;
	char err[256] = "";
	int r;

	if (yaml)
		r = pw_kubeconfig_parse(yaml, strlen(yaml), dir, &c, err, sizeof(err));
	else
		r = parse(cluster, user, &c, err, sizeof(err));
	PWT_CHECK(r < 0 && strstr(err, want), name, "returned %d, err \"%s\", want it to contain \"%s\"", r, err, want);
	PWT_CHECK(r == 0 || (!c.server && !c.token && !c.ca_pem), name, "fields left set after an error");
	if (!r)
		pw_kube_conn_free(&c);
}

static void test_errors(void)
{
	char *ca = b64(CA_PEM), *notpem = b64("just text"), buf[256];

	expect_error("missing current-context", "clusters: []\n", NULL, NULL, "current-context: missing");
	expect_error("current-context names no context",
		     "current-context: x\ncontexts:\n- name: y\n  context: {cluster: c}\n", NULL, NULL,
		     "contexts: no entry named \"x\"");
	expect_error("context without cluster",
		     "current-context: x\ncontexts:\n- name: x\n  context: {user: u}\n", NULL, NULL,
		     "contexts[0].context.cluster: missing");
	expect_error("cluster not found",
		     "current-context: x\ncontexts:\n- name: x\n  context: {cluster: c}\nclusters: []\n", NULL, NULL,
		     "clusters: no entry named \"c\"");
	expect_error("missing server",
		     "current-context: x\ncontexts:\n- name: x\n  context: {cluster: c}\n"
		     "clusters:\n- name: c\n  cluster: {insecure-skip-tls-verify: true}\n", NULL, NULL,
		     "clusters[0].cluster.server: missing");
	expect_error("server not a URL",
		     "current-context: x\ncontexts:\n- name: x\n  context: {cluster: c}\n"
		     "clusters:\n- name: c\n  cluster: {server: \"ftp://x\"}\n", NULL, NULL,
		     "clusters[0].cluster.server: \"ftp://x\" is not an http(s):// URL");
	expect_error("user not found",
		     "current-context: x\ncontexts:\n- name: x\n  context: {cluster: c, user: u}\n"
		     "clusters:\n- name: c\n  cluster: {server: \"https://a\"}\nusers: []\n", NULL, NULL,
		     "users: no entry named \"u\"");
	expect_error("bad base64", NULL, "    certificate-authority-data: \"QUJD*EFG\"\n", "    token: t\n",
		     "clusters[1].cluster.certificate-authority-data: invalid base64");
	expect_error("bad base64 padding", NULL, "", "    client-certificate-data: QUJ=D\n    client-key-data: QUJD\n",
		     "users[1].user.client-certificate-data: invalid base64");
	snprintf(buf, sizeof(buf), "    client-certificate-data: %s\n    client-key-data: %s\n", ca, notpem);
	expect_error("base64 of something not PEM", NULL, "", buf, "users[1].user.client-key-data: not PEM");
	snprintf(buf, sizeof(buf), "    client-certificate-data: %s\n", ca);
	expect_error("certificate without key", NULL, "", buf, "users[1].user.client-key: missing");
	snprintf(buf, sizeof(buf), "    certificate-authority: ca.crt\n    certificate-authority-data: %s\n", ca);
	expect_error("CA file and data both set", NULL, buf, "    token: t\n",
		     "clusters[1].cluster: both certificate-authority and certificate-authority-data are set");
	expect_error("token and tokenFile both set", NULL, "", "    token: t\n    tokenFile: token\n",
		     "users[1].user: both token and tokenFile are set");
	expect_error("insecure not a bool", NULL, "    insecure-skip-tls-verify: maybe\n", "    token: t\n",
		     "clusters[1].cluster.insecure-skip-tls-verify: \"maybe\" is not true or false");
	expect_error("token not a string", NULL, "", "    token: [a, b]\n", "users[1].user.token: not a string");
	expect_error("exec credentials unsupported", NULL, "", "    exec: {command: foo}\n",
		     "users[1].user: exec and auth-provider credentials are not supported");
	expect_error("not YAML", "a: [b\n", NULL, NULL, "kubeconfig: line ");
	expect_error("not a mapping", "- a\n- b\n", NULL, NULL, "kubeconfig: not a YAML mapping");
	expect_error("empty document", "", NULL, NULL, "kubeconfig: not a YAML mapping");
	free(ca);
	free(notpem);
}

static void test_in_cluster(void)
{
	struct pw_kube_conn c;
	char err[256], want[160];
	int r;

	unsetenv("KUBERNETES_SERVICE_HOST");
	r = pw_kube_conn_in_cluster(dir, &c, err, sizeof(err));
	PWT_CHECK(r == -ENOENT && strstr(err, "KUBERNETES_SERVICE_HOST"), "in-cluster without env refused",
		  "%d: %s", r, err);
	setenv("KUBERNETES_SERVICE_HOST", "10.96.0.1", 1);
	setenv("KUBERNETES_SERVICE_PORT", "443", 1);
	r = pw_kube_conn_in_cluster(dir, &c, err, sizeof(err));
	PWT_CHECK(r == 0, "in-cluster config loads", "%d: %s", r, err);
	PWT_EQ_STR(c.server, "https://10.96.0.1:443", "in-cluster server");
	snprintf(want, sizeof(want), "%s/ca.crt", dir);
	PWT_EQ_STR(c.ca_file, want, "in-cluster CA file");
	PWT_EQ_STR(c.token, "tok-from-file", "in-cluster token read");
	pw_kube_conn_free(&c);
	setenv("KUBERNETES_SERVICE_HOST", "fd00::1", 1);
	r = pw_kube_conn_in_cluster(dir, &c, err, sizeof(err));
	PWT_EQ_STR(r == 0 ? c.server : err, "https://[fd00::1]:443", "in-cluster IPv6 host bracketed");
	pw_kube_conn_free(&c);
	r = pw_kube_conn_in_cluster("/nonexistent", &c, err, sizeof(err));
	PWT_CHECK(r == -ENOENT && strstr(err, "/nonexistent/ca.crt"), "in-cluster missing CA named", "%d: %s", r, err);
}

int main(void)
{
	char cmd[96];

	snprintf(dir, sizeof(dir), "/tmp/pwt-kubeconfig.XXXXXX");
	if (!mkdtemp(dir)) {
		perror("mkdtemp");
		return 1;
	}
	test_inline();
	test_files();
	test_tokens();
	test_errors();
	test_in_cluster();
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", dir);
	return pwt_done();
}
