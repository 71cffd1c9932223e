"""The web page (Gradio Blocks, "talkinghead"), mounted at ``/`` beside the API.

A portrait (upload or webcam), speech (an upload, the microphone, or text for the built-in TTS) and optionally its
transcript (Dimitra reads it; the other models ignore it), the model and renderer, an emotion and its intensity or
a style reference video, head motion, steps, seed and size; Generate. The page submits through the server's own
job queue (:class:`~talkinghead.serve.jobs.JobQueue`), so its requests meet the same limits, checks and busy answer
as the API's, and it follows the job's stage and progress until the video and the motion files (``motion.npz``,
``motion.csv``) come back. Refusals and failures show as one sentence, in the status
line and as Gradio's error. One example (scikit-image's astronaut saying :data:`talkinghead.api.DEMO_TEXT`) runs with
one click. The page links to the live page (``/live``).

Element ids (for tests and scripts): ``portrait``, ``speech-audio``, ``speech-text``, ``transcript``, ``model``,
``renderer``,
``emotion``, ``intensity``, ``style-video``, ``head-motion``, ``steps``, ``seed``, ``size``, ``cfg-scale``,
``generate``, ``video``, ``motion-files``, ``status``.

Gradio keeps its uploads and the copies of the outputs it serves in ``GRADIO_TEMP_DIR``, which is set to ``page/``
in the server's folder, so they are removed with it at shutdown.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

from talkinghead.errors import TalkingHeadError
from talkinghead.serve.jobs import JobQueue, JobStatus
from talkinghead.serve.uploads import Submission, UploadLimits, accept

TITLE = "talkinghead"
LIVE_LINK = "[Live: speak and watch the face answer](/live)"
POLL_S = 0.25
STAGES = {"queued": "Waiting", "loading": "Loading", "motion": "Generating the motion", "frames": "Generating frames",
          "rendering": "Rendering", "encoding": "Encoding", "done": "Done", "failed": "Failed"}

Outputs = tuple[Any, Any, str]


def describe(status: JobStatus) -> str:
    """The status line of a job that is not finished: ``Waiting (2 ahead)``, ``Rendering 53%``."""
    if status.state == "queued":
        return f"Waiting ({status.position - 1} ahead)" if status.position > 1 else "Waiting (next)"
    return f"{STAGES.get(status.stage, status.stage.capitalize())} {status.progress:.0%}"


def example_image(root: Path) -> Path:
    """scikit-image's astronaut, saved once into the server's folder."""
    from skimage import data

    from talkinghead.io.image import save_image

    path = root / "examples" / "astronaut.png"
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        save_image(path, data.astronaut())
    return path


class PageJobs:
    """The page's side of the queue: a form's values in, a job submitted, its progress out."""

    def __init__(self, engine: Any, jobs: JobQueue, limits: UploadLimits) -> None:
        self.engine, self.jobs, self.limits = engine, jobs, limits

    def submit(self, files: dict[str, str | None], fields: dict[str, Any]) -> str:
        """Submit the page's form (``files``: paths Gradio saved; ``fields``: widget values, None or "" for unset)."""
        with contextlib.ExitStack() as stack:
            streams: dict[str, BinaryIO] = {name: stack.enter_context(open(path, "rb"))
                                            for name, path in files.items() if path}
            texts = {name: str(value) for name, value in fields.items() if value is not None and str(value) != ""}
            submission = Submission(streams, texts)
            return self.jobs.submit(lambda folder: accept(submission, folder, self.limits, self.engine))

    def run(self, portrait: str | None, speech_audio: str | None, speech_text: str | None, model: str | None,
            renderer: str | None, emotion: str | None, intensity: float | None, style_video: str | None,
            head_motion: float | None, steps: float | None, seed: float | None, size: int | None,
            cfg_scale: float | None, transcript: str | None = None, progress: Any = None) -> Iterator[Outputs]:
        """Generate: yields (video, motion files, status line) as the job goes; a refusal or failure is one sentence
        in the status line, then Gradio's error."""
        import gradio as gr

        fields = {"text": speech_text, "model": model, "renderer": renderer, "emotion": emotion,
                  "intensity": int(intensity) if emotion and intensity else None, "head_motion": head_motion,
                  "steps": int(steps) if steps else None, "seed": None if seed is None else int(seed), "size": size,
                  "cfg_scale": cfg_scale, "transcript": transcript}
        if portrait is None:
            yield None, None, "Refused: add a portrait first."
            raise gr.Error("Add a portrait first (upload a photo or take one with the webcam).")
        try:
            job_id = self.submit({"image": portrait, "audio": speech_audio, "style_video": style_video}, fields)
        except TalkingHeadError as err:
            yield None, None, f"Refused: {err}"
            raise gr.Error(str(err)) from None
        shown = ""
        while True:
            try:
                status = self.jobs.status(job_id)
            except TalkingHeadError as err:
                yield None, None, f"Failed: {err}"
                raise gr.Error(str(err)) from None
            if status.state == "done":
                out = status.outcome
                folder = self.jobs.output(job_id, out.files[0]).parent
                motion = [str(folder / name) for name in out.files[1:]] or None
                yield (str(folder / out.files[0]), motion,
                       f"Done: {out.num_frames} frames ({out.seconds:.1f} s of speech, style: {out.style_source}) "
                       f"in {status.seconds:.1f} s.")
                return
            if status.state == "failed":
                message = status.error or "The job failed."
                yield None, None, f"Failed: {message}"
                raise gr.Error(message)
            line = describe(status)
            if progress is not None:
                progress(status.progress, desc=line)
            if line != shown:
                shown = line
                yield gr.skip(), gr.skip(), line
            time.sleep(POLL_S)


def build_page(engine: Any, jobs: JobQueue, limits: UploadLimits) -> Any:
    """The page's ``gr.Blocks``."""
    import gradio as gr

    from talkinghead.api import DEMO_TEXT
    from talkinghead.audio.tts import EMOTIONS

    page = PageJobs(engine, jobs, limits)
    generators = [r["name"] for r in engine.models if r["kind"] in ("motion", "video") and r["ready"]]
    if engine.generator.name not in generators:
        generators.insert(0, engine.generator.name)
    renderers = [("the model's own", "")] + [(r["name"], r["name"]) for r in engine.models if r["kind"] == "renderer"]

    def generate(portrait: str | None, speech_audio: str | None, speech_text: str | None, model: str | None,
                 renderer: str | None, emotion: str | None, intensity: float | None, style_video: str | None,
                 head_motion: float | None, steps: float | None, seed: float | None, size: int | None,
                 cfg_scale: float | None, transcript: str | None,
                 progress: Any = gr.Progress()) -> Iterator[Outputs]:
        yield from page.run(portrait, speech_audio, speech_text, model, renderer, emotion, intensity, style_video,
                            head_motion, steps, seed, size, cfg_scale, transcript, progress)

    def example(portrait: str | None, speech_text: str | None, progress: Any = gr.Progress()) -> Iterator[Outputs]:
        yield from page.run(portrait, None, speech_text, None, None, None, None, None, None, None, None, None, None,
                            None, progress)

    with gr.Blocks(title=TITLE, analytics_enabled=False) as blocks:
        gr.Markdown(f"# {TITLE}\nA portrait and speech make a talking-head video. {LIVE_LINK}")
        with gr.Row():
            with gr.Column():
                portrait = gr.Image(label="Portrait", type="filepath", sources=["upload", "webcam"],
                                    image_mode=None, format="png", elem_id="portrait")  # the file as sent
                speech_audio = gr.Audio(label="Speech (upload or record)", type="filepath",
                                        sources=["upload", "microphone"], elem_id="speech-audio")
                speech_text = gr.Textbox(label="…or text to speak", lines=2, max_length=limits.text_chars,
                                         elem_id="speech-text")
                transcript = gr.Textbox(label="Transcript of the uploaded speech (optional; Dimitra reads it)",
                                        lines=1, max_length=limits.text_chars, elem_id="transcript")
                with gr.Row():
                    model = gr.Dropdown(generators, value=engine.generator.name, label="Model", elem_id="model")
                    renderer = gr.Dropdown(renderers, value="", label="Renderer", elem_id="renderer")
                with gr.Row():
                    emotion = gr.Dropdown([("from the speech and portrait", ""), *EMOTIONS], value="",
                                          label="Emotion", elem_id="emotion")
                    intensity = gr.Slider(1, 3, value=2, step=1, label="Intensity", elem_id="intensity")
                style_video = gr.File(label="Style / emotion reference video (optional)", type="filepath",
                                      elem_id="style-video")
                with gr.Accordion("More", open=False):
                    head_motion = gr.Slider(0, 2, value=1, step=0.1, label="Head motion (0 = still)",
                                            elem_id="head-motion")
                    steps = gr.Slider(0, 50, value=0, step=1, label="Steps (0 = the model's default)",
                                      elem_id="steps")
                    seed = gr.Number(value=0, precision=0, minimum=0, label="Seed", elem_id="seed")
                    size = gr.Radio([256, 512], value=256, label="Face size", elem_id="size")
                    cfg_scale = gr.Number(value=None, minimum=0, maximum=20,
                                          label="Guidance scale (empty = the model's)", elem_id="cfg-scale")
                button = gr.Button("Generate", variant="primary", elem_id="generate")
            with gr.Column():
                status = gr.Textbox(label="Status", interactive=False, elem_id="status")
                video = gr.Video(label="Video", elem_id="video")
                files = gr.File(label="Motion (npz, ARKit csv)", file_count="multiple", elem_id="motion-files")
        inputs = [portrait, speech_audio, speech_text, model, renderer, emotion, intensity, style_video, head_motion,
                  steps, seed, size, cfg_scale, transcript]
        outputs = [video, files, status]
        button.click(generate, inputs, outputs, concurrency_limit=None, api_name="generate")
        gr.Examples([[str(example_image(jobs.root)), DEMO_TEXT]], [portrait, speech_text], outputs, fn=example,
                    run_on_click=True, cache_examples=False, label="Example: the astronaut says a sentence")
    return blocks


def mount_page(app: Any, engine: Any, jobs: JobQueue, limits: UploadLimits) -> Any:
    """``app`` with the page mounted at ``/`` (Gradio's files kept in the server's folder)."""
    os.environ["GRADIO_TEMP_DIR"] = str(jobs.root / "page")
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    import gradio as gr

    return gr.mount_gradio_app(app, build_page(engine, jobs, limits), path="/",
                               max_file_size=int(limits.largest_file_mb * 1024 * 1024),
                               allowed_paths=[str(jobs.root / "examples")])
