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
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from srl_swe.errors import ActionParseError
from srl_swe.schema import ToolCall

_FUNC_RE = re.compile(r"<function=([^>\s]+)>(.*?)</function>", re.S)
_PARAM_OPEN, _PARAM_CLOSE = "<parameter=", "</parameter>"
_QWEN_RE = re.compile(r"<tool_call>(.*?)</tool_call>", re.S)
# mini-swe-agent's own action regex, so a transcript parses exactly as the agent that wrote it did.
_BASH_RE = re.compile(r"```bash\s*\n(.*?)\n```", re.S)
_THINK_RE = re.compile(r"\A\s*<think>(.*?)</think>(.*)\Z", re.S)


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

    def find(self, text: str) -> list[Match]:
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

    @staticmethod
    def _value(raw: str) -> str:
        # Also accepts a model writing a one-line value on its own line (``<parameter=command>\nls\n</parameter>``).
        if len(raw) >= 2 and raw.startswith("\n") and raw.endswith("\n"):
            return raw[1:-1]
        return raw

    def find(self, text: str) -> list[Match]:
        return [Match(m.start(), m.end(), ToolCall(m.group(1), self._params(m.group(1), m.group(2))))
                for m in _FUNC_RE.finditer(text)]

    def _params(self, func: str, body: str) -> tuple[tuple[str, str], ...]:
        # A linear scan with str.find rather than a lazy regex: with many unclosed "<parameter=" a regex
        # rescans to the end of the text from each one, which is quadratic on long model outputs.
        args: list[tuple[str, str]] = []
        pos = 0
        while (start := body.find(_PARAM_OPEN, pos)) >= 0:
            if body[pos:start].strip():
                raise ActionParseError(f"stray text inside <function={func}>: {body[pos:start][:60]!r}")
            gt = body.find(">", start)
            name = body[start + len(_PARAM_OPEN) : gt] if gt >= 0 else ""
            if not name or any(c.isspace() for c in name):
                raise ActionParseError(f"malformed <parameter=...> tag inside <function={func}>")
            close = body.find(_PARAM_CLOSE, gt)
            if close < 0:
                raise ActionParseError(f"<parameter={name[:40]}> is not closed by </parameter>")
            if any(k == name for k, _ in args):
                raise ActionParseError(f"parameter {name!r} given twice")
            args.append((name, self._value(body[gt + 1 : close])))
            pos = close + len(_PARAM_CLOSE)
        if body[pos:].strip():
            raise ActionParseError(f"stray text inside <function={func}>: {body[pos:][:60]!r}")
        return tuple(args)


class QwenSyntax(ActionSyntax):
    name = "qwen"
    opener = "<tool_call>"

    def render(self, call: ToolCall) -> str:
        payload = {"name": call.name, "arguments": dict(call.arguments)}
        return f"<tool_call>\n{json.dumps(payload, ensure_ascii=False)}\n</tool_call>"

    def find(self, text: str) -> list[Match]:
        out = []
        for m in _QWEN_RE.finditer(text):
            payload = _json_loads(m.group(1), "<tool_call> body")
            out.append(Match(m.start(), m.end(), tool_call_from_json(payload)))
        return out


class BashSyntax(ActionSyntax):
    name = "bash"
    opener = "```bash"

    def render(self, call: ToolCall) -> str:
        command = call.get("command")
        if call.name != "bash" or command is None or len(call.arguments) != 1:
            raise ActionParseError(f"the bash syntax can only write bash(command=...), not {call.name}")
        return f"```bash\n{command}\n```"

    def find(self, text: str) -> list[Match]:
        return [Match(m.start(), m.end(), ToolCall.bash(m.group(1))) for m in _BASH_RE.finditer(text)]


class TextSyntax(ActionSyntax):
    """Free text: a math step. Any non-empty text is one action."""

    name = "text"

    def render(self, call: ToolCall) -> str:
        content = call.get("content")
        if call.name != "text" or content is None:
            raise ActionParseError(f"the text syntax can only write text(content=...), not {call.name}")
        return content

    def find(self, text: str) -> list[Match]:
        stripped = text.strip()
        if not stripped:
            return []
        start = text.index(stripped[0])
        return [Match(start, start + len(stripped), ToolCall.text(stripped))]


SYNTAXES: dict[str, type[ActionSyntax]] = {
    "xml": XmlSyntax,
    "qwen": QwenSyntax,
    "bash": BashSyntax,
    "text": TextSyntax,
}


_INSTANCES = {name: cls() for name, cls in SYNTAXES.items()}  # syntaxes are stateless: share one each


def get_syntax(name: str | ActionSyntax) -> ActionSyntax:
    if isinstance(name, ActionSyntax):
        return name
    try:
        return _INSTANCES[name]
    except KeyError:
        raise ValueError(f"unknown action syntax {name!r}; choose one of {sorted(SYNTAXES)}") from None


def _json_loads(text: str, what: str) -> object:
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise ActionParseError(f"{what} is not JSON ({e.msg})") from None
    except (ValueError, RecursionError) as e:  # a >4300-digit integer; nesting deeper than the recursion limit
        reason = "nesting too deep" if isinstance(e, RecursionError) else str(e)[:80]
        raise ActionParseError(f"{what} is not JSON ({reason})") from None


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
    return ToolCall.make(payload["name"], args)


@dataclass(frozen=True)
class ParsedOutput:
    thought: str
    action: ToolCall


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
    found = get_syntax(syntax).find(text)
    if len(found) != 1:
        raise ActionParseError(f"expected exactly one {get_syntax(syntax).name} action, found {len(found)}")
    return text[: found[0].start].strip(), found[0].call


def render(call: ToolCall, syntax: str | ActionSyntax = "xml") -> str:
    return get_syntax(syntax).render(call)
