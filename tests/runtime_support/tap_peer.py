"""Host end of a tap: waits for the guest's 0x88b5 frame, answers with "ferry-rx-frame".

Usage: tap_peer.py IFNAME  (prints "got ferry-tx-frame" and exits after replying)."""
import socket
import sys

ETH_P = 0x88B5
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P))
s.bind((sys.argv[1], ETH_P))
s.settimeout(120)
print("ready", flush=True)
while True:
    frame = s.recv(2048)
    if b"ferry-tx-frame" in frame:
        print("got ferry-tx-frame", flush=True)
        guest_mac = frame[6:12]
        reply = guest_mac + bytes.fromhex("020000000001") + ETH_P.to_bytes(2, "big") + b"ferry-rx-frame"
        s.send(reply.ljust(60, b"\0"))
        break
