/* virtio-blk behind a bridge: finds the first virtio-blk (modern 1af4:1042, else transitional
 * 1af4:1001, driven through its modern interface) on a bus behind a PCIe root port or PCI
 * bridge, prints where it is and its capacity, reads sector 0 with queue 0 signalling MSI-X
 * vector 0 (table behind the bridge's window, message to the LAPIC with vector 0x41), prints
 * the CRC32 and used length, and whether the message reached the LAPIC (IRR; interrupts stay
 * off: kvm_pvm cannot deliver them to a 32-bit guest). */
#include "virtio.h"

#define HDR 0x303000u
#define BUF 0x304000u
#define ST 0x305000u

int main(u32 start_info) {
	(void)start_info;
	serial_init();
	struct vdev v = {0};
	u16 id = 0x1042;
	if (!vdev_find_behind(&v, id)) { id = 0x1001; if (!vdev_find_behind(&v, id)) { puts("no virtio-blk behind a bridge\n"); return 0x21; } }
	puts("virtio-blk "); puthex(id, 4); puts(" at "); puthex(VBUS, 2); putc(':'); puthex(v.slot, 2); puts(".0\n");
	if (vdev_init(&v)) { puts("FEATURES_OK refused\n"); return 0x22; }
	u32 d = v.device;
	puts("capacity "); puthex(((u64)rd32(d + 4) << 32) | rd32(d), 10); puts("\n");
	/* MSI-X: table entry 0 → LAPIC 0, vector 0x41; queue 0 uses it. */
	u32 msix = 0;
	for (u32 p = pci_rd8(VBUS, v.slot, 0, 0x34); p; p = (pci_rd32(VBUS, v.slot, 0, p) >> 8) & 0xfc)
		if ((pci_rd32(VBUS, v.slot, 0, p) & 0xff) == 0x11) msix = p;
	wr32(0xfee000f0, 0x1ff); /* LAPIC on */
	u32 table = bar_base(v.slot, pci_rd32(VBUS, v.slot, 0, msix + 4) & 7) + (pci_rd32(VBUS, v.slot, 0, msix + 4) & ~7u);
	wr32(table, 0xfee00000u); wr32(table + 4, 0); wr32(table + 8, 0x41); wr32(table + 12, 0);
	pci_wr16(VBUS, v.slot, 0, msix + 2, 0x8000);
	u32 c = v.common;
	wr16(c + 0x16, 0);
	wr16(c + 0x1a, 0);
	puts("msix cap "); puthex(msix, 2); puts(" queue vector "); putdec(rd16(c + 0x1a)); puts("\n");
	wr32(HDR, 0); wr32(HDR + 4, 0); wr32(HDR + 8, 0); wr32(HDR + 12, 0);
	wr8(ST, 0xff);
	desc_set(DESC, 0, HDR, 16, VIRTQ_F_NEXT, 1);
	desc_set(DESC, 1, BUF, 512, VIRTQ_F_WRITE | VIRTQ_F_NEXT, 2);
	desc_set(DESC, 2, ST, 1, VIRTQ_F_WRITE, 0);
	u16 used0 = rd16(USED + 2);
	wr16(AVAIL, 0); /* interrupts wanted */
	wr16(AVAIL + 4, 0);
	barrier();
	wr16(AVAIL + 2, 1);
	barrier();
	wr16(v.notify + rd16(c + 0x1e) * v.notify_mult, 0);
	int r = -1;
	for (u64 d = deadline(); before(d);) if (rd16(USED + 2) != used0) { r = 0; break; }
	u32 irr = 0;
	for (u32 n = 0; n < 200000 && !irr; n++) irr = (rd32(0xfee00220) >> 1) & 1; /* vector 0x41 */
	puts("read sector 0 submit "); putdec((u32)r); puts(" status "); putdec(rd8(ST));
	puts(" used.len "); putdec(rd32(USED + 4 + 4)); puts(" crc "); puthex(crc32((const u8 *)BUF, 512), 8);
	puts(" msix irr "); putdec(irr); puts("\n");
	return 0x20;
}
