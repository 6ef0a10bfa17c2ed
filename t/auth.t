#!/usr/bin/perl
# API keys: who gets in, who gets 401, revocation, and tenancy (a key sees
# its own school only).  Plus the router's 404 and 405.

use strict;
use warnings;
use Test::More;
use lib 't/lib';
use Msgr::Test;

my $pg   = Msgr::Test::pg_start();
my $a_id = Msgr::Test::school($pg, 'Alpha School');
my $b_id = Msgr::Test::school($pg, 'Beta School');
my $akey = Msgr::Test::key($pg, $a_id, 'admin');
my $bkey = Msgr::Test::key($pg, $b_id, 'admin');
my $ngx  = Msgr::Test::nginx_start($pg,
    location => '    add_header X-Worker $pid always;');
my @WORKERS = sort $ngx->worker_pids;

isnt($a_id, $b_id, 'two schools');

sub unauthorized {
    my ($name, %o) = @_;
    my $r = $ngx->req(GET => '/msgr/v1/school', %o);
    Msgr::Test::problem_ok($r, 401, "$name: 401 problem+json");
    like($r->{headers}{'www-authenticate'} // '', qr/^Bearer\b/,
         "$name: WWW-Authenticate: Bearer");
    ok(!(ref $r->{json} && exists $r->{json}{name}),
       "$name: no school data");
    return $r;
}

my ($a_kid, $a_secret) = $akey =~ /^msgr_\d+_([0-9a-f]{16})_(.{43})$/
    or BAIL_OUT("unexpected key format: $akey");

# --- 401 -------------------------------------------------------------------

unauthorized('no Authorization header');
unauthorized('Basic scheme',
             headers => { Authorization => 'Basic YWRtaW46c2VjcmV0' });
unauthorized('a valid key under a non-Bearer scheme',
             headers => { Authorization => "Token $akey" });
unauthorized('Bearer with no key', headers => { Authorization => 'Bearer' });
unauthorized('a malformed key', key => 'not-a-key');
unauthorized('a key with a short secret', key => substr($akey, 0, -1));
unauthorized('a key with a non-hex key id',
             key => "msgr_${a_id}_zzzzzzzzzzzzzzzz_$a_secret");

{
    (my $wrong = $a_secret) =~ s/^(.)/$1 eq 'A' ? 'B' : 'A'/e;
    unauthorized('a well-formed key with a wrong secret',
                 key => "msgr_${a_id}_${a_kid}_$wrong");
}

unauthorized('a key of an unknown key id',
             key => "msgr_${a_id}_0123456789abcdef_$a_secret");

unauthorized("school A's key id and secret under school B's number",
             key => "msgr_${b_id}_${a_kid}_$a_secret");

# --- a valid key -----------------------------------------------------------

{
    my $r = $ngx->req(GET => '/msgr/v1/school', key => $akey);
    Msgr::Test::json_ok($r, 200, 'admin key of A: GET /school 200');
    is($r->{json}{id}, $a_id, 'A sees its own id');
    ok(Msgr::Test::is_json_number($r->{json}{id}), 'the id is a JSON number');
    is($r->{json}{name}, 'Alpha School', 'A sees its own name');

    $r = $ngx->req(GET => '/msgr/v1/school', key => $bkey);
    Msgr::Test::json_ok($r, 200, 'admin key of B: GET /school 200');
    is($r->{json}{id}, $b_id, 'B sees its own id');
    is($r->{json}{name}, 'Beta School', 'B sees its own name');
}

# --- tenancy ---------------------------------------------------------------

{
    my $r = $ngx->req(GET => "/msgr/v1/schools/$a_id", key => $akey);
    Msgr::Test::json_ok($r, 200, "A's key: GET /schools/<A> 200");
    is($r->{json}{id}, $a_id, "A's key: /schools/<A> is A");
    is($r->{json}{name}, 'Alpha School', "A's key: /schools/<A> name");

    $r = $ngx->req(GET => "/msgr/v1/schools/$a_id", key => $bkey);
    Msgr::Test::problem_ok($r, 404, "B's key: GET /schools/<A> 404");
    unlike($r->{content}, qr/Alpha/, "B's key: nothing of A's leaks");

    $r = $ngx->req(GET => "/msgr/v1/schools/$b_id", key => $akey);
    Msgr::Test::problem_ok($r, 404, "A's key: GET /schools/<B> 404");
    unlike($r->{content}, qr/Beta/, "A's key: nothing of B's leaks");

    $r = $ngx->req(GET => '/msgr/v1/schools/999999', key => $akey);
    Msgr::Test::problem_ok($r, 404, 'GET /schools/<no such id> 404');
}

# --- revocation ------------------------------------------------------------

{
    my $ckey = Msgr::Test::key($pg, $a_id, 'admin');
    my $ckid = Msgr::Test::key_id($ckey);

    # Statuses of GETs on fresh connections, until every worker has
    # answered 10: { worker pid => [statuses] }.
    my $by_worker = sub {
        my %by;
        for (1 .. 300) {
            my $r = $ngx->req(GET => '/msgr/v1/school', key => $ckey);
            push @{ $by{ $r->{headers}{'x-worker'} // '?' } }, $r->{status};
            last unless grep { @{ $by{$_} || [] } < 10 } @WORKERS;
        }
        return \%by;
    };
    my $all = sub {
        my ($by, $status) = @_;
        return { map { $_ => [ ($status) x @{ $by->{$_} } ] } keys %$by };
    };

    # used on many connections first, so every worker has seen it
    my $by = $by_worker->();
    is_deeply([ sort keys %$by ], \@WORKERS,
              "a new key: every worker (@WORKERS) answered");
    is_deeply($by, $all->($by, 200), 'a new key works on every worker');

    my ($rc, $out, $err) = Msgr::Test::msgrctl($pg, 'key', 'revoke', $ckid);
    is($rc, 0, 'msgrctl key revoke exits 0') or diag("$out$err");
    is($pg->psql("SELECT revoked_at IS NOT NULL FROM msgr_api_keys"
                 . " WHERE key_id = '$ckid'"), 't', 'the key is revoked');

    unauthorized('a revoked key, the very next request', key => $ckey);

    $by = $by_worker->();
    is_deeply([ sort keys %$by ], \@WORKERS,
              "the revoked key: every worker (@WORKERS) answered");
    is_deeply($by, $all->($by, 401), 'the revoked key fails on every worker');

    my $r = $ngx->req(GET => '/msgr/v1/school', key => $akey);
    is($r->{status}, 200, "revoking one key leaves the school's others alone");
}

# --- router ----------------------------------------------------------------

{
    my $r = $ngx->req(GET => '/msgr/v1/no-such-route', key => $akey);
    Msgr::Test::problem_ok($r, 404, 'an unknown route: 404 problem+json');

    $r = $ngx->req(DELETE => '/msgr/v1/health');
    Msgr::Test::problem_ok($r, 405, 'DELETE /health: 405 problem+json');
    like($r->{headers}{allow} // '', qr/\bGET\b/,
         'DELETE /health: Allow names GET');
    unlike($r->{headers}{allow} // '', qr/\bDELETE\b/,
           'DELETE /health: Allow does not name DELETE');
}

Msgr::Test::finish();
