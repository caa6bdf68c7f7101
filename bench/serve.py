"""``python -m bench.serve``: latency and load of ``provision serve`` on the quickstart and the sandbox.

In one run, on the same queries, against the same cluster:

  (a) library   the calls the app makes, made directly in this process (the baseline: what
                Elasticsearch and the encoder cost, without HTTP)
  (b) app       the same searches through ``provision serve``'s JSON API, one request at a time:
                ``GET /api/search`` 200 times (texts in English, German and Spanish) and
                ``POST /api/search/image`` 50 times (the quickstart's query images and samples)
  (c) load      8 concurrent clients for 20 s, each repeating text, text, image, more-like-this

The sandbox (``python -m es_sandbox``) and the app (``provision serve``) run as processes of their
own; this process converges the quickstart into the sandbox, then measures. Floors: p95 of text
< 50 ms and p95 of image < 250 ms one at a time, and zero errors under load; the exit status is 1
when one is missed (``--quick``, a smoke run with a few requests for the test suite, checks errors
only). Run it alone on an idle machine. The last line printed is
``serve: text p50=… p95=… ms image p50=… p95=… ms load=…req/s errors=… vs_library text=…x image=…x``.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

if __package__ in (None, ""):  # run as a file: python bench/serve.py
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

REPO = Path(__file__).resolve().parents[1]
QUICKSTART = REPO / "examples" / "quickstart"
TEXTS = [
    "a red circle",
    "a blue star",
    "a green triangle",
    "ein roter Kreis",
    "ein blauer Stern",
    "ein gelbes Quadrat",
    "un círculo rojo",
    "una estrella azul",
    "un corazón morado",
]
FLOOR_TEXT_P95_MS = 50.0
FLOOR_IMAGE_P95_MS = 250.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(q / 100 * len(ordered) + 0.5) - 1))
    return ordered[index]


def wait_until_up(url: str, process: subprocess.Popen[bytes], what: str, timeout: float = 120) -> None:
    import requests

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"{what} exited with {process.returncode}")
        try:
            requests.get(url, timeout=2)
            return
        except requests.ConnectionError:
            time.sleep(0.2)
    raise SystemExit(f"{what} did not start in {timeout:.0f} s")


@contextmanager
def child(command: list[str], log: Path, env: dict[str, str]) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("wb") as sink:
        process = subprocess.Popen(command, stdout=sink, stderr=subprocess.STDOUT, env=env, cwd=REPO)
        try:
            yield process
        finally:
            process.terminate()
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def timed(call: Callable[[], object]) -> float:
    started = time.perf_counter()
    call()
    return (time.perf_counter() - started) * 1000


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.serve", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run: few requests, floors not checked")
    args = parser.parse_args(argv)
    texts_n, images_n, clients, seconds = (20, 6, 8, 2.0) if args.quick else (200, 50, 8, 20.0)

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    workdir = Path(tempfile.mkdtemp(prefix="bench-serve-"))
    os.environ.setdefault(
        "PROVISION_CACHE_DIR", os.environ.get("PROVISION_BENCH_CACHE", str(workdir / "cache"))
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}

    import requests

    import provisioning
    from provisioning.queries import Searcher
    from tests.integration.stacks import absolute_stack

    es_port, app_port = free_port(), free_port()
    es_url, app_url = f"http://127.0.0.1:{es_port}", f"http://127.0.0.1:{app_port}"
    sandbox_cmd = [sys.executable, "-m", "es_sandbox", "--port", str(es_port), "--deployment-delay", "0.05"]
    serve_cmd = [sys.executable, "-c", "from provisioning.cli import main; main()", "-q", "serve"]
    with child(sandbox_cmd, workdir / "sandbox.log", env) as sandbox:
        wait_until_up(es_url, sandbox, "the sandbox")
        stack = provisioning.load_stack(absolute_stack(workdir))
        cluster = provisioning.connect(stack, url=es_url)
        started = time.perf_counter()
        report = provisioning.converge(stack, cluster, provisioning.ConvergeOptions(skip_verify=True))
        if not report.ok:
            raise SystemExit(f"the quickstart did not converge: {report.error}")
        print(f"quickstart converged into the sandbox in {time.perf_counter() - started:.1f} s", flush=True)
        images = [(QUICKSTART / "queries" / n).read_bytes() for n in ("blue-star.jpg", "red-circle.jpg")]
        images += [p.read_bytes() for p in sorted((QUICKSTART / "samples").glob("*-000.jpg"))[::7]]
        text_queries = [TEXTS[i % len(TEXTS)] for i in range(texts_n)]
        image_queries = [images[i % len(images)] for i in range(images_n)]

        # (a) the library, in this process
        searcher = Searcher(stack, cluster)
        for text in TEXTS:
            searcher.search_text(text, k=10)
        for data in images[:3]:
            searcher.search_image(data, k=10)
        lib_text = [timed(lambda t=t: searcher.search_text(t, k=10)) for t in text_queries]
        lib_image = [timed(lambda b=b: searcher.search_image(b, k=10)) for b in image_queries]

        with child(
            [*serve_cmd, str(stack.path), "--port", str(app_port), "--es-url", es_url],
            workdir / "serve.log",
            env,
        ) as app:
            wait_until_up(app_url + "/healthz", app, "provision serve")
            session = requests.Session()
            failures: list[str] = []

            def text_search(http: requests.Session, text: str) -> None:
                answer = http.get(f"{app_url}/api/search", params={"text": text, "k": 10}, timeout=30)
                if answer.status_code != 200 or not answer.json()["hits"]:
                    failures.append(f"text {text!r}: {answer.status_code} {answer.text[:200]}")

            def image_search(http: requests.Session, data: bytes) -> None:
                answer = http.post(
                    f"{app_url}/api/search/image",
                    files={"image": ("q.jpg", data, "image/jpeg")},
                    data={"k": "10"},
                    timeout=30,
                )
                if answer.status_code != 200 or not answer.json()["hits"]:
                    failures.append(f"image: {answer.status_code} {answer.text[:200]}")

            def similar_search(http: requests.Session, doc: str) -> None:
                answer = http.get(f"{app_url}/api/similar/{doc}", params={"k": 10}, timeout=30)
                if answer.status_code != 200 or not answer.json()["hits"]:
                    failures.append(f"similar: {answer.status_code} {answer.text[:200]}")

            for text in TEXTS:  # warm-up: connections, the encoder's first load, thumbnails not involved
                text_search(session, text)
            for data in images[:3]:
                image_search(session, data)
            ids = [
                h["id"]
                for h in session.get(
                    f"{app_url}/api/search", params={"text": "a red circle", "k": 20}, timeout=30
                ).json()["hits"]
            ]

            # (b) the app, one request at a time
            app_text = [timed(lambda t=t: text_search(session, t)) for t in text_queries]
            app_image = [timed(lambda b=b: image_search(session, b)) for b in image_queries]
            sequential_failures = len(failures)

            # (c) load: concurrent clients
            latencies: dict[str, list[float]] = {"text": [], "image": [], "similar": []}
            lock = threading.Lock()
            stop_at = time.monotonic() + seconds

            def client(number: int) -> None:
                http = requests.Session()
                step = number
                while time.monotonic() < stop_at:
                    kind = ("text", "text", "image", "similar")[step % 4]
                    try:
                        if kind == "text":
                            took = timed(lambda n=step: text_search(http, TEXTS[n % len(TEXTS)]))
                        elif kind == "image":
                            took = timed(lambda n=step: image_search(http, images[n % len(images)]))
                        else:
                            took = timed(lambda n=step: similar_search(http, ids[n % len(ids)]))
                    except requests.RequestException as exc:
                        failures.append(f"{kind}: {exc}")
                        took = float("nan")
                    with lock:
                        latencies[kind].append(took)
                    step += 1

            threads = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
            load_started = time.perf_counter()
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            load_seconds = time.perf_counter() - load_started

    total = sum(len(v) for v in latencies.values())
    errors = len(failures)
    text_p50, text_p95 = percentile(app_text, 50), percentile(app_text, 95)
    image_p50, image_p95 = percentile(app_image, 50), percentile(app_image, 95)
    vs_text = statistics.median(app_text) / statistics.median(lib_text)
    vs_image = statistics.median(app_image) / statistics.median(lib_image)
    print(f"machine: {os.cpu_count()} CPUs; sandbox and app in processes of their own; logs in {workdir}")
    print(
        f"library   text  x{len(lib_text):<4} p50 {percentile(lib_text, 50):7.2f} ms  p95 {percentile(lib_text, 95):7.2f} ms"
    )
    print(
        f"library   image x{len(lib_image):<4} p50 {percentile(lib_image, 50):7.2f} ms  p95 {percentile(lib_image, 95):7.2f} ms"
    )
    print(
        f"app       text  x{len(app_text):<4} p50 {text_p50:7.2f} ms  p95 {text_p95:7.2f} ms  (floor p95 < {FLOOR_TEXT_P95_MS:.0f})"
    )
    print(
        f"app       image x{len(app_image):<4} p50 {image_p50:7.2f} ms  p95 {image_p95:7.2f} ms  (floor p95 < {FLOOR_IMAGE_P95_MS:.0f})"
    )
    for kind, values in latencies.items():
        print(
            f"load      {kind:<7} x{len(values):<5} p50 {percentile(values, 50):7.2f} ms  p95 {percentile(values, 95):7.2f} ms"
        )
    print(
        f"load      {clients} clients for {load_seconds:.1f} s: {total} requests, {total / load_seconds:.1f} req/s, {errors - sequential_failures} errors"
    )
    for failure in failures[:10]:
        print(f"error: {failure}")
    missed = []
    if errors:
        missed.append(f"{errors} errors")
    if not args.quick:
        if not text_p95 < FLOOR_TEXT_P95_MS:
            missed.append(f"text p95 {text_p95:.1f} ms >= {FLOOR_TEXT_P95_MS:.0f}")
        if not image_p95 < FLOOR_IMAGE_P95_MS:
            missed.append(f"image p95 {image_p95:.1f} ms >= {FLOOR_IMAGE_P95_MS:.0f}")
    print(
        f"floors: {'missed: ' + '; '.join(missed) if missed else ('ok' if not args.quick else 'errors only (--quick)')}"
    )
    print(
        f"serve: text p50={text_p50:.1f} p95={text_p95:.1f} ms image p50={image_p50:.1f} p95={image_p95:.1f} ms "
        f"load={total / load_seconds:.1f}req/s errors={errors} vs_library text={vs_text:.2f}x image={vs_image:.2f}x"
    )
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
