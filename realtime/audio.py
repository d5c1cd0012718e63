"""The audio edge: every byte of audio is converted here, once on the way in, once out.

Inside the server audio is always PCM16 little-endian mono at ``INPUT_RATE`` (16 kHz, what
the VAD and Whisper want). Whatever the client sends (PCM16 at another rate, a WebM/Opus
MediaRecorder stream, an uploaded WAV/MP3/Ogg/FLAC file) is turned into that format at the
edge, and reply audio is encoded into the client's ``output_format`` on the way out.

Pure module: numpy and PyAV only, no Django. PyAV (FFmpeg) decodes, encodes and resamples;
numpy converts between PCM16 bytes and float samples.
"""

from __future__ import annotations

import io
import struct
from abc import ABC, abstractmethod
from typing import Any, cast

import av
import numpy as np
from av.audio.stream import AudioStream

from voiceapp.errors import BadAudio, TooLarge

INPUT_RATE = 16000
SAMPLE_WIDTH = 2
CHANNELS = 1
#: Bytes in one second of internal audio.
BYTES_PER_SECOND = INPUT_RATE * SAMPLE_WIDTH * CHANNELS

#: Errors PyAV raises on undecodable input (FFmpegError covers InvalidDataError & co).
_AV_ERRORS = (av.FFmpegError, ValueError, EOFError, IndexError)


# --------------------------------------------------------------------------- conversions


def check_pcm16(pcm: bytes | bytearray | memoryview) -> None:
    """Reject PCM16 with a dangling half sample (a client bug, not something to guess at)."""
    if len(pcm) % SAMPLE_WIDTH:
        raise BadAudio(f"PCM16 audio must have an even number of bytes, got {len(pcm)}")


def pcm16_to_float32(pcm: bytes | bytearray | memoryview) -> np.ndarray:
    """PCM16 LE bytes → float32 samples in [-1, 1) (what the VAD and STT models take)."""
    check_pcm16(pcm)
    return np.frombuffer(pcm, dtype="<i2").astype(np.float32) / np.float32(32768.0)


def float32_to_pcm16(samples: np.ndarray) -> bytes:
    """Float samples (clipped to [-1, 1]) → PCM16 LE bytes; exact inverse of the above."""
    scaled = np.rint(np.asarray(samples, dtype=np.float64) * 32768.0)
    return np.clip(scaled, -32768, 32767).astype("<i2").tobytes()


def duration_seconds(pcm: bytes | bytearray | memoryview, rate: int = INPUT_RATE) -> float:
    """Length of mono PCM16 audio in seconds."""
    return len(pcm) / (SAMPLE_WIDTH * rate)


# --------------------------------------------------------------------------- resampling


def _frames_to_pcm16(frames: list[av.AudioFrame]) -> bytes:
    """Packed s16 mono frames (what our resamplers output) → PCM16 bytes."""
    return b"".join(f.to_ndarray().tobytes() for f in frames)


class StreamResampler:
    """Resample a PCM16 mono stream chunk by chunk, as if it were resampled in one piece.

    Wraps FFmpeg's libswresample (``av.AudioResampler``), which keeps its filter state
    between calls: the concatenated output of ``feed`` calls plus ``flush()`` equals
    resampling the whole stream, whatever the chunk sizes, for non-integer ratios such as
    44100 → 16000 too (tested: identical samples). Chosen over a numpy polyphase filter we
    measured side by side: same ≈88 dB SNR on a tone, but ≈14 µs instead of ≈130 µs for a
    20 ms chunk, and the consumer resamples every incoming frame on the event loop.
    Latency is ≈1 ms (16 output samples held back until the next chunk or ``flush``).
    """

    def __init__(self, from_rate: int, to_rate: int) -> None:
        if from_rate <= 0 or to_rate <= 0:
            raise ValueError("sample rates must be positive")
        self.from_rate = from_rate
        self.to_rate = to_rate
        self.reset()

    def reset(self) -> None:
        """Forget the stream; the next ``feed`` starts a new one."""
        self._resampler = av.AudioResampler(format="s16", layout="mono", rate=self.to_rate)

    def feed(self, pcm: bytes | bytearray | memoryview) -> bytes:
        """Resample one chunk; returns the output ready so far (the filter keeps a tail)."""
        check_pcm16(pcm)
        if self.from_rate == self.to_rate or not pcm:
            return bytes(pcm)
        samples = np.frombuffer(pcm, dtype="<i2").reshape(1, -1)
        frame = av.AudioFrame.from_ndarray(samples, format="s16", layout="mono")
        frame.sample_rate = self.from_rate
        return _frames_to_pcm16(self._resampler.resample(frame))

    def flush(self) -> bytes:
        """The tail held in the filter; then the resampler is ready for a new stream."""
        if self.from_rate == self.to_rate:
            return b""
        out = _frames_to_pcm16(self._resampler.resample(None))
        self.reset()
        return out


def resample_pcm16(pcm: bytes, from_rate: int, to_rate: int) -> bytes:
    """Resample a whole mono PCM16 buffer (output length ≈ n * to / from)."""
    resampler = StreamResampler(from_rate, to_rate)
    return resampler.feed(pcm) + resampler.flush()


# --------------------------------------------------------------------------- WAV


def wav_header(rate: int, data_size: int | None = None) -> bytes:
    """A 44-byte PCM16 mono WAV header; ``None`` size writes 0xFFFFFFFF (streamed WAV)."""
    riff = 0xFFFFFFFF if data_size is None else 36 + data_size
    data = 0xFFFFFFFF if data_size is None else data_size
    byte_rate = rate * SAMPLE_WIDTH * CHANNELS
    return struct.pack(
        "<4sI4s4sIHHIIHH4sI",
        b"RIFF", riff, b"WAVE", b"fmt ", 16, 1, CHANNELS, rate, byte_rate,
        SAMPLE_WIDTH * CHANNELS, 8 * SAMPLE_WIDTH, b"data", data,
    )  # fmt: skip


def wav_bytes(pcm: bytes, rate: int = INPUT_RATE) -> bytes:
    """A complete WAV file holding mono PCM16 ``pcm``."""
    check_pcm16(pcm)
    return wav_header(rate, len(pcm)) + pcm


def is_wav(data: bytes) -> bool:
    return len(data) >= 12 and data[:4] in (b"RIFF", b"RF64") and data[8:12] == b"WAVE"


_WAVE_PCM, _WAVE_FLOAT, _WAVE_EXTENSIBLE = 1, 3, 0xFFFE


def _parse_fmt(body: bytes) -> tuple[int, int, int, int]:
    """(encoding tag, channels, rate, bits) of a ``fmt `` chunk, validated."""
    if len(body) < 16:
        raise BadAudio("WAV fmt chunk is too short")
    tag, channels, rate, _, _, bits = struct.unpack_from("<HHIIHH", body)
    if tag == _WAVE_EXTENSIBLE and len(body) >= 26:
        tag = struct.unpack_from("<H", body, 24)[0]  # first two bytes of the sub-format GUID
    if tag not in (_WAVE_PCM, _WAVE_FLOAT):
        raise BadAudio(f"unsupported WAV encoding (format tag {tag:#x}); send PCM or float")
    valid_bits = (8, 16, 24, 32) if tag == _WAVE_PCM else (32, 64)
    if bits not in valid_bits:
        raise BadAudio(f"unsupported WAV sample size: {bits} bits")
    if not 1 <= channels <= 32 or not 1000 <= rate <= 768000:
        raise BadAudio(f"implausible WAV format: {channels} channels at {rate} Hz")
    return tag, channels, rate, bits


def _wav_samples_to_float(raw: bytes, tag: int, bits: int) -> np.ndarray:
    if tag == _WAVE_FLOAT:
        return np.frombuffer(raw, dtype="<f4" if bits == 32 else "<f8").astype(np.float32)
    if bits == 8:
        return (np.frombuffer(raw, dtype=np.uint8).astype(np.float32) - 128.0) / 128.0
    if bits == 16:
        return np.frombuffer(raw, dtype="<i2").astype(np.float32) / 32768.0
    if bits == 24:
        b = np.frombuffer(raw, dtype=np.uint8).reshape(-1, 3).astype(np.int32)
        value = b[:, 0] | (b[:, 1] << 8) | (b[:, 2] << 16)
        value = np.where(value & 0x800000, value - 0x1000000, value)
        return value.astype(np.float32) / 8388608.0
    return (np.frombuffer(raw, dtype="<i4").astype(np.float64) / 2147483648.0).astype(np.float32)


def read_wav(data: bytes) -> tuple[bytes, int]:
    """Parse a WAV file into (mono PCM16 bytes, sample rate); raises ``BadAudio``.

    Accepts 8/16/24/32-bit integer and 32/64-bit float WAVs (plain or WAVE_FORMAT_EXTENSIBLE)
    with any channel count, mixed down to mono by averaging. A data size of 0 or 0xFFFFFFFF
    (streamed WAV, RF64) means "up to the end of the file"; a larger size than the file
    holds means the file is truncated.
    """
    if not is_wav(data):
        raise BadAudio("not a WAV file: no RIFF/WAVE header")
    pos, fmt = 12, None
    while pos + 8 <= len(data):
        chunk_id, size = data[pos : pos + 4], int.from_bytes(data[pos + 4 : pos + 8], "little")
        body = pos + 8
        if chunk_id == b"fmt ":
            if body + size > len(data):
                raise BadAudio("WAV file is truncated inside its fmt chunk")
            fmt = _parse_fmt(data[body : body + size])
        elif chunk_id == b"data":
            if fmt is None:
                raise BadAudio("WAV data chunk comes before its fmt chunk")
            streamed = size in (0, 0xFFFFFFFF) or data[:4] == b"RF64"
            if not streamed and body + size > len(data):
                raise BadAudio(
                    f"WAV file is truncated: data chunk says {size} bytes, "
                    f"{len(data) - body} present"
                )
            end = len(data) if streamed else body + size
            return _wav_to_pcm16_mono(data[body:end], *fmt)
        pos = body + size + (size & 1)
    raise BadAudio("WAV file has no data chunk" if fmt else "WAV file has no fmt chunk")


def _wav_to_pcm16_mono(
    raw: bytes, tag: int, channels: int, rate: int, bits: int
) -> tuple[bytes, int]:
    frame = channels * bits // 8
    raw = raw[: len(raw) - len(raw) % frame]
    if tag == _WAVE_PCM and bits == 16 and channels == 1:
        return raw, rate
    samples = _wav_samples_to_float(raw, tag, bits)
    if channels > 1:
        samples = samples.reshape(-1, channels).mean(axis=1)
    return float32_to_pcm16(np.nan_to_num(samples)), rate


# --------------------------------------------------------------------------- decoding files


def decode_audio_file(data: bytes, *, max_seconds: float = 600.0) -> bytes:
    """Decode a whole uploaded file (WAV, WebM/Opus, Ogg, MP3, FLAC, …) to PCM16 16 kHz mono.

    The container is sniffed from the content, never from a file name or content type.
    WAVs are parsed directly (exact, no FFmpeg); anything else, and WAV encodings we do not
    parse ourselves (ADPCM, μ-law), goes through PyAV from memory. Raises ``BadAudio`` for
    empty, garbage or undecodable input and for files with no audio in them, and
    ``TooLarge`` past ``max_seconds`` of audio: a few kB of FLAC silence can expand to
    gigabytes of PCM, so the limit is checked while decoding, not after.
    """
    limit = int(max_seconds * BYTES_PER_SECOND)
    if not data:
        raise BadAudio("the audio file is empty")
    wav_error: BadAudio | None = None
    if is_wav(data):
        try:
            pcm, rate = read_wav(data)
        except BadAudio as err:
            wav_error = err
        else:
            if len(pcm) / (SAMPLE_WIDTH * rate) > max_seconds:
                raise TooLarge(f"the audio is longer than {max_seconds:g} seconds")
            pcm = resample_pcm16(pcm, rate, INPUT_RATE)
            if not pcm:
                raise BadAudio("the WAV file holds no audio")
            return pcm
    try:
        pcm = _decode_with_av(data, limit=limit)
    except BadAudio:
        if wav_error is not None:
            raise wav_error from None
        raise
    if not pcm:
        raise BadAudio("no audio could be decoded from the file")
    return pcm


def _decode_with_av(data: bytes, *, limit: int | None = None) -> bytes:
    try:
        with av.open(io.BytesIO(data), mode="r") as container:
            if not container.streams.audio:
                raise BadAudio("the file has no audio stream")
            stream = container.streams.audio[0]
            resampler = av.AudioResampler(format="s16", layout="mono", rate=INPUT_RATE)
            out = bytearray()
            for frame in container.decode(stream):
                out += _frames_to_pcm16(resampler.resample(frame))
                if limit is not None and len(out) > limit:
                    seconds = limit / BYTES_PER_SECOND
                    raise TooLarge(f"the audio is longer than {seconds:g} seconds")
            out += _frames_to_pcm16(resampler.resample(None))
            return bytes(out)
    except _AV_ERRORS as err:
        raise BadAudio(f"cannot decode the audio file: {err}") from err


# --------------------------------------------------------------------------- WebM stream

# Matroska/WebM element ids this decoder needs (https://www.matroska.org/technical/elements.html)
_EBML, _SEGMENT, _CLUSTER, _BLOCK_GROUP = 0x1A45DFA3, 0x18538067, 0x1F43B675, 0xA0
_TRACKS, _TRACK_ENTRY, _TRACK_NUMBER, _TRACK_TYPE = 0x1654AE6B, 0xAE, 0xD7, 0x83
_CODEC_ID, _CODEC_PRIVATE, _AUDIO, _CHANNELS = 0x86, 0x63A2, 0xE1, 0x9F
_SIMPLE_BLOCK, _BLOCK = 0xA3, 0xA1
#: Master elements the parser steps into rather than over (their size may be "unknown",
#: as MediaRecorder writes them while the stream is live).
_DESCEND = frozenset({_SEGMENT, _CLUSTER, _BLOCK_GROUP})
_UNKNOWN_SIZE = -1


def _read_vint(buf: bytes | bytearray, pos: int, *, keep_marker: bool) -> tuple[int, int] | None:
    """EBML variable-length integer at ``pos``: (value, length), or None if incomplete."""
    if pos >= len(buf):
        return None
    first = buf[pos]
    if first == 0:
        raise BadAudio("not a valid WebM stream (bad EBML length)")
    length = 9 - first.bit_length()
    if pos + length > len(buf):
        return None
    value = first if keep_marker else first & (0xFF >> length)
    all_ones = value == (0xFF >> length)
    for b in buf[pos + 1 : pos + length]:
        value = (value << 8) | b
        all_ones = all_ones and b == 0xFF
    if not keep_marker and all_ones:
        return _UNKNOWN_SIZE, length
    return value, length


def _iter_elements(buf: bytes) -> list[tuple[int, bytes]]:
    """(id, payload) of the complete child elements in ``buf`` (used for Tracks)."""
    out, pos = [], 0
    while pos < len(buf):
        head = _read_vint(buf, pos, keep_marker=True)
        size = head and _read_vint(buf, pos + head[1], keep_marker=False)
        if not head or not size or size[0] < 0 or pos + head[1] + size[1] + size[0] > len(buf):
            raise BadAudio("WebM track header is malformed")
        start = pos + head[1] + size[1]
        out.append((head[0], buf[start : start + size[0]]))
        pos = start + size[0]
    return out


def _block_frames(payload: bytes) -> tuple[int, list[bytes]]:
    """(track number, frames) of a (Simple)Block, undoing Xiph, EBML or fixed lacing."""
    track = _read_vint(payload, 0, keep_marker=False)
    if track is None or len(payload) < track[1] + 3:
        raise BadAudio("WebM block is malformed")
    pos = track[1] + 3
    lacing = (payload[pos - 1] >> 1) & 3
    if lacing == 0:
        return track[0], [payload[pos:]]
    count = payload[pos] + 1
    pos += 1
    sizes: list[int] = []
    if lacing == 1:  # Xiph: each size is a run of 255s plus a final byte
        for _ in range(count - 1):
            size = 0
            while payload[pos] == 255:
                size, pos = size + 255, pos + 1
            sizes.append(size + payload[pos])
            pos += 1
    elif lacing == 3:  # EBML: first size, then signed differences
        first = _read_vint(payload, pos, keep_marker=False)
        if first is None:
            raise BadAudio("WebM block is malformed")
        sizes.append(first[0])
        pos += first[1]
        for _ in range(count - 2):
            diff = _read_vint(payload, pos, keep_marker=False)
            if diff is None:
                raise BadAudio("WebM block is malformed")
            sizes.append(sizes[-1] + diff[0] - ((1 << (7 * diff[1] - 1)) - 1))
            pos += diff[1]
    else:  # fixed: equal sizes
        sizes = [(len(payload) - pos) // count] * (count - 1)
    frames = []
    for size in sizes:
        frames.append(payload[pos : pos + size])
        pos += size
    frames.append(payload[pos:])
    return track[0], frames


class WebmStreamDecoder:
    """Decode a live MediaRecorder WebM/Opus stream to PCM16 16 kHz mono as it grows.

    Only the first MediaRecorder chunk carries the WebM header, so chunks cannot be decoded
    alone. FFmpeg's matroska demuxer cannot be used on a growing buffer either: once its
    reader hits the end of the bytes so far, end-of-file is sticky and it will not resume.
    So this class walks the few EBML elements it needs itself (header, Tracks, Clusters
    and their Blocks, sizes possibly "unknown" as MediaRecorder writes them) over a buffer
    that keeps only the incomplete tail, and hands each complete Opus packet to PyAV's
    libopus decoder at once. Output therefore lags the input by at most the one Opus
    packet still arriving (20 ms from MediaRecorder) plus 1 ms of resampler delay.
    A non-Opus WebM (a Vorbis track) is kept whole and decoded by FFmpeg at ``close()``.
    """

    def __init__(self) -> None:
        self._buf = bytearray()
        self._skip = 0  # bytes of an uninteresting element still to drop
        self._started = False
        self._track: int | None = None
        self._decoder: Any = None
        self._resampler = av.AudioResampler(format="s16", layout="mono", rate=INPUT_RATE)
        self._whole: bytearray | None = bytearray()  # kept until we know the codec
        self._closed = False

    def feed(self, data: bytes) -> bytes:
        """Add the next bytes of the stream; returns the PCM decoded so far (may be b"")."""
        if self._closed:
            raise RuntimeError("feed() after close()")
        if self._whole is not None:
            self._whole += data
            if self._track is not None:  # a non-Opus track: decode all of it at close()
                return b""
        self._buf += data
        return self._parse()

    def close(self) -> bytes:
        """End of stream: the remaining PCM. Raises ``BadAudio`` if no audio track came."""
        if self._closed:
            return b""
        self._closed = True
        if self._whole is not None and self._track is not None:
            return _decode_with_av(bytes(self._whole))
        if self._decoder is None:
            if not self._started and not self._buf:
                return b""
            raise BadAudio("the WebM stream ended before its audio track header")
        try:
            frames = self._decoder.decode(None)
            out = b"".join(_frames_to_pcm16(self._resampler.resample(f)) for f in frames)
            return out + _frames_to_pcm16(self._resampler.resample(None))
        except _AV_ERRORS as err:
            raise BadAudio(f"cannot decode the WebM audio: {err}") from err

    def _parse(self) -> bytes:
        out = bytearray()
        buf, pos = self._buf, 0
        while True:
            if self._skip:
                step = min(self._skip, len(buf) - pos)
                self._skip -= step
                pos += step
                if self._skip:
                    break
            head = _read_vint(buf, pos, keep_marker=True)
            size = head and _read_vint(buf, pos + head[1], keep_marker=False)
            if not head or not size:
                break
            element, length = head[0], size[0]
            body = pos + head[1] + size[1]
            if not self._started:
                if element != _EBML:
                    raise BadAudio("not a WebM stream: it does not start with an EBML header")
                self._started = True
            if element in _DESCEND:
                pos = body
                continue
            if length == _UNKNOWN_SIZE:
                raise BadAudio("malformed WebM stream: unknown size on a leaf element")
            if element in (_TRACKS, _SIMPLE_BLOCK, _BLOCK):
                if body + length > len(buf):
                    break
                payload = bytes(buf[body : body + length])
                if element == _TRACKS:
                    self._open_track(payload)
                else:
                    out += self._decode_block(payload)
                pos = body + length
            else:
                self._skip = length
                pos = body
        del buf[:pos]
        return bytes(out)

    def _open_track(self, tracks: bytes) -> None:
        for element, entry in _iter_elements(tracks):
            if element != _TRACK_ENTRY:
                continue
            fields = dict(_iter_elements(entry))
            if int.from_bytes(fields.get(_TRACK_TYPE, b""), "big") != 2:  # 2 = audio
                continue
            self._track = int.from_bytes(fields.get(_TRACK_NUMBER, b"\x01"), "big")
            if fields.get(_CODEC_ID, b"").rstrip(b"\0") != b"A_OPUS":
                return  # decoded whole at close()
            audio = dict(_iter_elements(fields.get(_AUDIO, b"")))
            channels = int.from_bytes(audio.get(_CHANNELS, b"\x01"), "big") or 1
            try:
                decoder = av.CodecContext.create("libopus", "r")
                decoder.extradata = fields.get(_CODEC_PRIVATE) or None
                decoder.sample_rate = 48000
                decoder.layout = "stereo" if channels == 2 else "mono"
                decoder.open()
            except _AV_ERRORS as err:
                raise BadAudio(f"cannot decode the WebM audio track: {err}") from err
            self._decoder, self._whole = decoder, None
            return
        raise BadAudio("the WebM stream has no audio track")

    def _decode_block(self, payload: bytes) -> bytes:
        if self._decoder is None:
            if self._track is None:
                raise BadAudio("malformed WebM stream: audio arrived before the track header")
            return b""
        track, frames = _block_frames(payload)
        if track != self._track:
            return b""
        out = bytearray()
        try:
            for packet in frames:
                for frame in self._decoder.decode(av.Packet(packet)):
                    out += _frames_to_pcm16(self._resampler.resample(frame))
        except _AV_ERRORS as err:
            raise BadAudio(f"cannot decode the WebM audio: {err}") from err
        return bytes(out)


# --------------------------------------------------------------------------- output


class OutputEncoder(ABC):
    """Encode the reply's PCM16 mono stream into the client's ``output_format``.

    ``encode(chunk)`` returns the bytes ready now (possibly b""), ``flush()`` the rest;
    their concatenation is one valid stream. ``sample_rate`` is what the client gets.
    """

    format: str = ""
    content_type: str = ""
    sample_rate: int = 0

    @abstractmethod
    def encode(self, pcm: bytes) -> bytes: ...

    @abstractmethod
    def flush(self) -> bytes: ...


class Pcm16Encoder(OutputEncoder):
    """Raw PCM16 LE mono at the TTS rate: no work, lowest latency."""

    format, content_type = "pcm16", "audio/pcm"

    def __init__(self, sample_rate: int) -> None:
        self.sample_rate = sample_rate

    def encode(self, pcm: bytes) -> bytes:
        check_pcm16(pcm)
        return bytes(pcm)

    def flush(self) -> bytes:
        return b""


class WavStreamEncoder(OutputEncoder):
    """A WAV header with 0xFFFFFFFF sizes (length unknown while streaming), then raw PCM."""

    format, content_type = "wav", "audio/wav"

    def __init__(self, sample_rate: int) -> None:
        self.sample_rate = sample_rate
        self._header_sent = False

    def encode(self, pcm: bytes) -> bytes:
        check_pcm16(pcm)
        if self._header_sent:
            return bytes(pcm)
        self._header_sent = True
        return wav_header(self.sample_rate) + pcm

    def flush(self) -> bytes:
        return b"" if self._header_sent else self.encode(b"")


class _ByteSink:
    """A write-only file object for PyAV's muxer; not seekable, so muxers stream."""

    def __init__(self) -> None:
        self._parts: list[bytes] = []

    def write(self, data: bytes) -> int:
        self._parts.append(bytes(data))
        return len(data)

    def take(self) -> bytes:
        out = b"".join(self._parts)
        self._parts.clear()
        return out


class AvStreamEncoder(OutputEncoder):
    """MP3 or Ogg/Opus through PyAV, muxed into memory and handed out as it is written.

    Opus always runs at 48 kHz: libopus accepts 24 kHz too, but every Ogg/Opus decoder
    (browsers, FFmpeg) plays back at 48 kHz, so announcing 48000 tells the client the truth.
    Ogg pages are flushed every 20 ms (FFmpeg's default is 1 s) so audio leaves at once.
    MP3 keeps the TTS rate when MPEG allows it (22 050 Hz for piper), else 24 kHz.
    """

    _MP3_RATES = (8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000)

    def __init__(self, fmt: str, sample_rate: int) -> None:
        self.format = fmt
        if fmt == "opus":
            self.content_type, self.sample_rate = "audio/ogg", 48000
            container, codec, bit_rate = "ogg", "libopus", 32000
            options = {"page_duration": "20000"}  # µs per Ogg page
        else:
            self.content_type = "audio/mpeg"
            self.sample_rate = sample_rate if sample_rate in self._MP3_RATES else 24000
            container, codec, bit_rate = "mp3", "libmp3lame", 48000
            options = {}
        self._resampler = StreamResampler(sample_rate, self.sample_rate)
        self._sink = _ByteSink()
        self._container = av.open(self._sink, mode="w", format=container, options=options)
        self._stream = cast(AudioStream, self._container.add_stream(codec, rate=self.sample_rate))
        self._stream.layout = "mono"
        self._stream.bit_rate = bit_rate
        self._closed = False

    def encode(self, pcm: bytes) -> bytes:
        if self._closed:
            raise RuntimeError("encoder already flushed")
        self._write(self._resampler.feed(pcm))
        return self._sink.take()

    def flush(self) -> bytes:
        if self._closed:
            return b""
        self._closed = True
        self._write(self._resampler.flush())
        for packet in self._stream.encode(None):
            self._container.mux(packet)
        self._container.close()
        return self._sink.take()

    def _write(self, pcm: bytes) -> None:
        if not pcm:
            return
        samples = np.frombuffer(pcm, dtype="<i2").reshape(1, -1)
        frame = av.AudioFrame.from_ndarray(samples, format="s16", layout="mono")
        frame.sample_rate = self.sample_rate
        for packet in self._stream.encode(frame):
            self._container.mux(packet)


def make_output_encoder(fmt: str, sample_rate: int) -> OutputEncoder:
    """The encoder for a PROTOCOL.md ``output_format``; ``sample_rate`` is the PCM's rate."""
    if fmt == "pcm16":
        return Pcm16Encoder(sample_rate)
    if fmt == "wav":
        return WavStreamEncoder(sample_rate)
    if fmt in ("mp3", "opus"):
        return AvStreamEncoder(fmt, sample_rate)
    raise ValueError(f"unknown output format {fmt!r}")
