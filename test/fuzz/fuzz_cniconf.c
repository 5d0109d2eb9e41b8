/* libFuzzer harness for the CNI plugin's network-config parser (outside
 * input: the runtime hands it on stdin). Built and run by `make fuzz`.
 * Beyond "no crash": a parse either fails with a spec error code and a
 * message, or yields a config whose invariants hold (a version the plugin
 * speaks, an instance name, attachments that fit their buffers). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "conf.h"

static void check(int cond)
{
	if (!cond)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct pw_cni_conf conf;
	struct pw_cni_err err;
	char *json = malloc(size + 1);
	int code;

	if (!json)
		return 0;
	memcpy(json, data, size);
	json[size] = '\0';
	memset(&err, 0, sizeof(err));
	code = pw_cni_conf_parse(json, &conf, &err);
	free(json);
	if (code) {
		check(code == 1 || code == 6 || code == 7);
		check(err.msg[0] != '\0');
		return 0;
	}
	check(conf.version != PW_CNI_V_NONE);
	check(conf.instance[0] != '\0');
	check(conf.mtu >= 0);
	for (int i = 0; i < conf.n_valid_attachments; i++) {
		const struct pw_cni_attachment *a = &conf.valid_attachments[i];

		check(a->container_id[0] && a->ifname[0]);
		(void)pw_cni_conf_attachment_valid(&conf, a->container_id, a->ifname);
	}
	pw_cni_conf_free(&conf);
	return 0;
}
