#!/usr/bin/env python3
"""Differential test of brine's template engine against Python's jinja2.

Generates random templates of three kinds, renders each with jinja2 3.1
(configured as Salt configures it: sandboxed, StrictUndefined, the do and
loopcontrols extensions, Salt's final newline) and with brine, and prints
the cases whose output differs. Errors count as equal when both sides fail
with the same exception class.

  expr   one {{ expression }} over variables of every kind: operators,
         filters, methods, tests, subscripts
  stmt   whitespace control, if/for/set/with/filter/call blocks, macros,
         namespaces, loop variables, recursive loops
  files  include, import, from-import and extends across files

Usage (from the repository root, with python3-jinja2 installed):
  python3 tools/jinja-diff/diff.py [--kind expr|stmt|files] [--seed N]
      [--count N] [--brine build/release/engine/brine]

Not part of the test suite: jinja2 is not a test dependency, and a
difference found here becomes a spec (spec/unit/jinja_compat_spec.lua) once
it is understood. Filters that Salt replaces or adds are left out: plain
jinja2 does not have Salt's versions.
"""
import argparse
import copy
import json
import os
import random
import subprocess
import sys
import tempfile

import jinja2
from jinja2.sandbox import SandboxedEnvironment

VARS = {
    "i0": 0, "i1": 1, "i2": 2, "i3": -3, "i7": 7, "i255": 255, "ibig": 9007199254740993,
    "f0": 0.5, "fz": -0.0, "f1": 1.5, "f2": 2.0, "f3": 1e20, "f4": 3.14159,
    "s0": "abc", "s1": "", "s2": "Hello World", "s3": "a,b,,c", "s4": " x ", "s5": "10",
    "s6": "3.5", "s7": "\u00c4\u00d6\u00fc", "s8": "a_b-c", "s9": "<a href='x'>T&amp;</a>",
    "l0": [1, 2, 3], "l1": [], "l2": ["b", "a", "c"], "l3": [3, 1, 2], "l4": [1, "a"],
    "l5": [[1, 2], [3]], "l6": [None, 0], "l7": [{"a": 2, "x": 1}, {"a": 1, "x": 3}],
    "d0": {"a": 1, "b": 2}, "d1": {}, "d2": {"x": [1, 2]}, "d4": {"a": None, "b": "B"},
    "n": None, "t": True, "f": False,
    "items": [1, 2, 3], "d": {"a": 1, "b": "B"}, "names": ["c", "a", "b"],
    "nested": [{"v": 1, "c": [{"v": 2, "c": []}]}, {"v": 3, "c": []}], "x": "X",
}

BINOPS = ["+", "-", "*", "/", "//", "%", "~", "==", "!=", "<", ">", "<=", ">=", "in",
          "not in", "and", "or"]
FILTERS = [
    "length", "string", "int", "float", "abs", "upper", "lower", "title", "capitalize", "trim",
    "first", "last", "sort", "reverse|list", "join", "join(',')", "list", "sum", "round",
    "round(1)", "e", "wordcount", "center(9)", "count", "default(1)", "dictsort", "items|list",
    "batch(2)|list", "slice(2)|list", "replace('a', 'x')", "truncate(5)", "indent(2)",
    "pprint", "bool", "selectattr('a')|list", "map('string')|list", "select('odd')|list",
    "reject('none')|list", "striptags", "urlencode", "xmlattr", "wordwrap(3)",
    "sort(attribute='a')", "map(attribute='a')|list", "groupby('a')|list", "sum(attribute='a')",
    "rejectattr('x')|list", "forceescape", "safe", "format(1, 2)", "default('d', true)",
    "string|list", "attr('a')", "filesizeformat", "filesizeformat(true)", "urlize",
    "indent(2, true)", "trim|length",
]
METHODS = [
    "upper()", "lower()", "split()", "split(',')", "strip()", "startswith('a')",
    "endswith('c')", "replace('a', 'b')", "title()", "keys()|list", "values()|list",
    "items()|list", "get('a')", "get('z', 5)", "count(1)", "find('b')", "isdigit()",
    "capitalize()", "join(['x', 'y'])", "format(1)", "zfill(5)", "rjust(5)", "ljust(5, '*')",
    "copy()", "splitlines()", "partition(',')", "rsplit(',', 1)", "swapcase()", "isupper()",
    "lstrip('a')", "isalnum()", "center(7, '-')", "rfind('a')", "index('a')", "casefold()",
    "removeprefix('a')", "removesuffix('c')", "isalpha()", "isidentifier()",
]
TESTS = ["defined", "none", "number", "string", "sequence", "mapping", "iterable", "odd",
         "even", "divisibleby(2)", "lower", "upper", "integer", "float", "boolean", "true",
         "false", "in([1, 2])", "eq(1)", "gt(0)", "sameas(none)", "callable", "escaped"]
SCALARS = [k for k in VARS if k not in ("items", "d", "names", "nested", "x")]


def gen_expr(rng, depth=0):
    r = rng.random()
    if depth > 2 or r < 0.3:
        return rng.choice(SCALARS)
    sub = gen_expr(rng, depth + 1)
    if r < 0.55:
        return "(%s %s %s)" % (sub, rng.choice(BINOPS), gen_expr(rng, depth + 1))
    if r < 0.75:
        return "(%s)|%s" % (sub, rng.choice(FILTERS))
    if r < 0.86:
        return "(%s).%s" % (sub, rng.choice(METHODS))
    if r < 0.92:
        return "(%s is %s)" % (sub, rng.choice(TESTS))
    if r < 0.97:
        return "(%s)[%s]" % (sub, rng.choice(["i0", "i1", "i3", "'a'", "i1:", ":i2", "::-1"]))
    return "(not %s)" % sub


def pick(rng, *choices):
    return rng.choice(choices)


def gen_block(rng, depth, in_loop):
    parts = []
    for _ in range(rng.randint(1, 4)):
        parts.append(pick(rng, "", " ", "\n", " \n", "\n  ") + pick(rng, "", "t", "u v"))
        tag_open, tag_close = pick(rng, "{%", "{%-", "{%"), pick(rng, "%}", "-%}", "%}")
        r = rng.random()
        if r < 0.25:
            pool = ["x", "items|length", "d.a", "acc|join(',')", "ns.n", "d|dictsort",
                    "items[1:]", "'{}:{}'.format(1, 'b')", "names|sort|first"]
            if in_loop:
                pool += ["i", "loop.index", "loop.first", "loop.last", "loop.revindex0",
                         "loop.cycle('a', 'b')", "loop.changed(i)", "loop.previtem|default(0)"]
            parts.append("{{ %s }}" % rng.choice(pool))
        elif r < 0.35 and depth < 3:
            body = gen_block(rng, depth + 1, in_loop)
            alt = gen_block(rng, depth + 1, in_loop) if rng.random() < 0.4 else None
            cond = pick(rng, "x", "items", "d.a == 1", "ns.n > 1")
            parts.append(tag_open + " if " + cond + " " + tag_close + body
                         + ((tag_open + " else " + tag_close + alt) if alt else "")
                         + tag_open + " endif " + tag_close)
        elif r < 0.47 and depth < 2:
            src = pick(rng, "items", "names", "range(2)", "[]")
            parts.append(tag_open + " for i in " + src + " " + tag_close
                         + gen_block(rng, depth + 1, True)
                         + pick(rng, "", "{% else %}E") + tag_open + " endfor " + tag_close)
        elif r < 0.52:
            parts.append(tag_open + " set ns.n = ns.n + 1 " + tag_close)
        elif r < 0.57:
            parts.append("{% do acc.append(" + pick(rng, "'z'", "x") + ") %}")
        elif r < 0.62 and depth < 3:
            parts.append("{% with y = x ~ '!' %}{{ y }}" + gen_block(rng, depth + 1, in_loop)
                         + "{% endwith %}")
        elif r < 0.67 and depth < 3:
            parts.append("{% filter " + pick(rng, "upper", "trim", "indent(2)") + " %}"
                         + gen_block(rng, depth + 1, in_loop) + "{% endfilter %}")
        elif r < 0.72 and depth < 3:
            parts.append("{% set blk %}" + gen_block(rng, depth + 1, in_loop)
                         + "{% endset %}[{{ blk|length }}]")
        elif r < 0.78:
            parts.append("{{ m(" + pick(rng, "1", "'a', 3", "x, b=5", "k=1") + ") }}")
        elif r < 0.84:
            parts.append("{% call(q) m2(1) %}<{{ x }}>{% endcall %}")
        elif r < 0.88 and in_loop:
            parts.append("{% if i == 2 %}" + pick(rng, "{% break %}", "{% continue %}")
                         + "{% endif %}")
        elif r < 0.94:
            parts.append(tag_open + " set x = " + pick(rng, "'v'", "x ~ 1") + " " + tag_close)
        else:
            parts.append("{% for n in nested recursive %}({{ n.v }}{% if n.c %}"
                         "{{ loop(n.c) }}{% endif %}){% endfor %}")
    return "".join(parts)


STMT_HEAD = ("{% set ns = namespace(n=0) %}{% set acc = [] %}"
             "{% macro m(a, b=2) %}[{{ a }}{{ b }}{{ varargs|list }}{{ kwargs|dictsort }}]"
             "{% endmacro %}{% macro m2(a) %}({{ a }}:{{ caller(7) }}){% endmacro %}")

LIB = ("{% macro greet(n, p='hi') %}{{ p }} {{ n }}{{ g|default('') }}{% endmacro %}"
       "{% set libvar = 'L' %}{% macro wrap() %}<{{ caller() }}>{% endmacro %}")
BASE = ("B<{% block a %}ba{% endblock %}>{% block b %}bb{{ x|default('') }}{% endblock %}"
        "{% block c scoped %}{% for i in items %}{% block d %}{{ i }}{% endblock %}"
        "{% endfor %}{% endblock %}")


def gen_files(rng):
    part = rng.choice(["[{{ x }}]", "{% set x = 'changed' %}({{ x }})",
                       "{% for i in items %}{{ i }}{{ loop.index }}{% endfor %}"])
    if rng.random() < 0.3:
        main = "{% extends 'base.j' %}" + rng.choice(
            ["{% block a %}A{{ super() }}{% endblock %}", "{% block b %}BB{% endblock %}",
             "{% block d %}D{{ i }}{% endblock %}"])
    else:
        pieces = ["{% include 'part.j' %}", "{% include 'part.j' without context %}",
                  "{% import 'lib.j' as lib %}{{ lib.greet('a') }}{{ lib.libvar }}",
                  "{% from 'lib.j' import greet with context %}{{ greet('c') }}",
                  "{% from 'lib.j' import wrap %}{% call wrap() %}in{{ x }}{% endcall %}",
                  "{% set x = 's' %}", "{% for i in items %}{% include 'part.j' %}{% endfor %}",
                  "{% set g = '!' %}{% import 'lib.j' as l2 with context %}{{ l2.greet('z') }}",
                  "{% include ['missing.j', 'part.j'] %}", "{{ x }}"]
        main = "\n".join(rng.choice(pieces) for _ in range(rng.randint(1, 4)))
    return {"main.j": main + rng.choice(["", "\n"]), "part.j": part, "lib.j": LIB,
            "base.j": BASE}


def make_cases(kind, seed, count, folder):
    rng = random.Random(seed)
    cases, seen = [], set()
    while len(cases) < count:
        if kind == "expr":
            case = {"source": "{{ " + gen_expr(rng) + " }}"}
        elif kind == "stmt":
            case = {"source": STMT_HEAD + gen_block(rng, 0, False) + rng.choice(["", "\n"])}
        else:
            files = gen_files(rng)
            root = os.path.join(folder, str(len(cases)))
            os.makedirs(root)
            for name, text in files.items():
                with open(os.path.join(root, name), "w") as f:
                    f.write(text)
            case = {"root": root, "source": files["main.j"]}
        if case["source"] in seen and kind != "files":
            continue
        seen.add(case["source"])
        case["vars"] = VARS
        cases.append(case)
    return cases


def render_jinja2(case):
    loader = jinja2.FileSystemLoader(case["root"]) if "root" in case else None
    env = SandboxedEnvironment(loader=loader, undefined=jinja2.StrictUndefined,
                               extensions=["jinja2.ext.do", "jinja2.ext.loopcontrols"])
    try:
        if "root" in case:
            out = env.get_template("main.j").render(copy.deepcopy(VARS))
        else:
            out = env.from_string(case["source"]).render(copy.deepcopy(VARS))
    except Exception as e:  # every failure is a result to compare
        return "ERROR " + type(e).__name__
    # Salt adds the final newline the source ended with
    return out + "\n" if case["source"].endswith("\n") else out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--kind", choices=["expr", "stmt", "files"], default="expr")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--count", type=int, default=2000)
    ap.add_argument("--brine", default="build/release/engine/brine")
    ap.add_argument("--show", type=int, default=10, help="differences to print")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        cases = make_cases(args.kind, args.seed, args.count, folder)
        cases_path = os.path.join(folder, "cases.json")
        results_path = os.path.join(folder, "results.json")
        with open(cases_path, "w") as f:
            json.dump(cases, f)
        subprocess.run([args.brine, "lua", "tools/jinja-diff/render.lua", cases_path,
                        results_path], check=True)
        with open(results_path) as f:
            brine = json.load(f)
        differ = []
        for case, got in zip(cases, brine):
            want = render_jinja2(case)
            if got.startswith("ERROR ") and want.startswith("ERROR "):
                # the same class of error is a match (the message may differ)
                if got[6:].split(":")[0] == want[6:]:
                    continue
            if got != want:
                differ.append((case["source"], got, want))
    print("%s, seed %d: %d of %d cases differ" % (args.kind, args.seed, len(differ), len(cases)))
    for source, got, want in differ[:args.show]:
        print("  template: %r\n    brine:  %r\n    jinja2: %r" % (source, got, want))
    return 1 if differ else 0


if __name__ == "__main__":
    sys.exit(main())
