#!/usr/bin/perl

# Input, one rule everywhere: query parameters and the conditional headers
# are checked once, before any route (invalid UTF-8 or a NUL is a 400
# naming the parameter, never a 500 from PostgreSQL nor a search cut
# short); and text fields are held to the one rule of src/msgr_text.c
# (trimmed, no control characters in single-line fields, line breaks only
# in multi-line text, not blank where required, lengths in characters)
# by every route that takes them, with the MIS sync's wording.

use strict;
use warnings;
use utf8;

use IO::Socket::INET;
use JSON::PP;
use Test::More;

use lib 't/lib';
use Msgr::Test;
use Msgr::Test::API qw($J $T use_nginx get json_req);

binmode(Test::More->builder->$_, ':encoding(UTF-8)')
    for qw(output failure_output todo_output);

my $V = '/msgr/v1';

my $CONTROL    = 'must not contain control characters';
my $CONTROL_ML = 'must not contain control characters other than line '
               . 'breaks and tabs';
my $EMPTY      = 'must not be empty';
my $UTF8       = 'must be valid UTF-8';
my $NUL        = 'must not contain NUL characters';
my $LANGUAGE   = 'must be a language tag of 2 to 8 letters and -, such as '
               . 'en or pt-BR';

my $pg  = Msgr::Test::pg_start();
my $A   = Msgr::Test::school($pg, 'Alpha Academy');
my $adm = Msgr::Test::key($pg, $A, 'admin');
my $int = Msgr::Test::key($pg, $A, 'integrator');
my $ngx = Msgr::Test::nginx_start($pg);
use_nginx($ngx, prefix => $V);


# ---------------------------------------------------------------------------
# helpers

# requests with a JSON body (see Msgr::Test::API::json_req)
sub req { json_req(@_) }

# a body for a test's name, cut short
sub show {
    my $s = $J->encode($_[0]);
    return length $s > 50 ? substr($s, 0, 47) . '...' : $s;
}

# A request written by hand, for header bytes HTTP::Tiny will not send.
sub raw_req {
    my ($method, $path, $key, $body, %h) = @_;
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                                  PeerPort => $ngx->port, Proto => 'tcp',
                                  Timeout => 10)
        or die "connect: $!";
    $body = defined $body ? $J->encode($body) : '';
    my $req = "$method $V$path HTTP/1.0\r\nHost: 127.0.0.1\r\n"
            . "Authorization: Bearer $key\r\n";
    $req .= "Content-Type: application/json\r\n"
          . 'Content-Length: ' . length($body) . "\r\n" if length $body;
    $req .= "$_: $h{$_}\r\n" for sort keys %h;
    print $s "$req\r\n$body";
    local $/;
    my $res = <$s> // '';
    close $s;
    my ($head, $content) = split /\r\n\r\n/, $res, 2;
    my ($status) = ($head // '') =~ m{^HTTP/1\.\d (\d+)};
    my %hdr = map { /^([^:]+):\s*(.*)$/ ? (lc $1 => $2) : () }
              split /\r\n/, $head // '';
    my $r = { status => $status // 0, headers => \%hdr,
              content => $content // '' };
    $r->{json} = eval { $J->decode($r->{content}) }
        if ($hdr{'content-type'} // '') =~ /json/;
    return $r;
}

# A problem of that status whose errors are exactly [field, message] pairs.
sub problem_is {
    my ($r, $status, $want, $name) = @_;
    local $Test::Builder::Level = $Test::Builder::Level + 1;
    Msgr::Test::problem_ok($r, $status, "$name: $status problem+json")
        or return;
    my $errs = ref $r->{json} eq 'HASH' ? $r->{json}{errors} : undef;
    my @got = map { [ $_->{field}, $_->{message} ] }
              @{ ref $errs eq 'ARRAY' ? $errs : [] };
    is_deeply(\@got, $want, "$name: " . join('; ', map { "$_->[0] $_->[1]" }
                                                  @$want))
        or diag("body: $r->{content}");
}

sub json_is {
    my ($r, $status, $name) = @_;
    local $Test::Builder::Level = $Test::Builder::Level + 1;
    return Msgr::Test::json_ok($r, $status, $name);
}

sub sync {
    my ($snap) = @_;
    return req(POST => '/mis/sync', $int, $snap);
}

sub snapshot {
    my (%contact) = @_;
    return {
        default_country => 'GB',
        students => [
            { mis_id => 'S1', first_name => 'Amy', last_name => 'Jones',
              reg_group => '7B', year => '7', status => 'on_roll',
              contacts => [ { mis_id => 'C1', relationship => 'Mother',
                              priority => 1, correspondence => $T } ] },
        ],
        contacts => [
            { mis_id => 'C1', title => 'Mrs', first_name => 'Jane',
              last_name => 'Jones', mobile_phone => '07700 900123',
              email => 'jane@example.org', %contact },
        ],
        staff  => [],
        groups => [],
    };
}

# the message the MIS sync gives for one field of contact C1
sub sync_message {
    my ($field, $value) = @_;
    my $r = sync(snapshot($field => $value));
    return undef if $r->{status} == 200;
    my ($e) = grep { ($_->{field} // '') =~ /\b\Q$field\E$/ }
              @{ ($r->{json} || {})->{errors} || [] };
    return $e ? $e->{message} : "($r->{status} $r->{content})";
}

my $r = sync(snapshot());
json_is($r, 200, 'the MIS sync: one family');
$r = get($adm, '/contacts?limit=200');
my ($C1) = map { $_->{id} } @{ $r->{json}{items} || [] };
$r = get($adm, '/students?limit=200');
my ($S1) = map { $_->{id} } @{ $r->{json}{items} || [] };
ok($C1 && $S1, 'the contact and the student have ids');


# ---------------------------------------------------------------------------
# query parameters: every route, at the edge

for my $c (
    [ '/contacts?q=%ff', 'q', $UTF8, 'a search for 0xff' ],
    [ '/contacts?q=caf%c3', 'q', $UTF8, 'a search cut inside a character' ],
    [ '/contacts?q=Jo%00nes', 'q', $NUL, 'a search with a NUL' ],
    [ '/incoming?topic=%c3', 'topic', $UTF8, 'an inbox topic of 0xc3' ],
    [ '/incoming?topic=Lunch%00', 'topic', $NUL, 'an inbox topic with NUL' ],
    [ '/students?q=%ed%a0%80', 'q', $UTF8, 'a surrogate' ],
    [ '/contacts?%ff=1', 'query', $UTF8, 'a parameter name of 0xff' ],
    [ '/contacts?limit=10&q=ok&q=%ff', 'q', $UTF8,
      'the second of two parameters of a name' ],
    [ '/health?x=%c0%af', 'x', $UTF8, 'an overlong form, on a public route' ],
) {
    my ($path, $field, $message, $what) = @$c;
    problem_is(get($adm, $path), 400, [ [ $field, $message ] ],
               "GET $path ($what)");
}

$r = get($adm, '/contacts?q=Jon%C3%A9s');
json_is($r, 200, 'a search in valid UTF-8 still works');
$r = get($adm, '/contacts?q=Jones');
is(scalar @{ ($r->{json} || {})->{items} || [] }, 1, 'and finds');

# a body is read after the query: a bad query is refused whatever the body
$r = req(POST => "/contacts/$C1/app-tokens?note=%ff", $adm, { label => 'x' });
problem_is($r, 400, [ [ 'note', $UTF8 ] ], 'POST with a bad query string');
is($pg->psql('SELECT count(*) FROM msgr_app_tokens'), 0,
   'nothing written by it');


# ---------------------------------------------------------------------------
# conditional headers

$r = req(POST => '/contact-attributes', $adm, { name => 'Bus route' });
json_is($r, 201, 'an attribute to edit');
my $attr = ($r->{json} || {})->{id};

for my $c (
    [ "PATCH", "/contact-attributes/$attr", { default_value => 'x' },
      'If-Match', "\"\xff\"" ],
    [ "PATCH", "/contacts/$C1", { title => 'Dr' }, 'If-Match', "\"\xc3\"" ],
    [ "GET", "/contact-attributes/$attr", undef, 'If-None-Match',
      "\"\xff\"" ],
    [ "PATCH", "/contact-attributes/$attr", { default_value => 'x' },
      'If-Match', "\"1\x01\"" ],
) {
    my ($method, $path, $body, $h, $v) = @$c;
    $r = raw_req($method, $path, $adm, $body, $h => $v);
    problem_is($r, 400, [ [ $h, $v =~ /\x01/ ? $CONTROL : $UTF8 ] ],
               "$method $path with a bad $h");
}
$r = get($adm, "/contact-attributes/$attr");
is(($r->{json} || {})->{default_value}, '', 'the attribute is unchanged');

unlike($ngx->error_log, qr/PostgreSQL/,
       'PostgreSQL never saw any of it (nothing in the error log)');


# ---------------------------------------------------------------------------
# contact edits

{
    $r = req(PATCH => '/settings/contacts', $adm,
             { can_edit_imported_contacts => $T },
             type => 'application/merge-patch+json');
    json_is($r, 200, 'imported contacts may be edited');

    for my $c (
        [ { first_name => "Mrs Line1\nLine2\x{7}bell Jones" }, 'first_name',
          $CONTROL ],
        [ { last_name => "Jo\tnes" }, 'last_name', $CONTROL ],
        [ { title => "Dr\x{85}" }, 'title', $CONTROL ],
        [ { first_name => "   " }, 'first_name', $EMPTY ],
        [ { last_name => "\x{a0}\n" }, 'last_name', $EMPTY ],
        [ { first_name => 'é' x 101 }, 'first_name',
          'must be at most 100 characters' ],
        [ { title => 'x' x 51 }, 'title', 'must be at most 50 characters' ],
        [ { language => '-en' }, 'language', $LANGUAGE ],
        [ { language => 'en-' }, 'language', $LANGUAGE ],
    ) {
        my ($body, $field, $message) = @$c;
        problem_is(req(PATCH => "/contacts/$C1", $adm, $body), 422,
                   [ [ $field, $message ] ],
                   'PATCH contact ' . show($body));
    }

    $r = req(PATCH => "/contacts/$C1", $adm,
             { title => " Dr ", first_name => "\tKim\n",
               last_name => "\x{a0}Brown-Smith ", language => ' fr ',
               email => ' kim@example.org ' });
    json_is($r, 200, 'PATCH with white space at the ends: 200');
    my $j = $r->{json} || {};
    is_deeply([ @$j{qw(title first_name last_name language email)} ],
              [ 'Dr', 'Kim', 'Brown-Smith', 'fr', 'kim@example.org' ],
              'every field kept trimmed');
    is($j->{name}, 'Dr Kim Brown-Smith', 'and the name built of them');
}


# ---------------------------------------------------------------------------
# the MIS sync says the same

is(sync_message(first_name => "Line1\nLine2"), $CONTROL,
   'the MIS sync: a newline in a name, the same message');
is(sync_message(first_name => "   "), $EMPTY,
   'the MIS sync: a blank name, the same message');
is(sync_message(language => '-en'), $LANGUAGE,
   'the MIS sync: the same language rule and message');
is(sync_message(language => 'en-'), $LANGUAGE,
   'the MIS sync: a trailing - refused like the API refuses it');
is(sync_message(first_name => 'é' x 101), 'must be at most 100 characters',
   'the MIS sync: a long name, the same message');


# ---------------------------------------------------------------------------
# contact attributes

{
    for my $c (
        [ { name => "Bus\troute 2" }, 'name', $CONTROL ],
        [ { name => "Bus\nroute 2" }, 'name', $CONTROL ],
        [ { name => "  " }, 'name', $EMPTY ],
        [ { name => 'Club', default_value => "a\x{7f}" }, 'default_value',
          $CONTROL ],
        [ { name => 'Club', default_value => "one\ntwo" }, 'default_value',
          $CONTROL ],
    ) {
        my ($body, $field, $message) = @$c;
        problem_is(req(POST => '/contact-attributes', $adm, $body), 422,
                   [ [ $field, $message ] ],
                   'POST attribute ' . show($body));
    }

    $r = req(POST => '/contact-attributes', $adm,
             { name => ' Locker ', default_value => "  none\t" });
    json_is($r, 201, 'an attribute with white space at the ends: 201');
    is_deeply([ @{ $r->{json} || {} }{qw(name default_value)} ],
              [ 'Locker', 'none' ], 'name and default kept trimmed');
    my $locker = ($r->{json} || {})->{id};

    problem_is(req(PATCH => "/contact-attributes/$locker", $adm,
                   { name => "Lock\x{1b}[31mer" }), 422,
               [ [ 'name', $CONTROL ] ], 'PATCH a name with an escape');

    problem_is(req(PUT => "/contacts/$C1/attributes/$locker", $adm,
                   { value => "7\x{7}" }), 422,
               [ [ 'value', $CONTROL ] ], 'PUT a value with a bell');
    $r = req(PUT => "/contacts/$C1/attributes/$locker", $adm,
             { value => "  B7  " });
    ok($r->{status} == 200 || $r->{status} == 204,
       'PUT a value with spaces at the ends') or diag($r->{content});
    $r = get($adm, "/contacts/$C1/tokens");
    my $tokens = $J->encode($r->{json});
    like($tokens, qr/"B7"/, 'the value merges trimmed');
    unlike($tokens, qr/ B7|B7 |\\n|\\u0007/, 'and nothing else of it');
}


# ---------------------------------------------------------------------------
# the parents' app: labels, topics, push tokens, messages

my $app;
{
    problem_is(req(POST => "/contacts/$C1/app-tokens", $adm,
                   { label => "Mum\x{7}" }), 422,
               [ [ 'label', $CONTROL ] ], 'an app token label with a bell');
    $r = req(POST => "/contacts/$C1/app-tokens", $adm,
             { label => " Mum's phone " });
    json_is($r, 201, 'an app token');
    is(($r->{json} || {})->{label}, "Mum's phone", 'its label trimmed');
    $app = ($r->{json} || {})->{token};

    for my $c (
        [ [ "Ab\nsence" ], 'topics[0]', $CONTROL ],
        [ [ 'Lunch', "\t " ], 'topics[1]', $EMPTY ],
        [ [ 'x' x 101 ], 'topics[0]', 'must be at most 100 characters' ],
    ) {
        my ($topics, $field, $message) = @$c;
        problem_is(req(PUT => '/xpressions/topics', $adm,
                       { topics => $topics }), 422,
                   [ [ $field, $message ] ],
                   'PUT topics ' . show($topics));
    }
    $r = req(PUT => '/xpressions/topics', $adm,
             { topics => [ ' Absence ', 'Lunch' ] });
    json_is($r, 200, 'PUT topics');

    for my $c (
        [ "tok\n123", $CONTROL ],
        [ "   ", $EMPTY ],
        [ 'é' x 4097, 'must be at most 4096 characters' ],
    ) {
        problem_is(req(PUT => '/app/device', $app,
                       { platform => 'ios', push_token => $c->[0] }), 422,
                   [ [ 'push_token', $c->[1] ] ],
                   'PUT /app/device push_token ' . show($c->[0]));
    }
    $r = req(PUT => '/app/device', $app,
             { platform => 'ios', push_token => "  ExponentPushToken[x] \n" });
    json_is($r, 200, 'PUT /app/device');
    is(($r->{json} || {})->{push_token}, 'ExponentPushToken[x]',
       'the push token trimmed');

    $r = req(PATCH => '/settings/xpressions', $adm,
             { incoming_enabled => $T },
             type => 'application/merge-patch+json');
    json_is($r, 200, 'incoming messages on');

    my $n = $pg->psql('SELECT count(*) FROM msgr_incoming');
    for my $c (
        [ { body => '   ' }, 'body', $EMPTY ],
        [ { body => "\n\t\n" }, 'body', $EMPTY ],
        [ { body => "Hi\x{7}" }, 'body', $CONTROL_ML ],
        [ { body => "Hi\x{9b}there" }, 'body', $CONTROL_ML ],
        [ { topic => "Ab\nsence" }, 'topic', $CONTROL ],
        [ { topic => '  ' }, 'topic', $EMPTY ],
    ) {
        my ($over, $field, $message) = @$c;
        my $msg = { topic => 'Absence', body => 'Amy is ill',
                    student_id => $S1, %$over };
        problem_is(req(POST => '/app/messages', $app, $msg), 422,
                   [ [ $field, $message ] ],
                   'POST /app/messages ' . show($over));
    }
    is($pg->psql('SELECT count(*) FROM msgr_incoming'), $n,
       'none of them stored');

    $r = req(POST => '/app/messages', $app,
             { topic => ' Absence ', student_id => $S1,
               body => "\n  Amy is ill.\r\n\tBack on Monday.  \n" });
    json_is($r, 201, 'a message of two lines, white space at the ends');
    is(($r->{json} || {})->{body}, "Amy is ill.\r\n\tBack on Monday.",
       'its body trimmed, the line breaks and tab inside kept');
    is(($r->{json} || {})->{topic}, 'Absence', 'its topic trimmed');
}

Msgr::Test::finish();
