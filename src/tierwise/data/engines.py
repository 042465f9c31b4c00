"""What differs between the engines an Ibis expression runs on: DuckDB (embedded, the
default) and Apache Spark. Everything else — metrics, scores, rules, tiers — is the same
Ibis code on both (tierwise.metrics.per_customer, tierwise.grading.run).

The engine is configuration, not code: ``engine:`` in tierwise.yaml, or ``--engine``::

    engine: spark                       # or duckdb, the default
    # or, with settings:
    engine:
      name: spark
      master: spark://spark-master:7077 # yarn, sc://host:15002 …; default: spark-submit's
                                        # --master, else local[*]
      settings: {spark.executor.memory: 8g, spark.sql.shuffle.partitions: 400}
      assignments: s3a://lake/tierwise/assignments   # default: <workspace>/runs/assignments
"""

from __future__ import annotations

import os
import re
import shutil
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import ibis.expr.types as ir

from tierwise.errors import WorkspaceError

ENGINES = ("duckdb", "spark")
# A run that reads at most this many rows (all kinds), known before it starts, is small:
# on a local master it is started for a short life (_local_defaults). Measured up to 1M
# orders and 50k customers (benchmarks/spark_small.py): no slower with the quick compiler.
SMALL_INPUT_ROWS = 1_100_000
# JDBC drivers from Debian's packages libpostgresql-jdbc-java and libmariadb-java: Spark's
# JDBC sources use them; nothing is downloaded at run time.
DEBIAN_JDBC_JARS = ("/usr/share/java/postgresql.jar", "/usr/share/java/mariadb-java-client.jar")
_SPARK_DEFAULTS = {
    "spark.sql.session.timeZone": "UTC",       # dates must not shift with the driver's zone
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
    "spark.sql.parquet.outputTimestampType": "TIMESTAMP_MICROS",
}


@dataclass(frozen=True)
class EngineChoice:
    """tierwise.yaml's ``engine:``."""

    name: str = "duckdb"
    master: str | None = None             # None: spark-submit's --master, else local[*]
    settings: dict[str, str] = field(default_factory=dict)
    assignments: str | None = None        # where Spark writes assignments; None: the workspace
    memory_limit: str | None = None       # DuckDB
    threads: int | None = None            # DuckDB

    @property
    def is_spark(self) -> bool:
        return self.name == "spark"


def parse_engine(value: Any, *, source: str, override: str | None = None) -> EngineChoice:
    """``engine:`` as a name or a mapping; ``override`` (from --engine) replaces the name."""
    if value is None or isinstance(value, str):
        settings: Mapping[str, Any] = {"name": value or "duckdb"}
    elif isinstance(value, Mapping):
        settings = value
    else:
        raise WorkspaceError(f"{source}: engine: expected duckdb, spark or a mapping")
    known = {"name", "master", "settings", "assignments", "memory_limit", "threads"}
    unknown = sorted(set(settings) - known)
    if unknown:
        raise WorkspaceError(f"{source}: engine: unknown setting {unknown[0]!r}; settings: "
                             + ", ".join(sorted(known)))
    name = str(override or settings.get("name") or "duckdb").lower()
    if name not in ENGINES:
        raise WorkspaceError(f"{source}: engine {name!r} is not known; engines: "
                             + ", ".join(ENGINES))
    spark_settings = settings.get("settings") or {}
    if not isinstance(spark_settings, Mapping):
        raise WorkspaceError(f"{source}: engine.settings: expected key: value pairs")
    threads = settings.get("threads")
    return EngineChoice(
        name=name, master=str(settings["master"]) if settings.get("master") else None,
        settings={str(k): str(v) for k, v in spark_settings.items()},
        assignments=str(settings["assignments"]) if settings.get("assignments") else None,
        memory_limit=str(settings["memory_limit"]) if settings.get("memory_limit") else None,
        threads=int(threads) if threads else None)


def spark_session(choice: EngineChoice, *, input_rows: int | None = None) -> Any:
    """The Spark session for ``choice`` (the running one if there is one): a master URL or a
    Spark Connect endpoint (sc://), tierwise's defaults, then the user's settings.
    ``input_rows``: the rows the run reads, when known before it starts (see
    :func:`session_settings`)."""
    try:
        from pyspark.sql import SparkSession
    except ImportError:
        raise WorkspaceError("engine spark needs pyspark: pip install 'tierwise[spark]'"
                             ) from None
    builder = SparkSession.builder.appName("tierwise")
    connect = choice.master is not None and choice.master.startswith("sc://")
    if choice.master is not None and connect:
        builder = builder.remote(choice.master)
    elif choice.master:
        # Set only when configured: a master set here would override spark-submit's.
        builder = builder.master(choice.master)
    for key, value in session_settings(choice, input_rows=input_rows).items():
        builder = builder.config(key, value)
    try:
        session = builder.getOrCreate()
    except Exception as error:
        raise WorkspaceError(f"cannot start Spark on {choice.master or 'local[*]'}: "
                             f"{str(error).splitlines()[0]}") from None
    if not connect:
        session.sparkContext.setLogLevel("ERROR")
    return session


def session_settings(choice: EngineChoice, *, input_rows: int | None = None) -> dict[str, str]:
    """What a session is started with: tierwise's defaults, those of a local master (and of
    a small run on one: ``input_rows`` at most SMALL_INPUT_ROWS), the JDBC driver jars that
    are installed, then the user's ``engine.settings``, which win."""
    small = input_rows is not None and input_rows <= SMALL_INPUT_ROWS
    settings = {**_SPARK_DEFAULTS, **_local_defaults(choice.master, small=small),
                **choice.settings}
    connect = choice.master is not None and choice.master.startswith("sc://")
    jars = [jar for jar in DEBIAN_JDBC_JARS if os.path.exists(jar)]
    if jars and "spark.jars" not in settings and not connect:
        settings["spark.jars"] = ",".join(jars)
    return settings


def local_cores(master: str | None) -> int | None:
    """The task slots of a local master (``local``, ``local[N]``, ``local[*]``,
    ``local[N, F]``); None for a cluster. No master is local[*], unless spark-submit started
    this process (it passed its own)."""
    if master is None:
        if os.environ.get("PYSPARK_GATEWAY_PORT"):        # inside spark-submit
            return None
        master = "local[*]"
    found = re.fullmatch(r"local(?:\[(\*|\d+)(?:,\s*\d+)?\])?", master.strip())
    if found is None:
        return None
    slots = found.group(1)
    if slots is None:
        return 1
    return os.cpu_count() or 1 if slots == "*" else max(1, int(slots))


def _local_defaults(master: str | None, *, small: bool = False) -> dict[str, str]:
    """On one machine, Spark's default of 200 shuffle partitions makes 200 tasks of every
    shuffle (and 200 ranges of every rank, tierwise.metrics.ranking) for a few cores; four
    per core keeps every core busy (engines benchmark: 8 on local[2] at 50M orders).

    A small run on one machine is mostly the JVM starting and Spark planning, not
    computing: there the JVM compiles with its quick compiler only (C1), which halves the
    session's start on two cores (benchmarks/spark_small.py); a long run keeps the
    optimising one (C2), whose code is faster once compiled."""
    cores = local_cores(master)
    if cores is None:
        return {}
    found = {"spark.sql.shuffle.partitions": str(4 * cores)}
    if small:
        found["spark.driver.extraJavaOptions"] = "-XX:TieredStopAtLevel=1"
    return found


def spark_backend(choice: EngineChoice, *, input_rows: int | None = None) -> Any:
    import ibis

    return ibis.pyspark.connect(spark_session(choice, input_rows=input_rows))


def _double_literals() -> None:
    """Ibis writes a float literal as ``0.5``, which Spark SQL reads as DECIMAL(1,1): an
    integer column times it is then decimal arithmetic, whose divisions round to six places
    (Gamma-Gamma's expected value came out 2e-7 off DuckDB's). Typed as DOUBLE, every float
    literal computes as on DuckDB."""
    try:
        from ibis.backends.sql.compilers.pyspark import PySparkCompiler
    except ImportError:                         # pragma: no cover - Ibis always has it
        return
    original = PySparkCompiler.visit_NonNullLiteral
    if getattr(original, "tierwise_double", False):
        return

    def visit_NonNullLiteral(self: Any, op: Any, *, value: Any, dtype: Any) -> Any:
        result = original(self, op, value=value, dtype=dtype)
        if dtype.is_floating() and result is not None:
            return self.cast(result, dtype)
        return result

    visit_NonNullLiteral.tierwise_double = True   # type: ignore[attr-defined]
    PySparkCompiler.visit_NonNullLiteral = visit_NonNullLiteral


_double_literals()


def is_spark(backend: Any) -> bool:
    return str(getattr(backend, "name", "")) == "pyspark"


@contextmanager
def described(backend: Any, what: str) -> Iterator[None]:
    """Name the Spark jobs run inside (Spark's UI and event log show "tierwise: metrics"
    instead of a query plan); nothing on DuckDB or Spark Connect."""
    context = _spark_context(backend)
    if context is None:
        yield
        return
    previous = context.getLocalProperty("spark.job.description")
    context.setJobDescription(f"tierwise: {what}")
    try:
        yield
    finally:
        context.setJobDescription(previous)


def _spark_context(backend: Any) -> Any:
    if not is_spark(backend):
        return None
    try:
        return backend._session.sparkContext
    except Exception:              # Spark Connect sessions have none
        return None


def materialise(backend: Any, name: str, expr: ir.Table) -> ir.Table:
    """Compute ``expr`` once and keep it for the run: a temporary table on DuckDB; on Spark,
    which has no temporary tables, a temporary view held in Spark's cache."""
    if is_spark(backend):
        # A view of the analysed plan, not of the SQL text: it stays valid when the views
        # it was computed from are released.
        backend._run_pre_execute_hooks(expr)       # registers the in-memory tables it reads
        frame = backend._session.sql(backend.compile(expr)).cache()
        frame.count()
        frame.createOrReplaceTempView(name)
        return backend.table(name)
    return backend.create_table(name, expr, temp=True)


Measure = Callable[[ir.Table], ir.Scalar]


def materialise_measured(backend: Any, name: str, expr: ir.Table,
                         measures: Mapping[str, Measure]) -> tuple[ir.Table, dict[str, Any]]:
    """:func:`materialise`, with aggregates of what it holds (``measures``: name → a
    function from the table to a scalar) computed in the same pass: on Spark the aggregate
    is the action that fills the cache, so a count and a query become one action."""
    if is_spark(backend):
        backend._run_pre_execute_hooks(expr)
        frame = backend._session.sql(backend.compile(expr)).cache()
        frame.createOrReplaceTempView(name)
        table = backend.table(name)
    else:
        table = backend.create_table(name, expr, temp=True)
    found = backend.to_pyarrow(table.aggregate(
        **{key: measure(table) for key, measure in measures.items()})).to_pylist()
    return table, found[0]


def release(backend: Any, name: str) -> None:
    """Drop what :func:`materialise` made (and Spark's cached copy of it)."""
    if is_spark(backend):
        catalog = backend._session.catalog
        if catalog.tableExists(name):
            catalog.uncacheTable(name)
            catalog.dropTempView(name)
        return
    backend.drop_table(name, force=True)


# -- datasets the engine writes -----------------------------------------------------------

def is_local(location: str) -> bool:
    scheme = urlparse(location).scheme
    return scheme in ("", "file") or len(scheme) == 1      # "C:" on Windows


def local_path(location: str) -> Path:
    return Path(urlparse(location).path if location.startswith("file:") else location)


def staging_location(folder: str) -> str:
    return f"{folder.rstrip('/')}/_staging-{uuid.uuid4().hex}"


def rename_dataset(backend: Any, source: str, target: str) -> None:
    """Move a written dataset into place: os.replace on a local disk, else the Hadoop
    FileSystem rename (HDFS, S3A, ABFS …) of the Spark session."""
    if is_local(source):
        target_path = local_path(target)
        if target_path.exists():         # left by a run that failed after its write
            shutil.rmtree(target_path)
        target_path.parent.mkdir(parents=True, exist_ok=True)
        os.replace(local_path(source), target_path)
        return
    jvm = backend._session._jvm
    hadoop = jvm.org.apache.hadoop.fs.Path
    conf = backend._session._jsc.hadoopConfiguration()
    src, dst = hadoop(source), hadoop(target)
    fs = src.getFileSystem(conf)
    if fs.exists(dst):
        fs.delete(dst, True)
    fs.mkdirs(dst.getParent())
    if not fs.rename(src, dst):
        raise WorkspaceError(f"cannot move the run's assignments from {source} to {target}")


def remove_dataset(backend: Any, location: str) -> None:
    """Best-effort removal of a staging dataset after a failed run."""
    try:
        if is_local(location):
            shutil.rmtree(local_path(location), ignore_errors=True)
            return
        jvm = backend._session._jvm
        path = jvm.org.apache.hadoop.fs.Path(location)
        path.getFileSystem(backend._session._jsc.hadoopConfiguration()).delete(path, True)
    except Exception:          # the run failed already; its own error is the one to show
        pass
