#!/usr/bin/perl
# Limits a client can hit: the body size limit, and what a burst of
# requests sees when the per-worker pool and wait queue are full.

use strict;
use warnings;
use Test::More;
use lib 't/lib';
use Msgr::Test;

my $pg     = Msgr::Test::pg_start();
my $school = Msgr::Test::school($pg, 'Limits Lyceum');
my $key    = Msgr::Test::key($pg, $school, 'admin');

# --- msgr_max_body ---------------------------------------------------------

{
    my $ngx = Msgr::Test::nginx_start($pg, max_body => '1m',
        allow => [ qr/\[error\] .*client intended to send too large body: /
                   . qr/2097163 bytes, .*"POST \/msgr\/v1\/school / ]);

    my $big = '{"name":"' . ('x' x (2 * 1024 * 1024)) . '"}';
    my $r = $ngx->req(POST => '/msgr/v1/school', key => $key, body => $big,
                      headers => { 'Content-Type' => 'application/json' },
                      timeout => 30);
    Msgr::Test::problem_ok($r, 413, 'a 2 MiB body with msgr_max_body 1m: 413');

    $r = $ngx->req(POST => '/msgr/v1/school', key => $key,
                   body => { name => 'Small' });
    isnt($r->{status}, 413, 'a small body is not 413');
    Msgr::Test::problem_ok($r, 405, 'a small body on GET-only /school: 405');
    like($r->{headers}{allow} // '', qr/\bGET\b/, '405 names GET in Allow');

    $ngx->stop;
}

# --- a burst against a small pool ------------------------------------------

sub burst_check {
    my ($ngx, $name, $all_ok) = @_;
    my @res = Msgr::Test::burst($ngx, count => 200, method => 'GET',
                                path => '/msgr/v1/school', key => $key,
                                deadline => 60);
    my %by;
    $by{ $_->{status} }++ for @res;
    my $summary = join ', ', map { "$_: $by{$_}" } sort keys %by;
    note("$name: $summary");

    my @hung = grep { !$_->{status} } @res;
    is(scalar @hung, 0, "$name: every request got an answer within 60 s")
        or diag(join "\n", map { $_->{error} // "no status" } grep { defined } @hung[0 .. 4]);

    my @other = grep { $_->{status} && $_->{status} != 200
                       && $_->{status} != 503 } @res;
    is(scalar @other, 0, "$name: every answer is 200 or 503")
        or diag("statuses: $summary\n" . ($other[0]{content} // ''));

    my @no_retry = grep { $_->{status} == 503
                          && !defined $_->{headers}{'retry-after'} } @res;
    is(scalar @no_retry, 0, "$name: every 503 carries Retry-After");

    my @bad_503 = grep {
        $_->{status} == 503
        && ($_->{headers}{'content-type'} // '')
           !~ m{^application/problem\+json\b}
    } @res;
    is(scalar @bad_503, 0, "$name: every 503 is problem+json");

    my @ok = grep { $_->{status} == 200 } @res;
    if ($all_ok) {
        is(scalar @ok, 200, "$name: all 200 requests answered 200")
            or diag("statuses: $summary");
    } else {
        cmp_ok(scalar @ok, '>', 0, "$name: some answers are 200");
    }

    my @wrong = grep { $_->{content} !~ /"id"\s*:\s*$school\b/ } @ok;
    is(scalar @wrong, 0, "$name: every 200 carries the school");
}

{
    my $ngx = Msgr::Test::nginx_start($pg, pool => 2);
    burst_check($ngx, 'pool 2, queue 64', 0);

    # still healthy afterwards
    my $r = $ngx->req(GET => '/msgr/v1/school', key => $key);
    is($r->{status}, 200, 'pool 2, queue 64: a request after the burst: 200');
    $ngx->stop;
}

{
    my $ngx = Msgr::Test::nginx_start($pg, pool => 2, queue => 256);
    burst_check($ngx, 'pool 2, queue 256', 1);
    $ngx->stop;
}

Msgr::Test::finish();
