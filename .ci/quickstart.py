#!/usr/bin/env python3
"""Follows README.md's Quickstart (the local-chain variant) literally.

Every command in the ```sh blocks between `<!-- quickstart:begin` and `<!-- quickstart:end -->`
runs as written, in order, from the repository root, in its own shell. The two that keep running
(ganache, the gateway) run in the background until the line a user waits for appears; the
`<hex>` placeholder is replaced by the hex of the gateway's `pin:` line, as a user would paste it.
Prints each step's time and the time from the start (a fresh clone: nothing built) to the first
successful call; exits 0 only when every command succeeded and the call printed a block number.
Every child is killed at the end. Env: QUICKSTART_TIMEOUT_SECS (default 1800, the whole run).
"""

import os
import re
import signal
import subprocess
import sys
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BEGIN = "<!-- quickstart:begin"
END = "<!-- quickstart:end -->"
# What a long-running command prints when it is ready, by the command's start.
BACKGROUND = {
    "npx --yes ganache": re.compile(r"RPC Listening on 127\.0\.0\.1:8545"),
    "target/release/shroud-gateway": re.compile(r"^pin: --pin (simulated:measurement=([0-9a-f]{96}))$"),
}
READY_TIMEOUT = 180


def commands(readme):
    """The commands of the quickstart's sh blocks, continuation lines joined, comments dropped."""
    start = readme.index(BEGIN)
    section = readme[start : readme.index(END, start)]
    found = []
    for block in re.findall(r"```sh\n(.*?)```", section, re.S):
        text = re.sub(r"\\\n\s*", " ", block)
        for line in text.splitlines():
            line = line.strip()
            if line and not line.startswith("#"):
                found.append(line)
    return found


def main():
    began = time.monotonic()
    deadline = began + float(os.environ.get("QUICKSTART_TIMEOUT_SECS", "1800"))
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as f:
        steps = commands(f.read())
    if len(steps) < 5:
        sys.exit(f"quickstart: expected at least 5 commands in README's quickstart, found {steps}")
    # The commands use ./target, as a user's shell would.
    env = {k: v for k, v in os.environ.items() if k != "CARGO_TARGET_DIR"}
    children = []
    pin_hex = None
    first_call = None
    try:
        for command in steps:
            if pin_hex is not None:
                command = command.replace("<hex>", pin_hex)
            elif "<hex>" in command:
                sys.exit(f"quickstart: {command!r} needs the pin, but no gateway printed one")
            step_began = time.monotonic()
            print(f"quickstart: $ {command}", flush=True)
            ready = next((pattern for prefix, pattern in BACKGROUND.items() if command.startswith(prefix)), None)
            if ready is not None:
                child = subprocess.Popen(
                    ["bash", "-c", command], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                    stderr=subprocess.STDOUT, text=True, start_new_session=True,
                )
                children.append(child)
                match = wait_for(child, ready, min(deadline, time.monotonic() + READY_TIMEOUT))
                if match is None:
                    sys.exit(f"quickstart: {command!r} did not get ready (exit {child.poll()})")
                if match.groups():
                    pin_hex = match.group(2)
                    print(f"quickstart: pinned {match.group(1)[:40]}…", flush=True)
            else:
                remaining = max(1.0, deadline - time.monotonic())
                done = subprocess.run(
                    ["bash", "-c", command], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                    stderr=subprocess.STDOUT, text=True, timeout=remaining,
                )
                tail = "\n".join(done.stdout.splitlines()[-15:])
                print(tail, flush=True)
                if done.returncode != 0:
                    sys.exit(f"quickstart: {command!r} exited {done.returncode}")
                if " call " in command:
                    answer = done.stdout.strip().splitlines()[-1].strip().strip('"')
                    if not re.fullmatch(r"0x[0-9a-f]+", answer):
                        sys.exit(f"quickstart: the call printed {answer!r}, not a block number")
                    if first_call is None:
                        first_call = time.monotonic() - began
            print(f"quickstart: ok in {time.monotonic() - step_began:.1f} s", flush=True)
        if first_call is None:
            sys.exit("quickstart: no `shroud call` in README's quickstart")
        print(f"quickstart: from the start (nothing built) to the first successful call: {first_call:.0f} s")
        print(f"quickstart: done in {time.monotonic() - began:.0f} s")
    finally:
        for child in children:
            try:
                os.killpg(child.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        for child in children:
            try:
                child.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(child.pid, signal.SIGKILL)


def wait_for(child, pattern, until):
    """The first line of `child`'s output matching `pattern`, or None (exit or deadline)."""
    found = []
    lines = []

    def read():
        for line in child.stdout:
            line = line.rstrip("\n")
            lines.append(line)
            match = pattern.search(line)
            if match:
                found.append(match)
                break
        # Keep draining so that the child never blocks on a full pipe.
        for _ in child.stdout:
            pass

    threading.Thread(target=read, daemon=True).start()
    while time.monotonic() < until and not found and child.poll() is None:
        time.sleep(0.2)
    if not found:
        print("\n".join(lines[-20:]), flush=True)
        return None
    return found[0]


if __name__ == "__main__":
    main()
