#!/usr/bin/env bash
#
# POST /v1/mis/sync of a whole secondary school: 2,000 students, their
# parental contacts, 200 staff and 300 groups (bench/lib/mis_snapshot.pl),
# three times: the first sync, the same snapshot again, and a snapshot with
# ~5% of the records changed.  Run from the repository root after "make"
# (make bench does both).  Starts its own PostgreSQL and nginx
# (bench/lib/mis_env.pl) on loopback ports, and stops them on exit.
#
#   snapshot: 2000 students, ... (N rows, N MB)
#   first sync: 1.23 s, 7400 rows/s (created ..., updated ..., ...)
#   unchanged re-sync: ...
#   5% changed re-sync: ...
#   first sync: 0.62 of the 2 s limit
#   unchanged re-sync: 0.30 of the first sync (limit: under 1)
#   5% changed re-sync: 0.40 of the first sync
#
# rows = students + contacts + staff + groups + memberships (student-contact
# links, group students, group staff and teachers) in the snapshot.
#
# Exits non-zero when the first sync takes 2 s or more, when the unchanged
# re-sync is not faster than the first, or when a sync is not answered 200
# with the counts it should have.

set -euo pipefail

LIMIT=2
STUDENTS=${BENCH_STUDENTS:-2000}

cd "$(dirname "$0")/.."
. bench/lib/env.sh

for tool in curl perl; do
    command -v "$tool" >/dev/null \
        || { echo "bench: $tool not found" >&2; exit 1; }
done
if [ ! -f bench/lib/mis_snapshot.pl ]; then
    echo "bench: bench/lib/mis_snapshot.pl is missing" >&2
    exit 1
fi

bench_begin mis

# --- the snapshots ----------------------------------------------------------

perl bench/lib/mis_snapshot.pl --api "$STUDENTS" >"$TMP/generated.json"

# snap1.json: the school as POST /v1/mis/sync takes it; snap3.json: the same
# with every 20th record of each kind changed.  Prints the row counts.
perl - "$TMP" <<'PERL' >"$TMP/rows"
use strict;
use warnings;
use JSON::PP;

my $dir = shift;
my $J = JSON::PP->new->utf8->canonical;

open(my $in, '<', "$dir/generated.json") or die "generated.json: $!";
my $snap = $J->decode(do { local $/; <$in> });
close $in;

sub spew {
    my ($name, $s) = @_;
    open(my $out, '>', "$dir/$name") or die "$name: $!";
    print $out $J->encode($s);
    close $out or die "$name: $!";
}

spew('snap1.json', $snap);

my ($links, $members) = (0, 0);
$links += @{ $_->{contacts} || [] } for @{ $snap->{students} };
for my $g (@{ $snap->{groups} }) {
    my %seen;
    $members += grep { !$seen{$_}++ } @{ $g->{students} || [] };
    %seen = ();
    $members += grep { !$seen{$_}++ } @{ $g->{staff} || [] };
    %seen = ();
    $members += grep { !$seen{$_}++ } @{ $g->{teachers} || [] };
}

# ~5% changed: every 20th student (a new first name), contact (a new
# email), staff member (a new mobile), group (a new name), and the first
# contact link of every 20th student (a new relationship)
my $changed = 0;
my $i = 0;
for my $s (@{ $snap->{students} }) {
    next if $i++ % 20;
    $s->{first_name} .= 'e';
    $changed++;
    if (@{ $s->{contacts} || [] }) {
        $s->{contacts}[0]{relationship} = 'Guardian';
        $changed++;
    }
}
$i = 0;
for my $c (@{ $snap->{contacts} }) {
    next if $i++ % 20;
    $c->{email} = lc($c->{mis_id}) . '.changed@example.org';
    $changed++;
}
$i = 0;
for my $t (@{ $snap->{staff} }) {
    next if $i++ % 20;
    $t->{mobile_phone} = sprintf('+4477009%05d', 99999 - $i);
    $changed++;
}
$i = 0;
for my $g (@{ $snap->{groups} }) {
    next if $i++ % 20;
    $g->{name} .= ' (2)';
    $changed++;
}

spew('snap3.json', $snap);

printf "%d %d %d %d %d %d\n", scalar @{ $snap->{students} },
    scalar @{ $snap->{contacts} }, scalar @{ $snap->{staff} },
    scalar @{ $snap->{groups} }, $links + $members, $changed;
PERL

read -r N_STUDENTS N_CONTACTS N_STAFF N_GROUPS N_MEMBERS N_CHANGED <"$TMP/rows"
ROWS=$((N_STUDENTS + N_CONTACTS + N_STAFF + N_GROUPS + N_MEMBERS))
BYTES=$(wc -c <"$TMP/snap1.json")

printf '%s %d students, %d contacts, %d staff, %d groups, %d memberships' \
    'snapshot:' "$N_STUDENTS" "$N_CONTACTS" "$N_STAFF" "$N_GROUPS" \
    "$N_MEMBERS"
printf ' (%d rows, %.1f MB); %d records changed in the third\n' "$ROWS" \
    "$(awk -v b="$BYTES" 'BEGIN { print b / 1048576 }')" "$N_CHANGED"

# --- the msgr environment -------------------------------------------------

bench_env_start bench/lib/mis_env.pl
read -r PORT KEY <<<"$ENV_LINE"
if [ -z "${KEY:-}" ]; then
    echo "bench: the msgr environment printed \"$ENV_LINE\"" >&2
    exit 1
fi

URL="http://127.0.0.1:$PORT/msgr/v1/mis/sync"

# --- the syncs ------------------------------------------------------------

FAIL=0

# sync NAME FILE: POSTs FILE; sets SECS and COUNTS ("created updated retired
# unchanged", summed over every kind)
sync() {
    local name=$1 file=$2 out status
    out=$(curl -sS -o "$TMP/$name.out" -w '%{http_code} %{time_total}' \
        -H "Authorization: Bearer $KEY" -H 'Content-Type: application/json' \
        --data-binary @"$file" "$URL")
    read -r status SECS <<<"$out"
    if [ "$status" != 200 ]; then
        echo "bench: FAIL: $name: HTTP $status" >&2
        head -c 2000 "$TMP/$name.out" >&2
        echo >&2
        exit 1
    fi
    COUNTS=$(perl -MJSON::PP -e '
        local $/;
        my $j = decode_json(<STDIN>);
        my %t;
        for my $k (qw(students contacts staff groups memberships)) {
            $t{$_} += $j->{$k}{$_} // 0
                for qw(created updated retired unchanged);
        }
        print join " ", @t{qw(created updated retired unchanged)};
    ' <"$TMP/$name.out")
}

report() {
    local label=$1 secs=$2 created updated retired unchanged
    read -r created updated retired unchanged <<<"$3"
    awk -v l="$label" -v s="$secs" -v r="$ROWS" -v c="$created" \
        -v u="$updated" -v t="$retired" -v n="$unchanged" 'BEGIN {
        printf "%s: %.2f s, %.0f rows/s ", l, s, (s > 0 ? r / s : 0)
        printf "(created %d, updated %d, retired %d, unchanged %d)\n",
               c, u, t, n }'
}

sync first "$TMP/snap1.json"
FIRST=$SECS
FIRST_COUNTS=$COUNTS
report 'first sync' "$FIRST" "$FIRST_COUNTS"

sync again "$TMP/snap1.json"
AGAIN=$SECS
AGAIN_COUNTS=$COUNTS
report 'unchanged re-sync' "$AGAIN" "$AGAIN_COUNTS"

sync changed "$TMP/snap3.json"
CHANGED=$SECS
CHANGED_COUNTS=$COUNTS
report '5% changed re-sync' "$CHANGED" "$CHANGED_COUNTS"

awk -v f="$FIRST" -v a="$AGAIN" -v c="$CHANGED" -v l="$LIMIT" 'BEGIN {
    printf "first sync: %.2f of the %d s limit\n", f / l, l
    printf "unchanged re-sync: %.2f of the first sync (limit: under 1)\n",
           a / f
    printf "5%% changed re-sync: %.2f of the first sync\n", c / f
}'

# --- the verdict ----------------------------------------------------------

if awk -v f="$FIRST" -v l="$LIMIT" 'BEGIN { exit !(f >= l) }'; then
    echo "bench: FAIL: the first sync took $FIRST s, the limit is $LIMIT s" >&2
    FAIL=1
fi
if awk -v f="$FIRST" -v a="$AGAIN" 'BEGIN { exit !(a >= f) }'; then
    echo "bench: FAIL: the unchanged re-sync ($AGAIN s) is not faster than" \
         "the first ($FIRST s)" >&2
    FAIL=1
fi

# the syncs did what they are said to: the first created every row, the
# second changed none, the third changed some and created or retired none
read -r c u r n <<<"$FIRST_COUNTS"
if [ "$c" -ne "$ROWS" ] || [ "$u" -ne 0 ] || [ "$r" -ne 0 ]; then
    echo "bench: FAIL: the first sync created $c of $ROWS rows" \
         "(updated $u, retired $r)" >&2
    FAIL=1
fi
read -r c u r n <<<"$AGAIN_COUNTS"
if [ "$c" -ne 0 ] || [ "$u" -ne 0 ] || [ "$r" -ne 0 ] \
   || [ "$n" -ne "$ROWS" ]; then
    echo "bench: FAIL: the unchanged re-sync changed rows" \
         "(created $c, updated $u, retired $r, unchanged $n of $ROWS)" >&2
    FAIL=1
fi
read -r c u r n <<<"$CHANGED_COUNTS"
if [ "$c" -ne 0 ] || [ "$r" -ne 0 ] || [ "$u" -ne "$N_CHANGED" ]; then
    echo "bench: FAIL: the changed re-sync updated $u rows, not $N_CHANGED" \
         "(created $c, retired $r)" >&2
    FAIL=1
fi

exit "$FAIL"
