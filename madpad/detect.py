"""``python -m madpad.detect``: morph detection and presentation attack detection.

Subcommands::

    train   train a differential morph detector (or a baseline) from a YAML config
    score   score suspect/live pairs with a trained detector -> id,score,label,species
    tshirt  T-shirt presentation attack detection on images -> id,score,label,species,...

Scores: higher = more likely an attack. Each subcommand has its own ``--help``.
"""

from __future__ import annotations

import importlib
import sys

SUBCOMMANDS = {
    "train": ("madpad.mad.cli", "main_train", "train a differential morph detector from a YAML config"),
    "score": ("madpad.mad.cli", "main_score", "score suspect/live pairs with a trained detector"),
    "tshirt": ("madpad.pad.cli", "main_tshirt", "T-shirt presentation attack detection on images"),
}


def _usage() -> str:
    lines = ["usage: python -m madpad.detect {" + ",".join(SUBCOMMANDS) + "} ...", "", "subcommands:"]
    lines += [f"  {name:<8}{help_}" for name, (_, _, help_) in SUBCOMMANDS.items()]
    return "\n".join(lines)


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(_usage())
        return 0 if argv else 2
    name, rest = argv[0], argv[1:]
    if name not in SUBCOMMANDS:
        import difflib

        close = difflib.get_close_matches(name, list(SUBCOMMANDS), n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        print(f"madpad.detect: error: unknown subcommand {name!r}; choose from {list(SUBCOMMANDS)}.{hint}",
              file=sys.stderr)
        return 2
    module, func, _ = SUBCOMMANDS[name]
    return int(getattr(importlib.import_module(module), func)(rest) or 0)


if __name__ == "__main__":
    sys.exit(main())
