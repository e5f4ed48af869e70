"""A scratch DuckDB database that counts distinct n-grams of a stream too large to hold in memory
(`analysis.lexical_stream`): bigrams as one 64-bit key, trigrams as a 32-bit id and a 64-bit key.
Its memory_limit makes DuckDB spill to the scratch folder, so memory stays flat however many."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pyarrow as pa

MEMORY_LIMIT = "256MB"


class DistinctGrams:
    def __init__(self, folder: Path):
        self.con = duckdb.connect(str(folder / "grams.duckdb"))
        self.con.execute(f"SET memory_limit = '{MEMORY_LIMIT}'")
        self.con.execute(f"SET temp_directory = '{folder / 'spill'}'")
        self.con.execute("SET preserve_insertion_order = false")
        self.con.execute("CREATE TABLE bigrams (k UBIGINT)")
        self.con.execute("CREATE TABLE trigrams (a UINTEGER, k UBIGINT)")

    def add(self, bigrams: pa.Table, trigrams: pa.Table) -> None:
        """Append bigrams (a column `k`) and trigrams (columns `a`, `k`)."""
        self.con.from_arrow(bigrams).insert_into("bigrams")
        self.con.from_arrow(trigrams).insert_into("trigrams")

    def distinct(self) -> tuple[int, int]:
        """(distinct bigrams, distinct trigrams); closes the database."""
        try:
            (bigrams,) = self.con.execute("SELECT count(*) FROM (SELECT DISTINCT k FROM bigrams)").fetchone()
            (trigrams,) = self.con.execute(
                "SELECT count(*) FROM (SELECT DISTINCT a, k FROM trigrams)"
            ).fetchone()
            return bigrams, trigrams
        finally:
            self.con.close()
