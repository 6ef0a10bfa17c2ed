#!/usr/bin/perl

# msgr-sender's smtp provider against an SMTP server on loopback
# (t/lib/smtp_sink.py): each parent gets one email, to their address, from
# the configured sender in the school's name, replies to the school's
# email, the subject and the text exactly as rendered, an HTML part, the
# delivery id in the Message-ID; a 451 is tried again later, a 550 fails
# for good naming it, a refused login and a server that is down are tried
# again; AUTH and STARTTLS are used when configured.

use strict;
use warnings;
use utf8;

use Encode qw(decode decode_utf8 encode_utf8);
use File::Temp qw(tempdir);
use JSON::PP;
use MIME::Base64 ();
use MIME::QuotedPrint qw(decode_qp);
use Test::More;

use lib 't/lib';
use Msgr::Test;
use Msgr::Test::API qw(:DEFAULT req json_req);
use Msgr::Test::Sender;

my $PYTHON = '/usr/bin/python3';

plan skip_all => 'python3-aiosmtpd is not installed (make deps)'
    unless system($PYTHON, '-c', 'import aiosmtpd') == 0;

my $V = '/msgr/v1';

my $pg = Msgr::Test::pg_start();
my ($A, $admin, $staff, $int) = one_school($pg);
my $ngx = api_nginx($pg);
use_nginx($ngx, prefix => $V);

sub db { decode_utf8($pg->psql($_[0])) }


# ---------------------------------------------------------------------------
# the sink

# sink(auth => 'user:password', tls => [cert, key]) -> {pid, port, dir}
sub sink {
    my (%o) = @_;
    my $port = Msgr::Test::free_port();
    my $dir = tempdir('msgr-smtp-XXXXXX', TMPDIR => 1, CLEANUP => 1);
    my @cmd = ($PYTHON, 't/lib/smtp_sink.py', '--port', $port,
               '--dir', $dir);
    push @cmd, '--auth', $o{auth} if $o{auth};
    push @cmd, '--tls', @{ $o{tls} } if $o{tls};
    my $s = fake_start(\@cmd, $port, "$dir/sink.log");
    $s->{dir} = $dir;
    return $s;
}

# Per-recipient answers of the sink: { address => 'CODE TEXT' }.
sub replies {
    my ($s, %r) = @_;
    Msgr::Test::spew("$s->{dir}/replies",
                     join('', map { "$_ $r{$_}\n" } sort keys %r));
}

# One received email: its envelope, raw text, headers and decoded parts.
sub parse_mail {
    my ($raw) = @_;
    my ($head, $body) = split /\r\n\r\n/, $raw, 2;
    (my $unfolded = $head) =~ s/\r\n[ \t]+/ /g;
    my %h;
    for (split /\r\n/, $unfolded) {
        my ($k, $v) = /^([^:]+):[ \t]*(.*)$/ or next;
        $h{lc $k} = $v;
    }
    my %parts;
    my ($b) = ($h{'content-type'} // '') =~ /boundary="([^"]+)"/;
    if (defined $b) {
        for my $p (split /(?:^|\r\n)--\Q$b\E(?:--)?(?:\r\n|$)/, $body) {
            next unless length $p;
            my ($ph, $pb) = split /\r\n\r\n/, $p, 2;
            my ($type) = $ph =~ /^Content-Type:\s*([^;\r]+)/mi or next;
            $parts{lc $type} = {
                head => $ph,
                text => $ph =~ /quoted-printable/i
                        ? decode_utf8(decode_qp($pb)) : $pb,
            };
        }
    }
    return { raw => $raw, head => $head, headers => \%h, parts => \%parts,
             subject => decode('MIME-Header', $h{subject} // '') };
}

# The emails the sink received, in order.
sub mails {
    my ($s) = @_;
    my @n = sort { $a <=> $b }
            map { m{/(\d+)\.json$} ? $1 : () } glob("$s->{dir}/*.json");
    return map {
        my $m = parse_mail(Msgr::Test::slurp("$s->{dir}/$_.eml"));
        $m->{env} = decode_json(Msgr::Test::slurp("$s->{dir}/$_.json"));
        $m;
    } @n;
}

sub conf {
    my ($s, $extra) = @_;
    return encode_utf8(<<"CONF");
[sender]
batch = 50
poll = 0.2

[provider mail]
type = smtp
channels = email
url = smtp://127.0.0.1:$s->{port}
from = noreply\@alpha.example
timeout = 3
${\ ($extra // '') }
CONF
}

# delivery_id => { address, subject, body, state, ... } of a message
sub deliveries {
    my ($id) = @_;
    my $rows = decode_json(encode_utf8(db(
        "SELECT coalesce(json_agg(d ORDER BY delivery_id), '[]')"
        . " FROM (SELECT delivery_id, address, subject, body, state,"
        . "  attempt, provider, provider_id, error,"
        . "  extract(epoch FROM run_at - now()) AS wait"
        . "  FROM msgr_deliveries WHERE message_id = $id) d")));
    return { map { $_->{delivery_id} => $_ } @$rows };
}


# ---------------------------------------------------------------------------
# a school with two families, and its email

sub send_ok { message_ok($staff, @_) }
sub drain_ok { sender_ok($pg, $_[1], $_[0]) }

my $groups = class_7b($int, $staff,
    students => [
        map { { mis_id => "S$_", first_name => "Kid$_", last_name => 'Doe',
                reg_group => '8C', year => '8', status => 'on_roll',
                contacts => [ { mis_id => "C$_", priority => 1,
                                correspondence => JSON::PP::true } ] } }
            3 .. 5 ],
    # the sink's switches: 451, 550, and an answer after 5 seconds
    contacts => [
        { mis_id => 'C3', first_name => 'Dan', last_name => 'Doe',
          email => 'temp-fail@example.org' },
        { mis_id => 'C4', first_name => 'Gus', last_name => 'Doe',
          email => 'no-such@example.org' },
        { mis_id => 'C5', first_name => 'Sal', last_name => 'Doe',
          email => 'slow@example.org' },
    ],
    groups => [ { mis_id => 'K8C', name => '8C', type => 'class',
                  students => [qw(S3 S4 S5)] } ]);

my $r = json_req(PATCH => '/settings/school', $admin,
                 { email => 'office@alpha.example' });
Msgr::Test::json_ok($r, 200, 'the school\'s email is set')
    or diag($r->{content});


# ---------------------------------------------------------------------------
# one email a parent, exactly as rendered

my $BODY = "Dear {first_name},\n\nThe trip to Łódź is on Friday = the last"
         . " day of term, so please bring a packed lunch, a coat and sturdy"
         . " shoes.\n.A line that starts with a dot\nFish & chips < 5 \"quid\""
         . "\n\nMrs Smith\nHead of Year 7";

{
    my $s = sink();
    my $id = send_ok({ channels => ['email'],
                       to => { groups => [ $groups->{K7B} ] },
                       subject => 'Wycieczka w piątek', body => $BODY },
                     'an email to 7B');
    drain_ok('the drain', conf($s));

    my @m = mails($s);
    my $d = deliveries($id);
    is(scalar @m, 2, 'the server received two emails');
    is_deeply([ sort map { @{ $_->{env}{rcpt_tos} } } @m ],
              [ 'jane@example.org', 'kim@example.org' ],
              'one to each parent\'s address (the envelope)');

    for my $m (@m) {
        my $h = $m->{headers};
        my ($did) = ($h->{'x-msgr-delivery'} // '') =~ /^(\d+)$/;
        my $row = $d->{ $did // 0 };
        ok($row, "X-Msgr-Delivery names a delivery of the message")
            or next;
        my $who = $row->{address};
        is_deeply($m->{env}{rcpt_tos}, [$who], "$who: the envelope's"
                  . ' recipient is the delivery\'s address');
        is($m->{env}{mail_from}, 'noreply@alpha.example',
           "$who: the envelope's sender is from");
        is($h->{from}, '"Alpha Academy" <noreply@alpha.example>',
           "$who: From: the school's name and the from address");
        is($h->{'reply-to'}, '<office@alpha.example>',
           "$who: Reply-To: the school's email");
        is($h->{to}, "<$who>", "$who: To: the parent");
        like($h->{subject}, qr/^=\?UTF-8\?B\?/,
             "$who: a non-ASCII subject is RFC 2047-encoded");
        is($m->{subject}, $row->{subject}, "$who: the subject decodes to"
                                           . ' the delivery\'s');
        is($h->{'message-id'}, "<delivery-$did.$id\@alpha.example>",
           "$who: the Message-ID carries the delivery and message ids");
        like($h->{date}, qr/^\w{3}, \d\d \w{3} \d{4} \d\d:\d\d:\d\d \+0000$/,
             "$who: a Date");
        is($h->{'mime-version'}, '1.0', "$who: MIME-Version");
        like($h->{'content-type'}, qr{^multipart/alternative;},
             "$who: multipart/alternative");
        unlike($m->{raw}, qr/(?<!\r)\n/, "$who: CRLF line endings only");
        ok(!grep({ length > 998 } split /\r\n/, $m->{raw}),
           "$who: no line over 998 characters");

        my $text = $m->{parts}{'text/plain'};
        like($text->{head} // '', qr/charset=utf-8/i,
             "$who: text/plain; charset=utf-8");
        is($text->{text}, $row->{body},
           "$who: the text part is the rendered body, byte for byte");
        my $html = $m->{parts}{'text/html'}{text} // '';
        my ($first) = $row->{body} =~ /^Dear (\w+),/;
        like($html, qr{<p>Dear \Q$first\E,</p>},
             "$who: the HTML part, a paragraph each");
        like($html, qr{Friday = the last}, "$who: its text decoded");
        like($html, qr{dot<br>\s*Fish &amp; chips &lt; 5 &quot;quid&quot;},
             "$who: escaped, line breaks kept");
        like($html, qr{<p>Mrs Smith<br>\s*Head of Year 7</p>},
             "$who: the last paragraph");
    }

    is(db("SELECT string_agg(state || ' ' || provider || ' '"
          . " || (provider_id ~ '^Q[0-9]+\$') || ' ' || attempt"
          . " || ' ' || (sent_at IS NOT NULL), ',')"
          . " FROM msgr_deliveries WHERE message_id = $id"),
       'sent mail true 1 true,sent mail true 1 true',
       'both deliveries sent by mail in one attempt, the server\'s queue id'
       . ' kept');
    is_deeply([ sort map { $_->{provider_id} } values %$d ],
              [ sort map { $_->{env}{queue_id} } @m ],
              'provider_id: the id the server queued each under');

    drain_ok('a second drain', conf($s));
    is(scalar(mails($s)), 2, 'sends nothing again');
    fake_stop($s);
}


# ---------------------------------------------------------------------------
# a long ASCII subject stays as it is, folded; the school's email unset: no
# Reply-To

{
    my $s = sink();
    my $LONG = 'Trip on Friday: ' . join(' ', ('bring a coat and boots') x 5);
    my $r = json_req(PATCH => '/settings/school', $admin, { email => '' });
    Msgr::Test::json_ok($r, 200, 'the school\'s email is cleared');
    my $id = send_ok({ channels => ['email'],
                       to => { groups => [ $groups->{K7B} ] },
                       subject => $LONG, body => 'Hello' },
                     'a long plain subject');
    drain_ok('a drain one at a time',
             conf($s, "from_name = Alpha \"Office\"\n")
             =~ s/batch = 50/batch = 1\nmax_in_flight = 1/r);
    my @m = mails($s);
    is(scalar @m, 2, 'two emails');
    is($m[1]{env}{peer}, $m[0]{env}{peer},
       'the second over the first one\'s connection');
    is($m[0]{headers}{subject}, $LONG, 'the subject as it is, unfolded');
    like($m[0]{head}, qr/^Subject: Trip on Friday: bring [^\r\n]*\r\n [a-z]/m,
         'folded before a space');
    ok(!grep({ length > 76 } split /\r\n/, $m[0]{head}),
       'no header line over 76 characters');
    ok(!exists $m[0]{headers}{'reply-to'}, 'no Reply-To');
    is($m[0]{headers}{from}, '"Alpha \"Office\"" <noreply@alpha.example>',
       'from_name in a quoted string');
    is($m[0]{parts}{'text/plain'}{text}, 'Hello', 'the text');
    $r = json_req(PATCH => '/settings/school', $admin,
                  { email => 'office@alpha.example' });
    Msgr::Test::json_ok($r, 200, 'the school\'s email is set again');
    fake_stop($s);
}


# ---------------------------------------------------------------------------
# long lines of non-ASCII text, spaces at line ends, a line of a dot

{
    my $s = sink();
    my $subject = join(' ', ('Zażółć gęślą jaźń') x 6);
    my $body = ('ą' x 100) . "\nA line ending in spaces   \n.\n"
             . ('=' x 30) . ' ' . ('ż' x 40) . "\n \nAfter a line of a space";
    my $id = send_ok({ channels => ['email'],
                       to => { groups => [ $groups->{K7B} ] },
                       subject => $subject, body => $body },
                     'a long Polish subject and text');
    drain_ok('the drain', conf($s, "from_name = Szkoła Podstawowa nr 1\n"));
    my ($m) = mails($s);
    my ($row) = grep { $_->{address} eq $m->{env}{rcpt_tos}[0] }
                values %{ deliveries($id) };
    is($m->{subject}, $row->{subject}, 'the long subject decodes whole');
    my @words = $m->{head} =~ /(=\?[^?]+\?B\?[^?]*\?=)/g;
    cmp_ok(scalar @words, '>', 1, 'in several encoded words');
    ok(!grep({ length > 75 } @words), 'each at most 75 characters');
    ok(!grep({ my ($b64) = /\?B\?([^?]*)\?=/;
               !eval { decode('UTF-8', MIME::Base64::decode_base64($b64),
                              Encode::FB_CROAK); 1 } } @words),
       'none cuts a character in two');
    is(decode('MIME-Header', $m->{headers}{from}),
       'Szkoła Podstawowa nr 1 <noreply@alpha.example>',
       'a non-ASCII from_name, encoded');
    is($m->{parts}{'text/plain'}{text}, $row->{body},
       'the text, byte for byte');
    ok(!grep({ length > 76 } split /\r\n/, $m->{raw}),
       'no line of the message over 76 characters');
    my $html = $m->{parts}{'text/html'}{text} // '';
    like($html, qr{<p>\Q${\ ('ą' x 100)}\E<br>},
         'HTML: the long line whole');
    like($html, qr{</p>\s*<p>After a line of a space</p>},
         'HTML: a line of spaces ends a paragraph');
    fake_stop($s);
}


# ---------------------------------------------------------------------------
# 451: tried again later; 550: failed for good

{
    my $s = sink();
    replies($s, 'jane@example.org' => '451 4.7.1 Greylisted, come back later',
                'kim@example.org' => '550 5.1.1 No such mailbox here');
    my $id = send_ok({ channels => ['email'],
                       to => { groups => [ $groups->{K7B} ] },
                       subject => 'S', body => 'Refused' }, 'two emails');
    drain_ok('a drain the server refuses', conf($s));
    is(scalar(mails($s)), 0, 'nothing was accepted');

    my %by = map { $_->{address} => $_ } values %{ deliveries($id) };
    my $jane = $by{'jane@example.org'};
    my $kim = $by{'kim@example.org'};
    is("$jane->{state} $jane->{attempt}", 'queued 1',
       '451: queued again, the attempt counted');
    cmp_ok($jane->{wait}, '>', 0, '451: for later');
    like($jane->{error}, qr/^smtp 451: .*Greylisted/, '451: the reason kept');
    is($kim->{state}, 'permanent-failure', '550: failed for good');
    like($kim->{error}, qr/^smtp 550: .*No such mailbox here/,
         '550: the code and the server\'s text');

    # the server takes it now, and its time has come
    replies($s);
    db("UPDATE msgr_deliveries SET run_at = now() WHERE message_id = $id");
    drain_ok('a drain after the greylisting', conf($s));
    my @m = mails($s);
    is_deeply([ map { @{ $_->{env}{rcpt_tos} } } @m ], ['jane@example.org'],
              'the retry reached Jane');
    %by = map { $_->{address} => $_ } values %{ deliveries($id) };
    is("$by{'jane@example.org'}{state} $by{'jane@example.org'}{attempt}",
       'sent 2', 'sent at the second attempt');
    is($by{'kim@example.org'}{state}, 'permanent-failure',
       'the 550 is not tried again');

    # switches by address: temp-fail@ and no-such@ as above
    fake_stop($s);
}


# ---------------------------------------------------------------------------
# AUTH: given when configured; refused or missing is tried again

{
    my $s = sink(auth => 'msgr:s3cret');
    my $id = send_ok({ channels => ['email'],
                       to => { groups => [ $groups->{K7B} ] },
                       subject => 'S', body => 'Logged in' }, 'two emails');

    drain_ok('a drain without credentials', conf($s));
    is(scalar(mails($s)), 0, 'the server wants a login: nothing taken');
    is(db("SELECT string_agg(DISTINCT state || ' ' || (error ~ '^smtp 530'),"
          . " ',') FROM msgr_deliveries WHERE message_id = $id"),
       'queued true', '530: queued again (the configuration, not the parent)');

    db("UPDATE msgr_deliveries SET run_at = now() WHERE message_id = $id");
    drain_ok('a drain with a wrong password',
             conf($s, "username = msgr\npassword = wrong\n"));
    is(scalar(mails($s)), 0, 'a refused login: nothing taken');
    like(db("SELECT string_agg(DISTINCT state || ' ' || error, ',')"
            . " FROM msgr_deliveries WHERE message_id = $id"),
         qr/^queued smtp 535: /, '535: queued again, saying so');

    db("UPDATE msgr_deliveries SET run_at = now() WHERE message_id = $id");
    drain_ok('a drain with the credentials',
             conf($s, "username = msgr\npassword = s3cret\n"));
    my @m = mails($s);
    is(scalar @m, 2, 'both emails taken');
    is_deeply([ map { $_->{env}{auth} } @m ], [qw(msgr msgr)],
              'after AUTH as msgr');
    is(db("SELECT string_agg(DISTINCT state || ' ' || attempt, ',')"
          . " FROM msgr_deliveries WHERE message_id = $id"), 'sent 3',
       'sent at the third attempt');
    fake_stop($s);
}


# ---------------------------------------------------------------------------
# STARTTLS with the server's self-signed certificate

SKIP: {
    my $tls = tempdir('msgr-smtp-tls-XXXXXX', TMPDIR => 1, CLEANUP => 1);
    my ($rc) = Msgr::Test::_run(cmd => [
        'openssl', 'req', '-x509', '-newkey', 'rsa:2048', '-nodes',
        '-keyout', "$tls/key.pem", '-out', "$tls/cert.pem", '-days', '1',
        '-subj', '/CN=sink.test']);
    skip 'openssl cannot make a certificate', 5 if $rc != 0;

    my $s = sink(tls => [ "$tls/cert.pem", "$tls/key.pem" ]);
    my $id = send_ok({ channels => ['email'],
                       to => { groups => [ $groups->{K7B} ] },
                       subject => 'S', body => 'Encrypted' }, 'two emails');

    drain_ok('a drain that verifies the certificate',
             conf($s, "starttls = required\n"));
    is(db("SELECT string_agg(DISTINCT state, ',') FROM msgr_deliveries"
          . " WHERE message_id = $id"), 'queued',
       'an unverifiable certificate: queued again');

    db("UPDATE msgr_deliveries SET run_at = now() WHERE message_id = $id");
    drain_ok('a drain with tls_verify = off',
             conf($s, "starttls = required\ntls_verify = off\n"));
    my @m = mails($s);
    is_deeply([ map { $_->{env}{tls} ? 'tls' : 'plain' } @m ],
              [qw(tls tls)], 'both emails over STARTTLS');
    fake_stop($s);
}


# ---------------------------------------------------------------------------
# switches by address, a slow server and one that is down

{
    my $s = sink();
    my $g8 = $groups->{K8C};
    my $id = send_ok({ channels => ['email'], to => { groups => [$g8] },
                       subject => 'S', body => 'Switches' }, 'three emails');
    my $t0 = time;
    drain_ok('a drain with a timeout of 1 s',
             conf($s) =~ s/timeout = 3/timeout = 1/r);
    cmp_ok(time - $t0, '<', 5, 'the slow server is not waited for');
    my %by = map { $_->{address} =~ /^([^@]+)/; ($1 => $_) }
             values %{ deliveries($id) };
    like("$by{'temp-fail'}{state} $by{'temp-fail'}{error}",
         qr/^queued smtp 451:/, 'temp-fail@: 451, queued again');
    like("$by{'no-such'}{state} $by{'no-such'}{error}",
         qr/^permanent-failure smtp 550:/, 'no-such@: 550, failed for good');
    like("$by{slow}{state} $by{slow}{error}",
         qr/^queued smtp: .*time/i, 'slow@: timed out, queued again');
    fake_stop($s);

    # the server is down
    db("UPDATE msgr_deliveries SET run_at = now()"
       . " WHERE message_id = $id AND state = 'queued'");
    drain_ok('a drain while the server is down', conf($s));
    %by = map { $_->{address} =~ /^([^@]+)/; ($1 => $_) }
          values %{ deliveries($id) };
    is("$by{'temp-fail'}{state} $by{'temp-fail'}{attempt}",
       'queued 2', 'down: queued again, the attempt counted');
    like($by{'temp-fail'}{error}, qr/^smtp: .*(connect|refused)/i,
         'down: the reason kept');
    cmp_ok($by{'temp-fail'}{wait}, '>', 0, 'down: for later');
}


# ---------------------------------------------------------------------------
# the configuration

{
    my @bad = (
        [ "url = http://x\n", qr/url: smtp:\/\/HOST:PORT/, 'an http url' ],
        [ "starttls = maybe\n", qr/starttls: off, try or required/,
          'a bad starttls' ],
        [ "from = nobody\n", qr/from, reply_to: an email address/,
          'a bad from' ],
        [ "tls_verify = perhaps\n", qr/tls_verify: on or off/,
          'a bad tls_verify' ],
        [ "colour = red\n", qr/an unknown key for type smtp/,
          'an unknown key' ],
    );
    for my $b (@bad) {
        my ($rc, $out, $err) = Msgr::Test::sender($pg,
            "[provider m]\ntype = smtp\nchannels = email\n$b->[0]");
        is($rc, 1, "$b->[2]: exits 1");
        like($err, $b->[1], "$b->[2]: says what is wrong");
    }
    my ($rc, $out, $err) = Msgr::Test::sender($pg,
        "[provider m]\ntype = smtp\nchannels = email\n"
        . "url = smtp://127.0.0.1:25\n");
    like($err, qr/provider m: type smtp needs url = .* and from =/,
         'no from: named');
    ($rc, $out, $err) = Msgr::Test::sender($pg,
        "[provider m]\ntype = smtp\nchannels = sms, email\n"
        . "url = smtp://127.0.0.1:25\nfrom = a\@b.example\n");
    like($err, qr/type smtp carries email only/, 'an SMS channel: refused');
}


Msgr::Test::finish();
