"""The talking-face video dataset (issue 14): face crops with per-frame labels, for the learned renderers
(FD2Talk's frame generator) and the video generators (EMO, DICE-Talk).

- :mod:`.format`: the directory format (manifest, ``clips/<id>.mp4`` + ``clips/<id>.npz``, schema version),
  :class:`~.format.VideoDataset` and :class:`~.format.VideoDatasetWriter`;
- :mod:`.frames`: H.264 storage, crops that follow the head, face boxes, head rotation speed;
- :mod:`.portraits`: portraits from a folder, split by identity, fitted once;
- :mod:`.build`: ``video-corpus``, the motion corpus rendered on many portraits with the warp renderer;
- :mod:`.prepare`: ``video-prepare``, real videos (with or without audio) tracked and cropped;
- :mod:`.loader`: samples for each model (frame pairs, motion + target windows with audio, same-emotion
  references of another identity);
- :mod:`.info`: summary, preview and contact sheets.
"""
