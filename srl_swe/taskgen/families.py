"""The mutation families: one libcst visitor that finds every candidate site of every family in a module.

A site is a list of text edits on the original source, placed by libcst's positions, not a rewritten tree: the
bytes outside the edited span are the original's, so formatting and comments survive exactly, a site costs no
re-rendering of the module, and a mutation is a small serialisable record. Every edit is checked against the
source (the span must hold the node's own code) and dropped if it does not, so a position quirk can only lose
a candidate, never corrupt a file.

Scope: every family but ``change_default`` mutates only code inside a ``def`` body (module and class bodies are
mostly declarations and constants, where a flipped operator is rarely what a test would catch or a bug would
look like); ``change_default`` mutates the defaults of any ``def``, which sit outside bodies by nature. Never
touched: ``if __name__ == "__main__":`` blocks, annotations, docstrings (no family edits string statements).
"""

from __future__ import annotations

import ast
from typing import NamedTuple

import libcst as cst
from libcst.metadata import PositionProvider, WhitespaceInclusivePositionProvider

FAMILIES = ("flip_comparison", "flip_boolean", "flip_arithmetic", "off_by_one_constant", "off_by_one_slice",
            "swap_if_else", "remove_conditional", "remove_early_return", "remove_statement", "swap_arguments",
            "change_default")

# One replacement per operator, the near miss a person writes: a boundary (`<` / `<=`) or a negation.
_COMPARE = {cst.LessThan: ("<", "<="), cst.LessThanEqual: ("<=", "<"), cst.GreaterThan: (">", ">="),
            cst.GreaterThanEqual: (">=", ">"), cst.Equal: ("==", "!="), cst.NotEqual: ("!=", "=="),
            cst.Is: ("is", "is not"), cst.IsNot: ("is not", "is"), cst.In: ("in", "not in"),
            cst.NotIn: ("not in", "in")}
_BOOLEAN = {cst.And: ("and", "or"), cst.Or: ("or", "and")}
_ARITH = {cst.Add: ("+", "-"), cst.Subtract: ("-", "+"), cst.Multiply: ("*", "/"), cst.Divide: ("/", "*"),
          cst.FloorDivide: ("//", "/"), cst.Modulo: ("%", "//"), cst.Power: ("**", "*"), cst.LeftShift: ("<<", ">>"),
          cst.RightShift: (">>", "<<"), cst.BitAnd: ("&", "|"), cst.BitOr: ("|", "&"), cst.BitXor: ("^", "|"),
          cst.AddAssign: ("+=", "-="), cst.SubtractAssign: ("-=", "+="), cst.MultiplyAssign: ("*=", "/="),
          cst.DivideAssign: ("/=", "*="), cst.FloorDivideAssign: ("//=", "/="), cst.BitAndAssign: ("&=", "|="),
          cst.BitOrAssign: ("|=", "&="), cst.BitXorAssign: ("^=", "|=")}
_STRINGS = (cst.SimpleString, cst.ConcatenatedString, cst.FormattedString)
# Statements whose loss is a plausible bug (a missing call, assignment, raise); `pass`, imports, `global` are not.
_REMOVABLE = (cst.Assign, cst.AugAssign, cst.AnnAssign, cst.Raise, cst.Del, cst.Expr)
_EFFECTS = (cst.Call, cst.Await, cst.Yield)  # an expression statement of another kind (`...`, a name) does nothing
# A slice bound of these shapes takes ` + 1` without parentheses: each binds at least as tightly as `+`.
_TIGHT = (cst.Name, cst.Attribute, cst.Call, cst.Subscript)
_TIGHT_OPS = (cst.Add, cst.Subtract, cst.Multiply, cst.Divide, cst.FloorDivide, cst.Modulo, cst.Power,
              cst.MatrixMultiply)
_SYMMETRIC_CALLS = {"max", "min"}  # swapping their arguments changes nothing

Edit = tuple[int, int, str]


class Site(NamedTuple):
    family: str
    qualname: str
    line: int
    description: str
    edits: tuple[Edit, ...]


def _short(text: str, limit: int = 50) -> str:
    first = text.strip().splitlines()[0] if text.strip() else ""
    return first if len(first) <= limit and "\n" not in text.strip() else first[: limit - 3] + "..."


def _bumped(literal: str) -> str | None:
    """The integer literal plus one, in the literal's own base (`0x0F` -> `0x10`), or None for absurd ones."""
    if len(literal) > 32:
        return None
    value = ast.literal_eval(literal) + 1
    base = literal[:2].lower()
    if base in ("0x", "0o", "0b"):
        digits = format(value, base[1])
        return literal[:2] + (digits.upper() if any(c in "ABCDEF" for c in literal[2:]) else digits)
    return str(value)


def _binds_tighter_than_add(expr: cst.BaseExpression) -> bool:
    """Whether ``expr + 1`` adds one to all of ``expr`` (`n - k + 1` does; `a if b else c + 1` does not)."""
    if expr.lpar or isinstance(expr, _TIGHT):
        return True
    if isinstance(expr, cst.BinaryOperation):
        return isinstance(expr.operator, _TIGHT_OPS)
    return isinstance(expr, cst.UnaryOperation) and not isinstance(expr.operator, cst.Not)


def _is_main_guard(test: cst.BaseExpression) -> bool:
    if not isinstance(test, cst.Comparison) or len(test.comparisons) != 1:
        return False
    (target,) = test.comparisons
    sides = {cst.Module([]).code_for_node(n).strip("'\"") for n in (test.left, target.comparator)}
    return isinstance(target.operator, cst.Equal) and sides == {"__name__", "__main__"}


class SiteFinder(cst.CSTVisitor):
    """Collects the sites of one module; run it with ``MetadataWrapper(module).visit(finder)``. ``offset`` is
    where the parsed text starts in ``source`` (1 after a BOM); stops after ``limit`` sites (``truncated``)."""

    METADATA_DEPENDENCIES = (PositionProvider, WhitespaceInclusivePositionProvider)

    def __init__(self, module: cst.Module, source: str, offset: int, limit: int):
        super().__init__()
        self.module, self.source, self.limit = module, source, limit
        self.sites: list[Site] = []
        self.truncated = False
        self._line_starts = [offset]
        while (nl := source.find("\n", self._line_starts[-1])) >= 0:
            self._line_starts.append(nl + 1)
        self._scopes: list[tuple[str, bool]] = []  # (name, is_function) of the enclosing classes and defs
        self._bodies: list[tuple[str, cst.IndentedBlock | cst.SimpleStatementSuite]] = []  # def bodies we are in
        self._in_default = 0
        self._elifs: set[int] = set()
        self._slice_ints: set[int] = set()  # integer literals that are slice bounds

    # --- positions and bookkeeping -----------------------------------------------------------------------------
    def _offset(self, pos) -> int:
        return self._line_starts[pos.line - 1] + pos.column if pos.line <= len(self._line_starts) else len(self.source)

    def _span(self, node: cst.CSTNode, inclusive: bool = False) -> tuple[int, int]:
        rng = self.get_metadata(WhitespaceInclusivePositionProvider if inclusive else PositionProvider, node)
        return self._offset(rng.start), self._offset(rng.end)

    def _outer_span(self, node: cst.CSTNode) -> tuple[int, int]:
        """The span with the node's own parentheses, which libcst's syntactic position leaves out."""
        lpar, rpar = getattr(node, "lpar", ()), getattr(node, "rpar", ())
        return (self._span(lpar[0])[0] if lpar else self._span(node)[0],
                self._span(rpar[-1])[1] if rpar else self._span(node)[1])

    def _text(self, node: cst.CSTNode) -> tuple[int, int, str] | None:
        """The node's span and code, or None where the span does not hold exactly the node's code."""
        start, end = self._outer_span(node)
        text = self.source[start:end]
        return (start, end, text) if text == self.module.code_for_node(node) else None

    def _qualname(self) -> str:
        return self._bodies[-1][0] if self._bodies else "<module>"

    def _add(self, family: str, node: cst.CSTNode, description: str, *edits: Edit, qualname: str | None = None):
        if len(self.sites) >= self.limit:
            self.truncated = True
            return
        line = self.get_metadata(PositionProvider, node).start.line
        self.sites.append(Site(family, qualname or self._qualname(), line, description, tuple(sorted(edits))))

    def on_visit(self, node: cst.CSTNode) -> bool:
        # Past the limit, stop descending; the node's own visit_ still runs, as its leave_ will (scopes balance).
        return super().on_visit(node) and not self.truncated

    # --- scopes ------------------------------------------------------------------------------------------------
    def visit_ClassDef(self, node: cst.ClassDef) -> None:
        self._scopes.append((node.name.value, False))

    def leave_ClassDef(self, original_node: cst.ClassDef) -> None:
        self._scopes.pop()

    def _scope_qualname(self) -> str:
        """Python's ``__qualname__`` of the innermost scope: ``Schema.load``, ``outer.<locals>.inner``."""
        parts: list[str] = []
        for name, is_function in self._scopes:
            parts += [name, "<locals>"] if is_function else [name]
        return ".".join(parts[:-1] if self._scopes[-1][1] else parts)

    def visit_FunctionDef(self, node: cst.FunctionDef) -> None:
        self._scopes.append((node.name.value, True))
        params = node.params
        for param in (*params.posonly_params, *params.params, *params.kwonly_params):
            if param.default is not None:
                self._change_default(param, self._scope_qualname())

    def leave_FunctionDef(self, original_node: cst.FunctionDef) -> None:
        self._scopes.pop()

    def visit_FunctionDef_body(self, node: cst.FunctionDef) -> None:
        self._bodies.append((self._scope_qualname(), node.body))

    def leave_FunctionDef_body(self, node: cst.FunctionDef) -> None:
        self._bodies.pop()

    def visit_Param_default(self, node: cst.Param) -> None:
        self._in_default += 1

    def leave_Param_default(self, node: cst.Param) -> None:
        self._in_default -= 1

    def visit_Annotation(self, node: cst.Annotation) -> bool:
        return False

    # --- operators ---------------------------------------------------------------------------------------------
    def _flip(self, family: str, op: cst.CSTNode, table: dict) -> None:
        old, new = table[type(op)]
        start, end = self._span(op)
        if self._bodies and " ".join(self.source[start:end].split()) == old:
            self._add(family, op, f"`{old}` -> `{new}`", (start, end, new))

    def visit_Comparison(self, node: cst.Comparison) -> None:
        for target in node.comparisons:
            self._flip("flip_comparison", target.operator, _COMPARE)

    def visit_BooleanOperation(self, node: cst.BooleanOperation) -> None:
        self._flip("flip_boolean", node.operator, _BOOLEAN)

    def visit_UnaryOperation(self, node: cst.UnaryOperation) -> None:
        if self._bodies and isinstance(node.operator, cst.Not):  # `not x` -> `x`: the dropped negation
            start, _ = self._span(node.operator)
            operand_start, _ = self._outer_span(node.expression)
            if self.source[start:start + 3] == "not" and not self.source[start + 3:operand_start].strip():
                self._add("flip_boolean", node.operator, "drop `not`", (start, operand_start, ""))

    def visit_BinaryOperation(self, node: cst.BinaryOperation) -> None:
        # `"..." % x` or `"a" + b` flipped is a TypeError on every run, not a logic bug: leave string operands.
        if type(node.operator) in _ARITH and not isinstance(node.left, _STRINGS) and not isinstance(node.right,
                                                                                                   _STRINGS):
            self._flip("flip_arithmetic", node.operator, _ARITH)

    def visit_AugAssign(self, node: cst.AugAssign) -> None:
        if type(node.operator) in _ARITH and not isinstance(node.value, _STRINGS):
            self._flip("flip_arithmetic", node.operator, _ARITH)

    # --- constants and slices ----------------------------------------------------------------------------------
    def visit_Integer(self, node: cst.Integer) -> None:
        # Defaults belong to change_default (a nested def's defaults are in the outer body), slice bounds to
        # off_by_one_slice.
        got = self._bodies and not self._in_default and id(node) not in self._slice_ints and self._text(node)
        if got and got[2] == node.value and (new := _bumped(node.value)):  # a parenthesised `(1)` is left alone
            self._add("off_by_one_constant", node, f"`{node.value}` -> `{new}`", (got[0], got[1], new))

    def visit_Slice(self, node: cst.Slice) -> None:
        """The lower bound moves up one, the upper one down: `x[i:j]` -> `x[i + 1:j]`, `x[:-1]` -> `x[:-2]`."""
        if not self._bodies:
            return
        for bound, step in ((node.lower, 1), (node.upper, -1)):
            signed = isinstance(bound, cst.UnaryOperation) and isinstance(bound.operator, (cst.Minus, cst.Plus))
            literal = bound.expression if signed else bound
            if isinstance(literal, cst.Integer):
                self._slice_ints.add(id(literal))
            if bound is None or not (got := self._text(bound)):
                continue
            if isinstance(literal, cst.Integer) and len(got[2]) <= 32:  # `-1`, `(2)`: literal_eval takes these
                new = str(ast.literal_eval(got[2]) + step)
            else:
                new = (got[2] if _binds_tighter_than_add(bound) else f"({got[2]})") + (" + 1" if step > 0 else " - 1")
            self._add("off_by_one_slice", bound, f"slice bound `{_short(got[2])}` -> `{_short(new)}`",
                      (got[0], got[1], new))

    # --- branches and statements -------------------------------------------------------------------------------
    def visit_If(self, node: cst.If) -> bool:
        if not self._bodies and not self._scopes and _is_main_guard(node.test):
            return False
        if isinstance(node.orelse, cst.If):
            self._elifs.add(id(node.orelse))
        if not self._bodies:
            return True
        if id(node) in self._elifs:  # drop this `elif` branch, up to the next branch
            start = self._line_starts[self.get_metadata(PositionProvider, node).start.line - 1]
            end = self._span(node.orelse, True)[0] if node.orelse else self._span(node, True)[1]
            self._add("remove_conditional", node, "remove an `elif` branch", (start, end, ""))
        if isinstance(node.orelse, cst.Else):
            start = self._line_starts[self.get_metadata(PositionProvider, node.orelse).start.line - 1]
            self._add("remove_conditional", node.orelse, "remove the `else` branch",
                      (start, self._span(node.orelse, True)[1], ""))
            blocks = (node.body, node.orelse.body)
            if all(isinstance(b, cst.IndentedBlock) and b.body for b in blocks):
                (a0, _), (b0, _) = (self._span(b.body[0], True) for b in blocks)
                a, b = (self.source[s:self._span(blk, True)[1]] for s, blk in ((a0, blocks[0]), (b0, blocks[1])))
                if a.strip() != b.strip():
                    keyword = "elif" if id(node) in self._elifs else "if"
                    self._add("swap_if_else", node, f"swap the `{keyword}` and `else` bodies",
                              (a0, a0 + len(a), b), (b0, b0 + len(b), a))
        return True

    def visit_IndentedBlock(self, node: cst.IndentedBlock) -> None:
        if not self._bodies:
            return
        for i, stmt in enumerate(node.body):
            if isinstance(stmt, cst.If) and stmt.orelse is None:
                self._remove("remove_conditional", stmt, node, f"remove the `if {_short(self._code(stmt.test))}:`")
            elif isinstance(stmt, cst.SimpleStatementLine) and len(stmt.body) == 1:
                small = stmt.body[0]
                final = node is self._bodies[-1][1] and i == len(node.body) - 1
                if isinstance(small, cst.Return) and not final:
                    self._remove("remove_early_return", stmt, node, f"remove `{_short(self._code(small))}`")
                elif self._removable(small):
                    self._remove("remove_statement", stmt, node, f"remove `{_short(self._code(small))}`")

    def visit_SimpleStatementSuite(self, node: cst.SimpleStatementSuite) -> None:
        if not self._bodies or len(node.body) != 1 or node is self._bodies[-1][1]:
            return  # a one-line `def f(): return x` keeps its only statement
        small = node.body[0]
        family = "remove_early_return" if isinstance(small, cst.Return) else "remove_statement"
        if (family == "remove_early_return" or self._removable(small)) and (got := self._text(small)):
            self._add(family, small, f"remove `{_short(got[2])}`", (got[0], got[1], "pass"))

    def _code(self, node: cst.CSTNode) -> str:
        return self.module.code_for_node(node)

    @staticmethod
    def _removable(small: cst.BaseSmallStatement) -> bool:
        if isinstance(small, cst.AnnAssign):
            return small.value is not None  # a bare `x: int` does nothing at run time
        return isinstance(small, _REMOVABLE) and (not isinstance(small, cst.Expr) or isinstance(small.value, _EFFECTS))

    def _remove(self, family: str, stmt: cst.BaseStatement, block: cst.IndentedBlock, description: str) -> None:
        """Delete the statement's lines (its leading comments stay), or make it `pass` if it is the block's only one."""
        start, end = self._span(stmt)
        line_start = self._line_starts[self.get_metadata(PositionProvider, stmt).start.line - 1]
        if self.source[line_start:start].strip():
            return  # not at the start of its line: positions are off, leave it
        if len(block.body) == 1:
            self._add(family, stmt, description, (start, end, "pass"))
        else:
            self._add(family, stmt, description, (line_start, self._span(stmt, True)[1], ""))

    # --- calls and defaults ------------------------------------------------------------------------------------
    def visit_Call(self, node: cst.Call) -> None:
        if not self._bodies or (isinstance(node.func, cst.Name) and node.func.value in _SYMMETRIC_CALLS):
            return
        for i, (a, b) in enumerate(zip(node.args, node.args[1:], strict=False)):
            if a.keyword or b.keyword or a.star or b.star:
                break  # only the leading positional ones: past a `*xs` or a keyword, positions mean nothing
            ga, gb = self._text(a.value), self._text(b.value)
            if ga and gb and ga[2] != gb[2]:
                self._add("swap_arguments", node, f"swap arguments {i + 1} and {i + 2} of "
                          f"`{_short(self._code(node.func), 30)}(...)`", (ga[0], ga[1], gb[2]), (gb[0], gb[1], ga[2]))

    def _change_default(self, param: cst.Param, qualname: str) -> None:
        value = param.default
        sign = isinstance(value, cst.UnaryOperation) and isinstance(value.expression, cst.Integer)
        target, new = (value.expression if sign else value), None
        if isinstance(value, cst.Name) and value.value in ("True", "False"):
            new = "False" if value.value == "True" else "True"
        elif isinstance(target, cst.Integer):
            new = _bumped(target.value)
        elif isinstance(value, cst.SimpleString) and value.raw_value:
            new = value.prefix + value.quote[0] * 2  # a non-empty string default becomes empty
        if new is not None and (got := self._text(target)) and (got[2] == target.value or not sign):
            shown = (self._code(value.operator) if sign else "") + new
            self._add("change_default", target, f"default `{param.name.value}={_short(self._code(value))}` -> "
                      f"`{_short(shown)}`", (got[0], got[1], new), qualname=qualname)
