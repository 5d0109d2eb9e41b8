/* The CNI plugin's input parsing (cni/conf.c): network config JSON and the
 * CNI_* environment, good and bad. Pure: no system state touched. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include "pwtest.h"
#include "../../cni/conf.h"

static int parse(const char *json, struct pw_cni_conf *c, struct pw_cni_err *e)
{
	memset(e, 0, sizeof(*e));
	return pw_cni_conf_parse(json, c, e);
}

static void test_good(void)
{
	struct pw_cni_conf c;
	struct pw_cni_err e;
	int code;

	code = parse("{\"cniVersion\":\"1.1.0\",\"name\":\"podwire\",\"type\":\"podwire\"}", &c, &e);
	PWT_EQ_INT(code, 0, "minimal 1.1.0 config parses");
	PWT_EQ_INT(c.version, PW_CNI_V_1_1_0, "minimal: version 1.1.0");
	PWT_EQ_STR(c.name, "podwire", "minimal: name");
	PWT_EQ_STR(c.instance, "default", "minimal: instance defaults to \"default\"");
	PWT_EQ_INT(c.mtu, 0, "minimal: mtu 0 means the node's");
	PWT_EQ_STR(c.log_file, "", "minimal: no log file");
	PWT_EQ_INT(c.log_level, PW_LOG_INFO, "minimal: log level info");
	PWT_EXPECT(!c.has_valid_attachments, "minimal: no valid-attachments");
	PWT_EXPECT(!c.has_prev_ip, "minimal: no prevResult");
	pw_cni_conf_free(&c);

	code = parse("{\"cniVersion\":\"0.4.0\",\"name\":\"n\",\"type\":\"podwire\",\"instance\":\"node-1_a\","
		     "\"mtu\":1450,\"logFile\":\"/tmp/x.log\",\"logLevel\":\"debug\","
		     "\"args\":{\"k\":1},\"runtimeConfig\":{},\"dns\":{}}", &c, &e);
	PWT_EQ_INT(code, 0, "full 0.4.0 config parses (unknown keys ignored)");
	PWT_EQ_INT(c.version, PW_CNI_V_0_4_0, "full: version 0.4.0");
	PWT_EQ_STR(c.instance, "node-1_a", "full: instance");
	PWT_EQ_INT(c.mtu, 1450, "full: mtu");
	PWT_EQ_STR(c.log_file, "/tmp/x.log", "full: logFile");
	PWT_EQ_INT(c.log_level, PW_LOG_DEBUG, "full: logLevel");
	pw_cni_conf_free(&c);

	code = parse("{\"cniVersion\":\"1.0.0\",\"name\":\"n\",\"prevResult\":{\"cniVersion\":\"1.0.0\","
		     "\"ips\":[{\"address\":\"fd00::5/64\"},{\"address\":\"10.244.1.7/32\",\"gateway\":\"10.244.1.1\"}]}}",
		     &c, &e);
	PWT_EQ_INT(code, 0, "1.0.0 config with prevResult parses");
	PWT_EXPECT(c.has_prev_ip, "prevResult: an IPv4 address found (IPv6 skipped)");
	PWT_EQ_INT(c.prev_ip, (10u << 24) | (244u << 16) | (1u << 8) | 7u, "prevResult: address");
	PWT_EQ_INT(c.prev_prefix, 32, "prevResult: prefix");
	pw_cni_conf_free(&c);

	code = parse("{\"cniVersion\":\"1.1.0\",\"name\":\"n\",\"cni.dev/valid-attachments\":["
		     "{\"containerID\":\"abc\",\"ifname\":\"eth0\"},{\"containerID\":\"def\",\"ifname\":\"net1\"}]}",
		     &c, &e);
	PWT_EQ_INT(code, 0, "GC config with valid-attachments parses");
	PWT_EXPECT(c.has_valid_attachments, "GC: has valid-attachments");
	PWT_EQ_INT(c.n_valid_attachments, 2, "GC: two attachments");
	PWT_EXPECT(pw_cni_conf_attachment_valid(&c, "def", "net1"), "GC: (def, net1) is valid");
	PWT_EXPECT(!pw_cni_conf_attachment_valid(&c, "def", "eth0"), "GC: (def, eth0) is not (pair, not either)");
	PWT_EXPECT(!pw_cni_conf_attachment_valid(&c, "xyz", "eth0"), "GC: (xyz, eth0) is not");
	pw_cni_conf_free(&c);

	code = parse("{\"cniVersion\":\"1.1.0\",\"name\":\"n\",\"cni.dev/valid-attachments\":[]}", &c, &e);
	PWT_EQ_INT(code, 0, "GC with an empty valid-attachments list parses");
	PWT_EXPECT(c.has_valid_attachments && c.n_valid_attachments == 0, "GC: empty list, nothing valid");
	pw_cni_conf_free(&c);
}

static void test_bad(void)
{
	static const struct { const char *json; int code; const char *name; const char *msg_has; } cases[] = {
		{ "", 6, "empty input", NULL },
		{ "{\"cniVersion\":\"1.0.0\",", 6, "truncated JSON", NULL },
		{ "not json", 6, "garbage", NULL },
		{ "{\"cniVersion\":\"1.1.0\",\"name\":\"n\",\"cni.dev/valid-attachments\":[{\"containerID\":\"a\",\"ifname\":\"\"}]}",
		  7, "valid-attachments entry with an empty ifname", "valid-attachments\"[0]" },
		{ "{\"cniVersion\":\"1.1.0\",\"name\":\"n\",\"cni.dev/valid-attachments\":[{\"containerID\":\"-x\",\"ifname\":\"eth0\"}]}",
		  7, "valid-attachments entry with an invalid containerID", "valid-attachments\"[0]" },
		{ "[1,2]", 6, "JSON array instead of object", NULL },
		{ "{\"cniVersion\":\"1.0.0\",\"name\":\"n\"} trailing", 6, "trailing garbage", NULL },
		{ "{\"name\":\"n\"}", 7, "missing cniVersion", "cniVersion" },
		{ "{\"cniVersion\":1.0,\"name\":\"n\"}", 7, "cniVersion not a string", "cniVersion" },
		{ "{\"cniVersion\":\"0.3.1\",\"name\":\"n\"}", 1, "cniVersion 0.3.1 unsupported", "0.3.1" },
		{ "{\"cniVersion\":\"2.0.0\",\"name\":\"n\"}", 1, "unknown cniVersion 2.0.0", "2.0.0" },
		{ "{\"cniVersion\":\"1.0.0\"}", 7, "missing name", "name" },
		{ "{\"cniVersion\":\"1.0.0\",\"name\":42}", 7, "name not a string", "name" },
		{ "{\"cniVersion\":\"1.0.0\",\"name\":\"\"}", 7, "empty name", "name" },
		{ "{\"cniVersion\":\"1.0.0\",\"name\":\"n\",\"type\":[]}", 7, "type not a string", "type" },
		{ "{\"cniVersion\":\"1.0.0\",\"name\":\"n\",\"instance\":5}", 7, "instance not a string", "instance" },
		{ "{\"cniVersion\":\"1.0.0\",\"name\":\"n\",\"instance\":\"../etc\"}", 7, "instance with a path", "instance" },
		{ "{\"cniVersion\":\"1.0.0\",\"name\":\"n\",\"instance\":\"\"}", 7, "empty instance", "instance" },
		{ "{\"cniVersion\":\"1.0.0\",\"name\":\"n\",\"mtu\":\"1500\"}", 7, "mtu as a string", "mtu" },
		{ "{\"cniVersion\":\"1.0.0\",\"name\":\"n\",\"mtu\":20}", 7, "mtu too small", "mtu" },
		{ "{\"cniVersion\":\"1.0.0\",\"name\":\"n\",\"mtu\":70000}", 7, "mtu too large", "mtu" },
		{ "{\"cniVersion\":\"1.0.0\",\"name\":\"n\",\"mtu\":1400.5}", 7, "mtu not an integer", "mtu" },
		{ "{\"cniVersion\":\"1.0.0\",\"name\":\"n\",\"logFile\":true}", 7, "logFile not a string", "logFile" },
		{ "{\"cniVersion\":\"1.0.0\",\"name\":\"n\",\"logLevel\":\"loud\"}", 7, "unknown logLevel", "logLevel" },
		{ "{\"cniVersion\":\"1.1.0\",\"name\":\"n\",\"cni.dev/valid-attachments\":{}}", 7,
		  "valid-attachments not an array", "valid-attachments" },
		{ "{\"cniVersion\":\"1.1.0\",\"name\":\"n\",\"cni.dev/valid-attachments\":[{\"containerID\":\"a\"}]}", 7,
		  "valid-attachment without ifname", "valid-attachments" },
		{ "{\"cniVersion\":\"1.1.0\",\"name\":\"n\",\"cni.dev/valid-attachments\":[\"a\"]}", 7,
		  "valid-attachment not an object", "valid-attachments" },
		{ "{\"cniVersion\":\"1.0.0\",\"name\":\"n\",\"prevResult\":[]}", 7, "prevResult not an object", "prevResult" },
		{ "{\"cniVersion\":\"1.0.0\",\"name\":\"n\",\"prevResult\":{\"ips\":[{\"address\":\"10.1.1.1\"}]}}", 7,
		  "prevResult address without prefix", "prevResult" },
		{ "{\"cniVersion\":\"1.0.0\",\"name\":\"n\",\"prevResult\":{\"ips\":[{\"address\":\"10.1.1/32\"}]}}", 7,
		  "prevResult address malformed", "prevResult" },
	};
	char name[160];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct pw_cni_conf c;
		struct pw_cni_err e;
		int code = parse(cases[i].json, &c, &e);

		snprintf(name, sizeof(name), "bad config: %s -> code %d", cases[i].name, cases[i].code);
		PWT_CHECK(code == cases[i].code && e.code == code && e.msg[0], name,
			  "code %d (err.code %d, msg \"%s\")", code, e.code, e.msg);
		if (cases[i].msg_has) {
			snprintf(name, sizeof(name), "bad config: %s: message names \"%s\"", cases[i].name,
				 cases[i].msg_has);
			PWT_CHECK(strstr(e.msg, cases[i].msg_has) != NULL, name, "msg \"%s\"", e.msg);
		}
		if (code == 0)
			pw_cni_conf_free(&c);
	}
}

static void test_versions(void)
{
	PWT_EQ_INT(pw_cni_version_parse("0.4.0"), PW_CNI_V_0_4_0, "version 0.4.0");
	PWT_EQ_INT(pw_cni_version_parse("1.0.0"), PW_CNI_V_1_0_0, "version 1.0.0");
	PWT_EQ_INT(pw_cni_version_parse("1.1.0"), PW_CNI_V_1_1_0, "version 1.1.0");
	PWT_EQ_INT(pw_cni_version_parse("0.3.1"), PW_CNI_V_NONE, "version 0.3.1 refused");
	PWT_EQ_INT(pw_cni_version_parse("1.0"), PW_CNI_V_NONE, "version 1.0 refused");
	PWT_EQ_INT(pw_cni_version_parse(NULL), PW_CNI_V_NONE, "no version");
	PWT_EQ_STR(pw_cni_version_name(PW_CNI_V_1_0_0), "1.0.0", "version name 1.0.0");
	PWT_EQ_STR(pw_cni_version_name(PW_CNI_V_NONE), "1.1.0", "no version names the latest");
}

static void test_env(void)
{
	struct pw_cni_env full = { .command = "ADD", .container_id = "ctr-1.a_b", .netns = "/run/netns/x",
				   .ifname = "eth0" };
	struct pw_cni_env env;
	struct pw_cni_err e;
	enum pw_cni_cmd cmd;

	PWT_EQ_INT(pw_cni_cmd_parse("ADD", &cmd, &e), 0, "CNI_COMMAND ADD");
	PWT_EQ_INT(cmd, PW_CNI_ADD, "ADD parsed");
	PWT_EQ_INT(pw_cni_cmd_parse("GC", &cmd, &e), 0, "CNI_COMMAND GC");
	PWT_EQ_INT(cmd, PW_CNI_GC, "GC parsed");
	PWT_EQ_INT(pw_cni_cmd_parse("STATUS", &cmd, &e), 0, "CNI_COMMAND STATUS");
	PWT_EQ_INT(pw_cni_cmd_parse("add", &cmd, &e), 4, "lower-case command refused with 4");
	PWT_EQ_INT(pw_cni_cmd_parse(NULL, &cmd, &e), 4, "missing CNI_COMMAND -> 4");
	PWT_CHECK(strstr(e.msg, "CNI_COMMAND") != NULL, "missing CNI_COMMAND named", "msg \"%s\"", e.msg);

	PWT_EQ_INT(pw_cni_env_check(PW_CNI_ADD, &full, &e), 0, "ADD with full env");

	env = full; env.container_id = NULL;
	PWT_EQ_INT(pw_cni_env_check(PW_CNI_ADD, &env, &e), 4, "ADD without CNI_CONTAINERID -> 4");
	PWT_CHECK(strstr(e.msg, "CNI_CONTAINERID") && !strstr(e.msg, "CNI_NETNS"),
		  "missing CNI_CONTAINERID named (only it)", "msg \"%s\"", e.msg);
	env = full; env.ifname = "";
	PWT_EQ_INT(pw_cni_env_check(PW_CNI_ADD, &env, &e), 4, "ADD with empty CNI_IFNAME -> 4");
	PWT_CHECK(strstr(e.msg, "CNI_IFNAME") != NULL, "missing CNI_IFNAME named", "msg \"%s\"", e.msg);
	env = full; env.netns = NULL;
	PWT_EQ_INT(pw_cni_env_check(PW_CNI_CHECK, &env, &e), 4, "CHECK without CNI_NETNS -> 4");
	PWT_CHECK(strstr(e.msg, "CNI_NETNS") != NULL, "missing CNI_NETNS named", "msg \"%s\"", e.msg);
	PWT_EQ_INT(pw_cni_env_check(PW_CNI_DEL, &env, &e), 0, "DEL without CNI_NETNS is fine");
	env = full; env.netns = NULL; env.ifname = NULL;
	PWT_EQ_INT(pw_cni_env_check(PW_CNI_ADD, &env, &e), 4, "ADD missing two -> 4");
	PWT_CHECK(strstr(e.msg, "CNI_IFNAME") && strstr(e.msg, "CNI_NETNS"), "both missing named",
		  "msg \"%s\"", e.msg);

	memset(&env, 0, sizeof(env));
	PWT_EQ_INT(pw_cni_env_check(PW_CNI_VERSION, &env, &e), 0, "VERSION needs no env");
	PWT_EQ_INT(pw_cni_env_check(PW_CNI_STATUS, &env, &e), 0, "STATUS needs no env");
	PWT_EQ_INT(pw_cni_env_check(PW_CNI_GC, &env, &e), 0, "GC needs no env");

	env = full; env.container_id = "-bad";
	PWT_EQ_INT(pw_cni_env_check(PW_CNI_ADD, &env, &e), 4, "container ID starting with '-' -> 4");
	env = full; env.container_id = "a/b";
	PWT_EQ_INT(pw_cni_env_check(PW_CNI_DEL, &env, &e), 4, "container ID with '/' -> 4");
	env = full; env.ifname = "eth0:1";
	PWT_EQ_INT(pw_cni_env_check(PW_CNI_ADD, &env, &e), 4, "ifname with ':' -> 4");
	env = full; env.ifname = "0123456789abcdef";
	PWT_EQ_INT(pw_cni_env_check(PW_CNI_ADD, &env, &e), 4, "16-char ifname -> 4");
	env = full; env.ifname = "..";
	PWT_EQ_INT(pw_cni_env_check(PW_CNI_ADD, &env, &e), 4, "ifname \"..\" -> 4");
}

/* key=<max characters> passes, key=<max + 1> fails saying "at most max". */
static void length_limit(const char *key, int max)
{
	char val[300], args[400], name[96];
	struct pw_cni_args a;
	struct pw_cni_err e;

	memset(val, 'a', (size_t)max + 1);
	val[max + 1] = '\0';
	snprintf(args, sizeof(args), "%s=%s", key, val);
	snprintf(name, sizeof(name), "%s of %d characters -> 4, saying at most %d", key, max + 1, max);
	snprintf(val, sizeof(val), "at most %d", max);
	PWT_EXPECT(pw_cni_args_parse(args, &a, &e) == 4 && strstr(e.msg, val), name);
	args[strlen(args) - 1] = '\0';
	snprintf(name, sizeof(name), "%s of %d characters is fine", key, max);
	PWT_EQ_INT(pw_cni_args_parse(args, &a, &e), 0, name);
}

/* CNI_ARGS: the pod's namespace and name as containerd sends them; unknown
 * keys ignored; names Kubernetes would refuse are code 4 with the reason. */
static void test_args(void)
{
	char long_name[300], msg[600];
	struct pw_cni_args a;
	struct pw_cni_err e;

	PWT_EQ_INT(pw_cni_args_parse(NULL, &a, &e), 0, "no CNI_ARGS");
	PWT_EQ_STR(a.k8s_namespace, "", "no CNI_ARGS: no namespace");
	PWT_EQ_INT(pw_cni_args_parse("", &a, &e), 0, "empty CNI_ARGS");
	PWT_EQ_INT(pw_cni_args_parse("K8S_POD_UID=0f1e-22;IgnoreUnknown=1;K8S_POD_NAMESPACE=kube-system;"
				     "K8S_POD_NAME=coredns-5d78c9869d-x2x7q;K8S_POD_INFRA_CONTAINER_ID=abc123",
				     &a, &e), 0, "containerd's CNI_ARGS parse");
	PWT_EQ_STR(a.k8s_namespace, "kube-system", "containerd: namespace");
	PWT_EQ_STR(a.k8s_pod_name, "coredns-5d78c9869d-x2x7q", "containerd: pod name");
	PWT_EQ_INT(pw_cni_args_parse("FOO=bar;K8S_POD_NAME=web.v1-0;", &a, &e), 0,
		   "unknown key without IgnoreUnknown, trailing ';' ignored");
	PWT_EQ_STR(a.k8s_pod_name, "web.v1-0", "pod name with dots (DNS-1123 subdomain)");
	PWT_EQ_STR(a.k8s_namespace, "", "namespace absent");
	PWT_EQ_INT(pw_cni_args_parse("K8S_POD_NAMESPACE=;K8S_POD_NAME=", &a, &e), 0, "empty values are absent");
	PWT_EQ_INT(pw_cni_args_parse("K8S_POD_NAMESPACEX=Bad!", &a, &e), 0, "longer key is another key");

	PWT_EQ_INT(pw_cni_args_parse("K8S_POD_NAMESPACE=Default", &a, &e), 4, "upper-case namespace -> 4");
	PWT_EXPECT(strstr(e.msg, "K8S_POD_NAMESPACE") && strstr(e.msg, "DNS-1123 label"),
		   "namespace error names the key and the rule");
	PWT_EQ_INT(pw_cni_args_parse("K8S_POD_NAMESPACE=a.b", &a, &e), 4, "namespace with a dot -> 4");
	PWT_EQ_INT(pw_cni_args_parse("K8S_POD_NAMESPACE=-x", &a, &e), 4, "namespace starting with '-' -> 4");
	length_limit("K8S_POD_NAMESPACE", 63);
	PWT_EQ_INT(pw_cni_args_parse("K8S_POD_NAME=web\"\n", &a, &e), 4, "pod name with quote and newline -> 4");
	PWT_EXPECT(strstr(e.msg, "K8S_POD_NAME") && strstr(e.msg, "DNS-1123 subdomain"),
		   "pod name error names the key and the rule");
	PWT_EQ_INT(pw_cni_args_parse("K8S_POD_NAME=a..b", &a, &e), 4, "pod name with an empty label -> 4");
	length_limit("K8S_POD_NAME", 253);
	memset(long_name, 'B', 200);
	long_name[200] = '\0';
	snprintf(msg, sizeof(msg), "K8S_POD_NAME=%s", long_name);
	PWT_EQ_INT(pw_cni_args_parse(msg, &a, &e), 4, "long bad pod name -> 4");
	PWT_EXPECT(strstr(e.msg, "must consist of") || strstr(e.msg, "must start"),
		   "long bad value is cut, the reason kept");
	PWT_EQ_INT(pw_cni_args_parse("IgnoreUnknown=1;garbage", &a, &e), 4, "pair without '=' -> 4");
	PWT_EXPECT(strstr(e.msg, "KEY=VALUE") != NULL, "pair without '=': says KEY=VALUE");
	PWT_EQ_INT(pw_cni_args_parse("=x", &a, &e), 4, "empty key -> 4");
}

/* PODWIRE_SOCKET_LB: the pod's opt-out of socket load balancing. */
static void test_args_socket_lb(void)
{
	struct pw_cni_args a;
	struct pw_cni_err e;

	PWT_EQ_INT(pw_cni_args_parse("K8S_POD_NAME=web", &a, &e), 0, "no PODWIRE_SOCKET_LB parses");
	PWT_EXPECT(!a.no_sock_lb, "no PODWIRE_SOCKET_LB: socket load balancing on");
	PWT_EQ_INT(pw_cni_args_parse("IgnoreUnknown=1;PODWIRE_SOCKET_LB=false", &a, &e), 0,
		   "PODWIRE_SOCKET_LB=false parses");
	PWT_EXPECT(a.no_sock_lb, "PODWIRE_SOCKET_LB=false: the pod opts out");
	PWT_EQ_INT(pw_cni_args_parse("PODWIRE_SOCKET_LB=true", &a, &e), 0, "PODWIRE_SOCKET_LB=true parses");
	PWT_EXPECT(!a.no_sock_lb, "PODWIRE_SOCKET_LB=true: socket load balancing on");
	PWT_EQ_INT(pw_cni_args_parse("PODWIRE_SOCKET_LB=no", &a, &e), 4, "PODWIRE_SOCKET_LB=no -> 4");
	PWT_EXPECT(strstr(e.msg, "PODWIRE_SOCKET_LB") && strstr(e.msg, "true or false"),
		   "PODWIRE_SOCKET_LB error names the key and the values");
	PWT_EQ_INT(pw_cni_args_parse("PODWIRE_SOCKET_LB=", &a, &e), 4, "empty PODWIRE_SOCKET_LB -> 4");
}

/* IP= and MAC= (podman), runtimeConfig "ips" and "mac" (the capabilities). */
static void test_requested(void)
{
	struct pw_cni_args a;
	struct pw_cni_conf c;
	struct pw_cni_err e;
	uint8_t mac[6];

	PWT_EQ_INT(pw_cni_args_parse("IgnoreUnknown=1;IP=10.244.1.77;MAC=02:AA:bb:cc:dd:ee", &a, &e), 0,
		   "podman's IP= and MAC= parse");
	PWT_EXPECT(a.has_ip && a.ip == ((10u << 24) | (244u << 16) | (1u << 8) | 77u), "IP= 10.244.1.77");
	PWT_EXPECT(a.has_mac && a.mac[0] == 0x02 && a.mac[1] == 0xaa && a.mac[5] == 0xee, "MAC= either case");
	PWT_EQ_INT(pw_cni_args_parse("IP=10.244.1.77/24", &a, &e), 4, "IP= with a prefix -> 4");
	PWT_EQ_INT(pw_cni_args_parse("IP=fd00::1", &a, &e), 4, "IP= IPv6 -> 4");
	PWT_EXPECT(strstr(e.msg, "CNI_ARGS IP") != NULL, "IP= error names the key");
	PWT_EQ_INT(pw_cni_args_parse("MAC=01:00:5e:00:00:01", &a, &e), 4, "multicast MAC= -> 4");
	PWT_EXPECT(strstr(e.msg, "unicast") != NULL, "multicast MAC=: says unicast");
	PWT_EQ_INT(pw_cni_args_parse("MAC=00:00:00:00:00:00", &a, &e), 4, "zero MAC= -> 4");
	PWT_EQ_INT(pw_cni_args_parse("MAC=02:aa:bb:cc:dd", &a, &e), 4, "short MAC= -> 4");
	PWT_EQ_INT(pw_cni_args_parse("MAC=02-aa-bb-cc-dd-ee", &a, &e), 4, "MAC= with '-' -> 4");
	PWT_EQ_INT(pw_cni_mac_parse("02:aa:bb:cc:dd:ee", mac), 0, "mac parse");
	PWT_EQ_INT(pw_cni_mac_parse("03:aa:bb:cc:dd:ee", mac), -EADDRNOTAVAIL, "mac parse: multicast");
	PWT_EQ_INT(pw_cni_mac_parse("02:aa:bb:cc:dd:eg", mac), -EINVAL, "mac parse: not hex");

	PWT_EQ_INT(parse("{\"cniVersion\":\"1.0.0\",\"name\":\"n\",\"runtimeConfig\":"
			 "{\"ips\":[\"fd00::7/64\",\"10.244.1.7/24\"],\"mac\":\"c2:11:22:33:44:55\"}}", &c, &e), 0,
		   "runtimeConfig ips and mac parse");
	PWT_EXPECT(c.has_rt_ip && (c.rt_ip & 0xff) == 7, "runtimeConfig.ips: the IPv4 one");
	PWT_EXPECT(c.has_rt_mac && c.rt_mac[0] == 0xc2 && c.rt_mac[5] == 0x55, "runtimeConfig.mac");
	PWT_EQ_INT(c.rt_err.code, 0, "runtimeConfig: no error");
	pw_cni_conf_free(&c);
	PWT_EQ_INT(parse("{\"cniVersion\":\"1.0.0\",\"name\":\"n\",\"runtimeConfig\":"
			 "{\"ips\":[\"10.244.1.7/24\",\"10.244.1.8/24\"]}}", &c, &e), 0,
		   "two IPv4 addresses: the config still parses (DEL and GC must run)");
	PWT_EQ_INT(c.rt_err.code, 7, "two IPv4 addresses: code 7 for ADD");
	PWT_EXPECT(!c.has_rt_ip, "two IPv4 addresses: none taken");
	pw_cni_conf_free(&c);
	parse("{\"cniVersion\":\"1.0.0\",\"name\":\"n\",\"runtimeConfig\":{\"mac\":\"ff:ff:ff:ff:ff:ff\"}}", &c, &e);
	PWT_EQ_INT(c.rt_err.code, 7, "broadcast runtimeConfig.mac: code 7 for ADD");
	PWT_EXPECT(strstr(c.rt_err.msg, "unicast") != NULL, "broadcast runtimeConfig.mac: says unicast");
	pw_cni_conf_free(&c);
	parse("{\"cniVersion\":\"1.0.0\",\"name\":\"n\",\"runtimeConfig\":{\"ips\":[\"10.244.1\"]}}", &c, &e);
	PWT_EQ_INT(c.rt_err.code, 7, "malformed runtimeConfig.ips: code 7 for ADD");
	pw_cni_conf_free(&c);
	parse("{\"cniVersion\":\"1.0.0\",\"name\":\"n\",\"runtimeConfig\":{\"ips\":\"10.244.1.7\"}}", &c, &e);
	PWT_EQ_INT(c.rt_err.code, 7, "runtimeConfig.ips not an array: code 7 for ADD");
	pw_cni_conf_free(&c);
}

/* runtimeConfig "portMappings" (the portMappings capability, hostPort):
 * parsed in full, every bad entry code 7 for ADD only, naming what is wrong. */
static void rt_portmaps_named(const char *mappings, struct pw_cni_conf *c, const char *name)
{
	struct pw_cni_err e;
	char json[1024], n[200];

	snprintf(json, sizeof(json), "{\"cniVersion\":\"1.0.0\",\"name\":\"n\",\"runtimeConfig\":{\"portMappings\":%s}}",
		 mappings);
	snprintf(n, sizeof(n), "%s: the config parses (DEL and GC must run)", name);
	PWT_EQ_INT(parse(json, c, &e), 0, n);
}

static void rt_portmaps(const char *mappings, struct pw_cni_conf *c)
{
	rt_portmaps_named(mappings, c, mappings);
}

static void bad_portmap(const char *mappings, const char *why, const char *name)
{
	struct pw_cni_conf c;
	char n[200];

	rt_portmaps_named(mappings, &c, name);
	snprintf(n, sizeof(n), "%s: code 7 for ADD, no mapping kept", name);
	PWT_CHECK(c.rt_err.code == 7 && c.n_portmaps == 0, n, "code %d, %d mappings", c.rt_err.code, c.n_portmaps);
	snprintf(n, sizeof(n), "%s: the message says %s", name, why);
	PWT_CHECK(strstr(c.rt_err.msg, why) != NULL, n, "msg: %s", c.rt_err.msg);
	pw_cni_conf_free(&c);
}

static void test_portmaps(void)
{
	struct pw_cni_conf c;

	rt_portmaps("[{\"hostPort\":8080,\"containerPort\":80,\"protocol\":\"tcp\",\"hostIP\":\"127.0.0.1\"},"
		    "{\"hostPort\":8080,\"containerPort\":80,\"protocol\":\"TCP\",\"hostIP\":\"192.168.1.11\"},"
		    "{\"hostPort\":8080,\"containerPort\":53,\"protocol\":\"udp\"},"
		    "{\"hostPort\":9090,\"containerPort\":90,\"hostIP\":\"\"}]", &c);
	PWT_EQ_INT(c.rt_err.code, 0, "portMappings: four good mappings, no error");
	PWT_EQ_INT(c.n_portmaps, 4, "portMappings: four mappings");
	PWT_CHECK(c.portmaps[0].host_ip == 0x7f000001 && c.portmaps[0].host_port == 8080 &&
		  c.portmaps[0].container_port == 80 && c.portmaps[0].proto == 6, "portMappings[0]: 127.0.0.1:8080 tcp -> 80",
		  "ip %08x", c.portmaps[0].host_ip);
	PWT_EXPECT(c.portmaps[1].host_ip == 0xc0a8010b && c.portmaps[1].proto == 6,
		   "portMappings[1]: same port on another hostIP, protocol in capitals");
	PWT_EXPECT(c.portmaps[2].host_ip == 0 && c.portmaps[2].proto == 17 && c.portmaps[2].container_port == 53,
		   "portMappings[2]: udp on every address (hostIP absent)");
	PWT_EXPECT(c.portmaps[3].host_ip == 0 && c.portmaps[3].proto == 6,
		   "portMappings[3]: protocol absent = tcp, hostIP \"\" = every address");
	pw_cni_conf_free(&c);
	rt_portmaps("[{\"hostPort\":1,\"containerPort\":65535,\"hostIP\":\"0.0.0.0\"}]", &c);
	PWT_CHECK(c.rt_err.code == 0 && c.n_portmaps == 1 && c.portmaps[0].host_ip == 0 &&
		  c.portmaps[0].container_port == 65535, "portMappings: ports 1 and 65535, hostIP 0.0.0.0 = every address",
		  "code %d", c.rt_err.code);
	pw_cni_conf_free(&c);
	/* containerd (go-cni) sends Go field names: keys match in any case. */
	rt_portmaps("[{\"HostPort\":54323,\"ContainerPort\":8080,\"Protocol\":\"udp\",\"HostIP\":\"192.168.1.11\"}]", &c);
	PWT_CHECK(c.rt_err.code == 0 && c.n_portmaps == 1 && c.portmaps[0].host_port == 54323 &&
		  c.portmaps[0].container_port == 8080 && c.portmaps[0].proto == 17 && c.portmaps[0].host_ip == 0xc0a8010b,
		  "portMappings as containerd sends them (HostPort, ContainerPort, Protocol, HostIP)", "code %d: %s",
		  c.rt_err.code, c.rt_err.msg);
	pw_cni_conf_free(&c);
	rt_portmaps("[]", &c);
	PWT_CHECK(c.rt_err.code == 0 && c.n_portmaps == 0, "portMappings: empty list", "code %d", c.rt_err.code);
	pw_cni_conf_free(&c);

	bad_portmap("[{\"hostPort\":0,\"containerPort\":80}]", "hostPort\" must be a port 1-65535", "hostPort 0");
	bad_portmap("[{\"hostPort\":65536,\"containerPort\":80}]", "hostPort\" must be a port 1-65535", "hostPort 65536");
	bad_portmap("[{\"hostPort\":80.5,\"containerPort\":80}]", "must be a port", "hostPort 80.5");
	bad_portmap("[{\"hostPort\":\"80\",\"containerPort\":80}]", "must be a port", "hostPort a string");
	bad_portmap("[{\"hostPort\":80}]", "containerPort\" must be a port 1-65535 (missing", "containerPort missing");
	bad_portmap("[{\"hostPort\":80,\"containerPort\":-1}]", "containerPort\" must be a port", "containerPort -1");
	bad_portmap("[{\"hostPort\":80,\"containerPort\":80,\"protocol\":\"sctp\"}]", "must be \"tcp\" or \"udp\"",
		    "protocol sctp");
	bad_portmap("[{\"hostPort\":80,\"containerPort\":80,\"protocol\":6}]", "must be \"tcp\" or \"udp\"",
		    "protocol a number");
	bad_portmap("[{\"hostPort\":80,\"containerPort\":80,\"hostIP\":\"1.2.3\"}]", "hostIP\" must be a unicast IPv4",
		    "hostIP malformed");
	bad_portmap("[{\"hostPort\":80,\"containerPort\":80,\"hostIP\":\"::1\"}]", "IPv4-only", "hostIP IPv6");
	bad_portmap("[{\"hostPort\":80,\"containerPort\":80,\"hostIP\":\"224.0.0.1\"}]", "unicast", "hostIP multicast");
	bad_portmap("[{\"hostPort\":80,\"containerPort\":80,\"hostIP\":\"255.255.255.255\"}]", "unicast",
		    "hostIP broadcast");
	bad_portmap("[{\"hostPort\":80,\"containerPort\":80},{\"hostPort\":80,\"containerPort\":81,\"protocol\":\"tcp\","
		    "\"hostIP\":\"127.0.0.1\"}]", "[0]\" and [1] both map tcp hostPort 80",
		    "one pod, the same tcp hostPort on every address and on 127.0.0.1");
	bad_portmap("[\"80:80\"]", "portMappings[0]\" must be an object", "a mapping not an object");
	bad_portmap("{\"hostPort\":80}", "portMappings\" must be an array", "portMappings not an array");
}

int main(void)
{
	test_good();
	test_bad();
	test_versions();
	test_env();
	test_args();
	test_args_socket_lb();
	test_requested();
	test_portmaps();
	return pwt_done();
}
