/* Dumps the first 256 bytes of config space of every function on bus 0 and on the buses
 * behind its bridges (as firmware numbered them), plus the extended-capability headers through
 * q35's ECAM when `ecam` is on the command line (development aid). */
#include "lib.h"

static void dump(u32 b, u32 s, u32 f) {
	puthex(b, 2); putc(':'); puthex(s, 2); putc('.'); putdec(f); puts("\n");
	for (u32 o = 0; o < 256; o += 4) {
		puthex(pci_rd32(b, s, f, o), 8);
		puts((o & 0x1c) == 0x1c ? "\n" : " ");
	}
}

static void ext(u32 b, u32 s, u32 f) {
	u32 base = 0xb0000000u | b << 20 | s << 15 | f << 12;
	u32 p = 0x100;
	puts("ext");
	for (int n = 0; p >= 0x100 && n < 32; n++) {
		u32 h = rd32(base + p);
		putc(' '); puthex(h, 8); putc('@'); puthex(p, 3);
		if (!h) break;
		u32 body = (h & 0xffff) == 1 ? 0x48 : 8; /* AER: the whole capability */
		for (u32 o = 4; o < body; o += 4) { putc(','); puthex(rd32(base + p + o), 8); }
		p = h >> 20;
	}
	puts("\n");
}

static void bus(u32 b, int ecam) {
	for (u32 s = 0; s < 32; s++)
		for (u32 f = 0; f < 8; f++) {
			u32 id = pci_rd32(b, s, f, 0);
			if ((id & 0xffff) == 0xffff) { if (f == 0) break; continue; }
			dump(b, s, f);
			if (ecam) ext(b, s, f);
			u8 hdr = pci_rd8(b, s, f, 0x0e);
			if ((hdr & 0x7f) == 1) {
				u32 sec = pci_rd8(b, s, f, 0x19);
				if (sec > b) bus(sec, ecam);
			}
			if (f == 0 && !(hdr & 0x80)) break;
		}
}

int main(u32 start_info) {
	int ecam = 0; /* `ecam` on the command line (PVH start_info cmdline_paddr) */
	u32 cmd = start_info ? rd32(start_info + 24) : 0;
	if (cmd) for (const char *c = (const char *)cmd; *c; c++) if (c[0] == 'e' && c[1] == 'c' && c[2] == 'a' && c[3] == 'm') ecam = 1;
	serial_init();
	bus(0, ecam);
	return 0x10;
}
