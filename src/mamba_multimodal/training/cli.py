"""The `mamba-multimodal` command line.

    mamba-multimodal export-onnx MODEL OUTPUT [--image-size 224] [--opset 18] [--static-batch]

MODEL is a Hub id or a local folder (NVIDIA's `nvidia/MambaVision-*` repos load as this package's classes).
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
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
