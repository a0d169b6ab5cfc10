/* Serial hello: prints a line and the PVH start_info magic, then exits with code 0x31. */
#include "lib.h"
int main(u32 start_info) {
	marker(1);
	serial_init();
	puts("ferry micro-guest: hello\n");
	puts("pvh magic ");
	puthex(rd32(start_info), 8);
	puts("\n");
	marker(2);
	return 0x31;
}
