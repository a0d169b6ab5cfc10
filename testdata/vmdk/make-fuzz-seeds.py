#!/usr/bin/env python3
"""Writes tiny seed inputs for the VMDK fuzz targets into testdata/vmdk/fuzz-seeds/TARGET/.

Each seed is a complete, valid file of a few KiB built from the struct layouts (KDMV sparse,
VMware-layout streamOptimized, COWD, seSparse, text descriptors), so libFuzzer starts from
inputs that reach deep into the parsers. Run: python3 testdata/vmdk/make-fuzz-seeds.py
"""
import os
import struct
import zlib

here = os.path.dirname(os.path.abspath(__file__))


def kdmv(flags, capacity, grain, desc, gd, overhead, compress, version=1, gtes=512):
    h = b"KDMV" + struct.pack("<IIQQQQIQQQ", version, flags, capacity, grain, desc[0], desc[1], gtes, 0, gd, overhead)
    h += b"\0" + b"\n \r\n" + struct.pack("<H", compress)
    return h.ljust(512, b"\0")


def pad(b, n=512):
    return b + b"\0" * (-len(b) % n)


def marker(val, size, kind):
    return struct.pack("<QII", val, size, kind).ljust(512, b"\0")


def sparse():
    # capacity 64 sectors, grain 8: GD at sector 1, GT at 2..5, two grains, one zeroed GTE.
    f = kdmv(0x5, 64, 8, (0, 0), 1, 6, 0, version=2)
    f += pad(struct.pack("<I", 2))
    gt = [0] * 512
    gt[0], gt[1], gt[3] = 6, 1, 14
    f += b"".join(struct.pack("<I", e) for e in gt)
    f += bytes(range(256)) * 16 + b"\xab" * 4096
    return f


def stream():
    grain = bytes(range(256)) * 16
    f = kdmv(0x30001, 64, 8, (0, 0), 0xFFFFFFFFFFFFFFFF, 1, 1, version=3)
    c = zlib.compress(grain)
    f += pad(struct.pack("<QI", 8, len(c)) + c)
    f += marker(1, 0, 4) + b"\x55" * 512
    gt_sector = len(f) // 512 + 1
    gt = [0] * 512
    gt[1] = 1
    f += marker(4, 0, 1) + b"".join(struct.pack("<I", e) for e in gt)
    gd_sector = len(f) // 512 + 1
    f += marker(1, 0, 2) + pad(struct.pack("<I", gt_sector))
    f += marker(1, 0, 3) + kdmv(0x30001, 64, 8, (0, 0), gd_sector, 1, 1, version=3)
    f += marker(0, 0, 0)
    return f


def cowd():
    h = b"COWD" + struct.pack("<IIIIIII", 1, 3, 64, 1, 4, 1, 0)
    f = h.ljust(2048, b"\0") + pad(struct.pack("<I", 5))
    gt = [0] * 4096
    gt[0], gt[7] = 37, 38
    f += b"".join(struct.pack("<I", e) for e in gt)
    return f + b"\x11" * 512 + b"\x22" * 512


def sesparse():
    h = struct.pack("<QQQQQQ", 0xCAFEBABE, 0x200000001, 64, 8, 64, 0) + b"\0" * 32
    h += struct.pack("<QQQQQQQQQQQQQQQQ", 1, 1, 0, 0, 0, 0, 2, 1, 3, 64, 0, 0, 0, 0, 67, 16)
    f = h.ljust(512, b"\0") + struct.pack("<QQQQ", 0xCAFECAFE, 0, 0, 0).ljust(512, b"\0")
    f += pad(struct.pack("<Q", 0x1000000000000000))
    gt = [0] * 4096
    gt[0], gt[1], gt[2], gt[5] = 0x3000000000000000, 0x2000000000000000, 0x1000000000000000, 0x3001000000000000
    f += b"".join(struct.pack("<Q", e) for e in gt)
    return f + b"\x33" * 4096 + b"\x44" * 4096


DESCRIPTOR = (
    "# Disk DescriptorFile\r\nversion=1\r\nCID=12345678\r\nparentCID=ffffffff\r\n"
    "createType=\"twoGbMaxExtentFlat\"\r\n\r\n# Extent description\r\n"
    "RW 1 FLAT \"x-f001.vmdk\" 0\r\nRDONLY 1 FLAT \"x-f002.vmdk\" 1\r\nRW 2 ZERO\r\nNOACCESS 3 FLAT \"gone\" 0\r\n"
    "\r\nddb.virtualHWVersion = \"4\"\r\nddb.geometry.cylinders = \"2\"\r\n"
)

CHILD = (
    "version=2\nCID=0badf00d\nparentCID=12345678\ncreateType=streamOptimized\n"
    "parentFileNameHint=\"base.vmdk\"\nRW 4 FLAT \"self\" 0\n"
)

seeds = {
    "vmdk_sparse": {"kdmv.vmdk": sparse(), "stream.vmdk": stream(), "cowd.vmdk": cowd(),
                    "sesparse.vmdk": sesparse(), "descriptor.vmdk": DESCRIPTOR.encode(), "child.vmdk": CHILD.encode()},
    "vmdk_stream": {"stream.vmdk": stream()},
    "vmdk_descriptor": {"split.txt": DESCRIPTOR.encode(), "child.txt": CHILD.encode()},
}
for target, files in seeds.items():
    d = os.path.join(here, "fuzz-seeds", target)
    os.makedirs(d, exist_ok=True)
    for name, data in files.items():
        with open(os.path.join(d, name), "wb") as f:
            f.write(data)
