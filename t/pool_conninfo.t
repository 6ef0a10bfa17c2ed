#!/usr/bin/perl

# msgr_pg's connection string: host names, which libpq would resolve inside
# a worker, are refused at configuration time in favour of hostaddr; IP
# addresses and Unix socket directories are fine; gssencmode is the
# administrator's when given; TCP keepalives are msgr's (30 s).  And the pool with every event method (epoll,
# poll, select) through PostgreSQL restarts, with a connection string where
# libpq changes socket while it connects (a first address that refuses).

use strict;
use warnings;

use Test::More;
use Time::HiRes qw(sleep time);

use lib 't/lib';
use Msgr::Test;

my $V = '/msgr/v1';
my $port = Msgr::Test::free_port();

sub server {
    return "    server {\n        listen 127.0.0.1:$port;\n"
         . "        location /msgr/ { msgr_api; }\n    }\n";
}

sub config {
    my ($conninfo) = @_;
    return Msgr::Test::nginx_test_config(qq{    msgr_pg "$conninfo";\n}
                                         . server());
}

{
    my ($rc, $out) = config('host=localhost port=5432 dbname=msgr');
    isnt($rc, 0, 'host=localhost: nginx -t fails');
    like($out, qr/\[emerg\].*"host=localhost" is a host name.*"hostaddr="/,
         'host=localhost: the message names hostaddr') or diag($out);

    ($rc, $out) = config('host=127.0.0.1,db.example.org port=5432,5432');
    isnt($rc, 0, 'a host list with a name in it: nginx -t fails');
    like($out, qr/"host=db\.example\.org" is a host name/,
         'the message names the host name') or diag($out);

    for my $ok ('hostaddr=127.0.0.1 port=5432 dbname=msgr',
                'host=db.example.org hostaddr=127.0.0.1 dbname=msgr',
                'host=127.0.0.1 port=5432 dbname=msgr',
                'host=::1 port=5432 dbname=msgr',
                'host=/var/run/postgresql dbname=msgr',
                'host=/tmp,127.0.0.1 port=5432,5432 dbname=msgr',
                'dbname=msgr')
    {
        ($rc, $out) = config($ok);
        is($rc, 0, "\"$ok\": accepted") or diag($out);
    }
}


# ---------------------------------------------------------------------------
# running

my $pg = Msgr::Test::pg_start();
my $A = Msgr::Test::school($pg, 'Alpha Academy');
my $a_admin = Msgr::Test::key($pg, $A, 'admin');

# a port nobody listens on, first: libpq tries it, fails, takes another
# socket for the second address
my $closed = Msgr::Test::free_port();
my $two = "hostaddr=127.0.0.1,127.0.0.1 port=$closed,"
        . $pg->port . " dbname=msgr user=msgr";

my $CHURN = [ qr/cannot connect to PostgreSQL/,
              qr/connecting to PostgreSQL timed out/,
              qr/reading from PostgreSQL failed/,
              qr/PostgreSQL closed the connection/,
              qr/PostgreSQL query \S+ timed out/ ];

sub until_200 {
    my ($ngx, $secs) = @_;
    my $deadline = time + $secs;
    my $r;
    while (time < $deadline) {
        $r = $ngx->req(GET => "$V/school", key => $a_admin);
        return $r if $r->{status} == 200;
        sleep 0.2;
    }
    return $r;
}

for my $method ('', 'poll', 'select') {
    my $name = $method || 'default events';

    # Debian's nginx has epoll only; MSGR_NGINX may name one built from
    # nginx's source with --with-compat --with-poll_module
    # --with-select_module and without threads (poll and select cannot
    # serve thread pools), MSGR_MODULE the module built with it
    if ($method) {
        my ($rc, $out) = Msgr::Test::nginx_test_config(
            qq{    msgr_pg "$two";
} . server(), events => "use $method;");
        if ($out =~ /invalid event type/) {
            SKIP: { skip("$Msgr::Test::NGINX has no $method module", 1) }
            next;
        }
    }

    my $ngx = Msgr::Test::nginx_start(
        $pg, workers => 2, pool => 2, pg => $two, allow => $CHURN,
        ($method ? (events => "use $method;") : ()));

    is(until_200($ngx, 10)->{status}, 200,
       "$name: connected past an address that refuses");

    # many requests at once: both workers, every pool connection
    my @res = Msgr::Test::burst($ngx, count => 40, path => "$V/school",
                                key => $a_admin);
    is(scalar(grep { $_->{status} == 200 } @res), 40,
       "$name: 40 requests at once, all 200");

    # TCP keepalives within 30 s, not the system's two hours
    if (!$method) {
        my $pgport = $pg->port;
        my $ss = `ss -tnop state established '( dport = :$pgport )' 2>&1`;
        my @mine = grep { /nginx/ } split /\n/, $ss;
        my @slow = grep { !/timer:\(keepalive,[\d.]+(?:ms|sec),/ } @mine;
        ok(@mine && !@slow, "$name: nginx's connections keep alive within "
                          . "30 s") or diag($ss);
    }

    # churn: idle connections lost, then PostgreSQL back
    for my $round (1 .. 2) {
        $pg->stop;
        my $r = $ngx->req(GET => "$V/health");
        is($r->{status}, 503, "$name, restart $round: 503 while it is down");
        $pg->start;
        is(until_200($ngx, 15)->{status}, 200,
           "$name, restart $round: 200 again");
        @res = Msgr::Test::burst($ngx, count => 20, path => "$V/school",
                                 key => $a_admin);
        is(scalar(grep { $_->{status} == 200 } @res), 20,
           "$name, restart $round: 20 at once, all 200");
    }

    $ngx->stop;
    my @bad = $ngx->bad_log_lines;
    ok(!@bad, "$name: no alert or crash in the log") or diag(join "\n", @bad);
}


# ---------------------------------------------------------------------------
# gssencmode is the administrator's when given

{
    my $ngx = Msgr::Test::nginx_start(
        $pg, workers => 1, pg => $pg->conninfo . ' gssencmode=require',
        allow => [ qr/GSSAPI encryption required/, @$CHURN ]);
    my $r = $ngx->req(GET => "$V/health");
    is($r->{status}, 503, 'gssencmode=require, and no GSSAPI: 503');
    sleep 0.5;
    like($ngx->error_log, qr/GSSAPI encryption required/,
         'gssencmode=require is kept: libpq says why it cannot connect');
    $ngx->stop;
}

Msgr::Test::finish();
