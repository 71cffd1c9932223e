"""The registry of trainable components: every name and alias resolves to a builder, unknown names and
foreign options fail in one sentence, the `train` parser has one sub-command per component."""

from __future__ import annotations

import subprocess
import sys

import pytest

from talkinghead.errors import TalkingHeadError
from talkinghead.training.registry import (
    PAPERS,
    check_options,
    choices,
    command_line,
    components,
    get_component,
)


def test_every_name_and_alias_resolves_to_its_spec_and_builder() -> None:
    table = components()
    assert {"dreamtalk.lip_expert", "dreamtalk.denoiser", "dreamtalk.style_predictor", "judge.sync"} <= set(table)
    assert len(PAPERS) >= 2
    for name, spec in table.items():
        assert get_component(name) is spec and "." in name
        for alias in spec.aliases:
            assert get_component(alias) is spec
        assert callable(spec.load_builder())
    assert get_component("lip-expert").name == "dreamtalk.lip_expert"
    assert get_component("denoiser").name == "dreamtalk.denoiser"
    assert get_component("style-predictor").name == "dreamtalk.style_predictor"
    assert len(choices()) == len(set(choices()))  # no name or alias is taken twice


def test_unknown_names_and_options_are_one_sentence_errors() -> None:
    with pytest.raises(TalkingHeadError, match="Unknown training component 'dreamtalk.renderer'; choose one of "
                                               "dreamtalk.lip_expert, lip-expert"):
        get_component("dreamtalk.renderer")
    with pytest.raises(TalkingHeadError, match="--unconditional applies to lip-expert, not denoiser"):
        check_options("denoiser", {"unconditional": True})
    with pytest.raises(TalkingHeadError, match="No training component has the option --warp-speed"):
        check_options("judge.sync", {"warp_speed": 9})
    assert check_options("style-predictor", {"regression": True}) == {
        "denoiser": None, "regression": True, "no_speaker_info": False, "same_clip_identity": False}


def test_recorded_command_names_set_flags_and_changed_values_only() -> None:
    assert command_line("style-predictor", "cpu", {"denoiser": "d", "no_speaker_info": True}) == \
        "talkinghead train style-predictor --preset cpu --no-speaker-info"
    assert command_line("judge.sync", "tiny", {"domain": "video", "max_clips": 4}) == \
        "talkinghead train judge.sync --preset tiny --domain video --max-clips 4"
    assert command_line("judge.sync", "tiny", {"domain": "motion"}) == "talkinghead train judge.sync --preset tiny"


def test_the_train_parser_dispatches_per_component_without_torch() -> None:
    code = ("import sys; from talkinghead.cli import build_parser; p = build_parser(); "
            "a = p.parse_args(['train', 'denoiser', '--data', 'D', '--out', 'O', '--regression']); "
            "print(a.component, a.regression, a.lip_expert, a.option_names, 'torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["denoiser", "True", "None", "('lip_expert',", "'regression')", "False"]



def test_integer_options_take_their_own_range_on_the_command_line() -> None:
    """A count refuses 0; an option declared from 0 takes it; a percentage refuses 101 (one sentence, exit 2)."""
    code = ("from talkinghead.cli import build_parser; p = build_parser(); "
            "a = p.parse_args(['train', 'dimitra.lips', '--data', 'D', '--out', 'O', '--audio-context', '0', "
            "'--phoneme-noise-percent', '0']); print(a.audio_context, a.phoneme_noise_percent)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["0", "0"]
    for component, flags, message in (("dimitra.lips", ("--phoneme-noise-percent", "101"), "between 0 and 100"),
                                      ("dimitra.lips", ("--audio-context", "-1"), "at least 0"),
                                      ("judge.sync", ("--max-clips", "0"), "at least 1")):
        proc = subprocess.run([sys.executable, "-m", "talkinghead", "train", component, "--data", "D", "--out", "O",
                               *flags], capture_output=True, text=True)
        assert proc.returncode == 2, proc.stderr
        assert message in proc.stderr and "Traceback" not in proc.stderr
