"""Training: a registry of trainable components, a Fabric training loop with EMA, TensorBoard logging,
progress and resumable checkpoints, and the ``train`` command. The solvers live with their papers
(e.g. :mod:`talkinghead.motion.dreamtalk.training`).

- :mod:`.data` in-memory motion/audio corpus read from a dataset directory, feature selection, statistics;
- :mod:`.ema` exponential moving average of weights;
- :mod:`.state` resumable training state (safetensors + JSON, no pickle);
- :mod:`.loop` the Lightning Fabric loop (``--devices N --num-nodes M --strategy ddp``);
- :mod:`.registry` ``paper.component`` -> spec (aliases, options, lazy builder), torch-free;
- :mod:`.run` ``train(name, ...)``: build a registered component's solver and run the loop;
- :mod:`.cli` ``talkinghead train COMPONENT``: one sub-command per registered component.
"""
