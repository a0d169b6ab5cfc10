/* i8042 reset: pulses the CPU reset line through the keyboard controller (command 0xfe). */
#include "lib.h"
int main(u32 start_info) {
	(void)start_info;
	serial_init();
	puts("resetting via i8042\n");
	while (inb(0x64) & 0x02) {
	}
	outb(0x64, 0xfe);
	puts("reset did not happen\n");
	return 0x7f;
}
