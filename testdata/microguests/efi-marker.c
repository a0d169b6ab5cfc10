/* A UEFI application (x86-64 PE32+, subsystem 10) for the firmware tests: started by OVMF's
 * boot manager as \EFI\BOOT\BOOTX64.EFI from the disk's ESP, it prints a marker line naming
 * the firmware vendor through ConOut->OutputString (OVMF's console: the serial port), writes
 * a second marker to the debug console (I/O port 0x402, QEMU's isa-debugcon), then powers
 * the machine off through ResetSystem. Built by build-efi.sh (gcc + ld -m i386pep); the few
 * UEFI table offsets it needs are declared here (UEFI 2.10, sections 4.3, 4.5, 12.4). */
typedef unsigned long long u64;
typedef unsigned short u16;
typedef unsigned char u8;
typedef u64 status;

#define EFIAPI __attribute__((ms_abi))

/* EFI_SYSTEM_TABLE (x86-64): the 24-byte header, then pointers. */
struct system_table {
    u8 hdr[24];
    u16 *firmware_vendor;       /* 24 */
    u64 firmware_revision;      /* 32 (UINT32 and padding) */
    void *console_in_handle;    /* 40 */
    void *con_in;               /* 48 */
    void *console_out_handle;   /* 56 */
    struct text_output *con_out; /* 64 */
    void *stderr_handle;        /* 72 */
    void *std_err;              /* 80 */
    struct runtime_services *rt; /* 88 */
    void *boot_services;        /* 96 */
};

/* EFI_SIMPLE_TEXT_OUTPUT_PROTOCOL: Reset, OutputString, ... */
struct text_output {
    status (EFIAPI *reset)(struct text_output *, u8);
    status (EFIAPI *output_string)(struct text_output *, const u16 *);
};

/* EFI_RUNTIME_SERVICES: header, then time, virtual memory, variable, misc services. */
struct runtime_services {
    u8 hdr[24];
    void *time[4];              /* GetTime .. SetWakeupTime */
    void *virt[2];              /* SetVirtualAddressMap, ConvertPointer */
    void *vars[3];              /* GetVariable, GetNextVariableName, SetVariable */
    void *next_high_count;      /* GetNextHighMonotonicCount */
    void (EFIAPI *reset_system)(u64 type, status st, u64 size, void *data); /* 104 */
};

#define EFI_RESET_SHUTDOWN 2

static void outb(u16 port, u8 v) { __asm__ volatile("outb %0, %1" : : "a"(v), "Nd"(port)); }

static void debugcon(const char *s) {
    while (*s)
        outb(0x402, (u8)*s++);
}

/* Appends ASCII `s` to the UCS-2 buffer at `*p`, bounded by `end`. */
static void put(u16 **p, u16 *end, const char *s) {
    while (*s && *p < end)
        *(*p)++ = (u8)*s++;
}

EFIAPI status efi_main(void *image, struct system_table *st) {
    (void)image;
    u16 line[160];
    u16 *p = line, *end = line + 159;
    put(&p, end, "\r\nferry-efi: BOOTX64.EFI via ConOut, firmware ");
    for (const u16 *v = st->firmware_vendor; v && *v && p < end - 3; v++)
        *p++ = *v < 0x80 ? *v : '?';
    put(&p, end, "\r\n");
    *p = 0;
    st->con_out->output_string(st->con_out, line);
    debugcon("ferry-efi: BOOTX64.EFI via debugcon\n");
    st->rt->reset_system(EFI_RESET_SHUTDOWN, 0, 0, 0);
    for (;;)
        __asm__ volatile("hlt");
}
