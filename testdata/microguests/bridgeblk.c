/* virtio-blk behind a bridge: finds the first virtio-blk (modern 1af4:1042, else transitional
 * 1af4:1001, driven through its modern interface) on a bus behind a PCIe root port or PCI
 * bridge, prints where it is and what the bridge in front of it forwards to it, reads sector 0
 * and prints its CRC32, the used length and the capacity. */
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
	wr32(HDR, 0); wr32(HDR + 4, 0); wr32(HDR + 8, 0); wr32(HDR + 12, 0);
	wr8(ST, 0xff);
	desc_set(DESC, 0, HDR, 16, VIRTQ_F_NEXT, 1);
	desc_set(DESC, 1, BUF, 512, VIRTQ_F_WRITE | VIRTQ_F_NEXT, 2);
	desc_set(DESC, 2, ST, 1, VIRTQ_F_WRITE, 0);
	int r = vdev_submit(&v, 0, 1);
	puts("read sector 0 submit "); putdec((u32)r); puts(" status "); putdec(rd8(ST));
	puts(" used.len "); putdec(rd32(USED + 4 + 4)); puts(" crc "); puthex(crc32((const u8 *)BUF, 512), 8); puts("\n");
	return 0x20;
}
