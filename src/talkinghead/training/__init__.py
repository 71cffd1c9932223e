"""Training: one solver per trainable component, a Fabric training loop with EMA, TensorBoard logging,
progress and resumable checkpoints, and the ``train`` command.

- :mod:`.data` in-memory motion/audio corpus read from a dataset directory, feature selection, statistics;
- :mod:`.ema` exponential moving average of weights;
- :mod:`.state` resumable training state (safetensors + JSON, no pickle);
- :mod:`.loop` the Lightning Fabric loop (``--devices N --num-nodes M --strategy ddp``);
- :mod:`.dreamtalk` solvers for the DreamTalk lip expert, denoiser and style predictor.
"""
