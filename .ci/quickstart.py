#!/usr/bin/env python3
"""Follows README.md's Quickstart (the local-chain variant) literally.

Every command in the ```sh blocks between `<!-- quickstart:begin` and `<!-- quickstart:end -->`
runs as written, in order, from the repository root, in its own shell. The two that keep running
(ganache, the gateway) run in the background until the line a user waits for appears; the
`<hex>` placeholder is replaced by the hex of the gateway's `pin:` line, as a user would paste it.
Prints each step's time and the time from the start (a fresh clone: nothing built) to the first
successful call; exits 0 only when every command succeeded and the call printed a block number.
Every child is killed at the end (.ci/readme_steps.py runs the commands). Env:
QUICKSTART_TIMEOUT_SECS (default 1800, the whole run).
"""

import os
import re
import sys
import time

from readme_steps import ROOT, Session, section, sh_commands

BEGIN = "<!-- quickstart:begin"
END = "<!-- quickstart:end -->"
# What a long-running command prints when it is ready, by the command's start.
BACKGROUND = {
    "npx --yes ganache": re.compile(r"RPC Listening on 127\.0\.0\.1:8545"),
    "target/release/shroud-gateway": re.compile(r"^pin: --pin (simulated:measurement=([0-9a-f]{96}))$"),
}
READY_TIMEOUT = 180


def main():
    began = time.monotonic()
    deadline = began + float(os.environ.get("QUICKSTART_TIMEOUT_SECS", "1800"))
    steps = sh_commands(section(os.path.join(ROOT, "README.md"), BEGIN, END))
    if len(steps) < 5:
        sys.exit(f"quickstart: expected at least 5 commands in README's quickstart, found {steps}")
    # The commands use ./target, as a user's shell would.
    env = {k: v for k, v in os.environ.items() if k != "CARGO_TARGET_DIR"}
    pin_hex = None
    first_call = None
    with Session(env, deadline, "quickstart") as session:
        for command in steps:
            if pin_hex is not None:
                command = command.replace("<hex>", pin_hex)
            elif "<hex>" in command:
                sys.exit(f"quickstart: {command!r} needs the pin, but no gateway printed one")
            step_began = time.monotonic()
            print(f"quickstart: $ {command}", flush=True)
            ready = next((pattern for prefix, pattern in BACKGROUND.items() if command.startswith(prefix)), None)
            if ready is not None:
                match = session.background(command, ready, READY_TIMEOUT)
                if match.groups():
                    pin_hex = match.group(2)
                    print(f"quickstart: pinned {match.group(1)[:40]}…", flush=True)
            else:
                output = session.run(command)
                if " call " in command:
                    answer = output.strip().splitlines()[-1].strip().strip('"')
                    if not re.fullmatch(r"0x[0-9a-f]+", answer):
                        sys.exit(f"quickstart: the call printed {answer!r}, not a block number")
                    if first_call is None:
                        first_call = time.monotonic() - began
            print(f"quickstart: ok in {time.monotonic() - step_began:.1f} s", flush=True)
        if first_call is None:
            sys.exit("quickstart: no `shroud call` in README's quickstart")
        print(f"quickstart: from the start (nothing built) to the first successful call: {first_call:.0f} s")
        print(f"quickstart: done in {time.monotonic() - began:.0f} s")


if __name__ == "__main__":
    main()
