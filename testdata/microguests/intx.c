/* INTx: drives every virtio-rng (1af4:1044), on bus 0 and behind its bridges, with MSI-X off and watches its legacy interrupt
 * arrive through the IOAPIC, polled with IF=0 (kvm_pvm cannot deliver interrupts to a 32-bit
 * guest): GSIs 5, 10, 11 (PIIX PIRQ targets) and 16..23 (ICH9 PIRQs) are level-triggered to
 * vector 0x30; the pin whose Remote IRR goes up
 * names the GSI. Reading the ISR register must drop the level line: re-arming the pin (edge →
 * level clears Remote IRR) must not re-deliver until the next request completes. The command
 * register's INTX_DISABLE and an enabled MSI-X must keep the pin quiet. */
#include "virtio.h"

#define IOREGSEL 0xfec00000u
#define IOWIN 0xfec00010u

static u32 redir(u32 gsi) {
	wr32(IOREGSEL, 0x10 + 2 * gsi);
	return rd32(IOWIN);
}
static void set_redir(u32 gsi, u32 lo) {
	wr32(IOREGSEL, 0x10 + 2 * gsi + 1);
	wr32(IOWIN, 0);
	wr32(IOREGSEL, 0x10 + 2 * gsi);
	wr32(IOWIN, lo);
}
/* Level, active high, vector 0x30, unmasked; passing through edge clears Remote IRR. If the
 * line is still high the IOAPIC delivers again at once and Remote IRR is set again. */
static void rearm(u32 gsi) {
	set_redir(gsi, 0x30 | 1u << 16);
	set_redir(gsi, 0x30 | 1u << 15);
}
static int remote_irr(u32 gsi) { return (redir(gsi) >> 14) & 1; }

static const u8 gsis[] = {16, 17, 18, 19, 20, 21, 22, 23, 5, 10, 11}; /* q35 drives 16..23 first */
#define NGSI (sizeof(gsis) / sizeof(gsis[0]))

/* The GSI that delivered a level interrupt, or -1. */
static int pending_gsi(void) {
	for (u32 i = 0; i < NGSI; i++)
		if (remote_irr(gsis[i])) return gsis[i];
	return -1;
}

/* A wall-clock budget: true until `secs` RTC second changes have been seen (loaded hosts and
 * TCG make iteration counts meaningless). */
static u8 rtc_last;
static u32 rtc_ticks;
static u8 rtc_sec(void) {
	outb(0x70, 0);
	return inb(0x71);
}
static void budget_start(void) {
	rtc_last = rtc_sec();
	rtc_ticks = 0;
}
static int within(u32 secs) {
	u8 now = rtc_sec();
	if (now != rtc_last) {
		rtc_last = now;
		rtc_ticks++;
	}
	return rtc_ticks < secs;
}

static void spin(u32 n) {
	for (u32 i = 0; i < n; i++) __asm__ volatile("pause");
}

static u16 idx;
static int request(struct vdev *v) {
	u16 used0 = rd16(USED + 2);
	desc_set(DESC, 0, 0x304000, 16, VIRTQ_F_WRITE, 0);
	wr16(AVAIL, 0); /* interrupts wanted */
	wr16(AVAIL + 4 + 2 * (idx % QSZ), 0);
	barrier();
	idx++;
	wr16(AVAIL + 2, idx);
	barrier();
	wr16(v->notify + rd16(v->common + 0x1e) * v->notify_mult, 0);
	budget_start();
	while (within(5))
		if (rd16(USED + 2) != used0) return 0;
	return -1;
}

static u32 MSIX; /* the MSI-X capability of the device under test */

static int find_from(struct vdev *v, u32 start) {
	for (u32 s = start; s < 32; s++) {
		if (pci_rd32(VBUS, s, 0, 0) != 0x10441af4u) continue;
		v->slot = s;
		pci_wr16(VBUS, s, 0, 4, 0x6); /* memory + bus master, INTx not disabled */
		for (u32 p = pci_rd8(VBUS, s, 0, 0x34); p; p = (pci_rd32(VBUS, s, 0, p) >> 8) & 0xfc) {
			u32 h = pci_rd32(VBUS, s, 0, p);
			if ((h & 0xff) != 0x09) continue;
			u32 type = (h >> 24) & 0xff;
			u32 addr = (type >= 1 && type <= 4) ? bar_base(s, pci_rd8(VBUS, s, 0, p + 4)) + pci_rd32(VBUS, s, 0, p + 8) : 0;
			if (type == 1) v->common = addr;
			if (type == 2) { v->notify = addr; v->notify_mult = pci_rd32(VBUS, s, 0, p + 16); }
			if (type == 3) v->isr = addr;
		}
		for (u32 p = pci_rd8(VBUS, s, 0, 0x34); p; p = (pci_rd32(VBUS, s, 0, p) >> 8) & 0xfc)
			if ((pci_rd32(VBUS, s, 0, p) & 0xff) == 0x11) MSIX = p;
		return 1;
	}
	return 0;
}

int main(u32 start_info) {
	(void)start_info;
	(void)vdev_find; /* the header's first-device finder; this guest walks them all */
	serial_init();
	outb(0x21, 0xff); /* 8259s masked */
	outb(0xa1, 0xff);
	wr32(0xfee000f0, 0x1ff); /* LAPIC on */
	int devices = 0, bad = 0;
	struct vdev v;
	/* Bus 0, then the buses behind its bridges (as firmware numbered them). */
	u32 buses[33], nbus = 0;
	buses[nbus++] = 0;
	for (u32 s = 0; s < 32; s++)
		for (u32 f = 0; f < 8; f++) {
			u32 id = pci_rd32(0, s, f, 0);
			if ((id & 0xffff) == 0xffff) { if (f == 0) break; continue; }
			u8 hdr = pci_rd8(0, s, f, 0x0e);
			if ((hdr & 0x7f) == 1 && pci_rd8(0, s, f, 0x19) && nbus < 33) buses[nbus++] = pci_rd8(0, s, f, 0x19);
			if (f == 0 && !(hdr & 0x80)) break;
		}
	for (u32 b = 0; b < nbus; b++)
	for (u32 start = 0; (VBUS = buses[b], find_from(&v, start)); start = v.slot + 1) {
		devices++;
		idx = 0;
		for (u32 i = 0; i < NGSI; i++) rearm(gsis[i]);
		puts("intx: ");
		if (VBUS) { puts("bus="); putdec(VBUS); putc(' '); }
		puts("slot=");
		putdec(v.slot);
		puts(" pin=");
		putdec(pci_rd8(VBUS, v.slot, 0, 0x3d));
		puts(" msix_enabled=");
		putdec(pci_rd16(VBUS, v.slot, 0, MSIX + 2) >> 15);
		int e = vdev_init(&v);
		if (e || request(&v)) {
			puts(e ? " init failed\n" : " request failed\n");
			bad++;
			continue;
		}
		int gsi = -1;
		budget_start();
		while (gsi < 0 && within(3)) gsi = pending_gsi();
		puts(" gsi=");
		if (gsi < 0) {
			puts("none\n");
			bad++;
			continue;
		}
		putdec((u32)gsi);
		puts(" lapic_irr=");
		putdec((rd32(0xfee00210) >> 0x10) & 1); /* vector 0x30 */
		puts(" status_int=");
		putdec((pci_rd16(VBUS, v.slot, 0, 6) >> 3) & 1);
		rearm((u32)gsi); /* still asserted: must re-deliver at once */
		spin(1000);
		puts(" held=");
		putdec(remote_irr((u32)gsi));
		puts(" isr=");
		putdec(rd8(v.isr));
		puts(" isr_reread=");
		putdec(rd8(v.isr));
		puts(" status_int_after=");
		putdec((pci_rd16(VBUS, v.slot, 0, 6) >> 3) & 1);
		rearm((u32)gsi);
		spin(100000);
		puts(" redelivered=");
		putdec(remote_irr((u32)gsi));
		if (request(&v)) {
			puts(" second request failed\n");
			bad++;
			continue;
		}
		int again = 0;
		budget_start();
		while (!again && within(3)) again = remote_irr((u32)gsi);
		puts(" second=");
		putdec((u32)again);
		rd8(v.isr);
		rearm((u32)gsi);
		/* Command INTX_DISABLE holds the line low; the status bit still shows the interrupt. */
		pci_wr16(VBUS, v.slot, 0, 4, 0x406);
		if (request(&v)) {
			puts(" third request failed\n");
			bad++;
			continue;
		}
		spin(100000);
		puts(" disabled=");
		putdec(remote_irr((u32)gsi));
		puts(" status_int_disabled=");
		putdec((pci_rd16(VBUS, v.slot, 0, 6) >> 3) & 1);
		pci_wr16(VBUS, v.slot, 0, 4, 0x006);
		again = 0;
		budget_start();
		while (!again && within(3)) again = remote_irr((u32)gsi);
		puts(" reenabled=");
		putdec((u32)again);
		rd8(v.isr);
		rearm((u32)gsi);
		/* MSI-X on (function-masked, no vectors assigned): no INTx either. */
		pci_wr16(VBUS, v.slot, 0, MSIX + 2, 0xc000);
		if (request(&v)) {
			puts(" msi-x request failed\n");
			bad++;
			continue;
		}
		spin(100000);
		puts(" msix_on=");
		putdec(remote_irr((u32)gsi));
		rd8(v.isr);
		pci_wr16(VBUS, v.slot, 0, MSIX + 2, 0x0000);
		puts("\n");
		wr8(v.common + 0x14, 0); /* reset: the device forgets the rings */
		while (rd8(v.common + 0x14)) {
		}
	}
	puts("intx: devices=");
	putdec((u32)devices);
	puts("\n");
	return bad ? 0x31 : 0x30;
}
