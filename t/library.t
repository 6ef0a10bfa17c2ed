#!/usr/bin/perl

# The standard library msgr ships (share/library/library.json): at least 30
# templates a UK school sends, each with a short SMS variant of at most 160
# GSM-7 characters before its tokens are filled, the topics schools ask for,
# and a file the module accepts (t/templates.t serves it).

use strict;
use warnings;
use utf8;

use JSON::PP;
use Test::More;

use lib 't/lib';
use Msgr::Test qw(slurp);

my $file = "$Msgr::Test::ROOT/share/library/library.json";
my $lib = JSON::PP->new->utf8->decode(slurp($file));

# GSM 03.38's basic set; the extension table's characters count twice
my $basic = '@£$¥èéùìòÇ' . "\n" . 'Øø' . "\r" . 'ÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ'
          . ' !"#¤%&\'()*+,-./'
          . '0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿'
          . 'abcdefghijklmnopqrstuvwxyzäöñüà';
my %basic = map { ($_ => 1) } split //, $basic;
my %ext   = map { ($_ => 1) } split //, '^{}\\[~]|€';

sub gsm_length {
    my ($s) = @_;
    my $n = 0;
    for my $c (split //, $s) {
        return undef unless $basic{$c} || $ext{$c};
        $n += $ext{$c} ? 2 : 1;
    }
    return $n;
}

ok(($lib->{version} // 0) >= 1, 'the library has a version');
my @t = @{ $lib->{templates} };
cmp_ok(scalar @t, '>=', 30, 'at least 30 templates');

my (%key, %name);
for my $t (@t) {
    my $k = $t->{key} // '?';
    ok(!$key{$k}++, "$k: its key is unique");
    ok(!$name{lc $t->{name}}++, "$k: its name is unique");
    ok(($t->{version} // 0) >= 1, "$k: has a version");
    like($t->{kind}, qr/^(saved_message|letter)$/, "$k: a kind");
    ok(length($t->{body} // '') >= 40, "$k: a body worth sending");
    ok(defined $t->{subject}, "$k: a subject");
    my $sms = $t->{sms_body} // '';
    ok($sms ne '', "$k: an SMS variant");
    (my $bare = $sms) =~ s/\{[^{}]*\}//g;
    my $n = gsm_length($bare);
    ok(defined $n, "$k: the SMS is GSM-7")
        or diag join ' ', grep { !$basic{$_} && !$ext{$_} } split //, $bare;
    ok(defined $n && $n <= 160, "$k: the SMS is at most 160 characters "
                                . "before its tokens (" . ($n // '?') . ")");
    if ($t->{kind} eq 'letter') {
        unlike(join(' ', grep { defined } @$t{qw(subject body sms_body)}),
               qr/<[a-z ]+>/i, "$k: a letter has nothing to fill in");
    }
}

# what a UK school sends
for my $topic ('snow', 'heating', 'absence', 'trip', 'consent',
               "parents' evening", 'exam', 'head lice', 'lunch', 'uniform',
               'INSET', 'lockdown') {
    ok((grep { "$_->{name} $_->{body}" =~ /\Q$topic\E/i } @t),
       "a template about $topic");
}

my %kinds = map { ($_->{kind} => 1) } @t;
ok($kinds{letter} && $kinds{saved_message}, 'letters and saved messages');

done_testing();
