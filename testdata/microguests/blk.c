/* virtio-blk driver: reads sector 0, a sector past 4 GiB and (through an indirect table)
 * sector 1, prints their CRC32s; writes + flushes sector 3; prints capacity, block size,
 * topology and the GET_ID serial. */
#include "virtio.h"

#define HDR 0x303000u
#define BUF 0x304000u
#define ST 0x305000u
#define IND 0x306000u

static int rq(struct vdev *v, u32 type, u64 sector, u32 len, int indirect) {
	wr32(HDR, type); wr32(HDR + 4, 0); wr32(HDR + 8, (u32)sector); wr32(HDR + 12, (u32)(sector >> 32));
	wr8(ST, 0xff);
	u16 dflag = (type == 1) ? 0 : VIRTQ_F_WRITE;
	u32 t = indirect ? IND : DESC;
	desc_set(t, 0, HDR, 16, VIRTQ_F_NEXT, 1);
	if (len) {
		desc_set(t, 1, BUF, len, (u16)(dflag | VIRTQ_F_NEXT), 2);
		desc_set(t, 2, ST, 1, VIRTQ_F_WRITE, 0);
	} else {
		desc_set(t, 1, ST, 1, VIRTQ_F_WRITE, 0);
	}
	if (indirect) desc_set(DESC, 0, IND, len ? 48 : 32, VIRTQ_F_INDIRECT, 0);
	if (vdev_submit(v, 0, 1)) return -1;
	return rd8(ST);
}

static void show(const char *what, u64 sector, int st) {
	puts(what); puts(" sector "); puthex(sector, 10);
	puts(" status "); putdec((u32)st);
	puts(" crc "); puthex(crc32((const u8 *)BUF, 512), 8); puts("\n");
}

int main(u32 start_info) {
	(void)start_info;
	serial_init();
	struct vdev v = {0};
	if (!vdev_find(&v, 0x1042)) { puts("no virtio-blk\n"); return 0x21; }
	if (vdev_init(&v)) { puts("FEATURES_OK refused\n"); return 0x22; }
	u32 d = v.device;
	puts("capacity "); puthex(((u64)rd32(d + 4) << 32) | rd32(d), 10);
	puts(" blk_size "); putdec(rd32(d + 20));
	puts(" physical_block_exp "); putdec(rd8(d + 24)); puts("\n");
	show("read", 0, rq(&v, 0, 0, 512, 0));
	u64 far = 0x800007ull; /* 4 GiB + 3.5 KiB */
	show("read", far, rq(&v, 0, far, 512, 0));
	show("indirect-read", 1, rq(&v, 0, 1, 512, 1));
	for (u32 i = 0; i < 512; i++) wr8(BUF + i, (u8)("ferry-write-test"[i % 16]));
	puts("write sector 3 status "); putdec((u32)rq(&v, 1, 3, 512, 0));
	puts(" flush status "); putdec((u32)rq(&v, 4, 0, 0, 0)); puts("\n");
	for (u32 i = 0; i < 32; i++) wr8(BUF + i, 0);
	int st = rq(&v, 8, 0, 20, 0);
	puts("serial status "); putdec((u32)st); puts(" ");
	for (u32 i = 0; i < 20 && rd8(BUF + i); i++) putc((char)rd8(BUF + i));
	puts("\n");
	show("beyond-end", 0xffffffffull, rq(&v, 0, 0xffffffffull, 512, 0));
	return 0x20;
}
