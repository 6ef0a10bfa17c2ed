#!/usr/bin/perl

# The parents' app's limits and races: flood control counts accepted posts
# (refused ones have their own, higher ceiling, and the body is judged
# before any 429); a topic in another case is the school's topic, stored
# under the school's spelling; a device cannot be registered for a token a
# revocation under way is revoking; at most 20 live app tokens a contact,
# even when they are asked for all at once.

use strict;
use warnings;
use utf8;

use IO::Select;
use IO::Socket::INET;
use IPC::Open2;
use JSON::PP;
use Test::More;
use Time::HiRes qw(sleep time);

use lib 't/lib';
use Msgr::Test;
use Msgr::Test::API qw(:DEFAULT json_req);

binmode(Test::More->builder->$_, ':encoding(UTF-8)')
    for qw(output failure_output todo_output);

my $V = '/msgr/v1';

my $pg  = Msgr::Test::pg_start();
my $A   = Msgr::Test::school($pg, 'Alpha Academy');
my $adm = Msgr::Test::key($pg, $A, 'admin');
my $int = Msgr::Test::key($pg, $A, 'integrator');

# two accepted posts a minute, four refused ones
my $ngx = Msgr::Test::nginx_start($pg, workers => 2,
                                  http => "    msgr_app_rate 2;\n"
                                        . "    msgr_app_refused_rate 4;");
use_nginx($ngx, prefix => $V);


# requests with a JSON body (see Msgr::Test::API::json_req)
sub req { json_req(@_) }

sub statuses { join ' ', map { $_->{status} } @_ }

sub token_id { ($_[0] =~ /^msgrapp_\d+_([0-9a-f]{16})_/)[0] }

my $r = req(POST => '/mis/sync', $int, {
    default_country => 'GB',
    students => [
        { mis_id => 'S1', first_name => 'Amy', last_name => 'Jones',
          reg_group => '7B', year => '7', status => 'on_roll',
          contacts => [ { mis_id => 'C1', relationship => 'Mother',
                          priority => 1, correspondence => $T } ] },
        { mis_id => 'S2', first_name => 'Cal', last_name => 'Brown',
          reg_group => '7B', year => '7', status => 'on_roll',
          contacts => [ { mis_id => 'C2', relationship => 'Mother',
                          priority => 1, correspondence => $T } ] },
    ],
    contacts => [
        { mis_id => 'C1', first_name => 'Jane', last_name => 'Jones' },
        { mis_id => 'C2', first_name => 'Kim', last_name => 'Brown' },
    ],
    staff => [], groups => [],
});
Msgr::Test::json_ok($r, 200, 'the MIS sync');

my %id = map { $_->{mis_id} => $_->{id} }
         @{ get($adm, '/contacts?limit=200')->{json}{items} },
         @{ get($adm, '/students?limit=200')->{json}{items} };
my ($C1, $C2, $S1, $S2) = @id{qw(C1 C2 S1 S2)};

$r = req(PUT => '/xpressions/topics', $adm,
         { topics => [ 'Absence', "\x{c9}l\x{e8}ves" ] });
Msgr::Test::json_ok($r, 200, 'the school\'s topics');
$r = req(PATCH => '/settings/xpressions', $adm, { incoming_enabled => $T },
         type => 'application/merge-patch+json');
Msgr::Test::json_ok($r, 200, 'incoming messages on');

my $good = { topic => 'Absence', body => 'Amy is ill', student_id => $S1 };


# ---------------------------------------------------------------------------
# flood control counts accepted posts

{
    my $tok = issue($adm, $C1);
    my @st;
    push @st, req(POST => '/app/messages', $tok, { %$good, body => ' ' })
        for 1 .. 3;
    is(statuses(@st), '422 422 422', 'three refused posts: 422 each');

    @st = map { req(POST => '/app/messages', $tok, $good) } 1 .. 2;
    is(statuses(@st), '201 201',
       'then the two posts a minute allowed: 201, the refused ones did not '
       . 'count');

    $r = req(POST => '/app/messages', $tok, $good);
    Msgr::Test::problem_ok($r, 429, 'a third good post: 429');
    like($r->{headers}{'retry-after'} // '', qr/^[1-9]\d*$/,
         'with Retry-After');

    $r = req(POST => '/app/messages', $tok, { %$good, student_id => 'x' });
    Msgr::Test::problem_ok($r, 422,
                           'a bad post past the limit: its 422, not 429');
    is_deeply([ map { $_->{field} } @{ ($r->{json} || {})->{errors} || [] } ],
              ['student_id'], 'naming the field');

    # four refused a minute: the fifth is held back before the body is read
    $r = req(POST => '/app/messages', $tok, { %$good, body => '' });
    Msgr::Test::problem_ok($r, 429,
                           'the fifth refused post in a minute: 429');
    like($r->{json}{detail} // '', qr/refused/, 'the 429 says why');
    is($pg->psql("SELECT count(*) FROM msgr_incoming WHERE token_id = '"
                 . token_id($tok) . "'"), 2, 'two messages stored');
}

# posts the database refuses count as refused too
{
    my $tok = issue($adm, $C2);
    my @st = map { req(POST => '/app/messages', $tok,
                       { %$good, student_id => $S1 }) } 1 .. 2;
    is(statuses(@st), '422 422', 'not her child, twice: 422');
    $r = req(POST => '/app/messages', $tok, { %$good, topic => 'Trips' });
    Msgr::Test::problem_ok($r, 422, 'not a topic: 422');
    @st = map { req(POST => '/app/messages', $tok,
                    { %$good, student_id => $S2 }) } 1 .. 2;
    is(statuses(@st), '201 201',
       'her own child: two accepted posts after three refused');
}


# ---------------------------------------------------------------------------
# a topic in another case is the school's topic

{
    my $n2 = Msgr::Test::nginx_start($pg, http => '    msgr_app_rate 600;');
    my $tok = issue($adm, $C1);
    for my $c ([ 'ABSENCE', 'Absence' ], [ ' absence ', 'Absence' ],
               [ "\x{e9}L\x{c8}VES", "\x{c9}l\x{e8}ves" ])
    {
        my ($given, $school) = @$c;
        $r = $n2->req(POST => "$V/app/messages", key => $tok,
                      body => { %$good, topic => $given });
        Msgr::Test::json_ok($r, 201, "topic \"$given\": 201");
        is(($r->{json} || {})->{topic}, $school,
           "answered as the school's \"$school\"");
        my $id = ($r->{json} || {})->{id} // 0;
        my $stored = $pg->psql("SELECT topic FROM msgr_incoming"
                               . " WHERE message_id = " . ($id + 0));
        utf8::decode($stored);
        is($stored, $school, 'and stored so');
    }
    $r = $n2->req(GET => "$V/incoming?topic=Absence", key => $adm);
    is(scalar(grep { $_->{topic} eq 'Absence' }
              @{ ($r->{json} || {})->{items} || [] }),
       $pg->psql("SELECT count(*) FROM msgr_incoming WHERE topic = 'Absence'"),
       'the inbox filter for "Absence" finds all of them');

    $r = $n2->req(POST => "$V/app/messages", key => $tok,
                  body => { %$good, topic => 'Absences' });
    Msgr::Test::problem_ok($r, 422, 'a topic that is not one: still 422');

    # marking a message read is a merge patch like every other PATCH
    my ($msg) = $pg->psql("SELECT message_id FROM msgr_incoming"
                          . " ORDER BY message_id LIMIT 1");
    $r = $n2->req(PATCH => "$V/incoming/$msg", key => $adm,
                  body => '{"read":true}',
                  headers => { 'Content-Type'
                               => 'application/merge-patch+json' });
    Msgr::Test::json_ok($r, 200, 'PATCH /incoming as merge-patch+json: 200');
    is(($r->{json} || {})->{read}, $T, 'and the message reads as read');
    $n2->stop;
}


# ---------------------------------------------------------------------------
# no device for a token being revoked

{
    my $tok = issue($adm, $C1);
    my $tid = token_id($tok);
    $r = get($tok, '/app/messages');
    Msgr::Test::json_ok($r, 200, 'the token works (and is cached)');

    # the revocation, in a transaction held open
    my $pid = open2(my $out, my $in, 'psql', '-XAtq', '-v',
                    'ON_ERROR_STOP=1', '-d', $pg->conninfo('msgr'));
    print $in "BEGIN;\nUPDATE msgr_app_tokens SET revoked_at = now()"
            . " WHERE token_id = '$tid';\nSELECT 'revoking';\n";
    $in->flush;
    my $line = <$out> // '';
    is($line, "revoking\n", 'the revocation is under way, not committed');

    # the registration, sent now and read later
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                                  PeerPort => $ngx->port, Proto => 'tcp')
        or die "connect: $!";
    my $body = $J->encode({ platform => 'ios', push_token => 'abc' });
    print $s "PUT $V/app/device HTTP/1.0\r\nHost: 127.0.0.1\r\n"
           . "Authorization: Bearer $tok\r\n"
           . "Content-Type: application/json\r\n"
           . 'Content-Length: ' . length($body) . "\r\n\r\n$body";

    # it must wait for the revocation's row lock
    my $waiting = 0;
    for (1 .. 40) {
        $waiting = $pg->psql("SELECT count(*) FROM pg_stat_activity"
                             . " WHERE wait_event_type = 'Lock'"
                             . " AND query LIKE '%msgr_app_devices%'") + 0;
        last if $waiting;
        last if IO::Select->new($s)->can_read(0);
        sleep 0.1;
    }
    is($waiting, 1, 'PUT /app/device waits for the revocation');

    print $in "COMMIT;\n\\q\n";
    close $in;
    waitpid($pid, 0);

    local $/;
    my $res = <$s> // '';
    close $s;
    my ($status) = $res =~ m{^HTTP/1\.\d (\d+)};
    is($status, 401, 'then answers 401: the token is revoked')
        or diag($res);
    like($res, qr/WWW-Authenticate: Bearer/i, 'with the Bearer challenge');
    is($pg->psql("SELECT count(*) FROM msgr_app_devices"
                 . " WHERE token_id = '$tid'"), 0,
       'and no device was registered for it');

    # the other order: a device registered first goes with the revocation
    my $tok2 = issue($adm, $C1);
    $r = req(PUT => '/app/device', $tok2,
             { platform => 'android', push_token => 'def' });
    Msgr::Test::json_ok($r, 200, 'a device for another token');
    $r = req(DELETE => "/contacts/$C1/app-tokens/" . token_id($tok2), $adm);
    is($r->{status}, 204, 'that token revoked');
    is($pg->psql("SELECT count(*) FROM msgr_app_devices"
                 . " WHERE token_id = '" . token_id($tok2) . "'"), 0,
       'its device is gone');
}


# ---------------------------------------------------------------------------
# at most 20 live app tokens a contact

{
    my $live = sub {
        $pg->psql("SELECT count(*) FROM msgr_app_tokens WHERE contact_id = "
                  . "$C2 AND revoked_at IS NULL") + 0;
    };
    issue($adm, $C2) while $live->() < 20;
    is($live->(), 20, 'twenty live tokens');

    $r = req(POST => "/contacts/$C2/app-tokens", $adm, { label => 'one more' });
    Msgr::Test::problem_ok($r, 409, 'the 21st: 409');
    like($r->{json}{detail} // '', qr/\b20\b/, 'naming the limit of 20');
    is($live->(), 20, 'still twenty');

    my ($first) = $pg->psql("SELECT token_id FROM msgr_app_tokens WHERE"
                            . " contact_id = $C2 AND revoked_at IS NULL"
                            . " ORDER BY created_at LIMIT 1");
    $r = req(DELETE => "/contacts/$C2/app-tokens/$first", $adm);
    is($r->{status}, 204, 'one revoked');

    # nineteen live: eight at once, one of them gets through
    my @res = Msgr::Test::burst($ngx, count => 8, method => 'POST',
                                path => "$V/contacts/$C2/app-tokens",
                                key => $adm);
    my %n;
    $n{ $_->{status} }++ for @res;
    is($n{201} // 0, 1, 'eight at once for the 20th place: one 201')
        or diag(statuses(@res));
    is($n{409} // 0, 7, 'and seven 409');
    is($live->(), 20, 'twenty live tokens, not more');

    $r = req(POST => "/contacts/$C1/app-tokens", $adm, {});
    is($r->{status}, 201, 'another contact is not affected');
}

Msgr::Test::finish();
