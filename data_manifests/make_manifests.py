"""Regenerate the generated manifests in data_manifests/ (and the bundled sample's images.csv).

    python data_manifests/make_manifests.py [--shared DIR]

``--shared`` (default: $MADPAD_SHARED, else ../shared next to the repository) is the shared
folder holding data/frll and data/frll_canada. Manifests are written with paths relative to
each dataset root, so a user points them at their own copy with ``root=`` / ``--root``.
Datasets that are absent are skipped with a message.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main(argv=None) -> int:
    from madpad.data import load_images, write_images
    from madpad.data.frll import frll_canada_images, frll_images
    from madpad.data.sample import sample_root

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default_shared = os.environ.get("MADPAD_SHARED") or str(HERE.parent.parent / "shared")
    ap.add_argument("--shared", default=default_shared, help="shared folder with data/frll (default: %(default)s)")
    args = ap.parse_args(argv)
    shared = Path(args.shared)

    jobs = [
        ("sample_frll24_images.csv", lambda: frll_images(sample_root(), source="frll"), sample_root()),
        ("frll_images.csv", lambda: frll_images(shared / "data" / "frll"), shared / "data" / "frll"),
        ("frll_canada_images.csv", lambda: frll_canada_images(shared / "data" / "frll_canada"),
         shared / "data" / "frll_canada"),
    ]
    for name, build, root in jobs:
        if not Path(root).is_dir():
            print(f"skip {name}: {root} not found", file=sys.stderr)
            continue
        rows = build()
        out = HERE / name
        write_images(out, rows)
        check = load_images(out, root=root)  # validate what was written
        print(f"wrote {out.relative_to(HERE.parent)}: {len(check)} rows, {len(check.subjects())} subjects")
        if name.startswith("sample_"):
            inside = sample_root() / "images.csv"
            write_images(inside, rows)
            load_images(inside)
            print(f"wrote {inside.relative_to(HERE.parent)} (shipped in the package)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
