"""The audio edge: conversions, resampling, WAV, file decoding, WebM streams, reply encoders."""

from __future__ import annotations

import io
import os
import statistics
import struct
from pathlib import Path
from typing import cast

import av
import numpy as np
import pytest
from av.audio.stream import AudioStream

from realtime.audio import (
    INPUT_RATE,
    StreamResampler,
    WebmStreamDecoder,
    decode_audio_file,
    duration_seconds,
    float32_to_pcm16,
    make_output_encoder,
    pcm16_to_float32,
    read_wav,
    resample_pcm16,
    wav_bytes,
    wav_header,
)
from voiceapp.errors import BadAudio, TooLarge

DEV = Path("/work/shared/audio/dev")


def load(name: str = "q01_piper.wav") -> bytes:
    return read_wav((DEV / name).read_bytes())[0]


def samples(pcm: bytes) -> np.ndarray:
    return np.frombuffer(pcm, dtype="<i2").astype(np.float64)


def sine(freq: float, rate: int, seconds: float, amp: float = 0.5) -> bytes:
    t = np.arange(int(rate * seconds)) / rate
    return float32_to_pcm16(amp * np.sin(2 * np.pi * freq * t))


def dominant_hz(pcm: bytes, rate: int) -> float:
    x = samples(pcm) * np.hanning(len(pcm) // 2)
    spectrum = np.abs(np.fft.rfft(x))
    return float(np.fft.rfftfreq(len(x), 1 / rate)[np.argmax(spectrum)])


def encode_file(pcm: bytes, rate: int, container: str, codec: str, out_rate: int) -> bytes:
    """Encode mono PCM16 into a compressed file with PyAV, the way a client would."""
    buf = io.BytesIO()
    # FFmpeg's own Vorbis encoder is "experimental" and stereo only.
    layout = "stereo" if codec == "vorbis" else "mono"
    options = {"strict": "experimental"} if codec == "vorbis" else {}
    with av.open(buf, "w", format=container) as out:
        stream = cast(AudioStream, out.add_stream(codec, rate=out_rate, options=options))
        stream.layout = layout
        fmt = stream.codec_context.format
        resampler = av.AudioResampler(format=fmt, layout=layout, rate=out_rate)
        channels = samples(pcm).astype("<i2")
        if layout == "stereo":  # the same signal in both channels, not an upmix at -3 dB
            channels = np.repeat(channels, 2)
        frame = av.AudioFrame.from_ndarray(channels[None, :], format="s16", layout=layout)
        frame.sample_rate = rate
        for f in [*resampler.resample(frame), *resampler.resample(None)]:
            out.mux(stream.encode(f))
        out.mux(stream.encode(None))
    return buf.getvalue()


# ------------------------------------------------------------------ conversions


def test_pcm16_float32_round_trip_is_exact() -> None:
    pcm = np.arange(-32768, 32768, 7, dtype="<i2").tobytes()
    floats = pcm16_to_float32(pcm)
    assert floats.dtype == np.float32
    assert floats.min() >= -1.0 and floats.max() < 1.0
    assert float32_to_pcm16(floats) == pcm


def test_float32_to_pcm16_clips() -> None:
    out = np.frombuffer(float32_to_pcm16(np.array([-2.0, -1.0, 0.0, 1.0, 2.0])), dtype="<i2")
    assert out.tolist() == [-32768, -32768, 0, 32767, 32767]


def test_duration_seconds() -> None:
    assert duration_seconds(bytes(32000)) == 1.0
    assert duration_seconds(bytes(44100), 22050) == 1.0


def test_odd_length_pcm_is_bad_audio() -> None:
    with pytest.raises(BadAudio):
        pcm16_to_float32(b"\x00\x01\x02")


# ------------------------------------------------------------------ resampling


@pytest.mark.parametrize(
    ("from_rate", "to_rate"),
    [(44100, 16000), (22050, 16000), (48000, 16000), (8000, 16000), (16000, 48000), (22050, 48000)],
)
def test_resampled_sine_keeps_its_frequency_and_level(from_rate: int, to_rate: int) -> None:
    pcm = sine(440, from_rate, 1.0)
    out = resample_pcm16(pcm, from_rate, to_rate)
    assert len(out) // 2 == pytest.approx(to_rate, abs=2)
    assert dominant_hz(out, to_rate) == pytest.approx(440, abs=1.5)
    # Against the ideal sine at the new rate (edges aside): ≥ 60 dB SNR.
    got = samples(out)[200:-200]
    ideal = samples(sine(440, to_rate, 1.0))[200:-200]
    snr = 10 * np.log10(np.mean(ideal**2) / np.mean((got - ideal) ** 2))
    assert snr > 60


def test_resampler_removes_what_the_new_rate_cannot_hold() -> None:
    out = samples(resample_pcm16(sine(12000, 44100, 1.0), 44100, 16000))[200:-200]
    assert np.sqrt(np.mean(out**2)) < 0.001 * 32768 * 0.5  # a 12 kHz tone must not alias


@pytest.mark.parametrize(("from_rate", "to_rate"), [(44100, 16000), (22050, 16000), (16000, 48000)])
def test_chunked_resampling_equals_whole(from_rate: int, to_rate: int) -> None:
    pcm = load("q02_piper.wav")
    pcm = resample_pcm16(pcm, INPUT_RATE, from_rate) if from_rate != INPUT_RATE else pcm
    whole = resample_pcm16(pcm, from_rate, to_rate)
    rng = np.random.default_rng(1)
    resampler = StreamResampler(from_rate, to_rate)
    parts, i = [], 0
    while i < len(pcm):
        size = 2 * int(rng.integers(1, from_rate // 4))  # 1 sample to 250 ms
        parts.append(resampler.feed(pcm[i : i + size]))
        i += size
    parts.append(resampler.flush())
    chunked = b"".join(parts)
    assert len(chunked) == len(whole)
    assert np.max(np.abs(samples(chunked) - samples(whole))) <= 1


def test_resampler_is_reusable_after_flush_and_passes_equal_rates_through() -> None:
    resampler = StreamResampler(44100, 16000)
    first = resampler.feed(sine(440, 44100, 0.5)) + resampler.flush()
    second = resampler.feed(sine(440, 44100, 0.5)) + resampler.flush()
    assert first == second
    same = StreamResampler(16000, 16000)
    assert same.feed(b"\x01\x02") == b"\x01\x02" and same.flush() == b""


def test_resampler_cost_per_20ms_frame() -> None:
    """Reported by ``-s``: what the consumer pays per 20 ms frame from a 44.1 kHz page."""
    import time

    resampler = StreamResampler(44100, 16000)
    frame = sine(440, 44100, 0.02)
    costs = []
    for _ in range(300):
        t0 = time.perf_counter()
        resampler.feed(frame)
        costs.append(time.perf_counter() - t0)
    median_us = statistics.median(costs) * 1e6
    print(f"\nresampler 44.1 kHz → 16 kHz: median {median_us:.0f} µs per 20 ms frame")
    assert median_us < 1000


# ------------------------------------------------------------------ WAV


def test_wav_round_trip() -> None:
    pcm = load()
    assert read_wav(wav_bytes(pcm, 16000)) == (pcm, 16000)
    assert read_wav(wav_bytes(b"", 8000)) == (b"", 8000)


def make_wav(raw: bytes, *, tag: int, channels: int, rate: int, bits: int) -> bytes:
    block = channels * bits // 8
    fmt = struct.pack("<HHIIHH", tag, channels, rate, rate * block, block, bits)
    if tag == 0xFFFE:  # WAVE_FORMAT_EXTENSIBLE: sub-format GUID starts with the real tag
        fmt += struct.pack("<HHI", 22, bits, 0) + struct.pack("<H", 1) + bytes(14)
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt
    body += b"LIST" + struct.pack("<I", 3) + b"abc\x00"  # odd chunk, padded: must be skipped
    body += b"data" + struct.pack("<I", len(raw)) + raw
    return b"RIFF" + struct.pack("<I", len(body)) + body


@pytest.mark.parametrize(
    ("dtype", "tag", "bits", "scale", "offset"),
    [
        ("u1", 1, 8, 128, 128),
        ("<i2", 1, 16, 32768, 0),
        ("<i4", 1, 32, 2**31, 0),
        ("<f4", 3, 32, 1, 0),
        ("<f8", 3, 64, 1, 0),
        ("<i2", 0xFFFE, 16, 32768, 0),
    ],
)
def test_read_wav_converts_formats_and_mixes_stereo(
    dtype: str, tag: int, bits: int, scale: float, offset: float
) -> None:
    left = np.linspace(-0.5, 0.5, 1000)
    right = np.full(1000, 0.25)
    interleaved = np.stack([left, right], axis=1).ravel()
    raw = (interleaved * scale * 0.999 + offset).astype(dtype).tobytes()
    pcm, rate = read_wav(make_wav(raw, tag=tag, channels=2, rate=44100, bits=bits))
    assert rate == 44100
    expected = (left + right) / 2 * 32768
    assert np.max(np.abs(samples(pcm) - expected)) < (300 if bits == 8 else 40)


def test_read_wav_24_bit() -> None:
    values = np.array([0, 1, -1, 8388607, -8388608, 4194304], dtype=np.int32)
    raw = b"".join(int(v).to_bytes(3, "little", signed=True) for v in values)
    pcm, _ = read_wav(make_wav(raw, tag=1, channels=1, rate=16000, bits=24))
    assert samples(pcm).tolist() == [0, 0, 0, 32767, -32768, 16384]


def test_read_wav_accepts_streamed_header() -> None:
    pcm = load()[:32000]
    assert read_wav(wav_header(16000) + pcm) == (pcm, 16000)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "not a WAV"),
        (b"RIFF\x00\x00\x00\x00WAVEjunk", "no fmt chunk"),
        (wav_bytes(bytes(1000))[:-500], "truncated"),
        (wav_bytes(bytes(100))[:30], "truncated"),
        (make_wav(bytes(100), tag=2, channels=1, rate=8000, bits=4), "unsupported WAV encoding"),
        (make_wav(bytes(100), tag=1, channels=1, rate=8000, bits=12), "sample size"),
        (make_wav(bytes(100), tag=1, channels=0, rate=8000, bits=16), "implausible"),
    ],
)
def test_read_wav_rejects_bad_files_readably(data: bytes, message: str) -> None:
    with pytest.raises(BadAudio, match=message):
        read_wav(data)


# ------------------------------------------------------------------ whole files


@pytest.mark.parametrize(
    ("container", "codec", "rate"),
    [
        ("webm", "libopus", 48000),
        ("ogg", "libopus", 48000),
        ("mp3", "libmp3lame", 22050),
        ("flac", "flac", 44100),
        ("ogg", "vorbis", 44100),
        ("wav", "pcm_mulaw", 8000),
    ],
)
def test_decode_audio_file_sniffs_the_format(container: str, codec: str, rate: int) -> None:
    pcm = load()
    data = encode_file(pcm, INPUT_RATE, container, codec, rate)
    out = decode_audio_file(data)
    # Lossy codecs pad a few ms (MP3 ≈ 50 ms); the audio itself must be there, at 16 kHz.
    assert duration_seconds(out) == pytest.approx(duration_seconds(pcm), abs=0.08)
    level_in, level_out = np.sqrt(np.mean(samples(pcm) ** 2)), np.sqrt(np.mean(samples(out) ** 2))
    assert level_out == pytest.approx(level_in, rel=0.2)


def test_decode_audio_file_limits_decoded_length() -> None:
    flac = encode_file(bytes(32000 * 5), INPUT_RATE, "flac", "flac", 16000)  # 5 s of silence
    assert len(flac) < 10_000
    with pytest.raises(TooLarge):
        decode_audio_file(flac, max_seconds=2)
    with pytest.raises(TooLarge):
        decode_audio_file(wav_bytes(bytes(32000 * 3)), max_seconds=2)
    assert duration_seconds(decode_audio_file(flac, max_seconds=6)) == pytest.approx(5)


def test_decode_audio_file_resamples_stereo_wav() -> None:
    pcm = sine(440, 44100, 1.0)
    stereo = np.repeat(np.frombuffer(pcm, dtype="<i2"), 2).tobytes()
    out = decode_audio_file(make_wav(stereo, tag=1, channels=2, rate=44100, bits=16))
    assert len(out) // 2 == pytest.approx(16000, abs=2)
    assert dominant_hz(out, 16000) == pytest.approx(440, abs=1.5)


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"hello, this is not audio at all " * 50,
        os.urandom(4096),
        b"<html><body>not audio</body></html>",
        wav_bytes(b""),
        b"RIFF\x10\x00\x00\x00WAVEfmt \x10\x00",
        encode_file(load(), INPUT_RATE, "webm", "libopus", 48000)[:200],
    ],
    ids=["empty", "text", "random", "html", "empty-wav", "broken-wav", "webm-header-only"],
)
def test_decode_audio_file_rejects_garbage(data: bytes) -> None:
    with pytest.raises(BadAudio):
        decode_audio_file(data)


# ------------------------------------------------------------------ WebM stream


def _vint(buf: bytes, pos: int) -> tuple[int, int]:
    length = 9 - buf[pos].bit_length()
    return int.from_bytes(buf[pos : pos + length], "big"), length


UNKNOWN_SIZE = bytes.fromhex("01ffffffffffffff")


def as_media_recorder(webm: bytes) -> bytes:
    """Rewrite a WebM file the way MediaRecorder streams it: Segment and Clusters of
    unknown size (it cannot seek back), so only the element ids delimit them."""
    out, pos = bytearray(), 0
    while pos < len(webm):
        element, id_len = _vint(webm, pos)
        size, size_len = _vint(webm, pos + id_len)
        size &= (1 << (7 * size_len)) - 1
        head = webm[pos : pos + id_len]
        if element in (0x18538067, 0x1F43B675):  # Segment, Cluster: step in
            out += head + UNKNOWN_SIZE
            pos += id_len + size_len
        else:
            out += webm[pos : pos + id_len + size_len + size]
            pos += id_len + size_len + size
    return bytes(out)


@pytest.fixture(scope="module")
def recorder_stream() -> tuple[bytes, bytes]:
    """(MediaRecorder-like WebM/Opus of a dev question, the question's PCM)."""
    pcm = load("q07_piper.wav")
    return as_media_recorder(encode_file(pcm, INPUT_RATE, "webm", "libopus", 48000)), pcm


def test_recorder_stream_is_what_ffmpeg_reads(recorder_stream: tuple[bytes, bytes]) -> None:
    stream, pcm = recorder_stream
    assert UNKNOWN_SIZE in stream
    assert duration_seconds(decode_audio_file(stream)) == pytest.approx(
        duration_seconds(pcm), abs=0.03
    )


def feed_slices(stream: bytes, duration_s: float, seed: int) -> list[tuple[int, bytes]]:
    """Feed 100 to 250 ms byte slices; returns (bytes fed so far, pcm out) per feed."""
    decoder = WebmStreamDecoder()
    bytes_per_ms = len(stream) / (duration_s * 1000)
    rng = np.random.default_rng(seed)
    outputs, pos = [], 0
    while pos < len(stream):
        size = max(1, int(rng.integers(100, 251) * bytes_per_ms))
        outputs.append((min(pos + size, len(stream)), decoder.feed(stream[pos : pos + size])))
        pos += size
    outputs.append((len(stream), decoder.close()))
    return outputs


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_webm_stream_decodes_incrementally(recorder_stream: tuple[bytes, bytes], seed: int) -> None:
    stream, pcm = recorder_stream
    outputs = feed_slices(stream, duration_seconds(pcm), seed)
    incremental = b"".join(out for _, out in outputs[:-1])
    # Audio comes out while the stream grows, not at close(): all but the last packet.
    assert sum(1 for _, out in outputs[:-1] if out) >= len(outputs) - 3
    assert duration_seconds(incremental) > duration_seconds(pcm) - 0.05
    decoded = incremental + outputs[-1][1]
    reference = decode_audio_file(stream)
    # Same as FFmpeg's own decode, plus the encoder's end padding (under one 20 ms Opus
    # frame) that FFmpeg trims using the container's DiscardPadding and we do not.
    assert 0 <= len(decoded) - len(reference) <= 2 * 16 * 25
    diff = samples(decoded[: len(reference)]) - samples(reference)
    assert np.sqrt(np.mean(diff**2)) < 10


def test_webm_stream_latency(recorder_stream: tuple[bytes, bytes]) -> None:
    """How far the PCM out lags the audio whose bytes have fully arrived (``-s`` prints it)."""
    stream, pcm = recorder_stream
    with av.open(io.BytesIO(stream), mode="r") as container:
        packets = [
            (p.pos + p.size, float((p.pts + p.duration) * p.time_base))
            for p in container.demux(container.streams.audio[0])
            if p.size and p.pos is not None and p.pts is not None and p.duration is not None
        ]
    lags, out_ms = [], 0.0
    for fed, out in feed_slices(stream, duration_seconds(pcm), seed=3)[:-1]:
        out_ms += duration_seconds(out) * 1000
        arrived_ms = max((end for pos, end in packets if pos <= fed), default=0.0) * 1000
        lags.append(arrived_ms - out_ms)
    print(
        f"\nwebm decoder lag behind arrived audio: median {statistics.median(lags):.1f} ms, "
        f"max {max(lags):.1f} ms"
    )
    assert max(lags) < 40  # Opus pre-skip (6.5 ms) + resampler delay (1 ms) + rounding


def test_webm_stream_in_one_byte_pieces(recorder_stream: tuple[bytes, bytes]) -> None:
    stream, _ = recorder_stream
    decoder = WebmStreamDecoder()
    out = b"".join(decoder.feed(stream[i : i + 1]) for i in range(len(stream) // 4))
    assert out  # the first quarter of the bytes already decodes
    assert decoder.feed(stream[len(stream) // 4 :]) and decoder.close() is not None


def test_webm_stream_non_opus_is_decoded_at_close() -> None:
    pcm = load()
    stream = encode_file(pcm, INPUT_RATE, "webm", "vorbis", 44100)
    decoder = WebmStreamDecoder()
    assert decoder.feed(stream[: len(stream) // 2]) == b""
    assert decoder.feed(stream[len(stream) // 2 :]) == b""
    assert duration_seconds(decoder.close()) == pytest.approx(duration_seconds(pcm), abs=0.08)


@pytest.mark.parametrize(
    "data",
    [
        b"this is not a webm stream at all",
        b"\x00" * 64,
        wav_bytes(bytes(3200)),
        b"\x1a\x45\xdf\xa3\x00",  # an EBML id with an invalid length
    ],
    ids=["text", "zeros", "wav", "bad-length"],
)
def test_webm_stream_rejects_garbage(data: bytes) -> None:
    with pytest.raises(BadAudio):
        WebmStreamDecoder().feed(data)


def test_webm_stream_cut_before_track_header_is_bad_audio(
    recorder_stream: tuple[bytes, bytes],
) -> None:
    decoder = WebmStreamDecoder()
    assert decoder.feed(recorder_stream[0][:40]) == b""
    with pytest.raises(BadAudio):
        decoder.close()
    assert WebmStreamDecoder().close() == b""  # nothing sent: nothing to say


# ------------------------------------------------------------------ reply encoders


@pytest.mark.parametrize(
    ("fmt", "content_type", "rate_out"),
    [
        ("pcm16", "audio/pcm", 22050),
        ("wav", "audio/wav", 22050),
        ("mp3", "audio/mpeg", 22050),
        ("opus", "audio/ogg", 48000),
    ],
)
def test_output_encoders_stream_and_decode_back(fmt: str, content_type: str, rate_out: int) -> None:
    tts = resample_pcm16(load("q10_piper.wav"), INPUT_RATE, 22050)  # piper's rate
    encoder = make_output_encoder(fmt, 22050)
    assert (encoder.format, encoder.content_type, encoder.sample_rate) == (
        fmt,
        content_type,
        rate_out,
    )
    chunk = 2 * 22050 // 10  # TTS hands out ~100 ms chunks
    pieces = [encoder.encode(tts[i : i + chunk]) for i in range(0, len(tts), chunk)]
    pieces.append(encoder.flush())
    # Streamed: bytes leave during encoding, not only at flush().
    assert sum(1 for p in pieces[: len(pieces) // 2] if p) >= len(pieces) // 4
    data = b"".join(pieces)
    if fmt == "pcm16":
        assert data == tts
        return
    if fmt == "wav":
        assert data[4:8] == b"\xff\xff\xff\xff" and data[40:44] == b"\xff\xff\xff\xff"
        assert read_wav(data) == (tts, 22050)
    decoded = decode_audio_file(data)
    assert duration_seconds(decoded) == pytest.approx(duration_seconds(tts, 22050), abs=0.08)


def test_mp3_encoder_resamples_rates_mpeg_cannot_hold() -> None:
    encoder = make_output_encoder("mp3", 16001)
    assert encoder.sample_rate == 24000
    data = encoder.encode(sine(440, 16001, 1.0)) + encoder.flush()
    assert dominant_hz(decode_audio_file(data), 16000) == pytest.approx(440, abs=2)


def test_wav_encoder_flush_without_audio_is_a_valid_empty_wav() -> None:
    encoder = make_output_encoder("wav", 16000)
    assert read_wav(encoder.flush()) == (b"", 16000)


def test_unknown_output_format() -> None:
    with pytest.raises(ValueError):
        make_output_encoder("aac", 16000)
