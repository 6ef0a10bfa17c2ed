package Msgr::Test;

# The msgr test harness: a throwaway PostgreSQL cluster, msgrctl, and nginx
# with the built module, each in its own temporary directory on a free
# loopback port, all torn down at the end.  Core Perl only.
#
#   use lib 't/lib'; use Msgr::Test;
#   my $pg  = Msgr::Test::pg_start();
#   my $id  = Msgr::Test::school($pg, 'Name');
#   my $key = Msgr::Test::key($pg, $id, 'admin');
#   my $ngx = Msgr::Test::nginx_start($pg, pool => 2);
#   my $r   = $ngx->req(GET => '/msgr/v1/school', key => $key);
#   ...
#   Msgr::Test::finish();     # stops nginx, checks its error logs, done_testing
#
# A test file that calls done_testing directly gets the error log check too:
# done_testing is wrapped so the check runs first, inside the same plan.

use strict;
use warnings;

use Cwd qw(abs_path);
use Exporter qw(import);
use File::Basename qw(dirname);
use File::Path qw(remove_tree);
use File::Temp qw(tempdir);
use HTTP::Tiny;
use IO::Select;
use IO::Socket::INET;
use JSON::PP;
use POSIX qw(:sys_wait_h);
use Test::More ();
use Time::HiRes qw(sleep time);

our @EXPORT    = qw(check_logs);
our @EXPORT_OK = qw(pg_start msgrctl school key nginx_start nginx_test_config
                    check_logs finish problem_ok json_ok burst free_port
                    slurp spew);

our $ROOT    = abs_path(dirname(abs_path(__FILE__)) . '/../../..');
# MSGR_BUILD=build-asan (make test-asan): the same tests on the build with
# the sanitizers
our $BUILD   = _build_dir($ENV{MSGR_BUILD} // 'build');
our $MODULE  = $ENV{MSGR_MODULE}  // "$BUILD/ngx_http_msgr_module.so";
our $MSGRCTL = $ENV{MSGR_MSGRCTL} // "$BUILD/msgrctl";
our $SENDER  = $ENV{MSGR_SENDER}  // "$BUILD/msgr-sender";
our $NGINX   = $ENV{MSGR_NGINX}   // '/usr/sbin/nginx';
our $PGBIN   = $ENV{MSGR_PGBIN}   // _find_pgbin();

# What in an nginx error log means a test failed even if every client got
# its answer.  An [error] line a test provokes on purpose is declared with
# nginx_start's allow => [qr/.../]; any other fails the file.
our @BAD_LOG = (
    qr/\[alert\]/, qr/\[emerg\]/, qr/\[crit\]/, qr/\[error\]/,
    qr/segmentation/i, qr/signal 11\b/, qr/exited on signal/,
    qr/AddressSanitizer/, qr/LeakSanitizer/, qr/ERROR: /,
    qr/runtime error: /,
);

# The sanitizers' reports: each instrumented program this file runs writes
# them into $SAN_DIR (ASAN_OPTIONS/UBSAN_OPTIONS log_path), and any file
# found there fails the file, printed whole (check_logs).
our $SAN     = _instrumented($MODULE) || _instrumented($MSGRCTL);
our $SAN_DIR;
our %NGINX_ENV;

my $MAIN_PID = $$;
my $IS_ROOT  = $> == 0;
my $JSON     = JSON::PP->new->utf8->allow_nonref->canonical;

_san_setup();

my @PGS;            # every cluster started by this process
my @NGINXES;        # every nginx started by this process
my $LOGS_CHECKED = 0;
my $SEQ = 0;


sub _find_pgbin {
    my @dirs = sort { _ver($b) <=> _ver($a) }
               grep { -x "$_/initdb" } glob('/usr/lib/postgresql/*/bin');
    return $dirs[0] if @dirs;
    for my $d (split /:/, $ENV{PATH} // '') {
        return $d if -x "$d/initdb";
    }
    return '/usr/lib/postgresql/15/bin';
}

sub _ver { my ($d) = @_; $d =~ m{/postgresql/(\d+)} ? $1 : 0 }

sub _build_dir {
    my ($b) = @_;
    return $b =~ m{^/} ? $b : "$ROOT/$b";
}

# Whether a program or module was built with AddressSanitizer.
sub _instrumented {
    my ($file) = @_;
    open(my $fh, '<:raw', $file) or return 0;
    local $/;
    my $bin = <$fh>;
    close $fh;
    return index($bin // '', '__asan_init') >= 0 ? 1 : 0;
}

# The sanitizers' options for this process and its children, and what
# nginx needs to load an instrumented module: Debian's nginx is not
# instrumented, so ASan's runtime (and UBSan's) must be preloaded, the
# first libraries of the process.  nginx runs with leak checking off: its
# master and the process that daemonises exit without freeing the cycle,
# and nginx's allocations are not ours to judge; what the module mallocs is
# freed by pool cleanups, which ASan still checks for use after free and
# double free.  Programs built whole by us (msgrctl, the unit tests,
# msgr-sender) run with leak checking on.
sub _san_setup {
    return unless $SAN;
    $SAN_DIR = tempdir('msgr-san-XXXXXX', TMPDIR => 1, CLEANUP => 0);
    # nginx's workers write here as nobody when the master is root
    chmod 01777, $SAN_DIR;
    my $common = "abort_on_error=1:disable_coredump=1:print_summary=1";
    $ENV{ASAN_OPTIONS}  = "log_path=$SAN_DIR/asan:$common:detect_leaks=1";
    $ENV{LSAN_OPTIONS}  = "log_path=$SAN_DIR/lsan";
    $ENV{UBSAN_OPTIONS} = "log_path=$SAN_DIR/ubsan:$common"
                        . ":print_stacktrace=1:halt_on_error=1";
    return unless _instrumented($MODULE);
    my @pre;
    for my $lib (qw(libasan.so libubsan.so)) {
        my $p = `gcc -print-file-name=$lib 2>/dev/null`;
        chomp $p;
        push @pre, $p if $p =~ m{^/} && -e $p;
    }
    %NGINX_ENV = (
        LD_PRELOAD   => join(' ', @pre),
        ASAN_OPTIONS => "log_path=$SAN_DIR/asan-nginx:$common"
                      . ":detect_leaks=0",
    );
    # a worker that stops at a report exits, never quietly
    push @BAD_LOG, qr/exited with code [1-9]/;
}

# nginx gives its workers an environment of its own: UBSan, which reads
# its options at its first report, in a worker, finds them there only if
# the configuration passes them on
sub _san_env_conf {
    return '' unless %NGINX_ENV;
    return "env ASAN_OPTIONS;\nenv UBSAN_OPTIONS;\n";
}

# The reports in $SAN_DIR, as "file:\ntext" each.
sub san_reports {
    return () unless $SAN_DIR && -d $SAN_DIR;
    my @r;
    for my $f (sort glob("$SAN_DIR/*")) {
        push @r, "$f:\n" . _slurp($f);
    }
    return @r;
}


# ---------------------------------------------------------------------------
# running commands

# _run(cmd => [...], dir => DIR, user => 'postgres', env => {...},
#      stdin => FILE) -> (exit code, stdout, stderr)
sub _run {
    my (%o) = @_;
    my @cmd = @{ $o{cmd} };
    if ($o{user}) {
        @cmd = ('runuser', '-u', $o{user}, '--', @cmd);
    }

    my $cap = tempdir('msgr-run-XXXXXX', TMPDIR => 1, CLEANUP => 0);
    my ($out, $err) = ("$cap/out", "$cap/err");

    my $pid = fork() // die "fork: $!";
    if ($pid == 0) {
        eval {
            if (defined $o{dir}) {
                chdir $o{dir} or die "chdir $o{dir}: $!\n";
            }
            my $in = $o{stdin} // '/dev/null';
            open(STDIN, '<', $in) or die "stdin $in: $!\n";
            open(STDOUT, '>', $out) or die "stdout: $!\n";
            open(STDERR, '>', $err) or die "stderr: $!\n";
            for my $k (keys %{ $o{env} || {} }) {
                $ENV{$k} = $o{env}{$k};
            }
            exec { $cmd[0] } @cmd or die "exec $cmd[0]: $!\n";
        };
        print STDERR $@ if $@;
        POSIX::_exit(127);
    }

    waitpid($pid, 0);
    my $st = $?;
    my $rc = ($st & 127) ? 128 + ($st & 127) : $st >> 8;

    my $o = _slurp($out);
    my $e = _slurp($err);
    remove_tree($cap);
    return ($rc, $o, $e);
}

sub _slurp {
    my ($f) = @_;
    open(my $fh, '<', $f) or return '';
    local $/;
    my $s = <$fh>;
    close $fh;
    return $s // '';
}

sub _spew {
    my ($f, $s) = @_;
    open(my $fh, '>', $f) or die "write $f: $!";
    print $fh $s;
    close $fh or die "close $f: $!";
}

# A file's text ('' when it cannot be read), and a file written whole.
sub slurp { _slurp(@_) }
sub spew  { _spew(@_) }

# A port nobody listens on right now, found by binding port 0.
sub free_port {
    my $s = IO::Socket::INET->new(
        LocalAddr => '127.0.0.1',
        LocalPort => 0,
        Proto     => 'tcp',
        Listen    => 1,
    ) or die "cannot bind a free port: $!";
    my $port = $s->sockport;
    close $s;
    return $port;
}

sub _port_open {
    my ($port) = @_;
    my $s = IO::Socket::INET->new(
        PeerAddr => '127.0.0.1',
        PeerPort => $port,
        Proto    => 'tcp',
        Timeout  => 1,
    );
    return 0 unless $s;
    close $s;
    return 1;
}

sub _mine { $$ == $MAIN_PID }


# ---------------------------------------------------------------------------
# PostgreSQL

sub pg_start {
    my (%o) = @_;
    my $self = bless {
        owner   => $$,
        running => 0,
        user    => $IS_ROOT ? 'postgres' : undef,
    }, 'Msgr::Test::Pg';

    my $dir = tempdir('msgr-pg-XXXXXX', TMPDIR => 1, CLEANUP => 0);
    $self->{dir}  = $dir;
    $self->{data} = "$dir/data";
    $self->{log}  = "$dir/postgres.log";
    push @PGS, $self;

    if ($IS_ROOT) {
        my (undef, undef, $uid, $gid) = getpwnam('postgres')
            or die "running as root and there is no 'postgres' user\n";
        chown $uid, $gid, $dir or die "chown $dir: $!";
    }
    chmod 0700, $dir;

    my ($rc, $out, $err) = _run(
        cmd  => ["$PGBIN/initdb", '-D', $self->{data}, '-U', 'msgr',
                 '--auth=trust', '-E', 'UTF8', '--no-locale', '--no-sync'],
        dir  => $dir,
        user => $self->{user},
    );
    die "initdb failed ($rc):\n$out$err" if $rc != 0;

    open(my $fh, '>>', "$self->{data}/postgresql.conf")
        or die "postgresql.conf: $!";
    print $fh <<'CONF';

# msgr test cluster
listen_addresses = '127.0.0.1'
unix_socket_directories = ''
max_connections = 100
fsync = off
synchronous_commit = off
full_page_writes = off
log_min_messages = warning
CONF
    close $fh;

    # The port is free when we look; another test may take it before the
    # postmaster binds it, so try a few.
    my $last = '';
    for my $try (1 .. 5) {
        $self->{port} = free_port();
        my ($ok, $msg) = $self->_pg_ctl_start;
        if ($ok) {
            $last = '';
            last;
        }
        $last = $msg;
    }
    die "PostgreSQL would not start:\n$last" if $last;

    $self->_psql_db('postgres', 'CREATE DATABASE msgr');

    if ($o{migrate} // 1) {
        my ($mrc, $mout, $merr) = msgrctl($self, 'migrate');
        die "msgrctl migrate failed ($mrc):\n$mout$merr" if $mrc != 0;
    }

    return $self;
}


package Msgr::Test::Pg;

use Time::HiRes qw(sleep time);

sub port     { $_[0]{port} }
sub dir      { $_[0]{dir} }
sub server_log { Msgr::Test::_slurp($_[0]{log}) }

sub conninfo {
    my ($self, $db) = @_;
    $db //= 'msgr';
    return "host=127.0.0.1 port=$self->{port} dbname=$db user=msgr";
}

sub _pg_ctl_start {
    my ($self) = @_;
    my ($rc, $out, $err) = Msgr::Test::_run(
        cmd  => ["$Msgr::Test::PGBIN/pg_ctl", '-D', $self->{data},
                 '-l', $self->{log}, '-w', '-t', '60',
                 '-o', "-p $self->{port}", 'start'],
        dir  => $self->{dir},
        user => $self->{user},
    );
    if ($rc == 0) {
        $self->{running} = 1;
        return (1, '');
    }
    return (0, "pg_ctl start ($rc): $out$err\n" . $self->log);
}

sub start {
    my ($self) = @_;
    return $self if $self->{running};
    my ($ok, $msg) = $self->_pg_ctl_start;
    die $msg unless $ok;
    return $self;
}

sub stop {
    my ($self, $mode) = @_;
    return $self unless $self->{running};
    my ($rc, $out, $err) = Msgr::Test::_run(
        cmd  => ["$Msgr::Test::PGBIN/pg_ctl", '-D', $self->{data},
                 '-m', $mode // 'fast', '-w', '-t', '60', 'stop'],
        dir  => $self->{dir},
        user => $self->{user},
    );
    if ($rc != 0) {
        ($rc, $out, $err) = Msgr::Test::_run(
            cmd  => ["$Msgr::Test::PGBIN/pg_ctl", '-D', $self->{data},
                     '-m', 'immediate', '-w', '-t', '60', 'stop'],
            dir  => $self->{dir},
            user => $self->{user},
        );
        die "pg_ctl stop failed ($rc): $out$err" if $rc != 0;
    }
    $self->{running} = 0;
    return $self;
}

# Runs SQL with psql; returns its output (unaligned, tuples only) without
# the final newline; dies on any error.
sub psql {
    my ($self, $sql) = @_;
    return $self->_psql_db('msgr', $sql);
}

sub _psql_db {
    my ($self, $db, $sql) = @_;
    my $tmp = File::Temp::tempdir('msgr-sql-XXXXXX', TMPDIR => 1,
                                  CLEANUP => 0);
    Msgr::Test::_spew("$tmp/in.sql", $sql);
    my ($rc, $out, $err) = Msgr::Test::_run(
        cmd   => ['psql', '-XAtq', '-v', 'ON_ERROR_STOP=1',
                  '-d', $self->conninfo($db), '-f', "$tmp/in.sql"],
        stdin => '/dev/null',
    );
    File::Path::remove_tree($tmp);
    die "psql failed ($rc): $err\nSQL: $sql\n" if $rc != 0;
    $out =~ s/\n\z//;
    return $out;
}

sub _teardown {
    my ($self) = @_;
    return unless $self->{owner} == $$;
    eval { $self->stop('fast') } if $self->{running};
    if ($@) {
        warn $@;
        eval { $self->stop('immediate') };
    }
    File::Path::remove_tree($self->{dir}) if $self->{dir} && !$ENV{MSGR_KEEP};
    $self->{dir} = undef;
}


package Msgr::Test;

# msgrctl($pg, @args) -> (exit code, stdout, stderr)
sub msgrctl {
    my ($pg, @args) = @_;
    die "$MSGRCTL is not built (make ctl)\n" unless -x $MSGRCTL;
    return _run(
        cmd => [$MSGRCTL, @args],
        env => { MSGR_PG => ref $pg ? $pg->conninfo : $pg },
    );
}

# sender($pg, $conf_text, @args) -> (exit code, stdout, stderr): runs
# msgr-sender with that configuration (written to a temporary file) until
# nothing is due (--exit-when-idle), unless @args say otherwise.
sub sender {
    my ($pg, $conf, @args) = @_;
    die "$SENDER is not built (make sender)\n" unless -x $SENDER;
    my $dir = tempdir('msgr-sender-XXXXXX', TMPDIR => 1, CLEANUP => 1);
    _spew("$dir/sender.conf", $conf);
    @args = ('--exit-when-idle') unless @args;
    return _run(
        cmd => [$SENDER, '--config', "$dir/sender.conf", @args],
        env => { MSGR_PG => ref $pg ? $pg->conninfo : $pg },
    );
}

# Creates a school; returns its id.
sub school {
    my ($pg, $name) = @_;
    my ($rc, $out, $err) = msgrctl($pg, 'school', 'create', $name);
    die "msgrctl school create failed ($rc): $out$err" if $rc != 0;
    $out =~ /(\d+)/ or die "msgrctl school create printed no id: $out$err";
    return $1;
}

# Creates an API key for a school; returns the whole key.
sub key {
    my ($pg, $school, $role) = @_;
    $role //= 'admin';
    my ($rc, $out, $err) = msgrctl($pg, 'key', 'create', '--school', $school,
                                   '--role', $role);
    die "msgrctl key create failed ($rc): $out$err" if $rc != 0;
    $out =~ /\b(msgr_\d+_[0-9a-f]{16}_[A-Za-z0-9_-]{43})(?![A-Za-z0-9_-])/
        or die "msgrctl key create printed no key: $out$err";
    return $1;
}

# The public key id (16 hex digits) of a key.
sub key_id {
    my ($key) = @_;
    $key =~ /^msgr_\d+_([0-9a-f]{16})_/ or die "not a key: $key";
    return $1;
}


# ---------------------------------------------------------------------------
# nginx

sub _main_conf {
    my ($dir, %o) = @_;
    my $workers = $o{workers} // 2;
    my $conns   = $o{worker_connections} // 512;
    my $main    = $o{main} // '';
    my $events  = $o{events} // '';
    return <<CONF;
daemon on;
master_process on;
worker_processes $workers;
pid $dir/nginx.pid;
error_log $dir/error.log info;
load_module $MODULE;
${\ _san_env_conf()}$main
events {
    worker_connections $conns;
    $events
}
CONF
}

sub _temp_paths {
    my ($dir) = @_;
    return join '', map { "    ${_}_temp_path $dir/${_}_temp;\n" }
        qw(client_body proxy fastcgi uwsgi scgi);
}

sub _nginx_dir {
    my $dir = tempdir('msgr-nginx-XXXXXX', TMPDIR => 1, CLEANUP => 0);
    # workers run as nobody when the master is root: they must reach the
    # temp paths, which the master creates and hands over to them.
    chmod 0755, $dir;
    return $dir;
}

# Writes a whole nginx.conf around an http-level snippet and runs nginx -t;
# returns (exit code, nginx's output, the nginx.conf text tested).
sub nginx_test_config {
    my ($text, %o) = @_;
    my $dir = _nginx_dir();
    my $conf = _main_conf($dir, %o)
             . "http {\n    access_log off;\n" . _temp_paths($dir)
             . $text . "\n}\n";
    _spew("$dir/nginx.conf", $conf);
    my ($rc, $out, $err) = _run(
        cmd => [$NGINX, '-t', '-p', "$dir/", '-c', "$dir/nginx.conf"],
        dir => $dir,
        env => \%NGINX_ENV,
    );
    my $log = _slurp("$dir/error.log");
    remove_tree($dir) unless $ENV{MSGR_KEEP};
    return ($rc, $out . $err . $log, $conf);
}

# nginx_start($pg, pool => 4, queue => 64, timeout => '5s', max_body => '1m',
#             workers => 2, http => 'directives', server => 'directives',
#             location => 'directives', pg => 'conninfo',
#             listen => 'http2' (parameters of the listen line),
#             events => 'use poll;', allow => [qr/expected log line/])
sub nginx_start {
    my ($pg, %o) = @_;
    die "$MODULE is not built (make module)\n" unless -f $MODULE;

    my $dir = _nginx_dir();
    my $self = bless {
        owner   => $$,
        dir     => $dir,
        seq     => ++$SEQ,
        allow   => $o{allow} || [],
        running => 0,
        log     => undef,
    }, 'Msgr::Test::Nginx';
    push @NGINXES, $self;

    my $conninfo = $o{pg} // (ref $pg ? $pg->conninfo : $pg);
    die "nginx_start: no PostgreSQL conninfo\n" unless defined $conninfo;
    (my $ci = $conninfo) =~ s/(["\\])/\\$1/g;

    my $last = '';
    for my $try (1 .. 5) {
        my $port = free_port();
        $self->{port} = $port;

        my $conf = _main_conf($dir, %o) . "http {\n"
            . "    access_log off;\n"
            . _temp_paths($dir)
            . "    msgr_pg \"$ci\";\n"
            . "    msgr_pg_pool " . ($o{pool} // 4) . ";\n"
            . "    msgr_pg_queue " . ($o{queue} // 64) . ";\n"
            . "    msgr_pg_timeout " . ($o{timeout} // '5s') . ";\n"
            . ($o{http} // '') . "\n"
            . "    server {\n"
            . "        listen 127.0.0.1:$port"
            . (defined $o{listen} ? " $o{listen}" : '') . ";\n"
            . ($o{server} // '') . "\n"
            . "        location /msgr/ {\n"
            . "            msgr_api;\n"
            . "            msgr_max_body " . ($o{max_body} // '1m') . ";\n"
            . ($o{location} // '') . "\n"
            . "        }\n"
            . "    }\n"
            . "}\n";
        _spew("$dir/nginx.conf", $conf);

        my ($rc, $out, $err) = _run(
            cmd => [$NGINX, '-p', "$dir/", '-c', "$dir/nginx.conf"],
            dir => $dir,
            env => \%NGINX_ENV,
        );
        if ($rc != 0) {
            $last = "nginx failed to start ($rc): $out$err\n"
                  . _slurp("$dir/error.log");
            # only a lost race for the port is worth another try
            next if $last =~ /Address already in use/;
            last;
        }
        $self->{running} = 1;

        # the master listens before its workers exist: wait for both
        my $want = $o{workers} // 2;
        my $up = sub {
            $self->{pid} //= $self->_read_pid;
            return $self->{pid}
                && $self->worker_pids >= $want
                && Msgr::Test::_port_open($port);
        };
        my $deadline = time + 10;
        until ($up->() || time > $deadline) {
            sleep 0.05;
        }
        if ($up->()) {
            $last = '';
            last;
        }
        $last = "nginx did not answer on port $port:\n"
              . _slurp("$dir/error.log");
        $self->stop;
        last;
    }
    die $last if $last;

    return $self;
}


package Msgr::Test::Nginx;

use Time::HiRes qw(sleep time);

sub port { $_[0]{port} }
sub dir  { $_[0]{dir} }
sub pid  { $_[0]{pid} }

sub url {
    my ($self, $path) = @_;
    $path //= '/';
    return "http://127.0.0.1:$self->{port}$path";
}

sub error_log {
    my ($self) = @_;
    return $self->{log} if defined $self->{log};
    return Msgr::Test::_slurp("$self->{dir}/error.log");
}

sub _read_pid {
    my ($self) = @_;
    my $p = Msgr::Test::_slurp("$self->{dir}/nginx.pid");
    return $p =~ /(\d+)/ ? $1 : undef;
}

# The pids of the worker processes (children of the master) now.
sub worker_pids {
    my ($self) = @_;
    return () unless $self->{pid};
    my @w;
    for my $stat (glob '/proc/[0-9]*/stat') {
        my $s = Msgr::Test::_slurp($stat);
        # pid (comm) state ppid ...
        next unless $s =~ /^(\d+) \(.*\) \S+ (\d+) /s;
        push @w, $1 if $2 == $self->{pid};
    }
    return @w;
}

# req(METHOD => '/path', key => KEY, body => $ref_or_string,
#     headers => {...}, timeout => 10)
sub req {
    my ($self, $method, $path, %o) = @_;
    my %h = %{ $o{headers} || {} };
    my %lc = map { lc($_) => 1 } keys %h;
    $h{Authorization} = "Bearer $o{key}"
        if defined $o{key} && !$lc{authorization};

    my %args = (headers => \%h);
    if (defined $o{body}) {
        if (ref $o{body}) {
            $args{content} = $JSON->encode($o{body});
            $h{'Content-Type'} = 'application/json'
                unless $lc{'content-type'};
        } else {
            $args{content} = $o{body};
        }
    }

    my $ua = HTTP::Tiny->new(
        timeout    => $o{timeout} // 10,
        keep_alive => 0,
        agent      => 'msgr-test/1',
    );
    my $t0 = time;
    my $r = $ua->request($method, $self->url($path), \%args);
    my $res = {
        status  => $r->{status},
        reason  => $r->{reason},
        headers => $r->{headers} || {},
        content => $r->{content} // '',
        elapsed => time - $t0,
    };
    my $ct = $res->{headers}{'content-type'} // '';
    if ($ct =~ m{^application/(?:problem\+)?json\b}i
        && length $res->{content})
    {
        $res->{json} = eval { $JSON->decode($res->{content}) };
    }
    return $res;
}

sub stop {
    my ($self) = @_;
    return $self unless $self->{owner} == $$;

    if ($self->{running}) {
        my $pid = $self->{pid} // $self->_read_pid;
        if ($pid && kill(0, $pid)) {
            my @workers = $self->worker_pids;
            kill 'QUIT', $pid;
            unless (_wait_gone($pid, 10)) {
                Test::More::diag("nginx $pid did not exit on QUIT in 10 s");
                kill 'TERM', $pid;
                unless (_wait_gone($pid, 5)) {
                    kill 'KILL', $pid, @workers;
                    _wait_gone($pid, 5);
                }
            }
            for my $w (@workers) {
                kill 'KILL', $w if kill 0, $w;
            }
        }
        $self->{running} = 0;
    }
    $self->{log} //= Msgr::Test::_slurp("$self->{dir}/error.log");
    if ($self->{dir} && !$ENV{MSGR_KEEP}) {
        File::Path::remove_tree($self->{dir});
    }
    return $self;
}

sub _wait_gone {
    my ($pid, $secs) = @_;
    my $deadline = time + $secs;
    while (time < $deadline) {
        # reap it if it happens to be our child
        waitpid($pid, POSIX::WNOHANG());
        return 1 unless kill 0, $pid;
        my $st = Msgr::Test::_slurp("/proc/$pid/stat");
        return 1 if $st =~ /^\d+ \(.*\) Z /s;
        sleep 0.05;
    }
    return 0;
}

# The lines of this nginx's error log that mean trouble.
sub bad_log_lines {
    my ($self) = @_;
    my @bad;
    for my $line (split /\n/, $self->error_log) {
        next unless grep { $line =~ $_ } @Msgr::Test::BAD_LOG;
        next if grep { $line =~ $_ } @{ $self->{allow} };
        push @bad, $line;
    }
    return @bad;
}


package Msgr::Test;

# Stops every nginx this file started and checks each error log: one test
# per nginx, failing with the offending lines.
sub check_logs {
    return unless _mine();
    return if $LOGS_CHECKED;
    $LOGS_CHECKED = 1;
    my $tb = Test::More->builder;
    for my $n (@NGINXES) {
        $n->stop;
        my @bad = $n->bad_log_lines;
        $tb->ok(!@bad, "error log clean: nginx #$n->{seq} (port $n->{port})")
            or $tb->diag(join "\n", 'offending lines:', @bad);
    }
    if ($SAN) {
        my @r = san_reports();
        $tb->ok(!@r, 'no sanitizer reports')
            or $tb->diag(join "\n", @r);
    }
}

sub finish {
    check_logs();
    Test::More::done_testing(@_);
}

# Test files that call done_testing themselves still get the log check.
{
    no warnings 'redefine';
    my $orig = \&Test::Builder::done_testing;
    *Test::Builder::done_testing = sub {
        check_logs() if _mine() && (@NGINXES || $SAN) && !$LOGS_CHECKED;
        goto &$orig;
    };
}


# ---------------------------------------------------------------------------
# assertions

# problem_ok($res, $status, $name): an RFC 9457 error of that status.
sub problem_ok {
    my ($res, $status, $name) = @_;
    my $tb = Test::More->builder;
    local $Test::Builder::Level = $Test::Builder::Level + 1;
    my $ct = $res->{headers}{'content-type'} // '';
    my $j  = $res->{json};
    my @why;
    push @why, "status $res->{status}, want $status"
        if $res->{status} != $status;
    push @why, "content-type '$ct', want application/problem+json"
        unless $ct =~ m{^application/problem\+json\b}i;
    if (ref $j ne 'HASH') {
        push @why, "body is not a JSON object";
    } else {
        push @why, "body status " . ($j->{status} // 'missing')
                 . ", want $status"
            unless defined $j->{status} && $j->{status} =~ /^\d+$/
                   && $j->{status} == $status;
        for my $f (qw(type title)) {
            push @why, "body has no '$f'"
                unless defined $j->{$f} && length $j->{$f};
        }
    }
    my $ok = $tb->ok(!@why, $name);
    $tb->diag(join("\n", @why, "body: $res->{content}")) unless $ok;
    return $ok;
}

# json_ok($res, $status, $name): a JSON (not problem) answer of that status.
sub json_ok {
    my ($res, $status, $name) = @_;
    my $tb = Test::More->builder;
    local $Test::Builder::Level = $Test::Builder::Level + 1;
    my $ct = $res->{headers}{'content-type'} // '';
    my @why;
    push @why, "status $res->{status}, want $status"
        if $res->{status} != $status;
    push @why, "content-type '$ct', want application/json"
        unless $ct =~ m{^application/json\b}i;
    push @why, "body is not JSON" unless defined $res->{json};
    my $ok = $tb->ok(!@why, $name);
    $tb->diag(join("\n", @why, "body: $res->{content}")) unless $ok;
    return $ok;
}

# Whether a decoded JSON value is a number (not a string) in the JSON text.
sub is_json_number {
    my ($v) = @_;
    return 0 unless defined $v && !ref $v;
    return $JSON->encode($v) =~ /^-?\d/ ? 1 : 0;
}


# ---------------------------------------------------------------------------
# many requests at once

# burst($ngx, count => 200, method => 'GET', path => '/msgr/v1/school',
#       key => KEY, body => '...', type => 'application/json',
#       deadline => 20) -> list of
#   { status, headers, content, error, elapsed } (status 0: no answer)
#
# Opens every connection first (non-blocking), then writes each request as
# soon as its socket is writable, and reads every answer to EOF.
sub burst {
    my ($ngx, %o) = @_;
    my $count  = $o{count} // 100;
    my $method = $o{method} // 'GET';
    my $path   = $o{path} // '/msgr/v1/health';
    my $port   = $ngx->port;
    my $body   = $o{body} // '';

    my $req = "$method $path HTTP/1.0\r\nHost: 127.0.0.1:$port\r\n"
            . "Connection: close\r\n";
    $req .= "Authorization: Bearer $o{key}\r\n" if defined $o{key};
    $req .= "Content-Type: $o{type}\r\n" if defined $o{type};
    $req .= "Content-Length: " . length($body) . "\r\n" if length $body;
    $req .= "\r\n$body";

    my $t0 = time;
    my $deadline = $t0 + ($o{deadline} // 20);
    my (@c, %by_fd);
    for my $i (0 .. $count - 1) {
        my $s = IO::Socket::INET->new(
            PeerAddr => '127.0.0.1',
            PeerPort => $port,
            Proto    => 'tcp',
            Blocking => 0,
        );
        my $c = { i => $i, out => $req, in => '', done => 0, t0 => time };
        if (!$s) {
            $c->{done}  = 1;
            $c->{error} = "connect: $!";
        } else {
            $c->{sock} = $s;
            $by_fd{ fileno $s } = $c;
        }
        push @c, $c;
    }

    my $rsel = IO::Select->new;
    my $wsel = IO::Select->new;
    $wsel->add($_->{sock}) for grep { $_->{sock} } @c;

    while (($rsel->count || $wsel->count) && time < $deadline) {
        my ($r, $w) = IO::Select->select($rsel, $wsel, undef,
                                         $deadline - time);
        for my $s (@{ $w || [] }) {
            my $c = $by_fd{ fileno $s };
            my $n = syswrite($s, $c->{out});
            if (!defined $n) {
                next if $!{EAGAIN} || $!{EWOULDBLOCK} || $!{EINPROGRESS};
                $c->{error} = "write: $!";
                $wsel->remove($s);
                $rsel->add($s);     # an answer may be there all the same
                next;
            }
            substr($c->{out}, 0, $n) = '';
            if (!length $c->{out}) {
                $wsel->remove($s);
                $rsel->add($s);
            }
        }
        for my $s (@{ $r || [] }) {
            my $c = $by_fd{ fileno $s };
            my $n = sysread($s, my $buf, 65536);
            if (!defined $n) {
                next if $!{EAGAIN} || $!{EWOULDBLOCK};
                $c->{error} //= "read: $!";
                $n = 0;
            }
            if ($n == 0) {
                $c->{done}    = 1;
                $c->{elapsed} = time - $c->{t0};
                $rsel->remove($s);
                $wsel->remove($s);
                next;
            }
            $c->{in} .= $buf;
        }
    }

    my @res;
    for my $c (@c) {
        if ($c->{sock}) {
            $rsel->remove($c->{sock});
            $wsel->remove($c->{sock});
            close $c->{sock};
        }
        my $res = { status => 0, headers => {}, content => '',
                    error => $c->{error}, elapsed => $c->{elapsed} };
        if (!$c->{done}) {
            $res->{error} //= 'no complete answer before the deadline';
        }
        if ($c->{in} =~ m{^HTTP/1\.[01] (\d{3})[^\r\n]*\r\n(.*?)\r\n\r\n(.*)\z}s)
        {
            my ($st, $hdr, $content) = ($1, $2, $3);
            $res->{status}  = $c->{done} ? $st : 0;
            $res->{content} = $content;
            for my $l (split /\r\n/, $hdr) {
                $res->{headers}{ lc $1 } = $2 if $l =~ /^([^:]+):\s*(.*)$/;
            }
        }
        push @res, $res;
    }
    return @res;
}


# ---------------------------------------------------------------------------
# teardown

sub _teardown_all {
    return unless _mine();
    for my $n (reverse @NGINXES) {
        eval { $n->stop };
        warn $@ if $@;
    }
    for my $p (reverse @PGS) {
        eval { $p->_teardown };
        warn $@ if $@;
    }
}

for my $sig (qw(INT TERM HUP)) {
    $SIG{$sig} = sub { die "caught SIG$sig\n" } unless $SIG{$sig};
}

END {
    my $status = $?;
    if (_mine()) {
        # a file that never reached done_testing still gets its logs checked
        # when no plan is fixed (it fails anyway for the missing plan)
        if ((@NGINXES || $SAN) && !$LOGS_CHECKED
            && !Test::More->builder->has_plan)
        {
            eval { check_logs() };
        }
        _teardown_all();
    }
    # a report written after the check (a late exit) still fails the file
    if (_mine() && $SAN_DIR) {
        my @r = san_reports();
        if (@r) {
            print STDERR join("\n", 'sanitizer reports:', @r), "\n";
            $status ||= 1;
        } elsif (!$ENV{MSGR_KEEP}) {
            remove_tree($SAN_DIR);
        }
    }
    $? = $status;
}

1;
