#!/usr/bin/perl

# Sending a message through the API: preview (who, how, what it costs,
# nothing written), send (the outbox holds exactly what the preview showed,
# texts rendered per recipient), bad input named field by field with nothing
# written (unknown merge tokens included), the sending PIN (threshold, no PIN
# set, wrong PINs, the lockout and its end), Idempotency-Key, scheduling and
# cancelling, translations with and without the warning link, the per-key
# default send_to, a per-message routing override, the parents' app inbox
# and its receipts cancelling the backup SMS, and tenancy.

use strict;
use warnings;
use utf8;

use Encode qw(decode_utf8);
use JSON::PP;
use POSIX qw(strftime);
use Test::More;

use lib 't/lib';
use Msgr::Test;
use Msgr::Test::API qw(:DEFAULT req);

my $V = '/msgr/v1';

my $pg = Msgr::Test::pg_start();

my ($A, $B, $a_admin, $a_staff, $a_int, $b_admin, $b_int)
    = two_schools($pg);

my $ngx = api_nginx($pg);
use_nginx($ngx, prefix => $V);


# ---------------------------------------------------------------------------
# helpers

sub db { decode_utf8($pg->psql($_[0])) }

sub post_msg {
    my ($key, $body, %h) = @_;
    return $ngx->req(POST => "$V/messages", key => $key,
                     body => $J->encode($body),
                     headers => { 'Content-Type' => 'application/json', %h });
}

sub preview {
    my ($key, $body) = @_;
    return $ngx->req(POST => "$V/messages/preview", key => $key,
                     body => $J->encode($body),
                     headers => { 'Content-Type' => 'application/json' });
}

sub preview_ok {
    my ($key, $body, $name) = @_;
    local $Test::Builder::Level = $Test::Builder::Level + 1;
    my $r = preview($key, $body);
    Msgr::Test::json_ok($r, 200, "$name: preview 200") or return {};
    return $r->{json};
}

sub written { db("SELECT (SELECT count(*) FROM msgr_messages) || ' '"
                 . " || (SELECT count(*) FROM msgr_deliveries)") }

# the deliveries of a preview, one line each, sorted
sub preview_rows {
    my ($j) = @_;
    my @rows;
    for my $r (@{ $j->{recipients} }) {
        for my $d (@{ $r->{deliveries} }) {
            push @rows, join '|', $r->{type}, $r->{id}, $d->{channel},
                                  $d->{address} // '', $d->{purpose},
                                  $d->{cost};
        }
    }
    return [ sort @rows ];
}

# the outbox of a message, the same way
sub outbox_rows {
    my ($id) = @_;
    return [ sort split /\n/, db(
        "SELECT recipient_type || '|' || recipient_id || '|' || channel"
        . " || '|' || address || '|' || purpose || '|' || cost"
        . " FROM msgr_deliveries WHERE message_id = $id") ];
}

sub body_for {
    my ($id, $contact, $channel) = @_;
    return db("SELECT body FROM msgr_deliveries WHERE message_id = $id"
              . " AND recipient_type = 'contact'"
              . " AND recipient_id = $contact AND channel = '$channel'"
              . " AND purpose = 'primary'");
}


# ---------------------------------------------------------------------------
# the fixture: Alpha Academy's MIS, one student at Beta Primary

sub link_ { { mis_id => $_[0], priority => $_[1], relationship => $_[2],
              correspondence => $T } }

sync_json($a_int, {
    students => [
        { mis_id => 'S1', first_name => 'Amy', last_name => 'Jones',
          reg_group => '7B', year => '7', status => 'on_roll',
          contacts => [ link_('C1', 1, 'Mother'), link_('C2', 2, 'Father') ] },
        { mis_id => 'S2', first_name => 'Ben', last_name => 'Jones',
          reg_group => '8C', year => '8', status => 'on_roll',
          contacts => [ link_('C1', 1, 'Mother') ] },
        { mis_id => 'S3', first_name => 'Cal', last_name => 'Brown',
          reg_group => '7B', year => '7', status => 'on_roll',
          contacts => [ link_('C3', 1, 'Mother') ] },
        { mis_id => 'S4', first_name => 'Dee', last_name => 'Nowak',
          reg_group => '7B', year => '7', status => 'on_roll',
          contacts => [ link_('C4', 1, 'Mother') ] },
    ],
    contacts => [
        { mis_id => 'C1', title => 'Mrs', first_name => 'Jane',
          last_name => 'Jones', home_phone => '020 7946 0001',
          mobile_phone => '07700 900101', email => 'jane@example.org' },
        { mis_id => 'C2', title => 'Mr', first_name => 'John',
          last_name => 'Jones', mobile_phone => '07700 900102' },
        { mis_id => 'C3', title => 'Ms', first_name => 'Kim',
          last_name => 'Brown', home_phone => '020 7946 0003' },
        { mis_id => 'C4', title => 'Pani', first_name => 'Ewa',
          last_name => 'Nowak', mobile_phone => '07700 900104',
          email => 'ewa@example.org', language => 'pl' },
    ],
    staff => [
        { mis_id => 'T1', title => 'Mr', first_name => 'Tom',
          last_name => 'Smith', mobile_phone => '07700 900401',
          email => 't.smith@school.example' },
    ],
    groups => [
        { mis_id => 'K7B', name => '7B Maths', type => 'class',
          students => [qw(S1 S3 S4)], teachers => ['T1'] },
        { mis_id => 'Y8', name => 'Year 8', type => 'year',
          students => ['S2'] },
    ],
});

sync_json($b_int, {
    students => [ { mis_id => 'S1', first_name => 'Zed', last_name => 'Beta',
                    reg_group => '1A', year => '1', status => 'on_roll',
                    contacts => [ link_('C1', 1, 'Father') ] } ],
    contacts => [ { mis_id => 'C1', first_name => 'Zak', last_name => 'Beta',
                    mobile_phone => '07700 900999' } ],
    groups => [ { mis_id => 'G1', name => 'Beta group', type => 'class',
                  students => ['S1'] } ],
});

my $students = ids_by_mis($a_staff, 'students');
my $contacts = ids_by_mis($a_staff, 'contacts');
my $groups   = ids_by_mis($a_staff, 'groups');
my $b_groups = ids_by_mis($b_int, 'groups');
my $b_students = ids_by_mis($b_int, 'students');

my ($C1, $C2, $C3, $C4) = @$contacts{qw(C1 C2 C3 C4)};
my $K7B = $groups->{K7B};
my $Y8  = $groups->{Y8};

# Jane Jones has the app on a phone
my $tok = issue($a_admin, $C1, 'phone');
{
    my $r = req(PUT => '/app/device', $tok,
                { platform => 'android', push_token => 'fcm-jane' });
    Msgr::Test::json_ok($r, 200, 'Jane Jones has a device');
}

my %MSG = (
    channels => [qw(sms email)],
    to => { groups => [$K7B], send_to => 'primary_contact' },
    subject => 'Trip',
    body => 'Dear {first_name}, the trip is on Friday. {school_name}',
);


# ---------------------------------------------------------------------------
# preview: what would be sent, nothing written

my $P;
{
    $P = preview_ok($a_staff, \%MSG, 'sms + email to 7B');

    my %by = map { ("$_->{type}:$_->{id}" => $_) } @{ $P->{recipients} };
    ok($by{"contact:$C1"}, 'Jane Jones (primary of Amy) is a recipient');
    ok(!$by{"contact:$C2"}, 'John Jones (not primary) is not');

    my @jane = sort map { "$_->{channel} $_->{address}" }
               @{ $by{"contact:$C1"}{deliveries} };
    is_deeply(\@jane, ['email jane@example.org', 'sms +447700900101'],
              'Jane gets an SMS to her mobile and an email');

    # Kim Brown has only a home number: neither SMS nor email reaches her
    ok(!$by{"contact:$C3"}, 'Kim Brown (home number only) is not');
    my ($kim) = grep { $_->{type} eq 'contact' && $_->{id} == $C3 }
                @{ $P->{unreachable} };
    like($kim->{reason} // '', qr/sms.*email|email.*sms/,
         'Kim Brown is unreachable, naming the chosen channels');

    is($P->{counts}{by_channel}{sms}, 3,
       'three SMS: Jane, Ewa and the class teacher');
    is($P->{counts}{by_channel}{email}, 3, 'three emails');
    is($P->{counts}{pin_counted}, 6, 'pin_counted: 6');
    is($P->{pin_required}, $F, 'below the PIN threshold');
    ok(defined $P->{cost}{total} && $P->{cost}{total} > 0, 'a total cost');
    is(written(), '0 0', 'a preview writes nothing');
}


# ---------------------------------------------------------------------------
# send: the outbox holds exactly what the preview showed

my $M1;
{
    # msgr-sender listens: the send's commit wakes it
    my $conninfo = $pg->conninfo('msgr');
    open(my $listen, '-|', 'psql', '-XAtq', '-d', $conninfo,
         '-c', 'LISTEN msgr_outbox', '-c', 'SELECT pg_sleep(2)')
        or die "psql: $!";
    select(undef, undef, undef, 0.5);

    my $r = post_msg($a_staff, \%MSG);
    Msgr::Test::json_ok($r, 201, 'POST /messages 201') or diag($r->{content});
    $M1 = $r->{json}{id};
    is($r->{json}{status}, 'queued', 'queued');
    is_deeply($r->{json}{counts}, $P->{counts}, 'the counts of the preview');
    is_deeply($r->{json}{cost}, $P->{cost}, 'the cost of the preview');
    is($r->{json}{routing}, 'default', 'the school\'s routing, default');
    is($r->{json}{routing_override}, $F, 'no override');

    is_deeply(outbox_rows($M1), preview_rows($P),
              'the outbox holds exactly the deliveries the preview showed');

    my $heard = do { local $/; <$listen> } // '';
    close $listen;
    like($heard, qr/"msgr_outbox" with payload "$A:$M1"/,
         'NOTIFY msgr_outbox "school:message" at commit');
    is(db("SELECT string_agg(DISTINCT state, ',') FROM msgr_deliveries"
          . " WHERE message_id = $M1"), 'queued', 'every delivery queued');

    like(body_for($M1, $C1, 'sms'),
         qr/^Dear Jane, the trip is on Friday\. Alpha Academy$/,
         'merge tokens rendered for Jane');
    is(db("SELECT subject FROM msgr_deliveries WHERE message_id = $M1"
          . " AND recipient_type = 'contact' AND recipient_id = $C1"
          . " AND channel = 'email'"), 'Trip',
       'the email has the subject');

    my $g = get($a_int, "/messages/$M1");
    Msgr::Test::json_ok($g, 200, 'GET /messages/{id}');
    is($g->{json}{states}{sms}{queued}, 3, 'three SMS queued');
    is($g->{json}{sender_role}, 'staff', 'sent by a staff key');

    $g = get($a_int, "/messages/$M1/deliveries?channel=email");
    Msgr::Test::json_ok($g, 200, 'GET deliveries?channel=email');
    is(scalar @{ $g->{json}{items} }, 3, 'three email deliveries');
    is(scalar(grep { $_->{channel} ne 'email' } @{ $g->{json}{items} }), 0,
       'only emails');

    $g = get($a_int, "/messages/$M1/deliveries?limit=2");
    is(scalar @{ $g->{json}{items} }, 2, 'a page of two');
    ok($g->{json}{next_before}, 'with a next page');
    my $g2 = get($a_int, "/messages/$M1/deliveries?limit=10&before="
                        . $g->{json}{next_before});
    is(scalar @{ $g2->{json}{items} }, 4, 'the rest on the next page');

    Msgr::Test::problem_ok(get($a_int, "/messages/$M1/deliveries?state=x"),
                           400, 'a bad state filter: 400');

    $g = get($a_int, '/messages');
    Msgr::Test::json_ok($g, 200, 'GET /messages');
    is($g->{json}{items}[0]{id}, $M1, 'the message is listed');
}


# ---------------------------------------------------------------------------
# the operator's price list

{
    my ($rc, $out, $err) = Msgr::Test::msgrctl($pg, 'school', 'prices', $A);
    is($rc, 0, 'msgrctl school prices: 0');
    is($out, qq({"email":2,"push":1,"sms_segment":35,"voice_call":80}\n),
       'the default price list');

    ($rc, $out, $err) = Msgr::Test::msgrctl($pg, 'school', 'prices', $A,
                                             'sms_segment=10', 'email=x');
    is($rc, 1, 'a bad price: 1');
    like($err, qr/email/, 'names it');
    is(db("SELECT prices::text FROM msgr_schools WHERE school_id = $A"), '{}',
       'and changes nothing');

    ($rc, $out, $err) = Msgr::Test::msgrctl($pg, 'school', 'prices', $A,
                                             'sms_segment=10', 'email=5');
    is($rc, 0, 'new prices: 0') or diag($err);
    is($out, qq({"email":5,"push":1,"sms_segment":10,"voice_call":80}\n),
       'printed');

    my $j = preview_ok($a_staff, \%MSG, 'with the new prices');
    is($j->{cost}{by_channel}{sms}, 30, 'three one-part SMS at 10');
    is($j->{cost}{by_channel}{email}, 15, 'three emails at 5');
    is($j->{cost}{total}, 45, 'total 45');

    ($rc) = Msgr::Test::msgrctl($pg, 'school', 'prices', $A,
                                'sms_segment=default', 'email=default');
    is($rc, 0, 'back to the defaults');
    is(db("SELECT prices::text FROM msgr_schools WHERE school_id = $A"), '{}',
       'nothing of its own left');
    ($rc, $out, $err) = Msgr::Test::msgrctl($pg, 'school', 'prices', 999999);
    is($rc, 1, 'no such school: 1');
}


# ---------------------------------------------------------------------------
# bad input: every bad field named, nothing written

{
    my $before = written();
    my @cases = (
        [ { %MSG, colour => 'red' }, ['colour'], 'an unknown field' ],
        [ { %MSG, channels => [] }, ['channels'], 'no channels' ],
        [ { %MSG, channels => ['fax'] }, ['channels'], 'an unknown channel' ],
        [ { %MSG, channels => ['sms', 'sms'] }, ['channels'],
          'a channel twice' ],
        [ { %MSG, subject => undef }, ['subject'], 'email without subject' ],
        [ { %MSG, body => "   " }, ['body'], 'a blank body' ],
        [ { %MSG, to => {} }, ['to'], 'nobody to send to' ],
        [ { %MSG, to => { groups => ['x'] } }, ['to.groups'], 'a bad id' ],
        [ { %MSG, to => { groups => [$K7B], send_to => 'all' } },
          ['to.send_to'], 'a bad send_to' ],
        [ { %MSG, routing => 'cheapest' }, ['routing'], 'a bad routing' ],
        [ { %MSG, send_at => 'tomorrow' }, ['send_at'], 'a bad send_at' ],
        [ { %MSG, send_at => '2001-01-01T00:00:00Z' }, ['send_at'],
          'send_at in the past' ],
        [ { %MSG, send_at => strftime('%Y-%m-%dT%H:%M:%SZ',
                                      gmtime(time + 91 * 86400)) },
          ['send_at'], 'send_at more than 90 days ahead' ],
        [ { %MSG, pin => '12' }, ['pin'], 'a short PIN' ],
        [ { %MSG, subject => "Trip\nday" }, ['subject'],
          'a line break in the subject' ],
        [ { %MSG, translations => { 'p!' => { body => 'x' } } },
          ['translations.p!'], 'a bad language tag' ],
        [ { %MSG, translations => { pl => { subject => 'x' } } },
          ['translations.pl'], 'a translation without a body' ],
        [ { %MSG, body => 'Dear {first_nam}' }, ['body'],
          'an unknown merge token' ],
        [ { %MSG, sms_body => 'Hi {nope}', body => 'Hi {oops}' },
          ['body', 'sms_body'], 'unknown tokens in two fields' ],
        [ { %MSG, translations => { pl => { body => 'Witaj {imie}' } } },
          ['translations.pl.body'], 'an unknown token in a translation' ],
        [ { %MSG, body => 'a { b' }, ['body'], 'an unclosed brace' ],
        [ { %MSG, channels => ['fax'], body => 'Hi {nope}',
            to => { groups => [$K7B], send_to => 'everyone' } },
          ['body', 'channels', 'to.send_to'],
          'bad fields and an unknown token, all named at once' ],
    );
    for my $c (@cases) {
        my $body = $c->[0];
        delete $body->{subject} if exists $body->{subject}
                                   && !defined $body->{subject};
        my $r = post_msg($a_staff, $body);
        errors_ok($r, 422, $c->[1], "send, $c->[2]");
        $r = preview($a_staff, $body);
        errors_ok($r, 422, $c->[1], "preview, $c->[2]");
    }
    is(written(), $before, 'nothing was written');

    my $r = post_msg($a_staff, { %MSG, body => 'Dear {first_nam}' });
    like($r->{json}{errors}[0]{message}, qr/\{first_nam\}/,
         'the unknown token is named');

    # literal braces and attributes as tokens
    $r = req(POST => '/contact-attributes', $a_admin,
             { name => 'Head of Year', default_value => 'Miss Smith' });
    Msgr::Test::json_ok($r, 201, 'an attribute');
    my $j = preview_ok($a_staff, { %MSG, body => '{{x}} {head of year}' },
                       'braces and an attribute token');
    is(written(), $before, 'still nothing written');
}


# ---------------------------------------------------------------------------
# tenancy: another school's groups, students and messages are not found

{
    Msgr::Test::problem_ok(post_msg($a_staff, { %MSG,
                               to => { groups => [$b_groups->{G1}] } }),
                           404, "another school's group: 404");
    Msgr::Test::problem_ok(preview($a_staff, { %MSG,
                               to => { students => [$b_students->{S1}] } }),
                           404, "another school's student: 404");
    Msgr::Test::problem_ok(get($b_int, "/messages/$M1"), 404,
                           "another school's message: 404");
    Msgr::Test::problem_ok(get($b_int, "/messages/$M1/deliveries"), 404,
                           "another school's deliveries: 404");
    Msgr::Test::problem_ok(req(POST => "/messages/$M1/cancel", $b_admin),
                           404, "another school's cancel: 404");
    is(db("SELECT count(*) FROM msgr_deliveries WHERE message_id = $M1"
          . " AND state = 'cancelled'"), 0, 'and nothing was cancelled');
    my $g = get($b_int, '/messages');
    is(scalar @{ $g->{json}{items} }, 0, "Beta lists none of Alpha's");
}


# ---------------------------------------------------------------------------
# the sending PIN

{
    set_everywhere($a_admin, 'sending', 'pin_threshold', 5);
    my $n = written();

    my $r = post_msg($a_staff, \%MSG);
    Msgr::Test::problem_ok($r, 403, 'over the threshold, no PIN set: 403');
    like($r->{json}{type} // '', qr/pin-required$/, 'pin-required');
    like($r->{json}{detail} // '', qr/\b6\b/, 'the count is given');

    Msgr::Test::problem_ok(req(PUT => '/sending-pin', $a_staff,
                               { pin => '2468' }), 403,
                           'a staff key may not set the PIN');
    errors_ok(req(PUT => '/sending-pin', $a_admin, { pin => '12a4' }), 422,
              ['pin'], 'a PIN of digits only');
    $r = req(PUT => '/sending-pin', $a_admin, { pin => '2468' });
    is($r->{status}, 204, 'the admin sets the PIN: 204')
        or diag($r->{content});
    like(db("SELECT pin_hash FROM msgr_sending_pins WHERE school_id = $A"),
         qr/^\$argon2id\$/, 'only an Argon2id hash is kept');
    is(db("SELECT count(*) FROM msgr_sending_pins WHERE pin_hash LIKE"
          . " '%2468%'"), 0, 'never the PIN itself');
    my $g = get($a_admin, '/sending-pin');
    is($g->{json}{pin_set}, $T, 'GET /sending-pin: set');

    $r = post_msg($a_staff, \%MSG);
    Msgr::Test::problem_ok($r, 403, 'over the threshold without a PIN: 403');
    like($r->{json}{type} // '', qr/pin-required$/, 'pin-required');

    $r = preview_ok($a_staff, \%MSG, 'a preview needs no PIN');
    is($r->{pin_required}, $T, 'but says one is needed');

    for my $i (1 .. 4) {
        $r = post_msg($a_staff, { %MSG, pin => '1111' });
        Msgr::Test::problem_ok($r, 403, "wrong PIN $i: 403");
        like($r->{json}{type} // '', qr/pin-incorrect$/, 'pin-incorrect');
    }
    $r = post_msg($a_staff, { %MSG, pin => '1111' });
    Msgr::Test::problem_ok($r, 429, 'the fifth wrong PIN: 429');
    ok(($r->{headers}{'retry-after'} // 0) > 800, 'Retry-After ~15 minutes');
    is(db("SELECT count(*) FROM msgr_sending_audit WHERE school_id = $A"
          . " AND event = 'send_locked'"), 1, 'the lockout is audited');

    $r = post_msg($a_staff, { %MSG, pin => '2468' });
    Msgr::Test::problem_ok($r, 429, 'locked: even the right PIN is 429');
    $r = post_msg($a_staff, { %MSG, channels => ['xpressions'],
                              subject => undef });
    Msgr::Test::problem_ok($r, 429, 'locked: a small send too');
    is(written(), $n, 'nothing was sent');

    $r = post_msg($a_int, { %MSG, pin => '2468' });
    Msgr::Test::json_ok($r, 201, 'another key with the right PIN: 201');
    is($r->{json}{pin_used}, $T, 'pin_used');

    # fifteen minutes later (the lock's end moved into the past)
    db("UPDATE msgr_send_locks SET locked_until = now() - interval '1 s'");
    $r = post_msg($a_staff, { %MSG, pin => '2468' });
    Msgr::Test::json_ok($r, 201, 'after the lock ends, the right PIN: 201');

    set_everywhere($a_admin, 'sending', 'pin_threshold', 1000);
}


# ---------------------------------------------------------------------------
# Idempotency-Key

{
    my $n = db("SELECT count(*) FROM msgr_messages");
    my $r1 = post_msg($a_int, \%MSG, 'Idempotency-Key' => 'k-1');
    Msgr::Test::json_ok($r1, 201, 'with an Idempotency-Key: 201');
    my $r2 = post_msg($a_int, \%MSG, 'Idempotency-Key' => 'k-1');
    Msgr::Test::json_ok($r2, 201, 'the same key and body: 201');
    is($r2->{json}{id}, $r1->{json}{id}, 'the first answer again');
    is($r2->{headers}{'idempotent-replayed'}, 'true',
       'Idempotent-Replayed: true');
    is(db("SELECT count(*) FROM msgr_messages"), $n + 1, 'one message sent');

    my $r3 = post_msg($a_int, { %MSG, body => 'Other' },
                      'Idempotency-Key' => 'k-1');
    Msgr::Test::problem_ok($r3, 422, 'the same key, another body: 422');
    like($r3->{json}{type} // '', qr/idempotency-key-reused$/,
         'idempotency-key-reused');

    my $r4 = post_msg($a_staff, \%MSG, 'Idempotency-Key' => 'k-1');
    Msgr::Test::json_ok($r4, 201, 'the same key from another API key: 201');
    isnt($r4->{json}{id}, $r1->{json}{id}, 'a message of its own');

    db("UPDATE msgr_idempotency SET created_at = now() - interval '25 h'");
    my $r5 = post_msg($a_int, \%MSG, 'Idempotency-Key' => 'k-1');
    Msgr::Test::json_ok($r5, 201, 'after 24 hours the key is new');
    isnt($r5->{json}{id}, $r1->{json}{id}, 'a new message');
}


# ---------------------------------------------------------------------------
# scheduling and cancelling

{
    my $at = strftime('%Y-%m-%dT%H:%M:%SZ', gmtime(time + 86400));
    my $r = post_msg($a_staff, { %MSG, send_at => $at });
    Msgr::Test::json_ok($r, 201, 'a scheduled message: 201');
    my $id = $r->{json}{id};
    is($r->{json}{status}, 'scheduled', 'scheduled');
    is($r->{json}{send_at}, $at, 'send_at kept');
    is(db("SELECT string_agg(DISTINCT state, ',') || ' '"
          . " || bool_and(run_at = '$at') FROM msgr_deliveries"
          . " WHERE message_id = $id"), 'scheduled true',
       'its deliveries wait for send_at');

    $r = req(POST => "/messages/$id/cancel", $a_staff);
    Msgr::Test::json_ok($r, 200, 'cancel: 200');
    is($r->{json}{status}, 'cancelled', 'the message is cancelled');
    is($r->{json}{cancelled_deliveries}, 6, 'six deliveries cancelled');
    is(db("SELECT string_agg(DISTINCT state, ',') FROM msgr_deliveries"
          . " WHERE message_id = $id"), 'cancelled', 'all of them');
    $r = req(POST => "/messages/$id/cancel", $a_staff);
    Msgr::Test::json_ok($r, 200, 'cancelling again: 200');
    is($r->{json}{cancelled_deliveries}, 0, 'nothing more to cancel');

    # a queued message: what has been sent stays sent
    $r = post_msg($a_staff, \%MSG);
    $id = $r->{json}{id};
    db("UPDATE msgr_deliveries SET state = 'sent' WHERE message_id = $id"
       . " AND channel = 'sms'");
    $r = req(POST => "/messages/$id/cancel", $a_staff);
    Msgr::Test::json_ok($r, 200, 'cancel a queued message');
    is($r->{json}{cancelled_deliveries}, 3, 'the three emails');
    is(db("SELECT string_agg(channel || ':' || state, ',' ORDER BY channel)"
          . " FROM (SELECT DISTINCT channel, state FROM msgr_deliveries"
          . " WHERE message_id = $id) x"), 'email:cancelled,sms:sent',
       'the SMS already sent are not touched');

    Msgr::Test::problem_ok(req(POST => "/messages/999999/cancel", $a_staff),
                           404, 'no such message: 404');
}


# ---------------------------------------------------------------------------
# translations

{
    my %tr = (%MSG, to => { students => [$students->{S4}] },
              translations => { pl => { body => 'Droga {first_name},'
                                                . ' wycieczka w piątek.',
                                        subject => 'Wycieczka' } });
    my $r = post_msg($a_staff, \%tr);
    Msgr::Test::json_ok($r, 201, 'a message with a Polish translation');
    my $id = $r->{json}{id};
    is(body_for($id, $C4, 'sms'), 'Droga Ewa, wycieczka w piątek.',
       'Ewa Nowak (language pl) gets the translation, no warning');
    is(db("SELECT subject || ' ' || language FROM msgr_deliveries"
          . " WHERE message_id = $id AND channel = 'email'"),
       'Wycieczka pl', 'the translated subject, language recorded');

    set_everywhere($a_admin, 'sending', 'include_translation_warning_link',
                   $T);
    $r = post_msg($a_staff, \%tr);
    $id = $r->{json}{id};
    my $sms = body_for($id, $C4, 'sms');
    like($sms, qr/^Droga Ewa, wycieczka w piątek\.\n/,
         'with the warning link on, the translation first');
    like($sms, qr{https?://[^\s]+/v1/translation-warning\s*$},
         'then a link to msgr\'s page explaining it');
    my $page = $ngx->req(GET => "$V/translation-warning");
    is($page->{status}, 200, 'the page is served without a key');
    like($page->{headers}{'content-type'}, qr{^text/html}, 'as HTML');
    like($page->{content}, qr/translated/, 'saying it was translated');

    set_everywhere($a_admin, 'sending', 'translation_warning_url',
                   'https://school.example/translated');
    $r = post_msg($a_staff, \%tr);
    like(body_for($r->{json}{id}, $C4, 'email'),
         qr{https://school\.example/translated\s*$},
         'the school\'s own warning page');

    $r = post_msg($a_staff, { %tr, to => { groups => [$Y8] } });
    is(body_for($r->{json}{id}, $C1, 'sms'),
       'Dear Jane, the trip is on Friday. Alpha Academy',
       'Jane (English) gets the original, no warning');

    set_everywhere($a_admin, 'sending', 'include_translation_warning_link',
                   $F);
}


# ---------------------------------------------------------------------------
# routing: a message's own, and default send_to

{
    my $r = post_msg($a_staff, { %MSG, routing => 'fastest' });
    Msgr::Test::json_ok($r, 201, 'a message routed fastest');
    is($r->{json}{routing}, 'fastest', 'routing fastest');
    is($r->{json}{routing_override}, $T, 'recorded as an override');
    is(db("SELECT max(n) FROM (SELECT count(*) AS n FROM msgr_deliveries"
          . " WHERE message_id = $r->{json}{id} AND purpose = 'primary'"
          . " GROUP BY recipient_type, recipient_id) x"), 1,
       'one delivery a recipient');

    my $d = get_json($a_staff, '/messages/defaults');
    is($d->{send_to}, 'primary_contact',
       'defaults: primary_contact (sending.default_send_to)');

    $r = post_msg($a_staff, { %MSG, to => { groups => [$K7B],
                                            send_to => 'all_contacts' } });
    Msgr::Test::json_ok($r, 201, 'sent to all contacts');
    set_everywhere($a_admin, 'sending', 'default_send_to', 'last_chosen');
    $d = get_json($a_staff, '/messages/defaults');
    is($d->{send_to}, 'all_contacts', 'last_chosen: this key\'s last');
    $d = get_json($a_int, '/messages/defaults');
    isnt($d->{send_to}, 'all_contacts', 'another key has its own');
    set_everywhere($a_admin, 'sending', 'default_send_to', 'primary_contact');
}


# ---------------------------------------------------------------------------
# the parents' app: inbox, receipts and the backup SMS

{
    set_everywhere($a_admin, 'xpressions', 'backup_sms', $T);
    my $r = post_msg($a_staff, { channels => ['xpressions', 'sms'],
                                 to => { students => [$students->{S2}] },
                                 body => 'Ben: {first_name}' });
    Msgr::Test::json_ok($r, 201, 'Xpressions + SMS to Ben\'s mother');
    my $id = $r->{json}{id};
    is(db("SELECT string_agg(channel || ':' || purpose || ':' || state,"
          . " ',' ORDER BY channel) FROM msgr_deliveries"
          . " WHERE message_id = $id"),
       'sms:backup:scheduled,xpressions:primary:queued',
       'the push stands in for the SMS; a backup SMS is scheduled');
    is(db("SELECT extract(epoch FROM run_at - created_at)::int / 60"
          . " FROM msgr_deliveries WHERE message_id = $id"
          . " AND purpose = 'backup'"),
       get_json($a_admin, '/settings/xpressions')->{backup_sms_after_minutes},
       'at backup_sms_after_minutes');
    my $push = db("SELECT delivery_id FROM msgr_deliveries"
                  . " WHERE message_id = $id AND channel = 'xpressions'");

    db("UPDATE msgr_deliveries SET state = 'sent', sent_at = now()"
       . " WHERE delivery_id = $push");

    my $in = get($tok, '/app/inbox');
    Msgr::Test::json_ok($in, 200, 'GET /app/inbox');
    my ($item) = grep { $_->{id} == $push } @{ $in->{json}{items} };
    ok($item, 'the Xpression is in the inbox');
    is($item->{body}, 'Ben: Jane', 'rendered for her');
    is($item->{school}, 'Alpha Academy', 'with the school');
    is($item->{state}, 'sent', 'sent');

    Msgr::Test::problem_ok(get($a_staff, '/app/inbox'), 403,
                           'a school key has no inbox');

    # another parent's message is not found
    my $tok2 = issue($a_admin, $C2, 'phone');
    Msgr::Test::problem_ok(req(POST => "/app/inbox/$push/received", $tok2),
                           404, "another parent's delivery: 404");

    $r = req(POST => "/app/inbox/$push/received", $tok);
    Msgr::Test::json_ok($r, 200, 'received: 200');
    is($r->{json}{state}, 'delivered', 'delivered');
    is(db("SELECT state FROM msgr_deliveries WHERE message_id = $id"
          . " AND purpose = 'backup'"), 'cancelled',
       'the backup SMS is cancelled');

    $r = req(POST => "/app/inbox/$push/received", $tok);
    Msgr::Test::json_ok($r, 200, 'received again: 200');
    is($r->{json}{state}, 'delivered', 'still delivered');
    $r = req(POST => "/app/inbox/$push/read", $tok);
    is($r->{json}{state}, 'read', 'read');
    $r = req(POST => "/app/inbox/$push/received", $tok);
    is($r->{json}{state}, 'read', 'a late receipt does not go back');

    # the backup already claimed by the sender is not cancelled
    $r = post_msg($a_staff, { channels => ['xpressions'],
                              to => { students => [$students->{S2}] },
                              body => 'Second' });
    $id = $r->{json}{id};
    $push = db("SELECT delivery_id FROM msgr_deliveries"
               . " WHERE message_id = $id AND channel = 'xpressions'");
    db("UPDATE msgr_deliveries SET state = 'sending' WHERE message_id = $id"
       . " AND purpose = 'backup'");
    req(POST => "/app/inbox/$push/received", $tok);
    is(db("SELECT state FROM msgr_deliveries WHERE message_id = $id"
          . " AND purpose = 'backup'"), 'sending',
       'a backup already being sent is left alone');

    Msgr::Test::problem_ok(req(POST => "/app/inbox/999999/read", $tok), 404,
                           'no such delivery: 404');
    set_everywhere($a_admin, 'xpressions', 'backup_sms', $F);
}


# ---------------------------------------------------------------------------
# a terminal state is final

{
    my $id = db("SELECT delivery_id FROM msgr_deliveries"
                . " WHERE state = 'cancelled' LIMIT 1");
    my $ok = eval { db("UPDATE msgr_deliveries SET state = 'queued'"
                       . " WHERE delivery_id = $id"); 1 };
    ok(!$ok && $@ =~ /cannot go from cancelled to queued/,
       'the database refuses it');
    is(db("SELECT state FROM msgr_deliveries WHERE delivery_id = $id"),
       'cancelled', 'a cancelled delivery cannot be queued again');
}


Msgr::Test::finish();
