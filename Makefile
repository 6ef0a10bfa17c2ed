# msgr: build, run, test and benchmark.
#
#   make deps    install what is missing from Debian's packages
#   make         build ngx_http_msgr_module.so and msgrctl into build/
#   make run     local PostgreSQL + nginx with the module, in the foreground
#   make test    the whole test suite (prove -r t/)
#   make test-asan  the same suite on a build with ASan and UBSan
#   make fuzz    each fuzz target of t/fuzz/ for FUZZ_SECONDS (60) seconds
#   make bench   the benchmarks in bench/
#
# Only what changed is rebuilt: a second `make` with nothing changed does
# nothing.  Each step prints one line ("build: build/msgrctl"); what the
# compiler and configure say goes to build/build.log, whose end is shown
# when a step fails.  `make V=1` prints every command instead.

SHELL      := /bin/bash
NGX_SRC    ?= /usr/share/nginx/src
PG_INC     := $(shell pg_config --includedir 2>/dev/null || echo /usr/include/postgresql)
WARN       := -Wall -Wextra -Werror
CFLAGS     ?= -g -O2

# --- sanitizers --------------------------------------------------------------
# MSGR_BUILD names the build directory.  build-asan (make test-asan) is the
# same build with gcc's AddressSanitizer (and LeakSanitizer) and
# UndefinedBehaviorSanitizer: every rule below that compiles with
# MSGR_CFLAGS, or nginx's tree through NGX_CC_OPT and NGX_LD_OPT, gets them,
# so the module, msgrctl, msgr-sender and the unit tests are all
# instrumented.  Any UBSan finding aborts (-fno-sanitize-recover).
MSGR_BUILD ?= build
BUILD      := $(MSGR_BUILD)
SAN_FLAGS  := -fsanitize=address,undefined -fno-sanitize-recover=all \
              -fno-omit-frame-pointer
SAN        := $(if $(filter build-asan,$(notdir $(BUILD))),$(SAN_FLAGS))
# the tests run with the build in MSGR_BUILD; the environment the
# instrumented programs need is set by t/lib/Msgr/Test.pm
export MSGR_BUILD
# -----------------------------------------------------------------------------

NGX_BUILD  := $(BUILD)/nginx
MSGR_CFLAGS = $(CFLAGS) $(SAN) $(WARN) -std=gnu99 -Isrc -I$(PG_INC)
NGX_CC_OPT  = $(CFLAGS) $(SAN) -fPIC -Wextra -I$(PG_INC)
NGX_LD_OPT  = $(SAN)

LOG        := $(BUILD)/build.log

# curl and jq: the examples of README.md and docs/ use them
DEB_PKGS   := nginx nginx-dev libpq-dev libjansson-dev libcurl4-openssl-dev \
              libsodium-dev libzxcvbn-dev postgresql wrk curl jq \
              python3-aiosmtpd
SUDO       := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

MODULE_SRCS := ngx_http_msgr_module.c $(wildcard src/*.c)
MODULE_HDRS := $(wildcard src/*.h)
MSGR_HDRS   := $(wildcard src/msgr_*.h)
CTL_SRCS    := src/ctl/msgrctl.c src/msgr_key.c src/msgr_settings.c \
               src/msgr_text.c src/msgr_phone.c src/msgr_routing.c
SENDER_SRCS := $(wildcard src/sender/*.c) src/msgr_routing.c \
               src/msgr_settings.c src/msgr_text.c src/msgr_phone.c \
               src/msgr_buf.c src/msgr_twilio.c
SENDER_HDRS := $(wildcard src/sender/*.h) $(MSGR_HDRS)
DOC_SRCS    := src/tools/msgr_settings_doc.c src/msgr_settings_doc.c \
               src/msgr_settings.c src/msgr_text.c src/msgr_phone.c
# what the shared pure C (src/msgr_*.c) links
MSGR_LIBS   := -ljansson -lsodium -lzxcvbn -lcrypto
UNIT_SRCS   := $(wildcard t/unit/*.c)
UNIT_BINS   := $(patsubst t/unit/%.c,$(BUILD)/unit/%,$(UNIT_SRCS))

# $(call step,WHAT) COMMAND: one line on the terminal, the output in $(LOG)
ifeq ($(V),1)
step =
else
step = @scripts/build-step $(LOG) "$(1)"
# the log holds what the latest make printed
ifeq ($(MAKELEVEL),0)
$(shell mkdir -p $(BUILD) && : >$(LOG))
endif
endif

.PHONY: all deps module ctl sender units run test bench docs clean

all: module ctl sender units $(BUILD)/msgr-settings-doc

deps:
	@installed=" $$(dpkg-query -W -f='$${Package} $${Status}\n' \
	    $(DEB_PKGS) 2>/dev/null | awk '/ install ok installed$$/ { print $$1 }' \
	    | tr '\n' ' ')"; \
	missing=""; \
	for p in $(DEB_PKGS); do \
	    case "$$installed" in *" $$p "*) ;; *) missing="$$missing $$p" ;; esac; \
	done; \
	if [ -n "$$missing" ]; then \
	    scripts/build-step $(LOG) "installing$$missing" \
	        $(SUDO) env DEBIAN_FRONTEND=noninteractive sh -c \
	        'apt-get update -qq && apt-get install -y -qq \
	            --no-install-recommends "$$@"' sh $$missing; \
	fi

# Debian's nginx-dev tree, configured as the stock nginx was, plus us:
# once, and again only when config (the module's sources) changes.
$(NGX_BUILD)/objs/Makefile: config scripts/configure-nginx | $(BUILD)
	$(call step,configuring nginx's tree in $(NGX_BUILD) (once)) \
	    scripts/configure-nginx $(NGX_SRC) $(NGX_BUILD) \
	    "$(NGX_CC_OPT)" $(CURDIR) "$(NGX_LD_OPT)"

# nginx's objs/Makefile rebuilds the objects whose .c changed; a changed
# header rebuilds them all, whether config lists it or not.
$(BUILD)/ngx_http_msgr_module.so: $(NGX_BUILD)/objs/Makefile $(MODULE_SRCS) \
                                  $(MODULE_HDRS)
	$(if $(filter %.h,$?),@find $(NGX_BUILD)/objs/addon -name '*.o' -delete)
	$(call step,$@) $(MAKE) --no-print-directory -C $(NGX_BUILD) \
	    -f objs/Makefile modules
	@cp $(NGX_BUILD)/objs/ngx_http_msgr_module.so $@.tmp && mv -f $@.tmp $@

module: $(BUILD)/ngx_http_msgr_module.so

$(BUILD)/msgrctl: $(CTL_SRCS) $(MSGR_HDRS) | $(BUILD)
	$(call step,$@) $(CC) $(MSGR_CFLAGS) -DMSGR_SQL_DIR='"$(CURDIR)/sql"' \
	    -o $@ $(CTL_SRCS) -lpq -lsodium -ljansson

ctl: $(BUILD)/msgrctl

$(BUILD)/msgr-sender: $(SENDER_SRCS) $(SENDER_HDRS) | $(BUILD)
	$(call step,$@) $(CC) $(MSGR_CFLAGS) -Isrc/sender -o $@ $(SENDER_SRCS) \
	    -lpq -lcurl -lcrypto -ljansson -lsodium -lm

sender: $(BUILD)/msgr-sender

$(BUILD)/unit/%: t/unit/%.c t/unit/lib/msgr_tap.c t/unit/lib/msgr_tap.h \
                 $(wildcard src/msgr_*.c) $(MSGR_HDRS) | $(BUILD)
	@mkdir -p $(BUILD)/unit
	$(call step,$@) $(CC) $(MSGR_CFLAGS) -It/unit/lib -o $@ $< \
	    t/unit/lib/msgr_tap.c $(wildcard src/msgr_*.c) $(MSGR_LIBS)

units: $(UNIT_BINS)

$(BUILD)/msgr-settings-doc: $(DOC_SRCS) $(MSGR_HDRS) | $(BUILD)
	$(call step,$@) $(CC) $(MSGR_CFLAGS) -o $@ $(DOC_SRCS) -ljansson

# docs/settings.md is generated from the settings table in src/msgr_settings.c
# by src/msgr_settings_doc.c, which nothing else but unit tests links
docs: $(BUILD)/msgr-settings-doc
	$(BUILD)/msgr-settings-doc >docs/settings.md.tmp
	mv -f docs/settings.md.tmp docs/settings.md

$(BUILD):
	mkdir -p $@

# what it runs, not the unit tests
run: deps module ctl sender
	@scripts/run.sh

test: deps all fuzz-replay
	prove -r t/

bench: deps all
	@rc=0; for b in bench/*.sh; do bash $$b || rc=1; done; exit $$rc

clean:
	rm -rf $(BUILD) build-asan

# --- sanitizers: make test-asan ----------------------------------------------
# The whole suite again, on build-asan/ (see MSGR_BUILD above): the module
# loaded into Debian's nginx with ASan's runtime preloaded, msgrctl, the
# unit tests and the corpora's replays instrumented; t/lib/Msgr/Test.pm
# fails a test file on any report.  t/make.t checks the build machinery on
# build/, so that is built too.
.PHONY: test-asan
test-asan: deps all
	@$(MAKE) --no-print-directory MSGR_BUILD=build-asan all fuzz-replay
	MSGR_BUILD=build-asan prove -r t/

# --- fuzzing: make fuzz, make fuzz-replay -------------------------------------
# t/fuzz/<target>.c defines LLVMFuzzerTestOneInput() for one entry point
# that takes outside input.  `make fuzz` builds each with clang's libFuzzer
# and ASan+UBSan into build/fuzz/ and runs it for FUZZ_SECONDS, from its
# corpus t/fuzz/corpus/<target>/ (what it finds goes to
# build/fuzz/corpus/<target>/; a crash is written to build/fuzz/ and fails
# make).  `make fuzz-replay` builds each with lib/replay.c instead, with
# the compiler and flags of the rest of the build, and t/fuzz.t replays
# the committed corpora with them in every `make test`.
.PHONY: fuzz fuzz-deps fuzz-replay
FUZZ_SECONDS ?= 60
FUZZ_CC      ?= clang
# clang and its libFuzzer runtime: only `make fuzz` needs them
FUZZ_PKGS    := clang libclang-rt-14-dev
FUZZ_TARGETS := $(patsubst t/fuzz/%.c,%,$(wildcard t/fuzz/*.c))
FUZZ_LIB     := t/fuzz/lib/msgr_fuzz.c t/fuzz/lib/msgr_fuzz.h
FUZZ_FLAGS   := -g -O1 -fno-omit-frame-pointer \
                -fsanitize=fuzzer,address,undefined \
                -fno-sanitize-recover=all -std=gnu99 -Isrc -It/fuzz/lib
REPLAY_BINS  := $(patsubst %,$(BUILD)/fuzz-replay/%,$(FUZZ_TARGETS))
# what src/msgr_*.c link with (the password policy's zxcvbn once it is in)
FUZZ_LIBS    := $(MSGR_LIBS)

# the shared code is compiled once for all the replays
REPLAY_OBJS  := $(patsubst src/%.c,$(BUILD)/fuzz-replay/obj/%.o,\
                    $(wildcard src/msgr_*.c)) \
                $(BUILD)/fuzz-replay/obj/msgr_fuzz.o \
                $(BUILD)/fuzz-replay/obj/replay.o

$(BUILD)/fuzz-replay/obj/%.o: src/%.c $(MSGR_HDRS) | $(BUILD)
	@mkdir -p $(@D)
	$(call step,$@) $(CC) $(MSGR_CFLAGS) -c -o $@ $<

$(BUILD)/fuzz-replay/obj/%.o: t/fuzz/lib/%.c t/fuzz/lib/msgr_fuzz.h \
                              | $(BUILD)
	@mkdir -p $(@D)
	$(call step,$@) $(CC) $(MSGR_CFLAGS) -It/fuzz/lib -c -o $@ $<

# named here, not only in the pattern rule, so that make keeps them
$(REPLAY_BINS): $(REPLAY_OBJS)

$(BUILD)/fuzz-replay/%: t/fuzz/%.c t/fuzz/lib/msgr_fuzz.h $(MSGR_HDRS)
	$(call step,$@) $(CC) $(MSGR_CFLAGS) -It/fuzz/lib -o $@ $< \
	    $(REPLAY_OBJS) $(FUZZ_LIBS)

fuzz-replay: $(REPLAY_BINS)

$(BUILD)/fuzz/%: t/fuzz/%.c $(FUZZ_LIB) $(wildcard src/msgr_*.c) \
                 $(MSGR_HDRS) | $(BUILD)
	@mkdir -p $(BUILD)/fuzz
	$(call step,$@) $(FUZZ_CC) $(FUZZ_FLAGS) -o $@ $< \
	    t/fuzz/lib/msgr_fuzz.c $(wildcard src/msgr_*.c) $(FUZZ_LIBS)

fuzz-deps:
	@$(MAKE) --no-print-directory deps DEB_PKGS="$(FUZZ_PKGS)"

fuzz: fuzz-deps $(patsubst %,$(BUILD)/fuzz/%,$(FUZZ_TARGETS))
	@for t in $(FUZZ_TARGETS); do \
	    mkdir -p $(BUILD)/fuzz/corpus/$$t t/fuzz/corpus/$$t || exit 1; \
	    echo "fuzz: $$t for $(FUZZ_SECONDS) s"; \
	    ASAN_OPTIONS=detect_leaks=1 $(BUILD)/fuzz/$$t \
	        -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 \
	        -artifact_prefix=$(BUILD)/fuzz/$$t- \
	        $(BUILD)/fuzz/corpus/$$t t/fuzz/corpus/$$t \
	        2>$(BUILD)/fuzz/$$t.log; rc=$$?; \
	    grep -E '^#[0-9]+ +DONE|^stat::number_of_executed_units' \
	        $(BUILD)/fuzz/$$t.log; \
	    if [ $$rc != 0 ]; then \
	        tail -n 60 $(BUILD)/fuzz/$$t.log; \
	        echo "fuzz: $$t failed; the input is in $(BUILD)/fuzz/$$t-*"; \
	        echo "fuzz: add it to t/fuzz/corpus/$$t/ with the fix"; \
	        exit 1; \
	    fi; \
	done
