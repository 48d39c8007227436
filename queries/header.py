"""The header of a library file: ``--`` comment lines above the SQL, parsed into keys and `Param`s.

    -- name: sentences_mentioning
    -- description: Grounded sentences anywhere under a region whose text mentions a term.
    --   Indented lines continue the key above.
    -- param region (region, default lung): A region of the anatomy DAG; its whole subtree counts.
    -- param term (str): Word or phrase, matched literally and case-insensitively.
    -- param split (enum train|validation, optional): Only this split; every split when omitted.
    -- returns: case_id, region, anatomy_path, ordinal, text, is_abnormal
    -- needs: sentences
    -- example: term=nodule

`needs` names the tables the query reads data from: where one is empty in a snapshot, the query
says what the warehouse lacks (`QueryNotApplicableError`) instead of returning no rows.

The header ends at the first line that is not a ``--`` comment (a blank line, or the SQL).
"""

from __future__ import annotations

import re
from typing import Any

from queries.errors import ParameterError, QueryHeaderError
from queries.params import PARAM_TYPES, Param

HEADER_KEYS = ("name", "description", "param", "returns", "needs", "example")
_KEY_RE = re.compile(r"^--\s*(\w+)\s*:\s*(.*)$")
_PARAM_RE = re.compile(r"^--\s*param\s+(\w+)\s*\(([^)]*)\)\s*:\s*(.+)$")
_CONT_RE = re.compile(r"^--\s{2,}(\S.*)$")


def _parse_param(name: str, spec: str, description: str, where: str) -> Param:
    parts = [s.strip() for s in spec.split(",", 1)]
    type_spec, rest = parts[0], (parts[1] if len(parts) > 1 else "")
    choices: tuple[str, ...] = ()
    if type_spec.startswith("enum "):
        choices = tuple(c.strip() for c in type_spec[5:].split("|") if c.strip())
        type_spec = "enum"
        if not choices:
            raise QueryHeaderError(f"{where}: parameter {name!r}: enum without values")
    if type_spec not in PARAM_TYPES:
        raise QueryHeaderError(f"{where}: parameter {name!r} has unknown type {type_spec!r}",
                               hint=f"types: {', '.join(PARAM_TYPES)}")
    param = Param(name, type_spec, description, choices=choices)
    if not rest:
        return param
    if rest == "optional":
        return Param(name, type_spec, description, None, False, choices)
    if not rest.startswith("default "):
        raise QueryHeaderError(f"{where}: parameter {name!r}: expected 'default VALUE' or 'optional', got {rest!r}")
    raw = rest[len("default "):].strip()
    if len(raw) >= 2 and raw[0] == raw[-1] and raw[0] in "'\"":
        raw = raw[1:-1]
    try:
        default = param.convert(raw)
    except ParameterError as e:
        raise QueryHeaderError(f"{where}: bad default: {e.message}") from None
    return Param(name, type_spec, description, default, False, choices)


def parse_header(text: str, where: str = "<query>") -> tuple[dict[str, Any], str]:
    """The header's keys (params as `Param`s) and the SQL below it."""
    lines = text.splitlines()
    keys: dict[str, Any] = {"param": []}
    last: list[str] | None = None  # the value the next continuation line extends
    n_header = 0
    while n_header < len(lines) and lines[n_header].strip().startswith("--"):
        stripped, n_header = lines[n_header].strip(), n_header + 1
        if (m := _CONT_RE.match(stripped)) and last is not None:
            last.append(m.group(1).strip())
            continue
        if m := _PARAM_RE.match(stripped):
            last = [m.group(3).strip()]
            keys["param"].append((m.group(1), m.group(2), last))
            continue
        m = _KEY_RE.match(stripped)
        if not m or m.group(1) not in HEADER_KEYS or m.group(1) == "param":
            raise QueryHeaderError(f"{where}: line {n_header}: not a header line: {stripped!r}",
                                   hint=f"header keys: {', '.join(HEADER_KEYS)}; "
                                        "param lines read '-- param NAME (TYPE[, default V | , optional]): text'")
        if m.group(1) in keys:
            raise QueryHeaderError(f"{where}: line {n_header}: key {m.group(1)!r} given twice")
        last = [m.group(2).strip()]
        keys[m.group(1)] = last
    header = {k: " ".join(v) for k, v in keys.items() if k != "param"}
    names = [p[0] for p in keys["param"]]
    if len(set(names)) != len(names):
        raise QueryHeaderError(f"{where}: a parameter is declared twice: {names}")
    header["param"] = tuple(_parse_param(n, spec, " ".join(d), where) for n, spec, d in keys["param"])
    return header, "\n".join(lines[n_header:]).strip()


def parse_example(text: str, where: str) -> dict[str, str]:
    out = {}
    for item in re.findall(r"(\w+)=('[^']*'|\"[^\"]*\"|\S+)", text):
        key, value = item
        out[key] = value[1:-1] if value[:1] in "'\"" else value
    if text and not out:
        raise QueryHeaderError(f"{where}: example must read 'k=v k2=\"v 2\"', got {text!r}")
    return out
