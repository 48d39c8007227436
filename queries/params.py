"""Typed parameters of named queries: the types are the rows of `PARAM_TYPES`.

Values given as strings (the CLI) are converted, Python values are checked; the query
receives them as DuckDB ``$name`` parameters, bound by the engine, never formatted into SQL.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from queries.errors import ParameterError
from warehouse.core.anatomy import anatomy
from warehouse.core.errors import WarehouseError
from warehouse.core.schema import CT_RATE_LABELS
from warehouse.core.terms import resolve_term


def _to_str(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError(f"expected text, got {type(value).__name__}")
    return value


def _to_int(value: Any) -> int:
    if isinstance(value, bool):
        raise ValueError("expected an integer, got a boolean")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and re.fullmatch(r"\s*[+-]?\d+\s*", value):
        return int(value)
    raise ValueError(f"expected an integer, got {value!r}")


def _to_float(value: Any) -> float:
    if isinstance(value, bool):
        raise ValueError("expected a number, got a boolean")
    try:
        out = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"expected a number, got {value!r}") from None
    if not math.isfinite(out):
        raise ValueError(f"expected a finite number, got {value!r}")
    return out


_TRUE, _FALSE = {"true", "yes", "y", "1", "on"}, {"false", "no", "n", "0", "off"}


def _to_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    raise ValueError(f"expected true or false, got {value!r}")


def _to_region(value: Any) -> str:
    return anatomy().resolve(_to_str(value)).name  # synonyms and paths give the canonical name


def _to_ct_rate_label(value: Any) -> str:
    """CT-RATE's spelling of one of its 18 classes, from any case; a typo is an error, not 0 rows."""
    import difflib

    text = _to_str(value).strip()
    by_lower = {c.lower(): c for c in CT_RATE_LABELS}
    if text.lower() in by_lower:
        return by_lower[text.lower()]
    near = difflib.get_close_matches(text.lower(), by_lower, n=1, cutoff=0.6)
    guess = f"did you mean {by_lower[near[0]]!r}? " if near else ""
    raise ValueError(f"{text!r} is not a CT-RATE class; {guess}the classes: {', '.join(CT_RATE_LABELS)}")


def _to_term(value: Any) -> str:
    """A findings-vocabulary term from the term, a synonym or a plural ("nodules" -> pulmonary nodule)."""
    return resolve_term(_to_str(value))


@dataclass(frozen=True)
class ParamType:
    """How a parameter type converts a value and how it is shown."""

    name: str
    convert: Callable[[Any], Any]
    help: str


PARAM_TYPES: dict[str, ParamType] = {t.name: t for t in (
    ParamType("str", _to_str, "text"),
    ParamType("int", _to_int, "an integer"),
    ParamType("float", _to_float, "a number"),
    ParamType("bool", _to_bool, "true or false"),
    ParamType("region", _to_region, "a region of the anatomy DAG (name, released path or synonym)"),
    ParamType("enum", _to_str, "one of the listed values"),
    ParamType("ct_rate_label", _to_ct_rate_label, "one of CT-RATE's 18 classes, in any case (e.g. Lung nodule)"),
    ParamType("term", _to_term, "a finding term of finding_terms: the term, a synonym or a plural "
                                "(e.g. nodules -> pulmonary nodule)"),
)}


@dataclass(frozen=True)
class Param:
    """One typed parameter of a named query."""

    name: str
    type: str
    description: str
    default: Any = None
    required: bool = True
    choices: tuple[str, ...] = ()

    def convert(self, value: Any) -> Any:
        """The value as the query receives it; raises `ParameterError` naming the parameter."""
        if value is None:
            if self.required:
                raise ParameterError(f"parameter {self.name!r} is required ({self.type_text})")
            return None
        try:
            out = PARAM_TYPES[self.type].convert(value)
        except WarehouseError as e:  # an unknown region or term: keep its hint
            raise ParameterError(f"parameter {self.name!r}: {e.message}", hint=e.hint) from None
        except ValueError as e:
            raise ParameterError(f"parameter {self.name!r}: {e}") from None
        if self.choices:
            match = [c for c in self.choices if c.lower() == out.strip().lower()]
            if not match:
                raise ParameterError(f"parameter {self.name!r}: {out!r} is not one of {', '.join(self.choices)}")
            out = match[0]
        return out

    @property
    def type_text(self) -> str:
        return f"enum {'|'.join(self.choices)}" if self.choices else self.type

    def signature(self) -> str:
        """`name: type = default`, as `query --list` shows it."""
        if self.required:
            return f"{self.name}: {self.type_text}"
        default = "null" if self.default is None else repr(self.default)
        return f"{self.name}: {self.type_text} = {default}"
