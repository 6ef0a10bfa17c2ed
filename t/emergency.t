#!/usr/bin/perl

# Emergency & Voice: pincodes (made by msgr and answered once, listed
# without codes, changed with If-Match, deleted, regenerated, each bad
# field named, another school's not found, every change audited) and the
# SMS and voice dial-in webhooks: signed like Twilio's (a bad signature is 403), a
# permitted number with its code broadcasts the text to the option's
# groups at the emergency priority; a wrong code, a number not permitted
# and a locked-out number get the same reply; three wrong codes in 10
# minutes lock the number out for 30, and the lock ends (rows aged in SQL).

use strict;
use warnings;

use Digest::SHA qw(hmac_sha1);
use MIME::Base64 qw(encode_base64);
use Test::More;

use lib 't/lib';
use Msgr::Test;
use Msgr::Test::API qw(:DEFAULT req json_req);

my $V     = '/msgr/v1';
my $TOKEN = 'test-auth-token';
my $BASE  = 'https://msgr.example.org';

my $pg = Msgr::Test::pg_start();

my ($A, $B, $a_admin, $a_staff, $a_int, $b_admin, $b_int)
    = two_schools($pg);

my $ngx = api_nginx($pg, http => "    msgr_twilio_auth_token $TOKEN;\n"
                                . "    msgr_twilio_callback_url $BASE/msgr/;\n"
                                . "    msgr_dial_in_number +442033224122;",
                    allow => [qr/is not signed with msgr_twilio_auth_token/]);
use_nginx($ngx, prefix => $V);

sub db { $pg->psql($_[0]) }

sub link_ { { mis_id => $_[0], priority => $_[1], relationship => $_[2],
              correspondence => $T } }

sync_json($a_int, {
    students => [
        { mis_id => 'S1', first_name => 'Amy', last_name => 'Jones',
          reg_group => '7B', year => '7', status => 'on_roll',
          contacts => [ link_('C1', 1, 'Mother'), link_('C2', 2, 'Father') ] },
        { mis_id => 'S2', first_name => 'Ben', last_name => 'Brown',
          reg_group => '7B', year => '7', status => 'on_roll',
          contacts => [ link_('C3', 1, 'Mother') ] },
    ],
    contacts => [
        { mis_id => 'C1', first_name => 'Jane', last_name => 'Jones',
          mobile_phone => '07700 900101', home_phone => '020 7946 0001' },
        { mis_id => 'C2', first_name => 'John', last_name => 'Jones',
          mobile_phone => '07700 900102' },
        { mis_id => 'C3', first_name => 'Kim', last_name => 'Brown',
          mobile_phone => '07700 900103', home_phone => '020 7946 0003' },
    ],
    staff => [
        { mis_id => 'T1', first_name => 'Tom', last_name => 'Smith',
          mobile_phone => '07700 900401' },
    ],
    groups => [
        { mis_id => 'K7B', name => '7B', type => 'registration',
          students => [qw(S1 S2)] },
    ],
});

my $groups = ids_by_mis($a_admin, 'groups');
my $g7b = $groups->{K7B};
ok($g7b, 'the fixture has its group');

my $r = req(GET => '/school', $a_admin);
is($r->{json}{dial_in_number}, '+442033224122',
   'GET /v1/school shows the dial-in number');

# ---------------------------------------------------------------------------
# pincodes

my %new = (label => 'Trips', permitted_numbers => '07700 900001, 07700 900002',
           menu_script => 'Welcome to Alpha Academy emergency messages.',
           options => [ { digit => 1, label => 'Parents of 7B',
                          channels => ['sms'], groups => [$g7b] } ]);

$r = json_req(POST => '/pincodes', $a_staff, \%new);
is($r->{status}, 403, 'staff may not make pincodes');

$r = json_req(POST => '/pincodes', $a_admin, \%new);
is($r->{status}, 201, 'POST /v1/pincodes: 201') or diag($r->{content});
my $pin = $r->{json};
like($pin->{pincode} // '', qr/^\d{6}$/, 'the code is six digits, answered');
is_deeply($pin->{permitted_numbers}, ['+447700900001', '+447700900002'],
          'the numbers are E.164 with the school\'s country');
is_deeply($pin->{options}[0]{channels}, ['sms'], 'the option as given');
my $id = $pin->{id};
my $code = $pin->{pincode};

like(db("SELECT code_hash FROM msgr_pincodes WHERE pincode_id = $id"),
     qr/^\$argon2id\$/, 'only an Argon2id hash is kept');
unlike(db("SELECT row_to_json(p)::text FROM msgr_pincodes p"), qr/\b$code\b/,
       'the code is not stored');

$r = req(GET => '/pincodes', $a_admin);
is($r->{status}, 200, 'GET /v1/pincodes');
is(scalar @{ $r->{json} }, 1, 'one pincode');
ok(!exists $r->{json}[0]{pincode}, 'listed without its code');
ok(exists $r->{json}[0]{last_used_at}, 'with when it was last used');

$r = req(GET => "/pincodes/$id", $b_admin);
is($r->{status}, 404, 'another school\'s pincode is not found');
$r = json_req(PATCH => "/pincodes/$id", $b_admin, { label => 'x' });
is($r->{status}, 404, 'nor changed');

$r = req(GET => "/pincodes/$id", $a_admin);
my $etag = $r->{headers}{etag};
ok($etag, 'a pincode has an ETag');

$r = json_req(PATCH => "/pincodes/$id", $a_admin, { label => 'Trips away' },
              headers => { 'If-Match' => '"999"' });
is($r->{status}, 412, 'PATCH with a stale If-Match: 412');

$r = json_req(PATCH => "/pincodes/$id", $a_admin,
              { label => 'Trips away',
                permitted_numbers => ['07700 900001', '07700 900003',
                                      '07700 900002'] },
              headers => { 'If-Match' => $etag });
is($r->{status}, 200, 'PATCH with the ETag: 200') or diag($r->{content});
is($r->{json}{label}, 'Trips away', 'the label changed');
ok(!exists $r->{json}{pincode}, 'a change does not show the code');
isnt($r->{headers}{etag}, $etag, 'the ETag changed');

is(db("SELECT string_agg(field, ',' ORDER BY audit_id)"
      . " FROM msgr_pincode_audit WHERE pincode_id = $id"),
   'created,label,permitted_numbers', 'creation and changes are audited');

# bad fields, every one named; nothing is written
my $before = db('SELECT count(*) FROM msgr_pincodes');
$r = json_req(POST => '/pincodes', $a_admin, {
    label => '', permitted_numbers => '07700 900001, 12, 0800 1',
    menu_script => 'x' x 1001,
    options => [ { digit => 1, label => 'A', groups => [] },
                 { digit => 1, label => 'B', groups => [$g7b],
                   channels => ['fax'] } ] });
errors_ok($r, 422, [qw(label permitted_numbers[1] permitted_numbers[2]
                       menu_script options[0].groups options[1].digit
                       options[1].channels)], 'bad fields');

$r = json_req(POST => '/pincodes', $a_admin, {
    %new, options => [ map { { digit => $_, label => "O$_",
                               groups => [$g7b] } } 1 .. 10 ] });
errors_ok($r, 422, ['options'], 'ten options');

$r = json_req(POST => '/pincodes', $a_admin, {
    %new, options => [ { digit => 1, label => 'A', groups => [999999] } ] });
errors_ok($r, 422, ['options[0].groups'], 'an unknown group');

$r = json_req(POST => '/pincodes', $b_admin, {
    %new, options => [ { digit => 1, label => 'A', groups => [$g7b] } ] });
errors_ok($r, 422, ['options[0].groups'], 'another school\'s group');
is(db('SELECT count(*) FROM msgr_pincodes'), $before, 'nothing was written');

# ---------------------------------------------------------------------------
# the SMS dial-in

sub sign {
    my ($url, $p) = @_;
    my $s = $url . join '', map { $_ . $p->{$_} } sort keys %$p;
    my $sig = encode_base64(hmac_sha1($s, $TOKEN));
    chomp $sig;
    return $sig;
}

sub form {
    my ($p) = @_;
    return join '&', map {
        my ($k, $v) = ($_, $p->{$_});
        s/([^A-Za-z0-9_.~-])/sprintf('%%%02X', ord $1)/ge for $k, $v;
        "$k=$v" } sort keys %$p;
}

sub sms {
    my ($from, $body, %o) = @_;
    my $p = { From => $from, To => '+442033224122', Body => $body,
              MessageSid => 'SM' . int(rand(1e9)) };
    my $sig = $o{sig} // sign("$BASE$V/dial-in/sms", $p);
    return $ngx->req(POST => "$V/dial-in/sms", body => form($p),
                     headers => {
                         'Content-Type' => 'application/x-www-form-urlencoded',
                         'X-Twilio-Signature' => $sig });
}

sub usage_ok {
    my ($r, $name) = @_;
    local $Test::Builder::Level = $Test::Builder::Level + 1;
    is($r->{status}, 200, "$name: 200");
    like($r->{content}, qr{\Q<Response><Message>To send an emergency\E
                           \Q message, text: PINCODE OPTION message\E
                           \Q</Message></Response>\E}x,
         "$name: the usage reply, no hint") or diag($r->{content});
}

sub messages { db('SELECT count(*) FROM msgr_messages') }

$r = sms('+447700900001', "$code 1 Coach delayed", sig => 'AAAA');
is($r->{status}, 403, 'a bad signature: 403');
is($r->{json}{type}, 'urn:msgr:problem:signature-invalid',
   'the problem names the signature');
is(messages(), 0, 'nothing sent');

$r = sms('+447700900001', "$code 1 Coach delayed, back at 6pm.");
is($r->{status}, 200, 'a permitted number and its code: 200');
like($r->{headers}{'content-type'}, qr{^text/xml}, 'TwiML');
like($r->{content}, qr{<Message>Your message is going to 2 recipients\.</Message>},
     'the reply says how many')
    or diag($r->{content});

my $m = db("SELECT message_id || '|' || sender || '|' || sender_role"
           . " || '|' || pin_used FROM msgr_messages");
like($m, qr/^\d+\|pincode:$id\|pincode\|false$/,
     'sent by the pincode, without the sending PIN');
my ($mid) = split /\|/, $m;
is(db("SELECT string_agg(address || ':' || channel || ':' || priority"
      . " || ':' || body, ',' ORDER BY address)"
      . " FROM msgr_deliveries WHERE message_id = $mid"),
   '+447700900101:sms:-10:Coach delayed, back at 6pm.,'
   . '+447700900103:sms:-10:Coach delayed, back at 6pm.',
   'the outbox: the group\'s primary contacts, by SMS, emergency priority');
isnt(db("SELECT last_used_at FROM msgr_pincodes WHERE pincode_id = $id"),
     '', 'the pincode was used');

usage_ok(sms('+447700900001', "$code 2 No such option"), 'an unknown option');
usage_ok(sms('+447700900001', 'hello'), 'not the form');
is(messages(), 1, 'neither sent anything');

# wrong code, a number not permitted: the same reply
my $wrong = sprintf('%06d', ($code + 1) % 1000000);
usage_ok(sms('+447700900002', "$wrong 1 Hi"), 'a wrong code');
usage_ok(sms('+447700900999', "$code 1 Hi"), 'a number not permitted');
usage_ok(sms('07700900001', "$code 1 Hi"), 'a number not in E.164');
is(messages(), 1, 'nothing sent');

# lockout: three wrong codes in 10 minutes, then even the right one fails
usage_ok(sms('+447700900002', "$wrong 1 Hi"), 'a second wrong code');
usage_ok(sms('+447700900002', "$wrong 1 Hi"), 'a third wrong code');
ok(db("SELECT locked_until > now() + interval '29 minutes'"
      . " FROM msgr_dial_in_locks WHERE number = '+447700900002'") eq 't',
   'the number is locked out for 30 minutes');
usage_ok(sms('+447700900002', "$code 1 Hi"), 'the right code while locked');
is(messages(), 1, 'nothing sent while locked');
usage_ok(sms('+447700900001', "$wrong 1 Hi"), 'another number: wrong code');

db("UPDATE msgr_dial_in_locks SET locked_until = now() - interval '1 second'");
db("UPDATE msgr_dial_in_attempts SET at = at - interval '31 minutes'");
$r = sms('+447700900002', "$code 1 Back on");
like($r->{content}, qr/going to 2 recipients/, 'the lock ends');
is(messages(), 2, 'sent after the lock');

$r = req(GET => '/pincodes/attempts', $a_admin);
is($r->{status}, 200, 'GET /v1/pincodes/attempts');
my @o = map { "$_->{number}:$_->{outcome}" } @{ $r->{json}{items} };
is(scalar(grep { /^\+447700900002:wrong$/ } @o), 3, 'three wrong codes');
is(scalar(grep { /^\+447700900002:locked$/ } @o), 1, 'one while locked');
ok(!grep({ /900999/ } @o), 'a number not permitted is not this school\'s');
$r = req(GET => '/pincodes/attempts', $b_admin);
is(scalar @{ $r->{json}{items} }, 0, 'another school sees none');

# a regenerated code: the old one is refused
$r = json_req(POST => "/pincodes/$id/regenerate", $a_admin, undef);
is($r->{status}, 200, 'regenerate: 200') or diag($r->{content});
my $new_code = $r->{json}{pincode} // '';
like($new_code, qr/^\d{6}$/, 'a new code, answered once');
SKIP: {
    skip 'the new code happens to be the old one', 2 if $new_code eq $code;
    usage_ok(sms('+447700900003', "$code 1 Old"), 'the old code');
}
like(sms('+447700900003', "$new_code 1 New")->{content}, qr/going to 2/,
     'the new code sends');

# ---------------------------------------------------------------------------
# a call: pincode, menu, option, recording, replay, confirm

sub call {
    my ($from, $action, %p) = @_;
    my $p = { From => $from, To => '+442033224122', CallSid => 'CA42', %p };
    my $sig = sign("$BASE$action", $p);
    return $ngx->req(POST => $action, body => form($p),
                     headers => {
                         'Content-Type' => 'application/x-www-form-urlencoded',
                         'X-Twilio-Signature' => $sig });
}

sub action_of {
    my ($r) = @_;
    my ($a) = $r->{content} =~ /action="([^"]+)"/ or return '';
    $a =~ s/&amp;/&/g;
    return $a;
}

my $caller = '+447700900003';
$r = call($caller, "$V/dial-in/voice");
is($r->{status}, 200, 'a call: 200');
like($r->{content}, qr{<Gather\ input="dtmf"\ finishOnKey="\#"\ 
                       action="/msgr/v1/dial-in/voice\?step=pin">}x,
     'a call is asked for its pincode');

$r = call($caller, action_of($r), Digits => $wrong);
like($r->{content}, qr{<Say>Sorry,\ that\ pincode\ cannot\ be\ used\.\ Goodbye\.
                       </Say><Hangup/>}x, 'a wrong pincode by phone');
$r = call('+447700900777', "$V/dial-in/voice?step=pin", Digits => $new_code);
like($r->{content}, qr{<Say>Sorry, that pincode cannot be used},
     'a number not permitted: the same');

$r = call($caller, "$V/dial-in/voice?step=pin", Digits => $new_code);
like($r->{content}, qr{<Say>Welcome\ to\ Alpha\ Academy\ emergency\ messages\.
                       </Say><Say>Press\ 1\ for\ Parents\ of\ 7B\.</Say>}x,
     'the right pincode: the menu script and options')
    or diag($r->{content});
my $next = action_of($r);
is($next, "$V/dial-in/voice?step=option&pincode=$id", 'the menu\'s action');

$r = call($caller, $next, Digits => '7');
like($r->{content}, qr{Press 1 for}, 'an option that is not there: the menu');

$r = call($caller, $next, Digits => '1');
like($r->{content}, qr{<Record finishOnKey="\#" maxLength="120" }, 'record');
$next = action_of($r);

my $rec = 'https://api.twilio.com/2010-04-01/Accounts/AC1/Recordings/RE1';
$r = call($caller, $next, RecordingUrl => $rec, RecordingDuration => 7);
like($r->{content}, qr{<Play>\Q$rec\E</Play><Say>Press 1 to send it},
     'the recording is played back') or diag($r->{content});
my $confirm = action_of($r);

$r = call($caller, $confirm, Digits => '2');
like($r->{content}, qr{<Record }, 'any other key records again');
is(messages(), 3, 'nothing sent yet');

$r = call($caller, $confirm, Digits => '1');
like($r->{content}, qr{<Say>Your\ message\ is\ going\ to\ 2\ recipients\.\ 
                       Goodbye\.</Say><Hangup/>}x, 'confirmed: how many')
    or diag($r->{content});
$m = db("SELECT message_id || '|' || voice_recording || '|' || voice_body"
        . " FROM msgr_messages ORDER BY message_id DESC LIMIT 1");
like($m, qr/^\d+\|true\|\Q$rec\E$/,
     'the message is a recording, its voice body the URL');
($mid) = split /\|/, $m;
is(db("SELECT string_agg(address || ':' || channel || ':' || priority"
      . " || ':' || body, ',' ORDER BY address)"
      . " FROM msgr_deliveries WHERE message_id = $mid"),
   "+442079460001:voice:-10:$rec,+442079460003:voice:-10:$rec",
   'the outbox: voice calls playing the recording, emergency priority');

$r = call('+447700900777', "$V/dial-in/voice?step=option&pincode=$id",
          Digits => '1');
like($r->{content}, qr{Sorry, that pincode cannot be used},
     'a later step from a number not permitted is refused');

$r = $ngx->req(POST => "$V/dial-in/voice", body => 'From=%2B447700900003',
               headers => {
                   'Content-Type' => 'application/x-www-form-urlencoded',
                   'X-Twilio-Signature' => 'bad' });
is($r->{status}, 403, 'a call with a bad signature: 403');

# delete
$r = req(DELETE => "/pincodes/$id", $a_admin,
         undef, headers => { 'If-Match' => '"1"' });
is($r->{status}, 412, 'DELETE with a stale If-Match: 412');
$r = req(DELETE => "/pincodes/$id", $a_admin);
is($r->{status}, 204, 'DELETE: 204');
usage_ok(sms('+447700900003', "$new_code 1 Gone"), 'a deleted pincode');
is(db("SELECT string_agg(field, ',' ORDER BY audit_id)"
      . " FROM msgr_pincode_audit WHERE pincode_id = $id"),
   'created,label,permitted_numbers,code,deleted', 'all of it audited');

done_testing();
