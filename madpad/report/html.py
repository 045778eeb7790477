"""Building blocks for madpad's self-contained HTML reports.

Every HTML report in madpad (PAD and vulnerability reports, the segmentation study,
the T-shirt PAD study, the demo) is assembled from these helpers, so they all look alike
and open offline:

* no external resources: CSS is inline, images and figures are embedded as base64
  ``data:`` URIs (:func:`figure_to_data_uri`, :func:`image_to_data_uri`);
* every piece of text passed in is HTML-escaped; only the ``*_html`` arguments (and
  strings returned by these helpers) are inserted verbatim.

A minimal page::

    >>> from madpad.report import html
    >>> body = html.table([{"species": "morph", "apcer": 0.05}], ["species", "apcer"])
    >>> doc = html.page("Demo", [html.section("Results", body)])
    >>> doc.startswith("<!DOCTYPE html>") and "0.0500</td>" in doc
    True

Nothing here imports matplotlib or PIL at module import; they are imported by the
functions that need them.
"""

from __future__ import annotations

import base64
import html as _html
import io
import math
from datetime import datetime, timezone
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

__all__ = [
    "escape",
    "figure_to_data_uri",
    "image_to_data_uri",
    "bytes_to_data_uri",
    "format_value",
    "table",
    "section",
    "paragraph",
    "image",
    "gallery",
    "definition_list",
    "note",
    "page",
    "CSS",
]

CSS = """
:root { --fg:#1f2328; --muted:#59636e; --line:#d1d9e0; --bg:#ffffff; --head:#f6f8fa; --accent:#0b5cad; }
* { box-sizing: border-box; }
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; color: var(--fg);
       background: var(--bg); margin: 0 auto; max-width: 1100px; padding: 24px; line-height: 1.45; }
h1 { font-size: 1.7em; margin: 0 0 4px 0; }
h2 { font-size: 1.3em; border-bottom: 1px solid var(--line); padding-bottom: 4px; margin-top: 32px; }
h3 { font-size: 1.1em; margin-top: 20px; }
.subtitle { color: var(--muted); margin: 0 0 16px 0; }
table { border-collapse: collapse; margin: 8px 0 16px 0; font-size: 0.92em; }
th, td { border: 1px solid var(--line); padding: 4px 8px; text-align: left; vertical-align: top; }
th { background: var(--head); font-weight: 600; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
caption { caption-side: top; text-align: left; color: var(--muted); padding-bottom: 4px; }
figure { margin: 8px 0 16px 0; display: inline-block; vertical-align: top; }
figcaption { color: var(--muted); font-size: 0.9em; max-width: 100%; }
img { max-width: 100%; height: auto; }
.gallery { display: flex; flex-wrap: wrap; gap: 12px; }
.gallery figure { margin: 0; }
.note { background: #fff8c5; border: 1px solid #d4a72c66; padding: 8px 12px; border-radius: 6px; }
dl { display: grid; grid-template-columns: max-content auto; gap: 2px 16px; }
dt { font-weight: 600; } dd { margin: 0; }
code { background: var(--head); padding: 1px 4px; border-radius: 4px; font-size: 0.92em; }
footer { color: var(--muted); font-size: 0.85em; margin-top: 40px; border-top: 1px solid var(--line); padding-top: 8px; }
"""


def escape(text: Any) -> str:
    """HTML-escape ``str(text)`` (quotes included)."""
    return _html.escape("" if text is None else str(text), quote=True)


# --------------------------------------------------------------------------- data URIs
def bytes_to_data_uri(data: bytes, mime: str) -> str:
    """``data:<mime>;base64,...`` for raw bytes."""
    return f"data:{mime};base64," + base64.b64encode(data).decode("ascii")


def figure_to_data_uri(fig, *, fmt: str = "png", dpi: int = 110) -> str:
    """Render a matplotlib Figure to a ``data:`` URI (PNG by default, or ``fmt="svg"``).

    Works with a bare ``matplotlib.figure.Figure`` (no pyplot state is touched).
    """
    fmt = fmt.lower()
    if fmt not in ("png", "svg"):
        raise ValueError(f"fmt must be 'png' or 'svg'; got {fmt!r}")
    buf = io.BytesIO()
    fig.savefig(buf, format=fmt, dpi=dpi, bbox_inches="tight")
    mime = "image/png" if fmt == "png" else "image/svg+xml"
    return bytes_to_data_uri(buf.getvalue(), mime)


def image_to_data_uri(rgb_uint8: np.ndarray, *, max_side: int | None = 512, fmt: str = "jpeg",
                      quality: int = 85) -> str:
    """Embed an RGB uint8 (H, W, 3) image (or a 2-D grey/mask image) as a ``data:`` URI.

    The image is downscaled (aspect kept) so that its longer side is at most ``max_side``
    pixels (``None`` keeps the size). ``fmt`` is ``"jpeg"`` (small) or ``"png"`` (lossless,
    use it for masks). Float images in [0, 1] are scaled to 0..255.
    """
    from PIL import Image

    arr = np.asarray(rgb_uint8)
    if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[2] not in (1, 3, 4)):
        raise ValueError(f"image must have shape (H, W), (H, W, 3) or (H, W, 4); got {arr.shape}")
    if arr.size == 0:
        raise ValueError("image is empty")
    if arr.dtype != np.uint8:
        a = arr.astype(np.float64)
        if np.issubdtype(arr.dtype, np.floating) and np.nanmax(a) <= 1.0:
            a = a * 255.0
        arr = np.clip(np.rint(np.nan_to_num(a)), 0, 255).astype(np.uint8)
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[:, :, 0]
    im = Image.fromarray(arr)
    fmt = fmt.lower()
    if fmt in ("jpg", "jpeg"):
        if im.mode not in ("RGB", "L"):
            im = im.convert("RGB")
        pil_fmt, mime = "JPEG", "image/jpeg"
    elif fmt == "png":
        pil_fmt, mime = "PNG", "image/png"
    else:
        raise ValueError(f"fmt must be 'jpeg' or 'png'; got {fmt!r}")
    if max_side is not None and max(im.size) > int(max_side):
        scale = int(max_side) / max(im.size)
        im = im.resize((max(1, round(im.size[0] * scale)), max(1, round(im.size[1] * scale))), Image.LANCZOS)
    buf = io.BytesIO()
    kwargs = {"quality": int(quality)} if pil_fmt == "JPEG" else {}
    im.save(buf, format=pil_fmt, **kwargs)
    return bytes_to_data_uri(buf.getvalue(), mime)


# --------------------------------------------------------------------------- text blocks
def format_value(value: Any, floatfmt: str = ".4f") -> str:
    """Format one table cell: floats with ``floatfmt``, NaN/None as an em dash, rest as str.

    >>> format_value(0.123456), format_value(float("nan")), format_value(3), format_value(None)
    ('0.1235', '—', '3', '—')
    """
    if value is None:
        return "—"
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        v = float(value)
        if math.isnan(v):
            return "—"
        if math.isinf(v):
            return "∞" if v > 0 else "−∞"
        return format(v, floatfmt)
    return str(value)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_))


def table(rows: Iterable[Mapping[str, Any] | Sequence[Any]], columns: Sequence[str] | None = None, *,
          floatfmt: str | Mapping[str, str] = ".4f", headers: Sequence[str] | None = None,
          caption: str | None = None, html_columns: Sequence[str] = ()) -> str:
    """An HTML table.

    ``rows`` are dicts (looked up by ``columns``; missing keys show as an em dash) or
    sequences (in ``columns`` order). ``columns`` defaults to the keys of the first dict
    row. ``headers`` gives display names (default: the column names). ``floatfmt`` is one
    format spec for all float cells or a dict column -> spec (default ``.4f``). Cell text
    is escaped, except in columns listed in ``html_columns`` (for example an ``<img>``
    made with :func:`image`). Numbers are right-aligned.

    >>> table([[1, 0.5]], ["n", "rate"], floatfmt=".2f")
    '<table><thead><tr><th>n</th><th>rate</th></tr></thead><tbody><tr><td class="num">1</td><td class="num">0.50</td></tr></tbody></table>'
    """
    rows = list(rows)
    if columns is None:
        if rows and isinstance(rows[0], Mapping):
            columns = list(rows[0].keys())
        else:
            raise ValueError("table(): 'columns' is required when rows are not dicts")
    columns = list(columns)
    if headers is not None and len(headers) != len(columns):
        raise ValueError(f"table(): {len(headers)} headers for {len(columns)} columns")
    heads = list(headers) if headers is not None else columns
    raw_cols = set(html_columns)
    out = ["<table>"]
    if caption:
        out.append(f"<caption>{escape(caption)}</caption>")
    out.append("<thead><tr>" + "".join(f"<th>{escape(h)}</th>" for h in heads) + "</tr></thead><tbody>")
    for i, row in enumerate(rows):
        if isinstance(row, Mapping):
            values = [row.get(c) for c in columns]
        else:
            values = list(row)
            if len(values) != len(columns):
                raise ValueError(f"table(): row {i} has {len(values)} values for {len(columns)} columns")
        cells = []
        for col, v in zip(columns, values):
            fmt = floatfmt.get(col, ".4f") if isinstance(floatfmt, Mapping) else floatfmt
            if col in raw_cols:
                cells.append(f"<td>{'' if v is None else v}</td>")
            elif _is_number(v):
                cells.append(f'<td class="num">{escape(format_value(v, fmt))}</td>')
            else:
                cells.append(f"<td>{escape(format_value(v, fmt))}</td>")
        out.append("<tr>" + "".join(cells) + "</tr>")
    out.append("</tbody></table>")
    return "".join(out)


def section(title: str, body_html: str | Sequence[str], *, level: int = 2, anchor: str | None = None) -> str:
    """A ``<section>`` with an escaped heading and raw HTML body (a string or a list of strings)."""
    if not 1 <= int(level) <= 6:
        raise ValueError(f"level must be 1..6; got {level}")
    body = body_html if isinstance(body_html, str) else "\n".join(body_html)
    aid = f' id="{escape(anchor)}"' if anchor else ""
    return f"<section{aid}><h{level}>{escape(title)}</h{level}>\n{body}\n</section>"


def paragraph(text: str) -> str:
    """An escaped ``<p>`` paragraph."""
    return f"<p>{escape(text)}</p>"


def note(text: str) -> str:
    """A highlighted, escaped note box (for caveats such as "synthetic data")."""
    return f'<div class="note">{escape(text)}</div>'


def image(uri: str, *, alt: str = "", caption: str | None = None, width: int | None = None) -> str:
    """A ``<figure>`` with an ``<img>`` (``uri`` from :func:`figure_to_data_uri` /
    :func:`image_to_data_uri`) and an optional escaped caption."""
    if not str(uri).startswith("data:"):
        raise ValueError("image(): uri must be a data: URI so the report stays self-contained")
    w = f' width="{int(width)}"' if width else ""
    cap = f"<figcaption>{escape(caption)}</figcaption>" if caption else ""
    return f'<figure><img src="{escape(uri)}" alt="{escape(alt)}"{w}>{cap}</figure>'


def gallery(items: Iterable[tuple[str, str]], *, width: int | None = 160) -> str:
    """A wrapping row of figures from ``(data_uri, caption)`` pairs."""
    figs = [image(uri, alt=cap, caption=cap, width=width) for uri, cap in items]
    return '<div class="gallery">' + "".join(figs) + "</div>"


def definition_list(items: Mapping[str, Any] | Iterable[tuple[str, Any]], *, floatfmt: str = ".4f") -> str:
    """A ``<dl>`` of escaped key/value pairs (values formatted like table cells)."""
    pairs = items.items() if isinstance(items, Mapping) else items
    return "<dl>" + "".join(f"<dt>{escape(k)}</dt><dd>{escape(format_value(v, floatfmt))}</dd>"
                            for k, v in pairs) + "</dl>"


def page(title: str, sections: Iterable[str | tuple[str, str]], *, subtitle: str | None = None,
         footer: str | None = None, timestamp: bool = True) -> str:
    """A complete self-contained HTML document.

    ``sections`` are HTML strings (e.g. from :func:`section`) or ``(title, body_html)``
    pairs. ``title``, ``subtitle`` and ``footer`` are escaped. With ``timestamp`` the
    footer records the UTC generation time.
    """
    parts = []
    for s in sections:
        if isinstance(s, tuple):
            if len(s) != 2:
                raise ValueError("page(): a tuple section must be (title, body_html)")
            parts.append(section(s[0], s[1]))
        else:
            parts.append(str(s))
    foot_bits = []
    if footer:
        foot_bits.append(escape(footer))
    if timestamp:
        foot_bits.append("Generated by madpad on " + datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"))
    sub = f'<p class="subtitle">{escape(subtitle)}</p>' if subtitle else ""
    foot = f"<footer>{'<br>'.join(foot_bits)}</footer>" if foot_bits else ""
    return (
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
        f"<title>{escape(title)}</title>\n<style>{CSS}</style>\n</head>\n<body>\n"
        f"<h1>{escape(title)}</h1>\n{sub}\n" + "\n".join(parts) + f"\n{foot}\n</body>\n</html>\n"
    )
