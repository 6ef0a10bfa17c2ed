#!/usr/bin/perl

# msgrctl against a throwaway PostgreSQL cluster: migrations, schools and
# API keys, as an operator sees them (exit codes, stdout, stderr) and as
# they end up in the database.

use strict;
use warnings;

use File::Basename qw(basename);
use File::Copy qw(copy);
use File::Temp qw(tempdir);
use MIME::Base64 qw(decode_base64);
use POSIX qw(WEXITSTATUS);
use Test::More;

use lib 't/lib';
use Msgr::Test qw(slurp spew);

my $CTL = $Msgr::Test::MSGRCTL;
my $SQL = "$Msgr::Test::ROOT/sql";
my $KEY_RE = qr/^msgr_(\d+)_([0-9a-f]{16})_([A-Za-z0-9_-]{43})$/;

my @files = sort map { basename($_) } glob("$SQL/[0-9][0-9][0-9][0-9]_*.sql");
ok(scalar @files, 'sql/ holds migrations') or BAIL_OUT("no sql/*.sql");

my $pg = Msgr::Test::pg_start(migrate => 0);

sub ctl { Msgr::Test::msgrctl($pg, @_) }

# Runs msgrctl with the environment changed: undef deletes a variable.
sub ctl_env {
    my ($env, @args) = @_;
    my $dir = tempdir('msgrctl-t-XXXXXX', TMPDIR => 1, CLEANUP => 1);
    my $pid = fork() // die "fork: $!";
    if ($pid == 0) {
        for my $k (keys %$env) {
            if (defined $env->{$k}) {
                $ENV{$k} = $env->{$k};
            } else {
                delete $ENV{$k};
            }
        }
        open(STDIN, '<', '/dev/null');
        open(STDOUT, '>', "$dir/out") or POSIX::_exit(127);
        open(STDERR, '>', "$dir/err") or POSIX::_exit(127);
        exec { $CTL } $CTL, @args or POSIX::_exit(127);
    }
    waitpid($pid, 0);
    my $rc = $? & 127 ? 128 + ($? & 127) : WEXITSTATUS($?);
    return ($rc, slurp("$dir/out"), slurp("$dir/err"));
}

# What migrate may change: the tables and columns, and the migration rows.
sub schema_snapshot {
    my ($p) = @_;
    return $p->psql(
        "SELECT table_name || '.' || column_name || ':' || data_type"
      . "  FROM information_schema.columns WHERE table_schema = 'public'"
      . "  ORDER BY 1;"
      . "SELECT version || ' ' || applied_at FROM msgr_schema_migrations"
      . "  ORDER BY 1;"
      . "SELECT tgname FROM pg_trigger WHERE NOT tgisinternal ORDER BY 1;");
}


# --- usage -----------------------------------------------------------------

{
    my ($rc, $out, $err) = ctl('--help');
    is($rc, 0, '--help exits 0');
    for my $cmd ('migrate', 'school create', 'school list', 'key create',
                 'key list', 'key revoke')
    {
        like($out, qr/^\s+\Q$cmd\E\b/m, "--help lists '$cmd'");
    }

    ($rc, $out, $err) = ctl();
    is($rc, 2, 'no arguments: exit 2');
    like($err, qr/usage:.*school create/s, 'no arguments: usage on stderr');

    ($rc, $out, $err) = ctl('frobnicate');
    is($rc, 2, 'unknown command: exit 2');
    like($err, qr/unknown command "frobnicate"/, 'unknown command is named');
    like($err, qr/usage:.*key revoke/s, 'unknown command: usage on stderr');
    is($out, '', 'unknown command: nothing on stdout');

    ($rc, $out, $err) = ctl('school', 'rename');
    is($rc, 2, 'unknown subcommand: exit 2');

    ($rc, $out, $err) = ctl('school', 'create');
    is($rc, 2, 'school create without a name: exit 2');
    like($err, qr/missing argument/, '... says an argument is missing');
}

{
    my ($rc, $out, $err) = ctl_env({ MSGR_PG => undef }, 'school', 'list');
    is($rc, 1, 'no --pg and no MSGR_PG: exit 1');
    like($err, qr/--pg/, '... the message names --pg');
    like($err, qr/MSGR_PG/, '... and MSGR_PG');

    ($rc, $out, $err) = ctl_env({ MSGR_PG => '' }, 'school', 'list');
    is($rc, 1, 'empty MSGR_PG: exit 1');
    like($err, qr/--pg.*MSGR_PG/, '... with the same message');

    ($rc, $out, $err) = ctl_env({ MSGR_PG => undef }, '--pg',
                                'host=127.0.0.1 port=1 dbname=msgr', 'migrate');
    is($rc, 1, 'unreachable server: exit 1');
    like($err, qr/cannot connect/, '... says it cannot connect');
}


# --- migrate ---------------------------------------------------------------

{
    is($pg->psql("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'"),
       0, 'the new cluster has no tables');

    my ($rc, $out, $err) = ctl('migrate');
    is($rc, 0, 'migrate exits 0') or diag($err);
    is($out, join('', map { "applied $_\n" } @files),
       'migrate prints one line per file, in name order');

    (my $versions = join("\n", @files)) =~ s/\.sql//g;
    is($pg->psql('SELECT version FROM msgr_schema_migrations ORDER BY 1'),
       $versions, 'every file is recorded in msgr_schema_migrations');
    is($pg->psql("SELECT to_regclass('msgr_schools') IS NOT NULL"
               . " AND to_regclass('msgr_api_keys') IS NOT NULL"),
       't', 'the tables exist');

    my $before = schema_snapshot($pg);

    ($rc, $out, $err) = ctl('migrate');
    is($rc, 0, 'second migrate exits 0') or diag($err);
    unlike($out, qr/applied /, 'second migrate applies nothing');
    like($out, qr/nothing to apply/, '... and says so');
    is($err, '', '... with nothing on stderr');
    is(schema_snapshot($pg), $before, '... and changes nothing');
}

{
    # a broken file after the good ones: reported, rolled back, not recorded
    my $dir = tempdir('msgrctl-sql-XXXXXX', TMPDIR => 1, CLEANUP => 1);
    copy("$SQL/$_", "$dir/$_") or die "copy $_: $!" for @files;
    spew("$dir/9999_broken.sql",
         "CREATE TABLE msgr_broken_a (x int);\n"
       . "CREATE TABLE msgr_broken_b (x int;\n");

    my $before = schema_snapshot($pg);

    my ($rc, $out, $err) = ctl('migrate', '--sql', $dir);
    is($rc, 1, 'a failing migration: exit 1');
    like($err, qr/9999_broken\.sql/, '... names the file');
    like($err, qr/syntax error/, "... with PostgreSQL's error");
    unlike($out, qr/applied/, '... applies nothing else');
    is($pg->psql("SELECT to_regclass('msgr_broken_a') IS NULL"), 't',
       '... rolls back the statements before the error');
    is(schema_snapshot($pg), $before, '... and records nothing');

    ($rc, $out, $err) = ctl_env({ MSGR_PG => $pg->conninfo,
                                  MSGR_SQL_DIR => $dir }, 'migrate');
    is($rc, 1, 'MSGR_SQL_DIR is read');
    like($err, qr/9999_broken\.sql/, '... it is the broken directory');

    ($rc, $out, $err) = ctl_env({ MSGR_PG => $pg->conninfo,
                                  MSGR_SQL_DIR => $dir },
                                'migrate', '--sql', $SQL);
    is($rc, 0, '--sql overrides MSGR_SQL_DIR') or diag($err);

    ($rc, $out, $err) = ctl('migrate', '--sql', "$dir/nonexistent");
    is($rc, 1, 'a missing directory: exit 1');
    like($err, qr/\Q$dir\E\/nonexistent/, '... names the directory');
}

{
    # four migrates at once on an empty database: each file applied once
    $pg->psql('CREATE DATABASE msgr_concurrent');
    my $ci = $pg->conninfo('msgr_concurrent');
    my @runs;
    for my $i (1 .. 4) {
        my $pid = open(my $fh, '-|') // die "fork: $!";
        if ($pid == 0) {
            $ENV{MSGR_PG} = $ci;
            exec { $CTL } $CTL, 'migrate' or POSIX::_exit(127);
        }
        push @runs, $fh;
    }
    my ($out, $fails) = ('', 0);
    for my $fh (@runs) {
        local $/;
        $out .= <$fh> // '';
        close $fh;
        $fails++ if $? != 0;
    }
    is($fails, 0, 'concurrent migrates all exit 0');
    my @applied = sort ($out =~ /^applied (\S+)$/mg);
    is_deeply(\@applied, \@files, '... and apply each file exactly once');
    my ($c) = Msgr::Test::msgrctl($ci, 'school', 'list');
    is($c, 0, '... leaving a usable database');
}


# --- schools ---------------------------------------------------------------

my $school;

{
    my ($rc, $out, $err) = ctl('school', 'create', 'Test School');
    is($rc, 0, 'school create exits 0') or diag($err);
    like($out, qr/^\d+\n\z/, 'school create prints the id alone');
    ($school) = $out =~ /^(\d+)/;
    $school //= 0;

    is($pg->psql("SELECT name FROM msgr_schools WHERE school_id = $school"),
       'Test School', 'the school is stored under that id');

    ($rc, $out, $err) = ctl('school', 'create', 'Second School');
    my ($second) = $out =~ /^(\d+)\n\z/;
    ok($rc == 0 && $second && $second != $school,
       'another school gets another id');

    ($rc, $out, $err) = ctl('school', 'list');
    is($rc, 0, 'school list exits 0');
    my @lines = split /\n/, $out;
    is(scalar @lines, 2, 'school list: one line per school');
    like($lines[0] // '', qr/^$school\tTest School\t\d{4}-\d\d-\d\d \d\d:/,
         'school list: id, name, created_at, tab separated');
    like($lines[1] // '', qr/^$second\tSecond School\t/, '... ordered by id');

    ($rc, $out, $err) = ctl('school', 'create', '');
    is($rc, 1, 'an empty name: exit 1');
    like($err, qr/1 to 200/, '... saying what is allowed');

    ($rc, $out, $err) = ctl('school', 'create', 'x' x 201);
    is($rc, 1, 'a 201-character name: exit 1');
    like($err, qr/1 to 200/, '... saying what is allowed');

    ($rc, $out, $err) = ctl('school', 'create', "\x{c3}\x{a9}" x 200);
    is($rc, 0, 'a 200-character name of 2-byte characters is fine')
        or diag($err);

    ($rc, $out, $err) = ctl('school', 'create', "Tab\tSchool");
    is($rc, 1, 'a name with a tab: exit 1');

    is($pg->psql('SELECT count(*) FROM msgr_schools'), 3,
       'rejected names stored nothing');
}


# --- keys ------------------------------------------------------------------

{
    my ($rc, $out, $err) = ctl('key', 'create', '--school', $school,
                               '--role', 'admin');
    is($rc, 0, 'key create exits 0') or diag($err);
    like($out, qr/^msgr_\d+_[0-9a-f]{16}_[A-Za-z0-9_-]{43}\n\z/,
         'key create prints the key alone on a line');
    chomp(my $key = $out);
    my ($ks, $kid, $secret) = $key =~ $KEY_RE;
    $kid //= 'none';
    $secret //= 'none';
    is($ks, $school, 'the key carries the school id');

    is($pg->psql("SELECT school_id || ' ' || role || ' '"
               . " || octet_length(secret_hash)"
               . " FROM msgr_api_keys WHERE key_id = '$kid'"),
       "$school admin 32", 'the row holds school, role and a 32-byte hash');

    my $row = $pg->psql("SELECT t::text || ' ' || encode(secret_hash, 'hex')"
                      . " || ' ' || encode(secret_hash, 'escape')"
                      . " FROM msgr_api_keys t WHERE key_id = '$kid'");
    ok(index($row, $secret) < 0 && index($row, $key) < 0,
       'the secret is not in the database');

    (my $b64 = $secret) =~ tr{-_}{+/};
    my $raw = unpack('H*', decode_base64($b64 . '='));
    is(length $raw, 64, 'the secret is 32 bytes');
    ok(index($row, $raw) < 0, '... which are not stored either');

    ($rc, $out, $err) = ctl('key', 'list', '--school', $school);
    is($rc, 0, 'key list exits 0');
    like($out, qr/^$kid\tadmin\t\d{4}-\d\d-\d\d [^\t]+\tactive\n\z/,
         'key list: key_id, role, created_at, active');

    my $key2 = eval { Msgr::Test::key($pg, $school, 'staff') } // '';
    like($key2, $KEY_RE, 'the harness can make keys ("key create ID ROLE")');
    isnt($key2, $key, '... and each key is new');

    ($rc, $out, $err) = ctl('key', 'revoke', $kid);
    is($rc, 0, 'key revoke exits 0') or diag($err);
    like($out, qr/\Q$kid\E/, '... and names the key');
    is($pg->psql("SELECT revoked_at IS NOT NULL FROM msgr_api_keys"
               . " WHERE key_id = '$kid'"), 't', 'the key is revoked');

    ($rc, $out, $err) = ctl('key', 'list', '--school', $school);
    like($out, qr/^$kid\tadmin\t[^\t]+\t\d{4}-\d\d-\d\d [^\t]+\n/m,
         'key list shows when it was revoked');
    unlike($out, qr/^$kid\t.*active$/m, '... not active');
    like($out, qr/\tstaff\t[^\t]+\tactive$/m, '... the other key is active');

    my $at = $pg->psql("SELECT revoked_at FROM msgr_api_keys"
                     . " WHERE key_id = '$kid'");
    ($rc, $out, $err) = ctl('key', 'revoke', $kid);
    is($rc, 1, 'revoking twice: exit 1');
    like($err, qr/already revoked/, '... says it is already revoked');
    is($pg->psql("SELECT revoked_at FROM msgr_api_keys"
               . " WHERE key_id = '$kid'"), $at, '... and keeps the time');

    ($rc, $out, $err) = ctl('key', 'revoke', '0123456789abcdef');
    is($rc, 1, 'revoking an unknown key: exit 1');
    like($err, qr/0123456789abcdef/, '... names the key id');

    ($rc, $out, $err) = ctl('key', 'revoke', 'not-a-key-id');
    is($rc, 1, 'revoking a malformed key id: exit 1');
    like($err, qr/16 .*hex/, '... says what a key id is');

    my $count = $pg->psql('SELECT count(*) FROM msgr_api_keys');

    ($rc, $out, $err) = ctl('key', 'create', '--school', $school,
                            '--role', 'owner');
    is($rc, 1, 'a bad role: exit 1');
    like($err, qr/owner/, '... names the role');
    like($err, qr/admin.*staff.*integrator/, '... and lists the allowed ones');
    is($out, '', '... prints no key');

    ($rc, $out, $err) = ctl('key', 'create', '--school', 999999,
                            '--role', 'staff');
    is($rc, 1, 'an unknown school: exit 1');
    like($err, qr/school 999999/, '... names the school id');
    is($out, '', '... prints no key');

    ($rc, $out, $err) = ctl('key', 'create', '--school', 'abc',
                            '--role', 'staff');
    is($rc, 1, 'a school id that is not a number: exit 1');
    like($err, qr/"abc"/, '... names it');

    ($rc, $out, $err) = ctl('key', 'create', '--school', $school);
    is($rc, 2, 'no --role: exit 2');
    like($err, qr/--role/, '... says --role is required');

    is($pg->psql('SELECT count(*) FROM msgr_api_keys'), $count,
       'failed key creations stored nothing');

    ($rc, $out, $err) = ctl('key', 'list', '--school', 999999);
    is($rc, 1, 'key list of an unknown school: exit 1');
    like($err, qr/school 999999/, '... names the school id');

    ($rc, $out, $err) = ctl('key', 'create', '--school', $school,
                            '--role', 'integrator');
    is($rc, 0, 'an integrator key');
    ($rc, $out, $err) = ctl_env({ MSGR_PG => undef }, '--pg', $pg->conninfo,
                                'key', 'list', '--school', $school);
    is($rc, 0, '--pg works without MSGR_PG');
    is(scalar(() = $out =~ /\n/g), 3, '... and lists the three keys');
}

done_testing();
