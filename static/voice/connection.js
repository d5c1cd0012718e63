// The voice WebSocket with what a phone call needs: authentication by a first `auth`
// message (the token never goes into a URL), reconnection with exponential backoff that
// resumes the same session, a heartbeat that notices a dead link, and the decision that
// the WebSocket is impossible here (a proxy that refuses upgrades) so the page can use
// the HTTP fallback instead.

/** Close codes of PROTOCOL.md (plus 4400, docs/protocol-extensions.md). */
export const CloseCode = Object.freeze({
  BAD_REQUEST: 4400,
  UNAUTHENTICATED: 4401,
  FORBIDDEN: 4403,
  TIME_LIMIT: 4408,
  FRAME_TOO_LARGE: 4413,
  RATE_LIMITED: 4429,
});

/** Delay before reconnect attempt ``attempt`` (1, 2, ...): doubling, capped, jittered. */
export function backoffDelay(attempt, { initialMs = 500, maxMs = 15000, jitter = 0.2, random = Math.random } = {}) {
  const base = Math.min(maxMs, initialMs * 2 ** Math.max(0, attempt - 1));
  return Math.round(base * (1 - jitter + 2 * jitter * random()));
}

/** What to do after a close: reconnect, or stop and tell the person why. */
export function closeAction(code) {
  switch (code) {
    case CloseCode.TIME_LIMIT:
      return "ended"; // idle or session limit: a person decides to start again
    case CloseCode.RATE_LIMITED:
    case CloseCode.BAD_REQUEST:
      return "fatal";
    case CloseCode.UNAUTHENTICATED:
      return "reauth"; // the token expired: fetch a new one and reconnect
    case CloseCode.FORBIDDEN:
      return "new-session"; // the session is gone or not ours: start a fresh one
    default:
      return "reconnect";
  }
}

export class VoiceConnection {
  /**
   * @param {object} options
   * @param {string} options.url  ws(s) URL of /ws/voice/ without query
   * @param {() => Promise<string>} options.token  a fresh access token
   * @param {() => object} options.query  session options for the connect URL
   * @param {(event: object) => void} options.onEvent  a server JSON event
   * @param {(data: ArrayBuffer) => void} options.onAudio  a binary frame
   * @param {(state: string, detail?: object) => void} options.onState
   *   "connecting" | "open" | "reconnecting" | "unavailable" | "ended" | "fatal" | "closed"
   */
  constructor({
    url,
    token,
    query = () => ({}),
    onEvent,
    onAudio,
    onState,
    WebSocketImpl = globalThis.WebSocket,
    timers = globalThis,
    fallbackAfter = 2,
    pingEveryMs = 15000,
    pongWithinMs = 10000,
    backoff = {},
  }) {
    Object.assign(this, { url, token, query, onEvent, onAudio, onState });
    this.WebSocketImpl = WebSocketImpl;
    this.timers = timers;
    this.fallbackAfter = fallbackAfter;
    this.pingEveryMs = pingEveryMs;
    this.pongWithinMs = pongWithinMs;
    this.backoff = backoff;
    this.socket = null;
    this.sessionId = null;
    this.everOpened = false;
    this.failures = 0; // consecutive attempts that did not reach session.created
    this.stopped = true;
    this.retryTimer = null;
    this.pingTimer = null;
    this.pongTimer = null;
    this.reauthed = false;
    this.state = "closed";
  }

  get open() {
    return this.state === "open";
  }

  start() {
    this.stopped = false;
    this.#connect();
  }

  /** Hang up for good (the person pressed Stop or signed out). */
  stop() {
    this.stopped = true;
    this.#clearTimers();
    if (this.socket) {
      const socket = this.socket;
      this.socket = null;
      socket.close(1000, "bye");
    }
    this.#setState("closed");
  }

  send(message) {
    if (!this.open) return false;
    this.socket.send(JSON.stringify(message));
    return true;
  }

  sendAudio(buffer) {
    if (!this.open) return false;
    this.socket.send(buffer);
    return true;
  }

  /** Forget the session: the next connection starts a new one. */
  forgetSession() {
    this.sessionId = null;
  }

  #setState(state, detail = {}) {
    this.state = state;
    this.onState(state, detail);
  }

  async #connect() {
    if (this.stopped) return;
    this.#setState(this.everOpened ? "reconnecting" : "connecting", { attempt: this.failures + 1 });
    let token;
    try {
      token = await this.token();
    } catch (err) {
      if (err && err.status === 401) {
        this.#setState("fatal", { code: "auth_failed" });
        return;
      }
      this.#scheduleRetry();
      return;
    }
    if (this.stopped) return;
    const params = new URLSearchParams();
    for (const [key, value] of Object.entries(this.query())) {
      if (value !== undefined && value !== null && value !== "") params.set(key, String(value));
    }
    if (this.sessionId !== null) params.set("session_id", String(this.sessionId));
    let socket;
    try {
      if (typeof this.WebSocketImpl !== "function") throw new Error("no WebSocket here");
      socket = new this.WebSocketImpl(`${this.url}?${params}`);
    } catch {
      this.#failed();
      return;
    }
    socket.binaryType = "arraybuffer";
    this.socket = socket;
    let created = false;
    socket.onopen = () => socket.send(JSON.stringify({ type: "auth", token }));
    socket.onmessage = (message) => {
      if (socket !== this.socket) return;
      if (typeof message.data !== "string") {
        this.onAudio(message.data);
        return;
      }
      let event;
      try {
        event = JSON.parse(message.data);
      } catch {
        return;
      }
      if (event.type === "pong") {
        this.timers.clearTimeout(this.pongTimer);
        this.pongTimer = null;
      }
      if (event.type === "session.created") {
        created = true;
        const resumed = this.everOpened;
        this.everOpened = true;
        this.failures = 0;
        this.reauthed = false;
        this.sessionId = event.session_id;
        this.#startHeartbeat();
        this.#setState("open", { resumed, sessionId: event.session_id });
      }
      this.onEvent(event);
    };
    socket.onclose = (close) => {
      if (socket !== this.socket) return;
      this.socket = null;
      this.#clearTimers();
      if (this.stopped) return;
      const action = closeAction(close.code);
      if (action === "reconnect") {
        if (!created) this.#failed();
        else this.#scheduleRetry();
      } else if (action === "reauth" && !this.reauthed) {
        this.reauthed = true;
        this.#connect();
      } else if (action === "new-session") {
        this.sessionId = null;
        this.#connect();
      } else {
        // "ended", "fatal", or a second 4401 right after a fresh token: stop here.
        this.stopped = true;
        this.#setState(action === "reauth" ? "fatal" : action, { code: close.code, reason: close.reason });
      }
    };
    socket.onerror = () => {}; // onclose follows and decides
  }

  #failed() {
    this.failures += 1;
    if (!this.everOpened && this.failures === this.fallbackAfter) {
      this.#setState("unavailable", { attempts: this.failures });
    }
    this.#scheduleRetry();
  }

  #scheduleRetry() {
    if (this.stopped) return;
    const attempt = Math.max(1, this.failures);
    const delay = backoffDelay(attempt, this.backoff);
    if (this.state !== "unavailable") this.#setState(this.everOpened ? "reconnecting" : "connecting", { attempt, delay });
    this.retryTimer = this.timers.setTimeout(() => this.#connect(), delay);
  }

  #startHeartbeat() {
    this.#clearTimers();
    this.pingTimer = this.timers.setInterval(() => {
      if (!this.open) return;
      this.socket.send(JSON.stringify({ type: "ping", ts: Date.now() }));
      if (this.pongTimer === null) {
        // No answer: the link is dead even if the browser has not noticed yet.
        this.pongTimer = this.timers.setTimeout(() => this.socket && this.socket.close(), this.pongWithinMs);
      }
    }, this.pingEveryMs);
  }

  #clearTimers() {
    this.timers.clearTimeout(this.retryTimer);
    this.timers.clearInterval(this.pingTimer);
    this.timers.clearTimeout(this.pongTimer);
    this.retryTimer = this.pingTimer = this.pongTimer = null;
  }
}
