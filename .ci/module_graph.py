#!/usr/bin/env python3
"""The module graph of each crate, from its `crate::` paths, and the check CI runs on it.

A module is a file under src/ (`a/mod.rs` is `a`, `a/b.rs` is `a::b`). An edge A -> B means
A names `crate::B...` or `super::...` reaching B (in a `use` or inline). A path to an item that
a module re-exports (`pub use b::Item` in `lib.rs` or a `mod.rs`) counts as an edge to the
module that defines it, so re-exports cannot hide a cycle.

    .ci/module_graph.py            # check every crate: exit 1 on a cycle, printing it
    .ci/module_graph.py --edges    # print the edges per crate (for a closing note)
    .ci/module_graph.py --self-test  # show that a planted upward import and cycle are caught

A cycle is a set of modules that import each other, directly or through others: reading one
means reading all. Test modules (`#[cfg(test)]` blocks at the end of a file) are left out.

LAYERS declares, per crate, the layer of every module, lowest first: a module may import its own
layer and the ones below, never one above (an upward import fails even when it closes no cycle
yet). A new module must be given a layer here, which is the moment to decide where it belongs.
"""
import os
import re
import sys

CRATES = ["ra-tls", "ohttp", "gateway", "host", "client-sdk", "wasm-client", "testkit", "benches"]

LAYERS = {
    "ra-tls": [
        ["platform", "pem", "policy_file", "x509", "cbor"],
        ["error"],
        ["claims", "policy"],
        ["cmw", "attest", "verify::pki", "verify::pki::chain", "verify::report"],
        ["cert", "verify::intel", "verify::nitro", "verify::sev_snp", "verify::simulated"],
        ["verify"],
        ["tls", "attest::collateral", "attest::configfs_tsm", "attest::gramine", "attest::nitro",
         "attest::simulated"],
        ["attest::detect"],
    ],
    "ohttp": [
        ["error", "dhkem"],
        ["algorithms", "message"],
        ["suite", "response"],
        ["keys"],
        ["request", "bundle"],
        ["session"],
        ["conformance_tests"],
    ],
    "gateway": [
        # Foundations: configuration, the response body, shutdown, pure pipeline leaves.
        ["transport", "paths", "settings", "config", "body", "shutdown", "pipeline::json", "pipeline::error", "pipeline::envelope",
         "pipeline::restore", "cluster::epoch", "cluster::error", "cluster::status", "certs",
         "acme::schedule", "quic::body", "first_byte", "workers"],
        ["error", "ratelimit", "descriptors", "ohttp::keys", "admission", "request_body",
         "egress", "proxy_header", "cluster::secret", "cluster::wire", "cluster::trust",
         "acme::error", "acme::challenge", "acme::http", "quic::config"],
        ["metrics"],
        # The pure pipeline stages: parse -> policy -> strip, planning and assembly.
        ["pipeline::parse", "pipeline::policy", "pipeline::strip", "pipeline::respond",
         "pipeline::cache", "pipeline::assemble", "pipeline::plan", "subscriptions::block",
         "subscriptions::outbox", "subscriptions::window"],
        ["subscriptions::filter"],
        # The upstream pool: takes only what strip built.
        ["upstream"],
        # What drives I/O over the pool, and what the TLS listener needs.
        ["pipeline::select", "pipeline::forward", "pipeline::private_tx", "pipeline", "collateral", "tls", "ohttp",
         "ohttp::cors", "cluster::serve", "cluster::dial", "cluster::acquire", "cluster::rotation",
         "cluster", "acme", "subscriptions::source", "subscriptions::feed"],
        # The chain follower, and the subscriptions that start it.
        ["subscriptions::follower", "subscriptions::heads_ws"],
        ["subscriptions"],
        ["state"],
        ["subscriptions::session"],
        ["routes", "ohttp::handle", "admin", "attestation"],
        # The h3 listener serves the same routes over QUIC.
        ["quic"],
        ["gateway"],
    ],
    "host": [
        # Leaves: streams and listeners, the pure preamble parser, limits, the stop signal.
        ["io", "preamble", "slots", "timeouts", "shutdown"],
        ["pipe", "cli"],
        ["ingress", "egress"],
    ],
    "client-sdk": [
        ["error"],
        ["connect", "jsonrpc", "policy", "retry", "pool", "jsonrpsee_transport", "quic"],
        # What both clients share: the options and the one call/batch/retry path.
        ["options", "exchange"],
        # Client's transport: hand-driven HTTP over the attested pool; WebSocket over an attested
        # connection of its own.
        ["attested_http", "fresh", "websocket"],
        # What runs over a WebSocket: a subscription's stream, the proxy's relay.
        ["subscription", "websocket_relay"],
        ["client", "oblivious"],
        ["proxy"],
    ],
    "wasm-client": [
        ["session", "fetch"],
        ["rpc"],
        ["provider"],
        ["client"],
    ],
}
PATH = re.compile(r"\b(crate|super|self)::((?:[a-z_][a-z0-9_]*::)*[A-Za-z_][A-Za-z0-9_]*)")
USE_GROUP = re.compile(r"\buse\s+(crate|super|self)::((?:[a-z_][a-z0-9_]*::)*)\{([^;]*)\};", re.S)
REEXPORT = re.compile(
    r"\bpub(?:\([a-z]+\))?\s+use\s+((?:[a-z_][a-z0-9_]*::)+)(?:\{([^;]*)\}|([A-Za-z_][A-Za-z0-9_]*))\s*;",
    re.S,
)


def modules(src):
    found = {}
    for root, _, files in os.walk(src):
        for name in files:
            if not name.endswith(".rs"):
                continue
            path = os.path.join(root, name)
            rel = os.path.relpath(path, src)[:-3].split(os.sep)
            if rel[-1] == "mod":
                rel = rel[:-1]
            if rel in (["lib"], ["main"]) or rel[:1] == ["bin"]:
                rel = []
            found[path] = "::".join(rel)
    return found


def strip_tests(text):
    # The conventional trailing `#[cfg(test)] mod tests { ... }`: everything after it.
    match = re.search(r"^#\[cfg\(test\)\]\s*\n(?:#\[[^\n]*\]\s*\n)*mod tests\b", text, re.M)
    return text[: match.start()] if match else text


def strip_comments(text):
    return re.sub(r"//[^\n]*", "", text)


def absolute(module, anchor, rest):
    """`crate::rest` or `super::rest` as seen from `module`, as a path from the crate root."""
    if anchor == "crate":
        return rest
    if anchor == "self":
        return f"{module}::{rest}" if module else rest
    parent = module.split("::")[:-1] if module else []
    return "::".join(parent + [rest]) if parent else rest


def reexports(mods):
    """(module, item) -> the module an item re-exported by `pub use sub::item` comes from."""
    found = {}
    for path, module in mods.items():
        with open(path, encoding="utf-8") as f:
            text = strip_comments(f.read())
        for match in REEXPORT.finditer(text):
            prefix = match.group(1)[:-2]
            prefix = prefix[len("self::"):] if prefix.startswith("self::") else prefix
            items = match.group(2) or match.group(3)
            source = f"{module}::{prefix}" if module else prefix
            for item in re.split(r"[,\s]+", items):
                item = item.strip("{} ").split(" as ")[0]
                if item and item != "self":
                    found[(module, item)] = source
    return found


def resolve(path, known, exports):
    parts = path.split("::")
    # The longest known module prefix of the path, then through re-exports.
    for end in range(len(parts), -1, -1):
        candidate = "::".join(parts[:end])
        if candidate in known or candidate == "":
            if end < len(parts):
                via = exports.get((candidate, parts[end]))
                if via in known:
                    return via
            return candidate or None
    return None


def targets(module, text, known, exports):
    paths = [absolute(module, m.group(1), m.group(2)) for m in PATH.finditer(text)]
    for group in USE_GROUP.finditer(text):
        anchor, prefix, items = group.group(1), group.group(2), group.group(3)
        for item in re.split(r"[,\s]+", items):
            item = item.strip("{} ")
            if item and item != "self":
                paths.append(absolute(module, anchor, prefix + item))
            elif item == "self" and prefix:
                paths.append(absolute(module, anchor, prefix[:-2]))
    # A module imported by name (`use crate::a::b;`, `use crate::a::{self, ..}`) and then used
    # as `b::item`: the paths through the alias.
    aliases = {}
    for path in list(paths):
        if path in known:
            aliases[path.split("::")[-1]] = path
    for alias, target in aliases.items():
        for m in re.finditer(
            r"(?<![A-Za-z0-9_:])" + re.escape(alias) + r"::((?:[a-z_][a-z0-9_]*::)*[A-Za-z_][A-Za-z0-9_]*)",
            text,
        ):
            paths.append(f"{target}::{m.group(1)}")
    # A parent naming its child relatively (`child::item`, `use child::Item`): the child module.
    prefix = module + "::" if module else ""
    for child in known:
        if child.startswith(prefix) and "::" not in child[len(prefix):]:
            local = child[len(prefix):]
            if re.search(r"(?<![A-Za-z0-9_:])" + re.escape(local) + r"::", text):
                paths.append(child)
    return {t for t in (resolve(p, known, exports) for p in paths) if t}


def graph(crate):
    src = os.path.join(crate, "src")
    mods = modules(src)
    known = set(mods.values()) - {""}
    exports = reexports(mods)
    edges = {}
    for path, name in mods.items():
        if not name:
            continue
        with open(path, encoding="utf-8") as f:
            text = strip_comments(strip_tests(f.read()))
        deps = {
            t
            for t in targets(name, text, known, exports)
            if t != name
        }
        edges[name] = deps
    return edges


def cycles(edges):
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on, out = {}, {}, [], set(), []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    sys.setrecursionlimit(10000)
    for v in sorted(edges):
        if v not in index:
            visit(v)
    return out


def layering(crate, edges):
    """Upward imports (module, target, its layer, the target's layer) and modules without a
    layer, for a crate with declared layers."""
    if crate not in LAYERS:
        return [], []
    layer = {m: i for i, names in enumerate(LAYERS[crate]) for m in names}
    unplaced = sorted(m for m in edges if m not in layer)
    upward = sorted(
        (m, t, layer[m], layer[t])
        for m, targets in edges.items()
        for t in targets
        if m in layer and t in layer and layer[t] > layer[m]
    )
    return upward, unplaced


def self_test():
    """Plants an upward import (metrics -> routes) and a cycle (routes -> gateway) in the
    gateway's real graph, and checks that both are reported. Exit 0 only if they are."""
    edges = graph("gateway")
    planted = {k: set(v) for k, v in edges.items()}
    planted["metrics"].add("routes")
    upward, _ = layering("gateway", planted)
    layer = {m: i for i, names in enumerate(LAYERS["gateway"]) for m in names}
    assert ("metrics", "routes", layer["metrics"], layer["routes"]) in upward, upward
    planted["routes"].add("gateway")
    assert any({"routes", "gateway"} <= set(c) for c in cycles(planted)), cycles(planted)
    assert not cycles(edges) and layering("gateway", edges) == ([], [])
    print("self-test: a planted upward import and a planted cycle are both reported")


def main():
    root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
    os.chdir(root)
    if "--self-test" in sys.argv:
        self_test()
        return
    show_edges = "--edges" in sys.argv
    failed = False
    for crate in CRATES:
        if not os.path.isdir(os.path.join(crate, "src")):
            continue
        edges = graph(crate)
        count = sum(len(d) for d in edges.values())
        found = cycles(edges)
        upward, unplaced = layering(crate, edges)
        problems = len(found) + len(upward) + len(unplaced)
        status = "ok" if not problems else "FAILED"
        print(f"{crate}: {len(edges)} modules, {count} edges: {status}")
        for module in unplaced:
            failed = True
            print(f"  {module} has no layer: give it one in LAYERS[{crate!r}] (.ci/module_graph.py)")
        for module, target, low, high in upward:
            failed = True
            print(f"  upward import: {module} (layer {low}) -> {target} (layer {high})")
        if show_edges:
            for module in sorted(edges):
                if edges[module]:
                    print(f"  {module} -> {', '.join(sorted(edges[module]))}")
        for component in found:
            failed = True
            print(f"  cycle: {' <-> '.join(component)}")
            for module in component:
                inside = sorted(edges[module] & set(component))
                print(f"    {module} -> {', '.join(inside)}")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
