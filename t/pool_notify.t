#!/usr/bin/perl

# The LISTEN connection keeps every worker's cache true however much is
# announced at once: thousands of notifications in one transaction, then a
# key revocation and a settings change made outside nginx, each visible on
# every worker within a second.  And a LISTEN connection that stops
# answering (a half-open connection: its backend is stopped) is noticed
# within the heartbeat, after which reads no longer come from a cache that
# could be stale.

use strict;
use warnings;

use Test::More;
use Time::HiRes qw(sleep time);

use lib 't/lib';
use Msgr::Test;
use Msgr::Test::API qw(by_worker);

my $V = '/msgr/v1';

my $pg = Msgr::Test::pg_start();
my $A = Msgr::Test::school($pg, 'Alpha Academy');
my $a_admin = Msgr::Test::key($pg, $A, 'admin');
my $a_staff = Msgr::Test::key($pg, $A, 'staff');

# every answer says which worker gave it
my $WHO = '    add_header X-Worker $pid always;';


sub every_worker_seen {
    my ($ngx, $seen, $name) = @_;
    local $Test::Builder::Level = $Test::Builder::Level + 1;
    my @pids = sort $ngx->worker_pids;
    is_deeply([ sort grep { $_ ne '?' } keys %$seen ], \@pids,
              "$name: every worker (@pids) answered");
}

sub statuses {
    my ($seen) = @_;
    my %st;
    for my $pid (keys %$seen) {
        $st{ $_->{status} }++ for @{ $seen->{$pid} };
    }
    return join ' ', map { "$_ x$st{$_}" } sort keys %st;
}

# Thousands of notifications in one transaction, for a school nobody reads.
sub flood {
    my ($n) = @_;
    $pg->psql("SELECT count(pg_notify('msgr_settings', '999999:' || g))"
            . " FROM generate_series(1, $n) g");
}

sub pin_threshold {
    my ($r) = @_;
    return ref $r->{json} eq 'HASH' && ref $r->{json}{sending} eq 'HASH'
        ? $r->{json}{sending}{pin_threshold} // 'none' : 'none';
}

sub school_set {
    my ($field, $value) = @_;
    my ($rc, $out, $err) = Msgr::Test::msgrctl($pg, 'school', 'set', $A,
                                               "$field=$value");
    is($rc, 0, "msgrctl school set $field=$value") or diag("$out$err");
}


# ---------------------------------------------------------------------------
# a flood of notifications, then a revocation and a settings change

{
    my $ngx = Msgr::Test::nginx_start($pg, workers => 2, location => $WHO);

    my $seen = by_worker($ngx, "$V/school", 1, 200, key => $a_staff);
    every_worker_seen($ngx, $seen, 'before: the staff key');
    is(statuses($seen), '200 x' . (map { @$_ } values %$seen),
       'before: the staff key works (and is cached) on every worker');

    flood(20000);
    sleep 0.5;

    my ($rc, $out, $err) = Msgr::Test::msgrctl(
        $pg, 'key', 'revoke', Msgr::Test::key_id($a_staff));
    is($rc, 0, 'msgrctl key revoke, after 20,000 notifications')
        or diag("$out$err");

    sleep 1;

    $seen = by_worker($ngx, "$V/school", 1, 200, key => $a_staff);
    every_worker_seen($ngx, $seen, 'a second after the revocation');
    my @not401 = grep { $_->{status} != 401 } map { @$_ } values %$seen;
    ok(!@not401, 'a second after the revocation every worker answers 401')
        or diag('answers: ' . statuses($seen));

    # settings
    $seen = by_worker($ngx, "$V/settings", 1, 200, key => $a_admin);
    every_worker_seen($ngx, $seen, 'settings before');
    my @before = map { pin_threshold($_) } map { @$_ } values %$seen;
    is_deeply([ sort { $a <=> $b } @before ], [ (1000) x @before ],
              'settings before: pin_threshold 1000 on every worker');

    flood(20000);
    sleep 0.5;
    school_set('sending.pin_threshold', 777);
    sleep 1;

    $seen = by_worker($ngx, "$V/settings", 1, 200, key => $a_admin);
    every_worker_seen($ngx, $seen, 'settings a second after the change');
    my %got;
    for my $pid (keys %$seen) {
        $got{$pid} = join ',', map { pin_threshold($_) } @{ $seen->{$pid} };
    }
    my @stale = grep { $got{$_} ne join ',', ('777') x @{ $seen->{$_} } }
                keys %got;
    ok(!@stale, 'a change made with msgrctl after 20,000 notifications is '
              . 'read on every worker a second later')
        or diag(join '; ', map { "worker $_: $got{$_}" } sort keys %got);

    $ngx->stop;
}


# ---------------------------------------------------------------------------
# a LISTEN connection that no longer answers

{
    # only this nginx's backends: those of an nginx stopped just before may
    # not have gone yet
    my $since = $pg->psql("SELECT now()");
    my $ngx = Msgr::Test::nginx_start($pg, workers => 2, location => $WHO,
                                      http => '    msgr_pg_heartbeat 1s;');

    # both workers' LISTEN connections are up (they hold the cache)
    my @listeners;
    my $deadline = time + 10;
    while (time < $deadline) {
        @listeners = split /\n/, $pg->psql(
            "SELECT pid FROM pg_stat_activity WHERE datname = 'msgr'"
          . " AND pid <> pg_backend_pid()"
          . " AND backend_start >= '$since'"
          . " AND (query LIKE 'LISTEN%' OR query LIKE '%msgr_heartbeat%')");
        last if @listeners == 2;
        sleep 0.1;
    }
    is(scalar @listeners, 2, 'one LISTEN connection per worker');

    # read while listening: every worker caches the settings
    my $seen = by_worker($ngx, "$V/settings", 1, 200, key => $a_admin);
    every_worker_seen($ngx, $seen, 'heartbeat: settings before');

    # half-open: the backends stop answering, their sockets stay open
    kill 'STOP', @listeners;

    school_set('sending.pin_threshold', 555);
    my $t0 = time;

    my ($ok, %got);
    while (time < $t0 + 6) {
        $seen = by_worker($ngx, "$V/settings", 1, 200, key => $a_admin);
        %got = ();
        for my $pid (keys %$seen) {
            $got{$pid} = pin_threshold($seen->{$pid}[-1]);
        }
        $ok = keys %got == 2 && !grep { $_ ne '555' } values %got;
        last if $ok;
        sleep 0.2;
    }
    my $took = time - $t0;

    # The new value may have been read at once, from PostgreSQL, when a
    # worker had nothing cached: the heartbeat must still miss before the
    # backends go on.
    my $missed = 0;
    while (time < $t0 + 6) {
        last if ($missed = () = $ngx->error_log
                 =~ /LISTEN connection did not answer a heartbeat/g) >= 2;
        sleep 0.2;
    }

    kill 'CONT', @listeners;

    ok($ok && $took < 4, 'a change made while the LISTEN connections hang is '
                       . 'read on every worker within the heartbeat')
        or diag(sprintf('after %.1f s: %s', $took,
                        join '; ', map { "worker $_: $got{$_}" } keys %got));

    my $log = $ngx->error_log;
    like($log, qr/LISTEN connection did not answer a heartbeat in 1000 ms/,
         'the log says the LISTEN connection did not answer');
    like($log, qr/caches bypassed until it is back/,
         'the log says the caches are bypassed');

    # and it listens again
    my $back;
    $deadline = time + 10;
    while (time < $deadline) {
        last if ($back = () = $ngx->error_log
                 =~ /listening to PostgreSQL again/g) >= 2;
        sleep 0.2;
    }
    is($back, 2, 'both workers listen again');

    $ngx->stop;
}

Msgr::Test::finish();
