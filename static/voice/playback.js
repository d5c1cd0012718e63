// Reply audio on the Web Audio clock: chunks are scheduled back to back as they arrive,
// and a barge-in stops everything at once — nothing of a cancelled turn plays afterwards.
//
// The server sends PCM16 chunks of about 200 ms after `audio.started` (which names the
// turn and the sample rate). Each chunk becomes an AudioBuffer started exactly where the
// previous one ends, so playback is gap-free whenever audio arrives ahead of time; if it
// arrives late (an underrun) it starts a short lead after "now" and the gap is counted.

import { pcm16ToFloat32 } from "./pcm.js";

export class PlaybackQueue {
  /**
   * @param {BaseAudioContext} context
   * @param {AudioNode} destination where the reply audio goes (an analyser, a gain...)
   * @param {{leadS?: number, onIdle?: () => void}} options
   */
  constructor(context, destination, { leadS = 0.05, onIdle = () => {} } = {}) {
    this.context = context;
    this.destination = destination;
    this.leadS = leadS;
    this.onIdle = onIdle;
    this.turnId = null;
    this.sampleRate = 0;
    this.sources = [];
    this.scheduled = []; // [startTime, duration] of every buffer of the current turn
    this.nextTime = 0;
    this.ended = true; // the server said audio.done for the current turn
    this.carry = null; // an odd trailing byte, completed by the next chunk
    this.cancelledTurns = new Set();
    this.stats = { buffers: 0, seconds: 0, underruns: 0, dropped: 0, stops: 0 };
  }

  /** `audio.started`: binary frames that follow belong to ``turnId``. */
  begin(turnId, sampleRate) {
    if (this.turnId !== null && this.turnId !== turnId && this.playing()) this.stop();
    this.turnId = turnId;
    this.sampleRate = sampleRate;
    this.scheduled = [];
    this.sources = [];
    this.nextTime = 0;
    this.ended = false;
    this.carry = null;
  }

  /** A binary frame: schedule it, unless its turn was cancelled (then it is dropped). */
  push(data) {
    const bytes = new Uint8Array(data);
    if (this.turnId === null || this.cancelledTurns.has(this.turnId) || this.ended) {
      this.stats.dropped += 1;
      return false;
    }
    let chunk = bytes;
    if (this.carry !== null) {
      chunk = new Uint8Array(bytes.length + 1);
      chunk[0] = this.carry;
      chunk.set(bytes, 1);
      this.carry = null;
    }
    if (chunk.length % 2) {
      this.carry = chunk[chunk.length - 1];
      chunk = chunk.subarray(0, chunk.length - 1);
    }
    const samples = pcm16ToFloat32(chunk);
    if (samples.length === 0) return true;
    const buffer = this.context.createBuffer(1, samples.length, this.sampleRate);
    buffer.copyToChannel(samples, 0);
    const source = this.context.createBufferSource();
    source.buffer = buffer;
    source.connect(this.destination);
    const now = this.context.currentTime;
    let start = this.nextTime;
    if (start < now + 0.005) {
      if (this.scheduled.length > 0) this.stats.underruns += 1;
      start = now + this.leadS;
    }
    source.start(start);
    this.nextTime = start + buffer.duration;
    this.scheduled.push([start, buffer.duration]);
    this.sources.push(source);
    source.onended = () => this.#sourceEnded(source);
    this.stats.buffers += 1;
    this.stats.seconds += buffer.duration;
    return true;
  }

  /** `audio.done`: no more audio for ``turnId``; idle once the last buffer has played. */
  end(turnId) {
    if (turnId !== this.turnId) return;
    this.ended = true;
    if (this.sources.length === 0) this.onIdle();
  }

  /** Is reply audio playing or scheduled to play? */
  playing() {
    return this.sources.length > 0 && this.context.currentTime < this.nextTime;
  }

  /** Milliseconds of the current turn's audio that have played so far. */
  playedMs() {
    const now = this.context.currentTime;
    let played = 0;
    for (const [start, duration] of this.scheduled) {
      if (now > start) played += Math.min(now - start, duration);
    }
    return Math.round(played * 1000);
  }

  /**
   * Stop at once (barge-in, cancel, a new turn): every scheduled buffer is stopped and
   * anything still arriving for this turn is dropped. Returns the milliseconds heard.
   */
  stop() {
    const played = this.playedMs();
    if (this.turnId !== null) this.cancelledTurns.add(this.turnId);
    const hadAudio = this.sources.length > 0;
    for (const source of this.sources) {
      source.onended = null;
      try {
        source.stop();
      } catch {
        // never started or already stopped: nothing to do
      }
      source.disconnect();
    }
    this.sources = [];
    this.nextTime = 0;
    this.ended = true;
    if (hadAudio) this.stats.stops += 1;
    return played;
  }

  #sourceEnded(source) {
    this.sources = this.sources.filter((s) => s !== source);
    if (this.sources.length === 0 && this.ended) this.onIdle();
  }
}
