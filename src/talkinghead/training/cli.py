"""``talkinghead train COMPONENT --data DIR --out CKPT --preset cpu|tiny|paper`` (parses and dispatches).

One sub-command per component of :mod:`talkinghead.training.registry` (its name, e.g.
``dreamtalk.denoiser``, and its aliases, e.g. ``denoiser``): the options every component shares, then
the component's own options from its spec. Building the parser imports no torch (``talkinghead --help``).
"""

from __future__ import annotations

import argparse
from typing import Any

from talkinghead import options
from talkinghead.training.registry import ComponentSpec, Option, components

COMMON = "options of every component"


def register(sub: Any) -> None:
    p = sub.add_parser("train", help="train a model component on a dataset (talkinghead train --help lists them)",
                       description="Train one component; `talkinghead train NAME --help` shows its options.")
    names = p.add_subparsers(dest="component", metavar="COMPONENT", required=True)
    for spec in components().values():
        _add_component(names, spec)


def _add_component(names: Any, spec: ComponentSpec) -> None:
    c = names.add_parser(spec.name, aliases=list(spec.aliases), help=spec.help, description=spec.help)
    g = c.add_argument_group(COMMON)
    g.add_argument("--data", required=True, help="dataset directory (talkinghead format)")
    g.add_argument("--out", "-o", required=True, type=options.OUTPUT_FOLDER,
                   help="checkpoint directory to write (state goes to OUT.train/)")
    g.add_argument("--preset", default="cpu", choices=("tiny", "cpu", "paper"))
    g.add_argument("--steps", type=options.COUNT, help="total optimizer steps (default: the preset's)")
    g.add_argument("--batch-size", type=options.COUNT, help="batch size per process (default: the preset's)")
    g.add_argument("--seed", type=options.SEED)
    g.add_argument("--features", nargs="+", default=(), help="audio feature names to use (default: automatic)")
    g.add_argument("--devices", type=options.COUNT, default=1)
    g.add_argument("--num-nodes", type=options.COUNT, default=1)
    g.add_argument("--strategy", default="auto", choices=options.STRATEGIES, metavar="STRATEGY",
                   help=f"Lightning Fabric's: {', '.join(options.STRATEGIES)}")
    g.add_argument("--accelerator", default="cpu", type=options.ACCELERATOR,
                   help=f"{', '.join(options.ACCELERATORS)} (one this machine has)")
    g.add_argument("--resume", action="store_true", help="continue from OUT.train/ after an interruption")
    groups: dict[str, Any] = {}
    for option in spec.options:
        group = groups.get(option.group)
        if group is None:
            group = groups[option.group] = c.add_argument_group(option.group or f"options of {spec.name}")
        _add_option(group, option)
    c.set_defaults(func=run, option_names=tuple(o.name for o in spec.options))


def _add_option(group: Any, option: Option) -> None:
    if option.kind == "flag":
        group.add_argument(option.flag, action="store_true", help=option.help)
    elif option.kind == "int":
        group.add_argument(option.flag, type=options.integer(option.low, option.high), default=option.default,
                           metavar=option.metavar, help=option.help)
    elif option.kind == "choice":
        group.add_argument(option.flag, choices=option.choices, default=option.default, help=option.help)
    else:
        group.add_argument(option.flag, default=option.default, metavar=option.metavar, help=option.help)


def run(args: argparse.Namespace) -> int:
    from talkinghead.training.run import train

    chosen = {name: getattr(args, name) for name in args.option_names}
    summary = train(args.component, args.data, args.out, args.preset, steps=args.steps, batch_size=args.batch_size,
                    seed=args.seed, features=tuple(args.features), devices=args.devices, num_nodes=args.num_nodes,
                    strategy=args.strategy, accelerator=args.accelerator, resume=args.resume, **chosen)
    if summary["rank"] == 0:
        print(f"trained {summary['component']}: steps {summary['start']}->{summary['end']}, "
              f"loss {summary['first_loss']:.4f} -> {summary['last_loss']:.4f}, "
              f"{summary['steps_per_second']:.2f} steps/s; checkpoint {args.out}")
    return 0
