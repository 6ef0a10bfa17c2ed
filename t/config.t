#!/usr/bin/perl
# nginx -t: the msgr directives reject what cannot work, and accept a good
# configuration.  No PostgreSQL is needed to check a configuration.

use strict;
use warnings;
use Test::More;
use lib 't/lib';
use Msgr::Test;

my $port = Msgr::Test::free_port();
my $good_pg = 'host=127.0.0.1 port=1 dbname=msgr user=msgr';

sub server {
    my ($loc) = @_;
    $loc //= '';
    return "    server {\n        listen 127.0.0.1:$port;\n"
         . "        location /msgr/ { msgr_api; $loc }\n    }\n";
}

# The directive's line in the tested nginx.conf.
sub line_of {
    my ($conf, $directive) = @_;
    my @lines = split /\n/, $conf;
    for my $i (0 .. $#lines) {
        return $i + 1 if $lines[$i] =~ /(?:^|[{;])\s*\Q$directive\E\s/;
    }
    return 0;
}

# $like: what the message must say.  $directive: the message may instead
# point at the directive's line, as nginx's own bounds checks do.
sub rejects {
    my ($name, $text, $like, $directive) = @_;
    my ($rc, $out, $conf) = Msgr::Test::nginx_test_config($text);
    isnt($rc, 0, "$name: nginx -t fails");
    like($out, qr/\[emerg\]/, "$name: an [emerg] says why");
    my $ok = $out =~ $like;
    if (!$ok && $directive) {
        my $line = line_of($conf, $directive);
        $ok = $line && $out =~ /\[emerg\][^\n]*nginx\.conf:$line\b/;
    }
    ok($ok, "$name: the message names the directive"
            . ($directive ? ' or points at its line' : ''))
        or diag($out);
    unlike($out, qr/signal|segmentation/i, "$name: nginx -t did not crash");
}

rejects('msgr_api without msgr_pg', server(), qr/msgr_pg\b/);

rejects('conninfo "host=127.0.0.1 port"',
        qq{    msgr_pg "host=127.0.0.1 port";\n} . server(), qr/msgr_pg\b/);

rejects('conninfo "nonsense"',
        qq{    msgr_pg "nonsense";\n} . server(), qr/msgr_pg\b/);

rejects('conninfo with an unknown keyword',
        qq{    msgr_pg "host=127.0.0.1 colour=blue";\n} . server(),
        qr/msgr_pg\b/);

rejects('msgr_pg_pool 0',
        qq{    msgr_pg "$good_pg";\n    msgr_pg_pool 0;\n} . server(),
        qr/msgr_pg_pool/, 'msgr_pg_pool');

rejects('msgr_pg_queue abc',
        qq{    msgr_pg "$good_pg";\n    msgr_pg_queue abc;\n} . server(),
        qr/msgr_pg_queue/, 'msgr_pg_queue');

rejects('msgr_pg_timeout abc',
        qq{    msgr_pg "$good_pg";\n    msgr_pg_timeout abc;\n} . server(),
        qr/msgr_pg_timeout/, 'msgr_pg_timeout');

rejects('msgr_max_body abc',
        qq{    msgr_pg "$good_pg";\n} . server('msgr_max_body abc;'),
        qr/msgr_max_body/, 'msgr_max_body');

{
    my $text = qq{    msgr_pg "$good_pg";\n}
             . "    msgr_pg_pool 4;\n"
             . "    msgr_pg_queue 64;\n"
             . "    msgr_pg_timeout 5s;\n"
             . server('msgr_max_body 1m;');
    my ($rc, $out) = Msgr::Test::nginx_test_config($text);
    is($rc, 0, 'a good configuration passes nginx -t') or diag($out);
    like($out, qr/syntax is ok/, 'nginx -t: syntax is ok');
    like($out, qr/test is successful/, 'nginx -t: test is successful');
    unlike($out, qr/\[(?:emerg|alert|crit)\]/, 'nginx -t: nothing alarming');
}

{
    # the defaults alone are enough: only msgr_pg is required
    my ($rc, $out) = Msgr::Test::nginx_test_config(
        qq{    msgr_pg "$good_pg";\n} . server());
    is($rc, 0, 'msgr_pg and msgr_api alone pass nginx -t') or diag($out);
}

Msgr::Test::finish();
