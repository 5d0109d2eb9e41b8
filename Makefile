# podwire: top-level build. `make` builds everything into build/.
# See README.md for the two commands that matter: `make demo` and `make test`.

BUILD    ?= build
PREFIX   ?= /usr/local
DESTDIR  ?=
CNI_BIN_DIR ?= /opt/cni/bin

CC       ?= gcc
CLANG    ?= clang
BPFTOOL  ?= bpftool
PKGS     := libbpf libnl-3.0 libnl-route-3.0 libcjson libcurl yaml-0.1
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lelf -lz -lpthread

CFLAGS   ?= -O2 -g
CFLAGS   += -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -Iinclude -Iuserspace/lib -I$(BUILD)/bpf $(PKG_CFLAGS)
LDLIBS   += $(PKG_LIBS)

ARCH     := $(shell uname -m | sed 's/x86_64/x86/;s/aarch64/arm64/')
MULTIARCH := $(shell $(CC) -print-multiarch 2>/dev/null)
BPF_CFLAGS := -g -O2 -target bpf -D__TARGET_ARCH_$(ARCH) -Wall -Werror -Iinclude -Ibpf \
	-I/usr/include/$(MULTIARCH)

BPF_SRCS  := $(wildcard bpf/*.bpf.c)
BPF_OBJS  := $(patsubst bpf/%.bpf.c,$(BUILD)/bpf/%.bpf.o,$(BPF_SRCS))
BPF_SKELS := $(patsubst bpf/%.bpf.c,$(BUILD)/bpf/%.skel.h,$(BPF_SRCS))
BPF_HDRS  := $(wildcard bpf/lib/*.h) $(wildcard include/podwire/*.h)

LIB_SRCS  := $(wildcard userspace/lib/*.c)
LIB_OBJS  := $(patsubst %.c,$(BUILD)/%.o,$(LIB_SRCS))
LIB       := $(BUILD)/libpodwire.a
HDRS      := $(wildcard userspace/lib/*.h userspace/agent/*.h userspace/ctl/*.h cni/*.h include/podwire/*.h)

AGENT_OBJS := $(patsubst %.c,$(BUILD)/%.o,$(wildcard userspace/agent/*.c))
CTL_OBJS   := $(patsubst %.c,$(BUILD)/%.o,$(wildcard userspace/ctl/*.c))
CNI_OBJS   := $(patsubst %.c,$(BUILD)/%.o,$(wildcard cni/*.c))

UNIT_TESTS := $(patsubst test/unit/%.c,$(BUILD)/test/unit/%,$(wildcard test/unit/test_*.c))
BPF_TESTS  := $(patsubst test/bpf/%.c,$(BUILD)/test/bpf/%,$(wildcard test/bpf/test_*.c))

BENCH_TOOLS := $(BUILD)/test/bench/pwperf $(BUILD)/test/bench/bpf_cost $(BUILD)/test/bench/svc_apply
BENCH_TOOLS += $(BUILD)/test/bench/k8s_svc $(BUILD)/test/bench/k8s_build
BENCH_TOOLS += $(BUILD)/test/bench/policy_cost $(BUILD)/test/bench/bpf_stats_on

BINS := $(if $(AGENT_OBJS),$(BUILD)/podwired) $(if $(CTL_OBJS),$(BUILD)/podwirectl) \
	$(if $(CNI_OBJS),$(BUILD)/podwire)

.PHONY: all deps test test-unit test-bpf test-e2e demo demo-down bench vmtest fuzz install clean
.DELETE_ON_ERROR:
# Objects of test and bench programs are intermediates of chained rules:
# keep them, so a changed skeleton or header rebuilds exactly what uses it.
.SECONDARY:

all: $(BPF_OBJS) $(BPF_SKELS) $(BINS) $(UNIT_TESTS) $(BPF_TESTS) $(BENCH_TOOLS) $(BUILD)/test/k8s/kwatch

deps:
	@bash scripts/deps.sh

$(BUILD)/bpf/%.bpf.o: bpf/%.bpf.c $(BPF_HDRS)
	@mkdir -p $(@D)
	$(CLANG) $(BPF_CFLAGS) -c $< -o $@

$(BUILD)/bpf/%.skel.h: $(BUILD)/bpf/%.bpf.o
	$(BPFTOOL) gen skeleton $< name $(subst -,_,$*)_bpf > $@

# Userspace objects may include any skeleton: build them all first.
$(BUILD)/%.o: %.c $(HDRS) $(BPF_SKELS)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -c $< -o $@

$(LIB): $(LIB_OBJS)
	@mkdir -p $(@D)
	$(AR) rcs $@ $^

$(BUILD)/podwired: $(AGENT_OBJS) $(LIB)
	$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS) -lmicrohttpd
$(BUILD)/podwirectl: $(CTL_OBJS) $(LIB)
	$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS)
$(BUILD)/podwire: $(CNI_OBJS) $(LIB)
	$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS)

# Each test/unit/test_X.c and test/bpf/test_X.c is one program; test/lib/*.c is shared by them.
TESTLIB_OBJS := $(patsubst %.c,$(BUILD)/%.o,$(wildcard test/lib/*.c))
$(BUILD)/test/%.o: CFLAGS += -Itest/lib
$(BUILD)/test/unit/%: $(BUILD)/test/unit/%.o $(TESTLIB_OBJS) $(LIB)
	$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS)
$(BUILD)/test/bpf/%: $(BUILD)/test/bpf/%.o $(TESTLIB_OBJS) $(LIB)
	$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS)
# Test-only BPF programs (test/bpf/*.bpf.c, e.g. the tunnel metadata
# wrapper) and their skeletons, for the BPF tests that include them.
TEST_BPF_SKELS := $(patsubst test/bpf/%.bpf.c,$(BUILD)/test/bpf/%.skel.h,$(wildcard test/bpf/*.bpf.c))
$(BUILD)/test/bpf/%.bpf.o: test/bpf/%.bpf.c $(BPF_HDRS)
	@mkdir -p $(@D)
	$(CLANG) $(BPF_CFLAGS) -c $< -o $@
$(BUILD)/test/bpf/%.skel.h: $(BUILD)/test/bpf/%.bpf.o
	$(BPFTOOL) gen skeleton $< name $(subst -,_,$*)_bpf > $@
# Explicit (not pattern) prerequisites: a pattern rule without a recipe would
# not add them to the generic object rule.
$(addsuffix .o,$(BPF_TESTS)): CFLAGS += -I$(BUILD)/test/bpf
$(addsuffix .o,$(BPF_TESTS)): $(TEST_BPF_SKELS)
# The CNI config parser lives with the plugin; its unit test links it directly.
$(BUILD)/test/unit/test_cniconf: $(BUILD)/test/unit/test_cniconf.o $(BUILD)/cni/conf.o $(TESTLIB_OBJS) $(LIB)
	$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS)


# One informer printing its handler calls, for the Kubernetes API client's tests.
$(BUILD)/test/k8s/kwatch: $(BUILD)/test/k8s/kwatch.o $(LIB)
	$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/test/bench/svc_apply: $(BUILD)/test/bench/svc_apply.o $(LIB)
	$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/test/bench/k8s_build: $(BUILD)/test/bench/k8s_build.o $(LIB)
	$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS)

# Kubernetes service benchmarks (test/bench/k8s.sh): API writes, datapath map reads.
$(BUILD)/test/bench/k8s_svc: $(BUILD)/test/bench/k8s_svc.o
	$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/test/bench/pwperf: test/bench/pwperf.c
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -o $@ $<
# BPF run-time statistics on while it runs (BPF_ENABLE_STATS, no sysctl).
$(BUILD)/test/bench/bpf_stats_on: test/bench/bpf_stats_on.c
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -o $@ $< $(LDLIBS)
# BPF_PROG_TEST_RUN cost of pod_ingress, its counters and events (reuses the BPF tests' sandbox).
$(BUILD)/test/bench/bpf_cost: test/bench/bpf_cost.c test/bpf/pwt_bpf.h $(BPF_SKELS)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -Itest/bpf -Itest/lib -o $@ $< $(LDLIBS)

# NetworkPolicy: apply times (userspace/lib/policy.c) and per-packet cost (docs/policy.md).
$(BUILD)/test/bench/policy_cost: test/bench/policy_cost.c test/bpf/pwt_bpf.h $(BPF_SKELS) $(LIB)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -Itest/bpf -Itest/lib -o $@ $< $(LIB) $(LDLIBS)

# The README's test command. Runs unit, BPF packet and end-to-end suites and
# ends with one line "N passed, N failed". The real-cluster tests need the
# Kubernetes components (k8s-deps: built once per machine, cached outside the tree).
test: deps k8s-deps
	@$(MAKE) --no-print-directory all
	@bash test/run.sh $(TEST_SUITES)

test-unit test-bpf test-e2e: all
	@bash test/run.sh $(patsubst test-%,%,$@)

demo: deps
	@$(MAKE) --no-print-directory all
	@bash scripts/demo.sh up

demo-down:
	@bash scripts/demo.sh down

# The real-Kubernetes demo (scripts/k8s/demo.sh): a cluster of three kubelet
# nodes with podwire as CNI and kube-proxy replacement. KEEP=1 keeps it running.
.PHONY: demo-k8s demo-k8s-down
demo-k8s: deps k8s-deps
	@$(MAKE) --no-print-directory all
	@bash scripts/k8s/demo.sh up

demo-k8s-down:
	@bash scripts/k8s/demo.sh down

bench: deps
	@$(MAKE) --no-print-directory all
	@bash test/bench/run.sh
	@[ "$${BENCH_K8S:-1}" = 0 ] || $(MAKE) --no-print-directory bench-k8s

# The Kubernetes benchmarks alone (test/bench/k8s.sh): real clusters, podwire
# beside Debian's bridge plugin + kube-proxy. BENCH_K8S=0 leaves them out of bench.
.PHONY: bench-k8s
bench-k8s: deps k8s-deps
	@$(MAKE) --no-print-directory all
	@bash test/bench/k8s.sh

vmtest: deps
	@$(MAKE) --no-print-directory all
	@BUILD=$(BUILD) bash vmtest/run.sh $(KERNELS)

# libFuzzer harnesses for every parser of outside input (test/fuzz/), each
# run for FUZZ_SECONDS from its corpus. Not part of `make test`.
FUZZ_SECONDS ?= 30
FUZZ_CFLAGS := -g -O1 -fsanitize=fuzzer,address,undefined -D_GNU_SOURCE -Iinclude -Iuserspace/lib -Icni \
	-I/usr/include/cjson
FUZZ_LIB := userspace/lib/config.c userspace/lib/cidr.c userspace/lib/file.c userspace/lib/log.c userspace/lib/k8sname.c \
	userspace/lib/policy.c userspace/lib/policy_inc.c userspace/lib/jsonparse.c
$(BUILD)/fuzz/fuzz_config: test/fuzz/fuzz_config.c $(FUZZ_LIB) $(HDRS)
	@mkdir -p $(@D)
	$(CLANG) $(FUZZ_CFLAGS) $< $(FUZZ_LIB) -lcjson -o $@
$(BUILD)/fuzz/fuzz_cniconf: test/fuzz/fuzz_cniconf.c cni/conf.c $(FUZZ_LIB) $(HDRS)
	@mkdir -p $(@D)
	$(CLANG) $(FUZZ_CFLAGS) $< cni/conf.c $(FUZZ_LIB) -lcjson -lm -o $@
$(BUILD)/fuzz/fuzz_kube_watch: test/fuzz/fuzz_kube_watch.c userspace/lib/kube_watch.c $(HDRS)
	@mkdir -p $(@D)
	$(CLANG) $(FUZZ_CFLAGS) $< userspace/lib/kube_watch.c -lcjson -o $@
$(BUILD)/fuzz/fuzz_kubeconfig: test/fuzz/fuzz_kubeconfig.c userspace/lib/kubeconfig.c $(FUZZ_LIB) $(HDRS)
	@mkdir -p $(@D)
	$(CLANG) $(FUZZ_CFLAGS) $< userspace/lib/kubeconfig.c $(FUZZ_LIB) -lcjson -lyaml -o $@

$(BUILD)/fuzz/fuzz_k8s_model: test/fuzz/fuzz_k8s_model.c userspace/lib/k8s_model.c userspace/lib/k8s_policy.c $(FUZZ_LIB) $(HDRS)
	@mkdir -p $(@D)
	$(CLANG) $(FUZZ_CFLAGS) $< userspace/lib/k8s_model.c userspace/lib/k8s_policy.c $(FUZZ_LIB) -lcjson -o $@

fuzz: deps $(BUILD)/fuzz/fuzz_config $(BUILD)/fuzz/fuzz_cniconf $(BUILD)/fuzz/fuzz_kube_watch $(BUILD)/fuzz/fuzz_kubeconfig $(BUILD)/fuzz/fuzz_k8s_model
	@mkdir -p $(BUILD)/fuzz/corpus/config $(BUILD)/fuzz/corpus/cniconf $(BUILD)/fuzz/corpus/kube_watch $(BUILD)/fuzz/corpus/kubeconfig $(BUILD)/fuzz/corpus/k8s_model
	$(BUILD)/fuzz/fuzz_config -max_total_time=$(FUZZ_SECONDS) $(BUILD)/fuzz/corpus/config test/fuzz/corpus/config
	$(BUILD)/fuzz/fuzz_cniconf -max_total_time=$(FUZZ_SECONDS) $(BUILD)/fuzz/corpus/cniconf test/fuzz/corpus/cniconf
	$(BUILD)/fuzz/fuzz_kube_watch -max_total_time=$(FUZZ_SECONDS) $(BUILD)/fuzz/corpus/kube_watch test/fuzz/corpus/kube_watch
	$(BUILD)/fuzz/fuzz_kubeconfig -max_total_time=$(FUZZ_SECONDS) $(BUILD)/fuzz/corpus/kubeconfig test/fuzz/corpus/kubeconfig
	$(BUILD)/fuzz/fuzz_k8s_model -max_total_time=$(FUZZ_SECONDS) $(BUILD)/fuzz/corpus/k8s_model test/fuzz/corpus/k8s_model

install: all
	install -d $(DESTDIR)$(CNI_BIN_DIR) $(DESTDIR)$(PREFIX)/sbin
	install -m 0755 $(BUILD)/podwire $(DESTDIR)$(CNI_BIN_DIR)/podwire
	install -m 0755 $(BUILD)/podwired $(BUILD)/podwirectl $(DESTDIR)$(PREFIX)/sbin/

clean:
	rm -rf $(BUILD)

# The real-Kubernetes test cluster's parts: Kubernetes v1.37.2 binaries, etcd,
# containerd, runc and images, cached in PW_K8S_CACHE outside the tree
# (scripts/k8s-deps.sh, docs/kubernetes.md). Not part of `make deps`: a fresh
# machine spends about 20 minutes building them, a warm one a few seconds checking.
.PHONY: k8s-deps test-k8s-images
k8s-deps: deps
	@bash scripts/k8s-deps.sh

# Kubernetes' own [sig-network] conformance specs on a podwire cluster (also part of `make test`).
.PHONY: test-conformance
test-conformance: all k8s-deps
	@bash test/run.sh e2e:test_k8s_conformance

# The images import into a containerd and work as the cluster and e2e specs use them.
test-k8s-images: k8s-deps
	@bash test/k8s/test_images.sh
