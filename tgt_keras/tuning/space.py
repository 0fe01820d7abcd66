"""`SearchSpace`: which TGT knobs a keras-tuner search varies, and over which values.

A knob is one of `KNOBS` (the `TGTDistiller` arguments that TGT adds to distillation, plus the
learning rate). In a space each knob is

- a range `{"min": a, "max": b}` (with `"sampling": "log"` for a log-uniform search): an
  `hp.Float`, or an `hp.Int` for the integer knobs `num_steps` and `synthetic_per_real`;
- a list of values `{"values": [...]}`: an `hp.Choice`;
- a number: fixed (an `hp.Fixed`, recorded with the trial but never varied).

Knobs not in the space keep the value of the base configuration. `--space FILE` of
`tgt-keras tune` is the same mapping in YAML:

    sigma: {min: 0.1, max: 1.5, sampling: log}
    num_steps: {values: [1, 3, 5]}
    temperature: 1.0

`default_search_space()` is our choice of ranges around the demo's settings. **It is not the
paper's**: the paper names sigma, eta and K but its search ranges are unknown to us.
"""

from __future__ import annotations

import dataclasses
import numbers
from collections.abc import Mapping
from pathlib import Path

import yaml

#: knob -> (the `ExperimentConfig` field it sets, lowest allowed value, whether that is allowed).
KNOBS: dict[str, tuple[str, float, bool]] = {
    "sigma": ("sigma", 0.0, True),
    "step_size": ("step_size", 0.0, True),
    "num_steps": ("num_steps", 0, True),
    "real_loss_weight": ("real_loss_weight", 0.0, True),
    "real_distillation_weight": ("real_distillation_weight", 0.0, True),
    "synthetic_loss_weight": ("synthetic_loss_weight", 0.0, True),
    "temperature": ("temperature", 0.0, False),
    "synthetic_per_real": ("synthetic_per_real", 1, True),
    "learning_rate": ("peak_learning_rate", 0.0, False),
}
INTEGER_KNOBS = ("num_steps", "synthetic_per_real")
#: Knobs that only "gradient" exploration uses.
GRADIENT_KNOBS = ("step_size", "num_steps")
SAMPLINGS = ("linear", "log")


@dataclasses.dataclass(frozen=True)
class Range:
    """`min <= value <= max`, searched uniformly or log-uniformly (`sampling="log"`)."""

    min: float
    max: float
    sampling: str = "linear"


@dataclasses.dataclass(frozen=True)
class Choice:
    """One of `values`."""

    values: tuple


Knob = Range | Choice | float | int


class SearchSpace:
    """The knobs a search varies (see the module docstring for the forms a knob takes).

    Example:
    >>> space = SearchSpace({"sigma": {"min": 0.1, "max": 1.0, "sampling": "log"},
    ...                      "num_steps": {"values": [1, 3]}, "temperature": 2.0})
    >>> space.tuned
    ('sigma', 'num_steps')
    >>> import keras_tuner
    >>> values = space.sample(keras_tuner.HyperParameters())  # registers, returns defaults
    >>> values["temperature"], values["num_steps"]
    (2.0, 1)
    """

    def __init__(self, knobs: Mapping[str, Knob | Mapping | list]):
        if not isinstance(knobs, Mapping):
            raise TypeError(
                "`knobs` must be a mapping of knob name to range, values or number. "
                f"Received: knobs={knobs!r} of type {type(knobs).__name__}"
            )
        unknown = sorted(set(knobs) - set(KNOBS))
        if unknown:
            raise ValueError(
                f"Unknown knob(s) {unknown} in the search space. Known knobs: {list(KNOBS)}"
            )
        self.knobs: dict[str, Knob] = {
            name: _parse_knob(name, spec) for name, spec in knobs.items()
        }

    @property
    def tuned(self) -> tuple[str, ...]:
        """The knobs that vary (ranges and choices), in the space's order."""
        return tuple(n for n, k in self.knobs.items() if isinstance(k, Range | Choice))

    def sample(self, hp) -> dict[str, float | int]:
        """Registers every knob with `hp` (a `keras_tuner.HyperParameters`); returns its values."""
        values = {}
        for name, knob in self.knobs.items():
            integer = name in INTEGER_KNOBS
            if isinstance(knob, Range):
                kind = hp.Int if integer else hp.Float
                values[name] = kind(name, knob.min, knob.max, sampling=knob.sampling)
            elif isinstance(knob, Choice):
                values[name] = hp.Choice(name, list(knob.values))
            else:
                values[name] = hp.Fixed(name, knob)
        return values

    def describe(self, name: str) -> str:
        """A short text of knob `name`: "[0.1, 1.5] log", "{1, 2}" or "0.5"."""
        knob = self.knobs[name]
        if isinstance(knob, Range):
            return f"[{knob.min:g}, {knob.max:g}]{' log' if knob.sampling == 'log' else ''}"
        if isinstance(knob, Choice):
            return "{" + ", ".join(f"{v:g}" for v in knob.values) + "}"
        return f"{knob:g}"

    def to_dict(self) -> dict:
        """The YAML form (`SearchSpace(space.to_dict())` equals `space`)."""
        out = {}
        for name, knob in self.knobs.items():
            if isinstance(knob, Range):
                out[name] = {"min": knob.min, "max": knob.max, "sampling": knob.sampling}
            elif isinstance(knob, Choice):
                out[name] = {"values": list(knob.values)}
            else:
                out[name] = knob
        return out

    def __eq__(self, other) -> bool:
        return isinstance(other, SearchSpace) and self.to_dict() == other.to_dict()

    def __repr__(self) -> str:
        return f"SearchSpace({self.to_dict()!r})"


MODALITIES = ("image", "text")


def default_search_space(exploration: str = "gradient", modality: str = "image") -> SearchSpace:
    """Our default ranges (not the paper's: its search ranges are unknown to us).

    Centred on the demo's settings (sigma 0.5, step size 1, 3 steps, weights 0.5 / 0.5 / 1,
    temperature 1, one synthetic example per real one, learning rate 1e-3). For "random"
    exploration the step size and the number of steps are left out: they are unused.

    `modality="text"` centres the ascent on the text demo's settings instead (step size 16, one
    step: a step differentiates through the BART decoder and the labeler): `step_size`
    [2, 64] log and `num_steps` 1-3.
    """
    if modality not in MODALITIES:
        raise ValueError(f"`modality` must be one of {MODALITIES}. Received: modality={modality!r}")
    knobs = {
        "sigma": {"min": 0.1, "max": 1.5, "sampling": "log"},
        "step_size": {"min": 0.1, "max": 3.0, "sampling": "log"},
        "num_steps": {"min": 1, "max": 5},
        "real_loss_weight": {"min": 0.0, "max": 1.0},
        "real_distillation_weight": {"min": 0.0, "max": 1.0},
        "synthetic_loss_weight": {"min": 0.25, "max": 2.0, "sampling": "log"},
        "temperature": {"values": [1.0, 2.0, 4.0]},
        "synthetic_per_real": {"values": [1, 2]},
        "learning_rate": {"min": 1e-4, "max": 3e-3, "sampling": "log"},
    }
    if modality == "text":
        knobs.update(step_size={"min": 2.0, "max": 64.0, "sampling": "log"},
                     num_steps={"min": 1, "max": 3})
    if exploration != "gradient":
        knobs = {k: v for k, v in knobs.items() if k not in GRADIENT_KNOBS}
    return SearchSpace(knobs)


def load_search_space(path) -> SearchSpace:
    """Reads a YAML search space (see the module docstring); errors name the file."""
    path = Path(path)
    values = yaml.safe_load(path.read_text())
    if not isinstance(values, dict):
        raise ValueError(
            f"{path} must hold a mapping of knob name to range, values or number. "
            f"Received: {type(values).__name__}"
        )
    try:
        return SearchSpace(values)
    except (TypeError, ValueError) as error:
        raise type(error)(f"{path}: {error}") from None


def config_changes(values: Mapping[str, float | int]) -> dict[str, float | int]:
    """Knob values as `ExperimentConfig` fields (`learning_rate` -> `peak_learning_rate`);
    keras-tuner's own entries (`tuner/epochs`, ... of Hyperband) are dropped."""
    return {KNOBS[name][0]: value for name, value in values.items() if name in KNOBS}


def _parse_knob(name: str, spec) -> Knob:
    if isinstance(spec, Range | Choice):
        spec = dataclasses.asdict(spec)
    if isinstance(spec, Mapping):
        keys = set(spec)
        if keys == {"values"}:
            values = spec["values"]
            if not isinstance(values, list | tuple) or not values:
                raise ValueError(
                    f"`{name}` values must be a non-empty list. Received: {name}={dict(spec)!r}"
                )
            return Choice(tuple(_check_value(name, v) for v in values))
        if keys in ({"min", "max"}, {"min", "max", "sampling"}):
            low, high = _check_value(name, spec["min"]), _check_value(name, spec["max"])
            sampling = spec.get("sampling", "linear")
            if sampling not in SAMPLINGS:
                raise ValueError(
                    f"`{name}` sampling must be one of {SAMPLINGS}. Received: {name}={dict(spec)!r}"
                )
            if low >= high:
                raise ValueError(
                    f"`{name}` must have min < max. Received: {name}={dict(spec)!r}"
                )
            if sampling == "log" and low <= 0:
                raise ValueError(
                    f"`{name}` with sampling='log' must have min > 0. Received: {name}="
                    f"{dict(spec)!r}"
                )
            return Range(low, high, sampling)
        raise ValueError(
            f"`{name}` must be a number, {{values: [...]}} or {{min: a, max: b[, sampling: "
            f"linear|log]}}. Received: {name}={dict(spec)!r}"
        )
    if isinstance(spec, list | tuple):
        return _parse_knob(name, {"values": spec})
    return _check_value(name, spec)


def _check_value(name: str, value):
    integer = name in INTEGER_KNOBS
    kind = numbers.Integral if integer else numbers.Real
    if isinstance(value, bool) or not isinstance(value, kind):
        raise TypeError(
            f"`{name}` must be {'an integer' if integer else 'a number'}. "
            f"Received: {name}={value!r} of type {type(value).__name__}"
        )
    _, low, inclusive = KNOBS[name]
    if value < low or (value == low and not inclusive):
        raise ValueError(
            f"`{name}` must be {'>=' if inclusive else '>'} {low}. Received: {name}={value!r}"
        )
    return int(value) if integer else float(value)
