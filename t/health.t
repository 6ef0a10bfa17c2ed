#!/usr/bin/perl
# GET /msgr/v1/health, and what every client sees while PostgreSQL is down
# and after it comes back, without reloading nginx.

use strict;
use warnings;
use Test::More;
use Time::HiRes qw(sleep time);
use lib 't/lib';
use Msgr::Test;
use Msgr::Test::API qw(by_worker);

my $pg     = Msgr::Test::pg_start();
my $school = Msgr::Test::school($pg, 'Health High');
my $key    = Msgr::Test::key($pg, $school, 'admin');
# PostgreSQL is stopped on purpose: connections refused, or cut while it
# shuts down or starts up, are logged as errors, and only those.
my $GONE = join '|', map { quotemeta }
    'the database system is shutting down',
    'the database system is starting up',
    'terminating connection due to administrator command',
    'server closed the connection unexpectedly',
    'Connection refused';
my $ngx    = Msgr::Test::nginx_start($pg, timeout => '2s',
    location => '    add_header X-Worker $pid always;',
    allow => [
        qr/\[error\] .*msgr: (?:cannot connect to|reading from|sending to)/
        . qr/ PostgreSQL(?: failed)?: .*(?:$GONE)/,
        qr/\[error\] .*msgr: PostgreSQL closed the connection/,
    ]);
my @WORKERS = sort $ngx->worker_pids;

# Every answer in by_worker's result has status $status, and each of the
# workers gave $each of them.
sub every_worker_ok {
    my ($by, $status, $each, $name) = @_;
    local $Test::Builder::Level = $Test::Builder::Level + 1;
    is_deeply([ sort keys %$by ], \@WORKERS,
              "$name: every worker (@WORKERS) answered");
    my @bad = map { "worker $_: " . join ' ', map { $_->{status} }
                                                  @{ $by->{$_} } }
              grep { grep { $_->{status} != $status } @{ $by->{$_} } }
              sort keys %$by;
    ok(!@bad, "$name: every answer $status") or diag(join "\n", @bad);
    my @few = grep { @{ $by->{$_} || [] } < $each } @WORKERS;
    ok(!@few, "$name: $each answers from each worker")
        or diag("too few from @few");
}

# --- up --------------------------------------------------------------------

my $r = $ngx->req(GET => '/msgr/v1/health');
Msgr::Test::json_ok($r, 200, 'health: 200 JSON without a credential');
is_deeply($r->{json}, { status => 'ok', database => 'ok' },
          'health: {"status":"ok","database":"ok"}')
    or diag($r->{content});

$r = $ngx->req(GET => '/msgr/v1/school', key => $key);
Msgr::Test::json_ok($r, 200, 'school: 200 while PostgreSQL is up');
is($r->{json}{id}, $school, 'school: its own id');

# --- down ------------------------------------------------------------------

$pg->stop;

# a few requests, on fresh connections, so both workers answer some
for my $i (1 .. 4) {
    my $r = $ngx->req(GET => '/msgr/v1/health', timeout => 10);
    is($r->{status}, 503, "health #$i while PostgreSQL is down: 503");
    cmp_ok($r->{elapsed}, '<', 3,
           "health #$i: answered within msgr_pg_timeout (2s) + 1s");
    ok(defined $r->{headers}{'retry-after'},
       "health #$i: Retry-After is present");
    like($r->{headers}{'content-type'} // '',
         qr{^application/(?:problem\+)?json\b}, "health #$i: JSON");
    is(ref $r->{json} && $r->{json}{database}, 'unavailable',
       "health #$i: \"database\":\"unavailable\"")
        or diag($r->{content});
}

for my $i (1 .. 4) {
    my $r = $ngx->req(GET => '/msgr/v1/school', key => $key, timeout => 10);
    Msgr::Test::problem_ok($r, 503,
        "school #$i while PostgreSQL is down: 503 problem+json");
    cmp_ok($r->{elapsed}, '<', 3, "school #$i: answered within 3 s");
    ok(defined $r->{headers}{'retry-after'},
       "school #$i: Retry-After is present");
}

# --- back ------------------------------------------------------------------

$pg->start;

sub poll {
    my ($path, %o) = @_;
    my $deadline = time + 30;
    my $r;
    while (1) {
        $r = $ngx->req(GET => $path, %o, timeout => 5);
        return $r if $r->{status} == 200 || time > $deadline;
        sleep 0.2;
    }
}

$r = poll('/msgr/v1/health');
is($r->{status}, 200, 'health: 200 again once PostgreSQL is back');
is_deeply($r->{json}, { status => 'ok', database => 'ok' },
          'health: database ok again')
    or diag($r->{content});

$r = poll('/msgr/v1/school', key => $key);
Msgr::Test::json_ok($r, 200, 'school: 200 again once PostgreSQL is back');
is($r->{json}{id}, $school, 'school: its own id again');

# every worker has recovered, not just the one that answered first
is(scalar @WORKERS, 2, 'two workers');
every_worker_ok(by_worker($ngx, '/msgr/v1/school', 5, 300, key => $key),
                200, 5, 'once PostgreSQL is back');

Msgr::Test::finish();
