#!/usr/bin/env python3
"""File-level import cycles in src/ (crate:: and super:: paths, use lists). Usage: scripts/import_cycles.py [SRC_DIR]. Prints each circle and its edges, then the count; the README's Architecture section wants 0."""
import os, re, sys
src = sys.argv[1] if len(sys.argv) > 1 else "src"
files = {}
for root, _, fs in os.walk(src):
    for f in fs:
        if f.endswith(".rs"):
            p = os.path.join(root, f)
            rel = os.path.relpath(p, src)[:-3]
            parts = rel.split(os.sep)
            if parts[-1] == "mod": parts = parts[:-1]
            if parts == ["lib"] or parts == ["main"]: parts = ["<" + parts[0] + ">"]
            files["::".join(parts)] = p
mods = set(files)
def resolve(path_parts):
    # longest prefix that is a module file
    for n in range(len(path_parts), 0, -1):
        m = "::".join(path_parts[:n])
        if m in mods: return m
    return None
edges = {m: set() for m in mods}
for m, p in files.items():
    text = open(p).read()
    text = re.sub(r"//[^\n]*", "", text)
    me = m.split("::")
    for mt in re.finditer(r"\b(crate|super)((?:::\w+)+)", text):
        head, rest = mt.group(1), mt.group(2).strip(":").split("::")
        if head == "crate": parts = rest
        else:
            base = me[:-1] if not files[m].endswith("mod.rs") else me[:-1]
            # super from a file module a::b refers to a; from a/mod.rs (module a) refers to parent
            parts = base + rest
            # handle chained super
            while parts and parts[0] == "super": parts = parts[1:]
        t = resolve(parts)
        if t and t != m and not m.startswith(t + "::") and not t.startswith(m + "::") and t.count("::")>=0:
            # ignore edges to a parent mod.rs that only declares modules
            edges[m].add(t)
    # use blocks: crate::x::{a, b::c}
    for mt in re.finditer(r"use crate::(\w+(?:::\w+)*)::\{([^}]*)\}", text):
        base = mt.group(1).split("::")
        for item in mt.group(2).split(","):
            item = item.strip().split(" as ")[0]
            if not item or item == "self": continue
            t = resolve(base + item.split("::"))
            if t and t != m and not m.startswith(t + "::") and not t.startswith(m + "::"): edges[m].add(t)
# Tarjan SCC
idx, low, st, on, out, c = {}, {}, [], set(), [], [0]
sys.setrecursionlimit(10000)
def sc(v):
    idx[v] = low[v] = c[0]; c[0] += 1; st.append(v); on.add(v)
    for w in edges[v]:
        if w not in idx: sc(w); low[v] = min(low[v], low[w])
        elif w in on: low[v] = min(low[v], idx[w])
    if low[v] == idx[v]:
        comp = []
        while True:
            w = st.pop(); on.discard(w); comp.append(w)
            if w == v: break
        if len(comp) > 1: out.append(sorted(comp))
for v in mods:
    if v not in idx: sc(v)
for comp in out:
    print(len(comp), "files in a circle:", ", ".join(comp))
    for a in comp:
        for b in sorted(edges[a]):
            if b in comp: print("   ", a, "->", b)
print(len(out), "circles")
# The faces (studio/, cli/) reach the model only through the engine: the one exception is
# model::config (presets shown for display). Edges from a face to any other layer are listed.
faces = ("studio", "cli")
allowed = ("engine", "studio", "cli", "model::config", "<lib>", "<main>")
leaks = sorted(
    (a, b) for a in edges for b in edges[a]
    if a.split("::")[0] in faces and not any(b == x or b.startswith(x + "::") for x in allowed)
)
for a, b in leaks:
    print("    face import around the engine:", a, "->", b)
print(len(leaks), "face imports around the engine")
sys.exit(1 if out or leaks else 0)
