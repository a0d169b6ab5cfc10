/* virtio-net config (MAC, link status) and a virtio-rng read through one writable descriptor. */
#include "virtio.h"

#define RBUF 0x304000u

int main(u32 start_info) {
	(void)start_info;
	serial_init();
	struct vdev n = {0}, r = {0};
	if (!vdev_find(&n, 0x1041)) { puts("no virtio-net\n"); return 0x51; }
	if (vdev_init(&n)) { puts("net FEATURES_OK refused\n"); return 0x52; }
	puts("net mac ");
	for (u32 i = 0; i < 6; i++) { if (i) putc(':'); puthex(rd8(n.device + i), 2); }
	puts(" link "); putdec(rd16(n.device + 6) & 1); puts("\n");
	wr8(n.common + 0x14, 0); /* reset: its queue memory is reused below */
	if (!vdev_find(&r, 0x1044)) { puts("no virtio-rng\n"); return 0x53; }
	if (vdev_init(&r)) { puts("rng FEATURES_OK refused\n"); return 0x54; }
	avail_idx = 0;
	for (u32 i = 0; i < 64; i++) wr8(RBUF + i, 0);
	desc_set(DESC, 0, RBUF, 64, VIRTQ_F_WRITE, 0);
	int st = vdev_submit(&r, 0, 1);
	u32 len = rd32(USED + 8), nz = 0;
	for (u32 i = 0; i < 64; i++) nz += rd8(RBUF + i) != 0;
	puts("rng submit "); putdec((u32)-st); puts(" len "); putdec(len);
	puts(nz > 32 ? " random\n" : " not-random\n");
	return 0x50;
}
