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
from .kafka_auth import BrokerSecurity, write_client_configs
from .keycloak import DEMO_PASSWORD, KeycloakNode
from .postgres import PostgresNode
from .settings import DevstackSettings
from .stack import REPO_ROOT, Stack, publish_file

console = Console()


def write_demo(path: Path, seed: int, size: float) -> tuple[int, list[dict[str, object]]]:
    """Generate the demo year as JSON Lines; return the event count and the expected violations."""
    from fundtrail_demo import generate

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
    from fundtrail_runtime.db import sync_engine

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
                      jvm_options=settings.kafka_jvm_flags, security=settings.kafka_security)
    pg = PostgresNode(settings.pg_home, settings.pg_port, os_user=settings.pg_os_user)
    started: list[str] = []
    stack: Stack | None = None
    idp = KeycloakNode(settings.keycloak_home, settings.keycloak_port) if settings.idp == "keycloak" else None
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
        console.print(f"[green]Kafka[/] {kafka.bootstrap} "
                      + ("(SASL/SCRAM-SHA-512, ACLs)" if kafka.security else "(plaintext, no ACLs)"))
        if not pg.is_running():
            with console.status("starting PostgreSQL..."):
                pg.start()
            started.append("postgres")
        if not pg.database_exists(settings.pg_database):
            pg.create_database(settings.pg_database)
        database_url = pg.url(settings.pg_database)
        console.print(f"[green]PostgreSQL[/] {database_url}")

        if idp is not None:
            with console.status("starting Keycloak (FUNDTRAIL_DEVSTACK_IDP=keycloak; a minute or more)..."):
                idp.start()
                started.append("keycloak")
                idp.import_realm()
            console.print(f"[green]Keycloak[/] {idp.issuer} (admin {idp.admin_user} / {idp.admin_password})")

        stack = Stack(home=home / "stack", bootstrap=kafka.bootstrap, database_url=database_url,
                      gateway_port=gateway_port, tracker_metrics_port=9464, compliance_metrics_port=9465,
                      kafka_security=kafka.security)
        if idp is not None:
            # Development: the realm's users and the printed demo tokens both work (the kid picks the key).
            stack.extra_env["gateway"] = {
                "FUNDTRAIL_GATEWAY_OIDC_ISSUER": idp.issuer,
                "FUNDTRAIL_GATEWAY_OIDC_ROLE_CLAIM": "realm_access.roles",
                "FUNDTRAIL_GATEWAY_OIDC_CONSOLE_CLIENT_ID": "fundtrail-console",
                "FUNDTRAIL_GATEWAY_OIDC_ACCEPT_DEV_TOKENS": "true",
            }
        with console.status("migrations, Kafka users and ACLs, topics, keys..."):
            stack.prepare()
        with console.status("starting fund-tracker, compliance and gateway..."):
            stack.start()
            stack.wait_ready(timeout=180)
        console.print(f"[green]services up[/]; logs in {stack.home / 'logs'}")

        demo = home / "demo" / f"demo-seed{seed}-size{size:g}.jsonl"
        with console.status("generating the demo year of Jiangmen..."):
            total, expected = write_demo(demo, seed, size)
        console.print(f"demo: {total} events, {len(expected)} deliberate violations → {demo}")
        # The demo year spans every region, so it goes on the unscoped raw topic as the operator;
        # a bureau publishes on its region's topic as itself (see the Kafka clients printed below).
        result = publish_file(demo, kafka.bootstrap, home / "publisher", extra_env=stack.kafka_env("operator"))
        console.print(result.stdout.strip()[-2000:] or result.stderr.strip()[-2000:])
        recorded = wait_processed(database_url, total, timeout=600)
        console.print(f"recorded {recorded} of {total} events")
        print_where_to_look(stack, expected)
        if kafka.security is not None:
            print_kafka_clients(kafka.bootstrap, kafka.security, settings.kafka_clients_dir)
        if idp is not None:
            console.print(f"sign in (Keycloak users bureau-xinhui, compliance-xinhui, auditor-inspection, rule-admin; "
                          f"password {DEMO_PASSWORD}):\n  curl -d grant_type=password -d client_id=fundtrail-dev-cli "
                          f"-d username=auditor-inspection -d password={DEMO_PASSWORD} {idp.token_endpoint}",
                          soft_wrap=True)
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
        if idp is not None and "keycloak" in started:
            idp.stop()
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
    console.print(f"latest checkpoint:      {base}/v1/checkpoints/latest/note  (all: {base}/v1/checkpoints)")
    console.print(f"log verifier key:       {stack.trail_vkey}  (also {base}/v1/log/key)")
    console.print("tokens (valid 12 h):")
    for role, token in tokens.items():
        console.print(f"  {role}:\n    {token}", soft_wrap=True)
    console.print(f'try: curl -H "Authorization: Bearer $TOKEN" {base}/v1/violations')


def print_kafka_clients(bootstrap: str, security: BrokerSecurity, directory: Path) -> None:
    """A client configuration per Kafka user (Java properties and kcat files), and how to use one per role."""
    from fundtrail_schemas.kafka_acl import principals
    from fundtrail_schemas.topics import department_topic, raw_topic

    from .stack import REPO_ROOT

    files = write_client_configs(directory, bootstrap, security, [p.name for p in principals()])
    probe = f"java -cp '{REPO_ROOT}/deploy/kafka/lib/*' {REPO_ROOT}/deploy/kafka/tools/AclProbe.java"
    console.rule("[bold]Kafka clients (SASL/SCRAM-SHA-512; each user may do only what its ACLs allow)")
    console.print(f"a Java properties file and a kcat file per user ({len(files)} users) in {directory}/",
                  soft_wrap=True, highlight=False)
    rows = (
        ("bureau of 新会区, writes its region's raw topics", "bureau-440705", "produce", raw_topic("440705")),
        ("agriculture auditors, read their violations", "auditor-agriculture", "consume",
         department_topic("agriculture")),
        ("fund-tracker (compliance alike; the gateway reads without a group)", "fund-tracker", "consume",
         raw_topic("440705")),
        ("operator: topics, users, ACLs", "operator", "consume", department_topic("finance")),
    )
    for what, user, op, topic in rows:
        java, kcat = files[user]
        console.print(f"{what} (User:{user}):", soft_wrap=True)
        console.print(f"  {probe} {java} {op} {topic}", soft_wrap=True, highlight=False)
        kcat_op = "-P" if op == "produce" else "-C -o beginning -e"
        console.print(f"  kcat -F {kcat} {kcat_op} -t {topic}", soft_wrap=True, highlight=False)
    auditor = files["auditor-agriculture"][1]
    console.print(
        "  the same with -X: kcat -b {b} -X security.protocol=SASL_PLAINTEXT -X sasl.mechanisms=SCRAM-SHA-512 "
        "-X sasl.username=auditor-agriculture -X sasl.password=$(cat {pw}) -C -t {t}  (see {f})".format(
            b=bootstrap, pw=security.password_file("auditor-agriculture"), t=department_topic("agriculture"),
            f=auditor),
        soft_wrap=True, highlight=False)
    console.print("[yellow]kcat needs librdkafka 2.6.1 or later for SCRAM with Kafka 4 (Debian 12 ships 2.0.2, "
                  "which the broker refuses); the Java client and kafka-python work.[/]", soft_wrap=True)
