"""radgenome-warehouse: an analytical warehouse for grounded chest-CT vision-language data.

``from warehouse import Warehouse`` is the entry point; importing the package stays light
(no torch, no monai, no DuckDB until used).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

__version__ = "0.1.0"
__all__ = ["Warehouse", "__version__"]

if TYPE_CHECKING:
    from warehouse.api import Warehouse


def __getattr__(name: str):
    if name == "Warehouse":
        from warehouse.api import Warehouse

        return Warehouse
    raise AttributeError(name)
