"""One answer to "is this a Hub id?": `sharing.hub_id.as_hub_id` (on huggingface_hub's `validate_repo_id`), the
standard-library launcher's check, the CLI's missing-path check and the MMSA loader agree, on the cases where the
package's checks used to disagree."""

import contextlib

import pytest

import mamba_multimodal_cli
from mamba_multimodal.sharing.hub_id import as_hub_id
from mamba_multimodal.training.arguments import UsageError, check_local
from mamba_multimodal.training.data import mmsa

CASES = {
    "nvidia/MambaVision-T-1K": True,
    "me/vlm_mamba.easy-vqa": True,
    "user/name.pkl": True,  # the Hub accepts dots in a name
    "digits": False,  # a name alone: a local folder or a built-in dataset as well
    "-x/y": False,  # may not start with "-"
    "a..b/c": False,
    "a--b/c": False,
    "me/model.git": False,
    "a/b/c": False,
    "./out": False,
    "/abs/out": False,
    "~/out": False,
    "me/": False,
    "me/" + "x" * 97: False,  # 96 characters at most
    "": False,
}


@pytest.mark.parametrize(("name", "expected"), CASES.items(), ids=list(CASES))
def test_the_helper_and_the_launcher_agree(name, expected):
    assert (as_hub_id(name) == name) is expected
    assert mamba_multimodal_cli._may_be_hub_id(name) is expected


@pytest.mark.parametrize(("name", "expected"), CASES.items(), ids=list(CASES))
def test_a_missing_path_is_refused_exactly_when_it_is_no_hub_id(name, expected, tmp_path, monkeypatch):
    """A name alone ("digits") is left to the task's builder and the loaders, which also read built-in names."""
    monkeypatch.chdir(tmp_path)
    try:
        check_local("--model", name)
        refused = False
    except UsageError as error:
        refused = str(error) == f"--model: no such file or folder: {name}"
    assert refused is (not expected and "/" in name)


@pytest.mark.parametrize(("name", "expected"), CASES.items(), ids=list(CASES))
def test_mmsa_downloads_exactly_what_is_a_hub_id(name, expected, tmp_path, monkeypatch):
    """Except a name ending in .pkl: a pickle that is missing, not a repository."""
    monkeypatch.chdir(tmp_path)
    downloads = []
    monkeypatch.setattr(mmsa, "_download", lambda repo_id, *args: downloads.append(repo_id))
    with contextlib.suppress(FileNotFoundError):  # what is neither a file nor a Hub id
        mmsa.resolve_pickle(name, ("aligned_50.pkl",))
    assert downloads == ([name] if expected and not name.endswith(".pkl") else [])


def test_an_existing_local_folder_is_no_hub_id(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "me" / "model").mkdir(parents=True)
    assert not mamba_multimodal_cli._may_be_hub_id("me/model")
    assert as_hub_id("me/model") is None and as_hub_id("me/other") == "me/other" and as_hub_id(None) is None
    check_local("--model", "me/model")  # no mistake: it exists
