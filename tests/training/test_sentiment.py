"""Trainer fine-tuning of Coupled Mamba on MMSA-layout pickles, end to end, and the train-sentiment command."""

import json

import numpy as np
import pytest
import torch
from fixtures_mmsa import write_mmsa_pickle
from huggingface_hub import ModelCard
from safetensors.torch import load_file
from transformers import AutoFeatureExtractor, AutoModelForSequenceClassification

import mamba_multimodal  # noqa: F401  (registers the Auto classes)
from mamba_multimodal.training import load_mmsa, sentiment_metrics, train_sentiment
from mamba_multimodal.training.cli import main
from mamba_multimodal.training.sentiment import feature_sizes, prepare_sentiment_splits

TINY = {"hidden_size": 8, "state_size": 4, "num_hidden_layers": 1, "head_hidden_size": 8}
SIZES = {"train": 12, "valid": 4, "test": 6}
FAST = {"num_train_epochs": 2, "per_device_train_batch_size": 4, "per_device_eval_batch_size": 4, "use_cpu": True}
ONE_STEP = {**FAST, "max_steps": 1, "eval_strategy": "no", "save_strategy": "no", "load_best_model_at_end": False}


def mosei(tmp_path, aligned=True):
    path = tmp_path / ("aligned_50.pkl" if aligned else "unaligned_50.pkl")
    write_mmsa_pickle(path, "mosei", aligned=aligned, sizes=SIZES)
    return load_mmsa(path, aligned=aligned)


def predict(output, split) -> tuple[torch.Tensor, torch.Tensor]:
    """Scores of the model saved in `output` on every clip of `split`, run through its saved processor; and labels."""
    model = AutoModelForSequenceClassification.from_pretrained(output).eval()
    processor = AutoFeatureExtractor.from_pretrained(output)
    split = split.with_format("numpy")
    batch = processor([split[i] for i in range(len(split))])
    with torch.no_grad():
        predictions = model(**{k: v for k, v in batch.items() if k != "labels"}).logits[:, 0]
    return predictions, batch["labels"]


def evaluated_maes(output) -> list[float]:
    """Validation MAE of every evaluated checkpoint, in training order, from the last checkpoint's trainer state."""
    last = max(output.glob("checkpoint-*"), key=lambda path: int(path.name.removeprefix("checkpoint-")))
    history = json.loads((last / "trainer_state.json").read_text())["log_history"]
    return [entry["eval_MAE"] for entry in history if "eval_MAE" in entry]


def test_regression_keeps_the_checkpoint_with_the_best_validation_mae_and_reloads_with_its_metrics(tmp_path):
    splits = mosei(tmp_path)
    output = tmp_path / "run"
    # The learning rate rises to 0.5 over the 4 epochs (3 steps each): the model diverges, the last is not the best.
    rising = {"lr_scheduler_type": "constant_with_warmup", "warmup_steps": 12, "learning_rate": 0.5}
    arguments = {**FAST, **rising, "num_train_epochs": 4}
    metrics = train_sentiment(splits, output, dataset="mosei", config_overrides=TINY, training_arguments=arguments)
    for key in ("Has0_acc_2", "Has0_F1_score", "Non0_acc_2", "Non0_F1_score", "Mult_acc_5", "Mult_acc_7", "MAE"):
        assert np.isfinite(metrics[f"test_{key}"]), key
    assert json.loads((output / "test_results.json").read_text()) == pytest.approx(metrics)
    assert not [p for p in output.iterdir() if p.name.startswith(".staging")]  # nothing half-moved left behind
    # The saved model is the evaluated checkpoint with the lowest validation MAE.
    maes = evaluated_maes(output)
    assert len(maes) == 4 and min(maes) < maes[-1] - 0.01, f"the last checkpoint must not be the best here: {maes}"
    predictions, labels = predict(output, splits["validation"])
    assert sentiment_metrics(predictions, labels, dataset="mosei")["MAE"] == pytest.approx(min(maes), abs=1e-5)
    # The saved model and processor reproduce the test metrics from scratch.
    recomputed = sentiment_metrics(*predict(output, splits["test"]), dataset="mosei")
    assert recomputed["MAE"] == pytest.approx(metrics["test_MAE"], abs=1e-5)
    assert recomputed["Non0_acc_2"] == pytest.approx(metrics["test_Non0_acc_2"])
    # The model card records the test metrics in its model-index (hub.py), named after the output folder.
    card = ModelCard.load(output / "README.md")
    assert {r.metric_name: r.metric_value for r in card.data.eval_results}["MAE"] == metrics["test_MAE"]
    assert card.data.model_name == "run" and "CMU-MOSEI (test split)" in card.content


@pytest.mark.parametrize("learning_rate", [0.0, 5e-4], ids=["initial-weights", "trained-weights"])
def test_the_seed_alone_decides_the_weights_whatever_the_global_random_state(tmp_path, learning_rate):
    splits = mosei(tmp_path)

    def saved_weights(seed: int, global_seed: int) -> dict[str, torch.Tensor]:
        torch.manual_seed(global_seed)  # whatever the caller's random state was
        output = tmp_path / f"run-{seed}-{global_seed}"
        arguments = {**ONE_STEP, "seed": seed, "learning_rate": learning_rate}  # learning rate 0: the initial weights
        train_sentiment(splits, output, config_overrides=TINY, training_arguments=arguments)
        return load_file(output / "model.safetensors")

    first, again, other = saved_weights(7, global_seed=0), saved_weights(7, global_seed=1), saved_weights(8, 0)
    assert first.keys() == again.keys() == other.keys()
    assert all(torch.equal(first[name], again[name]) for name in first)
    assert not all(torch.equal(first[name], other[name]) for name in first)


def test_unaligned_classification_resamples_and_reports_the_classification_metrics(tmp_path):
    splits = mosei(tmp_path, aligned=False)
    metrics = train_sentiment(
        splits, tmp_path / "run", dataset="mosei", mode="classification", sequence_length=6,
        config_overrides=TINY, training_arguments={**FAST, "num_train_epochs": 1},
    )  # fmt: skip
    assert {"test_Acc_3", "test_F1_score_3", "test_Has0_acc_2", "test_Non0_acc_2"} <= set(metrics)
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert len(config["id2label"]) == 3 and config["problem_type"] == "single_label_classification"
    assert json.loads((tmp_path / "run" / "preprocessor_config.json").read_text())["sequence_length"] == 6


def test_prepared_splits_hold_only_model_inputs_and_labels(tmp_path):
    splits = mosei(tmp_path)
    assert feature_sizes(splits["train"]) == {"text": 768, "audio": 74, "vision": 35}
    prepared = prepare_sentiment_splits(splits, "classification")
    assert set(prepared["train"].column_names) == {"text_features", "audio_features", "vision_features", "labels"}
    assert prepared["train"][0]["text_features"].shape == (50, 768)
    assert prepared["train"][0]["labels"] in (0, 1, 2)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda s, d: train_sentiment(s, d, mode="ranking"), "mode must be one of"),
        (lambda s, d: train_sentiment(s, d, dataset="iemocap"), "dataset must be one of"),
        (lambda s, d: train_sentiment(s.remove_columns("audio_features"), d), "no 'audio_features' column"),
        (lambda s, d: train_sentiment({"train": s["train"]}, d), r"missing \['validation', 'test'\]"),
    ],
)
def test_bad_arguments_are_named(tmp_path, call, message):
    with pytest.raises(ValueError, match=message):
        call(mosei(tmp_path), tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_the_command_line_trains_and_writes_the_model(tmp_path, capsys):
    data = tmp_path / "MOSEI" / "Processed"
    data.mkdir(parents=True)
    write_mmsa_pickle(data / "aligned_50.pkl", "mosei", sizes=SIZES)
    code = main(
        ["train-sentiment", str(tmp_path / "MOSEI"), str(tmp_path / "run"), "--max-steps", "2", "--batch-size", "4",
         "--coupling", "sum"]
    )  # fmt: skip
    assert code == 0
    printed = capsys.readouterr().out
    assert "| test_Non0_acc_2 " in printed and "| test_MAE " in printed and "recipe: paper: " in printed
    assert json.loads((tmp_path / "run" / "config.json").read_text())["coupling"] == "sum"
