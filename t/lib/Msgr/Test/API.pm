package Msgr::Test::API;

# What the API test files share on top of Msgr::Test: one JSON codec,
# requests to the nginx a file chose with use_nginx(), MIS syncs, the ids of
# the MIS's people, app tokens, and clients pinned to each worker.  Core
# Perl only.
#
#   use lib 't/lib'; use Msgr::Test; use Msgr::Test::API;
#   my ($a, $b, $a_admin, $a_staff, $a_int, $b_admin, $b_int)
#       = two_schools($pg);
#   my $ngx = api_nginx($pg);        # 2 workers, X-Worker: pid, chosen
#   # or: use_nginx(Msgr::Test::nginx_start(...), prefix => '/msgr/v1');
#   my $r   = get($key, '/msgr/v1/school');
#   my $out = sync_json($int, $snapshot);

use strict;
use warnings;

use Exporter qw(import);
use HTTP::Tiny;
use JSON::PP;
use Test::More ();

use Msgr::Test ();

our @EXPORT = qw($J $T $F one_school two_schools api_nginx use_nginx
                 clone get get_json sync sync_json set_contacts_everywhere
                 set_everywhere
                 errors_ok mis_rows_sql ids_by_mis issue by_worker
                 worker_clients ua_req ua_status message_ok
                 sender_ok);
our @EXPORT_OK = qw(req json_req);

our $J = JSON::PP->new->utf8->canonical->allow_nonref;
our $T = JSON::PP::true;
our $F = JSON::PP::false;

our $V        = '/msgr/v1';
our $TOKEN_RE = qr/^msgrapp_(\d+)_([0-9a-f]{16})_([A-Za-z0-9_-]{43})$/;

# The location snippet that makes every answer say which worker gave it.
our $WHO = '    add_header X-Worker $pid always;';

my $NGX;            # the nginx get(), sync() ... talk to
my $PREFIX = '';    # put before the paths given to get() and get_json()
my @WORKERS;        # its worker pids, sorted, when it was chosen


# Alpha Academy with its keys: ($id, admin, staff and integrator keys).
sub one_school {
    my ($pg) = @_;
    my $id = Msgr::Test::school($pg, 'Alpha Academy');
    return ($id, map { Msgr::Test::key($pg, $id, $_) }
                 qw(admin staff integrator));
}

# Alpha Academy and Beta Primary with their keys: ($a_id, $b_id, Alpha's
# admin, staff and integrator keys, Beta's admin and integrator keys).
sub two_schools {
    my ($pg) = @_;
    my $a = Msgr::Test::school($pg, 'Alpha Academy');
    my $b = Msgr::Test::school($pg, 'Beta Primary');
    return ($a, $b,
            Msgr::Test::key($pg, $a, 'admin'),
            Msgr::Test::key($pg, $a, 'staff'),
            Msgr::Test::key($pg, $a, 'integrator'),
            Msgr::Test::key($pg, $b, 'admin'),
            Msgr::Test::key($pg, $b, 'integrator'));
}

# use_nginx($ngx, prefix => '/msgr/v1/')
sub use_nginx {
    my ($ngx, %o) = @_;
    $NGX     = $ngx;
    $PREFIX  = $o{prefix} // '';
    @WORKERS = sort $ngx->worker_pids;
    return $ngx;
}

# An nginx with 2 workers, each answer saying which worker gave it (more
# nginx_start options in %o), chosen with use_nginx().
sub api_nginx {
    my ($pg, %o) = @_;
    return use_nginx(Msgr::Test::nginx_start($pg, workers => 2,
                                             location => $WHO, %o));
}

sub clone { $J->decode($J->encode($_[0])) }

# req($method, $path, $key, $body, %o): the prefix, then $path; $body (a
# reference is sent as JSON) and %o as Msgr::Test::Nginx::req takes them.
sub req {
    my ($method, $path, $key, $body, %o) = @_;
    return $NGX->req($method => "$PREFIX$path", key => $key,
                     (defined $body ? (body => $body) : ()), %o);
}

# The same, but a body always goes with a Content-Type: the one in
# headers => {...}, else type => '...', else application/json.
sub json_req {
    my ($method, $path, $key, $body, %o) = @_;
    my %h = %{ $o{headers} || {} };
    if (defined $body && !exists $h{'Content-Type'}) {
        $h{'Content-Type'} = $o{type} // 'application/json';
    }
    return $NGX->req($method => "$PREFIX$path", key => $key,
                     (defined $body
                      ? (body => ref $body ? $J->encode($body) : $body)
                      : ()),
                     headers => \%h);
}

# message_ok($key, $body, $name): POST /messages answers 201; its id
sub message_ok {
    my ($key, $body, $name) = @_;
    local $Test::Builder::Level = $Test::Builder::Level + 1;
    my $r = json_req(POST => '/messages', $key, $body);
    Msgr::Test::json_ok($r, 201, "$name: sent")
        or Test::More::diag($r->{content});
    return $r->{json}{id};
}

# sender_ok($pg, $conf, $name): msgr-sender drains the outbox with that
# configuration and exits 0; what it logged
sub sender_ok {
    my ($pg, $conf, $name) = @_;
    local $Test::Builder::Level = $Test::Builder::Level + 1;
    my ($rc, $out, $err) = Msgr::Test::sender($pg, $conf);
    Test::More::is($rc, 0, "$name: msgr-sender drains and exits 0")
        or Test::More::diag($err);
    return $err;
}

# get($key, $path, %headers): the answer, as Msgr::Test::Nginx::req's.
sub get {
    my ($key, $path, %h) = @_;
    return $NGX->req(GET => "$PREFIX$path", key => $key, headers => \%h);
}

# The JSON object a GET answers; dies on anything but a 200 with one.
sub get_json {
    my ($key, $path) = @_;
    my $r = get($key, $path);
    die "GET $path: $r->{status} $r->{content}\n"
        unless $r->{status} == 200 && ref $r->{json} eq 'HASH';
    return $r->{json};
}

# POST /v1/mis/sync; the answer whatever it is.
sub sync {
    my ($key, $snap, %o) = @_;
    return $NGX->req(POST => "$V/mis/sync", key => $key, body => $snap, %o);
}

# POST /v1/mis/sync that must succeed; its JSON body.
sub sync_json {
    my ($key, $snap) = @_;
    my $r = $NGX->req(POST => "$V/mis/sync", key => $key, body => $snap);
    die "sync: $r->{status} $r->{content}\n" unless $r->{status} == 200;
    return $r->{json};
}

# PATCHes one setting of $tab with $admin, then reads the tab (with
# reader => $key, else $admin) until every worker has answered three times,
# and tests that every worker answered and every answer has the new value.
sub set_everywhere {
    my ($admin, $tab, $field, $value, %o) = @_;
    my $reader = $o{reader} // $admin;
    local $Test::Builder::Level = $Test::Builder::Level + 1;
    my $r = $NGX->req(PATCH => "$V/settings/$tab", key => $admin,
                      body => $J->encode({ $field => $value }),
                      headers => { 'Content-Type'
                                   => 'application/merge-patch+json' });
    Msgr::Test::json_ok($r, 200, "PATCH $tab.$field = "
                                 . $J->encode($value));
    # every worker has it before we go on
    my (%by, @bad);
    for (1 .. 300) {
        my $g = $NGX->req(GET => "$V/settings/$tab", key => $reader);
        my $w = $g->{headers}{'x-worker'} // '?';
        $by{$w}++;
        push @bad, "worker $w: $g->{status} $g->{content}"
            unless $g->{status} == 200 && ref $g->{json} eq 'HASH'
                   && $J->encode($g->{json}{$field}) eq $J->encode($value);
        last unless grep { ($by{$_} // 0) < 3 } @WORKERS;
    }
    Test::More::is_deeply([ sort keys %by ], \@WORKERS,
              "$tab.$field: read on every worker (@WORKERS)");
    Test::More::is(scalar @bad, 0,
                   "$tab.$field reads back as " . $J->encode($value))
        or Test::More::diag(join "\n", @bad);
}

# set_everywhere() for the contacts tab
sub set_contacts_everywhere {
    my ($admin, $field, $value, %o) = @_;
    local $Test::Builder::Level = $Test::Builder::Level + 1;
    set_everywhere($admin, 'contacts', $field, $value, %o);
}

# A problem+json answer $status whose errors list names exactly @$fields,
# each error with a message; the errors list ([] when there is none).
sub errors_ok {
    my ($r, $status, $fields, $name) = @_;
    local $Test::Builder::Level = $Test::Builder::Level + 1;
    Msgr::Test::problem_ok($r, $status, "$name: $status problem+json");
    my $errs = ref $r->{json} eq 'HASH' ? $r->{json}{errors} : undef;
    if (ref $errs ne 'ARRAY') {
        Test::More::fail("$name: an errors list");
        Test::More::diag("body: $r->{content}");
        return [];
    }
    my @got = sort map { ref $_ eq 'HASH' ? $_->{field} // '(none)' : '?' }
              @$errs;
    Test::More::is_deeply(\@got, [ sort @$fields ],
                          "$name: errors name @$fields")
        or Test::More::diag("body: $r->{content}");
    my @bad = grep { ref $_ ne 'HASH' || !defined $_->{message}
                     || ref $_->{message} || $_->{message} !~ /\S/ } @$errs;
    Test::More::ok(!@bad, "$name: every error has a message")
        or Test::More::diag("body: $r->{content}");
    return $errs;
}

# The queries that show school $s's MIS people and groups row by row
# (students, contacts, staff, groups), for comparing the tables before and
# after.
sub mis_rows_sql {
    my ($s) = @_;
    return (
        "SELECT mis_id, first_name, last_name, reg_group, year, status,
                leaving_date, created_at, updated_at, retired_at
           FROM msgr_students WHERE school_id = $s ORDER BY mis_id",
        "SELECT mis_id, title, first_name, last_name, home_phone,
                work_phone, mobile_phone, email, language, phone_problems,
                overrides, created_at, updated_at, retired_at
           FROM msgr_contacts WHERE school_id = $s ORDER BY mis_id",
        "SELECT mis_id, title, first_name, last_name, work_phone,
                mobile_phone, email, phone_problems, created_at, updated_at,
                retired_at
           FROM msgr_staff WHERE school_id = $s ORDER BY mis_id",
        "SELECT mis_id, name, type, created_at, updated_at, retired_at
           FROM msgr_groups WHERE school_id = $s ORDER BY mis_id",
    );
}

# { mis_id => id } of every item of GET /v1/$what (students, contacts, ...).
sub ids_by_mis {
    my ($key, $what) = @_;
    my $r = $NGX->req(GET => "$V/$what?limit=200", key => $key);
    die "GET /$what: $r->{status} $r->{content}\n"
        unless $r->{status} == 200 && ref $r->{json} eq 'HASH';
    return { map { $_->{mis_id} => $_->{id} } @{ $r->{json}{items} } };
}

# A new app token for a contact, issued with $key (a label if given).
sub issue {
    my ($key, $contact, $label) = @_;
    my $r = $NGX->req(POST => "$V/contacts/$contact/app-tokens", key => $key,
                      body => defined $label ? { label => $label } : {});
    die "issuing a token for contact $contact: $r->{status} $r->{content}\n"
        unless $r->{status} == 201 && ($r->{json}{token} // '') =~ $TOKEN_RE;
    return $r->{json}{token};
}

# GETs $path on nginx $n (%o as its req takes them) until each of its
# workers has answered $each times, or $tries times in all: { pid =>
# [answers] }, the answers without an X-Worker header under '?'.
sub by_worker {
    my ($n, $path, $each, $tries, %o) = @_;
    my @want = $n->worker_pids;
    my %by;
    for (1 .. $tries) {
        my $r = $n->req(GET => $path, %o);
        push @{ $by{ $r->{headers}{'x-worker'} // '?' } }, $r;
        last unless grep { @{ $by{$_} || [] } < $each } @want;
    }
    return \%by;
}

# HTTP::Tiny clients of nginx $n, each holding one keep-alive connection,
# until there is one on each worker: { pid => client }.  They first ask
# $path with $key.
sub worker_clients {
    my ($n, $key, $path) = @_;
    my %by_pid;
    my @want = $n->worker_pids;
    for (1 .. 300) {
        my $ua = HTTP::Tiny->new(keep_alive => 1, timeout => 10,
                                 agent => 'msgr-test/1');
        my $res = $ua->request(GET => $n->url($path),
                               { headers => { Authorization
                                              => "Bearer $key" } });
        my $pid = $res->{headers}{'x-worker'} // '';
        die "GET $path: $res->{status} $res->{content}\n"
            unless $res->{status} == 200 && $pid =~ /^\d+$/;
        $by_pid{$pid} //= $ua;
        last if keys %by_pid >= @want;
    }
    return \%by_pid;
}

# A request on a client of worker_clients(); the answer as $n->req's.
sub ua_req {
    my ($n, $ua, $method, $path, $key, $body) = @_;
    my %h = (Authorization => "Bearer $key");
    my %args = (headers => \%h);
    if (defined $body) {
        $args{content} = $J->encode($body);
        $h{'Content-Type'} = 'application/json';
    }
    my $r = $ua->request($method, $n->url($path), \%args);
    my $res = { status => $r->{status}, headers => $r->{headers} || {},
                content => $r->{content} // '' };
    if (($res->{headers}{'content-type'} // '')
            =~ m{^application/(?:problem\+)?json\b} && length $res->{content})
    {
        $res->{json} = eval { $J->decode($res->{content}) };
    }
    return $res;
}

# The same, for just (status, worker pid).
sub ua_status {
    my $r = ua_req(@_);
    return ($r->{status}, $r->{headers}{'x-worker'} // '?');
}

1;
