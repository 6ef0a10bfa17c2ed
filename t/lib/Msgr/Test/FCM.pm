package Msgr::Test::FCM;

# A fake Firebase Cloud Messaging (t/lib/fake_fcm.py) on a free loopback
# port, with a throwaway service account: an RSA key made by openssl and
# the JSON key file Google issues, its token_uri pointing at the fake.
#
#   my $fcm = Msgr::Test::FCM->start;
#   $fcm->service_account;   # the JSON file for type = fcm
#   $fcm->url;               # base_url
#   $fcm->requests;          # what it received: [{kind => 'token'|'send'}]
#   $fcm->stop;              # also at exit

use strict;
use warnings;

use File::Temp qw(tempdir);
use JSON::PP;
use POSIX qw(:sys_wait_h);
use Time::HiRes qw(sleep);

use Msgr::Test;

my @STARTED;

sub _openssl {
    my (@args) = @_;
    my ($rc, $out, $err) = Msgr::Test::_run(cmd => ['openssl', @args]);
    die "openssl @args: $err\n" if $rc;
    return $out;
}

sub start {
    my ($class, %o) = @_;
    my $dir = tempdir('msgr-fcm-XXXXXX', TMPDIR => 1, CLEANUP => 1);
    my $port = Msgr::Test::free_port();
    my $self = bless { dir => $dir, port => $port,
                       project => $o{project} // 'msgr-test',
                       log => "$dir/requests.jsonl" }, $class;

    _openssl(qw(genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048
                -out), "$dir/key.pem");
    _openssl('pkey', '-in', "$dir/key.pem", '-pubout', '-out',
             "$dir/public.pem");

    Msgr::Test::spew("$dir/service-account.json", JSON::PP->new->canonical
        ->pretty->encode({
            type => 'service_account',
            project_id => $self->{project},
            private_key_id => 'test-key-1',
            private_key => Msgr::Test::slurp("$dir/key.pem"),
            client_email => "msgr-sender\@$self->{project}"
                            . '.iam.gserviceaccount.com',
            client_id => '1',
            token_uri => $self->url . '/token',
        }));

    Msgr::Test::spew($self->{log}, '');

    my $pid = fork() // die "fork: $!";
    if ($pid == 0) {
        open(STDIN, '<', '/dev/null');
        open(STDOUT, '>', "$dir/fake.log");
        open(STDERR, '>&', \*STDOUT);
        exec('python3', "$Msgr::Test::ROOT/t/lib/fake_fcm.py",
             '--port', $port, '--public-key', "$dir/public.pem",
             '--log', $self->{log}, '--project', $self->{project})
            or POSIX::_exit(127);
    }
    $self->{pid} = $pid;
    $self->{owner} = $$;
    push @STARTED, $self;

    for (1 .. 100) {
        return $self if Msgr::Test::_port_open($port);
        die "the fake FCM did not start: "
            . Msgr::Test::slurp("$dir/fake.log")
            if waitpid($pid, WNOHANG) == $pid;
        sleep 0.05;
    }
    die "the fake FCM did not listen on $port\n";
}

sub url             { "http://127.0.0.1:$_[0]{port}" }
sub project         { $_[0]{project} }
sub service_account { "$_[0]{dir}/service-account.json" }
sub public_key      { "$_[0]{dir}/public.pem" }
sub dir             { $_[0]{dir} }

# every request received so far, in order
sub requests {
    my ($self) = @_;
    return [ map { decode_json($_) } grep { /\S/ }
             split /\n/, Msgr::Test::slurp($self->{log}) ];
}

sub stop {
    my ($self) = @_;
    return unless $self->{pid} && $self->{owner} == $$;
    kill 'TERM', $self->{pid};
    waitpid($self->{pid}, 0);
    delete $self->{pid};
}

END {
    my $status = $?;
    $_->stop for grep { $_->{pid} } @STARTED;
    $? = $status;
}

1;
