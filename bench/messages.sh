#!/usr/bin/env bash
#
# Sending one message to a whole secondary school: the MIS-sync benchmark's
# 2,000 students (bench/lib/mis_snapshot.pl), every year group, send_to
# all_contacts, Xpressions + SMS + email, a subject and a body with merge
# tokens; one contact in ten has the parents' app (an app token and a
# device, through the API), so pushes are made too.  Run from the
# repository root after "make" (make bench does both).  Starts its own
# PostgreSQL and nginx (bench/lib/mis_env.pl) on loopback ports, and stops
# them on exit.
#
#   school: 2000 students, 3800 contacts (380 with the app), 7 year groups
#   message: N deliveries (xpressions N, sms N, email N)
#   preview: S s (limit 0.5 s; median of 3)
#   send: accepted in S s (limit 1 s; median of 5), N deliveries/s
#   bare INSERT ... SELECT: S s, N deliveries/s (median of 5)
#   send / bare insert: R (limit: at least 0.5)
#   runs: send S S ... s; bare insert S S ... s
#   GET /v1/settings idle: median MS ms, p99 MS ms, max MS ms
#       (N requests on 8 connections, 2 workers, 0 not 200)
#   GET /v1/settings during 3 sends (median S s): median MS ms, ...
#       (...)
#
# The send is POST /v1/messages, timed by curl from the request to the
# whole answer (201); deliveries/s is the answer's counts.deliveries over
# that time.  The bare insert copies the same message and its deliveries
# (every column the send writes, the rendered texts included) with
# INSERT ... SELECT in one transaction through psql, timed by PostgreSQL's
# clock: what the database can write, with no composing and no transfer.
# Each of the 5 runs sends, then copies what it sent.  The latency probe
# (bench/lib/latency.pl) asks GET /v1/settings every 2 ms over 8 keep-alive
# connections spread over both workers: once idle, once while 3 sends run
# one after the other.
#
# Exits non-zero when the send takes 1 s or more, reaches under 0.5 of the
# bare insert, a preview takes 0.5 s or more, a GET during the sends is not
# answered 200 or waits 100 ms or more (a blocked event loop), or an answer
# is wrong: a status, or deliveries counted in the answer that are not the
# preview's or not the rows written.

set -euo pipefail

SEND_LIMIT=1
PREVIEW_LIMIT=0.5
RATIO_LIMIT=0.5
LATENCY_LIMIT=100          # ms, the slowest GET while sends run
RUNS=${BENCH_RUNS:-5}
PREVIEWS=3
BUSY_SENDS=3
PROBE_CONNS=8
STUDENTS=${BENCH_STUDENTS:-2000}
APP_EVERY=10               # one contact in APP_EVERY has the app

cd "$(dirname "$0")/.."
. bench/lib/env.sh

for tool in curl perl psql; do
    command -v "$tool" >/dev/null \
        || { echo "bench: $tool not found" >&2; exit 1; }
done

bench_begin messages
PROBE_PID=

# what this benchmark started itself
bench_stop_own() {
    if [ -n "$PROBE_PID" ] && kill -0 "$PROBE_PID" 2>/dev/null; then
        kill "$PROBE_PID"
        wait "$PROBE_PID"
    fi
}

fail() {
    echo "bench: FAIL: $*" >&2
    exit 1
}

# median: of the numbers on stdin, one a line
median() {
    sort -g | awk '{ v[NR] = $1 }
        END { if (NR % 2) print v[(NR + 1) / 2];
              else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# --- the msgr environment -------------------------------------------------

perl bench/lib/mis_snapshot.pl --api "$STUDENTS" >"$TMP/snapshot.json"

bench_env_start bench/lib/mis_env.pl --role admin --pg --reuseport
read -r PORT KEY PGPORT <<<"$ENV_LINE"
if [ -z "${PGPORT:-}" ]; then
    echo "bench: the msgr environment printed \"$ENV_LINE\"" >&2
    exit 1
fi

U="http://127.0.0.1:$PORT/msgr/v1"
AUTH="Authorization: Bearer $KEY"
export PGDATABASE=msgr PGHOST=127.0.0.1 PGPORT PGUSER=msgr
PSQL=(psql -X -A -t -q -v ON_ERROR_STOP=1)

# --- the school -------------------------------------------------------------

# Syncs the snapshot; raises sending.pin_threshold to its maximum so that
# the send needs no PIN; gives one contact in APP_EVERY the app (an app
# token and a device); writes the message to message.json.  Prints
# "students contacts contacts_with_app year_groups".
perl - "$U" "$KEY" "$TMP" "$APP_EVERY" <<'PERL' >"$TMP/school"
use strict;
use warnings;
use HTTP::Tiny;
use JSON::PP;

my ($u, $key, $dir, $every) = @ARGV;
my $J  = JSON::PP->new->utf8->canonical;
my $ua = HTTP::Tiny->new(keep_alive => 1, timeout => 120);

sub call {
    my ($method, $path, $body, $want, $auth, $type) = @_;
    my $r = $ua->request($method, "$u$path", {
        headers => {
            Authorization => 'Bearer ' . ($auth // $key),
            defined $body
                ? ('Content-Type' => $type // 'application/json') : (),
        },
        defined $body
            ? (content => ref $body ? $J->encode($body) : $body) : (),
    });
    die "bench: $method $path: $r->{status}, not $want:"
        . " $r->{content}\n" unless $r->{status} == $want;
    return length $r->{content} ? $J->decode($r->{content}) : undef;
}

# every page of a list
sub all {
    my ($path) = @_;
    my (@items, $after);
    while (1) {
        my $page = call(GET => "$path?limit=200"
                        . (defined $after ? "&after=$after" : ''),
                        undef, 200);
        push @items, @{ $page->{items} };
        $after = $page->{next_after};
        last unless defined $after;
    }
    return @items;
}

my $snap = do {
    open(my $in, '<', "$dir/snapshot.json") or die "snapshot.json: $!";
    local $/;
    <$in>;
};
call(POST => '/mis/sync', $snap, 200);
call(PATCH => '/settings/sending', { pin_threshold => 1000000 }, 200,
     undef, 'application/merge-patch+json');

my @students = all('/students');
my @contacts = all('/contacts');
my $app = 0;
for my $i (grep { $_ % $every == 0 } 0 .. $#contacts) {
    my $t = call(POST => "/contacts/$contacts[$i]{id}/app-tokens",
                 { label => 'phone' }, 201);
    call(PUT => '/app/device', { platform => 'android',
                                 push_token => "bench-$i" },
         200, $t->{token});
    $app++;
}

my @years = map { $_->{id} } grep { $_->{type} eq 'year' } all('/groups');

open(my $out, '>', "$dir/message.json") or die "message.json: $!";
print $out $J->encode({
    channels => [qw(xpressions sms email)],
    to       => { groups => \@years, send_to => 'all_contacts' },
    subject  => 'Parents\' evening',
    body     => "Dear {first_name}, parents' evening for {student_names}"
              . " is on Thursday from 4 pm to 7 pm in the main hall.\n"
              . 'Please book a time with each teacher. {school_name}',
});
close $out or die "message.json: $!";

printf "%d %d %d %d\n", scalar @students, scalar @contacts, $app,
    scalar @years;
PERL

read -r N_STUDENTS N_CONTACTS N_APP N_YEARS <"$TMP/school"
printf 'school: %d students, %d contacts (%d with the app), %d year groups\n' \
    "$N_STUDENTS" "$N_CONTACTS" "$N_APP" "$N_YEARS"

# post NAME PATH WANT: POSTs message.json; sets SECS; the answer is in
# $TMP/NAME.out
post() {
    local name=$1 path=$2 want=$3 out status
    out=$(curl -sS -o "$TMP/$name.out" -w '%{http_code} %{time_total}' \
        -H "$AUTH" -H 'Content-Type: application/json' \
        --data-binary @"$TMP/message.json" "$U$path")
    read -r status SECS <<<"$out"
    if [ "$status" != "$want" ]; then
        head -c 2000 "$TMP/$name.out" >&2
        echo >&2
        fail "POST $path ($name): HTTP $status, not $want"
    fi
}

# counts NAME: the answer's "deliveries xpressions sms email pin_required
# id" (id and pin_required 0 when absent)
counts() {
    perl -MJSON::PP -e '
        local $/;
        my $j = decode_json(<STDIN>);
        my $c = $j->{counts};
        print join(" ", $c->{deliveries} // -1,
                   map({ $c->{by_channel}{$_} // 0 } qw(xpressions sms email)),
                   $j->{pin_required} ? 1 : 0, $j->{id} // 0), "\n";
    ' <"$TMP/$1.out"
}

# --- the preview ------------------------------------------------------------

for i in $(seq "$PREVIEWS"); do
    post "preview$i" /messages/preview 200
    echo "$SECS" >>"$TMP/preview.secs"
done
read -r DELIVERIES N_XP N_SMS N_EMAIL PIN_REQUIRED _ < <(counts preview1)
PREVIEW=$(median <"$TMP/preview.secs")

printf 'message: %d deliveries (xpressions %d, sms %d, email %d)\n' \
    "$DELIVERIES" "$N_XP" "$N_SMS" "$N_EMAIL"
[ "$DELIVERIES" -gt 0 ] || fail "the preview has no deliveries"
[ "$N_XP" -gt 0 ] || fail "the preview has no Xpressions deliveries"
[ "$PIN_REQUIRED" = 0 ] || fail "the preview says a PIN is required"

# --- the sends and their bare copies --------------------------------------

# bare ID: copies message ID and its deliveries in one transaction; prints
# "seconds rows"
bare() {
    "${PSQL[@]}" -v src="$1" <<'SQL'
SELECT school_id AS school FROM msgr_messages WHERE message_id = :src \gset
SELECT clock_timestamp() AS t0 \gset
BEGIN;
INSERT INTO msgr_messages (school_id, sender, sender_role, channels,
                           send_to, groups, students, subject, body,
                           sms_body, voice_body, translations, routing,
                           routing_override, status, send_at, counts, cost,
                           pin_used)
SELECT school_id, sender, sender_role, channels, send_to, groups, students,
       subject, body, sms_body, voice_body, translations, routing,
       routing_override, status, send_at, counts, cost, pin_used
  FROM msgr_messages
 WHERE school_id = :school AND message_id = :src
RETURNING message_id AS copy \gset
INSERT INTO msgr_deliveries (school_id, message_id, recipient_type,
                             recipient_id, channel, address, purpose,
                             language, subject, body, cost, state, run_at)
SELECT school_id, :copy, recipient_type, recipient_id, channel, address,
       purpose, language, subject, body, cost, state, run_at
  FROM msgr_deliveries
 WHERE school_id = :school AND message_id = :src;
COMMIT;
SELECT extract(epoch FROM clock_timestamp() - :'t0'::timestamptz) || ' '
       || (SELECT count(*) FROM msgr_deliveries
            WHERE school_id = :school AND message_id = :copy);
SQL
}

# sent NAME: checks a send's answer against the preview and the rows
# written; sets SENT_ID
sent() {
    local d x s e p rows
    read -r d x s e p SENT_ID < <(counts "$1")
    if [ "$d $x $s $e" != "$DELIVERIES $N_XP $N_SMS $N_EMAIL" ]; then
        fail "$1: the answer counts $d deliveries (xpressions $x, sms $s," \
             "email $e), the preview $DELIVERIES ($N_XP, $N_SMS, $N_EMAIL)"
    fi
    rows=$("${PSQL[@]}" -c "SELECT count(*) FROM msgr_deliveries
                             WHERE message_id = $SENT_ID")
    [ "$rows" = "$d" ] \
        || fail "$1: message $SENT_ID has $rows deliveries written, not $d"
}

for i in $(seq "$RUNS"); do
    post "send$i" /messages 201
    echo "$SECS" >>"$TMP/send.secs"
    sent "send$i"
    read -r secs rows < <(bare "$SENT_ID")
    [ "$rows" = "$DELIVERIES" ] \
        || fail "the bare insert wrote $rows deliveries, not $DELIVERIES"
    echo "$secs" >>"$TMP/bare.secs"
done
SEND=$(median <"$TMP/send.secs")
BARE=$(median <"$TMP/bare.secs")

# --- GET /v1/settings, idle and while sends run ---------------------------

# probe ARGS...: the latency probe's line
probe() {
    perl bench/lib/latency.pl "$U/settings" "$KEY" --conns "$PROBE_CONNS" "$@"
}

probe --seconds 3 >"$TMP/idle.probe"

perl bench/lib/latency.pl "$U/settings" "$KEY" --conns "$PROBE_CONNS" \
    --until "$TMP/stop" --ready "$TMP/ready" >"$TMP/busy.probe" &
PROBE_PID=$!
for _ in $(seq 100); do
    [ -e "$TMP/ready" ] && break
    sleep 0.1
done
[ -e "$TMP/ready" ] || fail "the latency probe did not start"
for i in $(seq "$BUSY_SENDS"); do
    post "busy$i" /messages 201
    echo "$SECS" >>"$TMP/busy.secs"
    sent "busy$i"
done
touch "$TMP/stop"
wait "$PROBE_PID" || fail "the latency probe failed"
PROBE_PID=
BUSY_SEND=$(median <"$TMP/busy.secs")

# --- the figures ------------------------------------------------------------

awk -v p="$PREVIEW" -v pl="$PREVIEW_LIMIT" -v n="$PREVIEWS" \
    -v s="$SEND" -v sl="$SEND_LIMIT" -v r="$RUNS" -v b="$BARE" \
    -v d="$DELIVERIES" -v rl="$RATIO_LIMIT" 'BEGIN {
    printf "preview: %.2f s (limit %s s; median of %d)\n", p, pl, n
    printf "send: accepted in %.2f s (limit %s s; median of %d),", s, sl, r
    printf " %.0f deliveries/s\n", d / s
    printf "bare INSERT ... SELECT: %.3f s, %.0f deliveries/s", b, d / b
    printf " (median of %d)\n", r
    printf "send / bare insert: %.2f (limit: at least %s)\n", b / s, rl
}'
printf 'runs: send %s s; bare insert %s s\n' \
    "$(awk '{ printf "%s%.2f", (NR > 1 ? " " : ""), $1 }' "$TMP/send.secs")" \
    "$(awk '{ printf "%s%.3f", (NR > 1 ? " " : ""), $1 }' "$TMP/bare.secs")"

# latency LABEL FILE
latency() {
    local n bad med p99 max workers
    read -r n bad med p99 max workers <"$2"
    printf 'GET /v1/settings %s: median %.2f ms, p99 %.2f ms, max %.2f ms\n' \
        "$1" "$med" "$p99" "$max"
    printf '    (%d requests on %d connections, %s workers, %d not 200)\n' \
        "$n" "$PROBE_CONNS" "$workers" "$bad"
}
latency idle "$TMP/idle.probe"
latency "$(printf 'during %d sends (median %.2f s)' "$BUSY_SENDS" \
    "$BUSY_SEND")" "$TMP/busy.probe"

# --- the verdict ------------------------------------------------------------

FAIL=0
over() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a >= b) }'; }

if over "$SEND" "$SEND_LIMIT"; then
    echo "bench: FAIL: the send took $SEND s (median), the limit is" \
         "$SEND_LIMIT s" >&2
    FAIL=1
fi
if over "$PREVIEW" "$PREVIEW_LIMIT"; then
    echo "bench: FAIL: the preview took $PREVIEW s (median), the limit is" \
         "$PREVIEW_LIMIT s" >&2
    FAIL=1
fi
if awk -v s="$SEND" -v b="$BARE" -v l="$RATIO_LIMIT" \
       'BEGIN { exit !(b / s < l) }'; then
    echo "bench: FAIL: the send reaches $(awk -v s="$SEND" -v b="$BARE" \
         'BEGIN { printf "%.2f", b / s }') of the bare insert, under" \
         "$RATIO_LIMIT" >&2
    FAIL=1
fi
read -r n bad med p99 max workers <"$TMP/busy.probe"
if [ "$bad" -ne 0 ] || [ "$n" -eq 0 ]; then
    echo "bench: FAIL: $bad of $n GETs during the sends were not 200" >&2
    FAIL=1
fi
if over "$max" "$LATENCY_LIMIT"; then
    echo "bench: FAIL: a GET during the sends waited $max ms, the limit is" \
         "$LATENCY_LIMIT ms" >&2
    FAIL=1
fi

exit "$FAIL"
