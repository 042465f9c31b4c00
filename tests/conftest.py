"""Shared fixtures: small real files, workspaces on SQLite and on PostgreSQL."""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
import uuid
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import sqlalchemy as sa

DATA = Path(__file__).parent / "data"
CACHE = Path(__file__).resolve().parents[1] / ".cache"
LIFETIMES_WHEEL = "Lifetimes-0.11.3-py3-none-any.whl"
POSTGRES_URL = os.environ.get("TIERWISE_TEST_POSTGRES",
                              "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def _postgres_available() -> str | None:
    """None when the server answers, else why not."""
    try:
        engine = sa.create_engine(POSTGRES_URL)
        with engine.connect():
            pass
        engine.dispose()
        return None
    except Exception as error:  # any failure to connect means "no server here"
        return f"{type(error).__name__}: {str(error).splitlines()[0]}"


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A fresh PostgreSQL schema for the session's app-database tests."""
    problem = _postgres_available()
    if problem is not None:
        message = f"PostgreSQL at {POSTGRES_URL} does not answer ({problem})"
        if os.environ.get("TIERWISE_REQUIRE_POSTGRES"):
            pytest.fail(message + "; TIERWISE_REQUIRE_POSTGRES is set")
        pytest.skip(message + "; skipping PostgreSQL tests")
    yield POSTGRES_URL


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path,
                 monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Each app-database test runs on SQLite and on PostgreSQL (own schema per test)."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'app.db'}"
        monkeypatch.setenv("TIERWISE_DATABASE_URL", url)
        yield url
        return
    base = request.getfixturevalue("postgres_url")
    schema = f"tw_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(base)
    with admin.begin() as connection:
        connection.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    url = f"{base}?options=-csearch_path%3D{schema}"
    monkeypatch.setenv("TIERWISE_DATABASE_URL", url)
    try:
        yield url
    finally:
        with admin.begin() as connection:
            connection.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    """A copy of tests/data that a test may change."""
    target = tmp_path / "data"
    shutil.copytree(DATA, target)
    return target


@pytest.fixture
def ws(tmp_path: Path, database_url: str) -> Iterator[Any]:
    """A workspace with tests/data imported and policy.yaml, on SQLite and on PostgreSQL
    (test files with another kind of workspace define their own ``ws``)."""
    from tierwise.workspace import Workspace

    with Workspace.init(tmp_path / "ws", policy=str(DATA / "policy.yaml")) as workspace:
        for kind in ("customers", "orders", "interactions"):
            workspace.import_files(kind, [DATA / f"{kind}.csv"])
        yield workspace


@pytest.fixture(autouse=True)
def _isolated_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TIERWISE_WORKSPACE", raising=False)
    monkeypatch.delenv("TIERWISE_DATABASE_URL", raising=False)
    monkeypatch.setenv("TIERWISE_USER", "tester")


# --- CDNOW: the data set the customer-base models are published on --------------------------

@pytest.fixture(scope="session")
def lifetimes_wheel() -> Iterator[zipfile.ZipFile]:
    """The lifetimes 0.11.3 wheel, which ships the CDNOW data; downloaded once into .cache/.
    Only its data files are read: lifetimes' code is never imported."""
    wheel = CACHE / LIFETIMES_WHEEL
    if not wheel.exists():
        CACHE.mkdir(exist_ok=True)
        command = [sys.executable, "-m", "pip", "download", "lifetimes==0.11.3", "--no-deps",
                   "--only-binary=:all:", "-d", str(CACHE)]
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        if done.returncode != 0 or not wheel.exists():
            pytest.fail(
                f"cannot download the lifetimes 0.11.3 wheel that holds the CDNOW data into "
                f"{CACHE} (place {LIFETIMES_WHEEL} there by hand when offline):\n"
                f"{done.stderr[-2000:]}"
            )
    with zipfile.ZipFile(wheel) as archive:
        yield archive


def cdnow_dataset(wheel: zipfile.ZipFile, name: str) -> bytes:
    return wheel.read(f"lifetimes/datasets/{name}")


@pytest.fixture(scope="session")
def cdnow_orders(lifetimes_wheel: zipfile.ZipFile) -> pd.DataFrame:
    """CDNOW_sample.txt: master id, sample id (1..2357), date YYYYMMDD, quantity, amount."""
    raw = pd.read_csv(io.BytesIO(cdnow_dataset(lifetimes_wheel, "CDNOW_sample.txt")),
                      sep=r"\s+", header=None,
                      names=["master_id", "customer_id", "date", "qty", "amount"],
                      dtype={"date": str})
    raw["order_date"] = pd.to_datetime(raw["date"], format="%Y%m%d").dt.date
    return raw[["customer_id", "order_date", "amount"]]


# --- Browser: Debian's chromium driven by Playwright (see tests/browser.py) -------------------

SCREENSHOTS = Path(__file__).resolve().parents[1] / "test-output" / "screenshots"


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """A headless Chromium for the session; skips when /usr/bin/chromium is missing, unless
    TIERWISE_REQUIRE_BROWSER is set (as in CI), where it fails."""
    from playwright.sync_api import sync_playwright

    from tests.browser import chromium_unavailable, launch_chromium

    problem = chromium_unavailable()
    if problem is not None:
        if os.environ.get("TIERWISE_REQUIRE_BROWSER"):
            pytest.fail(problem + "; TIERWISE_REQUIRE_BROWSER is set")
        pytest.skip(problem + "; skipping browser tests")
    playwright = sync_playwright().start()
    try:
        chromium = launch_chromium(playwright)
        try:
            yield chromium
        finally:
            chromium.close()
    finally:
        playwright.stop()


@pytest.fixture(scope="session")
def screenshots_dir() -> Path:
    """test-output/screenshots at the repo root (ignored by git), for the browser tests."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return SCREENSHOTS


# --- Spark: one local session for the whole test run (tests/test_spark_*.py) ----------------

@pytest.fixture(scope="session")
def spark() -> Iterator[Any]:
    """A local[2] Spark session; skips without pyspark unless TIERWISE_REQUIRE_SPARK is set."""
    try:
        from pyspark.sql import SparkSession
    except ImportError:
        if os.environ.get("TIERWISE_REQUIRE_SPARK"):
            pytest.fail("pyspark is not installed; TIERWISE_REQUIRE_SPARK is set")
        pytest.skip("pyspark is not installed (pip install tierwise[spark])")
    session = (SparkSession.builder.master("local[2]").appName("tierwise-tests")
               .config("spark.ui.enabled", "false")
               .config("spark.sql.shuffle.partitions", "4")
               .config("spark.sql.session.timeZone", "UTC").getOrCreate())
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()
