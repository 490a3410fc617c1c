"""The baseline for `liaptui-bench ingest`: what a quick Python sidecar would do.

usage: naive_ingest.py LOG_DIR DB
Reads every metrics_*.jsonl in LOG_DIR with json.loads and inserts each line into
SQLite (one transaction, executemany, WAL). Prints lines and seconds.
"""
import glob
import json
import os
import sqlite3
import sys
import time
from datetime import datetime, timezone

FIELDS = ["cpu_percent", "memory_percent", "memory_mb", "process_cpu_percent", "rss_mb", "connections",
          "active_rooms", "active_games", "players", "messages_in", "messages_out", "games_started",
          "games_finished", "errors", "uptime_s", "interval_s", "write_errors"]
LATENCY = ["p50", "p95", "p99", "max", "count"]


def main(log_dir, db_path):
    if os.path.exists(db_path):
        os.remove(db_path)
    con = sqlite3.connect(db_path)
    con.execute("PRAGMA journal_mode=WAL")
    columns = FIELDS + ["latency_" + q for q in LATENCY]
    con.execute(f"CREATE TABLE samples (instance_id TEXT, ts INTEGER, {', '.join(c + ' REAL' for c in columns)}, "
                "PRIMARY KEY (instance_id, ts)) WITHOUT ROWID")
    started = time.perf_counter()
    lines = 0
    rows = []
    for path in sorted(glob.glob(os.path.join(log_dir, "metrics_*.jsonl"))):
        with open(path, "rb") as f:
            for line in f:
                record = json.loads(line)
                ts = int(datetime.fromisoformat(record["timestamp"].replace("Z", "+00:00"))
                         .astimezone(timezone.utc).timestamp() * 1000)
                latency = record.get("latency_ms") or {}
                rows.append([record.get("instance_id", "seed"), ts] + [record.get(k) for k in FIELDS]
                            + [latency.get(q) for q in LATENCY])
                lines += 1
    with con:
        con.executemany(f"INSERT OR IGNORE INTO samples VALUES ({', '.join('?' * (len(columns) + 2))})", rows)
    elapsed = time.perf_counter() - started
    print(f"lines={lines} seconds={elapsed:.3f}")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
