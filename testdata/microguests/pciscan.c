/* PCI scan of bus 0 and of the buses behind its bridges (as firmware numbered them) through
 * CF8/CFC: one line per function with the guest-visible identity (IDs, class, revision, header
 * type, pin, BAR sizes by probing, capability chain with the fields drivers read) and a CRC of
 * the read-only part of the header. Firmware-assigned state (BAR addresses, command, interrupt
 * line, latency, bridge windows) is left out so QEMU+SeaBIOS and a direct boot compare equal.
 * Bridges add their bus numbers and the write masks of their header (every register probed
 * with all ones, then restored); PCI Express functions add their extended capabilities read
 * through q35's ECAM. */
#include "lib.h"

static u32 B; /* the bus being scanned */

static void bars(u32 s, u32 f, u32 nbars) {
	u16 cmd = pci_rd16(B, s, f, 4);
	pci_wr16(B, s, f, 4, (u16)(cmd & ~3u));
	for (u32 i = 0; i < nbars; i++) {
		u32 off = 0x10 + 4 * i;
		u32 orig = pci_rd32(B, s, f, off);
		pci_wr32(B, s, f, off, 0xffffffffu);
		u32 v = pci_rd32(B, s, f, off);
		pci_wr32(B, s, f, off, orig);
		if (v == 0) continue;
		puts(" b"); putdec(i); putc('=');
		if (v & 1) {
			puts("io:"); puthex((u16)(~(v & ~3u) + 1), 4);
		} else if (((v >> 1) & 3) == 2 && i + 1 < nbars) {
			u32 ohi = pci_rd32(B, s, f, off + 4);
			pci_wr32(B, s, f, off + 4, 0xffffffffu);
			u32 hi = pci_rd32(B, s, f, off + 4);
			pci_wr32(B, s, f, off + 4, ohi);
			u64 mask = ((u64)hi << 32) | (v & ~0xfu);
			puts((v & 8) ? "m64p:" : "m64:"); puthex(~mask + 1, 10);
			i++;
		} else {
			puts((v & 8) ? "m32p:" : "m32:"); puthex(~(v & ~0xfu) + 1, 8);
		}
	}
	if (nbars == 6) { /* expansion ROM BAR */
		u32 orig = pci_rd32(B, s, f, 0x30);
		pci_wr32(B, s, f, 0x30, 0xfffff800u);
		u32 v = pci_rd32(B, s, f, 0x30);
		pci_wr32(B, s, f, 0x30, orig);
		if (v & ~0x7ffu) { puts(" rom:"); puthex(~(v & ~0x7ffu) + 1, 8); }
	}
	pci_wr16(B, s, f, 4, cmd);
}

static u32 crc_cfg(u32 s, u32 f, u32 from, u32 len) {
	u8 h[64];
	u32 n = len > 64 ? 64 : len;
	for (u32 o = 0; o < n; o += 4) { u32 d = pci_rd32(B, s, f, from + o); for (int k = 0; k < 4; k++) h[o + k] = (u8)(d >> (8 * k)); }
	return crc32(h, n);
}

/* Extended capabilities through ECAM (q35: 0xb0000000), and a CRC of 0x100..0x200. */
static void ext_caps(u32 s, u32 f) {
	u32 base = 0xb0000000u | B << 20 | s << 15 | f << 12;
	u8 h[256];
	for (u32 o = 0; o < 256; o += 4) { u32 d = rd32(base + 0x100 + o); for (int k = 0; k < 4; k++) h[o + k] = (u8)(d >> (8 * k)); }
	puts(" ext");
	u32 p = 0x100;
	for (int n = 0; p >= 0x100 && p < 0x1000 && n < 32; n++) {
		u32 d = rd32(base + p);
		if (!d) break;
		putc(' '); puthex(d & 0xffff, 4); putc('.'); puthex((d >> 16) & 0xf, 1); putc('@'); puthex(p, 3);
		p = d >> 20;
	}
	puts(" ecrc "); puthex(crc32(h, 256), 8);
}

static int caps(u32 s, u32 f) {
	int express = 0;
	if (!(pci_rd16(B, s, f, 6) & 0x10)) return 0;
	u32 p = pci_rd8(B, s, f, 0x34) & 0xfc;
	puts(" caps");
	for (int n = 0; p && n < 48; n++) {
		u32 d = pci_rd32(B, s, f, p);
		putc(' '); puthex(d & 0xff, 2); putc('@'); puthex(p, 2);
		if ((d & 0xff) == 0x11) { /* MSI-X: table size, table and PBA BIR/offset */
			putc('['); puthex(d >> 16, 4); putc(','); puthex(pci_rd32(B, s, f, p + 4), 8);
			putc(','); puthex(pci_rd32(B, s, f, p + 8), 8); putc(']');
		} else if ((d & 0xff) == 0x09) { /* vendor cap: whole body as virtio-pci describes it */
			u32 len = (d >> 16) & 0xff;
			putc('[');
			for (u32 o = 0; o < len && o < 24; o += 4) { if (o) putc(','); puthex(pci_rd32(B, s, f, p + o), 8); }
			putc(']');
		} else if ((d & 0xff) == 0x05) { /* MSI: message control */
			putc('['); puthex(d >> 16, 4); putc(']');
		} else if ((d & 0xff) == 0x10) { /* PCI Express: the whole v2 capability */
			putc('['); puthex(crc_cfg(s, f, p, 0x3c), 8); putc(']');
			express = 1;
		} else if ((d & 0xff) == 0x01 || (d & 0xff) == 0x0d) { /* PM: PMC, PMCSR; SSVID */
			putc('['); puthex(d >> 16, 4); putc(','); puthex(pci_rd32(B, s, f, p + 4), 8); putc(']');
		} else if ((d & 0xff) == 0x04 || (d & 0xff) == 0x0c) { /* slot ID; SHPC */
			putc('['); puthex(d >> 16, 4); putc(']');
		}
		p = (d >> 8) & 0xfc;
	}
	return express;
}

/* A bridge's bus numbers and the write masks of its header registers. */
static void bridge(u32 s, u32 f) {
	static const u8 regs[] = {0x04, 0x0c, 0x18, 0x1c, 0x20, 0x24, 0x28, 0x2c, 0x30, 0x38, 0x3c};
	puts(" buses "); puthex(pci_rd8(B, s, f, 0x18), 2); putc('/'); puthex(pci_rd8(B, s, f, 0x19), 2);
	putc('/'); puthex(pci_rd8(B, s, f, 0x1a), 2);
	puts(" wm");
	for (u32 i = 0; i < sizeof regs; i++) {
		u32 o = regs[i];
		u32 orig = pci_rd32(B, s, f, o);
		/* command: status bits are write-1-to-clear (write 0 there); bridge control: not the
		 * secondary bus reset bit */
		u32 ones = o == 0x04 ? 0x0000ffffu : o == 0x3c ? 0xffbfffffu : 0xffffffffu;
		pci_wr32(B, s, f, o, ones);
		u32 v = pci_rd32(B, s, f, o);
		pci_wr32(B, s, f, o, orig);
		if (o == 0x04) v &= 0xffff;
		putc(' '); puthex(v, 8);
	}
}

static void function(u32 s, u32 f) {
	u32 id = pci_rd32(B, s, f, 0);
	u32 cls = pci_rd32(B, s, f, 8);
	u8 hdr = pci_rd8(B, s, f, 0x0e);
	puthex(B, 2); putc(':'); puthex(s, 2); putc('.'); putdec(f);
	putc(' '); puthex(id & 0xffff, 4); putc(':'); puthex(id >> 16, 4);
	if ((hdr & 0x7f) == 0) {
		u32 sub = pci_rd32(B, s, f, 0x2c);
		puts(" sub "); puthex(sub & 0xffff, 4); putc(':'); puthex(sub >> 16, 4);
	}
	puts(" class "); puthex(cls >> 8, 6);
	puts(" rev "); puthex(cls & 0xff, 2);
	puts(" hdr "); puthex(hdr, 2);
	puts(" pin "); putdec(pci_rd8(B, s, f, 0x3d));
	puts(" status "); puthex(pci_rd16(B, s, f, 6) & 0xfff8, 4);
	/* CRC of the header bytes no firmware writes: 00-03, 06-0b, 0e-0f, 28-2f, 34, 3d-3f */
	u8 h[64];
	for (u32 o = 0; o < 64; o += 4) { u32 d = pci_rd32(B, s, f, o); for (int k = 0; k < 4; k++) h[o + k] = (u8)(d >> (8 * k)); }
	h[4] = h[5] = h[0x0c] = h[0x0d] = h[0x3c] = 0;
	for (int k = 0x10; k < 0x28; k++) h[k] = 0;
	for (int k = 0x30; k < 0x34; k++) h[k] = 0; /* ROM BAR address */
	h[6] &= 0xf8; h[7] = 0; /* status: error bits are RW1C and may differ */
	if ((hdr & 0x7f) == 1) for (int k = 0x18; k < 0x34; k++) h[k] = 0; /* bridge windows, bus numbers */
	puts(" hcrc "); puthex(crc32(h, 64), 8);
	bars(s, f, (hdr & 0x7f) == 0 ? 6 : 2);
	if (caps(s, f)) ext_caps(s, f);
	if ((hdr & 0x7f) == 1) bridge(s, f);
	puts("\n");
}

static void scan_bus(u32 bus) {
	for (u32 s = 0; s < 32; s++) {
		for (u32 f = 0; f < 8; f++) {
			B = bus;
			u32 id = pci_rd32(B, s, f, 0);
			if ((id & 0xffff) == 0xffff) { if (f == 0) break; continue; }
			function(s, f);
			u8 hdr = pci_rd8(B, s, f, 0x0e);
			if ((hdr & 0x7f) == 1) {
				u32 sec = pci_rd8(B, s, f, 0x19);
				if (sec > bus) scan_bus(sec);
				B = bus;
			}
			if (f == 0 && !(hdr & 0x80)) break;
		}
	}
}

int main(u32 start_info) {
	(void)start_info;
	serial_init();
	puts("pci scan begin\n");
	scan_bus(0);
	puts("pci scan end\n");
	return 0x10;
}
