"""Assemble benchmarks/RESULTS.md from the per-area result pages in benchmarks/results/.

Each area's benchmark or evidence script writes (or its author updates) one page
``benchmarks/results/<area>.md``; this script puts them together, in a fixed order,
after a header that states the machine. Run: ``python benchmarks/make_results.py``.
"""

from __future__ import annotations

import re
from pathlib import Path

HERE = Path(__file__).resolve().parent
ORDER = ["demo", "metrics", "report_cli", "data", "pipeline", "face", "morph", "vulnerability_systems", "dcmorph", "mad_lomo", "mad",
         "mad_fr_systems", "tshirt", "segmentation", "bad_inputs"]

HEADER = """# Benchmark and evidence results

Assembled by `benchmarks/make_results.py` from the pages in `benchmarks/results/` (one per area;
edit those, not this file). Every figure below was measured by a script in `benchmarks/` or by a
command quoted beside it, on this project's development machine:

- **machine**: 2-core x86_64 CPU (Linux, Python 3.11.7), 24 GB RAM, **no GPU**. Several
  development jobs shared the two cores while most of these numbers were taken (load average
  6-18), so wall-clock times are pessimistic; pages that say so also give CPU times.
- **GPU**: no accelerator was lent to the session that produced these results. The GPU smoke
  scripts (`benchmarks/gpu_smoke_dcmorph.py`, `benchmarks/gpu_smoke_mad.py`) ran only on their
  CPU fallback; no CUDA timings are recorded yet.
- **data**: the bundled 24-subject FRLL sample and the shared FRLL photos (CC BY 4.0, Lisa DeBruine
  and Benedict Jones 2017, doi:10.6084/m9.figshare.5047666.v5); images shown here are derived from
  them (morphs, synthetic T-shirt composites, segmentation masks) as each page says.

## Contents
"""


def demote(text: str) -> str:
    """Shift every markdown heading one level down (outside code fences)."""
    out, fence = [], False
    for line in text.splitlines():
        if line.lstrip().startswith("```"):
            fence = not fence
        if not fence and re.match(r"#{1,5} ", line):
            line = "#" + line
        out.append(line)
    return "\n".join(out)


def main() -> None:
    pages = {p.stem: p for p in (HERE / "results").glob("*.md")}
    names = [n for n in ORDER if n in pages] + sorted(set(pages) - set(ORDER))
    parts = [HEADER]
    parts += [f"- [{n}](#{n}) (`benchmarks/results/{n}.md`)" for n in names]
    for n in names:
        body = pages[n].read_text(encoding="utf-8").strip()
        # images referenced relative to results/ must be relative to benchmarks/ here
        body = re.sub(r"\]\((?!https?:|#|results/)([^)]+\.(?:png|jpg))\)", r"](results/\1)", body)
        parts.append(f'\n<a id="{n}"></a>\n\n' + demote(body))
    (HERE / "RESULTS.md").write_text("\n".join(parts) + "\n", encoding="utf-8")
    print(f"wrote {HERE / 'RESULTS.md'} from {len(names)} page(s): {', '.join(names)}")


if __name__ == "__main__":
    main()
