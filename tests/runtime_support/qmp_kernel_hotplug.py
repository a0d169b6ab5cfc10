"""Hot-plug with a Linux guest (PyPI qemu.qmp client): the same conversation against QEMU and
Ferry's runtime, each step waiting for the guest kernel's answer on the serial console.

The kernel waits for its root on /dev/vdc (`rootwait`); /dev/vda is cold-plugged. Steps: a
1 MiB null-co disk is plugged (the kernel sees vdb), unplugged (the guest ejects it:
DEVICE_DELETED), plugged again under a new id (vdb again), then the root image is plugged
(vdc), which the kernel mounts.

Usage: qmp_kernel_hotplug.py SOCKET CONSOLE_FILE ROOT_IMAGE TIMEOUT_S -> prints a JSON object:
"answers" (step -> QMP answer), "reached" (the milestones seen, in order, with seconds since
the guest reached rootwait), "deleted" (ids of DEVICE_DELETED events), "pci" (bus 0
functions at the end)."""
import asyncio
import json
import re
import sys
import time

from qemu.qmp import QMPClient
from qemu.qmp.qmp_client import ExecuteError


async def main(sock, console, root, timeout):
    qmp = QMPClient("ferry-kernel-hotplug")
    for _ in range(300):
        try:
            await qmp.connect(sock)
            break
        except Exception:
            await asyncio.sleep(0.1)
    deadline = time.monotonic() + timeout
    out = {"answers": {}, "reached": [], "deleted": []}
    deleted = []

    async def collect():
        async for ev in qmp.events:
            if ev["event"] == "DEVICE_DELETED" and "device" in ev.get("data", {}):
                deleted.append(ev["data"]["device"])

    collector = asyncio.create_task(collect())
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

    async def step(name, cmd, **args):
        try:
            out["answers"][name] = {"return": await qmp.execute(cmd, args)}
        except ExecuteError as e:
            out["answers"][name] = {"class": e.received["error"]["class"], "desc": e.received["error"]["desc"]}

    vdb = r"\[vdb\] 2048 512-byte logical blocks"
    ok = await wait("rootwait", lambda: seen(r"Waiting for root device /dev/vdc") > 0)
    start = time.monotonic()
    if ok:
        await step("add_scratch_node", "blockdev-add", driver="null-co", size=1 << 20, **{"node-name": "scratch"})
        await step("add_hp1", "device_add", driver="virtio-blk-pci", id="hp1", drive="scratch", bus="pci.0", addr="0x10")
        ok = await wait("vdb", lambda: seen(vdb) >= 1)
    if ok:
        await step("del_hp1", "device_del", id="hp1")
        await step("del_hp1_again", "device_del", id="hp1")
        ok = await wait("hp1_deleted", lambda: "hp1" in deleted)
    if ok:
        await step("add_hp2", "device_add", driver="virtio-blk-pci", id="hp2", drive="scratch", bus="pci.0", addr="0x10")
        ok = await wait("vdb_again", lambda: seen(vdb) >= 2)
    if ok:
        await step("add_root_node", "blockdev-add", driver="raw", **{"node-name": "root", "read-only": True}, file={"driver": "file", "filename": root})
        await step("del_busy_node", "blockdev-del", **{"node-name": "scratch"})
        await step("add_root", "device_add", driver="virtio-blk-pci", id="hproot", drive="root", bus="pci.0", addr="0x11")
        await wait("root_mounted", lambda: seen(r"VFS: Mounted root \(ext4 filesystem\) readonly") > 0)
    out["deleted"] = deleted
    pci = await qmp.execute("query-pci")
    out["pci"] = sorted("%02x.%d" % (d["slot"], d["function"]) for d in pci[0]["devices"])
    collector.cancel()
    await qmp.execute("quit")
    try:
        await qmp.disconnect()
    except Exception:
        pass
    print(json.dumps(out, sort_keys=True))


asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])))
