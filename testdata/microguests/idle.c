/* Prints a line, then idles with interrupts off until the host stops the VM (QMP tests). */
#include "lib.h"
int main(u32 start_info) {
	(void)start_info;
	serial_init();
	puts("idle guest up\n");
	for (;;) __asm__ volatile("cli; hlt");
	return 0;
}
