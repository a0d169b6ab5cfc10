/* Dumps the first 256 bytes of config space of every bus-0 function (development aid). */
#include "lib.h"
int main(u32 start_info) {
	(void)start_info;
	serial_init();
	for (u32 s = 0; s < 32; s++)
		for (u32 f = 0; f < 8; f++) {
			u32 id = pci_rd32(0, s, f, 0);
			if ((id & 0xffff) == 0xffff) { if (f == 0) break; continue; }
			puts("00:"); puthex(s, 2); putc('.'); putdec(f); puts("\n");
			for (u32 o = 0; o < 256; o += 4) {
				puthex(pci_rd32(0, s, f, o), 8);
				puts((o & 0x1c) == 0x1c ? "\n" : " ");
			}
			if (f == 0 && !(pci_rd8(0, s, f, 0x0e) & 0x80)) break;
		}
	return 0x10;
}
