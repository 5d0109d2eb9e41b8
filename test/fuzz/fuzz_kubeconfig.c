/* libFuzzer harness for the kubeconfig parser (outside input: the
 * kubeconfig file an operator or installer writes). Build and run with
 * `make fuzz` (FUZZ_SECONDS). Beyond "no crash": a parse either fails with
 * a message and leaves nothing allocated, or yields a connection whose
 * rules hold (a URL server, at most one of each file/data pair, a key with
 * every certificate, PEM in every *-data field). */
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "kube.h"

static void check(int cond)
{
	if (!cond)
		abort();
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	/* A tokenFile naming /dev/stdin must not hang the fuzzer. */
	int fd = open("/dev/null", O_RDONLY);

	if (fd >= 0) {
		dup2(fd, 0);
		close(fd);
	}
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct pw_kube_conn c;
	char err[256];
	int r;

	r = pw_kubeconfig_parse((const char *)data, size, "/nonexistent-pwfuzz", &c, err, sizeof(err));
	if (r) {
		check(r < 0 && err[0] != '\0');
		check(!c.server && !c.ca_pem && !c.ca_file && !c.cert_pem && !c.cert_file &&
		      !c.key_pem && !c.key_file && !c.token && !c.token_file);
		return 0;
	}
	check(c.server && (!strncmp(c.server, "https://", 8) || !strncmp(c.server, "http://", 7)));
	check(!(c.ca_pem && c.ca_file) && !(c.cert_pem && c.cert_file) && !(c.key_pem && c.key_file));
	check(!!(c.cert_pem || c.cert_file) == !!(c.key_pem || c.key_file));
	check(!c.ca_pem || strstr(c.ca_pem, "-----BEGIN "));
	check(!c.cert_pem || strstr(c.cert_pem, "-----BEGIN "));
	check(!c.key_pem || strstr(c.key_pem, "-----BEGIN "));
	check(!c.token_file || c.token);
	pw_kube_conn_free(&c);
	return 0;
}
