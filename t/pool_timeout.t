#!/usr/bin/perl

# Queries that take too long.  A PATCH blocked on a row lock past
# msgr_pg_timeout is stopped by PostgreSQL itself (lock_timeout): a clean
# 503 with Retry-After, nothing commits once the lock goes, and the sessions
# stay within what the pool allows.  A write whose connection is lost while
# it runs answers 504 outcome-unknown, never "503, retry".  A full pool and
# a full wait queue answer 503 with Retry-After at once.

use strict;
use warnings;

use Test::More;
use Time::HiRes qw(sleep time);
use POSIX qw(:sys_wait_h);

use lib 't/lib';
use Msgr::Test;

my $V = '/msgr/v1';

my $pg = Msgr::Test::pg_start();
my $A = Msgr::Test::school($pg, 'Alpha Academy');
my $a_admin = Msgr::Test::key($pg, $A, 'admin');

my @BG;

# psql in the background (its application_name is "psql"); returns its pid
sub bg_psql {
    my ($sql) = @_;
    my $pid = fork;
    die "fork: $!" unless defined $pid;
    if (!$pid) {
        open STDOUT, '>', '/dev/null';
        open STDIN, '<', '/dev/null';
        exec 'psql', '-XAtq', '-d', $pg->conninfo, '-c', $sql;
        exit 127;
    }
    push @BG, $pid;
    return $pid;
}

sub wait_until {
    my ($secs, $cond) = @_;
    my $deadline = time + $secs;
    while (time < $deadline) {
        return 1 if $cond->();
        sleep 0.05;
    }
    return $cond->();
}

sub bg_wait {
    my ($pid) = @_;
    waitpid($pid, 0);
    @BG = grep { $_ != $pid } @BG;
}

# nginx's sessions: every client backend but psql's
sub sessions {
    return $pg->psql("SELECT count(*) FROM pg_stat_activity"
                   . " WHERE datname = 'msgr' AND backend_type = 'client backend'"
                   . " AND application_name <> 'psql'");
}

sub lock_settings_row {
    my ($secs) = @_;
    my $pid = bg_psql("BEGIN; SELECT 1 FROM msgr_settings WHERE school_id = $A"
                    . " FOR UPDATE; SELECT pg_sleep($secs); COMMIT;");
    ok(wait_until(10, sub {
        $pg->psql("SELECT count(*) FROM pg_stat_activity"
                . " WHERE application_name = 'psql'"
                . " AND query LIKE '%pg_sleep%' AND state = 'active'"
                . " AND pid <> pg_backend_pid()") == 1
    }), 'a psql session holds the settings row');
    return $pid;
}

sub pin_threshold {
    return $pg->psql("SELECT coalesce(doc #>> '{sending,pin_threshold}', '-')"
                   . " FROM msgr_settings WHERE school_id = $A");
}

my $PATCH = '{"sending":{"pin_threshold":42}}';


# ---------------------------------------------------------------------------
# six PATCHes blocked on a row lock, past msgr_pg_timeout

{
    my $ngx = Msgr::Test::nginx_start(
        $pg, workers => 2, pool => 2, timeout => '2s',
        allow => [ qr/PostgreSQL query \S+ timed out/ ]);

    # the key is cached, the pools are connected
    for (1 .. 6) {
        $ngx->req(GET => "$V/school", key => $a_admin);
    }

    my $before = pin_threshold();
    my $audit = $pg->psql("SELECT count(*) FROM msgr_settings_audit");

    my $locker = lock_settings_row(10);

    my $t0 = time;
    my @res = Msgr::Test::burst($ngx, count => 6, method => 'PATCH',
                                path => "$V/settings", key => $a_admin,
                                type => 'application/json', body => $PATCH,
                                deadline => 9);
    my $took = time - $t0;

    my @st = map { $_->{status} } @res;
    my @bad = grep { $_->{status} != 503 } @res;
    ok(!@bad, 'six PATCHes blocked on the lock: every one 503')
        or diag("statuses: @st");
    my @no_after = grep { !defined $_->{headers}{'retry-after'} } @res;
    ok(!@no_after, 'every 503 has Retry-After');
    like($res[0]{content}, qr/urn:msgr:problem:unavailable/,
         'the problem type is unavailable');
    cmp_ok($took, '<', 8, 'answered while the lock is still held');

    # while the lock is still held: no session left behind, none extra
    my $n = sessions();
    cmp_ok($n, '<=', 2 * 2 + 2,
           'sessions: at most pool x workers + the LISTEN connections');
    is($pg->psql("SELECT count(*) FROM pg_stat_activity"
               . " WHERE wait_event_type = 'Lock'"),
       0, 'no statement is still waiting for the lock');

    bg_wait($locker);
    sleep 3;

    is(pin_threshold(), $before, 'after the lock went: nothing committed');
    is($pg->psql("SELECT count(*) FROM msgr_settings_audit"), $audit,
       'after the lock went: no audit entry');

    my $r = $ngx->req(PATCH => "$V/settings", key => $a_admin,
                      body => $PATCH,
                      headers => { 'Content-Type' => 'application/json' });
    is($r->{status}, 200, 'the same PATCH, no lock: 200');
    is(pin_threshold(), 42, 'and it is stored');

    $ngx->stop;
}


# ---------------------------------------------------------------------------
# a write whose connection is lost while it runs

{
    my $ngx = Msgr::Test::nginx_start(
        $pg, workers => 1, pool => 2, timeout => '10s',
        allow => [ qr/terminating connection due to administrator command/,
                   qr/connection lost while running \S+: its outcome is/,
                   qr/PostgreSQL closed the connection/,
                   qr/reading from PostgreSQL failed/ ]);
    $ngx->req(GET => "$V/school", key => $a_admin);

    my $locker = lock_settings_row(6);

    # kills the backend of the PATCH once it waits for the lock
    my $killer = bg_psql(
        "DO \$\$ BEGIN FOR i IN 1 .. 100 LOOP"
      . " PERFORM pg_terminate_backend(pid) FROM pg_stat_activity"
      . "  WHERE wait_event_type = 'Lock' AND application_name <> 'psql';"
      . " EXIT WHEN FOUND; PERFORM pg_sleep(0.05); END LOOP; END \$\$;");

    my $r = $ngx->req(PATCH => "$V/settings", key => $a_admin,
                      body => '{"sending":{"pin_threshold":43}}',
                      headers => { 'Content-Type' => 'application/json' });
    Msgr::Test::problem_ok($r, 504, 'a PATCH whose connection is lost: 504');
    is($r->{json}{type}, 'urn:msgr:problem:outcome-unknown',
       'the problem type is outcome-unknown');
    ok(!defined $r->{headers}{'retry-after'}, 'no Retry-After');
    like($r->{json}{detail} // '', qr/may or may not/,
         'the detail says it may or may not have been made');

    bg_wait($killer);
    bg_wait($locker);

    $ngx->stop;
}


# ---------------------------------------------------------------------------
# a full pool and a full wait queue

{
    my $key = Msgr::Test::key($pg, $A, 'staff');

    my $ngx = Msgr::Test::nginx_start(
        $pg, workers => 1, pool => 1, queue => 2, timeout => '10s',
        allow => [ qr/all 1 PostgreSQL connections busy/ ]);

    # the pool's connection is made (health needs no key)
    is($ngx->req(GET => "$V/health")->{status}, 200, 'health: 200');

    # the key is not cached: every request asks PostgreSQL, which waits
    my $locker = bg_psql("BEGIN; LOCK TABLE msgr_api_keys IN ACCESS EXCLUSIVE"
                       . " MODE; SELECT pg_sleep(3); COMMIT;");
    ok(wait_until(10, sub {
        $pg->psql("SELECT count(*) FROM pg_locks l JOIN pg_class c"
                . " ON c.oid = l.relation WHERE c.relname = 'msgr_api_keys'"
                . " AND l.mode = 'AccessExclusiveLock' AND l.granted") == 1
    }), 'a psql session holds msgr_api_keys');

    my @res = Msgr::Test::burst($ngx, count => 4, path => "$V/school",
                                key => $key, deadline => 15);
    my @busy = grep { $_->{status} == 503 } @res;
    my @ok   = grep { $_->{status} == 200 } @res;

    is(scalar @busy, 1, 'pool 1, queue 2: one of 4 requests is refused')
        or diag('statuses: ' . join ' ', map { $_->{status} } @res);
    is(scalar @ok, 3, 'the other three answer 200 once the lock goes');
    if (@busy) {
        ok(defined $busy[0]{headers}{'retry-after'}, 'the 503 has Retry-After');
        cmp_ok($busy[0]{elapsed}, '<', 1.5, 'the 503 comes at once');
    }
    my @slow = grep { $_->{elapsed} < 2 } @ok;
    ok(!@slow, 'the 200s come after the lock is released');

    bg_wait($locker);
    $ngx->stop;
}

END {
    kill 'TERM', @BG if @BG;
}

Msgr::Test::finish();
