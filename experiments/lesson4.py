"""The main job: fastai Lesson 4 in JAX -- tabular, collaborative filtering and ULMFiT text, in that order.

    python -m experiments.lesson4                 # every part, offline on a fresh clone
    python -m experiments.lesson4 --part collab   # one part (tabular | collab | text | engine)
    python -m experiments.lesson4 --data-dir ../shared/data   # use local copies of the real datasets
    python -m experiments.lesson4 --out runs/lesson4         # where the pictures and results.json go
    python -m experiments.lesson4 --part text --pretrained english-medium   # the text part from another shipped LM

Each part prints fastai's epoch table and a short summary; the loss curves (PNG) and every part's numbers
(``results.json``) go to ``--out`` (default ``./lesson4_output``), whose path is printed at the end.
Without local data a part says so plainly and falls back to bundled or generated data (see each part's
module docstring).
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import time
from pathlib import Path

PARTS = {
    "tabular": "experiments.tabular_lesson",
    "collab": "experiments.collab_lesson",
    "text": "experiments.text_lesson",
    "engine": "experiments.engine_demo",
}
DEFAULT_PARTS = ("tabular", "collab", "text")


def enable_compilation_cache(directory: str | None = None, min_compile_secs: float = 0.5) -> str:
    """Keep XLA's compiled programs on disk so a second run of the lesson skips compiling (seconds per part on
    a CPU). A user-level choice, made by the main job, not by the library."""
    import jax

    directory = directory or os.environ.get("LESSON4_XLA_CACHE",
                                            os.path.join(os.path.expanduser("~"), ".cache", "lesson4_jax", "xla"))
    jax.config.update("jax_compilation_cache_dir", directory)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", min_compile_secs)
    return directory


def run_part(name: str, data_dir: str | None, quick: bool, plots_dir: Path | None = None,
             pretrained: str | None = None) -> dict:
    module = importlib.import_module(PARTS[name])
    if name == "engine":
        return module.run(quick=quick, plots_dir=plots_dir)
    extra = {"pretrained": pretrained} if name == "text" and pretrained else {}
    return module.run(data_dir=data_dir, quick=quick, plots_dir=plots_dir, **extra)


def write_results(out: Path, results: dict) -> Path:
    """``results.json`` (atomically): every part's numbers."""
    path = out / "results.json"
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(results, indent=1, default=lambda x: x.tolist() if hasattr(x, "tolist") else str(x)))
    os.replace(tmp, path)
    return path


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--part", action="append", choices=sorted(PARTS), help="run only these parts")
    ap.add_argument("--data-dir", default=os.environ.get("LESSON4_DATA"),
                    help="folder with the real datasets (default: $LESSON4_DATA)")
    ap.add_argument("--quick", action="store_true", help="a smaller, faster run (smoke test)")
    ap.add_argument("--no-compile-cache", action="store_true", help="do not keep compiled programs on disk")
    ap.add_argument("--out", default="lesson4_output", help="folder for the pictures and results.json")
    ap.add_argument("--pretrained", default=None,
                    help="the shipped LM the text part starts from (ulmfit_jax.pretrained_lm; default: the text "
                         "part's own choice)")
    args = ap.parse_args(argv)
    if not args.no_compile_cache:
        enable_compilation_cache()
    out = Path(args.out).absolute()
    out.mkdir(parents=True, exist_ok=True)
    results = {}
    for name in args.part or DEFAULT_PARTS:
        print(f"\n=== Lesson 4: {name} ===", flush=True)
        t0 = time.perf_counter()
        results[name] = run_part(name, args.data_dir, args.quick, out, args.pretrained)
        print(f"=== {name} done in {time.perf_counter() - t0:.1f}s ===", flush=True)
        write_results(out, results)  # after each part: a later failure keeps the earlier numbers
    print("\nSummary:")
    for name, res in results.items():
        shown = ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in res.items()
                          if isinstance(v, (int, float, str)))
        print(f"  {name}: {shown}")
    pictures = sorted(p.name for p in out.glob("*.png"))
    print(f"\nPictures ({', '.join(pictures)}) and results.json are in {out}")
    return results


if __name__ == "__main__":
    main()
