"""MMSA / MulT loaders on fixtures in the official layouts, and the restricted unpickler against hostile files."""

import codecs
import os
import pickle
import re
import subprocess

import datasets
import huggingface_hub
import numpy as np
import pytest
from fixtures_mmsa import MMSA_DIMS, MMSA_FILES, MMSA_LENGTHS, SPLIT_SIZES, write_mmsa_pickle, write_mult_pickle

from mamba_multimodal.training.data import load_mmsa, load_mult, safe_load_pickle

SPLITS = {"train": "train", "valid": "validation", "test": "test"}  # file split -> DatasetDict split


def expected_mmsa_features(dataset: str, aligned: bool) -> datasets.Features:
    (text_dim, audio_dim, vision_dim), text_len = MMSA_DIMS[dataset], MMSA_LENGTHS[(dataset, aligned)][0]
    rows = {name: datasets.List(datasets.List(datasets.Value("float32"), length=dim)) for name, dim in
            (("text_features", text_dim), ("audio_features", audio_dim), ("vision_features", vision_dim))}  # fmt: skip
    features = {"id": datasets.Value("string"), "text": datasets.Value("string"), **rows}
    features["text_bert"] = datasets.List(datasets.List(datasets.Value("int64"), length=text_len), length=3)
    features["label"] = datasets.Value("float32")
    features["label_class"] = datasets.ClassLabel(names=["negative", "neutral", "positive"])
    if dataset.startswith("sims"):
        features.update({f"label_{part}": datasets.Value("float32") for part in "TAV"})
    features["annotation"] = datasets.Value("string")
    return datasets.Features(features)


def write_mmsa(tmp_path, dataset="mosei", aligned=True, **kwargs):
    path = tmp_path / MMSA_FILES[(dataset, aligned)]
    return path, write_mmsa_pickle(path, dataset, aligned, **kwargs)


# ----------------------------------------------------------------------------------------------- MMSA
@pytest.mark.parametrize("dataset", ["mosei", "mosi"])
def test_mmsa_aligned_has_three_splits_the_documented_schema_and_the_file_values(tmp_path, dataset):
    path, data = write_mmsa(tmp_path, dataset, aligned=True)
    loaded = load_mmsa(path)
    assert set(loaded) == {"train", "validation", "test"}
    for file_split, name in SPLITS.items():
        split, source = loaded[name].with_format("numpy"), data[file_split]
        assert split.num_rows == SPLIT_SIZES[file_split]
        assert split.features == expected_mmsa_features(dataset, aligned=True)
        for i in range(split.num_rows):
            row = split[i]
            assert row["id"] == source["id"][i] and row["text"] == source["raw_text"][i]
            for modality in ("text", "audio", "vision"):
                np.testing.assert_array_equal(row[f"{modality}_features"], source[modality][i])
            np.testing.assert_array_equal(row["text_bert"], source["text_bert"][i])
            assert row["label"] == source["regression_labels"][i]
            assert row["label_class"] == int(source["classification_labels"][i])
            assert row["annotation"] == source["annotations"][i]


@pytest.mark.parametrize("dataset", ["mosei", "mosi"])
def test_mmsa_unaligned_cuts_audio_and_vision_to_their_true_lengths(tmp_path, dataset):
    path, data = write_mmsa(tmp_path, dataset, aligned=False)
    train = load_mmsa(path, aligned=False)["train"].with_format("numpy")
    assert train.features == expected_mmsa_features(dataset, aligned=False)
    source = data["train"]
    for i in range(train.num_rows):
        row = train[i]
        audio_length, vision_length = source["audio_lengths"][i], source["vision_lengths"][i]
        assert row["audio_features"].shape == (audio_length, MMSA_DIMS[dataset][1])
        assert row["vision_features"].shape == (vision_length, MMSA_DIMS[dataset][2])
        np.testing.assert_array_equal(row["audio_features"], source["audio"][i, :audio_length])
        np.testing.assert_array_equal(row["vision_features"], source["vision"][i, :vision_length])
        assert row["text_features"].shape == (50, 768)  # no text length in the file: the stored length


def test_mmsa_sims_keeps_the_unimodal_labels_and_is_found_in_a_directory(tmp_path):
    _, data = write_mmsa(tmp_path, "sims", aligned=False)
    test = load_mmsa(tmp_path, aligned=False)["test"]  # the directory holds unaligned_39.pkl
    assert test.features == expected_mmsa_features("sims", aligned=False)
    labels = test.with_format("numpy")
    for part in "TAV":
        np.testing.assert_array_equal(labels[f"label_{part}"], data["test"][f"regression_labels_{part}"])
    assert len(test[0]["text_features"]) == 39


def test_mmsa_directory_in_the_official_layout_finds_processed_pickle(tmp_path):
    processed = tmp_path / "MOSEI" / "Processed"
    processed.mkdir(parents=True)
    write_mmsa_pickle(processed / "aligned_50.pkl", "mosei", aligned=True)
    write_mmsa_pickle(processed / "unaligned_50.pkl", "mosei", aligned=False)
    assert len(load_mmsa(tmp_path / "MOSEI")["train"][0]["audio_features"]) == 50
    assert len(load_mmsa(tmp_path / "MOSEI", aligned=False)["train"][-1]["audio_features"]) == 500


def test_mmsa_minus_inf_audio_becomes_zero_as_in_mmsa(tmp_path):
    path, data = write_mmsa(tmp_path)
    data["train"]["audio"][1, 3, :5] = -np.inf
    with open(path, "wb") as file:
        pickle.dump(data, file)
    audio = load_mmsa(path)["train"].with_format("numpy")[1]["audio_features"]
    assert np.isfinite(audio).all() and (audio[3, :5] == 0).all()


def test_mmsa_feature_columns_come_out_as_float32_tensors(tmp_path):
    path, _ = write_mmsa(tmp_path, "mosei", aligned=False)
    row = load_mmsa(path, aligned=False)["validation"].with_format("torch")[0]
    assert row["text_features"].dtype == row["audio_features"].dtype == row["vision_features"].dtype
    assert str(row["audio_features"].dtype) == "torch.float32" and row["text_bert"].shape == (3, 50)


def test_mmsa_aligned_true_on_an_unaligned_file_says_so(tmp_path):
    path, _ = write_mmsa(tmp_path, "mosei", aligned=False)
    with pytest.raises(ValueError, match=r"aligned=True, but the stored lengths differ .* pass aligned=False"):
        load_mmsa(path, aligned=True)


def test_mmsa_missing_field_names_the_split_and_field(tmp_path):
    path, data = write_mmsa(tmp_path)
    del data["valid"]["vision"]
    with open(path, "wb") as file:
        pickle.dump(data, file)
    with pytest.raises(ValueError, match=re.escape("aligned_50.pkl['valid'] has no 'vision' field")):
        load_mmsa(path)


def test_mmsa_field_with_the_wrong_number_of_samples_is_named(tmp_path):
    path, data = write_mmsa(tmp_path)
    data["test"]["audio"] = data["test"]["audio"][:2]
    with open(path, "wb") as file:
        pickle.dump(data, file)
    expected = "aligned_50.pkl['test']['audio'] has 2 samples, but the split's labels have 3"
    with pytest.raises(ValueError, match=re.escape(expected)):
        load_mmsa(path)


def test_mmsa_directory_without_the_pickle_lists_what_it_looked_for(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"no aligned_50\.pkl in .* pass filename="):
        load_mmsa(tmp_path)


def test_missing_local_path_that_is_not_a_hub_id_is_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError, match="neither an existing file or directory nor a Hub dataset id"):
        load_mmsa(tmp_path / "nowhere" / "aligned_50.pkl")


def test_hub_id_is_fetched_with_hf_hub_download_as_a_dataset_repo(tmp_path, monkeypatch):
    path, _ = write_mmsa(tmp_path, "mosi", aligned=False)
    calls = []

    def fake_download(repo_id, filename, **kwargs):
        calls.append((repo_id, filename, kwargs))
        return str(path)

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", fake_download)
    loaded = load_mmsa("someone/mmsa-mosi", aligned=False, filename="mosi_unaligned_50.pkl", revision="v1")
    assert loaded["train"].num_rows == SPLIT_SIZES["train"]
    assert calls == [
        ("someone/mmsa-mosi", "mosi_unaligned_50.pkl", {"repo_type": "dataset", "revision": "v1", "cache_dir": None})
    ]


def test_hub_download_failure_is_a_clear_error(monkeypatch):
    def offline(*args, **kwargs):
        raise ConnectionError("no network")

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", offline)
    expected = "downloading 'aligned_50.pkl' from the Hub dataset 'someone/mosei' failed (ConnectionError: no network)"
    with pytest.raises(OSError, match=re.escape(expected)):
        load_mmsa("someone/mosei")


# ----------------------------------------------------------------------------------------------- MulT
def test_mult_aligned_has_three_splits_and_one_label_per_clip(tmp_path):
    data = write_mult_pickle(tmp_path / "mosei_senti_data.pkl", aligned=True)
    loaded = load_mult(tmp_path)
    assert set(loaded) == {"train", "validation", "test"}
    assert list(loaded["train"].features) == ["id", "text_features", "audio_features", "vision_features", "label"]
    validation, source = loaded["validation"].with_format("numpy"), data["valid"]
    np.testing.assert_array_equal(validation["label"], source["labels"].reshape(-1))
    row = validation[1]
    assert row["id"] == "video1$_$1.0$_$4.5"
    np.testing.assert_allclose(row["text_features"], source["text"][1].astype(np.float32))
    assert row["text_features"].shape == (50, 300) and row["audio_features"].shape == (50, 74)


def test_mult_unaligned_picks_the_noalign_file_and_keeps_stored_lengths(tmp_path):
    write_mult_pickle(tmp_path / "mosei_senti_data.pkl", aligned=True)
    write_mult_pickle(tmp_path / "mosei_senti_data_noalign.pkl", aligned=False)
    row = load_mult(tmp_path, aligned=False)["test"].with_format("numpy")[0]
    assert row["audio_features"].shape == (500, 74) and row["vision_features"].shape == (500, 35)


def test_mult_emotion_labels_are_refused(tmp_path):
    path = tmp_path / "iemocap_data.pkl"
    data = write_mult_pickle(path, aligned=True)
    data["train"]["labels"] = np.zeros((SPLIT_SIZES["train"], 4, 2), dtype=np.float32)
    with open(path, "wb") as file:
        pickle.dump(data, file)
    with pytest.raises(ValueError, match=r"\['labels'\] must hold one value per sample, got shape \(4, 4, 2\)"):
        load_mult(path)


# ----------------------------------------------------------------------------------------------- restricted unpickler
class Hostile:
    """Pickles as a call of `function(*args)`: what a malicious data file does."""

    def __init__(self, function, *args):
        self.function, self.args = function, args

    def __reduce__(self):
        return self.function, self.args


HOSTILE_CALLS = {
    "os.system": lambda marker: Hostile(os.system, f"touch {marker}"),
    "builtins.eval": lambda marker: Hostile(eval, f"open({str(marker)!r}, 'w').close()"),
    "subprocess.call": lambda marker: Hostile(subprocess.call, ["touch", str(marker)]),
}


@pytest.mark.parametrize("call", sorted(HOSTILE_CALLS))
def test_hostile_pickle_is_refused_and_runs_nothing(tmp_path, call):
    marker = tmp_path / "pwned"
    hostile = HOSTILE_CALLS[call](marker)
    with open(tmp_path / "aligned_50.pkl", "wb") as file:
        pickle.dump({"train": {"audio": hostile}}, file)
    refused = f"{hostile.function.__module__}.{hostile.function.__name__}"  # os.system is posix.system on Linux
    with pytest.raises(pickle.UnpicklingError, match=rf"aligned_50\.pkl: refused to load the global {refused}"):
        load_mmsa(tmp_path)
    assert not marker.exists()


def test_hostile_object_inside_a_numpy_object_array_is_refused(tmp_path):
    marker, path = tmp_path / "pwned", tmp_path / "data.pkl"
    with open(path, "wb") as file:
        pickle.dump({"id": np.array(["a", HOSTILE_CALLS["os.system"](marker)], dtype=object)}, file)
    with pytest.raises(pickle.UnpicklingError, match="refused to load the global"):
        safe_load_pickle(path)
    assert not marker.exists()


def test_codecs_encode_is_allowed_for_latin1_bytes_only(tmp_path):
    path = tmp_path / "data.pkl"
    with open(path, "wb") as file:
        pickle.dump({"text": Hostile(codecs.encode, "uryyb", "rot13")}, file)
    with pytest.raises(pickle.UnpicklingError, match="only latin-1 text is allowed"):
        safe_load_pickle(path)


@pytest.mark.parametrize("protocol", [2, 3, 4, 5])
def test_numpy_arrays_and_scalars_load_under_every_protocol(tmp_path, protocol):
    path = tmp_path / "data.pkl"
    data = {"x": np.arange(6, dtype=np.float32).reshape(2, 3), "s": np.float64(2.5), "n": [1, "a", b"b", (None, True)]}
    with open(path, "wb") as file:
        pickle.dump(data, file, protocol=protocol)
    loaded = safe_load_pickle(path)
    np.testing.assert_array_equal(loaded["x"], data["x"])
    assert loaded["x"].dtype == np.float32 and loaded["s"] == 2.5 and loaded["n"] == data["n"]


def test_pickles_written_by_numpy_1_load(tmp_path):
    """numpy 1.x names its reconstructor numpy.core.multiarray._reconstruct (numpy 2: numpy._core...)."""
    path, array = tmp_path / "old.pkl", np.arange(4, dtype=np.int64)
    written = pickle.dumps({"train": array}, protocol=2)
    written = written.replace(b"numpy._core.multiarray\n", b"numpy.core.multiarray\n")
    assert b"cnumpy.core.multiarray\n_reconstruct" in written
    path.write_bytes(written)
    np.testing.assert_array_equal(safe_load_pickle(path)["train"], array)
