#!/usr/bin/env bash
#
# msgr-sender draining 100,000 SMS deliveries to the fastest possible
# provider: stock nginx answering every POST to Twilio's Messages.json
# path 201 with a Twilio-shaped body from memory (bench/lib/sender_env.pl,
# with its own PostgreSQL, on loopback).  Run from the repository root
# after "make" (make bench does both).
#
#   outbox: N SMS deliveries, queued
#   drain: S s, N deliveries/s end to end (claim, request, completion)
#   provider limit (wrk POSTing to the same nginx): N requests/s
#   sender / provider: R
#   sender memory: start MB, max MB, end MB (end / start R)
#
# Exits non-zero when the drain is under 5,000 deliveries a second, when
# a delivery does not end sent, or when the sender's memory at the end is
# more than 1.5 times what it was once running (memory not flat).

set -euo pipefail

N=${BENCH_DELIVERIES:-100000}
RATE_LIMIT=5000
MEMORY_LIMIT=1.5

cd "$(dirname "$0")/.."
. bench/lib/env.sh

for tool in perl psql wrk; do
    command -v "$tool" >/dev/null \
        || { echo "bench: $tool not found (make deps)" >&2; exit 1; }
done
[ -x build/msgr-sender ] || { echo "bench: make sender first" >&2; exit 1; }

bench_begin sender

SENDER_PID=
bench_stop_own() {
    [ -z "$SENDER_PID" ] || kill "$SENDER_PID" 2>/dev/null || true
}

bench_env_start bench/lib/sender_env.pl
read -r PORT PGPORT SCHOOL <<<"$ENV_LINE"

PGCONN="host=127.0.0.1 port=$PGPORT dbname=msgr user=msgr"
psql_() { psql -XAtq -v ON_ERROR_STOP=1 -d "$PGCONN" "$@"; }

# --- the outbox -------------------------------------------------------------

psql_ -c "
WITH m AS (
  INSERT INTO msgr_messages (school_id, sender, sender_role, channels,
                             send_to, body, routing, status, counts, cost)
  VALUES ($SCHOOL, 'bench', 'admin', '{sms}', 'primary_contact',
          'Dear parent, school is closed tomorrow.', 'default', 'queued',
          '{}', '{}')
  RETURNING message_id)
INSERT INTO msgr_deliveries (school_id, message_id, recipient_type,
                             recipient_id, channel, address, purpose, body,
                             cost, state)
SELECT $SCHOOL, m.message_id, 'contact', g, 'sms',
       '+4477009' || lpad((g % 100000)::text, 5, '0'), 'primary',
       'Dear parent ' || g || ', school is closed tomorrow because of snow.',
       35, 'queued'
  FROM m, generate_series(1, $N) g;
ANALYZE msgr_deliveries;"

echo "outbox: $N SMS deliveries, queued"

cat >"$TMP/sender.conf" <<CONF
[sender]
batch = 1000
max_in_flight = 2000
poll = 0.5

[provider bench]
type = twilio
channels = sms
base_url = http://127.0.0.1:$PORT
account_sid = ACbench
auth_token = bench
from = +447700900000
timeout = 10
CONF

# --- the drain ----------------------------------------------------------------

T0=$(date +%s.%N)
MSGR_PG="$PGCONN" build/msgr-sender --config "$TMP/sender.conf" \
    --exit-when-idle 2>"$TMP/sender.log" &
SENDER_PID=$!

# its resident memory every 0.2 s while it runs
: >"$TMP/rss"
while kill -0 "$SENDER_PID" 2>/dev/null; do
    awk '/^VmRSS:/ { print $2 }' "/proc/$SENDER_PID/status" \
        >>"$TMP/rss" 2>/dev/null || true
    sleep 0.2
done
set +e
wait "$SENDER_PID"
RC=$?
set -e
SENDER_PID=
T1=$(date +%s.%N)

if [ "$RC" != 0 ]; then
    echo "bench: FAIL: msgr-sender exited $RC" >&2
    tail -20 "$TMP/sender.log" >&2
    exit 1
fi

SENT=$(psql_ -c "SELECT count(*) FROM msgr_deliveries WHERE state = 'sent'")
SECS=$(awk -v a="$T0" -v b="$T1" 'BEGIN { printf "%.2f", b - a }')
RATE=$(awk -v n="$SENT" -v s="$SECS" 'BEGIN { printf "%.0f", n / s }')
echo "drain: $SECS s, $RATE deliveries/s end to end (claim, request," \
     "completion)"

# --- the provider's own limit -------------------------------------------------

cat >"$TMP/post.lua" <<'LUA'
wrk.method = "POST"
wrk.body   = "To=%2B447700900001&From=%2B447700900000&Body=Dear+parent"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
LUA

WRK=$(wrk -t2 -c64 -d5s -s "$TMP/post.lua" \
      "http://127.0.0.1:$PORT/2010-04-01/Accounts/ACbench/Messages.json" \
      | awk '/^Requests\/sec:/ { printf "%.0f", $2 }')
echo "provider limit (wrk POSTing to the same nginx): $WRK requests/s"
awk -v r="$RATE" -v w="$WRK" \
    'BEGIN { printf "sender / provider: %.2f\n", r / w }'

# --- memory -------------------------------------------------------------------

read -r START MAX END < <(awk 'NR == 3 { s = $1 } { if ($1 > m) m = $1; e = $1 }
    END { if (!s) s = e; print s, m, e }' "$TMP/rss")
awk -v s="$START" -v m="$MAX" -v e="$END" 'BEGIN {
    printf "sender memory: start %.1f MB, max %.1f MB, end %.1f MB" \
           " (end / start %.2f)\n", s / 1024, m / 1024, e / 1024, e / s }'

# --- verdict ------------------------------------------------------------------

FAIL=0
if [ "$SENT" != "$N" ]; then
    echo "bench: FAIL: $SENT of $N deliveries sent" >&2
    FAIL=1
fi
if [ "$RATE" -lt "$RATE_LIMIT" ]; then
    echo "bench: FAIL: $RATE deliveries/s, under $RATE_LIMIT" >&2
    FAIL=1
fi
if awk -v s="$START" -v e="$END" -v l="$MEMORY_LIMIT" \
       'BEGIN { exit !(e > s * l) }'; then
    echo "bench: FAIL: the sender's memory grew from $START kB to $END kB" >&2
    FAIL=1
fi
exit "$FAIL"
