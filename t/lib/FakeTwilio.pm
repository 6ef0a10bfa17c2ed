package FakeTwilio;

# A fake Twilio on loopback speaking its REST API's wire format: form posts
# to /2010-04-01/Accounts/{sid}/Messages.json and Calls.json with Basic
# auth, JSON answers ({"sid", "status"} with 201; {"code", "message",
# "status"} for errors), the Idempotency-Key honoured, and signed status
# callbacks (X-Twilio-Signature, Twilio's documented algorithm) to the
# StatusCallback a request named.  Core Perl only.
#
#   my $tw = FakeTwilio->new;                  # a forked server, free port
#   $tw->url;                                  # http://127.0.0.1:PORT
#   my @r = $tw->requests;                     # every request it recorded
#   $tw->set(status => 500);                   # every answer a 500 now
#   my $res = $tw->callback($r[0], 'delivered');   # a signed receipt
#   $tw->stop;
#
# The number a message goes to picks a failure (its last four digits):
#
#   0001  400, code 21211 (not a valid phone number)
#   0002  400, code 21614 (not a mobile number)
#   0003  400, code 21610 (the recipient unsubscribed)
#   0033  400, code 30003 (unreachable: worth another try)
#   0429  429 with Retry-After (retry_after, default 1)
#   0500  500
#   0408  answers after slow seconds (default 3)
#   0444  drops the connection without an answer
#
# Switches (new(...) or set(...)): status => N answers every request with
# N; ignore_keys => 1 takes a repeated Idempotency-Key as a new message;
# callback_first => 'delivered' posts that receipt before answering (the
# sender still waiting); slow, retry_after.

use strict;
use warnings;

use Digest::SHA qw(hmac_sha1);
use Fcntl qw(:flock O_WRONLY O_APPEND O_CREAT);
use File::Temp qw(tempdir);
use HTTP::Tiny;
use IO::Socket::INET;
use JSON::PP;
use MIME::Base64 qw(encode_base64 decode_base64);
use POSIX ();
use Time::HiRes qw(sleep);

use Msgr::Test ();

my $JSON = JSON::PP->new->utf8->canonical;


sub new {
    my ($class, %o) = @_;

    my $self = bless {
        sid   => $o{sid} // 'AC' . ('0123456789abcdef' x 2),
        token => $o{token} // 'fa4e7c0ffee0123456789abcdef01234',
        dir   => tempdir('msgr-twilio-XXXXXX', TMPDIR => 1, CLEANUP => 1),
        owner => $$,
    }, $class;

    delete @o{qw(sid token)};
    $self->set(%o);

    my $listen = IO::Socket::INET->new(
        LocalAddr => '127.0.0.1',
        LocalPort => 0,
        Proto     => 'tcp',
        Listen    => 64,
        ReuseAddr => 1,
    ) or die "FakeTwilio: cannot listen: $!";

    $self->{port} = $listen->sockport;

    my $pid = fork() // die "fork: $!";

    if ($pid == 0) {
        $SIG{CHLD} = 'IGNORE';
        $self->_serve($listen);
        POSIX::_exit(0);
    }

    close $listen;
    $self->{pid} = $pid;

    return $self;
}


sub url   { "http://127.0.0.1:$_[0]{port}" }
sub sid   { $_[0]{sid} }
sub token { $_[0]{token} }


# set(status => 500, ...): switches, read by the server for every request
sub set {
    my ($self, %o) = @_;

    my $f = "$self->{dir}/switches.json";
    my $cur = -f $f ? $JSON->decode(Msgr::Test::slurp($f)) : {};
    $cur->{$_} = $o{$_} for keys %o;
    Msgr::Test::spew("$f.new", $JSON->encode($cur));
    rename("$f.new", $f) or die "rename: $!";

    return $self;
}


# every request recorded, oldest first: {method, path, auth_ok, headers
# (lower-case names), params, status (answered), sid}
sub requests {
    my ($self) = @_;
    my $f = "$self->{dir}/requests.jsonl";
    return () unless -f $f;
    return map { $JSON->decode($_) } split /\n/, Msgr::Test::slurp($f);
}

# requests answered from an earlier one with the same Idempotency-Key
sub replays {
    my ($self) = @_;
    my $f = "$self->{dir}/replays.jsonl";
    return () unless -f $f;
    return map { $JSON->decode($_) } split /\n/, Msgr::Test::slurp($f);
}

sub clear {
    my ($self) = @_;
    unlink "$self->{dir}/requests.jsonl", "$self->{dir}/replays.jsonl";
}


# Twilio's signature: base64(HMAC-SHA1(token, URL . name1 . value1 ...))
# over the POST parameters sorted by name
sub signature {
    my ($token, $url, $params) = @_;

    my $data = $url;
    for my $k (sort keys %$params) {
        $data .= $k . $params->{$k};
    }
    utf8::encode($data);

    return encode_base64(hmac_sha1($data, $token), '');
}


# The receipt Twilio would post for a recorded request: its
# StatusCallback, signed.  ($request, 'delivered' | 'undelivered' |
# 'failed' | 'completed' | 'busy' | 'no-answer', error_code => 30003,
# token => 'wrong', url => 'another', unsigned => 1, params => {...})
# returns HTTP::Tiny's answer.
sub callback {
    my ($self, $req, $status, %o) = @_;
    return _callback($self->{sid}, $o{token} // $self->{token}, $req,
                     $status, %o);
}

sub _callback {
    my ($sid, $token, $req, $status, %o) = @_;

    my $p = $req->{params};
    my $url = $o{url} // $p->{StatusCallback}
        // die "the request named no StatusCallback";
    my $call = $req->{path} =~ m{/Calls\.json$};

    my %form = (
        AccountSid => $sid,
        ApiVersion => '2010-04-01',
        From       => $p->{From},
        To         => $p->{To},
    );

    if ($call) {
        %form = (%form, CallSid => $req->{sid}, CallStatus => $status,
                 Direction => 'outbound-api', CallDuration => 7);
    } else {
        %form = (%form, MessageSid => $req->{sid}, SmsSid => $req->{sid},
                 MessageStatus => $status, SmsStatus => $status);
        $form{ErrorCode} = $o{error_code} if defined $o{error_code};
    }

    %form = (%form, %{ $o{params} || {} });

    my %h = ('Content-Type' => 'application/x-www-form-urlencoded');
    $h{'X-Twilio-Signature'} = signature($token, $url, \%form)
        unless $o{unsigned};
    $h{'X-Twilio-Signature'} = $o{signature} if defined $o{signature};

    my $post = $o{post_url} // $url;
    return HTTP::Tiny->new(timeout => 10)->request(POST => $post, {
        headers => \%h,
        content => HTTP::Tiny->new->www_form_urlencode(\%form),
    });
}


sub stop {
    my ($self) = @_;
    return unless $self->{pid} && $$ == $self->{owner};
    kill 'TERM', $self->{pid};
    waitpid($self->{pid}, 0);
    delete $self->{pid};
}

sub DESTROY { $_[0]->stop }


# ---------------------------------------------------------------------------
# the server: a child process per connection

sub _serve {
    my ($self, $listen) = @_;

    $SIG{TERM} = sub { POSIX::_exit(0) };

    while (1) {
        my $c = $listen->accept or next;
        my $pid = fork();

        if (defined $pid && $pid == 0) {
            close $listen;
            eval { $self->_connection($c) };
            POSIX::_exit(0);
        }

        close $c;
    }
}


sub _read_request {
    my ($c) = @_;

    my $head = '';
    while ($head !~ /\r\n\r\n/) {
        my $n = sysread($c, $head, 4096, length $head);
        return undef unless $n;
    }

    my ($lines, $body) = split /\r\n\r\n/, $head, 2;
    my ($line, @h) = split /\r\n/, $lines;
    my ($method, $target) = split / /, $line;

    my %h;
    for (@h) {
        my ($k, $v) = /^([^:]+):\s*(.*)$/ or next;
        $h{lc $k} = $v;
    }

    if (($h{expect} // '') =~ /100-continue/i) {
        syswrite($c, "HTTP/1.1 100 Continue\r\n\r\n");
    }

    my $len = $h{'content-length'} // 0;
    while (length $body < $len) {
        my $n = sysread($c, $body, $len - length $body, length $body);
        return undef unless $n;
    }

    return { method => $method, target => $target, headers => \%h,
             body => $body };
}


sub _form {
    my ($s) = @_;
    my %p;
    for my $pair (split /&/, $s // '') {
        my ($k, $v) = split /=/, $pair, 2;
        for ($k, $v) {
            $_ //= '';
            tr/+/ /;
            s/%([0-9A-Fa-f]{2})/chr hex $1/ge;
            utf8::decode($_);
        }
        $p{$k} = $v;
    }
    return \%p;
}


sub _answer {
    my ($c, $status, $body, %h) = @_;
    my $text = { 200 => 'OK', 201 => 'Created', 400 => 'Bad Request',
                 401 => 'Unauthorized', 404 => 'Not Found',
                 429 => 'Too Many Requests',
                 500 => 'Internal Server Error' }->{$status} // 'Error';
    my $json = $JSON->encode($body);
    my $head = "HTTP/1.1 $status $text\r\nContent-Type: application/json\r\n"
             . "Content-Length: " . length($json) . "\r\nConnection: close\r\n";
    $head .= "$_: $h{$_}\r\n" for sort keys %h;
    syswrite($c, "$head\r\n$json");
}


my %FAILS = (
    '0001' => [400, 21211, "The 'To' number %s is not a valid phone number."],
    '0002' => [400, 21614, "'To' number %s is not a valid mobile number"],
    '0003' => [400, 21610, 'Attempt to send to unsubscribed recipient'],
    '0033' => [400, 30003, 'Unreachable destination handset'],
);


sub _connection {
    my ($self, $c) = @_;

    my $req = _read_request($c) or return;
    my $sw = $JSON->decode(Msgr::Test::slurp("$self->{dir}/switches.json"));
    my $p = _form($req->{body});
    my $to = $p->{To} // '';
    my ($path) = split /\?/, $req->{target};

    my ($user, $pass) = split /:/,
        decode_base64((($req->{headers}{authorization} // '')
                       =~ /^Basic\s+(\S+)/)[0] // ''), 2;
    my $auth_ok = defined $pass && $user eq $self->{sid}
                  && $pass eq $self->{token};

    my %rec = (method => $req->{method}, path => $path,
               headers => $req->{headers}, params => $p,
               auth_ok => $auth_ok ? 1 : 0);

    my ($kind) = $path
        =~ m{^/2010-04-01/Accounts/\Q$self->{sid}\E/(Messages|Calls)\.json$};

    # the failures picked by a switch or by the number

    my ($status, $body, %h);

    if ($to =~ /0444$/) {
        _record($self, \%rec, 'dropped');
        return;
    }

    if ($to =~ /0408$/) {
        sleep($sw->{slow} // 3);
    }

    if (!$auth_ok) {
        ($status, $body) = (401, { code => 20003, status => 401,
                                   message => 'Authenticate' });
    } elsif (!$kind || $req->{method} ne 'POST') {
        ($status, $body) = (404, { code => 20404, status => 404,
                                   message => 'The requested resource was '
                                              . 'not found' });
    } elsif ($sw->{status}) {
        ($status, $body) = ($sw->{status}, { code => 20500,
                                             status => $sw->{status},
                                             message => 'An internal '
                                                        . 'server error' });
    } elsif ($to =~ /0500$/) {
        ($status, $body) = (500, { code => 20500, status => 500,
                                   message => 'An internal server error' });
    } elsif ($to =~ /0429$/) {
        ($status, $body) = (429, { code => 20429, status => 429,
                                   message => 'Too Many Requests' });
        %h = ('Retry-After' => $sw->{retry_after} // 1);
    } elsif ($to =~ /(\d{4})$/ && $FAILS{$1}) {
        my $f = $FAILS{$1};
        ($status, $body) = ($f->[0], { code => $f->[1], status => $f->[0],
                                       message => $f->[2] =~ /%s/
                                                  ? sprintf($f->[2], $to)
                                                  : $f->[2] });
    }

    # the idempotency key: a repeated one gets the first answer again

    my $key = $req->{headers}{'idempotency-key'}
              // $req->{headers}{'i-twilio-idempotency-token'};
    $key = undef if defined $key && $key !~ /^[\w-]{1,100}$/;

    open(my $lock, '>>', "$self->{dir}/lock") or die "lock: $!";
    flock($lock, LOCK_EX);

    if (!$status && defined $key && !$sw->{ignore_keys}
        && -f "$self->{dir}/key-$key")
    {
        my $first = $JSON->decode(
            Msgr::Test::slurp("$self->{dir}/key-$key"));
        _append("$self->{dir}/replays.jsonl",
                $JSON->encode({ %rec, sid => $first->{sid} }));
        close $lock;
        _answer($c, 201, $first);
        return;
    }

    if (!$status) {
        my $sid = ($kind eq 'Calls' ? 'CA' : 'SM')
                  . unpack('H*', pack('N', $$)) . sprintf('%08x', time)
                  . sprintf('%016x', int(rand(2**31)) * 2**20
                                     + int(rand(2**20)));
        $body = { sid => $sid, account_sid => $self->{sid},
                  to => $to, from => $p->{From},
                  status => $kind eq 'Calls' ? 'queued' : 'accepted' };
        $status = 201;
        $rec{sid} = $sid;
        Msgr::Test::spew("$self->{dir}/key-$key", $JSON->encode($body))
            if defined $key;
    }

    _record($self, \%rec, $status);
    close $lock;

    if ($status == 201 && $sw->{callback_first}) {
        _callback($self->{sid}, $self->{token}, \%rec, $sw->{callback_first});
    }

    _answer($c, $status, $body, %h);
}


sub _record {
    my ($self, $rec, $status) = @_;
    $rec->{status} = $status;
    _append("$self->{dir}/requests.jsonl", $JSON->encode($rec));
}


sub _append {
    my ($f, $line) = @_;
    sysopen(my $fh, $f, O_WRONLY | O_APPEND | O_CREAT) or die "$f: $!";
    flock($fh, LOCK_EX);
    syswrite($fh, "$line\n");
    close $fh;
}


1;
