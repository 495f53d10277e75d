"""Intent classification: accuracy and latency of a bot on a labelled sample.

    .venv/bin/python bench/intents.py [--bot bots.examples.support] \
        [--sample bots/examples/support_eval.jsonl] [--write docs/benchmarks.md]

The sample is JSON lines ``{"text", "intent"}`` with ``"intent": null`` for messages the
bot must not claim (they should reach its fallback). A prediction is correct when the
bot's classifier, with the bot's threshold, names the labelled intent (or none). Latency
is ``Bot.classify`` per utterance (normalise, spell, features, score every intent), timed
with ``perf_counter_ns`` over ``--rounds`` passes after one warm-up pass.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bots.loading import load_bot
from bots.script import Bot

BEGIN, END = "<!-- intents:begin -->", "<!-- intents:end -->"
NONE = "(fallback)"


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def measure(bot: Bot, sample: list[dict[str, str | None]], rounds: int) -> dict[str, object]:
    for row in sample:  # warm-up
        bot.classify(str(row["text"]))
    latencies: list[float] = []
    cpu: list[float] = []
    confusion: dict[str, Counter[str]] = defaultdict(Counter)
    correct = 0
    for round_ in range(rounds):
        for row in sample:
            start, start_cpu = time.perf_counter_ns(), time.thread_time_ns()
            prediction = bot.classify(str(row["text"]))
            latencies.append((time.perf_counter_ns() - start) / 1e6)
            cpu.append((time.thread_time_ns() - start_cpu) / 1e6)
            if round_ == 0:
                expected = row["intent"] or NONE
                got = prediction.intent or NONE
                confusion[expected][got] += 1
                correct += expected == got
    return {
        "n": len(sample),
        "accuracy": correct / len(sample),
        "p50_ms": statistics.median(latencies),
        "p99_ms": percentile(latencies, 0.99),
        "max_ms": max(latencies),
        "cpu_p50_ms": statistics.median(cpu),
        "cpu_p99_ms": percentile(cpu, 0.99),
        "confusion": confusion,
        "timed": len(latencies),
    }


def report(args: argparse.Namespace, bot: Bot, figures: dict[str, object], dev: str) -> str:
    confusion: dict[str, Counter[str]] = figures["confusion"]  # type: ignore[assignment]
    labels = sorted({*confusion, *(g for row in confusion.values() for g in row)})
    f = {k: v for k, v in figures.items() if isinstance(v, (int, float))}
    examples = sum(len(i.examples) for i in bot.intents.values())
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    lines = [
        BEGIN,
        "## Intent classification benchmark",
        "",
        (f"Command: `.venv/bin/python bench/intents.py --bot {args.bot} --sample {args.sample} "
         f"--rounds {args.rounds}`"),
        "",
        (f"Run {when} on `nproc` = {os.cpu_count()}, {platform.machine()}, Python "
         f"{platform.python_version()}. The machine was shared with up to 8 other agents' "
         "builds and tests while it ran, so the wall-clock tail is mostly time the process "
         "spent waiting for a core; the CPU-time columns (`time.thread_time_ns`) are what one "
         "classification costs. Classifier: `bots.nlu.ExampleClassifier` (pure Python), "
         f"threshold {bot.threshold}, {examples} training examples over {len(bot.intents)} "
         "intents."),
        "",
        ("| utterances | accuracy | wall p50 ms | wall p99 ms | wall max ms | CPU p50 ms "
        "| CPU p99 ms | timed calls |"),
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
        (f"| {f['n']} | {f['accuracy']:.1%} | {f['p50_ms']:.3f} | {f['p99_ms']:.3f} "
         f"| {f['max_ms']:.3f} | {f['cpu_p50_ms']:.3f} | {f['cpu_p99_ms']:.3f} | {f['timed']} |"),
        "",
        "Confusion (rows: labelled, columns: predicted; `(fallback)` = below the threshold):",
        "",
        "| labelled \\ predicted | " + " | ".join(labels) + " | recall |",
        "| --- | " + " | ".join("---:" for _ in labels) + " | ---: |",
    ]
    for expected in labels:
        row = confusion.get(expected, Counter())
        total = sum(row.values())
        recall = f"{row[expected] / total:.0%}" if total else "-"
        lines.append(f"| {expected} | " + " | ".join(str(row[g] or "") for g in labels)
                     + f" | {recall} |")
    lines += [
        "",
        ("The sample is not in the training examples (tests/bots/test_examples.py checks): "
         "paraphrases, typos and abbreviations (\"wher is my pacakge\", \"thnks\"), and "
         "messages the bot was not taught (refunds, passwords, the weather) that must reach "
         "the fallback. The classifier's settings (feature weights, idf power, the example "
         "bot's threshold) were chosen on a separate development sample "
         f"(`bots/examples/support_dev.jsonl`){dev}, after a first look at this one's errors, "
         "so this figure is somewhat optimistic."),
        END,
    ]
    return "\n".join(lines)


def write_section(path: Path, text: str) -> None:
    current = path.read_text() if path.exists() else ""
    if BEGIN in current and END in current:
        before, rest = current.split(BEGIN, 1)
        after = rest.split(END, 1)[1]
        path.write_text(before + text + after)
    else:
        path.write_text(current.rstrip("\n") + "\n\n" + text + "\n")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--bot", default="bots.examples.support")
    parser.add_argument("--sample", default="bots/examples/support_eval.jsonl")
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--write", type=Path, default=None, help="update this Markdown file")
    args = parser.parse_args()
    bot = load_bot(args.bot)
    if not isinstance(bot, Bot):
        print("bench/intents.py measures scripted bots (bots.script.Bot)", file=sys.stderr)
        return 2
    sample = [json.loads(line) for line in (ROOT / args.sample).read_text().splitlines() if line]
    figures = measure(bot, sample, args.rounds)
    dev_path = ROOT / "bots/examples/support_dev.jsonl"
    dev = ""
    if args.bot == "bots.examples.support" and dev_path.exists():
        dev_sample = [json.loads(line) for line in dev_path.read_text().splitlines() if line]
        score = measure(bot, dev_sample, 1)["accuracy"]
        dev = f", {len(dev_sample)} utterances, on which it scores {float(score):.1%}"  # type: ignore[arg-type]
    text = report(args, bot, figures, dev)
    print(text)
    if args.write:
        write_section(args.write, text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
