#!/usr/bin/env python3
"""Follows wasm-client/examples/README.md literally, then opens the page it names.

Every command in the ```sh blocks between `<!-- examples:begin` and `<!-- examples:end -->` runs
as written, in order, from the repository root, through .ci/readme_steps.py (as .ci/quickstart.py
does for README.md): the three that keep running (ganache, the gateway, the web server) in the
background until the line a user waits for appears. The page's URL is the section's ```text
block, with `<hex>` replaced by the hex of the gateway's `pin:` line, as a user would paste it;
headless Chromium opens it (tests/browser/run.mjs --page) and must show the block number that
ganache reports, and refuse the page with another measurement. Every child is stopped at the end.

CI runs this after tests/run.sh and .ci/quickstart.py, whose package and release gateway it
finds built (the README's build commands then take seconds). Needs tests/browser's npm packages
(`npm ci --prefix wasm-client/tests/browser`, which tests/run.sh does) and the ports the README
uses free on 127.0.0.1: 8545, 8443, 9464 (the gateway's metrics) and 8000.
Env: EXAMPLES_README_TIMEOUT_SECS (default 1800, the whole run).
"""

import os
import re
import socket
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", ".ci"))
from readme_steps import ROOT, Session, section, sh_commands  # noqa: E402

README = os.path.join(ROOT, "wasm-client", "examples", "README.md")
BEGIN = "<!-- examples:begin"
END = "<!-- examples:end -->"
# What a long-running command prints when it is ready, by the command's start.
BACKGROUND = {
    "npx --yes ganache": re.compile(r"RPC Listening on 127\.0\.0\.1:8545"),
    "target/release/shroud-gateway": re.compile(r"^pin: --pin simulated:measurement=([0-9a-f]{96})$"),
    "python3 -m http.server": re.compile(r"Serving HTTP on 127\.0\.0\.1 port 8000"),
}
PORTS = (8545, 8443, 9464, 8000)
NODE = "http://127.0.0.1:8545"
READY_TIMEOUT = 180
PAGE_TIMEOUT = 300


def page_url(text):
    """The one URL of the section's ```text blocks."""
    urls = [
        line.strip()
        for block in re.findall(r"```text\n(.*?)```", text, re.S)
        for line in block.splitlines()
        if line.strip().startswith("http://")
    ]
    if len(urls) != 1:
        sys.exit(f"examples README: expected one page URL in a text block, found {urls}")
    return urls[0]


def main():
    began = time.monotonic()
    deadline = began + float(os.environ.get("EXAMPLES_README_TIMEOUT_SECS", "1800"))
    text = section(README, BEGIN, END)
    steps = sh_commands(text)
    url = page_url(text)
    if len(steps) < 6:
        sys.exit(f"examples README: expected at least 6 commands, found {steps}")
    if not os.path.isdir(os.path.join(ROOT, "wasm-client", "tests", "browser", "node_modules", "playwright-core")):
        sys.exit("examples README: npm ci --prefix wasm-client/tests/browser first (tests/run.sh does)")
    for port in PORTS:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                sys.exit(f"examples README: 127.0.0.1:{port} is in use; the README's commands need it")
    # The commands use ./target, as a user's shell would; Python's web server must print its
    # ready line at once, not when its output buffer fills.
    env = {k: v for k, v in os.environ.items() if k != "CARGO_TARGET_DIR"}
    env["PYTHONUNBUFFERED"] = "1"
    pin_hex = None
    with Session(env, deadline, "examples README") as session:
        for command in steps:
            step_began = time.monotonic()
            print(f"examples README: $ {command}", flush=True)
            ready = next((p for prefix, p in BACKGROUND.items() if command.startswith(prefix)), None)
            if ready is None:
                session.run(command)
            else:
                match = session.background(command, ready, READY_TIMEOUT)
                if match.groups():
                    pin_hex = match.group(1)
            print(f"examples README: ok in {time.monotonic() - step_began:.1f} s", flush=True)
        if pin_hex is None or "<hex>" not in url:
            sys.exit(f"examples README: no pin to paste into {url!r}")
        url = url.replace("<hex>", pin_hex)
        print(f"examples README: open {url[:80]}…", flush=True)
        output = session.run(
            f"node wasm-client/tests/browser/run.mjs --page '{url}' --node {NODE}", timeout=PAGE_TIMEOUT,
        )
        if "block number shown by the page" not in output or "1 passed, 0 failed" not in output:
            sys.exit("examples README: the page did not show the node's block number")
    print(f"examples README: done in {time.monotonic() - began:.0f} s")


if __name__ == "__main__":
    main()
