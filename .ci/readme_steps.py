"""Runs the shell commands of a README section literally, as a user pasting them would.

Shared by .ci/quickstart.py (README.md's quickstart) and wasm-client/tests/examples_readme.py
(wasm-client/examples/README.md). `sh_commands` takes the commands out of the ```sh blocks between
two markers; a `Session` runs each from the repository root in its own shell, in the foreground
with a time limit, or in the background until the line a user waits for appears, and kills
every background command (its whole process group) when it closes.
"""

import os
import re
import signal
import subprocess
import sys
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def section(path, begin, end):
    """The text of `path` between the `begin` marker and the next `end` marker."""
    with open(path, encoding="utf-8") as f:
        text = f.read()
    start = text.index(begin)
    return text[start : text.index(end, start)]


def sh_commands(text):
    """The commands of the ```sh blocks of `text`, continuation lines joined, comments dropped."""
    found = []
    for block in re.findall(r"```sh\n(.*?)```", text, re.S):
        joined = re.sub(r"\\\n\s*", " ", block)
        for line in joined.splitlines():
            line = line.strip()
            if line and not line.startswith("#"):
                found.append(line)
    return found


class Session:
    """Runs commands from the repository root until `deadline` (time.monotonic()); a context
    manager that stops every background command on exit. `fail(message)` ends the program."""

    def __init__(self, env, deadline, name):
        self.env = env
        self.deadline = deadline
        self.name = name
        self.children = []

    def fail(self, message):
        sys.exit(f"{self.name}: {message}")

    def background(self, command, ready, timeout):
        """Starts `command` and waits up to `timeout` s for a line of its output matching
        `ready`; returns the match (or fails, showing the command's last lines)."""
        child = subprocess.Popen(
            ["bash", "-c", command], cwd=ROOT, env=self.env, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True, start_new_session=True,
        )
        self.children.append(child)
        match = wait_for(child, ready, min(self.deadline, time.monotonic() + timeout))
        if match is None:
            self.fail(f"{command!r} did not get ready (exit {child.poll()})")
        return match

    def run(self, command, timeout=None, show=15):
        """Runs `command` to its end (within `timeout` s and the deadline), prints the last
        `show` lines of its output and returns the output; fails when it exits non-zero."""
        remaining = max(1.0, self.deadline - time.monotonic())
        if timeout is not None:
            remaining = min(remaining, timeout)
        child = subprocess.Popen(
            ["bash", "-c", command], cwd=ROOT, env=self.env, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True, start_new_session=True,
        )
        try:
            output, _ = child.communicate(timeout=remaining)
        except subprocess.TimeoutExpired:
            os.killpg(child.pid, signal.SIGKILL)
            child.communicate()
            self.fail(f"{command!r} did not finish within {remaining:.0f} s")
        finally:
            if child.poll() is None:
                os.killpg(child.pid, signal.SIGKILL)
                child.wait()
        if output.strip():
            print("\n".join(output.splitlines()[-show:]), flush=True)
        if child.returncode != 0:
            self.fail(f"{command!r} exited {child.returncode}")
        return output

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        for child in self.children:
            try:
                os.killpg(child.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        for child in self.children:
            try:
                child.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(child.pid, signal.SIGKILL)
                child.wait()
        return False


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
