#!/usr/bin/perl

# Xpressions, the parents' app, as the school and the parents see it: app
# tokens issued, listed without secrets and revoked at once on every worker;
# which credential may use which route; devices and reachability in
# GET /v1/recipients; the school's topics and their audit trail; messages
# parents send in (every refusal, text kept byte for byte); one parent never
# sees another's; the school's inbox (filters, pages, read and unread); flood
# control shared by the workers; and tenancy.

use strict;
use warnings;
use utf8;

use JSON::PP;
use Test::More;
use HTTP::Tiny;
use Time::HiRes qw(sleep time);

use lib 't/lib';
use Msgr::Test;
use Msgr::Test::API qw(:DEFAULT req);

my $V = '/msgr/v1';

my $TOKEN_RE = qr/^msgrapp_(\d+)_([0-9a-f]{16})_([A-Za-z0-9_-]{43})$/;

my $pg = Msgr::Test::pg_start();

my ($A, $B, $a_admin, $a_staff, $a_int, $b_admin, $b_int)
    = two_schools($pg);

# Every answer says which worker gave it.  The rate is high enough here for
# the many posts of one token below; flood control has its own nginx.
my $WHO = '    add_header X-Worker $pid always;';
my $ngx = Msgr::Test::nginx_start($pg, workers => 2,
                                  http => '    msgr_app_rate 60000;',
                                  location => $WHO);
use_nginx($ngx, prefix => $V);


# ---------------------------------------------------------------------------
# helpers

sub ok_json {
    my ($r, $status, $name) = @_;
    local $Test::Builder::Level = $Test::Builder::Level + 1;
    return Msgr::Test::json_ok($r, $status, $name);
}

sub status_is {
    my ($r, $status, $name) = @_;
    local $Test::Builder::Level = $Test::Builder::Level + 1;
    is($r->{status}, $status, $name) or diag("body: $r->{content}");
}

sub token_id { ($_[0] =~ $TOKEN_RE)[1] }

sub db_count {
    my ($sql) = @_;
    return $pg->psql($sql) + 0;
}

sub set_incoming {
    my ($key, $on) = @_;
    my $r = req(PATCH => '/settings/xpressions', $key,
                $J->encode({ incoming_enabled => $on ? $T : $F }),
                headers => { 'Content-Type'
                             => 'application/merge-patch+json' });
    ok_json($r, 200, 'PATCH xpressions.incoming_enabled = '
                     . ($on ? 'true' : 'false'));
    # every worker sees it before going on
    for (1 .. 6) {
        my $g = get($key, '/settings/xpressions');
        is($J->encode($g->{json}{incoming_enabled}), $on ? 'true' : 'false',
           'incoming_enabled reads back') or diag($g->{content});
    }
}


# ---------------------------------------------------------------------------
# the MIS: two siblings of the Jones parents, Cal with his mother, Dee whose
# father has no phone or email (only the app can reach him); school B has
# one family of its own

sub snapshot_a {
    return {
        default_country => 'GB',
        students => [
            { mis_id => 'S1', first_name => 'Amy', last_name => 'Jones',
              reg_group => '7B', year => '7', status => 'on_roll',
              contacts => [
                  { mis_id => 'C1', relationship => 'Mother', priority => 1,
                    correspondence => $T },
                  { mis_id => 'C2', relationship => 'Father', priority => 2,
                    correspondence => $T },
              ] },
            { mis_id => 'S2', first_name => 'Ben', last_name => 'Jones',
              reg_group => '8C', year => '8', status => 'on_roll',
              contacts => [
                  { mis_id => 'C1', relationship => 'Mother', priority => 1,
                    correspondence => $T },
                  { mis_id => 'C2', relationship => 'Father', priority => 2,
                    correspondence => $T },
              ] },
            { mis_id => 'S3', first_name => 'Cal', last_name => 'Brown',
              reg_group => '7B', year => '7', status => 'on_roll',
              contacts => [
                  { mis_id => 'C3', relationship => 'Mother', priority => 1,
                    correspondence => $T },
              ] },
            { mis_id => 'S4', first_name => 'Dee', last_name => 'Green',
              reg_group => '7B', year => '7', status => 'on_roll',
              contacts => [
                  { mis_id => 'C4', relationship => 'Father', priority => 1,
                    correspondence => $T },
              ] },
        ],
        contacts => [
            { mis_id => 'C1', title => 'Mrs', first_name => 'Jane',
              last_name => 'Jones', mobile_phone => '07700 900123',
              email => 'jane@example.org' },
            { mis_id => 'C2', title => 'Mr', first_name => 'John',
              last_name => 'Jones', mobile_phone => '07700 900124' },
            { mis_id => 'C3', title => 'Ms', first_name => 'Kim',
              last_name => 'Brown', mobile_phone => '07700 900125' },
            { mis_id => 'C4', title => 'Mr', first_name => 'Lee',
              last_name => 'Green' },
        ],
        staff  => [],
        groups => [],
    };
}

sub snapshot_b {
    return {
        default_country => 'GB',
        students => [
            { mis_id => 'S1', first_name => 'Zoe', last_name => 'Black',
              reg_group => '5A', year => '5', status => 'on_roll',
              contacts => [
                  { mis_id => 'C1', relationship => 'Mother', priority => 1,
                    correspondence => $T },
              ] },
        ],
        contacts => [
            { mis_id => 'C1', title => 'Mrs', first_name => 'Pat',
              last_name => 'Black', mobile_phone => '07700 900999' },
        ],
        staff  => [],
        groups => [],
    };
}

for my $s ([$a_int, snapshot_a(), 'A'], [$b_int, snapshot_b(), 'B']) {
    my $r = req(POST => '/mis/sync', $s->[0], $s->[1]);
    ok_json($r, 200, "school $s->[2]: MIS synced")
        or BAIL_OUT("cannot sync the MIS: $r->{content}");
}

my $ac = ids_by_mis($a_admin, 'contacts');
my $as = ids_by_mis($a_admin, 'students');
my $bc = ids_by_mis($b_admin, 'contacts');
my $bs = ids_by_mis($b_admin, 'students');

my ($C1, $C2, $C3, $C4) = @$ac{qw(C1 C2 C3 C4)};
my ($S1, $S2, $S3, $S4) = @$as{qw(S1 S2 S3 S4)};
my ($BC1, $BS1) = ($bc->{C1}, $bs->{S1});
ok($C1 && $C2 && $C3 && $C4 && $S1 && $S2 && $S3 && $S4 && $BC1 && $BS1,
   'every contact and student has an id')
    or BAIL_OUT('the MIS lists are incomplete');


# ---------------------------------------------------------------------------
# app tokens: issued by admin and integrator keys, shown once, kept as a hash

my ($tok_c1, $tok_c1b, $tok_c3, $tok_c4);
{
    my $r = req(POST => "/contacts/$C1/app-tokens", $a_admin,
                { label => "Mum's phone" });
    ok_json($r, 201, 'admin: POST app-tokens 201');
    my $j = $r->{json} || {};
    like($j->{token} // '', $TOKEN_RE, 'the token has the app token form');
    my ($school, $id, $secret) = ($j->{token} // '') =~ $TOKEN_RE;
    is($school, $A, "the token names school A");
    is($j->{id}, $id, 'id is the token id');
    is($j->{contact_id}, $C1, 'contact_id is the contact');
    ok(Msgr::Test::is_json_number($j->{contact_id}),
       'contact_id is a JSON number');
    is($j->{label}, "Mum's phone", 'the label is kept');
    like($j->{created_at} // '', qr/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/,
         'created_at is a UTC time');
    $tok_c1 = $j->{token};

    $r = req(POST => "/contacts/$C1/app-tokens", $a_int, { label => 'Tablet' });
    ok_json($r, 201, 'integrator: POST app-tokens 201');
    like($r->{json}{token} // '', $TOKEN_RE,
         'integrator: the token has the app token form');
    $tok_c1b = $r->{json}{token};
    isnt(token_id($tok_c1b), token_id($tok_c1), 'each token has its own id');

    $r = req(POST => "/contacts/$C3/app-tokens", $a_admin);
    ok_json($r, 201, 'POST app-tokens without a body: 201');
    is($r->{json}{label}, '', 'no label: an empty one');
    $tok_c3 = $r->{json}{token};

    $tok_c4 = issue($a_admin, $C4, "Dad's phone");

    $r = req(POST => "/contacts/$C1/app-tokens", $a_staff, { label => 'x' });
    Msgr::Test::problem_ok($r, 403, 'staff key: POST app-tokens 403');
    $r = req(GET => "/contacts/$C1/app-tokens", $a_staff);
    Msgr::Test::problem_ok($r, 403, 'staff key: GET app-tokens 403');

    $r = req(POST => '/contacts/999999/app-tokens', $a_admin, {});
    Msgr::Test::problem_ok($r, 404, 'unknown contact: 404');
    $r = req(POST => "/contacts/$BC1/app-tokens", $a_admin, {});
    Msgr::Test::problem_ok($r, 404, "school B's contact with A's key: 404");
    $r = req(GET => "/contacts/$BC1/app-tokens", $a_admin);
    Msgr::Test::problem_ok($r, 404, "GET school B's contact's tokens: 404");

    $r = req(POST => "/contacts/$C1/app-tokens", $a_admin,
             { label => 'x', colour => 'red' });
    errors_ok($r, 422, ['colour'], 'unknown field in POST app-tokens');
    $r = req(POST => "/contacts/$C1/app-tokens", $a_admin,
             { label => 'x' x 101 });
    errors_ok($r, 422, ['label'], 'label of 101 characters');

    is(db_count("SELECT count(*) FROM msgr_app_tokens"), 4,
       'four tokens stored; the refused requests stored none');

    # only a hash of the secret is kept
    for my $t ($tok_c1, $tok_c1b, $tok_c3, $tok_c4) {
        my ($s, $id, $secret) = $t =~ $TOKEN_RE;
        my $row = $pg->psql("SELECT row_to_json(t)::text || ' '"
                            . " || encode(secret_hash, 'escape')"
                            . " FROM msgr_app_tokens t"
                            . " WHERE token_id = '$id'");
        ok(length $row, "token $id: a row");
        ok(index($row, $secret) < 0,
           "token $id: the secret is nowhere in its row");
        is($pg->psql("SELECT length(secret_hash) FROM msgr_app_tokens"
                     . " WHERE token_id = '$id'"), 32,
           "token $id: secret_hash is 32 bytes");
    }
    my $all = $pg->psql("SELECT string_agg(row_to_json(t)::text, ' ')"
                        . " FROM msgr_app_tokens t");
    my ($sec1) = ($tok_c1 =~ $TOKEN_RE)[2];
    ok(index($all, $sec1) < 0 && index($all, $tok_c1) < 0,
       'no token or secret anywhere in msgr_app_tokens');

    # the list: no secrets
    for my $k ([$a_admin, 'admin'], [$a_int, 'integrator']) {
        $r = req(GET => "/contacts/$C1/app-tokens", $k->[0]);
        ok_json($r, 200, "$k->[1]: GET app-tokens 200");
        my $items = $r->{json}{items} || [];
        is_deeply([ sort map { $_->{id} } @$items ],
                  [ sort map { token_id($_) } $tok_c1, $tok_c1b ],
                  "$k->[1]: the contact's two tokens listed");
        ok(!(grep { exists $_->{token} || exists $_->{secret}
                    || exists $_->{secret_hash} } @$items),
           "$k->[1]: no token, secret or hash field");
        for my $t ($tok_c1, $tok_c1b) {
            my ($s, $id, $secret) = $t =~ $TOKEN_RE;
            ok(index($r->{content}, $secret) < 0,
               "$k->[1]: the secret of $id is not in the list");
        }
        my ($m) = grep { $_->{id} eq token_id($tok_c1) } @$items;
        is($m->{label}, "Mum's phone", "$k->[1]: the label is listed");
        ok(exists $m->{revoked_at} && !defined $m->{revoked_at},
           "$k->[1]: revoked_at null");
    }
}


# ---------------------------------------------------------------------------
# credentials per route

{
    for my $p ('/students', '/settings', '/contacts', '/school',
               "/contacts/$C1/app-tokens", '/incoming')
    {
        my $r = get($tok_c1, $p);
        Msgr::Test::problem_ok($r, 403, "app token on GET $p: 403");
    }
    my $r = req(PUT => '/xpressions/topics', $tok_c1, { topics => ['X'] });
    Msgr::Test::problem_ok($r, 403, 'app token on PUT /xpressions/topics: 403');
    $r = req(POST => "/contacts/$C1/app-tokens", $tok_c1, {});
    Msgr::Test::problem_ok($r, 403, 'app token issuing an app token: 403');
    is(db_count("SELECT count(*) FROM msgr_app_tokens"), 4,
       'no token was issued by an app token');

    for my $k ([$a_admin, 'admin'], [$a_staff, 'staff'],
               [$a_int, 'integrator'])
    {
        $r = req(PUT => '/app/device', $k->[0],
                 { platform => 'ios', push_token => 'abc' });
        Msgr::Test::problem_ok($r, 403, "$k->[1] key on PUT /app/device: 403");
        $r = req(DELETE => '/app/device', $k->[0]);
        Msgr::Test::problem_ok($r, 403,
                               "$k->[1] key on DELETE /app/device: 403");
        $r = req(POST => '/app/messages', $k->[0],
                 { topic => 'Absence', body => 'x', student_id => $S1 });
        Msgr::Test::problem_ok($r, 403,
                               "$k->[1] key on POST /app/messages: 403");
        $r = get($k->[0], '/app/messages');
        Msgr::Test::problem_ok($r, 403,
                               "$k->[1] key on GET /app/messages: 403");
    }
    is(db_count("SELECT count(*) FROM msgr_app_devices"), 0,
       'no device registered by an API key');

    my ($s, $id, $secret) = $tok_c1 =~ $TOKEN_RE;
    (my $wrong = $secret) =~ s/^(.)/$1 eq 'A' ? 'B' : 'A'/e;
    for my $bad (['msgrapp_garbage', 'a malformed app token'],
                 ["msgrapp_${A}_$id", 'an app token with no secret'],
                 [substr($tok_c1, 0, -1), 'an app token with a short secret'],
                 ["msgrapp_${A}_zzzzzzzzzzzzzzzz_$secret",
                  'an app token with a non-hex id'],
                 ["msgrapp_${A}_0123456789abcdef_$secret",
                  'an unknown app token id'],
                 ["msgrapp_${A}_${id}_$wrong",
                  'a known app token id with a wrong secret'],
                 ["msgrapp_${B}_${id}_$secret",
                  "A's app token under school B's number"],
                 ["msgr_${A}_${id}_$secret",
                  'an app token passed off as an API key'])
    {
        for my $p ('/app/messages', '/xpressions/topics') {
            $r = get($bad->[0], $p);
            Msgr::Test::problem_ok($r, 401, "$bad->[1] on GET $p: 401");
            like($r->{headers}{'www-authenticate'} // '', qr/^Bearer\b/,
                 "$bad->[1] on GET $p: WWW-Authenticate: Bearer");
        }
    }

    for my $k ([$tok_c1, 'app token'], [$a_admin, 'admin key'],
               [$a_staff, 'staff key'], [$a_int, 'integrator key'])
    {
        $r = get($k->[0], '/xpressions/topics');
        ok_json($r, 200, "$k->[1]: GET /xpressions/topics 200");
        is_deeply($r->{json}, { topics => [] },
                  "$k->[1]: no topics at first");
    }
}


# ---------------------------------------------------------------------------
# devices, and reachability by the app in GET /v1/recipients

sub recipients_s4 {
    my $r = get($a_staff, "/recipients?student=$S4");
    die "GET /recipients: $r->{status} $r->{content}\n"
        unless $r->{status} == 200 && ref $r->{json} eq 'HASH';
    return $r->{json};
}

sub reachable_by_app {
    my ($name, $want) = @_;
    local $Test::Builder::Level = $Test::Builder::Level + 1;
    my $j = recipients_s4();
    my ($c) = grep { $_->{type} eq 'contact' && $_->{id} == $C4 }
              @{ $j->{recipients} || [] };
    if ($want) {
        ok($c && $c->{channels}{xpressions} && $c->{channels}{xpressions}
               eq $T, "$name: the contact is a recipient, xpressions true")
            or diag($J->encode($j));
        is($j->{counts}{by_channel}{xpressions}, 1,
           "$name: counts.by_channel.xpressions 1");
        ok(!(grep { ($_->{id} // 0) == $S4 } @{ $j->{unreachable} || [] }),
           "$name: the student is not unreachable");
    } else {
        ok(!$c, "$name: the contact (no phone, no email) is no recipient")
            or diag($J->encode($j));
        is($j->{counts}{by_channel}{xpressions}, 0,
           "$name: counts.by_channel.xpressions 0");
        ok((grep { ($_->{id} // 0) == $S4 } @{ $j->{unreachable} || [] }),
           "$name: the student is unreachable");
    }
}

sub device_of {
    my ($contact, $token) = @_;
    my $r = get($a_admin, "/contacts/$contact/app-tokens");
    my ($t) = grep { $_->{id} eq token_id($token) } @{ $r->{json}{items} };
    return $t ? $t->{device} : 'no such token';
}

{
    reachable_by_app('before any device', 0);

    my $r = req(PUT => '/app/device', $tok_c4,
                { platform => 'android', push_token => 'fcm-token-1' });
    ok_json($r, 200, 'PUT /app/device 200');
    is($r->{json}{platform}, 'android', 'the platform is answered');
    is($r->{json}{push_token}, 'fcm-token-1', 'the push token is answered');

    reachable_by_app('with a device', 1);
    is(device_of($C4, $tok_c4)->{platform}, 'android',
       "GET app-tokens shows the token's device");

    $r = req(PUT => '/app/device', $tok_c4,
             { platform => 'ios', push_token => 'apns-token-2' });
    ok_json($r, 200, 'a second PUT /app/device 200');
    is($r->{json}{push_token}, 'apns-token-2', 'the new push token answered');
    is($pg->psql("SELECT count(*) || ' ' || string_agg(platform || ':'"
                 . " || push_token, ',') FROM msgr_app_devices"
                 . " WHERE token_id = '" . token_id($tok_c4) . "'"),
       '1 ios:apns-token-2', 'still one device, with the new push token');
    is(device_of($C4, $tok_c4)->{platform}, 'ios',
       'GET app-tokens shows the replaced device');
    reachable_by_app('with the device replaced', 1);

    my $big = 'p' x 4096;
    $r = req(PUT => '/app/device', $tok_c1,
             { platform => 'web', push_token => $big });
    ok_json($r, 200, 'a push token of 4096 bytes: 200');

    for my $bad ([{ platform => 'blackberry', push_token => 'x' },
                  ['platform'], 'an unknown platform'],
                 [{ platform => 'IOS', push_token => 'x' },
                  ['platform'], 'a platform in capitals'],
                 [{ push_token => 'x' }, ['platform'], 'no platform'],
                 [{ platform => 'ios', push_token => '' },
                  ['push_token'], 'an empty push_token'],
                 [{ platform => 'ios' }, ['push_token'], 'no push_token'],
                 [{ platform => 'ios', push_token => 5 },
                  ['push_token'], 'a push_token that is a number'],
                 [{ platform => 'ios', push_token => 'p' x 4097 },
                  ['push_token'], 'a push_token of 4097 bytes'],
                 [{ platform => 'ios', push_token => 'x', model => 'X' },
                  ['model'], 'an unknown field'])
    {
        $r = req(PUT => '/app/device', $tok_c4, $bad->[0]);
        errors_ok($r, 422, $bad->[1], "PUT /app/device, $bad->[2]");
    }
    $r = req(PUT => '/app/device', $tok_c4, '["ios"]',
             headers => { 'Content-Type' => 'application/json' });
    Msgr::Test::problem_ok($r, 422, 'PUT /app/device with a list: 422');
    is(device_of($C4, $tok_c4)->{platform}, 'ios',
       'the refused PUTs changed nothing');

    $r = req(DELETE => '/app/device', $tok_c4);
    status_is($r, 204, 'DELETE /app/device 204');
    reachable_by_app('after signing out', 0);
    ok(!defined device_of($C4, $tok_c4),
       'GET app-tokens shows no device after signing out');

    $r = req(DELETE => '/app/device', $tok_c4);
    Msgr::Test::problem_ok($r, 404, 'DELETE /app/device again: 404');

    # a device on a token that is then revoked
    my $t2 = issue($a_admin, $C4, 'second phone');
    $r = req(PUT => '/app/device', $t2,
             { platform => 'android', push_token => 'fcm-token-3' });
    ok_json($r, 200, 'a device on a second token');
    reachable_by_app('with the second token\'s device', 1);
    $r = req(DELETE => "/contacts/$C4/app-tokens/" . token_id($t2), $a_int);
    status_is($r, 204, 'integrator: revoking that token 204');
    is(db_count("SELECT count(*) FROM msgr_app_devices WHERE token_id = '"
                . token_id($t2) . "'"), 0, 'its device went with it');
    reachable_by_app('after revoking the token', 0);
    ok(!defined device_of($C4, $t2), 'GET app-tokens: no device on it');
    my $l = get($a_admin, "/contacts/$C4/app-tokens");
    my ($x) = grep { $_->{id} eq token_id($t2) } @{ $l->{json}{items} || [] };
    like($x ? $x->{revoked_at} // '' : '', qr/^\d{4}-/,
         'GET app-tokens shows when it was revoked');
}


# ---------------------------------------------------------------------------
# topics

sub audit_topics {
    my $r = get($a_admin, '/settings/audit?limit=200');
    die "GET /settings/audit: $r->{status} $r->{content}\n"
        unless $r->{status} == 200;
    return [ grep { $_->{tab} eq 'xpressions' && $_->{field} eq 'topics' }
             @{ $r->{json}{items} } ];
}

sub put_topics {
    my ($key, $topics) = @_;
    return req(PUT => '/xpressions/topics', $key, { topics => $topics });
}

my @TOPICS = ('Absence', 'Lunch', 'School Trips', 'Clubs+Activities');
{
    is(scalar @{ audit_topics() }, 0, 'no topics audit rows at first');

    my $r = put_topics($a_staff, ['Absence']);
    Msgr::Test::problem_ok($r, 403, 'staff: PUT topics 403');
    $r = put_topics($a_int, ['Absence']);
    Msgr::Test::problem_ok($r, 403, 'integrator: PUT topics 403');

    $r = put_topics($a_admin, ["  Absence ", "\tLunch\n", 'Trips']);
    ok_json($r, 200, 'admin: PUT topics 200');
    is_deeply($r->{json}, { topics => ['Absence', 'Lunch', 'Trips'] },
              'trimmed, in the order given');

    my $aud = audit_topics();
    is(scalar @$aud, 1, 'one audit row');
    is_deeply([ @{ $aud->[0] }{qw(tab field old new actor)} ],
              [ 'xpressions', 'topics', [], ['Absence', 'Lunch', 'Trips'],
                Msgr::Test::key_id($a_admin) ],
              'audit: tab, field, old and new lists, the admin key');

    $r = put_topics($a_admin, ['Absence', 'Lunch', ' Trips ']);
    ok_json($r, 200, 'PUT the same list again 200');
    is(scalar @{ audit_topics() }, 1, 'the same list adds no audit row');

    $r = put_topics($a_admin, \@TOPICS);
    ok_json($r, 200, 'PUT a changed list 200');
    is_deeply($r->{json}{topics}, \@TOPICS, 'the new list answered');
    $aud = audit_topics();
    is(scalar @$aud, 2, 'a second audit row');
    is_deeply([ $aud->[0]{old}, $aud->[0]{new} ],
              [ ['Absence', 'Lunch', 'Trips'], \@TOPICS ],
              'the newest row has the old and new lists');

    for my $k ([$tok_c1, 'app token'], [$a_staff, 'staff key']) {
        for (1 .. 4) {
            $r = get($k->[0], '/xpressions/topics');
            is_deeply($r->{json}, { topics => \@TOPICS },
                      "$k->[1]: GET topics shows the new list");
        }
    }

    my @fifty = map { "Topic $_" } 1 .. 50;
    my $long  = 'x' x 101;
    for my $bad ([['Absence', 'absence'], ['topics[1]'],
                  'a duplicate in another case'],
                 [['Lunch', 'Trips', ' LUNCH '], ['topics[2]'],
                  'a duplicate once trimmed'],
                 [['Absence', 'Lunch', 'Absence', 'LUNCH'],
                  ['topics[2]', 'topics[3]'], 'two duplicates'],
                 [['Absence', ''], ['topics[1]'], 'an empty topic'],
                 [['Absence', 'Lunch', "  \t "], ['topics[2]'],
                  'a topic of white space'],
                 [[$long], ['topics[0]'], 'a topic of 101 characters'],
                 [['Absence', 5], ['topics[1]'], 'a topic that is a number'],
                 [['Absence', undef], ['topics[1]'], 'a null topic'],
                 [[@fifty, 'Topic 51'], ['topics'], '51 topics'],
                 ['Absence', ['topics'], 'a string, not a list'],
                 [{ a => 'Absence' }, ['topics'], 'an object, not a list'],
                 [undef, ['topics'], 'null'])
    {
        $r = put_topics($a_admin, $bad->[0]);
        errors_ok($r, 422, $bad->[1], "PUT topics, $bad->[2]");
    }
    {
        $r = put_topics($a_admin, ["\x{c9}t\x{e9}", "\x{e9}t\x{e9}"]);
        errors_ok($r, 422, ['topics[1]'],
                  'PUT topics, a duplicate in another case, accented');
        if ($r->{status} == 200) {
            # put back the list the rest expects, and forget the two rows
            put_topics($a_admin, \@TOPICS);
            $pg->psql("DELETE FROM msgr_settings_audit WHERE school_id = $A"
                      . " AND audit_id > (SELECT min(audit_id) + 1"
                      . " FROM msgr_settings_audit WHERE school_id = $A"
                      . " AND tab = 'xpressions' AND field = 'topics')"
                      . " AND tab = 'xpressions' AND field = 'topics'");
        }
    }

    $r = req(PUT => '/xpressions/topics', $a_admin, {});
    errors_ok($r, 422, ['topics'], 'PUT topics with no topics');
    $r = req(PUT => '/xpressions/topics', $a_admin,
             { topics => ['Absence'], extra => 1 });
    errors_ok($r, 422, ['extra'], 'PUT topics with an unknown field');

    is_deeply(get($a_admin, '/xpressions/topics')->{json},
              { topics => \@TOPICS }, 'the refused PUTs changed nothing');
    is(scalar @{ audit_topics() }, 2, 'and added no audit row');

    # the limits themselves are allowed
    my $hundred = 'é' x 100;
    $r = put_topics($a_admin, [@fifty[0 .. 48], $hundred]);
    ok_json($r, 200, '50 topics, one of 100 two-byte characters: 200');
    is(scalar @{ $r->{json}{topics} || [] }, 50, 'all 50 kept');
    is($r->{json}{topics}[49], $hundred, 'the long topic kept whole');
    is(scalar @{ audit_topics() }, 3, 'a third audit row');

    $r = put_topics($a_admin, \@TOPICS);
    ok_json($r, 200, 'back to the working list');
    is(scalar @{ audit_topics() }, 4, 'a fourth audit row');
}


# ---------------------------------------------------------------------------
# messages from the app

my @posted;     # every message of school A: { id, topic, contact }

sub post_msg {
    my ($tok, $msg) = @_;
    return req(POST => '/app/messages', $tok, $msg);
}

sub post_ok {
    my ($tok, $contact, $msg, $name) = @_;
    local $Test::Builder::Level = $Test::Builder::Level + 1;
    my $r = post_msg($tok, $msg);
    ok_json($r, 201, "$name: 201") or return $r;
    push @posted, { id => $r->{json}{id}, topic => $msg->{topic},
                    contact => $contact, body => $msg->{body} };
    return $r;
}

{
    my $msg = { topic => 'Absence', body => 'Amy is ill today',
                student_id => $S1 };
    my $r = post_msg($tok_c1, $msg);
    Msgr::Test::problem_ok($r, 403, 'incoming off (the default): 403');
    like($r->{json}{detail} // '', qr/xpressions\.incoming_enabled/,
         '403 names xpressions.incoming_enabled');
    is(db_count('SELECT count(*) FROM msgr_incoming'), 0, 'nothing stored');

    set_incoming($a_admin, 1);

    $r = post_ok($tok_c1, $C1, $msg, 'a message from the app');
    my $j = $r->{json} || {};
    ok(Msgr::Test::is_json_number($j->{id}), 'its id is a JSON number');
    is($j->{topic}, 'Absence', 'the topic answered');
    is($j->{body}, 'Amy is ill today', 'the body answered');
    is($j->{student_id}, $S1, 'the student answered');
    is($j->{status}, 'unread', 'status unread');
    like($j->{created_at} // '', qr/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/,
         'created_at is a UTC time');

    post_ok($tok_c1, $C1, { topic => 'Lunch', body => 'Ben forgot lunch',
                            student_id => $S2 }, 'about the other child');

    my $n = db_count('SELECT count(*) FROM msgr_incoming');

    for my $bad ([{ %$msg, topic => 'Holidays' }, ['topic'],
                  'a topic not among the school\'s'],
                 [{ %$msg, topic => 'Trips' }, ['topic'],
                  'a topic the school had before'],
                 [{ %$msg, topic => '' }, ['topic'], 'an empty topic'],
                 [{ body => 'x', student_id => $S1 }, ['topic'],
                  'no topic'],
                 [{ %$msg, body => '' }, ['body'], 'an empty body'],
                 [{ topic => 'Absence', student_id => $S1 }, ['body'],
                  'no body'],
                 [{ %$msg, body => 'x' x 2001 }, ['body'],
                  'a body of 2001 characters'],
                 [{ %$msg, body => 'é' x 2001 }, ['body'],
                  'a body of 2001 two-byte characters'],
                 [{ %$msg, body => 42 }, ['body'], 'a body that is a number'],
                 [{ %$msg, student_id => $S3 }, ['student_id'],
                  'another contact\'s child'],
                 [{ %$msg, student_id => $BS1 }, ['student_id'],
                  'a student of school B'],
                 [{ %$msg, student_id => 999999 }, ['student_id'],
                  'an unknown student'],
                 [{ %$msg, student_id => "$S1" }, ['student_id'],
                  'a student id as a string'],
                 [{ topic => 'Absence', body => 'x' }, ['student_id'],
                  'no student'],
                 [{ %$msg, urgent => $T }, ['urgent'], 'an unknown field'],
                 [{ topic => 'Holidays', body => 'x', student_id => $S3 },
                  ['topic', 'student_id'], 'two bad fields'])
    {
        $r = post_msg($tok_c1, $bad->[0]);
        errors_ok($r, 422, $bad->[1], "POST /app/messages, $bad->[2]");
    }

    $r = post_msg($tok_c1, { topic => 'Holidays', body => '',
                             student_id => $S3 });
    Msgr::Test::problem_ok($r, 422,
                           'POST /app/messages, three bad fields: 422');
    {
        is_deeply([ sort map { $_->{field} }
                    @{ ($r->{json} || {})->{errors} || [] } ],
                  [ sort qw(topic body student_id) ],
                  'POST /app/messages, three bad fields: all three named')
            or diag("body: $r->{content}");
    }

    for my $raw (['{"topic":"Absence","body":"caf' . "\xff"
                  . '","student_id":' . $S1 . '}', 'invalid UTF-8 (\xff)'],
                 ['{"topic":"Absence","body":"caf' . "\xc3\x28"
                  . '","student_id":' . $S1 . '}',
                  'invalid UTF-8 (a broken sequence)'],
                 ['{"topic":"Absence","body":"x","student_id":', 'cut JSON'],
                 ['{"topic":"Absence","body":"x","body":"y","student_id":'
                  . $S1 . '}', 'a field twice'])
    {
        $r = req(POST => '/app/messages', $tok_c1, $raw->[0],
                 headers => { 'Content-Type' => 'application/json' });
        Msgr::Test::problem_ok($r, 400, "POST /app/messages, $raw->[1]: 400");
    }
    is(db_count('SELECT count(*) FROM msgr_incoming'), $n,
       'nothing stored by the refused posts');

    {
        $r = req(POST => '/app/messages', $tok_c1, $J->encode($msg),
                 headers => { 'Content-Type' => 'text/plain' });
        Msgr::Test::problem_ok($r, 415,
                               'POST /app/messages as text/plain: 415');
        # kept in the books if it was stored all the same
        push @posted, { id => $r->{json}{id}, topic => $msg->{topic},
                        contact => $C1, body => $msg->{body} }
            if $r->{status} == 201;
        is(db_count('SELECT count(*) FROM msgr_incoming'), $n,
           'nothing stored by the text/plain post');

        $r = req(PUT => '/xpressions/topics', $a_admin,
                 $J->encode({ topics => \@TOPICS }),
                 headers => { 'Content-Type' => 'text/plain' });
        Msgr::Test::problem_ok($r, 415, 'PUT /xpressions/topics as '
                                        . 'text/plain: 415');
    }
    $n = db_count('SELECT count(*) FROM msgr_incoming');

    # the limits themselves
    my $long = 'é' x 2000;
    $r = post_ok($tok_c1, $C1, { %$msg, body => $long },
                 'a body of 2000 two-byte characters');
    is($r->{json}{body}, $long, 'the long body answered whole');

    # text kept byte for byte, whatever it holds
    my $nasty = qq{He said "hi" \\ then \\\\n\nLine two\r\n\ttab }
              . qq{<script>alert('x')</script> &amp; }
              . qq{\x{1F600}\x{1F469}\x{200D}\x{1F467} caf\x{e9} }
              . qq{\x{65E5}\x{672C} '--; DROP TABLE msgr_incoming;};
    $r = post_ok($tok_c3, $C3, { topic => 'School Trips', body => $nasty,
                                 student_id => $S3 }, 'a body of odd text');
    is($r->{json}{body}, $nasty, 'the 201 gives the body back unchanged');
    my $nasty_id = $r->{json}{id};

    $r = get($tok_c3, '/app/messages');
    ok_json($r, 200, 'GET /app/messages 200');
    my ($m) = grep { $_->{id} == $nasty_id } @{ $r->{json}{items} || [] };
    is($m && $m->{body}, $nasty, 'GET /app/messages: the body unchanged');

    $r = get($a_staff, '/incoming');
    ok_json($r, 200, 'GET /incoming 200');
    ($m) = grep { $_->{id} == $nasty_id } @{ $r->{json}{items} || [] };
    is($m && $m->{body}, $nasty, 'GET /incoming: the body unchanged');
    is($m && $m->{topic}, 'School Trips', 'GET /incoming: the topic');
    is($m && $m->{contact}{id}, $C3, 'GET /incoming: the contact');
    is($m && $m->{student}{id}, $S3, 'GET /incoming: the student');
    is($pg->psql("SELECT body = convert_from(decode('"
                 . unpack('H*', do { my $b = $nasty; utf8::encode($b); $b })
                 . "', 'hex'), 'UTF8') FROM msgr_incoming"
                 . " WHERE message_id = $nasty_id"), 't',
       'stored as the exact bytes sent');
}


# ---------------------------------------------------------------------------
# one parent never sees another's messages

{
    post_ok($tok_c3, $C3, { topic => 'Lunch', body => 'Cal is vegetarian',
                            student_id => $S3 }, 'Kim posts');
    post_ok($tok_c1b, $C1, { topic => 'Absence', body => 'Dentist at 2',
                             student_id => $S2 }, 'Jane posts from her tablet');
    my $tok_c2 = issue($a_admin, $C2, 'Dad');
    post_ok($tok_c2, $C2, { topic => 'Absence', body => 'From John',
                            student_id => $S1 }, 'John posts about Amy');

    my %mine;
    push @{ $mine{ $_->{contact} } }, $_->{id} for @posted;

    for my $t ([$tok_c1, $C1, 'Jane (phone)'], [$tok_c1b, $C1, 'Jane (tablet)'],
               [$tok_c3, $C3, 'Kim'], [$tok_c2, $C2, 'John'],
               [$tok_c4, $C4, 'Lee'])
    {
        my $r = get($t->[0], '/app/messages?limit=200');
        ok_json($r, 200, "$t->[2]: GET /app/messages 200");
        my @ids = map { $_->{id} } @{ $r->{json}{items} || [] };
        is_deeply(\@ids, [ sort { $b <=> $a } @{ $mine{ $t->[1] } || [] } ],
                  "$t->[2]: exactly their contact's own messages, "
                  . 'newest first');
    }

    # pages of the app's list
    my (@seen, $before);
    for (1 .. 20) {
        my $r = get($tok_c1, '/app/messages?limit=2'
                             . (defined $before ? "&before=$before" : ''));
        last unless $r->{status} == 200;
        push @seen, map { $_->{id} } @{ $r->{json}{items} };
        $before = $r->{json}{next_before};
        last unless defined $before;
    }
    is_deeply(\@seen, [ sort { $b <=> $a } @{ $mine{$C1} } ],
              'the app walks its own messages in pages of 2');

    my $r = get($tok_c1, '/app/messages?limit=0');
    Msgr::Test::problem_ok($r, 400, 'GET /app/messages?limit=0: 400');
}


# ---------------------------------------------------------------------------
# the school's inbox

{
    # a few more, of every topic
    my @more = (['Absence', $S1], ['Lunch', $S2], ['School Trips', $S1],
                ['Clubs+Activities', $S2], ['Absence', $S2]);
    my $i = 0;
    for my $m (@more) {
        $i++;
        post_ok($tok_c1, $C1, { topic => $m->[0], body => "note $i",
                                student_id => $m->[1] }, "inbox note $i");
    }
    my @all = sort { $b <=> $a } map { $_->{id} } @posted;

    my $r;
    for my $k ([$a_admin, 'admin'], [$a_staff, 'staff'],
               [$a_int, 'integrator'])
    {
        $r = get($k->[0], '/incoming?limit=200');
        ok_json($r, 200, "$k->[1]: GET /incoming 200");
        is_deeply([ map { $_->{id} } @{ $r->{json}{items} || [] } ], \@all,
                  "$k->[1]: every message, newest first");
        ok(exists $r->{json}{next_before} && !defined $r->{json}{next_before},
           "$k->[1]: next_before null on the last page");
    }
    my ($first) = grep { $_->{id} == $all[-1] } @{ $r->{json}{items} };
    is_deeply([ @{ $first }{qw(topic body read read_at read_by)} ],
              [ 'Absence', 'Amy is ill today', $F, undef, undef ],
              'an unread message: read false, read_at and read_by null');
    is_deeply([ $first->{contact}{id}, $first->{contact}{first_name},
                $first->{student}{id}, $first->{student}{first_name} ],
              [ $C1, 'Jane', $S1, 'Amy' ], 'its contact and student');

    $r = get($tok_c1, '/incoming');
    Msgr::Test::problem_ok($r, 403, 'app token: GET /incoming 403');

    for my $t (@TOPICS) {
        (my $q = $t) =~ s/([^A-Za-z0-9])/sprintf('%%%02X', ord $1)/ge;
        $r = get($a_staff, "/incoming?limit=200&topic=$q");
        ok_json($r, 200, "GET /incoming?topic=$q 200");
        is_deeply([ map { $_->{id} } @{ $r->{json}{items} || [] } ],
                  [ sort { $b <=> $a } map { $_->{id} }
                    grep { $_->{topic} eq $t } @posted ],
                  "topic=$q: exactly the messages of topic '$t'");
    }
    $r = get($a_staff, '/incoming?topic=School+Trips');
    is_deeply([ map { $_->{id} } @{ $r->{json}{items} || [] } ],
              [ sort { $b <=> $a } map { $_->{id} }
                grep { $_->{topic} eq 'School Trips' } @posted ],
              'topic=School+Trips: "+" is a space');
    $r = get($a_staff, '/incoming?topic=Holidays');
    ok_json($r, 200, 'a topic with no messages: 200');
    is_deeply($r->{json}{items}, [], 'and no items');

    # paging walks every message once
    for my $limit (1, 2, 3, scalar @all) {
        my (@seen, $before, $pages);
        for (1 .. 100) {
            $r = get($a_staff, "/incoming?limit=$limit"
                               . (defined $before ? "&before=$before" : ''));
            last unless $r->{status} == 200;
            $pages++;
            my @items = @{ $r->{json}{items} };
            ok(@items <= $limit, "limit=$limit: a page of at most $limit")
                if @items > $limit;
            push @seen, map { $_->{id} } @items;
            $before = $r->{json}{next_before};
            last unless defined $before;
        }
        is_deeply(\@seen, \@all,
                  "limit=$limit: the pages walk every message once, in order");
    }

    for my $bad ('limit=0', 'limit=201', 'limit=abc', 'limit=-1', 'limit=',
                 'before=abc', 'before=0', 'before=-5', 'unread=yes',
                 'unread=1', 'unread=')
    {
        $r = get($a_staff, "/incoming?$bad");
        Msgr::Test::problem_ok($r, 400, "GET /incoming?$bad: 400");
        my ($f) = $bad =~ /^(\w+)=/;
        ok((grep { ($_->{field} // '') eq $f }
            @{ ($r->{json} || {})->{errors} || [] }),
           "GET /incoming?$bad: names $f") or diag($r->{content});
    }

    # read and unread
    my @read = @all[1, 3];
    for my $id (@read) {
        $r = req(PATCH => "/incoming/$id", $a_staff, { read => $T });
        ok_json($r, 200, "PATCH /incoming/$id read true: 200");
        is($r->{json}{read}, $T, 'read true answered');
        like($r->{json}{read_at} // '', qr/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/,
             'read_at recorded');
        is($r->{json}{read_by}, Msgr::Test::key_id($a_staff),
           'read_by is the staff key id');
    }
    is($pg->psql("SELECT count(*) FROM msgr_incoming WHERE read_at IS NOT NULL"
                 . " AND read_by = '" . Msgr::Test::key_id($a_staff) . "'"),
       2, 'read_at and read_by stored');

    my %is_read = map { $_ => 1 } @read;
    $r = get($a_int, '/incoming?limit=200&unread=true');
    is_deeply([ map { $_->{id} } @{ $r->{json}{items} || [] } ],
              [ grep { !$is_read{$_} } @all ], 'unread=true: the unread ones');
    ok(!(grep { $_->{read} } @{ $r->{json}{items} || [] }),
       'unread=true: every item read false');
    $r = get($a_int, '/incoming?limit=200&unread=false');
    is_deeply([ map { $_->{id} } @{ $r->{json}{items} || [] } ], \@read,
              'unread=false: the read ones');
    $r = get($a_int, '/incoming?limit=200&unread=true&topic=Absence');
    is_deeply([ map { $_->{id} } @{ $r->{json}{items} || [] } ],
              [ sort { $b <=> $a } map { $_->{id} }
                grep { $_->{topic} eq 'Absence' && !$is_read{ $_->{id} } }
                @posted ], 'unread=true&topic=Absence: both filters');

    # the app sees what the school has read
    my %owner = map { $_->{id} => $_->{contact} } @posted;
    my ($mine) = grep { $owner{$_} == $C1 } @read;
    $r = get($tok_c1, '/app/messages?limit=200');
    my %status = map { $_->{id} => $_->{status} } @{ $r->{json}{items} || [] };
    is($status{$mine}, 'read', "the app sees message $mine as read");
    is(scalar(grep { $_ eq 'read' } values %status),
       scalar(grep { $owner{$_} == $C1 } @read),
       'only the read ones show read');

    $r = req(PATCH => "/incoming/$mine", $a_admin, { read => $F });
    ok_json($r, 200, "PATCH /incoming/$mine read false: 200");
    is_deeply([ @{ $r->{json} }{qw(read read_at read_by)} ],
              [ $F, undef, undef ], 'unread again: read_at, read_by cleared');
    $r = get($tok_c1, '/app/messages?limit=200');
    ($r) = grep { $_->{id} == $mine } @{ $r->{json}{items} || [] };
    is($r && $r->{status}, 'unread', 'the app sees it unread again');

    $r = req(PATCH => "/incoming/$mine", $a_int, { read => $T });
    ok_json($r, 200, 'integrator marks it read');
    is($r->{json}{read_by}, Msgr::Test::key_id($a_int),
       'read_by is the integrator key id');

    for my $bad ([{ read => 'yes' }, ['read'], 'read as a string'],
                 [{ read => 1 }, ['read'], 'read as a number'],
                 [{}, ['read'], 'no read'],
                 [{ read => $T, starred => $T }, ['starred'],
                  'an unknown field'])
    {
        $r = req(PATCH => "/incoming/$all[0]", $a_staff, $bad->[0]);
        errors_ok($r, 422, $bad->[1], "PATCH /incoming, $bad->[2]");
    }
    $r = req(PATCH => '/incoming/999999', $a_staff, { read => $T });
    Msgr::Test::problem_ok($r, 404, 'PATCH an unknown message: 404');
    $r = req(PATCH => "/incoming/$all[0]", $b_admin, { read => $T });
    Msgr::Test::problem_ok($r, 404, "school B patching A's message: 404");
    $r = req(PATCH => "/incoming/$all[0]", $tok_c1, { read => $T });
    Msgr::Test::problem_ok($r, 403, 'an app token patching a message: 403');
    is($pg->psql("SELECT read_at IS NULL FROM msgr_incoming"
                 . " WHERE message_id = $all[0]"), 't',
       'the refused PATCHes marked nothing');
}


# ---------------------------------------------------------------------------
# revoking: the very next request is 401, on every worker

{
    my $tok = issue($a_admin, $C3, 'to revoke');
    my $id  = token_id($tok);
    my $clients = worker_clients($ngx, $tok, "$V/app/messages");
    my @pids = sort keys %$clients;
    is(scalar @pids, 2, 'a connection on each of the 2 workers, token works')
        or diag("workers: @pids");

    my $r = req(PUT => '/app/device', $tok,
                { platform => 'web', push_token => 'wp-1' });
    ok_json($r, 200, 'the token has a device');

    $r = req(DELETE => "/contacts/$C1/app-tokens/$id", $a_admin);
    Msgr::Test::problem_ok($r, 404, 'revoking under another contact: 404');
    $r = req(DELETE => "/contacts/$C3/app-tokens/$id", $a_staff);
    Msgr::Test::problem_ok($r, 403, 'staff: revoking 403');
    $r = get($tok, '/app/messages');
    ok_json($r, 200, 'the token still works after the refused revokes');

    $r = req(DELETE => "/contacts/$C3/app-tokens/$id", $a_admin);
    status_is($r, 204, 'admin: DELETE app-token 204');

    for my $pid (@pids) {
        $r = ua_req($ngx, $clients->{$pid}, GET => "$V/app/messages", $tok);
        Msgr::Test::problem_ok($r, 401,
                               "the very next request on worker $pid: 401");
        is($r->{headers}{'x-worker'}, $pid, "answered by worker $pid");
    }

    my @res = Msgr::Test::burst($ngx, count => 20, path => "$V/app/messages",
                                key => $tok);
    my @not401 = grep { $_->{status} != 401 } @res;
    ok(!@not401, '20 requests over fresh connections: every one 401')
        or diag(join ', ', map { $_->{status} } @res);
    my %by = map { ($_->{headers}{'x-worker'} // '?') => 1 } @res;
    diag('the 401s came from workers ' . join ', ', sort keys %by);

    for my $p ('/xpressions/topics', '/app/device') {
        $r = $p eq '/app/device'
           ? req(PUT => $p, $tok, { platform => 'web', push_token => 'x' })
           : get($tok, $p);
        Msgr::Test::problem_ok($r, 401, "revoked token on $p: 401");
    }
    is(db_count("SELECT count(*) FROM msgr_app_devices WHERE token_id = '$id'"),
       0, 'the revoked token\'s device is gone');

    $r = req(DELETE => "/contacts/$C3/app-tokens/$id", $a_admin);
    Msgr::Test::problem_ok($r, 404, 'revoking again: 404');
    $r = req(DELETE => "/contacts/$C3/app-tokens/0123456789abcdef", $a_int);
    Msgr::Test::problem_ok($r, 404, 'revoking an unknown token id: 404');
    $r = req(DELETE => "/contacts/$C3/app-tokens/not-a-token", $a_int);
    Msgr::Test::problem_ok($r, 404, 'revoking a malformed token id: 404');

    $r = get($a_admin, "/contacts/$C3/app-tokens");
    my ($t) = grep { $_->{id} eq $id } @{ $r->{json}{items} || [] };
    like($t && $t->{revoked_at} // '', qr/^\d{4}-\d\d-\d\dT/,
         'GET app-tokens lists it with revoked_at');

    $r = get($tok_c3, '/app/messages');
    ok_json($r, 200, "the contact's other token still works");
}


# ---------------------------------------------------------------------------
# tenancy

{
    my $b_tok = issue($b_admin, $BC1, 'B parent');
    my $a_id  = token_id($tok_c1);

    my $r = get($b_admin, "/contacts/$C1/app-tokens");
    Msgr::Test::problem_ok($r, 404,
                           "B admin listing A's contact's tokens: 404");
    unlike($r->{content}, qr/$a_id/, "no token id of A's in the answer");

    $r = req(DELETE => "/contacts/$C1/app-tokens/$a_id", $b_admin);
    Msgr::Test::problem_ok($r, 404, "B admin revoking A's token: 404");
    $r = req(DELETE => "/contacts/$BC1/app-tokens/$a_id", $b_admin);
    Msgr::Test::problem_ok($r, 404,
                           "B admin revoking A's token under B's contact: 404");
    $r = req(DELETE => "/contacts/$C1/app-tokens/$a_id", $b_int);
    Msgr::Test::problem_ok($r, 404, "B integrator revoking A's token: 404");
    $r = get($tok_c1, '/app/messages');
    ok_json($r, 200, "A's token still works");

    $r = req(POST => "/contacts/$C1/app-tokens", $b_admin, {});
    Msgr::Test::problem_ok($r, 404, "B admin issuing for A's contact: 404");

    $r = get($b_admin, '/incoming?limit=200');
    ok_json($r, 200, "B's inbox 200");
    is_deeply($r->{json}{items}, [], "B's inbox has none of A's messages");

    $r = get($b_tok, '/xpressions/topics');
    is_deeply($r->{json}, { topics => [] }, "B's app sees B's topics (none)");
    $r = get($b_tok, '/app/messages');
    is_deeply($r->{json}{items}, [], "B's app sees none of A's messages");

    $r = req(PUT => '/xpressions/topics', $b_admin, { topics => ['Absence'] });
    ok_json($r, 200, 'B sets its own topics');
    set_incoming($b_admin, 1);
    $r = post_msg($b_tok, { topic => 'Absence', body => 'x',
                            student_id => $S1 });
    errors_ok($r, 422, ['student_id'], "B's parent naming A's student");
    $r = post_msg($b_tok, { topic => 'Lunch', body => 'x',
                            student_id => $BS1 });
    errors_ok($r, 422, ['topic'], "B's parent naming A's topic");
    $r = post_msg($b_tok, { topic => 'Absence', body => 'Zoe is ill',
                            student_id => $BS1 });
    ok_json($r, 201, "B's parent posts to B");
    my $b_msg = $r->{json}{id};

    $r = get($a_admin, '/incoming?limit=200');
    ok_json($r, 200, "A's inbox 200");
    ok(scalar @{ $r->{json}{items} || [] }, "A's inbox lists A's messages");
    ok(!(grep { $_->{id} == $b_msg } @{ $r->{json}{items} || [] }),
       "A's inbox does not show B's message");
    $r = req(PATCH => "/incoming/$b_msg", $a_admin, { read => $T });
    Msgr::Test::problem_ok($r, 404, "A patching B's message: 404");
    $r = get($tok_c1, '/app/messages?limit=200');
    ok_json($r, 200, "A's parent's messages 200");
    ok(scalar @{ $r->{json}{items} || [] },
       "A's parent sees the parent's own messages");
    ok(!(grep { $_->{id} == $b_msg } @{ $r->{json}{items} || [] }),
       "A's parent does not see B's message");
    $r = get($b_admin, '/incoming');
    ok_json($r, 200, "B's inbox 200 again");
    is_deeply([ map { $_->{id} } @{ $r->{json}{items} || [] } ], [$b_msg],
              "B's inbox has B's message only");
    is(scalar @{ audit_topics() }, 4, "B's topics are not in A's audit trail");
}


# ---------------------------------------------------------------------------
# flood control: msgr_app_rate 5, shared by both workers

{
    my $n5 = Msgr::Test::nginx_start($pg, workers => 2,
                                     http => '    msgr_app_rate 5;',
                                     location => $WHO);
    my $tok   = issue($a_admin, $C1, 'flood');
    my $other = issue($a_admin, $C1, 'calm');
    my $clients = worker_clients($n5, $tok, "$V/app/messages");
    my @pids = sort keys %$clients;
    is(scalar @pids, 2, 'flood: a connection on each of the 2 workers')
        or diag("workers: @pids");

    my $msg = { topic => 'Absence', body => 'again', student_id => $S1 };
    my (@st, %served);
    for my $i (0 .. 4) {
        my $pid = $pids[ $i % @pids ];
        my $r = ua_req($n5, $clients->{$pid}, POST => "$V/app/messages", $tok,
                       $msg);
        push @st, $r->{status};
        $served{ $r->{headers}{'x-worker'} // '?' }++;
    }
    is("@st", '201 201 201 201 201', 'five posts in a row: all 201');
    is(scalar keys %served, 2, 'both workers took some of them')
        or diag(join ', ', keys %served);

    for my $pid (reverse @pids) {
        my $r = ua_req($n5, $clients->{$pid}, POST => "$V/app/messages", $tok,
                       $msg);
        Msgr::Test::problem_ok($r, 429, "a further post on worker $pid: 429");
        like($r->{headers}{'retry-after'} // '', qr/^[1-9]\d*$/,
             'Retry-After is a positive number of seconds');
        ok(($r->{headers}{'retry-after'} // 0) <= 60,
           'Retry-After is at most a minute');
    }

    # over fresh connections too
    my @res = Msgr::Test::burst($n5, count => 4, method => 'GET',
                                path => "$V/app/messages", key => $tok);
    ok(!(grep { $_->{status} != 200 } @res),
       'reading is not limited');

    my $r = $n5->req(POST => "$V/app/messages", key => $other, body => $msg);
    ok_json($r, 201, 'another token of the same parent is not affected');
    is(db_count("SELECT count(*) FROM msgr_incoming WHERE token_id = '"
                . token_id($tok) . "'"), 5,
       'the refused posts stored nothing');
}

# a contact the MIS drops loses the app at once, on every worker
{
    my $tok = issue($a_admin, $C4, 'Dad');
    my $clients = worker_clients($ngx, $tok, "$V/app/messages");
    my @pids = sort keys %$clients;
    is(scalar @pids, 2, 'the token works (and is cached) on both workers')
        or diag("workers: @pids");
    my @first = Msgr::Test::burst($ngx, count => 6, method => 'GET',
                                  path => "$V/app/messages", key => $tok);
    ok(!(grep { $_->{status} != 200 } @first),
       'the token works (and is cached) while the contact is in the MIS');

    my $s = snapshot_a();
    $s->{contacts} = [ grep { $_->{mis_id} ne 'C4' } @{ $s->{contacts} } ];
    $s->{students} = [ grep { $_->{mis_id} ne 'S4' } @{ $s->{students} } ];
    my $r = req(POST => '/mis/sync', $a_int, $s);
    ok_json($r, 200, 'a sync without C4 retires the contact');

    my @after = Msgr::Test::burst($ngx, count => 20, method => 'GET',
                                  path => "$V/app/messages", key => $tok);
    my @not401 = grep { $_->{status} != 401 } @after;
    is(scalar @not401, 0, 'its app token is refused at once, 20 of 20')
        or diag(join ' ', map { $_->{status} } @after);
    for my $pid (@pids) {
        $r = ua_req($ngx, $clients->{$pid}, GET => "$V/app/messages", $tok);
        Msgr::Test::problem_ok($r, 401, "retired: worker $pid refuses it");
        is($r->{headers}{'x-worker'}, $pid, "answered by worker $pid");
    }

    $r = req(POST => '/mis/sync', $a_int, snapshot_a());
    ok_json($r, 200, 'C4 back in the MIS');

    # Back in the MIS, the token works again on every worker at once (the
    # sync's notification reaches every worker within a moment, not after
    # the cache's minute).
    my (%back, %who);
    my $deadline = time + 2;
    while (1) {
        for my $pid (@pids) {
            my $b = ua_req($ngx, $clients->{$pid}, GET => "$V/app/messages",
                           $tok);
            $back{$pid} = $b->{status};
            $who{$pid}  = $b->{headers}{'x-worker'} // '?';
        }
        last if !(grep { $_ != 200 } values %back) || time > $deadline;
        sleep 0.5;
    }
    for my $pid (@pids) {
        is($back{$pid}, 200, "back in the MIS: worker $pid takes the token");
        is($who{$pid}, $pid, "answered by worker $pid");
    }
}

Msgr::Test::finish();
