#!/usr/bin/perl

# Contacts and contact attributes, the rules every route keeps:
#
# - If-Match is judged against the row as it is when the write gets its
#   lock: a writer that changed it meanwhile (a psql transaction holding
#   the row) wins and the PATCH gets 412, for contacts and attributes;
# - names of any length (100-character CJK names) on every route that
#   shows them;
# - a contact's ETag changes whenever its body would: a sync renaming a
#   linked child, the relationship, show_registration_in_names;
# - a column added to msgr_contacts is not published;
# - PATCH takes application/merge-patch+json; a cleared number or email and
#   a relationship the MIS does not give read null on every route.

use strict;
use warnings;
use utf8;

use JSON::PP;
use POSIX ();
use Test::More;
use Time::HiRes qw(sleep);

use lib 't/lib';
use Msgr::Test;
use Msgr::Test::API;

binmode(Test::More->builder->$_, ':encoding(UTF-8)')
    for qw(output failure_output todo_output);

my $V = '/msgr/v1';

my $pg = Msgr::Test::pg_start();
my ($A, $admin, $staff, $int) = one_school($pg);

my $ngx = Msgr::Test::nginx_start($pg, workers => 2, timeout => '20s');
use_nginx($ngx, prefix => "$V/");


# ---------------------------------------------------------------------------
# helpers

sub patch {
    my ($path, $body, %h) = @_;
    $h{'Content-Type'} //= 'application/json';
    return $ngx->req(PATCH => "$V/$path", key => $admin,
                     body => $J->encode($body), headers => \%h);
}

sub set_contacts {
    my ($field, $value) = @_;
    my $r = patch('settings/contacts', { $field => $value });
    Msgr::Test::json_ok($r, 200, "contacts.$field = " . $J->encode($value));
    my $bad = 0;
    for (1 .. 6) {
        my $g = get_json($admin, 'settings/contacts');
        $bad++ unless $J->encode($g->{$field}) eq $J->encode($value);
    }
    is($bad, 0, "contacts.$field reads back on every worker");
}

# Runs $sql in a psql transaction that then sleeps $secs holding its row
# locks before it commits; returns once the transaction holds them.
sub hold {
    my ($sql, $secs) = @_;
    my $file = $pg->dir . "/hold-$$.sql";
    open my $fh, '>:encoding(UTF-8)', $file or die "$file: $!";
    print $fh "BEGIN;\n$sql;\nSELECT pg_sleep($secs);\nCOMMIT;\n";
    close $fh;
    chmod 0644, $file;
    my $pid = fork // die "fork: $!";
    if (!$pid) {
        open STDOUT, '>', '/dev/null';
        { exec 'psql', '-XAtq', '-v', 'ON_ERROR_STOP=1',
               '-d', $pg->conninfo, '-f', $file; }
        POSIX::_exit(127);
    }
    for (1 .. 400) {
        last if $pg->psql("SELECT count(*) FROM pg_stat_activity"
                          . " WHERE query LIKE 'SELECT pg\\_sleep%'") > 0;
        sleep 0.025;
    }
    return $pid;
}

sub reap_ok {
    my ($pid, $name) = @_;
    waitpid($pid, 0);
    is($? >> 8, 0, "$name: the psql transaction committed");
}


# ---------------------------------------------------------------------------
# the fixture: names of 100 CJK characters each

my $FIRST = '漢' x 100;
my $LAST  = '字' x 100;
my $TFIRST = '教' x 100;
my $CFIRST = '親' x 100;

my $snap = {
    students => [
        { mis_id => 'S1', first_name => 'Amy', last_name => 'Jones',
          reg_group => '7B', status => 'on_roll',
          contacts => [ { mis_id => 'C1', relationship => 'Mother',
                          priority => 1 } ] },
        { mis_id => 'S2', first_name => $FIRST, last_name => $LAST,
          reg_group => '7C', status => 'on_roll',
          contacts => [ { mis_id => 'C2', priority => 1 } ] },
    ],
    contacts => [
        { mis_id => 'C1', title => 'Mrs', first_name => 'Jane',
          last_name => 'Jones', mobile_phone => '07700 900123',
          email => 'jane@example.org' },
        { mis_id => 'C2', title => '博士', first_name => $CFIRST,
          last_name => $LAST, mobile_phone => '07700 900124' },
    ],
    staff => [
        { mis_id => 'T1', title => '先生', first_name => $TFIRST,
          last_name => $LAST, mobile_phone => '07700 900401' },
    ],
    groups => [
        { mis_id => 'G1', name => '7 Maths', type => 'class',
          students => ['S1', 'S2'], staff => ['T1'] },
    ],
};
sync_json($int, $snap);

my %C = map { $_->{mis_id} => $_ } @{ get_json($admin, 'contacts')->{items} };
my %S = map { $_->{mis_id} => $_ } @{ get_json($admin, 'students')->{items} };
my $gid = get_json($admin, 'groups')->{items}[0]{id};
my $c1 = $C{C1}{id};
my $c2 = $C{C2}{id};

set_contacts(can_edit_imported_contacts => $T);


# ---------------------------------------------------------------------------
# long names on every route

{
    my $student = "$FIRST $LAST";
    my $contact = "博士 $CFIRST $LAST";
    my $teacher = "先生 $TFIRST $LAST";

    for my $reg (0, 1) {
        set_contacts(show_registration_in_names => $reg ? $T : $F);
        my $sn = $reg ? "$student (7C)" : $student;
        my $n = $reg ? 'registration in names' : 'plain names';

        my %st = map { $_->{mis_id} => $_ }
                 @{ get_json($staff, 'students')->{items} };
        is($st{S2}{name}, $sn, "$n: /students shows the long name");

        my %co = map { $_->{mis_id} => $_ }
                 @{ get_json($staff, 'contacts')->{items} };
        is($co{C2}{name}, $contact, "$n: /contacts shows the long name");
        is($co{C2}{students}[0]{name}, $sn,
           "$n: /contacts: the long child's name");

        my $one = get_json($staff, "contacts/$c2");
        is($one->{name}, $contact, "$n: /contacts/{id} shows the long name");
        is($one->{students}[0]{name}, $sn,
           "$n: /contacts/{id}: the long child's name");

        my ($t) = @{ get_json($staff, 'staff')->{items} };
        is($t->{name}, $teacher, "$n: /staff shows the long name");

        my %m = map { ("$_->{type}:$_->{mis_id}" => $_) }
                @{ get_json($staff, "groups/$gid/members")->{items} };
        is($m{'student:S2'}{name}, $sn, "$n: members: the long student");
        is($m{'staff:T1'}{name}, $teacher, "$n: members: the long staff");

        my $rec = get_json($staff, "recipients?group=$gid");
        my ($r2) = grep { $_->{id} == $c2 } @{ $rec->{recipients} };
        is($r2->{name}, $contact, "$n: /recipients: the long contact");
        is($r2->{students}[0]{name}, $sn, "$n: /recipients: the long child");
        $rec = get_json($staff, "recipients?group=$gid&send_to=staff");
        is($rec->{recipients}[0]{name}, $teacher,
           "$n: /recipients send_to=staff: the long staff name");

        my $tok = get_json($staff, "contacts/$c2/tokens");
        is($tok->{tokens}{name}, $contact, "$n: tokens: the long name");
    }
    set_contacts(show_registration_in_names => $F);
}


# ---------------------------------------------------------------------------
# a contact's ETag follows its body

sub etag_moves_ok {
    my ($old, $change, $check, $name) = @_;
    local $Test::Builder::Level = $Test::Builder::Level + 1;
    $change->();
    my $r = get($admin, "contacts/$c1", 'If-None-Match' => $old);
    is($r->{status}, 200, "$name: If-None-Match with the old ETag is 200");
    ok($r->{json} && $check->($r->{json}), "$name: the new body")
        or diag($r->{content});
    my $new = $r->{headers}{etag};
    ok(defined $new && $new ne $old, "$name: a new ETag");
    $r = get($admin, "contacts/$c1", 'If-None-Match' => $new // '');
    is($r->{status}, 304, "$name: If-None-Match with the new ETag is 304");
    return $new;
}

{
    my $r = get($admin, "contacts/$c1");
    my $etag = $r->{headers}{etag};
    like($etag // '', qr/^"[^"]+"$/, 'a contact has a strong ETag');
    is(get($admin, "contacts/$c1", 'If-None-Match' => $etag)->{status}, 304,
       'nothing changed: 304');

    $etag = etag_moves_ok($etag, sub {
        $snap->{students}[0]{first_name} = 'Amelia';
        sync_json($int, $snap);
    }, sub { $_[0]{students}[0]{name} eq 'Amelia Jones' },
    'a sync renames the linked child');

    $etag = etag_moves_ok($etag, sub {
        $snap->{students}[0]{contacts}[0]{relationship} = 'Aunt';
        sync_json($int, $snap);
    }, sub { $_[0]{students}[0]{relationship} eq 'Aunt' },
    'a sync changes the relationship');

    $etag = etag_moves_ok($etag, sub {
        set_contacts(show_registration_in_names => $T);
    }, sub { $_[0]{students}[0]{name} eq 'Amelia Jones (7B)' },
    'show_registration_in_names on');

    # an If-Match from before the setting changed names another body
    $r = patch("contacts/$c1", { title => 'Dr' }, 'If-Match' => $etag);
    Msgr::Test::json_ok($r, 200, 'PATCH with the current ETag: 200');
    is($r->{headers}{etag}, get($admin, "contacts/$c1")->{headers}{etag},
       'the PATCH answers with the ETag GET gives');
    $etag = $r->{headers}{etag};
    set_contacts(show_registration_in_names => $F);
    $r = patch("contacts/$c1", { title => 'Prof' }, 'If-Match' => $etag);
    Msgr::Test::problem_ok($r, 412, 'If-Match from before the setting: 412');
    is(get_json($admin, "contacts/$c1")->{title}, 'Dr',
       'the 412 changed nothing');
}


# ---------------------------------------------------------------------------
# If-Match against a concurrent writer

{
    my $etag = get($admin, "contacts/$c1")->{headers}{etag};
    my $pid = hold("UPDATE msgr_contacts SET overrides = overrides"
                   . " || '{\"email\":\"psql\@example.org\"}'"
                   . " WHERE contact_id = $c1", 2);
    my $r = patch("contacts/$c1", { email => 'patch@example.org' },
                  'If-Match' => $etag);
    reap_ok($pid, 'contact');
    Msgr::Test::problem_ok($r, 412,
        'contact PATCH with the ETag the concurrent writer made old: 412');
    ok($r->{elapsed} > 0.3,
       sprintf('the PATCH waited for the row lock (%.2fs)', $r->{elapsed}));
    is(get_json($admin, "contacts/$c1")->{email}, 'psql@example.org',
       'the concurrent writer\'s email survives');

    # with the new ETag the PATCH goes through
    $etag = get($admin, "contacts/$c1")->{headers}{etag};
    $r = patch("contacts/$c1", { email => 'patch@example.org' },
               'If-Match' => $etag);
    Msgr::Test::json_ok($r, 200, 'contact PATCH with the new ETag: 200');
    is($r->{json}{email}, 'patch@example.org', 'and it is applied');
}

{
    my $r = $ngx->req(POST => "$V/contact-attributes", key => $admin,
                      body => { name => 'Head of Year',
                                default_value => 'Miss Smith' });
    Msgr::Test::json_ok($r, 201, 'POST an attribute');
    my $aid = $r->{json}{id};
    my $etag = $r->{headers}{etag};
    my $pid = hold("UPDATE msgr_contact_attributes SET default_value = 'psql'"
                   . " WHERE attribute_id = $aid", 2);
    $r = patch("contact-attributes/$aid", { default_value => 'patch' },
               'If-Match' => $etag);
    reap_ok($pid, 'attribute');
    Msgr::Test::problem_ok($r, 412,
        'attribute PATCH with the ETag the concurrent writer made old: 412');
    ok($r->{elapsed} > 0.3,
       sprintf('the PATCH waited for the row lock (%.2fs)', $r->{elapsed}));
    is(get_json($admin, "contact-attributes/$aid")->{default_value}, 'psql',
       'the concurrent writer\'s default survives');

    # merge-patch+json is a PATCH body like application/json
    $r = patch("contact-attributes/$aid", { default_value => 'Mr Brown' },
               'Content-Type' => 'application/merge-patch+json');
    Msgr::Test::json_ok($r, 200,
                        'attribute PATCH as application/merge-patch+json');
    is(get_json($admin, "contact-attributes/$aid")->{default_value},
       'Mr Brown', 'the merge patch is applied');
    $r = patch("contact-attributes/$aid", { default_value => 'x' },
               'Content-Type' => 'text/plain');
    Msgr::Test::problem_ok($r, 415, 'attribute PATCH as text/plain: 415');
}


# ---------------------------------------------------------------------------
# merge-patch+json, and a cleared field reads null everywhere

{
    my $r = patch("contacts/$c1", { email => '', home_phone => '',
                                    mobile_phone => '07700 900999' },
                  'Content-Type' => 'application/merge-patch+json');
    Msgr::Test::json_ok($r, 200,
                        'contact PATCH as application/merge-patch+json');
    my $j = $r->{json} || {};
    ok(exists $j->{email} && !defined $j->{email},
       'a cleared email reads null in the PATCH answer')
        or diag($r->{content});
    is($j->{mobile_phone}, '+447700900999', 'the merge patch is applied');
    is($j->{mis_values}{email}, 'jane@example.org',
       'mis_values keeps the MIS email');

    my $one = get_json($admin, "contacts/$c1");
    ok(exists $one->{email} && !defined $one->{email},
       'GET /contacts/{id}: the cleared email is null');
    ok(exists $one->{home_phone} && !defined $one->{home_phone},
       'GET /contacts/{id}: the cleared home number is null');
    my ($l) = grep { $_->{id} == $c1 }
              @{ get_json($admin, 'contacts')->{items} };
    ok(exists $l->{email} && !defined $l->{email},
       'GET /contacts: the cleared email is null');

    my $rec = get_json($admin, "recipients?student=$S{S1}{id}");
    my ($rc) = grep { $_->{id} == $c1 } @{ $rec->{recipients} };
    ok($rc && exists $rc->{channels}{email} && !defined $rc->{channels}{email},
       '/recipients: the cleared email is null');

    # a relationship the MIS does not give: null on both routes
    my $two = get_json($admin, "contacts/$c2");
    ok(exists $two->{students}[0]{relationship}
       && !defined $two->{students}[0]{relationship},
       'GET /contacts/{id}: a relationship not given is null')
        or diag($J->encode($two->{students}));
    $rec = get_json($admin, "recipients?student=$S{S2}{id}");
    ok(exists $rec->{recipients}[0]{students}[0]{relationship}
       && !defined $rec->{recipients}[0]{students}[0]{relationship},
       '/recipients: a relationship not given is null');

    # null drops the edit: the MIS email again
    $r = patch("contacts/$c1", { email => undef },
               'Content-Type' => 'application/merge-patch+json');
    is($r->{json}{email}, 'jane@example.org', 'null drops the edit');
    $r = patch("contacts/$c1", { email => 'x@example.org' },
               'Content-Type' => 'text/plain');
    Msgr::Test::problem_ok($r, 415, 'contact PATCH as text/plain: 415');
}


# ---------------------------------------------------------------------------
# a column added to msgr_contacts is not published

{
    $pg->psql("ALTER TABLE msgr_contacts ADD COLUMN secret_x text"
              . " DEFAULT 'leak'");
    my @bodies = (
        [ '/contacts', get($staff, 'contacts') ],
        [ '/contacts/{id}', get($staff, "contacts/$c1") ],
        [ '/contacts/{id}/tokens', get($staff, "contacts/$c1/tokens") ],
        [ '/recipients', get($staff, "recipients?group=$gid") ],
        [ 'PATCH', patch("contacts/$c1", { title => 'Mx' }) ],
    );
    for my $b (@bodies) {
        my ($name, $r) = @$b;
        is($r->{status}, 200, "$name after ADD COLUMN: 200")
            or diag($r->{content});
        unlike($r->{content}, qr/secret_x|leak/,
               "$name does not publish the new column");
    }
    my $one = get_json($admin, "contacts/$c1");
    is_deeply([ sort keys %$one ],
              [ sort qw(id mis_id title first_name last_name name home_phone
                        work_phone mobile_phone email language
                        phone_problems overridden mis_values students) ],
              'a contact has exactly the fields of docs/api.md');
}

Msgr::Test::finish();
