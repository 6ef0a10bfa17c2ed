# msgr: build, run, test and benchmark.
#
#   make deps    install what is missing from Debian's packages
#   make         build ngx_http_msgr_module.so and msgrctl into build/
#   make run     local PostgreSQL + nginx with the module, in the foreground
#   make test    the whole test suite (prove -r t/)
#   make bench   the benchmarks in bench/
#
# Only what changed is rebuilt: a second `make` with nothing changed does
# nothing.  Each step prints one line ("build: build/msgrctl"); what the
# compiler and configure say goes to build/build.log, whose end is shown
# when a step fails.  `make V=1` prints every command instead.

SHELL      := /bin/bash
NGX_SRC    ?= /usr/share/nginx/src
BUILD      := build
NGX_BUILD  := $(BUILD)/nginx
PG_INC     := $(shell pg_config --includedir 2>/dev/null || echo /usr/include/postgresql)
WARN       := -Wall -Wextra -Werror
CFLAGS     ?= -g -O2
MSGR_CFLAGS = $(CFLAGS) $(WARN) -std=gnu99 -Isrc -I$(PG_INC)

LOG        := $(BUILD)/build.log

# curl and jq: the examples of README.md and docs/ use them
DEB_PKGS   := nginx nginx-dev libpq-dev libjansson-dev libcurl4-openssl-dev \
              libsodium-dev postgresql wrk curl jq python3-aiosmtpd
SUDO       := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

MODULE_SRCS := ngx_http_msgr_module.c $(wildcard src/*.c)
MODULE_HDRS := $(wildcard src/*.h)
MSGR_HDRS   := $(wildcard src/msgr_*.h)
CTL_SRCS    := src/ctl/msgrctl.c src/msgr_key.c src/msgr_settings.c \
               src/msgr_text.c src/msgr_phone.c src/msgr_routing.c
SENDER_SRCS := $(wildcard src/sender/*.c) src/msgr_routing.c \
               src/msgr_settings.c src/msgr_text.c src/msgr_phone.c \
               src/msgr_buf.c
SENDER_HDRS := $(wildcard src/sender/*.h) $(MSGR_HDRS)
DOC_SRCS    := src/tools/msgr_settings_doc.c src/msgr_settings_doc.c \
               src/msgr_settings.c src/msgr_text.c src/msgr_phone.c
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
	    "$(CFLAGS) -fPIC -Wextra -I$(PG_INC)" $(CURDIR)

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
	    t/unit/lib/msgr_tap.c $(wildcard src/msgr_*.c) -ljansson -lsodium

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

test: deps all
	prove -r t/

bench: deps all
	@rc=0; for b in bench/*.sh; do bash $$b || rc=1; done; exit $$rc

clean:
	rm -rf $(BUILD)
