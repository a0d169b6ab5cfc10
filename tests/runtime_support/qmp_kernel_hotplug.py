"""Hot-plug with a Linux guest (PyPI qemu.qmp client): the same conversation against QEMU and
Ferry's runtime, each step waiting for the guest kernel's answer on the serial console.

The guest (pc-v2) has NAME's cold-plugged disks and a PCI bridge; the kernel waits for its
root by partition UUID (`rootwait`). Steps: a 1 MiB null-co disk is plugged on the root bus at
ROOT_SLOT (the kernel sees it as NAME), unplugged (the guest ejects it: DEVICE_DELETED),
plugged behind the bridge BRIDGE (NAME again), unplugged there, then the root image is
plugged behind the bridge, which the kernel mounts.

Usage: qmp_kernel_hotplug.py SOCKET CONSOLE_FILE ROOT_IMAGE TIMEOUT_S NAME ROOT_SLOT BRIDGE ->
prints a JSON object:
"answers" (step -> QMP answer), "reached" (the milestones seen, in order, with seconds since
the guest reached rootwait), "deleted" (ids of DEVICE_DELETED events), "pci" (bus 0
functions at the end)."""
import asyncio
import json
import re
import sys
import time

from qmp_common import Conversation, connect, root_functions


async def main(sock, console, root, timeout, name, root_slot, bridge):
    qmp = await connect("ferry-kernel-hotplug", sock, tries=300)
    deadline = time.monotonic() + timeout
    c = Conversation(qmp)
    out = {"answers": c.out, "reached": [], "deleted": []}
    deleted = c.deleted
    start = None

    def seen(pattern):
        try:
            with open(console, "rb") as f:
                text = f.read().decode("utf-8", "replace")
        except OSError:
            return 0
        return len(re.findall(pattern, text))

    async def wait(name, check):
        while time.monotonic() < deadline:
            if check():
                out["reached"].append([name, round(time.monotonic() - (start or time.monotonic()), 1)])
                return True
            await asyncio.sleep(0.25)
        return False

    step = c.step

    disk = r"\[%s\] 2048 512-byte logical blocks" % name
    ok = await wait("rootwait", lambda: seen(r"Waiting for root device PARTUUID=") > 0)
    start = time.monotonic()
    if ok:
        await step("add_scratch_node", "blockdev-add", driver="null-co", size=1 << 20, **{"node-name": "scratch"})
        await step("add_hp1", "device_add", driver="virtio-blk-pci", id="hp1", drive="scratch", bus="pci.0", addr=root_slot)
        ok = await wait("root_bus_disk", lambda: seen(disk) >= 1)
    if ok:
        await step("del_hp1", "device_del", id="hp1")
        await step("del_hp1_again", "device_del", id="hp1")
        ok = await wait("hp1_deleted", lambda: "hp1" in deleted)
    if ok:
        await step("add_hp2", "device_add", driver="virtio-blk-pci", id="hp2", drive="scratch", bus=bridge, addr="0x5")
        ok = await wait("bridge_disk", lambda: seen(disk) >= 2)
    if ok:
        await step("del_hp2", "device_del", id="hp2")
        ok = await wait("hp2_deleted", lambda: "hp2" in deleted)
    if ok:
        await step("add_root_node", "blockdev-add", driver="raw", **{"node-name": "root", "read-only": True}, file={"driver": "file", "filename": root})
        await step("add_root", "device_add", driver="virtio-blk-pci", id="hproot", drive="root", bus=bridge, addr="0x6")
        await step("del_busy_node", "blockdev-del", **{"node-name": "root"})
        await wait("root_mounted", lambda: seen(r"VFS: Mounted root \(ext4 filesystem\) readonly") > 0)
    out["deleted"] = list(deleted)
    out["pci"] = root_functions(await qmp.execute("query-pci"))
    await c.quit()
    print(json.dumps(out, sort_keys=True))


asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4]), sys.argv[5], sys.argv[6], sys.argv[7]))
