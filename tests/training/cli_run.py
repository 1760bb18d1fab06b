"""`run(argv, capsys)`: the command line as a user runs it, for the tests of tests/training."""

import mamba_multimodal_cli


def run(argv, capsys) -> tuple[int, str, str]:
    """Runs `mamba-multimodal ARGV` in this process. Returns (exit code, stdout, stderr)."""
    try:
        code = mamba_multimodal_cli.main(argv)
    except SystemExit as exit:
        code = exit.code
    captured = capsys.readouterr()
    return code, captured.out, captured.err
