#!/usr/bin/env python3
"""Checks the shape of the code that docs/architecture.md promises.

  check_structure.py SOURCE_DIR LIBRARY

1. No file-level cycles: from the symbols each object file of the library
   (librmcore.a) defines and needs (nm), no two object files need each
   other's symbols,
   directly or through others (strongly connected components of size > 1).
2. Calls point one way between layers: cli -> admin -> consumers -> sinks ->
   projections -> common, with observe beside consumers (observe may use only
   common; consumers may use observe). tools (dev-kafka, gen) may use
   consumers and below.
3. No function in src/ is longer than 120 lines (universal-ctags' end lines).
4. Every public header (include/readmodel/*.h) says how it may be used from
   threads ("Thread-safety" or "thread-safe" in its text).

Prints every violation and exits 1 when there is one.
"""
import os
import re
import subprocess
import sys
from collections import defaultdict

MAX_LINES = 120

# Layer rank: a file may call into its own layer or a lower rank.
RANK = {
    "common": 0,
    "projections": 1,
    "sinks": 2,
    "observe": 3,
    "consumers": 4,
    "tools": 5,
    "admin": 6,
    "cli": 7,
}
# Layers of equal standing that must not call each other.
FORBIDDEN = {("observe", "consumers"), ("observe", "sinks"), ("observe", "projections")}


def layer_of(path):
    parts = path.replace("\\", "/").split("/")
    if "src" in parts:
        i = len(parts) - 1 - parts[::-1].index("src")
        if i + 1 < len(parts):
            return parts[i + 1]
    return None


def source_paths(srcdir):
    """basename.c -> src/layer/basename.c"""
    paths = {}
    for root, _, files in os.walk(os.path.join(srcdir, "src")):
        for f in files:
            if f.endswith(".c"):
                paths[f] = os.path.relpath(os.path.join(root, f), srcdir)
    return paths


def symbol_graph(srcdir, library):
    paths = source_paths(srcdir)
    out = subprocess.run(["nm", "-g", "-A", library], capture_output=True, text=True, check=True)
    defined, needed = {}, defaultdict(set)
    for line in out.stdout.splitlines():
        m = re.match(r"^.*?:([^:/]+\.o):\s*(.*)$", line)
        if not m:
            continue
        member, rest = m.group(1), m.group(2)
        n = paths.get(member[:-2] if member.endswith(".o") else member, member)
        f = rest.split()
        if len(f) == 2 and f[0] == "U":
            needed[n].add(f[1])
        elif len(f) == 3 and f[1] in "TDBRCV":
            defined[f[2]] = n
            needed.setdefault(n, set())
    edges = defaultdict(set)
    for n, syms in needed.items():
        edges[n]
        for s in syms:
            d = defined.get(s)
            if d and d != n:
                edges[n].add((d, s))
    return edges


def sccs(nodes, edges):
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w, _ in edges.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            out.append(comp)

    sys.setrecursionlimit(10000)
    for v in sorted(nodes):
        if v not in index:
            visit(v)
    return [c for c in out if len(c) > 1]


def long_functions(srcdir):
    out = subprocess.run(
        ["ctags", "-R", "--languages=C", "--kinds-C=f", "--fields=+ne", "-o", "-", "src"],
        cwd=srcdir,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    bad = []
    for line in out.splitlines():
        f = line.split("\t")
        fields = dict(x.split(":", 1) for x in f[3:] if ":" in x)
        if "line" in fields and "end" in fields:
            n = int(fields["end"]) - int(fields["line"]) + 1
            if n > MAX_LINES:
                bad.append((n, f[1], fields["line"], f[0]))
    return sorted(bad, reverse=True)


def headers_without_thread_safety(srcdir):
    inc = os.path.join(srcdir, "include", "readmodel")
    bad = []
    for f in sorted(os.listdir(inc)):
        if f.endswith(".h"):
            text = open(os.path.join(inc, f), encoding="utf-8").read().lower()
            if "thread-safe" not in text and "thread-safety" not in text:
                bad.append(f"include/readmodel/{f}")
    return bad


def main():
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    srcdir, library = sys.argv[1], sys.argv[2]
    problems = 0
    edges = symbol_graph(srcdir, library)
    nodes = set(edges) | {d for v in edges.values() for d, _ in v}
    if not nodes:
        print(f"no object files in {library}", file=sys.stderr)
        return 2
    for comp in sccs(nodes, edges):
        problems += 1
        print("cycle between files: " + " <-> ".join(sorted(comp)))
        members = set(comp)
        for v in sorted(comp):
            for d, s in sorted(edges[v]):
                if d in members:
                    print(f"    {v} needs {s} from {d}")
    for v in sorted(edges):
        for d, s in sorted(edges[v]):
            a, b = layer_of(v), layer_of(d)
            if a is None or b is None or a == b:
                continue
            if (a, b) in FORBIDDEN or RANK.get(a, 99) < RANK.get(b, 99):
                problems += 1
                print(f"layer edge against the order: {v} ({a}) needs {s} from {d} ({b})")
    for n, path, line, fn in long_functions(srcdir):
        problems += 1
        print(f"function longer than {MAX_LINES} lines: {fn} ({n} lines) at {path}:{line}")
    for h in headers_without_thread_safety(srcdir):
        problems += 1
        print(f"public header without a thread-safety statement: {h}")
    print(f"structure: {len(nodes)} object files checked, {problems} problem(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
