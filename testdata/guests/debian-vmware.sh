#!/usr/bin/env bash
# Debian 12 configured like a VMware install (pvscsi disk sda, vmxnet3 NIC ens192,
# initramfs-tools with MODULES=list and VMware storage drivers only), as raw, VMDK + VMX, OVA.
# Prints the cache directory.
NAME=debian-vmware DISK=sda NIC=ens192 INITRD=initramfs-tools GRUB_CMDLINE=""
STORAGE_MODULES="vmw_pvscsi mptspi mptsas ahci ata_piix sd_mod ext4"
source "$(dirname "$0")/debian.sh"

variant_configure() { :; }

write_vmx() {
  local out=$1 vmdk=$2
  cat >"$out/$NAME.vmx" <<F
.encoding = "UTF-8"
config.version = "8"
virtualHW.version = "19"
displayName = "$NAME"
guestOS = "debian12-64"
memSize = "1024"
numvcpus = "1"
cpuid.coresPerSocket = "1"
firmware = "bios"
uuid.bios = "42 1d 3c 5e 8a 2b 4f 61-9c 0d 7e 2a 11 b3 c4 d5"
uuid.location = "56 4d 3c 5e 8a 2b 4f 61-9c 0d 7e 2a 11 b3 c4 d5"
vc.uuid = "52 1f 6e 0a 33 44 55 66-77 88 99 aa bb cc dd ee"
pciBridge0.present = "TRUE"
pciBridge4.present = "TRUE"
pciBridge4.virtualDev = "pcieRootPort"
pciBridge4.functions = "8"
scsi0.present = "TRUE"
scsi0.virtualDev = "pvscsi"
scsi0.pciSlotNumber = "160"
scsi0:0.present = "TRUE"
scsi0:0.fileName = "$vmdk"
scsi0:0.deviceType = "scsi-hardDisk"
ethernet0.present = "TRUE"
ethernet0.virtualDev = "vmxnet3"
ethernet0.networkName = "VM Network"
ethernet0.addressType = "generated"
ethernet0.generatedAddress = "00:0c:29:b3:c4:d5"
ethernet0.generatedAddressOffset = "0"
ethernet0.pciSlotNumber = "192"
ethernet0.connectionType = "bridged"
tools.syncTime = "FALSE"
tools.upgrade.policy = "manual"
serial0.present = "TRUE"
serial0.fileType = "file"
serial0.fileName = "serial.log"
F
}

write_ova() {
  local out=$1 dir; dir=$(mktemp -d "$out/.ova-XXXXXX")
  qemu-img convert -f raw -O vmdk -o subformat=streamOptimized "$out/disk.raw" "$dir/$NAME-disk1.vmdk"
  local size; size=$(stat -c %s "$dir/$NAME-disk1.vmdk")
  cat >"$dir/$NAME.ovf" <<F
<?xml version="1.0" encoding="UTF-8"?>
<Envelope vmw:buildId="build-20000000" xmlns="http://schemas.dmtf.org/ovf/envelope/1" xmlns:cim="http://schemas.dmtf.org/wbem/wscim/1/common" xmlns:ovf="http://schemas.dmtf.org/ovf/envelope/1" xmlns:rasd="http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_ResourceAllocationSettingData" xmlns:vmw="http://www.vmware.com/schema/ovf" xmlns:vssd="http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_VirtualSystemSettingData" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
  <References>
    <File ovf:href="$NAME-disk1.vmdk" ovf:id="file1" ovf:size="$size"/>
  </References>
  <DiskSection>
    <Info>Virtual disk information</Info>
    <Disk ovf:capacity="1536" ovf:capacityAllocationUnits="byte * 2^20" ovf:diskId="vmdisk1" ovf:fileRef="file1" ovf:format="http://www.vmware.com/interfaces/specifications/vmdk.html#streamOptimized" ovf:populatedSize="$size"/>
  </DiskSection>
  <NetworkSection>
    <Info>The list of logical networks</Info>
    <Network ovf:name="VM Network">
      <Description>The VM Network network</Description>
    </Network>
  </NetworkSection>
  <VirtualSystem ovf:id="$NAME">
    <Info>A virtual machine</Info>
    <Name>$NAME</Name>
    <OperatingSystemSection ovf:id="96" vmw:osType="debian12_64Guest">
      <Info>The kind of installed guest operating system</Info>
    </OperatingSystemSection>
    <VirtualHardwareSection>
      <Info>Virtual hardware requirements</Info>
      <System>
        <vssd:ElementName>Virtual Hardware Family</vssd:ElementName>
        <vssd:InstanceID>0</vssd:InstanceID>
        <vssd:VirtualSystemIdentifier>$NAME</vssd:VirtualSystemIdentifier>
        <vssd:VirtualSystemType>vmx-19</vssd:VirtualSystemType>
      </System>
      <Item>
        <rasd:AllocationUnits>hertz * 10^6</rasd:AllocationUnits>
        <rasd:Description>Number of Virtual CPUs</rasd:Description>
        <rasd:ElementName>1 virtual CPU(s)</rasd:ElementName>
        <rasd:InstanceID>1</rasd:InstanceID>
        <rasd:ResourceType>3</rasd:ResourceType>
        <rasd:VirtualQuantity>1</rasd:VirtualQuantity>
      </Item>
      <Item>
        <rasd:AllocationUnits>byte * 2^20</rasd:AllocationUnits>
        <rasd:Description>Memory Size</rasd:Description>
        <rasd:ElementName>1024MB of memory</rasd:ElementName>
        <rasd:InstanceID>2</rasd:InstanceID>
        <rasd:ResourceType>4</rasd:ResourceType>
        <rasd:VirtualQuantity>1024</rasd:VirtualQuantity>
      </Item>
      <Item>
        <rasd:Address>0</rasd:Address>
        <rasd:Description>SCSI Controller</rasd:Description>
        <rasd:ElementName>SCSI controller 0</rasd:ElementName>
        <rasd:InstanceID>3</rasd:InstanceID>
        <rasd:ResourceSubType>VirtualSCSI</rasd:ResourceSubType>
        <rasd:ResourceType>6</rasd:ResourceType>
      </Item>
      <Item>
        <rasd:AddressOnParent>0</rasd:AddressOnParent>
        <rasd:ElementName>Hard disk 1</rasd:ElementName>
        <rasd:HostResource>ovf:/disk/vmdisk1</rasd:HostResource>
        <rasd:InstanceID>4</rasd:InstanceID>
        <rasd:Parent>3</rasd:Parent>
        <rasd:ResourceType>17</rasd:ResourceType>
      </Item>
      <Item>
        <rasd:AddressOnParent>7</rasd:AddressOnParent>
        <rasd:AutomaticAllocation>true</rasd:AutomaticAllocation>
        <rasd:Connection>VM Network</rasd:Connection>
        <rasd:Description>VmxNet3 ethernet adapter on "VM Network"</rasd:Description>
        <rasd:ElementName>Network adapter 1</rasd:ElementName>
        <rasd:InstanceID>5</rasd:InstanceID>
        <rasd:ResourceSubType>VmxNet3</rasd:ResourceSubType>
        <rasd:ResourceType>10</rasd:ResourceType>
      </Item>
    </VirtualHardwareSection>
  </VirtualSystem>
</Envelope>
F
  (cd "$dir" && for f in "$NAME.ovf" "$NAME-disk1.vmdk"; do
     echo "SHA256($f)= $(sha256sum "$f" | cut -d' ' -f1)"; done >"$NAME.mf")
  tar --format=ustar -C "$dir" -cf "$out/$NAME.ova.tmp" "$NAME.ovf" "$NAME.mf" "$NAME-disk1.vmdk"
  mv "$out/$NAME.ova.tmp" "$out/$NAME.ova"
  rm -rf "$dir"
}

variant_wrap() {
  local out=$1
  qemu-img convert -f raw -O vmdk -o subformat=monolithicSparse "$out/disk.raw" "$out/$NAME.vmdk"
  write_vmx "$out" "$NAME.vmdk"
  write_ova "$out"
}

build_guest debian-vmware.sh
