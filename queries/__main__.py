"""`python -m queries snapshots` rewrites the Spark/Trino snapshots; `python -m queries list [--markdown]`
lists the named queries (the README's table comes from `--markdown`)."""

from __future__ import annotations

import sys

from queries.library import list_queries
from queries.portable import write_snapshots


def markdown() -> str:
    """The library as a Markdown table: name, parameters, what it answers."""
    rows = ["| query | parameters | answers |", "|---|---|---|"]
    for q in list_queries():
        params = ", ".join(f"`{p.signature()}`".replace("|", "\\|") for p in q.params) or "—"  # a cell
        rows.append(f"| `{q.name}` | {params} | {q.description} |")
    return "\n".join(rows)


def main(argv: list[str]) -> int:
    if argv[:1] == ["snapshots"]:
        changed = write_snapshots()
        for p in changed:
            print(f"wrote {p}")
        print(f"{len(changed)} snapshot file(s) changed")
        return 0
    if argv[:1] == ["list"]:
        if "--markdown" in argv:
            print(markdown())
            return 0
        for q in list_queries():
            print(f"{q.name}({', '.join(p.signature() for p in q.params)})\n    {q.description}")
        return 0
    print("usage: python -m queries snapshots | list [--markdown]", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
