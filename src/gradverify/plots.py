"""PNG plots for the HTML report (matplotlib, the optional extra ``plots``).

- :func:`step_plot`: |numeric(h) - analytic| against the step h, log-log, with the slopes
  a correct gradient shows (2: truncation of central differences; -1: round-off), the
  harness's tolerance and the step it used;
- :func:`jacobian_plot`: heatmaps of the analytic Jacobian, the numeric one and their
  difference (full mode), entries beyond the tolerance outlined.

Uses matplotlib's object API (no pyplot, no global backend switch).

>>> available() in (True, False)
True
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

__all__ = ["available", "step_plot", "jacobian_plot"]


def available() -> bool:
    """Whether matplotlib can be imported."""
    try:
        import matplotlib  # noqa: F401
        from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: F401
    except ImportError:
        return False
    return True


def _figure(width: float, height: float) -> Any:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    fig = Figure(figsize=(width, height), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _positive(y: np.ndarray, floor: float) -> np.ndarray:
    return np.where(np.isfinite(y), np.maximum(y, floor), np.nan)


def step_plot(curve: Any, path: str | Path | BinaryIO, title: str = "") -> Any:
    """Draw a :class:`gradverify.stepsize.StepCurve` to ``path`` (PNG): the analytic
    value's distance from the numeric derivative at each step, the numeric derivative's
    distance from its own best estimate (the V a correct gradient follows), reference
    slopes 2 and -1 through that V, the tolerance and the harness's step."""
    fig = _figure(6.6, 4.3)
    ax = fig.add_subplot()
    h = np.asarray(curve.h)
    err, spread = np.asarray(curve.error), np.asarray(curve.spread)
    values = np.concatenate([err, spread])
    good = values[np.isfinite(values) & (values > 0)]
    floor = float(good.min()) / 10 if good.size else 1e-16
    ax.loglog(h, _positive(spread, floor), "s-", color="#9e9e9e", ms=2.5, lw=1,
              label="|numeric(h) − best numeric|")
    ax.loglog(h, _positive(err, floor), "o-", color="#1f5fa8", ms=3.5, lw=1.6,
              label="|numeric(h) − analytic|")
    ok = np.isfinite(spread) & (spread > 0)
    if ok.sum() >= 3:
        i_min = int(np.nanargmin(np.where(ok, spread, np.nan)))
        right, left = h[: i_min + 1], h[i_min:]
        anchor_r = np.flatnonzero(ok)[0]
        anchor_l = np.flatnonzero(ok)[-1]
        if len(right) > 1:
            ax.loglog(right, spread[anchor_r] * (right / h[anchor_r]) ** 2, "--",
                      color="#e67e22", lw=1.2, label="slope 2 (truncation)")
        if len(left) > 1:
            ax.loglog(left, spread[anchor_l] * (left / h[anchor_l]) ** -1, ":",
                      color="#8e44ad", lw=1.5, label="slope −1 (round-off)")
    if np.isfinite(curve.tolerance) and curve.tolerance > 0:
        ax.axhline(curve.tolerance, color="#c0392b", lw=1, ls="-.",
                   label=f"tolerance {curve.tolerance:.2g}")
        good = np.append(good, curve.tolerance)
    if curve.step > 0:
        ax.axvline(curve.step, color="#27ae60", lw=1.2,
                   label=f"harness step {curve.step:.2g}")
    if good.size:
        ax.set_ylim(max(float(good.min()) / 30, 1e-300), float(good.max()) * 30)
    ax.set_xlim(h.min() / 2, h.max() * 2)
    ax.set_xlabel("step h" + (" (relative to |x|)" if curve.relative else ""))
    ax.set_ylabel("absolute error")
    ax.set_title(title or curve.where, fontsize=10)
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(fontsize=7.5, loc="best", framealpha=0.85)
    fig.savefig(path, format="png")
    return path


def _blocks(report: Any, n_cols: int) -> list[tuple[str, int]]:
    """(name, size) of the Jacobian's column blocks: the floating-point inputs."""
    blocks = [(i.get("name") or f"x{k}", int(np.prod(i["shape"], dtype=int)))
              for k, i in enumerate(report.inputs) if str(i.get("dtype", "")).startswith(
                  "float")]
    return blocks if sum(s for _, s in blocks) == n_cols else []


def jacobian_plot(report: Any, check: Any, path: str | Path | BinaryIO) -> Any:
    """Heatmaps of ``check.arrays`` (analytic, numeric, difference) to ``path`` (a file
    name or a binary stream); None when the check has no Jacobians (fast mode) or a single
    entry (a 1x1 heatmap says nothing the table does not)."""
    a, n = check.arrays.get("analytic"), check.arrays.get("numeric")
    if a is None or n is None or a.size <= 1:
        return None
    a, n = np.asarray(a, np.float64), np.asarray(n, np.float64)
    diff = a - n
    rows, cols = a.shape
    small = rows <= 12 and cols <= 12
    annotate = rows <= 12 and cols <= 6      # room for a value in each cell
    width = 13.0
    if small:
        height = max(1.6 + 0.32 * rows, 2.8)
    else:
        height = float(np.clip(width / 3 * rows / max(cols, 1), 2.4, 6.0)) + 0.9
    fig = _figure(width, height)
    axes = fig.subplots(1, 3)
    both = np.concatenate([a[np.isfinite(a)], n[np.isfinite(n)]])
    vmax = float(np.max(np.abs(both), initial=0.0)) or 1.0
    dmax = float(np.max(np.abs(diff[np.isfinite(diff)]), initial=0.0)) or 1.0
    tol = check.tolerance if check.tolerance is not None else np.inf
    bad = np.argwhere(np.abs(diff) > tol) if np.isfinite(tol) else np.zeros((0, 2), int)
    from matplotlib.colors import SymLogNorm
    from matplotlib.patches import Rectangle
    from matplotlib.ticker import MaxNLocator
    # symmetric log scales: structure stays visible next to large entries; in the
    # difference, everything within the tolerance is pale
    linear = max(vmax * 1e-4, 1e-300)
    dlin = float(tol) if np.isfinite(tol) and 0 < tol < dmax else max(dmax * 1e-4, 1e-300)
    panels = ((a, "analytic Jacobian", SymLogNorm(linear, vmin=-vmax, vmax=vmax)),
              (n, "numeric Jacobian", SymLogNorm(linear, vmin=-vmax, vmax=vmax)),
              (diff, "analytic − numeric", SymLogNorm(dlin, vmin=-dmax, vmax=dmax)))
    for ax, (m, title, norm) in zip(axes, panels):
        im = ax.imshow(m, cmap="RdBu_r", norm=norm, interpolation="nearest",
                       aspect="auto")
        ax.set_title(title, fontsize=10, pad=14)
        ax.set_xlabel("input entry")
        ax.set_ylabel("output entry")
        if small:
            ax.set_xticks(range(cols))
            ax.set_yticks(range(rows))
        else:
            ax.xaxis.set_major_locator(MaxNLocator(integer=True, nbins=8))
            ax.yaxis.set_major_locator(MaxNLocator(integer=True, nbins=8))
        bar = fig.colorbar(im, ax=ax, shrink=0.85)
        top, lin = norm.vmax, norm.linthresh
        ticks = [0.0, top] + ([lin] if height >= 3.5 and top > lin * 10 else [])
        ticks = sorted({-t for t in ticks} | set(ticks))
        bar.set_ticks(ticks)
        bar.ax.set_yticklabels([f"{(t or 0.0):.2g}" for t in ticks], fontsize=7)
        if annotate:
            for (i, j), value in np.ndenumerate(m):
                ax.text(j, i, f"{value:.3g}", ha="center", va="center", fontsize=7,
                        color="k", bbox={"boxstyle": "round,pad=0.15", "fc": "white",
                                         "ec": "none", "alpha": 0.8})
        for name, start in _boundaries(report, cols):
            if start > 0:
                ax.axvline(start - 0.5, color="k", lw=0.8)
            ax.text(start - 0.5, 1.01, f" {name}", fontsize=8, va="bottom", ha="left",
                    transform=ax.get_xaxis_transform(), clip_on=False)
        if title.startswith("analytic −") and len(bad):
            for i, j in bad[:400]:
                ax.add_patch(Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, ec="k",
                                       lw=1.4))
            ax.plot([], [], "s", mfc="none", mec="k", label="beyond tolerance")
            ax.legend(fontsize=7, loc="lower right", framealpha=0.8)
    fig.savefig(path, format="png")
    return path


def _boundaries(report: Any, cols: int) -> list[tuple[str, int]]:
    out, start = [], 0
    for name, size in _blocks(report, cols):
        out.append((name, start))
        start += size
    return out if len(out) > 1 else []
