"""Benchmarks of replicate-explain: start-up cost, time to explain, logging, scale, memory.

One command runs them all and prints a markdown report (the JSON goes to a file)::

    .venv/bin/python benchmarks/run.py                 # everything (a few minutes)
    .venv/bin/python benchmarks/run.py startup         # one section: startup, explain,
                                                        # logging, birth, scale, memory
    .venv/bin/python benchmarks/run.py --quick         # fewer rounds, for a smoke test

Method: two fresh venvs (``python -m venv`` from the base interpreter) get a wheel of this
checkout with its dependencies; one of them also gets the start-up install. Every figure that is
a ratio or a difference is measured side by side in the same run: the commands being compared run
once per round, in a new random order each round, and the report gives medians, quartiles and the
median of the per-round ratios, so drift from other work on the machine cancels out.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parent
sys.path.insert(0, str(REPO_ROOT))

import _measure as m  # noqa: E402
import _venvs as v  # noqa: E402

from replicate_explain._loopback import LoopbackAPI  # noqa: E402

SECTIONS = ("startup", "explain", "logging", "birth", "scale", "memory")
DEFAULT_JSON = HERE / "results.json"
VERSION_ID = "5c7d5dc6dd8bf75c1acaa8565735e7986bc5b66206b55cca93cb72c9bf15ccaa"
MODEL_REF = f"acme/hello-world:{VERSION_ID}"

STARTUP_TARGET = 1.05
EXPLAIN_TARGET_MS = 150.0
LOGGING_TARGET = 1.02

#: The program of the time-to-explain benchmark: a real replicate client fails against the
#: loopback API (token unset: a 401), the exception is re-raised uncaught, and an atexit hook
#: (which runs after sys.excepthook has returned) records the time since the raise and the peak RSS.
EXPLAIN_PROGRAM = f"""\
import atexit, os, time
import replicate_explain
import replicate

try:
    replicate.run({MODEL_REF!r}, input={{"text": "hi"}})
except Exception as error:
    failure = error
else:
    raise SystemExit("the call unexpectedly succeeded")


def _record():
    elapsed = time.perf_counter() - _start
    cpu = time.process_time() - _start_cpu
    with open("/proc/self/status", encoding="ascii") as status:
        peak = next(line.split()[1] for line in status if line.startswith("VmHWM:"))
    with open(os.environ["BENCH_RESULT"], "a", encoding="utf-8") as out:
        out.write(f"{{elapsed!r}} {{peak}} {{cpu!r}}\\n")


atexit.register(_record)
_start_cpu = time.process_time()
_start = time.perf_counter()
raise failure
"""

#: Prints the peak resident set size in KiB. ``VmHWM`` belongs to the process image: unlike
#: ``getrusage().ru_maxrss``, which Linux carries over ``exec`` from the forked parent (the
#: benchmark runner, which is bigger than a bare interpreter), so every child would report the
#: runner's size.
MAXRSS = (
    "with open('/proc/self/status', encoding='ascii') as s: "
    "print(next(line.split()[1] for line in s if line.startswith('VmHWM:')))"
)


class Bench:
    """The shared set-up of one run: the venvs, a scratch directory, the options."""

    def __init__(self, scratch: Path, quick: bool) -> None:
        self.scratch = scratch
        self.quick = quick
        self.plain_venv: v.Venv | None = None
        self.site_venv: v.Venv | None = None
        self.startup_install = ""

    def rounds(self, full: int, quick: int) -> int:
        return quick if self.quick else full

    def venvs(self) -> tuple[v.Venv, v.Venv]:
        """Build the two venvs once (about 15 s): A plain, B with the start-up install."""
        if self.plain_venv is None or self.site_venv is None:
            wheel = v.build_wheel(self.scratch / "wheel")
            self.plain_venv = v.make_venv(self.scratch / "venv-import", wheel)
            self.site_venv = v.make_venv(self.scratch / "venv-startup", wheel)
            self.startup_install = v.install_startup(self.site_venv)
            check = subprocess.run(
                [self.site_venv.python, "-c", "import sys; print(sys.excepthook.__module__)"],
                capture_output=True,
                text=True,
                check=True,
                env=v.clean_env(),
                cwd=self.scratch,
            )
            if check.stdout.strip() != "replicate_explain._hook":
                raise RuntimeError(
                    f"the start-up install is not active: sys.excepthook is from {check.stdout.strip()!r}"
                )
        return self.plain_venv, self.site_venv


# ---------------------------------------------------------------------------------------------
# Start-up


def bench_startup(bench: Bench) -> dict[str, Any]:
    """Interpreter start-up: bare, importing us, with the start-up install, with rich.traceback."""
    plain, site = bench.venvs()
    env = v.clean_env()
    commands = [
        m.Command("bare", (plain.python, "-c", "pass"), env),
        m.Command("import", (plain.python, "-c", "import replicate_explain"), env),
        m.Command("startup-install", (site.python, "-c", "pass"), env),
        m.Command("rich.traceback", (plain.python, "-c", "from rich.traceback import install; install()"), env),
    ]
    rounds = bench.rounds(300, 40)
    samples = m.interleaved(commands, rounds)
    bare = samples["bare"].values
    rows = {}
    for label, sample in samples.items():
        rows[label] = {"ms": m.summary(sample.values), "ratio_to_bare": m.paired_ratios(sample.values, bare)}
    return {
        "rounds": rounds,
        "startup_install": bench.startup_install,
        "commands": {c.label: " ".join(c.argv[1:]) for c in commands},
        "results": rows,
        "importtime": importtime_breakdown(plain, site, bench.rounds(60, 10)),
        "target_ratio": STARTUP_TARGET,
    }


_IMPORTTIME = re.compile(r"^import time:\s+(\d+) \|\s+(\d+) \|(\s*)(\S+)")


def _importtimes(python: str, code: str, runs: int, cwd: Path) -> dict[str, dict[str, float]]:
    per_module: dict[str, dict[str, list[int]]] = {}
    for _ in range(runs):
        result = subprocess.run(
            [python, "-X", "importtime", "-c", code],
            capture_output=True,
            text=True,
            check=True,
            env=v.clean_env(),
            cwd=cwd,
        )
        for line in result.stderr.splitlines():
            found = _IMPORTTIME.match(line)
            if found:
                entry = per_module.setdefault(found.group(4), {"self": [], "cumulative": []})
                entry["self"].append(int(found.group(1)))
                entry["cumulative"].append(int(found.group(2)))
    return {
        name: {
            "self_us": statistics.median(t["self"]),
            "cumulative_us": statistics.median(t["cumulative"]),
            "seen": len(t["self"]),
        }
        for name, t in per_module.items()
    }


def importtime_breakdown(plain: v.Venv, site: v.Venv, runs: int) -> dict[str, Any]:
    """Median ``-X importtime`` of our modules (and what they pull in) and of a bare start-up."""
    cwd = Path(tempfile.gettempdir())
    ours = _importtimes(plain.python, "import replicate_explain", runs, cwd)
    bare = _importtimes(plain.python, "pass", runs, cwd)
    startup = _importtimes(site.python, "pass", runs, cwd)
    added = {name: t for name, t in ours.items() if name not in bare}
    added_startup = {name: t for name, t in startup.items() if name not in bare or name == "sitecustomize"}
    return {
        "runs": runs,
        "import_added_modules": added,
        "import_added_total_self_us": sum(t["self_us"] for t in added.values()),
        "startup_added_modules": added_startup,
        "startup_added_total_self_us": sum(t["self_us"] for t in added_startup.values()),
        "bare_total_self_us": sum(t["self_us"] for t in bare.values()),
    }


# ---------------------------------------------------------------------------------------------
# Time to explain


EXPLAIN_VARIANTS = {
    "plain traceback": {"REPLICATE_EXPLAIN": "0"},
    "explained, plain text": {},
    "plain traceback, FORCE_COLOR": {"REPLICATE_EXPLAIN": "0", "FORCE_COLOR": "1", "COLUMNS": "100"},
    "explained, rich panel": {"FORCE_COLOR": "1", "COLUMNS": "100"},
}
#: Each explained variant is compared with the plain variant of the same output settings.
EXPLAIN_PAIRS = {"explained, plain text": "plain traceback", "explained, rich panel": "plain traceback, FORCE_COLOR"}


def _explain_commands(
    python: str, program: Path, results: Path, extra: dict[str, str], labels: Sequence[str]
) -> list[m.Command]:
    commands = []
    for number, label in enumerate(labels):
        env_extra = EXPLAIN_VARIANTS[label]
        result_file = results / f"result-{number}.txt"
        result_file.unlink(missing_ok=True)
        env = v.clean_env({**extra, **env_extra, "BENCH_RESULT": str(result_file), "PYTHONIOENCODING": "utf-8"})
        commands.append(m.Command(label, (python, str(program)), env, str(results / f"stderr-{number}.txt")))
    return commands


def _check_explained(command: m.Command, _round: int) -> None:
    assert command.stderr_path is not None
    text = Path(command.stderr_path).read_text(encoding="utf-8", errors="replace")
    explained = "token-unset" in text
    wanted = command.label.startswith("explained")
    if explained != wanted or "ReplicateError" not in text:
        raise RuntimeError(f"{command.label}: unexpected stderr:\n{text[-2000:]}")


def _read_results(command: m.Command) -> tuple[list[float], list[int], list[float]]:
    path = Path(command.env["BENCH_RESULT"])
    times, rss, cpu = [], [], []
    for line in path.read_text(encoding="utf-8").splitlines():
        elapsed, kib, seconds = line.split()
        times.append(float(elapsed))
        rss.append(int(kib))
        cpu.append(float(seconds))
    return times, rss, cpu


def run_explain(
    bench: Bench, rounds: int, extra_env: dict[str, str] | None = None, labels: Sequence[str] = tuple(EXPLAIN_VARIANTS)
) -> dict[str, Any]:
    """Time the explain program in the ``labels`` variants, side by side; return the figures
    (times, and the peak RSS each process reached after its traceback and explanation)."""
    plain, _ = bench.venvs()
    work = Path(tempfile.mkdtemp(prefix="explain-", dir=bench.scratch))
    program = work / "program.py"
    program.write_text(EXPLAIN_PROGRAM, encoding="utf-8")
    with LoopbackAPI() as api:
        commands = _explain_commands(
            plain.python, program, work, {"REPLICATE_BASE_URL": api.url, **(extra_env or {})}, labels
        )
        samples = m.interleaved(
            commands, rounds, warmup=2, expect_status={c.label: 1 for c in commands}, after_each=_check_explained
        )
    inprocess, peak, cpu = {}, {}, {}
    for command in commands:
        times, rss, seconds = _read_results(command)
        if len(times) != rounds + 2:
            raise RuntimeError(f"{command.label}: {len(times)} results for {rounds + 2} runs")
        inprocess[command.label] = times[-rounds:]
        peak[command.label] = rss[-rounds:]
        cpu[command.label] = seconds[-rounds:]
    out: dict[str, Any] = {"rounds": rounds, "variants": {}}
    for command in commands:
        label = command.label
        entry: dict[str, Any] = {
            "raise_to_exit_ms": m.summary(inprocess[label]),
            "raise_to_exit_cpu_ms": m.summary(cpu[label]),
            "process_wall_ms": m.summary(samples[label].values),
            "peak_rss_kib": statistics.median(peak[label]),
        }
        if label in EXPLAIN_PAIRS and EXPLAIN_PAIRS[label] in inprocess:
            base = EXPLAIN_PAIRS[label]
            entry["added_raise_to_exit_ms"] = m.paired_differences(inprocess[label], inprocess[base])
            entry["added_raise_to_exit_cpu_ms"] = m.paired_differences(cpu[label], cpu[base])
            entry["added_process_wall_ms"] = m.paired_differences(samples[label].values, samples[base].values)
        out["variants"][label] = entry
    return out


def bench_explain(bench: Bench) -> dict[str, Any]:
    """An uncaught 401 from the real client (replicate as installed in the venv), explained vs not."""
    plain, _ = bench.venvs()
    version = subprocess.run(
        [plain.python, "-c", "from importlib.metadata import version; print(version('replicate'))"],
        capture_output=True,
        text=True,
        check=True,
        env=v.clean_env(),
    ).stdout.strip()
    result = run_explain(bench, bench.rounds(40, 8))
    result["client"] = f"replicate {version}"
    result["target_added_ms"] = EXPLAIN_TARGET_MS
    return result


# ---------------------------------------------------------------------------------------------
# Logging

LOGGING_PROGRAM = f"""\
import json, logging, os, sys, time

mode, records = sys.argv[1], int(sys.argv[2])
if mode == "automatic":
    import replicate_explain  # the automatic logging integration
elif mode == "filter":
    from replicate_explain.logging import ExplainFilter  # run with REPLICATE_EXPLAIN=0: the filter only

logger = logging.getLogger("app")
logger.propagate = False
logger.setLevel(logging.INFO)
handler = logging.StreamHandler(open(os.devnull, "w", encoding="utf-8"))
handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
logger.addHandler(handler)
if mode == "filter":
    handler.addFilter(ExplainFilter())

for number in range(500):  # warm-up
    logger.info("request %d done in %.1f ms", number, 3.5)
start, start_cpu = time.perf_counter(), time.process_time()
for number in range(records):
    logger.info("request %d done in %.1f ms", number, 3.5)
plain_records = time.perf_counter() - start
plain_records_cpu = time.process_time() - start_cpu

import replicate
try:
    replicate.run({MODEL_REF!r}, input={{"text": "hi"}})
except Exception as error:
    failure = error
start = time.perf_counter()
logger.error("prediction failed", exc_info=failure)
one_failure = time.perf_counter() - start
explained = bool(getattr(failure, "__replicate_explain_explained__", False))
print(json.dumps({{"records": plain_records, "records_cpu": plain_records_cpu, "failure": one_failure,
                  "explained": explained}}))
"""

LOGGING_MODES = {
    "no filter": ("none", {"REPLICATE_EXPLAIN": "0"}),
    "ExplainFilter on the handler": ("filter", {"REPLICATE_EXPLAIN": "0"}),
    "automatic (import replicate_explain)": ("automatic", {}),
}


def bench_logging(bench: Bench) -> dict[str, Any]:
    """Records without exc_info: no filter vs the filter vs the automatic activation, side by
    side (time of the logging loop, measured inside each process); then one matching record."""
    import random

    plain, _ = bench.venvs()
    has_logging = (
        subprocess.run(
            [
                plain.python,
                "-c",
                "import importlib.util as u; print(u.find_spec('replicate_explain.logging') is not None)",
            ],
            capture_output=True,
            text=True,
            check=True,
            env=v.clean_env(),
        ).stdout.strip()
        == "True"
    )
    if not has_logging:
        return {"skipped": "replicate_explain.logging is not in the installed package"}
    records = 5000 if bench.quick else 20000
    rounds = bench.rounds(30, 5)
    program = bench.scratch / "logging_program.py"
    program.write_text(LOGGING_PROGRAM, encoding="utf-8")
    loop: dict[str, list[float]] = {label: [] for label in LOGGING_MODES}
    loop_cpu: dict[str, list[float]] = {label: [] for label in LOGGING_MODES}
    once: dict[str, list[float]] = {label: [] for label in LOGGING_MODES}
    rng = random.Random(7)
    order = list(LOGGING_MODES)
    with LoopbackAPI() as api:
        for number in range(-1, rounds):
            rng.shuffle(order)
            for label in order:
                mode, extra = LOGGING_MODES[label]
                env = v.clean_env({**extra, "REPLICATE_BASE_URL": api.url, "PYTHONIOENCODING": "utf-8"})
                result = subprocess.run(
                    [plain.python, str(program), mode, str(records)],
                    capture_output=True,
                    text=True,
                    env=env,
                    check=False,
                )
                if result.returncode != 0:
                    raise RuntimeError(f"logging benchmark ({label}) failed:\n{result.stderr}")
                data = json.loads(result.stdout)
                if data["explained"] != (mode != "none"):
                    raise RuntimeError(f"logging benchmark ({label}): explained={data['explained']}")
                if number >= 0:
                    loop[label].append(data["records"] / records)
                    loop_cpu[label].append(data["records_cpu"] / records)
                    once[label].append(data["failure"])
    base = loop["no filter"]
    table = {}
    out: dict[str, Any] = {"records": records, "rounds": rounds, "modes": {}}
    for label in LOGGING_MODES:
        per_record = m.summary(loop[label], 1e6)
        ratio = m.paired_ratios(loop[label], base)
        ratio_cpu = m.paired_ratios(loop_cpu[label], loop_cpu["no filter"])
        first = m.summary(once[label])
        out["modes"][label] = {
            "per_record_us": per_record,
            "ratio_to_no_filter": ratio,
            "cpu_ratio_to_no_filter": ratio_cpu,
            "matching_record_ms": first,
        }
        table[f"{label}: one record without exc_info"] = (
            f"{per_record['median']:.2f} us (IQR {per_record['p25']:.2f}-{per_record['p75']:.2f})"
        )
        if label != "no filter":
            table[f"{label}: ratio to no filter"] = _ratio(ratio)
            table[f"{label}: ratio to no filter, CPU time"] = _ratio(ratio_cpu)
    for label in LOGGING_MODES:
        first = out["modes"][label]["matching_record_ms"]
        table[f"{label}: logger.error(exc_info=...) of a real 401, first time"] = _ms(first)
    out["table"] = table
    return out


# ---------------------------------------------------------------------------------------------
# Birth masking: the cost on the success path

#: Requests that succeed against the loopback API through httpx, with birth masking (``import
#: replicate_explain`` wraps ``HTTPTransport.handle_request``) or without (``REPLICATE_EXPLAIN=0``);
#: then the wrapper alone: ``handle_request`` over a pool that answers at once, wrapped vs the
#: original (``__wrapped__``), in the same process.
BIRTH_PROGRAM = """\
import json, os, sys, time

mode, count = sys.argv[1], int(sys.argv[2])
import replicate_explain  # REPLICATE_EXPLAIN=0 for "without": nothing installed
import httpx

wrapped = getattr(httpx.HTTPTransport.handle_request, "__replicate_explain_birth__", False)
url = os.environ["BENCH_URL"] + "/v1/account"
headers = {"Authorization": "Bearer " + os.environ["BENCH_TOKEN"]}
with httpx.Client() as client:
    for _ in range(50):
        assert client.get(url, headers=headers).status_code == 200
    start = time.perf_counter()
    for _ in range(count):
        client.get(url, headers=headers)
    per_request = (time.perf_counter() - start) / count


class Pool:
    def handle_request(self, request):
        return response


import httpcore
response = httpcore.Response(200)
transport = httpx.HTTPTransport()
transport._pool = Pool()
request = httpx.Request("GET", url)
method = httpx.HTTPTransport.handle_request
calls = []
for function in (method, getattr(method, "__wrapped__", method)) * 10:
    start = time.perf_counter()
    for _ in range(5000):
        function(transport, request)
    calls.append((time.perf_counter() - start) / 5000)
print(json.dumps({"request": per_request, "wrapped": wrapped, "with": min(calls[0::2]), "original": min(calls[1::2])}))
"""

BIRTH_MODES = {"without birth masking": {"REPLICATE_EXPLAIN": "0"}, "with birth masking": {}}


def bench_birth(bench: Bench) -> dict[str, Any]:
    """A request that succeeds, through httpx against the loopback API, with and without birth
    masking, side by side (interleaved rounds); and the wrapper's own cost per call."""
    import random

    plain, _ = bench.venvs()
    count = 100 if bench.quick else 300
    rounds = bench.rounds(15, 3)
    program = bench.scratch / "birth_program.py"
    program.write_text(BIRTH_PROGRAM, encoding="utf-8")
    token = "r8_" + "BenchmarkValidToken".ljust(37, "0")
    per_request: dict[str, list[float]] = {label: [] for label in BIRTH_MODES}
    wrapper: list[float] = []
    original: list[float] = []
    rng = random.Random(11)
    order = list(BIRTH_MODES)
    with LoopbackAPI(tokens={token}) as api:
        for number in range(-1, rounds):
            rng.shuffle(order)
            for label in order:
                env = v.clean_env({**BIRTH_MODES[label], "BENCH_URL": api.url, "BENCH_TOKEN": token})
                command = [plain.python, str(program), label, str(count)]
                result = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
                if result.returncode != 0:
                    raise RuntimeError(f"birth benchmark ({label}) failed:\n{result.stderr}")
                data = json.loads(result.stdout)
                if data["wrapped"] != (label == "with birth masking"):
                    raise RuntimeError(f"birth benchmark ({label}): wrapped={data['wrapped']}")
                if number >= 0:
                    per_request[label].append(data["request"])
                    if data["wrapped"]:
                        wrapper.append(data["with"])
                        original.append(data["original"])
    base = per_request["without birth masking"]
    out: dict[str, Any] = {"requests": count, "rounds": rounds, "modes": {}}
    table = {}
    for label in BIRTH_MODES:
        summary = m.summary(per_request[label], 1e6)
        out["modes"][label] = {"per_request_us": summary}
        table[f"{label}: one request that succeeds"] = (
            f"{summary['median']:.1f} us (IQR {summary['p25']:.1f}-{summary['p75']:.1f})"
        )
    ratio = m.paired_ratios(per_request["with birth masking"], base)
    out["ratio"] = ratio
    table["with / without (per-round ratio)"] = _ratio(ratio)
    added = m.summary([w - o for w, o in zip(wrapper, original)], 1e9)
    out["wrapper_added_ns"] = added
    table["the wrapper alone, added per handle_request call"] = (
        f"{added['median']:.0f} ns (IQR {added['p25']:.0f}-{added['p75']:.0f})"
    )
    out["table"] = table
    return out


# ---------------------------------------------------------------------------------------------
# Scale


def _rule_directory(target: Path, copies: int) -> Path:
    """A user rule directory of ``copies`` rules: the bundled rules in turn, under new ids."""
    from replicate_explain._rules import bundled_rules_dir

    # token-unset first, so that every size has copies that match the benchmark's exception
    bundled = sorted(bundled_rules_dir().glob("*.yaml"), key=lambda p: (p.stem != "token-unset", p.stem))
    target.mkdir(parents=True, exist_ok=True)
    for number in range(copies):
        source = bundled[number % len(bundled)]
        new_id = f"{source.stem}-copy{number:04d}"
        text = source.read_text(encoding="utf-8")
        text = re.sub(rf"(?m)^(\s*expect:\s*){re.escape(source.stem)}\s*$", rf"\g<1>{new_id}", text)
        (target / f"{new_id}.yaml").write_text(text, encoding="utf-8")
    return target


def bench_scale(bench: Bench) -> dict[str, Any]:
    """Loading and matching 10, 100 and 1,000 rules in this process (a directory of copies of
    the bundled rules; every copy of token-unset matches the exception); then the time to
    explain in a fresh process with that directory as REPLICATE_EXPLAIN_RULES, on top of the
    bundled rules."""
    from replicate_explain._matcher import case_snapshot, explain_snapshot
    from replicate_explain._rules import bundled_rules_dir, load_rules

    base = load_rules([bundled_rules_dir()])
    unset = base.get("token-unset")
    if unset is None:
        raise RuntimeError("the bundled rule token-unset is missing")
    case = next(c for c in unset.cases if c.expect == "token-unset")
    snapshot = case_snapshot(case)
    out: dict[str, Any] = {"bundled_rules": len(base.rules), "sizes": {}}
    for total in (10, 100, 1000):
        directory = _rule_directory(bench.scratch / f"rules-{total}", total)
        load_times = m.repeat_timing(
            lambda d=directory: load_rules([d]),
            min_time=0.5,
            min_runs=3 if bench.quick or total >= 1000 else 5,
        )
        ruleset = load_rules([directory])
        if ruleset.errors or len(ruleset.rules) != total:
            raise RuntimeError(f"{len(ruleset.rules)} rules loaded, {len(ruleset.errors)} errors: {ruleset.errors[:1]}")
        explanation = explain_snapshot(snapshot, ruleset)
        if explanation is None:
            raise RuntimeError("the case did not match")
        match_times = m.repeat_timing(lambda r=ruleset: explain_snapshot(snapshot, r), min_time=0.5)
        end_to_end = run_explain(
            bench,
            bench.rounds({10: 15, 100: 9}.get(total, 5), 3),
            {"REPLICATE_EXPLAIN_RULES": str(directory)},
            ("plain traceback", "explained, plain text"),
        )
        out["sizes"][str(total)] = {
            "matching_rules": 1 + len(explanation.also),
            "load_ms": m.summary(load_times),
            "match_ms": m.summary(match_times),
            "end_to_end_rules": len(base.rules) + total,
            "end_to_end_added_ms": end_to_end["variants"]["explained, plain text"]["added_raise_to_exit_ms"],
            "end_to_end_rounds": end_to_end["rounds"],
        }
    return out


# ---------------------------------------------------------------------------------------------
# Memory


def _maxrss(python: str, code: str, runs: int, env: dict[str, str]) -> list[int]:
    values = []
    for _ in range(runs):
        result = subprocess.run(
            [python, "-c", code], capture_output=True, text=True, check=True, env=env, cwd=tempfile.gettempdir()
        )
        values.append(int(result.stdout.split()[-1]))
    return values


def bench_memory(bench: Bench) -> dict[str, Any]:
    """Peak RSS (``VmHWM``) of a bare interpreter, after the import, after one explanation."""
    plain, site = bench.venvs()
    runs = bench.rounds(9, 3)
    env = v.clean_env()
    bare = _maxrss(plain.python, MAXRSS, runs, env)
    imported = _maxrss(plain.python, "import replicate_explain\n" + MAXRSS, runs, env)
    startup = _maxrss(site.python, MAXRSS, runs, env)
    explain = run_explain(bench, runs)
    medians = {
        label: statistics.median(values)
        for label, values in {"bare": bare, "import": imported, "startup-install": startup}.items()
    }
    for label, row in explain["variants"].items():
        medians[label] = row["peak_rss_kib"]
    return {
        "runs": runs,
        "peak_rss_mib": {label: value / 1024 for label, value in medians.items()},
        "added_by_import_mib": (medians["import"] - medians["bare"]) / 1024,
        "added_by_startup_install_mib": (medians["startup-install"] - medians["bare"]) / 1024,
        "added_by_one_explanation_mib": (medians["explained, plain text"] - medians["plain traceback"]) / 1024,
        "added_by_one_rich_explanation_mib": (
            medians["explained, rich panel"] - medians["plain traceback, FORCE_COLOR"]
        )
        / 1024,
    }


# ---------------------------------------------------------------------------------------------
# Report


def _ms(summary: dict[str, float]) -> str:
    return f"{summary['median']:.2f} ms (IQR {summary['p25']:.2f}-{summary['p75']:.2f})"


def _ratio(ratio: dict[str, float]) -> str:
    return f"{ratio['median']:.3f} (IQR {ratio['p25']:.3f}-{ratio['p75']:.3f})"


def report(results: dict[str, Any]) -> str:
    """The markdown report of ``results``."""
    lines = ["# replicate-explain benchmarks", ""]
    machine = results["machine"]
    lines.append(
        f"Python {machine['python']} on {machine['platform']}, {machine['cpus']} CPUs; {results['date']}; "
        f"checkout {results.get('checkout', 'unknown')}."
    )
    lines.append("")
    if "startup" in results:
        s = results["startup"]
        lines += [f"## Start-up ({s['rounds']} interleaved rounds; target: ratio <= {s['target_ratio']})", ""]
        lines += [f"Start-up install: {s['startup_install']}.", ""]
        lines += ["| interpreter | command | wall time | ratio to bare (per-round median) |", "|---|---|---|---|"]
        for label, row in s["results"].items():
            lines.append(
                f"| {label} | `python {s['commands'][label]}` | {_ms(row['ms'])} | {_ratio(row['ratio_to_bare'])} |"
            )
        it = s["importtime"]
        lines += [
            "",
            f"`-X importtime`, median of {it['runs']} runs (self time, us) of the modules "
            "`import replicate_explain` adds:",
            "",
        ]
        lines += ["| module | self us | cumulative us |", "|---|---|---|"]
        for name, t in sorted(it["import_added_modules"].items(), key=lambda kv: -kv[1]["self_us"]):
            lines.append(f"| `{name}` | {t['self_us']:.0f} | {t['cumulative_us']:.0f} |")
        lines.append(
            f"| total added | {it['import_added_total_self_us']:.0f} | "
            f"(bare start-up imports: {it['bare_total_self_us']:.0f}) |"
        )
        lines.append("")
    if "explain" in results:
        e = results["explain"]
        lines += [
            f"## Time to explain ({e['rounds']} interleaved rounds, {e['client']}; "
            f"target: < {e['target_added_ms']:.0f} ms more than plain)",
            "",
        ]
        lines += [
            "| variant | raise -> exit (in process) | whole process | added vs plain (raise -> exit) "
            "| added vs plain (process) | added vs plain (raise -> exit, CPU time) |",
            "|---|---|---|---|---|---|",
        ]
        for label, row in e["variants"].items():
            added = _ms(row["added_raise_to_exit_ms"]) if "added_raise_to_exit_ms" in row else ""
            added_wall = _ms(row["added_process_wall_ms"]) if "added_process_wall_ms" in row else ""
            added_cpu = _ms(row["added_raise_to_exit_cpu_ms"]) if "added_raise_to_exit_cpu_ms" in row else ""
            lines.append(
                f"| {label} | {_ms(row['raise_to_exit_ms'])} | {_ms(row['process_wall_ms'])} | {added} | {added_wall} "
                f"| {added_cpu} |"
            )
        lines.append("")
    if "logging" in results:
        lg = results["logging"]
        lines += ["## Logging", ""]
        if "skipped" in lg:
            lines += [f"Not measured: {lg['skipped']}.", ""]
        else:
            lines += [
                f"Records without exc_info: {lg['records']} per run, {lg['rounds']} interleaved rounds "
                f"(target ratio <= {LOGGING_TARGET}).",
                "",
            ]
            lines += ["| measure | value |", "|---|---|"]
            for label, value in lg["table"].items():
                lines.append(f"| {label} | {value} |")
            lines.append("")
    if "birth" in results:
        b = results["birth"]
        lines += [f"## Birth masking ({b['requests']} requests per run, {b['rounds']} interleaved rounds)", ""]
        lines += ["| measure | value |", "|---|---|"]
        for label, value in b["table"].items():
            lines.append(f"| {label} | {value} |")
        lines.append("")
    if "scale" in results:
        sc = results["scale"]
        lines += [
            f"## Scale (copies of the {sc['bundled_rules']} bundled rules under new ids; "
            "every copy of token-unset matches)",
            "",
        ]
        lines += [
            "| rules | load them | match one exception | time to explain, added to plain "
            "(fresh process, plain text, bundled rules too) |",
            "|---|---|---|---|",
        ]
        for size, row in sc["sizes"].items():
            lines.append(
                f"| {size} | {_ms(row['load_ms'])} | {row['match_ms']['median'] * 1000:.0f} us "
                f"({row['matching_rules']} match) | {_ms(row['end_to_end_added_ms'])} "
                f"({row['end_to_end_rules']} rules, {row['end_to_end_rounds']} rounds) |"
            )
        lines.append("")
    if "memory" in results:
        mem = results["memory"]
        lines += [f"## Memory (peak RSS, median of {mem['runs']} processes)", ""]
        lines += ["| process | peak RSS |", "|---|---|"]
        for label, value in mem["peak_rss_mib"].items():
            lines.append(f"| {label} | {value:.1f} MiB |")
        lines += [
            f"| added by `import replicate_explain` | {mem['added_by_import_mib']:+.2f} MiB |",
            f"| added by the start-up install | {mem['added_by_startup_install_mib']:+.2f} MiB |",
            f"| added by one explanation (plain text) | {mem['added_by_one_explanation_mib']:+.1f} MiB |",
            f"| added by one explanation (rich panel) | {mem['added_by_one_rich_explanation_mib']:+.1f} MiB |",
            "",
        ]
    return "\n".join(lines)


def _checkout() -> str:
    """The commit measured, and whether the working tree had changes on top of it."""
    try:
        head = subprocess.run(
            ["git", "-C", str(REPO_ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(REPO_ROOT), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown (not a git checkout)"
    return f"{head} + uncommitted changes" if dirty else head


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "sections", nargs="*", metavar="SECTION", help=f"sections to run (default: all): {', '.join(SECTIONS)}"
    )
    parser.add_argument("--quick", action="store_true", help="few rounds: a smoke test, not figures")
    parser.add_argument(
        "--json",
        type=Path,
        default=DEFAULT_JSON,
        help=f"where the JSON goes (default: {DEFAULT_JSON.relative_to(REPO_ROOT)})",
    )
    parser.add_argument("--keep", action="store_true", help="keep the scratch directory (venvs) and print its path")
    args = parser.parse_args(argv)
    unknown = [name for name in args.sections if name not in SECTIONS]
    if unknown:
        parser.error(f"unknown section {unknown[0]!r}; expected some of: {', '.join(SECTIONS)}")
    sections = args.sections or list(SECTIONS)
    scratch = Path(tempfile.mkdtemp(prefix="replicate-explain-bench-"))
    os.chdir(scratch)  # the measured interpreters must not find the checkout on sys.path ('' = cwd)
    bench = Bench(scratch, args.quick)
    results: dict[str, Any] = {
        "machine": v.describe(),
        "date": time.strftime("%Y-%m-%d %H:%M %Z"),
        "quick": args.quick,
        "command": "python benchmarks/run.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "checkout": _checkout(),
    }
    runners = {
        "startup": bench_startup,
        "explain": bench_explain,
        "logging": bench_logging,
        "birth": bench_birth,
        "scale": bench_scale,
        "memory": bench_memory,
    }
    try:
        for section in sections:
            started = time.perf_counter()
            print(f"running {section}...", file=sys.stderr, flush=True)
            try:
                results[section] = runners[section](bench)
            except Exception:
                print(report(results), file=sys.stderr)  # the sections that did finish
                raise
            print(f"  {section}: {time.perf_counter() - started:.0f} s", file=sys.stderr, flush=True)
    finally:
        if args.keep:
            print(f"scratch directory kept: {scratch}", file=sys.stderr)
        else:
            os.chdir(tempfile.gettempdir())
            shutil.rmtree(scratch, ignore_errors=True)
    args.json.write_text(json.dumps(results, indent=2, sort_keys=False) + "\n", encoding="utf-8")
    print(report(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
