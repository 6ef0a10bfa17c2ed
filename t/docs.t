#!/usr/bin/perl

# docs/settings.md is generated from the settings table in
# src/msgr_settings.c by build/msgr-settings-doc (`make docs`): it must be
# exactly what the tool prints now, so the reference never drifts from the
# code.  A missing tool or document fails: it is never a skip.

use strict;
use warnings;

use Cwd qw(abs_path);
use File::Basename qw(dirname);
use POSIX qw(WIFEXITED WEXITSTATUS);
use Test::More;

my $ROOT = abs_path(dirname(abs_path(__FILE__)) . '/..');
my $TOOL = "$ROOT/build/msgr-settings-doc";
my $DOC  = "$ROOT/docs/settings.md";

my $have_tool = ok(-x $TOOL, 'build/msgr-settings-doc is built')
    or diag('run `make docs`: it builds the tool and regenerates '
            . 'docs/settings.md');

my $have_doc = ok(-f $DOC, 'docs/settings.md exists')
    or diag('run `make docs`');

if ($have_tool && $have_doc) {
    my $got  = run($TOOL);
    my $want = slurp($DOC);

    ok(defined $got, 'msgr-settings-doc runs and exits 0');
    $got //= '';

    like($got, qr/\A<!-- Generated from src\/msgr_settings\.c by `make docs`/,
         'its first line says the document is generated');

    like($got, qr/^## sending$/m, 'it has a section per tab');

    ok($got eq $want, 'docs/settings.md is what msgr-settings-doc prints')
        or diag(hint($want, $got));
}

done_testing();


sub run {
    my ($bin) = @_;

    my $pid = open(my $fh, '-|') // die "fork: $!";
    if ($pid == 0) {
        chdir $ROOT or die "chdir $ROOT: $!";
        exec { $bin } $bin or die "exec $bin: $!";
    }

    local $/;
    my $out = <$fh>;
    close $fh;

    unless (WIFEXITED($?) && WEXITSTATUS($?) == 0) {
        diag("$bin failed: wait status $?");
        return undef;
    }

    return $out // '';
}


sub slurp {
    my ($path) = @_;

    open(my $fh, '<', $path) or die "$path: $!";
    local $/;
    my $s = <$fh>;
    close $fh;

    return $s // '';
}


# The first lines that differ, diff style: "-" docs/settings.md, "+" the
# tool's output, "  " the same in both.
sub hint {
    my ($want, $got) = @_;

    my @w = split /\n/, $want, -1;
    my @g = split /\n/, $got, -1;
    my $i = 0;

    $i++ while $i < @w && $i < @g && $w[$i] eq $g[$i];

    my @out = ('docs/settings.md is stale: run `make docs` and commit it.',
               'first difference at line ' . ($i + 1) . ':');

    for my $k ($i .. $i + 5) {
        my ($w, $g) = ($w[$k], $g[$k]);

        last unless defined $w || defined $g;

        if (defined $w && defined $g && $w eq $g) {
            push @out, "  $w";
            next;
        }

        push @out, '- ' . ($w // '(end of docs/settings.md)');
        push @out, '+ ' . ($g // '(end of output)');
    }

    return join("\n", @out);
}
