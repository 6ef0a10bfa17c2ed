#!/usr/bin/perl

# Contact attributes, the school's own merge tokens, through the API:
# create, list, names unique per school whatever their case, rename and a
# new default, the built-in token names refused, validation, roles, delete
# one and several (all or nothing), a contact's own value and back to the
# default, GET /v1/contacts/{id}/tokens, and another school's ids.

use strict;
use warnings;
use utf8;

use JSON::PP;
use Test::More;

use lib 't/lib';
use Msgr::Test;
use Msgr::Test::API;

binmode(Test::More->builder->$_, ':encoding(UTF-8)')
    for qw(output failure_output todo_output);

my $V  = '/msgr/v1';
my $CA = "$V/contact-attributes";

my $pg = Msgr::Test::pg_start();

my ($A, $B, $a_admin, $a_staff, $a_int, $b_admin, $b_int)
    = two_schools($pg);

# A rename to a name the school has already is answered 409, and is not an
# error worth logging.
my $DUP_LOG = qr/violates unique constraint "msgr_contact_attributes_name"/;

my $ngx = Msgr::Test::nginx_start($pg, workers => 2);
use_nginx($ngx);


# ---------------------------------------------------------------------------
# helpers

sub req {
    my ($method, $key, $path, $body) = @_;
    my %o = (key => $key);
    if (defined $body) {
        $o{body} = ref $body ? $J->encode($body) : $body;
        $o{headers} = { 'Content-Type' => 'application/json' };
    }
    return $ngx->req($method => $path, %o);
}

sub list { get_json($_[0] // $a_admin, $CA)->{items} }

sub names { [ map { $_->{name} } @{ list($_[0]) } ] }

sub tokens { get_json($_[0] // $a_admin, "$V/contacts/$_[1]/tokens") }

sub no_content_ok {
    my ($r, $name) = @_;
    local $Test::Builder::Level = $Test::Builder::Level + 1;
    is($r->{status}, 204, "$name: 204") or diag($r->{content});
    is($r->{content}, '', "$name: no body");
}


# ---------------------------------------------------------------------------
# the fixture: Jane Jones, the mother of Amy and Ben; Sam White, the carer
# of Cal, Dee and Eve; Ola Ode, nobody's contact

sub base {
    my ($prefix) = @_;
    $prefix //= '';
    my $l = sub { { mis_id => $_[0], priority => $_[1],
                    relationship => 'Mother' } };
    return {
        students => [
            { mis_id => 'S1', first_name => "${prefix}Amy",
              last_name => 'Jones', status => 'on_roll', reg_group => '7B',
              contacts => [ $l->('C1', 1) ] },
            { mis_id => 'S2', first_name => "${prefix}Ben",
              last_name => 'Jones', status => 'on_roll', reg_group => '8C',
              contacts => [ $l->('C1', 1) ] },
            { mis_id => 'S3', first_name => 'Cal', last_name => 'White',
              status => 'on_roll', contacts => [ $l->('C2', 1) ] },
            { mis_id => 'S4', first_name => 'Dee', last_name => 'White',
              status => 'on_roll', contacts => [ $l->('C2', 2) ] },
            { mis_id => 'S5', first_name => 'Eve', last_name => 'White',
              status => 'on_roll', contacts => [ $l->('C2', 3) ] },
        ],
        contacts => [
            { mis_id => 'C1', title => 'Mrs', first_name => "${prefix}Jane",
              last_name => 'Jones', email => 'jane@example.org' },
            { mis_id => 'C2', first_name => 'Sam', last_name => 'White',
              mobile_phone => '07700 900222' },
            { mis_id => 'C3', title => 'Dr', first_name => 'Ola',
              last_name => 'Ode' },
        ],
        staff => [],
        groups => [],
    };
}

sync_json($a_int, base());
sync_json($b_int, base('B'));

sub contact_ids {
    my ($key) = @_;
    my $j = get_json($key, "$V/contacts?limit=200");
    return { map { $_->{mis_id} => $_->{id} } @{ $j->{items} } };
}

my $AC = contact_ids($a_admin);
my $BC = contact_ids($b_admin);
my ($jane, $sam, $ola) = @$AC{qw(C1 C2 C3)};


# ---------------------------------------------------------------------------
# create and list

is_deeply(get_json($a_staff, $CA), { items => [] },
          'no attributes at first: {"items": []}');

my %ATTR;

{
    my $r = req(POST => $a_admin, $CA,
                { name => 'Head of Year 7', default_value => 'Miss Smith' });
    Msgr::Test::json_ok($r, 201, 'POST Head of Year 7: 201');
    my $j = $r->{json} || {};
    ok(Msgr::Test::is_json_number($j->{id}), 'it has an id');
    is($j->{name}, 'Head of Year 7', 'its name');
    is($j->{default_value}, 'Miss Smith', 'its default');
    like($j->{created_at} // '', qr/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/,
         'created_at in RFC 3339, UTC');
    is_deeply([ sort keys %$j ], [qw(created_at default_value id name)],
              'the fields of docs/api.md');
    $ATTR{hoy} = $j;

    $r = req(POST => $a_admin, $CA, { name => 'Trip date' });
    Msgr::Test::json_ok($r, 201, 'POST Trip date without a default: 201');
    is($r->{json}{default_value}, '', 'the default is ""');
    $ATTR{trip} = $r->{json};

    $r = req(POST => $a_admin, $CA,
             { name => 'after school club', default_value => 'Chess' });
    Msgr::Test::json_ok($r, 201, 'POST after school club: 201');
    $ATTR{club} = $r->{json};

    is_deeply(names($a_staff),
              ['after school club', 'Head of Year 7', 'Trip date'],
              'listed by name, whatever the case (staff key)');
    is_deeply(list($a_int), [ $ATTR{club}, $ATTR{hoy}, $ATTR{trip} ],
              'the list has what POST answered (integrator key)');
}

# unique per school, compared without case
{
    my $before = list();
    for my $n ('Head of Year 7', 'head of year 7', 'HEAD OF YEAR 7',
               'Trip Date')
    {
        my $r = req(POST => $a_admin, $CA, { name => $n,
                                             default_value => 'x' });
        errors_ok($r, 409, ['name'], "POST \"$n\" again");
    }
    is_deeply(list(), $before, 'the refused names changed nothing');
}

# the built-in tokens
for my $n (qw(name title first_name last_name student_names
              student_first_names Name STUDENT_NAMES))
{
    my $r = req(POST => $a_admin, $CA, { name => $n, default_value => 'x' });
    errors_ok($r, 422, ['name'], "POST the built-in token \"$n\"");
}

# validation
{
    my $before = list();
    for my $c (
        [ { default_value => 'x' }, ['name'], 'no name' ],
        [ { name => '' }, ['name'], 'an empty name' ],
        [ { name => 'x' x 101 }, ['name'], 'a name of 101 characters' ],
        [ { name => 'Head {of} Year' }, ['name'], 'a name with { }' ],
        [ { name => 'Head }' }, ['name'], 'a name with }' ],
        [ { name => 42 }, ['name'], 'a name that is a number' ],
        [ { name => undef }, ['name'], 'a null name' ],
        [ { name => 'Fine', default_value => 'x' x 1001 },
          ['default_value'], 'a default of 1001 characters' ],
        [ { name => 'Fine', default_value => 7 }, ['default_value'],
          'a default that is a number' ],
        [ { name => 'Fine', colour => 'red' }, ['colour'],
          'an unknown field' ],
        [ { name => '', default_value => [], id => 3 },
          [qw(name default_value id)], 'three bad fields' ],
    ) {
        my ($body, $fields, $what) = @$c;
        errors_ok(req(POST => $a_admin, $CA, $body), 422, $fields,
                  "POST $what");
    }
    Msgr::Test::problem_ok(req(POST => $a_admin, $CA, '[]'), 422,
                           'POST []: 422');
    # a lone scalar is refused by the JSON parser
    for my $body ('"name"', 'null') {
        Msgr::Test::problem_ok(req(POST => $a_admin, $CA, $body), 400,
                               "POST $body: 400");
    }
    Msgr::Test::problem_ok(req(POST => $a_admin, $CA, '{"name": "x"'), 400,
                           'POST malformed JSON: 400');
    is_deeply(list(), $before, 'the refused attributes changed nothing');

    # the limits themselves are fine, counted in characters
    my $r = req(POST => $a_admin, $CA,
                { name => 'n' x 100, default_value => 'd' x 1000 });
    Msgr::Test::json_ok($r, 201, 'a name of 100 and a default of 1000: 201');
    $ATTR{long} = $r->{json};
    $r = req(POST => $a_admin, $CA, { name => 'Année 7 — tutor',
                                      default_value => 'Mme Lefèvre' });
    Msgr::Test::json_ok($r, 201, 'a name with accents and a dash: 201');
    $ATTR{annee} = $r->{json};
    is($r->{json}{name}, 'Année 7 — tutor', 'the accented name kept');
    is($r->{json}{default_value}, 'Mme Lefèvre', 'the accented default kept');

    # docs/api.md: names are 1-100 characters; the default at most 1000
    $r = req(POST => $a_admin, $CA,
             { name => 'é' x 100, default_value => 'é' x 1000 });
    {
        Msgr::Test::json_ok($r, 201, 'a name of 100 "é" and a default of '
                                     . '1000 "é": 201');
    }
    if ($r->{status} == 201) {
        is($r->{json}{name}, 'é' x 100, 'the name of 100 "é" kept');
        no_content_ok(req(DELETE => $a_admin, "$CA/$r->{json}{id}"),
                      'and deleted again');
    }
    for my $c ([ { name => 'é' x 101 }, ['name'], '101 "é"' ],
               [ { name => 'Fine', default_value => 'é' x 1001 },
                 ['default_value'], 'a default of 1001 "é"' ])
    {
        errors_ok(req(POST => $a_admin, $CA, $c->[0]), 422, $c->[1],
                  "POST a name of $c->[2]");
    }
    $r = req(PATCH => $a_admin, "$CA/$ATTR{annee}{id}",
             { default_value => 'ü' x 600 });
    {
        Msgr::Test::json_ok($r, 200, 'PATCH a default of 600 "ü": 200');
    }
    req(PATCH => $a_admin, "$CA/$ATTR{annee}{id}",
        { default_value => 'Mme Lefèvre' });
}

# roles
for my $k ([ staff => $a_staff ], [ integrator => $a_int ]) {
    my ($who, $key) = @$k;
    my $before = list();
    Msgr::Test::problem_ok(req(POST => $key, $CA, { name => 'Nope' }), 403,
                           "$who key: POST 403");
    Msgr::Test::problem_ok(req(PATCH => $key, "$CA/$ATTR{hoy}{id}",
                               { name => 'Nope' }), 403,
                           "$who key: PATCH 403");
    Msgr::Test::problem_ok(req(DELETE => $key, "$CA/$ATTR{hoy}{id}"), 403,
                           "$who key: DELETE 403");
    Msgr::Test::problem_ok(req(DELETE => $key, "$CA?id=$ATTR{hoy}{id}"), 403,
                           "$who key: bulk DELETE 403");
    is_deeply(list(), $before, "$who key: nothing changed");
}
Msgr::Test::problem_ok(req(GET => undef, $CA), 401, 'no key: 401');


# ---------------------------------------------------------------------------
# rename and a new default

{
    my $id = $ATTR{hoy}{id};
    my $r = req(PATCH => $a_admin, "$CA/$id",
                { name => 'Head of Year Seven' });
    Msgr::Test::json_ok($r, 200, 'PATCH a new name: 200');
    is($r->{json}{name}, 'Head of Year Seven', 'the new name');
    is($r->{json}{default_value}, 'Miss Smith', 'the default kept');
    is($r->{json}{id}, $id, 'the same id');
    is($r->{json}{created_at}, $ATTR{hoy}{created_at}, 'created_at kept');

    $r = req(PATCH => $a_admin, "$CA/$id", { default_value => 'Mr Brown' });
    Msgr::Test::json_ok($r, 200, 'PATCH a new default: 200');
    is($r->{json}{name}, 'Head of Year Seven', 'the name kept');
    is($r->{json}{default_value}, 'Mr Brown', 'the new default');

    $r = req(PATCH => $a_admin, "$CA/$id",
             { name => 'HEAD of Year Seven', default_value => 'Mrs Green' });
    Msgr::Test::json_ok($r, 200, 'PATCH both, its own name in another case');
    is($r->{json}{name}, 'HEAD of Year Seven', 'the name in the new case');
    is($r->{json}{default_value}, 'Mrs Green', 'and the default');
    $ATTR{hoy} = $r->{json};

    my ($in_list) = grep { $_->{id} == $id } @{ list() };
    is_deeply($in_list, $ATTR{hoy}, 'the list shows the change');

    my $before = list();
    errors_ok(req(PATCH => $a_admin, "$CA/$id", { name => 'TRIP DATE' }),
              409, ['name'], 'PATCH to another attribute\'s name');
    {
        my @dup = grep { /\[error\]/ && $_ =~ $DUP_LOG }
                  split /\n/, $ngx->error_log;
        ok(!@dup, 'a rename refused with 409 is not logged as an [error]')
            or diag($dup[0]);
    }
    errors_ok(req(PATCH => $a_admin, "$CA/$id", { name => 'student_names' }),
              422, ['name'], 'PATCH to a built-in token');
    errors_ok(req(PATCH => $a_admin, "$CA/$id", { name => '{x}' }),
              422, ['name'], 'PATCH a name with { }');
    errors_ok(req(PATCH => $a_admin, "$CA/$id",
                  { default_value => 'x' x 1001 }),
              422, ['default_value'], 'PATCH a default too long');
    errors_ok(req(PATCH => $a_admin, "$CA/$id", { id => 9 }),
              422, ['id'], 'PATCH an unknown field');
    errors_ok(req(PATCH => $a_admin, "$CA/$id", {}),
              422, ['name'], 'PATCH nothing');
    errors_ok(req(PATCH => $a_admin, "$CA/$id",
                  { name => 'Fine name', default_value => undef }),
              422, ['default_value'], 'PATCH a null default');
    is_deeply(list(), $before, 'the refused edits changed nothing');

    for my $bad ('999999', '0', 'abc') {
        Msgr::Test::problem_ok(req(PATCH => $a_admin, "$CA/$bad",
                                   { name => 'Whatever' }),
                               404, "PATCH /contact-attributes/$bad: 404");
    }
}


# ---------------------------------------------------------------------------
# tokens, a contact's own value and back to the default

{
    my $hoy = $ATTR{hoy};
    my $j = tokens($a_int, $jane);
    is($j->{contact_id}, $jane, 'tokens: contact_id');
    my $t = $j->{tokens} || {};
    is($t->{title}, 'Mrs', 'tokens: title');
    is($t->{first_name}, 'Jane', 'tokens: first_name');
    is($t->{last_name}, 'Jones', 'tokens: last_name');
    is($t->{name}, 'Mrs Jane Jones', 'tokens: name');
    is($t->{student_names}, 'Amy Jones and Ben Jones',
       'tokens: student_names "Amy Jones and Ben Jones"');
    is($t->{student_first_names}, 'Amy and Ben',
       'tokens: student_first_names "Amy and Ben"');
    is($t->{'HEAD of Year Seven'}, 'Mrs Green',
       'tokens: the attribute\'s default');
    is($t->{'Trip date'}, '', 'tokens: an empty default');
    is($t->{'after school club'}, 'Chess', 'tokens: another default');
    is($t->{'n' x 100}, 'd' x 1000, 'tokens: the long one');
    is($t->{'Année 7 — tutor'}, 'Mme Lefèvre', 'tokens: the accented one');
    is_deeply([ sort keys %$t ],
              [ sort('title', 'first_name', 'last_name', 'name',
                     'student_names', 'student_first_names',
                     map { $_->{name} } @{ list() }) ],
              'tokens: the built-in ones and every attribute, no more');

    $t = tokens($a_staff, $sam)->{tokens};
    is($t->{name}, 'Sam White', 'tokens: a name without a title');
    is($t->{title}, '', 'tokens: no title is ""');
    is($t->{student_names}, 'Cal White, Dee White and Eve White',
       'tokens: three students "Cal White, Dee White and Eve White"');
    is($t->{student_first_names}, 'Cal, Dee and Eve',
       'tokens: "Cal, Dee and Eve"');

    $t = tokens($a_admin, $ola)->{tokens};
    is($t->{name}, 'Dr Ola Ode', 'tokens: Dr Ola Ode');
    is($t->{student_names}, '', 'tokens: nobody\'s contact: no names');

    # Jane's own value
    my $jane_hoy = "$V/contacts/$jane/attributes/$hoy->{id}";
    no_content_ok(req(PUT => $a_admin, $jane_hoy, { value => 'Mr Jones' }),
                  'PUT Jane\'s own value (admin key)');
    is(tokens($a_admin, $jane)->{tokens}{'HEAD of Year Seven'}, 'Mr Jones',
       'Jane\'s tokens have her own value');
    is(tokens($a_admin, $sam)->{tokens}{'HEAD of Year Seven'}, 'Mrs Green',
       'Sam\'s tokens still have the default');

    no_content_ok(req(PUT => $a_staff, $jane_hoy, { value => 'Ms Jones' }),
                  'PUT again (staff key): replaced');
    is(tokens($a_admin, $jane)->{tokens}{'HEAD of Year Seven'}, 'Ms Jones',
       'Jane\'s tokens have the new value');
    no_content_ok(req(PUT => $a_staff,
                      "$V/contacts/$sam/attributes/$ATTR{trip}{id}",
                      { value => '' }),
                  'PUT an empty value');
    no_content_ok(req(PUT => $a_staff,
                      "$V/contacts/$sam/attributes/$ATTR{club}{id}",
                      { value => 'x' x 1000 }),
                  'PUT a value of 1000 characters');
    is(tokens($a_admin, $sam)->{tokens}{'after school club'}, 'x' x 1000,
       'Sam\'s long value');

    # a new default does not touch a contact's own value
    req(PATCH => $a_admin, "$CA/$hoy->{id}", { default_value => 'Dr Who' });
    is(tokens($a_admin, $jane)->{tokens}{'HEAD of Year Seven'}, 'Ms Jones',
       'a new default: Jane keeps her own value');
    is(tokens($a_admin, $sam)->{tokens}{'HEAD of Year Seven'}, 'Dr Who',
       'a new default: Sam has it');

    # a rename carries the values along
    req(PATCH => $a_admin, "$CA/$hoy->{id}", { name => 'Head of Year 7' });
    $t = tokens($a_admin, $jane)->{tokens};
    is($t->{'Head of Year 7'}, 'Ms Jones', 'renamed: Jane\'s value follows');
    ok(!exists $t->{'HEAD of Year Seven'}, 'renamed: the old name is gone');

    # bad values
    my $path = "$V/contacts/$jane/attributes/$hoy->{id}";
    errors_ok(req(PUT => $a_admin, $path, {}), 422, ['value'], 'PUT {}');
    errors_ok(req(PUT => $a_admin, $path, { value => 5 }), 422, ['value'],
              'PUT a number');
    errors_ok(req(PUT => $a_admin, $path, { value => undef }), 422,
              ['value'], 'PUT null');
    errors_ok(req(PUT => $a_admin, $path, { value => 'x' x 1001 }), 422,
              ['value'], 'PUT 1001 characters');
    errors_ok(req(PUT => $a_admin, $path, { value => 'x', extra => 1 }),
              422, ['extra'], 'PUT an unknown field');
    Msgr::Test::problem_ok(req(PUT => $a_admin, $path, '{"value":'), 400,
                           'PUT malformed JSON: 400');
    Msgr::Test::problem_ok(req(PUT => $a_int, $path, { value => 'x' }), 403,
                           'PUT with an integrator key: 403');
    Msgr::Test::problem_ok(req(DELETE => $a_int, $path), 403,
                           'DELETE a value with an integrator key: 403');
    is(tokens($a_admin, $jane)->{tokens}{'Head of Year 7'}, 'Ms Jones',
       'the refused values changed nothing');

    for my $p ("$V/contacts/999999/attributes/$hoy->{id}",
               "$V/contacts/$jane/attributes/999999",
               "$V/contacts/abc/attributes/$hoy->{id}",
               "$V/contacts/$jane/attributes/0")
    {
        Msgr::Test::problem_ok(req(PUT => $a_admin, $p, { value => 'x' }),
                               404, "PUT $p: 404");
        Msgr::Test::problem_ok(req(DELETE => $a_admin, $p), 404,
                               "DELETE $p: 404");
    }

    # back to the default
    no_content_ok(req(DELETE => $a_staff, $path),
                  'DELETE Jane\'s own value (staff key)');
    is(tokens($a_admin, $jane)->{tokens}{'Head of Year 7'}, 'Dr Who',
       'Jane has the default again');
    no_content_ok(req(DELETE => $a_admin, $path),
                  'DELETE it again: still 204, nothing to drop');

    # local edits show in the tokens
    my $r = $ngx->req(PATCH => "$V/settings/contacts", key => $a_admin,
                      body => '{"can_edit_imported_contacts": true}',
                      headers => { 'Content-Type'
                                   => 'application/merge-patch+json' });
    Msgr::Test::json_ok($r, 200, 'can_edit_imported_contacts on');
    $r = req(PATCH => $a_admin, "$V/contacts/$jane",
             { first_name => 'Janet', title => 'Dr' });
    Msgr::Test::json_ok($r, 200, 'Jane edited to Dr Janet Jones');
    $t = tokens($a_admin, $jane)->{tokens};
    is($t->{name}, 'Dr Janet Jones', 'tokens: the edited name');
    is($t->{first_name}, 'Janet', 'tokens: the edited first name');

    # nobody's token for another school's contact
    Msgr::Test::problem_ok(req(GET => $b_admin, "$V/contacts/$jane/tokens"),
                           404, 'school B: A\'s contact\'s tokens 404');
    Msgr::Test::problem_ok(req(GET => $a_admin, "$V/contacts/999999/tokens"),
                           404, 'tokens of no contact: 404');
}


# ---------------------------------------------------------------------------
# another school

{
    is_deeply(list($b_admin), [], 'school B has no attributes');
    my $r = req(POST => $b_admin, $CA, { name => 'Head of Year 7',
                                         default_value => 'Mr Beta' });
    Msgr::Test::json_ok($r, 201, 'school B may use a name school A has');
    my $b_hoy = $r->{json};

    my $a_before = list();
    my $id = $ATTR{trip}{id};
    Msgr::Test::problem_ok(req(PATCH => $b_admin, "$CA/$id",
                               { name => 'Stolen' }), 404,
                           'school B PATCH A\'s attribute: 404');
    Msgr::Test::problem_ok(req(DELETE => $b_admin, "$CA/$id"), 404,
                           'school B DELETE A\'s attribute: 404');
    Msgr::Test::problem_ok(req(DELETE => $b_admin,
                               "$CA?id=$b_hoy->{id}&id=$id"), 404,
                           'school B bulk DELETE with A\'s attribute: 404');
    ok(scalar(grep { $_->{id} == $b_hoy->{id} } @{ list($b_admin) }),
       'and B\'s own attribute was not deleted either');
    Msgr::Test::problem_ok(req(PUT => $b_admin,
                               "$V/contacts/$BC->{C1}/attributes/$id",
                               { value => 'x' }), 404,
                           'school B PUT on A\'s attribute: 404');
    Msgr::Test::problem_ok(req(PUT => $b_admin,
                               "$V/contacts/$jane/attributes/$b_hoy->{id}",
                               { value => 'x' }), 404,
                           'school B PUT for A\'s contact: 404');
    Msgr::Test::problem_ok(req(PUT => $a_admin,
                               "$V/contacts/$BC->{C1}/attributes/$id",
                               { value => 'x' }), 404,
                           'school A PUT for B\'s contact: 404');
    Msgr::Test::problem_ok(req(DELETE => $b_admin,
                               "$V/contacts/$jane/attributes/$b_hoy->{id}"),
                           404,
                           'school B DELETE a value of A\'s contact: 404');
    is_deeply(list(), $a_before, 'school A\'s attributes untouched');

    my $t = tokens($b_int, $BC->{C1})->{tokens};
    is($t->{'Head of Year 7'}, 'Mr Beta', 'school B\'s tokens: its default');
    is($t->{name}, 'Mrs BJane Jones', 'school B\'s tokens: its contact');
    is($t->{student_names}, 'BAmy Jones and BBen Jones',
       'school B\'s tokens: its students');
    ok(!exists $t->{'Trip date'}, 'school B\'s tokens: none of A\'s');
    $t = tokens($a_admin, $jane)->{tokens};
    is($t->{'Head of Year 7'}, 'Dr Who', 'school A\'s tokens: its own');
}


# ---------------------------------------------------------------------------
# delete: one, then several at once, all or nothing

{
    # Sam has his own values for two attributes that go
    no_content_ok(req(PUT => $a_admin,
                      "$V/contacts/$sam/attributes/$ATTR{annee}{id}",
                      { value => 'M. Dupont' }), 'PUT Sam\'s Année value');

    no_content_ok(req(DELETE => $a_admin, "$CA/$ATTR{long}{id}"),
                  'DELETE one attribute');
    ok(!grep({ $_->{id} == $ATTR{long}{id} } @{ list() }),
       'it is not listed any more');
    ok(!exists tokens($a_admin, $jane)->{tokens}{'n' x 100},
       'nor in the tokens');
    Msgr::Test::problem_ok(req(DELETE => $a_admin, "$CA/$ATTR{long}{id}"),
                           404, 'DELETE it again: 404');
    Msgr::Test::problem_ok(req(DELETE => $a_admin, "$CA/999999"), 404,
                           'DELETE an attribute nobody has: 404');
    Msgr::Test::problem_ok(req(DELETE => $a_admin, "$CA/abc"), 404,
                           'DELETE /contact-attributes/abc: 404');

    my $before = list();
    for my $q ("id=$ATTR{club}{id}&id=999999",
               "id=999999&id=$ATTR{club}{id}",
               "id=$ATTR{club}{id},$ATTR{long}{id}",
               "id=$ATTR{club}{id}&id=$ATTR{annee}{id}&id=$ATTR{long}{id}")
    {
        my $r = req(DELETE => $a_admin, "$CA?$q");
        Msgr::Test::problem_ok($r, 404, "bulk DELETE ?$q: 404");
        is_deeply(list(), $before, "bulk DELETE ?$q: nothing deleted");
    }
    for my $q ('', 'id=', 'id=abc', "id=$ATTR{club}{id},x", 'id=0') {
        my $r = req(DELETE => $a_admin, "$CA" . ($q ne '' ? "?$q" : ''));
        Msgr::Test::problem_ok($r, 400, "bulk DELETE ?$q: 400");
        my @f = map { $_->{field} } @{ $r->{json}{errors} || [] };
        is_deeply(\@f, ['id'], "bulk DELETE ?$q: names id");
    }
    is_deeply(list(), $before, 'the refused deletes changed nothing');

    no_content_ok(req(DELETE => $a_admin,
                      "$CA?id=$ATTR{club}{id}&id=$ATTR{annee}{id}"),
                  'bulk DELETE ?id=&id=: both');
    my $extra = req(POST => $a_admin, $CA, { name => 'Extra' })->{json};
    no_content_ok(req(DELETE => $a_admin,
                      "$CA?id=$extra->{id},$ATTR{trip}{id}"
                      . "&id=$ATTR{trip}{id}"),
                  'bulk DELETE ?id=1,2&id=2: both, a repeat is fine');
    is_deeply(names(), ['Head of Year 7'], 'one attribute left');
    my $t = tokens($a_admin, $sam)->{tokens};
    my $builtin = qr/^(?:title|first_name|last_name|name|student_names
                        |student_first_names)$/x;
    is_deeply([ sort grep { $_ !~ $builtin } keys %$t ],
              ['Head of Year 7'],
              'Sam\'s tokens: the deleted attributes and his values are gone');
    is($pg->psql("SELECT count(*) FROM msgr_contact_attribute_values"
                 . " WHERE school_id = $A AND contact_id = $sam"), 0,
       'Sam\'s own values went with their attributes');

    # a deleted name may be used again
    my $r = req(POST => $a_admin, $CA, { name => 'TRIP DATE' });
    Msgr::Test::json_ok($r, 201, 'a deleted name may be used again');
    isnt($r->{json}{id}, $ATTR{trip}{id}, 'with a new id');
    is(tokens($a_admin, $sam)->{tokens}{'TRIP DATE'}, '',
       'Sam\'s old value did not come back with the name');

    is_deeply(names($b_admin), ['Head of Year 7'],
              'school B\'s attributes untouched by A\'s deletes');
}

# one attribute, its ETag, and If-Match on a change
{
    my $r = req(POST => $a_admin, $CA, { name => 'Concurrency Check',
                                         default_value => 'one' });
    Msgr::Test::json_ok($r, 201, 'POST an attribute for the ETag checks');
    my $id = $r->{json}{id};
    like($r->{headers}{etag} // '', qr/^"\d+"$/, 'POST answers with an ETag');

    $r = req(GET => $a_staff, "$CA/$id");
    Msgr::Test::json_ok($r, 200, 'GET one attribute (staff key): 200');
    is($r->{json}{default_value}, 'one', 'GET one attribute: its default');
    my $etag = $r->{headers}{etag};
    like($etag // '', qr/^"\d+"$/, 'GET one attribute: a strong ETag');

    $r = $ngx->req(PATCH => "$CA/$id", key => $a_admin,
                   body => $J->encode({ default_value => 'two' }),
                   headers => { 'Content-Type' => 'application/json',
                                'If-Match' => $etag });
    Msgr::Test::json_ok($r, 200, 'PATCH with the current ETag: 200');
    like($r->{headers}{etag} // '', qr/^"\d+"$/, 'PATCH answers with an ETag');
    isnt($r->{headers}{etag} // '', $etag, 'the change gives a new ETag');
    is($r->{headers}{etag} // '',
       req(GET => $a_admin, "$CA/$id")->{headers}{etag} // 'none',
       'the new ETag is the one GET shows');

    $r = $ngx->req(PATCH => "$CA/$id", key => $a_admin,
                   body => $J->encode({ default_value => 'three' }),
                   headers => { 'Content-Type' => 'application/json',
                                'If-Match' => $etag });
    Msgr::Test::problem_ok($r, 412, 'PATCH with a stale ETag: 412');
    is(req(GET => $a_admin, "$CA/$id")->{json}{default_value}, 'two',
       'the stale change changed nothing');

    Msgr::Test::problem_ok(req(GET => $b_admin, "$CA/$id"), 404,
                           'another school\'s attribute: 404');
    Msgr::Test::problem_ok(req(GET => $a_admin, "$CA/999999"), 404,
                           'an attribute that does not exist: 404');
    no_content_ok(req(DELETE => $a_admin, "$CA/$id"),
                  'the ETag check attribute deleted');
}

Msgr::Test::finish();
