"""Resumable training state without pickle.

A training run with output checkpoint ``OUT`` keeps its state in the sibling folder ``OUT.train/``:

    state/state.safetensors   model/<name>, ema/<name>, optim/<path> tensors
    state/state.json          step, EMA update count, the optimizer state's non-tensor structure, configs
    tb/                       TensorBoard event files
    history.jsonl             every step's loss and metrics (``{"step": k, "loss": ..., name: ...}`` per line),
                              appended at each save, so it always ends at the saved state's step

Optimizer state dicts are nested dicts/lists of tensors and plain values; :func:`flatten` splits them
into a tensor table (safetensors) and a JSON skeleton, :func:`unflatten` puts them back. ``state/`` is
written to a temp folder and renamed into place, so an interruption during a save leaves the previous
state intact.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from talkinghead.errors import TalkingHeadError

STATE_VERSION = 1
_TENSOR = "__tensor__"
HISTORY = "history.jsonl"


def state_dir(out: str | Path) -> Path:
    out = Path(out)
    return out.with_name(out.name + ".train")


def flatten(obj: Any, prefix: str, tensors: dict[str, torch.Tensor]) -> Any:
    """Move tensors of a nested structure into ``tensors``; return a JSON-ready skeleton."""
    if isinstance(obj, torch.Tensor):
        tensors[prefix] = obj.detach().cpu().contiguous()
        return {_TENSOR: prefix}
    if isinstance(obj, dict):
        return {"__dict__": [[flatten(k, f"{prefix}.k{i}", tensors), flatten(v, f"{prefix}.{i}", tensors)]
                             for i, (k, v) in enumerate(obj.items())]}
    if isinstance(obj, list | tuple):
        return {"__list__": [flatten(v, f"{prefix}.{i}", tensors) for i, v in enumerate(obj)],
                "tuple": isinstance(obj, tuple)}
    if obj is None or isinstance(obj, bool | int | float | str):
        return obj
    raise TalkingHeadError(f"Cannot store a {type(obj).__name__} in a training state.")


def unflatten(skeleton: Any, tensors: dict[str, torch.Tensor]) -> Any:
    if isinstance(skeleton, dict):
        if _TENSOR in skeleton:
            return tensors[skeleton[_TENSOR]]
        if "__dict__" in skeleton:
            return {unflatten(k, tensors): unflatten(v, tensors) for k, v in skeleton["__dict__"]}
        if "__list__" in skeleton:
            items = [unflatten(v, tensors) for v in skeleton["__list__"]]
            return tuple(items) if skeleton.get("tuple") else items
    return skeleton


@dataclass
class TrainingState:
    step: int
    model: dict[str, torch.Tensor]
    ema: dict[str, torch.Tensor]
    ema_updates: int
    optimizer: dict[str, Any]
    meta: dict[str, Any] = field(default_factory=dict)


def save_state(directory: str | Path, state: TrainingState) -> Path:
    """Write ``state/`` (tensors + JSON) into ``directory`` atomically (other files kept)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    tensors: dict[str, torch.Tensor] = {}
    for k, v in state.model.items():
        tensors[f"model/{k}"] = v.detach().cpu().contiguous()
    for k, v in state.ema.items():
        tensors[f"ema/{k}"] = v.detach().cpu().contiguous()
    skeleton = flatten(state.optimizer, "optim", tensors)
    meta = {"format": "talkinghead-training-state", "version": STATE_VERSION, "step": state.step,
            "ema_updates": state.ema_updates, "optimizer": skeleton, "meta": state.meta}
    tmp = Path(tempfile.mkdtemp(prefix=".state.", dir=directory))
    try:
        save_file(tensors, str(tmp / "state.safetensors"))
        (tmp / "state.json").write_text(json.dumps(meta) + "\n")
        current, old = directory / "state", directory / "state.old"
        shutil.rmtree(old, ignore_errors=True)
        if current.exists():
            os.replace(current, old)  # a crash from here on leaves state.old, which load_state falls back to
        os.replace(tmp, current)
        shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return directory


def load_state(directory: str | Path) -> TrainingState:
    directory = Path(directory)
    folder = directory / "state" if (directory / "state").exists() else directory / "state.old"
    json_path, tensor_path = folder / "state.json", folder / "state.safetensors"
    if not json_path.exists() or not tensor_path.exists():
        raise TalkingHeadError(f"There is no training state to resume in {directory}; start without --resume.")
    try:
        meta = json.loads(json_path.read_text())
        tensors = load_file(str(tensor_path))
    except (json.JSONDecodeError, SafetensorError, OSError) as err:
        raise TalkingHeadError(f"The training state in {directory} is corrupt ({type(err).__name__}).") from err
    if meta.get("format") != "talkinghead-training-state" or meta.get("version") != STATE_VERSION:
        raise TalkingHeadError(f"{directory} holds a training state from another version of talkinghead.")
    model = {k[len("model/"):]: v for k, v in tensors.items() if k.startswith("model/")}
    ema = {k[len("ema/"):]: v for k, v in tensors.items() if k.startswith("ema/")}
    return TrainingState(meta["step"], model, ema, meta["ema_updates"], unflatten(meta["optimizer"], tensors),
                         meta.get("meta", {}))


def append_history(directory: str | Path, rows: list[dict[str, float]], keep_until: int | None = None) -> None:
    """Append ``rows`` (one dict per step, with ``step``) to ``directory``'s loss history; with ``keep_until``,
    first drop the rows after that step (a resumed run repeats the steps after its last save)."""
    path = Path(directory) / HISTORY
    path.parent.mkdir(parents=True, exist_ok=True)
    if keep_until is not None and path.exists():
        kept = [line for line in path.read_text().splitlines()
                if line.strip() and json.loads(line).get("step", 0) <= keep_until]
        path.write_text("".join(f"{line}\n" for line in kept))
    with path.open("a") as f:
        f.writelines(json.dumps(row) + "\n" for row in rows)


def read_history(directory: str | Path) -> dict[str, list[float]]:
    """A run's loss history: ``{"step": [...], "loss": [...], metric: [...]}`` in step order (the last row of a
    step wins; a metric a step did not log is NaN)."""
    path = Path(directory) / HISTORY
    if not path.exists():
        raise TalkingHeadError(f"{directory} has no loss history ({HISTORY}); runs before 2026-12-02 kept none.")
    rows: dict[int, dict[str, float]] = {}
    for line in path.read_text().splitlines():
        if line.strip():
            row = json.loads(line)
            rows[int(row["step"])] = {k: v for k, v in row.items() if k != "step"}
    return history_columns(rows)


def history_columns(rows: dict[int, dict[str, float]]) -> dict[str, list[float]]:
    """``{step: {name: value}}`` -> ``{"step": [...], name: [...]}`` in step order (NaN where a step lacks a name)."""
    steps = sorted(rows)
    names = sorted({k for row in rows.values() for k in row})
    out: dict[str, list[float]] = {"step": [float(k) for k in steps]}
    for name in names:
        out[name] = [float(rows[k].get(name, float("nan"))) for k in steps]
    return out
