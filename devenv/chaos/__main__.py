"""`make chaos`: migrations of awkward rows under faults at seeded random moments, then invariants.

On a local cluster of its own (state in ``--state-dir``, default .devenv/chaos: its API server and
node agent are restarted, which nothing else should share), with one Milvus Lite server, each run:

1. writes a SQLite table of about ``--rows`` awkward rows (chaos.workload), creates a namespace, the
   operator (`vector-operator run` on the host, its Jobs host processes), a VectorCollection, and
   a BlueGreen MigrationPlan with a RollbackPolicy (failureRate above 0.5 per batch); in every
   other run the rows with the highest keys have no text, so the last batches cross it and the
   policy must fire, exactly once, late in Generating;
2. searches the alias in a background loop, as an application would, recording failures;
3. injects ``--faults`` faults drawn from ``--seed`` (chaos.schedule): each after a random delay,
   each waited out until the plan moves again (the recovery time);
4. once the plan ended and its Jobs are gone, checks chaos.invariants.

It prints a line per run and fault, then the table: runs, faults by kind, invariant violations
(must be 0), recovery time p50/max by kind, and the seed (`--seed` replays a run). Exit status 1
when any invariant was violated. Bounded: ``--runs`` runs, each at most ``--run-timeout`` seconds.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import logging
import random
import signal
import sys
import tempfile
import threading
import time
import uuid
from collections import defaultdict
from pathlib import Path
from typing import Any, cast

import numpy as np
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException
from pymilvus import MilvusClient
from rich.console import Console
from rich.table import Table

from chaos import faults, invariants, workload
from chaos.faults import Injected, Stage
from chaos.invariants import RunFacts
from chaos.schedule import FaultDraw, FaultKind, draw_schedule, rollback_runs
from localcluster.cluster import LocalCluster, RunningCluster
from localcluster.milvus_lite import MilvusLiteServer
from localcluster.ports import free_port

REPO_ROOT = Path(__file__).resolve().parents[2]
GROUP, VERSION = "vectors.aios.dev", "v1alpha1"
PLAN = "articles-backfill"
TERMINAL = ("Succeeded", "RolledBack", "Failed")
CLEANUP_WAIT_S = 120.0
console = Console(highlight=False, markup=False, soft_wrap=True, width=120)


class QueryLoop:
    """Searches the alias every 50 ms, as an application would (a failed client is replaced), and
    records when searches failed."""

    def __init__(self, uri: str, alias: str) -> None:
        self.uri, self.alias = uri, alias
        self.queries = 0
        self.failures: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        vector = [1.0 / 384**0.5] * 384
        milvus: MilvusClient | None = None
        while not self._stop.is_set():
            try:
                milvus = milvus or MilvusClient(uri=self.uri, timeout=5)
                milvus.search(
                    self.alias, data=[vector], limit=3, search_params={"params": {"ef": 64}}, timeout=5
                )
                self.queries += 1
            except Exception:
                self.failures.append(time.monotonic())
                if milvus is not None:
                    with contextlib.suppress(Exception):
                        milvus.close()
                milvus = None
            self._stop.wait(0.05)
        if milvus is not None:
            milvus.close()

    def __enter__(self) -> QueryLoop:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(15)


class Run:
    """One run: its namespace, source, operator and faults."""

    def __init__(
        self,
        number: int,
        stage: Stage,
        custom: client.CustomObjectsApi,
        batch: client.BatchV1Api,
        scratch: Path,
        args: argparse.Namespace,
        rollback: bool,
    ) -> None:
        self.number, self.stage, self.custom, self.batch = number, stage, custom, batch
        self.args, self.rollback = args, rollback
        self.alias = f"chaos_{number}_{uuid.uuid4().hex[:6]}"
        self.source = scratch / f"run-{number}.db"
        self.expected = workload.write_source(
            self.source, args.rows, args.seed * 1000 + number, failing_tail=rollback
        )
        self.injected: list[Injected] = []
        self.last_status: dict[str, Any] = {}
        self.searches: tuple[int, int, int] = (0, 0, 0)
        """Searches on the alias: succeeded, failed while Milvus was down, failed otherwise."""

    # -- reading -----------------------------------------------------------------------------

    def status(self) -> dict[str, Any] | None:
        """The plan's status, or None when the API server cannot be reached just now."""
        try:
            body = _custom_object(self.custom, self.stage.namespace, "migrationplans", PLAN)
        except Exception:  # the API server is down or restarting: asked again later
            return None
        self.last_status = body.get("status") or {}
        return self.last_status

    def signature(self) -> tuple[str, int] | None:
        status = self.status()
        if status is None:
            return None
        return status.get("phase") or "", (status.get("progress") or {}).get("batchesSucceeded") or 0

    def ended(self) -> bool:
        return self.last_status.get("phase") in TERMINAL

    def wait_until_moving(self, before: tuple[str, int] | None, timeout: float) -> float | None:
        """Seconds until the plan's phase or finished batches change from ``before`` (or it ends)."""
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            now = self.signature()
            if now is not None and (now != before or now[0] in TERMINAL):
                return time.monotonic() - started
            time.sleep(0.5)
        return None

    # -- the run -----------------------------------------------------------------------------

    def execute(self, draws: list[FaultDraw]) -> list[str]:
        stage, kubectl = self.stage, self.stage.cluster.kubectl
        kubectl("create", "namespace", stage.namespace)
        documents = workload.manifests(
            self.source,
            self.alias,
            records_per_job=self.args.records_per_job,
        )
        stage.start_operator()
        self._apply([d for d in documents if d["kind"] in ("Secret", "VectorCollection")])
        kubectl(
            "wait", "--for=condition=Ready", "vectorcollection/articles", "--timeout=180s",
            namespace=stage.namespace, timeout=200,
        )  # fmt: skip
        with QueryLoop(stage.milvus.uri, self.alias) as queries:
            self._apply([d for d in documents if d["kind"] in ("RollbackPolicy", "MigrationPlan")])
            applied = time.monotonic()
            self._inject_all(draws)
            deadline = applied + self.args.run_timeout
            while not self.ended() and time.monotonic() < deadline:
                self.status()
                time.sleep(1)
            time.sleep(1)  # a few searches after the end too
        if not self.ended():
            return [
                f"the plan did not end within {self.args.run_timeout:.0f}s: {self.last_status.get('phase')}"
            ]
        leftover_jobs, leftover_pods = self._wait_for_cleanup()
        facts = self._facts(queries.failures, leftover_jobs, leftover_pods)
        tally = invariants.tally_query_failures(queries.failures, stage.milvus_down)
        self.searches = (queries.queries, tally.during_milvus_outage, tally.otherwise)
        console.print(
            f"  searches on the alias: {queries.queries} ok, {len(queries.failures)} failed"
            f" ({tally.during_milvus_outage} while Milvus was down)"
        )
        return invariants.violations(facts, self.expected)

    def _apply(self, documents: list[dict[str, Any]]) -> None:
        self.stage.cluster.kubectl(
            "apply", "-f", "-", input="\n---\n".join(json.dumps(d) for d in documents),
            namespace=self.stage.namespace,
        )  # fmt: skip

    def _inject_all(self, draws: list[FaultDraw]) -> None:
        for draw in draws:
            wake = time.monotonic() + draw.delay_s
            while time.monotonic() < wake and not self.ended():
                self.status()
                time.sleep(0.5)
            if self.ended():
                console.print(f"  [{draw.kind}] not injected: the plan had ended")
                continue
            injected = faults.inject(self.stage, draw)
            if injected is None:
                console.print(
                    f"  [{draw.kind}] not injected: no worker pod ran within {faults.WORKER_WAIT_S:.0f}s"
                )
                continue
            before = self.signature()
            injected.recovered_s = self.wait_until_moving(before, self.args.run_timeout)
            self.injected.append(injected)
            recovered = "never" if injected.recovered_s is None else f"{injected.recovered_s:.1f}s"
            console.print(
                f"  [{draw.kind}] at +{injected.started - self.injected[0].started:.0f}s: {injected.detail};"
                f" phase {(before or ('?', 0))[0]}, moving again after {recovered}"
            )

    def _wait_for_cleanup(self) -> tuple[list[str], list[str]]:
        """Jobs and pods of the namespace still there after CLEANUP_WAIT_S (the operator deletes the
        plan's Jobs, the garbage collector their pods)."""
        deadline = time.monotonic() + CLEANUP_WAIT_S
        jobs: list[str] = []
        pods: list[str] = []
        while time.monotonic() < deadline:
            try:
                jobs = _names(self.batch.list_namespaced_job(self.stage.namespace, _preload_content=False))
                pods = _names(
                    self.stage.core.list_namespaced_pod(self.stage.namespace, _preload_content=False)
                )
            except (ApiException, OSError):
                pass
            else:
                if not jobs and not pods:
                    break
            time.sleep(1)
        return jobs, pods

    def _facts(self, failures: list[float], jobs: list[str], pods: list[str]) -> RunFacts:
        target, physicals, ids = _milvus_facts(self.stage.milvus.uri, self.alias)
        policy = _custom_object(self.custom, self.stage.namespace, "rollbackpolicies", "articles-guard")
        return RunFacts(
            rollback_expected=self.rollback,
            phase=self.last_status.get("phase") or "",
            plan_status=self.last_status,
            policy_status=policy.get("status") or {},
            alias_target=target,
            physical_collections=physicals,
            served_ids=ids,
            query_failures=failures,
            milvus_down=list(self.stage.milvus_down),
            leftover_jobs=jobs,
            leftover_pods=pods,
        )


def _table(seed: int, runs: list[tuple[Run, list[str], float]], schedule: list[list[FaultDraw]]) -> Table:
    table = Table(title=f"make chaos: seed {seed} (replay: make chaos CHAOS_ARGS='--seed {seed}')")
    table.add_column("figure")
    table.add_column("value", justify="right")
    injected = [fault for run, _, _ in runs for fault in run.injected]
    drawn = sum(len(draws) for draws in schedule[: len(runs)])
    table.add_row("runs (rolled back by the policy)", f"{len(runs)} ({sum(r.rollback for r, _, _ in runs)})")
    table.add_row("rows per run (awkward: about a quarter)", f"{runs[0][0].expected.rows if runs else 0}")
    table.add_row("faults injected / drawn", f"{len(injected)} / {drawn}")
    by_kind: dict[FaultKind, list[Injected]] = defaultdict(list)
    for fault in injected:
        by_kind[fault.kind].append(fault)
    for kind in FaultKind:
        done = by_kind.get(kind, [])
        times = [f.recovered_s for f in done if f.recovered_s is not None]
        recovery = (
            f"recovery p50 {float(np.percentile(times, 50)):.1f}s, max {max(times):.1f}s"
            if times
            else "no recovery timed"
        )
        never = len(done) - len(times)
        table.add_row(
            f"  {kind}", f"{len(done)} injected; {recovery}" + (f"; {never} never" if never else "")
        )
    ok, outage, otherwise = (sum(r.searches[i] for r, _, _ in runs) for i in range(3))
    table.add_row(
        "searches on the alias: ok / failed while Milvus was down / failed otherwise",
        f"{ok:,} / {outage:,} / {otherwise:,}",
    )
    table.add_row("invariant violations", str(sum(len(v) for _, v, _ in runs)))
    table.add_row("wall time", f"{sum(t for _, _, t in runs) / 60:.1f} min")
    return table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m chaos", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seed", type=int, default=None, help="replays a run (default: a new one, printed)")
    parser.add_argument(
        "--runs", type=int, default=3, help="migrations, each under its own faults (default 3)"
    )
    parser.add_argument("--faults", type=int, default=3, help="faults per run (default 3)")
    parser.add_argument(
        "--rows", type=int, default=3000, help="rows of the source table per run (default 3000)"
    )
    parser.add_argument("--records-per-job", type=int, default=200, help="rows per batch Job (default 200)")
    parser.add_argument("--run-timeout", type=float, default=900, help="seconds a run may take (default 900)")
    parser.add_argument(
        "--state-dir", type=Path, default=REPO_ROOT / ".devenv" / "chaos",
        help="the chaos run's own local cluster (default .devenv/chaos; brought up and down)",
    )  # fmt: skip
    parser.add_argument("--keep", action="store_true", help="leave the chaos cluster running afterwards")
    args = parser.parse_args(argv)
    if isinstance(sys.stdout, io.TextIOWrapper):
        sys.stdout.reconfigure(line_buffering=True)  # each line as it happens, also into a file
    # the query loop's failures while Milvus is down are counted, not logged with a traceback each
    logging.getLogger("pymilvus").setLevel(logging.CRITICAL)
    args.seed = args.seed if args.seed is not None else random.SystemRandom().randrange(10**6)
    schedule = draw_schedule(args.seed, args.runs, args.faults)
    rollbacks = rollback_runs(args.seed, args.runs)
    console.print(f"chaos: seed {args.seed}, {args.runs} runs of {args.faults} faults, {args.rows} rows each")

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))  # unwind: stop what ran
    local = LocalCluster(args.state_dir)
    cluster = local.up()
    api = config.new_client_from_config(config_file=str(cluster.kubeconfig))  # type: ignore[no-untyped-call]
    core, custom, batch = client.CoreV1Api(api), client.CustomObjectsApi(api), client.BatchV1Api(api)
    cluster.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(REPO_ROOT / "crds"))
    for plural in ("vectorcollections", "migrationplans", "rollbackpolicies"):
        cluster.kubectl("wait", "--for=condition=Established", "--timeout=60s", f"crd/{plural}.{GROUP}")
    results: list[tuple[Run, list[str], float]] = []
    with tempfile.TemporaryDirectory(prefix="vo-chaos-") as scratch_dir:
        scratch = Path(scratch_dir)
        milvus = MilvusLiteServer(scratch / "milvus", port=free_port())
        milvus.start()
        try:
            for number, draws in enumerate(schedule):
                stage = Stage(
                    local,
                    cluster,
                    core,
                    milvus,
                    f"chaos-{args.seed}-{number}",
                    scratch / f"operator-{number}.log",
                )
                run = Run(number, stage, custom, batch, scratch, args, rollbacks[number])
                kinds = ", ".join(f"{d.kind} after {d.delay_s:.0f}s" for d in draws)
                console.print(
                    f"run {number}: {'rollback expected' if run.rollback else 'success expected'}; {kinds}"
                )
                started = time.monotonic()
                try:
                    found = run.execute(draws)
                finally:
                    _clean_up(cluster, stage)
                elapsed = time.monotonic() - started
                results.append((run, found, elapsed))
                progress = run.last_status.get("progress") or {}
                phase = run.last_status.get("phase")
                console.print(
                    f"  ended {phase} in {elapsed:.0f}s: read {progress.get('recordsRead')},"
                    f" embedded {progress.get('recordsDone')}, skipped {progress.get('skippedByReason')}"
                )
                for violation in found:
                    console.print(f"  VIOLATION: {violation}")
                if found:
                    console.print(f"  the operator's log: {_keep_log(stage)}")
        finally:
            milvus.stop()
            if not args.keep:
                local.down()
        console.print(_table(args.seed, results, schedule))
    return 1 if any(found for _, found, _ in results) else 0


def _milvus_facts(uri: str, alias: str, attempts: int = 5) -> tuple[str | None, list[str], list[int]]:
    """The collection the alias serves, the alias's physical collections, and every id served.
    Retried: a connection Milvus Lite refuses now and then ("too many pings") is not a finding."""
    for attempt in range(attempts):
        try:
            milvus = MilvusClient(uri=uri, timeout=30)
        except Exception:
            if attempt == attempts - 1:
                raise
            time.sleep(2)
            continue
        try:
            try:
                target: str | None = milvus.describe_alias(alias)["collection_name"]
            except Exception:
                target = None
            physicals = [n for n in milvus.list_collections() if n.startswith(f"{alias}__")]
            ids: list[int] = []
            if target is not None:
                iterator = milvus.query_iterator(target, batch_size=1000, filter="", output_fields=["id"])
                while batch := iterator.next():
                    ids += [row["id"] for row in batch]
                iterator.close()
            return target, physicals, ids
        finally:
            milvus.close()
    raise AssertionError("unreachable")


def _names(response: Any) -> list[str]:
    """The names in a list response read with ``_preload_content=False``."""
    return [item["metadata"]["name"] for item in json.loads(response.data)["items"]]


def _custom_object(custom: client.CustomObjectsApi, namespace: str, plural: str, name: str) -> dict[str, Any]:
    found = custom.get_namespaced_custom_object(GROUP, VERSION, namespace, plural, name, _request_timeout=10)
    return cast(dict[str, Any], found)


def _clean_up(cluster: RunningCluster, stage: Stage) -> None:
    if stage.operator is not None:
        stage.operator.shut_down(cluster, stage.namespace)
    cluster.kubectl("delete", "namespace", stage.namespace, "--wait=false", "--ignore-not-found", check=False)


def _keep_log(stage: Stage) -> Path:
    kept = REPO_ROOT / ".devenv" / f"chaos-{stage.namespace}-operator.log"
    kept.write_bytes(stage.operator_log.read_bytes())
    return kept


if __name__ == "__main__":
    sys.exit(main())
