#!/usr/bin/perl

# The build and run path, on a copy of the checkout in a temporary
# directory (the copy reuses this checkout's build/, so nothing big is
# rebuilt):
#
# - a second `make` with nothing changed does nothing;
# - `make run` builds what it runs (the module, msgrctl), not the unit tests;
# - a changed header rebuilds the module's objects;
# - each step prints one line, the compiler's output goes to build/build.log,
#   and a failing step shows the end of that log;
# - t/unit.t rebuilds a unit test whose source changed instead of running
#   the stale binary;
# - as root, scripts/run.sh in a checkout the postgres user cannot reach
#   (under a parent of mode 0700, as a clone in /root is) keeps the cluster
#   under /var/lib/msgr/, says so in its banner, serves the API, and leaves
#   the parent's mode alone.

use strict;
use warnings;

use Cwd qw(abs_path);
use File::Basename qw(dirname);
use File::Path qw(remove_tree);
use File::Temp qw(tempdir);
use HTTP::Tiny;
use POSIX qw(:sys_wait_h);
use JSON::PP;
use Test::More;
use Time::HiRes qw(sleep time);
use lib 't/lib';
use Msgr::Test;

my $ROOT = abs_path(dirname(abs_path(__FILE__)) . '/..');

# a missing build fails (it is never a skip)
my @missing = grep { !-e "$ROOT/build/$_" }
              qw(ngx_http_msgr_module.so msgrctl nginx/objs/Makefile);
if (@missing) {
    fail("build/$_ is built") for @missing;
    diag('run `make` first');
    done_testing();
    exit;
}

# make's own variables would leak into the copy's make
delete @ENV{qw(MAKEFLAGS MFLAGS MAKELEVEL MAKEOVERRIDES)};
# the copy builds into build/ (make test-asan runs this file too)
delete $ENV{MSGR_BUILD};


# sh(cmd, dir) -> (exit code, stdout and stderr together)
sub sh {
    my ($cmd, $dir) = @_;
    my $out = `cd '$dir' && ( $cmd ) 2>&1 </dev/null`;
    return ($? >> 8, $out);
}

# Times in the past (make warns of files from the future): the sources at
# T0, the build at T0 + 100, each later change 100 s after the one before.
my $T0 = int(time) - 1000;
my $CHANGE = $T0 + 100;

sub change {
    $CHANGE += 100;
    utime $CHANGE, $CHANGE, @_;
}

# A copy of the checkout: its sources as they are (with their times), and
# its build/ made newer than every source, as after a `make`.
sub checkout_copy {
    my ($parent) = @_;
    my $co = "$parent/msgr";
    mkdir $co or die "mkdir $co: $!";
    my @what = grep { -e "$ROOT/$_" }
        qw(Makefile config ngx_http_msgr_module.c src t scripts conf sql share
           docs README.md build);
    system('cp', '-a', (map { "$ROOT/$_" } @what), "$co/") == 0
        or die "cp into $co failed";
    remove_tree("$co/var");
    utime $T0, $T0, map { chomp; $_ }
        `find '$co' -path '$co/build' -prune -o -type f -print`;
    utime $T0 + 100, $T0 + 100, map { chomp; $_ } `find '$co/build' -print`;
    return $co;
}

my $tmp = tempdir('msgr-make-XXXXXX', TMPDIR => 1, CLEANUP => 0);
my $co  = checkout_copy($tmp);


# --- nothing changed: nothing done ------------------------------------------

{
    my ($rc, $out) = sh('make -q all', $co);
    is($rc, 0, 'make -q: everything is up to date right after a build')
        or diag("make -n all would run:\n" . (sh('make -n all', $co))[1]);

    my $t0 = time;
    ($rc, $out) = sh('make', $co);
    my $dt = time - $t0;
    is($rc, 0, 'a second make exits 0');
    unlike($out, qr/^build: /m, 'a second make builds nothing')
        or diag($out);
    cmp_ok($dt, '<', 10, 'a second make takes less than 10 s')
        or diag($out);
}


# --- make run builds what it runs ---------------------------------------------

{
    change("$co/t/unit/text.c", "$co/src/ctl/msgrctl.c");

    my ($rc, $out) = sh('make -n run', $co);
    like($out, qr{-o build/msgrctl\b},
         'make run rebuilds msgrctl when its source changed')
        or diag($out);
    unlike($out, qr{build/unit/}, 'make run does not build the unit tests')
        or diag($out);
    like($out, qr{scripts/run\.sh}, 'make run runs scripts/run.sh')
        or diag($out);

    ($rc, $out) = sh('make -n test', $co);
    like($out, qr{-o build/unit/text\b}, 'make test builds the unit tests')
        or diag($out);
}


# --- a header rebuilds the module ---------------------------------------------

{
    change("$co/src/msgr_text.h");

    my ($rc, $out) = sh('make -n module', $co);
    like($out, qr{find build/nginx/objs/addon -name '\*\.o' -delete},
         'a changed header drops the module\'s objects')
        or diag($out);
    like($out, qr{-f objs/Makefile modules},
         'and builds the module again')
        or diag($out);

    # back as it was: the unit tests below need not all be rebuilt
    utime $T0, $T0, "$co/src/msgr_text.h";
}


# --- one line per step, the rest in build/build.log -------------------------

{
    my ($rc, $out) = sh('make ctl', $co);
    is($rc, 0, 'make ctl builds msgrctl') or diag($out);
    is($out, "build: compiler output goes to build/build.log\n"
           . "build: build/msgrctl\n",
       'make ctl prints one line per step and names the log');
    my $log = Msgr::Test::_slurp("$co/build/build.log");
    like($log, qr{-o build/msgrctl\b}, 'build/build.log has the command');

    # a compile error: the end of the log is shown
    open(my $fh, '>>', "$co/src/ctl/msgrctl.c") or die $!;
    print $fh "\nthis is not C;\n";
    close $fh;
    sleep 1.1;          # newer than the msgrctl just built
    utime undef, undef, "$co/src/ctl/msgrctl.c";

    ($rc, $out) = sh('make ctl', $co);
    isnt($rc, 0, 'make ctl fails on a compile error');
    like($out, qr{build: build/msgrctl failed .*build/build\.log}s,
         'the failure names build/build.log')
        or diag($out);
    like($out, qr{msgrctl\.c:\d+:\d+: error}, 'and shows the compiler error')
        or diag($out);
}


# --- t/unit.t never runs a stale unit test -----------------------------------

{
    my $src = "$co/t/unit/text.c";
    my $c = Msgr::Test::_slurp($src);
    $c =~ s/"ASCII without case"/"rebuilt from the changed source"/
        or die "t/unit/text.c: no \"ASCII without case\" test to rename";
    Msgr::Test::_spew($src, $c);
    change($src);

    my ($rc, $out) = sh('prove -v t/unit.t', $co);
    is($rc, 0, 'prove t/unit.t passes after a unit test\'s source changed')
        or diag($out);
    like($out, qr/ok \d+ - rebuilt from the changed source/,
         't/unit.t ran the test built from the changed source')
        or diag($out);
    unlike($out, qr/ASCII without case/, 'not the stale binary');
}


# --- make run as root in a checkout the postgres user cannot reach -----------

SKIP: {
    skip 'needs root: run.sh runs PostgreSQL as the postgres user', 14
        unless $> == 0;

    my $parent = tempdir('msgr-home-XXXXXX', TMPDIR => 1, CLEANUP => 0);
    chmod 0700, $parent or die "chmod $parent: $!";
    my $run = "$parent/msgr";
    mkdir $run or die "mkdir $run: $!";
    system('cp', '-a', "$ROOT/scripts", "$ROOT/conf", "$ROOT/sql",
           "$ROOT/share", "$run/") == 0
        or die "cp into $run failed";
    # this checkout's build, as built there
    symlink("$ROOT/build", "$run/build") or die "symlink: $!";

    my $port   = Msgr::Test::free_port();
    my $pgport = Msgr::Test::free_port();
    # stands for /var/lib/msgr: reachable by the postgres user
    my $state  = tempdir('msgr-state-XXXXXX', TMPDIR => 1, CLEANUP => 0);
    chmod 0755, $state or die "chmod $state: $!";
    my $outf   = "$parent/run.out";

    my $pid = fork() // die "fork: $!";
    if ($pid == 0) {
        open(STDIN, '<', '/dev/null');
        open(STDOUT, '>', $outf) or die "$outf: $!";
        open(STDERR, '>&', \*STDOUT);
        $ENV{MSGR_PORT}       = $port;
        $ENV{MSGR_PG_PORT}    = $pgport;
        $ENV{MSGR_STATE_ROOT} = "$state/msgr";
        exec 'bash', "$run/scripts/run.sh" or die "exec: $!";
    }

    my $deadline = time + 180;
    my $out = '';
    while (time < $deadline) {
        $out = Msgr::Test::_slurp($outf);
        last if $out =~ /Ctrl-C stops/;
        last if waitpid($pid, WNOHANG) == $pid;
        sleep 0.2;
    }

    like($out, qr/^msgr is running:/m, 'run.sh starts and prints its banner')
        or diag($out);
    my ($dir) = $out =~ m{^\s+cluster\s+(\Q$state\E/msgr/[0-9a-f]+)/pg$}m;
    ok($dir, 'the banner says the cluster lives under MSGR_STATE_ROOT')
        or diag($out);
    like($out, qr/the postgres user cannot reach \Q$run\E\/var/,
         'and why') or diag($out);
    ok($dir && -f "$dir/pg/PG_VERSION", 'the cluster is there');
    is($dir ? Msgr::Test::_slurp("$dir/checkout") : '', "$run\n",
       'its checkout file names the checkout');

    my $key = Msgr::Test::_slurp("$run/var/demo-admin-key");
    chomp $key;
    my $r = HTTP::Tiny->new(timeout => 10)->get(
        "http://127.0.0.1:$port/msgr/v1/school",
        { headers => { Authorization => "Bearer $key" } });
    is($r->{status}, 200, 'GET /v1/school with the demo key: 200')
        or diag("$r->{status} $r->{content}\n$out");
    like($r->{content}, qr/"name":"Demo School"/, 'the Demo School');

    # a message composed through the API reaches var/outbox/
    my $ua = HTTP::Tiny->new(timeout => 30);
    my %h = (Authorization => "Bearer $key",
             'Content-Type' => 'application/json');
    $r = $ua->post("http://127.0.0.1:$port/msgr/v1/mis/sync",
                   { headers => \%h, content => Msgr::Test::_slurp(
                       "$ROOT/docs/examples/snapshot.json") });
    is($r->{status}, 200, 'the example MIS snapshot synced')
        or diag($r->{content});
    $r = $ua->get("http://127.0.0.1:$port/msgr/v1/groups",
                  { headers => \%h });
    my ($group) = $r->{content} =~ /"id":(\d+)/;
    $r = $ua->post("http://127.0.0.1:$port/msgr/v1/messages",
                   { headers => \%h,
                     content => qq({"channels":["sms","email"],)
                              . qq("to":{"groups":[$group]},"subject":"Hi",)
                              . qq("body":"Dear {first_name}"}) });
    is($r->{status}, 201, 'a message sent') or diag($r->{content});
    my ($msg) = $r->{content} =~ /"id":(\d+)/;
    my $states = '';
    for (1 .. 100) {
        $r = $ua->get("http://127.0.0.1:$port/msgr/v1/messages/$msg",
                      { headers => \%h });
        ($states) = $r->{content} =~ /"states":(\{[^\n]*?\}\})/;
        last if ($states // '') !~ /queued|sending/ && $states;
        sleep 0.1;
    }
    my $st = JSON::PP->new->decode($states // '{}');
    is(join(' ', map { "$_:" . join(',', sort keys %{ $st->{$_} }) }
                 sort keys %$st),
       'email:delivered sms:delivered',
       'msgr-sender delivered every SMS and email') or diag($r->{content});
    ok(-s "$run/var/outbox/sms.jsonl" && -s "$run/var/outbox/email.jsonl",
       'they are in var/outbox/') or diag(`ls -la $run/var $run/var/outbox 2>&1`);
    like($out = Msgr::Test::_slurp($outf), qr{outbox\s+sent messages go to},
         'the banner says where sent messages go');

    kill 'TERM', $pid;
    my $t0 = time;
    while (waitpid($pid, WNOHANG) == 0 && time - $t0 < 60) {
        sleep 0.1;
    }

    is(sprintf('%04o', (stat $parent)[2] & 07777), '0700',
       'the parent directory is still mode 0700');

    ok(!kill(0, $pid), 'run.sh exits on SIGTERM');
    if (kill 0, $pid) {
        kill 'KILL', $pid;
        waitpid($pid, 0);
    }
    if ($dir && -f "$dir/pg/postmaster.pid") {
        system('runuser', '-u', 'postgres', '--',
               "$Msgr::Test::PGBIN/pg_ctl", '-D', "$dir/pg", '-m',
               'immediate', '-w', 'stop');
    }
    remove_tree($parent, $state);
}

remove_tree($tmp);

done_testing();
