# Axon build. Everything goes to $(OUT); `make V=1` shows full commands.
#
#   make            BPF objects + skeletons, axon-agent, agentctl, axon-cni
#   make deps       install the Debian packages the build and tests need
#   make test       unit, BPF and end-to-end tests (plus the ASan/UBSan unit run)
#   make demo       a local demo node (namespaces as pods, test apiserver, agent);
#                   DEMO_KEEP=1 leaves it running, make demo-stop removes it
#   make bench      side-by-side benchmarks (not part of make test)
#   make image      the OCI image (docker-archive) $(OUT)/image/axon-agent-<version>.tar

OUT	?= .output
CC	?= gcc
CLANG	?= clang
BPFTOOL	?= bpftool
PYTHON	?= /usr/bin/python3
ARCH	:= x86

ifeq ($(V),1)
Q	:=
msg	:= @true
else
Q	:= @
msg	= @printf '  %-8s %s\n' "$(1)" "$(2)";
endif

NL_CFLAGS := -I/usr/include/libnl3
WARN	:= -Wall -Wextra -Werror
CFLAGS	?= -O2 -g
CFLAGS	+= $(WARN) -std=gnu11 -D_GNU_SOURCE -Iinclude -Ilib -Iagent -I$(OUT) $(NL_CFLAGS) $(EXTRA_CFLAGS)
LDFLAGS	+= $(EXTRA_LDFLAGS)
LIBS	:= -lbpf -lelf -lz -lcurl -lcjson -lyaml -lnl-route-3 -lnl-3 -lm

BPF_CFLAGS := -g -O2 -target bpf -D__TARGET_ARCH_$(ARCH) $(WARN) -Wshadow \
	-Wno-unused-function -Iinclude -Ibpf -I$(OUT)

BPF_SRCS	:= $(wildcard bpf/*.bpf.c)
BPF_OBJS	:= $(patsubst bpf/%.bpf.c,$(OUT)/bpf/%.bpf.o,$(BPF_SRCS))
SKELS		:= $(patsubst bpf/%.bpf.c,$(OUT)/%.skel.h,$(BPF_SRCS))
BPF_HDRS	:= $(wildcard bpf/lib/*.h) $(wildcard include/axon/*.h)

LIB_SRCS	:= $(wildcard lib/*.c)
AGENT_SRCS	:= $(shell find agent -name '*.c' ! -name main.c | sort)
CLI_SRCS	:= $(wildcard cli/*.c)
CNI_SRCS	:= $(wildcard cni/*.c)
CNI_OBJS	:= $(patsubst %.c,$(OUT)/%.o,$(CNI_SRCS))
LIB_OBJS	:= $(patsubst %.c,$(OUT)/%.o,$(LIB_SRCS))
AGENT_OBJS	:= $(patsubst %.c,$(OUT)/%.o,$(AGENT_SRCS))
CLI_OBJS	:= $(patsubst %.c,$(OUT)/%.o,$(CLI_SRCS))

UNIT_SRCS	:= $(wildcard tests/unit/test_*.c)
UNIT_BINS	:= $(patsubst tests/unit/%.c,$(OUT)/tests/unit/%,$(UNIT_SRCS))
BPFT_SRCS	:= $(wildcard tests/bpf/test_*.c)
BPFT_BINS	:= $(patsubst tests/bpf/%.c,$(OUT)/tests/bpf/%,$(BPFT_SRCS))
TOOL_SRCS	:= $(wildcard tests/tools/*.c)
TOOL_BINS	:= $(patsubst tests/tools/%.c,$(OUT)/tests/tools/%,$(TOOL_SRCS))
# BPF programs the benchmarks load beside Axon's for comparison (never the agent).
BENCH_BPF_SRCS	:= $(wildcard tests/bench/bpf/*.bpf.c)
BENCH_BPF_OBJS	:= $(patsubst tests/bench/bpf/%.bpf.c,$(OUT)/tests/bench/%.bpf.o,$(BENCH_BPF_SRCS))

HDRS		:= $(shell find include lib agent cli cni tests -name '*.h') $(SKELS)

.SECONDARY:
.PHONY: all deps image FORCE test test-unit test-asan test-bpf test-e2e test-apiserver demo demo-stop bench fuzz clean format

all: $(OUT)/axon-agent $(OUT)/agentctl $(OUT)/axon-cni

# The version the binaries print: rewritten only when it changes, so an
# unchanged tree does not relink.
$(OUT)/version_gen.h: FORCE
	$(Q)mkdir -p $(@D)
	$(Q){ ./scripts/version.sh | { read -r v; read -r c; \
		printf '#define AXON_VERSION "%s"\n#define AXON_GIT_COMMIT "%s"\n' "$$v" "$$c"; }; \
	} > $@.tmp && { cmp -s $@.tmp $@ && rm -f $@.tmp || mv $@.tmp $@; }

$(OUT)/lib/version.o: $(OUT)/version_gen.h

FORCE:

$(OUT)/vmlinux.h:
	$(call msg,GEN,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(BPFTOOL) btf dump file /sys/kernel/btf/vmlinux format c > $@.tmp && mv $@.tmp $@

$(OUT)/bpf/%.bpf.o: bpf/%.bpf.c $(BPF_HDRS) $(OUT)/vmlinux.h
	$(call msg,BPF,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CLANG) $(BPF_CFLAGS) -c $< -o $@

$(OUT)/tests/bench/%.bpf.o: tests/bench/bpf/%.bpf.c $(OUT)/vmlinux.h
	$(call msg,BPF,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CLANG) $(BPF_CFLAGS) -c $< -o $@

$(OUT)/%.skel.h: $(OUT)/bpf/%.bpf.o
	$(call msg,GEN-SKEL,$@)
	$(Q)$(BPFTOOL) gen skeleton $< name $(subst -,_,$*) > $@.tmp && mv $@.tmp $@

$(OUT)/%.o: %.c $(HDRS)
	$(call msg,CC,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) $(CFLAGS) -c $< -o $@

$(OUT)/axon-agent: $(OUT)/agent/main.o $(AGENT_OBJS) $(LIB_OBJS)
	$(call msg,LINK,$@)
	$(Q)$(CC) $(LDFLAGS) $^ $(LIBS) -o $@

# agentctl cleanup detaches legacy tc filters with the agent's own code.
$(OUT)/agentctl: $(CLI_OBJS) $(LIB_OBJS) $(OUT)/agent/datapath/tc_attach.o
	$(call msg,LINK,$@)
	$(Q)$(CC) $(LDFLAGS) $^ $(LIBS) -o $@

# The CNI plugin: one request to the agent per invocation. Static: it is
# copied onto nodes whose libraries are not the build's.
$(OUT)/axon-cni: $(CNI_OBJS)
	$(call msg,LINK,$@)
	$(Q)$(CC) $(LDFLAGS) -static $^ -o $@

# Unit tests link every agent module (not main) and the shared lib.
$(OUT)/tests/unit/%: $(OUT)/tests/unit/%.o $(AGENT_OBJS) $(LIB_OBJS)
	$(call msg,LINK,$@)
	$(Q)$(CC) $(LDFLAGS) $^ $(LIBS) -lcmocka -o $@

$(OUT)/tests/bpf/%: $(OUT)/tests/bpf/%.o $(AGENT_OBJS) $(LIB_OBJS)
	$(call msg,LINK,$@)
	$(Q)$(CC) $(LDFLAGS) $^ $(LIBS) -lcmocka -o $@

$(OUT)/tests/tools/%: $(OUT)/tests/tools/%.o $(AGENT_OBJS) $(LIB_OBJS)
	$(call msg,LINK,$@)
	$(Q)$(CC) $(LDFLAGS) $^ $(LIBS) -o $@

deps:
	$(Q)./scripts/deps.sh

test: deps all $(UNIT_BINS) $(BPFT_BINS) $(TOOL_BINS) $(BENCH_BPF_OBJS)
	$(Q)./tests/run.sh

test-unit: $(UNIT_BINS)
	$(Q)OUT=$(OUT) ./tests/run.sh unit

test-bpf: all $(BPFT_BINS)
	$(Q)OUT=$(OUT) ./tests/run.sh bpf

test-e2e: all $(TOOL_BINS)
	$(Q)./tests/run.sh e2e

test-apiserver:
	$(Q)./tests/run.sh apiserver

# The same unit tests under AddressSanitizer and UndefinedBehaviorSanitizer.
test-asan:
	$(Q)$(MAKE) --no-print-directory OUT=.output-asan \
		EXTRA_CFLAGS="-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all" \
		EXTRA_LDFLAGS="-fsanitize=address,undefined" test-unit

# From scratch: the binaries, their shared libraries, CA certificates.
IMAGE	?= axon/axon-agent
image: deps all
	$(call msg,IMAGE,$(IMAGE):$(shell ./scripts/version.sh | head -n1))
	$(Q)./scripts/image.sh $(OUT) $(IMAGE) $(shell ./scripts/version.sh | head -n1) >/dev/null

demo: deps all $(TOOL_BINS)
	$(Q)./demo/demo.sh

demo-stop:
	$(Q)./demo/demo.sh --stop

bench: deps all $(TOOL_BINS) $(BENCH_BPF_OBJS)
	$(Q)./tests/bench/run.sh

fuzz: deps
	$(Q)./tests/fuzz/run.sh $(FUZZ_SECONDS)

format:
	$(Q)clang-format -i $$(find bpf include lib agent cli cni tests -name '*.[ch]')

clean:
	$(Q)rm -rf .output .output-asan .output-fuzz
