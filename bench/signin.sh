#!/usr/bin/env bash
#
# Sign-ins (Argon2id in nginx's thread pool) and what they do to everyone
# else: the p99 latency of GET /v1/settings alone, then while sign-ins run
# at the same time.  Run from the repository root after "make" (make bench
# does both).  Starts its own PostgreSQL and nginx (bench/lib/settings_env.pl)
# on loopback ports, and stops them on exit.
#
#   sign-ins: N/s (non-2xx 0)
#   settings GET p99 alone: X ms
#   settings GET p99 during sign-ins: Y ms
#   ratio: R (target <= 1.5)
#
# Exits non-zero when the ratio is over the target or an answer was not 2xx.

set -euo pipefail

TARGET=1.5
DURATION=${BENCH_DURATION:-10s}
# sign-ins at once: each holds 64 MiB while Argon2id runs
SIGNIN_CONNS=${BENCH_SIGNIN_CONNS:-2}

cd "$(dirname "$0")/.."

for tool in wrk curl jq perl; do
    command -v "$tool" >/dev/null || { echo "bench: $tool not found" >&2; exit 1; }
done

. bench/lib/env.sh

bench_begin signin
bench_env_start bench/lib/settings_env.pl
read -r PORT KEY <<<"$ENV_LINE"

BASE="http://127.0.0.1:$PORT/msgr/v1"
AUTH="Authorization: Bearer $KEY"
PASSWORD='bench password 1'

# --- a user with a password -------------------------------------------------

SCHOOL=$(curl -sS --fail -H "$AUTH" "$BASE/school" | jq -r .id)
TOKEN=$(curl -sS --fail -H "$AUTH" -H 'Content-Type: application/json' \
    -d '{"email":"bench@example.org","name":"Bench User","role":"staff"}' \
    "$BASE/users" | jq -r .invitation_token)
curl -sS --fail -o /dev/null -H 'Content-Type: application/json' \
    -d "{\"password\":\"$PASSWORD\"}" "$BASE/password-tokens/$TOKEN"

cat >"$TMP/signin.lua" <<LUA
wrk.method = "POST"
wrk.path = "/msgr/v1/sessions"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"school":$SCHOOL,"email":"bench@example.org",'
           .. '"password":"$PASSWORD"}'
LUA

# --- settings alone, then with sign-ins ----------------------------------------

run_wrk warm -t2 -c20 -d2s -H "$AUTH" "$BASE/settings"
run_wrk alone -t1 -c20 -d"$DURATION" --latency -H "$AUTH" "$BASE/settings"

run_wrk signin -t1 -c"$SIGNIN_CONNS" -d"$DURATION" --timeout 10s \
    -s "$TMP/signin.lua" "http://127.0.0.1:$PORT" &
SIGNIN_PID=$!
run_wrk during -t1 -c20 -d"$DURATION" --latency -H "$AUTH" "$BASE/settings"
wait "$SIGNIN_PID"

# --- the figures ----------------------------------------------------------

ALONE=$(p99 alone)
DURING=$(p99 during)
RATIO=$(awk -v a="$DURING" -v b="$ALONE" \
    'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }')
BAD=$(( $(non2xx signin) + $(non2xx alone) + $(non2xx during) ))

printf 'sign-ins: %.1f/s (non-2xx %d)\n' "$(rate signin)" "$(non2xx signin)"
printf 'settings GET p99 alone: %.2f ms (%.0f req/s)\n' "$ALONE" "$(rate alone)"
printf 'settings GET p99 during sign-ins: %.2f ms (%.0f req/s)\n' \
    "$DURING" "$(rate during)"
printf 'ratio: %s (target <= %s)\n' "$RATIO" "$TARGET"
for run in signin alone during; do
    errs=$(socket_errors "$run")
    [ -n "$errs" ] && echo "$run socket errors: $errs"
done

if [ "$BAD" != 0 ]; then
    echo "bench: $BAD answers were not 2xx" >&2
    exit 1
fi
awk -v r="$RATIO" -v t="$TARGET" 'BEGIN { exit !(r <= t) }' || {
    echo "bench: the p99 ratio $RATIO is over the target $TARGET" >&2
    exit 1
}
