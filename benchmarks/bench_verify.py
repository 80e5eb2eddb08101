"""What checking artifacts against their per-file sha256 costs (rlhf_core/store_verify.py).

    python benchmarks/bench_verify.py [STORE_TASK_DIR] [--mb 500]

1. Every artifact under STORE_TASK_DIR (default data/artifacts/demo): the cost of checking each file
   once, the most a whole `rlhf run` pays (a file checked once is not hashed again in the process).
   Artifacts built before per-file hashes were recorded are hashed all the same, for the number.
2. One artifact holding a single file of --mb megabytes: a first check, then a repeated one (cached
   by path, modification time and size).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from rlhf_core.store import ArtifactStore  # noqa: E402
from rlhf_core.store_verify import META_FILE, content_files, sha256_file, verify  # noqa: E402


def store_cost(task_dir: Path) -> None:
    dirs = [p.parent for p in task_dir.rglob(META_FILE)]
    files = [f for d in dirs for f in content_files(d)]
    size = sum(f.stat().st_size for f in files)
    t0 = time.perf_counter()
    for f in files:
        sha256_file(f)
    dt = time.perf_counter() - t0
    print(
        f"{task_dir}: {len(dirs)} artifacts, {len(files)} files, {size / 1e6:.1f} MB: "
        f"hashing all once {dt:.3f} s ({size / 1e6 / max(dt, 1e-9):.0f} MB/s)"
    )


def big_file_cost(mb: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:

        def build(out: Path, work: Path) -> dict:
            with open(out / "model.safetensors", "wb") as fh:
                for _ in range(mb):
                    fh.write(os.urandom(1 << 20))
            return {}

        t0 = time.perf_counter()
        ref = ArtifactStore(tmp).build("bench", "big", None, {"mb": mb}, build)
        build_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        verify(ref.dir)
        first = time.perf_counter() - t0
        t0 = time.perf_counter()
        verify(ref.dir)
        again = time.perf_counter() - t0
    print(
        f"{mb} MB file: build incl. writing and hashing {build_s:.2f} s; first check {first:.2f} s "
        f"({mb / first:.0f} MB/s); repeated check {again * 1e3:.2f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("task_dir", nargs="?", default="data/artifacts/demo")
    parser.add_argument("--mb", type=int, default=500)
    args = parser.parse_args()
    if Path(args.task_dir).is_dir():
        store_cost(Path(args.task_dir))
    else:
        print(f"{args.task_dir}: no artifacts (run `rlhf run demo` first); skipping the store measurement")
    big_file_cost(args.mb)


if __name__ == "__main__":
    main()
