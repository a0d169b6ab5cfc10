# xm-era HVM guest, as xen-tools and XenServer exports wrote them
name = "legacy"
builder = "hvm"
kernel = "/usr/lib/xen/boot/hvmloader"
memory = 1024
vcpus = 2
maxvcpus = 4
disk = [ 'file:/srv/xen/legacy.img,ioemu:hda,w',
         'target=/srv/xen/data.qcow2,format=qcow2,vdev=hdb,access=rw',
         'format=raw,vdev=xvdc,access=rw,backendtype=qdisk,target=rbd:rbd/legacy-scratch:id=admin' ]
cdrom = "/srv/iso/install.iso"
vif = [ 'type=ioemu,mac=00:16:3e:00:00:01,bridge=xenbr0' ]
