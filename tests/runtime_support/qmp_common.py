"""What the QMP test conversations share (PyPI qemu.qmp client): connecting while the
monitor comes up, answering a step as {"return": ...} or {"class", "desc"}, the ids of
DEVICE_DELETED events, listing PCI functions, and quitting."""
import asyncio

from qemu.qmp import QMPClient
from qemu.qmp.qmp_client import ExecuteError


async def connect(name, path, tries=100):
    """A client connected to `path` (retried every 0.1 s while the socket appears)."""
    qmp = QMPClient(name)
    for _ in range(tries):
        try:
            await qmp.connect(path)
            break
        except Exception:
            await asyncio.sleep(0.1)
    return qmp


class Conversation:
    """Steps recorded by name in `out`, and the ids of DEVICE_DELETED events in `deleted`."""

    def __init__(self, qmp):
        self.qmp = qmp
        self.out = {}
        self.deleted = []
        self.task = asyncio.create_task(self._collect())

    async def _collect(self):
        async for ev in self.qmp.events:
            if ev["event"] == "DEVICE_DELETED" and "device" in ev.get("data", {}):
                self.deleted.append(ev["data"]["device"])

    async def step(self, name, cmd, **args):
        try:
            self.out[name] = {"return": await self.qmp.execute(cmd, args)}
        except ExecuteError as e:
            self.out[name] = {"class": e.received["error"]["class"], "desc": e.received["error"]["desc"]}

    async def pci_after_reset(self, list_functions):
        """`system_reset`, then the functions once the machine answers query-pci again."""
        await self.step("system_reset", "system_reset")
        await asyncio.sleep(1.0)
        for _ in range(100):
            pci = await self.qmp.execute("query-pci")
            if pci and pci[0]["devices"]:
                break
            await asyncio.sleep(0.1)
        return list_functions(pci)

    async def quit(self):
        self.task.cancel()
        await quit(self.qmp)


async def quit(qmp):
    """`quit`, then disconnect (the peer may already be gone)."""
    await qmp.execute("quit")
    try:
        await qmp.disconnect()
    except Exception:
        pass


def root_functions(pci):
    """The functions on bus 0 as "SLOT.FN"."""
    return sorted("%02x.%d" % (d["slot"], d["function"]) for d in pci[0]["devices"])
