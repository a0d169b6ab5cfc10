/* virtio-balloon driver: prints the offered feature words and config, inflates four patterned
 * pages plus one PFN far outside RAM (the device must ignore it, not fail), reads the pages
 * back (a discarded page reads as zeros), deflates them, and reports `actual`; then waits
 * for a host target (QMP `balloon`), reports it as `actual`, and waits for the next one;
 * finally renegotiates with STATS_VQ + RING_RESET + EVENT_IDX, posts two stats buffers,
 * resets queue 0 alone, re-enables it, inflates, and checks that used_event decides whether
 * a completion is notified. */
#include "virtio.h"

#define PFNS 0x303000u
#define PAGES 0x400000u
#define DQ_DESC 0x310000u
#define DQ_AVAIL 0x311000u
#define DQ_USED 0x312000u
#define STATS 0x305000u

static void print_pages(const char *what) {
	puts(what);
	for (u32 i = 0; i < 4; i++) { puts(" "); puthex(rd32(PAGES + i * 4096 + 64), 8); }
	puts("\n");
}

int main(u32 start_info) {
	(void)start_info;
	serial_init();
	struct vdev v = {0};
	if (!vdev_find(&v, 0x1045)) { puts("no virtio-balloon\n"); return 0x61; }
	u32 c = v.common;
	wr32(c + 0x00, 0); u32 lo = rd32(c + 0x04);
	wr32(c + 0x00, 1); u32 hi = rd32(c + 0x04);
	puts("balloon features "); puthex(hi, 8); puthex(lo, 8);
	puts(" queues "); putdec(rd16(c + 0x12)); puts("\n");
	if (vdev_init(&v)) { puts("FEATURES_OK refused\n"); return 0x62; }
	/* The deflate queue (1), polled like queue 0. */
	for (u32 i = 0; i < 0x3000; i += 4) wr32(DQ_DESC + i, 0);
	wr16(c + 0x16, 1);
	u32 qs = rd16(c + 0x18);
	wr16(c + 0x18, QSZ);
	wr32(c + 0x20, DQ_DESC); wr32(c + 0x24, 0);
	wr32(c + 0x28, DQ_AVAIL); wr32(c + 0x2c, 0);
	wr32(c + 0x30, DQ_USED); wr32(c + 0x34, 0);
	wr16(c + 0x1c, 1);
	puts("queue size "); putdec(qs);
	puts(" num_pages "); putdec(rd32(v.device)); puts(" actual "); putdec(rd32(v.device + 4)); puts("\n");
	for (u32 i = 0; i < 4 * 4096; i += 4) wr32(PAGES + i, 0xa5a50000u + i);
	print_pages("before");
	for (u32 i = 0; i < 4; i++) wr32(PFNS + 4 * i, (PAGES >> 12) + i);
	wr32(PFNS + 16, 0x0ffffff0u); /* 1 TiB: no RAM there */
	desc_set(DESC, 0, PFNS, 20, 0, 0);
	wr16(c + 0x16, 0); /* vdev_submit notifies the selected queue */
	int st = vdev_submit(&v, 0, 1);
	puts("inflate submit "); putdec((u32)-st); puts(" status "); puthex(rd8(c + 0x14), 2); puts("\n");
	print_pages("inflated");
	wr32(v.device + 4, 4);
	puts("actual "); putdec(rd32(v.device + 4)); puts("\n");
	/* Deflate through queue 1: the guest takes its pages back and may write them again. */
	u16 used0 = rd16(DQ_USED + 2);
	desc_set(DQ_DESC, 0, PFNS, 16, 0, 0);
	wr16(DQ_AVAIL, 1);
	wr16(DQ_AVAIL + 4, 0);
	barrier();
	wr16(DQ_AVAIL + 2, 1);
	barrier();
	wr16(c + 0x16, 1);
	wr16(v.notify + rd16(c + 0x1e) * v.notify_mult, 1);
	u64 d = deadline();
	while (rd16(DQ_USED + 2) == used0 && before(d)) {
	}
	wr32(v.device + 4, 0);
	for (u32 i = 0; i < 4; i++) wr32(PAGES + i * 4096 + 64, 0x600d0000u + i);
	puts("deflate "); puts(rd16(DQ_USED + 2) != used0 ? "done" : "timeout"); puts(" actual "); putdec(rd32(v.device + 4));
	puts(" status "); puthex(rd8(c + 0x14), 2); puts("\n");
	print_pages("reused");
	/* Host requests (QMP `balloon`): actual = 1 tells the host we wait; each request raises
	 * a configuration-change ISR bit; the guest "inflates" by reporting actual = num_pages. */
	wr32(v.device + 4, 1);
	u32 isr = 0, want = 0, n2 = 0;
	for (; n2 < 2000000 && !(isr & 2); n2++) isr = rd8(v.isr);
	want = rd32(v.device);
	puts("host target "); putdec(want); puts(" isr "); puthex(isr & 2, 2); puts("\n");
	wr32(v.device + 4, want);
	for (n2 = 0; n2 < 2000000; n2++)
		if ((rd8(v.isr) & 2) && rd32(v.device) != want) break;
	puts("host target now "); putdec(rd32(v.device)); puts("\n");
	/* VIRTIO_F_RING_RESET: renegotiate with it, reset queue 0 alone, re-enable it, inflate. */
	wr8(c + 0x14, 0);
	while (rd8(c + 0x14)) {
	}
	wr8(c + 0x14, 1);
	wr8(c + 0x14, 3);
	wr32(c + 0x08, 0); wr32(c + 0x0c, 1u << 29 | 1u << 1); /* EVENT_IDX | STATS_VQ */
	wr32(c + 0x08, 1); wr32(c + 0x0c, 0x101);   /* VERSION_1 | RING_RESET */
	wr8(c + 0x14, 11);
	if (!(rd8(c + 0x14) & 8)) { puts("RING_RESET refused\n"); return 0x63; }
	wr16(c + 0x16, 0);
	wr16(c + 0x18, QSZ);
	wr32(c + 0x20, DESC); wr32(c + 0x24, 0);
	wr32(c + 0x28, AVAIL); wr32(c + 0x2c, 0);
	wr32(c + 0x30, USED); wr32(c + 0x34, 0);
	wr16(c + 0x1c, 1);
	/* The stats queue (2) on the deflate queue's old rings. */
	for (u32 i = 0; i < 0x3000; i += 4) wr32(DQ_DESC + i, 0);
	wr16(c + 0x16, 2);
	wr16(c + 0x18, QSZ);
	wr32(c + 0x20, DQ_DESC); wr32(c + 0x24, 0);
	wr32(c + 0x28, DQ_AVAIL); wr32(c + 0x2c, 0);
	wr32(c + 0x30, DQ_USED); wr32(c + 0x34, 0);
	wr16(c + 0x1c, 1);
	u32 stats_notify = v.notify + rd16(c + 0x1e) * v.notify_mult;
	wr16(c + 0x16, 0);
	wr8(c + 0x14, 15);
	/* Two stats buffers: the device holds the newest and gives back the one before. */
	for (u32 b = 0; b < 2; b++) {
		u32 s = STATS + 32 * b;
		wr16(s, 0); wr32(s + 2, 0x1111u + b); wr32(s + 6, 0);
		wr16(s + 10, 4); wr32(s + 12, 0x4444u); wr32(s + 16, 0);
		desc_set(DQ_DESC, b, s, 20, 0, 0);
		wr16(DQ_AVAIL + 4 + 2 * b, (u16)b);
		barrier();
		wr16(DQ_AVAIL + 2, (u16)(b + 1));
		barrier();
		wr16(stats_notify, 2);
		/* The first buffer is held (nothing comes back: a short wait); the second returns the
		 * first, so wait long for it (a loaded host may run the device thread late). */
		if (b) {
			for (u64 d = deadline(); before(d) && rd16(DQ_USED + 2) == 0;) {
			}
		} else {
			for (u32 k = 0; k < 200000u && rd16(DQ_USED + 2) == 0; k++) {
			}
		}
		puts(b ? " second: used " : "stats first: used "); putdec(rd16(DQ_USED + 2));
	}
	puts(" id "); putdec(rd32(DQ_USED + 4)); puts("\n");
	wr16(c + 0x3a, 1);
	puts("queue reset "); putdec(rd16(c + 0x3a)); puts(" enable "); putdec(rd16(c + 0x1c));
	puts(" size "); putdec(rd16(c + 0x18));
	for (u32 i = 0; i < 0x3000; i += 4) wr32(DESC + i, 0);
	wr16(c + 0x18, QSZ);
	wr32(c + 0x20, DESC); wr32(c + 0x24, 0);
	wr32(c + 0x28, AVAIL); wr32(c + 0x2c, 0);
	wr32(c + 0x30, USED); wr32(c + 0x34, 0);
	wr16(c + 0x1c, 1);
	puts(" re-enabled reset "); putdec(rd16(c + 0x3a)); puts(" enable "); putdec(rd16(c + 0x1c)); puts("\n");
	avail_idx = 0;
	wr32(PAGES, 0x12345678u);
	desc_set(DESC, 0, PFNS, 4, 0, 0); /* PFNS[0] is still the first page */
	st = vdev_submit(&v, 0, 1);
	puts("after queue reset inflate "); putdec((u32)-st); puts(" page "); puthex(rd32(PAGES), 8);
	puts(" status "); puthex(rd8(c + 0x14), 2); puts("\n");
	/* EVENT_IDX: used_event past the next completion -> no notification (ISR bit 0 stays
	 * clear); used_event at it -> notification. */
	rd8(v.isr);
	wr16(AVAIL + 4 + 2 * QSZ, 5);
	st = vdev_submit(&v, 0, 1);
	u32 isr1 = rd8(v.isr);
	wr16(AVAIL + 4 + 2 * QSZ, 2); /* the third completion since the queue reset */
	int st2 = vdev_submit(&v, 0, 1);
	puts("event_idx submit "); putdec((u32)-st); putdec((u32)-st2);
	puts(" isr "); puthex(isr1, 2); puts(" "); puthex(rd8(v.isr), 2); puts("\n");
	return 0x60;
}
