from __future__ import annotations

import librosa
import numpy as np
import pytest
from audio_helpers import SR, chirp_tone

import talkinghead.audio.features as features_module
from talkinghead.audio.features import YIN_FRAME, analyse, extract_features, extract_file_features
from talkinghead.audio.frames import frame_count, frame_times
from talkinghead.audio.preprocess import find_speech_bounds, normalize_gain, remove_dc
from talkinghead.audio.spec import AudioFeatureSpec
from talkinghead.errors import TalkingHeadError
from talkinghead.io.audio import Audio, save_wav

RAW = AudioFeatureSpec.preset("lowlevel", normalization="none")
NORM = AudioFeatureSpec.preset("lowlevel")


@pytest.mark.parametrize("seconds,fps", [(0.013, 25.0), (0.5, 25.0), (1.2345, 25.0), (2.02, 30.0), (1.0, 29.97),
                                         (3.3, 12.5)])
def test_features_have_exactly_frame_count_rows(seconds: float, fps: float) -> None:
    x = np.random.default_rng(1).standard_normal(int(seconds * SR)).astype(np.float32) * 0.1
    spec = AudioFeatureSpec.preset("lowlevel", fps=fps)
    out = extract_features(Audio(x), spec)
    assert out.shape == (frame_count(x.size, fps), spec.dims) == (frame_count(x.size, fps), 122)
    assert np.isfinite(out).all()


def test_logmel_and_mfcc_match_librosa(speechlike: np.ndarray) -> None:
    x = speechlike
    mel = librosa.feature.melspectrogram(y=x, sr=SR, n_fft=512, win_length=400, hop_length=160, center=True,
                                         pad_mode="constant", n_mels=80, fmin=20.0, fmax=8000.0, power=2.0)
    k = mel.shape[1]
    tracks = analyse(np.pad(x, (YIN_FRAME // 2, YIN_FRAME // 2 + 160 * 4)), 0, k, RAW)
    loud = mel.T > 1e-6
    np.testing.assert_allclose(tracks["logmel"][loud], np.log(mel.T[loud]), atol=2e-3)
    mfcc = librosa.feature.mfcc(S=librosa.power_to_db(mel, top_db=None), n_mfcc=13).T
    voiced = slice(50, 170)  # frames inside the tone (no -100 dB floors)
    np.testing.assert_allclose(tracks["mfcc"][voiced], mfcc[voiced], atol=0.05)


def test_yin_f0_tracks_a_moving_pitch() -> None:
    x, f = chirp_tone(2.0, f0=120.0, vibrato=40.0)
    out = extract_features(Audio(x), RAW)
    sl = RAW.slices()
    f0, voiced = out[:, sl["f0"]][:, 0], out[:, sl["voicing"]][:, 0]
    truth = np.interp(frame_times(len(out)), np.arange(x.size) / SR, f)
    inner = slice(2, -2)
    assert (voiced[inner] > 0.99).all()
    err = np.abs(f0[inner] - truth[inner]) / truth[inner]
    assert np.median(err) < 0.01 and err.max() < 0.03
    # The 100 Hz analysis itself (centred frames): within 1 % of the true pitch at each centre.
    k = x.size // 160
    ours = analyse(np.pad(x, (YIN_FRAME // 2, YIN_FRAME // 2 + 160)), 0, k, RAW)["f0"][5:-5, 0]
    np.testing.assert_allclose(ours, f[np.arange(k)[5:-5] * 160], rtol=0.01)


def test_voicing_separates_tone_noise_and_silence(speechlike: np.ndarray) -> None:
    out = extract_features(Audio(speechlike), NORM)
    v = out[:, NORM.slices()["voicing"]][:, 0]
    t = frame_times(len(out))
    assert (v[(t > 0.5) & (t < 1.7)] > 0.9).all()
    assert (v[(t > 1.85) & (t < 2.05)] < 0.1).all()  # noise burst
    assert (v[t < 0.35] == 0).all() and (v[t > 2.2] == 0).all()
    # f0 is relative to the clip's median: ~0 octaves in the tone, exactly 0 when unvoiced
    f0 = out[:, NORM.slices()["f0"]][:, 0]
    assert np.abs(f0[(t > 0.5) & (t < 1.7)]).max() < 0.35
    assert (f0[t < 0.35] == 0).all()


def test_chunked_equals_one_pass(monkeypatch: pytest.MonkeyPatch, speechlike: np.ndarray) -> None:
    whole = extract_features(Audio(speechlike), NORM)
    monkeypatch.setattr(features_module, "CHUNK_SECONDS", 0.137)
    chunked = extract_features(Audio(speechlike), NORM)
    np.testing.assert_allclose(chunked, whole, atol=1e-4)


def test_streaming_from_file_equals_in_memory(tmp_path, speechlike: np.ndarray) -> None:
    path = save_wav(tmp_path / "a.wav", Audio(speechlike))
    from talkinghead.io.audio import load_audio

    mem = extract_features(load_audio(path), NORM)
    streamed = extract_file_features(path, NORM)
    np.testing.assert_allclose(streamed, mem, atol=1e-4)


def test_normalised_features_ignore_gain_dc_and_channel(speechlike: np.ndarray) -> None:
    base = extract_features(Audio(speechlike), NORM)
    quiet_offset = extract_features(Audio(0.05 * speechlike + 0.2), NORM)  # -26 dB and a DC offset
    sl = NORM.slices()
    for kind in ("logmel", "mfcc", "energy", "f0", "voicing"):
        diff = np.abs(quiet_offset[:, sl[kind]] - base[:, sl[kind]])
        assert np.median(diff) < 0.1, kind
    # A microphone that tilts the spectrum (first-order filter): CMVN keeps log-mel close.
    tilted = np.convolve(speechlike, [1.0, 0.6], mode="same").astype(np.float32)
    diff = np.abs(extract_features(Audio(tilted), NORM)[:, sl["logmel"]] - base[:, sl["logmel"]])
    assert np.median(diff) < 0.2


def test_f0_is_speaker_relative() -> None:
    low, _ = chirp_tone(1.5, f0=110.0, vibrato=22.0)
    high, f_high = chirp_tone(1.5, f0=220.0, vibrato=44.0)
    sl = NORM.slices()["f0"]
    a = extract_features(Audio(low), NORM)[:, sl]
    b = extract_features(Audio(high), NORM)[:, sl]
    np.testing.assert_allclose(a[3:-3], b[3:-3], atol=0.02)
    raw = extract_features(Audio(high), RAW)[:, RAW.slices()["f0"]]
    truth = np.interp(frame_times(len(raw)), np.arange(f_high.size) / SR, f_high)
    assert np.median(np.abs(raw[3:-3, 0] - truth[3:-3])) < 2.0


def test_robust_to_noise_and_clipping() -> None:
    x, f = chirp_tone(2.0, f0=140.0, amp=0.3)
    rng = np.random.default_rng(3)
    noisy = x + rng.standard_normal(x.size).astype(np.float32) * 0.02  # about 20 dB SNR
    clipped = np.clip(x * 4, -1, 1)  # heavily clipped
    truth = np.interp(frame_times(frame_count(x.size)), np.arange(x.size) / SR, f)
    for y in (noisy, clipped):
        out = extract_features(Audio(y.astype(np.float32)), RAW)
        f0 = out[:, RAW.slices()["f0"]][:, 0]
        voiced = out[:, RAW.slices()["voicing"]][:, 0] > 0.5
        assert voiced[2:-2].mean() > 0.95
        assert np.median(np.abs(f0[voiced] - truth[voiced]) / truth[voiced]) < 0.02


def test_preprocess_helpers(speechlike: np.ndarray) -> None:
    y = remove_dc(speechlike + 0.3)
    assert abs(float(np.mean(y[SR:]))) < 5e-3
    g = normalize_gain(0.01 * speechlike)
    assert np.max(np.abs(g)) <= 0.99 + 1e-6
    bounds = find_speech_bounds(Audio(speechlike))
    assert abs(bounds.leading_silence - 0.4) < 0.03
    assert abs(bounds.trailing_silence - 0.5) < 0.05


def test_bad_inputs_raise_clear_errors() -> None:
    with pytest.raises(TalkingHeadError, match="empty"):
        extract_features(Audio(np.zeros(0, np.float32)), NORM)
    with pytest.raises(TalkingHeadError, match="Hz"):
        extract_features(Audio(np.zeros(100, np.float32), 22_050), NORM)
    out = extract_features(Audio(np.zeros(SR, np.float32)), NORM)  # digital silence is valid input
    assert out.shape == (25, NORM.dims) and np.isfinite(out).all()


@pytest.mark.parametrize("sample_rate", [8000, 16_000, 22_050])
@pytest.mark.parametrize("n_mels", [13, 26, 40, 80])
@pytest.mark.parametrize("htk", [False, True])
def test_mel_filters_are_librosas_to_the_last_bit(sample_rate: int, n_mels: int, htk: bool) -> None:
    """Our mel filterbank (importing librosa cost every generate call about a second) equals librosa's."""
    import warnings

    from talkinghead.audio.features import N_FFT, _mel_matrix

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # librosa warns about empty bands at 8 kHz with 80 mels
        ref = librosa.filters.mel(sr=sample_rate, n_fft=N_FFT, n_mels=n_mels, fmin=20.0, fmax=sample_rate / 2,
                                  htk=htk, norm=None if htk else "slaney").astype(np.float32)
    np.testing.assert_array_equal(_mel_matrix(sample_rate, n_mels, htk), ref)


def test_the_generate_path_imports_neither_librosa_nor_diffusers_nor_scipy_signal_or_optimize() -> None:
    """Features, the portrait fit, the DreamTalk networks and their DDIM sampling load without librosa (numba),
    diffusers (torch._dynamo), scipy.signal and scipy.optimize: together about 4 s of every CLI call
    (BENCHMARKS.md)."""
    import subprocess
    import sys

    code = ("import sys, numpy as np; from skimage import data; from talkinghead.audio.features import "
            "lowlevel_features; from talkinghead.audio.spec import AudioFeatureSpec; "
            "from talkinghead.generators import Portrait; "
            "import talkinghead.motion.dreamtalk.generator, talkinghead.motion.dreamtalk.denoiser, "
            "talkinghead.motion.dreamtalk.windowed, talkinghead.pipeline; "
            "lowlevel_features([np.zeros(16000, np.float32)], AudioFeatureSpec()); Portrait.fit(data.astronaut()); "
            "print(sorted(m for m in ('librosa', 'numba', 'diffusers', 'torch._dynamo', 'scipy.signal', "
            "'scipy.optimize') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip().splitlines()[-1] == "[]"


def test_periodic_hann_is_scipys_to_the_last_bit() -> None:
    import scipy.signal

    from talkinghead.audio.features import periodic_hann

    for n in (1, 2, 3, 256, 400, 401, 512):
        np.testing.assert_array_equal(periodic_hann(n), scipy.signal.get_window("hann", n, fftbins=True))


@pytest.mark.parametrize("sample_rate", [8000, 16_000, 22_050, 44_100])
def test_dc_filter_is_scipys_butterworth_and_lfilter(sample_rate: int) -> None:
    """Design to the bit; the output within float64 rounding of ``lfilter`` started in its steady state (the
    float32 results differ in at most a few samples by one unit in the last place)."""
    import scipy.signal

    from talkinghead.audio.preprocess import _dc_filter

    b, a = _dc_filter(sample_rate)
    ref_b, ref_a = scipy.signal.butter(1, 20.0 / (sample_rate / 2), btype="highpass")
    np.testing.assert_array_equal(b, ref_b)
    np.testing.assert_array_equal(a, ref_a)
    x = (np.random.default_rng(sample_rate).standard_normal(3 * sample_rate + 77) * 0.1 + 0.3).astype(np.float32)
    ref = scipy.signal.lfilter(ref_b, ref_a, x.astype(np.float64),
                               zi=scipy.signal.lfilter_zi(ref_b, ref_a) * float(x[0]))[0]
    y = remove_dc(x, sample_rate)
    np.testing.assert_allclose(y, ref, rtol=0, atol=1e-6)
    assert np.count_nonzero(y != ref.astype(np.float32)) <= 5


def test_dc_filter_output_does_not_depend_on_how_the_samples_are_split() -> None:
    from talkinghead.audio.preprocess import DC_BLOCK, DCBlocker

    x = (np.random.default_rng(3).standard_normal(10 * DC_BLOCK + 13) * 0.1 - 0.2).astype(np.float32)
    whole = remove_dc(x)
    cuts = np.sort(np.random.default_rng(4).choice(len(x), 30, replace=False))
    for pieces in (np.split(x, cuts), [x[i:i + 1] for i in range(len(x))],
                   [x[i:i + DC_BLOCK] for i in range(0, len(x), DC_BLOCK)], [x[:0], x]):
        blocker = DCBlocker()
        np.testing.assert_array_equal(np.concatenate([blocker(p) for p in pieces]), whole)
