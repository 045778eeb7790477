"""Figures for madpad reports, drawn on bare ``matplotlib.figure.Figure`` objects.

No pyplot global state is used: each function builds and returns a new Figure (Agg
canvas), which :func:`madpad.report.html.figure_to_data_uri` embeds into a report.

DET curves use normal-deviate (probit) axes, as customary in biometrics (ISO/IEC
19795-1): both error rates are mapped through the inverse standard normal CDF. Rates of
exactly 0 or 1 cannot be shown on such axes; they are clipped to the axis limits, so a
curve that reaches 0 is drawn along the border of the plot.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

__all__ = ["det_plot", "score_histogram", "new_figure", "DET_TICKS"]

#: tick positions (as rates) on DET axes
DET_TICKS = (0.0001, 0.0002, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.4, 0.6, 0.8, 0.9, 0.95, 0.99)


def new_figure(*, figsize=(5.5, 5.0), dpi: int = 100):
    """A new Figure with an Agg canvas attached (independent of pyplot)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize, dpi=dpi)
    FigureCanvasAgg(fig)
    return fig


def _probit(p: np.ndarray) -> np.ndarray:
    from scipy.special import ndtri

    return ndtri(p)


def _tick_label(p: float) -> str:
    pct = p * 100
    if pct >= 1:
        return f"{pct:g}"
    return f"{pct:.2g}"


def det_plot(curves: Mapping[str, tuple[Sequence[float], Sequence[float]]], *,
             xlabel: str = "APCER (%)", ylabel: str = "BPCER (%)", title: str | None = None,
             limits: tuple[float, float] = (0.0005, 0.6), points: Mapping[str, tuple[float, float]] | None = None,
             diagonal: bool = True, emphasize: str | None = None, figsize=(5.5, 5.0), dpi: int = 100):
    """A DET plot on normal-deviate axes.

    Parameters
    ----------
    curves
        label -> ``(x_rates, y_rates)``, e.g. ``(apcer, bpcer)`` for PAD or ``(fmr, fnmr)``
        for verification, as arrays of rates in [0, 1] of equal length (any order; drawn in
        the order given, so pass them sorted by threshold).
    limits
        lower and upper rate shown on both axes (0 < low < high < 1). Rates outside are
        clipped to the limits.
    points
        label -> ``(x, y)`` single operating points drawn as markers (e.g. the D-EER).
    diagonal
        draw the x = y line (where the D-EER lies).
    emphasize
        label of a curve drawn thick, dashed and black on top (e.g. the max-over-species APCER).

    Returns
    -------
    matplotlib.figure.Figure
    """
    lo, hi = float(limits[0]), float(limits[1])
    if not 0.0 < lo < hi < 1.0:
        raise ValueError(f"limits must satisfy 0 < low < high < 1; got {limits}")
    fig = new_figure(figsize=figsize, dpi=dpi)
    ax = fig.add_subplot(1, 1, 1)
    plo, phi = float(_probit(np.array(lo))), float(_probit(np.array(hi)))
    for label, xy in curves.items():
        if len(xy) != 2:
            raise ValueError(f"curve {label!r}: expected (x_rates, y_rates)")
        x = np.asarray(xy[0], dtype=np.float64)
        y = np.asarray(xy[1], dtype=np.float64)
        if x.shape != y.shape or x.ndim != 1:
            raise ValueError(f"curve {label!r}: x and y must be 1-D of equal length; got {x.shape} and {y.shape}")
        keep = np.isfinite(x) & np.isfinite(y)
        x, y = np.clip(x[keep], lo, hi), np.clip(y[keep], lo, hi)
        if x.size == 0:
            continue
        if label == emphasize:
            ax.plot(_probit(x), _probit(y), label=str(label), linewidth=2.6, color="black", linestyle="--",
                    zorder=5)
        else:
            ax.plot(_probit(x), _probit(y), label=str(label), linewidth=1.6)
    for label, (px, py) in (points or {}).items():
        if np.isfinite(px) and np.isfinite(py):
            ax.plot(_probit(np.clip(px, lo, hi)), _probit(np.clip(py, lo, hi)), marker="o", linestyle="none",
                    markersize=6, label=str(label))
    if diagonal:
        ax.plot([plo, phi], [plo, phi], color="0.6", linestyle=":", linewidth=1.0)
    ticks = [t for t in DET_TICKS if lo <= t <= hi]
    ax.set_xticks(_probit(np.array(ticks)))
    ax.set_yticks(_probit(np.array(ticks)))
    ax.set_xticklabels([_tick_label(t) for t in ticks], rotation=45)
    ax.set_yticklabels([_tick_label(t) for t in ticks])
    ax.set_xlim(plo, phi)
    ax.set_ylim(plo, phi)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(True, color="0.85", linewidth=0.6)
    ax.set_aspect("equal")
    if title:
        ax.set_title(title)
    if curves or points:
        ax.legend(loc="upper right", fontsize=8, framealpha=0.9)
    fig.tight_layout()
    return fig


def score_histogram(groups: Mapping[str, Sequence[float]], *, thresholds: Mapping[str, float] | None = None,
                    bins: int = 50, xlabel: str = "score (higher = attack)", title: str | None = None,
                    density: bool = True, figsize=(6.5, 3.6), dpi: int = 100, presorted: bool = False):
    """Overlaid histograms of score groups (label -> scores) with vertical threshold lines
    (label -> threshold). Non-finite scores are ignored. Returns a Figure.

    With ``presorted=True`` each group is an array sorted ascending, or a list of such
    arrays (counted together); the counts then come from ``searchsorted`` on the bin edges
    (O(bins log n)), so 10^7 scores cost nothing, and only the bars are drawn.
    """
    fig = new_figure(figsize=figsize, dpi=dpi)
    ax = fig.add_subplot(1, 1, 1)
    if presorted:
        arrays = {k: [np.asarray(a, dtype=np.float64) for a in (v if isinstance(v, (list, tuple)) else [v])]
                  for k, v in groups.items()}
        arrays = {k: [a[np.isfinite(a)] if a.size and not (np.isfinite(a[0]) and np.isfinite(a[-1])) else a
                      for a in v] for k, v in arrays.items()}
        ends = [(float(a[0]), float(a[-1])) for v in arrays.values() for a in v if a.size]
        if ends:
            lo, hi = min(e[0] for e in ends), max(e[1] for e in ends)
            if lo == hi:
                lo, hi = lo - 0.5, hi + 0.5
            edges = np.linspace(lo, hi, int(bins) + 1)
            for label, v in arrays.items():
                n = sum(a.size for a in v)
                if not n:
                    continue
                counts = np.zeros(int(bins), dtype=np.float64)
                for a in v:
                    cum = np.searchsorted(a, edges, side="left").astype(np.float64)
                    cum[-1] = a.size  # the last bin is closed, as in np.histogram
                    counts += np.diff(cum)
                ax.hist(edges[:-1], bins=edges, weights=counts, density=density, alpha=0.45,
                        label=f"{label} (n={n})")
    else:
        arrays = {k: np.asarray(v, dtype=np.float64) for k, v in groups.items()}
        arrays = {k: v[np.isfinite(v)] for k, v in arrays.items()}
        finite = [v for v in arrays.values() if v.size]
        if finite:
            lo = min(float(v.min()) for v in finite)
            hi = max(float(v.max()) for v in finite)
            if lo == hi:
                lo, hi = lo - 0.5, hi + 0.5
            edges = np.linspace(lo, hi, int(bins) + 1)
            for label, v in arrays.items():
                if v.size:
                    counts, _ = np.histogram(v, bins=edges)
                    ax.hist(edges[:-1], bins=edges, weights=counts.astype(np.float64), density=density, alpha=0.45,
                            label=f"{label} (n={v.size})")
    for i, (label, t) in enumerate((thresholds or {}).items()):
        if t is not None and np.isfinite(t):
            ax.axvline(float(t), color=f"C{(i + 3) % 10}", linestyle="--", linewidth=1.0, label=str(label))
    ax.set_xlabel(xlabel)
    ax.set_ylabel("density" if density else "count")
    if title:
        ax.set_title(title)
    if groups or thresholds:
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig
