"""The procedural bug-injection engine (issue 12): each family's exact output on real snippets (formatting and
comments kept), the scope rules, determinism and balance of sampling, the source-file walk, hostile input,
and every family on a real package (marshmallow's sdist)."""

from __future__ import annotations

import os
import subprocess
import sys
import tarfile
import textwrap
from collections import Counter
from pathlib import Path

import pytest

from srl_swe.taskgen import mutations
from srl_swe.taskgen.mutations import (
    FAMILIES,
    Mutation,
    SourceError,
    enumerate_mutations,
    sample_mutations,
    source_files,
)


def src(text: str) -> str:
    return textwrap.dedent(text).lstrip("\n")


def mutants(source: str, family: str) -> list[str]:
    return [m.mutated for m in enumerate_mutations(source, "pkg/mod.py") if m.family == family]


# --- the families, one by one ------------------------------------------------------------------------------------

@pytest.mark.parametrize(("expr", "flipped"), [
    ("a < b", "a <= b"), ("a<=b", "a<b"), ("a > b", "a >= b"), ("a >= b", "a > b"), ("a == b", "a != b"),
    ("a != b", "a == b"), ("a is None", "a is not None"), ("a is  not None", "a is None"), ("a in b", "a not in b"),
    ("a not in b", "a in b"),
])
def test_flip_comparison(expr, flipped):
    assert mutants(f"def f(a, b):\n    return {expr}  # why\n", "flip_comparison") == [
        f"def f(a, b):\n    return {flipped}  # why\n"]


def test_flip_comparison_records_where():
    source = src("""
        def clamp(x, hi):
            # keep x below hi
            if x < hi:  # strict
                return x
            return hi
        """)
    (m,) = [m for m in enumerate_mutations(source, "pkg/num.py") if m.family == "flip_comparison"]
    assert (m.file, m.qualname, m.line, m.description) == ("pkg/num.py", "clamp", 3, "`<` -> `<=`")
    assert m.mutated == source.replace("x < hi:", "x <= hi:")


def test_flip_boolean():
    source = "def ok(a, b):\n    return (a\n            and not b)  # both\n"
    assert mutants(source, "flip_boolean") == [
        "def ok(a, b):\n    return (a\n            or not b)  # both\n",
        "def ok(a, b):\n    return (a\n            and b)  # both\n",
    ]


def test_parenthesised_operands_keep_their_parentheses():
    source = "def f(a, b, x):\n    return not ( a & b ), g((a), b), x[(a if b else x):]\n"
    got = {m.family: m.mutated for m in enumerate_mutations(source, "m.py")}
    assert got["flip_boolean"] == source.replace("not ( a & b )", "( a & b )")
    assert got["swap_arguments"] == source.replace("g((a), b)", "g(b, (a))")
    assert got["off_by_one_slice"] == source.replace("x[(a if b else x):]", "x[(a if b else x) + 1:]")


def test_flip_arithmetic_leaves_string_operands():
    source = src("""
        def bill(total, price, rate, name):
            total += price * (1 - rate)
            return "%s!" % name, "x" + name
        """)
    assert mutants(source, "flip_arithmetic") == [
        source.replace("total +=", "total -="),
        source.replace("price * (", "price / ("),
        source.replace("(1 - rate)", "(1 + rate)"),
    ]


def test_off_by_one_constant_keeps_the_base():
    source = "def pick(items):\n    return items[0] + 0x0F\n"
    assert mutants(source, "off_by_one_constant") == [
        "def pick(items):\n    return items[1] + 0x0F\n",
        "def pick(items):\n    return items[0] + 0x10\n",
    ]


def test_off_by_one_slice():
    source = "def cut(s, start, n, k, a, b, c):\n    return s[start:n - k], s[1:-1], s[:a if b else c]\n"
    line = "    return s[start:n - k], s[1:-1], s[:a if b else c]\n"
    head = "def cut(s, start, n, k, a, b, c):\n"
    assert mutants(source, "off_by_one_slice") == [head + line.replace(old, new) for old, new in [
        ("s[start:", "s[start + 1:"), (":n - k]", ":n - k - 1]"), ("s[1:", "s[2:"), (":-1]", ":-2]"),
        ("s[:a if b else c]", "s[:(a if b else c) - 1]")]]
    # literal bounds belong to this family only: the constant family leaves them alone
    assert mutants(source, "off_by_one_constant") == []


def test_swap_if_else_moves_comments_with_their_code():
    source = src("""
        def sign(x):
            if x >= 0:  # header stays
                # non-negative
                return 1
            else:
                return -1  # negative
        """)
    assert mutants(source, "swap_if_else") == [src("""
        def sign(x):
            if x >= 0:  # header stays
                return -1  # negative
            else:
                # non-negative
                return 1
        """)]


def test_remove_conditional():
    source = src("""
        def kind(x, log):
            if x is None:
                log("none")
                return "none"
            if x < 0:
                return "neg"
            elif x == 0:  # zero
                return "zero"
            else:
                return "pos"
        """)
    got = [(m.description, m.line, m.mutated) for m in enumerate_mutations(source, "k.py")
           if m.family == "remove_conditional"]
    assert got == [
        ("remove the `if x is None:`", 2, source.replace('    if x is None:\n        log("none")\n'
                                                         '        return "none"\n', "")),
        ("remove an `elif` branch", 7, source.replace('    elif x == 0:  # zero\n        return "zero"\n', "")),
        ("remove the `else` branch", 9, source.replace('    else:\n        return "pos"\n', "")),
    ]


def test_remove_early_return_keeps_the_final_one():
    source = src("""
        def first(xs):
            for x in xs:
                if x:
                    return x
                # a comment stays
                return None
            return 0
        """)
    assert mutants(source, "remove_early_return") == [
        source.replace("            return x\n", "            pass\n"),
        source.replace("        return None\n", ""),
    ]


def test_remove_statement():
    source = src('''
        def save(self, rows):
            """Save rows."""
            # count them
            self.count = len(rows)
            self.db.write(rows)
            ...
            pass
            raise StopIteration
        ''')
    assert mutants(source, "remove_statement") == [
        source.replace("    self.count = len(rows)\n", ""),
        source.replace("    self.db.write(rows)\n", ""),
        source.replace("    raise StopIteration\n", ""),
    ]


def test_swap_arguments():
    source = src("""
        def go(a, b, c, xs):
            divmod(a, b)
            max(a, b)
            put(a, b + 1, key=c)
            put(*xs, a)
        """)
    got = [(m.description, m.mutated) for m in enumerate_mutations(source, "m.py") if m.family == "swap_arguments"]
    assert got == [
        ("swap arguments 1 and 2 of `divmod(...)`", source.replace("divmod(a, b)", "divmod(b, a)")),
        ("swap arguments 1 and 2 of `put(...)`", source.replace("put(a, b + 1, key=c)", "put(b + 1, a, key=c)")),
    ]


def test_change_default():
    source = src("""
        class Schema:
            def load(self, data, *, strict=False, depth=-1, sep=",", tag=None):
                return data
        """)
    got = [(m.qualname, m.description, m.mutated) for m in enumerate_mutations(source, "s.py")]
    assert got == [
        ("Schema.load", "default `strict=False` -> `True`", source.replace("strict=False", "strict=True")),
        ("Schema.load", "default `depth=-1` -> `-2`", source.replace("depth=-1", "depth=-2")),
        ("Schema.load", 'default `sep=","` -> `""`', source.replace('sep=","', 'sep=""')),
    ]


# --- scope, qualnames, positions ---------------------------------------------------------------------------------

def test_no_candidates_outside_function_bodies():
    source = src('''
        """Module doc 1 < 2."""
        LIMIT = 3 + 4
        if LIMIT > 1:
            LIMIT -= 1


        class C:
            flag = LIMIT < 10
            size: Literal[1] = 2

            def f(self, x: Literal[1] = ...) -> Tuple[int, 2]:
                """Doc: a < b and not c."""
                y: Literal[3]
                return x


        if __name__ == "__main__":
            def g(a=True):
                return a < 1
            print(g(1 + 2))
        ''')
    assert enumerate_mutations(source, "m.py") == []


def test_qualnames_and_lines_follow_python():
    source = src("""
        def outer(a):
            def inner(b=1):
                class Local:
                    def m(self):
                        return b < 2
                return a < b
            return a < 0
        """)
    got = [(m.family, m.qualname, m.line) for m in enumerate_mutations(source, "m.py")
           if m.family in ("flip_comparison", "change_default")]
    assert got == [("change_default", "outer.<locals>.inner", 2),
                   ("flip_comparison", "outer.<locals>.inner.<locals>.Local.m", 5),
                   ("flip_comparison", "outer.<locals>.inner", 6),
                   ("flip_comparison", "outer", 7)]


def test_crlf_and_bom_are_kept():
    source = "\ufeffdef f(a, b):\r\n    return a < b\r\n"
    assert mutants(source, "flip_comparison") == ["\ufeffdef f(a, b):\r\n    return a <= b\r\n"]
    (drawn,) = sample_mutations({"m.py": source}, 1, seed=0)  # compiles (past the BOM)
    assert drawn.mutated.startswith("\ufeff")


def test_each_candidate_changes_one_site_and_keys_are_stable():
    source = src("""
        def f(a, b):
            if a < b and not a:
                return g(a, b)
            return a[1:] + 2
        """)
    found = enumerate_mutations(source, "m.py")
    assert found == enumerate_mutations(source, "m.py")
    assert len({m.key for m in found}) == len(found)
    assert all(len(m.edits) == (2 if m.family in ("swap_if_else", "swap_arguments") else 1) for m in found)
    assert all(m.mutated != source for m in found)
    m = found[0]
    assert m.key == Mutation(m.family, m.file, m.qualname, m.line, "another description", m.edits, source).key
    assert m.key != Mutation(m.family, "other.py", m.qualname, m.line, m.description, m.edits, source).key
    assert "source=" not in repr(m)  # the whole file is not in logs


# --- sampling ----------------------------------------------------------------------------------------------------

EVERY_FAMILY = src("""
    def f(a, b, xs, strict=False):
        if a < b and not strict:
            a += 1
        else:
            return xs[a:]
        if b:
            g(a, b)
        return a
    """)


def test_sample_is_seeded_and_spread():
    files = {"p/a.py": EVERY_FAMILY, "p/b.py": EVERY_FAMILY.replace("strict", "loose")}
    first = sample_mutations(files, 30, seed=0)
    assert [m.key for m in first] == [m.key for m in sample_mutations(files, 30, seed=0)]
    assert [m.key for m in first] != [m.key for m in sample_mutations(files, 30, seed=1)]
    assert {m.key for m in first} == {m.key for m in sample_mutations(files, 30, seed=1)}  # all there are: 30 > 28
    # families take turns: the first len(FAMILIES) drawn are one of each; files take turns within a family
    assert Counter(m.family for m in first[:len(FAMILIES)]) == Counter(FAMILIES)
    assert Counter(m.file for m in first) == {"p/a.py": len(first) // 2, "p/b.py": len(first) // 2}
    assert all(compile(m.mutated, m.file, "exec") for m in first)
    assert sample_mutations(files, 3, seed=0) == first[:3] and sample_mutations(files, 0, seed=0) == []
    with pytest.raises(ValueError, match="non-negative"):
        sample_mutations(files, -1, seed=0)


def test_sample_drops_duplicate_sources():
    source = "def f(x):\n    return not not x\n"  # dropping either `not` gives the same file
    assert [m.mutated for m in enumerate_mutations(source, "m.py")] == ["def f(x):\n    return not x\n"] * 2
    assert [m.mutated for m in sample_mutations({"m.py": source}, 5, seed=0)] == ["def f(x):\n    return not x\n"]


def test_sample_drops_what_does_not_compile():
    source = src("""
        def counter():
            n = 0
            def bump():
                nonlocal n
                n += 1
            return bump
        """)
    removed = source.replace("    n = 0\n", "")  # `nonlocal n` without a binding: a SyntaxError
    assert removed in [m.mutated for m in enumerate_mutations(source, "c.py")]
    drawn = sample_mutations({"c.py": source}, 50, seed=0)
    assert removed not in [m.mutated for m in drawn]
    assert len(drawn) == len(enumerate_mutations(source, "c.py")) - 1


def test_sample_checks_what_it_is_given(monkeypatch):
    source = "def f(x):\n    return x < 1\n"
    (good,) = enumerate_mutations(source, "m.py")[:1]
    at = source.index("<")
    broken = Mutation("flip_comparison", "m.py", "f", 2, "`<` -> `<<<`", ((at, at + 1, "<<<"),), source)
    no_op = Mutation("flip_comparison", "m.py", "f", 2, "`<` -> `<`", ((at, at + 1, "<"),), source)
    monkeypatch.setattr(mutations, "enumerate_mutations", lambda text, path: [broken, no_op, good])
    assert sample_mutations({"m.py": source}, 5, seed=0) == [good]


# --- the source walk and hostile input ---------------------------------------------------------------------------

def test_source_files_excludes_tests_and_reports_bad_files(tmp_path: Path):
    ok = "def f(a):\n    return a\n"
    for rel in ("pkg/__init__.py", "pkg/core.py", "pkg/sub/deep.py", "pkg/tests/test_core.py", "pkg/test_x.py",
                "pkg/x_test.py", "pkg/conftest.py", "setup.py", "docs/conf.py", "examples/demo.py", ".hidden/m.py",
                "tests/helpers.py", "build/lib/pkg/core.py", "pkg/notes.txt"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(ok)
    (tmp_path / "pkg/bad.py").write_text("def f(:\n")
    (tmp_path / "pkg/latin.py").write_bytes(b"# caf\xe9\nx = 1\n")
    (tmp_path / "pkg/big.py").write_text("#" * (mutations.MAX_FILE_BYTES + 1))
    (tmp_path / "pkg/deep.py").write_text("x = " + "a and " * 20_000 + "b\n")
    (tmp_path / "pkg/link.py").symlink_to(tmp_path / "pkg/core.py")
    found = source_files(tmp_path)
    assert list(found.files) == ["pkg/__init__.py", "pkg/core.py", "pkg/sub/deep.py"]
    assert found.files["pkg/core.py"] == ok
    assert sorted(found.skipped) == ["pkg/bad.py", "pkg/big.py", "pkg/deep.py", "pkg/latin.py", "pkg/link.py"]
    assert found.skipped["pkg/bad.py"].startswith("not valid Python (SyntaxError")
    assert found.skipped["pkg/latin.py"] == "not UTF-8 (invalid continuation byte at byte 5)"
    assert "over the 1048576 limit" in found.skipped["pkg/big.py"]
    assert found.skipped["pkg/deep.py"] == "nested more than 500 levels deep"
    assert found.skipped["pkg/link.py"] == "a symlink"
    with pytest.raises(SourceError, match="not a directory"):
        source_files(tmp_path / "pkg/core.py")


@pytest.mark.parametrize(("text", "why"), [
    ("def f(:\n", "not valid Python"),
    ("x = " + "(" * 3000 + ")" * 3000 + "\n", "not valid Python"),  # libcst's parser would crash the process
    ("x = " + "a and " * 20_000 + "b\n", "nested more than 500"),  # flat for CPython, nested for libcst
    ("import " + ".".join(["a"] * 20_000) + "\n", "nested more than 500"),
    ("def f():\n\x0c    x = 1\n    return x < 2\n", "does not reproduce it"),  # a form feed in the indent
    ("def f():\r    return 1 < 2\r", "does not reproduce it"),  # lone carriage returns
    ("#" * (1 << 20) + "\n", "over the 1048576 limit"),
])
def test_hostile_sources_raise_a_clear_error(text, why):
    with pytest.raises(SourceError, match=why):
        enumerate_mutations(text, "evil.py")


def test_candidates_are_capped_per_file(monkeypatch):
    monkeypatch.setattr(mutations, "MAX_SITES_PER_FILE", 3)
    source = "def f(a):\n" + "".join(f"    a = a < {i}\n" for i in range(50)) + "def g(b=1):\n    return b\n"
    assert len(enumerate_mutations(source, "m.py")) == 3


# --- a real package ----------------------------------------------------------------------------------------------

@pytest.fixture(scope="session")
def marshmallow_sdist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The project's cached marshmallow sdist if there is one, else 3.19.0 from PyPI (once per session)."""
    cache = Path(os.environ.get("SRL_SWE_CACHE", Path.home() / ".cache" / "srl-swe")).expanduser() / "sdists"
    cached = sorted(cache.glob("marshmallow-*.tar.gz"), key=lambda p: [int(x) for x in p.name[12:-7].split(".")
                                                                        if x.isdigit()])
    if cached:
        return cached[-1]
    folder = tmp_path_factory.mktemp("sdist")
    res = subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--no-binary", ":all:",
                          "marshmallow==3.19.0", "-d", str(folder)], capture_output=True, text=True, timeout=300)
    if res.returncode != 0:
        pytest.skip(f"no cached marshmallow sdist and PyPI is unreachable: {res.stderr[-300:]}")
    return folder / "marshmallow-3.19.0.tar.gz"


@pytest.mark.slow
def test_every_family_on_marshmallow(marshmallow_sdist: Path, tmp_path: Path):
    with tarfile.open(marshmallow_sdist) as tar:
        tar.extractall(tmp_path, **({"filter": "data"} if hasattr(tarfile, "data_filter") else {}))
    (top,) = tmp_path.iterdir()
    found = source_files(top)
    assert found.skipped == {}
    assert "src/marshmallow/fields.py" in found.files and all(p.startswith("src/marshmallow/") for p in found.files)
    candidates = [m for path, text in found.files.items() for m in enumerate_mutations(text, path)]
    per_family = Counter(m.family for m in candidates)
    print(marshmallow_sdist.name, dict(per_family))
    assert set(per_family) == set(FAMILIES)
    assert all(mutations._compiles(m.mutated, m.file) for m in candidates)
    assert len({m.key for m in candidates}) == len(candidates)
    drawn = sample_mutations(found.files, 40, seed=7)
    assert len(drawn) == 40 and len({m.mutated for m in drawn}) == 40
    assert len({m.family for m in drawn}) == len(FAMILIES)
