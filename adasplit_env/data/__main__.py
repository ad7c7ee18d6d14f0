"""``python -m adasplit_env.data stats NAME|PATH``: dataset statistics."""

from __future__ import annotations

import argparse
import gzip
import io
import sys

from adasplit_env.data.datasets import NAMED_DATASETS, SYNTHETIC, load_dataset
from adasplit_env.data.readers import FORMATS, read_interactions
from adasplit_env.errors import cli_errors
from adasplit_env.io import atomic_write_bytes


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m adasplit_env.data",
        description="Inspect datasets of the AdaSplit data pipeline.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    stats = commands.add_parser(
        "stats",
        help="users, items, interactions and density, raw and after the k-core filter, "
        "and the leave-one-out split sizes",
    )
    stats.add_argument(
        "dataset",
        help=f"{SYNTHETIC}, one of {', '.join(NAMED_DATASETS)} (read from the data dir), "
        "or a path to an interactions file",
    )
    stats.add_argument(
        "--data-dir",
        default=None,
        help="folder holding <name>/interactions.tsv.gz (default: $ADASPLIT_DATA, else ./data)",
    )
    stats.add_argument("--k-core", type=int, default=5, help="k of the k-core filter (default 5)")
    stats.add_argument(
        "--max-len", type=int, default=10, help="history length of training samples (default 10)"
    )
    stats.add_argument(
        "--format", choices=FORMATS, default=None, help="file format (default: from the name)"
    )
    convert = commands.add_parser(
        "convert",
        help="write any supported file as the canonical interactions.tsv.gz (rows in file order)",
    )
    convert.add_argument("source", help="a file in one of the supported formats")
    convert.add_argument("output", help="the .tsv or .tsv.gz to write (written atomically)")
    convert.add_argument(
        "--format", choices=FORMATS, default=None, help="file format (default: from the name)"
    )
    return parser


def convert_file(source: str, output: str, format: str | None = None) -> int:
    """Write ``source`` as ``user_id<TAB>item_id<TAB>timestamp``; returns the row count."""
    interactions = read_interactions(source, format=format)
    text = io.StringIO()
    text.write("user_id\titem_id\ttimestamp\n")
    for user, item, when in zip(
        interactions.users, interactions.items, interactions.timestamps, strict=True
    ):
        stamp = int(when) if float(when).is_integer() else when
        text.write(f"{user}\t{item}\t{stamp}\n")
    data = text.getvalue().encode("utf-8")
    if output.endswith(".gz"):
        data = gzip.compress(data, mtime=0)
    atomic_write_bytes(output, data)
    return len(interactions)


def format_stats_table(dataset, max_len: int) -> str:
    raw, filtered = dataset.raw_stats, dataset.stats
    split = dataset.split
    n_train = len(split.train_samples(max_len))
    n_eval = len(split.evaluated_users())
    lines = [
        f"dataset: {dataset.name} ({dataset.source})",
        f"{'':>12} {'users':>10} {'items':>10} {'interactions':>13} {'density %':>10}",
        f"{'raw':>12} {raw.users:>10,} {raw.items:>10,} {raw.interactions:>13,} "
        f"{raw.density:>10.4f}",
        f"{f'{dataset.k_core}-core':>12} {filtered.users:>10,} {filtered.items:>10,} "
        f"{filtered.interactions:>13,} {filtered.density:>10.4f}",
        f"split (leave-one-out, max_len={max_len}): {n_train:,} training samples, "
        f"{n_eval:,} validation users, {n_eval:,} test users",
    ]
    return "\n".join(lines)


@cli_errors
def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "convert":
        rows = convert_file(args.source, args.output, args.format)
        print(f"wrote {rows:,} interactions to {args.output}")
        return 0
    dataset = load_dataset(args.dataset, args.data_dir, k_core=args.k_core, format=args.format)
    print(format_stats_table(dataset, args.max_len))
    return 0


if __name__ == "__main__":
    sys.exit(main())
