#!/usr/bin/perl

# Account settings (GET/PATCH /v1/settings[/{tab}], GET /v1/settings/audit)
# as an API client sees them: every default, every writable field accepted
# and rejected, merge patches all-or-nothing, ETags and If-Match, roles,
# the read-only mis tab, Enhanced Messenger gating, the audit trail and its
# pages, tenancy, and reads after writes on every worker (a PATCH through
# the API, or a change made in the database and announced by NOTIFY).

use strict;
use warnings;

use JSON::PP;
use Test::More;
use IO::Select;
use IO::Socket::INET;
use Time::HiRes qw(sleep time);

use lib 't/lib';
use Msgr::Test;
use Msgr::Test::API;

my $S = '/msgr/v1/settings';

my $pg = Msgr::Test::pg_start();

my $a_id = Msgr::Test::school($pg, 'Alpha Academy');
my $b_id = Msgr::Test::school($pg, 'Beta Primary');
my $f_id = Msgr::Test::school($pg, 'Field Test School');
my $g_id = Msgr::Test::school($pg, 'Gamma High');

my $akey   = Msgr::Test::key($pg, $a_id, 'admin');
my $astaff = Msgr::Test::key($pg, $a_id, 'staff');
my $aint   = Msgr::Test::key($pg, $a_id, 'integrator');
my $bkey   = Msgr::Test::key($pg, $b_id, 'admin');
my $fkey   = Msgr::Test::key($pg, $f_id, 'admin');
my $gkey   = Msgr::Test::key($pg, $g_id, 'admin');

# the field-by-field school has Enhanced Messenger from the start
$pg->psql("UPDATE msgr_schools SET enhanced = true WHERE school_id = $f_id");

my $ngx = api_nginx($pg);
my @WORKERS = sort $ngx->worker_pids;


# ---------------------------------------------------------------------------
# helpers

sub enc { $J->encode($_[0]) }

# patch($key, $path, $body_ref_or_text, type => ..., headers => {...})
sub patch {
    my ($key, $path, $body, %o) = @_;
    my $text = ref $body ? enc($body) : $body;
    my %h = %{ $o{headers} || {} };
    my $type = exists $o{type} ? $o{type} : 'application/merge-patch+json';
    $h{'Content-Type'} = $type if defined $type;
    return $ngx->req(PATCH => $path, key => $key, body => $text,
                     headers => \%h);
}

sub etag { $_[0]{headers}{etag} // '' }

sub etag_of { my ($v) = @_; return "\"$v\"" }

sub db_version {
    my ($id) = @_;
    return $pg->psql("SELECT version FROM msgr_settings"
                     . " WHERE school_id = $id");
}

sub audit_count {
    my ($id) = @_;
    return $pg->psql("SELECT count(*) FROM msgr_settings_audit"
                     . " WHERE school_id = $id");
}

# What a school's settings look like now, through the API and in the DB.
sub snapshot {
    my ($key, $id) = @_;
    my $r = get($key, $S);
    die "GET $S: $r->{status} $r->{content}\n" unless $r->{status} == 200;
    return {
        id      => $id,
        key     => $key,
        body    => $r->{content},
        json    => $r->{json},
        etag    => etag($r),
        version => db_version($id),
        doc     => $pg->psql("SELECT doc::text FROM msgr_settings"
                             . " WHERE school_id = $id"),
        audit   => audit_count($id),
    };
}

sub unchanged_ok {
    my ($snap, $name) = @_;
    local $Test::Builder::Level = $Test::Builder::Level + 1;
    my $r = get($snap->{key}, $S);
    my @why;
    push @why, "GET status $r->{status}" if $r->{status} != 200;
    push @why, "body changed:\n  was $snap->{body}\n  now $r->{content}"
        if $r->{content} ne $snap->{body};
    push @why, "ETag changed: was $snap->{etag}, now " . etag($r)
        if etag($r) ne $snap->{etag};
    my $v = db_version($snap->{id});
    push @why, "stored version changed: was $snap->{version}, now $v"
        if $v ne $snap->{version};
    my $doc = $pg->psql("SELECT doc::text FROM msgr_settings"
                        . " WHERE school_id = $snap->{id}");
    push @why, "stored doc changed: was $snap->{doc}, now $doc"
        if $doc ne $snap->{doc};
    my $n = audit_count($snap->{id});
    push @why, "audit rows: was $snap->{audit}, now $n"
        if $n ne $snap->{audit};
    ok(!@why, "$name: nothing changed") or diag(join "\n", @why);
}

sub error_for {
    my ($errs, $field) = @_;
    for my $e (@$errs) {
        return $e->{message} if ref $e eq 'HASH' && ($e->{field} // '')
                                eq $field;
    }
    return '';
}

# Polls $cond every 20 ms for up to $secs seconds; its last value.
sub poll {
    my ($secs, $cond) = @_;
    my $end = time + $secs;
    while (1) {
        my $v = $cond->();
        return $v if $v || time > $end;
        sleep 0.02;
    }
}

# Every GET of $path, on fresh connections (one after the other until
# every worker has answered 10 of them, then 20 at once), shows $check true
# and ETag $etag.
sub every_get_ok {
    my ($key, $path, $etag, $check, $name) = @_;
    local $Test::Builder::Level = $Test::Builder::Level + 1;
    my (@bad, %by);
    for my $i (1 .. 300) {
        my $r = get($key, $path);
        my $j = $r->{json};
        $by{ $r->{headers}{'x-worker'} // '?' }++;
        push @bad, "sequential #$i: $r->{status} ETag " . etag($r)
                 . " $r->{content}"
            unless $r->{status} == 200 && etag($r) eq $etag
                   && ref $j eq 'HASH' && $check->($j);
        last unless grep { ($by{$_} // 0) < 10 } @WORKERS;
    }
    is_deeply([ sort keys %by ], \@WORKERS,
              "$name: every worker (@WORKERS) answered");
    ok(!(grep { ($by{$_} // 0) < 10 } @WORKERS),
       "$name: 10 GETs on each worker")
        or diag(join ', ', map { "$_: " . ($by{$_} // 0) } @WORKERS);
    my @res = Msgr::Test::burst($ngx, count => 20, path => $path,
                                key => $key);
    my $i = 0;
    for my $r (@res) {
        $i++;
        my $j = eval { $J->decode($r->{content}) };
        push @bad, "concurrent #$i: $r->{status} ETag "
                 . ($r->{headers}{etag} // '') . " $r->{content}"
                 . ($r->{error} ? " ($r->{error})" : '')
            unless $r->{status} == 200
                   && ($r->{headers}{etag} // '') eq $etag
                   && ref $j eq 'HASH' && $check->($j);
    }
    ok(!@bad, "$name: every GET (one by one, then 20 at once) shows it")
        or diag(join "\n", @bad[0 .. ($#bad < 5 ? $#bad : 5)]);
}

# operator changes, made with msgrctl school set
sub op_set_mis {
    my ($id, $field, $value) = @_;
    my $v = ref $value ? ($value ? 'true' : 'false') : $value;
    my ($rc, $out, $err) = Msgr::Test::msgrctl($pg, 'school', 'set',
                                                $id, "mis.$field=$v");
    is($rc, 0, "msgrctl school set $id mis.$field=$v exits 0")
        or diag("$out$err");
}

sub op_enhance {
    my ($id) = @_;
    my ($rc, $out, $err) = Msgr::Test::msgrctl(
        $pg, 'school', 'set', $id, 'enhanced_messenger=true');
    is($rc, 0, "msgrctl school set $id enhanced_messenger=true exits 0")
        or diag("$out$err");
}


# ---------------------------------------------------------------------------
# the defaults, as the table in src/msgr_settings.c and docs/settings.md say

my @TABS = qw(sending contacts security school xpressions mis);

my %DEFAULTS = (
    sending => [
        pin_threshold                    => 1000,
        voice_calling                    => 'first_number',
        sms_voice_routing                => 'sms_priority',
        allow_template_edit_on_compose   => $F,
        default_send_to                  => 'primary_contact',
        timetable_layout                 => 'week_grid',
        report_warning_email             => $F,
        include_translation_warning_link => $F,
        translation_warning_url          => '',
        advanced_routing                 => 'default',
        custom_priority                  => [qw(xpressions sms voice email)],
    ],
    contacts => [
        can_edit_imported_contacts   => $F,
        auto_sync_contacts           => $T,
        next_available_if_no_primary => $F,
        show_registration_in_names   => $F,
        hide_staff_contact_details   => $F,
    ],
    security => [
        enforce_password_change => $F,
        password_strength       => 'any',
        password_history        => 'previous',
    ],
    school => [
        name     => undef,      # the name given to msgrctl school create
        address  => '',
        phone    => '',
        phone_country => 'GB',
        email    => '',
        website  => '',
        logo_url => '',
    ],
    xpressions => [
        backup_sms               => $F,
        backup_sms_after_minutes => 30,
        incoming_enabled         => $F,
    ],
    mis => [
        teachers_in_class_groups => $T,
        guest_students           => $F,
        pre_admissions           => $F,
        leavers_included         => $F,
        attendance_by_reg_group  => $F,
        leavers_persistence_days => 90,
    ],
);

sub defaults_for {
    my ($name) = @_;
    my %d;
    for my $tab (@TABS) {
        my @kv = @{ $DEFAULTS{$tab} };
        while (my ($k, $v) = splice(@kv, 0, 2)) {
            $d{$tab}{$k} = $k eq 'name' && $tab eq 'school' ? $name : $v;
        }
    }
    return \%d;
}

sub field_names {
    my ($tab) = @_;
    my @kv = @{ $DEFAULTS{$tab} };
    return @kv[ grep { $_ % 2 == 0 } 0 .. $#kv ];
}

# Compares a settings object with the defaults, field by field.
sub defaults_ok {
    my ($got, $name, $who) = @_;
    my $want = defaults_for($name);
    is_deeply([ sort keys %{ $got || {} } ], [ sort @TABS ],
              "$who: the tabs are @TABS");
    for my $tab (@TABS) {
        my $g = ref $got eq 'HASH' ? $got->{$tab} : undef;
        my @extra = grep { !exists $want->{$tab}{$_} } keys %{ $g || {} };
        ok(!@extra, "$who: $tab has no fields but the table's")
            or diag("extra: @extra");
        for my $f (field_names($tab)) {
            is(enc($g->{$f}), enc($want->{$tab}{$f}),
               "$who: default $tab.$f = " . enc($want->{$tab}{$f}));
        }
    }
}


# ---------------------------------------------------------------------------
# GET: a fresh school's defaults, ETag "1", tabs, 304, roles, 404

{
    my $r = get($akey, $S);
    Msgr::Test::json_ok($r, 200, 'GET /settings: 200 JSON');
    is(etag($r), '"1"', 'a new school: ETag "1"');
    defaults_ok($r->{json}, 'Alpha Academy', 'fresh school');

    # not a setting (docs/settings.md): GET /v1/school shows it
    ok(!exists $r->{json}{sending}{enhanced_messenger},
       'the sending tab has no enhanced_messenger');
    my $sch = get($akey, '/msgr/v1/school');
    Msgr::Test::json_ok($sch, 200, 'GET /v1/school: 200');
    is(enc($sch->{json}{enhanced_messenger}), enc($F),
       'GET /v1/school: enhanced_messenger false');
    is(enc(get($fkey, '/msgr/v1/school')->{json}{enhanced_messenger}),
       enc($T), 'GET /v1/school of an Enhanced school: it is true');

    my $full = $r->{json};
    for my $tab (@TABS) {
        my $t = get($akey, "$S/$tab");
        Msgr::Test::json_ok($t, 200, "GET /settings/$tab: 200");
        is(etag($t), '"1"', "GET /settings/$tab: the same ETag");
        is(enc($t->{json}), enc($full->{$tab}),
           "GET /settings/$tab: the tab's object alone");

        $t = get($akey, "$S/$tab", 'If-None-Match' => '"1"');
        is($t->{status}, 304, "GET /settings/$tab If-None-Match current: 304");
    }

    $r = get($akey, $S, 'If-None-Match' => '"1"');
    is($r->{status}, 304, 'GET /settings If-None-Match current ETag: 304');
    is($r->{content}, '', '304: no body');
    is(etag($r), '"1"', '304: the ETag');

    $r = get($akey, $S, 'If-None-Match' => '"7"');
    is($r->{status}, 200, 'If-None-Match another ETag: 200');

    for my $k ([ staff => $astaff ], [ integrator => $aint ]) {
        $r = get($k->[1], $S);
        Msgr::Test::json_ok($r, 200, "$k->[0] key: GET /settings 200");
        is(enc($r->{json}), enc($full), "$k->[0] key: the same settings");
        is(etag($r), '"1"', "$k->[0] key: the same ETag");
        $r = get($k->[1], "$S/security");
        Msgr::Test::json_ok($r, 200, "$k->[0] key: GET /settings/security");
    }

    for my $tab (qw(nosuch Sending audit2 sending2)) {
        $r = get($akey, "$S/$tab");
        Msgr::Test::problem_ok($r, 404, "GET /settings/$tab: 404 problem");
    }

    $r = $ngx->req(GET => $S);
    Msgr::Test::problem_ok($r, 401, 'GET /settings without a key: 401');

    $r = get($bkey, $S);
    defaults_ok($r->{json}, 'Beta Primary', 'school B');
    is(etag($r), '"1"', 'school B: ETag "1"');
}


# ---------------------------------------------------------------------------
# every writable field: a good value accepted, bad ones refused by name

sub bools { ([$_[0] ? $F : $T], [ 'true', 1, 0, 'false', [] ], ['boolean']) }

my @FIELDS = (
    # [ tab, field, [good values], [bad values], [words of the message] ]
    [ sending => 'pin_threshold', [ 500, 1, 1000000 ],
      [ 0, 1000001, -5, '500', 12.5, $T, [500] ], [ '1', '1000000' ] ],
    [ sending => 'voice_calling', ['all_numbers'],
      [ 'all', 'First_Number', 1, $T ], [qw(first_number all_numbers)] ],
    [ sending => 'sms_voice_routing', [qw(voice_priority send_both)],
      [ 'sms', 'both', 0 ], [qw(sms_priority voice_priority send_both)] ],
    [ sending => 'allow_template_edit_on_compose', bools(0) ],
    [ sending => 'default_send_to', ['last_chosen'],
      [ 'everyone', '', {} ], [qw(primary_contact last_chosen)] ],
    [ sending => 'timetable_layout', [qw(week_list day_list)],
      [ 'month_grid', 'WEEK_GRID', 2 ], [qw(week_grid week_list day_list)] ],
    [ sending => 'report_warning_email', bools(0) ],
    [ sending => 'include_translation_warning_link', bools(0) ],
    [ sending => 'translation_warning_url',
      [ 'https://school.example/translations', '' ],
      [ 'school.example/translations', 'ftp://school.example/',
        'https://' . ('a' x 2000) . '.example/', 5 ], [] ],
    [ sending => 'advanced_routing', [qw(least_cost fastest custom)],
      [ 'cheapest', 'Custom', 3 ],
      [qw(default least_cost fastest custom)] ],
    [ sending => 'custom_priority',
      [ [qw(email sms)], ['voice'], [qw(sms xpressions email voice)], [] ],
      [ [qw(sms sms)], ['fax'], 'sms', [1], {}, [ 'email', undef ] ],
      qr/xpressions, sms, voice, email|twice|distinct/ ],

    [ contacts => 'can_edit_imported_contacts', bools(0) ],
    [ contacts => 'auto_sync_contacts', bools(1) ],
    [ contacts => 'next_available_if_no_primary', bools(0) ],
    [ contacts => 'show_registration_in_names', bools(0) ],
    [ contacts => 'hide_staff_contact_details', bools(0) ],

    [ security => 'enforce_password_change', bools(0) ],
    [ security => 'password_strength', [qw(medium strong very_strong)],
      [ 'weak', 'very strong', 4 ], [qw(any medium strong very_strong)] ],
    [ security => 'password_history', ['last_5'],
      [ 'last_10', 'last5', 5 ], [qw(previous last_5)] ],

    [ school => 'name',
      [ 'Field Test School Renamed', "\x{c9}cole Saint-J\x{e9}r\x{f4}me",
        "\x{e9}" x 200 ],
      [ '', '   ', 'x' x 201, "\x{e9}" x 201, 5, $T, undef ], [] ],
    [ school => 'address', [ "1 High Street\nTown TN1 1AA", "\x{e9}" x 500 ],
      [ 'a' x 501, 12, [] ], [] ],
    [ school => 'phone', [ '+44 (0)20 7946 0000', '01632 960000', '' ],
      [ '12ab5', '1234', '44+1234567', ' 01632 960000', 'phone',
        1632960000 ], [] ],
    [ school => 'phone_country', [ 'IE', 'US', 'GB' ],
      [ 'XX', 'gb', 'GBR', '', 44 ], [] ],
    [ school => 'email', [ 'office@school.example', '' ],
      [ 'office', 'a@b@school.example', 'office@localhost',
        'off ice@school.example', 'office@school..example',
        ('a' x 65) . '@school.example', ' office@school.example', 7 ], [] ],
    [ school => 'website',
      [ 'https://school.example/', 'http://school.example:8080/a?b=1' ],
      [ 'ftp://school.example/', 'school.example', 'https://',
        'https://school example/', 'https://school.example/ ',
        'javascript:alert(1)' ], [] ],
    [ school => 'logo_url', ['https://cdn.school.example/logo.png'],
      [ '/logo.png', 'https://cdn.school.example/<logo>.png',
        'http://:80/logo.png', 'https://' . ('a' x 2000) . '.example/' ],
      [] ],

    [ xpressions => 'backup_sms', bools(0) ],
    [ xpressions => 'backup_sms_after_minutes', [ 5, 60, 1440 ],
      [ 7, 0, '30', 30.5, 2880, $T ],
      [qw(5 10 15 30 60 120 240 480 720 1440)] ],
    [ xpressions => 'incoming_enabled', bools(0) ],
);

{
    my %covered;
    $covered{"$_->[0].$_->[1]"} = 1 for @FIELDS;
    my @missing = grep { !$covered{$_} }
                  map { my $t = $_; map { "$t.$_" } field_names($t) }
                  grep { $_ ne 'mis' } @TABS;
    ok(!@missing, 'the field list covers every writable field')
        or diag("missing: @missing");
}

{
    my $version = db_version($f_id);
    my $defaults = defaults_for('Field Test School');

    for my $fs (@FIELDS) {
        my ($tab, $field, $good, $bad, $words) = @$fs;
        my $tf = "$tab.$field";

        for my $v (@$good) {
            my $r = patch($fkey, "$S/$tab", { $field => $v });
            if (!Msgr::Test::json_ok($r, 200, "PATCH $tf = " . enc($v))) {
                next;
            }
            $version++;
            is(etag($r), etag_of($version), "PATCH $tf: ETag bumped by one");
            is(enc($r->{json}{$field}), enc($v), "PATCH $tf: answer shows it");

            my $g = get($fkey, $S);
            is(enc($g->{json}{$tab}{$field}), enc($v),
               "PATCH $tf: the next GET shows " . enc($v));
            is(etag($g), etag_of($version), "PATCH $tf: GET has the new ETag");
            is(enc($g->{json}{$tab}), enc($r->{json}),
               "PATCH $tf: answer = GET /settings/$tab");

            if ($tf eq 'school.name') {
                my $s = get($fkey, '/msgr/v1/school');
                is($s->{json}{name}, $v,
                   'PATCH school.name: GET /school shows the new name');
            }
        }

        # back to the default: null (school.name cannot be null)
        if ($tf eq 'school.name') {
            my $r = patch($fkey, $S,
                          { school => { name => 'Field Test School' } });
            Msgr::Test::json_ok($r, 200, 'PATCH school.name back');
            $version++;
            is(get($fkey, '/msgr/v1/school')->{json}{name},
               'Field Test School', 'GET /school: the name back');
        } else {
            # the last good value may be the default already: no change
            my $same = @$good
                       && enc($good->[-1]) eq enc($defaults->{$tab}{$field});
            my $r = patch($fkey, $S, { $tab => { $field => undef } });
            Msgr::Test::json_ok($r, 200, "PATCH $tf = null");
            $version++ unless $same;
            is(etag($r), etag_of($version),
               "PATCH $tf = null: ETag " . ($same ? 'kept' : 'bumped'));
            is(enc($r->{json}{$tab}{$field}), enc($defaults->{$tab}{$field}),
               "PATCH $tf = null: back to the default in the answer");
            my $g = get($fkey, $S);
            is(enc($g->{json}{$tab}{$field}),
               enc($defaults->{$tab}{$field}),
               "PATCH $tf = null: the next GET shows the default");
        }

        my $snap = snapshot($fkey, $f_id);
        is($snap->{etag}, etag_of($version), "$tf: the version counted");

        my $i = 0;
        for my $v (@$bad) {
            $i++;
            # by the tab's route, and the same by the whole object's
            my ($path, $body) = $i % 2
                ? ("$S/$tab", { $field => $v })
                : ($S, { $tab => { $field => $v } });
            my $name = "PATCH $path $tf = " . enc($v);
            my $r = patch($fkey, $path, $body);
            my $errs = errors_ok($r, 422, [$tf], $name);
            my $msg = error_for($errs, $tf);
            my @missing = ref $words eq 'Regexp'
                ? ($msg =~ $words ? () : ("$words"))
                : grep { index($msg, $_) < 0 } @$words;
            ok(!@missing, "$name: the message says what is allowed")
                or diag("message '$msg' lacks: @missing");
            unchanged_ok($snap, $name);
        }
    }

    my $g = get($fkey, $S);
    defaults_ok($g->{json}, 'Field Test School', 'every field reset');
}


# ---------------------------------------------------------------------------
# merge patches on school A: null, no-op, all-or-nothing, unknowns, media
# types, malformed bodies, If-Match

my $A_NAME = 'Alpha Academy';
{
    my $r = patch($akey, "$S/sending", { pin_threshold => 250 });
    Msgr::Test::json_ok($r, 200, 'PATCH /settings/sending pin_threshold');
    is(etag($r), '"2"', 'the first change: ETag "2"');
    is($r->{json}{pin_threshold}, 250, 'the answer is the tab, changed');
    ok(!exists $r->{json}{sending}, 'the answer is the tab alone');

    $r = patch($akey, $S, { contacts => { auto_sync_contacts => $F },
                            security => { password_history => 'last_5' } },
               type => 'application/json');
    Msgr::Test::json_ok($r, 200, 'PATCH /settings, two tabs, '
                                 . 'Content-Type application/json');
    is(etag($r), '"3"', 'one patch, one version: ETag "3"');
    is(enc($r->{json}{contacts}{auto_sync_contacts}), enc($F),
       'the answer is the whole object: contacts changed');
    is($r->{json}{security}{password_history}, 'last_5',
       'the answer is the whole object: security changed');
    is($r->{json}{sending}{pin_threshold}, 250,
       'the fields not given are left as they are');
    my $g = get($akey, $S);
    is(enc($g->{json}), enc($r->{json}), 'the answer = the next GET');
    is(etag($g), '"3"', 'the next GET: ETag "3"');

    # a patch that changes nothing
    my $snap = snapshot($akey, $a_id);
    for my $p ([ "$S/sending", { pin_threshold => 250 } ],
               [ $S, { security => { password_strength => 'any' } } ],
               [ $S, {} ], [ "$S/mis", {} ],
               [ $S, { sending => {}, school => { name => $A_NAME } } ])
    {
        my $name = "no-op PATCH $p->[0] " . enc($p->[1]);
        $r = patch($akey, @$p);
        Msgr::Test::json_ok($r, 200, "$name: 200");
        is(etag($r), '"3"', "$name: the same ETag");
        unchanged_ok($snap, $name);
    }

    # null resets
    $r = patch($akey, $S, { contacts => { auto_sync_contacts => undef },
                            sending  => { pin_threshold => undef } });
    Msgr::Test::json_ok($r, 200, 'PATCH nulls');
    is(etag($r), '"4"', 'PATCH nulls: ETag "4"');
    is(enc($r->{json}{contacts}{auto_sync_contacts}), enc($T),
       'null: contacts.auto_sync_contacts back to true');
    is($r->{json}{sending}{pin_threshold}, 1000,
       'null: sending.pin_threshold back to 1000');
    is($r->{json}{security}{password_history}, 'last_5',
       'null: other fields kept');
    $g = get($akey, "$S/contacts");
    is(enc($g->{json}{auto_sync_contacts}), enc($T),
       'null: GET shows the default');

    # a null for a field already at its default changes nothing
    $snap = snapshot($akey, $a_id);
    $r = patch($akey, "$S/sending", { voice_calling => undef });
    Msgr::Test::json_ok($r, 200, 'null on a default field: 200');
    is(etag($r), '"4"', 'null on a default field: same ETag');
    unchanged_ok($snap, 'null on a default field');

    # all or nothing: good fields and bad ones, every bad one named
    $snap = snapshot($akey, $a_id);
    $r = patch($akey, $S, {
        sending => { pin_threshold => 0, voice_calling => 'all_numbers',
                     default_send_to => 'nobody', nosuch => 1 },
        contacts => { hide_staff_contact_details => $T,
                      auto_sync_contacts => 'yes' },
        security => { password_strength => 'weak',
                      enforce_password_change => $T },
        school => { name => '', address => 'New Road', email => 'bad' },
        xpressions => { backup_sms_after_minutes => 7, backup_sms => $T },
        nosuchtab => { a => 1 },
    });
    my $errs = errors_ok($r, 422,
        [qw(sending.pin_threshold sending.default_send_to sending.nosuch
            contacts.auto_sync_contacts security.password_strength
            school.name school.email xpressions.backup_sms_after_minutes
            nosuchtab)], 'good and bad fields');
    like(error_for($errs, 'sending.pin_threshold'), qr/1000000/,
         'good and bad fields: pin_threshold says its range');
    unchanged_ok($snap, 'good and bad fields');

    # unknown tabs and fields, tabs that are not objects
    for my $c (
        [ $S, { nosuch => { pin_threshold => 1 } }, ['nosuch'] ],
        [ $S, { sending => { nosuch => 1 } }, ['sending.nosuch'] ],
        [ "$S/sending", { nosuch => 1, pin_threshold => 5 },
          ['sending.nosuch'] ],
        [ "$S/contacts", { pin_threshold => 5 },
          ['contacts.pin_threshold'] ],
        [ $S, { pin_threshold => 5 }, ['pin_threshold'] ],
        [ $S, { sending => 5 }, ['sending'] ],
        [ $S, { sending => [] }, ['sending'] ],
        [ $S, { Sending => { pin_threshold => 5 } }, ['Sending'] ],
    ) {
        my $name = "PATCH $c->[0] " . enc($c->[1]);
        $r = patch($akey, $c->[0], $c->[1]);
        errors_ok($r, 422, $c->[2], $name);
        unchanged_ok($snap, $name);
    }

    $r = patch($akey, "$S/nosuch", { pin_threshold => 5 });
    Msgr::Test::problem_ok($r, 404, 'PATCH /settings/nosuch: 404');

    # an array is an object of the wrong type (422, naming the body); a
    # lone scalar is refused by the JSON parser (400)
    errors_ok(patch($akey, $S, '[]'), 422, [''], 'PATCH /settings []');
    for my $body ('"x"', '5', 'null') {
        $r = patch($akey, $S, $body);
        Msgr::Test::problem_ok($r, 400, "PATCH /settings $body: 400");
    }
    unchanged_ok($snap, 'bodies that are not objects');

    # media types
    for my $type ('text/plain', 'application/x-www-form-urlencoded',
                  'application/json-patch+json', 'application/xml',
                  'multipart/form-data; boundary=x', undef)
    {
        my $name = 'PATCH Content-Type ' . ($type // '(none)');
        $r = patch($akey, "$S/sending", { pin_threshold => 42 },
                   type => $type);
        Msgr::Test::problem_ok($r, 415, "$name: 415");
    }
    unchanged_ok($snap, 'unsupported media types');

    $r = patch($akey, "$S/sending", { pin_threshold => 1000 },
               type => 'application/merge-patch+json; charset=utf-8');
    Msgr::Test::json_ok($r, 200, 'merge-patch+json with a charset: 200');
    $r = patch($akey, "$S/sending", { pin_threshold => 1000 },
               type => 'Application/JSON');
    Msgr::Test::json_ok($r, 200, 'Application/JSON: 200');

    # malformed JSON
    for my $body ('{"sending":', '{bad}', "{\"sending\":{\"pin_threshold\":1}}x",
                  "{'sending':{}}", '')
    {
        my $name = 'PATCH malformed ' . enc($body);
        $r = patch($akey, $S, $body);
        Msgr::Test::problem_ok($r, 400, "$name: 400");
    }
    unchanged_ok($snap, 'malformed bodies');

    # If-Match
    $r = patch($akey, "$S/sending", { pin_threshold => 300 },
               headers => { 'If-Match' => '"3"' });
    Msgr::Test::problem_ok($r, 412, 'If-Match a stale ETag: 412');
    unchanged_ok($snap, 'If-Match a stale ETag');

    for my $stale ('"999"', 'W/"4"', '"4x"', 'garbage') {
        $r = patch($akey, "$S/sending", { pin_threshold => 300 },
                   headers => { 'If-Match' => $stale });
        Msgr::Test::problem_ok($r, 412, "If-Match $stale: 412");
    }
    unchanged_ok($snap, 'If-Match ETags that do not match');

    $r = patch($akey, "$S/sending", { pin_threshold => 300 },
               headers => { 'If-Match' => '"4"' });
    Msgr::Test::json_ok($r, 200, 'If-Match the current ETag: 200');
    is(etag($r), '"5"', 'If-Match the current ETag: ETag "5"');
    is($r->{json}{pin_threshold}, 300, 'If-Match the current ETag: changed');

    $r = patch($akey, "$S/sending", { pin_threshold => 301 },
               headers => { 'If-Match' => '"4"' });
    Msgr::Test::problem_ok($r, 412,
                           'If-Match the ETag before the last change: 412');
    is(get($akey, "$S/sending")->{json}{pin_threshold}, 300,
       '412: the value stays');

    $r = patch($akey, "$S/sending", { pin_threshold => 301 },
               headers => { 'If-Match' => '"1", "5"' });
    Msgr::Test::json_ok($r, 200, 'If-Match a list holding the current: 200');
    is(etag($r), '"6"', 'If-Match a list: ETag "6"');

    $r = get($akey, $S, 'If-None-Match' => '"5"');
    is($r->{status}, 200, 'If-None-Match an old ETag after a change: 200');
    is(etag($r), '"6"', 'If-None-Match an old ETag: the new ETag');
    $r = get($akey, "$S/sending", 'If-None-Match' => '"6"');
    is($r->{status}, 304, 'If-None-Match the new ETag: 304');

    # the cross-field rule: custom routing needs a custom priority
    $snap = snapshot($akey, $a_id);
    $r = patch($akey, "$S/sending", { advanced_routing => 'custom',
                                      custom_priority => [] });
    $errs = errors_ok($r, 422, ['sending.custom_priority'],
                      'custom with an empty custom_priority');
    like(error_for($errs, 'sending.custom_priority'), qr/custom/,
         'custom with an empty custom_priority: the message says why');
    unchanged_ok($snap, 'custom with an empty custom_priority');

    $r = patch($akey, "$S/sending", { custom_priority => [] });
    Msgr::Test::json_ok($r, 200, 'an empty custom_priority under default '
                                 . 'routing: 200');
    is(etag($r), '"7"', 'empty custom_priority: ETag "7"');
    $snap = snapshot($akey, $a_id);
    $r = patch($akey, "$S/sending", { advanced_routing => 'custom' });
    errors_ok($r, 422, ['sending.custom_priority'],
              'custom while the stored custom_priority is empty');
    unchanged_ok($snap, 'custom while custom_priority is empty');

    $r = patch($akey, "$S/sending", { advanced_routing => 'custom',
                                      custom_priority => undef });
    Msgr::Test::json_ok($r, 200, 'custom with custom_priority reset to '
                                 . 'the default list: 200');
    is($r->{json}{advanced_routing}, 'custom', 'advanced_routing is custom');
    is(enc($r->{json}{custom_priority}), enc([qw(xpressions sms voice email)]),
       'custom_priority is the default list');

    $snap = snapshot($akey, $a_id);
    $r = patch($akey, "$S/sending", { custom_priority => [] });
    errors_ok($r, 422, ['sending.custom_priority'],
              'emptying custom_priority under custom routing');
    unchanged_ok($snap, 'emptying custom_priority under custom routing');

    $r = patch($akey, "$S/sending", { custom_priority => [qw(email voice)] });
    Msgr::Test::json_ok($r, 200, 'a non-empty custom_priority under custom');
    $r = patch($akey, "$S/sending", { advanced_routing => undef,
                                      custom_priority => undef });
    Msgr::Test::json_ok($r, 200, 'routing back to the defaults');
    is($r->{json}{advanced_routing}, 'default', 'advanced_routing default');
}


# ---------------------------------------------------------------------------
# roles: staff and integrator keys may read but not write

{
    my $snap = snapshot($akey, $a_id);
    for my $k ([ staff => $astaff ], [ integrator => $aint ]) {
        my $r = patch($k->[1], "$S/sending", { pin_threshold => 77 });
        Msgr::Test::problem_ok($r, 403, "$k->[0] PATCH /settings/sending: 403");
        $r = patch($k->[1], $S, { contacts => { auto_sync_contacts => $F } });
        Msgr::Test::problem_ok($r, 403, "$k->[0] PATCH /settings: 403");
        $r = patch($k->[1], $S, { sending => { pin_threshold => 0 } });
        Msgr::Test::problem_ok($r, 403, "$k->[0] PATCH with a bad value: "
                                        . '403');
        $r = get($k->[1], "$S/audit");
        Msgr::Test::problem_ok($r, 403, "$k->[0] GET /settings/audit: 403");
        ok(!exists(($r->{json} || {})->{items}),
           "$k->[0] GET /settings/audit: no items");
        unchanged_ok($snap, "$k->[0] writes");
    }
    my $r = $ngx->req(PATCH => "$S/sending",
                      body => enc({ pin_threshold => 77 }),
                      headers => { 'Content-Type' =>
                                   'application/merge-patch+json' });
    Msgr::Test::problem_ok($r, 401, 'PATCH without a key: 401');
    unchanged_ok($snap, 'PATCH without a key');
}


# ---------------------------------------------------------------------------
# the mis tab is read-only through the API; operators change it

{
    my $snap = snapshot($akey, $a_id);
    my %nondefault = (
        teachers_in_class_groups => $F, guest_students => $T,
        pre_admissions => $T, leavers_included => $T,
        attendance_by_reg_group => $T, leavers_persistence_days => 120,
    );
    for my $f (field_names('mis')) {
        my $r = patch($akey, "$S/mis", { $f => $nondefault{$f} });
        my $errs = errors_ok($r, 403, ["mis.$f"], "PATCH mis.$f");
        like(error_for($errs, "mis.$f"), qr/read-only|operator/i,
             "PATCH mis.$f: the message says it is read-only");
    }
    my $r = patch($akey, $S, { mis => \%nondefault,
                               sending => { pin_threshold => 12 } });
    errors_ok($r, 403, [ map { "mis.$_" } sort keys %nondefault ],
              'PATCH every mis field with a good sending field');
    unchanged_ok($snap, 'mis patches');

    $r = patch($akey, $S, { sending => { enhanced_messenger => $T } });
    errors_ok($r, 403, ['sending.enhanced_messenger'],
              'PATCH sending.enhanced_messenger');
    unchanged_ok($snap, 'PATCH sending.enhanced_messenger');

    # the operator's change
    my $v = db_version($a_id);
    op_set_mis($a_id, guest_students => $T);
    my $check = sub {
        my $g = get($akey, $S);
        return $g->{status} == 200 && etag($g) eq etag_of($v + 1)
               && enc($g->{json}{mis}{guest_students}) eq enc($T) ? $g : undef;
    };
    my $g = $check->();
    ok($g, 'the operator sets mis.guest_students: the next GET shows it'
           . ' with the version bumped by one')
        or diag(get($akey, $S)->{content});
    is(db_version($a_id), $v + 1, 'the operator change: version + 1');

    $v++;
    op_set_mis($a_id, leavers_persistence_days => 120);
    $check = sub {
        my $g = get($akey, "$S/mis");
        return $g->{status} == 200 && etag($g) eq etag_of($v + 1)
               && ($g->{json}{leavers_persistence_days} // 0) == 120
               ? $g : undef;
    };
    $g = $check->();
    ok($g, 'the operator sets mis.leavers_persistence_days: GET shows it');
    $v++;
    every_get_ok($akey, "$S/mis", etag_of($v), sub {
        enc($_[0]{guest_students}) eq enc($T)
            && $_[0]{leavers_persistence_days} == 120 },
        'operator mis change');

    {
        my ($rc, $out, $err) = Msgr::Test::msgrctl(
            $pg, 'school', 'set', $a_id, 'mis.leavers_persistence_days=0');
        isnt($rc, 0, 'msgrctl school set mis.leavers_persistence_days=0 '
                     . 'fails');
        is(db_version($a_id), $v, 'a refused msgrctl change: same version');
    }

    # still read-only after the operator's change
    $snap = snapshot($akey, $a_id);
    $r = patch($akey, "$S/mis", { guest_students => $F });
    errors_ok($r, 403, ['mis.guest_students'],
              'PATCH mis.guest_students back');
    unchanged_ok($snap, 'PATCH mis.guest_students back');
}


# ---------------------------------------------------------------------------
# Enhanced Messenger gating (school G)

{
    my $s = get($gkey, '/msgr/v1/school');
    is(enc($s->{json}{enhanced_messenger}), enc($F),
       'GET /school: enhanced_messenger false');

    my $snap = snapshot($gkey, $g_id);
    for my $p ([ timetable_layout => 'day_list' ],
               [ report_warning_email => $T ])
    {
        my $r = patch($gkey, "$S/sending", { $p->[0] => $p->[1] });
        my $errs = errors_ok($r, 403, ["sending.$p->[0]"],
                             "without Enhanced Messenger: $p->[0]");
        like(error_for($errs, "sending.$p->[0]"), qr/Enhanced Messenger/i,
             "without Enhanced Messenger: $p->[0]: the message says why");
    }
    my $r = patch($gkey, $S, { sending => { timetable_layout => 'week_list',
                                            report_warning_email => $T,
                                            pin_threshold => 20 } });
    errors_ok($r, 403, [qw(sending.timetable_layout
                           sending.report_warning_email)],
              'without Enhanced Messenger: both, with a good field');
    unchanged_ok($snap, 'without Enhanced Messenger');

    op_enhance($g_id);

    $s = get($gkey, '/msgr/v1/school');
    is(enc($s->{json}{enhanced_messenger}), enc($T),
       'GET /school: enhanced_messenger true');
    my $v = db_version($g_id);

    $r = patch($gkey, $S, { sending => { timetable_layout => 'week_list',
                                         report_warning_email => $T,
                                         pin_threshold => 20 } });
    Msgr::Test::json_ok($r, 200, 'with Enhanced Messenger: the same patch '
                                 . '200');
    is(etag($r), etag_of($v + 1), 'with Enhanced Messenger: ETag bumped');
    is($r->{json}{sending}{timetable_layout}, 'week_list',
       'timetable_layout changed');
    is(enc($r->{json}{sending}{report_warning_email}), enc($T),
       'report_warning_email changed');
    every_get_ok($gkey, "$S/sending", etag_of($v + 1), sub {
        $_[0]{timetable_layout} eq 'week_list'
            && enc($_[0]{report_warning_email}) eq enc($T) },
        'Enhanced Messenger fields');
}


# ---------------------------------------------------------------------------
# school.name follows into GET /school

{
    my $r = patch($akey, "$S/school", { name => 'Alpha Academy Trust' });
    Msgr::Test::json_ok($r, 200, 'PATCH school.name');
    is(get($akey, '/msgr/v1/school')->{json}{name}, 'Alpha Academy Trust',
       'GET /school shows the new name');
    is(get($akey, "$S/school")->{json}{name}, 'Alpha Academy Trust',
       'GET /settings/school shows the new name');

    my $snap = snapshot($akey, $a_id);
    $r = patch($akey, "$S/school", { name => undef });
    errors_ok($r, 422, ['school.name'], 'school.name = null');
    unchanged_ok($snap, 'school.name = null');
    is(get($akey, '/msgr/v1/school')->{json}{name}, 'Alpha Academy Trust',
       'a refused rename leaves GET /school alone');

    $r = patch($akey, "$S/school", { name => $A_NAME });
    Msgr::Test::json_ok($r, 200, 'PATCH school.name back');
    is(get($akey, '/msgr/v1/school')->{json}{name}, $A_NAME,
       'GET /school: the name back');
}


# ---------------------------------------------------------------------------
# tenancy: school B never sees or changes A

{
    my $asnap = snapshot($akey, $a_id);
    my $b = get($bkey, $S);
    is($b->{json}{school}{name}, 'Beta Primary', "B sees its own name");
    unlike($b->{content}, qr/Alpha/, "B sees nothing of A's");
    my %bs = %{ $b->{json}{sending} || {} };
    delete $bs{enhanced_messenger};
    is(enc(\%bs), enc(defaults_for('x')->{sending}),
       "B's sending tab is its own defaults, not A's");

    my $r = patch($bkey, $S, { sending => { pin_threshold => 9999 },
                               school => { name => 'Beta Primary Two' } });
    Msgr::Test::json_ok($r, 200, 'B patches its settings');
    is($r->{json}{sending}{pin_threshold}, 9999, "B's change in B's answer");
    is(get($bkey, "$S/sending")->{json}{pin_threshold}, 9999,
       "B's GET shows B's change");
    unchanged_ok($asnap, "B's patch: A");
    is(get($akey, '/msgr/v1/school')->{json}{name}, $A_NAME,
       "B's rename leaves A's name");

    my $ba = get($bkey, "$S/audit?limit=200");
    Msgr::Test::json_ok($ba, 200, "B's audit");
    my @foreign = grep { $_->{actor} ne Msgr::Test::key_id($bkey) }
                  @{ $ba->{json}{items} || [] };
    ok(!@foreign, "B's audit holds only B's changes");
    is(scalar @{ $ba->{json}{items} || [] }, 2, "B's audit: its 2 rows");

    my $aa = get($akey, "$S/audit?limit=200");
    Msgr::Test::json_ok($aa, 200, "A's audit");
    ok(scalar @{ $aa->{json}{items} || [] }, "A's audit has rows of its own");
    my @b_rows = grep { $_->{actor} eq Msgr::Test::key_id($bkey) }
                 @{ $aa->{json}{items} || [] };
    ok(!@b_rows, "A's audit holds none of B's changes");
}


# ---------------------------------------------------------------------------
# the audit trail and its pages (school A)

{
    my $kid = Msgr::Test::key_id($akey);
    my $before = get($akey, "$S/audit?limit=1")->{json}{items}[0]{id} // 0;

    my $r = patch($akey, $S, { sending => { pin_threshold => 640,
                                            voice_calling => 'all_numbers' },
                               contacts => { auto_sync_contacts => $F } });
    Msgr::Test::json_ok($r, 200, 'a patch of three fields');
    $r = patch($akey, "$S/sending", { pin_threshold => undef });
    Msgr::Test::json_ok($r, 200, 'then a reset');
    # a no-op and a refused patch write nothing
    patch($akey, "$S/sending", { voice_calling => 'all_numbers' });
    patch($akey, "$S/sending", { voice_calling => 'nope',
                                 pin_threshold => 2 });

    my $au = get($akey, "$S/audit");
    Msgr::Test::json_ok($au, 200, 'GET /settings/audit');
    my @items = @{ $au->{json}{items} || [] };
    my @new = grep { $_->{id} > $before } @items;
    is(scalar @new, 4, 'four rows: three for the patch, one for the reset');

    my @ids = map { $_->{id} } @items;
    is_deeply(\@ids, [ sort { $b <=> $a } @ids ], 'newest first');

    is(enc([ map { [ @$_{qw(tab field old new)} ] } $new[0] ]),
       enc([ [ 'sending', 'pin_threshold', 640, 1000 ] ]),
       'the newest row: the reset, 640 -> 1000');
    is(enc([ sort { $a->[1] cmp $b->[1] }
             map { [ @$_{qw(tab field old new)} ] } @new[1 .. 3] ]),
       enc([ [ 'contacts', 'auto_sync_contacts', $T, $F ],
             [ 'sending', 'pin_threshold', 301, 640 ],
             [ 'sending', 'voice_calling', 'first_number', 'all_numbers' ] ]),
       'the three-field patch: one row per field, old and new values');
    ok(Msgr::Test::is_json_number($new[0]{old}), 'old is a JSON number');

    my @bad = grep {
        $_->{actor} ne $kid
            || $_->{at} !~ /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?Z\z/
            || !Msgr::Test::is_json_number($_->{id})
    } @new;
    ok(!@bad, "every new row: the admin key's id, a UTC time, a numeric id")
        or diag(enc(\@bad));

    # the trail matches the table
    my $db = $pg->psql("SELECT audit_id, tab, field, old_value::text,"
                       . " new_value::text FROM msgr_settings_audit"
                       . " WHERE school_id = $a_id ORDER BY audit_id DESC");
    my @db = map { [ split /\|/ ] } split /\n/, $db;
    is(enc([ map { [ $_->{id} . '', $_->{tab}, $_->{field},
                     enc($_->{old}), enc($_->{new}) ] } @items ]),
       enc([ map { [ $_->[0], $_->[1], $_->[2],
                     enc($J->decode($_->[3])), enc($J->decode($_->[4])) ] }
             @db[0 .. (@items > @db ? $#db : $#items)] ]),
       'the trail is the audit table, newest first');

    # pages
    my $total = audit_count($a_id);
    cmp_ok($total, '>', 6, "school A has $total audit rows");
    my (@paged, $cursor, $pages);
    my $ok = 1;
    while (1) {
        my $q = "$S/audit?limit=3" . (defined $cursor ? "&before=$cursor" : '');
        my $p = get($akey, $q);
        if ($p->{status} != 200) {
            $ok = 0;
            diag("$q: $p->{status} $p->{content}");
            last;
        }
        $pages++;
        my @it = @{ $p->{json}{items} || [] };
        my $nb = $p->{json}{next_before};
        ok(exists $p->{json}{next_before}, "page $pages: next_before given");
        if (@it == 3) {
            is($nb, $it[-1]{id}, "page $pages: full, next_before = its last id");
        } else {
            ok(!defined $nb, "page $pages: not full, next_before null");
        }
        push @paged, @it;
        last unless defined $nb;
        last if $pages > 100;
        $cursor = $nb;
    }
    ok($ok, 'every page: 200');
    cmp_ok($pages, '>=', 3, "$pages pages of 3");
    my $all = get($akey, "$S/audit?limit=200");
    is(scalar @paged, $total, 'the pages hold every row once');
    is(enc(\@paged), enc($all->{json}{items}),
       'the pages together = one page of 200');
    ok(!defined $all->{json}{next_before}, 'limit 200, not full: null');

    my $one = get($akey, "$S/audit?limit=1");
    is(scalar @{ $one->{json}{items} }, 1, 'limit=1: one row');
    is($one->{json}{next_before}, $one->{json}{items}[0]{id},
       'limit=1: next_before');
    my $old = get($akey, "$S/audit?limit=200&before=$ids[0]");
    ok(!grep({ $_->{id} >= $ids[0] } @{ $old->{json}{items} }),
       'before=N: only older rows');
    is(scalar @{ $old->{json}{items} }, $total - 1, 'before=newest: the rest');

    # bad parameters
    for my $c ([ 'limit=0', 'limit' ], [ 'limit=201', 'limit' ],
               [ 'limit=abc', 'limit' ], [ 'limit=-1', 'limit' ],
               [ 'limit=', 'limit' ], [ 'limit=2.5', 'limit' ],
               [ 'before=0', 'before' ], [ 'before=x', 'before' ],
               [ 'before=-3', 'before' ], [ 'limit=10&before=', 'before' ])
    {
        my $p = get($akey, "$S/audit?$c->[0]");
        Msgr::Test::problem_ok($p, 400, "audit?$c->[0]: 400");
        my $j = $p->{json} || {};
        my $named = grep({ ($_->{field} // '') eq $c->[1] }
                         @{ $j->{errors} || [] })
                    || ($j->{detail} // '') =~ /\b$c->[1]\b/;
        ok($named, "audit?$c->[0]: the problem names $c->[1]")
            or diag($p->{content});
    }
}


# ---------------------------------------------------------------------------
# concurrent writers (school B): no change is lost or half-written

# Sends every PATCH at once, each on its own connection; the answers in
# order, as { status, content, json }.
sub patch_at_once {
    my ($key, $path, @bodies) = @_;
    my @socks;
    for my $body (@bodies) {
        my $text = enc($body);
        my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                                      PeerPort => $ngx->port,
                                      Proto => 'tcp', Timeout => 5)
            or die "connect: $!";
        push @socks, [ $s, "PATCH $path HTTP/1.1\r\n"
            . "Host: 127.0.0.1\r\nConnection: close\r\n"
            . "Authorization: Bearer $key\r\n"
            . "Content-Type: application/merge-patch+json\r\n"
            . 'Content-Length: ' . length($text) . "\r\n\r\n$text" ];
    }
    syswrite($_->[0], $_->[1]) for @socks;
    my @res;
    for my $c (@socks) {
        my $s = $c->[0];
        my $in = '';
        my $sel = IO::Select->new($s);
        my $end = time + 10;
        while (time < $end && $sel->can_read($end - time)) {
            my $n = sysread($s, my $buf, 65536);
            last unless $n;
            $in .= $buf;
        }
        close $s;
        my ($st, $body) = $in =~ m{^HTTP/1\.\d (\d{3}).*?\r\n\r\n(.*)\z}s;
        $body //= '';
        # the answer may be chunked
        if ($in =~ /^Transfer-Encoding:\s*chunked/mi) {
            my $raw = $body;
            $body = '';
            while ($raw =~ s/^([0-9a-fA-F]+)\r\n//) {
                my $len = hex $1;
                last unless $len;
                $body .= substr($raw, 0, $len, '');
                $raw =~ s/^\r\n//;
            }
        }
        push @res, { status => $st // 0, content => $body,
                     json => eval { $J->decode($body) } };
    }
    return @res;
}

{
    my @changes = (
        [ sending => pin_threshold => 4321 ],
        [ sending => voice_calling => 'all_numbers' ],
        [ sending => sms_voice_routing => 'send_both' ],
        [ sending => default_send_to => 'last_chosen' ],
        [ contacts => hide_staff_contact_details => $T ],
        [ security => password_strength => 'strong' ],
        [ school => address => '2 Church Lane' ],
        [ xpressions => backup_sms_after_minutes => 120 ],
    );
    my $before = get($bkey, $S)->{json};
    my $v0 = db_version($b_id);
    my $a0 = audit_count($b_id);

    my @res = patch_at_once($bkey, $S,
                            map { { $_->[0] => { $_->[1] => $_->[2] } } }
                            @changes);
    my @ok = grep { $res[$_]{status} == 200 } 0 .. $#res;
    my @other = grep { $res[$_]{status} != 200
                       && $res[$_]{status} != 409 } 0 .. $#res;
    ok(!@other, 'concurrent PATCHes: each 200, or 409 when it lost every '
                . 'retry') or diag(join "\n", map { "$res[$_]{status} "
                                                    . $res[$_]{content} }
                                              @other);
    cmp_ok(scalar @ok, '>=', 1, 'concurrent PATCHes: '
                                . scalar(@ok) . ' of 8 applied');

    my $after = get($bkey, $S)->{json};
    my @wrong;
    for my $i (0 .. $#changes) {
        my ($tab, $f, $val) = @{ $changes[$i] };
        my $want = $res[$i]{status} == 200 ? $val : $before->{$tab}{$f};
        push @wrong, "$tab.$f: " . enc($after->{$tab}{$f}) . ', want '
                   . enc($want) . " (answer $res[$i]{status})"
            if enc($after->{$tab}{$f}) ne enc($want);
    }
    ok(!@wrong, 'concurrent PATCHes: every change answered 200 is kept, '
                . 'the others left nothing') or diag(join "\n", @wrong);
    is(db_version($b_id), $v0 + @ok,
       'concurrent PATCHes: one version per change applied');
    is(audit_count($b_id), $a0 + @ok,
       'concurrent PATCHes: one audit row per change applied');
}


# ---------------------------------------------------------------------------
# read after write: every worker, every connection

{
    # warm both workers' view first
    every_get_ok($akey, $S, etag(get($akey, $S)), sub { 1 }, 'warm');

    for my $n (1 .. 5) {
        my $val = 4000 + $n;
        my $r = patch($akey, "$S/sending", { pin_threshold => $val });
        Msgr::Test::json_ok($r, 200, "round $n: PATCH pin_threshold $val");
        my $e = etag($r);
        every_get_ok($akey, $S, $e,
                     sub { $_[0]{sending}{pin_threshold} == $val },
                     "round $n: after PATCH, GET /settings");
        every_get_ok($akey, "$S/sending", $e,
                     sub { $_[0]{pin_threshold} == $val },
                     "round $n: after PATCH, GET /settings/sending");
    }

    # a change made in the database, announced by NOTIFY
    for my $n (1 .. 3) {
        my $val = 7000 + $n;
        my $v = db_version($a_id);
        $pg->psql("UPDATE msgr_settings SET doc = jsonb_set(doc,"
                  . " '{sending}', coalesce(doc->'sending', '{}')"
                  . " || '{\"pin_threshold\":$val}'::jsonb),"
                  . " version = version + 1 WHERE school_id = $a_id");
        # NOTIFY takes well under a millisecond; 5 s leaves a loaded
        # machine room and is still far from the cache's 60 s expiry
        my $t0 = time;
        my $seen = poll(5.0, sub {
            my $g = get($akey, $S);
            return etag($g) eq etag_of($v + 1)
                   && $g->{json}{sending}{pin_threshold} == $val;
        });
        ok($seen, sprintf('DB change %d: seen within 5 s (%.0f ms)',
                          $n, 1000 * (time - $t0)))
            or diag(get($akey, $S)->{content});
        every_get_ok($akey, $S, etag_of($v + 1),
                     sub { $_[0]{sending}{pin_threshold} == $val },
                     "DB change $n: then GET /settings");
    }

    # and a DB change of the school's flag plus a version bump
    my $v = db_version($a_id);
    $pg->psql("UPDATE msgr_settings SET doc = '{}', version = version + 1"
              . " WHERE school_id = $a_id");
    my $seen = poll(5.0, sub { etag(get($akey, $S)) eq etag_of($v + 1) });
    ok($seen, 'DB reset of every override: seen within 5 s');
    my $g = get($akey, $S);
    defaults_ok($g->{json}, $A_NAME, 'after the DB reset');
}

Msgr::Test::finish();
