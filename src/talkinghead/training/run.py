"""Train any registered component: look it up, let its paper's builder make the solver, run the loop.

``train("dreamtalk.denoiser", data, out, "cpu", lip_expert=DIR)`` (or an alias: ``"denoiser"``) is what
``talkinghead train`` calls; the component's own options (ablation flags, input checkpoints) are keywords,
checked against its :class:`~talkinghead.training.registry.ComponentSpec`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from talkinghead.training.registry import SolverBuild, check_options, command_line, get_component


def build_solver(component: str, data: str | Path, preset: str = "cpu", *, features: tuple[str, ...] = (),
                 train_overrides: dict[str, Any] | None = None, **options: Any) -> SolverBuild:
    """The solver, its training config and the checkpoint's ``extra`` entries for ``component`` on ``data``.

    ``train_overrides``: training-config fields (``steps``, ``batch_size``, ``seed``; ``None`` values are
    left at the preset's); ``options``: the component's own options (see ``talkinghead train NAME --help``).
    """
    spec = get_component(component)
    chosen = check_options(component, options)
    overrides = {k: v for k, v in (train_overrides or {}).items() if v is not None}
    return spec.load_builder()(data, preset, features=tuple(features), train_overrides=overrides, **chosen)


def train(component: str, data: str | Path, out: str | Path, preset: str = "cpu", *, steps: int | None = None,
          batch_size: int | None = None, seed: int | None = None, features: tuple[str, ...] = (),
          devices: int = 1, num_nodes: int = 1, strategy: str = "auto", accelerator: str = "cpu",
          resume: bool = False, stop_after: int | None = None, tensorboard: bool = True,
          **options: Any) -> dict[str, Any]:
    """Train ``component`` (a registry name or alias); the EMA checkpoint goes to ``out`` (state in
    ``out.train/``). Returns the loop's summary (see :func:`talkinghead.training.loop.fit`).

    When the run fails (an error, Ctrl-C, SIGTERM) before it saved a state to resume from, the folders it made
    are removed again."""
    from talkinghead.io.files import output_folder
    from talkinghead.training.loop import fit
    from talkinghead.training.state import state_dir

    state = state_dir(out)

    def resumable(_: Path) -> bool:
        return any(state.glob("state*"))  # state/ (or state.old/ during a save)

    with output_folder(out, keep=resumable), output_folder(state, keep=resumable):
        built = build_solver(component, data, preset, features=features,
                             train_overrides={"steps": steps, "batch_size": batch_size, "seed": seed}, **options)
        extra = {"command": command_line(component, preset, options), "data": str(data), **built.extra}
        return fit(built.solver, built.config, out, preset=preset, devices=devices, num_nodes=num_nodes,
                   strategy=strategy, accelerator=accelerator, resume=resume, stop_after=stop_after,
                   tensorboard=tensorboard, extra=extra)
