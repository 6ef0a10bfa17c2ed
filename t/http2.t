#!/usr/bin/perl

# The API over HTTP/2 (listen ... http2, curl --http2-prior-knowledge): it
# answers as over HTTP/1, and a client that goes away while its MIS sync
# is being parsed in nginx's thread pool leaves nothing behind: the request
# is finalized when the thread is done, so nginx shuts down gracefully at
# once (an unfinalized stream keeps its connection, and the worker, alive:
# no exit on QUIT, "open socket ... left" when it is finally killed).

use strict;
use warnings;

use File::Temp qw(tempdir);
use Test::More;
use Time::HiRes qw(sleep time);

use lib 't/lib';
use Msgr::Test;

my ($curl) = grep { -x } map { "$_/curl" } split /:/, $ENV{PATH} // '';
plan skip_all => 'curl is needed' unless $curl;
plan skip_all => 'curl without HTTP/2'
    unless `$curl -V` =~ /\bHTTP2\b/;

my $pg = Msgr::Test::pg_start();

my $A     = Msgr::Test::school($pg, 'Alpha Academy');
my $admin = Msgr::Test::key($pg, $A, 'admin');

my $tmp = tempdir('msgr-h2-XXXXXX', TMPDIR => 1, CLEANUP => 1);

# A snapshot big enough to keep a thread busy for a while: many contacts
# with national phone numbers to normalise, built as text (fast).
my $snap = "$tmp/snapshot.json";
{
    open(my $fh, '>', $snap) or die "$snap: $!";
    print $fh '{"default_country":"GB","students":[],"staff":[],'
            . '"groups":[],"contacts":[';
    for my $i (1 .. 60000) {
        print $fh ',' if $i > 1;
        printf $fh '{"mis_id":"C%d","title":"Ms","first_name":"Firstname%d",'
                 . '"last_name":"Lastname%d","email":"parent%d@example.org",'
                 . '"mobile_phone":"07700 9%05d","home_phone":"020 7946 %04d",'
                 . '"work_phone":null,"language":"en"}',
                 $i, $i, $i, $i, $i % 100000, $i % 10000;
    }
    print $fh ']}';
    close $fh;
}
my $size = -s $snap;

# a request is logged when nginx finalizes it, whatever its end
my $ngx = Msgr::Test::nginx_start(
    $pg, workers => 1, listen => 'http2', max_body => '64m',
    timeout => '30s',
    http   => "    log_format ends '\$request \$status';",
    server => "        access_log $tmp/access.log ends;");

# curl's arguments for one request over HTTP/2 with prior knowledge
sub curl_args {
    my ($method, $path, @more) = @_;
    return ($curl, '-s', '--http2-prior-knowledge', '-o', "$tmp/body",
            '-w', '%{http_code} %{http_version}', '-X', $method,
            '-H', "Authorization: Bearer $admin", @more,
            $ngx->url($path));
}

{
    my $out = `@{[ join ' ', map { "'$_'" } curl_args(GET =>
                                                      '/msgr/v1/school') ]}`;
    is($out, '200 2', 'GET /v1/school over HTTP/2: 200');
    like(Msgr::Test::_slurp("$tmp/body"), qr/"Alpha Academy"/,
         '... the school');
}

{
    my $pid = fork() // die "fork: $!";
    if ($pid == 0) {
        open(STDOUT, '>', '/dev/null');
        open(STDERR, '>', "$tmp/trace");
        exec(curl_args(POST => '/msgr/v1/mis/sync', '-v',
                       '-H', 'Content-Type: application/json',
                       '--data-binary', "\@$snap"))
            or POSIX::_exit(127);
    }

    # the whole body sent (curl -v says so), then a moment for nginx to
    # start parsing it
    my $deadline = time + 30;
    my $sent = 0;
    until ($sent || time > $deadline) {
        sleep 0.01;
        $sent = Msgr::Test::_slurp("$tmp/trace") =~ /completely uploaded/;
    }
    ok($sent, 'the MIS sync\'s snapshot was sent over HTTP/2');
    sleep 0.3;

    kill 'KILL', $pid;
    waitpid($pid, 0);

    # the thread finishes its parse, and then the request must end
    my $t1 = time;
    my $logged = 0;
    until ($logged || time - $t1 > 30) {
        sleep 0.1;
        $logged = Msgr::Test::_slurp("$tmp/access.log")
                  =~ m{^POST /msgr/v1/mis/sync HTTP/2\.0 }m;
    }
    ok($logged, 'the request is finalized once the thread is done')
        or diag(Msgr::Test::_slurp("$tmp/access.log"));

    my $master = $ngx->pid;
    kill 'QUIT', $master;
    my $t0 = time;
    while (time - $t0 < 20) {
        waitpid($master, POSIX::WNOHANG());
        last unless kill 0, $master;
        last if Msgr::Test::_slurp("/proc/$master/stat") =~ /^\d+ \(.*\) Z /s;
        sleep 0.05;
    }
    my $gone = !kill(0, $master)
             || Msgr::Test::_slurp("/proc/$master/stat") =~ /^\d+ \(.*\) Z /s;
    ok($gone, 'nginx shuts down gracefully at once after the client left')
        or diag(sprintf "still running after %.1f s", time - $t0);
    unlike($ngx->error_log, qr/open socket #\d+ left/,
           '... with no connection left open');
}

# check_logs: no "open socket ... left" alert
Msgr::Test::finish();
