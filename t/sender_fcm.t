#!/usr/bin/perl

# Xpressions pushes through FCM's HTTP v1 API (a fake FCM on loopback): the
# service account's RS256 assertion exchanged for one access token that
# serves every push; one push per device with the parent's own text and the
# delivery id for the app's receipt; an unregistered or invalid device
# removed, and a parent left with none gets the backup SMS at once (so does
# one who signed out); quota and outages queued again, Retry-After honoured;
# a refused access token fetched anew; the app's receipt cancels the backup.

use strict;
use warnings;
use utf8;

use Encode qw(decode_utf8);
use File::Temp qw(tempdir);
use JSON::PP;
use MIME::Base64 qw(decode_base64);
use POSIX qw(:sys_wait_h);
use Test::More;
use Time::HiRes qw(sleep time);

use lib 't/lib';
use Msgr::Test;
use Msgr::Test::API qw(:DEFAULT req);
use Msgr::Test::FCM;

my $V = '/msgr/v1';
my $T = JSON::PP::true;

my $pg = Msgr::Test::pg_start();
my ($A, $admin, $staff, $int) = one_school($pg);
my $ngx = api_nginx($pg);
use_nginx($ngx, prefix => $V);

sub db { decode_utf8($pg->psql($_[0])) }

my $fcm = Msgr::Test::FCM->start;
my $OUT = tempdir('msgr-outbox-XXXXXX', TMPDIR => 1, CLEANUP => 1);
my $SA = $fcm->service_account;
my $URL = $fcm->url;

my $CONF = <<"CONF";
[sender]
batch = 50
poll = 0.2

[provider fcm]
type = fcm
channels = xpressions
service_account = $SA
base_url = $URL

[provider texts]
type = file
channels = sms, voice, email
dir = $OUT
CONF

sub drain_ok {
    my ($name) = @_;
    local $Test::Builder::Level = $Test::Builder::Level + 1;
    my ($rc, $out, $err) = Msgr::Test::sender($pg, $CONF);
    is($rc, 0, "$name: msgr-sender drains and exits 0") or diag($err);
}

sub sms {
    my $f = "$OUT/sms.jsonl";
    return () unless -f $f;
    return map { decode_json($_) } split /\n/, Msgr::Test::slurp($f);
}

sub sends  { grep { $_->{kind} eq 'send' } @{ $fcm->requests } }
sub tokens { grep { $_->{kind} eq 'token' } @{ $fcm->requests } }

sub b64url { my $s = $_[0] =~ tr/-_/+\//r; decode_base64($s) }


# ---------------------------------------------------------------------------
# a class of seven families, each parent's phone and app devices

my @FAMILY = (
    # contact, first name, the app's devices (push tokens)
    [ C1 => 'Jane', [ 'fcm-jane-phone', 'fcm-jane-tablet' ] ],
    [ C2 => 'Kim',  [ 'fcm-kim', 'unregistered-kim-old' ] ],
    [ C3 => 'Lee',  [ 'unregistered-lee' ] ],
    [ C4 => 'Max',  [ 'quota-max' ] ],
    [ C5 => 'Nia',  [ 'fcm-nia' ] ],
    [ C6 => 'Oli',  [ 'down-oli' ] ],
    [ C7 => 'Pat',  [ 'invalid-pat' ] ],
);

my $n = 0;
sync_json($int, {
    students => [ map { $n++; {
        mis_id => "S$n", first_name => "Child$n", last_name => 'X',
        reg_group => '7B', year => '7', status => 'on_roll',
        contacts => [ { mis_id => $_->[0], priority => 1,
                        correspondence => $T } ] } } @FAMILY ],
    contacts => [ map { {
        mis_id => $_->[0], title => 'Mx', first_name => $_->[1],
        last_name => 'X', mobile_phone => '07700 90010' . substr($_->[0], 1),
        email => lc($_->[1]) . '@example.org' } } @FAMILY ],
    groups => [ { mis_id => 'K7B', name => '7B', type => 'class',
                  students => [ map { "S$_" } 1 .. @FAMILY ] } ],
});

my $contacts = ids_by_mis($staff, 'contacts');
my $students = ids_by_mis($staff, 'students');
my $groups = ids_by_mis($staff, 'groups');
my (%app, %phone);    # first name -> an app token; -> the mobile number

for my $f (@FAMILY) {
    my ($mis, $name, $devices) = @$f;
    $phone{$name} = '+4477009001' . sprintf('%02d', substr($mis, 1));
    for my $push (@$devices) {
        my $tok = issue($admin, $contacts->{$mis}, $push);
        Msgr::Test::json_ok(req(PUT => '/app/device', $tok,
                                { platform => 'android',
                                  push_token => $push }),
                            200, "$name registers $push");
        $app{$name} //= $tok;
    }
}

set_everywhere($admin, 'xpressions', 'backup_sms', $T);

my $r = $ngx->req(POST => "$V/messages", key => $staff,
                  body => encode_json({
                      channels => [qw(xpressions sms)],
                      to => { groups => [ $groups->{K7B} ] },
                      subject => 'Trip',
                      body => 'Dear {first_name}, Friday' }),
                  headers => { 'Content-Type' => 'application/json' });
Msgr::Test::json_ok($r, 201, 'a push to 7B, with backup SMS')
    or diag($r->{content});
my $MSG = $r->{json}{id};

# a delivery of the message: { name => {id, state, body, ...} } by purpose
sub deliveries {
    my ($purpose, $message) = @_;
    my %d;
    for my $line (split /\n/, db(
        "SELECT c.first_name, d.delivery_id, d.state, d.body,"
        . " coalesce(d.error, ''), coalesce(d.provider_id, ''), d.attempt,"
        . " (d.run_at <= now())::text,"
        . " extract(epoch FROM d.run_at - now())::int"
        . " FROM msgr_deliveries d JOIN msgr_contacts c"
        . "   ON c.school_id = d.school_id AND c.contact_id = d.recipient_id"
        . " WHERE d.message_id = " . ($message // $MSG)
        . " AND d.purpose = '$purpose'"))
    {
        my @c = split /\|/, $line, -1;
        $d{$c[0]} = { id => $c[1], state => $c[2], body => $c[3],
                      error => $c[4], provider_id => $c[5],
                      attempt => $c[6], due => $c[7], in => $c[8] };
    }
    return \%d;
}

my $push = deliveries('primary');
is_deeply([ sort keys %$push ], [ sort map { $_->[1] } @FAMILY ],
          'a push to each parent (each has the app)');

# Nia signs out of the app before it goes
is(req(DELETE => '/app/device', $app{Nia})->{status}, 204,
   'Nia signs out of the app');


# ---------------------------------------------------------------------------
# the first drain: one access token, one push per device

drain_ok('the first drain');

my @tok = tokens();
is(scalar @tok, 1, 'one access token for every push');
is($tok[0]{status}, 200, 'its assertion verifies (RS256, the service'
                         . ' account\'s key) and the claims are right')
    or diag($tok[0]{error});
is_deeply({ map { $_ => $tok[0]{claims}{$_} } qw(iss scope aud) },
          { iss => 'msgr-sender@msgr-test.iam.gserviceaccount.com',
            scope => 'https://www.googleapis.com/auth/firebase.messaging',
            aud => "$URL/token" },
          'claims: iss, scope, aud');
is($tok[0]{claims}{exp} - $tok[0]{claims}{iat}, 3600, 'exp: iat + 3600');

{
    # the assertion checked here too, and a forged one refused by the fake
    my ($h, $c, $s) = split /\./, $tok[0]{assertion};
    my $dir = tempdir('msgr-jwt-XXXXXX', TMPDIR => 1, CLEANUP => 1);
    Msgr::Test::spew("$dir/signed", "$h.$c");
    Msgr::Test::spew("$dir/sig", b64url($s));
    my ($rc, $out, $err) = Msgr::Test::_run(
        cmd => ['openssl', 'dgst', '-sha256', '-verify', $fcm->public_key,
                '-signature', "$dir/sig", "$dir/signed"]);
    is($rc, 0, 'openssl verifies the assertion with the public key')
        or diag($err);

    my $claims = decode_json(b64url($c));
    $claims->{iss} = 'someone@else.example';
    my $forged = join '.', $h,
        MIME::Base64::encode_base64url(encode_json($claims)), $s;
    my $res = HTTP::Tiny->new->post_form("$URL/token", {
        grant_type => 'urn:ietf:params:oauth:grant-type:jwt-bearer',
        assertion => $forged });
    is($res->{status}, 400, 'the fake refuses an assertion whose claims'
                            . ' were changed after signing');
}

my @sent = sends();
my %to = map { $_->{body}{message}{token} => $_ } @sent;
is_deeply([ sort keys %to ],
          [ sort grep { $_ ne 'fcm-nia' } map { @{ $_->[2] } } @FAMILY ],
          'one push per device (Nia\'s went with her sign-out)');
is(scalar @sent, scalar keys %to, 'each once');
is(scalar(grep { $_->{auth} eq "Bearer $tok[0]{token}" } @sent),
   scalar @sent, 'each with the access token');

for my $f (@FAMILY) {
    my ($mis, $name, $devices) = @$f;
    for my $device (grep { $to{$_} } @$devices) {
        my $m = $to{$device}{body}{message};
        is_deeply($m, {
            token => $device,
            notification => { title => 'Trip',
                              body => $push->{$name}{body} },
            data => { delivery_id => $push->{$name}{id},
                      message_id => "$MSG", school => 'Alpha Academy' },
            android => { priority => 'high' },
            apns => { headers => { 'apns-priority' => '10' } },
        }, "$device: $name\'s text, the delivery id for the app's receipt");
    }
}
is($push->{Jane}{body}, 'Dear Jane, Friday', 'rendered for each parent');

$push = deliveries('primary');
my $backup = deliveries('backup');

like($push->{Jane}{state} . ' ' . $push->{Jane}{provider_id},
     qr{^sent projects/msgr-test/messages/\d+$},
     'Jane (two devices, two pushes): sent, FCM\'s message name kept');
is($push->{Kim}{state}, 'sent', 'Kim: sent (one of his devices is gone)');
is(db("SELECT string_agg(push_token, ',' ORDER BY push_token)"
      . " FROM msgr_app_devices"),
   'down-oli,fcm-jane-phone,fcm-jane-tablet,fcm-kim,quota-max',
   'the unregistered and invalid devices are removed, the others kept');

for my $name (qw(Lee Pat)) {
    like("$push->{$name}{state}: $push->{$name}{error}",
         qr/^permanent-failure: FCM 40[04] (UNREGISTERED|INVALID_ARGUMENT)/,
         "$name (the only device gone): permanent-failure, FCM's reason");
}
is("$push->{Nia}{state}: $push->{Nia}{error}",
   'permanent-failure: no device', 'Nia (signed out): no device');

for my $name (qw(Lee Pat Nia)) {
    is($backup->{$name}{due}, 'true', "$name\'s backup SMS is due now");
}
for my $name (qw(Jane Kim Max Oli)) {
    cmp_ok($backup->{$name}{in}, '>', 25 * 60,
           "$name\'s backup SMS still waits its 30 minutes");
}

like("$push->{Max}{state} $push->{Max}{attempt}: $push->{Max}{error}",
     qr/^queued 1: FCM 429 QUOTA_EXCEEDED/, 'Max (quota): queued again');
cmp_ok($push->{Max}{in}, '>=', 110, 'after Retry-After (120 s)');
like("$push->{Oli}{state}: $push->{Oli}{error}",
     qr/^queued: FCM 503 UNAVAILABLE/, 'Oli (FCM down): queued again');


# ---------------------------------------------------------------------------
# the backups go; the app's receipt cancels Jane's

drain_ok('the second drain');

my %backup_sms = map { $_->{address} => $_ } grep { $_->{purpose} eq 'backup' }
                 sms();
$backup = deliveries('backup');
for my $name (qw(Lee Pat Nia)) {
    is($backup_sms{ $phone{$name} }{body}, $backup->{$name}{body},
       "$name\'s backup SMS is sent, the text");
    is($backup->{$name}{state}, 'delivered', '... and reads delivered');
}
is($backup->{Lee}{body}, 'Dear Lee, Friday', 'the backup: the same words');

# Jane's app has the push: its receipt names the delivery id it carried
my $jane_id = $to{'fcm-jane-phone'}{body}{message}{data}{delivery_id};
$r = req(POST => "/app/inbox/$jane_id/received", $app{Jane});
Msgr::Test::json_ok($r, 200, 'Jane\'s app confirms receipt');
is($r->{json}{state}, 'delivered', 'her push reads delivered');
is(deliveries('backup')->{Jane}{state}, 'cancelled',
   'her backup SMS is cancelled');

# half an hour later: Kim's app never said, Jane's did
db("UPDATE msgr_deliveries SET run_at = now() WHERE message_id = $MSG"
   . " AND purpose = 'backup'");
drain_ok('a drain at the backups\' time');
%backup_sms = map { $_->{address} => $_ } grep { $_->{purpose} eq 'backup' }
              sms();
ok(!$backup_sms{ $phone{Jane} }, 'Jane\'s backup SMS is never sent');
is($backup_sms{ $phone{Kim} }{body}, 'Dear Kim, Friday',
   'Kim\'s (no receipt) is');
is(deliveries('backup')->{Jane}{state}, 'cancelled', 'Jane\'s stays'
                                                     . ' cancelled');


# ---------------------------------------------------------------------------
# a refused access token is fetched anew (one sender, running on)

{
    # Max's and Oli's retries wait out of the way
    db("UPDATE msgr_deliveries SET run_at = now() + interval '1 h'"
       . " WHERE message_id = $MSG AND state = 'queued'");

    my $dir = tempdir('msgr-sender-XXXXXX', TMPDIR => 1, CLEANUP => 1);
    Msgr::Test::spew("$dir/sender.conf", $CONF);
    my $pid = fork() // die "fork: $!";
    if ($pid == 0) {
        open(STDOUT, '>', "$dir/out");
        open(STDERR, '>', "$dir/err");
        $ENV{MSGR_PG} = $pg->conninfo;
        exec($Msgr::Test::SENDER, '--config', "$dir/sender.conf")
            or POSIX::_exit(127);
    }

    my $send = sub {
        my ($body) = @_;
        my $r = $ngx->req(POST => "$V/messages", key => $staff,
                          body => encode_json({
                              channels => ['xpressions'],
                              to => { students => [ $students->{S1} ] },
                              body => $body }),
                          headers => { 'Content-Type' => 'application/json' });
        Msgr::Test::json_ok($r, 201, "a push to Jane: $body");
        return $r->{json}{id};
    };
    my $wait = sub {
        my ($id) = @_;
        for (1 .. 100) {
            my $d = deliveries('primary', $id)->{Jane};
            return $d if $d && $d->{state} eq 'sent';
            sleep 0.1;
        }
        return deliveries('primary', $id)->{Jane};
    };

    my $before = scalar tokens();
    my $first = $send->('First');
    is($wait->($first)->{state}, 'sent', 'sent by a sender running on');

    HTTP::Tiny->new->post("$URL/revoke");
    my $second = $send->('Second');
    my $d = $wait->($second);
    is("$d->{state} $d->{attempt}", 'sent 2',
       'after FCM refused its access token: sent at the second attempt');
    is(scalar(tokens()) - $before, 2, 'with a new access token');
    is_deeply([ map { $_->{status} } grep {
                    $_->{body}{message}{data}{message_id} eq $second
                } sends() ],
              [ 401, 401, 200, 200 ], 'each device: 401, then 200');

    kill 'TERM', $pid;
    waitpid($pid, 0);
    is($?, 0, 'the sender stops at TERM');
}


# ---------------------------------------------------------------------------
# the configuration

{
    my @bad = (
        [ "[provider f]\ntype = fcm\nchannels = xpressions\n",
          qr/provider f: type fcm needs service_account/,
          'no service account' ],
        [ "[provider f]\ntype = fcm\nchannels = xpressions\n"
          . "service_account = /nonexistent\n",
          qr/service_account: the file cannot be read/, 'no such file' ],
        [ "[provider f]\ntype = fcm\nproject = p\n",
          qr/:3: an unknown key for type fcm/, 'an unknown key' ],
    );
    for my $b (@bad) {
        my ($rc, $out, $err) = Msgr::Test::sender($pg, $b->[0]);
        is($rc, 1, "$b->[2]: exits 1");
        like($err, $b->[1], "$b->[2]: says why");
    }
}

$fcm->stop;
Msgr::Test::finish();
