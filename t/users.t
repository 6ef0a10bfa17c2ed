#!/usr/bin/perl

# The school's users, signing in and the Security tab: users made with an
# invitation token (single use, 7 days), reset tokens (single use, an
# hour), emails unique without case, ETag and If-Match, the last admin,
# signing in and out, GET /v1/me, the same answer for an unknown email as
# for a wrong password, the lockout after 10 failures and its end, the
# sign-ins an admin sees, each password_strength level through the API,
# password_history previous and last_5, the 30-day change, and a disabled
# user's sessions refused at once on every worker.  Time moves by changing
# timestamps in SQL, never by sleeping.

use strict;
use warnings;

use Test::More;
use Time::HiRes qw(time);

use lib 't/lib';
use Msgr::Test;
use Msgr::Test::API;

my $V = '/msgr/v1';

my $pg = Msgr::Test::pg_start();
my ($A, $B, $a_admin, $a_staff, $a_int, $b_admin, $b_int)
    = two_schools($pg);
my $ngx = api_nginx($pg);


# ---------------------------------------------------------------------------
# helpers

sub call {
    my ($method, $path, $key, $body, %h) = @_;
    return $ngx->req($method => "$V$path", (defined $key ? (key => $key) : ()),
                     (defined $body ? (body => $body) : ()),
                     headers => \%h, timeout => 30);
}

# a user of school A (or $o{key}'s) with a password set from the invitation
sub user {
    my ($email, $role, $password, %o) = @_;
    my $r = call(POST => '/users', $o{key} // $a_admin,
                 { email => $email, name => $o{name} // 'Pat Jones',
                   role => $role });
    die "POST /users: $r->{status} $r->{content}\n" unless $r->{status} == 201;
    my $u = $r->{json};
    if (defined $password) {
        my $s = call(POST => "/password-tokens/$u->{invitation_token}", undef,
                     { password => $password });
        die "password: $s->{status} $s->{content}\n" unless $s->{status} == 200;
    }
    return $u;
}

sub sign_in {
    my ($email, $password, $school) = @_;
    return call(POST => '/sessions', undef,
                { school => $school // $A + 0, email => $email,
                  password => $password });
}

sub session {
    my $r = sign_in(@_);
    die "sign in $_[0]: $r->{status} $r->{content}\n"
        unless $r->{status} == 201;
    return $r->{json}{token};
}

sub type_is {
    my ($r, $status, $type, $name) = @_;
    local $Test::Builder::Level = $Test::Builder::Level + 1;
    Msgr::Test::problem_ok($r, $status, $name);
    is($r->{json}{type}, "urn:msgr:problem:$type", "$name: $type");
}

sub set_security {
    my ($field, $value) = @_;
    local $Test::Builder::Level = $Test::Builder::Level + 1;
    set_everywhere($a_admin, 'security', $field, $value);
}

sub change {
    my ($sess, $current, $new) = @_;
    return call(PUT => '/me/password', $sess, { current => $current,
                                                 new => $new });
}


# ---------------------------------------------------------------------------
# users and invitations

my $admin = user('Head@Alpha.example', 'admin', 'first password');
like($admin->{invitation_token}, qr/^msgrpwt_${A}_[0-9a-f]{16}_\S{43}$/,
     'POST /users: an invitation token, shown once');
like($admin->{invitation_expires_at}, qr/^\d{4}-\d\d-\d\dT/,
     'the invitation says when it expires');
is_deeply([ @$admin{qw(email name role disabled password_set)} ],
          [ 'Head@Alpha.example', 'Pat Jones', 'admin', JSON::PP::false,
            JSON::PP::false ], 'the user as made');

{
    my $r = call(POST => "/password-tokens/$admin->{invitation_token}",
                 undef, { password => 'second password' });
    type_is($r, 404, 'token-unusable', 'an invitation is used once');

    $r = call(POST => '/users', $a_admin, { email => 'head@alpha.EXAMPLE',
                                            name => 'X', role => 'staff' });
    type_is($r, 409, 'conflict', 'emails are unique without case');

    $r = call(POST => '/users', $b_admin, { email => 'head@alpha.example',
                                            name => 'X', role => 'staff' });
    is($r->{status}, 201, 'the same email in another school');

    $r = call(POST => '/users', $a_admin, { email => 'nope', name => '',
                                            role => 'owner', x => 1 });
    errors_ok($r, 422, [qw(email name role x)], 'bad fields');

    $r = call(POST => '/users', $a_staff, { email => 'a@b.example',
                                            name => 'X', role => 'staff' });
    is($r->{status}, 403, 'a staff key may not make users');

    my $late = user('late@alpha.example', 'staff');
    $pg->psql("UPDATE msgr_password_tokens SET expires_at = now()"
              . " - interval '1 second' WHERE user_id = $late->{id}");
    $r = call(POST => "/password-tokens/$late->{invitation_token}", undef,
              { password => 'late password' });
    type_is($r, 404, 'token-unusable', 'an invitation after 7 days');

    (my $forged = $late->{invitation_token}) =~ s/.$/A/;
    $r = call(POST => "/password-tokens/$forged", undef,
              { password => 'late password' });
    type_is($r, 404, 'token-unusable', 'a token with a wrong secret');

    my $list = get_json($a_admin, "$V/users?limit=10");
    is(scalar @{ $list->{items} }, 2, 'GET /users: the school\'s users only');
}


# ---------------------------------------------------------------------------
# signing in and out

my $sess = session('head@alpha.example', 'first password');
like($sess, qr/^msgrsess_${A}_[0-9a-f]{16}_\S{43}$/, 'a session token');
{
    my $r = sign_in('HEAD@alpha.example', 'first password');
    is($r->{json}{idle_timeout}, 1800, 'idle timeout 30 minutes');
    is($r->{json}{user}{id}, $admin->{id}, 'the email without case');
    ok(!$r->{json}{password_expired}, 'the password is not expired');

    my $me = call(GET => '/me', $sess);
    is($me->{json}{email}, 'Head@Alpha.example', 'GET /me');
    is(call(GET => '/settings', $sess)->{status}, 200,
       'a session is used like an admin key');
    is(call(GET => '/me', $a_admin)->{status}, 403,
       'GET /me with an API key');

    my $t = session('head@alpha.example', 'first password');
    is(call(DELETE => '/sessions/current', $t)->{status}, 204, 'sign out');
    is(call(GET => '/me', $t)->{status}, 401, 'a signed-out session');

    $t = session('head@alpha.example', 'first password');
    $pg->psql("UPDATE msgr_sessions SET last_seen_at = now()"
              . " - interval '31 minutes' WHERE session_id = '"
              . (split /_/, $t)[2] . "'");
    is(call(GET => '/me', $t)->{status}, 401, 'idle 31 minutes: refused');

    $t = session('head@alpha.example', 'first password');
    $pg->psql("UPDATE msgr_sessions SET expires_at = now()"
              . " WHERE session_id = '" . (split /_/, $t)[2] . "'");
    is(call(GET => '/me', $t)->{status}, 401, 'after 12 hours: refused');

    my $staff = user('staff@alpha.example', 'staff', 'staff password');
    my $st = session('staff@alpha.example', 'staff password');
    is(call(GET => '/users', $st)->{status}, 403,
       'a staff session is a staff credential');
    is(call(GET => "/users/$staff->{id}", $b_admin)->{status}, 404,
       'another school\'s user is not found');
}


# ---------------------------------------------------------------------------
# the same answer, in the same time, for an unknown email

{
    my (@known, @unknown);
    for (1 .. 3) {
        my $r = sign_in('head@alpha.example', 'wrong password');
        push @known, $r;
        $r = sign_in('nobody@alpha.example', 'wrong password');
        push @unknown, $r;
    }
    type_is($known[0], 401, 'sign-in-failed', 'a wrong password');
    is($unknown[0]{status}, 401, 'an unknown email: 401');
    is($unknown[0]{content}, $known[0]{content},
       'an unknown email: the same body as a wrong password');
    my @k = sort { $a <=> $b } map { $_->{elapsed} } @known;
    my @u = sort { $a <=> $b } map { $_->{elapsed} } @unknown;
    my $ratio = $u[1] / $k[1];
    ok($ratio > 0.5 && $ratio < 2,
       sprintf('an unknown email takes as long (%.0f ms, %.0f ms)',
               1000 * $u[1], 1000 * $k[1]));
    is(sign_in('head@alpha.example', 'first password', 999999)->{content},
       $known[0]{content}, 'an unknown school: the same answer');
}


# ---------------------------------------------------------------------------
# lockout: 10 failures in 15 minutes lock the email for 15 minutes

{
    my $u = user('lock@alpha.example', 'staff', 'lock password');
    my @st = map { sign_in('lock@alpha.example', "wrong $_")->{status} }
             1 .. 10;
    is_deeply(\@st, [ (401) x 9, 429 ], 'the tenth failure locks');
    my $r = sign_in('lock@alpha.example', 'lock password');
    type_is($r, 429, 'account-locked', 'locked: the right password too');
    ok($r->{headers}{'retry-after'} > 800, 'Retry-After about 15 minutes');

    my @n = map { sign_in('ghost@alpha.example', "wrong $_")->{status} }
            1 .. 10;
    is($n[9], 429, 'an unknown email locks alike');

    $pg->psql("UPDATE msgr_sign_ins SET at = at - interval '16 minutes'"
              . " WHERE email = 'lock\@alpha.example'");
    $pg->psql("UPDATE msgr_sign_in_locks SET locked_until = locked_until"
              . " - interval '16 minutes'");
    is(sign_in('lock@alpha.example', 'lock password')->{status}, 201,
       'after 15 minutes the lock has ended');

    my $list = get_json($a_admin, "$V/users/$u->{id}/sign-ins?limit=100");
    my %by;
    $by{ $_->{outcome} }++ for @{ $list->{items} };
    is_deeply(\%by, { failed => 10, locked => 1, signed_in => 1 },
              'GET /users/{id}/sign-ins: every success and failure');
    is(call(GET => "/users/$u->{id}/sign-ins", $a_staff)->{status}, 403,
       'sign-ins: admins only');
}


# ---------------------------------------------------------------------------
# the strength levels, at the moment of the change

my $pat = user('pat@alpha.example', 'staff', 'pat password',
               name => 'Patricia Quinton');
my $ps = session('pat@alpha.example', 'pat password');
my $cur = 'pat password';

my @levels = (
    [ any         => 'short', 'at least 8 characters', 'eightchr' ],
    [ medium      => 'password1', 'upper-case letter', 'Password7' ],
    [ strong      => 'Password7x', 'a symbol', 'Password7x!' ],
    [ very_strong => 'Patricia.Quinton1', 'dictionary attack',
      'Gz7!tR2@pL9#' ],
);
for my $l (@levels) {
    my ($level, $bad, $why, $good) = @$l;
    set_security(password_strength => $level);
    my $r = change($ps, $cur, $bad);
    type_is($r, 422, 'password-policy', "$level: '$bad' refused");
    like(join(' ', map { $_->{message} } @{ $r->{json}{errors} || [] }),
         qr/\Q$why\E/, "$level: the rule is named ($why)");
    like($r->{json}{detail}, qr/"$level"/, "$level: the level is named");
    $r = change($ps, $cur, $good);
    is($r->{status}, 200, "$level: '$good' accepted")
        or diag($r->{content});
    $cur = $good;
}
{
    my $r = change($ps, 'not it', 'Xq9!vB2@kL7#');
    errors_ok($r, 422, ['current'], 'the wrong current password');
    set_security(password_strength => 'any');
}


# ---------------------------------------------------------------------------
# history

{
    my $r = change($ps, $cur, $cur);
    type_is($r, 422, 'password-policy', 'previous: the same password');
    like($r->{json}{errors}[0]{message}, qr/previous/, 'previous is named');
    is(change($ps, $cur, 'Password7x')->{status}, 200,
       'previous: an older one may come back');
    $cur = 'Password7x';

    set_security(password_history => 'last_5');
    my @pw = map { "history pw $_" } 1 .. 5;
    for my $p (@pw) {
        is(change($ps, $cur, $p)->{status}, 200, "last_5: '$p'");
        $cur = $p;
    }
    $r = change($ps, $cur, $pw[0]);
    type_is($r, 422, 'password-policy', 'last_5: the fifth back');
    like($r->{json}{errors}[0]{message}, qr/last 5/, 'last_5 is named');
    is(change($ps, $cur, 'Password7x')->{status}, 200,
       'last_5: the sixth back is forgotten');
    $cur = 'Password7x';
    my $kept = $pg->psql("SELECT count(*) FROM msgr_password_history h"
                         . " JOIN msgr_users u USING (user_id)"
                         . " WHERE u.email = 'pat\@alpha.example'");
    is($kept, 4, 'four earlier hashes are kept, nothing older');
    set_security(password_history => 'previous');
}


# ---------------------------------------------------------------------------
# the 30-day change

{
    my $old = "UPDATE msgr_users SET password_changed_at = now()"
            . " - interval '31 days' WHERE email = 'pat\@alpha.example'";
    $pg->psql($old);
    my $r = sign_in('pat@alpha.example', $cur);
    ok($r->{status} == 201 && !$r->{json}{password_expired},
       'not enforced: an old password is not expired');

    set_security(enforce_password_change => JSON::PP::true);
    $r = sign_in('pat@alpha.example', $cur);
    is($r->{status}, 201, 'enforced: an old password still signs in');
    ok($r->{json}{password_expired}, '... and says it has expired');
    my $t = $r->{json}{token};
    type_is(call(GET => '/settings', $t), 403, 'password-expired',
            'expired: other routes refused');
    type_is(call(GET => '/settings', $ps), 403, 'password-expired',
            'expired: an earlier session too');
    is(call(GET => '/me', $t)->{status}, 200, 'expired: GET /me');
    is(change($t, $cur, 'a fresh password')->{status}, 200,
       'expired: the password may be changed');
    $cur = 'a fresh password';
    is(call(GET => '/settings', $t)->{status}, 200,
       'changed: the session may do the rest');
    set_security(enforce_password_change => JSON::PP::false);
}


# ---------------------------------------------------------------------------
# reset tokens

{
    my $r = call(POST => "/users/$pat->{id}/password-reset", $a_admin);
    is($r->{status}, 201, 'POST /users/{id}/password-reset');
    my $tok = $r->{json}{reset_token};
    like($tok, qr/^msgrpwt_/, 'a reset token');
    my $t = session('pat@alpha.example', $cur);
    is(call(POST => "/password-tokens/$tok", undef,
            { password => 'reset password' })->{status}, 200,
       'the reset token sets the password');
    is(call(GET => '/me', $t)->{status}, 401,
       'a reset ends the user\'s sessions');
    type_is(call(POST => "/password-tokens/$tok", undef,
                 { password => 'reset again' }), 404, 'token-unusable',
            'a reset token is used once');
    is(sign_in('pat@alpha.example', 'reset password')->{status}, 201,
       'the new password signs in');
    $cur = 'reset password';

    $r = call(POST => "/users/$pat->{id}/password-reset", $a_admin);
    $pg->psql("UPDATE msgr_password_tokens SET created_at = created_at"
              . " - interval '61 minutes', expires_at = expires_at"
              . " - interval '61 minutes' WHERE user_id = $pat->{id}");
    type_is(call(POST => "/password-tokens/$r->{json}{reset_token}", undef,
                 { password => 'late reset' }), 404, 'token-unusable',
            'a reset token after an hour');

    my $r1 = call(POST => "/users/$pat->{id}/password-reset", $a_admin);
    my $r2 = call(POST => "/users/$pat->{id}/password-reset", $a_admin);
    type_is(call(POST => "/password-tokens/$r1->{json}{reset_token}", undef,
                 { password => 'superseded' }), 404, 'token-unusable',
            'a newer reset token replaces the older');
    is(call(POST => "/users/999999/password-reset", $a_admin)->{status},
       404, 'a reset of no user');
}


# ---------------------------------------------------------------------------
# ETag, If-Match and the last admin

{
    my $g = call(GET => "/users/$admin->{id}", $a_admin);
    my $etag = $g->{headers}{etag};
    like($etag, qr/^"\d+"$/, 'GET /users/{id}: an ETag');

    my $r = call(PATCH => "/users/$admin->{id}", $a_admin,
                 { role => 'staff' });
    type_is($r, 409, 'last-admin', 'the last admin may not be demoted');
    $r = call(PATCH => "/users/$admin->{id}", $a_admin,
              { disabled => JSON::PP::true });
    type_is($r, 409, 'last-admin', 'the last admin may not be disabled');
    $r = call(DELETE => "/users/$admin->{id}", $a_admin);
    type_is($r, 409, 'last-admin', 'the last admin may not be removed');

    $r = call(PATCH => "/users/$pat->{id}", $a_admin, { role => 'admin' },
              'If-Match' => '"1"');
    is($r->{status}, 412, 'If-Match of another version: 412');
    my $pe = call(GET => "/users/$pat->{id}", $a_admin)->{headers}{etag};
    $r = call(PATCH => "/users/$pat->{id}", $a_admin, { role => 'admin' },
              'If-Match' => $pe);
    is($r->{json}{role}, 'admin', 'If-Match of this version: changed');
    isnt($r->{headers}{etag}, $pe, 'a new ETag');

    $r = call(PATCH => "/users/$admin->{id}", $a_admin, { role => 'staff' });
    is($r->{status}, 200, 'with another admin, one may be demoted');
    $r = call(PATCH => "/users/$pat->{id}", $a_admin,
              { email => 'STAFF@alpha.example' });
    type_is($r, 409, 'conflict', 'an email taken, whatever its case');
    type_is(call(DELETE => "/users/$pat->{id}", $a_admin), 409,
            'last-admin', 'now pat is the last admin');
}


# ---------------------------------------------------------------------------
# a disabled user's sessions are refused at once, on every worker

{
    my $u = user('gone@alpha.example', 'staff', 'gone password');
    my $t = session('gone@alpha.example', 'gone password');
    my $clients = worker_clients($ngx, $t, "$V/me");
    is(scalar keys %$clients, 2, 'a client on each worker');

    my $r = call(PATCH => "/users/$u->{id}", $a_admin,
                 { disabled => JSON::PP::true });
    ok($r->{status} == 200 && $r->{json}{disabled}, 'disabled');
    for my $pid (sort keys %$clients) {
        my ($st) = ua_status($ngx, $clients->{$pid}, GET => "$V/me", $t);
        is($st, 401, "worker $pid refuses the session at once");
    }
    type_is(sign_in('gone@alpha.example', 'gone password'), 401,
            'sign-in-failed', 'a disabled user may not sign in');
    my $list = get_json($a_admin, "$V/users/$u->{id}/sign-ins");
    ok(scalar @{ $list->{items} } >= 2, 'a disabled user keeps the history');

    $r = call(PATCH => "/users/$u->{id}", $a_admin,
              { disabled => JSON::PP::false });
    is(sign_in('gone@alpha.example', 'gone password')->{status}, 201,
       'enabled again: signs in');
    is(call(DELETE => "/users/$u->{id}", $a_admin)->{status}, 204,
       'DELETE /users/{id}');
    is(call(GET => "/users/$u->{id}", $a_admin)->{status}, 404, 'gone');
}

Msgr::Test::finish();
