#!/usr/bin/perl

# Runs every unit test binary in build/unit/ (built by `make units` from
# t/unit/*.c; MSGR_BUILD=build-asan: build-asan/unit/, with the sanitizers,
# whose reports go to stderr and fail the binary's exit status) and reports its TAP as a subtest: one ok() per test line,
# then a check that it printed its plan, ran as many tests as planned and
# exited 0.
#
# It runs `make units` first (a no-op when nothing changed), so that a
# plain `prove` after an edit never runs a binary older than its sources;
# a binary still older than one of its sources after that fails.

use strict;
use warnings;

use Cwd qw(abs_path);
use File::Basename qw(basename dirname);
use POSIX qw(WIFEXITED WEXITSTATUS WIFSIGNALED WTERMSIG);
use Test::More;

my $ROOT    = abs_path(dirname(abs_path(__FILE__)) . '/..');
my $BUILD   = $ENV{MSGR_BUILD} // 'build';
my $UNITS   = ($BUILD =~ m{^/} ? $BUILD : "$ROOT/$BUILD") . '/unit';
my $TIMEOUT = $ENV{MSGR_UNIT_TIMEOUT} // 120;

# make's output goes to build/build.log; shown here only when it fails
{
    local $ENV{MAKEFLAGS};
    local $ENV{MFLAGS};
    my $out = `make --no-print-directory -C '$ROOT' units 2>&1`;
    ok($? == 0, 'make units: the unit tests are built from their sources')
        or diag($out);
}

my @bins = sort grep { -f $_ && -x _ } glob("$UNITS/*");

# what every unit test is built from, besides its own t/unit/NAME.c
my @common = (glob("$ROOT/t/unit/lib/*"), glob("$ROOT/src/msgr_*.[ch]"));

ok(scalar @bins, "$BUILD/unit/ holds unit test binaries")
    or diag("nothing in $UNITS: run `make units`");

# A t/unit/NAME.c without its build/unit/NAME was never built.
for my $src (sort glob("$ROOT/t/unit/*.c")) {
    (my $name = basename($src)) =~ s/\.c\z//;
    my $bin = "$UNITS/$name";
    ok(-x $bin, "t/unit/$name.c is built") or diag("run `make units`");
    next unless -x $bin;
    my @newer = grep { -M $_ < -M $bin } $src, @common;
    ok(!@newer, "$BUILD/unit/$name is newer than its sources")
        or diag("$BUILD/unit/$name is older than "
                . join(', ', map { s{^\Q$ROOT\E/}{}r } @newer)
                . ": run `make units`");
}

for my $bin (@bins) {
    subtest basename($bin) => sub { run_unit($bin) };
}

done_testing();


sub run_unit {
    my ($bin) = @_;
    my $tb = Test::More->builder;
    my ($plan, $count, $expect, @out) = (undef, 0, 1);

    my $pid = open(my $fh, '-|') // die "fork: $!";
    if ($pid == 0) {
        chdir $ROOT or die "chdir $ROOT: $!";
        exec { $bin } $bin or die "exec $bin: $!";
    }

    my $timed_out = 0;
    eval {
        local $SIG{ALRM} = sub { die "timeout\n" };
        alarm $TIMEOUT;
        @out = <$fh>;
        alarm 0;
    };
    if ($@) {
        $timed_out = 1;
        kill 'KILL', $pid;
    }
    close $fh;
    my $status = $?;

    for my $line (@out) {
        chomp $line;

        if ($line =~ /^1\.\.(\d+)/) {
            $plan = $1;

        } elsif ($line =~ /^(not )?ok\b\s*(\d*)\s*(?:-\s*)?(.*)$/) {
            my ($not, $num, $desc) = ($1, $2, $3);
            my ($directive, $reason) = ('', '');

            if ($desc =~ s/\s*(?<!\\)#\s*(TODO|SKIP)\b\s*(.*)$//i) {
                ($directive, $reason) = (uc $1, $2);
            }

            $count++;
            $desc = "test $count" unless length $desc;

            if (length $num && $num != $expect) {
                $tb->ok(0, "test number $num in order");
                diag("expected test $expect, got $num");
            }
            $expect = (length $num ? $num : $expect) + 1;

            if ($directive eq 'SKIP') {
                $tb->skip($reason || $desc);

            } elsif ($directive eq 'TODO') {
                $tb->todo_start($reason || 'todo');
                $tb->ok(!$not, $desc);
                $tb->todo_end;

            } else {
                $tb->ok(!$not, $desc);
            }

        } elsif ($line =~ /^\s*#\s?(.*)$/) {
            note($1);

        } elsif (length $line) {
            note("unexpected output: $line");
        }
    }

    ok(!$timed_out, "finished within $TIMEOUT s");
    ok(defined $plan, "printed a plan");
    is($count, $plan // -1, "ran as many tests as planned");

    if (WIFSIGNALED($status)) {
        ok(0, "exited normally")
            or diag("killed by signal " . WTERMSIG($status));
    } else {
        is(WEXITSTATUS($status), 0, "exited 0");
    }
}
