"""The same QMP conversation against Ferry's runtime and QEMU (PyPI qemu.qmp client).

Usage: qmp_script.py SOCKET  -> prints a JSON summary of what the monitor answered."""
import asyncio
import json
import sys

from qmp_common import connect


async def main(path):
    qmp = await connect("ferry-test", path)
    out = {}
    events = []

    async def collect():
        async for ev in qmp.events:
            events.append(ev["event"])

    task = asyncio.create_task(collect())
    out["greeting_has_version"] = "qemu" in qmp.greeting.QMP.version
    ver = await qmp.execute("query-version")
    out["version_keys"] = sorted(ver.keys())
    st = await qmp.execute("query-status")
    out["status0"] = st["status"]
    pci = await qmp.execute("query-pci")
    devs = pci[0]["devices"]
    out["pci"] = sorted(
        "%02x.%d %04x:%04x" % (d["slot"], d["function"], d["id"]["vendor"], d["id"]["device"]) for d in devs
    )
    blk = await qmp.execute("query-block")
    out["block_qdevs"] = sorted(b.get("qdev", "") for b in blk if b.get("inserted"))
    await qmp.execute("stop")
    out["status_stopped"] = (await qmp.execute("query-status"))["status"]
    await qmp.execute("cont")
    out["status_cont"] = (await qmp.execute("query-status"))["status"]
    await qmp.execute("system_powerdown")
    try:
        await qmp.execute("no-such-command")
    except Exception as e:
        out["unknown_command"] = type(e).__name__
    await qmp.execute("quit")
    for _ in range(50):
        if "SHUTDOWN" in events:
            break
        await asyncio.sleep(0.05)
    task.cancel()
    out["events"] = [e for e in events if e in ("STOP", "RESUME", "POWERDOWN", "SHUTDOWN")]
    try:
        await qmp.disconnect()
    except Exception:
        pass
    print(json.dumps(out, sort_keys=True))


asyncio.run(main(sys.argv[1]))
