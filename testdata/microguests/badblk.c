/* Hostile virtio-blk driver: descriptor outside RAM, a descriptor loop, a 4 GiB length, an
 * avail index far ahead of the ring. After each the device must report NEEDS_RESET (0x40)
 * and keep working after a reset. */
#include "virtio.h"

#define HDR 0x303000u
#define BUF 0x304000u
#define ST 0x305000u

static void header(u64 sector) {
	wr32(HDR, 0); wr32(HDR + 4, 0); wr32(HDR + 8, (u32)sector); wr32(HDR + 12, (u32)(sector >> 32));
}

static void report(struct vdev *v, const char *name, int r) {
	puts(name); puts(": submit "); puts(r == -2 ? "needs-reset" : r == 0 ? "completed" : "timeout");
	puts(" status "); puthex(rd8(v->common + 0x14), 2); puts("\n");
}

int main(u32 start_info) {
	(void)start_info;
	serial_init();
	struct vdev v = {0};
	if (!vdev_find(&v, 0x1042)) { puts("no virtio-blk\n"); return 0x21; }

	vdev_init(&v); avail_idx = 0; header(0);
	desc_set(DESC, 0, HDR, 16, VIRTQ_F_NEXT, 1);
	desc_set(DESC, 1, 0x40000000000ull, 512, VIRTQ_F_WRITE | VIRTQ_F_NEXT, 2);
	desc_set(DESC, 2, ST, 1, VIRTQ_F_WRITE, 0);
	report(&v, "outside-ram", vdev_submit(&v, 0, 1));

	vdev_init(&v); avail_idx = 0; header(0);
	desc_set(DESC, 0, HDR, 16, VIRTQ_F_NEXT, 1);
	desc_set(DESC, 1, BUF, 512, VIRTQ_F_WRITE | VIRTQ_F_NEXT, 0);
	report(&v, "loop", vdev_submit(&v, 0, 1));

	vdev_init(&v); avail_idx = 0; header(0);
	desc_set(DESC, 0, HDR, 16, VIRTQ_F_NEXT, 1);
	desc_set(DESC, 1, BUF, 0xfffffff0u, VIRTQ_F_WRITE | VIRTQ_F_NEXT, 2);
	desc_set(DESC, 2, ST, 1, VIRTQ_F_WRITE, 0);
	report(&v, "huge-length", vdev_submit(&v, 0, 1));

	vdev_init(&v); avail_idx = 0; header(0);
	desc_set(DESC, 0, HDR, 16, VIRTQ_F_NEXT, 1);
	desc_set(DESC, 1, BUF, 512, VIRTQ_F_WRITE | VIRTQ_F_NEXT, 2);
	desc_set(DESC, 2, ST, 1, VIRTQ_F_WRITE, 0);
	report(&v, "avail-overrun", vdev_submit(&v, 0, 1000));

	vdev_init(&v); avail_idx = 0; header(0);
	desc_set(DESC, 0, HDR, 16, VIRTQ_F_NEXT, 1);
	desc_set(DESC, 1, BUF, 512, VIRTQ_F_WRITE | VIRTQ_F_NEXT, 2);
	desc_set(DESC, 2, ST, 1, VIRTQ_F_WRITE, 0);
	wr8(ST, 0xff);
	int r = vdev_submit(&v, 0, 1);
	puts("after-reset: submit "); putdec((u32)-r); puts(" status "); putdec(rd8(ST));
	puts(" crc "); puthex(crc32((const u8 *)BUF, 512), 8); puts("\n");
	return 0x30;
}
