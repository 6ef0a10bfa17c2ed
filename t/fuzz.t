#!/usr/bin/perl

# Replays the committed fuzz corpora: each t/fuzz/<target>.c, built with
# t/fuzz/lib/replay.c instead of libFuzzer by `make fuzz-replay` (into
# build/fuzz-replay/, or MSGR_BUILD's: build-asan/ has the sanitizers),
# is given every file of t/fuzz/corpus/<target>/ once.  An input that once
# crashed a target stays in its corpus, so the crash stays fixed.  `make
# fuzz` is what looks for new ones (docs/reliability.md).

use strict;
use warnings;

use Cwd qw(abs_path);
use File::Basename qw(basename dirname);
use File::Temp qw(tempdir);
use Test::More;

my $ROOT  = abs_path(dirname(abs_path(__FILE__)) . '/..');
my $BUILD = $ENV{MSGR_BUILD} // 'build';
my $BINS  = ($BUILD =~ m{^/} ? $BUILD : "$ROOT/$BUILD") . '/fuzz-replay';

{
    local $ENV{MAKEFLAGS};
    local $ENV{MFLAGS};
    my $out = `make --no-print-directory -C '$ROOT' fuzz-replay 2>&1`;
    ok($? == 0, 'make fuzz-replay: the replays are built from their sources')
        or diag($out);
}

my @targets = map { basename($_) =~ s/\.c\z//r } sort glob("$ROOT/t/fuzz/*.c");
ok(scalar @targets, 't/fuzz/ has fuzz targets');

my $tmp = tempdir('msgr-fuzz-XXXXXX', TMPDIR => 1, CLEANUP => 1);

for my $t (@targets) {
    my $corpus = "$ROOT/t/fuzz/corpus/$t";
    my @inputs = grep { -f $_ } glob("$corpus/*");
    ok(scalar @inputs, "t/fuzz/corpus/$t/ has inputs")
        or next;

    my $bin = "$BINS/$t";
    ok(-x $bin, "$BUILD/fuzz-replay/$t is built") or next;

    # the replay names each input on stderr before it runs it: the last
    # one named is the one that failed
    my $out = `cd '$ROOT' && '$bin' '$corpus' 2>'$tmp/$t.err'`;
    my $status = $?;
    my $err = do { local (@ARGV, $/) = "$tmp/$t.err"; <> } // '';
    my @named = $err =~ /^replay: (\S+)$/mg;

    ok($status == 0, "$t: every input of its corpus runs clean")
        or diag("exit status $status; the input: "
                . ($named[-1] // '?') . "\n"
                . join("\n", grep { !/^replay: / } split /\n/, $err));
    is($out, scalar(@inputs) . " inputs\n",
       "$t: ran all " . scalar(@inputs) . " inputs");
}

done_testing();
