#!/usr/bin/perl

# msgr_mis_sync(school, snapshot, sync_contacts) (sql/0005_mis_sync.sql)
# called through psql as the module calls it: what a first sync creates,
# that an unchanged re-sync changes nothing, updates, retirement and return,
# memberships, auto_sync_contacts off, local overrides, two schools with the
# same mis_ids, all-or-nothing on errors, and one sync per school at a time.

use strict;
use warnings;

use File::Temp ();
use JSON::PP;
use Test::More;
use Time::HiRes qw(sleep time);

use lib 't/lib';
use Msgr::Test qw(slurp);
use Msgr::Test::API qw($J $T $F clone mis_rows_sql);

my $pg = Msgr::Test::pg_start();
my $A  = Msgr::Test::school($pg, 'Alpha Academy');
my $B  = Msgr::Test::school($pg, 'Beta Primary');
my $C  = Msgr::Test::school($pg, 'Gamma High');


# ---------------------------------------------------------------------------
# helpers

# The SQL text of a call; the snapshot as a dollar-quoted literal.
sub call_sql {
    my ($school, $snap, $contacts) = @_;
    my $json = ref $snap ? $J->encode($snap) : $snap;
    die "snapshot holds the quote" if $json =~ /\$snap\$/;
    return sprintf('SELECT msgr_mis_sync(%s, $snap$%s$snap$::jsonb, %s);',
                   $school, $json, ($contacts // 1) ? 'true' : 'false');
}

sub sync {
    my ($school, $snap, $contacts) = @_;
    return $J->decode($pg->psql(call_sql($school, $snap, $contacts)));
}

# (undef, error text) on failure; the error text carries the SQLSTATE.
sub sync_err {
    my ($school, $snap, $contacts) = @_;
    my $out = eval {
        $pg->psql("\\set VERBOSITY verbose\n"
                  . call_sql($school, $snap, $contacts));
    };
    return ($out, $@);
}

sub counts {
    my (%k) = @_;
    my %c = (created => 0, updated => 0, retired => 0, unchanged => 0);
    return { %c, %k };
}

sub q1 { $pg->psql($_[0]) }

# Everything a school has in the MIS tables, as text: the "nothing changed"
# yardstick (timestamps included).
sub dump_school {
    my ($s) = @_;
    return q1(join "\nSELECT '--';\n", map { "$_;" } (
        mis_rows_sql($s),
        "SELECT s.mis_id, c.mis_id, l.relationship, l.priority,
                l.correspondence, l.retired_at
           FROM msgr_student_contacts l
           JOIN msgr_students s USING (school_id, student_id)
           JOIN msgr_contacts c USING (school_id, contact_id)
          WHERE l.school_id = $s ORDER BY 1, 2",
        "SELECT g.mis_id, s.mis_id, m.retired_at
           FROM msgr_group_students m
           JOIN msgr_groups g USING (school_id, group_id)
           JOIN msgr_students s USING (school_id, student_id)
          WHERE m.school_id = $s ORDER BY 1, 2",
        "SELECT g.mis_id, f.mis_id, m.teacher, m.retired_at
           FROM msgr_group_staff m
           JOIN msgr_groups g USING (school_id, group_id)
           JOIN msgr_staff f USING (school_id, staff_id)
          WHERE m.school_id = $s ORDER BY 1, 2, 3",
    ));
}

# Live memberships of a school as "G:S", "G:T:teacher", "S-C" strings.
sub live_links {
    my ($s) = @_;
    return [ split /\n/, q1(
        "SELECT s.mis_id || '-' || c.mis_id || ' ' || l.relationship || ' '
                || l.priority || ' ' || l.correspondence
           FROM msgr_student_contacts l
           JOIN msgr_students s USING (school_id, student_id)
           JOIN msgr_contacts c USING (school_id, contact_id)
          WHERE l.school_id = $s AND l.retired_at IS NULL ORDER BY 1") ];
}

sub live_group_members {
    my ($s) = @_;
    return [ split /\n/, q1(
        "SELECT g.mis_id || ':' || s.mis_id
           FROM msgr_group_students m
           JOIN msgr_groups g USING (school_id, group_id)
           JOIN msgr_students s USING (school_id, student_id)
          WHERE m.school_id = $s AND m.retired_at IS NULL
         UNION ALL
         SELECT g.mis_id || ':' || f.mis_id
                || CASE WHEN m.teacher THEN ':teacher' ELSE ':staff' END
           FROM msgr_group_staff m
           JOIN msgr_groups g USING (school_id, group_id)
           JOIN msgr_staff f USING (school_id, staff_id)
          WHERE m.school_id = $s AND m.retired_at IS NULL
         ORDER BY 1") ];
}

# A small school: 3 students (two siblings), 3 contacts, 2 staff, 3 groups;
# 4 student-contact links, 6 group-student and 3 group-staff memberships.
sub base {
    return {
        default_country => 'GB',
        students => [
            { mis_id => 'S1', first_name => 'Amy', last_name => 'Jones',
              reg_group => '7B', year => '7', status => 'on_roll',
              leaving_date => undef,
              contacts => [
                  { mis_id => 'C1', relationship => 'Mother', priority => 1,
                    correspondence => $T },
                  { mis_id => 'C2', relationship => 'Father', priority => 2,
                    correspondence => $F },
              ] },
            { mis_id => 'S2', first_name => 'Ben', last_name => 'Jones',
              reg_group => '9A', year => '9', status => 'on_roll',
              leaving_date => undef,
              contacts => [
                  { mis_id => 'C1', relationship => 'Mother', priority => 1,
                    correspondence => $T },
              ] },
            { mis_id => 'S3', first_name => 'Cara', last_name => 'Patel',
              reg_group => '7B', year => '7', status => 'leaver',
              leaving_date => '2025-07-18',
              contacts => [
                  { mis_id => 'C3', relationship => 'Carer', priority => 1,
                    correspondence => $T },
              ] },
        ],
        contacts => [
            { mis_id => 'C1', title => 'Mrs', first_name => 'Jane',
              last_name => 'Jones', home_phone => '+442079460000',
              work_phone => undef, mobile_phone => '+447700900123',
              email => 'jane@example.org', language => 'en',
              phone_problems => {} },
            { mis_id => 'C2', title => 'Mr', first_name => 'John',
              last_name => 'Jones', home_phone => '+442079460000',
              work_phone => '+441134960001', mobile_phone => undef,
              email => undef, language => 'en',
              phone_problems => { home_phone => 'unobtainable' } },
            { mis_id => 'C3', title => '', first_name => 'Priya',
              last_name => 'Patel', home_phone => undef,
              work_phone => undef, mobile_phone => '+447700900124',
              email => 'priya@example.org', language => 'pa',
              phone_problems => {} },
        ],
        staff => [
            { mis_id => 'T1', title => 'Mr', first_name => 'Tom',
              last_name => 'Smith', work_phone => undef,
              mobile_phone => '+447700900456',
              email => 't.smith@school.example', phone_problems => {} },
            { mis_id => 'T2', title => 'Ms', first_name => 'Sara',
              last_name => 'Khan', work_phone => '+441174960002',
              mobile_phone => undef, email => 's.khan@school.example',
              phone_problems => {} },
        ],
        groups => [
            { mis_id => 'G7B', name => '7B', type => 'registration',
              students => ['S1', 'S3'], staff => ['T2'], teachers => [] },
            { mis_id => 'GY7', name => 'Year 7', type => 'year',
              students => ['S1', 'S3'], staff => [], teachers => [] },
            # T1 is both on the staff list and the class teacher: two rows
            { mis_id => 'GMA', name => '7/9 Maths', type => 'class',
              students => ['S1', 'S2'], staff => ['T1'],
              teachers => ['T1'] },
        ],
    };
}

my @KINDS = qw(students contacts staff groups memberships);

sub all_unchanged {
    my ($snap) = @_;
    my $links = 0;
    $links += @{ $_->{contacts} } for @{ $snap->{students} };
    my $members = $links;
    $members += @{ $_->{students} } + @{ $_->{staff} } + @{ $_->{teachers} }
        for @{ $snap->{groups} };
    return {
        students    => counts(unchanged => scalar @{ $snap->{students} }),
        contacts    => counts(unchanged => scalar @{ $snap->{contacts} }),
        staff       => counts(unchanged => scalar @{ $snap->{staff} }),
        groups      => counts(unchanged => scalar @{ $snap->{groups} }),
        memberships => counts(unchanged => $members),
    };
}

# Expected result: every kind unchanged except what is given.
sub expect {
    my ($snap, %k) = @_;
    my $e = all_unchanged($snap);
    for my $kind (keys %k) {
        my %c = %{ $k{$kind} };
        my $n = $e->{$kind}{unchanged};
        $n -= ($c{created} // 0) + ($c{updated} // 0);
        $e->{$kind} = counts(unchanged => $n, %c);
    }
    return $e;
}


# ---------------------------------------------------------------------------
# the function is there, as the migration made it

is(q1("SELECT count(*) FROM msgr_schema_migrations
        WHERE version = '0005_mis_sync'"), 1,
   'migration 0005_mis_sync is applied');


# ---------------------------------------------------------------------------
# first sync creates everything

my $snap = base();
my $r = sync($A, $snap);
is_deeply($r, {
    students    => counts(created => 3),
    contacts    => counts(created => 3),
    staff       => counts(created => 2),
    groups      => counts(created => 3),
    memberships => counts(created => 13),
}, 'first sync: everything created') or diag($J->encode($r));

is(q1("SELECT string_agg(concat_ws('|', mis_id, first_name, last_name,
                         reg_group, year, status, leaving_date,
                         retired_at IS NULL), ',' ORDER BY mis_id)
         FROM msgr_students WHERE school_id = $A"),
   'S1|Amy|Jones|7B|7|on_roll|t,S2|Ben|Jones|9A|9|on_roll|t,'
   . 'S3|Cara|Patel|7B|7|leaver|2025-07-18|t',
   'first sync: student rows as the snapshot has them');

is(q1("SELECT concat_ws('|', title, first_name, last_name, home_phone,
                        coalesce(work_phone, '-'), mobile_phone, email,
                        language, phone_problems, overrides)
         FROM msgr_contacts WHERE school_id = $A AND mis_id = 'C1'"),
   'Mrs|Jane|Jones|+442079460000|-|+447700900123|jane@example.org|en|{}|{}',
   'first sync: contact C1 as the snapshot has it, no overrides');

is(q1("SELECT phone_problems->>'home_phone' FROM msgr_contacts
        WHERE school_id = $A AND mis_id = 'C2'"), 'unobtainable',
   'first sync: phone_problems stored');

is(q1("SELECT concat_ws('|', title, first_name, last_name,
                        coalesce(work_phone, '-'), mobile_phone, email)
         FROM msgr_staff WHERE school_id = $A AND mis_id = 'T1'"),
   'Mr|Tom|Smith|-|+447700900456|t.smith@school.example',
   'first sync: staff T1 as the snapshot has it');

is(q1("SELECT string_agg(mis_id || '|' || name || '|' || type, ','
                         ORDER BY mis_id)
         FROM msgr_groups WHERE school_id = $A"),
   'G7B|7B|registration,GMA|7/9 Maths|class,GY7|Year 7|year',
   'first sync: group rows');

is_deeply(live_links($A),
          ['S1-C1 Mother 1 true', 'S1-C2 Father 2 false',
           'S2-C1 Mother 1 true', 'S3-C3 Carer 1 true'],
          'first sync: student-contact links with relationship, priority, '
          . 'correspondence');

is_deeply(live_group_members($A),
          [qw(G7B:S1 G7B:S3 G7B:T2:staff GMA:S1 GMA:S2 GMA:T1:staff
              GMA:T1:teacher GY7:S1 GY7:S3)],
          'first sync: group memberships; staff list is teacher false, '
          . 'teachers true');


# ---------------------------------------------------------------------------
# the same snapshot again: nothing changes, not even updated_at

# xmax of every row: a row an upsert only locked has a new one
sub xmaxes {
    my ($s) = @_;
    return q1(join ' UNION ALL ', map {
        "(SELECT '$_', string_agg(xmax::text, ',' ORDER BY ctid)
            FROM $_ WHERE school_id = $s)"
    } qw(msgr_students msgr_contacts msgr_staff msgr_groups
         msgr_student_contacts msgr_group_students msgr_group_staff));
}

my $before = dump_school($A);
my $xmax_before = xmaxes($A);
$r = sync($A, $snap);
is_deeply($r, all_unchanged($snap), 'same snapshot: all unchanged')
    or diag($J->encode($r));
is(dump_school($A), $before,
   'same snapshot: no row touched (updated_at, retired_at as they were)');
is(xmaxes($A), $xmax_before,
   'same snapshot: no row even locked (xmax as it was)');


# ---------------------------------------------------------------------------
# changes are updates, of those rows only

$snap->{students}[1]{first_name} = 'Benjamin';
$snap->{contacts}[2]{email} = undef;
$snap->{staff}[1]{phone_problems} = { work_phone => 'unobtainable' };
$snap->{groups}[2]{name} = '7/9 Maths (set 1)';
$snap->{students}[2]{leaving_date} = undef;
$snap->{students}[2]{status} = 'on_roll';

my $s1_updated = q1("SELECT updated_at FROM msgr_students
                      WHERE school_id = $A AND mis_id = 'S1'");
my $s2_times = q1("SELECT created_at || ' ' || updated_at FROM msgr_students
                    WHERE school_id = $A AND mis_id = 'S2'");

$r = sync($A, $snap);
is_deeply($r, expect($snap,
    students => { updated => 2 },
    contacts => { updated => 1 },
    staff    => { updated => 1 },
    groups   => { updated => 1 },
), 'changes: one update per changed row, the rest unchanged')
    or diag($J->encode($r));

is(q1("SELECT first_name FROM msgr_students
        WHERE school_id = $A AND mis_id = 'S2'"), 'Benjamin',
   'changes: new first name stored');
is(q1("SELECT concat_ws('|', status, coalesce(leaving_date::text, '-'))
         FROM msgr_students WHERE school_id = $A AND mis_id = 'S3'"),
   'on_roll|-', 'changes: status and a leaving date back to null stored');
is(q1("SELECT email IS NULL FROM msgr_contacts
        WHERE school_id = $A AND mis_id = 'C3'"), 't',
   'changes: a value that became null stored');
is(q1("SELECT updated_at FROM msgr_students
        WHERE school_id = $A AND mis_id = 'S1'"), $s1_updated,
   'changes: an unchanged row keeps its updated_at');
my ($s2_created, $s2_upd) = split / /, q1(
    "SELECT created_at || ' ' || updated_at FROM msgr_students
      WHERE school_id = $A AND mis_id = 'S2'"), 2;
my ($old_created, $old_upd) = split / /, $s2_times, 2;
is($s2_created, $old_created, 'changes: created_at kept');
isnt($s2_upd, $old_upd, 'changes: the changed row has a new updated_at');

is_deeply(sync($A, $snap), all_unchanged($snap),
          'changes: the changed snapshot again is all unchanged');


# ---------------------------------------------------------------------------
# a student dropped is retired, with its memberships; back, it is updated

my $s3 = splice @{ $snap->{students} }, 2, 1;           # S3, Cara
for my $g (@{ $snap->{groups} }) {
    $g->{students} = [ grep { $_ ne 'S3' } @{ $g->{students} } ];
}
$r = sync($A, $snap);
is_deeply($r, expect($snap,
    students    => { retired => 1 },
    memberships => { retired => 3 },      # S3-C3, G7B:S3, GY7:S3
), 'student dropped: 1 student and its 3 memberships retired')
    or diag($J->encode($r));

is(q1("SELECT count(*) || ' ' || count(retired_at)
         FROM msgr_students WHERE school_id = $A AND mis_id = 'S3'"),
   '1 1', 'student dropped: the row is still there, with retired_at');
is(q1("SELECT retired_at > now() - interval '1 minute'
              AND updated_at = retired_at
         FROM msgr_students WHERE school_id = $A AND mis_id = 'S3'"),
   't', 'student dropped: retired_at (and updated_at) is the sync time');
is(q1("SELECT count(*) FROM msgr_student_contacts l
         JOIN msgr_students s USING (school_id, student_id)
        WHERE l.school_id = $A AND s.mis_id = 'S3'
          AND l.retired_at IS NOT NULL"), 1,
   'student dropped: its contact link retired, not deleted');
is(q1("SELECT count(*) FROM msgr_group_students m
         JOIN msgr_students s USING (school_id, student_id)
        WHERE m.school_id = $A AND s.mis_id = 'S3'
          AND m.retired_at IS NOT NULL"), 2,
   'student dropped: its group memberships retired, not deleted');
is(q1("SELECT count(*) FROM msgr_contacts WHERE school_id = $A
        AND mis_id = 'C3' AND retired_at IS NULL"), 1,
   'student dropped: its contact (still in the snapshot) stays live');

$before = dump_school($A);
is_deeply(sync($A, $snap), all_unchanged($snap),
          'still dropped: retired rows are not retired (or counted) again');
is(dump_school($A), $before, 'still dropped: retired_at kept as it was');

splice @{ $snap->{students} }, 2, 0, $s3;
push @{ $snap->{groups}[0]{students} }, 'S3';
push @{ $snap->{groups}[1]{students} }, 'S3';
$r = sync($A, $snap);
is_deeply($r, expect($snap,
    students    => { updated => 1 },
    memberships => { updated => 3 },
), 'student back: updated, and its memberships too')
    or diag($J->encode($r));
is(q1("SELECT count(*) FROM msgr_students WHERE school_id = $A
        AND mis_id = 'S3' AND retired_at IS NULL"), 1,
   'student back: retired_at is NULL again (same row, no new one)');
is(q1("SELECT count(*) FROM msgr_students WHERE school_id = $A"), 3,
   'student back: still 3 student rows');
is_deeply(live_group_members($A),
          [qw(G7B:S1 G7B:S3 G7B:T2:staff GMA:S1 GMA:S2 GMA:T1:staff
              GMA:T1:teacher GY7:S1 GY7:S3)],
          'student back: group memberships live again');


# ---------------------------------------------------------------------------
# memberships on their own

push @{ $snap->{groups}[1]{students} }, 'S2';                # GY7 + S2
$snap->{groups}[2]{staff} = [];                              # GMA - T1 staff
$snap->{students}[0]{contacts}[1]{priority} = 3;             # S1-C2
$snap->{students}[0]{contacts}[1]{correspondence} = $T;
push @{ $snap->{students}[1]{contacts} },                    # S2 + C2
    { mis_id => 'C2', relationship => 'Father', priority => 2,
      correspondence => $T };
$r = sync($A, $snap);
is_deeply($r, expect($snap,
    memberships => { created => 2, updated => 1, retired => 1 },
), 'memberships: 2 created, 1 updated, 1 retired, the rest unchanged')
    or diag($J->encode($r));
is_deeply(live_links($A),
          ['S1-C1 Mother 1 true', 'S1-C2 Father 3 true',
           'S2-C1 Mother 1 true', 'S2-C2 Father 2 true',
           'S3-C3 Carer 1 true'],
          'memberships: links as the snapshot has them');
is_deeply(live_group_members($A),
          [qw(G7B:S1 G7B:S3 G7B:T2:staff GMA:S1 GMA:S2 GMA:T1:teacher
              GY7:S1 GY7:S2 GY7:S3)],
          'memberships: T1 off the staff list but still class teacher');

# a whole group dropped: it and its members retired
my $gma = splice @{ $snap->{groups} }, 2, 1;
$r = sync($A, $snap);
is_deeply($r, expect($snap,
    groups      => { retired => 1 },
    memberships => { retired => 3 },      # GMA:S1, GMA:S2, GMA:T1 teacher
), 'group dropped: it and its 3 live memberships retired')
    or diag($J->encode($r));
push @{ $snap->{groups} }, $gma;
$r = sync($A, $snap);
is_deeply($r, expect($snap,
    groups      => { updated => 1 },
    memberships => { updated => 3 },
), 'group back: updated, its memberships too') or diag($J->encode($r));


# ---------------------------------------------------------------------------
# local edits: overrides are never touched

q1("UPDATE msgr_contacts
       SET overrides = '{\"mobile_phone\": \"+447700900999\"}'
     WHERE school_id = $A AND mis_id = 'C1'");
$snap->{contacts}[0]{mobile_phone} = '+447700900777';
$snap->{contacts}[0]{last_name}    = 'Jones-Smith';
$r = sync($A, $snap);
is_deeply($r->{contacts}, counts(updated => 1, unchanged => 2),
          'overrides: the changed contact is updated');
is(q1("SELECT concat_ws('|', last_name, mobile_phone, overrides)
         FROM msgr_contacts WHERE school_id = $A AND mis_id = 'C1'"),
   'Jones-Smith|+447700900777|{"mobile_phone": "+447700900999"}',
   'overrides: base columns updated, overrides kept as the school set them');
is_deeply(sync($A, $snap), all_unchanged($snap),
          'overrides: an override is no difference to the snapshot');


# ---------------------------------------------------------------------------
# auto_sync_contacts off: contacts and their links are not touched

my $off = clone($snap);
$off->{contacts}[1]{first_name} = 'Jonathan';              # change C2
splice @{ $off->{contacts} }, 2, 1;                        # drop C3 ...
$off->{students}[2]{contacts} = [];                        # ... and S3-C3
push @{ $off->{contacts} },                                # a new C4 ...
    { mis_id => 'C4', title => 'Dr', first_name => 'Ola',
      last_name => 'Nowak', home_phone => undef, work_phone => undef,
      mobile_phone => '+447700900125', email => undef, language => 'pl',
      phone_problems => {} };
push @{ $off->{students}[2]{contacts} },                   # ... for S3
    { mis_id => 'C4', relationship => 'Aunt', priority => 1,
      correspondence => $T };
$off->{students}[0]{contacts}[0]{priority} = 5;            # S1-C1 changed
$off->{students}[0]{last_name} = 'Jones-Smith';            # a student change
push @{ $off->{groups}[0]{staff} }, 'T1';                  # a group change

my $contacts_before = q1(
    "SELECT mis_id, title, first_name, last_name, home_phone, work_phone,
            mobile_phone, email, language, phone_problems, overrides,
            created_at, updated_at, retired_at
       FROM msgr_contacts WHERE school_id = $A ORDER BY mis_id");
my $sc_before = q1("SELECT * FROM msgr_student_contacts
                     WHERE school_id = $A ORDER BY student_id, contact_id");

$r = sync($A, $off, 0);
my $n_links = 0;
$n_links += @{ $_->{contacts} } for @{ $off->{students} };
is_deeply($r, {
    students    => counts(updated => 1, unchanged => 2),
    contacts    => { skipped => 3 },
    staff       => counts(unchanged => 2),
    groups      => counts(unchanged => 3),
    memberships => counts(created => 1, unchanged => 9,
                          skipped => $n_links),
}, 'contacts off: contacts {"skipped": 3}, links skipped, the rest synced')
    or diag($J->encode($r));
is(q1("SELECT mis_id, title, first_name, last_name, home_phone, work_phone,
              mobile_phone, email, language, phone_problems, overrides,
              created_at, updated_at, retired_at
         FROM msgr_contacts WHERE school_id = $A ORDER BY mis_id"),
   $contacts_before,
   'contacts off: msgr_contacts untouched (no update, no retire, no C4)');
is(q1("SELECT * FROM msgr_student_contacts
        WHERE school_id = $A ORDER BY student_id, contact_id"),
   $sc_before, 'contacts off: msgr_student_contacts untouched');
is(q1("SELECT last_name FROM msgr_students
        WHERE school_id = $A AND mis_id = 'S1'"), 'Jones-Smith',
   'contacts off: students still synced');
ok((grep { $_ eq 'G7B:T1:staff' } @{ live_group_members($A) }),
   'contacts off: group memberships still synced');

# back on: the contact changes arrive
$r = sync($A, $off, 1);
is_deeply($r->{contacts}, counts(created => 1, updated => 1, retired => 1,
                                 unchanged => 1),
          'contacts on again: C4 created, C2 updated, C3 retired')
    or diag($J->encode($r));
is_deeply($r->{memberships}, counts(created => 1, updated => 1, retired => 1,
                                    unchanged => 13),
          'contacts on again: S3-C4 created, S1-C1 updated, S3-C3 retired')
    or diag($J->encode($r));
is(q1("SELECT overrides->>'mobile_phone' FROM msgr_contacts
        WHERE school_id = $A AND mis_id = 'C1'"), '+447700900999',
   'contacts on again: overrides still there');
$snap = $off;


# ---------------------------------------------------------------------------
# two schools with the same mis_ids stay apart

my $bsnap = base();
$bsnap->{students}[0]{first_name} = 'Amelia';
$r = sync($B, $bsnap);
is_deeply($r, {
    students    => counts(created => 3),
    contacts    => counts(created => 3),
    staff       => counts(created => 2),
    groups      => counts(created => 3),
    memberships => counts(created => 13),
}, 'school B: same mis_ids as A, all created for B') or diag($J->encode($r));
is(q1("SELECT string_agg(school_id || ':' || first_name, ','
                         ORDER BY school_id)
         FROM msgr_students WHERE mis_id = 'S1'
          AND school_id IN ($A, $B)"),
   "$A:Amy,$B:Amelia", 'school B: S1 is two rows, one per school');

my $a_before = dump_school($A);
$r = sync($B, { default_country => 'GB', students => [], contacts => [],
                staff => [], groups => [] });
is_deeply($r, {
    students    => counts(retired => 3),
    contacts    => counts(retired => 3),
    staff       => counts(retired => 2),
    groups      => counts(retired => 3),
    memberships => counts(retired => 13),
}, 'school B empty snapshot: all of B retired') or diag($J->encode($r));
is(dump_school($A), $a_before, "school B empty snapshot: A's rows untouched");
is(q1("SELECT count(*) FROM msgr_students
        WHERE school_id = $B AND retired_at IS NOT NULL"), 3,
   'school B empty snapshot: rows kept, retired');

# memberships always join rows of the same school
is(q1("SELECT count(*) FROM msgr_group_students m
         JOIN msgr_students s ON s.student_id = m.student_id
        WHERE s.school_id <> m.school_id"), 0,
   'no membership points at another school\'s row');


# ---------------------------------------------------------------------------
# errors change nothing

sub fails_cleanly {
    my ($name, $school, $bad, $want, $contacts) = @_;
    my $before = dump_school($school);
    my ($out, $err) = sync_err($school, $bad, $contacts);
    ok(!defined $out, "$name: the call fails");
    like($err, $want, "$name: the error says why") or diag($err);
    is(dump_school($school), $before, "$name: nothing changed");
}

# a group naming a student the snapshot does not have; the same snapshot
# also changes a name, which must not survive the failure
my $bad = clone($snap);
$bad->{students}[0]{first_name} = 'Changed';
$bad->{contacts}[0]{first_name} = 'Changed';
push @{ $bad->{groups}[0]{students} }, 'S404';
fails_cleanly('group names an unknown student', $A, $bad,
              qr/22023.*group G7B names student S404 not in the snapshot/);

# a retired student (in the table, not in the snapshot) is unknown too
$bad = clone($snap);
my ($gone) = splice @{ $bad->{students} }, 1, 1;         # S2
$_->{students} = [ grep { $_ ne 'S2' } @{ $_->{students} } ]
    for @{ $bad->{groups} };
sync($A, $bad);
is(q1("SELECT count(*) FROM msgr_students WHERE school_id = $A
        AND mis_id = 'S2' AND retired_at IS NOT NULL"), 1,
   'S2 retired for the next check');
push @{ $bad->{groups}[2]{students} }, 'S2';
fails_cleanly('group names a retired student', $A, $bad,
              qr/22023.*group GMA names student S2 not in the snapshot/);

$bad = clone($snap);
push @{ $bad->{groups}[1]{teachers} }, 'T9';
fails_cleanly('group names an unknown teacher', $A, $bad,
              qr/22023.*group GY7 names staff T9 not in the snapshot/);

$bad = clone($snap);
push @{ $bad->{students}[1]{contacts} },
    { mis_id => 'C99', relationship => 'Other', priority => 3,
      correspondence => $T };
fails_cleanly('student names an unknown contact', $A, $bad,
              qr/22023.*student S2 names contact C99 not in the snapshot/);

$bad = clone($snap);
push @{ $bad->{students} }, clone($bad->{students}[0]);
fails_cleanly('a student listed twice', $A, $bad,
              qr/22023.*student S1 is listed twice/);

$bad = clone($snap);
push @{ $bad->{students}[0]{contacts} },
    clone($bad->{students}[0]{contacts}[0]);
fails_cleanly('a contact listed twice for a student', $A, $bad,
              qr/22023.*student S1 names contact C1 twice/);

# a constraint failing after students were written undoes them
$bad = clone($snap);
$bad->{students}[0]{first_name} = 'Changed';
$bad->{groups}[0]{type} = 'house';
fails_cleanly('a group type the table refuses', $A, $bad,
              qr/23514.*msgr_groups_type_check/);

$bad = clone($snap);
$bad->{staff}[0]{last_name} = 'Changed';
$bad->{students}[0]{contacts}[0]{priority} = 100;
fails_cleanly('a link priority the table refuses', $A, $bad,
              qr/23514.*msgr_student_contacts_priority_check/);

$bad = clone($snap);
delete $bad->{groups};
fails_cleanly('a snapshot without its groups list', $A, $bad,
              qr/22023.*the snapshot has no "groups" array/);

$bad = clone($snap);
$bad->{staff} = {};
fails_cleanly('a snapshot whose staff is not a list', $A, $bad,
              qr/22023.*the snapshot has no "staff" array/);

my ($out, $err) = sync_err(999999, base());
ok(!defined $out && $err =~ /P0002.*no school 999999/,
   'an unknown school: refused') or diag($err);
is(q1("SELECT count(*) FROM msgr_students WHERE school_id = 999999"), 0,
   'an unknown school: nothing written');

# after all that, the last good snapshot is still in force
is_deeply(sync($A, $snap)->{groups}, counts(unchanged => 3),
          'after the failures: the good snapshot syncs as before');


# ---------------------------------------------------------------------------
# one sync per school at a time; other schools do not wait

sub psql_pipe {
    my ($outfile) = @_;
    open(my $fh, '|-', 'psql', '-XAtq', '-v', 'ON_ERROR_STOP=1',
         '-d', $pg->conninfo, '-o', $outfile)
        or die "psql: $!";
    my $old = select $fh;
    $| = 1;
    select $old;
    return $fh;
}

sub wait_for {
    my ($sql, $want, $secs) = @_;
    my $deadline = time + ($secs // 10);
    my $got;
    while (time < $deadline) {
        $got = q1($sql);
        return 1 if $got eq $want;
        sleep 0.05;
    }
    diag("waited for '$want' from: $sql; last got '$got'");
    return 0;
}

my $tmp = File::Temp::tempdir('msgr-sync-XXXXXX', TMPDIR => 1, CLEANUP => 1);
my $locks = "SELECT count(*) FROM pg_locks
              WHERE locktype = 'advisory' AND objsubid = 2
                AND objid = $C AND granted = %s";

# first sync of school C, transaction left open
my $c1 = psql_pipe("$tmp/c1.out");
print $c1 "BEGIN;\n" . call_sql($C, base()) . "\n";
ok(wait_for(sprintf($locks, 'true'), 1, 30),
   'lock: the open sync holds an advisory lock on its school');

# a second sync of school C waits for it
my $c2snap = base();
$c2snap->{students}[0]{first_name} = 'Second';
my $c2 = psql_pipe("$tmp/c2.out");
print $c2 call_sql($C, $c2snap) . "\n";
ok(wait_for(sprintf($locks, 'false'), 1, 30),
   'lock: a second sync of the same school waits for that lock');

# another school meanwhile syncs at once
$r = sync($A, $snap);
is_deeply($r->{students}, counts(unchanged => 3),
          'lock: another school syncs while the first is open');
is(q1(sprintf($locks, 'false')), 1, 'lock: and the second is still waiting');

print $c1 "COMMIT;\n";
close $c1;
ok($? == 0, 'lock: the first sync commits');
close $c2;
ok($? == 0, 'lock: the second sync then runs');

my $first  = $J->decode(slurp("$tmp/c1.out"));
my $second = $J->decode(slurp("$tmp/c2.out"));
is($first->{students}{created}, 3, 'lock: the first sync created');
is_deeply($second, expect($c2snap, students => { updated => 1 }),
          'lock: the second saw the first\'s committed rows: 1 update')
    or diag($J->encode($second));
is(q1("SELECT first_name FROM msgr_students
        WHERE school_id = $C AND mis_id = 'S1'"), 'Second',
   'lock: the later sync is the one in force');



# ---------------------------------------------------------------------------
# the benchmark's synthetic school is valid input, the same every time

my $gen = "$Msgr::Test::ROOT/bench/lib/mis_snapshot.pl";
my $big = `$^X $gen 2000`;
is($?, 0, 'mis_snapshot.pl 2000: runs');
is(`$^X $gen 2000`, $big, 'mis_snapshot.pl: the same bytes every time');
isnt(`$^X $gen 2000 --seed 2`, $big, 'mis_snapshot.pl --seed 2: others');
my $bs = $J->decode($big);
my $nlinks = 0;
$nlinks += @{ $_->{contacts} } for @{ $bs->{students} };
my %types;
$types{ $_->{type} }++ for @{ $bs->{groups} };
is_deeply([ scalar @{ $bs->{students} }, scalar @{ $bs->{contacts} },
            scalar @{ $bs->{staff} }, scalar @{ $bs->{groups} }, $nlinks,
            \%types ],
          [ 2000, 3800, 200, 300, 4000,
            { registration => 70, year => 7, class => 200, custom => 23 } ],
          'mis_snapshot.pl: 2000 students, 3800 contacts (siblings share), '
          . '200 staff, 300 groups, 4000 links');
my @phones = grep { defined }
             map { @$_{qw(home_phone work_phone mobile_phone)} }
             @{ $bs->{contacts} }, @{ $bs->{staff} };
is(scalar(grep { !/^\+44(?:77009\d{5}|\d{10})$/ } @phones), 0,
   'mis_snapshot.pl: every phone number is UK E.164');

my $D = Msgr::Test::school($pg, 'Delta Academy');
$r = sync($D, $big);
my $nmembers = $nlinks;
$nmembers += @{ $_->{students} } + @{ $_->{staff} } + @{ $_->{teachers} }
    for @{ $bs->{groups} };
is_deeply($r, {
    students    => counts(created => 2000),
    contacts    => counts(created => 3800),
    staff       => counts(created => 200),
    groups      => counts(created => 300),
    memberships => counts(created => $nmembers),
}, "mis_snapshot.pl: syncs, all created ($nmembers memberships)")
    or diag($J->encode($r));
is_deeply(sync($D, $big), all_unchanged($bs),
          'mis_snapshot.pl: and again, all unchanged');


done_testing();
