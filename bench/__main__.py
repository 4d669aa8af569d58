"""``python -m bench``: every benchmark in one run, printed as Markdown tables.

Starts ``bench.server`` in another process, measures the contenders of
:mod:`bench.contenders` against it, checks the targets of docs/benchmarks.md and prints
which were met. ``--quick`` runs a tiny version (for the smoke test); ``--json PATH`` also
writes the raw figures. Exit status 1 means a contender failed to read an answer correctly,
not that a target was missed.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from functools import partial
from typing import Any, Callable
from urllib.parse import urlsplit

from . import batch as b
from . import contenders as c
from . import fresh, persona_standin
from .measure import Burst, Sample, async_burst, burst, interleaved_cpu, single_latency
from .server import PARALLEL, SHORT_ANSWER, SLOW_SECONDS

RAW = "raw http.client (floor)"
REQUESTS = "requests.Session (floor)"
PROVIDER = "persona_ollama OllamaProvider.generate"
SLOW_MODEL = "bench-slow:latest"

# The targets (docs/benchmarks.md); measured values are compared with these as they are.
IMPORT_LIMIT = 0.025
REQUEST_VS_REQUESTS = 1.2
CHUNK_VS_RAW = 1.0
CONCURRENCY_RATIO = 2.0
PROBE_COLD_LIMIT = 0.100
PROBE_WARM_LIMIT = 0.001
HELP_LIMIT = 0.150  # `persona-ollama --help`, whole process, with Persona installed


@dataclass
class Settings:
    rounds: int
    warmup: int
    chunks: int
    stream_runs: int
    import_repeats: int
    bursts: int
    fresh_repeats: int


FULL = Settings(
    rounds=300, warmup=30, chunks=20_000, stream_runs=7, import_repeats=15, bursts=3,
    fresh_repeats=5,
)  # fmt: skip
QUICK = Settings(
    rounds=5, warmup=2, chunks=200, stream_runs=2, import_repeats=2, bursts=1, fresh_repeats=1
)


class Server:
    """bench.server in a child process; it stops when we close its stdin."""

    def __init__(self) -> None:
        root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        self.process = subprocess.Popen(
            [sys.executable, "-m", "bench.server", "--port", "0", "--lifetime", "600"],
            cwd=root,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        self.url = self.process.stdout.readline().strip()
        if not self.url.startswith("http://"):
            self.close()
            raise RuntimeError("bench.server did not start")
        parts = urlsplit(self.url)
        self._address = (parts.hostname or "127.0.0.1", parts.port or 80)

    def get(self, path: str) -> Any:
        return json.loads(self.get_bytes(path))

    def get_bytes(self, path: str) -> bytes:
        connection = http.client.HTTPConnection(*self._address, timeout=10)
        try:
            connection.request("GET", path)
            return connection.getresponse().read()
        finally:
            connection.close()

    def body(self, call: Any) -> bytes:
        """The exact /api/chat body ``call`` sends."""
        call()
        return self.get_bytes("/bench/last")

    def close(self) -> None:
        if self.process.stdin:
            self.process.stdin.close()
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def busy() -> str | None:
    """Why wall times are not comparable now (None when the machine is not overloaded): then
    start-up targets are judged on CPU time, which is the wall time on an idle core."""
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0
    cpus = os.cpu_count() or 1
    return f"load average {load:.1f} on {cpus} CPUs" if load > cpus else None


def ms(seconds: float) -> str:
    return f"{seconds * 1e3:.1f} ms" if seconds >= 0.01 else f"{seconds * 1e3:.2f} ms"


def us(seconds: float) -> str:
    if seconds >= 0.01:
        return ms(seconds)
    return f"{seconds * 1e6:.0f} µs" if seconds >= 1e-4 else f"{seconds * 1e6:.2f} µs"


def table(header: list[str], rows: list[list[str]]) -> str:
    aligns = ["---"] + ["---:"] * (len(header) - 1)
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join(aligns) + " |"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def cpu_table(samples: dict[str, Sample], unit: Any) -> str:
    raw, floor = samples[RAW].median, samples[REQUESTS].median
    rows = [
        [name, unit(s.median), unit(s.p90), f"{s.median / raw:.2f}x", f"{s.median / floor:.2f}x"]
        for name, s in samples.items()
    ]
    return table(["client", "median", "p90", "vs raw http.client", "vs requests.Session"], rows)


class Run:
    def __init__(self, settings: Settings, out: Any = sys.stdout) -> None:
        self.settings = settings
        self.out = out
        self.figures: dict[str, Any] = {}
        self.targets: list[tuple[str, str, bool | None, str]] = []
        self.failed = False
        self.notes: list[str] = []
        self.short_body = b""

    def say(self, text: str = "") -> None:
        print(text, file=self.out, flush=True)

    def target(self, name: str, measured: str, met: bool | None, note: str = "") -> None:
        self.targets.append((name, measured, met, note))

    # -- the run -----------------------------------------------------------------------

    def run(self) -> None:
        server = Server()
        try:
            self.header(server)
            everyone = self.contenders(server)
            try:
                self.per_request(server, everyone)
                self.per_call(server, self.short_body)
                self.per_chunk(everyone)
            finally:
                for contender in everyone:
                    contender.close()
            self.imports()
            self.concurrency(server)
            self.defaults(server)
        finally:
            server.close()
        self.batch()
        self.startup()
        self.summary()

    def header(self, server: Server) -> None:
        import requests

        from persona_ollama import __version__

        entry = _entry_point()
        ollama = c.ollama_version()
        self.say("# persona-ollama benchmarks\n")
        self.say(
            f"persona-ollama {__version__}; {platform.python_implementation()} "
            f"{platform.python_version()} on {platform.system()} {platform.machine()}, "
            f"{os.cpu_count()} CPUs; requests {requests.__version__}, urllib3 "
            f"{_version('urllib3')}; ollama {ollama or 'not installed'}."
        )
        self.say(f"Entry point: persona.providers `ollama = {entry}`.")
        load = os.getloadavg() if hasattr(os, "getloadavg") else (0.0, 0.0, 0.0)
        self.say(f"Load average at the start: {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f}.")
        self.say(
            f"Server: bench.server at {server.url}, in another process. Client CPU is "
            "time.thread_time() of the calling thread around the client call only."
        )
        self.figures["environment"] = {
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "requests": requests.__version__,
            "urllib3": _version("urllib3"),
            "ollama": ollama,
            "entry_point": entry,
        }

    def contenders(self, server: Server) -> list[c.Contender]:
        chunks = self.settings.chunks
        provider = c.persona_provider(server.url, chunks)
        short_body = self.short_body = server.body(provider.short)
        stream_body = server.body(provider.stream)
        everyone = [
            c.raw_http(server.url, short_body, stream_body),
            c.requests_session(server.url, short_body, stream_body),
        ]
        official = c.official_ollama(server.url, short_body, stream_body)
        if official is None:
            self.notes.append(
                "The official `ollama` client is not installed: its rows are skipped."
            )
        else:
            everyone.append(official)
        everyone += [c.persona_client(server.url, short_body, stream_body), provider]
        return everyone

    def per_request(self, server: Server, everyone: list[c.Contender]) -> None:
        s = self.settings
        self.say(
            f"\n## 1. Client CPU per short generate ({len(SHORT_ANSWER)}-chunk answer; "
            f"n={s.rounds} after {s.warmup} warm-up calls)\n"
        )
        calls = {x.name: x.short for x in everyone}
        samples = self._cpu(calls, "".join(SHORT_ANSWER), units=1, rounds=s.rounds)
        self.say(cpu_table(samples, us))
        # What one generate costs the server, counted over generates of the provider alone.
        provider = calls[PROVIDER]
        generates = min(s.rounds, 100)
        server.get("/bench/reset")
        for _ in range(generates):
            provider()
        stats = server.get("/bench/stats")
        chats = stats["counts"].get("/api/chat", 0)
        other = sum(n for path, n in stats["counts"].items() if path.startswith("/api/")) - chats
        connections = stats["connections"] - 1  # the connection of /bench/stats itself
        self.say(
            f"\nServer side, over {generates} more provider generates: {chats} /api/chat, "
            f"{other} other /api/ requests (model facts are cached), {connections} new TCP "
            "connections (the pooled one is reused)."
        )
        for note in self.notes:
            self.say(note)
        ratio = samples[PROVIDER].median / samples[REQUESTS].median
        official = [name for name in samples if name.startswith("ollama ")]
        below_official = all(samples[PROVIDER].median < samples[o].median for o in official)
        met = ratio <= REQUEST_VS_REQUESTS and below_official
        note = "" if official else "the official client is not installed: not compared"
        self.target(
            f"per-request CPU <= {REQUEST_VS_REQUESTS}x requests.Session and below the official "
            "client",
            f"{ratio:.2f}x requests.Session"
            + "".join(
                f"; {samples[PROVIDER].median / samples[o].median:.2f}x ollama" for o in official
            ),
            met,
            note,
        )
        self.figures["per_request"] = _figures(samples)
        self.figures["per_request_server"] = {"chats": chats, "other": other, "new": connections}

    def per_call(self, server: Server, short_body: bytes) -> None:
        s = self.settings
        rounds = max(1, s.rounds // 3)
        self.say(
            f"\n### 1b. The same, building a new client for every call (n={rounds})\n\n"
            "What a host pays if it makes a provider per call, as Persona's built-in provider "
            "makes an HTTP client per call.\n"
        )
        calls = c.per_call_clients(server.url, short_body)
        samples = interleaved_cpu(
            calls, rounds=rounds, warmup=min(5, s.warmup), expected="".join(SHORT_ANSWER)
        )
        self.say(
            table(
                ["client", "median", "p90"],
                [[name, us(x.median), us(x.p90)] for name, x in samples.items()],
            )
        )
        self.figures["per_call_client"] = _figures(samples)

    def per_chunk(self, everyone: list[c.Contender]) -> None:
        s = self.settings
        self.say(
            f"\n## 2. Client CPU per streamed chunk ({s.chunks:,}-chunk answer, one NDJSON "
            f"line per HTTP chunk; {s.stream_runs} runs after 1 warm-up)\n"
        )
        calls = {x.name: x.stream for x in everyone}
        samples = self._cpu(
            calls, " word" * s.chunks, units=s.chunks, rounds=s.stream_runs, warmup=1
        )
        self.say(cpu_table(samples, us))
        ratio = samples[PROVIDER].median / samples[RAW].median
        self.target(
            f"per-chunk CPU <= {CHUNK_VS_RAW}x raw http.client",
            f"{ratio:.2f}x",
            ratio <= CHUNK_VS_RAW,
        )
        self.figures["per_chunk"] = _figures(samples)

    def _cpu(
        self,
        calls: dict[str, Any],
        expected: str,
        *,
        units: int,
        rounds: int,
        warmup: int | None = None,
    ) -> dict[str, Sample]:
        warmup = self.settings.warmup if warmup is None else warmup
        return interleaved_cpu(calls, rounds=rounds, warmup=warmup, expected=expected, units=units)

    def imports(self) -> None:
        s = self.settings
        self.say(
            f"\n## 3. Import in a fresh interpreter (median of {s.import_repeats}; "
            "interpreter start-up excluded)\n"
        )
        statements = [
            (fresh.ENTRY_POINT_IMPORT, ""),
            (fresh.ENTRY_POINT_IMPORT, fresh.HOST_PRELUDE),
            ("import http.client", ""),
            ("import requests", ""),
        ]
        if c.ollama_version():
            statements.append(("import ollama", ""))
        costs = [fresh.import_cost(code, s.import_repeats, prelude) for code, prelude in statements]
        rows = [
            [
                f"`{cost.statement}`" + (f" after `{cost.prelude}`" if cost.prelude else ""),
                ms(cost.median),
                ms(cost.cpu_median),
                str(len(cost.new_modules)),
                ", ".join(cost.heavy) or "none",
            ]
            for cost in costs
        ]
        heavy = "of " + ", ".join(fresh.HEAVY)
        self.say(table(["statement", "median", "CPU", "modules loaded", heavy], rows))
        ours = costs[0]
        self.say(
            "\nThe entry point's largest imports (self time, `-X importtime`): "
            + ", ".join(f"{name} {ms(t)}" for name, t in ours.slowest)
            + ".\nStandard-library modules it loads: "
            + (", ".join(ours.stdlib) or "none of " + ", ".join(fresh.NOTABLE_STDLIB))
            + "."
        )
        reason = busy()
        self.target(
            f"import of the entry-point target <= {IMPORT_LIMIT * 1e3:.0f} ms, without "
            "requests/psutil/click/pluggy",
            f"{ms(ours.median)} ({ms(ours.cpu_median)} CPU); heavy: "
            + (", ".join(ours.heavy) or "none"),
            (ours.cpu_median if reason else ours.median) <= IMPORT_LIMIT and not ours.heavy,
            f"judged on CPU time: {reason}" if reason else "",
        )
        self.figures["imports"] = {
            cost.statement + (f" after {cost.prelude}" if cost.prelude else ""): {
                "median": cost.median,
                "cpu": cost.cpu_median,
                "modules": len(cost.new_modules),
                "heavy": cost.heavy,
                "stdlib": cost.stdlib,
                "slowest": cost.slowest,
            }
            for cost in costs
        }

    def concurrency(self, server: Server) -> None:
        s = self.settings
        self.say(
            f"\n## 4. {PARALLEL} concurrent generates on one client (server answers each after "
            f"{SLOW_SECONDS} s, {PARALLEL} in parallel; {s.bursts} bursts)\n"
        )
        from persona_ollama import OllamaProvider

        ours = OllamaProvider(base_url=server.url)

        def generate() -> str:
            return str(ours.generate(c.PROMPT, model=SLOW_MODEL, max_tokens=256).content)

        def generate_async() -> Any:
            return ours.generate_async(c.PROMPT, model=SLOW_MODEL, max_tokens=256)

        slow_body = server.body(generate)
        threads = partial(burst, size=PARALLEL)
        clients: list[tuple[str, Callable[[], str], Callable[[], Burst], Callable[[], None]]] = [
            (PROVIDER + ", 32 threads", generate, partial(threads, generate), lambda: None),
            (
                "persona_ollama generate_async, asyncio.gather",
                generate,
                partial(async_burst, generate_async, PARALLEL),
                ours.close,
            ),
        ]
        floor = c.requests_session(server.url, slow_body, slow_body)
        clients.append(
            (REQUESTS + ", default pool, 32 threads", floor.short, partial(threads, floor.short),
             floor.close)
        )  # fmt: skip
        official = c.official_ollama(server.url, slow_body, slow_body)
        if official is not None:
            clients.append(
                (official.name + ", 32 threads", official.short, partial(threads, official.short),
                 official.close)
            )  # fmt: skip
        rows = []
        for name, call, run_burst, close in clients:
            call()  # facts cached and one connection open, as after any first request
            alone = single_latency(call, 3)
            server.get("/bench/reset")
            bursts: list[Burst] = [run_burst() for _ in range(s.bursts)]
            stats = server.get("/bench/stats")
            close()
            worst = max(b.wall for b in bursts)
            warnings = sum(b.pool_warnings for b in bursts)
            errors = [e for b in bursts for e in b.errors]
            rows.append(
                [
                    name,
                    ms(alone),
                    " / ".join(ms(b.wall) for b in bursts),
                    f"{worst / alone:.2f}x",
                    str(stats["peak_in_flight"]),
                    str(stats["connections"] - 1),
                    str(warnings),
                    str(len(errors)),
                ]
            )
            if name.startswith("persona_ollama"):
                self.failed |= bool(errors)
                self.target(
                    f"{PARALLEL} concurrent requests within {CONCURRENCY_RATIO}x one request, "
                    f"no pool warnings ({name.split(', ', 1)[1]})",
                    f"{worst / alone:.2f}x (slowest burst); {warnings} pool warnings",
                    worst / alone <= CONCURRENCY_RATIO and warnings == 0 and not errors,
                    "; ".join(errors[:1]),
                )
                self.figures.setdefault("concurrency", {})[name] = {
                    "alone": alone,
                    "bursts": [b.wall for b in bursts],
                    "peak": stats["peak_in_flight"],
                    "pool_warnings": warnings,
                    "errors": errors,
                }
        self.say(
            table(
                [
                    "client",
                    "one request",
                    f"{PARALLEL} concurrent, per burst",
                    "slowest / one",
                    "peak in flight",
                    "new connections",
                    "pool-full warnings",
                    "errors",
                ],
                rows,
            )
        )

    def defaults(self, server: Server) -> None:
        s = self.settings
        self.say(
            f"\n## 5. Hardware probe and default-model selection (fresh interpreters, median of "
            f"{s.fresh_repeats})\n"
        )
        tools = [tool for tool in ("nvidia-smi", "rocm-smi") if shutil.which(tool)]
        try:
            d = fresh.defaults_cost(server.url, s.fresh_repeats)
        except RuntimeError as error:
            self.say(f"Skipped: {error}")
            self.target("probe <= 100 ms cold, <= 1 ms warm", "not measured", None, str(error))
            return
        rows = [
            ["`hardware.probe()` cold: import + first call", ms(d["probe_cold"])],
            ["of which: importing choosing.hardware (psutil, pluggy)", ms(d["probe_import"])],
            ["`hardware.probe()` warm (cached)", us(d["probe_warm"])],
            ["`load_catalogue()` first call", ms(d["catalogue_load"])],
            [f"`choose_default()` with {d['installed']} installed models, first call",
             ms(d["choose_first"])],
            ["`choose_default()` again", us(d["choose_warm"])],
            ["`OllamaProvider().default_model` first call in a fresh interpreter: loads "
             f"requests, psutil, pluggy; /api/tags ({d['installed']} models); probe; choice",
             ms(d["default_model_first"])],
            ["`OllamaProvider().default_model` again (cached)", us(d["default_model_warm"])],
        ]  # fmt: skip
        self.say(table(["measurement", "time"], rows))
        self.say(
            f"\nGPU tools on PATH: {', '.join(tools) or 'none'}; GPUs found: {d['gpus']}; "
            f"default model chosen: {d['choice']}."
        )
        self.target(
            "probe (no GPU tools) <= 100 ms cold, <= 1 ms warm",
            f"{ms(d['probe_cold'])} cold, {us(d['probe_warm'])} warm",
            d["probe_cold"] <= PROBE_COLD_LIMIT and d["probe_warm"] <= PROBE_WARM_LIMIT,
            "GPU tools present: " + ", ".join(tools) if tools else "",
        )
        self.figures["defaults"] = d

    def batch(self) -> None:
        s = self.settings
        generations = b.GENERATIONS if s is FULL else 20
        needed = b.needed_windows(generations)
        self.say(
            f"\n## 6. Model loads in a batch ({generations} generations of {b.WORDS[0]:,} to "
            f"{b.WORDS[1]:,} words to one {b.CONTEXT_LENGTH // 1024}K model, {b.MODEL})\n\n"
            f"Against FakeOllama's scheduler (reloads when num_ctx or another runner option "
            f"changes, as server/sched.go decides), with a load time of {b.LOAD_TIME * 1e3:.0f} "
            f"ms (a 7B model takes seconds, a 70B one a minute: multiply the loads, not the "
            f"wall time), {b.GENERATION_TIME * 1e3:.0f} ms before each answer and "
            f"OLLAMA_NUM_PARALLEL={b.PARALLEL}. The prompts need windows of "
            + ", ".join(str(w) for w in needed)
            + " by the ladder, shuffled.\n"
        )
        results = b.run_batches(generations)
        rows = [
            [
                r.client,
                r.mode,
                str(r.loads),
                ms(r.wall) if r.wall < 1 else f"{r.wall:.2f} s",
                ", ".join(str(w) for w in r.windows),
                str(r.truncated),
                str(r.errors),
            ]
            for r in results
        ]
        self.say(
            table(
                ["client", "batch", "model loads", "wall time", "windows used", "prompts cut",
                 "errors"],
                rows,
            )
        )  # fmt: skip
        self.say(
            "\nModel loads is what a researcher waits for: at a realistic 3 s per load, "
            + "; ".join(
                f"{r.client}, {r.mode}: {r.loads * 3} s"
                for r in results
                if r.client != b.NO_NUM_CTX
            )
            + ". Prompts cut: prompts longer than the window the server ran them with, which "
            "it truncates silently."
        )
        ours = [r for r in results if r.client == b.POLICY]
        # 1 load for the first window, and 1 more for each larger window a later prompt needs:
        # the windows only grow, and each is loaded once.
        met = all(
            r.loads <= len(r.windows) and r.windows == sorted(r.windows) and not r.errors
            and not r.truncated
            for r in ours
        )  # fmt: skip
        self.target(
            "batch: 1 load per model, plus 1 per genuinely larger window",
            "; ".join(
                f"{r.mode}: {r.loads} loads, windows {', '.join(map(str, r.windows))}" for r in ours
            ),
            met,
        )
        self.figures["batch"] = [r.__dict__ for r in results]

    def startup(self) -> None:
        import tempfile

        s = self.settings
        repeats = max(3, s.import_repeats)
        self.say(
            f"\n## 7. Start-up with Persona installed (fresh processes, median of {repeats})\n\n"
            "Next to a Persona-shaped package (bench/persona_standin.py) whose "
            "`persona/core/providers/__init__.py` imports stand-in SDKs, as Persona's imports "
            "every provider and its SDK. Wall time includes the interpreter's start-up; CPU "
            "time (user + system) is steadier on a busy machine.\n"
        )
        with tempfile.TemporaryDirectory() as root:
            if s is FULL:
                persona_standin.build(root)
            else:  # the harness check only: a light stand-in
                persona_standin.build(root, modules=2, classes=2)
            d = fresh.persona_startup(root, repeats)
        rows = [
            ["`python -c pass` (the floor)", ms(d["python_bare"]), ms(d["python_bare_cpu"])],
            ["`persona-ollama --help`, Persona installed", ms(d["help_with_persona"]),
             ms(d["help_with_persona_cpu"])],
            ["`persona-ollama --help`, no Persona", ms(d["help_without_persona"]),
             ms(d["help_without_persona_cpu"])],
            ["`import persona.core.providers` (what every command paid before; import only)",
             ms(d["persona_package_import"]), ms(d["persona_package_import_cpu"])],
            ["entry point `from persona_ollama import OllamaProvider` after the host imported "
             "Persona's providers (import only)", ms(d["entry_point_after_persona"]),
             ms(d["entry_point_after_persona_cpu"])],
        ]  # fmt: skip
        self.say(table(["measurement", "wall", "CPU"], rows))
        self.say(
            "\nModules of Persona the CLI loads: "
            + (", ".join(d["cli_persona_modules"]) or "none")
            + ". Modules the entry point loads after Persona: "
            + ", ".join(d["entry_point_modules"])
            + "."
        )
        reason = busy()
        note = f"judged on CPU time: {reason}" if reason else ""
        suffix = "_cpu" if reason else ""
        self.target(
            f"`persona-ollama --help` <= {HELP_LIMIT * 1e3:.0f} ms with Persona installed, "
            "importing nothing of Persona",
            f"{ms(d['help_with_persona'])} wall, {ms(d['help_with_persona_cpu'])} CPU",
            d["help_with_persona" + suffix] <= HELP_LIMIT and not d["cli_persona_modules"],
            note,
        )
        self.target(
            f"entry-point import <= {IMPORT_LIMIT * 1e3:.0f} ms inside Persona",
            f"{ms(d['entry_point_after_persona'])} ({ms(d['entry_point_after_persona_cpu'])} "
            "CPU); heavy: " + (", ".join(d["entry_point_heavy"]) or "none"),
            d["entry_point_after_persona" + suffix] <= IMPORT_LIMIT and not d["entry_point_heavy"],
            note,
        )
        self.figures["startup_with_persona"] = d

    def summary(self) -> None:
        self.say("\n## Targets\n")
        rows = []
        for name, measured, met, note in self.targets:
            verdict = "n/a" if met is None else "met" if met else "MISSED"
            rows.append([name, measured, verdict + (f" ({note})" if note else "")])
        self.say(table(["target", "measured", "result"], rows))
        self.figures["targets"] = [
            {"target": name, "measured": measured, "met": met, "note": note}
            for name, measured, met, note in self.targets
        ]


def _figures(samples: dict[str, Sample]) -> dict[str, dict[str, float]]:
    return {name: {"median": s.median, "p90": s.p90} for name, s in samples.items()}


def _version(distribution: str) -> str:
    from importlib.metadata import version

    return version(distribution)


def _entry_point() -> str:
    if sys.version_info >= (3, 10):
        from importlib.metadata import entry_points
    else:  # the selectable entry_points() API arrived in 3.10; the backport has it
        from importlib_metadata import entry_points

    for entry in entry_points(group="persona.providers"):
        if entry.name == "ollama":
            return str(entry.value)
    return "(not installed: pip install -e .)"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a tiny run, to check the harness")
    parser.add_argument("--json", metavar="PATH", help="also write the figures as JSON here")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    run = Run(QUICK if args.quick else FULL)
    try:
        run.run()
    except AssertionError as error:  # a contender did not read the whole answer
        print(f"FAILED: {error}", file=sys.stderr)
        return 1
    load = os.getloadavg() if hasattr(os, "getloadavg") else (0.0, 0.0, 0.0)
    run.say(
        f"\nTotal time: {time.perf_counter() - started:.0f} s; load average at the end: "
        f"{load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f}."
    )
    if args.json:
        with open(args.json, "w", encoding="utf-8") as handle:
            json.dump(run.figures, handle, indent=2)
    return 1 if run.failed else 0


if __name__ == "__main__":
    sys.exit(main())
