#!/usr/bin/perl

# SMS and voice through Twilio (a fake one on loopback, t/lib/FakeTwilio.pm,
# speaking its wire format): each parent gets exactly the outbox's text at
# their number, a call says it twice in the delivery's language; Twilio's
# signed receipts move deliveries to delivered (a bad signature changes
# nothing, late and repeated receipts are ignored); each failure class ends
# as it should (permanent codes, 500s retried later, Retry-After honoured, a
# timeout, attempts run out); a failing provider's traffic moves to the
# other; the delivery id is the idempotency key.

use strict;
use warnings;
use utf8;

use Encode qw(decode_utf8);
use JSON::PP;
use Test::More;

use lib 't/lib';
use Msgr::Test;
use Msgr::Test::API qw(:DEFAULT req);
use FakeTwilio;

my $V = '/msgr/v1';

my $tw = FakeTwilio->new;
my $pg = Msgr::Test::pg_start();
my ($A, $admin, $staff, $int) = one_school($pg);
my $ngx = use_nginx(Msgr::Test::nginx_start($pg, workers => 2,
    location => '    msgr_twilio_auth_token ' . $tw->token . ';'),
    prefix => $V);

sub db { decode_utf8($pg->psql($_[0])) }

my $STATUS = 'http://127.0.0.1:' . $ngx->port . "$V/providers/twilio/status";

sub provider {
    my ($name, $fake, %o) = @_;
    my $extra = join '', map { "$_ = $o{$_}\n" } sort keys %o;
    return "[provider $name]\ntype = twilio\nchannels = sms, voice\n"
         . 'base_url = ' . $fake->url . "\n"
         . 'account_sid = ' . $fake->sid . "\n"
         . 'auth_token = ' . $fake->token . "\n"
         . "from = +447700900999\nstatus_callback = $STATUS\ntimeout = 1\n"
         . $extra;
}

my $CONF = "[sender]\npoll = 0.1\n\n" . provider('tw', $tw);

sub drain_ok { sender_ok($pg, $_[1] // $CONF, $_[0]) }

sub send_ok { message_ok($staff, @_) }

# the deliveries of a message: { address => {id, state, ...} }
sub deliveries {
    my ($msg) = @_;
    my %d;
    for (split /\n/, db("SELECT json_build_object('id', delivery_id,"
                        . " 'address', address, 'state', state,"
                        . " 'attempt', attempt, 'error', error,"
                        . " 'provider', provider,"
                        . " 'provider_id', provider_id, 'body', body,"
                        . " 'language', language,"
                        . " 'later', run_at > now() + interval '0.5 s',"
                        . " 'delivered_at', delivered_at)"
                        . " FROM msgr_deliveries WHERE message_id = $msg")) {
        my $j = JSON::PP->new->decode($_);
        $d{ $j->{address} } = $j;
    }
    return \%d;
}

# what a fake received for a message's deliveries (its Idempotency-Key)
sub received {
    my ($fake, $msg) = @_;
    my %ids = map { $_ => 1 } split /\n/,
        db("SELECT delivery_id FROM msgr_deliveries WHERE message_id = $msg");
    return grep { $ids{ $_->{headers}{'idempotency-key'} // '' } }
           $fake->requests;
}

# nothing of a finished block is tried again by a later one
sub settle {
    my ($msg) = @_;
    db("UPDATE msgr_deliveries SET state = 'cancelled'"
       . " WHERE message_id = $msg AND state IN ('queued', 'scheduled')");
}

sub again {
    my ($msg) = @_;
    db("UPDATE msgr_deliveries SET run_at = now()"
       . " WHERE message_id = $msg AND state = 'queued'");
}


# ---------------------------------------------------------------------------
# families: each number's last four digits pick the fake's answer

my @people = (
    [ S1 => C1 => 'Jane', '07700 900101', 'KOK' ],
    [ S2 => C2 => 'Kim',  '07700 900102', 'KOK' ],
    [ S3 => C3 => 'Ann',  '07700 900001', 'KPERM' ],
    [ S4 => C4 => 'Bob',  '07700 900002', 'KPERM' ],
    [ S5 => C5 => 'Cas',  '07700 900003', 'KPERM' ],
    [ S6 => C6 => 'Dee',  '07700 900500', 'K500' ],
    [ S7 => C7 => 'Eve',  '07700 900429', 'K429' ],
    [ S8 => C8 => 'Fay',  '07700 900408', 'KSLOW' ],
    [ S9 => C9 => 'Gus',  '07700 900444', 'KDROP' ],
    map { [ "M$_" => "CM$_" => "Max$_", sprintf('07700 9002%02d', $_),
            'KMANY' ] } 10 .. 21,
);

my %groups;
push @{ $groups{ $_->[4] } }, $_->[0] for @people;

sync_json($int, {
    students => [ map { { mis_id => $_->[0], first_name => "Kid$_->[0]",
                          last_name => $_->[2], reg_group => '7B',
                          year => '7', status => 'on_roll',
                          contacts => [ { mis_id => $_->[1], priority => 1,
                                          correspondence => $T } ] } }
                  @people ],
    contacts => [ map { { mis_id => $_->[1], title => 'Mx',
                          first_name => $_->[2], last_name => 'Family',
                          mobile_phone => $_->[3],
                          ($_->[4] eq 'KOK'
                           ? (home_phone => '01632 960' . substr($_->[3], -3))
                           : ()) } } @people ],
    groups => [ map { { mis_id => $_, name => $_, type => 'class',
                        students => $groups{$_} } } sort keys %groups ],
});

my $g = ids_by_mis($staff, 'groups');

sub to { { groups => [ map { $g->{$_} } @_ ] } }


# ---------------------------------------------------------------------------
# SMS: each parent their own text; receipts signed by Twilio

my ($sms_msg, $sms);
{
    $sms_msg = send_ok({ channels => ['sms'], to => to('KOK'),
                         body => 'Dear {first_name}, trip on Friday & "more"' },
                       'an SMS to two parents');
    drain_ok('SMS');

    my $d = deliveries($sms_msg);
    my @got = received($tw, $sms_msg);
    is(scalar @got, 2, 'the fake got two messages');

    for my $r (@got) {
        my $want = $d->{ $r->{params}{To} };
        ok($want, "To $r->{params}{To} is a delivery's address") or next;
        is($r->{path}, '/2010-04-01/Accounts/' . $tw->sid . '/Messages.json',
           "$r->{params}{To}: posted to Messages.json");
        ok($r->{auth_ok}, "$r->{params}{To}: with the account's Basic auth");
        is($r->{params}{Body}, $want->{body},
           "$r->{params}{To}: exactly the outbox's text");
        is($r->{params}{From}, '+447700900999', "$r->{params}{To}: From");
        is($r->{params}{StatusCallback}, "$STATUS?delivery=$want->{id}",
           "$r->{params}{To}: the receipt comes back with the delivery id");
        is($r->{headers}{'idempotency-key'}, $want->{id},
           "$r->{params}{To}: Idempotency-Key is the delivery id");
        is($r->{headers}{'i-twilio-idempotency-token'}, $want->{id},
           "$r->{params}{To}: and I-Twilio-Idempotency-Token");
        is("$want->{state} $want->{provider} $want->{provider_id}",
           "sent tw $r->{sid}", "$r->{params}{To}: sent, Twilio's sid kept");
    }
    is_deeply([ sort map { $_->{params}{Body} } @got ],
              [ 'Dear Jane, trip on Friday & "more"',
                'Dear Kim, trip on Friday & "more"' ],
              'Jane and Kim, each their own name');

    $sms = { map { $_->{params}{To} => $_ } @got };
    my $jane = $sms->{'+447700900101'};
    my $kim = $sms->{'+447700900102'};

    # a bad signature changes nothing
    my $r = $tw->callback($jane, 'delivered', token => 'not-the-token');
    is($r->{status}, 403, 'a receipt signed with another token: 403');
    like($r->{content}, qr/signature-invalid/, 'problem signature-invalid');
    $r = $tw->callback($jane, 'delivered', unsigned => 1);
    is($r->{status}, 403, 'an unsigned receipt: 403');
    $r = $tw->callback($jane, 'delivered', signature => 'AAAA' x 7);
    is($r->{status}, 403, 'a made-up signature: 403');
    # signed for one delivery, posted for another
    $r = $tw->callback($jane, 'delivered',
                       post_url => "$STATUS?delivery="
                                   . $d->{'+447700900102'}{id});
    is($r->{status}, 403, 'a signature for another URL: 403');
    is(db("SELECT string_agg(state, ',') FROM msgr_deliveries"
          . " WHERE message_id = $sms_msg"), 'sent,sent', 'both still sent');

    # the real ones
    $r = $tw->callback($jane, 'delivered');
    is($r->{status}, 204, 'Jane\'s receipt, signed: 204')
        or diag($r->{content});
    $d = deliveries($sms_msg);
    is($d->{'+447700900101'}{state}, 'delivered', 'Jane\'s SMS delivered');
    ok($d->{'+447700900101'}{delivered_at}, 'with the time');
    is($d->{'+447700900102'}{state}, 'sent', 'Kim\'s still sent');

    # repeated, late, or another sid's
    my $at = $d->{'+447700900101'}{delivered_at};
    $r = $tw->callback($jane, 'delivered');
    is($r->{status}, 204, 'the same receipt again: 204');
    $r = $tw->callback($jane, 'undelivered', error_code => 30005);
    is($r->{status}, 204, 'a late "undelivered": 204');
    $d = deliveries($sms_msg);
    is("$d->{'+447700900101'}{state} $d->{'+447700900101'}{delivered_at}",
       "delivered $at", 'ignored: delivered, at the first time');

    $r = $tw->callback($kim, 'delivered',
                       params => { MessageSid => 'SM' . ('f' x 32),
                                   SmsSid => 'SM' . ('f' x 32) });
    is($r->{status}, 204, 'a receipt naming another sid: 204');
    is(deliveries($sms_msg)->{'+447700900102'}{state}, 'sent',
       'and ignored');

    $r = $tw->callback($kim, 'sent');
    is($r->{status}, 204, 'a status on the way (sent): 204');
    is(deliveries($sms_msg)->{'+447700900102'}{state}, 'sent',
       'nothing changes');

    $r = $tw->callback($kim, 'undelivered', error_code => 30003);
    is($r->{status}, 204, 'Kim\'s "undelivered", 30003: 204');
    $d = deliveries($sms_msg);
    is("$d->{'+447700900102'}{state}: $d->{'+447700900102'}{error}",
       'temporary-failure: twilio 30003: undelivered',
       'temporary-failure, with the code');
    $r = $tw->callback($kim, 'delivered');
    is(deliveries($sms_msg)->{'+447700900102'}{state}, 'temporary-failure',
       'a terminal state is final: a later "delivered" is ignored');
}


# ---------------------------------------------------------------------------
# voice: the text said twice, in the delivery's language

{
    my $id = send_ok({ channels => ['voice'], to => to('KOK'),
                       body => 'School closes <early> today' },
                     'a voice message to two parents');
    db("UPDATE msgr_deliveries SET language = 'pl' WHERE message_id = $id"
       . " AND address = '+441632960102'");
    drain_ok('voice');

    my $d = deliveries($id);
    my @got = received($tw, $id);
    is(scalar @got, 2, 'two calls');
    for my $r (@got) {
        my $want = $d->{ $r->{params}{To} } or next;
        my $lang = ($want->{language} // '') eq 'pl' ? 'pl-PL' : 'en-GB';
        my $text = $want->{body};
        $text =~ s/&/&amp;/g; $text =~ s/</&lt;/g; $text =~ s/>/&gt;/g;
        like($r->{path}, qr{/Calls\.json$}, "$r->{params}{To}: Calls.json");
        is($r->{params}{Twiml},
           qq(<Response><Say language="$lang">$text</Say>)
           . qq(<Pause length="1"/><Say language="$lang">$text</Say>)
           . '</Response>',
           "$r->{params}{To}: TwiML says the text twice in $lang");
        is($want->{state}, 'sent', "$r->{params}{To}: sent");
        like($r->{sid}, qr/^CA/, "$r->{params}{To}: a call's sid");
    }
    my %c = map { $_->{params}{To} => $_ } @got;

    is($tw->callback($c{'+441632960101'}, 'completed')->{status}, 204,
       'a completed call: 204');
    is($tw->callback($c{'+441632960102'}, 'busy')->{status}, 204,
       'a busy one: 204');
    $d = deliveries($id);
    is($d->{'+441632960101'}{state}, 'delivered', 'completed: delivered');
    is("$d->{'+441632960102'}{state}: $d->{'+441632960102'}{error}",
       'temporary-failure: twilio: busy', 'busy: temporary-failure');
}


# ---------------------------------------------------------------------------
# a receipt that comes before the sender has Twilio's answer

{
    $tw->set(callback_first => 'delivered');
    my $id = send_ok({ channels => ['sms'], to => to('KOK'), body => 'Quick' },
                     'SMS whose receipts come first');
    drain_ok('receipts first');
    $tw->set(callback_first => 0);

    my $d = deliveries($id);
    my %sid = map { $_->{params}{To} => $_->{sid} } received($tw, $id);
    for my $to (sort keys %$d) {
        is("$d->{$to}{state} $d->{$to}{provider_id}", "delivered $sid{$to}",
           "$to: delivered, the receipt's sid kept; the sender's late"
           . ' "sent" did not undo it');
    }
}


# ---------------------------------------------------------------------------
# permanent errors: not retried

{
    my $id = send_ok({ channels => ['sms'], to => to('KPERM'), body => 'No' },
                     'SMS to three bad numbers');
    drain_ok('permanent errors');
    my $d = deliveries($id);
    is("$d->{'+447700900001'}{state}: $d->{'+447700900001'}{error}",
       "permanent-failure: twilio 21211: The 'To' number +447700900001 is"
       . ' not a valid phone number.', '21211: permanent-failure, the code');
    like("$d->{'+447700900002'}{state}: $d->{'+447700900002'}{error}",
         qr/^permanent-failure: twilio 21614: /, '21614: permanent-failure');
    like("$d->{'+447700900003'}{state}: $d->{'+447700900003'}{error}",
         qr/^permanent-failure: twilio 21610: /,
         '21610 (unsubscribed): permanent-failure');
    drain_ok('again');
    is(scalar(received($tw, $id)), 3, 'never tried again');
}


# ---------------------------------------------------------------------------
# 500: later, then sent

{
    $tw->set(status => 500);
    my $id = send_ok({ channels => ['sms'], to => to('KOK'), body => 'Retry' },
                     'SMS while Twilio fails');
    drain_ok('500s');
    my $d = deliveries($id);
    for my $to (sort keys %$d) {
        is("$d->{$to}{state} $d->{$to}{attempt} $d->{$to}{later}",
           'queued 1 1', "$to: queued again, attempt 1, for later");
        like($d->{$to}{error}, qr/^twilio 20500: /, "$to: why");
    }

    $tw->set(status => 0);
    drain_ok('before its time');
    is(scalar(received($tw, $id)), 2, 'nothing tried before run_at');

    again($id);
    drain_ok('Twilio is back');
    $d = deliveries($id);
    for my $to (sort keys %$d) {
        is("$d->{$to}{state} $d->{$to}{attempt}", 'sent 2',
           "$to: sent at the second attempt");
    }
}


# ---------------------------------------------------------------------------
# 429 with Retry-After; a timeout; a dropped connection

{
    $tw->set(retry_after => 40);
    my $id = send_ok({ channels => ['sms'], to => to('K429'), body => 'Busy' },
                     'SMS to a number Twilio rate-limits');
    drain_ok('429');
    is(db("SELECT state || ' ' || attempt || ' '"
          . " || (run_at > now() + interval '35 s')"
          . " || (run_at < now() + interval '50 s')"
          . " FROM msgr_deliveries WHERE message_id = $id"),
       'queued 1 truetrue', 'queued, for Retry-After\'s 40 seconds');
    settle($id);

    $id = send_ok({ channels => ['sms'], to => to('KSLOW'), body => 'Slow' },
                  'SMS Twilio answers too late');
    drain_ok('timeout');
    like(db("SELECT state || ' ' || attempt || ': ' || error"
            . " FROM msgr_deliveries WHERE message_id = $id"),
         qr/^queued 1: twilio: Timeout/i, 'a timeout: queued again');
    settle($id);

    $id = send_ok({ channels => ['sms'], to => to('KDROP'), body => 'Drop' },
                  'SMS whose connection drops');
    drain_ok('dropped');
    like(db("SELECT state || ' ' || attempt || ': ' || error"
            . " FROM msgr_deliveries WHERE message_id = $id"),
         qr/^queued 1: twilio: /, 'a dropped connection: queued again');
    settle($id);
}


# ---------------------------------------------------------------------------
# attempts run out: technical-failure

{
    my $conf = "[sender]\npoll = 0.1\nmax_attempts.sms = 2\n\n"
             . provider('tw', $tw);
    my $id = send_ok({ channels => ['sms'], to => to('K500'), body => 'Down' },
                     'SMS to a number that always gets 500');
    drain_ok('first attempt', $conf);
    again($id);
    drain_ok('second attempt', $conf);
    like(db("SELECT state || ' ' || attempt || ': ' || error"
            . " FROM msgr_deliveries WHERE message_id = $id"),
         qr/^technical-failure 2: twilio 20500: /,
         'technical-failure after max_attempts, with the last error');
}


# ---------------------------------------------------------------------------
# the idempotency key: a delivery sent twice is one message

{
    my $id = send_ok({ channels => ['sms'], to => to('KOK'), body => 'Once' },
                     'SMS sent twice (a sender died after sending)');
    drain_ok('first send');
    my $first = deliveries($id);
    db("UPDATE msgr_deliveries SET state = 'queued', provider_id = NULL,"
       . " run_at = now() WHERE message_id = $id");
    drain_ok('second send');
    is(scalar(received($tw, $id)), 2, 'Twilio recorded two messages, not 4');
    is(scalar(grep { $_->{headers}{'idempotency-key'} }
              $tw->replays), 2, 'the repeats answered from the first');
    my $d = deliveries($id);
    is_deeply([ map { $d->{$_}{provider_id} } sort keys %$d ],
              [ map { $first->{$_}{provider_id} } sort keys %$first ],
              'the same sids');

    # without the fake honouring keys, the same drain makes doubles
    $tw->set(ignore_keys => 1);
    db("UPDATE msgr_deliveries SET state = 'queued', provider_id = NULL,"
       . " run_at = now() WHERE message_id = $id");
    drain_ok('third send, keys ignored');
    is(scalar(received($tw, $id)), 4, 'a provider ignoring the key: doubles');
    $tw->set(ignore_keys => 0);
}


# ---------------------------------------------------------------------------
# failover: a provider returning 500s loses its share to the other

{
    my $tw2 = FakeTwilio->new(token => 'b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0');
    $tw->set(status => 500);
    my $conf = "[sender]\npoll = 0.05\nmax_in_flight = 1\nburst_errors = 1\n\n"
             . provider('tw-a', $tw) . "\n" . provider('tw-b', $tw2);
    my $id = send_ok({ channels => ['sms'], to => to('KMANY'), body => 'Go' },
                     'twelve SMS, two providers, one failing');
    my $err = drain_ok('failover', $conf);
    $tw->set(status => 0);

    my @a = received($tw, $id);
    my @b = received($tw2, $id);
    is(@a + @b, 12, 'each SMS went to one provider');
    cmp_ok(scalar @b, '>=', 8, 'most went to the healthy one')
        or diag('tw-a ' . @a . ', tw-b ' . @b);
    like($err, qr/provider tw-a: 1 errors within .*share drops/,
         'the failing one\'s share dropped');
    my $d = deliveries($id);
    is(scalar(grep { $_->{state} eq 'sent' && $_->{provider} eq 'tw-b' }
              values %$d), scalar @b, 'those sent by tw-b');
    is(scalar(grep { $_->{state} eq 'queued' } values %$d), scalar @a,
       'tw-a\'s are queued for another try');
    settle($id);
    $tw2->stop;
}


# ---------------------------------------------------------------------------
# behind a proxy: msgr_twilio_callback_url is the URL Twilio signs

{
    my $public = 'https://msgr.example.org/api/v1/providers/twilio/status';
    my $ngx2 = Msgr::Test::nginx_start($pg, workers => 1,
        location => '    msgr_twilio_auth_token ' . $tw->token . ";\n"
                    . "    msgr_twilio_callback_url $public;");
    my $local = 'http://127.0.0.1:' . $ngx2->port
              . "$V/providers/twilio/status";

    my $id = send_ok({ channels => ['sms'], to => to('KOK'), body => 'Proxy' },
                     'SMS whose receipts come through a proxy');
    drain_ok('proxy');
    my $d = deliveries($id);
    my ($r0) = grep { $_->{params}{To} eq '+447700900101' } received($tw, $id);
    my $q = "?delivery=$d->{'+447700900101'}{id}";

    my $r = $tw->callback($r0, 'delivered', post_url => "$local$q");
    is($r->{status}, 403, 'signed for the local URL: 403 behind the proxy');
    $r = $tw->callback($r0, 'delivered', url => "$public$q",
                       post_url => "$local$q");
    is($r->{status}, 204, 'signed for the public URL: 204');
    is(deliveries($id)->{'+447700900101'}{state}, 'delivered', 'delivered');
}


# ---------------------------------------------------------------------------
# the route's own answers

{
    my $r = $ngx->req(POST => "$V/providers/twilio/status?delivery=1",
                      body => '{}',
                      headers => { 'Content-Type' => 'application/json' });
    Msgr::Test::problem_ok($r, 415, 'a JSON body: 415');

    my ($jane) = grep { $_->{params}{To} eq '+447700900101' }
                 received($tw, $sms_msg);
    $r = $tw->callback($jane, 'delivered', url => $STATUS,
                       post_url => $STATUS);
    is($r->{status}, 400, 'signed, but no delivery: 400');

    my $ngx3 = Msgr::Test::nginx_start($pg, workers => 1);
    my $url = 'http://127.0.0.1:' . $ngx3->port
            . "$V/providers/twilio/status?delivery=1";
    $r = $tw->callback($jane, 'delivered', url => $url);
    is($r->{status}, 403, 'no msgr_twilio_auth_token here: 403');
    like($r->{content}, qr/msgr_twilio_auth_token/, 'saying so');
}


# ---------------------------------------------------------------------------
# the provider's section is checked

{
    my @bad = (
        [ "[provider t]\ntype = twilio\nchannels = sms\n",
          qr/needs account_sid, auth_token and from/, 'missing keys' ],
        [ "[provider t]\ntype = twilio\nchannels = sms\nfrom = 07700900999\n",
          qr/:4: from: a number in E\.164 form/, 'a From not in E.164' ],
        [ "[provider t]\ntype = twilio\nchannels = email\naccount_sid = AC1\n"
          . "auth_token = x\nfrom = +447700900999\n",
          qr/sends sms and voice only/, 'an email channel' ],
        [ "[provider t]\ntype = twilio\nchannels = sms\ncolour = red\n",
          qr/:4: an unknown key for type twilio/, 'an unknown key' ],
    );
    for my $b (@bad) {
        my ($rc, $out, $err) = Msgr::Test::sender($pg, $b->[0]);
        is($rc, 1, "$b->[2]: exits 1");
        like($err, $b->[1], "$b->[2]: says why");
    }
}

$tw->stop;
Msgr::Test::finish();
