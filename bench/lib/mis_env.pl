#!/usr/bin/perl

# A throwaway msgr for the benchmarks that need a school's worth of data
# (bench/mis_sync.sh, bench/messages.sh): PostgreSQL and nginx with the
# built module (2 workers, msgr_max_body 16m for a whole school's snapshot,
# a query timeout well past the benches' limits so that a slow request is
# measured rather than cut short), started by the test harness
# (t/lib/Msgr/Test.pm), with one school and one API key.
#
#   perl bench/lib/mis_env.pl [--role ROLE] [--pg] [--reuseport]
#
# --role      the key's role: integrator (the default), admin or staff
# --pg        the line printed carries PostgreSQL's port too, for psql
#             ("host=127.0.0.1 port=PGPORT dbname=msgr user=msgr")
# --reuseport nginx listens with reuseport, so that the kernel spreads
#             connections over both workers
#
# Prints one line, "PORT KEY" (or "PORT KEY PGPORT"), then stays up until
# its stdin closes or it gets INT, TERM or HUP, and tears it all down.
# Exits 1 when nginx's error log holds alerts or crashes.

use strict;
use warnings;

use FindBin;
use Getopt::Long;
use IO::Handle;
use IO::Select;

use lib "$FindBin::Bin/../../t/lib";
use Msgr::Test;

my $role = 'integrator';
my ($with_pg, $reuseport);

GetOptions('role=s' => \$role, 'pg' => \$with_pg, 'reuseport' => \$reuseport)
    && !@ARGV && $role =~ /^(?:integrator|admin|staff)$/
    or die "usage: $0 [--role integrator|admin|staff] [--pg] [--reuseport]\n";

# the harness reports through Test::More: keep stdout for our one line
my $tb = Test::More->builder;
$tb->no_ending(1);
$tb->output(\*STDERR);
$tb->failure_output(\*STDERR);
$tb->todo_output(\*STDERR);

my $stop = 0;
$SIG{$_} = sub { $stop = 1 } for qw(INT TERM HUP PIPE);

my $pg  = Msgr::Test::pg_start();
my $id  = Msgr::Test::school($pg, 'Bench Secondary School');
my $key = Msgr::Test::key($pg, $id, $role);
my $ngx = Msgr::Test::nginx_start($pg, workers => 2, max_body => '16m',
                                  timeout => '60s',
                                  $reuseport ? (listen => 'reuseport') : ());

STDOUT->autoflush(1);
print $ngx->port, " $key", ($with_pg ? ' ' . $pg->port : ''), "\n"
    unless $stop;

my $sel = IO::Select->new(\*STDIN);
until ($stop) {
    next unless $sel->can_read(0.5);
    my $n = sysread(STDIN, my $buf, 4096);
    last unless $n;
}

# stops nginx and checks its error log (to stderr)
Msgr::Test::check_logs();

exit($tb->is_passing ? 0 : 1);
