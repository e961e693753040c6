#!/usr/bin/env python3
"""Checks the deployment files that CI cannot run (they need AWS): the terraform under
deploy/terraform parses (python-hcl2) and keeps its promises (enclaves enabled, only 443 open,
no secret-looking variables), and the systemd units under deploy/systemd parse and wire the
ports of deploy/nitro/enclave.toml. Nothing here is applied: the terraform is never run from CI.

    .ci/check_deploy.py
"""
import configparser
import glob
import os
import re
import sys

import hcl2

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def fail(message):
    print(f"check_deploy: {message}", file=sys.stderr)
    sys.exit(1)


def terraform():
    blocks = {}
    files = sorted(glob.glob(os.path.join(ROOT, "deploy/terraform/*.tf")))
    if not files:
        fail("no deploy/terraform/*.tf")
    for path in files:
        with open(path) as f:
            try:
                parsed = hcl2.load(f)
            except Exception as e:  # the parser's own error types vary by version
                fail(f"{os.path.relpath(path, ROOT)} does not parse: {e}")
        for kind, items in parsed.items():
            blocks.setdefault(kind, []).extend(items)
    resources = {}
    for item in blocks.get("resource", []):
        for kind, named in item.items():
            for name, body in named.items():
                resources[(kind.strip("\""), name.strip("\""))] = body
    instance = resources.get(("aws_instance", "shroud"))
    if instance is None:
        fail("no aws_instance.shroud")
    options = instance.get("enclave_options", [{}])
    if not (options and options[0].get("enabled") is True):
        fail("aws_instance.shroud must set enclave_options { enabled = true }")
    group = resources.get(("aws_security_group", "shroud"))
    if group is None:
        fail("no aws_security_group.shroud")
    for rule in group.get("ingress", []):
        if (rule.get("from_port"), rule.get("to_port")) != (443, 443):
            fail(f"an ingress rule opens more than 443: {rule}")
    for item in blocks.get("variable", []):
        for name in (n.strip('"') for n in item):
            if re.search(r"secret|password|token|api_?key", name, re.I):
                fail(f"variable {name}: no secrets in terraform variables or state")
    return len(files)


def units():
    paths = sorted(glob.glob(os.path.join(ROOT, "deploy/systemd/*.service")))
    if not paths:
        fail("no deploy/systemd/*.service")
    exec_lines = {}
    for path in paths:
        parser = configparser.ConfigParser(strict=True, interpolation=None)
        parser.optionxform = str
        try:
            parser.read(path)
        except configparser.Error as e:
            fail(f"{os.path.relpath(path, ROOT)}: {e}")
        for section in ("Unit", "Service"):
            if section not in parser:
                fail(f"{os.path.relpath(path, ROOT)}: no [{section}]")
        exec_lines[os.path.basename(path)] = parser["Service"].get("ExecStart", "")
    enclave = os.path.join(ROOT, "deploy/nitro/enclave.toml")
    if os.path.exists(enclave):
        import tomllib

        with open(enclave, "rb") as f:
            config = tomllib.load(f)
        port = config["listen"]["vsock"]
        cid, egress_port = config["egress"]["vsock"].split(":")
        if f"--vsock 16:{port}" not in exec_lines.get("shroud-ingress.service", ""):
            fail(f"shroud-ingress.service must dial the enclave's vsock port {port}")
        if f"--vsock-port {egress_port}" not in exec_lines.get("shroud-egress.service", ""):
            fail(f"shroud-egress.service must listen on vsock port {egress_port}")
        if cid != "3":
            fail("the enclave reaches the parent instance at CID 3")
        if not config["listen"].get("proxy_protocol"):
            fail("enclave.toml must set proxy_protocol: ingress sends PROXY v2 headers")
    if "--enclave-cid 16" not in exec_lines.get("shroud-enclave.service", ""):
        fail("shroud-enclave.service must give the enclave CID 16 (what ingress dials)")
    return len(paths)


if __name__ == "__main__":
    tf = terraform()
    n = units()
    print(f"deploy: {tf} terraform files parse (not applied from CI), {n} systemd units consistent")
