"""Models: the SSM core (`ssm.py`), the Mamba LM (`mamba.py`) and one file per model family."""
