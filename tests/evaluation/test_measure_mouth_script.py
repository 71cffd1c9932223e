"""scripts/measure_mouth.py: choosing portraits and voices by name, checked before any model loads."""

from __future__ import annotations

import pytest

from script_helpers import load_script


@pytest.fixture(scope="module")
def script():
    return load_script("measure_mouth")


@pytest.fixture()
def data(tmp_path):
    for sub, names, suffix in (("faces", ["anna", "ben", "cleo"], ".png"), ("voices", ["v1", "v2"], ".wav")):
        (tmp_path / sub).mkdir()
        for n in names:
            (tmp_path / sub / f"{n}{suffix}").write_bytes(b"")
    return tmp_path


def test_an_unknown_portrait_or_voice_name_is_one_sentence_and_exit_2(script, data, tmp_path, capsys):
    out = tmp_path / "out"
    assert script.main(["--data", str(data), "--portrait", "anna", "--portrait", "zoe", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("No portrait named zoe under") and err.count("\n") == 0
    assert script.main(["--data", str(data), "--voice", "v3", "--out", str(out)]) == 2
    assert capsys.readouterr().err.startswith("No voice named v3 under")
    # a name cut away by --portraits counts as unknown: the two selections compose, they do not override
    assert script.main(["--data", str(data), "--portraits", "1", "--portrait", "ben", "--out", str(out)]) == 2
    assert not out.exists()                                    # nothing written before the check


def test_choose_keeps_the_named_files_within_the_first_n(script, tmp_path):
    files = [tmp_path / f"{n}.wav" for n in ("a", "b", "c", "d")]
    assert script.choose(files, None, None, "voice") == files
    assert script.choose(files, 2, None, "voice") == files[:2]
    assert script.choose(files, None, ["d", "b"], "voice") == [files[1], files[3]]
    with pytest.raises(LookupError, match="No voice named c"):
        script.choose(files, 2, ["a", "c"], "voice")
