"""The explorer's result store: an SQLite database under ``build/explore/<space hash>/``.

Points are written in transactions as they finish. An exhaustive sweep writes a chunk of
points as one row (its columns as a NumPy ``.npz`` blob: 600,000 points store and load in a
fraction of a second, where a row per point takes seconds); a sampled search writes a row
per point and a transaction per generation. So a process killed at any instant leaves every
committed chunk whole and nothing of the chunk it was in. A rerun of the same space opens
the same database and evaluates only what is missing: no point is lost and none is
evaluated twice. Validation results are rows of their own table, written as each task
finishes.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np

__all__ = ["Store"]

SCHEMA_VERSION = 1


class Store:
    """One space's database.

    Parameters
    ----------
    path
        The database file (created with its folder when missing).
    stages
        The space's stage names: a point has ``pe__<stage>`` and ``simd__<stage>`` columns.
    columns
        The value columns of a point (:data:`codesign.explore.evaluate.COLUMNS`).
    knobs
        The knob columns, when they are not the stages' PE and SIMD (a TULIP space's).
    """

    def __init__(
        self,
        path: str | Path,
        stages: Iterable[str],
        columns: Iterable[str],
        knobs: Iterable[str] | None = None,
    ) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.stages = tuple(stages)
        self.columns = tuple(columns)
        if knobs is None:
            knobs = (f"{k}__{s}" for s in self.stages for k in ("pe", "simd"))
        self.knobs = tuple(knobs)
        # one writer; autocommit off, transactions by `with self.db`
        self.db = sqlite3.connect(self.path, isolation_level="DEFERRED")
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        cols = ", ".join(
            ["id INTEGER PRIMARY KEY", "context INTEGER", "clock_mhz REAL"]
            + [f'"{k}" INTEGER' for k in self.knobs]
            + [f'"{c}" REAL' for c in self.columns]
            + ["feasible INTEGER"]
        )
        with self.db:
            self.db.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT)")
            self.db.execute(f"CREATE TABLE IF NOT EXISTS points ({cols})")
            self.db.execute(
                "CREATE TABLE IF NOT EXISTS chunks (id INTEGER PRIMARY KEY, n INTEGER, data BLOB)"
            )
            self.db.execute(
                "CREATE TABLE IF NOT EXISTS validation (id INTEGER PRIMARY KEY, result TEXT)"
            )
            self.db.execute(
                "INSERT OR IGNORE INTO meta VALUES ('schema', ?)", (str(SCHEMA_VERSION),)
            )

    def close(self) -> None:
        self.db.close()

    # -- meta ----------------------------------------------------------------------------

    def set_meta(self, key: str, value) -> None:
        with self.db:
            self.db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, json.dumps(value)))

    def meta(self, key: str, default=None):
        row = self.db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return default if row is None else json.loads(row[0])

    # -- points --------------------------------------------------------------------------

    def done_chunks(self) -> set[int]:
        return {r[0] for r in self.db.execute("SELECT id FROM chunks")}

    def count(self) -> int:
        """Points stored (in chunks and as rows)."""
        rows = self.db.execute("SELECT COUNT(*) FROM points").fetchone()[0]
        chunked = self.db.execute("SELECT COALESCE(SUM(n), 0) FROM chunks").fetchone()[0]
        return rows + chunked

    def add_chunk(self, chunk: int, rows: Mapping[str, np.ndarray]) -> None:
        """Store chunk ``chunk`` of a sweep (columns as :meth:`add` takes them, ``context``
        as the context's index) in one transaction."""
        import io

        names = ["id", "context", "clock_mhz", *self.knobs, *self.columns, "feasible"]
        buf = io.BytesIO()
        np.savez(buf, **{n: np.asarray(rows[n]) for n in names})
        with self.db:
            self.db.execute(
                "INSERT INTO chunks VALUES (?, ?, ?)",
                (int(chunk), len(rows["id"]), buf.getvalue()),
            )

    def known(self, ids: np.ndarray) -> np.ndarray:
        """Which of ``ids`` are stored already (a boolean mask)."""
        ids = np.asarray(ids, dtype=np.int64)
        have: set[int] = set()
        step = 900  # SQLite's default limit of bound parameters is 999
        for i in range(0, len(ids), step):
            part = ids[i : i + step].tolist()
            q = f"SELECT id FROM points WHERE id IN ({','.join('?' * len(part))})"
            have.update(r[0] for r in self.db.execute(q, part))
        return np.fromiter((i in have for i in ids.tolist()), dtype=bool, count=len(ids))

    def add(self, rows: Mapping[str, np.ndarray]) -> None:
        """Insert evaluated points (columns ``id``, ``context`` (index), ``clock_mhz``, the
        knobs, the values and ``feasible``) in one transaction."""
        names = ["id", "context", "clock_mhz", *self.knobs, *self.columns, "feasible"]
        data = []
        for k in names:
            v = rows[k]
            if isinstance(v, np.ndarray):
                v = v.astype(np.int64).tolist() if v.dtype.kind in "biu" else v.tolist()
            data.append(v)
        cols = ",".join('"' + n + '"' for n in names)
        q = f"INSERT OR IGNORE INTO points ({cols}) VALUES ({','.join('?' * len(names))})"
        with self.db:
            self.db.executemany(q, zip(*data, strict=True))

    def values(self, ids: np.ndarray) -> dict[str, np.ndarray]:
        """The stored ``id``, value columns and ``feasible`` of ``ids`` (all stored), as
        arrays ordered by id."""
        ids = np.unique(np.asarray(ids, dtype=np.int64))
        names = ["id", *self.columns, "feasible"]
        got = []
        step = 900
        sel = ",".join('"' + n + '"' for n in names)
        for i in range(0, len(ids), step):
            part = ids[i : i + step].tolist()
            q = f"SELECT {sel} FROM points WHERE id IN ({','.join('?' * len(part))}) ORDER BY id"
            got += self.db.execute(q, part).fetchall()
        arr = np.array(got, dtype=np.float64).reshape(-1, len(names))
        out = {n: arr[:, k] for k, n in enumerate(names)}
        out["id"] = out["id"].astype(np.int64)
        out["feasible"] = out["feasible"].astype(bool)
        return out

    def frame(self):
        """Every stored point as a pandas DataFrame, ordered by id (``context`` as the
        context's index)."""
        import io

        import pandas as pd

        parts = []
        for (blob,) in self.db.execute("SELECT data FROM chunks ORDER BY id"):
            with np.load(io.BytesIO(blob)) as z:
                parts.append(pd.DataFrame({k: z[k] for k in z.files}))
        rows = pd.read_sql_query("SELECT * FROM points ORDER BY id", self.db)
        if len(rows) or not parts:
            parts.append(rows)
        df = pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0]
        df = df.sort_values("id", kind="stable", ignore_index=True)
        df["feasible"] = df["feasible"].astype(bool)
        return df

    # -- validation ----------------------------------------------------------------------

    def add_validation(self, point_id: int, result: Mapping) -> None:
        with self.db:
            self.db.execute(
                "INSERT OR REPLACE INTO validation VALUES (?, ?)",
                (int(point_id), json.dumps(dict(result), sort_keys=True)),
            )

    def validations(self) -> dict[int, dict]:
        return {r[0]: json.loads(r[1]) for r in self.db.execute("SELECT * FROM validation")}
