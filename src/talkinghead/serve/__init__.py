"""``talkinghead serve``: one process that loads the models once and serves a web page and an HTTP API.

- :mod:`~talkinghead.serve.engine`: the warm models (``Engine.generator``, ``Engine.renderer``) and one job run
  through the generate pipeline, with its progress and time limit;
- :mod:`~talkinghead.serve.jobs`: the bounded job queue, its worker threads and the server's own folder;
- :mod:`~talkinghead.serve.uploads`: the limits and the checks of what a client sends (files judged by content,
  stored under server-made names);
- :mod:`~talkinghead.serve.http`: the FastAPI app (``/api/v1``), its one-sentence errors, and running it (uvicorn);
- :mod:`~talkinghead.serve.page`: the Gradio page at ``/``, submitting through the same queue;
- :mod:`~talkinghead.serve.cli`: the command.

See docs/serve.md.
"""
