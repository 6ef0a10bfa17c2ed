#!/usr/bin/perl
# With error_log at debug, an operator can follow a request: which route it
# took, for which school and role, and whether its key and its school's
# settings came from the cache or from PostgreSQL.

use strict;
use warnings;
use Test::More;
use Time::HiRes qw(sleep time);
use lib 't/lib';
use Msgr::Test;

my $pg     = Msgr::Test::pg_start();
my $school = Msgr::Test::school($pg, 'Debug Grammar');
my $key    = Msgr::Test::key($pg, $school, 'staff');
my $kid    = Msgr::Test::key_id($key);

# one worker, so the second look-up of a key is in the same cache
my $ngx = Msgr::Test::nginx_start($pg, workers => 1,
                                  main => 'error_log debug.log debug;');
my $log = sub { Msgr::Test::slurp($ngx->dir . '/debug.log') };

my $r = $ngx->req(GET => '/msgr/v1/health');
is($r->{status}, 200, 'health answers');
like($log->(),
     qr/msgr route: GET v1\/health matches "v1\/health", school 0, role none/,
     'the route of a request without a credential is logged');

# the cache is used once the worker listens: ask until the key is a hit
my $hit;
my $deadline = time + 10;
while (!$hit && time < $deadline) {
    $r = $ngx->req(GET => '/msgr/v1/school', key => $key);
    is($r->{status}, 200, 'school answers') or last;
    $hit = $log->() =~ /msgr cache: key $school\/$kid: hit/;
    sleep 0.1 unless $hit;
}
my $text = $log->();
like($text, qr/msgr cache: key $school\/$kid: miss/,
     'the key\'s first look-up is a miss');
ok($hit, 'a later look-up of the same key is a hit');
my $route = qr/msgr route: GET v1\/school matches "v1\/school", /;
like($text, qr/${route}school $school, role staff/,
     'the route is logged with the school and the role of the key');

$r = $ngx->req(GET => '/msgr/v1/settings', key => $key);
is($r->{status}, 200, 'settings answer');
$r = $ngx->req(GET => '/msgr/v1/settings', key => $key);
is($r->{status}, 200, 'settings answer again');
$text = $log->();
like($text, qr/msgr cache: settings of school $school: miss/,
     'the settings\' first read is a cache miss');
like($text, qr/msgr cache: settings of school $school: hit/,
     'the second is a hit');
like($text, qr/msgr route: GET v1\/settings matches "v1\/settings"/,
     'the settings route is logged');

Msgr::Test::finish();
