"""Plots the metrics scraped during tests/test_metrics.py's real run (a dev-only tool:
matplotlib is in requirements-dev.txt). ``METRICS_PNG=docs/metrics.png`` makes that test
write the picture docs/operations.md shows."""

from collections import defaultdict


def _series(samples, family, sample, key):
    """{label value of ``key``: [value at each scrape]} for one sample name."""
    out = defaultdict(lambda: [0.0] * len(samples))
    for i, (_, families) in enumerate(samples):
        for (name, labels), value in families.get(family, {}).items():
            if name == sample:
                out[dict(labels).get(key, family) if key else family][i] += value
    return out


def plot(samples, path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    times = [t for t, _ in samples]
    fig, axes = plt.subplots(2, 2, figsize=(13, 8.5))
    fig.suptitle("taskapp metrics from a real run (gunicorn x2, Celery worker and beat)")

    latency, last = axes[0][0], samples[-1][1]
    sums = _series(
        [samples[-1]],
        "taskapp_http_request_duration_seconds",
        "taskapp_http_request_duration_seconds_sum",
        "route",
    )
    counts = _series(
        [samples[-1]],
        "taskapp_http_request_duration_seconds",
        "taskapp_http_request_duration_seconds_count",
        "route",
    )
    routes = sorted(r for r in counts if counts[r][0])
    latency.barh(routes, [1000 * sums[r][0] / counts[r][0] for r in routes])
    latency.set_title("Mean latency by route (ms)")
    latency.tick_params(axis="y", labelsize=7)

    status = axes[0][1]
    by_status = _series(samples, "taskapp_http_requests", "taskapp_http_requests_total", "status")
    classes = defaultdict(lambda: [0.0] * len(samples))
    for code, values in by_status.items():
        for i, value in enumerate(values):
            classes[code[0] + "xx"][i] += value
    for name, values in sorted(classes.items()):
        status.plot(times, values, label=name)
    status.set_title("Requests answered, by status class (cumulative)")
    status.legend()

    backlog = axes[1][0]
    for family, label in (
        ("taskapp_outbox_pending", "outbox pending"),
        ("taskapp_webhook_pending_deliveries", "deliveries pending"),
        ("taskapp_broker_queue_length", "broker queue"),
    ):
        values = _series(samples, family, family, None)[family]
        backlog.plot(times, values, label=label)
    backlog.set_title("Webhook backlog (worker started mid-run)")
    backlog.legend()

    jobs = axes[1][1]
    for outcome, values in _series(
        samples, "taskapp_webhook_deliveries", "taskapp_webhook_deliveries_total", "outcome"
    ).items():
        jobs.plot(times, values, label=f"deliveries {outcome}")
    for outcome, values in _series(
        samples, "taskapp_reminder_mails", "taskapp_reminder_mails_total", "outcome"
    ).items():
        jobs.plot(times, values, linestyle="--", label=f"reminder mails {outcome}")
    marked = _series(samples, "taskapp_overdue_marked", "taskapp_overdue_marked_total", None)
    jobs.plot(times, marked["taskapp_overdue_marked"], linestyle=":", label="marked overdue")
    jobs.set_title("Jobs (cumulative)")
    jobs.legend(fontsize=7)
    for axis in (status, backlog, jobs):
        axis.set_xlabel("seconds into the run")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    del last
