"""Sentiment models (issue 20 item 7) on the three labelled datasets in ../shared/data/sentiment: the majority class,
VADER, MiniLM embeddings with a logistic head and MiniLM fine-tuned end to end, each fitted on a stratified 80% and
scored on the held-out 20%: accuracy and macro-F1 with 95% bootstrap intervals, texts scored per second on this CPU,
and the fitting time. Usage: PYTHONPATH=. .venv/bin/python bench/bench_sentiment.py [--epochs 2 --limit N]"""

import argparse, logging, time
from functools import partial
import pandas as pd
from memebot.core import shared_dir
from memebot.models.sentiment import EmbeddingSentiment, FineTunedSentiment, VaderSentiment, evaluate_sentiment


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--limit", type=int, default=None, help="rows per dataset (stratified), for a quick run")
    a = ap.parse_args()
    logging.disable(logging.INFO)
    t0 = time.perf_counter()
    ft = partial(FineTunedSentiment, epochs=a.epochs)
    ft.name = FineTunedSentiment.name
    df = evaluate_sentiment(shared_dir() / "data/sentiment", models=(VaderSentiment, EmbeddingSentiment, ft),
                            limit=a.limit)  # fmt: skip
    print(f"{time.perf_counter() - t0:,.0f} s in all\n")
    with pd.option_context("display.width", 140):
        print(df.round(3).to_string(index=False))


if __name__ == "__main__":
    main()
