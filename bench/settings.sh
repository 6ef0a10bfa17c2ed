#!/usr/bin/env bash
#
# Settings reads against a stock nginx answering the same body with
# "return 200", and PATCH round trips.  Run from the repository root after
# "make" (make bench does both).  Starts its own PostgreSQL and nginx
# (bench/lib/settings_env.pl) and its own stock nginx, on loopback ports,
# and stops them all on exit.
#
#   settings GET: N req/s (non-2xx 0)
#   stock nginx return 200: N req/s
#   ratio: R (target >= 0.80)
#   settings PATCH: N req/s (non-2xx 0)
#
# Exits non-zero when the ratio is under the target or a GET was not 2xx.

set -euo pipefail

TARGET=0.80
NGINX=${MSGR_NGINX:-/usr/sbin/nginx}
DURATION=${BENCH_DURATION:-10s}
PATCH_DURATION=${BENCH_PATCH_DURATION:-5s}

cd "$(dirname "$0")/.."
. bench/lib/env.sh

for tool in wrk curl perl "$NGINX"; do
    command -v "$tool" >/dev/null || { echo "bench: $tool not found" >&2; exit 1; }
done

bench_begin settings
STOCK_PID=

# what this benchmark started itself
bench_stop_own() {
    if [ -n "$STOCK_PID" ] && kill -0 "$STOCK_PID" 2>/dev/null; then
        kill -QUIT "$STOCK_PID"
        for _ in $(seq 100); do
            kill -0 "$STOCK_PID" 2>/dev/null || break
            sleep 0.1
        done
        kill -0 "$STOCK_PID" 2>/dev/null && kill -KILL "$STOCK_PID"
    fi
}

# --- the msgr environment -------------------------------------------------

bench_env_start bench/lib/settings_env.pl
read -r PORT KEY <<<"$ENV_LINE"
if [ -z "${KEY:-}" ]; then
    echo "bench: the msgr environment printed \"$ENV_LINE\"" >&2
    exit 1
fi

URL="http://127.0.0.1:$PORT/msgr/v1/settings"
AUTH="Authorization: Bearer $KEY"

BODY=$(curl -sS --fail -H "$AUTH" "$URL")
case "$BODY" in
    *\$*|*\'*|*\\*)
        echo "bench: the settings body has characters a return string" \
             "cannot hold as they are" >&2
        exit 1 ;;
esac

# --- the stock nginx ------------------------------------------------------

STOCK_PORT=$(perl -MIO::Socket::INET -e \
    'print IO::Socket::INET->new(LocalAddr => "127.0.0.1", LocalPort => 0,
                                 Listen => 1)->sockport')
mkdir -p "$TMP/stock"
chmod 755 "$TMP/stock"
cat >"$TMP/stock/nginx.conf" <<CONF
daemon on;
master_process on;
worker_processes 2;
pid $TMP/stock/nginx.pid;
error_log $TMP/stock/error.log;

events {
    worker_connections 1024;
}

http {
    access_log off;
    client_body_temp_path $TMP/stock/client_body_temp;
    proxy_temp_path $TMP/stock/proxy_temp;
    fastcgi_temp_path $TMP/stock/fastcgi_temp;
    uwsgi_temp_path $TMP/stock/uwsgi_temp;
    scgi_temp_path $TMP/stock/scgi_temp;

    server {
        listen 127.0.0.1:$STOCK_PORT;

        location / {
            default_type application/json;
            return 200 '$BODY';
        }
    }
}
CONF
"$NGINX" -p "$TMP/stock/" -c "$TMP/stock/nginx.conf"
STOCK_PID=$(cat "$TMP/stock/nginx.pid")
STOCK_URL="http://127.0.0.1:$STOCK_PORT/msgr/v1/settings"

for _ in $(seq 50); do
    curl -s -o /dev/null "$STOCK_URL" && break
    sleep 0.1
done
if [ "$(curl -sS -H "$AUTH" "$STOCK_URL")" != "$BODY" ]; then
    echo "bench: the stock nginx does not answer the same body" >&2
    exit 1
fi

# --- wrk ------------------------------------------------------------------

# run_wrk NAME ARGS...: runs wrk, keeps its output in $TMP/NAME.out
run_wrk() {
    local name=$1
    shift
    wrk "$@" >"$TMP/$name.out" 2>&1 || {
        echo "bench: wrk failed:" >&2
        cat "$TMP/$name.out" >&2
        exit 1
    }
}

rate() {
    awk '/^Requests\/sec:/ { print $2; found = 1 } END { if (!found) print 0 }' \
        "$TMP/$1.out"
}

non2xx() {
    awk '/Non-2xx or 3xx responses:/ { n = $NF } END { print n + 0 }' \
        "$TMP/$1.out"
}

socket_errors() {
    sed -n 's/^ *Socket errors: *//p' "$TMP/$1.out"
}

# warm both up
run_wrk warm-settings -t2 -c50 -d2s -H "$AUTH" "$URL"
run_wrk warm-stock -t2 -c50 -d2s -H "$AUTH" "$STOCK_URL"

run_wrk settings -t2 -c50 -d"$DURATION" -H "$AUTH" "$URL"
run_wrk stock -t2 -c50 -d"$DURATION" -H "$AUTH" "$STOCK_URL"

cat >"$TMP/patch.lua" <<'LUA'
-- PATCH /msgr/v1/settings/sending with a pin_threshold that changes
-- every request
local n = 0

request = function()
    n = n + 1
    wrk.headers["Content-Type"] = "application/merge-patch+json"
    return wrk.format("PATCH", "/msgr/v1/settings/sending", nil,
                      '{"pin_threshold":' .. (100 + n % 900) .. '}')
end
LUA
run_wrk patch -t1 -c4 -d"$PATCH_DURATION" -s "$TMP/patch.lua" -H "$AUTH" \
    "http://127.0.0.1:$PORT"

# --- the figures ----------------------------------------------------------

GET_RATE=$(rate settings)
GET_BAD=$(non2xx settings)
STOCK_RATE=$(rate stock)
STOCK_BAD=$(non2xx stock)
PATCH_RATE=$(rate patch)
PATCH_BAD=$(non2xx patch)
RATIO=$(awk -v a="$GET_RATE" -v b="$STOCK_RATE" \
    'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }')

printf 'settings GET: %.0f req/s (non-2xx %d)\n' "$GET_RATE" "$GET_BAD"
printf 'stock nginx return 200: %.0f req/s (non-2xx %d)\n' \
    "$STOCK_RATE" "$STOCK_BAD"
printf 'ratio: %s (target >= %s)\n' "$RATIO" "$TARGET"
printf 'settings PATCH: %.0f req/s (non-2xx %d)\n' "$PATCH_RATE" "$PATCH_BAD"
for run in settings stock patch; do
    errs=$(socket_errors "$run")
    [ -n "$errs" ] && echo "$run socket errors: $errs"
done

FAIL=0
if awk -v r="$RATIO" -v t="$TARGET" 'BEGIN { exit !(r < t) }'; then
    echo "bench: FAIL: ratio $RATIO is under $TARGET" >&2
    FAIL=1
fi
if [ "$GET_BAD" -ne 0 ]; then
    echo "bench: FAIL: $GET_BAD settings GETs were not 2xx" >&2
    FAIL=1
fi
exit "$FAIL"
