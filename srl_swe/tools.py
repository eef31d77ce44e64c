"""The agent's tools, with the semantics of the trajectories the policies are trained on.

* ``bash(command)`` runs a shell command in ``/testbed``;
* ``str_replace_editor(command, path, ...)`` is SWE-agent's editor (``tools/edit_anthropic``):
  ``view`` / ``create`` / ``str_replace`` / ``insert`` / ``undo_edit``, with SWE-agent's messages, so
  observations look exactly like the ones in SWE-agent and SWE-smith transcripts;
* ``submit()`` ends the episode with the repository's diff as the patch (so does a bash command starting with
  ``echo COMPLETE_TASK_AND_SUBMIT_FINAL_OUTPUT``, mini-swe-agent's convention, for the bash-only syntax).

Everything goes through the :class:`~srl_swe.runtime.base.Runtime` Protocol (``execute``, ``read_file``,
``write_file``), so the tools behave the same on every backend. The editor's undo history lives on the
host, in the :class:`ToolBox`. A bad call (unknown tool, missing or unexpected argument, bad value) is an
observation telling the agent what is wrong; :meth:`ToolBox.run` never raises for the agent's mistakes.
"""

from __future__ import annotations

import json
import re
import shlex
from collections import defaultdict
from dataclasses import dataclass
from pathlib import PurePosixPath

from srl_swe.errors import SRLError
from srl_swe.runtime.base import REPO_DIR, Runtime
from srl_swe.schema import ToolCall
from srl_swe.tasks.swe import SUBMIT_SENTINEL, TOOLS

NO_OUTPUT = "Your command ran successfully and did not produce any output."
# SWE-agent's templates (sweagent/agent/agents.py), worded as the models saw them in training data.
TIMEOUT_TEMPLATE = ("The command '{command}' was cancelled because it took more than {timeout:g} seconds. "
                    "Please try a different command that completes more quickly.")
TOO_LONG = ("The output of your last command was too long. Please try a different command that produces less "
            "output. If you're looking at a file you can try use head, tail or sed to view a smaller number of "
            "lines selectively.")
MAX_OBSERVATION_CHARS = 100_000  # SWE-agent's max_observation_length
# The editor's own limits (edit_anthropic): responses are clipped at 16,000 characters with this note.
EDITOR_MAX_CHARS = 16_000
CLIPPED = ("<response clipped><NOTE>To save on context only part of this file has been shown to you. You should "
           "retry this tool after you have searched inside the file with `grep -n` in order to find the line "
           "numbers of what you are looking for.</NOTE>")
SNIPPET_LINES = 4
EDITOR_COMMANDS = ("view", "create", "str_replace", "insert", "undo_edit")

#: Tool name -> accepted parameters (required ones first), from the one tool schema the prompts list too.
TOOL_PARAMS: dict[str, tuple[str, ...]] = {name: tool.param_names for name, tool in TOOLS.items()}
_REQUIRED = {name: tool.required for name, tool in TOOLS.items()}
# Byte-compiled files appear as soon as the agent runs the code; they are never part of a fix.
_PATCH_EXCLUDES = "':(exclude,glob)**/__pycache__/**' ':(exclude,glob)**/*.py[co]'"
# Output is stdout and stderr merged, so a warning from `git add` must not land in the patch: it is shown only
# when `git add` fails; `git diff` is rerun with its stderr only when it fails.
SUBMIT_COMMAND = (f'err=$(git add -A -- . {_PATCH_EXCLUDES} 2>&1) || {{ echo "$err"; exit 1; }}; '
                  "git diff --cached --binary HEAD 2>/dev/null || git diff --cached --binary HEAD >/dev/null")


@dataclass(frozen=True)
class ToolOutput:
    """What one tool call gave: the observation shown to the agent; ``done`` (and the ``patch``) on submit."""

    observation: str
    done: bool = False
    patch: str | None = None


class ToolError(SRLError):
    """A mistake in a tool call; its message is the observation. :meth:`ToolBox.run` turns it into one, so it
    escapes only from the tools called directly (:meth:`ToolBox.diff`: the agent loop catches it)."""


class ToolBox:
    """The three tools bound to one runtime. ``timeout`` is the per-command limit of ``bash`` (seconds;
    ``None``: the runtime's default)."""

    def __init__(self, runtime: Runtime, *, timeout: float | None = None,
                 max_observation_chars: int = MAX_OBSERVATION_CHARS):
        self.runtime, self.timeout, self.max_observation_chars = runtime, timeout, max_observation_chars
        self.history: dict[str, list[str]] = defaultdict(list)  # editor undo stack per absolute path

    def run(self, call: ToolCall) -> ToolOutput:
        if call.name not in TOOL_PARAMS:
            return ToolOutput(f"Unknown tool `{call.name}`. The available tools are: {', '.join(TOOL_PARAMS)}.")
        args = call.args
        unexpected = [k for k in args if k not in TOOL_PARAMS[call.name]]
        if unexpected:
            allowed = ", ".join(TOOL_PARAMS[call.name]) or "none"
            return ToolOutput(f"Unexpected argument(s) for `{call.name}`: {', '.join(unexpected)}. "
                              f"Allowed arguments: {allowed}.")
        missing = [k for k in _REQUIRED[call.name] if k not in args]
        if missing:
            return ToolOutput(f"Parameter `{missing[0]}` is required for the `{call.name}` tool.")
        try:
            if call.name == "bash" and not _is_sentinel(args["command"]):
                return ToolOutput(self.bash(args["command"]))
            if call.name in ("submit", "bash"):
                patch = self.diff()
                return ToolOutput(patch, done=True, patch=patch)
            return ToolOutput(self.edit(args))
        except ToolError as e:
            return ToolOutput(str(e))

    # -- bash / submit ------------------------------------------------------------------------------
    def bash(self, command: str) -> str:
        result = self.runtime.execute(command, timeout=self.timeout)
        if result.timed_out:
            limit = self.timeout if self.timeout is not None else getattr(self.runtime, "timeout", 0) or 0
            return TIMEOUT_TEMPLATE.format(command=command, timeout=limit)
        out = result.output
        if len(out) > self.max_observation_chars:
            out = TOO_LONG
        if result.exit_code:
            note = f"[The command exited with code {result.exit_code}.]"
            return f"{out.rstrip()}\n{note}" if out.strip() else note
        return out if out.strip() else NO_OUTPUT

    def diff(self) -> str:
        """The repository's changes against its base commit as a ``git apply``-able patch (binary files
        as git binary patches, so the text is plain ASCII for them); new files included."""
        result = self.runtime.execute(SUBMIT_COMMAND, timeout=max(self.timeout or 0, 120))
        if not result.ok:
            raise ToolError(f"submit could not compute the diff of /testbed (exit {result.exit_code}):\n"
                            f"{result.output.strip()}")
        return result.output

    # -- str_replace_editor -------------------------------------------------------------------------
    def edit(self, args: dict[str, str]) -> str:
        command, raw = args["command"], args["path"]
        path = str(PurePosixPath(raw)) if raw else raw
        if not path.startswith("/"):
            raise ToolError(f"The path {raw} is not an absolute path, it should start with `/`. "
                            f"Maybe you meant {PurePosixPath(REPO_DIR) / raw}?")
        kind, parent_kind = self._kinds(path, str(PurePosixPath(path).parent))
        if kind == "none" and command != "create":
            raise ToolError(f"The path {path} does not exist. Please provide a valid path.")
        if kind != "none" and command == "create":
            raise ToolError(f"File already exists at: {path}. Cannot overwrite files using command `create`.")
        if kind == "dir" and command != "view":
            raise ToolError(f"The path {path} is a directory and only the `view` command can be used on directories")
        if command == "view":
            return self._view_dir(path, args) if kind == "dir" else self._view(path, args)
        if command == "create":
            if "file_text" not in args:
                raise ToolError("Parameter `file_text` is required for command: create")
            if parent_kind != "dir":
                raise ToolError(f"The parent directory {PurePosixPath(path).parent} does not exist. "
                                "Please create it first.")
            self._write(path, args["file_text"])
            self.history[path].append(args["file_text"])
            return f"File created successfully at: {path}"
        if command == "str_replace":
            if "old_str" not in args:
                raise ToolError("Parameter `old_str` is required for command: str_replace")
            return self._str_replace(path, args["old_str"], args.get("new_str"))
        if command == "insert":
            if "insert_line" not in args:
                raise ToolError("Parameter `insert_line` is required for command: insert")
            if "new_str" not in args:
                raise ToolError("Parameter `new_str` is required for command: insert")
            line = _int(args["insert_line"], "insert_line")
            return self._insert(path, line, args["new_str"])
        if command == "undo_edit":
            if not self.history[path]:
                raise ToolError(f"No edit history found for {path}.")
            old = self.history[path].pop()
            self._write(path, old)
            return f"Last edit to {path} undone successfully. {numbered(old, path)}"
        quoted = ", ".join(f'"{c}"' for c in EDITOR_COMMANDS)
        raise ToolError(f"Unrecognized command {command}. The allowed commands for the str_replace_editor tool "
                        f"are: {quoted}")

    def _kinds(self, *paths: str) -> list[str]:
        """"dir", "file" or "none" for each path, in one shell round trip."""
        tests = " ".join(shlex.quote(_shell_path(p)) for p in paths)
        script = (f'for p in {tests}; do if [ -d "$p" ]; then echo dir; elif [ -e "$p" ]; then echo file; '
                  "else echo none; fi; done")
        result = self.runtime.execute(script)
        kinds = result.output.split()
        if not result.ok or len(kinds) != len(paths):
            raise ToolError(f"Could not inspect {paths[0]} in the sandbox: {result.output.strip()[:500]}")
        return kinds

    def _read(self, path: str) -> str:
        try:
            return self.runtime.read_file(path)
        except (OSError, UnicodeError) as e:
            raise ToolError(f"Ran into {e} while trying to read {path}") from None

    def _write(self, path: str, content: str) -> None:
        try:
            self.runtime.write_file(path, content)
        except OSError as e:
            raise ToolError(f"Ran into {e} while trying to write to {path}") from None

    def _view_dir(self, path: str, args: dict[str, str]) -> str:
        if args.get("view_range"):
            raise ToolError("The `view_range` parameter is not allowed when `path` points to a directory.")
        rel = _shell_path(path)
        # Hidden entries are skipped the way SWE-agent's `find -not -path '*/\.*'` does; sorted, because
        # directory order differs between file systems and the observation should not.
        result = self.runtime.execute(f"find {shlex.quote(rel)} -maxdepth 2 -not -path '*/\\.*' | LC_ALL=C sort")
        if not result.ok:
            raise ToolError(result.output.strip() or f"Could not list {path}")
        shown = [path + line[len(rel):] if line == rel or line.startswith(rel + "/") else line
                 for line in result.output.splitlines() if line]
        listing = "\n".join(shown)
        return f"Here's the files and directories up to 2 levels deep in {path}, excluding hidden items:\n{listing}\n"

    def _view(self, path: str, args: dict[str, str]) -> str:
        content = self._read(path)
        if not args.get("view_range"):
            return numbered(content, path)
        first, last = _view_range(args["view_range"])
        lines = content.split("\n")
        n = len(lines)
        spec = json.dumps([first, last])
        if not 1 <= first <= n:
            raise ToolError(f"Invalid `view_range`: {spec}. Its first element `{first}` should be within the "
                            f"range of lines of the file: {[1, n]}")
        if last > n:
            raise ToolError(f"Invalid `view_range`: {spec}. Its second element `{last}` should be smaller than "
                            f"the number of lines in the file: `{n}`")
        if last != -1 and last < first:
            raise ToolError(f"Invalid `view_range`: {spec}. Its second element `{last}` should be larger or "
                            f"equal than its first `{first}`")
        end = n if last == -1 else last
        return numbered("\n".join(lines[first - 1 : end]), path, first)

    def _str_replace(self, path: str, old: str, new: str | None) -> str:
        content, new = self._read(path), new or ""
        # SWE-agent expands tabs in the file and both strings before matching (views show expanded tabs, so
        # that is what the model copies) and writes the expanded file back, which rewrites every tab in it.
        # An old_str that matches the file verbatim once is replaced in place instead: same observation,
        # and the file's other tabs (Makefiles, tab-indented code) survive.
        if content.count(old) != 1 or new == old:
            content, old, new = content.expandtabs(), old.expandtabs(), new.expandtabs()
        count = content.count(old)
        if count == 0:
            raise ToolError(f"No replacement was performed, old_str `{old}` did not appear verbatim in {path}.")
        if count > 1:
            hits = [i for i, line in enumerate(content.split("\n"), 1) if old in line]
            raise ToolError(f"No replacement was performed. Multiple occurrences of old_str `{old}` in lines "
                            f"{hits}. Please ensure it is unique")
        if new == old:
            raise ToolError(f"No replacement was performed, old_str `{old}` is the same as new_str `{new}`.")
        updated = content.replace(old, new)
        self._write(path, updated)
        self.history[path].append(content)
        at = content.split(old)[0].count("\n")  # 0-based line where old_str started
        start = max(1, at - SNIPPET_LINES)
        end = min(at + SNIPPET_LINES + new.count("\n"), len(updated.splitlines()))
        snippet = "\n".join(updated.split("\n")[start - 1 : end])
        return (f"The file {path} has been edited. {numbered(snippet, f'a snippet of {path}', start)}"
                "Review the changes and make sure they are as expected. Edit the file again if necessary.")

    def _insert(self, path: str, line: int, new: str) -> str:
        # Unlike SWE-agent, the file's tabs are not expanded on insert (the observation is the same).
        content = self._read(path)
        lines = content.split("\n")
        if not 0 <= line <= len(lines):
            raise ToolError(f"Invalid `insert_line` parameter: {line}. It should be within the range of lines "
                            f"of the file: {[0, len(lines)]}")
        new_lines = new.split("\n")
        self._write(path, "\n".join(lines[:line] + new_lines + lines[line:]))
        self.history[path].append(content)
        snippet = lines[max(0, line - SNIPPET_LINES) : line] + new_lines + lines[line : line + SNIPPET_LINES]
        shown = numbered("\n".join(snippet), "a snippet of the edited file", max(1, line - SNIPPET_LINES + 1))
        return (f"The file {path} has been edited. {shown}Review the changes and make sure they are as expected "
                "(correct indentation, no duplicate lines, etc). Edit the file again if necessary.")


def numbered(content: str, descriptor: str, first: int = 1) -> str:
    """``cat -n``-style listing as SWE-agent's editor prints it (clipped, tabs expanded, 6-wide numbers)."""
    if len(content) > EDITOR_MAX_CHARS:
        content = content[:EDITOR_MAX_CHARS] + CLIPPED
    body = "\n".join(f"{i:6}\t{line}" for i, line in enumerate(content.expandtabs().split("\n"), first))
    return f"Here's the result of running `cat -n` on {descriptor}:\n{body}\n"


def _is_sentinel(command: str) -> bool:
    return command.lstrip().startswith(f"echo {SUBMIT_SENTINEL}")


def _shell_path(path: str) -> str:
    # Commands run in /testbed; a path inside it is given relative so that backends which do not mount the
    # repository at /testbed (the local runtime) resolve it too.
    p = PurePosixPath(path)
    if p == PurePosixPath(REPO_DIR):
        return "."
    if p.is_relative_to(REPO_DIR):
        return str(p.relative_to(REPO_DIR))
    return path


def _int(value: str, name: str) -> int:
    try:
        return int(value.strip())
    except ValueError:
        raise ToolError(f"Invalid `{name}` parameter: {value!r}. It should be an integer.") from None


def _view_range(value: str) -> tuple[int, int]:
    bad = ToolError("Invalid `view_range`. It should be a list of two integers.")
    try:
        parsed = json.loads(value)
    except ValueError:
        # Models also write the range without brackets or commas ("10 20", "10, 20").
        parsed = [int(x) for x in re.findall(r"-?\d+", value)] if re.fullmatch(r"[\s\[\](),\d-]*", value) else None
    if (not isinstance(parsed, list) or len(parsed) != 2
            or not all(isinstance(x, int) and not isinstance(x, bool) for x in parsed)):
        raise bad
    return parsed[0], parsed[1]
