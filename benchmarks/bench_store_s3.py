"""What the object store costs a task's artifacts: publishing them to S3 and fetching them into an
empty cache (what a run on S3 pays on top of a run on a local path, and a fresh pod pays to read).

    python benchmarks/bench_store_s3.py [STORE_TASK_DIR]

STORE_TASK_DIR (default data/artifacts/demo) is a task's folder in a local store, built by
`rlhf run`. The S3 server is moto's, on 127.0.0.1 (tests/s3_server.py), so the numbers are the
store's own work (hashing, requests, copies), not a network's.
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
from rlhf_core.store_remote import ObjectStore  # noqa: E402
from rlhf_core.store_verify import META_FILE  # noqa: E402
from tests.s3_server import new_bucket, s3_server  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("task_dir", nargs="?", default="data/artifacts/demo")
    task_dir = Path(parser.parse_args().task_dir).resolve()
    dirs = sorted(p.parent for p in task_dir.rglob(META_FILE) if not any(s.startswith(".tmp") for s in p.parts))
    if not dirs:
        sys.exit(f"{task_dir}: no artifacts; run `rlhf run {task_dir.name}` first")
    size = sum(f.stat().st_size for d in dirs for f in d.rglob("*") if f.is_file())
    with s3_server(), tempfile.TemporaryDirectory() as cache:
        os.environ["RLHF_CACHE"] = cache
        url = new_bucket() + "/artifacts"
        remote, root = ObjectStore(url), task_dir.parent
        t0 = time.perf_counter()
        for d in dirs:
            remote.publish(d.relative_to(root).as_posix(), d)
        upload = time.perf_counter() - t0
        store = ArtifactStore(url)
        t0 = time.perf_counter()
        for d in dirs:
            store.localize(store.root / d.relative_to(root))
        download = time.perf_counter() - t0
    print(
        f"{task_dir}: {len(dirs)} artifacts, {size / 1e6:.1f} MB: publish {upload:.1f} s, "
        f"fetch into an empty cache (each file checked) {download:.1f} s"
    )


if __name__ == "__main__":
    main()
