#!/usr/bin/perl

# A throwaway outbox and provider for bench/sender.sh: PostgreSQL with the
# migrations and one school (t/lib/Msgr/Test.pm), and nginx whose
# /2010-04-01/ location answers every POST 201 with a Twilio-shaped body
# from memory (no module involved: the fastest possible SMS provider).
# Prints one line, "PORT PGPORT SCHOOL", then stays up until its stdin
# closes or it gets INT, TERM or HUP, and tears it all down.  Exits 1 when
# nginx's error log holds alerts or crashes.

use strict;
use warnings;

use FindBin;
use IO::Handle;
use IO::Select;

use lib "$FindBin::Bin/../../t/lib";
use Msgr::Test;

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

my $provider = <<'NGX';
        location /2010-04-01/ {
            default_type application/json;
            return 201 '{"sid":"SM0123456789abcdef0123456789abcdef","status":"queued","error_code":null}';
        }
NGX

my $ngx = Msgr::Test::nginx_start($pg, workers => 1, server => $provider,
                                  main => 'worker_rlimit_nofile 8192;',
                                  worker_connections => 4096);

STDOUT->autoflush(1);
print $ngx->port, ' ', $pg->port, " $id\n" unless $stop;

my $sel = IO::Select->new(\*STDIN);
until ($stop) {
    next unless $sel->can_read(0.5);
    my $n = sysread(STDIN, my $buf, 4096);
    last unless $n;
}

# stops nginx and checks its error log (to stderr)
Msgr::Test::check_logs();

exit($tb->is_passing ? 0 : 1);
