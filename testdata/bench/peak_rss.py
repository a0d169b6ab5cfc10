#!/usr/bin/env python3
"""Runs a command and reports the peak of the SUM of VmRSS over its whole process tree
(the command and every descendant alive at the same moment), sampled every 20 ms from
/proc, plus wall and CPU seconds (user+sys of the tree, from wait4's rusage).

    testdata/bench/peak_rss.py [--interval-ms 20] -- COMMAND ARGS...

Prints one JSON line on stderr: peak_tree_rss_kib, peak_processes, samples, wall_s,
cpu_user_s, cpu_sys_s, exit. Shared pages (the binary's text, page cache mapped by
several processes) are counted once per process, so this is an upper bound. Used for
issue 15's bound: peak RSS of the whole batch <= 512 MiB (a cgroup's memory peak would
include the page cache of the images written, which is not resident memory of Ferry)."""
import json
import os
import resource
import sys
import time


def children_map():
    kids = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue
        # The command name is in parentheses and may hold spaces: split after the last ')'.
        rest = stat[stat.rfind(b")") + 2:].split()
        kids.setdefault(int(rest[1]), []).append(int(d))
    return kids


def rss_kib(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def tree(root, kids):
    out, todo = [], [root]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(kids.get(p, []))
    return out


def main():
    args = sys.argv[1:]
    interval = 0.02
    if args[:1] == ["--interval-ms"]:
        interval = float(args[1]) / 1000
        args = args[2:]
    if args[:1] == ["--"]:
        args = args[1:]
    if not args:
        sys.exit("usage: peak_rss.py [--interval-ms N] -- COMMAND ARGS...")
    start = time.monotonic()
    pid = os.fork()
    if pid == 0:
        try:
            os.execvp(args[0], args)
        finally:
            os._exit(127)
    peak = peak_n = samples = 0
    status = None
    while True:
        done, st, ru = os.wait4(pid, os.WNOHANG)
        if done:
            status, usage = st, ru
            break
        pids = tree(pid, children_map())
        total = sum(rss_kib(p) for p in pids)
        samples += 1
        if total > peak:
            peak, peak_n = total, len(pids)
        time.sleep(interval)
    wall = time.monotonic() - start
    # wait4's rusage covers the command; its waited-for descendants are in RUSAGE_CHILDREN.
    ch = resource.getrusage(resource.RUSAGE_CHILDREN)
    code = os.waitstatus_to_exitcode(status)
    print(json.dumps({
        "peak_tree_rss_kib": peak, "peak_processes": peak_n, "samples": samples,
        "wall_s": round(wall, 3), "cpu_user_s": round(ch.ru_utime, 3), "cpu_sys_s": round(ch.ru_stime, 3),
        "exit": code,
    }), file=sys.stderr)
    sys.exit(code if code >= 0 else 128 - code)


if __name__ == "__main__":
    main()
