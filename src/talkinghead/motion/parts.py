"""The checkpoint record of a per-part motion model (Dimitra's cMDTs, FD2Talk's DiTs).

A paper that splits the face into parts (lips / face / pose, expression / pose) trains one network per part and
records in the checkpoint's ``extra`` what the generator needs to feed it: its ``part``, its ``channels`` within
the dataset's ``dataset_layout``, its ``window_frames`` and its diffusion ``schedule``. :func:`read_part_record`
reads and checks that record once for every such paper; each paper adds its own fields (conditions, variants).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from talkinghead.diffusion import ScheduleConfig
from talkinghead.errors import TalkingHeadError
from talkinghead.sequence import ChannelLayout


@dataclass(frozen=True)
class PartRecord:
    """What a part's checkpoint records: its ``channels`` within the dataset's ``layout``, its window length
    ``window`` (frames), its diffusion ``schedule``, and the whole ``extra`` for the paper's own fields."""

    extra: dict[str, Any]
    layout: ChannelLayout
    channels: tuple[str, ...]
    window: int
    schedule: ScheduleConfig


def read_part_record(folder: Path, component: str, part: str, motion_dim: int,
                     expected: Callable[[ChannelLayout, str], tuple[str, ...]], paper: str, noun: str, retrain: str,
                     own: Callable[[dict[str, Any]], Any] | None = None) -> tuple[PartRecord, Any]:
    """The record of the ``part`` network in ``folder`` (a ``component`` checkpoint with ``motion_dim`` outputs),
    or one sentence: when it holds another part (named as "``paper`` PART ``noun``", e.g. "Dimitra's lips
    model"), lacks its record (``retrain`` says how to make it again), or records channels that
    ``expected(layout, part)`` does not give. ``own(extra)`` reads the paper's own fields under the same check;
    its value is returned alongside the record."""
    from talkinghead.checkpoint import read_checkpoint_info

    extra = read_checkpoint_info(folder, component).extra
    if extra.get("part") != part:
        raise TalkingHeadError(f"{folder} holds {paper} {extra.get('part') or 'unknown'} {noun}, not the {part} "
                               f"{noun}.")
    try:
        layout = ChannelLayout.from_dict(extra["dataset_layout"])
        channels, window = tuple(extra["channels"]), int(extra["window_frames"])
        fields = own(extra) if own is not None else None
    except (KeyError, TypeError, ValueError) as err:
        raise TalkingHeadError(f"{folder} does not record its channels, dataset layout and window length; "
                               f"retrain it with {retrain}.") from err
    if channels != expected(layout, part) or len(channels) != motion_dim or window < 1:
        raise TalkingHeadError(f"The channels or window length recorded in {folder} do not fit its model.")
    schedule = ScheduleConfig.from_dict(extra["schedule"], partial=True) if extra.get("schedule") \
        else ScheduleConfig()
    return PartRecord(extra, layout, channels, window, schedule), fields
