"""Tables in and out: participants from spreadsheets, participants, plan and attendance to spreadsheets."""

from __future__ import annotations

from .exporting import EXPORTS, Table, export_table, table_for
from .importing import ImportResult, TableError, import_participants
from .translit import make_id, transliterate

__all__ = [
    "EXPORTS",
    "ImportResult",
    "Table",
    "TableError",
    "export_table",
    "import_participants",
    "make_id",
    "table_for",
    "transliterate",
]
