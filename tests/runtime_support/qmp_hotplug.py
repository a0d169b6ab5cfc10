"""device_add / device_del over QMP (PyPI qemu.qmp client), the same conversation against
Ferry's runtime and QEMU.

Usage: qmp_hotplug.py SOCKET ROOT_BUS -> prints a JSON object: step name -> answer
({"return": ...} or {"class": ...}, "desc": ...}), plus "pci": the functions on bus 0, and
after a system_reset "pci_after_reset" and "deleted_at_reset" (ids of DEVICE_DELETED events:
unplug requests the guest never answered are carried out at a reset)."""
import asyncio
import json
import sys

from qemu.qmp import QMPClient
from qemu.qmp.qmp_client import ExecuteError


async def main(path, bus):
    qmp = QMPClient("ferry-hotplug-test")
    for _ in range(100):
        try:
            await qmp.connect(path)
            break
        except Exception:
            await asyncio.sleep(0.1)
    out = {}
    deleted = []

    async def collect():
        async for ev in qmp.events:
            if ev["event"] == "DEVICE_DELETED" and "device" in ev.get("data", {}):
                deleted.append(ev["data"]["device"])

    collector = asyncio.create_task(collect())

    async def step(name, cmd, **args):
        try:
            out[name] = {"return": await qmp.execute(cmd, args)}
        except ExecuteError as e:
            out[name] = {"class": e.received["error"]["class"], "desc": e.received["error"]["desc"]}

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
    pci = await qmp.execute("query-pci")
    out["pci"] = sorted("%02x.%d" % (d["slot"], d["function"]) for d in pci[0]["devices"])
    await step("system_reset", "system_reset")
    await asyncio.sleep(1.0)
    for _ in range(100):
        pci = await qmp.execute("query-pci")
        if pci and pci[0]["devices"]:
            break
        await asyncio.sleep(0.1)
    out["pci_after_reset"] = sorted("%02x.%d" % (d["slot"], d["function"]) for d in pci[0]["devices"])
    out["deleted_at_reset"] = sorted(deleted)
    collector.cancel()
    await qmp.execute("quit")
    try:
        await qmp.disconnect()
    except Exception:
        pass
    print(json.dumps(out, sort_keys=True))


asyncio.run(main(sys.argv[1], sys.argv[2]))
