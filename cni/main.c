/* podwire: the CNI plugin. Reads CNI_* from the environment and the network
 * config from stdin, runs one verb, prints the result (or the spec's error
 * JSON, exit status 1) on stdout. Logs go to the config's logFile only:
 * stdout belongs to the runtime. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "log.h"
#include "plugin.h"

#define STDIN_MAX (1 << 20)

static char *read_stdin(void)
{
	size_t len = 0, cap = 4096;
	char *buf = malloc(cap);

	if (!buf)
		return NULL;
	for (;;) {
		ssize_t n;

		if (cap - len < 2) {
			char *nb = cap < STDIN_MAX ? realloc(buf, cap * 2) : NULL;

			if (!nb) {
				free(buf);
				return NULL;
			}
			buf = nb;
			cap *= 2;
		}
		n = read(STDIN_FILENO, buf + len, cap - len - 1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			free(buf);
			return NULL;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	buf[len] = '\0';
	return buf;
}

static void print_json(cJSON *o)
{
	char *s = o ? cJSON_Print(o) : NULL;

	if (s) {
		fputs(s, stdout);
		fputc('\n', stdout);
		free(s);
	}
	fflush(stdout);
}

static int report_error(struct pw_cni *c)
{
	cJSON *o = pw_error_json(c->conf.version ? c->conf.version : PW_CNI_V_LATEST, &c->err);

	pw_err("%s %s/%s: code %d: %s%s%s", c->env.command ? c->env.command : "?",
	       c->env.container_id ? c->env.container_id : "-", c->env.ifname ? c->env.ifname : "-",
	       c->err.code, c->err.msg, c->err.details[0] ? ": " : "", c->err.details);
	print_json(o);
	cJSON_Delete(o);
	return 1;
}

/* VERSION answers whatever the config says (libcni sends only a
 * cniVersion, and may send nothing at all). */
static int cmd_version(const char *stdin_text)
{
	cJSON *in = cJSON_Parse(stdin_text);
	const cJSON *ver = cJSON_GetObjectItemCaseSensitive(in, "cniVersion");
	enum pw_cni_version v = cJSON_IsString(ver) ? pw_cni_version_parse(ver->valuestring) : PW_CNI_V_NONE;
	cJSON *o;

	cJSON_Delete(in);
	o = pw_version_json(v ? v : PW_CNI_V_LATEST);
	print_json(o);
	cJSON_Delete(o);
	return 0;
}

static void init_logging(const struct pw_cni_conf *conf)
{
	static FILE *log_out;
	FILE *f = conf->log_file[0] ? fopen(conf->log_file, "ae") : NULL;

	/* Without a log file, silence: the error JSON on stdout says it all
	 * and runtimes show stderr to users verbatim. */
	if (f)
		pw_log_init("podwire", conf->log_level, f);
	else if ((f = fopen("/dev/null", "we")))
		pw_log_init("podwire", PW_LOG_ERROR, f);
	if (log_out)
		fclose(log_out);
	log_out = f;
}

static int dispatch(struct pw_cni *c)
{
	switch (c->cmd) {
	case PW_CNI_ADD:    return pw_cmd_add(c);
	case PW_CNI_DEL:    return pw_cmd_del(c);
	case PW_CNI_CHECK:  return pw_cmd_check(c);
	case PW_CNI_STATUS: return pw_cmd_status(c);
	case PW_CNI_GC:     return pw_cmd_gc(c);
	case PW_CNI_VERSION: break;
	}
	return 0;
}

int main(void)
{
	struct pw_cni c = { 0 };
	char *stdin_text;
	int code;

	init_logging(&c.conf);   /* silent until the config names a log file */
	c.env = (struct pw_cni_env){
		.command = getenv("CNI_COMMAND"), .container_id = getenv("CNI_CONTAINERID"),
		.netns = getenv("CNI_NETNS"), .ifname = getenv("CNI_IFNAME"),
		.args = getenv("CNI_ARGS"), .path = getenv("CNI_PATH"),
	};
	if (pw_cni_cmd_parse(c.env.command, &c.cmd, &c.err))
		return report_error(&c);
	/* VERSION may come with no stdin at all: don't block on a terminal. */
	stdin_text = c.cmd == PW_CNI_VERSION && isatty(STDIN_FILENO) ? strdup("") : read_stdin();
	if (!stdin_text) {
		pw_cni_fail(&c.err, PW_CNI_E_IO, strerror(errno), "cannot read the network config from stdin");
		return report_error(&c);
	}
	if (c.cmd == PW_CNI_VERSION) {
		code = cmd_version(stdin_text);
		free(stdin_text);
		return code;
	}
	code = pw_cni_conf_parse(stdin_text, &c.conf, &c.err);
	free(stdin_text);
	if (code)
		return report_error(&c);
	init_logging(&c.conf);
	if (pw_cni_env_check(c.cmd, &c.env, &c.err))
		goto fail;
	/* Only ADD records what CNI_ARGS says: DEL and GC must clean up
	 * whatever a runtime sends them. */
	if (c.cmd == PW_CNI_ADD && pw_cni_args_parse(c.env.args, &c.args, &c.err))
		goto fail;
	if (c.cmd == PW_CNI_ADD && c.conf.rt_err.code) {
		c.err = c.conf.rt_err;
		goto fail;
	}
	if ((c.cmd == PW_CNI_STATUS || c.cmd == PW_CNI_GC) && c.conf.version < PW_CNI_V_1_1_0) {
		pw_cni_fail(&c.err, PW_CNI_E_VERSION, NULL, "config version %s does not allow %s (needs 1.1.0)",
			    pw_cni_version_name(c.conf.version), c.env.command);
		goto fail;
	}
	if (pw_paths_init(&c.paths, c.conf.instance)) {
		pw_cni_fail(&c.err, PW_CNI_E_CONFIG, c.conf.instance, "invalid instance name");
		goto fail;
	}
	pw_debug("%s %s/%s netns %s instance %s", c.env.command, c.env.container_id ? c.env.container_id : "-",
		 c.env.ifname ? c.env.ifname : "-", c.env.netns ? c.env.netns : "-", c.paths.instance);
	if (dispatch(&c))
		goto fail;
	if (c.out)
		print_json(c.out);
	cJSON_Delete(c.out);
	pw_cni_conf_free(&c.conf);
	return 0;
fail:
	code = report_error(&c);
	cJSON_Delete(c.out);
	pw_cni_conf_free(&c.conf);
	return code;
}
