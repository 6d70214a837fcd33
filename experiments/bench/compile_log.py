"""What a process compiles, from JAX's monitoring events: each program's name and its trace, lowering and XLA
compile seconds (``jax.monitoring`` duration listeners; no private API, no log parsing)."""

from __future__ import annotations

import collections
from dataclasses import dataclass, field

import jax

EVENTS = {"/jax/core/compile/jaxpr_trace_duration": "trace",
          "/jax/core/compile/jaxpr_to_mlir_module_duration": "lower",
          "/jax/core/compile/backend_compile_duration": "compile"}


@dataclass
class CompileLog:
    """Collects compile events while active: ``with CompileLog() as log: ...``; ``log.programs`` lists
    ``(name, xla_seconds)`` per XLA compile, ``log.seconds`` sums trace + lower + compile."""

    events: list = field(default_factory=list)  # (phase, fun_name, seconds)
    active: bool = False

    def _listen(self, event: str, duration: float, **kwargs) -> None:
        if self.active and event in EVENTS:
            self.events.append((EVENTS[event], str(kwargs.get("fun_name", "?")), float(duration)))

    def __enter__(self) -> CompileLog:
        self.active = True
        if not getattr(self, "_registered", False):
            jax.monitoring.register_event_duration_secs_listener(self._listen)
            self._registered = True
        return self

    def __exit__(self, *exc) -> None:
        self.active = False

    def mark(self) -> int:
        return len(self.events)

    def since(self, mark: int) -> CompileLog:
        return CompileLog(events=self.events[mark:])

    @property
    def programs(self) -> list[tuple[str, float]]:
        return [(n, s) for ph, n, s in self.events if ph == "compile"]

    @property
    def seconds(self) -> float:
        return sum(s for _, _, s in self.events)

    def by_phase(self) -> dict[str, float]:
        out: dict[str, float] = collections.defaultdict(float)
        for ph, _, s in self.events:
            out[ph] += s
        return dict(out)

    def summary(self, top: int = 8) -> str:
        """``n programs, X s (trace a, lower b, compile c)`` plus the slowest compiles."""
        ph = self.by_phase()
        progs = sorted(self.programs, key=lambda p: -p[1])
        head = (f"{len(self.programs)} programs, {self.seconds:.2f} s (trace {ph.get('trace', 0):.2f}, lower "
                f"{ph.get('lower', 0):.2f}, XLA {ph.get('compile', 0):.2f})")
        return head + "".join(f"\n    {s:6.2f} s  {n}" for n, s in progs[:top])
