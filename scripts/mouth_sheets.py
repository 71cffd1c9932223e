"""Mouth contact sheets (issue 12): how the default pipeline's mouth looks on real portraits.

For every portrait in a folder, speech-driven motion is generated with the default pipeline
(``api.generate_motion``, models loaded once) and rendered with the default renderer (paste-back, the
whole photo, as ``generate`` writes it). One PNG per portrait goes to ``OUT/NAME.png``: the portrait
itself, then three frames, each a face crop with a mouth close-up under it:

- **open**: the frame of largest inner-lip opening;
- **closure**: a bilabial closure, the middle of a p/b/m phone from a pocketsphinx alignment of the
  transcript (``--transcript``), else the frame of smallest opening inside speech;
- **pause**: the middle of the longest silence (alignment ``SIL``, else the quietest stretch).

The openings are measured on the rendered frame's mesh (inner-lip gap over mouth width), so the sheet
picks frames the same way for every portrait. Real data is read, never copied.

Usage: ``.venv/bin/python scripts/mouth_sheets.py [--faces DIR] [--voice WAV] [--out out/mouth/sheets]``.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from talkinghead import api
from talkinghead.generators import Portrait
from talkinghead.io.audio import load_audio
from talkinghead.io.image import load_image
from talkinghead.render.mesh import MOUTH_LOWER, MOUTH_UPPER, face_oval
from talkinghead.render.synthesis import chain_gaps
from talkinghead.render.warp_renderer import WarpFrameRenderer

REALDATA = Path.home() / ".cache" / "talkinghead-realdata"
VOICE = REALDATA / "voices" / "en_m_arctic_a0007.wav"
TRANSCRIPT = "And you always want to see it in the superlative degree."
FACE_PX = 200  # face crop height on the sheet
MOUTH_PX = 100  # mouth close-up height
BILABIALS = {"P", "B", "M"}


def opening(vertices: np.ndarray) -> float:
    """Largest inner-lip gap over the mouth width (one frame's mesh)."""
    up = vertices[list(MOUTH_UPPER)]
    width = float(np.linalg.norm(up[-1] - up[0]))
    return float(chain_gaps(vertices, MOUTH_UPPER, MOUTH_LOWER).max() / max(width, 1e-6))


def speech_frames(samples: np.ndarray, rate: int, fps: float, n: int) -> np.ndarray:
    """Per-frame RMS in dB over the clip's loudest frame ``[n]``."""
    hop = rate / fps
    rms = np.array([np.sqrt(np.mean(samples[int(i * hop):int((i + 1) * hop)] ** 2) + 1e-12) for i in range(n)])
    return 20 * np.log10(rms / rms.max())


def pick_frames(openings: np.ndarray, level_db: np.ndarray, fps: float,
                phones: list[tuple[str, float, float]] | None) -> dict[str, int]:
    n = len(openings)
    speech = level_db > -30.0
    picks = {"open": int(np.argmax(openings))}
    closure = None
    if phones:
        bil = [(s, e) for label, s, e in phones if label in BILABIALS]
        if bil:  # the bilabial frame (middle third of the phone) with the smallest opening
            cands = [f for s, e in bil for f in range(int(s * fps + (e - s) * fps / 3),
                                                       int(e * fps - (e - s) * fps / 3) + 1) if 0 <= f < n]
            if cands:
                closure = min(cands, key=lambda f: openings[f])
    if closure is None:
        idx = np.flatnonzero(speech)
        closure = int(idx[np.argmin(openings[idx])]) if len(idx) else int(np.argmin(openings))
    picks["closure"] = closure
    pause = None
    if phones:
        sil = [(e - s, s, e) for label, s, e in phones if label == "SIL"]
        if sil:
            _, s, e = max(sil)
            pause = min(int(round(0.5 * (s + e) * fps)), n - 1)
    if pause is None:
        k = max(3, int(0.3 * fps))
        smooth = np.convolve(level_db, np.ones(k) / k, mode="same")
        pause = int(np.argmin(smooth))
    picks["pause"] = pause
    return picks


def face_crop(image: np.ndarray, vertices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A square face crop ``FACE_PX`` tall and a mouth close-up ``MOUTH_PX`` tall, same width."""
    oval = vertices[list(face_oval())]
    lo, hi = oval.min(0), oval.max(0)
    centre, side = 0.5 * (lo + hi), 1.15 * float(max(hi - lo))
    k = FACE_PX / side
    m = np.array([[k, 0, FACE_PX / 2 - k * centre[0]], [0, k, FACE_PX / 2 - k * centre[1]]])
    face = cv2.warpAffine(image, m, (FACE_PX, FACE_PX), flags=cv2.INTER_AREA, borderMode=cv2.BORDER_REPLICATE)
    mouth = vertices[list(MOUTH_UPPER) + list(MOUTH_LOWER)]
    mc = 0.5 * (mouth.min(0) + mouth.max(0))
    width = float(np.linalg.norm(vertices[MOUTH_UPPER[-1]] - vertices[MOUTH_UPPER[0]]))
    mk = FACE_PX / (2.2 * width)
    mm = np.array([[mk, 0, FACE_PX / 2 - mk * mc[0]], [0, mk, MOUTH_PX / 2 - mk * mc[1]]])
    close = cv2.warpAffine(image, mm, (FACE_PX, MOUTH_PX), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE)
    return face, close


def label(tile: np.ndarray, text: str) -> np.ndarray:
    tile = tile.copy()
    cv2.putText(tile, text, (4, 14), cv2.FONT_HERSHEY_SIMPLEX, 0.42, (0, 0, 0), 3, cv2.LINE_AA)
    cv2.putText(tile, text, (4, 14), cv2.FONT_HERSHEY_SIMPLEX, 0.42, (255, 255, 255), 1, cv2.LINE_AA)
    return tile


def sheet(path: Path, voice: Path, models: object, phones: list[tuple[str, float, float]] | None,
          size: int) -> tuple[np.ndarray, dict[str, int]]:
    image = load_image(path)
    result = api.generate_motion(image, str(voice), models=models)
    motion = result.motion
    assert motion is not None
    portrait = Portrait.fit(image)
    # the default renderer's own path (it may compose the motion with the portrait's expression): one
    # pass records each frame's mesh without drawing, then only the chosen frames are drawn
    frame_renderer = WarpFrameRenderer()
    renderer = frame_renderer.renderer_for(portrait, size)
    draw = renderer.render_vertices
    meshes: list[np.ndarray] = []
    renderer.render_vertices = meshes.append  # type: ignore[assignment,method-assign]
    frame_renderer.renderer_for = lambda *_: renderer  # type: ignore[method-assign]
    for _ in frame_renderer.render(portrait, motion, size):
        pass
    renderer.render_vertices = draw  # type: ignore[method-assign]
    vertices = np.stack(meshes)
    openings = np.array([opening(v) for v in vertices])
    audio = result.audio
    level = speech_frames(np.asarray(audio.samples, np.float64).reshape(-1), audio.sample_rate, motion.fps,
                          len(vertices))
    picks = pick_frames(openings, level, motion.fps, phones)
    frames = {f: draw(vertices[f]) for f in picks.values()}
    src_face, src_mouth = face_crop(image, renderer.source)
    columns = [np.vstack([label(src_face, "portrait"), src_mouth])]
    for name, f in picks.items():
        face, mouth = face_crop(frames[f], vertices[f])
        columns.append(np.vstack([label(face, f"{name} f{f} {openings[f]:.2f}"), mouth]))
    gap = np.full((FACE_PX + MOUTH_PX, 4, 3), 255, np.uint8)
    row = [columns[0]]
    for c in columns[1:]:
        row += [gap, c]
    return np.hstack(row), picks


def alignment(voice: Path, transcript: str | None) -> list[tuple[str, float, float]] | None:
    if not transcript:
        return None
    try:
        from talkinghead.audio.align import align

        result = align(load_audio(voice), transcript)
    except Exception as err:  # noqa: BLE001 - the alignment is optional; fall back to the speech level
        print(f"alignment failed ({err}); picking frames from the speech level")
        return None
    return [(p.label, p.start, p.end) for p in result.phones]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--faces", type=Path, default=REALDATA / "faces")
    parser.add_argument("--voice", type=Path, default=VOICE)
    parser.add_argument("--transcript", default=TRANSCRIPT, help="the voice's words ('' for none)")
    parser.add_argument("--out", type=Path, default=Path("out/mouth/sheets"))
    parser.add_argument("--size", type=int, default=256, help="render crop size (256 or 512)")
    parser.add_argument("--only", nargs="*", help="portrait names (stems) to do, default all")
    args = parser.parse_args()
    faces = sorted(p for p in args.faces.glob("*") if p.suffix.lower() in {".png", ".jpg", ".jpeg"})
    if args.only:
        faces = [p for p in faces if p.stem in args.only]
    if not faces:
        raise SystemExit(f"No portraits in {args.faces}.")
    args.out.mkdir(parents=True, exist_ok=True)
    phones = alignment(args.voice, args.transcript if args.voice == VOICE or args.transcript != TRANSCRIPT
                       else "")
    models = api.load_models()
    for path in faces:
        start = time.perf_counter()
        try:
            picture, picks = sheet(path, args.voice, models, phones, args.size)
        except Exception as err:  # noqa: BLE001 - one refused portrait should not stop the others
            print(f"{path.stem}: skipped ({err})")
            continue
        out = args.out / f"{path.stem}.png"
        # a 256-colour palette keeps each sheet near 100 KB (they are committed)
        Image.fromarray(picture).quantize(256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE).save(
            out, optimize=True)
        print(f"{path.stem}: {picks} -> {out} ({out.stat().st_size // 1024} KB, {time.perf_counter() - start:.1f} s)")


if __name__ == "__main__":
    main()
