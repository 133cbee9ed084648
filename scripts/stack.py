"""Run echod and Prometheus as local processes: the compose stack without Docker or Envoy.

echod serves HTTP on 3000 and HTTPS on 10000. Prometheus, on http://localhost:9000/,
scrapes echod and itself with deploy/prometheus/prometheus.yaml (its targets rewritten to
these ports) and loads the alert rules. Ctrl-C stops both. ``make stack`` runs this.
"""

from __future__ import annotations

import argparse
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

PROMETHEUS_DIR = Path(__file__).resolve().parents[1] / "deploy" / "prometheus"
ECHOD = Path(sys.executable).with_name("echod")
#: Seconds each process gets to stop on its own before it is killed.
STOP_TIMEOUT = 30.0


def local_config(echod_port: int, prometheus_port: int) -> dict[str, Any]:
    """The compose stack's Prometheus config, scraping echod and Prometheus on localhost."""
    config: dict[str, Any] = yaml.safe_load((PROMETHEUS_DIR / "prometheus.yaml").read_text())
    config["rule_files"] = [str(PROMETHEUS_DIR / name) for name in config["rule_files"]]
    targets = {"echod": f"localhost:{echod_port}", "prometheus": f"localhost:{prometheus_port}"}
    config["scrape_configs"] = [
        {**job, "static_configs": [{"targets": [targets[job["job_name"]]]}]}
        for job in config["scrape_configs"]
        if job["job_name"] in targets  # Envoy does not run here
    ]
    return config


def stop(process: subprocess.Popen[bytes]) -> int:
    """Stop ``process`` with SIGTERM (SIGKILL after :data:`STOP_TIMEOUT`); return its status."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
    return process.wait()


def main(argv: list[str] | None = None) -> int:
    """Run the stack until Ctrl-C or SIGTERM; return 0 if both processes stopped cleanly."""
    parser = argparse.ArgumentParser(description="Run echod and Prometheus until Ctrl-C.")
    parser.add_argument("--port", type=int, default=3000, help="echod's HTTP port")
    parser.add_argument("--tls-port", type=int, default=10000, help="echod's HTTPS port")
    parser.add_argument("--prometheus-port", type=int, default=9000, help="Prometheus's port")
    args = parser.parse_args(argv)
    prometheus = shutil.which("prometheus")
    if prometheus is None:
        sys.stderr.write("stack: prometheus is missing: install the Debian package prometheus\n")
        return 1
    # Ctrl-C and SIGTERM both end the wait below. The children, in their own sessions, are
    # then stopped one by one, so that each shuts down cleanly, and no signal cuts that short.
    # SIGINT is set too: a shell that starts a job in the background has it ignored.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    interrupted = False
    processes: dict[str, subprocess.Popen[bytes]] = {}
    with tempfile.TemporaryDirectory(prefix="echod-stack-") as directory:
        config = Path(directory, "prometheus.yaml")
        config.write_text(yaml.safe_dump(local_config(args.port, args.prometheus_port)))
        try:
            processes["echod"] = subprocess.Popen(
                [ECHOD, "--port", str(args.port), "--tls-port", str(args.tls_port)],
                start_new_session=True,
            )
            processes["prometheus"] = subprocess.Popen(
                [
                    prometheus,
                    f"--config.file={config}",
                    f"--storage.tsdb.path={Path(directory, 'data')}",
                    f"--web.listen-address=127.0.0.1:{args.prometheus_port}",
                    "--log.level=warn",
                ],
                start_new_session=True,
            )
            sys.stderr.write(
                f"stack: echod on http://localhost:{args.port} and "
                f"https://localhost:{args.tls_port}, Prometheus on "
                f"http://localhost:{args.prometheus_port}/ (Ctrl-C stops both)\n"
            )
            while all(process.poll() is None for process in processes.values()):
                time.sleep(0.2)
        except KeyboardInterrupt:
            interrupted = True
        finally:
            for stop_signal in (signal.SIGINT, signal.SIGTERM):
                signal.signal(stop_signal, signal.SIG_IGN)
            statuses = {name: stop(process) for name, process in processes.items()}
    if interrupted and not any(statuses.values()):
        sys.stderr.write("stack: stopped\n")
        return 0
    sys.stderr.write(f"stack: stopped with exit statuses {statuses}\n")
    return 1


if __name__ == "__main__":
    sys.exit(main())
