/* Firmware tables and CPU identity as a guest sees them: the SMBIOS type-1 UUID, the MP
 * table's processor entries (APIC ID, BSP flag) and CPUID leaf 1 bits (hypervisor, APIC). */
#include "lib.h"

static u32 find(const char *sig, u32 len) {
	for (u32 a = 0xf0000; a < 0x100000; a += 16) {
		u32 i = 0;
		while (i < len && rd8(a + i) == (u8)sig[i]) i++;
		if (i == len) return a;
	}
	return 0;
}

static void smbios(void) {
	u32 ep = find("_SM_", 4), table, end;
	if (ep) {
		table = rd32(ep + 0x18);
		end = table + rd16(ep + 0x16);
	} else if ((ep = find("_SM3_", 5))) {
		table = rd32(ep + 0x10);
		end = table + rd32(ep + 0x0c);
	} else {
		puts("smbios none\n");
		return;
	}
	u32 p = table;
	for (int n = 0; n < 64 && p + 4 <= end; n++) {
		u8 type = rd8(p), len = rd8(p + 1);
		if (type == 1) {
			puts("smbios type1 uuid ");
			for (u32 i = 0; i < 16; i++) puthex(rd8(p + 8 + i), 2);
			puts("\n");
			return;
		}
		if (type == 127 || len < 4) break;
		u32 q = p + len;
		while (q + 1 < end && (rd8(q) || rd8(q + 1))) q++;
		p = q + 2;
	}
	puts("smbios type1 missing\n");
}

static void mptable(void) {
	u32 fp = find("_MP_", 4);
	if (!fp || !rd32(fp + 4)) { puts("mptable none\n"); return; }
	u32 t = rd32(fp + 4);
	u32 n = rd16(t + 0x22), p = t + 0x2c;
	puts("mptable cpus");
	for (u32 i = 0; i < n; i++) {
		u8 kind = rd8(p);
		if (kind == 0) {
			putc(' '); puthex(rd8(p + 1), 2);
			if (rd8(p + 3) & 2) puts("(bsp)");
			p += 20;
		} else {
			p += 8;
		}
	}
	puts("\n");
}

int main(u32 start_info) {
	(void)start_info;
	serial_init();
	smbios();
	mptable();
	u32 a, b, c, d;
	__asm__ volatile("cpuid" : "=a"(a), "=b"(b), "=c"(c), "=d"(d) : "a"(1), "c"(0));
	puts("cpuid1 hypervisor "); putdec(c >> 31);
	puts(" apic "); putdec((d >> 9) & 1);
	puts(" initial-apic-id "); putdec(b >> 24);
	puts(" logical "); putdec((b >> 16) & 0xff);
	puts("\n");
	return 0x40;
}
