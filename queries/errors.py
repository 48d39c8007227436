"""The query library's errors: one root, `QueryLibraryError`, itself a `WarehouseError`."""

from __future__ import annotations

from warehouse.core.errors import WarehouseError


class QueryLibraryError(WarehouseError):
    """Root of the query library's errors."""


class QueryHeaderError(QueryLibraryError):
    """A library file whose header or SQL breaks the library's rules."""


class UnknownQueryError(QueryLibraryError, KeyError):
    """A query name that is not in the library; the message names the closest ones."""

    def __str__(self) -> str:  # KeyError would quote the message
        return WarehouseError.__str__(self)


class ParameterError(QueryLibraryError, ValueError):
    """A parameter that is missing, unknown, or of the wrong type."""


class QueryNotApplicableError(QueryLibraryError):
    """A named query whose tables are empty in this snapshot: it says so instead of returning no rows."""

    exit_code = 1
