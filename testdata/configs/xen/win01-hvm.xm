# Legacy xm HVM config (Xen 3.x/4.x era)
kernel = "/usr/lib/xen/boot/hvmloader"
builder = 'hvm'
memory = 4096
name = "win01"
vcpus = 2
acpi = 1
apic = 1
vif = [ 'type=ioemu, bridge=xenbr0, model=e1000', 'type=ioemu,mac=00:16:3e:5a:00:02,bridge=xenbr0' ]
disk = [ 'tap:aio:/var/lib/xen/images/win01.img,hda,w',
         'file:/iso/virtio-win.iso,hdc:cdrom,r' ]
device_model = '/usr/lib/xen/bin/qemu-dm'
boot = "cd"
sdl = 0
vnc = 1
vncunused = 1
serial = 'pty'
usbdevice = 'tablet'
localtime = 1
