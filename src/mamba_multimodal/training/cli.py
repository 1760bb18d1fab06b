"""The `mamba-multimodal` command line.

    mamba-multimodal export-onnx MODEL OUTPUT [--image-size 224] [--opset 18] [--static-batch]
    mamba-multimodal train-sentiment DATA OUTPUT_DIR [--dataset mosei] [--mode regression] [--unaligned] ...

MODEL is a Hub id or a local folder (NVIDIA's `nvidia/MambaVision-*` repos load as this package's classes). DATA is an
MMSA or MulT feature pickle, a folder holding one, or a Hub dataset id (`training.data.load_mmsa`).
"""

from __future__ import annotations

import argparse
import sys


def _export_onnx(args: argparse.Namespace) -> int:
    from transformers import AutoModelForImageClassification

    import mamba_multimodal  # noqa: F401  (registers the Auto classes)
    from mamba_multimodal.export import export_onnx

    model = AutoModelForImageClassification.from_pretrained(args.model)
    path = export_onnx(
        model, args.output, image_size=args.image_size, opset=args.opset, dynamic_batch=not args.static_batch
    )
    print(f"wrote {path} (checked against PyTorch with onnxruntime)")
    return 0


def _train_sentiment(args: argparse.Namespace) -> int:
    from mamba_multimodal.training import load_mmsa, load_mult, train_sentiment

    if args.format == "mmsa":
        splits = load_mmsa(args.data, aligned=not args.unaligned)
    else:
        prefix = {"mosei": "mosei_senti", "mosi": "mosi"}.get(args.dataset)
        if prefix is None:
            raise SystemExit(f"--format mult holds MOSEI or MOSI only, got --dataset {args.dataset}")
        splits = load_mult(args.data, aligned=not args.unaligned, dataset=prefix)
    sequence_length = args.sequence_length or (50 if args.unaligned else None)
    overrides = {"coupling": args.coupling} if args.coupling else {}
    training = {
        key: value
        for key, value in {
            "num_train_epochs": args.epochs,
            "max_steps": args.max_steps,
            "per_device_train_batch_size": args.batch_size,
            "per_device_eval_batch_size": args.batch_size,
            "learning_rate": args.learning_rate,
            "seed": args.seed,
        }.items()
        if value is not None
    }
    metrics = train_sentiment(
        splits, args.output_dir, dataset=args.dataset, mode=args.mode, sequence_length=sequence_length,
        config_overrides=overrides, training_arguments=training,
    )  # fmt: skip
    for name, value in metrics.items():
        print(f"{name}: {value:.4f}" if isinstance(value, float) else f"{name}: {value}")
    print(f"wrote the best model, its processor and test_results.json to {args.output_dir}")
    return 0


def _add_train_sentiment(commands) -> None:
    from mamba_multimodal.training.metrics import DATASETS, MODES

    train = commands.add_parser(
        "train-sentiment", help="train Coupled Mamba on MMSA / MulT sentiment features, test with MMSA's metrics"
    )
    train.add_argument("data", help="an MMSA or MulT feature pickle, a folder holding one, or a Hub dataset id")
    train.add_argument("output_dir", help="where the best model, its processor and test_results.json go")
    train.add_argument("--format", choices=("mmsa", "mult"), default="mmsa", help="the pickle's layout")
    train.add_argument("--dataset", choices=DATASETS, default="mosei", help="picks the metrics and batch size")
    train.add_argument("--mode", choices=MODES, default="regression", help="score (L1) or 3 classes")
    train.add_argument("--unaligned", action="store_true", help="read the unaligned file, resample every modality")
    train.add_argument("--sequence-length", type=int, help="steps to resample unaligned data to (default 50)")
    train.add_argument("--coupling", choices=("sum", "mean", "none"), help="default: the config's (mean)")
    train.add_argument("--epochs", type=float, help="default 150 (the paper)")
    train.add_argument("--max-steps", type=int, help="stop after this many optimiser steps")
    train.add_argument("--batch-size", type=int, help="default: the paper's for --dataset")
    train.add_argument("--learning-rate", type=float, help="default 5e-4 (the paper)")
    train.add_argument("--seed", type=int, help="default 202 (the released code's)")
    train.set_defaults(run=_train_sentiment)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mamba-multimodal", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    export = commands.add_parser("export-onnx", help="export an image classifier to ONNX, checked with onnxruntime")
    export.add_argument("model", help="Hub id or local folder of an image classification model")
    export.add_argument("output", help="the .onnx file to write")
    export.add_argument("--image-size", type=int, default=None, help="export resolution (default: the config's)")
    export.add_argument("--opset", type=int, default=18)
    export.add_argument("--static-batch", action="store_true", help="fix the batch axis to 1")
    export.set_defaults(run=_export_onnx)
    _add_train_sentiment(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
