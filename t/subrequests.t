#!/usr/bin/perl

# The API behind nginx's subrequests: a location guarded by auth_request on
# /msgr/v1/health or /msgr/v1/settings (the client's Authorization header
# goes along), an SSI page including /msgr/v1/health, and a mirror.  Their
# answers come from PostgreSQL, so the parent request goes on only if the
# module runs nginx's posted requests after a query completes; otherwise
# it waits until the client gives up.  The headers the module adds are seen
# by what walks nginx's response headers: auth_request passes the API's
# WWW-Authenticate challenge on, $sent_http_* variables read ETag and
# Retry-After.

use strict;
use warnings;

use File::Temp qw(tempdir);
use IO::Select;
use IO::Socket::INET;
use Test::More;
use Time::HiRes qw(time);

use lib 't/lib';
use Msgr::Test;

my $pg = Msgr::Test::pg_start();

my $A     = Msgr::Test::school($pg, 'Alpha Academy');
my $admin = Msgr::Test::key($pg, $A, 'admin');

# the static side of the server: a guarded file, an SSI page, a mirrored file
my $html = tempdir('msgr-html-XXXXXX', TMPDIR => 1, CLEANUP => 1);
chmod 0755, $html;
for (['guarded.txt', "guarded content\n"],
     ['keyed.txt',   "keyed content\n"],
     ['mirrored.txt', "mirrored content\n"],
     ['page.html',
      "before <!--# include virtual=\"/msgr/v1/health\" --> after\n"])
{
    open(my $fh, '>', "$html/$_->[0]") or die "$html/$_->[0]: $!";
    print $fh $_->[1];
    close $fh;
    chmod 0644, "$html/$_->[0]";
}

my $server = <<"CONF";
        root $html;
        location = /guarded.txt {
            auth_request /msgr/v1/health;
        }
        location = /keyed.txt {
            auth_request /msgr/v1/settings;
        }
        location = /page.html {
            ssi on;
            ssi_types *;
        }
        location = /mirrored.txt {
            mirror /msgr/v1/health;
        }
CONF

# the module's own headers, read back by nginx through its variables
my $location = <<'CONF';
            add_header X-Echo-ETag $sent_http_etag always;
            add_header X-Echo-Retry $sent_http_retry_after always;
            add_header X-Echo-Challenge $sent_http_www_authenticate always;
CONF

# one worker: every request below meets the same worker's state
my $ngx = Msgr::Test::nginx_start(
    $pg, workers => 1, server => $server, location => $location,
    allow => [qr/msgr: cannot connect to PostgreSQL/,
              qr/auth request unexpected status: 503/]);

# The whole exchange of one HTTP/1.0 request on its own connection, read to
# EOF: (raw response, seconds taken); the response is '' after $limit s.
sub raw {
    my ($path, $limit, %h) = @_;
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                                  PeerPort => $ngx->port, Proto => 'tcp')
        or die "connect: $!";
    my $req = "GET $path HTTP/1.0\r\nHost: localhost\r\n"
            . join('', map { "$_: $h{$_}\r\n" } sort keys %h) . "\r\n";
    syswrite($s, $req);
    my $t0  = time;
    my $sel = IO::Select->new($s);
    my $in  = '';
    my $eof = 0;
    while (time - $t0 < $limit) {
        last unless $sel->can_read($limit - (time - $t0));
        my $n = sysread($s, $in, 65536, length $in);
        if (!$n) {
            $eof = 1;
            last;
        }
    }
    close $s;
    return ($eof ? $in : '', time - $t0);
}

sub status_of { $_[0] =~ m{^HTTP/1\.\d (\d+)} ? $1 : 0 }

sub header_of {
    my ($res, $name) = @_;
    my ($head) = split /\r\n\r\n/, $res, 2;
    return $head =~ /^\Q$name\E:\s*(.*?)\r?$/mi ? $1 : undef;
}

sub body_of { (split /\r\n\r\n/, $_[0], 2)[1] // '' }


# ---------------------------------------------------------------------------
# auth_request

{
    my ($res, $t) = raw('/guarded.txt', 5);
    is(status_of($res), 200,
       'auth_request /msgr/v1/health: the guarded file is served')
        or diag(sprintf "after %.1f s: %s", $t, $res);
    is(body_of($res), "guarded content\n", '... with its content');
    cmp_ok($t, '<', 3, '... at once, not when the client gives up');
}

{
    my ($res, $t) = raw('/keyed.txt', 5, Authorization => "Bearer $admin");
    is(status_of($res), 200,
       'auth_request /msgr/v1/settings with the client\'s key: served')
        or diag(sprintf "after %.1f s: %s", $t, $res);
    is(body_of($res), "keyed content\n", '... with its content');
    cmp_ok($t, '<', 3, '... at once');
}

{
    # a key never seen: the key is looked up in PostgreSQL
    my $other = Msgr::Test::key($pg, $A, 'staff');
    $pg->psql("UPDATE msgr_api_keys SET revoked_at = now()"
              . " WHERE key_id = '" . Msgr::Test::key_id($other) . "'");
    my ($res, $t) = raw('/keyed.txt', 5, Authorization => "Bearer $other");
    is(status_of($res), 401, 'auth_request with a revoked key: 401')
        or diag(sprintf "after %.1f s: %s", $t, $res);
    cmp_ok($t, '<', 3, '... at once');
    is(header_of($res, 'WWW-Authenticate'), 'Bearer realm="msgr"',
       '... with the API\'s challenge passed on by auth_request');
}

{
    my ($res, $t) = raw('/keyed.txt', 5);
    is(status_of($res), 401, 'auth_request without a key: 401');
    is(header_of($res, 'WWW-Authenticate'), 'Bearer realm="msgr"',
       '... with the API\'s challenge passed on by auth_request');
}


# ---------------------------------------------------------------------------
# SSI

{
    my ($res, $t) = raw('/page.html', 5);
    is(status_of($res), 200, 'an SSI page including /msgr/v1/health: 200')
        or diag(sprintf "after %.1f s: %s", $t, $res);
    is(body_of($res),
       "before {\"status\":\"ok\",\"database\":\"ok\"}\n after\n",
       '... with the API\'s answer in the page');
    cmp_ok($t, '<', 3, '... at once');
}


# ---------------------------------------------------------------------------
# mirror: the mirrored request's connection ends once both are done

{
    my ($res, $t) = raw('/mirrored.txt', 5);
    is(status_of($res), 200, 'a file mirrored to /msgr/v1/health: 200')
        or diag(sprintf "after %.1f s: %s", $t, $res);
    is(body_of($res), "mirrored content\n", '... with its content');
    cmp_ok($t, '<', 3, '... and the connection closes at once');
}


# ---------------------------------------------------------------------------
# the module's headers as nginx's variables see them

{
    my $r = $ngx->req(GET => '/msgr/v1/settings', key => $admin);
    is($r->{status}, 200, 'GET /v1/settings: 200');
    ok(defined $r->{headers}{etag}, '... with an ETag');
    is($r->{headers}{'x-echo-etag'}, $r->{headers}{etag},
       '... which $sent_http_etag reads');

    $r = $ngx->req(GET => '/msgr/v1/settings');
    is($r->{status}, 401, 'GET /v1/settings without a key: 401');
    is($r->{headers}{'x-echo-challenge'}, 'Bearer realm="msgr"',
       '... whose challenge $sent_http_www_authenticate reads');
}

{
    # PostgreSQL down: health answers 503 with Retry-After
    $pg->stop;
    my $r = $ngx->req(GET => '/msgr/v1/health');
    is($r->{status}, 503, 'GET /v1/health with PostgreSQL down: 503');
    is($r->{headers}{'retry-after'}, '1', '... Retry-After: 1');
    is($r->{headers}{'x-echo-retry'}, '1',
       '... which $sent_http_retry_after reads');

    # and a guarded file is refused at once, not left waiting
    my ($res, $t) = raw('/guarded.txt', 5);
    is(status_of($res), 500,
       'auth_request /msgr/v1/health with PostgreSQL down: refused')
        or diag(sprintf "after %.1f s: %s", $t, $res);
    cmp_ok($t, '<', 3, '... at once');
    $pg->start;
}

Msgr::Test::finish();
