// PCM helpers shared by the capture worklet, the page and the Node tests.
//
// The wire format is fixed (PROTOCOL.md): PCM16 little-endian, mono, 16 kHz, sent in
// frames of 10 ms to 1 s. The browser's AudioContext runs at whatever rate the device
// wants (44.1 kHz and 48 kHz both occur), so capture is resampled with a windowed-sinc
// low-pass that works for any ratio, integer or not, and keeps its state across blocks
// so a stream cut into 128-sample render quanta resamples exactly as one long buffer.

export const WIRE_RATE = 16000;

/** Blackman-windowed sinc, precomputed on a fine grid and read with linear interpolation. */
function kernelTable(cutoff, halfWidth, resolution) {
  const size = Math.ceil(halfWidth * resolution) + 2;
  const table = new Float32Array(size);
  for (let i = 0; i < size; i += 1) {
    const x = i / resolution;
    if (x >= halfWidth) break;
    const u = x / halfWidth;
    const window = 0.42 + 0.5 * Math.cos(Math.PI * u) + 0.08 * Math.cos(2 * Math.PI * u);
    const arg = Math.PI * cutoff * x;
    const sinc = x === 0 ? 1 : Math.sin(arg) / arg;
    table[i] = cutoff * sinc * window;
  }
  return table;
}

/**
 * Streaming sample-rate converter for mono Float32 audio.
 *
 * Output sample k sits at input position k * inRate / outRate. Below the input rate the
 * kernel's cut-off follows the output's Nyquist frequency (anti-aliasing), with a small
 * guard band, so a tone above 8 kHz does not fold back into the speech band.
 */
export class StreamResampler {
  constructor(inRate, outRate = WIRE_RATE, { zeroCrossings = 16, resolution = 128 } = {}) {
    if (!(inRate > 0 && outRate > 0)) throw new RangeError("sample rates must be positive");
    this.inRate = inRate;
    this.outRate = outRate;
    this.step = inRate / outRate;
    this.passthrough = inRate === outRate;
    const cutoff = Math.min(1, outRate / inRate) * 0.9;
    this.halfWidth = zeroCrossings / cutoff; // in input samples
    this.resolution = resolution;
    this.table = kernelTable(cutoff, this.halfWidth, resolution);
    // Pending input; starts with zeros standing for the silence before the stream.
    this.history = Math.ceil(this.halfWidth);
    this.buffer = new Float32Array(this.history);
    this.position = this.history; // input position of the next output sample
  }

  /** Resample one block; returns the output samples it completes (possibly none). */
  push(input) {
    if (this.passthrough) return Float32Array.from(input);
    const joined = new Float32Array(this.buffer.length + input.length);
    joined.set(this.buffer);
    joined.set(input, this.buffer.length);
    const out = [];
    const { halfWidth, table, resolution } = this;
    let t = this.position;
    while (t + halfWidth < joined.length - 1) {
      const first = Math.max(0, Math.ceil(t - halfWidth));
      const last = Math.min(joined.length - 1, Math.floor(t + halfWidth));
      let sum = 0;
      for (let n = first; n <= last; n += 1) {
        const g = Math.abs(t - n) * resolution;
        const i = g | 0;
        const h = table[i] + (table[i + 1] - table[i]) * (g - i);
        sum += joined[n] * h;
      }
      out.push(sum);
      t += this.step;
    }
    // Keep what the next outputs still need: from the kernel's left edge on.
    const keepFrom = Math.max(0, Math.floor(t - halfWidth) - 1);
    this.buffer = joined.slice(keepFrom);
    this.position = t - keepFrom;
    return Float32Array.from(out);
  }
}

/** One float sample in [-1, 1] as a 16-bit integer, clipped. */
export function toPcm16(sample) {
  const s = sample > 1 ? 1 : sample < -1 ? -1 : sample;
  return Math.round(s < 0 ? s * 32768 : s * 32767);
}

/**
 * Cuts a stream of 16 kHz float samples into PCM16 little-endian frames of a fixed size.
 *
 * ``push`` returns whole frames only (ArrayBuffers of ``frameSamples * 2`` bytes);
 * ``flush`` hands over the rest, for a push-to-talk release.
 */
export class FramePacker {
  constructor(frameSamples = 320) {
    if (!(frameSamples > 0)) throw new RangeError("frameSamples must be positive");
    this.frameSamples = frameSamples;
    this.pending = new Int16Array(frameSamples);
    this.filled = 0;
  }

  push(samples) {
    const frames = [];
    for (let i = 0; i < samples.length; i += 1) {
      this.pending[this.filled] = toPcm16(samples[i]);
      this.filled += 1;
      if (this.filled === this.frameSamples) {
        frames.push(littleEndian(this.pending, this.frameSamples));
        this.filled = 0;
      }
    }
    return frames;
  }

  flush() {
    if (this.filled === 0) return null;
    const frame = littleEndian(this.pending, this.filled);
    this.filled = 0;
    return frame;
  }
}

function littleEndian(samples, count) {
  const buffer = new ArrayBuffer(count * 2);
  const view = new DataView(buffer);
  for (let i = 0; i < count; i += 1) view.setInt16(i * 2, samples[i], true);
  return buffer;
}

/** PCM16 little-endian bytes as floats in [-1, 1). A trailing odd byte is ignored. */
export function pcm16ToFloat32(bytes) {
  const view =
    bytes instanceof ArrayBuffer
      ? new DataView(bytes)
      : new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const count = Math.floor(bytes.byteLength / 2);
  const out = new Float32Array(count);
  for (let i = 0; i < count; i += 1) out[i] = view.getInt16(i * 2, true) / 32768;
  return out;
}

/** Root-mean-square level in dBFS (-100 for silence). */
export function levelDb(samples) {
  if (samples.length === 0) return -100;
  let sum = 0;
  for (let i = 0; i < samples.length; i += 1) sum += samples[i] * samples[i];
  const rms = Math.sqrt(sum / samples.length);
  return rms > 1e-5 ? Math.max(-100, 20 * Math.log10(rms)) : -100;
}

/** A WAV file (RIFF, PCM16 mono) from PCM16 little-endian frames: the HTTP fallback's upload. */
export function wavFile(frames, sampleRate = WIRE_RATE) {
  const dataBytes = frames.reduce((total, frame) => total + frame.byteLength, 0);
  const buffer = new ArrayBuffer(44 + dataBytes);
  const view = new DataView(buffer);
  const text = (offset, value) => {
    for (let i = 0; i < value.length; i += 1) view.setUint8(offset + i, value.charCodeAt(i));
  };
  text(0, "RIFF");
  view.setUint32(4, 36 + dataBytes, true);
  text(8, "WAVE");
  text(12, "fmt ");
  view.setUint32(16, 16, true);
  view.setUint16(20, 1, true); // PCM
  view.setUint16(22, 1, true); // mono
  view.setUint32(24, sampleRate, true);
  view.setUint32(28, sampleRate * 2, true);
  view.setUint16(32, 2, true);
  view.setUint16(34, 16, true);
  text(36, "data");
  view.setUint32(40, dataBytes, true);
  const bytes = new Uint8Array(buffer);
  let offset = 44;
  for (const frame of frames) {
    bytes.set(new Uint8Array(frame), offset);
    offset += frame.byteLength;
  }
  return buffer;
}
