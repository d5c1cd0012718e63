// The WebSocket wrapper: auth message, backoff, session resume, the HTTP-fallback decision.
import assert from "node:assert/strict";
import { test } from "node:test";

import { VoiceConnection, backoffDelay, closeAction } from "../../static/voice/connection.js";

class FakeTimers {
  constructor() {
    this.pending = [];
  }
  setTimeout(fn, ms) {
    this.pending.push({ fn, ms });
    return this.pending.length;
  }
  clearTimeout() {}
  setInterval() {
    return 0;
  }
  clearInterval() {}
  /** Run the next scheduled callback; returns its delay. */
  async next() {
    const { fn, ms } = this.pending.shift();
    fn();
    await flush();
    return ms;
  }
}

const flush = () => new Promise((resolve) => setImmediate(resolve));

function fakeSocketClass() {
  const sockets = [];
  class FakeSocket {
    constructor(url) {
      this.url = url;
      this.sent = [];
      sockets.push(this);
    }
    send(data) {
      this.sent.push(data);
    }
    close(code = 1000) {
      this.onclose?.({ code });
    }
    // test helpers
    open() {
      this.onopen();
    }
    receive(event) {
      this.onmessage({ data: JSON.stringify(event) });
    }
    drop(code = 1006) {
      this.onclose({ code });
    }
  }
  return { FakeSocket, sockets };
}

function connection(overrides = {}) {
  const { FakeSocket, sockets } = fakeSocketClass();
  const timers = new FakeTimers();
  const states = [];
  const events = [];
  const conn = new VoiceConnection({
    url: "ws://example/ws/voice/",
    token: async () => "TOKEN",
    query: () => ({ vad: "server", voice: "" }),
    onEvent: (e) => events.push(e),
    onAudio: () => {},
    onState: (state, detail) => states.push([state, detail]),
    WebSocketImpl: FakeSocket,
    timers,
    backoff: { random: () => 0.5 },
    ...overrides,
  });
  return { conn, sockets, timers, states, events };
}

test("backoff doubles from 500 ms and is capped at 15 s", () => {
  const delays = [1, 2, 3, 4, 5, 6, 7].map((n) => backoffDelay(n, { random: () => 0.5 }));
  assert.deepEqual(delays, [500, 1000, 2000, 4000, 8000, 15000, 15000]);
  assert.ok(backoffDelay(1, { random: () => 0 }) >= 400);
  assert.ok(backoffDelay(1, { random: () => 1 }) <= 600);
});

test("close codes: time limit ends, rate limit is fatal, 4401 re-authenticates, 4403 starts afresh", () => {
  assert.equal(closeAction(4408), "ended");
  assert.equal(closeAction(4429), "fatal");
  assert.equal(closeAction(4401), "reauth");
  assert.equal(closeAction(4403), "new-session");
  assert.equal(closeAction(1006), "reconnect");
});

test("the token goes in the first message, never in the URL; empty options are left out", async () => {
  const { conn, sockets } = connection();
  conn.start();
  await flush();
  const socket = sockets[0];
  assert.equal(socket.url, "ws://example/ws/voice/?vad=server");
  assert.ok(!socket.url.includes("TOKEN"));
  socket.open();
  assert.deepEqual(JSON.parse(socket.sent[0]), { type: "auth", token: "TOKEN" });
});

test("a dropped connection reconnects with backoff and resumes the same session", async () => {
  const { conn, sockets, timers, states } = connection();
  conn.start();
  await flush();
  sockets[0].open();
  sockets[0].receive({ type: "session.created", session_id: 42, resumed: false });
  assert.equal(conn.open, true);
  sockets[0].drop(1006);
  assert.equal(states.at(-1)[0], "reconnecting");
  assert.equal(await timers.next(), 500);
  assert.match(sockets[1].url, /session_id=42/);
  // The second attempt fails before the session is created: the wait doubles.
  sockets[1].drop(1006);
  assert.equal(await timers.next(), 500);
  sockets[2].drop(1006);
  assert.equal(await timers.next(), 1000);
  sockets[3].open();
  sockets[3].receive({ type: "session.created", session_id: 42, resumed: true });
  const [state, detail] = states.at(-1);
  assert.equal(state, "open");
  assert.equal(detail.resumed, true);
  assert.equal(conn.failures, 0);
});

test("a WebSocket that never opens is reported unavailable (HTTP fallback) and retried", async () => {
  const { conn, sockets, timers, states } = connection();
  conn.start();
  await flush();
  sockets[0].drop(1006);
  assert.ok(!states.some(([s]) => s === "unavailable"));
  await timers.next();
  sockets[1].drop(1006);
  assert.ok(states.some(([s]) => s === "unavailable"));
  assert.equal(timers.pending.length, 1, "still retrying in the background");
});

test("no WebSocket at all in this browser: unavailable too", async () => {
  const { conn, timers, states } = connection({ WebSocketImpl: undefined });
  conn.start();
  await flush();
  await timers.next();
  assert.ok(states.some(([s]) => s === "unavailable"));
});

test("4408 ends the call without reconnecting; 4403 drops the session and reconnects", async () => {
  const ended = connection();
  ended.conn.start();
  await flush();
  ended.sockets[0].open();
  ended.sockets[0].receive({ type: "session.created", session_id: 1 });
  ended.sockets[0].drop(4408);
  assert.equal(ended.states.at(-1)[0], "ended");
  assert.equal(ended.timers.pending.length, 0);

  const forbidden = connection();
  forbidden.conn.sessionId = 99;
  forbidden.conn.start();
  await flush();
  forbidden.sockets[0].drop(4403);
  await flush();
  assert.ok(!forbidden.sockets[1].url.includes("session_id"));
});

test("an expired token gets one fresh try; a second 4401 is fatal", async () => {
  let asked = 0;
  const { conn, sockets, states } = connection({ token: async () => `T${++asked}` });
  conn.start();
  await flush();
  sockets[0].drop(4401);
  await flush();
  assert.equal(sockets.length, 2);
  sockets[1].drop(4401);
  await flush();
  assert.equal(states.at(-1)[0], "fatal");
  assert.equal(asked, 2);
});

test("stop hangs up for good", async () => {
  const { conn, sockets, timers, states } = connection();
  conn.start();
  await flush();
  sockets[0].open();
  sockets[0].receive({ type: "session.created", session_id: 1 });
  conn.stop();
  assert.equal(states.at(-1)[0], "closed");
  assert.equal(timers.pending.length, 0);
  assert.equal(conn.send({ type: "ping" }), false);
});
