"""The named query library (`queries/*.sql`) and its portable-SQL tooling.

>>> from queries import list_queries, render, transpile
>>> sql, params = render("sentences_mentioning", region="lung", term="nodule")
>>> transpile(sql, "trino").problems
()

`Warehouse.query(name, **params)` and `radgenome query NAME --param k=v` run them.
"""

from __future__ import annotations

from queries.errors import ParameterError, QueryHeaderError, QueryLibraryError, UnknownQueryError
from queries.library import NamedQuery, check_columns, check_library_sql, get_query, list_queries, render
from queries.params import Param
from queries.portable import DIALECTS, Problem, TranspileError, TranspileResult, transpile

__all__ = [
    "DIALECTS", "NamedQuery", "Param", "ParameterError", "Problem", "QueryHeaderError", "QueryLibraryError",
    "TranspileError", "TranspileResult", "UnknownQueryError", "check_columns", "check_library_sql",
    "get_query", "list_queries", "render", "transpile",
]
