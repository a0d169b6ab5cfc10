/* virtio-console multiport host channel: negotiates MULTIPORT, sends DEVICE_READY, answers
 * PORT_ADD for port 1 with PORT_READY, reads its PORT_NAME, opens it, waits for the host end
 * (PORT_OPEN 1), sends a line, echoes back the line the host writes, and waits for the host
 * to hang up (PORT_OPEN 0); a host line "reboot" resets the machine after the echo instead.
 * Everything is polled: queues 2/3 (control), 4/5 (port 1). */
#include "virtio.h"

#define RINGS 0x310000u /* queue k's rings at RINGS + 0x4000 * k */
#define CTRL_BUFS 0x340000u
#define RX_BUF 0x350000u
#define TX_BUF 0x360000u
#define CTL_TX_BUF 0x370000u

struct q { u32 desc, avail, used, notify; u16 idx, seen; };
static struct q qs[6];
static struct vdev v;

static void q_setup(u32 k) {
	u32 c = v.common, base = RINGS + 0x4000 * k;
	struct q *q = &qs[k];
	for (u32 i = 0; i < 0x3000; i += 4) wr32(base + i, 0);
	wr16(c + 0x16, (u16)k);
	wr16(c + 0x18, QSZ);
	wr16(c + 0x1a, 0xffff);
	q->desc = base; q->avail = base + 0x1000; q->used = base + 0x2000;
	wr32(c + 0x20, q->desc); wr32(c + 0x24, 0);
	wr32(c + 0x28, q->avail); wr32(c + 0x2c, 0);
	wr32(c + 0x30, q->used); wr32(c + 0x34, 0);
	q->notify = v.notify + rd16(c + 0x1e) * v.notify_mult;
	wr16(q->avail, 1); /* no interrupts */
	wr16(c + 0x1c, 1);
}

static void q_post(u32 k, u32 addr, u32 len, u16 flags) {
	struct q *q = &qs[k];
	u16 d = q->idx % QSZ;
	desc_set(q->desc, d, addr, len, flags, 0);
	wr16(q->avail + 4 + 2 * d, d);
	barrier();
	q->idx++;
	wr16(q->avail + 2, q->idx);
	barrier();
	wr16(q->notify, (u16)k);
}

/* Returns the used length of the next completion, with its descriptor in *id; -1 if none yet. */
static int q_used(u32 k, u32 *id) {
	struct q *q = &qs[k];
	if (rd16(q->used + 2) == q->seen) return -1;
	u32 e = q->used + 4 + 8 * (q->seen % QSZ);
	q->seen++;
	*id = rd32(e);
	return (int)rd32(e + 4);
}

static void ctrl_send(u32 id, u16 event, u16 value) {
	wr32(CTL_TX_BUF, id); wr16(CTL_TX_BUF + 4, event); wr16(CTL_TX_BUF + 6, value);
	q_post(3, CTL_TX_BUF, 8, 0);
	u32 dummy;
	for (u32 n = 0; n < 1000000 && q_used(3, &dummy) < 0; n++) {
	}
}

static int named, host_open = -1;
static char name[64];

/* Handles one pending control message; returns 0 when there was none. */
static int ctrl_poll(void) {
	u32 d;
	int len = q_used(2, &d);
	if (len < 0) return 0;
	u32 m = CTRL_BUFS + 64 * d;
	u32 id = rd32(m);
	u16 ev = rd16(m + 4), val = rd16(m + 6);
	if (id == 1 && ev == 1) ctrl_send(1, 3, 1);             /* PORT_ADD -> PORT_READY */
	if (id == 1 && ev == 7) {                                 /* PORT_NAME */
		u32 i = 0;
		for (; i + 8 < (u32)len && i < 63 && rd8(m + 8 + i); i++) name[i] = (char)rd8(m + 8 + i);
		name[i] = 0;
		named = 1;
	}
	if (id == 1 && ev == 6) host_open = val;                  /* PORT_OPEN from the host */
	desc_set(qs[2].desc, (u16)d, m, 64, VIRTQ_F_WRITE, 0);  /* recycle the buffer */
	wr16(qs[2].avail + 4 + 2 * (qs[2].idx % QSZ), (u16)d);
	barrier();
	qs[2].idx++;
	wr16(qs[2].avail + 2, qs[2].idx);
	barrier();
	wr16(qs[2].notify, 2);
	return 1;
}

static int wait_for(int *what, int want) {
	for (u32 n = 0; n < 3000000; n++) {
		if (*what == want) return 1;
		ctrl_poll();
	}
	return *what == want;
}

int main(u32 start_info) {
	(void)start_info;
	serial_init();
	if (!vdev_find(&v, 0x1043)) { puts("no virtio-console\n"); return 0x71; }
	u32 c = v.common;
	wr8(c + 0x14, 0);
	wr8(c + 0x14, 3);
	wr32(c + 0x08, 0); wr32(c + 0x0c, 1u << 1); /* MULTIPORT */
	wr32(c + 0x08, 1); wr32(c + 0x0c, 1);       /* VERSION_1 */
	wr8(c + 0x14, 11);
	if (!(rd8(c + 0x14) & 8)) { puts("FEATURES_OK refused\n"); return 0x72; }
	for (u32 k = 2; k < 6; k++) q_setup(k);
	wr8(c + 0x14, 15);
	for (u32 i = 0; i < QSZ; i++) {
		desc_set(qs[2].desc, (u16)i, CTRL_BUFS + 64 * i, 64, VIRTQ_F_WRITE, 0);
		wr16(qs[2].avail + 4 + 2 * i, (u16)i);
	}
	barrier();
	qs[2].idx = QSZ;
	wr16(qs[2].avail + 2, QSZ);
	barrier();
	wr16(qs[2].notify, 2);
	ctrl_send(0xffffffffu, 0, 1); /* DEVICE_READY */
	if (!wait_for(&named, 1)) { puts("no PORT_NAME for port 1\n"); return 0x73; }
	puts("port 1 name "); puts(name); puts("\n");
	ctrl_send(1, 6, 1); /* the guest opens the port */
	if (!wait_for(&host_open, 1)) { puts("host never connected\n"); return 0x74; }
	puts("host connected\n");
	const char *hello = "hello from the guest\n";
	u32 n = 0;
	while (hello[n]) { wr8(TX_BUF + n, (u8)hello[n]); n++; }
	q_post(5, TX_BUF, n, 0);
	u32 d;
	for (u32 k = 0; k < 1000000 && q_used(5, &d) < 0; k++) {
	}
	/* Read the host's line (possibly in pieces) and echo it back. */
	u32 got = 0;
	char line[64];
	q_post(4, RX_BUF, 64, VIRTQ_F_WRITE);
	for (u32 k = 0; k < 5000000 && !(got && line[got - 1] == '\n'); k++) {
		int len = q_used(4, &d);
		if (len < 0) continue;
		for (int i = 0; i < len && got < 63; i++) line[got++] = (char)rd8(RX_BUF + i);
		q_post(4, RX_BUF, 64, VIRTQ_F_WRITE);
	}
	line[got] = 0;
	puts("host wrote "); puts(line);
	const char *pre = "echo: ";
	n = 0;
	while (pre[n]) { wr8(TX_BUF + n, (u8)pre[n]); n++; }
	for (u32 i = 0; i < got; i++) wr8(TX_BUF + n++, (u8)line[i]);
	q_post(5, TX_BUF, n, 0);
	for (u32 k = 0; k < 1000000 && q_used(5, &d) < 0; k++) {
	}
	if (got == 7 && line[0] == 'r' && line[1] == 'e' && line[5] == 't') {
		puts("rebooting\n");
		outb(0xcf9, 0x06); /* reset: the host end must survive it */
	}
	if (!wait_for(&host_open, 0)) { puts("host never hung up\n"); return 0x75; }
	puts("host disconnected\n");
	return 0x70;
}
