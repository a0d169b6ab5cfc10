"""Presses the power button over QMP and reports the events until SHUTDOWN (PyPI qemu.qmp).

Usage: acpi_powerdown.py SOCKET  -> prints a JSON list of {"event", "data"} seen."""
import asyncio
import json
import sys

from qmp_common import connect


async def main(path):
    qmp = await connect("ferry-acpi-test", path)
    events = []
    done = asyncio.Event()

    async def collect():
        async for ev in qmp.events:
            events.append({"event": ev["event"], "data": ev.get("data", {})})
            if ev["event"] == "SHUTDOWN":
                done.set()

    task = asyncio.create_task(collect())
    await qmp.execute("system_powerdown")
    try:
        await asyncio.wait_for(done.wait(), 120)
    except asyncio.TimeoutError:
        pass
    task.cancel()
    try:
        await qmp.disconnect()
    except Exception:
        pass
    print(json.dumps(events))


asyncio.run(main(sys.argv[1]))
