#!/usr/bin/perl

# Prints a deterministic synthetic MIS snapshot (the normalised shape that
# msgr_mis_sync() takes, also valid input for POST /v1/mis/sync) of a
# secondary school:
#
#   perl bench/lib/mis_snapshot.pl [STUDENTS] [--seed N] [--api]
#
# --api leaves out phone_problems, which the normalised shape has and
# POST /v1/mis/sync does not take (it is not a field an MIS sends).
#
# STUDENTS (default 2000) in years 7 to 13, each with 2 parental contacts;
# one student in 20 is the younger sibling of the one before and shares
# both, so 2,000 students have 3,800 contacts and 4,000 student-contact
# links.  200 staff.  300 groups: 70 registration groups (10 a year, a tutor
# each), 7 year groups, 200 class groups of ~30 students of one year with a
# class teacher each, and 23 custom groups of 10 staff.  Phone numbers are
# E.164 in Ofcom's drama ranges (mobiles +4477009xxxxx), e-mail addresses
# under example.org and school.example.  The same arguments give the same
# bytes.  Core Perl only.

use strict;
use warnings;

use JSON::PP;

my $students = 2000;
my $seed     = 1;
my $api      = 0;

while (@ARGV) {
    my $a = shift @ARGV;
    if ($a eq '--seed') {
        $seed = shift @ARGV // die "--seed needs a number\n";
    } elsif ($a =~ /^--seed=(\d+)$/) {
        $seed = $1;
    } elsif ($a eq '--api') {
        $api = 1;
    } elsif ($a =~ /^\d+$/) {
        $students = $a;
    } else {
        die "usage: $0 [STUDENTS] [--seed N] [--api]\n";
    }
}

# A small LCG: the same numbers on every perl and platform.
my $state = (12345 + $seed * 7919) % 2147483648;

sub rnd {
    my ($n) = @_;
    $state = (1103515245 * $state + 12345) % 2147483648;
    return int(($state / 2147483648) * $n);
}

sub pick { $_[rnd(scalar @_)] }

my @FIRST_F = qw(Olivia Amelia Isla Ava Mia Ivy Lily Isabella Rosie Sophia
                 Grace Freya Willow Florence Emily Ella Poppy Evie Elsie
                 Charlotte Aisha Zara Maryam Hannah Chloe Jessica Ruby Amy
                 Sophie Lucy Megan Holly Zofia Priya Fatima);
my @FIRST_M = qw(Oliver George Noah Arthur Muhammad Leo Harry Oscar Archie
                 Henry Theodore Freddie Jack Charlie Theo Alfie Jacob Thomas
                 Finley Arlo William Lucas Roman Tommy Isaac Ethan Joshua
                 Daniel Samuel James Adam Mohammed Jakub Ravi Kwame);
my @LAST = qw(Smith Jones Williams Taylor Brown Davies Evans Wilson Thomas
              Johnson Roberts Robinson Thompson Wright Walker White Edwards
              Hughes Green Hall Lewis Harris Clarke Patel Jackson Wood Turner
              Martin Cooper Hill Ward Morris Moore Clark Lee King Baker
              Harrison Morgan Allen James Scott Phillips Watson Davis Parker
              Price Bennett Young Griffiths Mitchell Kelly Cook Carter
              Richardson Bailey Collins Bell Shaw Murphy Miller Cox Richards
              Khan Marshall Anderson Simpson Ellis Adams Singh Begum Wilkinson
              Foster Chapman Powell Webb Rogers Gray Mason Ali Hunt Hussain
              Campbell Matthews Owen Palmer Holmes Mills Barnes Knight Lloyd
              Butler Russell Barker Fisher Stevens Jenkins Murray Dixon
              Harvey Nowak Kowalski Okafor Mensah);
my @LANG = ((('en') x 17), 'pl', 'ur', 'pa', 'bn', 'ro', 'so');

my (@students, @contacts, @staff, @groups);
my %mobile_used;

sub mobile {
    # 07700 9xxxxx: distinct for everyone in the snapshot
    my $n;
    do { $n = sprintf('+4477009%05d', rnd(100000)) } while $mobile_used{$n}++;
    return $n;
}

sub email_local {
    my ($first, $last, $n) = @_;
    (my $l = lc "$first.$last") =~ s/[^a-z.]//g;
    return "$l$n";
}

# ---------------------------------------------------------------------------
# students and their families

my $years = 7;
my @by_year = map { [] } 1 .. $years;
my ($family_contacts, $family_last);

for my $i (1 .. $students) {
    my $year = 7 + ($i - 1) % $years;          # 7 .. 13, evenly
    my $yi   = $year - 7;
    my $form = chr(ord('A') + @{ $by_year[$yi] } % 10);   # round robin
    my $sibling = $i > 1 && $i % 20 == 0;

    if (!$sibling) {
        $family_last = pick(@LAST);
        my $home = rnd(4) ? sprintf('+442079460%03d', rnd(1000)) : undef;
        my @fam;
        for my $p (0, 1) {
            my $mother = $p == 0;
            my $first  = $mother ? pick(@FIRST_F) : pick(@FIRST_M);
            my $last   = ($p == 1 && !rnd(6)) ? pick(@LAST) : $family_last;
            my $id     = 'C' . (@contacts + 1);
            push @contacts, {
                mis_id         => $id,
                title          => $mother ? pick(qw(Mrs Ms Miss Mrs Dr))
                                          : pick(qw(Mr Mr Mr Dr)),
                first_name     => $first,
                last_name      => $last,
                home_phone     => $home,
                work_phone     => rnd(3) ? undef
                                  : sprintf('+441134960%03d', rnd(1000)),
                mobile_phone   => rnd(12) ? mobile() : undef,
                email          => rnd(8)
                    ? email_local($first, $last, @contacts + 1)
                      . '@example.org'
                    : undef,
                language       => pick(@LANG),
                phone_problems => {},
            };
            push @fam, {
                mis_id         => $id,
                relationship   => $mother ? pick('Mother', 'Mother',
                                                 'Mother', 'Carer')
                                          : pick('Father', 'Father',
                                                 'Step-father', 'Carer'),
                priority       => $p + 1,
                correspondence => ($p == 0 || rnd(5)) ? JSON::PP::true
                                                      : JSON::PP::false,
            };
        }
        $family_contacts = \@fam;
    }

    my $status = $i % 250 == 0 ? 'pre_admission' : 'on_roll';
    my $s = {
        mis_id       => "S$i",
        first_name   => rnd(2) ? pick(@FIRST_F) : pick(@FIRST_M),
        last_name    => $family_last,
        reg_group    => "$year$form",
        year         => "$year",
        status       => $status,
        leaving_date => undef,
        contacts     => [ map { {%$_} } @$family_contacts ],
    };
    push @students, $s;
    push @{ $by_year[$yi] }, $s;
}

# ---------------------------------------------------------------------------
# staff

for my $i (1 .. 200) {
    my $f     = rnd(2);
    my $first = $f ? pick(@FIRST_F) : pick(@FIRST_M);
    my $last  = pick(@LAST);
    push @staff, {
        mis_id         => "T$i",
        title          => $f ? pick(qw(Mrs Ms Miss Dr)) : pick(qw(Mr Mr Dr)),
        first_name     => $first,
        last_name      => $last,
        work_phone     => rnd(4) ? undef
                          : sprintf('+441174960%03d', rnd(1000)),
        mobile_phone   => rnd(5) ? mobile() : undef,
        email          => lc(substr($first, 0, 1) . ".$last$i")
                          . '@school.example',
        phone_problems => {},
    };
}

# ---------------------------------------------------------------------------
# groups

# registration groups: 10 a year, a tutor each
my $tutor = 0;
for my $y (7 .. 6 + $years) {
    for my $f (0 .. 9) {
        my $name = $y . chr(ord('A') + $f);
        push @groups, {
            mis_id   => "R$name",
            name     => $name,
            type     => 'registration',
            students => [ map { $_->{mis_id} }
                          grep { $_->{reg_group} eq $name } @students ],
            staff    => [ 'T' . (++$tutor) ],
            teachers => [],
        };
    }
}

# year groups
for my $y (7 .. 6 + $years) {
    push @groups, {
        mis_id   => "Y$y",
        name     => "Year $y",
        type     => 'year',
        students => [ map { $_->{mis_id} } @{ $by_year[$y - 7] } ],
        staff    => [],
        teachers => [],
    };
}

# class groups: ~30 students of one year, a class teacher each
my @SUBJ = qw(Ma En Sc Hi Gg Fr Sp Ar Mu Dt Cs Pe Re Dr Bi Ch Ph Ec Ps So);
for my $k (0 .. 199) {
    my $yi   = $k % $years;
    my $list = $by_year[$yi];
    my $subj = $SUBJ[int($k / $years) % @SUBJ];
    my $set  = int($k / ($years * @SUBJ)) + 1;
    my $name = (7 + $yi) . "$subj$set";
    my @m;
    if (@$list) {
        my $n     = @$list < 30 ? scalar @$list : 30;
        my $start = ($k * 37) % @$list;
        @m = map { $list->[($start + $_) % @$list]{mis_id} } 0 .. $n - 1;
    }
    push @groups, {
        mis_id   => sprintf('K%03d', $k + 1),
        name     => $name,
        type     => 'class',
        students => \@m,
        staff    => [],
        teachers => [ 'T' . (1 + ($k * 7) % 200) ],
    };
}

# custom groups of staff
my @CUSTOM = ('Senior Leadership', 'Heads of Year', 'Maths Department',
              'English Department', 'Science Department', 'Humanities',
              'Languages', 'Creative Arts', 'PE Department', 'Computing',
              'SEN Team', 'Pastoral Team', 'Safeguarding', 'Exams Office',
              'Site Team', 'Finance Office', 'Reception', 'Governors Link',
              'Trip Leaders', 'Duty Team A', 'Duty Team B', 'First Aiders',
              'Cover Supervisors');
for my $c (0 .. $#CUSTOM) {
    push @groups, {
        mis_id   => sprintf('X%02d', $c + 1),
        name     => $CUSTOM[$c],
        type     => 'custom',
        students => [],
        staff    => [ map { 'T' . (1 + ($c * 9 + $_ * 17) % 200) } 0 .. 9 ],
        teachers => [],
    };
}

if ($api) {
    delete $_->{phone_problems} for @contacts, @staff;
}

print JSON::PP->new->utf8->canonical->encode({
    default_country => 'GB',
    students        => \@students,
    contacts        => \@contacts,
    staff           => \@staff,
    groups          => \@groups,
}), "\n";
