#!/usr/bin/perl

# Staff contact details with contacts.hide_staff_contact_details on: every
# route that shows a staff member (/staff, group members, /recipients with
# send_to=staff and class teachers) masks numbers, emails (a first
# character outside ASCII included) and the raw text of numbers the MIS had
# wrong (phone_problems) for every key but admin.

use strict;
use warnings;
use utf8;

use JSON::PP;
use Test::More;

use lib 't/lib';
use Msgr::Test;
use Msgr::Test::API qw($J $T $F one_school);

binmode(Test::More->builder->$_, ':encoding(UTF-8)')
    for qw(output failure_output todo_output);

my $V = '/msgr/v1';

my $pg = Msgr::Test::pg_start();
my ($A, $admin, $staff, $int) = one_school($pg);

my $ngx = Msgr::Test::nginx_start($pg, workers => 2);

sub get {
    my ($key, $path) = @_;
    my $r = $ngx->req(GET => "$V/$path", key => $key);
    die "GET $path: $r->{status} $r->{content}\n"
        unless $r->{status} == 200 && ref $r->{json} eq 'HASH';
    return $r;
}

sub set_contacts {
    my ($field, $value) = @_;
    my $r = $ngx->req(PATCH => "$V/settings/contacts", key => $admin,
                      body => $J->encode({ $field => $value }),
                      headers => { 'Content-Type' => 'application/json' });
    Msgr::Test::json_ok($r, 200, "contacts.$field = " . $J->encode($value));
    my $bad = 0;
    for (1 .. 6) {
        my $g = get($admin, 'settings/contacts');
        $bad++ unless $J->encode($g->{json}{$field}) eq $J->encode($value);
    }
    is($bad, 0, "contacts.$field reads back on every worker");
}

my $r = $ngx->req(POST => "$V/mis/sync", key => $int, body => {
    students => [
        { mis_id => 'S1', first_name => 'Amy', last_name => 'Jones',
          status => 'on_roll',
          contacts => [ { mis_id => 'C1', priority => 1 } ] },
    ],
    contacts => [
        { mis_id => 'C1', first_name => 'Jane', last_name => 'Jones',
          mobile_phone => '07700 900123', email => 'émilie@example.org' },
    ],
    staff => [
        { mis_id => 'T1', title => 'Mr', first_name => 'Émile',
          last_name => 'Zola', mobile_phone => '07700 900401',
          work_phone => '0117 496 0001', email => 'émile@school.example' },
        { mis_id => 'T2', title => 'Ms', first_name => 'Bea',
          last_name => 'Bad', work_phone => '12345',
          email => 'ßea@school.example' },
        { mis_id => 'T3', title => 'Dr', first_name => 'Teo',
          last_name => 'Teach', mobile_phone => '07700 900403',
          email => '漢字@school.example' },
    ],
    groups => [
        { mis_id => 'G1', name => 'Trip', type => 'class',
          students => ['S1'], staff => ['T1', 'T2'], teachers => ['T3'] },
    ],
});
is($r->{status}, 200, 'sync: 200') or diag($r->{content});
like($r->{content}, qr/12345/, 'the sync warns about T2\'s work number');

my %staff = map { $_->{mis_id} => $_ } @{ get($admin, 'staff')->{json}{items} };
my $gid = get($admin, 'groups')->{json}{items}[0]{id};
is($staff{T2}{phone_problems}{work_phone}, '12345',
   'the admin sees T2\'s phone problem');

# what no masked answer may contain, anywhere in its body
my @SECRET = ('+447700900401', '+441174960001', 'émile@', 'ßea@', '漢字@',
              '12345', '+447700900403');

sub no_secret_ok {
    my ($res, $name) = @_;
    local $Test::Builder::Level = $Test::Builder::Level + 1;
    my $text = $J->encode($res->{json});
    my @seen = grep { index($text, $_) >= 0 } @SECRET;
    ok(!@seen, "$name: no staff detail in clear") or diag("@seen in $text");
}

sub masked_member_ok {
    my ($m, $name) = @_;
    local $Test::Builder::Level = $Test::Builder::Level + 1;
    my $t = $staff{ $m->{mis_id} };
    ok($m->{masked}, "$name: masked");
    for my $f (qw(work_phone mobile_phone)) {
        my $want = defined $t->{$f}
                 ? ('*' x (length($t->{$f}) - 3)) . substr($t->{$f}, -3)
                 : undef;
        is($m->{$f}, $want, "$name: $f " . ($want // 'null'));
    }
    (my $email = $t->{email}) =~ s/^(.)[^@]*@/$1***@/;
    is($m->{email}, $email, "$name: email $email");
    for my $k (sort keys %{ $t->{phone_problems} }) {
        my $raw = $t->{phone_problems}{$k};
        my $want = ('*' x (length($raw) - 3)) . substr($raw, -3);
        is($m->{phone_problems}{$k}, $want,
           "$name: phone_problems.$k masked as $want");
    }
}

# the recipients a staff send reaches: T1 and T2 (staff) and T3 (teacher)
sub staff_recipients {
    my ($key) = @_;
    my $res = get($key, "recipients?group=$gid&send_to=staff");
    my %by = map { $_->{id} => $_ }
             @{ $res->{json}{recipients} }, @{ $res->{json}{unreachable} };
    return ($res, \%by);
}

set_contacts(show_registration_in_names => $F);

for my $on (0, 1) {
    set_contacts(hide_staff_contact_details => $on ? $T : $F);
    for my $k ([ admin => $admin ], [ staff => $staff ],
               [ integrator => $int ])
    {
        my ($who, $key) = @$k;
        my $mask = $on && $who ne 'admin';
        my $n = ($on ? 'hiding on' : 'hiding off') . ", $who key";

        my $list = get($key, 'staff');
        my $mem = get($key, "groups/$gid/members");
        my ($rec, $by) = staff_recipients($key);

        if (!$mask) {
            is_deeply({ map { $_->{mis_id} => $_ }
                        @{ $list->{json}{items} } }, \%staff,
                      "$n: /staff in clear");
            my $t1 = $by->{ $staff{T1}{id} };
            is($t1->{channels}{sms}, '+447700900401',
               "$n: /recipients shows T1's mobile");
            is($t1->{channels}{email}, 'émile@school.example',
               "$n: /recipients shows T1's email");
            ok(!$t1->{masked}, "$n: /recipients: T1 not masked");
            next;
        }

        no_secret_ok($list, "$n: /staff");
        no_secret_ok($mem, "$n: group members");
        no_secret_ok($rec, "$n: /recipients send_to=staff");

        for my $m (@{ $list->{json}{items} }) {
            masked_member_ok($m, "$n: /staff $m->{mis_id}");
        }
        for my $m (grep { $_->{type} ne 'student' }
                   @{ $mem->{json}{items} }) {
            masked_member_ok($m, "$n: members $m->{mis_id}");
        }

        my $t1 = $by->{ $staff{T1}{id} };
        is($t1->{channels}{sms}, '**********401',
           "$n: /recipients: T1's sms masked");
        is_deeply($t1->{channels}{voice}, ['**********001'],
                  "$n: /recipients: T1's voice number masked");
        is($t1->{channels}{email}, 'é***@school.example',
           "$n: /recipients: T1's email masked, é kept whole");
        ok($t1->{masked}, "$n: /recipients: T1 says masked");
        my $t3 = $by->{ $staff{T3}{id} };
        is($t3->{channels}{email}, '漢***@school.example',
           "$n: /recipients: the teacher T3's email masked");
        is($rec->{json}{counts}{staff}, 3,
           "$n: /recipients counts 3 staff as before");
        is($rec->{json}{counts}{by_channel}{voice}, 2,
           "$n: /recipients: 2 staff reachable by voice");
    }
}

# parents are never masked
{
    my $c = get($staff, 'contacts')->{json}{items}[0];
    is($c->{email}, 'émilie@example.org', 'a contact\'s email is not masked');
    is($c->{mobile_phone}, '+447700900123',
       'a contact\'s number is not masked');
}

Msgr::Test::finish();
