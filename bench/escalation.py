"""The escalation check's cost a message: the rules alone (the baseline) and rules + examples (the
sentence encoder and the classifier), over the corpus, best of --repeat runs of --messages messages,
one thread. Prints ms a message and the ratio.

usage: .venv/bin/python bench/escalation.py [--messages 1000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import yaml  # noqa: E402

import execution  # noqa: E402,F401  (sets the BLAS thread limits before numpy loads)
from execution.check_escalation import check_escalation  # noqa: E402
from execution.lib.directives import load_directives  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--messages", type=int, default=1000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    rules = load_directives()["escalation_triggers"]
    texts = [e["text"] for e in yaml.safe_load((ROOT / "tests" / "data" / "escalation_corpus.yaml").read_text())]
    messages = (texts * (args.messages // len(texts) + 1))[:args.messages]
    started = time.perf_counter()
    check_escalation("warm up, is this still available?", directive=rules)   # encoder, index, classifier
    print(f"escalation_triggers version {rules.version}: warm-up (encoder, examples, training) "
          f"{time.perf_counter() - started:.2f} s")
    figures = {}
    for name, use in (("rules alone", False), ("rules + examples", True)):
        best = float("inf")
        for _ in range(args.repeat):
            t = time.perf_counter()
            for m in messages:
                check_escalation(m, directive=rules, use_examples=use)
            best = min(best, time.perf_counter() - t)
        figures[name] = best / len(messages) * 1000
        print(f"{name:18} {figures[name]:.3f} ms a message (best of {args.repeat} x {len(messages)})")
    print(f"ratio rules + examples / rules alone: {figures['rules + examples'] / figures['rules alone']:.1f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
