"""Bounded command output, shared by every backend (and the sandboxed harness's test runs)."""

from __future__ import annotations

#: Default cap on one command's output kept in memory (bytes). Large enough for a full test-suite log
#: (the graders parse it); the agent's tools cut observations much shorter for the model.
DEFAULT_MAX_OUTPUT = 4 * 1024 * 1024


class OutputBuffer:
    """Collects a command's output with bounded memory: the first and last ``max_bytes // 2`` bytes are
    kept and the middle is replaced by a visible marker, so a command printing gigabytes cannot exhaust
    memory while the start (the command's context) and the end (errors, summaries) survive."""

    def __init__(self, max_bytes: int = DEFAULT_MAX_OUTPUT):
        if max_bytes < 2:
            raise ValueError(f"max_output must be at least 2 bytes, got {max_bytes}")
        self.half = max_bytes // 2
        self.max_bytes = max_bytes
        self.head = bytearray()
        self.tail = bytearray()
        self.total = 0

    def feed(self, data: bytes) -> None:
        self.total += len(data)
        room = self.half - len(self.head)
        if room > 0:
            self.head += data[:room]
            data = data[room:]
        if data:
            self.tail += data
            # Trim lazily (only once the tail is twice its budget) so feeding stays amortised O(n).
            if len(self.tail) > 2 * self.half:
                del self.tail[: len(self.tail) - self.half]

    def text(self) -> str:
        if self.total <= self.max_bytes:
            return (bytes(self.head) + bytes(self.tail)).decode("utf-8", errors="replace")
        tail = bytes(self.tail[-self.half:]) if self.half else b""
        omitted = self.total - len(self.head) - len(tail)
        marker = f"\n[... {omitted} bytes of output omitted (over the {self.max_bytes}-byte cap) ...]\n"
        return self.head.decode("utf-8", errors="replace") + marker + tail.decode("utf-8", errors="replace")
