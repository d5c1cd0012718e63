// Unit tests of the capture path's resampler and frame packing (node --test).
import assert from "node:assert/strict";
import { test } from "node:test";

import { FramePacker, StreamResampler, levelDb, pcm16ToFloat32, toPcm16, wavFile } from "../../static/voice/pcm.js";

function sine(freq, rate, seconds, amplitude = 0.5) {
  const out = new Float32Array(Math.round(rate * seconds));
  for (let i = 0; i < out.length; i += 1) out[i] = amplitude * Math.sin((2 * Math.PI * freq * i) / rate);
  return out;
}

function resampleInBlocks(input, inRate, blockSizes) {
  const resampler = new StreamResampler(inRate, 16000);
  const parts = [];
  let offset = 0;
  let b = 0;
  while (offset < input.length) {
    const size = blockSizes[b++ % blockSizes.length];
    parts.push(resampler.push(input.subarray(offset, offset + size)));
    offset += size;
  }
  const total = parts.reduce((n, p) => n + p.length, 0);
  const out = new Float32Array(total);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

function rms(samples) {
  return Math.sqrt(samples.reduce((s, x) => s + x * x, 0) / samples.length);
}

/** Frequency estimated from rising zero crossings. */
function frequency(samples, rate) {
  let crossings = 0;
  for (let i = 1; i < samples.length; i += 1) if (samples[i - 1] < 0 && samples[i] >= 0) crossings += 1;
  return (crossings * rate) / samples.length;
}

for (const rate of [44100, 48000, 22050, 8000]) {
  test(`resampling ${rate} Hz to 16 kHz keeps a 440 Hz tone's pitch, level and length`, () => {
    const input = sine(440, rate, 1.0);
    const out = resampleInBlocks(input, rate, [128]);
    // The filter holds back about half its kernel; everything else comes out.
    assert.ok(Math.abs(out.length - 16000) <= 64, `got ${out.length} samples`);
    const steady = out.subarray(200, out.length - 200);
    assert.ok(Math.abs(frequency(steady, 16000) - 440) < 3, `pitch ${frequency(steady, 16000)}`);
    assert.ok(Math.abs(rms(steady) - 0.5 / Math.SQRT2) < 0.01, `level ${rms(steady)}`);
  });
}

test("a tone above the 8 kHz Nyquist limit is filtered out, not folded into speech", () => {
  const out = resampleInBlocks(sine(11000, 44100, 0.5), 44100, [128]);
  assert.ok(rms(out.subarray(200)) < 0.01, `aliased energy ${rms(out.subarray(200))}`);
});

test("resampling is the same whatever the block sizes (render quanta vs one buffer)", () => {
  const input = sine(300, 44100, 0.3);
  const whole = resampleInBlocks(input, 44100, [input.length]);
  const quanta = resampleInBlocks(input, 44100, [128, 7, 333, 1, 2048]);
  assert.equal(quanta.length, whole.length);
  for (let i = 0; i < whole.length; i += 1) assert.ok(Math.abs(whole[i] - quanta[i]) < 1e-6, `sample ${i}`);
});

test("16 kHz input passes through unchanged", () => {
  const input = sine(1000, 16000, 0.01);
  assert.deepEqual(Array.from(new StreamResampler(16000, 16000).push(input)), Array.from(input));
});

test("bad sample rates are refused", () => {
  assert.throws(() => new StreamResampler(0, 16000), RangeError);
});

test("samples become clipped, rounded 16-bit integers", () => {
  assert.equal(toPcm16(0), 0);
  assert.equal(toPcm16(1), 32767);
  assert.equal(toPcm16(-1), -32768);
  assert.equal(toPcm16(3.5), 32767);
  assert.equal(toPcm16(-7), -32768);
  assert.equal(toPcm16(0.5), 16384);
});

test("frames are exactly 20 ms (640 bytes) of little-endian PCM16, whatever the pushes", () => {
  const packer = new FramePacker(320);
  const frames = [];
  const signal = new Float32Array(1000).map((_, i) => ((i % 100) - 50) / 100);
  let offset = 0;
  for (const size of [1, 319, 330, 200, 150]) {
    frames.push(...packer.push(signal.subarray(offset, offset + size)));
    offset += size;
  }
  // 1 + 319 + 330 + 200 + 150 = 1000 samples: three whole frames and 40 left over.
  assert.equal(frames.length, 3);
  for (const frame of frames) assert.equal(frame.byteLength, 640);
  const rest = packer.flush();
  assert.equal(rest.byteLength, 80);
  assert.equal(packer.flush(), null);
  const view = new DataView(frames[0]);
  assert.equal(view.getInt16(0, true), toPcm16(signal[0]));
  assert.equal(new Uint8Array(frames[0])[0], toPcm16(signal[0]) & 0xff, "low byte first");
});

test("PCM16 bytes decode back to floats, ignoring a trailing odd byte", () => {
  const bytes = new Uint8Array([0x00, 0x40, 0x00, 0xc0, 0x7f]);
  assert.deepEqual(Array.from(pcm16ToFloat32(bytes)), [0.5, -0.5]);
  assert.deepEqual(Array.from(pcm16ToFloat32(bytes.buffer.slice(0, 2))), [0.5]);
});

test("the level meter reads dBFS", () => {
  assert.equal(levelDb(new Float32Array(100)), -100);
  assert.ok(Math.abs(levelDb(new Float32Array(100).fill(0.5)) - -6.02) < 0.01);
  assert.equal(levelDb(new Float32Array(0)), -100);
});

test("a WAV file for the HTTP fallback has a correct RIFF header", () => {
  const frame = new Int16Array([1, -2, 3]).buffer;
  const wav = new DataView(wavFile([frame, frame], 16000));
  const text = (offset) => String.fromCharCode(...new Uint8Array(wav.buffer, offset, 4));
  assert.equal(text(0), "RIFF");
  assert.equal(text(8), "WAVE");
  assert.equal(wav.getUint32(24, true), 16000);
  assert.equal(wav.getUint16(34, true), 16);
  assert.equal(wav.getUint32(40, true), 12);
  assert.equal(wav.getInt16(44 + 2, true), -2);
  assert.equal(wav.byteLength, 44 + 12);
});
