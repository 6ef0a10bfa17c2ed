package Msgr::Test::Sender;

# What the msgr-sender test files share on top of Msgr::Test::API (which
# has message_ok and sender_ok): Alpha's class 7B (Amy Jones and her mother
# Jane, Cal Brown and his father Kim, each parent with a mobile and an
# email), and a fake provider run as a program on a loopback port.  Core
# Perl only.
#
#   use lib 't/lib'; use Msgr::Test; use Msgr::Test::API;
#   use Msgr::Test::Sender;
#   my $groups = class_7b($int, $staff);   # mis_id => group id
#   my $fake = fake_start([$cmd, ...], $port, $log);  ...  fake_stop($fake);

use strict;
use warnings;

use Exporter qw(import);
use JSON::PP;
use POSIX ();

use Msgr::Test ();
use Msgr::Test::API qw(sync_json ids_by_mis);

our @EXPORT = qw(class_7b fake_start fake_stop);

my %FAKES;

# Syncs class 7B, and the students, contacts and groups in %more too;
# returns the groups' ids by mis_id (as $key reads them).
sub class_7b {
    my ($int, $key, %more) = @_;
    my $contact = sub {
        { mis_id => $_[0], priority => 1,
          correspondence => JSON::PP::true }
    };
    sync_json($int, {
        students => [
            { mis_id => 'S1', first_name => 'Amy', last_name => 'Jones',
              reg_group => '7B', year => '7', status => 'on_roll',
              contacts => [ $contact->('C1') ] },
            { mis_id => 'S2', first_name => 'Cal', last_name => 'Brown',
              reg_group => '7B', year => '7', status => 'on_roll',
              contacts => [ $contact->('C2') ] },
            @{ $more{students} || [] },
        ],
        contacts => [
            { mis_id => 'C1', title => 'Mrs', first_name => 'Jane',
              last_name => 'Jones', mobile_phone => '07700 900101',
              email => 'jane@example.org' },
            { mis_id => 'C2', title => 'Mr', first_name => 'Kim',
              last_name => 'Brown', mobile_phone => '07700 900102',
              email => 'kim@example.org' },
            @{ $more{contacts} || [] },
        ],
        groups => [ { mis_id => 'K7B', name => '7B', type => 'class',
                      students => [qw(S1 S2)] },
                    @{ $more{groups} || [] } ],
    });
    return ids_by_mis($key, 'groups');
}

# Runs a fake provider (its output to $log, else discarded) and waits up
# to 10 seconds for it to listen on $port; {pid, port}.
sub fake_start {
    my ($cmd, $port, $log) = @_;
    my $pid = fork() // die "fork: $!";
    if ($pid == 0) {
        open(STDOUT, '>', $log // '/dev/null');
        open(STDERR, '>&', \*STDOUT);
        exec { $cmd->[0] } @$cmd or POSIX::_exit(127);
    }
    $FAKES{$pid} = 1;
    for (1 .. 100) {
        return { pid => $pid, port => $port }
            if Msgr::Test::_port_open($port);
        last if waitpid($pid, POSIX::WNOHANG()) == $pid;
        select(undef, undef, undef, 0.1);
    }
    delete $FAKES{$pid};
    kill 'TERM', $pid;
    die "@$cmd did not listen on $port"
        . ($log ? ":\n" . Msgr::Test::slurp($log) : "\n");
}

sub fake_stop {
    my ($fake) = @_;
    return unless delete $FAKES{ $fake->{pid} };
    kill 'TERM', $fake->{pid};
    waitpid($fake->{pid}, 0);
}

END { kill 'TERM', $_ for keys %FAKES; }

1;
