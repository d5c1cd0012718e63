// The reply playback queue against a fake AudioContext whose clock the test moves.
import assert from "node:assert/strict";
import { test } from "node:test";

import { PlaybackQueue } from "../../static/voice/playback.js";

class FakeContext {
  constructor() {
    this.currentTime = 10;
    this.sources = [];
  }
  createBuffer(channels, length, sampleRate) {
    return { duration: length / sampleRate, length, copyToChannel() {} };
  }
  createBufferSource() {
    const source = {
      startedAt: null,
      stopped: false,
      connect() {},
      disconnect() {},
      start(at) {
        this.startedAt = at;
      },
      stop() {
        this.stopped = true;
      },
    };
    this.sources.push(source);
    return source;
  }
}

/** ``ms`` of PCM16 at 22 050 Hz. */
function chunk(ms, rate = 22050) {
  return new ArrayBuffer(Math.round((rate * ms) / 1000) * 2);
}

test("chunks are scheduled back to back on the audio clock, with no gap", () => {
  const context = new FakeContext();
  const queue = new PlaybackQueue(context, {}, { leadS: 0.05 });
  queue.begin(7, 22050);
  for (let i = 0; i < 3; i += 1) queue.push(chunk(200));
  const starts = context.sources.map((s) => s.startedAt);
  assert.ok(Math.abs(starts[0] - 10.05) < 1e-9);
  assert.ok(Math.abs(starts[1] - starts[0] - 0.2) < 1e-4);
  assert.ok(Math.abs(starts[2] - starts[1] - 0.2) < 1e-4);
  assert.equal(queue.stats.underruns, 0);
  assert.ok(queue.playing());
});

test("a chunk that arrives after the queue ran dry is an underrun and starts after a short lead", () => {
  const context = new FakeContext();
  const queue = new PlaybackQueue(context, {}, { leadS: 0.05 });
  queue.begin(1, 22050);
  queue.push(chunk(200));
  context.currentTime = 11;
  queue.push(chunk(200));
  assert.equal(queue.stats.underruns, 1);
  assert.ok(Math.abs(context.sources[1].startedAt - 11.05) < 1e-9);
});

test("played time counts only audio that has actually played", () => {
  const context = new FakeContext();
  const queue = new PlaybackQueue(context, {}, { leadS: 0 });
  queue.begin(1, 22050);
  queue.push(chunk(200));
  queue.push(chunk(200));
  context.currentTime = 10.3;
  assert.ok(Math.abs(queue.playedMs() - 300) <= 1, `${queue.playedMs()}`);
  context.currentTime = 20;
  assert.ok(Math.abs(queue.playedMs() - 400) <= 1);
});

test("stop silences every scheduled buffer and drops what still arrives for that turn", () => {
  const context = new FakeContext();
  const queue = new PlaybackQueue(context, {}, { leadS: 0 });
  queue.begin(3, 22050);
  queue.push(chunk(200));
  queue.push(chunk(200));
  context.currentTime = 10.1;
  const played = queue.stop();
  assert.ok(Math.abs(played - 100) <= 1);
  assert.ok(context.sources.every((s) => s.stopped));
  assert.equal(queue.playing(), false);
  // Frames of the cancelled turn that were already on the wire: never played.
  assert.equal(queue.push(chunk(200)), false);
  assert.equal(context.sources.length, 2);
  assert.equal(queue.stats.dropped, 1);
  // The next turn plays normally.
  queue.begin(4, 22050);
  assert.equal(queue.push(chunk(200)), true);
  assert.equal(context.sources.length, 3);
});

test("audio of a cancelled turn stays dropped even if its audio.started comes late", () => {
  const context = new FakeContext();
  const queue = new PlaybackQueue(context, {}, { leadS: 0 });
  queue.begin(5, 22050);
  queue.stop();
  queue.begin(5, 22050);
  assert.equal(queue.push(chunk(100)), false);
});

test("a new turn's audio stops the previous turn's", () => {
  const context = new FakeContext();
  const queue = new PlaybackQueue(context, {}, { leadS: 0 });
  queue.begin(1, 22050);
  queue.push(chunk(500));
  queue.begin(2, 22050);
  assert.ok(context.sources[0].stopped);
});

test("an odd byte at a chunk's end is joined to the next chunk, never misaligning samples", () => {
  const context = new FakeContext();
  const lengths = [];
  context.createBuffer = (channels, length, rate) => {
    lengths.push(length);
    return { duration: length / rate, length, copyToChannel() {} };
  };
  const queue = new PlaybackQueue(context, {}, { leadS: 0 });
  queue.begin(1, 16000);
  queue.push(new ArrayBuffer(5));
  queue.push(new ArrayBuffer(3));
  assert.deepEqual(lengths, [2, 2]);
});

test("idle is reported once the turn ended and its last buffer finished", () => {
  const context = new FakeContext();
  let idle = 0;
  const queue = new PlaybackQueue(context, {}, { leadS: 0, onIdle: () => (idle += 1) });
  queue.begin(1, 22050);
  queue.push(chunk(200));
  queue.end(1);
  assert.equal(idle, 0);
  context.sources[0].onended();
  assert.equal(idle, 1);
});
