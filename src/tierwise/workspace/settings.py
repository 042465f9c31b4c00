"""tierwise.yaml: the workspace's settings file, its template, and where a workspace is."""

from __future__ import annotations

import os
from pathlib import Path

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
