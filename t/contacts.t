#!/usr/bin/perl

# Reading and editing the people of a school's MIS through the API:
# GET /v1/students, /contacts, /staff, /groups and /groups/{id}/members with
# q search and cursor paging, bad query parameters, registration groups in
# student names, staff details masked for non-admin keys, PATCH
# /v1/contacts/{id} (the setting that allows it, E.164, overridden and
# mis_values, edits kept over a re-sync, null, bad and unknown fields), and
# another school's ids.

use strict;
use warnings;

use JSON::PP;
use Test::More;

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

sub patch_contact {
    my ($key, $id, $body) = @_;
    return $ngx->req(PATCH => "$V/contacts/$id", key => $key,
                     body => ref $body ? $J->encode($body) : $body,
                     headers => { 'Content-Type' => 'application/json' });
}

# Walks every page of $path (which may have a query already) with $limit;
# returns (items, pages, problems).
sub walk {
    my ($key, $path, $limit) = @_;
    my (@items, @why, $after);
    my $pages = 0;
    my $sep = $path =~ /\?/ ? '&' : '?';
    while (1) {
        my $p = "$path${sep}limit=$limit"
              . (defined $after ? "&after=$after" : '');
        my $r = get($key, $p);
        if ($r->{status} != 200 || ref $r->{json} ne 'HASH') {
            push @why, "GET $p: $r->{status} $r->{content}";
            last;
        }
        $pages++;
        my $items = $r->{json}{items};
        push @why, "GET $p: a page of " . scalar(@$items)
                 . " items, more than $limit" if @$items > $limit;
        push @items, @$items;
        my $next = $r->{json}{next_after};
        push @why, "GET $p: no next_after member"
            unless exists $r->{json}{next_after};
        push @why, "GET $p: next_after set on a short page"
            if defined $next && @$items < $limit;
        last unless defined $next;
        push @why, "GET $p: next_after $next does not move on"
            if defined $after && $next <= $after;
        last if @why || $pages > 100;
        $after = $next;
    }
    return (\@items, $pages, \@why);
}

sub key_of { "$_[0]{type}:$_[0]{mis_id}" }

# walk_ok: every page walked, each record once, exactly $want (mis_ids, or
# type:mis_id for members).
sub walk_ok {
    my ($key, $path, $limit, $want, $name, $keyf) = @_;
    local $Test::Builder::Level = $Test::Builder::Level + 1;
    $keyf //= sub { $_[0]{mis_id} };
    my ($items, $pages, $why) = walk($key, $path, $limit);
    ok(!@$why, "$name: every page answered well") or diag(join "\n", @$why);
    my %seen;
    $seen{ $keyf->($_) }++ for @$items;
    my @twice = grep { $seen{$_} > 1 } sort keys %seen;
    ok(!@twice, "$name: every record seen once") or diag("twice: @twice");
    is_deeply([ sort keys %seen ], [ sort @$want ],
              "$name: all " . scalar(@$want) . " records seen");
    my $n = @$want;
    my $min = int(($n + $limit - 1) / $limit) || 1;
    ok($pages >= $min && $pages <= $min + 1,
       "$name: $pages pages of at most $limit");
    return $items;
}

sub bad_query_ok {
    my ($key, $path, $field, $name) = @_;
    local $Test::Builder::Level = $Test::Builder::Level + 1;
    my $r = get($key, $path);
    Msgr::Test::problem_ok($r, 400, "$name: 400");
    my @f = map { $_->{field} // '' }
            @{ ref $r->{json} eq 'HASH' ? $r->{json}{errors} || [] : [] };
    is_deeply(\@f, [$field], "$name: names $field") or diag($r->{content});
}


# ---------------------------------------------------------------------------
# the fixture: 23 students, 23 contacts (S1 and S2 share C1 and C2; S3 has
# C4, ... S23 has C24), 12 staff, 9 groups

my @PUPILS = (
    [qw(Amy Jones 7B)], [qw(Ben Jones 8C)], [qw(Cal Brown 7B)],
    ['Dee', 'Green', ''], [qw(Jonah Smith 9A)], [qw(Eve McJONES 10A)],
    [qw(Fay Black 7B)], [qw(Gus Grey 7C)], [qw(Hal Hunt 8C)],
    [qw(Ivy Irons 9A)], [qw(Jack Jonsson 7C)], [qw(Kai Khan 8A)],
    [qw(Lia Lowe 9B)], [qw(Max Moss 7B)], [qw(Nia Nash 8A)],
    [qw(Oli Ode 9B)], [qw(Pip Pike 7C)], [qw(Quin Quay 8B)],
    [qw(Ria Ross 9C)], [qw(Sam Sims 7A)], [qw(Tia Tate 8B)],
    [qw(Una Urry 9C)], [qw(Vic Vale 7A)],
);

sub base {
    my (@students, @contacts, @staff, @groups);
    push @contacts,
        { mis_id => 'C1', title => 'Mrs', first_name => 'Jane',
          last_name => 'Jones', home_phone => '020 7946 0000',
          mobile_phone => '07700 900123', email => 'jane@example.org' },
        { mis_id => 'C2', title => 'Mr', first_name => 'John',
          last_name => 'Jones', work_phone => '0113 496 0001',
          email => 'john@example.org' };
    my $i = 0;
    for my $p (@PUPILS) {
        $i++;
        my ($first, $last, $reg) = @$p;
        my @links;
        if ($i <= 2) {
            @links = ({ mis_id => 'C1', relationship => 'Mother',
                        priority => 1 },
                      { mis_id => 'C2', relationship => 'Father',
                        priority => 2 });
        } else {
            my $c = 'C' . ($i + 1);
            push @contacts,
                { mis_id => $c, title => 'Ms', first_name => "Parent$i",
                  last_name => $last,
                  mobile_phone => sprintf('07700 900%03d', 200 + $i),
                  email => lc("parent$i\@example.org") };
            @links = ({ mis_id => $c, relationship => 'Mother',
                        priority => 1 });
        }
        push @students, {
            mis_id => "S$i", first_name => $first, last_name => $last,
            reg_group => $reg, year => ($reg =~ /^(\d+)/ ? $1 : '7'),
            status => 'on_roll', contacts => \@links,
        };
    }
    for my $t (1 .. 12) {
        push @staff, {
            mis_id => "T$t", title => $t % 2 ? 'Mr' : 'Ms',
            first_name => ('Tom', 'Sara', 'Ned', 'Ola', 'Raj', 'Uma', 'Vik',
                           'Wes', 'Xia', 'Yan', 'Zed', 'Abe')[$t - 1],
            last_name => "Staff$t",
            work_phone => $t % 3 ? undef : sprintf('0117 496 0%03d', $t),
            mobile_phone => $t % 4 ? sprintf('07700 900%03d', 400 + $t)
                                   : undef,
            email => "t$t.staff\@school.example",
        };
    }
    my @all = map { $_->{mis_id} } @students;
    push @groups,
        { mis_id => 'K1', name => 'All Maths', type => 'class',
          students => \@all, staff => ['T2', 'T3'], teachers => ['T1'] },
        { mis_id => 'R7B', name => '7B', type => 'registration',
          students => [ map { $_->{mis_id} }
                        grep { $_->{reg_group} eq '7B' } @students ],
          staff => ['T4'] },
        { mis_id => 'Y7', name => 'Year 7', type => 'year',
          students => [ map { $_->{mis_id} }
                        grep { $_->{year} eq '7' } @students ] },
        { mis_id => 'K2', name => '7 Maths Set 2', type => 'class',
          students => ['S1', 'S3'], teachers => ['T5'] },
        { mis_id => 'K3', name => '8 English', type => 'class',
          students => ['S2'], teachers => ['T6'] },
        { mis_id => 'K4', name => '9 Science', type => 'class',
          students => ['S5'] },
        { mis_id => 'X1', name => 'Trip Leaders', type => 'custom',
          staff => [ map { "T$_" } 1 .. 12 ] },
        { mis_id => 'X2', name => 'Chess Club', type => 'custom',
          students => ['S1', 'S2', 'S6'], staff => ['T7'] },
        { mis_id => 'X3', name => 'MATHS Olympiad', type => 'custom',
          students => ['S11'] };
    return { students => \@students, contacts => \@contacts,
             staff => \@staff, groups => \@groups };
}

my $snap = base();
sync_json($a_int, $snap);

# school B: the same mis_ids, other names
{
    my $b = base();
    $_->{first_name} = "B$_->{first_name}"
        for @{ $b->{students} }, @{ $b->{contacts} }, @{ $b->{staff} };
    sync_json($b_int, $b);
}

sub all_of {
    my ($key, $what) = @_;
    local $Test::Builder::Level = $Test::Builder::Level + 1;
    my ($items, undef, $why) = walk($key, "$V/$what", 200);
    ok(!@$why, "all the $what: every page answered well")
        or diag(join "\n", @$why);
    return { map { $_->{mis_id} => $_ } @$items };
}

my $students = all_of($a_admin, 'students');
my $contacts = all_of($a_admin, 'contacts');
my $staff    = all_of($a_admin, 'staff');
my $groups   = all_of($a_admin, 'groups');

is(scalar keys %$students, 23, '23 students');
is(scalar keys %$contacts, 23, '23 contacts');
is(scalar keys %$staff, 12, '12 staff');
is(scalar keys %$groups, 9, '9 groups');


# ---------------------------------------------------------------------------
# paging: every page walked, every record once

my %ALL = (
    students => [ map { $_->{mis_id} } @{ $snap->{students} } ],
    contacts => [ map { $_->{mis_id} } @{ $snap->{contacts} } ],
    staff    => [ map { $_->{mis_id} } @{ $snap->{staff} } ],
    groups   => [ map { $_->{mis_id} } @{ $snap->{groups} } ],
);

for my $what (qw(students contacts staff groups)) {
    for my $limit (1, 5, 7, 23, 24, 50, 200) {
        walk_ok($a_staff, "$V/$what", $limit, $ALL{$what},
                "$what, limit $limit");
    }
}

# the default limit is 50 and the last page says next_after null
{
    my $j = get_json($a_staff, "$V/students");
    is(scalar @{ $j->{items} }, 23, 'students without limit: all 23');
    ok(exists $j->{next_after} && !defined $j->{next_after},
       'students without limit: next_after null');
    my $items = $j->{items};
    is_deeply([ map { $_->{id} } @$items ],
              [ sort { $a <=> $b } map { $_->{id} } @$items ],
              'students are listed by id');
    my $s = $students->{S1};
    is_deeply([ sort keys %$s ],
              [ sort qw(id mis_id first_name last_name name reg_group year
                        status leaving_date) ],
              'a student has the fields of docs/api.md');
}

# members: students, then staff, then teachers, over pages
{
    my $k1 = $groups->{K1}{id};
    my @want = ((map { "student:$_" } @{ $ALL{students} }),
                'staff:T2', 'staff:T3', 'teacher:T1');
    for my $limit (1, 4, 13, 26, 200) {
        my $items = walk_ok($a_staff, "$V/groups/$k1/members", $limit,
                            \@want, "K1 members, limit $limit", \&key_of);
        if ($limit == 4) {
            is_deeply([ map { $_->{type} } @$items[-3 .. -1] ],
                      [qw(staff staff teacher)],
                      'members: students first, then staff, then teachers');
        }
    }
    my $x1 = $groups->{X1}{id};
    walk_ok($a_staff, "$V/groups/$x1/members", 5,
            [ map { "staff:T$_" } 1 .. 12 ], 'X1 members, limit 5',
            \&key_of);
}


# ---------------------------------------------------------------------------
# q: part of the name, any case

sub matching {
    my ($what, $q) = @_;
    my @r;
    for my $x (@{ $snap->{$what} }) {
        my $name = $what eq 'groups' ? $x->{name}
                                     : "$x->{first_name} $x->{last_name}";
        push @r, $x->{mis_id} if index(lc $name, lc $q) >= 0;
    }
    return \@r;
}

for my $c (
    [ students => 'jones' ], [ students => 'JON' ], [ students => 'Jon' ],
    [ students => 'amy jo' ], [ students => 'y j' ], [ students => 'zzz' ],
    [ students => 'a' ], [ contacts => 'JANE' ], [ contacts => 'parent1' ],
    [ contacts => 'jones' ], [ staff => 'staff1' ], [ staff => 'TOM' ],
    [ groups => 'maths' ], [ groups => '7' ], [ groups => 'CLUB' ],
) {
    my ($what, $q) = @$c;
    my $want = matching($what, $q);
    (my $enc = $q) =~ s/ /%20/g;
    walk_ok($a_staff, "$V/$what?q=$enc", 3, $want,
            "$what q=\"$q\" (" . scalar(@$want) . " match)");
}

# + is a space in a query string; %XX is decoded
walk_ok($a_staff, "$V/students?q=amy+JO", 50, ['S1'], 'students q=amy+JO');
walk_ok($a_staff, "$V/students?q=%4Aon", 50, matching(students => 'jon'),
        'students q=%4Aon');

# q on members
{
    my $k1 = $groups->{K1}{id};
    my @want = map { "student:$_" } @{ matching(students => 'jones') };
    walk_ok($a_staff, "$V/groups/$k1/members?q=JONES", 2, \@want,
            'K1 members q=JONES', \&key_of);
    walk_ok($a_staff, "$V/groups/$k1/members?q=sara", 2, ['staff:T2'],
            'K1 members q=sara', \&key_of);
}

# bad parameters
for my $what ('students', 'contacts', 'staff', 'groups',
              "groups/$groups->{K1}{id}/members")
{
    for my $l ('0', '201', 'abc', '-1', '', '1.5', '10x') {
        bad_query_ok($a_staff, "$V/$what?limit=$l", 'limit',
                     "$what limit=\"$l\"");
    }
    for my $a ('0', 'abc', '-3', '', 'null') {
        bad_query_ok($a_staff, "$V/$what?after=$a", 'after',
                     "$what after=\"$a\"");
    }
    bad_query_ok($a_staff, "$V/$what?q=", 'q', "$what q empty");
    bad_query_ok($a_staff, "$V/$what?q=" . ('x' x 101), 'q',
                 "$what q of 101 characters");
}

# an after past the end: an empty page
{
    my $j = get_json($a_staff, "$V/students?after=999999");
    is_deeply($j->{items}, [], 'after past the end: no items');
    ok(!defined $j->{next_after}, 'after past the end: next_after null');
}


# ---------------------------------------------------------------------------
# show_registration_in_names

sub names_ok {
    my ($on, $name) = @_;
    local $Test::Builder::Level = $Test::Builder::Level + 1;
    my $want = sub {
        my ($s) = @_;
        my $n = "$s->{first_name} $s->{last_name}";
        $n .= " ($s->{reg_group})" if $on && length $s->{reg_group};
        return $n;
    };

    my $st = all_of($a_staff, 'students');
    my @bad = grep { $st->{$_}{name} ne $want->($st->{$_}) } sort keys %$st;
    ok(!@bad, "$name: every student's name in /students")
        or diag(join ', ', map { "$_: $st->{$_}{name}" } @bad);
    is($st->{S1}{name}, $on ? 'Amy Jones (7B)' : 'Amy Jones',
       "$name: S1 is \"" . ($on ? 'Amy Jones (7B)' : 'Amy Jones') . '"');
    is($st->{S4}{name}, 'Dee Green',
       "$name: S4 without a registration group is \"Dee Green\"");

    my $c = all_of($a_staff, 'contacts');
    my @nested = map { @{ $_->{students} } } values %$c;
    ok(scalar @nested >= 23, "$name: contacts list their students");
    @bad = grep { ($_->{name} // '') ne $want->($_) } @nested;
    ok(!@bad, "$name: students nested in /contacts")
        or diag(join ', ', map { $_->{name} // 'none' } @bad);
    my $one = get_json($a_staff, "$V/contacts/$contacts->{C1}{id}");
    is_deeply([ map { $_->{name} } @{ $one->{students} } ],
              $on ? ['Amy Jones (7B)', 'Ben Jones (8C)']
                  : ['Amy Jones', 'Ben Jones'],
              "$name: students nested in /contacts/{id}");

    my ($m, undef, $why) = walk($a_staff,
                                "$V/groups/$groups->{K1}{id}/members", 200);
    ok(!@$why, "$name: K1's members, every page answered well")
        or diag(join "\n", @$why);
    my @ms = grep { $_->{type} eq 'student' } @$m;
    is(scalar @ms, 23, "$name: K1 has 23 student members");
    @bad = grep { $_->{name} ne $want->($_) } @ms;
    ok(!@bad, "$name: students among group members")
        or diag(join ', ', map { $_->{name} } @bad);
    my ($t) = grep { $_->{type} eq 'teacher' } @$m;
    is($t->{name}, 'Mr Tom Staff1', "$name: a teacher's name has no group");
}

names_ok(0, 'show_registration_in_names off');
set_contacts_everywhere($a_admin, show_registration_in_names => $T);
names_ok(1, 'show_registration_in_names on');
{
    my $b = all_of($b_admin, 'students');
    is($b->{S1}{name}, 'BAmy Jones', 'school B\'s names are not affected');
}
set_contacts_everywhere($a_admin, show_registration_in_names => $F);
names_ok(0, 'show_registration_in_names off again');


# ---------------------------------------------------------------------------
# hide_staff_contact_details

sub masked_ok {
    my ($item, $clear, $name) = @_;
    local $Test::Builder::Level = $Test::Builder::Level + 1;
    my @why;
    for my $f (qw(work_phone mobile_phone)) {
        my $c = $clear->{$f};
        my $m = $item->{$f};
        if (!defined $c) {
            push @why, "$f: null became " . ($m // 'null') if defined $m;
            next;
        }
        my $want = ('*' x (length($c) - 3)) . substr($c, -3);
        push @why, "$f: " . ($m // 'null') . ", want $want"
            unless defined $m && $m eq $want;
    }
    if (defined $clear->{email}) {
        (my $want = $clear->{email}) =~ s/^(.)[^@]*@/$1***@/;
        push @why, "email: " . ($item->{email} // 'null') . ", want $want"
            unless ($item->{email} // '') eq $want;
    }
    push @why, 'no "masked": true' unless $item->{masked};
    ok(!@why, "$name: masked") or diag(join "\n", @why);
}

sub clear_ok {
    my ($item, $clear, $name) = @_;
    local $Test::Builder::Level = $Test::Builder::Level + 1;
    my @why;
    for my $f (qw(work_phone mobile_phone email)) {
        push @why, "$f: " . ($item->{$f} // 'null') . ", want "
                 . ($clear->{$f} // 'null')
            unless ($item->{$f} // '') eq ($clear->{$f} // '');
    }
    push @why, '"masked": true' if $item->{masked};
    ok(!@why, "$name: not masked") or diag(join "\n", @why);
}

# staff details as the admin sees them with hiding off
my %CLEAR = map { $_ => { %{ $staff->{$_} } } } keys %$staff;
is($CLEAR{T1}{mobile_phone}, '+447700900401', 'T1 mobile in E.164');
is($CLEAR{T3}{work_phone}, '+441174960003', 'T3 work in E.164');

sub staff_view_ok {
    my ($key, $who, $masked) = @_;
    my $st = all_of($key, 'staff');
    is(scalar keys %$st, 12, "$who /staff: 12 staff");
    for my $id (sort keys %$st) {
        $masked ? masked_ok($st->{$id}, $CLEAR{$id}, "$who /staff $id")
                : clear_ok($st->{$id}, $CLEAR{$id}, "$who /staff $id");
    }
    for my $g (qw(K1 X1)) {
        my ($m, undef, $why) = walk($key,
                                    "$V/groups/$groups->{$g}{id}/members",
                                    200);
        ok(!@$why, "$who $g members: every page answered well")
            or diag(join "\n", @$why);
        my @adults = grep { $_->{type} ne 'student' } @$m;
        ok(scalar @adults, "$who $g members: some are staff or contacts");
        for my $x (@adults) {
            my $n = "$who $g members $x->{type} $x->{mis_id}";
            $masked ? masked_ok($x, $CLEAR{ $x->{mis_id} }, $n)
                    : clear_ok($x, $CLEAR{ $x->{mis_id} }, $n);
        }
        ok(!grep({ $_->{type} eq 'student' && $_->{masked} } @$m),
           "$who $g members: students are never masked");
    }
}

for my $k ([ admin => $a_admin ], [ staff => $a_staff ],
           [ integrator => $a_int ])
{
    staff_view_ok($k->[1], "hiding off, $k->[0] key", 0);
}

set_contacts_everywhere($a_admin, hide_staff_contact_details => $T);
staff_view_ok($a_admin, 'hiding on, admin key', 0);
staff_view_ok($a_staff, 'hiding on, staff key', 1);
staff_view_ok($a_int, 'hiding on, integrator key', 1);
{
    my $t1 = all_of($a_staff, 'staff')->{T1};
    is($t1->{mobile_phone}, '**********401',
       'T1 mobile shown as **********401');
    is($t1->{email}, 't***@school.example', 'T1 email shown as t***@...');
    # parents are not staff
    my $c = all_of($a_staff, 'contacts')->{C1};
    is($c->{mobile_phone}, '+447700900123', 'contacts are not masked');
    is($c->{email}, 'jane@example.org', 'contacts\' emails are not masked');
    # school B has hiding off
    my $b = all_of($b_int, 'staff');
    clear_ok($b->{T1}, { %{ $CLEAR{T1} } },
             'school B\'s staff, integrator key');
}
set_contacts_everywhere($a_admin, hide_staff_contact_details => $F);
staff_view_ok($a_staff, 'hiding off again, staff key', 0);


# ---------------------------------------------------------------------------
# PATCH /v1/contacts/{id}

my $c1 = $contacts->{C1}{id};
my $c4 = $contacts->{C4}{id};

sub contact { get_json($_[0] // $a_admin, "$V/contacts/$_[1]") }

{
    my $before = contact($a_admin, $c1);
    is_deeply($before->{overridden}, [], 'C1 has no edits');
    is_deeply($before->{mis_values}, {}, 'C1 has no mis_values');

    my $r = patch_contact($a_admin, $c1, { email => 'jane.home@example.org' });
    Msgr::Test::problem_ok($r, 403, 'PATCH with the setting off: 403');
    like($r->{json}{detail} // '', qr/contacts\.can_edit_imported_contacts/,
         'the 403 names contacts.can_edit_imported_contacts');
    is_deeply(contact($a_admin, $c1), $before, 'C1 is as it was');

    set_contacts_everywhere($a_admin, can_edit_imported_contacts => $T);

    $r = patch_contact($a_int, $c1, { email => 'jane.home@example.org' });
    Msgr::Test::problem_ok($r, 403, 'PATCH with an integrator key: 403');

    $r = patch_contact($a_staff, $c1,
                       { email => 'jane.home@example.org',
                         mobile_phone => '07700 900999' });
    Msgr::Test::json_ok($r, 200, 'PATCH email and mobile (staff key): 200');
    my $j = $r->{json};
    is($j->{email}, 'jane.home@example.org', 'the answer has the new email');
    is($j->{mobile_phone}, '+447700900999',
       'the new mobile "07700 900999" in E.164');
    is_deeply($j->{overridden}, [qw(email mobile_phone)],
              'overridden: email, mobile_phone');
    is_deeply($j->{mis_values}, { email => 'jane@example.org',
                                  mobile_phone => '+447700900123' },
              'mis_values: what the MIS says');
    is($j->{home_phone}, '+442079460000', 'the home number untouched');
    is($j->{name}, 'Mrs Jane Jones', 'the answer has the name');
    is_deeply(contact($a_staff, $c1), $j, 'GET /contacts/{id} shows the same');
    is_deeply(all_of($a_int, 'contacts')->{C1}, $j,
              'GET /contacts shows the same');

    # the MIS changes the email and the mobile: the edits stay
    contact_of('C1')->{email} = 'jane.mis@example.org';
    contact_of('C1')->{mobile_phone} = '07700 900555';
    contact_of('C1')->{work_phone} = '0113 496 0777';
    my $s = sync_json($a_int, $snap);
    is($s->{contacts}{updated}, 1, 're-sync: C1 updated');
    $j = contact($a_admin, $c1);
    is($j->{email}, 'jane.home@example.org',
       're-sync: the edited email stays');
    is($j->{mobile_phone}, '+447700900999',
       're-sync: the edited mobile stays');
    is($j->{work_phone}, '+441134960777',
       're-sync: the field not edited takes the MIS value');
    is_deeply($j->{mis_values}, { email => 'jane.mis@example.org',
                                  mobile_phone => '+447700900555' },
              're-sync: mis_values shows the new MIS values');
    is_deeply($j->{overridden}, [qw(email mobile_phone)],
              're-sync: overridden unchanged');

    # null drops an edit
    $r = patch_contact($a_admin, $c1, { email => undef });
    Msgr::Test::json_ok($r, 200, 'PATCH email null: 200');
    $j = $r->{json};
    is($j->{email}, 'jane.mis@example.org', 'email null: the MIS email again');
    is_deeply($j->{overridden}, ['mobile_phone'],
              'email null: overridden is mobile_phone');
    is_deeply($j->{mis_values}, { mobile_phone => '+447700900555' },
              'email null: mis_values has the mobile only');

    # "" clears a number locally
    $r = patch_contact($a_admin, $c1, { home_phone => '' });
    Msgr::Test::json_ok($r, 200, 'PATCH home_phone "": 200');
    $j = $r->{json};
    ok(!defined $j->{home_phone} || $j->{home_phone} eq '',
       'home_phone "": no home number');
    is_deeply($j->{overridden}, [qw(home_phone mobile_phone)],
              'home_phone "": overridden');
    is($j->{mis_values}{home_phone}, '+442079460000',
       'home_phone "": mis_values keeps the MIS number');

    # other fields
    $r = patch_contact($a_admin, $c4,
                       { title => 'Dr', first_name => 'Kim',
                         last_name => 'Brown-Smith',
                         work_phone => '+33 1 23 45 67 89',
                         language => 'fr' });
    Msgr::Test::json_ok($r, 200, 'PATCH title, names, work_phone, language');
    $j = $r->{json};
    is($j->{name}, 'Dr Kim Brown-Smith', 'the new name');
    is($j->{work_phone}, '+33123456789', 'an international number in E.164');
    is($j->{language}, 'fr', 'the new language');
    is_deeply($j->{overridden},
              [qw(first_name language last_name title work_phone)],
              'every edited field is overridden');

    # names are counted in characters, as the MIS sync counts them
    # (src/msgr_mis.c: first_name 1 to 100 characters)
    $r = patch_contact($a_admin, $c4, { last_name => "Br\x{f6}wn" x 20 });
    {
        Msgr::Test::json_ok($r, 200, 'PATCH a last_name of 100 characters, '
                                     . '20 of them o-umlaut: 200');
    }
    patch_contact($a_admin, $c4, { last_name => 'Brown-Smith' });

    # bad values: 422 naming each, nothing changed
    my $c1_before = contact($a_admin, $c1);
    for my $case (
        [ { email => 'not-an-email' }, ['email'] ],
        [ { mobile_phone => '12' }, ['mobile_phone'] ],
        [ { home_phone => 'call me' }, ['home_phone'] ],
        [ { first_name => '' }, ['first_name'] ],
        [ { last_name => 'x' x 101 }, ['last_name'] ],
        [ { language => 'english!' }, ['language'] ],
        [ { email => 42 }, ['email'] ],
        [ { title => $T }, ['title'] ],
        [ { email => 'nope', mobile_phone => '12',
            work_phone => '0113 496 0002' }, [qw(email mobile_phone)] ],
        [ { shoe_size => '9' }, ['shoe_size'] ],
        [ { shoe_size => '9', email => 'ok@example.org' }, ['shoe_size'] ],
        [ { id => 99, mis_id => 'C9' }, [qw(id mis_id)] ],
    ) {
        my ($body, $fields) = @$case;
        my $r = patch_contact($a_admin, $c1, $body);
        errors_ok($r, 422, $fields, 'PATCH ' . $J->encode($body));
    }
    # an array or an empty object is no edit (422); a lone scalar is
    # refused by the JSON parser (400)
    for my $case ([ '[]', 422 ], [ '{}', 422 ], [ '"email"', 400 ],
                  [ 'null', 400 ])
    {
        my ($body, $status) = @$case;
        Msgr::Test::problem_ok(patch_contact($a_admin, $c1, $body), $status,
                               "PATCH $body: $status");
    }
    my $r2 = patch_contact($a_admin, $c1, '{"email": ');
    Msgr::Test::problem_ok($r2, 400, 'PATCH malformed JSON: 400');
    is_deeply(contact($a_admin, $c1), $c1_before,
              'after the refused edits C1 is as it was');

    # unknown ids
    for my $id ('999999', '0', 'abc') {
        my $r = patch_contact($a_admin, $id, { email => 'x@example.org' });
        Msgr::Test::problem_ok($r, 404, "PATCH /contacts/$id: 404");
        $r = get($a_admin, "$V/contacts/$id");
        Msgr::Test::problem_ok($r, 404, "GET /contacts/$id: 404");
    }
}

# ETag and If-Match: two people editing one contact
{
    my $r = get($a_admin, "$V/contacts/$c4");
    Msgr::Test::json_ok($r, 200, 'GET a contact: 200');
    my $etag = $r->{headers}{etag};
    like($etag // '', qr/^"[^"]+"$/, 'GET a contact carries a strong ETag');

    $r = $ngx->req(GET => "$V/contacts/$c4", key => $a_admin,
                   headers => { 'If-None-Match' => $etag });
    is($r->{status}, 304, 'If-None-Match with the ETag: 304');

    $r = $ngx->req(PATCH => "$V/contacts/$c4", key => $a_admin,
                   body => $J->encode({ title => 'Dr' }),
                   headers => { 'Content-Type' => 'application/json',
                                'If-Match' => $etag });
    Msgr::Test::json_ok($r, 200, 'PATCH with the current ETag: 200');
    is($r->{json}{title}, 'Dr', 'the edit is in the answer');
    my $next = $r->{headers}{etag};
    ok(defined $next && $next ne $etag, 'the edit gives a new ETag');
    is(get($a_admin, "$V/contacts/$c4")->{headers}{etag}, $next,
       'GET shows the new ETag');

    $r = $ngx->req(PATCH => "$V/contacts/$c4", key => $a_admin,
                   body => $J->encode({ title => 'Prof' }),
                   headers => { 'Content-Type' => 'application/json',
                                'If-Match' => $etag });
    Msgr::Test::problem_ok($r, 412, 'PATCH with a stale ETag: 412');
    is(contact($a_admin, $c4)->{title}, 'Dr', 'the stale edit changed nothing');

    $r = $ngx->req(PATCH => "$V/contacts/$c4", key => $a_admin,
                   body => $J->encode({ title => undef }),
                   headers => { 'Content-Type' => 'application/json',
                                'If-Match' => '*' });
    Msgr::Test::json_ok($r, 200, 'PATCH with If-Match: * is 200');
    ok(!grep({ $_ eq 'title' } @{ $r->{json}{overridden} // [] }),
       'the title goes back to the MIS value');
}

sub contact_of {
    my ($id) = @_;
    my ($c) = grep { $_->{mis_id} eq $id } @{ $snap->{contacts} };
    return $c;
}


# ---------------------------------------------------------------------------
# tenancy: school A's ids from school B

{
    set_contacts_everywhere($b_admin, can_edit_imported_contacts => $T);
    my $a_c1 = contact($a_admin, $c1);

    my $bc = all_of($b_admin, 'contacts');
    my $bg = all_of($b_admin, 'groups');
    my %b_ids = map { $_->{id} => 1 } values %$bc;
    my @a_only = sort { $a <=> $b } grep { !$b_ids{$_} }
                 map { $_->{id} } values %$contacts;
    ok(@a_only >= 1, 'school A has contact ids school B has not')
        or diag('ids overlap');

    for my $id (grep { defined } @a_only[0 .. 2]) {
        my $r = get($b_admin, "$V/contacts/$id");
        Msgr::Test::problem_ok($r, 404, "school B GET A's contact $id: 404");
        unlike($r->{content}, qr/Jones|example\.org/,
               "school B GET A's contact $id: none of A's data");
        $r = patch_contact($b_admin, $id, { email => 'b@example.org' });
        Msgr::Test::problem_ok($r, 404, "school B PATCH A's contact $id: 404");
    }
    my %bg_ids = map { $_->{id} => 1 } values %$bg;
    my @a_groups = sort { $a <=> $b } grep { !$bg_ids{$_} }
                   map { $_->{id} } values %$groups;
    ok(@a_groups >= 1, 'school A has group ids school B has not');
    for my $id (grep { defined } @a_groups[0 .. 2]) {
        my $r = get($b_admin, "$V/groups/$id/members");
        Msgr::Test::problem_ok($r, 404, "school B A's group $id members: 404");
    }
    my $r = get($a_admin, "$V/groups/999999/members");
    Msgr::Test::problem_ok($r, 404, 'a group that does not exist: 404');
    $r = get($a_admin, "$V/groups/abc/members");
    Msgr::Test::problem_ok($r, 404, 'group id abc: 404');

    is_deeply(contact($a_admin, $c1), $a_c1, 'school A\'s C1 untouched');
    my $b_c1 = $bc->{C1};
    is($b_c1->{first_name}, 'BJane', 'school B\'s C1 is its own');
    is_deeply($b_c1->{overridden}, [], 'school B\'s C1 has no edits');

    # B's lists never hold A's records
    my $bs = all_of($b_int, 'students');
    is(scalar keys %$bs, 23, 'school B lists its 23 students');
    ok(!grep({ $_->{first_name} !~ /^B/ } values %$bs),
       'school B lists only its own students');
}

# a retired contact is not found
{
    my $s = clone($snap);
    $s->{contacts} = [ grep { $_->{mis_id} ne 'C24' } @{ $s->{contacts} } ];
    $s->{students}[-1]{contacts} = [];
    sync_json($a_int, $s);
    my $id = $contacts->{C24}{id};
    Msgr::Test::problem_ok(get($a_admin, "$V/contacts/$id"), 404,
                           'a retired contact: GET 404');
    Msgr::Test::problem_ok(patch_contact($a_admin, $id,
                                         { email => 'x@example.org' }),
                           404, 'a retired contact: PATCH 404');
    ok(!exists all_of($a_admin, 'contacts')->{C24},
       'a retired contact is not listed');
}

Msgr::Test::finish();
