"""One answer to "is this a Hub id?": `sharing.hub_id.is_hub_id` (on huggingface_hub's `validate_repo_id`) and the
standard-library launcher's check agree, on the cases where the package's checks used to disagree."""

import pytest

import mamba_multimodal_cli
from mamba_multimodal.sharing.hub_id import as_hub_id

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


def test_an_existing_local_folder_is_no_hub_id(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "me" / "model").mkdir(parents=True)
    assert not mamba_multimodal_cli._may_be_hub_id("me/model")
    assert as_hub_id("me/model") is None and as_hub_id("me/other") == "me/other" and as_hub_id(None) is None
