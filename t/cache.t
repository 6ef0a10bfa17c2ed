#!/usr/bin/perl

# The shared read cache across a LISTEN restart and a contact's return:
#
#   - a PostgreSQL restart (every LISTEN connection lost and made again)
#     empties the cache of what was read from the database, not the flood
#     control: a parent at the msgr_app_rate limit is still refused right
#     after it; a revoked key stays revoked, a changed setting reads new;
#   - a contact the MIS drops loses its app token at once (401 on every
#     worker), and when the next sync brings the contact back its live
#     tokens work at once on every worker, not after the cache's minute.

use strict;
use warnings;

use HTTP::Tiny;
use JSON::PP;
use Test::More;
use Time::HiRes qw(sleep time);

use lib 't/lib';
use Msgr::Test;
use Msgr::Test::API qw($J $T use_nginx req ids_by_mis issue worker_clients
                       ua_status);

my $V = '/msgr/v1';
my $TOKEN_RE = qr/^msgrapp_(\d+)_([0-9a-f]{16})_([A-Za-z0-9_-]{43})$/;

my $pg = Msgr::Test::pg_start();

my $A       = Msgr::Test::school($pg, 'Alpha Academy');
my $a_admin = Msgr::Test::key($pg, $A, 'admin');
my $a_int   = Msgr::Test::key($pg, $A, 'integrator');

# Every answer says which worker gave it.
my $WHO = '    add_header X-Worker $pid always;';
my $ngx = Msgr::Test::nginx_start(
    $pg, workers => 2,
    http => "    msgr_app_rate 5;\n    msgr_app_refused_rate 3;",
    location => $WHO,
    allow => [qr/msgr: cannot connect to PostgreSQL/,
              qr/msgr: PostgreSQL query failed/,
              qr/msgr: LISTEN failed/]);
use_nginx($ngx, prefix => $V);


# ---------------------------------------------------------------------------
# helpers

sub snapshot {
    my (%o) = @_;
    my @students = (
        { mis_id => 'S1', first_name => 'Amy', last_name => 'Jones',
          reg_group => '7B', year => '7', status => 'on_roll',
          contacts => [ { mis_id => 'C1', relationship => 'Mother',
                          priority => 1, correspondence => $T } ] },
    );
    my @contacts = (
        { mis_id => 'C1', title => 'Mrs', first_name => 'Jane',
          last_name => 'Jones', mobile_phone => '07700 900123' },
    );
    if ($o{with_c2}) {
        push @students,
            { mis_id => 'S2', first_name => 'Dee', last_name => 'Green',
              reg_group => '7B', year => '7', status => 'on_roll',
              contacts => [ { mis_id => 'C2', relationship => 'Father',
                              priority => 1, correspondence => $T } ] };
        push @contacts,
            { mis_id => 'C2', title => 'Mr', first_name => 'Lee',
              last_name => 'Green', mobile_phone => '07700 900124' };
    }
    return { default_country => 'GB', students => \@students,
             contacts => \@contacts, staff => [], groups => [] };
}

sub sync {
    my ($snap, $name) = @_;
    my $r = req(POST => '/mis/sync', $a_int, $snap);
    Msgr::Test::json_ok($r, 200, $name)
        or BAIL_OUT("cannot sync the MIS: $r->{content}");
}

# Restarts PostgreSQL and waits until every worker LISTENs again.
sub pg_restart {
    my $log = $ngx->error_log;
    my $before = () = $log =~ /msgr: listening to PostgreSQL again/g;
    $pg->stop;
    $pg->start;
    my $want = $before + scalar($ngx->worker_pids);
    my $deadline = time + 30;
    my $now = 0;
    while (time < $deadline) {
        # a request gets each worker to notice the lost connections
        $ngx->req(GET => "$V/health", timeout => 5);
        $now = () = $ngx->error_log =~ /msgr: listening to PostgreSQL again/g;
        last if $now >= $want;
        sleep 0.1;
    }
    return $now >= $want;
}


# ---------------------------------------------------------------------------
# the school: one family, incoming messages on

sync(snapshot(with_c2 => 1), 'the MIS synced');
my $c = ids_by_mis($a_admin, 'contacts');
my $s = ids_by_mis($a_admin, 'students');
my ($C1, $C2, $S1) = ($c->{C1}, $c->{C2}, $s->{S1});
ok($C1 && $C2 && $S1, 'the contacts and the student have ids')
    or BAIL_OUT('the MIS lists are incomplete');

{
    my $r = req(PATCH => '/settings/xpressions', $a_admin,
                $J->encode({ incoming_enabled => $T }),
                headers => { 'Content-Type'
                             => 'application/merge-patch+json' });
    Msgr::Test::json_ok($r, 200, 'incoming messages enabled');
    $r = req(PUT => '/xpressions/topics', $a_admin,
             { topics => ['Absence'] });
    Msgr::Test::json_ok($r, 200, 'a topic to write about');
}


# ---------------------------------------------------------------------------
# flood control survives a LISTEN restart

{
    my $tok = issue($a_admin, $C1, 'flood');
    my $clients = worker_clients($ngx, $tok, "$V/app/messages");
    my @pids = sort keys %$clients;
    is(scalar @pids, 2, 'a connection on each of the 2 workers');

    my $msg = { topic => 'Absence', body => 'ill', student_id => $S1 };
    my @st;
    for my $i (0 .. 4) {
        my ($st) = ua_status($ngx, $clients->{ $pids[ $i % @pids ] },
                             POST => "$V/app/messages", $tok, $msg);
        push @st, $st;
    }
    is("@st", '201 201 201 201 201', 'five posts: all 201 (msgr_app_rate 5)');
    my ($st) = ua_status($ngx, $clients->{ $pids[0] },
                         POST => "$V/app/messages", $tok, $msg);
    is($st, 429, 'a sixth: 429');

    ok(pg_restart(), 'PostgreSQL restarted; every worker LISTENs again');

    my (@after, %served);
    for my $i (0 .. 5) {
        my $r = $ngx->req(POST => "$V/app/messages", key => $tok,
                          body => $msg);
        push @after, $r->{status};
        $served{ $r->{headers}{'x-worker'} // '?' }++;
    }
    is("@after", '429 429 429 429 429 429',
       'right after the restart the parent is still at the limit')
        or diag("answers: @after");
    is($pg->psql("SELECT count(*) FROM msgr_incoming"), 5,
       'five messages stored, no more');
}

{
    # a broken app at its ceiling of refused posts stays there too
    my $tok = issue($a_admin, $C1, 'broken');
    my $bad = { topic => 'Absence', body => '', student_id => $S1 };
    my @st = map {
        $ngx->req(POST => "$V/app/messages", key => $tok,
                  body => $bad)->{status}
    } 1 .. 4;
    is("@st", '422 422 422 429',
       'three refused posts (msgr_app_refused_rate 3), then 429');

    ok(pg_restart(), 'PostgreSQL restarted; every worker LISTENs again');

    @st = map {
        $ngx->req(POST => "$V/app/messages", key => $tok,
                  body => $bad)->{status}
    } 1 .. 6;
    is("@st", '429 429 429 429 429 429',
       'right after the restart the refused posts are still at the ceiling')
        or diag("answers: @st");
}


# ---------------------------------------------------------------------------
# a revoked key stays revoked, a changed setting reads new, after a restart

{
    my $key = Msgr::Test::key($pg, $A, 'staff');
    my @ok = Msgr::Test::burst($ngx, count => 6, path => "$V/school",
                               key => $key);
    ok(!(grep { $_->{status} != 200 } @ok), 'a staff key works (cached)');

    my ($rc, $out, $err) = Msgr::Test::msgrctl($pg, 'key', 'revoke',
                                               Msgr::Test::key_id($key));
    is($rc, 0, 'msgrctl key revoke') or diag("$out$err");

    my @gone = Msgr::Test::burst($ngx, count => 6, path => "$V/school",
                                 key => $key);
    is(scalar(grep { $_->{status} == 401 } @gone), 6,
       'revoked: 401 on every request');

    ok(pg_restart(), 'PostgreSQL restarted again');

    @gone = Msgr::Test::burst($ngx, count => 10, path => "$V/school",
                              key => $key);
    is(scalar(grep { $_->{status} == 401 } @gone), 10,
       'after the restart the revoked key is still refused, 10 of 10')
        or diag(join ' ', map { $_->{status} } @gone);

    my @set = Msgr::Test::burst($ngx, count => 6, path => "$V/settings",
                                key => $a_admin);
    ok(!(grep { $_->{status} != 200 } @set), 'settings read (and cached)');
    $pg->psql("UPDATE msgr_settings SET doc = doc || '{\"school\":"
              . "{\"phone_country\":\"IE\"}}'::jsonb, version = version + 1"
              . " WHERE school_id = $A");
    @set = Msgr::Test::burst($ngx, count => 10, path => "$V/settings",
                             key => $a_admin);
    my @stale = grep {
        ($J->decode($_->{content} || '{}')->{school}{phone_country} // '')
            ne 'IE'
    } @set;
    is(scalar @stale, 0, 'a change from elsewhere reads new, 10 of 10')
        or diag($set[0]{content});
}


# ---------------------------------------------------------------------------
# a contact dropped by a sync and restored by the next: its token

{
    my $tok = issue($a_admin, $C2, "Dad's phone");
    my $clients = worker_clients($ngx, $tok, "$V/app/messages");
    my @pids = sort keys %$clients;
    is(scalar @pids, 2, 'the token works, on each of the 2 workers');

    sync(snapshot(), 'a sync without C2 retires the contact');
    for my $pid (@pids) {
        my ($st, $who) = ua_status($ngx, $clients->{$pid},
                                   GET => "$V/app/messages", $tok);
        is("$st $who", "401 $pid", "retired: the token is refused on $pid");
    }

    sync(snapshot(with_c2 => 1), 'the next sync brings C2 back');
    for my $pid (@pids) {
        my ($st, $who) = ua_status($ngx, $clients->{$pid},
                                   GET => "$V/app/messages", $tok);
        is("$st $who", "200 $pid",
           "restored: the token works at once on $pid");
    }

    my @back = Msgr::Test::burst($ngx, count => 10, method => 'GET',
                                 path => "$V/app/messages", key => $tok);
    is(scalar(grep { $_->{status} == 200 } @back), 10,
       'and on fresh connections, 10 of 10')
        or diag(join ' ', map { $_->{status} } @back);

    # a token revoked meanwhile does not come back with its contact
    my $other = issue($a_admin, $C2, 'old phone');
    my $r = req(GET => '/app/messages', $other);
    is($r->{status}, 200, 'a second token of C2 works');
    my $id = ($other =~ $TOKEN_RE)[1];
    $r = req(DELETE => "/contacts/$C2/app-tokens/$id", $a_admin);
    is($r->{status}, 204, 'it is revoked');
    sync(snapshot(), 'C2 dropped again');
    sync(snapshot(with_c2 => 1), 'and back again');
    my @rev = Msgr::Test::burst($ngx, count => 6, method => 'GET',
                                path => "$V/app/messages", key => $other);
    is(scalar(grep { $_->{status} == 401 } @rev), 6,
       'the revoked token stays refused');
    @back = Msgr::Test::burst($ngx, count => 6, method => 'GET',
                              path => "$V/app/messages", key => $tok);
    is(scalar(grep { $_->{status} == 200 } @back), 6,
       'the live one works again');
}

Msgr::Test::finish();
