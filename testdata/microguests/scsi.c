/* virtio-scsi driver: finds the controller (1AF4:1048), sets up request queue 0 (virtqueue 2)
 * and prints, one line each, what the target answers: the config, standard INQUIRY, VPD pages
 * 00/80/83 (bytes) and b0/b1/b2 (CRC32), READ CAPACITY(10)/(16), MODE SENSE(6) caching and
 * MODE SENSE(10) all pages, READ(10)/(16) of known sectors (CRC32), WRITE(10) + read back +
 * SYNCHRONIZE CACHE, UNMAP, VERIFY, WRITE SAME(10)/(16), MODE SELECT(6)/(10), SEEK(10), TEST UNIT READY, REQUEST SENSE, REPORT LUNS, a bad opcode, a read past
 * the end, LUN 1 of target 0, a target without a disk, and task management on the control
 * queue (virtqueue 0, enabled after DRIVER_OK as the request queue's neighbour). */
#include "virtio.h"

#define REQ 0x303000u
#define RESP 0x304000u
#define DATA 0x310000u
#define CDB_SIZE 32
#define SENSE_SIZE 96
#define RESP_LEN (12 + SENSE_SIZE)

#define CDESC 0x320000u
#define CAVAIL 0x321000u
#define CUSED 0x322000u

static u32 data_len;
static struct vdev V;

static void zero(u32 a, u32 n) { for (u32 i = 0; i < n; i++) wr8(a + i, 0); }

/* Sends `cdb` (n bytes) to target/lun; `in`/`out` bytes of data at DATA. Returns the
 * virtio response code, or 0xee when the device did not answer. */
static u32 cmd(u8 target, u16 lun, const u8 *cdb, u32 n, u32 in, u32 out) {
	zero(REQ, 19 + CDB_SIZE);
	zero(RESP, RESP_LEN);
	wr8(RESP + 11, 0xee);
	wr8(REQ, 1); wr8(REQ + 1, target); wr8(REQ + 2, (u8)(0x40 | (lun >> 8))); wr8(REQ + 3, (u8)lun);
	if (lun == 0) wr8(REQ + 2, 0);
	for (u32 i = 0; i < n; i++) wr8(REQ + 19 + i, cdb[i]);
	u32 d = 0;
	desc_set(DESC, d, REQ, 19 + CDB_SIZE, VIRTQ_F_NEXT, (u16)(d + 1)); d++;
	if (out) { desc_set(DESC, d, DATA, out, VIRTQ_F_NEXT, (u16)(d + 1)); d++; }
	desc_set(DESC, d, RESP, RESP_LEN, (u16)(VIRTQ_F_WRITE | (in ? VIRTQ_F_NEXT : 0)), (u16)(d + 1)); d++;
	if (in) { desc_set(DESC, d, DATA, in, VIRTQ_F_WRITE, 0); d++; }
	data_len = in;
	if (vdev_submit(&V, 0, 1)) return 0xee;
	return rd8(RESP + 11);
}

static void status_line(const char *what, u32 r) {
	puts(what); puts(": response "); putdec(r);
	puts(" status "); puthex(rd8(RESP + 10), 2);
	puts(" resid "); putdec(rd32(RESP + 4));
	puts(" sense_len "); putdec(rd32(RESP));
	if (rd32(RESP)) {
		puts(" key "); puthex(rd8(RESP + 12 + 2), 1);
		puts(" asc "); puthex(rd8(RESP + 12 + 12), 2);
		puts(" ascq "); puthex(rd8(RESP + 12 + 13), 2);
	}
}

static void bytes(u32 a, u32 n) {
	for (u32 i = 0; i < n; i++) { puts(" "); puthex(rd8(a + i), 2); }
}

static void text(u32 a, u32 n) {
	puts(" '");
	for (u32 i = 0; i < n; i++) { u8 c = rd8(a + i); putc((c >= 32 && c < 127) ? (char)c : '.'); }
	puts("'");
}

/* A data-in command: the status line and the data as bytes (or a CRC32 when crc). */
static void in_line(const char *what, u8 target, u16 lun, const u8 *cdb, u32 n, u32 len, int crc) {
	zero(DATA, len);
	u32 r = cmd(target, lun, cdb, n, len, 0);
	status_line(what, r);
	if (crc) { puts(" crc "); puthex(crc32((const u8 *)DATA, len), 8); }
	else bytes(DATA, len);
	puts("\n");
}

/* Adds the control queue (virtqueue 0) on its own rings; queue 2 stays selected after. */
static int ctrl_init(void) {
	u32 c = V.common;
	wr16(c + 0x16, 0);
	wr16(c + 0x18, QSZ);
	wr16(c + 0x1a, 0xffff);
	for (u32 i = 0; i < 0x3000; i += 4) wr32(CDESC + i, 0);
	wr32(c + 0x20, CDESC); wr32(c + 0x24, 0);
	wr32(c + 0x28, CAVAIL); wr32(c + 0x2c, 0);
	wr32(c + 0x30, CUSED); wr32(c + 0x34, 0);
	wr16(c + 0x1c, 1);
	wr16(c + 0x16, 2);
	return 0;
}

static u16 ctrl_idx;
/* A TMF request on the control queue: subtype for target/lun; prints the response byte. */
static void tmf(const char *what, u32 subtype, u8 target, u16 lun) {
	zero(REQ, 32); zero(RESP, 8);
	wr8(RESP, 0xee);
	wr32(REQ, 0); wr32(REQ + 4, subtype);
	wr8(REQ + 8, 1); wr8(REQ + 9, target); wr8(REQ + 10, lun ? (u8)(0x40 | (lun >> 8)) : 0); wr8(REQ + 11, (u8)lun);
	desc_set(CDESC, 0, REQ, 28, VIRTQ_F_NEXT, 1);
	desc_set(CDESC, 1, RESP, 1, VIRTQ_F_WRITE, 0);
	u16 used0 = rd16(CUSED + 2);
	wr16(CAVAIL, 1);
	wr16(CAVAIL + 4 + 2 * (ctrl_idx % QSZ), 0);
	barrier();
	ctrl_idx++;
	wr16(CAVAIL + 2, ctrl_idx);
	barrier();
	wr16(V.common + 0x16, 0);
	wr16(V.notify + rd16(V.common + 0x1e) * V.notify_mult, 0);
	wr16(V.common + 0x16, 2);
	int done = 0;
	for (u64 d = deadline(); before(d);) if (rd16(CUSED + 2) != used0) { done = 1; break; }
	puts(what); puts(": tmf response ");
	if (done) putdec(rd8(RESP)); else puts("none");
	puts("\n");
}

int main(u32 start_info) {
	(void)start_info;
	serial_init();
	if (!vdev_find(&V, 0x1048)) { puts("no virtio-scsi\n"); return 0x21; }
	if (vdev_init_queue(&V, 2)) { puts("FEATURES_OK refused\n"); return 0x22; }
	ctrl_init();
	u32 c = V.device;
	puts("config num_queues "); putdec(rd32(c)); puts(" seg_max "); putdec(rd32(c + 4));
	puts(" max_sectors "); putdec(rd32(c + 8)); puts(" cmd_per_lun "); putdec(rd32(c + 12));
	puts(" event_info "); putdec(rd32(c + 16)); puts(" sense "); putdec(rd32(c + 20));
	puts(" cdb "); putdec(rd32(c + 24)); puts(" max_channel "); putdec(rd16(c + 28));
	puts(" max_target "); putdec(rd16(c + 30)); puts(" max_lun "); putdec(rd32(c + 32)); puts("\n");

	const u8 tur[6] = {0x00};
	status_line("test-unit-ready", cmd(0, 0, tur, 6, 0, 0)); puts("\n");
	const u8 inq[6] = {0x12, 0, 0, 0, 96, 0};
	zero(DATA, 96);
	u32 r = cmd(0, 0, inq, 6, 96, 0);
	status_line("inquiry", r);
	puts(" head"); bytes(DATA, 8); text(DATA + 8, 8); text(DATA + 16, 16); text(DATA + 32, 4);
	puts(" crc "); puthex(crc32((const u8 *)DATA, 96), 8); puts("\n");
	const u8 vpd00[6] = {0x12, 1, 0x00, 0, 64, 0};
	in_line("vpd-00", 0, 0, vpd00, 6, 10, 0);
	const u8 vpd80[6] = {0x12, 1, 0x80, 0, 24, 0};
	zero(DATA, 24);
	status_line("vpd-80", cmd(0, 0, vpd80, 6, 24, 0)); bytes(DATA, 4); text(DATA + 4, 20); puts("\n");
	const u8 vpd83[6] = {0x12, 1, 0x83, 0, 28, 0};
	zero(DATA, 28);
	status_line("vpd-83", cmd(0, 0, vpd83, 6, 28, 0)); bytes(DATA, 8); text(DATA + 8, 20); puts("\n");
	const u8 vpdb0[6] = {0x12, 1, 0xb0, 0, 64, 0};
	in_line("vpd-b0", 0, 0, vpdb0, 6, 64, 0);
	const u8 vpdb1[6] = {0x12, 1, 0xb1, 0, 64, 0};
	in_line("vpd-b1", 0, 0, vpdb1, 6, 64, 1);
	const u8 vpdb2[6] = {0x12, 1, 0xb2, 0, 8, 0};
	in_line("vpd-b2", 0, 0, vpdb2, 6, 8, 0);
	const u8 rc10[10] = {0x25};
	in_line("read-capacity-10", 0, 0, rc10, 10, 8, 0);
	const u8 rc16[16] = {0x9e, 0x10, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 32, 0, 0};
	in_line("read-capacity-16", 0, 0, rc16, 16, 32, 0);
	const u8 ms6[6] = {0x1a, 0x08, 0x08, 0, 24, 0};
	in_line("mode-sense-6-caching", 0, 0, ms6, 6, 24, 0);
	const u8 ms10[10] = {0x5a, 0, 0x3f, 0, 0, 0, 0, 0, 104, 0};
	in_line("mode-sense-10-all", 0, 0, ms10, 10, 104, 1);
	const u8 rd10[10] = {0x28, 0, 0, 0, 0, 0, 0, 0, 1, 0};
	in_line("read-10 lba 0", 0, 0, rd10, 10, 512, 1);
	const u8 rd16[16] = {0x88, 0, 0, 0, 0, 0, 0, 0x80, 0, 0x07, 0, 0, 0, 1, 0, 0};
	in_line("read-16 lba 800007", 0, 0, rd16, 16, 512, 1);
	for (u32 i = 0; i < 1024; i++) wr8(DATA + i, (u8)("ferry-scsi-write"[i % 16]));
	const u8 wr10[10] = {0x2a, 0, 0, 0, 0, 4, 0, 0, 2, 0};
	status_line("write-10 lba 4 blocks 2", cmd(0, 0, wr10, 10, 0, 1024)); puts("\n");
	const u8 sync[10] = {0x35};
	status_line("synchronize-cache", cmd(0, 0, sync, 10, 0, 0)); puts("\n");
	const u8 back[10] = {0x28, 0, 0, 0, 0, 4, 0, 0, 2, 0};
	in_line("read-back lba 4 blocks 2", 0, 0, back, 10, 1024, 1);
	/* UNMAP one block (its status only: QEMU's default discard=ignore keeps the data). */
	zero(DATA, 24);
	wr8(DATA + 1, 22); wr8(DATA + 3, 16); wr8(DATA + 8 + 7, 6); wr8(DATA + 8 + 11, 1);
	const u8 unmap[10] = {0x42, 0, 0, 0, 0, 0, 0, 0, 24, 0};
	status_line("unmap lba 6 blocks 1", cmd(0, 0, unmap, 10, 0, 24)); puts("\n");
	wr8(DATA + 8 + 7, 0xff); wr8(DATA + 8 + 6, 0xff); wr8(DATA + 8 + 5, 0xff); wr8(DATA + 8 + 4, 0xff);
	status_line("unmap past the end", cmd(0, 0, unmap, 10, 0, 24)); puts("\n");
	/* VERIFY: GOOD without byte check, refused with it (scsi-hd verifies nothing). */
	const u8 vfy[10] = {0x2f, 0, 0, 0, 0, 4, 0, 0, 2, 0};
	status_line("verify-10 lba 4 blocks 2", cmd(0, 0, vfy, 10, 0, 0)); puts("\n");
	const u8 vfyb[10] = {0x2f, 2, 0, 0, 0, 4, 0, 0, 1, 0};
	status_line("verify-10 bytchk", cmd(0, 0, vfyb, 10, 0, 512)); puts("\n");
	/* WRITE SAME(10) of a pattern block over lba 8..10, read back; WRITE SAME(16) with UNMAP
	 * of a zero block over lba 9, read back; a count of zero and a range past the end refused. */
	for (u32 i = 0; i < 512; i++) wr8(DATA + i, (u8)("same-block-ferry"[i % 16]));
	const u8 ws10[10] = {0x41, 0, 0, 0, 0, 8, 0, 0, 3, 0};
	status_line("write-same-10 lba 8 blocks 3", cmd(0, 0, ws10, 10, 0, 512)); puts("\n");
	const u8 rb8[10] = {0x28, 0, 0, 0, 0, 8, 0, 0, 3, 0};
	in_line("read-back lba 8 blocks 3", 0, 0, rb8, 10, 1536, 1);
	zero(DATA, 512);
	const u8 ws16[16] = {0x93, 0x08, 0, 0, 0, 0, 0, 0, 0, 9, 0, 0, 0, 1, 0, 0};
	status_line("write-same-16 unmap lba 9 blocks 1", cmd(0, 0, ws16, 16, 0, 512)); puts("\n");
	in_line("read-back after unmap lba 8 blocks 3", 0, 0, rb8, 10, 1536, 1);
	const u8 ws0[10] = {0x41, 0, 0, 0, 0, 8, 0, 0, 0, 0};
	status_line("write-same-10 no blocks", cmd(0, 0, ws0, 10, 0, 512)); puts("\n");
	const u8 wsfar[16] = {0x93, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 1, 0, 0};
	status_line("write-same-16 past the end", cmd(0, 0, wsfar, 16, 0, 512)); puts("\n");
	/* MODE SELECT(6) of the caching page: the write cache off (MODE SENSE shows it), on again;
	 * an unchangeable field changed, and SP=1, refused. MODE SELECT(10) with a block
	 * descriptor of 512-byte blocks. SEEK(10) past the end. */
	const u8 msel6[6] = {0x15, 0x10, 0, 0, 24, 0};
	zero(DATA, 24); wr8(DATA + 4, 0x08); wr8(DATA + 5, 0x12);
	status_line("mode-select-6 caching wce 0", cmd(0, 0, msel6, 6, 0, 24)); puts("\n");
	in_line("mode-sense-6-caching after", 0, 0, ms6, 6, 24, 0);
	zero(DATA, 24); wr8(DATA + 4, 0x08); wr8(DATA + 5, 0x12); wr8(DATA + 6, 0x04);
	status_line("mode-select-6 caching wce 1", cmd(0, 0, msel6, 6, 0, 24)); puts("\n");
	zero(DATA, 24); wr8(DATA + 4, 0x08); wr8(DATA + 5, 0x12); wr8(DATA + 6, 0x04); wr8(DATA + 8, 0x01);
	status_line("mode-select-6 unchangeable field", cmd(0, 0, msel6, 6, 0, 24)); puts("\n");
	const u8 msel6sp[6] = {0x15, 0x11, 0, 0, 24, 0};
	status_line("mode-select-6 save pages", cmd(0, 0, msel6sp, 6, 0, 24)); puts("\n");
	zero(DATA, 16); wr8(DATA + 7, 8); wr8(DATA + 8 + 6, 0x02);
	const u8 msel10[10] = {0x55, 0x10, 0, 0, 0, 0, 0, 0, 16, 0};
	status_line("mode-select-10 block descriptor", cmd(0, 0, msel10, 10, 0, 16)); puts("\n");
	const u8 seek[10] = {0x2b, 0, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0};
	status_line("seek-10 past the end", cmd(0, 0, seek, 10, 0, 0)); puts("\n");
	const u8 bad[6] = {0x01};
	status_line("bad-opcode", cmd(0, 0, bad, 6, 0, 0)); puts("\n");
	const u8 far[16] = {0x88, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 1, 0, 0};
	in_line("read-past-end", 0, 0, far, 16, 512, 1);
	const u8 rs[6] = {0x03, 0, 0, 0, 18, 0};
	in_line("request-sense", 0, 0, rs, 6, 18, 0);
	const u8 rl[12] = {0xa0, 0, 0, 0, 0, 0, 0, 0, 0, 16, 0, 0};
	in_line("report-luns", 0, 0, rl, 12, 16, 0);
	const u8 inq36[6] = {0x12, 0, 0, 0, 36, 0};
	in_line("lun-1 inquiry", 0, 1, inq36, 6, 36, 1);
	status_line("lun-1 test-unit-ready", cmd(0, 1, tur, 6, 0, 0)); puts("\n");
	status_line("target-5 test-unit-ready", cmd(5, 0, tur, 6, 0, 0)); puts("\n");
	/* Task management: nothing is in flight. */
	tmf("abort-task target 0", 0, 0, 0);
	tmf("query-task-set target 0", 7, 0, 0);
	tmf("abort-task target 0 lun 1", 0, 0, 1);
	tmf("clear-aca target 0", 2, 0, 0);
	tmf("logical-unit-reset target 5", 5, 5, 0);
	tmf("logical-unit-reset target 0", 5, 0, 0);
	status_line("after reset test-unit-ready", cmd(0, 0, tur, 6, 0, 0)); puts("\n");
	return 0x20;
}
