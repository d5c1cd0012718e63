"""Small helpers shared by tests: reading WAV fixtures and scoring transcripts."""

from __future__ import annotations

import os
import re
import wave
from pathlib import Path

#: ../shared/audio/dev beside the repository (16 kHz mono PCM16 test speech), or
#: wherever VOICEAPP_SHARED_DIR points for a checkout that lives elsewhere.
DEV_AUDIO = (
    Path(os.environ.get("VOICEAPP_SHARED_DIR") or Path(__file__).resolve().parents[2] / "shared")
    / "audio"
    / "dev"
)


def read_wav_pcm16(path: Path) -> tuple[bytes, int]:
    """(PCM16 mono frames, sample rate) of a WAV file."""
    with wave.open(str(path), "rb") as wav:
        assert wav.getsampwidth() == 2 and wav.getnchannels() == 1, path
        return wav.readframes(wav.getnframes()), wav.getframerate()


def read_pcm(name: str) -> bytes:
    """PCM16 16 kHz mono samples of one file in ../shared/audio/dev."""
    pcm, rate = read_wav_pcm16(DEV_AUDIO / name)
    assert rate == 16000, name
    return pcm


def reference_transcripts(directory: Path = DEV_AUDIO) -> dict[str, str]:
    """``transcripts.tsv``: utterance id → reference text."""
    lines = (directory / "transcripts.tsv").read_text().splitlines()
    return dict(line.split("\t", 1) for line in lines if "\t" in line)


def normalize_words(text: str) -> list[str]:
    """Lower case, punctuation dropped (apostrophes kept inside words), split on spaces."""
    text = re.sub(r"[^\w\s']", " ", text.lower())
    return [word.strip("'") for word in text.split() if word.strip("'")]


def word_error_rate(reference: str, hypothesis: str) -> float:
    """Word-level Levenshtein distance divided by the number of reference words."""
    ref, hyp = normalize_words(reference), normalize_words(hypothesis)
    if not ref:
        return 0.0 if not hyp else 1.0
    previous = list(range(len(hyp) + 1))
    for i, ref_word in enumerate(ref, start=1):
        current = [i]
        for j, hyp_word in enumerate(hyp, start=1):
            current.append(
                min(
                    previous[j] + 1,  # deletion
                    current[j - 1] + 1,  # insertion
                    previous[j - 1] + (ref_word != hyp_word),  # substitution
                )
            )
        previous = current
    return previous[-1] / len(ref)
