"""`make run`: Kafka, PostgreSQL, the three services and a demo year, until Ctrl-C."""

from __future__ import annotations

import signal
import threading
import time
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from sqlalchemy import text

from .kafka import KafkaNode
from .postgres import PostgresNode
from .settings import DevstackSettings
from .stack import REPO_ROOT, Stack, publish_file

console = Console()


def write_demo(path: Path, seed: int, size: float) -> tuple[int, list[dict[str, object]]]:
    """Generate the demo year as JSON Lines; return the event count and the expected violations."""
    from fundtrail_schemas.demo import generate

    dataset = generate(seed, size)
    path.parent.mkdir(parents=True, exist_ok=True)
    count = 0
    with path.open("w", encoding="utf-8") as fh:
        for event in dataset.events:
            fh.write(event.model_dump_json() + "\n")
            count += 1
    expected = [e.as_dict() for e in dataset.expected]
    return count, expected


def wait_processed(database_url: str, total: int, timeout: float) -> int:
    """Poll the ledger until `total` events are recorded (with a progress bar)."""
    from fundtrail_schemas.db import sync_engine

    engine = sync_engine(database_url)
    done = 0
    try:
        with Progress(TextColumn("[bold]recording demo events"), BarColumn(), MofNCompleteColumn(),
                      TimeElapsedColumn(), console=console) as progress:
            task = progress.add_task("events", total=total)
            deadline = time.monotonic() + timeout
            while done < total and time.monotonic() < deadline:
                with engine.connect() as conn:
                    done = conn.execute(text("select count(*) from processed_event")).scalar_one()
                progress.update(task, completed=done)
                time.sleep(0.5)
    finally:
        engine.dispose()
    return done


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(signal.Signals(signum).name)


def run(seed: int = 7, size: float = 1.0, gateway_port: int = 8080) -> None:
    """Start everything, load the demo, print where to look, stop cleanly on Ctrl-C."""
    settings = DevstackSettings()
    home = Path(settings.home).resolve()
    kafka = KafkaNode(settings.kafka_home, settings.kafka_port, settings.kafka_controller_port, settings.kafka_heap,
                      jvm_options=settings.kafka_jvm_flags)
    pg = PostgresNode(settings.pg_home, settings.pg_port, os_user=settings.pg_os_user)
    started: list[str] = []
    stack: Stack | None = None
    stop = threading.Event()
    # SIGTERM (make, a supervisor) and SIGHUP (the terminal went away) stop everything at any
    # stage, exactly like Ctrl-C: the services run in their own sessions and would outlive us.
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _interrupt)
    try:
        if not kafka.is_running():
            with console.status("starting Kafka (first run downloads the jars with Maven)..."):
                kafka.ensure_jars()
                kafka.start()
            started.append("kafka")
        console.print(f"[green]Kafka[/] {kafka.bootstrap}")
        if not pg.is_running():
            with console.status("starting PostgreSQL..."):
                pg.start()
            started.append("postgres")
        if not pg.database_exists(settings.pg_database):
            pg.create_database(settings.pg_database)
        database_url = pg.url(settings.pg_database)
        console.print(f"[green]PostgreSQL[/] {database_url}")

        stack = Stack(home=home / "stack", bootstrap=kafka.bootstrap, database_url=database_url,
                      gateway_port=gateway_port, tracker_metrics_port=9464, compliance_metrics_port=9465)
        with console.status("migrations, topics, keys..."):
            stack.prepare()
        with console.status("starting fund-tracker, compliance and gateway..."):
            stack.start()
            stack.wait_ready(timeout=180)
        console.print(f"[green]services up[/]; logs in {stack.home / 'logs'}")

        demo = home / "demo" / f"demo-seed{seed}-size{size:g}.jsonl"
        with console.status("generating the demo year of Jiangmen..."):
            total, expected = write_demo(demo, seed, size)
        console.print(f"demo: {total} events, {len(expected)} deliberate violations → {demo}")
        result = publish_file(demo, kafka.bootstrap, home / "publisher")
        console.print(result.stdout.strip()[-2000:] or result.stderr.strip()[-2000:])
        recorded = wait_processed(database_url, total, timeout=600)
        console.print(f"recorded {recorded} of {total} events")
        print_where_to_look(stack, expected)
        console.print("\n[bold]Ctrl-C stops everything this command started.[/]")
        while not stop.is_set():
            for name, svc in stack.services.items():
                if not svc.alive():
                    console.print(f"[red]{name} exited[/]; last log lines:\n{svc.tail()}")
                    stop.set()
            stop.wait(1.0)
    except KeyboardInterrupt:
        console.print("\nstopping...")
    finally:
        # A second signal must not cut the clean-up short (it is bounded: 20 s per service).
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, signal.SIG_IGN)
        if stack is not None:
            stack.stop()
        if "postgres" in started:
            pg.stop()
        if "kafka" in started:
            kafka.stop()
        console.print("stopped " + ", ".join(["services", *started]))


def print_where_to_look(stack: Stack, expected: list[dict[str, object]]) -> None:
    """API docs, an example trail, the violation stream and a token per role."""
    base = stack.gateway_url
    tokens = {
        "auditor": stack.token("auditor", "demo-auditor"),
        "compliance (新会区 440705)": stack.token("compliance", "demo-compliance-440705", region="440705"),
        "bureau (新会区 440705)": stack.token("bureau", "demo-bureau-440705", region="440705"),
        "admin": stack.token("admin", "demo-admin"),
    }
    fund = next((str(e.get("fund_doc_no")) for e in expected if e.get("fund_doc_no")), None)
    console.rule("[bold]fundtrail is running")
    if (REPO_ROOT / "console" / "dist" / "index.html").is_file():
        console.print(f"[bold]web console:            {stack.console_url}[/]  (sign in by picking a demo role)")
    else:
        console.print("web console:            not built (make install builds it; needs Node 20+)")
    console.print(f"API docs (OpenAPI):     {base}/docs")
    if fund:
        from urllib.parse import quote

        console.print(f"example fund trail:     {base}/v1/funds/{quote(fund, safe='')}/trail")
        console.print(f"where is the money:     {base}/v1/funds/{quote(fund, safe='')}")
    console.print(f"violations:             {base}/v1/violations?department=finance")
    console.print(f"violation stream (SSE): {base}/v1/violations/stream?department=audit")
    console.print(f"latest checkpoint:      {base}/v1/proofs/checkpoint")
    console.print("tokens (valid 12 h):")
    for role, token in tokens.items():
        console.print(f"  {role}:\n    {token}", soft_wrap=True)
    console.print(f'try: curl -H "Authorization: Bearer $TOKEN" {base}/v1/violations')
