#!/usr/bin/perl
# Writes a minimal, empty Windows registry hive (regf): one root key with a security cell,
# built from the documented layout (base block + one 4 KiB hbin). hivexsh -w then adds the
# keys and values the fixtures need, so every populated cell is written by hivex itself.
use strict;
use warnings;
my $out = shift or die "usage: $0 OUT\n";

my $root = 0x20;
my $name = "ROOT";
my $nk = pack("a2 v Q< V V V V V V V V V V V V V V V v v a*",
    "nk", 0x2c, 0, 0, 0, 0, 0, 0xffffffff, 0xffffffff, 0, 0xffffffff,
    0, 0xffffffff, 0, 0, 0, 0, 0, length($name), 0, $name);
my $nk_len = (4 + length($nk) + 7) & ~7;
my $sk_off = $root + $nk_len;
substr($nk, 44, 4) = pack("V", $sk_off);
my $sd = pack("C C v V V V V", 1, 0, 0x8000, 0, 0, 0, 0);
my $sk = pack("a2 v V V V V a*", "sk", 0, $sk_off, $sk_off, 1, length($sd), $sd);
my $sk_len = (4 + length($sk) + 7) & ~7;

my $bin = pack("a4 V V x8 Q< V", "hbin", 0, 4096, 0, 0);
$bin .= "\0" x ($root - length($bin));
$bin .= pack("l<", -$nk_len) . $nk . "\0" x ($nk_len - 4 - length($nk));
$bin .= pack("l<", -$sk_len) . $sk . "\0" x ($sk_len - 4 - length($sk));
my $free = 4096 - length($bin);
$bin .= pack("l<", $free) . "\0" x ($free - 4);

my $base = pack("a4 V V Q< V V V V V V V", "regf", 1, 1, 0, 1, 3, 0, 1, $root, 4096, 1);
$base .= "\0" x (508 - length($base));
my $sum = 0;
$sum ^= $_ for unpack("V127", $base);
$base .= pack("V", $sum);
$base .= "\0" x (4096 - length($base));

open(my $fh, ">:raw", $out) or die "$out: $!\n";
print $fh $base, $bin;
close($fh) or die "$out: $!\n";
