"""``python -m madpad.weights verify PATH... [--base-model FOLDER] [--arch open_clip:NAME|timm:NAME]``.

Prints a table (file, what it is, sizes, dtypes, sha256, licence, verdict). Exit status 0 when
every file fits, 2 with a one-line reason on stderr otherwise.
"""

from __future__ import annotations

import argparse
import json
import sys

from madpad.errors import MadpadError, UsageError


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m madpad.weights",
                                description="Check downloaded model weights before a long GPU run (nothing is "
                                            "unpickled).")
    sub = p.add_subparsers(dest="command", required=True)
    v = sub.add_parser("verify", help="check files and folders: SD1.5/SDXL diffusers folders, IP-Adapter FaceID, "
                                      "ArcFace/rembg ONNX, open_clip/timm checkpoints, YOLO .pt")
    v.add_argument("paths", nargs="+", metavar="PATH", help="a weight file, a diffusers folder, or a folder of files")
    v.add_argument("--base-model", default=None, metavar="FOLDER",
                   help="the SD1.5/SDXL diffusers folder a FaceID checkpoint must fit (default: the one pipeline "
                        "folder among PATHs)")
    v.add_argument("--arch", default=None, metavar="LIB:NAME",
                   help="architecture of open_clip/timm checkpoints: open_clip:ViT-B-16, timm:vit_base_patch16_224 "
                        "(open_clip ones are named from their shapes when omitted)")
    v.add_argument("--no-hash", action="store_true", help="skip the sha256 of each file (faster on big files)")
    v.add_argument("--json", default=None, metavar="FILE", help="also write the rows as JSON")
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        from madpad.cli import check_output_file
        from madpad.weights import failure_line, render_table, verify_paths

        if args.json:
            check_output_file(args.json, option="--json")  # before hashing the weights
        rows = verify_paths(args.paths, base_model=args.base_model, arch=args.arch, hash_files=not args.no_hash)
    except (UsageError, MadpadError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(render_table(rows))
    if args.json:
        from madpad.io import atomic_write_text

        try:
            atomic_write_text(args.json, json.dumps([r.to_dict() for r in rows], indent=2) + "\n")
        except OSError as exc:
            from madpad.cli import os_error_line

            print(f"error: --json {os_error_line(exc)}", file=sys.stderr)
            return 2
    reason = failure_line(rows)
    if reason is not None:
        print(f"error: {reason}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
