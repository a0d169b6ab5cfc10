"""device_add / device_del over QMP (PyPI qemu.qmp client), the same conversation against
Ferry's runtime and QEMU.

Usage: qmp_hotplug.py SOCKET ROOT_BUS -> prints a JSON object: step name -> answer
({"return": ...} or {"class": ...}, "desc": ...}), plus "pci": the functions on bus 0,
"block_qdevs": the devices query-block lists with a medium, and
after a system_reset "pci_after_reset" and "deleted_at_reset" (ids of DEVICE_DELETED events:
unplug requests the guest never answered are carried out at a reset)."""
import asyncio
import json
import sys

from qmp_common import Conversation, connect, root_functions


async def main(path, bus):
    qmp = await connect("ferry-hotplug-test", path)
    c = Conversation(qmp)
    out, step = c.out, c.step

    net = "virtio-net-pci-non-transitional"
    blk = "virtio-blk-pci-non-transitional"
    await step("add_net_root_bus", "device_add", driver=net, id="hpnet", bus=bus, addr="0x1a")
    await step("add_net_no_bus", "device_add", driver=net, id="hpnet2")
    await step("add_transitional_net_root_bus", "device_add", driver="virtio-net-pci-transitional", id="hptnet", bus=bus, addr="0x1c")
    await step("blockdev_add", "blockdev-add", driver="null-co", **{"node-name": "hpnode"})
    await step("add_blk_root_bus", "device_add", driver=blk, id="hpblk", drive="hpnode", bus=bus, addr="0x1b")
    await step("add_blk_unknown_bus", "device_add", driver=blk, id="hpblk3", drive="hpnode", bus="nosuch.0")
    await step("add_unknown_model", "device_add", driver="nosuch-device", id="x")
    await step("add_no_driver", "device_add", id="y")
    await step("del_coldplugged_net", "device_del", id="net0")
    await step("del_coldplugged_disk", "device_del", id="disk1")
    await step("del_unknown_id", "device_del", id="nosuch")
    out["pci"] = root_functions(await qmp.execute("query-pci"))
    blk = await qmp.execute("query-block")
    out["block_qdevs"] = sorted(b.get("qdev", "") for b in blk if b.get("inserted"))
    out["pci_after_reset"] = await c.pci_after_reset(root_functions)
    out["deleted_at_reset"] = sorted(c.deleted)
    await c.quit()
    print(json.dumps(out, sort_keys=True))


asyncio.run(main(sys.argv[1], sys.argv[2]))
