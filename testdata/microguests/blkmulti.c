/* virtio-blk with several requests in flight: five 64 KiB reads (one past 4 GiB) posted
 * together with one notify, a checksum of each printed in request order (FNV-1a over 32-bit
 * words: cheap at emulated CPL0); then writes of two regions and a flush in flight together,
 * read back; then a timed sequential read (boot markers 0x10 / 0x11 bracket it). */
#include "virtio.h"

#define HDRS 0x303000u  /* 16 bytes per request */
#define STS 0x303800u   /* 1 byte per request */
#define BUFS 0x400000u  /* 64 KiB per request */
#define NREQ 5
#define LEN 0x10000u

static struct vdev v;

static u32 fnv(u32 a, u32 n) {
	u32 h = 0x811c9dc5u;
	for (u32 i = 0; i < n; i += 4) h = (h ^ rd32(a + i)) * 0x01000193u;
	return h;
}
static u16 used_seen;

static void post(u32 i, u32 type, u64 sector, u32 len) {
	u32 h = HDRS + 16 * i, d = 3 * i;
	wr32(h, type); wr32(h + 4, 0); wr32(h + 8, (u32)sector); wr32(h + 12, (u32)(sector >> 32));
	wr8(STS + i, 0xff);
	desc_set(DESC, d, h, 16, VIRTQ_F_NEXT, (u16)(len ? d + 1 : d + 2));
	if (len) desc_set(DESC, d + 1, BUFS + LEN * i, len, (u16)((type == 1 ? 0 : VIRTQ_F_WRITE) | VIRTQ_F_NEXT), (u16)(d + 2));
	desc_set(DESC, d + 2, STS + i, 1, VIRTQ_F_WRITE, 0);
	if (!len) desc_set(DESC, d, h, 16, VIRTQ_F_NEXT, (u16)(d + 2));
	wr16(AVAIL + 4 + 2 * (avail_idx % QSZ), (u16)d);
	avail_idx++;
}

static void kick(void) {
	barrier();
	wr16(AVAIL, 1);
	wr16(AVAIL + 2, avail_idx);
	barrier();
	wr16(v.notify + rd16(v.common + 0x1e) * v.notify_mult, 0);
}

/* Waits for `n` completions; records their request numbers in `order`. */
static int wait(u32 n, u32 *order) {
	u32 got = 0;
	for (u64 d = deadline(); before(d) && got < n;) {
		if (rd16(USED + 2) == used_seen) continue;
		u32 id = rd32(USED + 4 + 8 * (used_seen % QSZ));
		used_seen++;
		if (order) order[got] = id / 3;
		got++;
	}
	return got == n ? 0 : -1;
}

int main(u32 start_info) {
	(void)start_info;
	serial_init();
	if (!vdev_find(&v, 0x1042)) { puts("no virtio-blk\n"); return 0x81; }
	if (vdev_init(&v)) { puts("FEATURES_OK refused\n"); return 0x82; }
	static const u64 sectors[NREQ] = {0, 128, 4096, 0x800000, 0x100000};
	u32 order[NREQ];
	for (u32 i = 0; i < NREQ; i++) post(i, 0, sectors[i], LEN);
	kick();
	if (wait(NREQ, order)) { puts("reads timed out\n"); return 0x83; }
	for (u32 i = 0; i < NREQ; i++) {
		puts("read sector "); puthex(sectors[i], 8); puts(" status "); putdec(rd8(STS + i));
		puts(" fnv "); puthex(fnv(BUFS + LEN * i, LEN), 8); puts("\n");
	}
	/* Two writes and a flush in flight together, then the regions read back. */
	for (u32 i = 0; i < 2; i++)
		for (u32 b = 0; b < LEN; b += 4) wr32(BUFS + LEN * i + b, 0x5eed0000u + b + i);
	post(0, 1, 8192, LEN);
	post(1, 1, 8192 + 128, LEN);
	post(2, 4, 0, 0);
	kick();
	if (wait(3, order)) { puts("writes timed out\n"); return 0x84; }
	puts("write status "); putdec(rd8(STS)); putdec(rd8(STS + 1)); puts(" flush status "); putdec(rd8(STS + 2)); puts("\n");
	for (u32 b = 0; b < 2 * LEN; b += 4) wr32(BUFS + b, 0);
	post(0, 0, 8192, LEN);
	post(1, 0, 8192 + 128, LEN);
	kick();
	if (wait(2, order)) { puts("read-back timed out\n"); return 0x85; }
	puts("read back fnv "); puthex(fnv(BUFS, LEN), 8); puts(" "); puthex(fnv(BUFS + LEN, LEN), 8); puts("\n");
	/* Timed sequential read: 64 MiB, NREQ x 64 KiB in flight. */
	marker(0x10);
	u64 sector = 0;
	for (u32 round = 0; round < 1024 / NREQ + 1; round++) {
		for (u32 i = 0; i < NREQ; i++) { post(i, 0, sector, LEN); sector += LEN / 512; }
		kick();
		if (wait(NREQ, 0)) { puts("bench timed out\n"); return 0x86; }
	}
	marker(0x11);
	puts("bench read "); putdec((u32)(sector / 2048)); puts(" MiB\n");
	return 0x80;
}
