#!/usr/bin/env python3
"""Tests of .ci/structure.py: a small clean module tree passes with all
zeros; each fixture below adds one way of hiding a forbidden import (or one
oversize) to it and must be caught, with a non-zero exit naming the edge.

    python3 .ci/structure_test.py [--script PATH]
"""
import argparse, os, subprocess, sys, tempfile

SINKS_QUEUE = "sinks (stage) imports queue (stage)"

# The clean tree: queue -> sinks -> config (with the data flow), cli and
# `testing` (orchestrators) import stages.
BASE = {
    "lib.rs": """//! The crate map names [`crate::queue`] in a doc comment: the root may.
pub mod cli;
pub(crate) mod config;
pub(crate) mod queue;
pub(crate) mod sinks;

#[doc(hidden)]
pub mod testing {
    pub use crate::queue::Fsync;
}
""",
    "cli/mod.rs": "use crate::queue::Fsync;\nuse crate::sinks::Sink;\npub fn main(_: Fsync, _: Sink) {}\n",
    "config/mod.rs": 'pub(crate) const URL: &str = "http://localhost/";\n',
    "queue/mod.rs": "use crate::sinks::Sink;\npub(crate) enum Fsync { Never }\npub(crate) fn deliver(_: Sink) {}\n",
    "sinks/mod.rs": "pub(crate) mod stdout;\npub(crate) struct Sink;\n",
    "sinks/stdout.rs": "use crate::config::URL;\npub(crate) fn url() -> &'static str { URL }\n",
}

# Trees that must still pass: what looks like an import but is not code.
CLEAN = {
    "test code: #[cfg(test)] items and the files they mount": [
        ("sinks/mod.rs", "append", """#[cfg(test)]
mod tests;
#[cfg(test)]
mod inline_tests {
    use crate::queue::Fsync;
    fn f() -> Fsync { Fsync::Never }
}
#[cfg(test)]
use crate::queue::Fsync as T;
"""),
        ("sinks/tests.rs", "new", "use crate::queue::Fsync;\n"),
        ("sinks/stdout.rs", "append", '#[cfg(test)]\n#[path = "../queue/fixture.rs"]\nmod fixture;\n'),
        ("queue/fixture.rs", "new", "use crate::queue::Fsync;\n")],
    "literals: strings, raw strings, chars naming crate::queue; include_bytes!": [
        ("sinks/stdout.rs", "append", """pub(crate) const TEXT: &str = "crate::queue::Fsync is only text // and /* no comment";
pub(crate) const RAW: &str = r#"a "quoted" crate::queue::Fsync"#;
pub(crate) const QUOTE: char = '"';
pub(crate) const BRACE: char = '{';
pub(crate) const DATA: &[u8] = include_bytes!("stdout.rs");
pub(crate) fn pick<'a>(s: &'a str) -> &'a str { if s.is_empty() { "super::queue" } else { s } }
""")],
}

# name: (edits, strings the output must hold). An edit is (file, how, text)
# with how one of "append", "prepend", "new".
CASES = {
    "plain use": ([("sinks/stdout.rs", "append", "use crate::queue::Fsync;\n")],
                  [SINKS_QUEUE, "cycle: queue <-> sinks"]),
    "super::super:: from a submodule": (
        [("sinks/stdout.rs", "append", "use super::super::queue::Fsync;\n")], [SINKS_QUEUE]),
    "super:: from a top-level module": (
        [("sinks/mod.rs", "append", "pub(crate) use super::queue::Fsync;\n")], [SINKS_QUEUE]),
    "super::{group} from a top-level module": (
        [("sinks/mod.rs", "append", "pub(crate) use super::{config::URL, queue::Fsync};\n")],
        [SINKS_QUEUE]),
    "crate::{group}": (
        [("sinks/stdout.rs", "append", "use crate::{config, queue::Fsync};\n")], [SINKS_QUEUE]),
    "re-export through the testing module": (
        [("sinks/stdout.rs", "append", "use crate::testing::Fsync;\n")],
        ["sinks (stage) imports testing (orchestrator)"]),
    "re-export at the crate root": (
        [("lib.rs", "append", "pub(crate) use queue::Fsync;\n"),
         ("sinks/stdout.rs", "append", "use crate::Fsync;\n")], [SINKS_QUEUE]),
    "renamed re-export at the crate root, in a group": (
        [("lib.rs", "append", "pub(crate) use crate::{queue::Fsync as Q};\n"),
         ("sinks/stdout.rs", "append", "pub(crate) type F = crate::Q;\n")], [SINKS_QUEUE]),
    "glob re-export at the crate root": (
        [("lib.rs", "append", "pub(crate) use queue::*;\n")], ["glob re-export at the crate root"]),
    "#[macro_export] macro used as crate::m!": (
        [("queue/mod.rs", "append",
          "#[macro_export]\nmacro_rules! q_never { () => { $crate::queue::Fsync::Never } }\n"),
         ("sinks/stdout.rs", "append", "pub(crate) fn f() { let _ = crate::q_never!(); }\n")],
        [SINKS_QUEUE]),
    "macro_rules! of another module used by name": (
        [("queue/mod.rs", "prepend", "macro_rules! q_never { () => { 0 } }\n"),
         ("sinks/stdout.rs", "append", "pub(crate) fn f() -> u8 { q_never!() }\n")],
        [SINKS_QUEUE]),
    "$crate:: in a macro": (
        [("sinks/stdout.rs", "append",
          "macro_rules! h { () => { $crate::queue::Fsync::Never } }\n")], [SINKS_QUEUE]),
    "#[path] to another module's folder": (
        [("queue/hack.rs", "new", "pub(crate) use crate::queue::Fsync;\n"),
         ("sinks/mod.rs", "append", '#[path = "../queue/hack.rs"]\nmod hack;\n')],
        ["mounts a file outside `sinks`'s folder", SINKS_QUEUE]),
    "*_tests.rs mounted without #[cfg(test)]": (
        [("sinks/hack_tests.rs", "new", "pub(crate) use crate::queue::Fsync;\n"),
         ("sinks/mod.rs", "append", "mod hack_tests;\n")], [SINKS_QUEUE]),
    "code after a #[cfg(test)] braced item": (
        [("sinks/stdout.rs", "append",
          "#[cfg(test)]\nmod t {}\npub(crate) type F = crate::queue::Fsync;\n")], [SINKS_QUEUE]),
    "code after a #[cfg(test)] use item": (
        [("sinks/stdout.rs", "append",
          "#[cfg(test)]\npub(crate) use crate::queue::Fsync as T;\n"
          "pub(crate) type F = crate::queue::Fsync;\n")], [SINKS_QUEUE]),
    "code after #[cfg(test)] mod tests; at the top of a foundation": (
        [("config/tests.rs", "new", "use crate::queue::Fsync;\n"),
         ("config/mod.rs", "prepend", "#[cfg(test)]\nmod tests;\nuse crate::sinks::Sink;\n")],
        ["config (foundation) imports sinks (stage)"]),
    "use crate as an alias": (
        [("sinks/stdout.rs", "append", "use crate as root;\npub(crate) type F = root::queue::Fsync;\n")],
        ["an alias of the crate root"]),
    "crate::{self as alias}": (
        [("sinks/stdout.rs", "append", "use crate::{self as root};\n")], ["an alias of the crate root"]),
    "super::super as alias": (
        [("sinks/stdout.rs", "append", "use super::super as root;\n")], ["an alias of the crate root"]),
    "include! of another module's file": (
        [("queue/hack.rs", "new", "pub(crate) type F = crate::queue::Fsync;\n"),
         ("sinks/stdout.rs", "append", 'include!("../queue/hack.rs");\n')],
        ["include! mounts code past the module tree"]),
    "extern crate self": (
        [("lib.rs", "append", "extern crate self as sluice;\n"),
         ("sinks/stdout.rs", "append", "use sluice::queue::Fsync;\n")], ["extern crate self"]),
    "a string holding // is no comment": (
        [("config/mod.rs", "append",
          'pub(crate) const U: &str = "http://"; pub(crate) type F = crate::queue::Fsync;\n')],
        ["config (foundation) imports queue (stage)"]),
    "strings holding /* and */ hide no code": (
        [("sinks/stdout.rs", "append",
          'pub(crate) const A: &str = "/*";\npub(crate) type F = crate::queue::Fsync;\n'
          'pub(crate) const B: &str = "*/";\n')], [SINKS_QUEUE]),
    "a string holding // hides no brace of a long function": (
        [("sinks/stdout.rs", "append",
          'pub(crate) fn long() {\n    let _ = "http://"; {\n' + "        let _ = 1;\n" * 130
          + "    }\n}\n")], ["function over 120 lines", "long (134)"]),
    "a doc link is a dependency": (
        [("sinks/stdout.rs", "append", "/// See [`super::super::queue::Fsync`].\npub(crate) fn g() {}\n")],
        [SINKS_QUEUE]),
    "a module without a layer": (
        [("lib.rs", "append", "mod extra;\n"), ("extra.rs", "new", "\n")],
        ["module `extra` has no layer"]),
    "a function over the limit": (
        [("sinks/stdout.rs", "append",
          "pub(crate) fn long() {\n" + "    let _ = \"}\";\n" * 130 + "}\n")],
        ["function over 120 lines", "long (132)"]),
    "#[cfg(test)] on a struct field hides nothing after the struct": (
        [("sinks/stdout.rs", "append",
          "pub(crate) struct S {\n    a: u8,\n    #[cfg(test)]\n    hook: u8,\n}\n"
          "use crate::queue::Fsync;\n")], [SINKS_QUEUE]),
    "#[cfg(test)] on an enum variant and a match arm hides nothing after them": (
        [("sinks/stdout.rs", "append",
          "pub(crate) enum E {\n    A,\n    #[cfg(test)]\n    B\n}\n"
          "pub(crate) fn m(e: E) -> u8 {\n    match e {\n        E::A => 0,\n"
          "        #[cfg(test)]\n        E::B => 1\n    }\n}\n"
          "pub(crate) fn long() {\n" + "    let _ = 1;\n" * 130 + "}\n")],
        ["function over 120 lines", "long (132)"]),
    "#[cfg_attr(.., path = ..)] on a mod": (
        [("queue/hack.rs", "new", "pub(crate) use crate::queue::Fsync;\n"),
         ("sinks/mod.rs", "append", '#[cfg_attr(all(), path = "../queue/hack.rs")]\nmod hack;\n')],
        ["cfg_attr(.., path = ..)"]),
    "a mod whose file the script cannot find": (
        [("sinks/mod.rs", "append", "mod nowhere;\n")], ["`mod nowhere;` has no file"]),
    "a file over the limit": (
        [("sinks/stdout.rs", "append", "\n" * 800)], ["file over 800 lines"]),
}

def build(root, edits):
    for rel, text in BASE.items():
        os.makedirs(os.path.dirname(os.path.join(root, rel)), exist_ok=True)
        with open(os.path.join(root, rel), "w") as f: f.write(text)
    for rel, how, text in edits:
        path = os.path.join(root, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        old = open(path).read() if os.path.exists(path) else ""
        new = {"append": old + text, "prepend": text + old, "new": text}[how]
        with open(path, "w") as f: f.write(new)

def run(script, edits):
    with tempfile.TemporaryDirectory(prefix="structure_test.") as d:
        root = os.path.join(d, "src")
        build(root, edits)
        r = subprocess.run([sys.executable, script, root], capture_output=True, text=True)
        return r.returncode, r.stdout.replace(root + os.sep, "src/")

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--script", default=os.path.join(os.path.dirname(__file__), "structure.py"))
    script = ap.parse_args().script
    failed = 0
    rc, out = run(script, [])
    last = out.strip().splitlines()[-1] if out.strip() else ""
    ok = rc == 0 and all(w.split()[-1] == "0" for w in last.split(","))
    print(f"{'ok  ' if ok else 'FAIL'} clean tree passes: exit {rc}: {last}")
    if not ok: failed += 1; print(out)
    for name, edits in CLEAN.items():
        rc, out = run(script, edits)
        ok = rc == 0
        print(f"{'ok  ' if ok else 'FAIL'} {name} (passes): exit {rc}")
        if not ok:
            failed += 1
            print("    " + out.strip().replace("\n", "\n    "))
    for name, (edits, want) in CASES.items():
        rc, out = run(script, edits)
        missing = [w for w in want if w not in out]
        ok = rc != 0 and not missing
        print(f"{'ok  ' if ok else 'FAIL'} {name}: exit {rc}"
              + (f"; missing {missing}" if missing else ""))
        if not ok:
            failed += 1
            print("    " + out.strip().replace("\n", "\n    "))
    print(f"{len(CASES) + len(CLEAN) + 1 - failed} passed, {failed} failed")
    sys.exit(1 if failed else 0)

if __name__ == "__main__":
    main()
