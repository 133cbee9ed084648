"""The benchmark report: a Markdown table on stdout and a PNG chart."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pathlib import Path


def label(result: dict[str, Any]) -> str:
    """A run's name: its workload, and TLS when it went over HTTPS."""
    name: str = result["workload"]
    return name + (" (TLS)" if result["scheme"] == "https" else "")


def print_table(report: dict[str, Any]) -> None:
    """Print the runs as a Markdown table, then memory growth and start-up time."""
    print("\n| workload | connections | req/s | p50 ms | p99 ms | unexpected | socket errors "
          "| CPU us/req | peak PSS MiB |")  # fmt: skip
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for result in report["results"]:
        print(
            f"| {label(result)} | {result['connections']} | {result['rps']:,.0f} "
            f"| {result['p50_ms']:.2f} | {result['p99_ms']:.2f} | {result['unexpected']} "
            f"| {result['socket_errors']} | {result['cpu_us_per_request']:.1f} "
            f"| {result['peak_pss_mib']:.1f} |"
        )
    if sockets := report.get("websocket"):
        print(
            f"\nWebSocket, {sockets['connections']} connections of small JSON messages on "
            f"/api/raw: {sockets['messages_per_second']:,.0f} msg/s, p50 "
            f"{sockets['p50_ms']:.2f} ms, p99 {sockets['p99_ms']:.2f} ms, "
            f"{sockets['cpu_us_per_message']:.1f} CPU us/msg, {sockets['errors']:.0f} errors"
        )
    if memory := report.get("memory"):
        print(
            f"\nMemory over {memory['requests']:,} requests: {memory['pss_before_mib']:.1f} MiB "
            f"-> {memory['pss_after_mib']:.1f} MiB ({memory['growth_mib']:+.1f} MiB)"
        )
    startup = report["startup_seconds"]
    print(f"Start to first /health answer: median {startup['median'] * 1000:.0f} ms "
          f"over {len(startup['runs'])} starts")  # fmt: skip


def write_chart(report: dict[str, Any], path: Path) -> None:
    """Draw throughput and p99 per workload, one bar per connection count."""
    import matplotlib as mpl  # noqa: PLC0415 - heavy, and only the report needs it

    mpl.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    results = report["results"]
    names = list(dict.fromkeys(label(result) for result in results))
    counts = sorted({result["connections"] for result in results})
    figure, (top, bottom) = plt.subplots(2, 1, figsize=(11, 7.5), sharex=True)
    width = 0.8 / len(counts)
    for n, count in enumerate(counts):
        chosen = {label(r): r for r in results if r["connections"] == count}
        xs = [i + (n - (len(counts) - 1) / 2) * width for i in range(len(names))]
        top.bar(xs, [chosen[name]["rps"] if name in chosen else 0 for name in names],
                width, label=f"{count} connections")  # fmt: skip
        bottom.bar(xs, [chosen[name]["p99_ms"] if name in chosen else 0 for name in names],
                   width, label=f"{count} connections")  # fmt: skip
    top.set_ylabel("requests per second")
    top.set_title(
        f"echod, {report['settings']['workers']} worker, logs at info, on "
        f"{report['machine']['cpus']} cores ({report['machine']['cpu_model']}), "
        f"{report['date'][:10]}",
        fontsize=10,
    )
    bottom.set_ylabel("p99 latency (ms)")
    bottom.set_xticks(range(len(names)), names, rotation=20)
    for axes in (top, bottom):
        axes.grid(axis="y", alpha=0.3)
        axes.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
