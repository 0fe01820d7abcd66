"""Progress output that suits where it goes: bars on a terminal, one line per step in a log.

A carriage-return progress bar redrawn many times a second is right on a terminal and wrong in a
log file, CI output or `| tee`, where every redraw stays (a megabyte for the demo). So both
helpers ask the stream whether it is a terminal.
"""

from __future__ import annotations

import sys
import time


def _is_terminal(stream) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False


def keras_verbose(stream=None) -> int:
    """Keras's `verbose` for `fit`: 1 (a progress bar) on a terminal, else 2 (a line per epoch).

    Args:
        stream: where Keras writes (default `sys.stdout`, read at call time).

    Example:
    >>> import io
    >>> keras_verbose(io.StringIO())
    2
    """
    return 1 if _is_terminal(sys.stdout if stream is None else stream) else 2


class Progress:
    """Counts `total` units of work: a tqdm bar on a terminal, else one plain line per update.

    Off a terminal each update prints, and flushes at once, a line such as
    `sample-size study: 3/48 (n=5, seed=0, method=KD), 12 s elapsed`.

    Args:
        total: units of work expected.
        desc: what is being counted, the start of every line.
        stream: where to write (default `sys.stderr`, read at construction).

    Example:
    >>> import io
    >>> log = io.StringIO()
    >>> with Progress(2, "study", stream=log) as progress:
    ...     progress.update(method="KD")  # `method=...` is shown, not counted
    >>> log.getvalue()
    'study: 1/2 (method=KD), 0 s elapsed\\n'
    """

    def __init__(self, total: int, desc: str, stream=None):
        if total < 0:
            raise ValueError(f"`total` must be >= 0. Received: total={total!r}")
        self.total = total
        self.desc = desc
        self.count = 0
        self.stream = sys.stderr if stream is None else stream
        self._start = time.perf_counter()
        self._bar = None
        if _is_terminal(self.stream):
            from tqdm import tqdm

            self._bar = tqdm(total=total, desc=desc, file=self.stream)

    def update(self, n: int = 1, /, **info) -> None:
        """Counts `n` more units done; `info` (shown as `key=value`) says which.

        `n` is positional-only, so `update(n=5, seed=0)` counts one unit whose info is
        `n=5, seed=0`, and `update(3)` counts three.
        """
        self.count += n
        if self._bar is not None:
            self._bar.set_postfix(info, refresh=False)
            self._bar.update(n)
            return
        details = ", ".join(f"{key}={value}" for key, value in info.items())
        elapsed = time.perf_counter() - self._start
        print(f"{self.desc}: {self.count}/{self.total}" + (f" ({details})" if details else "")
              + f", {elapsed:.0f} s elapsed", file=self.stream, flush=True)

    def close(self) -> None:
        """Finishes the bar (a no-op off a terminal, and when already closed)."""
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()
