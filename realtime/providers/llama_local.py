"""Local chat model through llama.cpp (llama-cpp-python), SmolLM2 from a pinned wheel.

Tokens are produced by a blocking generator in a worker thread; the pipeline reads them
as an async iterator. Closing that iterator (cancel, barge-in) sets a stop flag that the
generator checks after every token, so the CPU is free for the next turn at once.
One ``Llama`` context is not safe to share between threads, so generations on one
instance take turns under a lock; llama.cpp reuses the cached prompt prefix (system
prompt, history) between them.
"""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

from django.conf import settings

from realtime.errors import LanguageModelError
from realtime.providers import assets
from realtime.providers.base import LanguageModel, iterate_in_thread

#: End-of-turn markers of ChatML-style templates (SmolLM2, Qwen, ...), in case the
#: template's own end token is missing from a GGUF's metadata.
READ_AHEAD_TOKENS = 4
STOP_SEQUENCES = ["<|im_end|>", "<|im_start|>", "<|endoftext|>", "<|eot_id|>"]


class LlamaLLM(LanguageModel):
    name = "llama.cpp"

    def __init__(self, model_path: str | None = None) -> None:
        voice = settings.VOICE
        self._configured_path = model_path
        self.threads: int = voice.get("LLM_THREADS", 1)
        self.batch_threads: int = voice.get("LLM_BATCH_THREADS", 2)
        self.context: int = voice.get("LLM_CONTEXT", 2048)
        self.max_tokens: int = voice.get("LLM_MAX_TOKENS", 120)
        self.temperature: float = voice.get("LLM_TEMPERATURE", 0.3)
        self.model_path: Path | None = None
        self._llm: Any = None
        self._load_lock = threading.Lock()
        self._run_lock = threading.Lock()

    def load(self) -> None:
        if self._llm is not None:
            return
        with self._load_lock:
            if self._llm is not None:
                return
            from llama_cpp import Llama  # heavy: import when loading only

            try:
                if self._configured_path:
                    self.model_path = Path(self._configured_path)
                    if not self.model_path.is_file():
                        raise assets.ModelAssetError(f"GGUF file {self.model_path} not found")
                else:
                    self.model_path = assets.llm_model_path()
                self._llm = Llama(
                    model_path=str(self.model_path),
                    n_ctx=self.context,
                    n_threads=self.threads,
                    n_threads_batch=self.batch_threads,
                    verbose=False,
                )
            except Exception as err:
                raise LanguageModelError(f"Could not load the local LLM: {err}") from err

    def describe(self) -> dict[str, Any]:
        model = self.model_path.name if self.model_path else self._configured_path or ""
        return {"name": self.name, "model": model}

    def stream_reply(
        self, messages: list[dict[str, str]], *, max_tokens: int | None = None
    ) -> AsyncIterator[str]:
        limit = max_tokens or self.max_tokens
        # A few tokens of read-ahead only: when the pipeline pauses for the first
        # clause's speech, generation pauses too and piper gets the CPU.
        return iterate_in_thread(
            lambda stop: self._generate(messages, limit, stop), max_ahead=READ_AHEAD_TOKENS
        )

    def _generate(
        self, messages: list[dict[str, str]], max_tokens: int, stop: threading.Event
    ) -> Iterator[str]:
        """Blocking token generator; returns between tokens once ``stop`` is set."""
        self.load()
        with self._run_lock:
            if stop.is_set():
                return
            try:
                chunks = self._llm.create_chat_completion(
                    messages=messages,
                    stream=True,
                    max_tokens=max_tokens,
                    temperature=self.temperature,
                    # Mild, as llama.cpp's own default: a 135M model otherwise loops.
                    repeat_penalty=1.1,
                    stop=STOP_SEQUENCES,
                )
            except Exception as err:
                raise LanguageModelError(f"Local LLM could not start: {err}") from err
            try:
                while not stop.is_set():
                    try:
                        chunk = next(chunks)
                    except StopIteration:
                        return
                    except Exception as err:
                        raise LanguageModelError(f"Local LLM failed: {err}") from err
                    text = chunk["choices"][0]["delta"].get("content")
                    if text:
                        yield text
            finally:
                chunks.close()  # ends llama.cpp's own generator loop too
