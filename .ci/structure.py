#!/usr/bin/env python3
"""The shape of src/: derives the import graph between src/'s top-level
modules and fails on an import cycle, an import against the data flow, a
file over --max-lines, or a function over --max-fn-lines.

Layers (issue #21):
  orchestrators  may import anything below them (they wire stages together);
  stages         in data-flow order; a stage imports only stages after it
                 (listener -> ingest -> framing -> decode -> multiline ->
                 router -> output -> queue -> sinks) and foundations;
  foundations    shared by every stage; they import no stage and no
                 orchestrator, only other foundations (acyclically).

How the graph is read: the module tree is walked from lib.rs through its
`mod` declarations (`#[path]` included), so a file counts for the module
that mounts it. Comments and string literals are lexed (nested block
comments, raw strings, char literals vs lifetimes): a string is never a
comment and never a path, while a path in a comment (a doc link) counts.
A reference is `crate::x`, `$crate::x`, `super::`/`self::` paths resolved
to the module they name, `crate::Name` of a re-export at the crate root
(resolved to its module), a `#[macro_export]` macro (`crate::m!`) or a
`macro_rules!` macro used by name in another module.

Test code is not counted: a unit test may build its input with any module.
Test code is exactly a `#[cfg(test)]` item (a `mod x;` line and the file it
mounts, or a braced item up to its closing brace) and a file whose first
attribute is `#![cfg(test)]`; a `tests.rs` / `*_tests.rs` file mounted
without `#[cfg(test)]` is code like any other.

Refused outright: `extern crate self` and any other alias of the crate
root (`use crate as c;`, `crate::{self as c}`, `super::super as c`: an
alias hides the edge), a glob of the crate root (`crate::*`, `super::*` up to the root, `pub use x::*`
at the root), and a `#[path]` outside test code that mounts a file outside
its top-level module's folder, and `include!` of code (`include_str!` and
`include_bytes!` read data, not code).
"""
import argparse, os, re, sys
from collections import defaultdict

ORCHESTRATORS = ["cli", "service", "reload", "admin", "testing", "fuzz_harness"]
STAGES = ["listener", "ingest", "framing", "decode", "multiline", "router",
          "output", "queue", "sinks"]
FOUNDATIONS = ["config", "telemetry", "log_limit", "record", "event", "text",
               "grok"]

IDENT = re.compile(r"[A-Za-z0-9_]")

def _ident(ch):
    return bool(IDENT.match(ch))

def lex(text):
    """(code, refs): two copies of `text`, each as long as it, newlines kept.
    `code` blanks comments and string/char literal contents; `refs` blanks
    only literal contents (comments stay: doc links count). Quotes stay, so
    an offset into either reads the literal's value from `text`."""
    code, refs = list(text), list(text)
    n, i = len(text), 0
    def blank(a, b, both):
        for k in range(a, b):
            if text[k] != "\n":
                code[k] = " "
                if both: refs[k] = " "
    while i < n:
        c = text[i]
        if text.startswith("//", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
            blank(i, j, False); i = j
        elif text.startswith("/*", i):
            depth, j = 0, i
            while j < n:
                if text.startswith("/*", j): depth += 1; j += 2
                elif text.startswith("*/", j):
                    depth -= 1; j += 2
                    if depth == 0: break
                else: j += 1
            blank(i, j, False); i = j
        elif c == "r" and (i == 0 or not _ident(text[i - 1])
                           or (text[i - 1] in "bc" and (i < 2 or not _ident(text[i - 2])))) \
                and re.match(r'r#*"', text[i:i + 260]):
            hashes = re.match(r"r(#*)\"", text[i:]).group(1)
            start = i + 2 + len(hashes)
            end = text.find('"' + hashes, start)
            end = n if end < 0 else end
            blank(start, end, True); i = end + 1 + len(hashes)
        elif c == '"':
            j = i + 1
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            blank(i + 1, min(j, n), True); i = j + 1
        elif c == "'":
            if i + 1 < n and text[i + 1] == "\\":
                j = text.find("'", i + 3)
                j = n if j < 0 else j
                blank(i + 1, j, True); i = j + 1
            elif i + 2 < n and text[i + 2] == "'":
                blank(i + 1, i + 2, True); i += 3
            else:
                i += 1  # a lifetime or a label
        else:
            i += 1
    return "".join(code), "".join(refs)

ITEM_START = re.compile(r"\s*(pub\b|fn\b|mod\b|use\b|struct\b|enum\b|union\b|impl\b|"
                        r"const\b|static\b|type\b|trait\b|macro_rules\s*!|extern\b|"
                        r"unsafe\b|async\b|let\b)")

def item_end(code, j):
    """Where the item starting at `j` ends: after a `;` outside any bracket,
    or after the `}` that closes its first brace. What is not an item (a
    field, a variant, a match arm, an argument: `#[cfg(test)]` may stand on
    those too) also ends at a `,` outside any bracket; and nothing runs past
    the bracket that encloses it."""
    item = ITEM_START.match(code, j) is not None
    depth, n = 0, len(code)
    while j < n:
        ch = code[j]
        if ch in "([{": depth += 1
        elif ch in ")]}":
            depth -= 1
            if depth < 0: return j
            if ch == "}" and depth == 0: return j + 1
        elif ch == ";" and depth == 0: return j + 1
        elif ch == "," and depth == 0 and not item: return j + 1
        j += 1
    return n

CFG_TEST = re.compile(r"#\s*\[\s*cfg\s*\(\s*test\s*\)\s*\]")

def test_spans(code):
    """Spans of `#[cfg(test)]` items: the attribute, the attributes after it
    and the item itself (nested spans are swallowed by their outer one)."""
    spans, i = [], 0
    if re.match(r"\s*(#!\[[^\]]*\]\s*)*#!\[\s*cfg\s*\(\s*test\s*\)\s*\]", code):
        return [(0, len(code))]
    while True:
        m = CFG_TEST.search(code, i)
        if not m: return spans
        j = m.end()
        while True:
            a = re.match(r"\s*#\s*\[", code[j:])
            if not a: break
            j = item_end_bracket(code, j + a.end() - 1)
        end = item_end(code, j)
        spans.append((m.start(), end)); i = end

def item_end_bracket(code, j):
    depth = 0
    while j < len(code):
        if code[j] == "[": depth += 1
        elif code[j] == "]":
            depth -= 1
            if depth == 0: return j + 1
        j += 1
    return j

def blank_spans(s, spans):
    out, last = [], 0
    for a, b in spans:
        out.append(s[last:a]); out.append(re.sub(r"[^\n]", " ", s[a:b])); last = b
    out.append(s[last:])
    return "".join(out)

def matching_brace(code, j):
    depth = 0
    while j < len(code):
        if code[j] == "{": depth += 1
        elif code[j] == "}":
            depth -= 1
            if depth == 0: return j
        j += 1
    return len(code)

MOD_DECL = re.compile(r"((?:#\s*\[[^\]]*\]\s*)*)(?:pub\s*(?:\([^)]*\))?\s*)?\bmod\s+(\w+)\s*([;{])")

def split_group(inner):
    parts, depth, cur = [], 0, ""
    for ch in inner:
        if ch == "{": depth += 1
        if ch == "}": depth -= 1
        if ch == "," and depth == 0: parts.append(cur); cur = ""
        else: cur += ch
    parts.append(cur)
    return [p.strip() for p in parts if p.strip()]

def first_names(text, i):
    """First names of the path(s) starting at `text[i]`: a name, `*`, or
    each member of a `{…}` group."""
    rest = text[i:i + 4000]
    if rest.startswith("{"):
        end = matching_brace(rest, 0)
        out = []
        for p in split_group(rest[1:end]):
            m = re.match(r"(\w+|\*)", p)
            if m: out.append(m.group(1))
        return out
    m = re.match(r"(\w+|\*)", rest)
    return [m.group(1)] if m else []

def use_leaves(tree, prefix=()):
    """(alias, path) of each leaf of a use tree `a::{b as c, d::*}`."""
    tree = re.sub(r"\s+", " ", tree).strip()
    m = re.match(r"^((?:\w+\s*::\s*)*)\{(.*)\}$", tree, re.S)
    if m:
        head = tuple(s.strip() for s in m.group(1).split("::") if s.strip())
        out = []
        for p in split_group(m.group(2)):
            out += use_leaves(p, prefix + head)
        return out
    m = re.match(r"^(.*?)(?:\s+as\s+(\w+))?$", tree, re.S)
    path = prefix + tuple(s.strip() for s in m.group(1).split("::") if s.strip())
    if not path: return []
    alias = m.group(2) or (path[-2] if path[-1] == "self" and len(path) > 1 else path[-1])
    return [(alias, path)]

class File:
    def __init__(self, path, modpath, mod_rs):
        self.path, self.modpath, self.mod_rs = path, modpath, mod_rs
        self.text = open(path, encoding="utf-8").read()
        code, refs = lex(self.text)
        self.spans = test_spans(code)
        self.raw_code = code
        self.code = blank_spans(code, self.spans)
        self.refs = blank_spans(refs, self.spans)
        self.inline = []  # (name, body start, body end)
        for m in MOD_DECL.finditer(self.code):
            if m.group(3) == "{":
                b = m.end() - 1
                self.inline.append((m.group(2), b, matching_brace(self.code, b)))

    def in_test(self, pos):
        return any(a <= pos < b for a, b in self.spans)

    def modpath_at(self, pos):
        return self.modpath + [n for n, a, b in self.inline if a < pos < b]

    def line(self, pos):
        return self.text.count("\n", 0, pos) + 1

def walk(root, problems):
    """Every file of the library's module tree, test files apart."""
    files, seen = [], set()
    todo = [(os.path.join(root, "lib.rs"), [], True)]
    while todo:
        path, modpath, mod_rs = todo.pop()
        real = os.path.realpath(path)
        if real in seen or not os.path.isfile(path): continue
        seen.add(real)
        f = File(path, modpath, mod_rs)
        files.append(f)
        base = os.path.dirname(path)
        if not mod_rs:
            base = os.path.join(base, os.path.basename(path)[:-3])
        for m in MOD_DECL.finditer(f.raw_code):
            if m.group(3) != ";" or f.in_test(m.start(2)): continue
            name, attrs = m.group(2), m.group(1)
            inner = [n for n, a, b in f.inline if a < m.start() < b]
            mp = f.modpath_at(m.start()) + [name]
            p = re.search(r"#\s*\[\s*path\s*=\s*\"", attrs)
            if p:
                q = m.start(1) + p.end()
                value = f.text[q:f.text.find('"', q)]
                d = os.path.dirname(path) if not inner else os.path.join(base, *inner)
                child = os.path.normpath(os.path.join(d, value))
                top = os.path.join(root, mp[0])
                rc = os.path.realpath(child)
                if not (rc.startswith(os.path.realpath(top) + os.sep)
                        or rc == os.path.realpath(top + ".rs")):
                    problems.append(f"{path}:{f.line(m.start())}: #[path = \"{value}\"] mounts "
                                    f"a file outside `{mp[0]}`'s folder")
                todo.append((child, mp, True))
                continue
            if re.search(r"cfg_attr\s*\([^\]]*\bpath\s*=", attrs):
                problems.append(f"{path}:{f.line(m.start())}: a #[cfg_attr(.., path = ..)] "
                                f"on `mod {name}`: mount a file by #[path] or by its name")
                continue
            d = os.path.join(base, *inner)
            if os.path.isfile(os.path.join(d, name + ".rs")):
                todo.append((os.path.join(d, name + ".rs"), mp, False))
            elif os.path.isfile(os.path.join(d, name, "mod.rs")):
                todo.append((os.path.join(d, name, "mod.rs"), mp, True))
            else:
                problems.append(f"{path}:{f.line(m.start())}: `mod {name};` has no file "
                                f"this script can find: it would go unchecked")
    return files

def long_functions(text, limit):
    """(name, first line, length) of each fn whose body runs over `limit`
    lines, by brace matching from its signature (on lexed code)."""
    found, lines = [], text.split("\n")
    sig = re.compile(r"^(\s*)(pub(\([^)]*\))?\s+)?(const\s+)?(async\s+)?(unsafe\s+)?fn\s+(\w+)")
    for idx, line in enumerate(lines):
        m = sig.match(line)
        if not m: continue
        depth, opened = 0, False
        for j in range(idx, len(lines)):
            code = lines[j]
            for ch in code:
                if ch == "{": depth += 1; opened = True
                elif ch == "}": depth -= 1
            if not opened and code.rstrip().endswith(";"): break
            if opened and depth <= 0:
                if j - idx + 1 > limit: found.append((m.group(7), idx + 1, j - idx + 1))
                break
    return found

def graph(root, problems):
    files = walk(root, problems)
    lib = files[0] if files and files[0].modpath == [] else None
    tops = set()
    for f in files:
        if f.modpath: tops.add(f.modpath[0])
        for n, a, b in f.inline:
            if not f.modpath_at(a): tops.add(n)
    # Re-exports at the crate root: `crate::Name` names their module.
    alias = {}
    if lib is not None:
        for m in re.finditer(r"\buse\s+([^;]*);", lib.code):
            if lib.modpath_at(m.start()): continue
            for name, path in use_leaves(m.group(1)):
                path = path[1:] if path[0] in ("crate", "self") else path
                if path[-1] == "*":
                    problems.append(f"{lib.path}:{lib.line(m.start())}: glob re-export at the "
                                    f"crate root hides which module a name comes from")
                    continue
                alias[name] = path[0]
        for _ in range(len(alias)):
            alias = {k: (alias.get(v, v) if v not in tops else v) for k, v in alias.items()}
    exported, defined = {}, defaultdict(set)
    for f in files:
        for m in re.finditer(r"((?:#\s*\[[^\]]*\]\s*)*)macro_rules\s*!\s*(\w+)", f.code):
            mp = f.modpath_at(m.start())
            if not mp: continue
            defined[m.group(2)].add(mp[0])
            if re.search(r"macro_export", m.group(1)): exported[m.group(2)] = mp[0]
    def at_root(name):
        if name in tops: return name
        if name in alias: return alias[name] if alias[name] in tops else None
        return exported.get(name)
    edges = defaultdict(lambda: defaultdict(list))
    def add(f, pos, dst):
        mp = f.modpath_at(pos)
        if not mp or dst is None or dst == mp[0]: return
        edges[mp[0]][dst].append((f.path, f.line(pos)))
    for f in files:
        if re.search(r"\bextern\s+crate\s+self\b", f.code):
            problems.append(f"{f.path}: `extern crate self` aliases the crate and hides its edges")
        t = f.refs
        def root_alias(pos):
            problems.append(f"{f.path}:{f.line(pos)}: an alias of the crate root hides "
                            f"which module a path names")
        for m in re.finditer(r"(?<![\w:$])((?:super\s*::\s*)*)(super|crate|self)\s+as\b", f.code):
            ups = m.group(1).count("super") + (m.group(2) == "super")
            if m.group(2) == "crate" or ups >= len(f.modpath_at(m.start())): root_alias(m.start())
        for m in re.finditer(r"\binclude\s*!", f.code):
            problems.append(f"{f.path}:{f.line(m.start())}: include! mounts code past the "
                            f"module tree (use a mod line)")
        for m in re.finditer(r"\bcrate\s*::\s*", t):
            for name in first_names(t, m.end()):
                if name == "*":
                    problems.append(f"{f.path}:{f.line(m.start())}: glob import of the crate root")
                elif name == "self": root_alias(m.start())
                else: add(f, m.start(), at_root(name))
        for m in re.finditer(r"(?<![\w:$])((?:super\s*::\s*)+|self\s*::\s*)", t):
            mp = f.modpath_at(m.start())
            ups = m.group(1).count("super")
            if ups > len(mp): continue
            base = mp[:len(mp) - ups]
            for name in first_names(t, m.end()):
                if base: add(f, m.start(), base[0])
                elif name == "self": root_alias(m.start())
                elif name == "*":
                    problems.append(f"{f.path}:{f.line(m.start())}: glob import of the crate root")
                else: add(f, m.start(), at_root(name))
        for m in re.finditer(r"\b(\w+)\s*!\s*[\(\[\{]", f.code):
            mp = f.modpath_at(m.start())
            owners = defined.get(m.group(1), set())
            if mp and owners and mp[0] not in owners and len(owners) == 1:
                add(f, m.start(), next(iter(owners)))
    return files, tops, edges

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
    problems, unplaced, big, longfns = [], [], [], []
    for d, _, names in os.walk(a.root):
        for name in sorted(names):
            if name.endswith(".rs"):
                path = os.path.join(d, name)
                n = open(path, encoding="utf-8").read().count("\n")
                if n > a.max_lines: big.append((path, n))
    files, tops, edges = graph(a.root, problems)
    for f in files:
        if f.modpath:
            for name, line, length in long_functions(f.code, a.max_fn_lines):
                longfns.append((f.path, line, name, length))
    for m in sorted(tops - set(layer)):
        unplaced.append(f"module `{m}` has no layer: add it to .ci/structure.py")
    back = []
    for src, targets in sorted(edges.items()):
        for dst, where in sorted(targets.items()):
            if src not in layer or dst not in layer: continue
            (ks, rs), (kd, rd) = layer[src], layer[dst]
            bad = (ks == "foundation" and kd != "foundation") \
                or (ks == "stage" and kd == "stage" and rd <= rs) \
                or (ks != "orchestrator" and kd == "orchestrator")
            if bad:
                for path in sorted({p for p, _ in where}):
                    line = min(l for p, l in where if p == path)
                    back.append(f"{path}:{line}: {src} ({ks}) imports {dst} ({kd})")
    # cycles: strongly connected components of the module graph
    graph_ = {s: set(t) for s, t in edges.items()}
    index, low, stack, on, sccs, counter = {}, {}, [], set(), [], [0]
    sys.setrecursionlimit(10000)
    def visit(v):
        index[v] = low[v] = counter[0]; counter[0] += 1
        stack.append(v); on.add(v)
        for w in sorted(graph_.get(v, ())):
            if w not in index: visit(w); low[v] = min(low[v], low[w])
            elif w in on: low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop(); on.discard(w); comp.append(w)
                if w == v: break
            if len(comp) > 1: sccs.append(sorted(comp))
    for v in sorted(tops | set(graph_)):
        if v not in index: visit(v)
    for c in sccs: print("cycle: " + " <-> ".join(c))
    for b in back: print("back-edge: " + b)
    for p in unplaced + problems: print(p)
    for path, n in big: print(f"file over {a.max_lines} lines: {path} ({n})")
    for path, line, name, length in longfns:
        print(f"function over {a.max_fn_lines} lines: {path}:{line} {name} ({length})")
    print(f"cycles {len(sccs)}, back-edges {len(back)}, files over limit {len(big)}, "
          f"functions over limit {len(longfns)}, unplaced modules {len(unplaced)}, "
          f"other problems {len(problems)}")
    sys.exit(1 if sccs or back or big or longfns or unplaced or problems else 0)

if __name__ == "__main__":
    main()
