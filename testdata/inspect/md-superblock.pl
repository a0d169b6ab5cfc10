#!/usr/bin/perl
# Writes an md RAID superblock version 1.2 (4 KiB into the member) from the documented
# layout (struct mdp_superblock_1 in the kernel's include/uapi/linux/raid/md_p.h), for a
# RAID1 member. The kernel here has no md driver, so mdadm cannot create arrays; the tests
# check this superblock with `mdadm --examine` on the member file.
# usage: md-superblock.pl MEMBER SECTORS DEV_NUMBER RAID_DISKS SET_UUID_HEX NAME DEV_UUID_HEX
use strict;
use warnings;
my ($out, $sectors, $devnum, $disks, $set_uuid, $name, $dev_uuid) = @ARGV;
die "usage\n" unless defined $dev_uuid;
my $data_offset = 2048;
my $data_size = $sectors - $data_offset;
my $max_dev = 128;
my $sb = pack("V V V V a16 a32 Q< V V Q< V V V V Q< V V V V Q< Q< Q< Q< V V a16 C C v V Q< Q< Q< V V",
    0xa92b4efc, 1, 0, 0, pack("H32", $set_uuid), $name, 1700000000,
    1, 0, $data_size, 0, $disks, 0, 0, 0, 0, 0, 0, 0,
    $data_offset, $data_size, 8, 0, $devnum, 0, pack("H32", $dev_uuid), 0, 0, 0, 0,
    1700000000, 10, ~0, 0, $max_dev);
$sb .= "\0" x (256 - length($sb));
for my $i (0 .. $max_dev - 1) { $sb .= pack("v", $i < $disks ? $i : 0xffff); }
# sb_csum: 32-bit little-endian words summed into 64 bits, folded (calc_sb_1_csum).
my $sum = 0;
for my $w (unpack("V*", $sb)) { $sum += $w; }
my $csum = (($sum & 0xffffffff) + ($sum >> 32)) & 0xffffffff;
substr($sb, 216, 4) = pack("V", $csum);
open(my $fh, "+<:raw", $out) or die "$out: $!\n";
seek($fh, 4096, 0) or die;
print $fh $sb;
close($fh) or die "$out: $!\n";
