#!/usr/bin/perl

# POST /v1/mis/sync through the API: a first sync creates, the same again
# changes nothing, a changed record is updated, a dropped student is retired
# and comes back, a snapshot with bad records is refused whole (422 naming
# each record and field, nothing changed), phone numbers normalised to E.164
# with the bad ones reported, contacts.auto_sync_contacts off, roles, media
# type and malformed JSON, and two schools with the same mis_ids.

use strict;
use warnings;

use JSON::PP;
use Test::More;

use lib 't/lib';
use Msgr::Test;
use Msgr::Test::API;

my $SYNC = '/msgr/v1/mis/sync';

my $pg = Msgr::Test::pg_start();

my ($A, $B, $a_admin, $a_staff, $a_int, $b_admin, $b_int)
    = two_schools($pg);

my $ngx = api_nginx($pg);


# ---------------------------------------------------------------------------
# helpers

# Every item of a list, following next_after.
sub list_all {
    my ($key, $what) = @_;
    my (@items, $after);
    for (1 .. 100) {
        my $path = "/msgr/v1/$what?limit=200"
                 . (defined $after ? "&after=$after" : '');
        my $r = get($key, $path);
        die "GET $path: $r->{status} $r->{content}\n"
            unless $r->{status} == 200 && ref $r->{json} eq 'HASH';
        push @items, @{ $r->{json}{items} };
        $after = $r->{json}{next_after};
        last unless defined $after;
    }
    return \@items;
}

sub by_mis {
    my ($items) = @_;
    return { map { $_->{mis_id} => $_ } @$items };
}

# What a school looks like through the API: every list and every group's
# members, as canonical JSON text.
sub api_view {
    my ($key) = @_;
    my %v = map { $_ => list_all($key, $_) }
            qw(students contacts staff groups);
    for my $g (@{ $v{groups} }) {
        $v{"members $g->{mis_id}"} = list_all($key, "groups/$g->{id}/members");
    }
    return $J->encode(\%v);
}

# Everything of a school in the MIS tables, timestamps included.
sub db_view {
    my ($s) = @_;
    return $pg->psql(join "\nSELECT '--';\n", map { "$_;" } (
        mis_rows_sql($s),
        "SELECT student_id, contact_id, relationship, priority,
                correspondence, retired_at
           FROM msgr_student_contacts WHERE school_id = $s ORDER BY 1, 2",
        "SELECT group_id, student_id, retired_at
           FROM msgr_group_students WHERE school_id = $s ORDER BY 1, 2",
        "SELECT group_id, staff_id, teacher, retired_at
           FROM msgr_group_staff WHERE school_id = $s ORDER BY 1, 2, 3",
    ));
}

sub counts {
    my (%k) = @_;
    return { created => 0, updated => 0, retired => 0, unchanged => 0, %k };
}

# The answer of a sync: 200, JSON, the counts of each kind as given.
sub sync_ok {
    my ($r, $want, $name) = @_;
    local $Test::Builder::Level = $Test::Builder::Level + 1;
    Msgr::Test::json_ok($r, 200, "$name: 200") or return;
    my $j = $r->{json};
    for my $kind (sort keys %$want) {
        is_deeply($j->{$kind}, $want->{$kind}, "$name: $kind counts")
            or diag("got " . $J->encode($j->{$kind}));
    }
    is(ref $j->{warnings}, 'ARRAY', "$name: a warnings list");
}


# ---------------------------------------------------------------------------
# the fixture: 6 students (two siblings sharing their parents, a guest, a
# pre-admission, two leavers), 6 contacts with home, work and mobile numbers
# written every which way and emails, 3 staff, a group of every type

sub base {
    return {
        default_country => 'GB',
        students => [
            { mis_id => 'S1', first_name => 'Amy', last_name => 'Jones',
              reg_group => '7B', year => '7', status => 'on_roll',
              contacts => [
                  { mis_id => 'C1', relationship => 'Mother', priority => 1,
                    correspondence => $T },
                  { mis_id => 'C2', relationship => 'Father', priority => 2,
                    correspondence => $F },
              ] },
            { mis_id => 'S2', first_name => 'Ben', last_name => 'Jones',
              reg_group => '8C', year => '8', status => 'on_roll',
              contacts => [
                  { mis_id => 'C1', relationship => 'Mother', priority => 1 },
                  { mis_id => 'C2', relationship => 'Father', priority => 2 },
              ] },
            { mis_id => 'S3', first_name => 'Cal', last_name => 'Brown',
              reg_group => '7B', year => '7', status => 'guest',
              contacts => [
                  { mis_id => 'C3', relationship => 'Mother', priority => 1 },
              ] },
            { mis_id => 'S4', first_name => 'Dee', last_name => 'Green',
              year => '7', status => 'pre_admission',
              contacts => [
                  { mis_id => 'C4', relationship => 'Father', priority => 1 },
              ] },
            { mis_id => 'S5', first_name => 'Eve', last_name => 'White',
              reg_group => '11A', year => '11', status => 'leaver',
              leaving_date => '2025-07-18',
              contacts => [
                  { mis_id => 'C5', relationship => 'Carer', priority => 1 },
              ] },
            { mis_id => 'S6', first_name => 'Fay', last_name => 'Black',
              reg_group => '7B', year => '7', status => 'leaver',
              leaving_date => '2026-01-10',
              contacts => [
                  { mis_id => 'C6', relationship => 'Mother', priority => 1 },
                  { mis_id => 'C1', relationship => 'Aunt', priority => 2 },
              ] },
        ],
        contacts => [
            { mis_id => 'C1', title => 'Mrs', first_name => 'Jane',
              last_name => 'Jones', home_phone => '020 7946 0000',
              work_phone => '(0113) 496-0001', mobile_phone => '07700 900123',
              email => 'jane@example.org' },
            { mis_id => 'C2', title => 'Mr', first_name => 'John',
              last_name => 'Jones', mobile_phone => '+44 7700 900124',
              email => 'john.jones@example.org', language => 'en' },
            { mis_id => 'C3', title => 'Ms', first_name => 'Kim',
              last_name => 'Brown', home_phone => '12345',
              mobile_phone => '0044 7700 900125' },
            { mis_id => 'C4', title => 'Dr', first_name => 'Lee',
              last_name => 'Green', email => 'lee@example.org',
              language => 'pl' },
            { mis_id => 'C5', first_name => 'Sam', last_name => 'White',
              work_phone => '01134960005' },
            { mis_id => 'C6', title => 'Mrs', first_name => 'Ros',
              last_name => 'Black', mobile_phone => '447700900126' },
        ],
        staff => [
            { mis_id => 'T1', title => 'Mr', first_name => 'Tom',
              last_name => 'Smith', mobile_phone => '07700 900456',
              email => 't.smith@school.example' },
            { mis_id => 'T2', title => 'Ms', first_name => 'Sara',
              last_name => 'Khan', work_phone => '0117 496 0002',
              email => 's.khan@school.example' },
            { mis_id => 'T3', first_name => 'Ned', last_name => 'Null' },
        ],
        groups => [
            { mis_id => 'G7BMA', name => '7B Maths', type => 'class',
              students => ['S1', 'S3', 'S6'], teachers => ['T1'] },
            { mis_id => 'R7B', name => '7B', type => 'registration',
              students => ['S1', 'S3', 'S6'], staff => ['T2'] },
            { mis_id => 'Y7', name => 'Year 7', type => 'year',
              students => ['S1', 'S3', 'S4', 'S6'] },
            { mis_id => 'XTRIP', name => 'Trip Leaders', type => 'custom',
              staff => ['T1', 'T2', 'T3'] },
        ],
    };
}

# memberships of base(): 9 student-contact links, 10 group students,
# 5 group staff (a teacher, a tutor, 3 trip leaders)
my $M = 9 + 10 + 5;

sub students_of {
    my ($snap) = @_;
    return { map { $_->{mis_id} => $_ } @{ $snap->{students} } };
}

sub contact_of {
    my ($snap, $id) = @_;
    my ($c) = grep { $_->{mis_id} eq $id } @{ $snap->{contacts} };
    return $c;
}


# ---------------------------------------------------------------------------
# refused before anything is read: media type, JSON, roles

my $empty_a = db_view($A);

{
    # a valid snapshot that would write nothing, should one get through
    my $none = $J->encode({ students => [], contacts => [], staff => [],
                            groups => [] });
    my $r;
    for my $type ('text/plain', 'application/merge-patch+json',
                  'application/x-www-form-urlencoded', undef)
    {
        $r = $ngx->req(POST => $SYNC, key => $a_int, body => $none,
                       headers => { defined $type
                                    ? ('Content-Type' => $type) : () });
        Msgr::Test::problem_ok($r, 415, 'Content-Type '
                                        . ($type // '(none)') . ': 415');
    }
    $r = $ngx->req(POST => $SYNC, key => $a_int, body => $none,
                   headers => { 'Content-Type'
                                => 'Application/JSON; charset=utf-8' });
    Msgr::Test::json_ok($r, 200, 'Content-Type Application/JSON; '
                                 . 'charset=utf-8: 200');

    for my $bad ('{"students": [', '{"students": []', 'not json', '',
                 "{\"students\": [{\"mis_id\": \"S1\",}]}")
    {
        $r = $ngx->req(POST => $SYNC, key => $a_int, body => $bad,
                       headers => { 'Content-Type' => 'application/json' });
        Msgr::Test::problem_ok($r, 400, 'malformed JSON '
                                        . $J->encode($bad) . ': 400');
    }

    $r = sync($a_staff, base());
    Msgr::Test::problem_ok($r, 403, 'staff key: 403');

    $r = sync(undef, base());
    Msgr::Test::problem_ok($r, 401, 'no key: 401');

    is(db_view($A), $empty_a, 'nothing was written by the refused requests');
}


# ---------------------------------------------------------------------------
# the first sync

my $snap = base();
my $first = sync($a_int, $snap);
sync_ok($first, {
    students    => counts(created => 6),
    contacts    => counts(created => 6),
    staff       => counts(created => 3),
    groups      => counts(created => 4),
    memberships => counts(created => $M),
}, 'first sync (integrator key)');

# the bad numbers: C3's home_phone "12345", C6's mobile "447700900126"
# (neither +44 nor a leading 0)
{
    my $w = $first->{json}{warnings} || [];
    is_deeply([ sort map { $_->{field} } @$w ],
              [ 'contacts[C3].home_phone', 'contacts[C6].mobile_phone' ],
              'first sync: a warning for each bad number, naming it')
        or diag($first->{content});
    my %msg = map { $_->{field} => $_->{message} // '' } @$w;
    like($msg{'contacts[C3].home_phone'} // '', qr/"12345"/,
         'the warning quotes "12345"');
    like($msg{'contacts[C6].mobile_phone'} // '', qr/"447700900126"/,
         'the warning quotes "447700900126"');
}

my $students = by_mis(list_all($a_int, 'students'));
my $contacts = by_mis(list_all($a_int, 'contacts'));
my $staff    = by_mis(list_all($a_int, 'staff'));
my $groups   = by_mis(list_all($a_int, 'groups'));

is_deeply([ sort keys %$students ], [qw(S1 S2 S3 S4 S5 S6)],
          'GET /students lists the 6 students');
is_deeply([ sort keys %$contacts ], [qw(C1 C2 C3 C4 C5 C6)],
          'GET /contacts lists the 6 contacts');
is_deeply([ sort keys %$staff ], [qw(T1 T2 T3)], 'GET /staff lists the 3');
is_deeply([ sort keys %$groups ], [qw(G7BMA R7B XTRIP Y7)],
          'GET /groups lists the 4');

# students as the MIS has them
{
    my $s = $students->{S5};
    is($s->{status}, 'leaver', 'S5 is a leaver');
    is($s->{leaving_date}, '2025-07-18', 'S5 left on 2025-07-18');
    is($students->{S3}{status}, 'guest', 'S3 is a guest');
    is($students->{S4}{status}, 'pre_admission', 'S4 is a pre-admission');
    is($students->{S4}{reg_group}, '', 'S4 has no registration group');
    is($students->{S1}{leaving_date}, undef, 'S1 has no leaving date');
    is($students->{S1}{name}, 'Amy Jones', 'S1 is shown as Amy Jones');
}

# phone numbers in E.164, the bad one kept aside
{
    my $c = $contacts->{C1};
    is($c->{home_phone}, '+442079460000', 'C1 home "020 7946 0000" in E.164');
    is($c->{work_phone}, '+441134960001',
       'C1 work "(0113) 496-0001" in E.164');
    is($c->{mobile_phone}, '+447700900123',
       'C1 mobile "07700 900123" in E.164');
    is($c->{email}, 'jane@example.org', 'C1 email');
    is_deeply($c->{phone_problems}, {}, 'C1 has no phone problems');
    is($contacts->{C2}{mobile_phone}, '+447700900124',
       'C2 mobile "+44 7700 900124" in E.164');
    is($contacts->{C2}{home_phone}, undef, 'C2 has no home number');
    is($contacts->{C3}{mobile_phone}, '+447700900125',
       'C3 mobile "0044 7700 900125" in E.164');
    is($contacts->{C3}{home_phone}, undef,
       'C3 home "12345" is not used as a number');
    is_deeply($contacts->{C3}{phone_problems}, { home_phone => '12345' },
              'C3 phone_problems keeps "12345"')
        or diag($J->encode($contacts->{C3}));
    is($contacts->{C6}{mobile_phone}, undef,
       'C6 mobile "447700900126" is not used as a number');
    is_deeply($contacts->{C6}{phone_problems},
              { mobile_phone => '447700900126' },
              'C6 phone_problems keeps "447700900126"');
    is($contacts->{C5}{work_phone}, '+441134960005',
       'C5 work "01134960005" in E.164');
    is($contacts->{C4}{language}, 'pl', 'C4 language pl');
    is($contacts->{C1}{language}, 'en', 'C1 language defaults to en');
    is($staff->{T1}{mobile_phone}, '+447700900456', 'T1 mobile in E.164');
    is($staff->{T2}{work_phone}, '+441174960002', 'T2 work in E.164');
    is($staff->{T3}{email}, undef, 'T3 has no email');

    # siblings: C1 is the contact of S1, S2 and S6
    my @st = sort map { $students->{$_}{id} } qw(S1 S2 S6);
    is_deeply([ sort map { $_->{id} } @{ $c->{students} } ], \@st,
              'C1 lists S1, S2 and S6');
    my ($s1) = grep { $_->{id} == $students->{S1}{id} } @{ $c->{students} };
    is($s1->{relationship}, 'Mother', 'C1 is S1\'s Mother');
    is($s1->{priority}, 1, 'C1 is S1\'s first contact');
    ok($s1->{correspondence}, 'correspondence with C1 is allowed');
    my ($s1c2) = grep { $_->{id} == $students->{S1}{id} }
                 @{ $contacts->{C2}{students} };
    ok(defined $s1c2 && !$s1c2->{correspondence},
       'correspondence with C2 about S1 is not allowed');
    my ($s2c2) = grep { $_->{id} == $students->{S2}{id} }
                 @{ $contacts->{C2}{students} };
    ok(defined $s2c2 && $s2c2->{correspondence},
       'correspondence defaults to allowed (S2, C2)');
}

# groups and their members
{
    my $g = $groups->{G7BMA};
    is($g->{type}, 'class', 'G7BMA is a class group');
    is($g->{students}, 3, 'G7BMA has 3 students');
    is($g->{teachers}, 1, 'G7BMA has a teacher');
    is($groups->{R7B}{type}, 'registration', 'R7B is a registration group');
    is($groups->{R7B}{staff}, 1, 'R7B has a member of staff');
    is($groups->{Y7}{type}, 'year', 'Y7 is a year group');
    is($groups->{Y7}{students}, 4, 'Y7 has 4 students');
    is($groups->{XTRIP}{type}, 'custom', 'XTRIP is a custom group');
    is($groups->{XTRIP}{staff}, 3, 'XTRIP has 3 staff');

    my $m = list_all($a_int, "groups/$g->{id}/members");
    is_deeply([ map { "$_->{type}:$_->{mis_id}" } @$m ],
              [qw(student:S1 student:S3 student:S6 teacher:T1)],
              'G7BMA members: its students, then its teacher');
}

# the same again: nothing changes, not even updated_at
{
    my $before = db_view($A);
    my $r = sync($a_admin, base());
    sync_ok($r, {
        students    => counts(unchanged => 6),
        contacts    => counts(unchanged => 6),
        staff       => counts(unchanged => 3),
        groups      => counts(unchanged => 4),
        memberships => counts(unchanged => $M),
    }, 'the same snapshot again (admin key)');
    is(db_view($A), $before, 'the same snapshot again: no row written');
}


# ---------------------------------------------------------------------------
# changes

{
    $snap = base();
    students_of($snap)->{S1}{reg_group} = '8B';
    students_of($snap)->{S1}{year} = '8';
    contact_of($snap, 'C2')->{email} = 'john@example.net';
    my $r = sync($a_int, $snap);
    sync_ok($r, {
        students    => counts(updated => 1, unchanged => 5),
        contacts    => counts(updated => 1, unchanged => 5),
        staff       => counts(unchanged => 3),
        groups      => counts(unchanged => 4),
        memberships => counts(unchanged => $M),
    }, 'S1 moved to 8B, C2 a new email');

    my $s = by_mis(list_all($a_int, 'students'));
    is($s->{S1}{reg_group}, '8B', 'S1 is in 8B now');
    is($s->{S1}{id}, $students->{S1}{id}, 'S1 keeps its id');
    my $c = by_mis(list_all($a_int, 'contacts'));
    is($c->{C2}{email}, 'john@example.net', 'C2 has the new email');

    # a link changed: C2 may now be written to about S1
    $snap->{students}[0]{contacts}[1]{correspondence} = $T;
    $r = sync($a_int, $snap);
    sync_ok($r, {
        students    => counts(unchanged => 6),
        contacts    => counts(unchanged => 6),
        memberships => counts(updated => 1, unchanged => $M - 1),
    }, 'a link changed');
    $snap->{students}[0]{contacts}[1]{correspondence} = $F;
    sync_ok(sync($a_int, $snap), {
        memberships => counts(updated => 1, unchanged => $M - 1),
    }, 'and back');
}

# a student dropped from the snapshot is retired, and comes back
{
    my $s6 = $students->{S6}{id};
    my $drop = clone($snap);
    $drop->{students} = [ grep { $_->{mis_id} ne 'S6' }
                          @{ $drop->{students} } ];
    for my $g (@{ $drop->{groups} }) {
        $g->{students} = [ grep { $_ ne 'S6' } @{ $g->{students} || [] } ];
    }
    # C6 was S6's alone: the snapshot drops it too
    $drop->{contacts} = [ grep { $_->{mis_id} ne 'C6' }
                          @{ $drop->{contacts} } ];

    my $r = sync($a_int, $drop);
    # S6: links to C6 and C1, and 3 groups
    sync_ok($r, {
        students    => counts(retired => 1, unchanged => 5),
        contacts    => counts(retired => 1, unchanged => 5),
        staff       => counts(unchanged => 3),
        groups      => counts(unchanged => 4),
        memberships => counts(retired => 5, unchanged => $M - 5),
    }, 'S6 and C6 dropped');

    my $s = by_mis(list_all($a_int, 'students'));
    ok(!exists $s->{S6}, 'S6 is not listed any more');
    is(scalar keys %$s, 5, '5 students listed');
    my $c = by_mis(list_all($a_int, 'contacts'));
    ok(!exists $c->{C6}, 'C6 is not listed any more');
    ok(!grep({ $_->{id} == $s6 } @{ $c->{C1}{students} }),
       'C1 no longer lists S6');
    my $g = by_mis(list_all($a_int, 'groups'));
    is($g->{Y7}{students}, 3, 'Y7 has 3 students now');
    my $m = list_all($a_int, "groups/$g->{G7BMA}{id}/members");
    ok(!grep({ $_->{mis_id} eq 'S6' } @$m), 'S6 is not a member of G7BMA');
    is($pg->psql("SELECT count(*) FROM msgr_students WHERE school_id = $A"
                 . " AND mis_id = 'S6' AND retired_at IS NOT NULL"), 1,
       'S6 is kept, retired');

    # and the same dropped snapshot again: nothing more to retire
    sync_ok(sync($a_int, $drop), {
        students    => counts(unchanged => 5),
        contacts    => counts(unchanged => 5),
        memberships => counts(unchanged => $M - 5),
    }, 'the dropped snapshot again');

    # back
    $r = sync($a_int, $snap);
    sync_ok($r, {
        students    => counts(updated => 1, unchanged => 5),
        contacts    => counts(updated => 1, unchanged => 5),
        staff       => counts(unchanged => 3),
        groups      => counts(unchanged => 4),
        memberships => counts(updated => 5, unchanged => $M - 5),
    }, 'S6 and C6 back');
    $s = by_mis(list_all($a_int, 'students'));
    ok(exists $s->{S6}, 'S6 is listed again');
    is($s->{S6}{id} // 0, $s6, 'S6 has its old id');
    $c = by_mis(list_all($a_int, 'contacts'));
    ok(grep({ $_->{id} == $s6 } @{ $c->{C1}{students} }),
       'C1 lists S6 again');
    $g = by_mis(list_all($a_int, 'groups'));
    is($g->{Y7}{students}, 4, 'Y7 has 4 students again');
}


# ---------------------------------------------------------------------------
# a snapshot with bad records is refused whole

{
    my $api_before = api_view($a_int);
    my $db_before  = db_view($A);

    my @cases = (
        [ 'a bad status',
          sub { students_of($_[0])->{S2}{status} = 'enrolled' },
          ['students[S2].status'] ],
        [ 'a contact reference to nobody',
          sub { push @{ students_of($_[0])->{S1}{contacts} },
                { mis_id => 'C99', relationship => 'Uncle', priority => 3 } },
          ['students[S1].contacts[C99].mis_id'] ],
        [ 'a bad email',
          sub { contact_of($_[0], 'C4')->{email} = 'lee at example.org' },
          ['contacts[C4].email'] ],
        [ 'a group naming a student who is not there',
          sub { push @{ $_[0]{groups}[2]{students} }, 'S77' },
          ['groups[Y7].students[S77]'] ],
        [ 'a leaver without a leaving date',
          sub { delete students_of($_[0])->{S5}{leaving_date} },
          ['students[S5].leaving_date'] ],
        [ 'a bad group type',
          sub { $_[0]{groups}[3]{type} = 'club' },
          ['groups[XTRIP].type'] ],
    );

    # every case alone, then all together (with a new student who is fine)
    my @all_fields;
    my $all = clone($snap);
    push @{ $all->{students} },
        { mis_id => 'S9', first_name => 'New', last_name => 'Pupil',
          status => 'on_roll' };
    for my $c (@cases) {
        my ($what, $break, $fields) = @$c;
        my $bad = clone($snap);
        push @{ $bad->{students} },
            { mis_id => 'S9', first_name => 'New', last_name => 'Pupil',
              status => 'on_roll' };
        contact_of($bad, 'C1')->{email} = 'jane.new@example.org';
        $break->($bad);
        $break->($all);
        push @all_fields, @$fields;
        my $r = sync($a_int, $bad);
        errors_ok($r, 422, $fields, "snapshot with $what");
        unlike($r->{content}, qr/"warnings"/, "$what: no counts given");
    }

    my $r = sync($a_int, $all);
    errors_ok($r, 422, \@all_fields,
              'all of them in one snapshot: each named');

    is(api_view($a_int), $api_before,
       'after the refused snapshots every list is as before');
    is(db_view($A), $db_before,
       'after the refused snapshots the tables are as before');
}


# ---------------------------------------------------------------------------
# contacts.auto_sync_contacts off: students and groups sync, contacts don't

{
    set_contacts_everywhere($a_admin, auto_sync_contacts => $F,
                            reader => $a_int);

    # a contact lists its students, whose names do change here
    my $details = sub {
        my %c = %{ $_[0] };
        delete $c{students};
        return \%c;
    };
    my $before = by_mis(list_all($a_int, 'contacts'));
    my $off = clone($snap);
    contact_of($off, 'C1')->{email} = 'jane.changed@example.org';
    contact_of($off, 'C3')->{home_phone} = '020 7946 0333';
    push @{ $off->{contacts} },
        { mis_id => 'C7', first_name => 'New', last_name => 'Parent' };
    students_of($off)->{S2}{first_name} = 'Benjamin';
    push @{ $off->{groups} },
        { mis_id => 'X2', name => 'Chess Club', type => 'custom',
          students => ['S1', 'S2'] };

    my $r = sync($a_int, $off);
    Msgr::Test::json_ok($r, 200, 'auto_sync_contacts off: 200');
    my $j = $r->{json} || {};
    is_deeply($j->{students}, counts(updated => 1, unchanged => 5),
              'auto_sync_contacts off: students still synced')
        or diag($r->{content});
    is_deeply($j->{groups}, counts(created => 1, unchanged => 4),
              'auto_sync_contacts off: groups still synced');
    is_deeply($j->{contacts}, { skipped => 7 },
              'auto_sync_contacts off: contacts {"skipped": 7}');
    is($j->{memberships}{skipped}, 9,
       'auto_sync_contacts off: 9 student-contact links skipped');
    is($j->{memberships}{created}, 2,
       'auto_sync_contacts off: the 2 new group members created');

    my $after = by_mis(list_all($a_int, 'contacts'));
    is($after->{C1}{email}, 'jane@example.org',
       'auto_sync_contacts off: C1 keeps its old email');
    is($after->{C3}{home_phone}, undef,
       'auto_sync_contacts off: C3 keeps no home number');
    ok(!exists $after->{C7}, 'auto_sync_contacts off: C7 not created');
    is($J->encode([ map { $details->($after->{$_}) } sort keys %$after ]),
       $J->encode([ map { $details->($before->{$_}) } sort keys %$before ]),
       'auto_sync_contacts off: every contact\'s details as they were');
    my $s = by_mis(list_all($a_int, 'students'));
    is($s->{S2}{first_name}, 'Benjamin', 'but S2 is Benjamin now');
    my $g = by_mis(list_all($a_int, 'groups'));
    ok(exists $g->{X2}, 'and the new group X2 is there');

    # a student dropped while contacts are off: retired all the same
    my $drop = clone($off);
    $drop->{students} = [ grep { $_->{mis_id} ne 'S4' }
                          @{ $drop->{students} } ];
    $_->{students} = [ grep { $_ ne 'S4' } @{ $_->{students} || [] } ]
        for @{ $drop->{groups} };
    $r = sync($a_int, $drop);
    is_deeply($r->{json}{students}, counts(retired => 1, unchanged => 5),
              'auto_sync_contacts off: a dropped student is retired')
        or diag($r->{content});

    set_contacts_everywhere($a_admin, auto_sync_contacts => $T,
                            reader => $a_int);

    $r = sync($a_int, $off);
    Msgr::Test::json_ok($r, 200, 'auto_sync_contacts on again: 200');
    $j = $r->{json} || {};
    is_deeply($j->{contacts}, counts(created => 1, updated => 2,
                                     unchanged => 4),
              'auto_sync_contacts on again: C7 created, C1 and C3 updated')
        or diag($r->{content});
    is_deeply($j->{students}, counts(updated => 1, unchanged => 5),
              'auto_sync_contacts on again: S4 back');
    $after = by_mis(list_all($a_int, 'contacts'));
    is($after->{C1}{email}, 'jane.changed@example.org',
       'auto_sync_contacts on again: C1 has the new email');
    is($after->{C3}{home_phone}, '+442079460333',
       'auto_sync_contacts on again: C3 has a home number');
    is_deeply($after->{C3}{phone_problems}, {},
              'auto_sync_contacts on again: C3 has no phone problems');
    $snap = $off;
}


# ---------------------------------------------------------------------------
# tenancy: school B has the same mis_ids and never touches school A's

{
    my $api_a = api_view($a_int);
    my $db_a  = db_view($A);

    my $b = base();
    $_->{last_name} = "B-$_->{last_name}" for @{ $b->{students} };
    $_->{email} = undef for @{ $b->{contacts} };
    my $r = sync($b_int, $b);
    sync_ok($r, {
        students    => counts(created => 6),
        contacts    => counts(created => 6),
        staff       => counts(created => 3),
        groups      => counts(created => 4),
        memberships => counts(created => $M),
    }, 'school B: first sync of the same mis_ids creates its own');

    my $bs = by_mis(list_all($b_admin, 'students'));
    is($bs->{S1}{last_name}, 'B-Jones', 'school B sees its own S1');
    isnt($bs->{S1}{id}, $students->{S1}{id}, 'with an id of its own');
    my $as = by_mis(list_all($a_int, 'students'));
    is($as->{S1}{last_name}, 'Jones', 'school A still sees its own S1');

    # B drops everything: all of B's retired, none of A's
    $r = sync($b_int, { students => [], contacts => [], staff => [],
                        groups => [] });
    sync_ok($r, {
        students    => counts(retired => 6),
        contacts    => counts(retired => 6),
        staff       => counts(retired => 3),
        groups      => counts(retired => 4),
        memberships => counts(retired => $M),
    }, 'school B: an empty snapshot retires all of B');
    is(scalar @{ list_all($b_admin, 'students') }, 0,
       'school B lists no students');

    is(api_view($a_int), $api_a, 'school A: every list as before');
    is(db_view($A), $db_a, 'school A: its tables as before');

    # and A's sync leaves B alone
    my $db_b = db_view($B);
    sync_ok(sync($a_int, $snap), { students => counts(unchanged => 6) },
            'school A syncs again');
    is(db_view($B), $db_b, 'school B: its tables untouched by A\'s sync');
}

Msgr::Test::finish();
