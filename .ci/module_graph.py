#!/usr/bin/env python3
"""The module graph of each crate, from its `crate::` paths, and the check CI runs on it.

A module is a file under src/ (`a/mod.rs` is `a`, `a/b.rs` is `a::b`). An edge A -> B means
A names `crate::B...` (in a `use` or inline). Edges to an ancestor module that only re-exports
(`mod.rs` of a directory) count against the module the path goes on to name.

    .ci/module_graph.py            # check every crate: exit 1 on a cycle, printing it
    .ci/module_graph.py --edges    # print the edges per crate (for a closing note)

A cycle is a set of modules that import each other, directly or through others: reading one
means reading all. Test modules (`#[cfg(test)]` blocks at the end of a file) are left out.
"""
import os
import re
import sys

CRATES = ["ra-tls", "ohttp", "gateway", "client-sdk", "wasm-client", "testkit", "benches"]
PATH = re.compile(r"\bcrate::((?:[a-z_][a-z0-9_]*::)*[A-Za-z_][A-Za-z0-9_]*)")
USE_GROUP = re.compile(r"\buse\s+crate::\{([^;]*)\};", re.S)


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


def targets(text, known):
    paths = [m.group(1) for m in PATH.finditer(text)]
    for group in USE_GROUP.finditer(text):
        for item in re.split(r"[,\s]+", group.group(1)):
            item = item.strip("{} ")
            if item and item != "self":
                paths.append(item)
    out = set()
    for path in paths:
        parts = path.split("::")
        # The longest known module prefix of the path.
        for end in range(len(parts), 0, -1):
            candidate = "::".join(parts[:end])
            if candidate in known:
                out.add(candidate)
                break
    return out


def graph(crate):
    src = os.path.join(crate, "src")
    mods = modules(src)
    known = set(mods.values()) - {""}
    edges = {}
    for path, name in mods.items():
        if not name:
            continue
        with open(path, encoding="utf-8") as f:
            text = strip_comments(strip_tests(f.read()))
        deps = {t for t in targets(text, known) if t != name and not name.startswith(t + "::")}
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


def main():
    root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
    os.chdir(root)
    show_edges = "--edges" in sys.argv
    failed = False
    for crate in CRATES:
        if not os.path.isdir(os.path.join(crate, "src")):
            continue
        edges = graph(crate)
        count = sum(len(d) for d in edges.values())
        found = cycles(edges)
        status = "ok" if not found else f"{len(found)} cycle(s)"
        print(f"{crate}: {len(edges)} modules, {count} edges: {status}")
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
