"""Action syntaxes: how a :class:`ToolCall` is written in a model's output, and how it is read back.

Four syntaxes, chosen by name (``SYNTAXES``):

* ``xml``  – the SWE-agent / SWE-smith function format the SRL paper trained on (default)::

      <function=bash>
      <parameter=command>ls</parameter>
      </function>

* ``qwen`` – Qwen's native tool call: ``<tool_call>{"name": ..., "arguments": {...}}</tool_call>``
* ``bash`` – a single fenced block, as mini-swe-agent uses: ```` ```bash\\nls\\n``` ````
* ``text`` – a free-text step (math); the whole action text is the step.

A model output is *valid* when it is ``<think>…</think>`` followed by exactly one action in the
environment's syntax and nothing else; :func:`parse_output` raises :class:`ActionParseError` with the
reason otherwise. :func:`extract_action` is the lenient reader used on expert transcripts, where prose
before the call is the expert's thought.

Bounded time: every reader here is linear in the length of its input, whatever the input (unclosed or
repeated tags, tens of thousands of parameters, deeply nested JSON, many ``<think>`` tags): each part of the
text is scanned a bounded number of times, never once per opening tag. An output of the action space's
maximum size (``MAX_OUTPUT_CHARS``, 2**20 characters) is parsed and scored in well under 1 s; the adversarial
cases are timed in ``tests/test_bounded_parsing.py``. JSON nested deeper than ``MAX_JSON_DEPTH`` (100) is
refused. Malformed input of any kind raises :class:`ActionParseError`, never another exception.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from itertools import islice

from srl_swe.errors import ActionParseError
from srl_swe.registry import Registry, UnknownComponentError
from srl_swe.schema import MAX_JSON_DEPTH, JSONTooDeepError, ToolCall, json_too_deep, load_json

# The xml tag is read by hand (XmlSyntax.find) exactly as r"<function=([^>\s]+)>(.*?)</function>" (re.S) reads
# it; the regex rescans the rest of the text from every unclosed opener and every name cut by white space.
_FUNC_OPEN, _FUNC_CLOSE = "<function=", "</function>"
_NAME_END, _FUNC_END = re.compile(r"[>\s]"), re.compile(re.escape(_FUNC_CLOSE))
_PARAM_OPEN, _PARAM_CLOSE = "<parameter=", "</parameter>"
_QWEN_RE, _QWEN_CLOSE = re.compile(r"<tool_call>(.*?)</tool_call>", re.S), "</tool_call>"
# mini-swe-agent's own action regex, so a transcript parses exactly as the agent that wrote it did.
_BASH_RE, _BASH_CLOSE = re.compile(r"```bash\s*\n(.*?)\n```", re.S), "\n```"
_THINK_RE = re.compile(r"\A\s*<think>(.*?)</think>(.*)\Z", re.S)


def _finditer_linear(pattern: re.Pattern[str], text: str, close: str, limit: int | None):
    """``pattern.finditer(text)`` (at most ``limit`` matches) for a pattern that ends with the literal ``close``
    and whose other parts cannot run past the opener's own white space. Matching stops where the last ``close``
    ends: then an opener either has a ``close`` after it or lies beyond the bound, where without the bound
    every unclosed opener rescans to the end of the text (quadratic)."""
    last = text.rfind(close)
    return islice(pattern.finditer(text, 0, last + len(close)) if last >= 0 else (), limit)


class _NextOf:
    """The first match of ``pattern`` at or after ``pos``, for calls whose ``pos`` never decreases: a cached hit
    at or after ``pos`` is still the first, so each part of the text is searched once, not once per caller."""

    def __init__(self, text: str, pattern: re.Pattern[str]):
        self.text, self.pattern, self.at = text, pattern, -2  # -2: not searched yet, -1: none left

    def __call__(self, pos: int) -> int:
        if self.at != -1 and pos > self.at:
            m = self.pattern.search(self.text, pos)
            self.at = m.start() if m else -1
        return self.at


@dataclass(frozen=True)
class Match:
    start: int
    end: int
    call: ToolCall


class ActionSyntax:
    """One way of writing tool calls. Subclasses implement ``render`` and ``find``."""

    name = ""
    # Markers whose presence means the text *tries* to hold an action; used to count actions.
    opener = ""

    def render(self, call: ToolCall) -> str:
        raise NotImplementedError

    def expresses(self, call: ToolCall) -> bool:
        """Whether ``render(call)`` can write this call (bash and text can write only one tool)."""
        return True

    def find(self, text: str, limit: int | None = None) -> list[Match]:
        """The actions in ``text``, in order (the first ``limit`` of them)."""
        raise NotImplementedError

    def parse(self, text: str) -> ToolCall:
        """Read a text that must be exactly one action (surrounding white space allowed)."""
        body = text.strip()
        if not body:
            raise ActionParseError(f"no action after </think> (expected one {self.name} action)")
        # Count the openers before searching: each unclosed opener makes the regex scan to the end of the
        # text, so a long output full of them would take quadratic time to reject.
        attempts = body.count(self.opener) if self.opener else 0
        if attempts > 1:
            raise ActionParseError(f"expected exactly one {self.name} action, found {attempts}")
        found = self.find(body)
        if not found:
            raise ActionParseError(f"no well-formed {self.name} action found")
        if len(found) > 1:
            raise ActionParseError(f"expected exactly one {self.name} action, found {len(found)}")
        m = found[0]
        if body[: m.start].strip():
            raise ActionParseError(f"text before the {self.name} action (put reasoning inside <think>)")
        if body[m.end :].strip():
            raise ActionParseError(f"text after the {self.name} action")
        return m.call


class XmlSyntax(ActionSyntax):
    name = "xml"
    opener = "<function="

    # Multi-line values sit on their own lines (``<parameter=k>\nline1\nline2\n</parameter>``), the
    # convention of the SWE-smith/OpenHands converter; reading drops exactly that one newline on each side.
    def render(self, call: ToolCall) -> str:
        params = "".join(
            f"<parameter={k}>\n{v}\n</parameter>\n" if "\n" in v else f"<parameter={k}>{v}</parameter>\n"
            for k, v in call.arguments
        )
        return f"<function={call.name}>\n{params}</function>"

    def find(self, text: str, limit: int | None = None) -> list[Match]:
        out: list[Match] = []
        name_end, close = _NextOf(text, _NAME_END), _NextOf(text, _FUNC_END)
        pos = 0
        while len(out) != limit and (start := text.find(_FUNC_OPEN, pos)) >= 0:
            pos = start + len(_FUNC_OPEN)
            gt = name_end(pos)
            if gt < 0:  # no ">" (nor white space) anywhere after: no later tag can be complete either
                break
            if gt == pos or text[gt] != ">":  # an empty name, or white space inside it: not a tag
                continue
            end = close(gt + 1)
            if end < 0:
                break
            name = text[pos:gt]
            out.append(Match(start, end + len(_FUNC_CLOSE), ToolCall(name, self._params(name, text[gt + 1 : end]))))
            pos = end + len(_FUNC_CLOSE)
        return out

    def _params(self, func: str, body: str) -> tuple[tuple[str, str], ...]:
        # A linear scan with str.find rather than a lazy regex: with many unclosed "<parameter=" a regex
        # rescans to the end of the text from each one, which is quadratic on long model outputs. Names go in
        # a set, not a scan of what was read (20k parameters took 8 s to check). Methods are bound locally:
        # an output of the action space's maximum size holds 30k+ parameters.
        func = func[:60]
        args: list[tuple[str, str]] = []
        seen: set[str] = set()
        find, add, append = body.find, seen.add, args.append
        open_len, close_len = len(_PARAM_OPEN), len(_PARAM_CLOSE)
        pos = 0
        while (start := find(_PARAM_OPEN, pos)) >= 0:
            if start > pos and not body[pos:start].isspace():
                raise ActionParseError(f"stray text inside <function={func}>: {body[pos:start][:60]!r}")
            gt = find(">", start)
            name = body[start + open_len : gt] if gt >= 0 else ""
            if name.split() != [name]:  # empty, or white space inside
                raise ActionParseError(f"malformed <parameter=...> tag inside <function={func}>")
            close = find(_PARAM_CLOSE, gt)
            if close < 0:
                raise ActionParseError(f"<parameter={name[:40]}> is not closed by </parameter>")
            if name in seen:
                raise ActionParseError(f"parameter {name[:40]!r} given twice")
            add(name)
            raw = body[gt + 1 : close]
            # One newline on each side is the multi-line layout; a model may also put a one-line value on its
            # own line (<parameter=command>\nls\n</parameter>).
            append((name, raw[1:-1] if len(raw) >= 2 and raw[0] == "\n" and raw[-1] == "\n" else raw))
            pos = close + close_len
        if body[pos:].strip():
            raise ActionParseError(f"stray text inside <function={func}>: {body[pos:][:60]!r}")
        return tuple(args)


class QwenSyntax(ActionSyntax):
    name = "qwen"
    opener = "<tool_call>"

    def render(self, call: ToolCall) -> str:
        payload = {"name": call.name, "arguments": dict(call.arguments)}
        return f"<tool_call>\n{json.dumps(payload, ensure_ascii=False)}\n</tool_call>"

    def find(self, text: str, limit: int | None = None) -> list[Match]:
        out = []
        for m in _finditer_linear(_QWEN_RE, text, _QWEN_CLOSE, limit):
            payload = _json_loads(m.group(1), "<tool_call> body")
            out.append(Match(m.start(), m.end(), tool_call_from_json(payload)))
        return out


class BashSyntax(ActionSyntax):
    name = "bash"
    opener = "```bash"
    pattern, close = _BASH_RE, _BASH_CLOSE  # a subclass reads another fence (mini-swe-agent 2.x's)

    def expresses(self, call: ToolCall) -> bool:
        return call.name == "bash" and len(call.arguments) == 1 and call.arguments[0][0] == "command"

    def render(self, call: ToolCall) -> str:
        if not self.expresses(call):
            raise ActionParseError(f"the bash syntax can only write bash(command=...), not {call.name[:60]}")
        return f"```bash\n{call.arguments[0][1]}\n```"

    def find(self, text: str, limit: int | None = None) -> list[Match]:
        return [Match(m.start(), m.end(), ToolCall.bash(m.group(1)))
                for m in _finditer_linear(self.pattern, text, self.close, limit)]


class TextSyntax(ActionSyntax):
    """Free text: a math step. Any non-empty text is one action."""

    name = "text"

    def expresses(self, call: ToolCall) -> bool:
        return call.name == "text" and call.get("content") is not None

    def render(self, call: ToolCall) -> str:
        if not self.expresses(call):
            raise ActionParseError(f"the text syntax can only write text(content=...), not {call.name[:60]}")
        return call.get("content") or ""

    def find(self, text: str, limit: int | None = None) -> list[Match]:
        stripped = text.strip()
        if not stripped or limit == 0:
            return []
        start = text.index(stripped[0])
        return [Match(start, start + len(stripped), ToolCall.text(stripped))]


#: The syntaxes by name. A new one is a subclass of ActionSyntax plus one line here; any other class is given
#: by its dotted path (``syntax="my_pkg.syntaxes.MySyntax"``).
SYNTAXES: Registry[type[ActionSyntax]] = Registry("action syntax", {
    "xml": "srl_swe.actions.XmlSyntax",
    "qwen": "srl_swe.actions.QwenSyntax",
    "bash": "srl_swe.actions.BashSyntax",
    "text": "srl_swe.actions.TextSyntax",
})

# Syntaxes are stateless: one shared instance each. get_syntax runs for every scored output, so a hit is one
# dict lookup; the registry is asked only the first time a name is used.
_INSTANCES: dict[str, ActionSyntax] = {}


def get_syntax(name: str | ActionSyntax) -> ActionSyntax:
    if isinstance(name, ActionSyntax):
        return name
    try:
        return _INSTANCES[name]
    except (KeyError, TypeError):
        pass
    cls = SYNTAXES.get(name)
    if not (isinstance(cls, type) and issubclass(cls, ActionSyntax)):
        raise UnknownComponentError(f"action syntax {name!r} is {cls!r}, not an ActionSyntax subclass")
    syntax = _INSTANCES[name] = cls()
    return syntax


def _json_loads(text: str, what: str) -> object:
    try:
        return load_json(text)
    except JSONTooDeepError as e:
        raise ActionParseError(f"{what} is {e}") from None
    except json.JSONDecodeError as e:
        raise ActionParseError(f"{what} is not JSON ({e.msg})") from None
    except ValueError as e:  # a >4300-digit integer
        raise ActionParseError(f"{what} is not JSON ({str(e)[:80]})") from None


def tool_call_from_json(payload: object) -> ToolCall:
    """A ToolCall from an OpenAI/Qwen-style ``{"name": ..., "arguments": {...} | "<json>"}`` object."""
    if not isinstance(payload, dict) or not isinstance(payload.get("name"), str) or not payload["name"]:
        raise ActionParseError('a tool call must be an object with a non-empty string "name"')
    args = payload.get("arguments", {})
    if isinstance(args, str):  # OpenAI sends arguments as a JSON string
        args = _json_loads(args, "tool call arguments") if args.strip() else {}
    if args is None:
        args = {}
    if not isinstance(args, dict):
        raise ActionParseError(f'tool call "arguments" must be an object, got {type(args).__name__}')
    # Non-string values become their JSON text (json.dumps recurses): a payload that did not come through
    # _json_loads (a loaded file's tool_calls, a caller's dict) is checked here too.
    if json_too_deep(args):
        raise ActionParseError(f'tool call "arguments" are nested deeper than {MAX_JSON_DEPTH} levels')
    try:
        return ToolCall.make(payload["name"], args)
    except RecursionError:  # only on a stack already near the interpreter's limit
        raise ActionParseError('tool call "arguments" are nested too deep to write as JSON') from None


@dataclass(frozen=True)
class ParsedOutput:
    thought: str
    action: ToolCall


#: The ``<think>`` prefill: the generation prompt ends with the opening tag, so a model that never opens the block
#: by itself (SmolLM2) writes its monologue, closes it and acts, in the paper's strict format.
THINK_PREFILL = "<think>\n"


def with_prefill(messages: list[dict[str, str]], prefill: str) -> list[dict[str, str]]:
    """``messages`` with ``prefill`` as the start of the assistant's reply (a trailing assistant message, which
    the generators continue instead of opening a new turn; see :func:`srl_swe.models.templates.render_prompt`).
    No prefill: the messages unchanged."""
    return [*messages, {"role": "assistant", "content": prefill}] if prefill else list(messages)


def parse_output(text: object, syntax: str | ActionSyntax = "xml", require_think: bool = True) -> ParsedOutput:
    """Parse a model output that must be ``<think>…</think>`` followed by exactly one action.

    ``require_think=False`` also accepts an output with no ``<think>`` block at all (the whole output is then
    the action). It is not the paper's format; it exists for small models that never produce the block, whose
    rewards would otherwise be a flat −1 with nothing to learn from. A malformed block is still rejected.
    """
    if not isinstance(text, str):
        raise ActionParseError(f"output must be a string, got {type(text).__name__}")
    if not require_think and "<think>" not in text and "</think>" not in text:
        return ParsedOutput("", get_syntax(syntax).parse(text))
    m = _THINK_RE.match(text)
    if m is None:
        raise ActionParseError("output must start with <think>…</think> before the action")
    thought, rest = m.groups()
    if "<think>" in thought or "<think>" in rest or "</think>" in rest:
        raise ActionParseError("more than one <think> block")
    return ParsedOutput(thought.strip(), get_syntax(syntax).parse(rest))


def extract_action(text: str, syntax: str | ActionSyntax) -> tuple[str, ToolCall]:
    """Lenient reader for expert transcripts: exactly one action anywhere; prose before it is the thought."""
    found = get_syntax(syntax).find(text, limit=2)  # a third action would not change the answer
    if len(found) != 1:
        raise ActionParseError(f"expected exactly one {get_syntax(syntax).name} action, found "
                               + ("none" if not found else "more than one"))
    return text[: found[0].start].strip(), found[0].call


def render(call: ToolCall, syntax: str | ActionSyntax = "xml") -> str:
    return get_syntax(syntax).render(call)
