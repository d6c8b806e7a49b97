#!/usr/bin/env python3
"""The shape of src/: derives the import graph between src/'s top-level
modules from `crate::` paths and fails on an import cycle, an import against
the data flow, a file over --max-lines, or a function over --max-fn-lines.

Layers (issue #21):
  orchestrators  may import anything below them (they wire stages together);
  stages         in data-flow order; a stage imports only stages after it
                 (listener -> ingest -> framing -> decode -> multiline ->
                 router -> output -> queue -> sinks) and foundations;
  foundations    shared by every stage; they import no stage and no
                 orchestrator, only other foundations (acyclically).
Test code (from a file's first `#[cfg(test)]` on, and files named
`tests.rs` or `*_tests.rs`) is not counted: a unit
test may build its input with any module.
"""
import argparse, os, re, sys
from collections import defaultdict

ORCHESTRATORS = ["cli", "service", "reload", "admin", "testing", "fuzz_harness"]
STAGES = ["listener", "ingest", "framing", "decode", "multiline", "router",
          "output", "queue", "sinks"]
FOUNDATIONS = ["config", "telemetry", "log_limit", "record", "event", "text",
               "grok"]

def module_of(root, path):
    rel = os.path.relpath(path, root).split(os.sep)
    if rel[0] == "bin" or rel == ["lib.rs"] or rel == ["main.rs"]:
        return None
    return rel[0][:-3] if rel[0].endswith(".rs") else rel[0]

def non_test(text):
    i = text.find("#[cfg(test)]")
    return text if i < 0 else text[:i]

def strip_comments(text):
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    return re.sub(r"//[^\n]*", "", text)

def crate_refs(text):
    """Top-level module names named after `crate::`, including each name of
    a `crate::{a::b, c}` group."""
    out = set()
    for m in re.finditer(r"\bcrate::", text):
        i = m.end()
        if i < len(text) and text[i] == "{":
            depth, j = 0, i
            while j < len(text):
                if text[j] == "{": depth += 1
                elif text[j] == "}":
                    depth -= 1
                    if depth == 0: break
                j += 1
            inner, depth, cur, parts = text[i + 1:j], 0, "", []
            for ch in inner:
                if ch in "{": depth += 1
                if ch in "}": depth -= 1
                if ch == "," and depth == 0:
                    parts.append(cur); cur = ""
                else:
                    cur += ch
            parts.append(cur)
            for p in parts:
                n = re.match(r"\s*(\w+)", p)
                if n: out.add(n.group(1))
        else:
            n = re.match(r"(\w+)", text[i:])
            if n: out.add(n.group(1))
    return out

def long_functions(text, limit):
    """(name, first line, length) of each fn whose body runs over `limit`
    lines, by brace matching from its signature."""
    found, lines = [], text.split("\n")
    sig = re.compile(r"^(\s*)(pub(\([^)]*\))?\s+)?(const\s+)?(async\s+)?(unsafe\s+)?fn\s+(\w+)")
    for idx, line in enumerate(lines):
        m = sig.match(line)
        if not m: continue
        depth, opened = 0, False
        for j in range(idx, len(lines)):
            code = re.sub(r'"(\\.|[^"\\])*"', '""', lines[j])
            code = re.sub(r"'(\\.|[^'\\])'", "''", code)
            code = re.sub(r"//.*", "", code)
            for ch in code:
                if ch == "{": depth += 1; opened = True
                elif ch == "}": depth -= 1
            if not opened and code.rstrip().endswith(";"): break
            if opened and depth <= 0:
                if j - idx + 1 > limit: found.append((m.group(7), idx + 1, j - idx + 1))
                break
    return found

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("root", nargs="?", default="src")
    ap.add_argument("--max-lines", type=int, default=800)
    ap.add_argument("--max-fn-lines", type=int, default=120)
    a = ap.parse_args()
    layer = {}
    for m in ORCHESTRATORS: layer[m] = ("orchestrator", 0)
    for i, m in enumerate(STAGES): layer[m] = ("stage", i)
    for m in FOUNDATIONS: layer[m] = ("foundation", 0)
    edges, problems, big, longfns = defaultdict(set), [], [], []
    modules = set()
    for d, _, files in os.walk(a.root):
        for f in sorted(files):
            if not f.endswith(".rs"): continue
            path = os.path.join(d, f)
            text = open(path, encoding="utf-8").read()
            n = text.count("\n")
            if f == "tests.rs" or f.endswith("_tests.rs"):
                # A unit-test file (`#[cfg(test)] mod tests;`): all test code.
                text = "#[cfg(test)]\n" + text
            if n > a.max_lines: big.append((path, n))
            mod = module_of(a.root, path)
            if mod is None: continue
            if f.endswith("_tests.rs") and mod.endswith("_tests"):
                # `src/event_tests.rs` is `event`'s unit tests (#[path]).
                mod = mod[:-len("_tests")]
            modules.add(mod)
            code = strip_comments(non_test(text))
            for name, line, length in long_functions(code, a.max_fn_lines):
                longfns.append((path, line, name, length))
            # Doc links count too: a `crate::x` path in a comment is a
            # dependency a reader follows (rustdoc resolves it).
            for ref in crate_refs(non_test(text)):
                if ref != mod and (os.path.exists(os.path.join(a.root, ref + ".rs"))
                                   or os.path.isdir(os.path.join(a.root, ref))):
                    edges[mod].add((ref, path))
    for m in sorted(modules - set(layer)):
        problems.append(f"module `{m}` has no layer: add it to .ci/structure.py")
    back = []
    for src, targets in sorted(edges.items()):
        for dst, path in sorted(targets):
            if src not in layer or dst not in layer: continue
            (ks, rs), (kd, rd) = layer[src], layer[dst]
            bad = (ks == "foundation" and kd != "foundation") \
                or (ks == "stage" and kd == "stage" and rd <= rs) \
                or (ks != "orchestrator" and kd == "orchestrator")
            if bad: back.append(f"{path}: {src} ({ks}) imports {dst} ({kd})")
    # cycles: strongly connected components of the module graph
    graph = {s: {d for d, _ in t} for s, t in edges.items()}
    index, low, stack, on, sccs, counter = {}, {}, [], set(), [], [0]
    sys.setrecursionlimit(10000)
    def visit(v):
        index[v] = low[v] = counter[0]; counter[0] += 1
        stack.append(v); on.add(v)
        for w in graph.get(v, ()):
            if w not in index: visit(w); low[v] = min(low[v], low[w])
            elif w in on: low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop(); on.discard(w); comp.append(w)
                if w == v: break
            if len(comp) > 1: sccs.append(sorted(comp))
    for v in sorted(modules):
        if v not in index: visit(v)
    for c in sccs: print("cycle: " + " <-> ".join(c))
    for b in back: print("back-edge: " + b)
    for p in problems: print(p)
    for path, n in big: print(f"file over {a.max_lines} lines: {path} ({n})")
    for path, line, name, length in longfns:
        print(f"function over {a.max_fn_lines} lines: {path}:{line} {name} ({length})")
    print(f"cycles {len(sccs)}, back-edges {len(back)}, files over limit {len(big)}, "
          f"functions over limit {len(longfns)}, unplaced modules {len(problems)}")
    sys.exit(1 if sccs or back or big or longfns or problems else 0)

if __name__ == "__main__":
    main()
