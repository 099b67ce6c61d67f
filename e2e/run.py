"""`make e2e`: the four real agent CLIs under orch against the local model server.

usage: python -m e2e.run [--cli claude,codex,gemini,aider] [--scenario a,b,...] [--jobs N]
                         [--orch PATH] [--no-install] [--keep]

Per CLI: a fresh HOME and git workdir under $ORCH_E2E_CACHE/runs/, its own model server on a
free 127.0.0.1 port, its own orch state dir, tmux socket and controller; the scenarios of
e2e/scenarios.py; everything killed at the end, also on failure or Ctrl-C. Prints a CLI x
scenario table (PASS / FAIL / SKIP, reasons below it) and exits 1 if anything FAILed.
`--orch` runs another build of orch (e.g. another worktree's .venv/bin/orch).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import FrameType

from e2e.clis import CACHE, CLIS, CliSpec
from e2e.orchctl import Orch
from e2e.scenarios import SCENARIOS, Result, Session, run_all
from e2e.server import REPO, ModelServer

_print_lock = threading.Lock()


def say(text: str) -> None:
    with _print_lock:
        print(f"[{time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


def install() -> str | None:
    """Run e2e/install.sh; None when it worked, else its last error line."""
    done = subprocess.run(
        ["bash", str(REPO / "e2e" / "install.sh")], capture_output=True, text=True, check=False
    )
    if done.returncode == 0:
        return None
    lines = (done.stderr or done.stdout).strip().splitlines()
    return lines[-1] if lines else f"exit {done.returncode}"


def run_cli(
    cli: CliSpec,
    wanted: set[str],
    orch_bin: Path,
    runs: Path,
    live: list[Orch],
    servers: list[ModelServer],
) -> dict[str, Result]:
    if not cli.binary.exists():
        why = f"{cli.binary.name} not installed ({cli.binary})"
        return {k: Result("SKIP", why) for k in SCENARIOS}
    root = Path(tempfile.mkdtemp(prefix=f"{cli.name}-", dir=runs))
    home, work = root / "home", root / "work"
    home.mkdir()
    work.mkdir()
    subprocess.run(["git", "init", "-q", str(work)], check=True)
    server = ModelServer(root)
    servers.append(server)
    orch = Orch(orch_bin, root, f"e2e-{cli.name}-{os.getpid()}", home)
    live.append(orch)
    say(f"{cli.name}: run dir {root}")
    try:
        server.start()
        cli.setup(home, work, server.url)
        session = Session(cli, orch, server, home, work, lambda m: say(f"{cli.name}: {m}"))
        results = run_all(session, wanted)
    except Exception as err:  # noqa: BLE001 - one CLI's harness crash must not hide the others
        say(f"{cli.name}: harness crashed: {err!r}")
        results = {
            k: Result("FAIL", f"harness crashed: {err!r}"[:120]) for k in wanted | {"a", "b"}
        }
    finally:
        (root / "screen-last.txt").write_text(orch.screen(cli.name))
        orch.teardown()
        server.stop()
    (root / "results.json").write_text(json.dumps({k: r.__dict__ for k, r in results.items()}))
    return {k: results.get(k, Result("SKIP", "not selected")) for k in SCENARIOS}


def table(results: dict[str, dict[str, Result]]) -> str:
    keys = list(SCENARIOS)
    head = ["CLI", *[f"{k} {SCENARIOS[k]}" for k in keys]]
    rows = [[cli, *[results[cli][k].status for k in keys]] for cli in results]
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]
    out = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in [head, *rows]]
    notes = [
        f"  {cli} {k} {SCENARIOS[k]}: {r.status}{' - ' + r.reason if r.reason else ''}"
        for cli, per in results.items()
        for k, r in per.items()
        if r.status != "SKIP" or r.reason != "not selected"
        if r.status != "PASS" or r.reason
    ]
    return "\n".join(out + (["", *notes] if notes else []))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m e2e.run", description=__doc__.split("\n")[0])
    ap.add_argument("--cli", default=",".join(CLIS), help="comma list of " + ",".join(CLIS))
    ap.add_argument(
        "--scenario",
        default=",".join(SCENARIOS),
        help="comma list of " + ",".join(f"{k}={v}" for k, v in SCENARIOS.items()),
    )
    ap.add_argument("--jobs", type=int, default=2, help="CLIs run at the same time")
    ap.add_argument(
        "--orch",
        default=str(Path(sys.executable).parent / "orch"),
        help="the orch executable to test",
    )
    ap.add_argument("--no-install", action="store_true", help="skip e2e/install.sh")
    ap.add_argument(
        "--keep", action="store_true", help="keep every run dir (those with a FAIL are kept anyway)"
    )
    a = ap.parse_args(argv)
    clis = [c for c in a.cli.split(",") if c]
    unknown = [c for c in clis if c not in CLIS]
    wanted = {s.strip() for s in a.scenario.split(",") if s.strip()}
    wanted = {next((k for k, v in SCENARIOS.items() if s in (k, v)), s) for s in wanted}
    bad = sorted(wanted - set(SCENARIOS))
    if unknown or bad:
        ap.error(f"unknown cli {unknown} / scenario {bad}")
    orch_bin = Path(a.orch)
    if not orch_bin.exists():
        ap.error(f"{orch_bin} does not exist (make install first)")
    if shutil.which("tmux") is None:
        ap.error("tmux missing: apt-get install tmux")
    skip_all: str | None = None
    if not a.no_install:
        say("installing the CLIs (e2e/install.sh)")
        skip_all = install()
        if skip_all:
            say(f"install.sh failed: {skip_all}; CLIs that are missing are skipped")
    runs = CACHE / "runs"
    runs.mkdir(parents=True, exist_ok=True)
    live: list[Orch] = []
    servers: list[ModelServer] = []

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        for o in live:
            o.teardown()
        for server in servers:
            server.stop()
        # the worker threads are still inside their scenarios: do not wait for them
        os._exit(130)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    started = time.monotonic()
    say(f"orch {orch_bin} ({_version(orch_bin)}); clis {clis}; scenarios {sorted(wanted)}")
    with ThreadPoolExecutor(max_workers=max(1, a.jobs)) as pool:
        futures = {
            c: pool.submit(run_cli, CLIS[c], wanted, orch_bin, runs, live, servers) for c in clis
        }
        results = {c: f.result() for c, f in futures.items()}
    for o in live:
        cli = o.root.name.split("-", 1)[0]
        if a.keep or any(r.status == "FAIL" for r in results.get(cli, {}).values()):
            say(f"{cli}: kept {o.root} (state/, modelserver.jsonl, controller.out)")
        else:
            shutil.rmtree(o.root, ignore_errors=True)
    print(table(results))
    print(f"\n{time.monotonic() - started:.0f}s; orch {orch_bin}")
    return 1 if any(r.status == "FAIL" for per in results.values() for r in per.values()) else 0


def _version(orch_bin: Path) -> str:
    root = orch_bin.resolve().parent.parent.parent
    done = subprocess.run(
        ["git", "-C", str(root), "log", "-1", "--format=%h %s"],
        capture_output=True,
        text=True,
        check=False,
    )
    branch = subprocess.run(
        ["git", "-C", str(root), "branch", "--show-current"],
        capture_output=True,
        text=True,
        check=False,
    )
    return f"{branch.stdout.strip()} {done.stdout.strip()[:60]}"


if __name__ == "__main__":
    sys.exit(main())
