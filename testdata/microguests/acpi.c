/* ACPI: finds the RSDP where OSes scan (EBDA, 0xe0000..0xfffff), walks the RSDT/XSDT, checks every
 * checksum, prints the FADT's fixed hardware, the MADT's CPUs/IOAPIC/overrides, MCFG and the DSDT's
 * \_S5 sleep type; measures the PM timer against the RTC second; then arms the power button
 * (PWRBTN_EN), routes GSI 9 through the IOAPIC, prints "acpi: ready" and waits. On PWRBTN_STS it
 * checks the SCI reached the LAPIC (IRR), clears the status and enters S5 through PM1a_CNT. */
#include "lib.h"

static u16 inw(u16 p) { u16 v; __asm__ volatile("inw %1, %0" : "=a"(v) : "Nd"(p)); return v; }
static int failures;

static int sum_ok(u32 addr, u32 len) {
	u8 s = 0;
	for (u32 i = 0; i < len; i++) s = (u8)(s + rd8(addr + i));
	return s == 0;
}
static int sig_is(u32 a, const char *s) {
	for (int i = 0; i < 4; i++)
		if (rd8(a + (u32)i) != (u8)s[i]) return 0;
	return 1;
}
static void put4(u32 a) { for (int i = 0; i < 4; i++) putc((char)rd8(a + (u32)i)); }

static u32 find_rsdp(void) {
	u32 bda = 0x40e;
	__asm__("" : "+r"(bda)); /* opaque: gcc rejects constant low addresses */
	u32 ebda = (u32)rd16(bda) << 4;
	u32 ranges[2][2] = {{ebda, ebda + 1024}, {0xe0000, 0x100000}};
	for (int r = 0; r < 2; r++) {
		if (ranges[r][0] == 0) continue;
		for (u32 a = ranges[r][0]; a < ranges[r][1]; a += 16)
			if (sig_is(a, "RSD ") && sig_is(a + 4, "PTR ") && sum_ok(a, 20)) return a;
	}
	return 0;
}

static u32 table(u32 addr, const char *what) {
	u32 len = rd32(addr + 4);
	if (len < 36 || len > 0x100000 || !sum_ok(addr, len)) {
		puts("acpi: bad checksum in ");
		puts(what);
		puts("\n");
		failures++;
		return 0;
	}
	return len;
}

static void kv(const char *k, u32 v, int digits) {
	puts("acpi: ");
	puts(k);
	puts("=0x");
	puthex(v, digits);
	puts("\n");
}

static u32 fadt, madt, mcfg;

static void madt_walk(u32 a, u32 len) {
	u32 cpus = 0;
	for (u32 o = 44; o + 2 <= len;) {
		u8 type = rd8(a + o), l = rd8(a + o + 1);
		if (l < 2) break;
		if (type == 0 && (rd32(a + o + 4) & 1)) cpus++;
		if (type == 9 && (rd32(a + o + 8) & 1)) cpus++;
		if (type == 1) kv("ioapic", rd32(a + o + 4), 8);
		if (type == 2) {
			puts("acpi: override irq ");
			putdec(rd8(a + o + 3));
			puts(" -> gsi ");
			putdec(rd32(a + o + 4));
			puts(" flags 0x");
			puthex(rd16(a + o + 8), 4);
			puts("\n");
		}
		o += l;
	}
	puts("acpi: cpus=");
	putdec(cpus);
	puts("\n");
}

/* \_S5 package: NameOp "_S5_" PackageOp PkgLength NumElements <SLP_TYPa> ... */
static int s5_type(u32 dsdt, u32 len) {
	for (u32 o = 36; o + 8 < len; o++) {
		if (!sig_is(dsdt + o, "_S5_") || rd8(dsdt + o + 4) != 0x12) continue;
		u32 p = dsdt + o + 5;
		p += 1 + (rd8(p) >> 6); /* PkgLength */
		p += 1;                 /* NumElements */
		u8 op = rd8(p);
		if (op == 0x00) return 0;
		if (op == 0x01) return 1;
		if (op == 0x0a) return rd8(p + 1);
		return -1;
	}
	return -1;
}

static u8 cmos(u8 i) {
	outb(0x70, i);
	return inb(0x71);
}

/* The PM timer against the RTC second: each RTC edge is bracketed by timer readings taken
 * around the CMOS reads, so a preempted vCPU widens the bracket instead of skewing the rate. */
static u16 tport;
static u32 tmask, tacc, tlast;
static u32 ticks(void) {
	u32 now = inl(tport) & tmask;
	tacc += (now - tlast) & tmask;
	tlast = now;
	return tacc;
}
static void rtc_edge(u32 *lo, u32 *hi) {
	u8 s0 = cmos(0);
	u32 b = ticks();
	for (;;) {
		u32 before = ticks();
		u8 c = cmos(0);
		u32 after = ticks();
		if (c != s0) {
			*lo = b;
			*hi = after;
			return;
		}
		b = before;
	}
}
/* Prints the estimate and whether 3579545 Hz lies in the bracket (1% slack). */
static void pmtmr_check(u16 port, u32 mask) {
	tport = port;
	tmask = mask;
	tlast = inl(port) & mask;
	u32 l1, u1, l2, u2;
	rtc_edge(&l1, &u1);
	rtc_edge(&l2, &u2);
	u32 min = l2 - u1, max = u2 - l1;
	puts("acpi: pmtmr_hz=");
	putdec(min / 2 + max / 2);
	puts(" bracket ");
	putdec(min);
	puts("..");
	putdec(max);
	puts(min < 3615340 && max > 3543749 && max - min < 1000000 ? " (ok)\n" : " (off)\n");
}

int main(u32 start_info) {
	(void)start_info;
	serial_init();
	u32 rsdp = find_rsdp();
	if (!rsdp) {
		puts("acpi: no RSDP\n");
		return 0x41;
	}
	u8 rev = rd8(rsdp + 15);
	if (rev >= 2 && !sum_ok(rsdp, rd32(rsdp + 20))) {
		puts("acpi: bad RSDP extended checksum\n");
		failures++;
	}
	int x = rev >= 2 && rd32(rsdp + 24) != 0;
	u32 root = x ? rd32(rsdp + 24) : rd32(rsdp + 16);
	u32 rlen = table(root, x ? "XSDT" : "RSDT");
	puts("acpi: tables");
	for (u32 o = 36; o < rlen; o += x ? 8 : 4) {
		u32 t = rd32(root + o);
		if (!table(t, "entry")) continue;
		putc(' ');
		put4(t);
		if (sig_is(t, "FACP")) fadt = t;
		if (sig_is(t, "APIC")) madt = t;
		if (sig_is(t, "MCFG")) mcfg = t;
	}
	puts("\n");
	if (!fadt || !madt) {
		puts("acpi: FACP or APIC missing\n");
		return 0x42;
	}
	u32 flen = rd32(fadt + 4);
	u32 dsdt = (flen >= 148 && rd32(fadt + 140)) ? rd32(fadt + 140) : rd32(fadt + 40);
	u32 dlen = table(dsdt, "DSDT");
	if (dlen && sig_is(dsdt, "DSDT")) puts("acpi: DSDT ok\n");
	u16 sci = rd16(fadt + 46);
	u16 evt = (u16)rd32(fadt + 56), cnt = (u16)rd32(fadt + 64), tmr = (u16)rd32(fadt + 76);
	u32 fl = rd32(fadt + 112);
	kv("sci", sci, 2);
	kv("pm1a_evt", evt, 4);
	kv("pm1a_cnt", cnt, 4);
	kv("pm_tmr", tmr, 4);
	kv("pm1_evt_len", rd8(fadt + 88), 2);
	kv("pm1_cnt_len", rd8(fadt + 89), 2);
	kv("pm_tmr_len", rd8(fadt + 91), 2);
	kv("gpe0", rd32(fadt + 80), 4);
	kv("gpe0_len", rd8(fadt + 92), 2);
	kv("tmr_val_ext", (fl >> 8) & 1, 1);
	kv("pwr_button_is_control_method", (fl >> 4) & 1, 1);
	kv("hw_reduced", (fl >> 20) & 1, 1);
	kv("iapc_boot_arch", rd16(fadt + 109), 4);
	puts("acpi: fadt-rev=");
	putdec(rd8(fadt + 8));
	puts(" smi_cmd=0x");
	puthex(rd32(fadt + 48), 2);
	puts(" acpi_enable=0x");
	puthex(rd8(fadt + 52), 2);
	puts("\n");
	madt_walk(madt, rd32(madt + 4));
	kv("lapic", rd32(madt + 36), 8);
	if (mcfg && rd32(mcfg + 4) >= 60) {
		kv("mcfg_base", rd32(mcfg + 44), 8);
		kv("mcfg_buses", (u32)rd8(mcfg + 54) << 8 | rd8(mcfg + 55), 4);
	}
	int s5 = dlen ? s5_type(dsdt, dlen) : -1;
	puts("acpi: s5_slp_typ=");
	if (s5 < 0) puts("missing"); else putdec((u32)s5);
	puts("\n");

	/* ACPI mode: firmware that boots in legacy mode wants ACPI_ENABLE written to SMI_CMD. */
	if (!(inw(cnt) & 1) && rd32(fadt + 48)) {
		outb((u16)rd32(fadt + 48), rd8(fadt + 52));
		for (int i = 0; i < 100000 && !(inw(cnt) & 1); i++) {
		}
	}
	kv("sci_en", inw(cnt) & 1, 1);

	pmtmr_check(tmr, ((fl >> 8) & 1) ? 0xffffffffu : 0x00ffffffu);

	/* LAPIC on, GSI 9 → vector 0x29, level, active high, to APIC 0 (masked by IF=0: seen in IRR). */
	wr32(0xfee000f0, 0x1ff);
	wr32(0xfec00000, 0x10 + 2 * 9 + 1);
	wr32(0xfec00010, 0);
	wr32(0xfec00000, 0x10 + 2 * 9);
	wr32(0xfec00010, 0x29 | 1u << 15);

	outw(evt, 0x0100);              /* clear a stale PWRBTN_STS */
	outw((u16)(evt + 2), 0x0100);   /* PWRBTN_EN */
	kv("pm1_en", inw((u16)(evt + 2)), 4);
	kv("sci_pending_before", (rd32(0xfee00210) >> 9) & 1, 1);
	if (failures) {
		puts("acpi: checksum failures\n");
		return 0x43;
	}
	puts("acpi: ready\n");
	while (!(inw(evt) & 0x0100)) {
		__asm__ volatile("pause");
	}
	puts("acpi: power button pressed\n");
	int seen = 0;
	for (int i = 0; i < 1000000 && !seen; i++) seen = (rd32(0xfee00210) >> 9) & 1;
	puts(seen ? "acpi: sci delivered to vector 0x29\n" : "acpi: sci not delivered\n");
	outw(evt, 0x0100);
	kv("pwrbtn_sts_after_clear", (inw(evt) >> 8) & 1, 1);
	if (s5 < 0) return 0x44;
	puts("acpi: entering S5\n");
	outw(cnt, (u16)((inw(cnt) & 1) | (u32)s5 << 10 | 1u << 13));
	for (u32 changes = 0, sec = cmos(0); changes < 10;) { /* 10 s of wall clock */
		u32 now = cmos(0);
		if (now != sec) {
			changes++;
			sec = now;
		}
	}
	puts("acpi: still running after S5\n");
	return 0x45;
}
