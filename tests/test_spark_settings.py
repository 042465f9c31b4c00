"""What a Spark session is started with (tierwise.data.engines.session_settings): on one
machine, shuffles in a few partitions per core instead of Spark's 200; on a cluster Spark's
own defaults; the user's engine.settings always win. No session is started here."""

from __future__ import annotations

import os

import pytest

from tierwise.data.engines import SMALL_INPUT_ROWS, EngineChoice, local_cores, session_settings

PARTITIONS = "spark.sql.shuffle.partitions"


@pytest.mark.parametrize(("master", "cores"), [
    ("local", 1), ("local[2]", 2), ("local[3, 4]", 3), ("local[*]", os.cpu_count()),
    ("spark://master:7077", None), ("yarn", None), ("sc://host:15002", None),
    ("local-cluster[2,1,1024]", None)])
def test_the_task_slots_of_a_master(master: str, cores: int | None) -> None:
    assert local_cores(master) == cores


def test_no_master_is_local_unless_spark_submit_started_the_process(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PYSPARK_GATEWAY_PORT", raising=False)
    assert local_cores(None) == os.cpu_count()
    monkeypatch.setenv("PYSPARK_GATEWAY_PORT", "40000")
    assert local_cores(None) is None


def test_a_local_session_shuffles_in_four_partitions_per_core() -> None:
    settings = session_settings(EngineChoice("spark", master="local[2]"))
    assert settings[PARTITIONS] == "8"
    assert settings["spark.sql.session.timeZone"] == "UTC"


def test_a_cluster_keeps_sparks_default_partitions() -> None:
    assert PARTITIONS not in session_settings(EngineChoice("spark", master="yarn"))


def test_the_users_settings_win() -> None:
    choice = EngineChoice("spark", master="local[2]",
                          settings={PARTITIONS: "400", "spark.ui.enabled": "true"})
    settings = session_settings(choice)
    assert settings[PARTITIONS] == "400" and settings["spark.ui.enabled"] == "true"


def test_a_small_local_run_starts_its_jvm_with_the_quick_compiler_only() -> None:
    """A run known to read few rows is mostly start-up and planning: C1 only. A large or an
    unknown input, or a cluster, keeps the JVM's defaults; a user's JVM options win."""
    java = "spark.driver.extraJavaOptions"
    local = EngineChoice("spark", master="local[2]")
    assert session_settings(local, input_rows=20_000)[java] == "-XX:TieredStopAtLevel=1"
    assert java not in session_settings(local, input_rows=SMALL_INPUT_ROWS + 1)
    assert java not in session_settings(local)
    assert java not in session_settings(EngineChoice("spark", master="yarn"), input_rows=10)
    mine = EngineChoice("spark", master="local[2]", settings={java: "-Xss4m"})
    assert session_settings(mine, input_rows=10)[java] == "-Xss4m"
