#!/usr/bin/perl

# The latency of one GET, asked again and again over several keep-alive
# connections in turn, at a steady pace (not as fast as it can: a probe,
# not a load):
#
#   perl bench/lib/latency.pl URL KEY [--conns N] [--interval SECS]
#                             [--seconds SECS] [--until FILE]
#                             [--ready FILE]
#
# Stops after --seconds (default 3), or as soon as FILE exists when --until
# is given (or when FILE's directory is gone).  --ready: a file created once every connection is open and the
# timing begins.  The connections stay open the whole time, so a worker whose
# event loop is busy shows in the figures instead of being avoided by new
# connections going to the other one.  Prints one line:
#
#   REQUESTS NON200 MEDIAN_MS P99_MS MAX_MS WORKERS
#
# WORKERS: how many nginx processes the connections ended on (from ss;
# "?" without it).  Core Perl only.

use strict;
use warnings;

use File::Basename qw(dirname);
use Getopt::Long;
use HTTP::Tiny;
use Time::HiRes qw(sleep time);

my $conns    = 8;
my $interval = 0.002;
my $seconds  = 3;
my ($until, $ready);

GetOptions('conns=i' => \$conns, 'interval=f' => \$interval,
           'seconds=f' => \$seconds, 'until=s' => \$until,
           'ready=s' => \$ready)
    && @ARGV == 2 && $conns > 0
    or die "usage: $0 URL KEY [--conns N] [--interval SECS]"
         . " [--seconds SECS] [--until FILE] [--ready FILE]\n";

my ($url, $key) = @ARGV;
my %hdr = (headers => { Authorization => "Bearer $key" });

my @ua = map { HTTP::Tiny->new(keep_alive => 1, timeout => 30) } 1 .. $conns;

# open every connection first, before anything is timed
for my $ua (@ua) {
    my $r = $ua->get($url, \%hdr);
    die "latency: GET $url: $r->{status} $r->{content}\n"
        unless $r->{status} == 200;
}

my $workers = workers($url);

if (defined $ready) {
    open(my $fh, '>', $ready) or die "latency: $ready: $!\n";
    close $fh;
}

my (@ms, $bad);
$bad = 0;
my $end  = time + $seconds;
my $next = time;
my $i    = 0;

while (1) {
    last if defined $until ? (-e $until || !-d dirname($until))
                           : time >= $end;

    my $t0 = time;
    my $r  = $ua[$i++ % $conns]->get($url, \%hdr);
    push @ms, (time - $t0) * 1000;
    $bad++ unless $r->{status} == 200;

    $next += $interval;
    my $wait = $next - time;
    if ($wait > 0) {
        sleep $wait;
    } else {
        $next = time;
    }
}

@ms = sort { $a <=> $b } @ms;
printf "%d %d %.2f %.2f %.2f %s\n", scalar @ms, $bad, pct(50), pct(99),
    @ms ? $ms[-1] : 0, $workers;


sub pct {
    my ($p) = @_;
    return 0 unless @ms;
    my $k = int($p / 100 * @ms + 0.999999) - 1;
    $k = 0 if $k < 0;
    return $ms[$k];
}


# The processes holding the server side of our connections.
sub workers {
    my ($u) = @_;
    my ($port) = $u =~ m{^http://[^/:]+:(\d+)} or return '?';
    my $out = `ss -tnpH state established '( sport = :$port )' 2>/dev/null`;
    return '?' if $? != 0 || $out eq '';
    my %pid;
    $pid{$1} = 1 while $out =~ /pid=(\d+)/g;
    return %pid ? scalar keys %pid : '?';
}
