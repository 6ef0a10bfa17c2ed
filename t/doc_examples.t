#!/usr/bin/perl

# The docs' examples run as written.
#
# The convention (README.md says it too): a fenced ```sh block of README.md
# or docs/*.md is an example to run.  They run in order (README.md,
# docs/api.md, then the other docs by name) in one bash, with -e, -u and
# pipefail, against a stack like `make run`'s: PostgreSQL with the migrations,
# nginx with the module, the "Demo School" and its admin key in
# var/demo-admin-key, run from a directory that looks like the checkout
# (var/, docs/, build/).  Only the ports differ: 127.0.0.1:8080 (the API)
# and port=5433 (PostgreSQL) in the examples become the test's own.  Every
# curl there must use -f (curl -fsS), so an HTTP error fails the example.
# A shell example that is not to be run goes in a ```console block.
#
# Also: conf/nginx.conf carries every directive of docs/directives.md;
# docs/examples/snapshot.json is the full example of docs/mis-sync.md;
# docs/api.md's errors table has every problem type the module sends;
# msgrctl school --help and key --help list their subcommands.

use strict;
use warnings;

use Cwd qw(abs_path);
use File::Basename qw(basename dirname);
use File::Temp qw(tempdir);
use POSIX qw(:sys_wait_h);
use Test::More;
use Time::HiRes qw(sleep time);
use lib 't/lib';
use Msgr::Test qw(slurp spew);

my $ROOT = abs_path(dirname(abs_path(__FILE__)) . '/..');

# The fenced blocks of a Markdown file: [{ lang, line (of its first line),
# text }].
sub blocks {
    my ($file) = @_;
    my (@b, $cur);
    my $n = 0;
    open(my $fh, '<', $file) or die "$file: $!";
    while (my $line = <$fh>) {
        $n++;
        if (!$cur && $line =~ /^```(\S*)\s*$/) {
            $cur = { lang => $1, line => $n + 1, text => '' };
        } elsif ($cur && $line =~ /^```\s*$/) {
            push @b, $cur;
            undef $cur;
        } elsif ($cur) {
            $cur->{text} .= $line;
        }
    }
    close $fh;
    return @b;
}


# --- conf/nginx.conf has every directive of docs/directives.md -------------

{
    my @documented = slurp("$ROOT/docs/directives.md")
                     =~ /^### (msgr_\w+)\s*$/mg;
    my %conf;
    for my $line (split /\n/, slurp("$ROOT/conf/nginx.conf")) {
        $conf{$1} = 1 if $line =~ /^\s*(msgr_\w+)\b/;
    }

    ok(@documented >= 8, 'docs/directives.md documents the directives')
        or diag("found: @documented");
    for my $d (@documented) {
        ok($conf{$d}, "conf/nginx.conf has $d");
    }
    my %doc = map { $_ => 1 } @documented;
    for my $d (sort keys %conf) {
        ok($doc{$d}, "docs/directives.md documents $d (of conf/nginx.conf)");
    }
}


# --- docs/examples/snapshot.json ---------------------------------------------

{
    my $doc = slurp("$ROOT/docs/mis-sync.md");
    my ($full) = $doc =~ /^## A full example\n.*?^```json\n(.*?)^```$/ms;
    ok(defined $full, 'docs/mis-sync.md has a full example');
    is(slurp("$ROOT/docs/examples/snapshot.json"), $full // '',
       'docs/examples/snapshot.json is the full example of docs/mis-sync.md');
}


# --- the errors table --------------------------------------------------------

{
    my $src = slurp("$ROOT/src/ngx_http_msgr_response.c");
    my %code = (NGX_HTTP_BAD_REQUEST => 400, NGX_HTTP_UNAUTHORIZED => 401,
                NGX_HTTP_FORBIDDEN => 403, NGX_HTTP_NOT_FOUND => 404,
                NGX_HTTP_NOT_ALLOWED => 405, NGX_HTTP_REQUEST_TIME_OUT => 408,
                NGX_HTTP_CONFLICT => 409, NGX_HTTP_LENGTH_REQUIRED => 411,
                NGX_HTTP_PRECONDITION_FAILED => 412,
                NGX_HTTP_REQUEST_ENTITY_TOO_LARGE => 413,
                NGX_HTTP_REQUEST_URI_TOO_LARGE => 414,
                NGX_HTTP_UNSUPPORTED_MEDIA_TYPE => 415,
                NGX_HTTP_INTERNAL_SERVER_ERROR => 500,
                NGX_HTTP_SERVICE_UNAVAILABLE => 503,
                NGX_HTTP_GATEWAY_TIME_OUT => 504);
    my %sent;
    while ($src =~ /\{\s*(NGX_HTTP_\w+|\d{3}),\s*"[^"]*",\s*"([a-z-]+)"/g) {
        my ($st, $type) = ($1, $2);
        $sent{$type} = $st =~ /^\d+$/ ? $st : $code{$st} // $st;
    }
    ok(keys %sent >= 10, 'the module\'s problem types are found')
        or diag(join ' ', %sent);

    my %table;
    for my $line (split /\n/, slurp("$ROOT/docs/api.md")) {
        $table{$2} = $1 if $line =~ /^\| (\d{3}) \| `([a-z-]+)` \|/;
    }
    for my $type (sort { $sent{$a} cmp $sent{$b} } keys %sent) {
        is($table{$type}, $sent{$type},
           "docs/api.md's errors table: $sent{$type} $type");
    }
    for my $st (qw(414 429 500 504)) {
        ok((grep { $_ == $st } values %table),
           "docs/api.md's errors table has $st");
    }
    is($table{'outcome-unknown'}, 504, '504 is outcome-unknown');
}


# --- msgrctl school --help, key --help ----------------------------------------

for my $group (qw(school key)) {
    my ($rc, $out, $err) = Msgr::Test::msgrctl('', $group, '--help');
    is($rc, 0, "msgrctl $group --help exits 0") or diag($err);
    my @subs = map { /^\s+\Q$group\E (\w+)/ ? $1 : () } split /\n/, $out;
    my %want = (school => [qw(create list set prices)],
                key    => [qw(create list revoke)]);
    is_deeply(\@subs, $want{$group},
              "msgrctl $group --help lists its subcommands")
        or diag($out . $err);
}


# --- the examples ------------------------------------------------------------

my @docs = ('README.md', 'docs/api.md',
            grep { $_ ne 'docs/api.md' }
            map { s{^\Q$ROOT\E/}{}r } sort glob("$ROOT/docs/*.md"));

my @examples;
for my $doc (@docs) {
    for my $b (blocks("$ROOT/$doc")) {
        next unless $b->{lang} eq 'sh';
        push @examples, { %$b, doc => $doc };
    }
}

ok(scalar(grep { $_->{doc} eq 'README.md' } @examples),
   'README.md has sh examples');
ok(scalar(grep { $_->{doc} eq 'docs/api.md' } @examples),
   'docs/api.md has sh examples');

# every curl fails on an HTTP error
for my $ex (@examples) {
    my $n = $ex->{line} - 1;
    for my $line (split /\n/, $ex->{text}) {
        $n++;
        next if $line =~ /^\s*#/;
        while ($line =~ /(?:^|[\s;|&(\$]|\$\()curl\s+(\S+)/g) {
            my $opt = $1;
            ok($opt =~ /^-[a-zA-Z]*f/ || $opt eq '--fail',
               "$ex->{doc}:$n: curl -f (fails on an HTTP error)")
                or diag("the first option is $opt: write curl -fsS ...");
        }
    }
}

# make run's stack
my $pg     = Msgr::Test::pg_start();
my $school = Msgr::Test::school($pg, 'Demo School');
my $key    = Msgr::Test::key($pg, $school, 'admin');
my $ngx    = Msgr::Test::nginx_start($pg, location =>
    "    msgr_library $ROOT/share/library/library.json;");

# a directory that looks like the checkout
my $co = tempdir('msgr-docs-XXXXXX', TMPDIR => 1, CLEANUP => 1);
mkdir "$co/var" or die "mkdir: $!";
spew("$co/var/demo-admin-key", "$key\n");
chmod 0600, "$co/var/demo-admin-key";
symlink("$ROOT/docs", "$co/docs") or die "symlink docs: $!";
# the build the suite runs on (build-asan/ for make test-asan) as build/
symlink($Msgr::Test::BUILD, "$co/build") or die "symlink build: $!";

# one script: each example, then a line in the status file
my $status = "$co/status";
my $script = <<'SH';
set -eEuo pipefail
exec 3>>"$MSGR_DOC_STATUS"
trap 'echo "failed $MSGR_DOC_EXAMPLE $LINENO $BASH_COMMAND" >&3' ERR
SH
my $lines = () = $script =~ /\n/g;
my $port = $ngx->port;
my $pgport = $pg->port;

for my $i (0 .. $#examples) {
    my $ex = $examples[$i];
    my $text = $ex->{text};
    $text =~ s/127\.0\.0\.1:8080\b/127.0.0.1:$port/g;
    $text =~ s/\bport=5433\b/port=$pgport/g;

    my $head = "MSGR_DOC_EXAMPLE=$i; echo '=== example $i'\n";
    $script .= $head;
    $lines++;
    $ex->{first} = $lines + 1;      # the script's line of its first line
    $script .= $text;
    $lines += () = $text =~ /\n/g;
    $script .= "echo \"ok $i\" >&3\n";
    $lines++;
}
spew("$co/examples.sh", $script);

my $outf = "$co/output";
my $pid = fork() // die "fork: $!";
if ($pid == 0) {
    chdir $co or die "chdir $co: $!";
    open(STDIN, '<', '/dev/null');
    open(STDOUT, '>', $outf) or die "$outf: $!";
    open(STDERR, '>&', \*STDOUT);
    delete @ENV{qw(KEY MSGR_PG U ADMIN APP)};
    $ENV{MSGR_DOC_STATUS} = $status;
    exec 'bash', '--noprofile', '--norc', "$co/examples.sh"
        or die "exec bash: $!";
}

my $deadline = time + 300;
while (waitpid($pid, WNOHANG) == 0) {
    if (time > $deadline) {
        kill 'KILL', $pid;
        waitpid($pid, 0);
        fail('the examples finish within 300 s');
        last;
    }
    sleep 0.1;
}

my %ok;
my $failure;
for my $line (split /\n/, slurp($status)) {
    $ok{$1} = 1 if $line =~ /^ok (\d+)$/;
    $failure = [$1, $2, $3] if $line =~ /^failed (\d+) (\d+) (.*)$/;
}
my $output = slurp($outf);

for my $i (0 .. $#examples) {
    my $ex = $examples[$i];
    my $where = "$ex->{doc}:$ex->{line}";
    next if ok($ok{$i}, "the example at $where runs");

    if ($failure && $failure->[0] == $i) {
        my $line = $ex->{line} + $failure->[1] - $ex->{first};
        diag("$ex->{doc}:$line: this command failed: $failure->[2]");
    } elsif ($failure) {
        diag('not run: an earlier example failed');
        next;
    }
    my ($out) = $output =~ /^=== example $i\n(.*?)(?:^=== example \d+\n|\z)/ms;
    $out //= $output;
    diag("its output:\n$out");
}

is(scalar(keys %ok), scalar(@examples), 'every example ran')
    or diag("output:\n$output");

Msgr::Test::finish();
