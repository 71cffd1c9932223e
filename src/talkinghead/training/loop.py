"""The training loop, run under Lightning Fabric so one code path scales from a CPU to many GPUs and
machines (``devices``, ``num_nodes``, ``strategy="ddp"``).

Each step ``k`` reseeds torch and draws its batch from ``np.random.default_rng([seed, rank, k])``, so the
data, the diffusion noise and dropout of a step depend only on ``(seed, rank, k)``: a run resumed from
the state saved at step ``k`` continues exactly as the uninterrupted run would have (only the steps since
the last save are lost). Adam (DreamTalk App. C.3: lr 1e-4; a solver may choose another optimizer and
a learning rate per step), gradient clipping, an EMA of the weights,
TensorBoard scalars in ``OUT.train/tb`` and a progress bar. Every save writes the training state
(``OUT.train/state``), appends the steps since the last save to the loss history ``OUT.train/history.jsonl``
(every step's loss and metrics; ``scripts/plot_losses.py`` draws it) and writes the EMA model as a checkpoint
directory ``OUT`` (save_pretrained).

``batch_size`` is per process (the global batch is ``batch_size * world_size``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, ClassVar

import numpy as np
import torch
from torch import nn

from talkinghead.config import AT_LEAST_ONE, NON_NEGATIVE, POSITIVE, SEED, Config, Range
from talkinghead.errors import TalkingHeadError
from talkinghead.log import log_event, progress
from talkinghead.training.ema import EMA
from talkinghead.training.state import TrainingState, append_history, load_state, save_state, state_dir


@dataclass(frozen=True)
class TrainConfig(Config):
    steps: Annotated[int, AT_LEAST_ONE] = 100_000
    batch_size: Annotated[int, AT_LEAST_ONE] = 64
    lr: Annotated[float, POSITIVE] = 1e-4
    grad_clip: Annotated[float, NON_NEGATIVE] = 1.0  # 0: no clipping
    ema_decay: Annotated[float, Range(0, 1)] = 0.999
    save_every: Annotated[int, AT_LEAST_ONE] = 1000
    log_every: Annotated[int, AT_LEAST_ONE] = 50
    seed: Annotated[int, SEED] = 0

    presets: ClassVar[dict[str, dict[str, Any]]] = {
        "tiny": {"steps": 30, "batch_size": 8, "lr": 1e-3, "ema_decay": 0.9, "save_every": 10, "log_every": 5},
        "cpu": {"steps": 1000, "batch_size": 32, "lr": 5e-4, "ema_decay": 0.995, "save_every": 100,
                "log_every": 25},
        "paper": {},
    }


class Solver:
    """What the loop needs from a component. Subclasses implement the four methods."""

    component: ClassVar[str]
    train_config_class: ClassVar[type[TrainConfig]] = TrainConfig

    def build_model(self) -> nn.Module:
        """The component (with data statistics installed), on the CPU, in training mode."""
        raise NotImplementedError

    def wrap(self, model: nn.Module) -> nn.Module:
        """A module whose ``forward(batch) -> (loss, metrics)`` computes the training loss."""
        raise NotImplementedError

    def make_batch(self, rng: np.random.Generator, batch_size: int) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def to_device(self, device: torch.device) -> None:
        """Move frozen helper networks (if any) to the training device."""

    def optimizer(self, model: nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
        """Adam (DreamTalk App. C.3); its learning rate is set every step from :meth:`learning_rate`."""
        return torch.optim.Adam(model.parameters(), lr=config.lr)

    def learning_rate(self, step: int, config: TrainConfig) -> float:
        """The learning rate of step ``step`` (a function of the step only, so resuming stays exact)."""
        return config.lr

    def report(self, model: nn.Module, history: dict[str, list[float]]) -> dict[str, Any] | None:
        """Called once when the run completes, with the exported (EMA) model and this run's per-step
        metrics; a dict returned is saved as the checkpoint's ``extra["report"]``."""
        return None

    def export(self, model: nn.Module, out: Path, extra: dict[str, Any]) -> None:
        model.save_pretrained(out, extra=extra)  # type: ignore[operator]


def _same_model_config(saved: Any, config: Config) -> bool:
    """Whether a saved state's model config is ``config``; a state saved before a config field was added
    (e.g. the DreamTalk variant fields) compares with that field at its default."""
    if saved == config.to_dict():
        return True
    try:
        return type(config).from_dict(saved, partial=True).to_dict() == config.to_dict()
    except TalkingHeadError:
        return False


def _fabric(devices: int, num_nodes: int, strategy: str, accelerator: str, loggers: list[Any]) -> Any:
    from lightning.fabric import Fabric

    return Fabric(accelerator=accelerator, devices=devices, num_nodes=num_nodes, strategy=strategy,
                  loggers=loggers)


def fit(solver: Solver, config: TrainConfig, out: str | Path, *, preset: str = "custom", devices: int = 1,
        num_nodes: int = 1, strategy: str = "auto", accelerator: str = "cpu", resume: bool = False,
        stop_after: int | None = None, tensorboard: bool = True, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """Train ``solver``'s component; write the EMA checkpoint to ``out``. Returns a summary dict.

    ``stop_after`` ends the run after that many total steps (as an interruption would), keeping the
    last saved state; tests use it to check resuming.
    """
    from talkinghead.options import check_accelerator, check_count, check_strategy

    check_count(devices, "The number of devices")
    check_count(num_nodes, "The number of nodes")
    check_strategy(strategy)
    check_accelerator(accelerator)
    out = Path(out)
    sdir = state_dir(out)
    loggers: list[Any] = []
    if tensorboard:
        from lightning.fabric.loggers import TensorBoardLogger

        loggers.append(TensorBoardLogger(str(sdir), name="tb", version=""))
    fabric = _fabric(devices, num_nodes, strategy, accelerator, loggers)
    fabric.launch()
    rank = fabric.global_rank
    torch.manual_seed(config.seed)  # identical initial weights on every rank
    model = solver.build_model()
    optimizer = solver.optimizer(model, config)
    ema = EMA(model, config.ema_decay)
    start = 0
    if resume:
        state = load_state(sdir)
        if state.meta.get("component") != solver.component:
            raise TalkingHeadError(f"{sdir} holds the training state of '{state.meta.get('component')}', "
                                   f"not '{solver.component}'.")
        if not _same_model_config(state.meta.get("model_config"), model.config):  # type: ignore[union-attr,arg-type]
            raise TalkingHeadError(f"{sdir} was trained with another model config; resume with the same preset.")
        model.load_state_dict(state.model)
        optimizer.load_state_dict(state.optimizer)
        ema.load_state_dict(state.ema, state.ema_updates)
        start = state.step
        log_event("resumed", step=start, state=str(sdir))
    if start >= config.steps:
        raise TalkingHeadError(f"The run in {sdir} already finished {start} of {config.steps} steps; "
                               "ask for more with --steps.")
    step_module = solver.wrap(model)
    raw_optimizer = optimizer
    step_module, optimizer = fabric.setup(step_module, optimizer)
    for slot in raw_optimizer.state.values():  # resumed Adam moments follow the weights to the device
        for key, value in slot.items():
            if isinstance(value, torch.Tensor) and key != "step":
                slot[key] = value.to(fabric.device)
    ema.to(fabric.device)
    solver.to_device(fabric.device)
    meta = {"component": solver.component, "preset": preset, "model_config": model.config.to_dict(),  # type: ignore[union-attr,operator]
            "train_config": config.to_dict(), "world_size": fabric.world_size}
    info = dict(extra or {}, preset=preset, seed=config.seed)

    history: list[float] = []
    metric_history: dict[str, list[float]] = {}
    unsaved: list[dict[str, float]] = []                 # history rows since the last save
    if rank == 0:
        append_history(sdir, [], keep_until=start)       # a fresh run starts a fresh one, a resumed one its own

    def save(step: int) -> dict[str, Any] | None:
        report = None
        if rank == 0:
            save_state(sdir, TrainingState(step, model.state_dict(), ema.state_dict(), ema.updates,
                                           optimizer.state_dict(), meta))
            append_history(sdir, unsaved)
            unsaved.clear()
            export = solver.build_model()
            ema.copy_to(export)
            export.preset_name = preset  # type: ignore[assignment]
            report = solver.report(export, metric_history) if step == config.steps else None
            solver.export(export, out, dict(info, step=step) if report is None else dict(info, step=step,
                                                                                          report=report))
        fabric.barrier()
        return report

    report = None
    began = time.perf_counter()
    end = config.steps if stop_after is None else min(config.steps, stop_after)
    steps = range(start, end)
    step = start
    for step in progress(steps, f"train {solver.component}", total=len(steps)) if rank == 0 else steps:
        torch.manual_seed(int(np.random.default_rng([config.seed, rank, step]).integers(2**62)))
        rng = np.random.default_rng([config.seed, rank, step, 1])
        batch = {k: fabric.to_device(v) for k, v in solver.make_batch(rng, config.batch_size).items()}
        step_module.train()
        loss, metrics = step_module(batch)
        optimizer.zero_grad(set_to_none=True)
        fabric.backward(loss)
        if config.grad_clip > 0:
            fabric.clip_gradients(step_module, optimizer, max_norm=config.grad_clip, error_if_nonfinite=False)
        for group in raw_optimizer.param_groups:
            group["lr"] = solver.learning_rate(step, config)
        optimizer.step()
        ema.update(model)
        history.append(float(loss.detach()))
        for k, v in metrics.items():
            metric_history.setdefault(k, []).append(float(v))
        unsaved.append({"step": step + 1, "loss": history[-1], **{k: float(v) for k, v in metrics.items()}})
        if (step + 1) % config.log_every == 0 or step + 1 == end:
            fabric.log_dict({f"train/{k}": float(v) for k, v in metrics.items()}, step=step + 1)
            if rank == 0:
                log_event(f"{solver.component} step", step=step + 1,
                          **{k: round(float(v), 5) for k, v in metrics.items()})
        if (step + 1) % config.save_every == 0 or step + 1 == config.steps:
            report = save(step + 1)
    elapsed = time.perf_counter() - began
    for logger in loggers:
        logger.finalize("success")
    done = len(history)
    return {"component": solver.component, "start": start, "end": start + done, "steps_run": done,
            "seconds": elapsed, "steps_per_second": done / elapsed if elapsed > 0 else 0.0,
            "first_loss": history[0] if history else None,
            "last_loss": float(np.mean(history[-max(1, min(10, done // 5)):])) if history else None,
            "losses": history, "metrics": metric_history, "report": report, "rank": rank,
            "world_size": fabric.world_size}
