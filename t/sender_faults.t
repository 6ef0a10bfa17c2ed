#!/usr/bin/perl

# msgr-sender under faults, counted as a school would count them, with the
# file provider (whose lines are what "the provider" received): SIGKILL in
# the middle of a drain loses nothing and sends again at most what was in
# flight; two senders on one outbox never send a delivery twice; a
# PostgreSQL restart in the middle of a drain is survived; SIGTERM gives
# back what was claimed but not started; SIGHUP reloads the configuration.

use strict;
use warnings;

use File::Temp qw(tempdir);
use JSON::PP;
use POSIX qw(WNOHANG);
use Test::More;
use Time::HiRes qw(sleep time);

use lib 't/lib';
use Msgr::Test;

my $pg = Msgr::Test::pg_start();
my $A = Msgr::Test::school($pg, 'Alpha Academy');

sub db { $pg->psql($_[0]) }

my $N = 0;      # the outbox's deliveries so far

# $n SMS deliveries of a new message, queued, straight into the outbox
sub outbox {
    my ($n) = @_;
    db("WITH m AS (INSERT INTO msgr_messages (school_id, sender, sender_role,"
       . " channels, send_to, body, routing, status, counts, cost)"
       . " VALUES ($A, 'test', 'admin', '{sms}', 'primary_contact', 'Hi',"
       . " 'default', 'queued', '{}', '{}') RETURNING message_id)"
       . " INSERT INTO msgr_deliveries (school_id, message_id,"
       . " recipient_type, recipient_id, channel, address, purpose, body,"
       . " state)"
       . " SELECT $A, m.message_id, 'contact', g,"
       . " 'sms', '+4477009' || lpad(g::text, 5, '0'), 'primary',"
       . " 'Message ' || g, 'queued' FROM m, generate_series(1, $n) g");
    $N += $n;
}

sub conf {
    my ($dir, %o) = @_;
    my $sender = join '', map { "$_ = $o{$_}\n" } sort keys %o;
    return "[sender]\npoll = 0.1\n$sender\n"
         . "[provider outbox]\ntype = file\nchannels = sms\ndir = $dir\n";
}

sub conf_file {
    my ($text) = @_;
    my $d = tempdir('msgr-conf-XXXXXX', TMPDIR => 1, CLEANUP => 1);
    Msgr::Test::spew("$d/sender.conf", $text);
    return "$d/sender.conf";
}

# a sender in the background: its pid; its log in $log
sub start_sender {
    my ($conf, $log, @args) = @_;
    my $pid = fork() // die "fork: $!";
    if ($pid == 0) {
        open(STDIN, '<', '/dev/null');
        open(STDOUT, '>>', $log) or die "$log: $!";
        open(STDERR, '>&', \*STDOUT);
        $ENV{MSGR_PG} = $pg->conninfo('msgr');
        exec $Msgr::Test::SENDER, '--config', $conf, @args
            or die "exec: $!";
    }
    return $pid;
}

sub wait_exit {
    my ($pid, $secs) = @_;
    my $t = time + $secs;
    while (time < $t) {
        my $w = waitpid($pid, WNOHANG);
        return $? >> 8 if $w == $pid;
        sleep 0.05;
    }
    kill 'KILL', $pid;
    waitpid($pid, 0);
    return -1;
}

# what the provider received: delivery id => times
sub received {
    my ($dir) = @_;
    my %n;
    my $f = "$dir/sms.jsonl";
    return \%n unless -f $f;
    open(my $in, '<', $f) or die "$f: $!";
    while (my $line = <$in>) {
        my $j = eval { decode_json($line) } or next;
        $n{ $j->{delivery_id} }++;
    }
    close $in;
    return \%n;
}

sub state_counts {
    return db("SELECT string_agg(state || ':' || n, ' ' ORDER BY state)"
              . " FROM (SELECT state, count(*) n FROM msgr_deliveries"
              . " GROUP BY state) x");
}


# ---------------------------------------------------------------------------
# SIGKILL in the middle of a drain, three times

{
    my $dir = tempdir('msgr-kill-XXXXXX', TMPDIR => 1, CLEANUP => 1);
    my $batch = 40;
    my $conf = conf_file(conf($dir, batch => $batch,
                              max_in_flight => $batch, lease => 5));
    outbox(3000);

    my $kills = 0;
    for my $round (1 .. 3) {
        my $pid = start_sender($conf, "$dir/log");
        # until it has sent some, then kill it
        my $t = time + 20;
        while (time < $t) {
            last if keys %{ received($dir) } >= $round * 600;
            sleep 0.02;
        }
        kill 'KILL', $pid;
        waitpid($pid, 0);
        $kills++;
        # the dead sender's leases end
        db("UPDATE msgr_deliveries SET locked_until = now() - interval '1 s'"
           . " WHERE state = 'sending'");
    }

    my ($rc, $out, $err) = Msgr::Test::sender($pg, conf($dir, batch => $batch,
                                                        lease => 5));
    is($rc, 0, 'after three SIGKILLs a sender drains the rest') or diag($err);

    my $got = received($dir);
    is(scalar(keys %$got), 3000, 'every delivery reached the provider');
    my $doubles = 0;
    $doubles += $_ - 1 for values %$got;
    cmp_ok($doubles, '<=', $kills * $batch,
           "doubles ($doubles) at most what was in flight at each kill"
           . " ($kills x $batch)");
    diag("SIGKILL x$kills: $doubles deliveries sent twice of 3000");
    is(state_counts(), 'delivered:3000', 'and all read delivered');
}


# ---------------------------------------------------------------------------
# two senders on one outbox

{
    db("DELETE FROM msgr_deliveries; DELETE FROM msgr_messages");
    $N = 0;
    my $dir = tempdir('msgr-two-XXXXXX', TMPDIR => 1, CLEANUP => 1);
    outbox(4000);
    my $conf = conf_file(conf($dir, batch => 50));
    my @pids = map { start_sender($conf, "$dir/log$_", '--exit-when-idle') }
               1 .. 2;
    my @rc = map { wait_exit($_, 120) } @pids;
    is_deeply(\@rc, [0, 0], 'two senders drain one outbox and exit 0');

    my $got = received($dir);
    is(scalar(keys %$got), 4000, 'every delivery sent');
    is(scalar(grep { $_ > 1 } values %$got), 0, 'none sent twice');
    is(state_counts(), 'delivered:4000', 'all delivered');
    my $both = db("SELECT count(DISTINCT locked_by) FROM msgr_deliveries");
    is($both, 0, 'no lease left');
}


# ---------------------------------------------------------------------------
# PostgreSQL restarted in the middle of a drain

{
    db("DELETE FROM msgr_deliveries; DELETE FROM msgr_messages");
    my $dir = tempdir('msgr-pg-XXXXXX', TMPDIR => 1, CLEANUP => 1);
    outbox(3000);
    my $conf = conf_file(conf($dir, batch => 20, max_in_flight => 20,
                              lease => 5));
    my $pid = start_sender($conf, "$dir/log");
    my $t = time + 20;
    while (time < $t && keys %{ received($dir) } < 300) {
        sleep 0.02;
    }
    $pg->stop('immediate');
    sleep 0.5;
    $pg->start;

    $t = time + 60;
    while (time < $t) {
        last if db("SELECT count(*) FROM msgr_deliveries"
                   . " WHERE state <> 'delivered'") == 0;
        # a lease held while the database was away ends
        db("UPDATE msgr_deliveries SET locked_until = now() - interval '1 s'"
           . " WHERE state = 'sending' AND updated_at < now() - interval"
           . " '3 s'");
        sleep 0.2;
    }
    kill 'TERM', $pid;
    is(wait_exit($pid, 30), 0, 'the sender reconnected, and stops on TERM');

    my $got = received($dir);
    is(scalar(keys %$got), 3000, 'every delivery sent across the restart');
    my $doubles = 0;
    $doubles += $_ - 1 for values %$got;
    cmp_ok($doubles, '<=', 20, "doubles ($doubles) at most one batch");
    is(state_counts(), 'delivered:3000', 'all delivered');
    like(Msgr::Test::slurp("$dir/log"), qr/PostgreSQL \(claims\)/,
         'the log says the connection was lost');
}


# ---------------------------------------------------------------------------
# SIGTERM: what was claimed but not started goes back

{
    db("DELETE FROM msgr_deliveries; DELETE FROM msgr_messages");
    my $dir = tempdir('msgr-term-XXXXXX', TMPDIR => 1, CLEANUP => 1);
    outbox(500);
    # 20 a second, 200 claimed at once: most wait for the rate
    my $text = conf($dir, batch => 200, max_in_flight => 200);
    $text =~ s/type = file/type = file\nrate = 20/;
    my $pid = start_sender(conf_file($text), "$dir/log");
    my $t = time + 20;
    while (time < $t && keys %{ received($dir) } < 10) {
        sleep 0.05;
    }
    kill 'TERM', $pid;
    is(wait_exit($pid, 30), 0, 'TERM: exits 0');

    my $sent = keys %{ received($dir) };
    cmp_ok($sent, '<', 200, "it had sent $sent of the 200 it claimed");
    is(db("SELECT count(*) FROM msgr_deliveries WHERE state = 'sending'"
          . " OR locked_by IS NOT NULL"), 0, 'nothing is left leased');
    is(db("SELECT count(*) FROM msgr_deliveries WHERE state = 'delivered'"),
       $sent, 'what was sent is delivered');
    is(db("SELECT string_agg(DISTINCT attempt::text, ',') FROM"
          . " msgr_deliveries WHERE state = 'queued'"), '0',
       'what was given back is as it was: queued, no attempt counted');
    like(Msgr::Test::slurp("$dir/log"), qr/stopping/, 'the log says so');
}


# ---------------------------------------------------------------------------
# SIGHUP: a new configuration, or the old one kept

{
    db("DELETE FROM msgr_deliveries; DELETE FROM msgr_messages");
    my $dir = tempdir('msgr-hup-XXXXXX', TMPDIR => 1, CLEANUP => 1);
    my $dir2 = tempdir('msgr-hup2-XXXXXX', TMPDIR => 1, CLEANUP => 1);
    my $conf = conf_file(conf($dir));
    my $pid = start_sender($conf, "$dir/log");
    outbox(5);
    my $t = time + 10;
    sleep 0.05 while time < $t && keys %{ received($dir) } < 5;
    is(scalar keys %{ received($dir) }, 5, 'sent to the first directory');

    Msgr::Test::spew($conf, "[sender]\nbatch = lots\n");
    kill 'HUP', $pid;
    sleep 0.3;
    outbox(5);
    $t = time + 10;
    sleep 0.05 while time < $t && keys %{ received($dir) } < 10;
    is(scalar keys %{ received($dir) }, 10,
       'a bad file is refused: still sending with the old configuration');

    Msgr::Test::spew($conf, conf($dir2));
    kill 'HUP', $pid;
    sleep 0.3;
    outbox(5);
    $t = time + 10;
    sleep 0.05 while time < $t && keys %{ received($dir2) } < 5;
    is(scalar keys %{ received($dir2) }, 5, 'reloaded: the new directory');

    kill 'TERM', $pid;
    is(wait_exit($pid, 30), 0, 'stops on TERM');
    my $log = Msgr::Test::slurp("$dir/log");
    like($log, qr/not reloaded: .*batch: a number/, 'the bad file is named');
    like($log, qr/the configuration is reloaded/, 'the reload is logged');
}


done_testing();
