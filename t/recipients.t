#!/usr/bin/perl

# GET /v1/recipients through the API: the primary contact, the next
# available one (contacts.next_available_if_no_primary off and on),
# all_contacts, siblings reached once, every MIS token on and off (class
# teachers, guests, pre-admissions, leavers inside and outside
# leavers_persistence_days, set with msgrctl school set), staff sends,
# voice numbers (sending.voice_calling), counts, bad parameters and another
# school's ids.

use strict;
use warnings;

use JSON::PP;
use POSIX qw(strftime);
use Test::More;
use Time::HiRes qw(sleep);
use Time::Local qw(timegm);

use lib 't/lib';
use Msgr::Test;
use Msgr::Test::API;

my $V = '/msgr/v1';

my $pg = Msgr::Test::pg_start();

my ($A, $B, $a_admin, $a_staff, $a_int, $b_admin, $b_int)
    = two_schools($pg);

my $ngx = api_nginx($pg);
my @WORKERS = sort $ngx->worker_pids;


# ---------------------------------------------------------------------------
# helpers

# The school's date today is UTC's; a leaving date $n days ago.
# The server's clock, from the Date header of its answer: the leaver rules
# count whole days up to the server's "today" (UTC), not the test's.
sub server_time {
    my $r = $ngx->req(GET => "$V/health");
    my %mon;
    @mon{qw(Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec)} = 0 .. 11;
    ($r->{headers}{date} // '')
        =~ /^\w{3}, (\d\d) (\w{3}) (\d{4}) (\d\d):(\d\d):(\d\d) GMT$/
        or die "no Date header: " . ($r->{headers}{date} // 'none') . "\n";
    return timegm($6, $5, $4, $1, $mon{$2}, $3);
}

my $NOW = server_time();
sub days_ago { strftime('%Y-%m-%d', gmtime($NOW - $_[0] * 86400)) }

# the MIS tab, as the operator changes it
sub set_mis {
    my ($id, $key, $field, $value) = @_;
    my ($rc, $out, $err) = Msgr::Test::msgrctl($pg, 'school', 'set', $id,
                                                "mis.$field=$value");
    is($rc, 0, "msgrctl school set $id mis.$field=$value") or diag("$out$err");
    settled_ok($key, 'mis', $field, $J->decode($value));
}

# the other tabs, as the school's admin changes them
sub set_tab {
    my ($key, $tab, $field, $value) = @_;
    my $r = $ngx->req(PATCH => "$V/settings/$tab", key => $key,
                      body => $J->encode({ $field => $value }),
                      headers => { 'Content-Type'
                                   => 'application/merge-patch+json' });
    Msgr::Test::json_ok($r, 200, "PATCH $tab.$field = " . $J->encode($value));
    settled_ok($key, $tab, $field, $value);
}

# every worker reads the new value before we go on
sub settled_ok {
    my ($key, $tab, $field, $value) = @_;
    local $Test::Builder::Level = $Test::Builder::Level + 1;
    my $want = $J->encode($value);
    my %good;       # answers in a row with the value, by worker
    my $settled = sub { !grep { ($good{$_} // 0) < 3 } @WORKERS };
    for (1 .. 300) {
        my $g = get($key, "$V/settings/$tab");
        my $got = $g->{status} == 200 && ref $g->{json} eq 'HASH'
                ? $J->encode($g->{json}{$field}) : '';
        if ($got eq $want) {
            $good{ $g->{headers}{'x-worker'} // '?' }++;
        } else {
            %good = ();
            sleep 0.02;
        }
        last if $settled->();
    }
    ok($settled->(), "$tab.$field reads $want on every worker (@WORKERS)")
        or diag(join ', ', map { "$_: " . ($good{$_} // 0) } @WORKERS);
}

# GET /v1/recipients?...; the result checked for consistency
sub rec {
    my ($key, $query) = @_;
    return get($key, "$V/recipients?$query");
}

sub rec_ok {
    my ($query, $name, $key) = @_;
    local $Test::Builder::Level = $Test::Builder::Level + 1;
    my $r = rec($key // $a_staff, $query);
    Msgr::Test::json_ok($r, 200, "$name: 200") or return {};
    my $j = $r->{json};
    consistent_ok($j, $name);
    return $j;
}

# counts agree with the lists, as docs/recipients.md says
sub consistent_ok {
    my ($j, $name) = @_;
    local $Test::Builder::Level = $Test::Builder::Level + 1;
    my @why;
    my @r = @{ $j->{recipients} || [] };
    my $c = $j->{counts} || {};
    my $nc = grep { $_->{type} eq 'contact' } @r;
    my $ns = grep { $_->{type} eq 'staff' } @r;
    push @why, "counts.contacts $c->{contacts}, listed $nc"
        unless ($c->{contacts} // -1) == $nc;
    push @why, "counts.staff $c->{staff}, listed $ns"
        unless ($c->{staff} // -1) == $ns;
    push @why, "counts.recipients" unless ($c->{recipients} // -1) == @r;
    push @why, "counts.unreachable"
        unless ($c->{unreachable} // -1) == @{ $j->{unreachable} || [] };
    push @why, "counts.excluded"
        unless ($c->{excluded} // -1) == @{ $j->{excluded} || [] };
    my %bc = (xpressions => 0, sms => 0, voice => 0, email => 0);
    for my $x (@r) {
        $bc{xpressions}++ if $x->{channels}{xpressions};
        $bc{sms}++ if defined $x->{channels}{sms};
        $bc{voice}++ if @{ $x->{channels}{voice} || [] };
        $bc{email}++ if defined $x->{channels}{email};
    }
    push @why, "by_channel " . $J->encode($c->{by_channel}) . ", listed "
             . $J->encode(\%bc)
        unless $J->encode($c->{by_channel}) eq $J->encode(\%bc);
    # contacts first, then staff
    my $seen_staff = 0;
    for my $x (@r) {
        $seen_staff ||= $x->{type} eq 'staff';
        push @why, "a contact after staff" if $seen_staff
                                              && $x->{type} eq 'contact';
    }
    my %once;
    push @why, "$_->{type} $_->{id} listed twice"
        for grep { $once{"$_->{type}:$_->{id}"}++ } @r;
    ok(!@why, "$name: counts agree with the lists")
        or diag(join "\n", @why, $J->encode($j));
}

sub bad_ok {
    my ($key, $query, $status, $field, $name) = @_;
    local $Test::Builder::Level = $Test::Builder::Level + 1;
    my $r = rec($key, $query);
    Msgr::Test::problem_ok($r, $status, "$name: $status");
    if (defined $field) {
        my @f = map { $_->{field} // '' }
                @{ ref $r->{json} eq 'HASH' ? $r->{json}{errors} || [] : [] };
        ok(scalar(grep { $_ eq $field } @f), "$name: names $field")
            or diag($r->{content});
    }
    return $r;
}


# ---------------------------------------------------------------------------
# the fixture

my ($LEFT_10, $LEFT_90, $LEFT_91, $LEFT_200, $LEAVES);
sub set_dates {
    $LEFT_10  = days_ago(10);
    $LEFT_90  = days_ago(90);
    $LEFT_91  = days_ago(91);
    $LEFT_200 = days_ago(200);
    $LEAVES   = days_ago(-5);
}
set_dates();

sub link_ { my ($c, $p, $rel, %o) = @_;
            return { mis_id => $c, priority => $p,
                     (defined $rel ? (relationship => $rel) : ()), %o } }

sub base {
    my @students = (
        [ S1 => 'Amy', 'Jones', '7B', 'on_roll', undef,
          [ link_('C1', 1, 'Mother'), link_('C2', 2, 'Father') ] ],
        [ S2 => 'Ben', 'Jones', '8C', 'on_roll', undef,
          [ link_('C2', 2, 'Step-father'), link_('C1', 1, 'Mother') ] ],
        [ S3 => 'Cal', 'Brown', '7B', 'on_roll', undef,
          [ link_('C3', 1, 'Mother', correspondence => $F),
            link_('C4', 2, 'Father') ] ],
        [ S4 => 'Dee', 'Green', '7B', 'guest', undef,
          [ link_('C5', 1) ] ],
        [ S5 => 'Eve', 'Pratt', '7B', 'pre_admission', undef,
          [ link_('C6', 1, 'Mother') ] ],
        [ S6 => 'Fay', 'Black', '7B', 'leaver', $LEFT_10,
          [ link_('C7', 1, 'Mother') ] ],
        [ S7 => 'Gus', 'Grey', '7B', 'leaver', $LEFT_200,
          [ link_('C8', 1, 'Father') ] ],
        [ S8 => 'Hal', 'Hunt', '7B', 'on_roll', undef, [] ],
        [ S9 => 'Ivy', 'Irons', '9A', 'on_roll', undef,
          [ link_('C9', 1, 'Mother') ] ],
        [ S10 => 'Jo', 'Ode', '7B', 'leaver', $LEFT_90,
          [ link_('C10', 1, 'Father') ] ],
        [ S11 => 'Kai', 'Khan', '7B', 'leaver', $LEFT_91,
          [ link_('C11', 1, 'Mother') ] ],
        [ S12 => 'Lia', 'Lowe', '7B', 'leaver', $LEAVES,
          [ link_('C12', 1, 'Mother') ] ],
        [ S13 => 'Max', 'Moss', '9A', 'on_roll', undef,
          [ link_('C13', 1, 'Father'), link_('C14', 2, 'Mother') ] ],
        [ S14 => 'Ned', 'Nash', '9A', 'on_roll', undef,
          [ link_('C15', 1, 'Father', correspondence => $F) ] ],
        [ S15 => 'Oli', 'Ode', '9A', 'on_roll', undef,
          [ link_('C16', 1, 'Father') ] ],
        [ S16 => 'Pip', 'Pike', '9A', 'on_roll', undef,
          [ link_('C17', 1, 'Mother') ] ],
        [ S17 => 'Quin', 'Quay', '9A', 'on_roll', undef,
          [ link_('C18', 1, 'Mother') ] ],
    );
    my @contacts = (
        [ C1 => 'Mrs', 'Jane', 'Jones', '020 7946 0001', undef,
          '07700 900101', 'jane@example.org' ],
        [ C2 => 'Mr', 'John', 'Jones', undef, '0113 496 0002',
          '07700 900102', undef ],
        [ C3 => 'Ms', 'Kim', 'Brown', '020 7946 0003', undef,
          '07700 900103', 'kim@example.org' ],
        [ C4 => 'Mr', 'Lee', 'Brown', undef, undef, '07700 900104', undef ],
        [ C5 => 'Mrs', 'Gina', 'Green', undef, undef, '07700 900105', undef ],
        [ C6 => '', 'Pat', 'Pratt', undef, undef, undef, 'pat@example.org' ],
        [ C7 => 'Mrs', 'Ros', 'Black', undef, undef, '07700 900107', undef ],
        [ C8 => 'Mr', 'Guy', 'Grey', undef, undef, '07700 900108', undef ],
        [ C9 => 'Dr', 'Isla', 'Irons', '020 7946 0009', '0113 496 0009',
          '07700 900109', 'isla@example.org' ],
        [ C10 => 'Mr', 'Jim', 'Ode', undef, '0113 496 0010', undef, undef ],
        [ C11 => 'Mrs', 'Kay', 'Khan', undef, undef, '07700 900111', undef ],
        [ C12 => 'Ms', 'Liz', 'Lowe', undef, undef, undef,
          'liz@example.org' ],
        [ C13 => 'Mr', 'Nat', 'Moss', undef, undef, undef, undef ],
        [ C14 => 'Mrs', 'Meg', 'Moss', undef, undef, '07700 900114', undef ],
        [ C15 => 'Mr', 'Nick', 'Nash', undef, undef, '07700 900115', undef ],
        [ C16 => 'Mr', 'Otto', 'Ode', undef, '0113 496 0016', undef, undef ],
        [ C17 => 'Ms', 'Pia', 'Pike', undef, undef, '07700 900117', undef ],
        [ C18 => 'Mrs', 'Queenie', 'Quay', '020 7946 0018', '020 7946 0018',
          '07700 900118', undef ],
    );
    my @staff = (
        [ T1 => 'Mr', 'Tom', 'Smith', undef, '07700 900401',
          't.smith@school.example' ],
        [ T2 => 'Ms', 'Sara', 'Khan', '0117 496 0402', undef,
          's.khan@school.example' ],
        [ T3 => 'Mr', 'Ned', 'Null', undef, undef, undef ],
        [ T4 => 'Mrs', 'Una', 'Tutor', undef, '07700 900404', undef ],
        [ T5 => 'Dr', 'Vic', 'Vale', '0117 496 0405', '07700 900405',
          undef ],
    );
    return {
        students => [ map { {
            mis_id => $_->[0], first_name => $_->[1], last_name => $_->[2],
            reg_group => $_->[3], year => substr($_->[3], 0, 1),
            status => $_->[4], leaving_date => $_->[5],
            contacts => $_->[6] } } @students ],
        contacts => [ map { {
            mis_id => $_->[0], title => $_->[1], first_name => $_->[2],
            last_name => $_->[3], home_phone => $_->[4],
            work_phone => $_->[5], mobile_phone => $_->[6],
            email => $_->[7] } } @contacts ],
        staff => [ map { {
            mis_id => $_->[0], title => $_->[1], first_name => $_->[2],
            last_name => $_->[3], work_phone => $_->[4],
            mobile_phone => $_->[5], email => $_->[6] } } @staff ],
        groups => [
            { mis_id => 'K7BMA', name => '7B Maths', type => 'class',
              students => [qw(S1 S3 S4 S5 S6 S7 S8 S10 S11 S12)],
              teachers => ['T1'] },
            { mis_id => 'R7B', name => '7B', type => 'registration',
              students => [qw(S1 S3)], staff => ['T4'] },
            { mis_id => 'Y8', name => 'Year 8', type => 'year',
              students => ['S2'] },
            { mis_id => 'K9SC', name => '9 Science', type => 'class',
              students => [qw(S9 S13 S14)], staff => ['T5'],
              teachers => ['T2'] },
            { mis_id => 'X1', name => 'Trip Leaders', type => 'custom',
              staff => [qw(T5 T2 T3)] },
            { mis_id => 'X2', name => 'Voice Test', type => 'custom',
              students => [qw(S9 S15 S16 S17)] },
        ],
    };
}

my $first = sync_json($a_int, base());
is($first->{students}{created}, 17, 'school A: 17 students');
is_deeply($first->{warnings}, [], 'school A: every number is good');

sub ids_of {
    my ($key, $what) = @_;
    my $j = get_json($key, "$V/$what?limit=200");
    return { map { $_->{mis_id} => $_->{id} } @{ $j->{items} } };
}

my $S = ids_of($a_staff, 'students');
my $C = ids_of($a_staff, 'contacts');
my $ST = ids_of($a_staff, 'staff');
my $G = ids_of($a_staff, 'groups');

# the expected entries
sub student { my ($s, $name) = @_; return { id => $S->{$s}, name => $name } }

sub stu_of {
    my ($s, $name, $rel) = @_;
    return { id => $S->{$s}, name => $name, relationship => $rel };
}

sub unreach {
    my ($s, $name, $reason) = @_;
    return { type => 'student', id => $S->{$s}, name => $name,
             reason => $reason };
}

sub counts {
    my (%k) = @_;
    my $bc = delete $k{by_channel} || {};
    return { students => 0, recipients => 0, contacts => 0, staff => 0,
             unreachable => 0, excluded => 0, %k,
             by_channel => { xpressions => 0, sms => 0, voice => 0,
                             email => 0, %$bc } };
}

sub rec_is {
    my ($query, $want, $name, $key) = @_;
    local $Test::Builder::Level = $Test::Builder::Level + 1;
    my $j = rec_ok($query, $name, $key);
    for my $k (qw(recipients unreachable excluded counts)) {
        next unless exists $want->{$k};
        is_deeply($j->{$k}, $want->{$k}, "$name: $k")
            or diag('got ' . $J->encode($j->{$k}));
    }
    return $j;
}

my $JANE = { type => 'contact', id => $C->{C1}, name => 'Mrs Jane Jones',
             channels => { xpressions => $F, sms => '+447700900101',
                           voice => ['+442079460001'],
                           email => 'jane@example.org' } };
my $JOHN = { type => 'contact', id => $C->{C2}, name => 'Mr John Jones',
             channels => { xpressions => $F, sms => '+447700900102',
                           voice => ['+441134960002'], email => undef } };

sub with_students { my ($c, @s) = @_; return { %$c, students => [@s] } }

my $NEXT_OFF = '(contacts.next_available_if_no_primary is off)';
my $NOBODY   = 'no contact allows correspondence and can be reached';


# ---------------------------------------------------------------------------
# the primary contact; siblings; all contacts

rec_is("student=$S->{S1}", {
    recipients  => [ with_students($JANE, stu_of(S1 => 'Amy Jones',
                                                 'Mother')) ],
    unreachable => [],
    excluded    => [],
    counts      => counts(students => 1, recipients => 1, contacts => 1,
                          by_channel => { sms => 1, voice => 1,
                                          email => 1 }),
}, 'S1, primary contact');

rec_is("student=$S->{S1}&send_to=primary_contact", {
    recipients => [ with_students($JANE, stu_of(S1 => 'Amy Jones',
                                                'Mother')) ],
}, 'S1, send_to=primary_contact said');

# S2 lists C2 first, with priority 2: C1 (priority 1) is its primary
for my $q ("student=$S->{S1}&student=$S->{S2}",
           "student=$S->{S1},$S->{S2}")
{
    rec_is($q, {
        recipients => [ with_students($JANE,
                            stu_of(S1 => 'Amy Jones', 'Mother'),
                            stu_of(S2 => 'Ben Jones', 'Mother')) ],
        unreachable => [],
        counts => counts(students => 2, recipients => 1, contacts => 1,
                         by_channel => { sms => 1, voice => 1, email => 1 }),
    }, "siblings ($q): their mother once, with both");
}

# a student named twice, and through a group too, counts once
rec_is("student=$S->{S1},$S->{S1}&group=$G->{R7B}&group=$G->{R7B}", {
    counts => counts(students => 2, recipients => 1, contacts => 1,
                     unreachable => 1,
                     by_channel => { sms => 1, voice => 1, email => 1 }),
}, 'S1 twice and R7B twice: S1 counted once');

rec_is("student=$S->{S1},$S->{S2}&send_to=all_contacts", {
    recipients => [
        with_students($JANE, stu_of(S1 => 'Amy Jones', 'Mother'),
                             stu_of(S2 => 'Ben Jones', 'Mother')),
        with_students($JOHN, stu_of(S1 => 'Amy Jones', 'Father'),
                             stu_of(S2 => 'Ben Jones', 'Step-father')),
    ],
    unreachable => [],
    counts => counts(students => 2, recipients => 2, contacts => 2,
                     by_channel => { sms => 2, voice => 2, email => 1 }),
}, 'siblings, all_contacts: each parent once, each relationship theirs');

# a student with no contacts
rec_is("student=$S->{S8}", {
    recipients  => [],
    unreachable => [ unreach(S8 => 'Hal Hunt', 'no contacts') ],
    counts      => counts(students => 1, unreachable => 1),
}, 'S8 has no contacts');
rec_is("student=$S->{S8}&send_to=all_contacts", {
    unreachable => [ unreach(S8 => 'Hal Hunt', 'no contacts') ],
}, 'S8, all_contacts');

# a relationship the MIS does not give is null (S4's link to C5, with
# guests on below)


# ---------------------------------------------------------------------------
# the primary contact who cannot be used

# next_available_if_no_primary off (the default)
rec_is("student=$S->{S3}", {
    recipients  => [],
    unreachable => [ unreach(S3 => 'Cal Brown', 'the primary contact Kim '
                     . "Brown does not allow correspondence $NEXT_OFF") ],
    counts      => counts(students => 1, unreachable => 1),
}, 'S3: primary does not allow correspondence, next available off');

rec_is("student=$S->{S13}", {
    recipients  => [],
    unreachable => [ unreach(S13 => 'Max Moss', 'the primary contact Nat '
                     . "Moss has no Xpressions app, phone number or email "
                     . $NEXT_OFF) ],
}, 'S13: primary cannot be reached, next available off');

rec_is("student=$S->{S14}", {
    unreachable => [ unreach(S14 => 'Ned Nash', 'the primary contact Nick '
                     . "Nash does not allow correspondence $NEXT_OFF") ],
}, 'S14: the only contact does not allow correspondence');

# all_contacts does not care for the primary
rec_is("student=$S->{S3}&send_to=all_contacts", {
    recipients => [ { type => 'contact', id => $C->{C4},
                      name => 'Mr Lee Brown',
                      students => [ stu_of(S3 => 'Cal Brown', 'Father') ],
                      channels => { xpressions => $F, sms => '+447700900104',
                                    voice => [], email => undef } } ],
    unreachable => [],
}, 'S3, all_contacts: only the contact who allows correspondence');
rec_is("student=$S->{S14}&send_to=all_contacts", {
    recipients  => [],
    unreachable => [ unreach(S14 => 'Ned Nash', $NOBODY) ],
}, 'S14, all_contacts: nobody');

set_tab($a_admin, 'contacts', 'next_available_if_no_primary', $T);

rec_is("student=$S->{S3}", {
    recipients => [ { type => 'contact', id => $C->{C4},
                      name => 'Mr Lee Brown',
                      students => [ stu_of(S3 => 'Cal Brown', 'Father') ],
                      channels => { xpressions => $F, sms => '+447700900104',
                                    voice => [], email => undef } } ],
    unreachable => [],
    counts => counts(students => 1, recipients => 1, contacts => 1,
                     by_channel => { sms => 1 }),
}, 'S3: next available on, the next contact');

rec_is("student=$S->{S13}", {
    recipients => [ { type => 'contact', id => $C->{C14},
                      name => 'Mrs Meg Moss',
                      students => [ stu_of(S13 => 'Max Moss', 'Mother') ],
                      channels => { xpressions => $F, sms => '+447700900114',
                                    voice => [], email => undef } } ],
    unreachable => [],
}, 'S13: next available on, the next contact');

rec_is("student=$S->{S14}", {
    recipients  => [],
    unreachable => [ unreach(S14 => 'Ned Nash', $NOBODY) ],
}, 'S14: next available on, nobody left');

rec_is("student=$S->{S1}", {
    recipients => [ with_students($JANE, stu_of(S1 => 'Amy Jones',
                                                'Mother')) ],
}, 'S1: next available on, still the primary');

set_tab($a_admin, 'contacts', 'next_available_if_no_primary', $F);
rec_is("student=$S->{S3}", {
    recipients => [],
}, 'S3: next available off again, nobody');


# ---------------------------------------------------------------------------
# the MIS tokens

my $K7 = $G->{K7BMA};
my $TOM = { type => 'staff', id => $ST->{T1}, name => 'Mr Tom Smith',
            groups => [$K7],
            channels => { xpressions => $F, sms => '+447700900401',
                          voice => ['+447700900401'],
                          email => 't.smith@school.example' } };

my $GUEST_OFF = 'guest students are not included (mis.guest_students is off)';
my $PRE_OFF   = 'pre-admission students are not included '
              . '(mis.pre_admissions is off)';
my $LEAVERS_OFF = 'leavers are not included (mis.leavers_included is off)';

sub left_reason {
    my ($date, $days) = @_;
    return "left on $date, more than $days day" . ($days == 1 ? '' : 's')
         . ' ago (mis.leavers_persistence_days)';
}

sub excl { my ($s, $n, $why) = @_;
           return { type => 'student', id => $S->{$s}, name => $n,
                    reason => $why } }

# the defaults: teachers on, guests, pre-admissions and leavers off
rec_is("group=$K7", {
    recipients => [ with_students($JANE, stu_of(S1 => 'Amy Jones',
                                                'Mother')),
                    $TOM ],
    unreachable => [
        unreach(S3 => 'Cal Brown', 'the primary contact Kim Brown does '
                . "not allow correspondence $NEXT_OFF"),
        unreach(S8 => 'Hal Hunt', 'no contacts'),
    ],
    excluded => [
        excl(S4 => 'Dee Green', $GUEST_OFF),
        excl(S5 => 'Eve Pratt', $PRE_OFF),
        excl(S6 => 'Fay Black', $LEAVERS_OFF),
        excl(S7 => 'Gus Grey', $LEAVERS_OFF),
        excl(S10 => 'Jo Ode', $LEAVERS_OFF),
        excl(S11 => 'Kai Khan', $LEAVERS_OFF),
        excl(S12 => 'Lia Lowe', $LEAVERS_OFF),
    ],
    counts => counts(students => 3, recipients => 2, contacts => 1,
                     staff => 1, unreachable => 2, excluded => 7,
                     by_channel => { sms => 2, voice => 2, email => 2 }),
}, '7B Maths with the defaults');

# teachers_in_class_groups
set_mis($A, $a_admin, 'teachers_in_class_groups', 'false');
{
    my $j = rec_is("group=$K7", {
        recipients => [ with_students($JANE, stu_of(S1 => 'Amy Jones',
                                                    'Mother')) ],
        counts => counts(students => 3, recipients => 1, contacts => 1,
                         unreachable => 2, excluded => 7,
                         by_channel => { sms => 1, voice => 1, email => 1 }),
    }, '7B Maths, teachers_in_class_groups off: no class teacher');
    $j = rec_is("group=$K7&send_to=staff", {
        recipients => [], counts => counts(),
    }, '7B Maths, staff send, teachers off: nobody');
}
set_mis($A, $a_admin, 'teachers_in_class_groups', 'true');
rec_is("group=$K7", {
    recipients => [ with_students($JANE, stu_of(S1 => 'Amy Jones',
                                                'Mother')),
                    $TOM ],
}, '7B Maths, teachers_in_class_groups on again: the class teacher');
rec_is("group=$K7&send_to=all_contacts", {
    recipients => [
        with_students($JANE, stu_of(S1 => 'Amy Jones', 'Mother')),
        with_students($JOHN, stu_of(S1 => 'Amy Jones', 'Father')),
        { type => 'contact', id => $C->{C4}, name => 'Mr Lee Brown',
          students => [ stu_of(S3 => 'Cal Brown', 'Father') ],
          channels => { xpressions => $F, sms => '+447700900104',
                        voice => [], email => undef } },
        $TOM ],
}, '7B Maths, all_contacts: the class teacher too');

# never for other kinds of groups: the registration group's tutor is staff,
# not a teacher, and a class group's staff are not its teachers
rec_is("group=$G->{R7B}", {
    recipients => [ with_students($JANE, stu_of(S1 => 'Amy Jones',
                                                'Mother')) ],
    counts => counts(students => 2, recipients => 1, contacts => 1,
                     unreachable => 1,
                     by_channel => { sms => 1, voice => 1, email => 1 }),
}, 'registration group: no staff in a primary_contact send');
rec_is("group=$G->{Y8}", {
    recipients => [ with_students($JANE, stu_of(S2 => 'Ben Jones',
                                                'Mother')) ],
}, 'year group: no staff');
{
    my $j = rec_ok("group=$G->{K9SC}", '9 Science');
    is_deeply([ map { "$_->{type}:$_->{id}" } grep { $_->{type} eq 'staff' }
                @{ $j->{recipients} } ],
              [ "staff:$ST->{T2}" ],
              '9 Science: its teacher, not its staff member');
}

# guest_students
set_mis($A, $a_admin, 'guest_students', 'true');
{
    my $j = rec_ok("group=$K7", '7B Maths, guest_students on');
    my ($gina) = grep { $_->{type} eq 'contact' && $_->{id} == $C->{C5} }
                 @{ $j->{recipients} };
    is_deeply($gina, {
        type => 'contact', id => $C->{C5}, name => 'Mrs Gina Green',
        students => [ stu_of(S4 => 'Dee Green', undef) ],
        channels => { xpressions => $F, sms => '+447700900105', voice => [],
                      email => undef } },
        'guest_students on: the guest\'s contact, relationship null');
    ok(!grep({ $_->{id} == $S->{S4} } @{ $j->{excluded} }),
       'guest_students on: the guest is not excluded');
    is($j->{counts}{students}, 4, 'guest_students on: 4 students');
    is($j->{counts}{excluded}, 6, 'guest_students on: 6 excluded');
}
set_mis($A, $a_admin, 'guest_students', 'false');
{
    my $j = rec_ok("student=$S->{S4}", 'S4, guest_students off');
    is_deeply($j->{excluded}, [ excl(S4 => 'Dee Green', $GUEST_OFF) ],
              'guest_students off: the guest excluded, with the reason');
    is_deeply($j->{recipients}, [], 'guest_students off: nobody');
    is($j->{counts}{students}, 0, 'guest_students off: 0 students');
}

# pre_admissions
set_mis($A, $a_admin, 'pre_admissions', 'true');
{
    my $j = rec_ok("group=$K7", '7B Maths, pre_admissions on');
    my ($pat) = grep { $_->{type} eq 'contact' && $_->{id} == $C->{C6} }
                @{ $j->{recipients} };
    is_deeply($pat, {
        type => 'contact', id => $C->{C6}, name => 'Pat Pratt',
        students => [ stu_of(S5 => 'Eve Pratt', 'Mother') ],
        channels => { xpressions => $F, sms => undef, voice => [],
                      email => 'pat@example.org' } },
        'pre_admissions on: the pre-admission\'s contact');
    ok(!grep({ $_->{id} == $S->{S5} } @{ $j->{excluded} }),
       'pre_admissions on: not excluded');
    ok(grep({ $_->{id} == $S->{S4} } @{ $j->{excluded} }),
       'pre_admissions on: the guest is still excluded');
}
set_mis($A, $a_admin, 'pre_admissions', 'false');
{
    my $j = rec_ok("student=$S->{S5}", 'S5, pre_admissions off');
    is_deeply($j->{excluded}, [ excl(S5 => 'Eve Pratt', $PRE_OFF) ],
              'pre_admissions off: excluded, with the reason');
}

# leavers: 10, 90 (the limit, still in), 91 and 200 days ago, and one whose
# leaving date is still to come
sub leavers_ok {
    my ($days, $in, $out, $name) = @_;
    local $Test::Builder::Level = $Test::Builder::Level + 1;
    my %date = (S6 => $LEFT_10, S7 => $LEFT_200, S10 => $LEFT_90,
                S11 => $LEFT_91, S12 => $LEAVES);
    my %who = (S6 => 'Fay Black', S7 => 'Gus Grey', S10 => 'Jo Ode',
               S11 => 'Kai Khan', S12 => 'Lia Lowe');
    my %contact = (S6 => 'C7', S7 => 'C8', S10 => 'C10', S11 => 'C11',
                   S12 => 'C12');
    my $j = rec_ok("group=$K7", $name);
    my %reached = map { $_->{id} => 1 }
                  grep { $_->{type} eq 'contact' } @{ $j->{recipients} };
    for my $s (@$in) {
        ok($reached{ $C->{ $contact{$s} } },
           "$name: $s (left $date{$s}) is sent to");
    }
    my @want = map { excl($_ => $who{$_}, left_reason($date{$_}, $days)) }
               @$out;
    my @got = grep { $_->{reason} =~ /^left on/ } @{ $j->{excluded} };
    is_deeply(\@got, \@want, "$name: " . (@$out ? "@$out" : 'nobody')
                             . ' excluded, with the date')
        or diag($J->encode($j->{excluded}));
    is(scalar @{ $j->{excluded} }, 2 + @$out,
       "$name: the guest, the pre-admission and those leavers excluded");
    is($j->{counts}{students}, 3 + @$in, "$name: students counted");
}

# The checks below count days to the server's "today": keep them clear of
# midnight (UTC), and date the leavers from the server's day as it is now.
{
    my $t = server_time();
    my $wait = 86400 - $t % 86400;
    if ($wait < 180) {
        diag("waiting $wait s for midnight (UTC) to pass");
        sleep $wait + 1;
        $t = server_time();
    }
    if (int($t / 86400) != int($NOW / 86400)) {
        $NOW = $t;
        set_dates();
        sync_json($a_int, base());
    }
}

set_mis($A, $a_admin, 'leavers_included', 'true');
leavers_ok(90, [qw(S6 S10 S12)], [qw(S7 S11)],
           'leavers_included on, 90 days');
{
    my $j = rec_ok("student=$S->{S10}", 'S10, left exactly 90 days ago');
    is_deeply($j->{recipients}[0]{students},
              [ stu_of(S10 => 'Jo Ode', 'Father') ],
              'a leaver of exactly 90 days ago is sent to');
    is_deeply($j->{recipients}[0]{channels}{voice}, ['+441134960010'],
              'a contact with only a work number: voice calls it');
}
set_mis($A, $a_admin, 'leavers_persistence_days', '10');
leavers_ok(10, [qw(S6 S12)], [qw(S7 S10 S11)],
           'leavers_included on, 10 days');
set_mis($A, $a_admin, 'leavers_persistence_days', '9');
leavers_ok(9, [qw(S12)], [qw(S6 S7 S10 S11)],
           'leavers_included on, 9 days');
set_mis($A, $a_admin, 'leavers_persistence_days', '1');
rec_is("student=$S->{S6}", {
    excluded => [ excl(S6 => 'Fay Black', left_reason($LEFT_10, 1)) ],
}, 'leavers_persistence_days 1: "1 day"');
set_mis($A, $a_admin, 'leavers_persistence_days', '365');
leavers_ok(365, [qw(S6 S7 S10 S11 S12)], [],
           'leavers_included on, 365 days');
set_mis($A, $a_admin, 'leavers_included', 'false');
rec_is("student=$S->{S6},$S->{S12}", {
    excluded => [ excl(S6 => 'Fay Black', $LEAVERS_OFF),
                  excl(S12 => 'Lia Lowe', $LEAVERS_OFF) ],
    recipients => [],
    counts => counts(excluded => 2),
}, 'leavers_included off again (365 days): every leaver excluded');
set_mis($A, $a_admin, 'leavers_persistence_days', '90');

# registration groups in names
set_tab($a_admin, 'contacts', 'show_registration_in_names', $T);
rec_is("student=$S->{S1},$S->{S8}", {
    recipients => [ with_students($JANE, stu_of(S1 => 'Amy Jones (7B)',
                                                'Mother')) ],
    unreachable => [ unreach(S8 => 'Hal Hunt (7B)', 'no contacts') ],
}, 'show_registration_in_names on: Amy Jones (7B)');
set_tab($a_admin, 'contacts', 'show_registration_in_names', $F);


# ---------------------------------------------------------------------------
# staff sends

my $SARA = { type => 'staff', id => $ST->{T2}, name => 'Ms Sara Khan',
             channels => { xpressions => $F, sms => undef,
                           voice => ['+441174960402'],
                           email => 's.khan@school.example' } };
my $VIC  = { type => 'staff', id => $ST->{T5}, name => 'Dr Vic Vale',
             channels => { xpressions => $F, sms => '+447700900405',
                           voice => ['+441174960405'], email => undef } };
my $NED  = { type => 'staff', id => $ST->{T3}, name => 'Mr Ned Null',
             reason => 'no mobile, work number or email' };

sub in_groups { my ($x, @g) = @_; return { %$x, groups => [@g] } }

my $X1 = $G->{X1};
rec_is("group=$X1&send_to=staff", {
    recipients  => [ in_groups($SARA, $X1), in_groups($VIC, $X1) ],
    unreachable => [ in_groups($NED, $X1) ],
    excluded    => [],
    counts      => counts(recipients => 2, staff => 2, unreachable => 1,
                          by_channel => { sms => 1, voice => 2,
                                          email => 1 }),
}, 'Trip Leaders, send_to=staff');

rec_is("group=$X1&send_to=primary_contact", {
    recipients => [], unreachable => [],
    counts => counts(),
}, 'Trip Leaders, primary_contact: a custom group\'s staff are not sent to');

rec_is("group=$X1,$K7&send_to=staff&student=$S->{S1}", {
    recipients  => [ in_groups($SARA, $X1), in_groups($VIC, $X1),
                     $TOM ],
    unreachable => [ in_groups($NED, $X1) ],
    counts      => counts(recipients => 3, staff => 3, unreachable => 1,
                          by_channel => { sms => 2, voice => 3,
                                          email => 2 }),
}, 'Trip Leaders and 7B Maths, staff: its class teacher too, no students');

# in two groups: once, with both
my $K9 = $G->{K9SC};
rec_is("group=$K9&group=$X1&send_to=staff", {
    recipients  => [ in_groups($VIC, $K9, $X1), in_groups($SARA, $K9, $X1) ],
    unreachable => [ in_groups($NED, $X1) ],
}, '9 Science and Trip Leaders, staff: each once, with both groups');

rec_is("group=$G->{R7B}&send_to=staff", {
    recipients => [ in_groups({ type => 'staff', id => $ST->{T4},
                                name => 'Mrs Una Tutor',
                                channels => { xpressions => $F,
                                              sms => '+447700900404',
                                              voice => ['+447700900404'],
                                              email => undef } },
                              $G->{R7B}) ],
}, 'registration group, staff: its tutor');


# ---------------------------------------------------------------------------
# voice numbers: sending.voice_calling

my $X2 = $G->{X2};

sub voice_of {
    my ($j) = @_;
    return { map { $_->{id} => $_->{channels}{voice} } @{ $j->{recipients} } };
}

{
    my $j = rec_ok("group=$X2", 'voice, first_number');
    my $v = voice_of($j);
    is_deeply($v->{ $C->{C9} }, ['+442079460009'],
              'first_number: home, work and mobile: the home number');
    is_deeply($v->{ $C->{C16} }, ['+441134960016'],
              'first_number: work only: the work number');
    is_deeply($v->{ $C->{C17} }, [],
              'first_number: mobile only: no voice call');
    is_deeply($v->{ $C->{C18} }, ['+442079460018'],
              'first_number: home = work: the home number');
    my ($pia) = grep { $_->{id} == $C->{C17} } @{ $j->{recipients} };
    is($pia->{channels}{sms}, '+447700900117',
       'first_number: mobile only: still an SMS');
    is_deeply($j->{counts}{by_channel},
              { xpressions => 0, sms => 3, voice => 3, email => 1 },
              'first_number: by_channel');
    $j = rec_ok("group=$X1&send_to=staff", 'voice, first_number, staff');
    $v = voice_of($j);
    is_deeply($v->{ $ST->{T5} }, ['+441174960405'],
              'first_number: staff with work and mobile: work');
    $j = rec_ok("group=$K7&send_to=staff", 'voice, first_number, teacher');
    is_deeply(voice_of($j)->{ $ST->{T1} }, ['+447700900401'],
              'first_number: staff with a mobile only: the mobile');
}

set_tab($a_admin, 'sending', 'voice_calling', 'all_numbers');
{
    my $j = rec_ok("group=$X2", 'voice, all_numbers');
    my $v = voice_of($j);
    is_deeply($v->{ $C->{C9} },
              ['+442079460009', '+441134960009', '+447700900109'],
              'all_numbers: home, work, then mobile');
    is_deeply($v->{ $C->{C16} }, ['+441134960016'],
              'all_numbers: work only');
    is_deeply($v->{ $C->{C17} }, ['+447700900117'],
              'all_numbers: mobile only: the mobile');
    is_deeply($v->{ $C->{C18} }, ['+442079460018', '+447700900118'],
              'all_numbers: the same number twice called once');
    is_deeply($j->{counts}{by_channel},
              { xpressions => 0, sms => 3, voice => 4, email => 1 },
              'all_numbers: by_channel');
    $j = rec_ok("group=$X1&send_to=staff", 'voice, all_numbers, staff');
    is_deeply(voice_of($j)->{ $ST->{T5} }, ['+441174960405', '+447700900405'],
              'all_numbers: staff: work, then mobile');
}
set_tab($a_admin, 'sending', 'voice_calling', 'first_number');
is_deeply(voice_of(rec_ok("group=$X2", 'voice, first_number again'))
              ->{ $C->{C9} }, ['+442079460009'],
          'first_number again: the home number');


# ---------------------------------------------------------------------------
# every key may ask; the same data gives the same answer

{
    my @bodies;
    for my $k ($a_admin, $a_staff, $a_int) {
        my $r = rec($k, "group=$K7,$X2&student=$S->{S9}");
        Msgr::Test::json_ok($r, 200, 'any key may ask');
        push @bodies, $r->{content};
    }
    is($bodies[1], $bodies[0], 'staff key: the same answer as admin');
    is($bodies[2], $bodies[0], 'integrator key: the same answer as admin');
    my $j = $J->decode($bodies[0]);
    is_deeply([ map { $_->{id} } grep { $_->{type} eq 'contact' }
                @{ $j->{recipients} } ],
              [ @$C{qw(C9 C1 C16 C17 C18)} ],
              'contacts in the order first reached (the student named, '
              . 'then the groups\' students in the order given)');
}


# ---------------------------------------------------------------------------
# bad parameters

bad_ok($a_staff, "group=$K7&send_to=everyone", 400, 'send_to',
       'send_to=everyone');
bad_ok($a_staff, "group=$K7&send_to=", 400, 'send_to', 'send_to empty');
bad_ok($a_staff, '', 400, 'group', 'no group or student');
bad_ok($a_staff, 'send_to=staff', 400, 'group', 'send_to alone');
bad_ok($a_staff, 'group=', 400, 'group', 'group empty');
bad_ok($a_staff, 'group=abc', 400, 'group', 'group=abc');
bad_ok($a_staff, 'group=0', 400, 'group', 'group=0');
bad_ok($a_staff, 'group=-4', 400, 'group', 'group=-4');
bad_ok($a_staff, "group=$K7,,$X1", 400, 'group', 'group=1,,2');
bad_ok($a_staff, 'student=1.5', 400, 'student', 'student=1.5');
bad_ok($a_staff, "student=$S->{S1}x", 400, 'student', 'student=1x');
bad_ok($a_staff, 'student=' . ('9' x 30), 400, 'student',
       'student too large');
bad_ok($a_staff, 'group=' . join(',', 1 .. 501), 400, 'group',
       '501 groups');


# ---------------------------------------------------------------------------
# another school's ids, unknown and retired ones

{
    my $b = base();
    $_->{first_name} = "B$_->{first_name}" for @{ $b->{students} };
    sync_json($b_int, $b);
    my $BS = ids_of($b_admin, 'students');
    my $BG = ids_of($b_admin, 'groups');

    my $r = bad_ok($b_admin, "group=$K7", 404, undef,
                   'school B asks for A\'s group');
    unlike($r->{content}, qr/Jones|Maths/, 'none of A\'s data in the 404');
    bad_ok($b_admin, "student=$S->{S1}", 404, undef,
           'school B asks for A\'s student');
    bad_ok($b_admin, "group=$BG->{K7BMA}&student=$S->{S1}", 404, undef,
           'school B: its own group and A\'s student');
    bad_ok($a_admin, "group=$K7,$BG->{X1}&send_to=staff", 404, undef,
           'school A: its own group and B\'s');
    bad_ok($a_admin, 'group=999999', 404, undef, 'a group nobody has');
    bad_ok($a_admin, 'student=999999', 404, undef, 'a student nobody has');

    my $j = rec_ok("group=$BG->{R7B}", 'school B, its own group', $b_int);
    is_deeply([ map { $_->{name} } @{ $j->{recipients}[0]{students} } ],
              ['BAmy Jones'], 'school B sees its own students');

    # S8 retired from A
    my $a = base();
    $a->{students} = [ grep { $_->{mis_id} ne 'S8' } @{ $a->{students} } ];
    $_->{students} = [ grep { $_ ne 'S8' } @{ $_->{students} || [] } ]
        for @{ $a->{groups} };
    sync_json($a_int, $a);
    bad_ok($a_admin, "student=$S->{S8}", 404, undef, 'a retired student');
    $j = rec_ok("group=$K7", '7B Maths without S8');
    ok(!grep({ $_->{id} == $S->{S8} } @{ $j->{unreachable} }),
       'a retired student is not among the unreachable');
}

Msgr::Test::finish();
