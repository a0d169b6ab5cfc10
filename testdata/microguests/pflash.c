/* Drives the CFI commands of both flash units as OVMF's flash driver and a CFI probe would
 * (QEMU's pflash_cfi01 on pc/q35): read array, CFI query, device ID, read/clear status,
 * byte/word/dword program, block erase, write-to-buffer (committed, aborted, outside its
 * block, count 0), on unit 0 (this image, read-only) and unit 1 (the VM's variable store,
 * found below unit 0 by its own CFI geometry). Every answer is printed; the output and the
 * variable store's bytes afterwards are compared between QEMU and Ferry's runtime.
 * Built by build-flash.sh; runs from RAM (flash-entry.S). */
#include "lib.h"

#define UNIT0 0xfffe0000u /* 4 GiB - 128 KiB: this image */

static void cmd(u32 a, u8 c) { wr8(a, c); }

static void bytes(u32 a, u32 n) {
	for (u32 i = 0; i < n; i++) puthex(rd8(a + i), 2);
}

static void status(const char *what, u32 base) {
	cmd(base, 0x70);
	puts(what);
	puts(" status ");
	puthex(rd8(base), 2);
	puts(" ");
	puthex(rd16(base), 4);
	puts(" ");
	puthex(rd32(base), 8);
	puts("\n");
	cmd(base, 0xff);
}

static u32 sector_of(u32 base) {
	cmd(base, 0x98);
	u32 s = (u32)rd8(base + 0x2f) << 8 | (u32)rd8(base + 0x30) << 16;
	cmd(base, 0xff);
	return s;
}

static u32 size_of(u32 probe) {
	cmd(probe, 0x98);
	u32 blocks = ((u32)rd8(probe + 0x2d) | (u32)rd8(probe + 0x2e) << 8) + 1;
	cmd(probe, 0xff);
	return blocks * sector_of(probe);
}

static void unit(const char *name, u32 base, u32 len, u32 area) {
	u32 a = base + area;
	puts(name); puts(" base "); puthex(base, 8); puts(" len "); puthex(len, 8);
	puts(" array crc "); puthex(crc32((const u8 *)base, 256), 8); puts(" area "); bytes(a, 8); puts("\n");

	/* CFI query (entered at 0x55, as CFI probes do), then the whole table and wide reads. */
	cmd(base + 0x55, 0x98);
	puts(name); puts(" cfi "); bytes(base, 0x52); puts(" +60 "); puthex(rd8(base + 0x60), 2);
	puts(" w16 "); puthex(rd16(base + 0x10), 4); puts(" w32 "); puthex(rd32(base + 0x10), 8);
	cmd(base, 0x70); /* stays in query mode */
	puts(" after70 "); puthex(rd8(base + 0x11), 2); puts("\n");
	cmd(base, 0xff);
	puts(name); puts(" array again "); bytes(base, 4); puts("\n");

	cmd(base, 0x90);
	puts(name); puts(" id "); bytes(base, 4); puts(" w16 "); puthex(rd16(base), 4); puts(" w32 "); puthex(rd32(base), 8);
	puts(" at 100 "); bytes(base + 0x100, 2); puts("\n");
	cmd(base, 0xff);

	status(name, base);
	/* Byte, word and dword program (0x10, 0x40), reading status in program mode. */
	cmd(a, 0x10); wr8(a, 0xa5);
	puts(name); puts(" after program reads "); puthex(rd8(a), 2); puts("\n");
	cmd(a, 0x40); wr16(a + 2, 0x1234);
	cmd(a, 0x10); wr32(a + 4, 0xdeadbeef);
	status(name, base);
	puts(name); puts(" programmed "); bytes(a, 8); puts("\n");

	/* Block erase of the sector holding a + 0x1345 (0x20 erases, 0xd0 confirms). */
	u32 e = a + 0x1345;
	cmd(e, 0x20);
	cmd(e, 0xd0);
	puts(name); puts(" erase status "); puthex(rd8(base), 2); puts("\n");
	cmd(base, 0xff);
	u32 s0 = (a + 0x1000) & ~0xfffu;
	puts(name); puts(" erased crc "); puthex(crc32((const u8 *)s0, 0x1000), 8);
	puts(" before "); bytes(s0 - 2, 2); puts(" after "); bytes(s0 + 0x1000, 2); puts("\n");
	cmd(base, 0x50);

	/* Write to buffer: 8 bytes (count 7) committed; 16 bytes as 4 dwords (count 3). */
	u32 b = a + 0x1100;
	cmd(b, 0xe8);
	puts(name); puts(" e8 status "); puthex(rd8(b), 2); puts("\n");
	wr8(b, 7);
	for (u32 i = 0; i < 8; i++) wr8(b + i, (u8)(0x30 + i));
	puts(name); puts(" before confirm "); bytes(b, 1); puts("\n");
	cmd(b, 0xd0);
	status(name, base);
	puts(name); puts(" buffer "); bytes(b, 8); puts("\n");
	cmd(b + 0x10, 0xe8); wr8(b + 0x10, 3);
	for (u32 i = 0; i < 4; i++) wr32(b + 0x10 + 4 * i, 0x01020304u * (i + 1));
	cmd(b, 0xd0);
	cmd(base, 0xff);
	puts(name); puts(" buffer32 "); bytes(b + 0x10, 16); puts("\n");
	/* Aborted (read array instead of confirm): nothing written. */
	cmd(b + 0x40, 0xe8); wr8(b + 0x40, 1);
	wr8(b + 0x40, 0x77); wr8(b + 0x41, 0x78);
	cmd(b + 0x40, 0xff);
	puts(name); puts(" aborted "); bytes(b + 0x40, 2); puts("\n");
	status(name, base);
	/* Crossing the 256-byte write block: programming error, nothing written. */
	cmd(b + 0xfe, 0xe8); wr8(b + 0xfe, 2);
	wr8(b + 0xfe, 0x11); wr8(b + 0xff, 0x22); wr8(b + 0x100, 0x33);
	cmd(b, 0xd0);
	puts(name); puts(" crossing "); bytes(b + 0xfe, 3); puts("\n");
	status(name, base);
	cmd(base, 0x50);
	/* A count of 0 (one write). */
	cmd(b + 0x80, 0xe8); wr8(b + 0x80, 0);
	wr8(b + 0x80, 0x66);
	cmd(b + 0x80, 0xd0);
	puts(name); puts(" count0 "); bytes(b + 0x80, 1); puts("\n");
	status(name, base);
	/* Block lock/unlock (0x60 + 0xd0 / 0x01) and an unknown command. */
	cmd(a, 0x60); cmd(a, 0xd0);
	puts(name); puts(" unlock status "); puthex(rd8(a), 2); puts("\n");
	cmd(a, 0x60); cmd(a, 0x01);
	cmd(a, 0x42);
	puts(name); puts(" after unknown "); bytes(a, 2); puts("\n");
	cmd(base, 0x50);
	status(name, base);
}

int main(void) {
	serial_init();
	puts("pflash: start\n");
	u32 top1 = UNIT0, sector = sector_of(UNIT0);
	u32 len1 = size_of(top1 - sector);
	puts("pflash: sector "); puthex(sector, 8); puts("\n");
	unit("unit0", UNIT0, size_of(UNIT0), 0x10000);
	unit("unit1", top1 - len1, len1, 0x1000);
	puts("pflash: done\n");
	return 0x10;
}
