"""Hot-plug behind pc's PCI bridge (PyPI qemu.qmp client), the same conversation against
Ferry's runtime and QEMU: a disk and a NIC added on the bridge's bus, a cold-plugged disk
behind it asked to go, a bad slot refused, then a system_reset (the pending unplug is carried
out, the new functions stay).

Usage: qmp_bridge_hotplug.py SOCKET BRIDGE COLD_ID -> prints a JSON object: step name ->
answer, "pci" and "pci_after_reset" (every function, those behind bridges as
"BUS/SLOT.FN"), "deleted_at_reset" (ids of DEVICE_DELETED events)."""
import asyncio
import json
import sys

from qmp_common import Conversation, connect


def functions(pci):
    out = []
    for d in pci[0]["devices"]:
        out.append("%02x.%d" % (d["slot"], d["function"]))
        bridge = d.get("pci_bridge")
        if bridge:
            for c in bridge.get("devices", []):
                out.append("%d/%02x.%d" % (c["bus"], c["slot"], c["function"]))
    return sorted(out)


async def main(path, bridge, cold):
    qmp = await connect("ferry-bridge-hotplug-test", path)
    c = Conversation(qmp)
    out, step = c.out, c.step

    await step("blockdev_add", "blockdev-add", driver="null-co", **{"node-name": "brnode"})
    await step("add_blk_bridge", "device_add", driver="virtio-blk-pci", id="brblk", drive="brnode", bus=bridge, addr="0x5")
    await step("add_net_bridge_no_addr", "device_add", driver="virtio-net-pci", id="brnet", bus=bridge)
    await step("add_blk_bridge_taken_slot", "device_add", driver="virtio-rng-pci", id="brrng", bus=bridge, addr="0x5")
    await step("del_cold_behind_bridge", "device_del", id=cold)
    out["pci"] = functions(await qmp.execute("query-pci"))
    out["pci_after_reset"] = await c.pci_after_reset(functions)
    out["deleted_at_reset"] = sorted(c.deleted)
    await c.quit()
    print(json.dumps(out, sort_keys=True))


asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3]))
