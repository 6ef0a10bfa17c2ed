#!/usr/bin/perl

# Templates: saved messages and letter templates (CRUD, names unique without
# case, merge tokens checked, ETag/If-Match, every version kept), who may
# edit a letter (sending.allow_template_edit_on_compose, both ways), sending
# a message from a template, the standard library (msgr_library): its
# states, copying it (first time, again with nothing new, after a library
# update, over a personalised template whose text stays in its versions),
# a dry run, tenancy; and the library msgr ships.

use strict;
use warnings;
use utf8;

use Encode qw(decode_utf8);
use File::Temp qw(tempdir);
use JSON::PP;
use Test::More;

use lib 't/lib';
use Msgr::Test;
use Msgr::Test::API qw(:DEFAULT req json_req);

my $V = '/msgr/v1';
my $ROOT = $Msgr::Test::ROOT;

my $pg = Msgr::Test::pg_start();

my ($A, $B, $a_admin, $a_staff, $a_int, $b_admin, $b_int)
    = two_schools($pg);

my $tmp = tempdir(CLEANUP => 1);

# a small library, then its next version
my %LIB1 = (version => 1, templates => [
    { key => 'snow', version => 1, kind => 'saved_message',
      name => 'Snow closure', category => 'Closures',
      channels => [qw(sms email)], subject => '{school_name} is closed',
      body => 'Dear {name}, the school is closed today.',
      sms_body => 'School closed today.', voice_body => undef },
    { key => 'lice', version => 1, kind => 'letter', name => 'Head lice',
      category => 'Health', channels => ['email'],
      subject => 'Head lice', body => 'Dear {name}, please check hair.',
      sms_body => 'Please check hair.', voice_body => undef },
]);
my %LIB2 = %{ clone(\%LIB1) };
$LIB2{version} = 2;
$LIB2{templates}[1]{version} = 2;
$LIB2{templates}[1]{body} = 'Dear {name}, please check hair this week.';
push @{ $LIB2{templates} },
    { key => 'trip', version => 1, kind => 'saved_message',
      name => 'Trip reminder', category => 'Trips', channels => ['sms'],
      subject => undef, body => 'The trip is tomorrow, {first_name}.',
      sms_body => undef, voice_body => undef };

Msgr::Test::spew("$tmp/lib1.json", $J->encode(\%LIB1));
Msgr::Test::spew("$tmp/lib2.json", $J->encode(\%LIB2));

sub start_with {
    my ($lib, %o) = @_;
    return api_nginx($pg, location => "$Msgr::Test::API::WHO\n"
                                      . "    msgr_library $lib;", %o);
}

my $ngx = start_with("$tmp/lib1.json");
use_nginx($ngx, prefix => $V);

sub db { decode_utf8($pg->psql($_[0])) }

sub add {
    my ($key, $t) = @_;
    return json_req(POST => '/templates', $key, $t);
}

sub patch {
    my ($key, $id, $p, %h) = @_;
    return json_req(PATCH => "/templates/$id", $key, $p,
                    headers => { 'Content-Type'
                                 => 'application/merge-patch+json', %h });
}

my %SAVED = (kind => 'saved_message', name => 'Lunch money',
             category => 'Payments', channels => ['sms'],
             body => 'Dear {name}, please top up {student_first_names}\'s '
                     . 'lunch account.',
             sms_body => 'Please top up the lunch account.');
my %LETTER = (kind => 'letter', name => 'Exam dates', category => 'Exams',
              channels => ['email'], subject => 'Exams at {school_name}',
              body => "Dear {name},\nExams start in May.");


# ---------------------------------------------------------------------------
# CRUD, names, tokens, ETag, versions

my ($saved, $letter);
{
    my $r = add($a_staff, \%SAVED);
    Msgr::Test::json_ok($r, 201, 'staff adds a saved message');
    $saved = $r->{json};
    is($saved->{kind}, 'saved_message', 'its kind');
    is($saved->{version}, 1, 'version 1');
    is_deeply($saved->{channels}, ['sms'], 'its channels');
    is($saved->{library}, undef, 'not from the library');
    is($r->{headers}{etag}, '"1"', 'its ETag');

    $r = add($a_int, { %SAVED, name => 'LUNCH MONEY' });
    errors_ok($r, 409, ['name'], 'a name taken without case');

    $r = add($b_admin, \%SAVED);
    is($r->{status}, 201, 'another school may use the same name');

    $r = add($a_admin, { %SAVED, name => 'Typo',
                         body => 'Dear {frist_name}', sms_body => 'Hi {x}' });
    my $e = errors_ok($r, 422, [qw(body sms_body)], 'unknown merge tokens');
    like($e->[0]{message}, qr/unknown merge token \{frist_name\}/,
         'the unknown token is named');

    $r = add($a_admin, { name => ' ', kind => 'memo', channels => ['fax'],
                         colour => 'red' });
    errors_ok($r, 422, [qw(colour name kind channels body)],
              'an unknown field and every bad one');

    # a school's attribute is a token its templates may use
    $r = json_req(POST => '/contact-attributes', $a_admin,
                  { name => 'Head of Year', default_value => 'Mr Lee' });
    is($r->{status}, 201, 'an attribute');
    $r = add($a_admin, { %SAVED, name => 'HoY',
                         body => 'From {head of year}' });
    is($r->{status}, 201, 'an attribute is a token, without case');

    $r = add($a_admin, \%LETTER);
    Msgr::Test::json_ok($r, 201, 'an admin adds a letter');
    $letter = $r->{json};
    is($letter->{body}, "Dear {name},\nExams start in May.", 'multi-line body');

    $r = get($a_int, "/templates");
    is($r->{status}, 200, 'the list');
    is_deeply([ map { $_->{name} } @{ $r->{json}{items} } ],
              ['Exam dates', 'HoY', 'Lunch money'],
              'the school\'s templates, by name');

    $r = get($a_staff, "/templates/$saved->{id}");
    is($r->{json}{name}, 'Lunch money', 'one template');
    is($r->{headers}{etag}, '"1"', 'with its ETag');

    $r = patch($a_staff, $saved->{id}, { body => 'Top up, {first_name}.',
                                         sms_body => undef },
               'If-Match' => '"1"');
    Msgr::Test::json_ok($r, 200, 'PATCH with the right If-Match');
    is($r->{json}{version}, 2, 'version 2');
    is($r->{json}{sms_body}, undef, 'null clears sms_body');
    is($r->{json}{name}, 'Lunch money', 'what is left out is kept');
    is($r->{headers}{etag}, '"2"', 'a new ETag');

    $r = patch($a_staff, $saved->{id}, { name => 'Old' }, 'If-Match' => '"1"');
    Msgr::Test::problem_ok($r, 412, 'an old If-Match: 412');
    is(get_json($a_staff, "/templates/$saved->{id}")->{name}, 'Lunch money',
       'and nothing changed');

    $r = patch($a_staff, $saved->{id}, { name => 'exam DATES' });
    errors_ok($r, 409, ['name'], 'renaming onto a taken name');

    $r = patch($a_staff, $saved->{id}, { body => '{nope}' });
    errors_ok($r, 422, ['body'], 'PATCH checks tokens too');

    my $v = get_json($a_staff, "/templates/$saved->{id}/versions");
    is_deeply([ map { $_->{version} } @{ $v->{items} } ], [2, 1],
              'two versions, newest first');
    like($v->{items}[1]{body}, qr/lunch account/,
         'the previous text is kept');
    is($v->{items}[1]{sms_body}, 'Please top up the lunch account.',
       'with its SMS variant');
    is($v->{items}[0]{change}, 'edited', 'the change is named');

    $r = get($b_admin, "/templates/$saved->{id}");
    Msgr::Test::problem_ok($r, 404, 'another school\'s template: 404');
    $r = get($b_admin, "/templates/$saved->{id}/versions");
    Msgr::Test::problem_ok($r, 404, 'and its versions');
    $r = patch($b_admin, $saved->{id}, { name => 'Mine' });
    Msgr::Test::problem_ok($r, 404, 'PATCH from another school: 404');
    $r = req(DELETE => "/templates/$saved->{id}", $b_admin);
    Msgr::Test::problem_ok($r, 404, 'DELETE from another school: 404');
    $r = get($a_staff, "/templates/abc");
    Msgr::Test::problem_ok($r, 404, 'not an id: 404');
}


# ---------------------------------------------------------------------------
# who edits a letter

{
    my $r = patch($a_staff, $letter->{id}, { body => 'Changed' });
    my $e = errors_ok($r, 403, ['sending.allow_template_edit_on_compose'],
                      'staff may not edit a letter with the setting off');
    like($r->{json}{detail}, qr/sending\.allow_template_edit_on_compose/,
         'the detail names the setting');
    is($r->{json}{type}, 'urn:msgr:problem:template-edit-forbidden',
       'its type');

    $r = add($a_staff, { %LETTER, name => 'Staff letter' });
    Msgr::Test::problem_ok($r, 403, 'nor add one');
    $r = add($a_int, { %LETTER, name => 'Integrator letter' });
    Msgr::Test::problem_ok($r, 403, 'nor may an integrator');
    $r = patch($a_staff, $saved->{id}, { kind => 'letter' });
    Msgr::Test::problem_ok($r, 403, 'nor make a saved message a letter');
    $r = req(DELETE => "/templates/$letter->{id}", $a_staff);
    Msgr::Test::problem_ok($r, 403, 'nor delete a letter');
    is(get_json($a_admin, "/templates/$letter->{id}")->{body},
       "Dear {name},\nExams start in May.", 'the letter is unchanged');

    set_everywhere($a_admin, 'sending', 'allow_template_edit_on_compose', $T);

    $r = patch($a_staff, $letter->{id}, { body => 'Exams start in June.' });
    Msgr::Test::json_ok($r, 200, 'with the setting on, staff edit a letter');
    is($r->{json}{body}, 'Exams start in June.', 'the new text');

    set_everywhere($a_admin, 'sending', 'allow_template_edit_on_compose', $F);

    $r = patch($a_admin, $letter->{id}, { body => 'Exams start in May.' });
    Msgr::Test::json_ok($r, 200,
                        'an admin edits a letter whatever the setting');
}


# ---------------------------------------------------------------------------
# sending from a template

sub link_ { { mis_id => $_[0], priority => $_[1], relationship => $_[2],
              correspondence => $T } }

sync_json($a_int, {
    students => [
        { mis_id => 'S1', first_name => 'Amy', last_name => 'Jones',
          reg_group => '7B', year => '7', status => 'on_roll',
          contacts => [ link_('C1', 1, 'Mother') ] } ],
    contacts => [
        { mis_id => 'C1', title => 'Mrs', first_name => 'Jane',
          last_name => 'Jones', mobile_phone => '07700 900101',
          email => 'jane@example.org' } ],
    groups => [ { mis_id => 'K7B', name => '7B', type => 'class',
                  students => ['S1'] } ],
});
my $K7B = ids_by_mis($a_staff, 'groups')->{K7B};

sub send_msg {
    my ($key, $m, $path) = @_;
    return json_req(POST => $path // '/messages', $key,
                    { to => { groups => [$K7B] }, %$m });
}

{
    my $r = send_msg($a_staff, { channels => ['email'],
                                 template_id => $letter->{id} },
                     '/messages/preview');
    Msgr::Test::json_ok($r, 200, 'preview from a letter');

    $r = send_msg($a_staff, { channels => ['email'],
                              template_id => $letter->{id} });
    Msgr::Test::json_ok($r, 201, 'staff send a letter as it is');
    my $m = $r->{json};
    is($m->{template_id}, $letter->{id}, 'the message names its template');
    is($m->{subject}, 'Exams at {school_name}', 'the template\'s subject');
    is($m->{body}, 'Exams start in May.', 'and body');
    is(db("SELECT template_id FROM msgr_messages WHERE message_id = $m->{id}"),
       $letter->{id}, 'recorded on the message');
    is(db("SELECT subject FROM msgr_deliveries WHERE message_id = $m->{id}"),
       'Exams at Alpha Academy', 'the delivery has the subject merged');

    $r = send_msg($a_staff, { channels => ['email'],
                              template_id => $letter->{id},
                              body => 'Exams start in May.' });
    is($r->{status}, 201, 'giving the letter\'s own text is not editing it');

    $r = send_msg($a_staff, { channels => ['email'],
                              template_id => $letter->{id},
                              body => 'Exams are cancelled!' });
    errors_ok($r, 403, ['sending.allow_template_edit_on_compose'],
              'staff may not change a letter\'s text when sending');
    $r = send_msg($a_int, { channels => ['email'],
                            template_id => $letter->{id},
                            subject => 'Other' });
    Msgr::Test::problem_ok($r, 403, 'nor its subject, nor an integrator');

    $r = send_msg($a_admin, { channels => ['email'],
                              template_id => $letter->{id},
                              body => 'Exams are in the hall.' });
    Msgr::Test::json_ok($r, 201, 'an admin may');
    is($r->{json}{body}, 'Exams are in the hall.', 'with the new text');
    is($r->{json}{subject}, 'Exams at {school_name}',
       'the template fills the rest');

    set_everywhere($a_admin, 'sending', 'allow_template_edit_on_compose', $T);
    $r = send_msg($a_staff, { channels => ['email'],
                              template_id => $letter->{id},
                              body => 'Exams are in the gym.' });
    Msgr::Test::json_ok($r, 201, 'staff may with the setting on');
    set_everywhere($a_admin, 'sending', 'allow_template_edit_on_compose', $F);

    # a saved message is any sender's to change
    $r = send_msg($a_int, { channels => ['sms'], template_id => $saved->{id},
                            sms_body => 'Top up today please.' });
    Msgr::Test::json_ok($r, 201, 'a saved message with its text changed');
    is($r->{json}{body}, 'Top up, {first_name}.', 'its body from the template');
    is(db("SELECT body FROM msgr_deliveries WHERE message_id = "
          . "$r->{json}{id}"), 'Top up today please.',
       'the SMS is the one given');

    # a template without a subject, sent by email
    $r = send_msg($a_staff, { channels => ['email'],
                              template_id => $saved->{id} });
    errors_ok($r, 422, ['subject'], 'email needs a subject from somewhere');

    $r = send_msg($a_staff, { channels => ['sms'], template_id => 'x' });
    errors_ok($r, 422, [qw(template_id body)],
              'a template_id that is no id (and so no body)');

    $r = send_msg($a_staff, { channels => ['sms'], body => 'Hi' });
    Msgr::Test::json_ok($r, 201, 'a message without a template');
    is($r->{json}{template_id}, undef, 'names none');

    my $b_saved = get_json($b_admin, '/templates')->{items}[0]{id};
    $r = send_msg($a_staff, { channels => ['sms'], template_id => $b_saved },
                  '/messages/preview');
    Msgr::Test::problem_ok($r, 404, 'another school\'s template: 404');
    like($r->{json}{detail}, qr/no template $b_saved/, 'named');
    my $n = db('SELECT count(*) FROM msgr_messages');
    $r = send_msg($a_staff, { channels => ['sms'], template_id => $b_saved });
    Msgr::Test::problem_ok($r, 404, 'and sending from it: 404');
    is(db('SELECT count(*) FROM msgr_messages'), $n, 'nothing written');
}


# ---------------------------------------------------------------------------
# the library

sub states {
    my ($key) = @_;
    my $l = get_json($key, '/templates/library');
    return { map { ($_->{key} => $_->{state}) } @{ $l->{items} } };
}

sub copy {
    my ($key, $q) = @_;
    return req(POST => '/templates/library/copy' . ($q // ''), $key);
}

sub keys_of { [ map { $_->{key} } @{ $_[0] } ] }

{
    is_deeply(states($a_staff), { snow => 'missing', lice => 'missing' },
              'the library: both missing');
    my $l = get_json($a_staff, '/templates/library');
    is($l->{items}[0]{name}, 'Snow closure', 'in the library\'s order');
    is($l->{items}[0]{sms_body}, 'School closed today.', 'with its texts');

    my $r = copy($a_staff);
    Msgr::Test::problem_ok($r, 403, 'staff may not copy the library');

    $r = copy($a_admin, '?dry_run=maybe');
    Msgr::Test::problem_ok($r, 400, 'dry_run is true or false');

    $r = copy($a_admin, '?dry_run=true');
    Msgr::Test::json_ok($r, 200, 'a dry run');
    is_deeply(keys_of($r->{json}{added}), [qw(snow lice)],
              'says what would be added');
    is(db("SELECT count(*) FROM msgr_templates WHERE school_id = $A"
          . " AND library_key IS NOT NULL"), 0, 'and adds nothing');

    # the school has a template named as a library one
    add($a_admin, { %SAVED, name => 'Snow closure' });

    $r = copy($a_admin);
    Msgr::Test::json_ok($r, 200, 'the first copy');
    is_deeply(keys_of($r->{json}{added}), [qw(snow lice)], 'adds both');
    is_deeply([ $r->{json}{updated}, $r->{json}{overwritten} ], [[], []],
              'updates nothing');
    is($r->{json}{added}[0]{name}, 'Snow closure (library)',
       'a name the school uses gets " (library)"');
    is_deeply(states($a_admin), { snow => 'current', lice => 'current' },
              'both current');

    my $lice = $r->{json}{added}[1]{template_id};
    my $t = get_json($a_staff, "/templates/$lice");
    is($t->{kind}, 'letter', 'the letter is a letter');
    is_deeply($t->{library}, { key => 'lice', version => 1,
                               personalised => $F }, 'from the library');

    $r = copy($a_admin);
    is_deeply([ map { $r->{json}{$_} } qw(added updated overwritten) ],
              [[], [], []], 'again: nothing new');

    is_deeply(states($b_admin), { snow => 'missing', lice => 'missing' },
              'another school has copied nothing');
    $r = copy($b_admin);
    is_deeply(keys_of($r->{json}{added}), [qw(snow lice)],
              'until it copies too');

    # the school personalises the snow closure
    my $snow = get_json($a_admin, '/templates')->{items};
    ($snow) = grep { ($_->{library}{key} // '') eq 'snow' } @$snow;
    $r = patch($a_admin, $snow->{id}, { body => 'Snow! Stay home, {name}.' });
    is($r->{json}{library}{personalised}, $T, 'a personalised template');
    is(states($a_admin)->{snow}, 'personalised', 'shows as personalised');

    $r = copy($a_admin);
    is_deeply([ map { $r->{json}{$_} } qw(added updated overwritten) ],
              [[], [], []],
              'a copy leaves a personalisation the library has not changed');

    # the library moves on: lice v2, trip new; the school personalises lice
    $r = patch($a_admin, $lice, { sms_body => 'Check hair tonight.' });
    is($r->{status}, 200, 'the letter personalised too');

    $ngx->stop;
    $ngx = start_with("$tmp/lib2.json");
    use_nginx($ngx, prefix => $V);

    is_deeply(states($a_admin), { snow => 'personalised',
                                  lice => 'personalised',
                                  trip => 'missing' },
              'after the library update');
    is_deeply(states($b_admin), { snow => 'current', lice => 'behind',
                                  trip => 'missing' },
              'and for a school that did not personalise');

    $r = copy($a_admin, '?dry_run=true');
    is_deeply([ map { keys_of($r->{json}{$_}) } qw(added updated overwritten) ],
              [['trip'], [], ['lice']], 'the dry run')
        or diag $r->{content};
    is(states($a_admin)->{trip}, 'missing', 'changed nothing');

    $r = copy($a_admin);
    is_deeply(keys_of($r->{json}{added}), ['trip'], 'the new one added');
    is_deeply(keys_of($r->{json}{updated}), [], 'none merely behind');
    is_deeply(keys_of($r->{json}{overwritten}), ['lice'],
              'the personalised letter updated upstream is overwritten');

    $t = get_json($a_admin, "/templates/$lice");
    is($t->{body}, 'Dear {name}, please check hair this week.',
       'it has the library\'s new text');
    is($t->{sms_body}, 'Please check hair.', 'and SMS');
    my $v = get_json($a_admin, "/templates/$lice/versions");
    my ($mine) = grep { ($_->{sms_body} // '') eq 'Check hair tonight.' }
                 @{ $v->{items} };
    ok($mine, 'the personalised text is in its versions');
    is($v->{items}[0]{change}, 'library', 'the copy is a version');

    # and it can be brought back
    $r = patch($a_admin, $lice, { sms_body => $mine->{sms_body} });
    is($r->{json}{sms_body}, 'Check hair tonight.', 'recovered');

    is_deeply(states($a_admin), { snow => 'personalised',
                                  lice => 'personalised',
                                  trip => 'current' }, 'the states now');

    # a template copied and not personalised is updated
    $r = copy($b_admin);
    is_deeply([ map { keys_of($r->{json}{$_}) } qw(added updated overwritten) ],
              [['trip'], ['lice'], []],
              'a template behind the library is updated');
    is_deeply(states($b_admin), { snow => 'current', lice => 'current',
                                  trip => 'current' }, 'all current');
    my $bl = get_json($b_admin, '/templates/library')->{items}[1];
    is(get_json($b_admin, "/templates/$bl->{template_id}")->{body},
       'Dear {name}, please check hair this week.', 'with the new text');
    is(scalar @{ get_json($a_admin, '/templates')->{items} },
       7, 'the first school has its own templates');

    # behind: copied, not personalised, newer upstream
    $r = req(DELETE => "/templates/$lice", $a_admin);
    is($r->{status}, 204, 'DELETE a template');
    $r = get($a_admin, "/templates/$lice");
    Msgr::Test::problem_ok($r, 404, 'it is gone');
    is(states($a_admin)->{lice}, 'missing', 'missing again');
}

{
    # the library msgr ships
    $ngx->stop;
    $ngx = start_with("$ROOT/share/library/library.json");
    use_nginx($ngx, prefix => $V);
    my $l = get_json($a_admin, '/templates/library');
    cmp_ok(scalar @{ $l->{items} }, '>=', 30, 'msgr ships 30 or more');
    my $r = copy($a_admin, '?dry_run=true');
    is(scalar @{ $r->{json}{added} }, scalar @{ $l->{items} },
       'all of them new to the school');
}

{
    # a bad library stops nginx -t with a message
    Msgr::Test::spew("$tmp/bad.json", $J->encode({ version => 1,
        templates => [ { %{ $LIB1{templates}[0] }, body => 'Hi {nope}' } ] }));
    $ngx->stop;
    my $ok = eval { start_with("$tmp/bad.json",
                               allow => [qr/msgr_library/]); 1 };
    ok(!$ok, 'nginx refuses a library with an unknown token');
    like($@ // '', qr/template "snow": body unknown merge token \{nope\}/,
         'and says where');

    $ngx = api_nginx($pg);
    use_nginx($ngx, prefix => $V);
    my $r = get($a_admin, "/templates/library");
    Msgr::Test::problem_ok($r, 404, 'without msgr_library: 404');
    like($r->{json}{detail}, qr/msgr_library/, 'naming the directive');
}

$ngx->stop;
done_testing();
