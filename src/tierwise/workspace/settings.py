"""tierwise.yaml: the workspace's settings file, its template, and where a workspace is."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML

from tierwise.data import engines
from tierwise.data import sources as data_sources
from tierwise.data.ingest.fields import EARLIEST_DATE, MAX_AMOUNT, Plausible
from tierwise.data.store import DEFAULT_MEMORY_LIMIT
from tierwise.errors import WorkspaceError
from tierwise.work import schedule as scheduling
from tierwise.work import webhooks

CONFIG_NAME = "tierwise.yaml"


CONFIG_TEMPLATE = """\
# tierwise workspace settings — 客户分级工作区设置
#
# policy: the tier policy that grades this workspace: a preset name ({presets})
#   or a policy file relative to this folder. Edit policy.yaml to change tiers and rules,
#   then check it with `tierwise policy check policy.yaml`.
#   分级策略：内置预设名称，或本文件夹内的策略文件（可直接编辑 policy.yaml）。
policy: {policy}

# language of tables and exports: zh (中文) or en
language: zh

# import: the dates a book may hold; a row dated outside them is rejected (with its reason)
#   and a run as of such a date refused. 导入日期范围：超出范围的日期视为错误数据。
# import:
#   earliest_date: 1900-01-01
#   years_ahead: 1          # invoices may fall due up to a year ahead
#   max_amount: 1e12        # no order, cost or invoice is larger (1万亿)

# database: where runs, history and overrides are kept. Default: tierwise.db (SQLite) in this
#   folder. The TIERWISE_DATABASE_URL environment variable wins over this setting, e.g.
#   postgresql://user@127.0.0.1:5432/tierwise
#   应用数据库：默认为本文件夹内的 SQLite 文件；可改为 PostgreSQL。
# database: sqlite:///tierwise.db

# engine: duckdb (embedded, the default) or spark (pip install 'tierwise[spark]'; see
#   docs/scale.md). DuckDB spills to data/spill/ beyond its memory limit instead of taking
#   the machine's memory. 计算引擎：默认内嵌 DuckDB（内存上限、线程数）；数据量大时可用 Spark。
# engine:
#   memory_limit: 4GB
#   threads: 4
# engine:
#   name: spark
#   master: spark://spark-master:7077          # yarn, sc://host:15002; default local[*]
#   settings: {{spark.executor.memory: 16g, spark.sql.shuffle.partitions: "400"}}
#   assignments: s3a://lake/tierwise/assignments  # default: runs/assignments/

# schedule: when runs are due; `tierwise run-due` (cron, systemd timer) and `tierwise serve`
#   run each due run once. Monthly on the 1st at 06:00, as of the previous month's last day:
#   定期分级：每月1日 06:00 按上月末重新分级（或每周：every: week, day: mon，按上周日）。
# schedule:
#   every: month
#   day: 1
#   at: "06:00"

# webhooks: URLs that receive a signed JSON POST when a run completes (run.completed),
#   customers move up or down (tier.changed) or a warning is raised (warning.created).
#   Each request carries X-Tierwise-Signature: sha256=HMAC-SHA256(secret, "timestamp.body");
#   failed deliveries are retried with backoff and never fail a run. Try them with
#   `tierwise webhooks test`; see what was sent with `tierwise webhooks log`.
#   Webhook 通知：分级完成、客户升降级、新预警时向这些地址发送带签名的 JSON 请求；
#   发送失败会自动重试并记录，不影响分级。
# webhooks:
#   - url: https://example.com/hooks/tierwise
#     secret_env: TIERWISE_WEBHOOK_SECRET   # or secret: "…"  签名密钥（建议放在环境变量中）
#     events: [run.completed, tier.changed, warning.created]   # 订阅的事件
#     timeout: 5                            # seconds per attempt 每次请求的超时（秒）
"""


def resolve_root(path: str | Path | None = None) -> Path:
    """-w/--workspace, else TIERWISE_WORKSPACE, else the current folder."""
    chosen = path or os.environ.get("TIERWISE_WORKSPACE") or "."
    return Path(chosen).expanduser().resolve()


class Settings:
    """tierwise.yaml, read once. Each section is parsed where it is used (and its errors
    name the setting), so that a bad ``webhooks:`` does not stop ``tierwise runs``.

    >>> Settings.load(Path("mycompany")).language      # doctest: +SKIP
    'zh'
    """

    def __init__(self, path: Path, values: dict[str, Any]) -> None:
        self.path = path
        self.values = values

    @classmethod
    def load(cls, root: Path) -> Settings:
        """The settings of the workspace at ``root``; a WorkspaceError when it is none."""
        path = root / CONFIG_NAME
        if not path.exists():
            raise WorkspaceError(
                f"{root} is not a tierwise workspace (no {CONFIG_NAME}); "
                f"create one with: tierwise init {root}")
        return cls(path, dict(YAML(typ="safe").load(path) or {}))

    @property
    def root(self) -> Path:
        return self.path.parent

    @property
    def policy(self) -> str:
        """The policy that grades the workspace: a preset name or a file in the folder."""
        return str(self.values.get("policy") or "value-tiers")

    @property
    def language(self) -> str:
        return str(self.values.get("language") or "zh")

    @property
    def database_url(self) -> str:
        """TIERWISE_DATABASE_URL, else ``database:``, else tierwise.db in the folder; a
        relative SQLite path is taken relative to the workspace."""
        url = os.environ.get("TIERWISE_DATABASE_URL") or self.values.get("database")
        if not url:
            return f"sqlite:///{self.root / 'tierwise.db'}"
        url = str(url)
        if url.startswith("sqlite:///") and not url.startswith("sqlite:////"):
            return f"sqlite:///{self.root / url.removeprefix('sqlite:///')}"
        return url

    def engine(self, override: str | None = None) -> engines.EngineChoice:
        """``engine:`` (tierwise.data.engines); ``override`` is --engine."""
        return engines.parse_engine(self.values.get("engine"), override=override,
                                    source=str(self.path))

    def duckdb_settings(self) -> dict[str, Any]:
        """``engine:``'s memory_limit and threads for DuckDB connections: the store is DuckDB
        whichever engine grades; beyond the limit DuckDB spills to data/spill/."""
        choice = self.engine("duckdb")
        return {"memory_limit": choice.memory_limit or DEFAULT_MEMORY_LIMIT,
                "threads": choice.threads,
                "temp_directory": self.root / "data" / "spill"}

    def schedule(self) -> scheduling.Schedule | None:
        """``schedule:`` (tierwise.work.schedule), or None."""
        return scheduling.parse_schedule(self.values.get("schedule"), source=str(self.path))

    def webhooks(self) -> list[webhooks.Endpoint]:
        """``webhooks:`` (a WorkspaceError naming the setting if invalid)."""
        return webhooks.parse_endpoints(self.values.get("webhooks"), source=str(self.path))

    def sources(self) -> list[data_sources.Source]:
        """``sources:`` (tierwise.data.sources): where the book is read from."""
        return data_sources.parse_sources(self.values.get("sources"), source=str(self.path))

    def plausible(self) -> Plausible:
        """``import:``'s ``earliest_date``, ``years_ahead`` and ``max_amount``: the dates a
        book may hold (default 1900-01-01 to a year after today) and the largest amount
        (default 1e12); imports reject others, runs refuse an as-of date outside them."""
        section = self.values.get("import") or {}
        where = f"{self.path}: import"
        if not isinstance(section, dict):
            raise WorkspaceError(f"{where}: expected a mapping (earliest_date, years_ahead)")
        earliest = section.get("earliest_date", EARLIEST_DATE)
        ahead = section.get("years_ahead", 1)
        if isinstance(earliest, str):
            try:
                earliest = dt.date.fromisoformat(earliest)
            except ValueError:
                earliest = None
        if not isinstance(earliest, dt.date):
            raise WorkspaceError(f"{where}.earliest_date: expected a date YYYY-MM-DD")
        if isinstance(ahead, bool) or not isinstance(ahead, int) or not 0 <= ahead <= 100:
            raise WorkspaceError(f"{where}.years_ahead: expected a whole number of years "
                                 "from 0 to 100")
        largest = section.get("max_amount", MAX_AMOUNT)
        if isinstance(largest, bool) or not isinstance(largest, int | float) or not (
                0 < largest <= 1e15):
            raise WorkspaceError(f"{where}.max_amount: expected a number above 0, at most 1e15")
        return Plausible(earliest, ahead, float(largest))

    def max_upload_bytes(self) -> int:
        """``web: max_upload_mb``: the largest file the workbench and the API take (100)."""
        section = self.values.get("web") or {}
        value = section.get("max_upload_mb", 100) if isinstance(section, dict) else None
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= 10_000:
            raise WorkspaceError(f"{self.path}: web.max_upload_mb: expected megabytes from 1 "
                                 "to 10000")
        return int(value * (1 << 20))

    def set(self, key: str, value: Any) -> None:
        """Change one top-level setting in the file, keeping its comments."""
        yaml = YAML()
        data = yaml.load(self.path)
        data[key] = value
        with self.path.open("w", encoding="utf-8") as handle:
            yaml.dump(data, handle)
        self.values[key] = value
