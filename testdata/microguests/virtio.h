/* A polled modern virtio-pci driver for micro-guests: finds a device by PCI ID, walks the
 * vendor capabilities, negotiates VERSION_1 (+ indirect descriptors) and sets up queue 0. */
#ifndef FERRY_MICROGUEST_VIRTIO_H
#define FERRY_MICROGUEST_VIRTIO_H
#include "lib.h"

struct vdev { u32 slot, common, notify, isr, device, notify_mult; };
/* The bus of the device being set up (0 unless vdev_find_behind found one behind a bridge). */
static u32 VBUS;
#define QSZ 16
#define DESC 0x300000u
#define AVAIL 0x301000u
#define USED 0x302000u
#define VIRTQ_F_NEXT 1
#define VIRTQ_F_WRITE 2
#define VIRTQ_F_INDIRECT 4

static __attribute__((unused)) void desc_set(u32 table, u32 i, u64 addr, u32 len, u16 flags, u16 next) {
	u32 d = table + 16 * i;
	wr32(d, (u32)addr); wr32(d + 4, (u32)(addr >> 32)); wr32(d + 8, len); wr16(d + 12, flags); wr16(d + 14, next);
}

static u32 bar_base(u32 s, u32 bar) {
	u32 off = 0x10 + 4 * bar;
	u32 lo = pci_rd32(VBUS, s, 0, off);
	u32 hi = ((lo & 6) == 4) ? pci_rd32(VBUS, s, 0, off + 4) : 0;
	if (hi || (lo & ~0xfu) == 0) { /* above 4 GiB or unassigned: place it ourselves */
		lo = 0xe0000000u + (s << 16);
		pci_wr32(VBUS, s, 0, off, lo);
		if ((pci_rd32(VBUS, s, 0, off) & 6) == 4) pci_wr32(VBUS, s, 0, off + 4, 0);
	}
	return lo & ~0xfu;
}

static __attribute__((unused)) int vdev_find(struct vdev *v, u16 device) {
	VBUS = 0;
	for (u32 s = 0; s < 32; s++) {
		if (pci_rd32(VBUS, s, 0, 0) != (0x1af4u | (u32)device << 16)) continue;
		v->slot = s;
		pci_wr16(VBUS, s, 0, 4, 0x6); /* memory decoding + bus master */
		u32 p = pci_rd8(VBUS, s, 0, 0x34);
		while (p) {
			u32 h = pci_rd32(VBUS, s, 0, p);
			if ((h & 0xff) == 0x09) {
				u32 type = (h >> 24) & 0xff;
				u32 bar = pci_rd8(VBUS, s, 0, p + 4);
				u32 addr = (type >= 1 && type <= 4) ? bar_base(s, bar) + pci_rd32(VBUS, s, 0, p + 8) : 0;
				if (type == 1) v->common = addr;
				if (type == 2) { v->notify = addr; v->notify_mult = pci_rd32(VBUS, s, 0, p + 16); }
				if (type == 3) v->isr = addr;
				if (type == 4) v->device = addr;
			}
			p = (h >> 8) & 0xfc;
		}
		pci_wr16(VBUS, s, 0, 4, 0x6);
		return 1;
	}
	return 0;
}

/* Like vdev_find, on the buses behind the root bus's bridges (as firmware numbered them):
 * the first match in slot order; VBUS is then its bus. */
static __attribute__((unused)) int vdev_find_behind(struct vdev *v, u16 device) {
	for (u32 s = 0; s < 32; s++)
		for (u32 f = 0; f < 8; f++) {
			u32 id = pci_rd32(0, s, f, 0);
			if ((id & 0xffff) == 0xffff) { if (f == 0) break; continue; }
			u8 hdr = pci_rd8(0, s, f, 0x0e);
			u32 sec = pci_rd8(0, s, f, 0x19);
			if ((hdr & 0x7f) == 1 && sec) {
				VBUS = sec;
				for (u32 d = 0; d < 32; d++) {
					if (pci_rd32(VBUS, d, 0, 0) != (0x1af4u | (u32)device << 16)) continue;
					struct vdev w = {0};
					/* vdev_find's walk, on this bus from slot d */
					v->slot = d;
					pci_wr16(VBUS, d, 0, 4, 0x6);
					u32 p = pci_rd8(VBUS, d, 0, 0x34);
					while (p) {
						u32 h = pci_rd32(VBUS, d, 0, p);
						if ((h & 0xff) == 0x09) {
							u32 type = (h >> 24) & 0xff;
							u32 bar = pci_rd8(VBUS, d, 0, p + 4);
							u32 addr = (type >= 1 && type <= 4) ? bar_base(d, bar) + pci_rd32(VBUS, d, 0, p + 8) : 0;
							if (type == 1) w.common = addr;
							if (type == 2) { w.notify = addr; w.notify_mult = pci_rd32(VBUS, d, 0, p + 16); }
							if (type == 3) w.isr = addr;
							if (type == 4) w.device = addr;
						}
						p = (h >> 8) & 0xfc;
					}
					v->common = w.common; v->notify = w.notify; v->notify_mult = w.notify_mult;
					v->isr = w.isr; v->device = w.device;
					return 1;
				}
			}
			if (f == 0 && !(hdr & 0x80)) break;
		}
	VBUS = 0;
	return 0;
}

/* Resets, negotiates VERSION_1 | INDIRECT_DESC and enables queue `q` (polled, no MSI-X). */
static __attribute__((unused)) int vdev_init_queue(struct vdev *v, u16 q) {
	u32 c = v->common;
	wr8(c + 0x14, 0);
	while (rd8(c + 0x14)) {
	}
	wr8(c + 0x14, 1);
	wr8(c + 0x14, 3);
	wr32(c + 0x00, 1);
	u32 hi = rd32(c + 0x04);
	wr32(c + 0x08, 0); wr32(c + 0x0c, 1u << 28);
	wr32(c + 0x08, 1); wr32(c + 0x0c, hi & 1);
	wr8(c + 0x14, 11);
	if (!(rd8(c + 0x14) & 8)) return -1;
	wr16(c + 0x16, q);
	wr16(c + 0x18, QSZ);
	wr16(c + 0x1a, 0xffff);
	wr32(c + 0x20, DESC); wr32(c + 0x24, 0);
	wr32(c + 0x28, AVAIL); wr32(c + 0x2c, 0);
	wr32(c + 0x30, USED); wr32(c + 0x34, 0);
	for (u32 i = 0; i < 0x3000; i += 4) wr32(DESC + i, 0);
	wr16(c + 0x1c, 1);
	wr8(c + 0x14, 15);
	return 0;
}

/* Resets, negotiates VERSION_1 | INDIRECT_DESC and enables queue 0 (polled, no MSI-X). */
static __attribute__((unused)) int vdev_init(struct vdev *v) { return vdev_init_queue(v, 0); }

static u16 avail_idx;
/* Publishes head `head`, notifies queue 0 and polls the used ring; returns 0 on completion. */
static __attribute__((unused)) int vdev_submit(struct vdev *v, u16 head, u16 bump) {
	u16 used0 = rd16(USED + 2);
	wr16(AVAIL, 1); /* VIRTQ_AVAIL_F_NO_INTERRUPT */
	wr16(AVAIL + 4 + 2 * (avail_idx % QSZ), head);
	barrier();
	avail_idx = (u16)(avail_idx + bump);
	wr16(AVAIL + 2, avail_idx);
	barrier();
	wr16(v->notify + rd16(v->common + 0x1e) * v->notify_mult, 0);
	for (u64 d = deadline(); before(d);) {
		if (rd16(USED + 2) != used0) return 0;
		if (rd8(v->common + 0x14) & 0x40) return -2;
	}
	return -1;
}
#endif
