#!/usr/bin/perl

# msgr-sender with the file provider (make run's default): a message sent
# through the API is drained to DIR/<channel>.jsonl, each parent exactly
# the text the outbox holds, and its deliveries read delivered; a second
# run sends nothing again; scheduled and backup deliveries wait for their
# time; a lease whose sender died comes back; a channel with no provider
# waits with the reason; the configuration is checked line by line.

use strict;
use warnings;
use utf8;

use Encode qw(decode_utf8);
use File::Temp qw(tempdir);
use JSON::PP;
use Test::More;

use lib 't/lib';
use Msgr::Test;
use Msgr::Test::API qw(:DEFAULT req);
use Msgr::Test::Sender;

my $V = '/msgr/v1';

my $pg = Msgr::Test::pg_start();
my ($A, $admin, $staff, $int) = one_school($pg);
my $ngx = api_nginx($pg);
use_nginx($ngx, prefix => $V);

sub db { decode_utf8($pg->psql($_[0])) }

my $OUT = tempdir('msgr-outbox-XXXXXX', TMPDIR => 1, CLEANUP => 1);

my $CONF = <<"CONF";
# every channel to files
[sender]
batch = 50
poll = 0.2

[provider outbox]
type = file
channels = xpressions, sms, voice, email
dir = $OUT
CONF

sub lines {
    my ($channel) = @_;
    my $f = "$OUT/$channel.jsonl";
    return () unless -f $f;
    open(my $in, '<:raw', $f) or die "$f: $!";
    my @l = map { decode_json($_) } <$in>;
    close $in;
    return @l;
}

sub drain_ok { sender_ok($pg, $_[1] // $CONF, $_[0]) }


# ---------------------------------------------------------------------------
# a school with two families, one parent with the app

my $groups = class_7b($int, $staff);
my $contacts = ids_by_mis($staff, 'contacts');
my $tok = issue($admin, $contacts->{C1}, 'phone');
Msgr::Test::json_ok(req(PUT => '/app/device', $tok,
                        { platform => 'android', push_token => 'fcm-1' }),
                    200, 'Jane has the app');

sub send_ok { message_ok($staff, @_) }


# ---------------------------------------------------------------------------
# the outbox drained to files

{
    my $id = send_ok({ channels => [qw(xpressions sms email)],
                       to => { groups => [ $groups->{K7B} ] },
                       subject => 'Trip', body => 'Dear {first_name}, Friday' },
                     'xpressions, sms and email to 7B');

    drain_ok('the first drain');

    my @sms = lines('sms');
    my @email = lines('email');
    my @push = lines('xpressions');
    is(scalar @push, 1, 'one push (Jane has the app)');
    is(scalar @sms, 1, 'one SMS (Kim; the push stands in for Jane\'s)');
    is(scalar @email, 2, 'two emails');
    is($sms[0]{address}, '+447700900102', 'the SMS to Kim\'s mobile');
    is($sms[0]{body}, 'Dear Kim, Friday', 'with his own text');
    is($push[0]{body}, 'Dear Jane, Friday', 'the push with Jane\'s');
    is_deeply([ sort map { "$_->{address} $_->{subject} $_->{body}" } @email ],
              [ 'jane@example.org Trip Dear Jane, Friday',
                'kim@example.org Trip Dear Kim, Friday' ],
              'the emails: address, subject, text');

    my %file = map { $_->{delivery_id} => $_->{body} } @sms, @email, @push;
    my %db = map { split /\t/, $_, 2 } split /\n/,
             db("SELECT delivery_id || E'\\t' || body FROM msgr_deliveries"
                . " WHERE message_id = $id");
    is_deeply(\%file, \%db, 'each line is a delivery of the outbox, its text'
                            . ' byte for byte');

    is(db("SELECT string_agg(DISTINCT state || '/' || provider, ',')"
          . " || ' ' || bool_and(sent_at IS NOT NULL"
          . "   AND delivered_at IS NOT NULL AND locked_by IS NULL)"
          . " FROM msgr_deliveries WHERE message_id = $id"),
       'delivered/outbox true', 'every delivery delivered, by outbox');
    is(db("SELECT string_agg(DISTINCT attempt::text, ',')"
          . " FROM msgr_deliveries WHERE message_id = $id"), '1',
       'in one attempt');

    drain_ok('a second drain');
    is(scalar(lines('sms')) + scalar(lines('email'))
       + scalar(lines('xpressions')), 4, 'sends nothing again');

    my $m = get_json($staff, "/messages/$id");
    is($m->{states}{email}{delivered}, 2, 'GET /messages/{id}: 2 emails'
                                          . ' delivered');
}


# ---------------------------------------------------------------------------
# what is not due waits

{
    my $id = send_ok({ channels => ['sms'], to => { groups => [ $groups->{K7B} ] },
                       body => 'Later',
                       send_at => do {
                           my @t = gmtime(time + 3600);
                           sprintf('%04d-%02d-%02dT%02d:%02d:%02dZ',
                                   $t[5] + 1900, $t[4] + 1, @t[3, 2, 1, 0]) } },
                     'a message for an hour from now');
    my $before = scalar lines('sms');
    drain_ok('a drain before its time');
    is(scalar lines('sms'), $before, 'nothing sent before send_at');
    is(db("SELECT string_agg(DISTINCT state, ',') FROM msgr_deliveries"
          . " WHERE message_id = $id"), 'scheduled', 'still scheduled');

    # an hour later
    db("UPDATE msgr_deliveries SET run_at = now() WHERE message_id = $id;"
       . " UPDATE msgr_messages SET send_at = now() WHERE message_id = $id");
    drain_ok('a drain at its time');
    is(scalar lines('sms'), $before + 2, 'both SMS sent at send_at');
    is(get_json($staff, "/messages/$id")->{status}, 'queued',
       'the message no longer reads scheduled');
}


# ---------------------------------------------------------------------------
# a lease whose sender died comes back; the reason is kept

{
    my $id = send_ok({ channels => ['email'],
                       to => { groups => [ $groups->{K7B} ] },
                       subject => 'S', body => 'Lease' }, 'two emails');
    db("UPDATE msgr_deliveries SET state = 'sending', attempt = 1,"
       . " locked_by = 'dead-sender', locked_until = now() - interval '1 s'"
       . " WHERE message_id = $id");
    my $before = scalar lines('email');
    drain_ok('a drain after a sender died');
    is(scalar lines('email'), $before + 2, 'its two emails are sent');
    is(db("SELECT string_agg(DISTINCT state || ' ' || attempt, ',')"
          . " FROM msgr_deliveries WHERE message_id = $id"), 'delivered 2',
       'delivered, at the second attempt');

    # a lease still running is left alone
    $id = send_ok({ channels => ['email'],
                    to => { groups => [ $groups->{K7B} ] },
                    subject => 'S', body => 'Held' }, 'two more emails');
    db("UPDATE msgr_deliveries SET state = 'sending', attempt = 1,"
       . " locked_by = 'busy-sender',"
       . " locked_until = now() + interval '1 h' WHERE message_id = $id");
    $before = scalar lines('email');
    drain_ok('a drain while another sender holds them');
    is(scalar lines('email'), $before, 'another sender\'s lease is kept');
}


# ---------------------------------------------------------------------------
# a channel with no provider waits, saying why

{
    my $only_sms = $CONF;
    $only_sms =~ s/channels = xpressions, sms, voice, email/channels = sms/;
    my $id = send_ok({ channels => ['email'],
                       to => { groups => [ $groups->{K7B} ] },
                       subject => 'S', body => 'No provider' },
                     'emails with no email provider');
    drain_ok('a drain with only an SMS provider', $only_sms);
    is(db("SELECT string_agg(DISTINCT state || ': ' || error, ',')"
          . " || ' ' || bool_and(run_at > now() + interval '30 min')"
          . " FROM msgr_deliveries WHERE message_id = $id"),
       'queued: no provider is configured for email true',
       'queued again, later, with the reason');
}


# ---------------------------------------------------------------------------
# the configuration and the command line

{
    my @bad = (
        [ "[sender]\nbatch = lots\n", qr/:2: batch: a number/, 'a bad number' ],
        [ "[sender]\ncolour = red\n", qr/:2: an unknown key of \[sender\]/,
          'an unknown key' ],
        [ "[provider x]\nchannels = sms\n", qr/:2: type = \.\.\. comes first/,
          'a key before type' ],
        [ "[provider x]\ntype = pigeon\n", qr/:2: type: file, /,
          'an unknown type' ],
        [ "[provider x]\ntype = file\nchannels = fax\n",
          qr/:3: channels: a list of/, 'an unknown channel' ],
        [ "[provider x]\ntype = file\nchannels = sms\n",
          qr/provider x: type file needs dir/, 'a missing dir' ],
        [ "batch = 1\n", qr/:1: a key outside/, 'a key outside a section' ],
    );
    for my $b (@bad) {
        my ($rc, $out, $err) = Msgr::Test::sender($pg, $b->[0]);
        is($rc, 1, "$b->[2]: exits 1");
        like($err, $b->[1], "$b->[2]: names the line and what is wrong");
    }

    my ($rc, $out, $err) = Msgr::Test::_run(cmd => [$Msgr::Test::SENDER]);
    is($rc, 2, 'no --config: exits 2');
    like($err, qr/--config FILE is required/, 'and says so');
}


Msgr::Test::finish();
