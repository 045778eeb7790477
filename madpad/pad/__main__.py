"""``python -m madpad.pad {synth,fit-scorer,tshirt}``: T-shirt PAD tools."""

from __future__ import annotations

import sys


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    cmds = {"synth": "synthetic T-shirt attack set from upper-body images",
            "fit-scorer": "train the learned scorer from a labelled scores CSV",
            "tshirt": "score images (same as python -m madpad.detect tshirt)",
            "iapmr": "face recognition vulnerability (IAPMR) of a synthetic set against the printed subjects"}
    if not argv or argv[0] in ("-h", "--help"):
        print("usage: python -m madpad.pad {" + ",".join(cmds) + "} ...\n\n" +
              "\n".join(f"  {k:<11}{v}" for k, v in cmds.items()))
        return 0 if argv else 2
    name, rest = argv[0], argv[1:]
    if name == "synth":
        from madpad.pad.synth import main as fn
    elif name == "fit-scorer":
        from madpad.pad.cli import main_fit_scorer as fn
    elif name == "iapmr":
        from madpad.pad.iapmr import main as fn
    elif name == "tshirt":
        from madpad.pad.cli import main_tshirt as fn
    else:
        print(f"madpad.pad: error: unknown subcommand {name!r}; choose from {list(cmds)}", file=sys.stderr)
        return 2
    return int(fn(rest) or 0)


if __name__ == "__main__":
    sys.exit(main())
