// The microphone's audio thread: whatever rate the AudioContext runs at → PCM16 16 kHz
// mono frames for the WebSocket, plus the input level for the page's meter.
//
// Runs in the AudioWorkletGlobalScope, which provides `sampleRate`, `currentTime`,
// `AudioWorkletProcessor` and `registerProcessor`.
import { FramePacker, StreamResampler, WIRE_RATE, levelDb } from "./pcm.js";

const LEVEL_EVERY_S = 0.05;

class VoiceCaptureProcessor extends AudioWorkletProcessor {
  constructor(options) {
    super();
    const frameMs = options?.processorOptions?.frameMs ?? 20;
    this.resampler = new StreamResampler(sampleRate, WIRE_RATE);
    this.packer = new FramePacker(Math.round((WIRE_RATE * frameMs) / 1000));
    this.levelBlock = [];
    this.levelSamples = 0;
    this.port.onmessage = (event) => {
      if (event.data?.type === "flush") {
        const rest = this.packer.flush();
        this.port.postMessage({ type: "flushed", pcm: rest }, rest ? [rest] : []);
      }
    };
  }

  process(inputs) {
    const channels = inputs[0];
    if (!channels || channels.length === 0 || !channels[0]) return true;
    let mono = channels[0];
    if (channels.length > 1) {
      mono = new Float32Array(mono.length);
      for (const channel of channels) {
        for (let i = 0; i < channel.length; i += 1) mono[i] += channel[i] / channels.length;
      }
    }
    for (const frame of this.packer.push(this.resampler.push(mono))) {
      this.port.postMessage({ type: "frame", pcm: frame }, [frame]);
    }
    this.levelBlock.push(mono.slice());
    this.levelSamples += mono.length;
    if (this.levelSamples >= LEVEL_EVERY_S * sampleRate) {
      const joined = new Float32Array(this.levelSamples);
      let offset = 0;
      for (const block of this.levelBlock) {
        joined.set(block, offset);
        offset += block.length;
      }
      this.port.postMessage({ type: "level", db: levelDb(joined), at: currentTime });
      this.levelBlock = [];
      this.levelSamples = 0;
    }
    return true;
  }
}

registerProcessor("voice-capture", VoiceCaptureProcessor);
