"""What the device runner (``runner.py`` in a bundle) is asked to do: one spec that ``deploy run`` and
``fleet sweep`` build from the same option group (:data:`edgebench.cli.options.runner_options`), instead of
each writing the runner's command line by hand."""

from __future__ import annotations

from dataclasses import dataclass, field

from edgebench.portable.protocol import Protocol
from edgebench.portable.tensorrt.rules import DEFAULT_WORKSPACE_MB


@dataclass(frozen=True)
class RunnerSpec:
    """The protocol and TensorRT options of a run on the device, and arguments passed through as they are."""

    protocol: Protocol = field(default_factory=Protocol)
    workspace_mb: int = DEFAULT_WORKSPACE_MB
    cuda_graph: bool = False
    profile: bool = False
    legacy_calibrator: bool = False
    extra: tuple[str, ...] = ()

    def argv(self, batches: tuple[int, ...] = ()) -> list[str]:
        """The runner's command line (its argparse flags); ``batches``: ``--batch`` (a fleet job adds its own)."""
        p = self.protocol
        out = ["--batch", ",".join(map(str, batches))] if batches else []
        out += ["--warmup", str(p.warmup_iterations), "--warmup-seconds", str(p.warmup_seconds),
                "--iterations", str(p.min_iterations), "--min-seconds", str(p.min_seconds),
                "--workspace-mb", str(self.workspace_mb)]
        out += ["--cuda-graph"] * self.cuda_graph + ["--profile"] * self.profile
        out += ["--legacy-calibrator"] * self.legacy_calibrator
        return [*out, *self.extra]
