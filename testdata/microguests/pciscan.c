/* PCI scan of bus 0 through CF8/CFC: one line per function with the guest-visible identity
 * (IDs, class, revision, header type, pin, BAR sizes by probing, capability chain with the
 * fields drivers read) and a CRC of the read-only part of the header. Firmware-assigned state
 * (BAR addresses, command, interrupt line, latency) is left out so QEMU+SeaBIOS and a direct
 * boot compare equal. */
#include "lib.h"

static void bars(u32 s, u32 f, u32 nbars) {
	u16 cmd = pci_rd16(0, s, f, 4);
	pci_wr16(0, s, f, 4, (u16)(cmd & ~3u));
	for (u32 i = 0; i < nbars; i++) {
		u32 off = 0x10 + 4 * i;
		u32 orig = pci_rd32(0, s, f, off);
		pci_wr32(0, s, f, off, 0xffffffffu);
		u32 v = pci_rd32(0, s, f, off);
		pci_wr32(0, s, f, off, orig);
		if (v == 0) continue;
		puts(" b"); putdec(i); putc('=');
		if (v & 1) {
			puts("io:"); puthex((u16)(~(v & ~3u) + 1), 4);
		} else if (((v >> 1) & 3) == 2 && i + 1 < nbars) {
			u32 ohi = pci_rd32(0, s, f, off + 4);
			pci_wr32(0, s, f, off + 4, 0xffffffffu);
			u32 hi = pci_rd32(0, s, f, off + 4);
			pci_wr32(0, s, f, off + 4, ohi);
			u64 mask = ((u64)hi << 32) | (v & ~0xfu);
			puts((v & 8) ? "m64p:" : "m64:"); puthex(~mask + 1, 10);
			i++;
		} else {
			puts((v & 8) ? "m32p:" : "m32:"); puthex(~(v & ~0xfu) + 1, 8);
		}
	}
	if (nbars == 6) { /* expansion ROM BAR */
		u32 orig = pci_rd32(0, s, f, 0x30);
		pci_wr32(0, s, f, 0x30, 0xfffff800u);
		u32 v = pci_rd32(0, s, f, 0x30);
		pci_wr32(0, s, f, 0x30, orig);
		if (v & ~0x7ffu) { puts(" rom:"); puthex(~(v & ~0x7ffu) + 1, 8); }
	}
	pci_wr16(0, s, f, 4, cmd);
}

static void caps(u32 s, u32 f) {
	if (!(pci_rd16(0, s, f, 6) & 0x10)) return;
	u32 p = pci_rd8(0, s, f, 0x34) & 0xfc;
	puts(" caps");
	for (int n = 0; p && n < 48; n++) {
		u32 d = pci_rd32(0, s, f, p);
		putc(' '); puthex(d & 0xff, 2); putc('@'); puthex(p, 2);
		if ((d & 0xff) == 0x11) { /* MSI-X: table size, table and PBA BIR/offset */
			putc('['); puthex(d >> 16, 4); putc(','); puthex(pci_rd32(0, s, f, p + 4), 8);
			putc(','); puthex(pci_rd32(0, s, f, p + 8), 8); putc(']');
		} else if ((d & 0xff) == 0x09) { /* vendor cap: whole body as virtio-pci describes it */
			u32 len = (d >> 16) & 0xff;
			putc('[');
			for (u32 o = 0; o < len && o < 24; o += 4) { if (o) putc(','); puthex(pci_rd32(0, s, f, p + o), 8); }
			putc(']');
		} else if ((d & 0xff) == 0x05) { /* MSI: message control */
			putc('['); puthex(d >> 16, 4); putc(']');
		}
		p = (d >> 8) & 0xfc;
	}
}

static void function(u32 s, u32 f) {
	u32 id = pci_rd32(0, s, f, 0);
	u32 cls = pci_rd32(0, s, f, 8);
	u8 hdr = pci_rd8(0, s, f, 0x0e);
	puts("00:"); puthex(s, 2); putc('.'); putdec(f);
	putc(' '); puthex(id & 0xffff, 4); putc(':'); puthex(id >> 16, 4);
	if ((hdr & 0x7f) == 0) {
		u32 sub = pci_rd32(0, s, f, 0x2c);
		puts(" sub "); puthex(sub & 0xffff, 4); putc(':'); puthex(sub >> 16, 4);
	}
	puts(" class "); puthex(cls >> 8, 6);
	puts(" rev "); puthex(cls & 0xff, 2);
	puts(" hdr "); puthex(hdr, 2);
	puts(" pin "); putdec(pci_rd8(0, s, f, 0x3d));
	puts(" status "); puthex(pci_rd16(0, s, f, 6) & 0xfff8, 4);
	/* CRC of the header bytes no firmware writes: 00-03, 06-0b, 0e-0f, 28-2f, 34, 3d-3f */
	u8 h[64];
	for (u32 o = 0; o < 64; o += 4) { u32 d = pci_rd32(0, s, f, o); for (int k = 0; k < 4; k++) h[o + k] = (u8)(d >> (8 * k)); }
	h[4] = h[5] = h[0x0c] = h[0x0d] = h[0x3c] = 0;
	for (int k = 0x10; k < 0x28; k++) h[k] = 0;
	for (int k = 0x30; k < 0x34; k++) h[k] = 0; /* ROM BAR address */
	h[6] &= 0xf8; h[7] = 0; /* status: error bits are RW1C and may differ */
	if ((hdr & 0x7f) == 1) for (int k = 0x18; k < 0x34; k++) h[k] = 0; /* bridge windows, bus numbers */
	puts(" hcrc "); puthex(crc32(h, 64), 8);
	bars(s, f, (hdr & 0x7f) == 0 ? 6 : 2);
	caps(s, f);
	puts("\n");
}

int main(u32 start_info) {
	(void)start_info;
	serial_init();
	puts("pci scan begin\n");
	for (u32 s = 0; s < 32; s++) {
		for (u32 f = 0; f < 8; f++) {
			u32 id = pci_rd32(0, s, f, 0);
			if ((id & 0xffff) == 0xffff) { if (f == 0) break; continue; }
			function(s, f);
			if (f == 0 && !(pci_rd8(0, s, f, 0x0e) & 0x80)) break;
		}
	}
	puts("pci scan end\n");
	return 0x10;
}
