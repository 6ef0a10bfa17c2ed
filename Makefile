# msgr: build, run, test and benchmark.
#
#   make deps    install what is missing from Debian's packages
#   make         build ngx_http_msgr_module.so and msgrctl into build/
#   make run     local PostgreSQL + nginx with the module, in the foreground
#   make test    the whole test suite (prove -r t/)
#   make bench   the benchmarks in bench/

SHELL      := /bin/bash
NGX_SRC    ?= /usr/share/nginx/src
BUILD      := build
NGX_BUILD  := $(BUILD)/nginx
PG_INC     := $(shell pg_config --includedir 2>/dev/null || echo /usr/include/postgresql)
WARN       := -Wall -Wextra -Werror
CFLAGS     ?= -g -O2
MSGR_CFLAGS = $(CFLAGS) $(WARN) -std=gnu99 -Isrc -I$(PG_INC)

DEB_PKGS   := nginx nginx-dev libpq-dev libjansson-dev libcurl4-openssl-dev \
              libsodium-dev postgresql wrk
SUDO       := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

MODULE_SRCS := ngx_http_msgr_module.c $(wildcard src/*.c src/*.h) config
CTL_SRCS    := src/ctl/msgrctl.c src/msgr_key.c src/msgr_settings.c \
               src/msgr_text.c src/msgr_phone.c
DOC_SRCS    := src/tools/msgr_settings_doc.c src/msgr_settings.c \
               src/msgr_text.c src/msgr_phone.c
UNIT_SRCS   := $(wildcard t/unit/*.c)
UNIT_BINS   := $(patsubst t/unit/%.c,$(BUILD)/unit/%,$(UNIT_SRCS))

.PHONY: all deps module ctl units run test bench docs clean

all: module ctl units $(BUILD)/msgr-settings-doc

deps:
	@missing=""; \
	for p in $(DEB_PKGS); do \
	    dpkg-query -W -f='$${Status}' $$p 2>/dev/null \
	        | grep -q 'install ok installed' || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	    echo "installing:$$missing"; \
	    $(SUDO) apt-get update -qq && \
	    DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq \
	        --no-install-recommends $$missing; \
	fi

# Debian's nginx-dev tree, configured as the stock nginx was, plus us.
# (configured aside and moved into place, so that a build running meanwhile
# never sees a half-made tree)
$(NGX_BUILD)/Makefile: config | $(BUILD)
	tmp=$(NGX_BUILD).$$$$; rm -rf $$tmp && cp -r $(NGX_SRC) $$tmp && \
	(cd $$tmp && source ./conf_flags && \
	    ./configure "$${NGX_CONF_FLAGS[@]}" \
	        --with-cc-opt="$(CFLAGS) -fPIC -Wextra -I$(PG_INC)" \
	        --add-dynamic-module=$(CURDIR) >configure.log) && \
	rm -rf $(NGX_BUILD) && mv $$tmp $(NGX_BUILD)

$(BUILD)/ngx_http_msgr_module.so: $(NGX_BUILD)/Makefile $(MODULE_SRCS)
	$(MAKE) -C $(NGX_BUILD) -f objs/Makefile modules
	cp $(NGX_BUILD)/objs/ngx_http_msgr_module.so $@.tmp && mv -f $@.tmp $@

module: $(BUILD)/ngx_http_msgr_module.so

$(BUILD)/msgrctl: $(CTL_SRCS) src/msgr_key.h src/msgr_settings.h | $(BUILD)
	$(CC) $(MSGR_CFLAGS) -DMSGR_SQL_DIR='"$(CURDIR)/sql"' \
	    -o $@ $(CTL_SRCS) -lpq -lsodium -ljansson

ctl: $(BUILD)/msgrctl

$(BUILD)/unit/%: t/unit/%.c t/unit/lib/msgr_tap.c t/unit/lib/msgr_tap.h \
                 $(wildcard src/msgr_*.c src/msgr_*.h) | $(BUILD)
	@mkdir -p $(BUILD)/unit
	$(CC) $(MSGR_CFLAGS) -It/unit/lib -o $@ $< t/unit/lib/msgr_tap.c \
	    $(wildcard src/msgr_*.c) -ljansson -lsodium

units: $(UNIT_BINS)

$(BUILD)/msgr-settings-doc: $(DOC_SRCS) src/msgr_settings.h | $(BUILD)
	$(CC) $(MSGR_CFLAGS) -o $@ $(DOC_SRCS) -ljansson

# docs/settings.md is generated from the settings table in src/msgr_settings.c
docs: $(BUILD)/msgr-settings-doc
	$(BUILD)/msgr-settings-doc >docs/settings.md.tmp
	mv -f docs/settings.md.tmp docs/settings.md

$(BUILD):
	mkdir -p $@

run: deps all
	scripts/run.sh

test: deps all
	prove -r t/

bench: deps all
	@for b in bench/*.sh; do bash $$b || exit 1; done

clean:
	rm -rf $(BUILD)
