"""The tuning figure: each trial's objective against the knobs it tried."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from tgt_keras.reporting.plots import pyplot, save_figure
from tgt_keras.tuning.space import INTEGER_KNOBS, Choice, Range


def objective_vs_knobs_plot(rows: Sequence[dict], space, path: str | Path, title: str,
                            objective: str = "val_balanced_accuracy") -> bytes:
    """One panel per tuned knob of `space`: each completed trial's objective against its value.

    Ranges sampled log-uniformly get a log axis; choices are categories. The best trial is a
    red star in every panel.

    Args:
        rows: one dict per trial with the knob values and `objective` (None: not completed).
        space: the `tgt_keras.tuning.SearchSpace` searched.
        path: PNG file to write.
        title: figure title.
        objective: the key of the objective in `rows`.

    Returns:
        The PNG bytes (for TensorBoard).
    """

    plt = pyplot()
    done = [r for r in rows if r.get(objective) is not None]
    knobs = list(space.tuned) or [None]
    columns = min(3, len(knobs))
    lines = -(-len(knobs) // columns)
    figure, axes = plt.subplots(lines, columns, figsize=(4.2 * columns, 3.2 * lines),
                                squeeze=False)
    best = max(done, key=lambda r: r[objective]) if done else None
    for ax, name in zip(axes.flat, knobs, strict=False):
        ax.set_ylabel(objective.replace("_", " "))
        if name is None:
            ax.text(0.5, 0.5, "no tuned knob", ha="center", va="center", transform=ax.transAxes)
            continue
        knob = space.knobs[name]
        if isinstance(knob, Choice):
            position = {v: i for i, v in enumerate(knob.values)}
            ax.set_xticks(range(len(knob.values)), [f"{v:g}" for v in knob.values])
            ax.set_xlim(-0.5, len(knob.values) - 0.5)
        else:
            position = None
            _range_axis(ax, knob, integer=name in INTEGER_KNOBS)

        def x_of(row, name=name, position=position):
            return position[row[name]] if position is not None else row[name]

        ax.scatter([x_of(r) for r in done], [r[objective] for r in done], color="tab:blue",
                   label="trial")
        if best is not None:
            ax.scatter([x_of(best)], [best[objective]], marker="*", s=220, color="tab:red",
                       label=f"best (trial {best['trial']})", zorder=3)
        ax.set_xlabel(f"{name} {space.describe(name)}")
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(knobs):]:
        ax.axis("off")
    if best is not None and space.tuned:
        axes.flat[0].legend(fontsize=8, loc="best")
    figure.suptitle(title)
    figure.tight_layout()
    return save_figure(figure, path)


def _range_axis(ax, knob, integer: bool) -> None:
    """The x axis of a searched range: its whole extent, log-scaled for log sampling, plain
    tick labels ("0.001", not "10^-3"), whole numbers for integer knobs."""
    from matplotlib import ticker


    if not isinstance(knob, Range):  # a fixed knob is not plotted; nothing to set
        return
    plain = ticker.FuncFormatter(lambda value, _: f"{value:g}")
    if knob.sampling == "log":
        ax.set_xscale("log")
        ax.set_xlim(knob.min / 1.15, knob.max * 1.15)
        ax.xaxis.set_major_locator(ticker.LogLocator(subs=(1.0, 2.0, 5.0)))
        ax.xaxis.set_minor_formatter(ticker.NullFormatter())
    else:
        margin = 0.05 * (knob.max - knob.min)
        ax.set_xlim(knob.min - margin, knob.max + margin)
        if integer:
            ax.xaxis.set_major_locator(ticker.MaxNLocator(integer=True))
    ax.xaxis.set_major_formatter(plain)
