// The voice page: one button starts a call; the person talks, hears the answer as it is
// generated, and can cut in at any moment. See docs/voice-page.md for the behaviour.

import { VoiceConnection } from "./connection.js";
import { wavFile } from "./pcm.js";
import { PlaybackQueue } from "./playback.js";
import { Transcript } from "./transcript.js";

const config = JSON.parse(document.getElementById("voice-config").textContent);
const $ = (id) => document.getElementById(id);

/** Each state: the words shown (never colour alone) and the hint under them. */
const STATES = {
  idle: ["Ready", "Press Start and talk, or type a message below."],
  connecting: ["Connecting…", "Getting the line ready."],
  listening: ["Listening", "Go ahead — I'm listening."],
  "user-speaking": ["You're speaking", "I'll answer when you pause."],
  thinking: ["Thinking…", "Working on an answer."],
  "assistant-speaking": ["Speaking", "Talk at any time to interrupt."],
  interrupted: ["Interrupted", "Stopped. Go ahead."],
  reconnecting: ["Reconnecting…", "The connection dropped. Trying again — your conversation is kept."],
  error: ["Something went wrong", "What to do is below."],
};
/** The error state's heading where a plainer one fits than "Something went wrong". */
const ERROR_TITLES = { rate_limited: "Usage limit reached", auth_failed: "Signed out" };
const PTT_HINTS = {
  listening: "Hold the Talk button or the space bar while you speak.",
  "user-speaking": "Release when you're done.",
  "assistant-speaking": "Hold Talk (or Space) to interrupt, or press Esc.",
};
const TEXT_ONLY_HINT = "Type your message below.";

/** Plain words for each error code, with what to do about it. */
const ERROR_TEXT = {
  auth_failed: "You are signed out. Reload the page to sign in again.",
  rate_limited: "You have reached your usage limit for now.",
  bad_message: "The page sent something the server did not understand. Reload the page.",
  bad_audio: "I couldn't make out any words. Try again, a little closer to the microphone.",
  too_large: "That was too long for one turn. Keep each question shorter.",
  session_not_found: "That conversation is no longer available; a new one was started.",
  stt_failed: "Speech recognition failed on the server. Please try again.",
  llm_failed: "The assistant could not write an answer. Please try again.",
  tts_failed: "The answer could not be spoken. The text is shown above.",
  timeout: "The answer took too long. Please try again.",
  busy: "The assistant is busy right now. Try again in a moment.",
  internal: "The server had a problem. Please try again.",
  knowledge_unavailable:
    "The knowledge base could not be reached, so this answer does not use it. It may be less accurate.",
};
/** Codes of errors that are only warnings: the turn goes on. */
const WARNINGS = new Set(["knowledge_unavailable"]);

const app = {
  state: "idle",
  prefs: { ...config.preferences },
  transport: "websocket", // or "http": the WebSocket is impossible here
  micAvailable: null,
  micError: "",
  sessionId: null,
  replyTurn: null, // the turn whose reply is in flight or playing
  cancelledTurns: new Set(),
  pttHeld: false,
  userSpeaking: false, // between the server's speech.started and speech.stopped
  pttStartedAt: 0,
  recorded: [],
  lastError: null,
  stats: {
    framesCaptured: 0,
    framesSent: 0,
    maxOutputLevel: 0,
    outputLevel: 0,
    inputLevelDb: -100,
    bargeIns: 0,
    lastStopMs: null,
    reconnects: 0,
    httpTurns: 0,
    states: [],
    firstFrameAt: null, // performance.now() of the first captured frame
    audioStarts: [], // {turnId, at}: when each turn's first reply buffer starts playing
  },
};
window.voiceapp = app;

const transcript = new Transcript($("transcript"));
let context = null;
let playback = null;
let analyser = null;
let connection = null;
let capture = null; // { stream, node, source }
let token = { value: "", expiresAt: 0 };
let interruptedTimer = null;

// --- state ------------------------------------------------------------------------------

function setState(state) {
  clearTimeout(interruptedTimer);
  app.state = state;
  app.stats.states.push(state);
  document.body.dataset.state = state;
  const [label, hint] = STATES[state];
  let text = hint;
  if (app.micAvailable === false && ["listening", "user-speaking"].includes(state)) text = TEXT_ONLY_HINT;
  else if (pushToTalk() && PTT_HINTS[state]) text = PTT_HINTS[state];
  $("status-label").textContent = state === "error" ? app.errorTitle || label : label;
  $("status-hint").textContent = text;
}

/** After a reply ends or is cut off: back to listening (or idle if the call is over). */
function settle() {
  if (!callActive()) return setState("idle");
  if (app.pttHeld || app.userSpeaking) return setState("user-speaking");
  setState("listening");
}

function callActive() {
  return connection !== null; // over HTTP too: the connection keeps retrying meanwhile
}

function pushToTalk() {
  return app.prefs.vad === "client" || app.transport === "http";
}

function notice(message, kind = "info") {
  const box = $("notice");
  box.textContent = message;
  box.dataset.kind = kind;
  box.hidden = !message;
}

function showError(code, message, extra = {}) {
  let text = ERROR_TEXT[code] || message || "Something went wrong.";
  if (code === "rate_limited" && extra.retry_after) {
    const minutes = Math.ceil(extra.retry_after / 60);
    text += extra.retry_after < 90 ? ` Try again in ${extra.retry_after} s.` : ` Try again in about ${minutes} min.`;
  }
  if (code === "too_large" && config.limits.max_utterance_seconds) {
    text += ` (at most ${config.limits.max_utterance_seconds} s of speech)`;
  }
  app.lastError = text;
  app.errorTitle = ERROR_TITLES[code] || "";
  notice(text, "error");
  return text;
}

function updateControls() {
  const active = callActive();
  $("start").textContent = active ? "End conversation" : "Start conversation";
  $("start").setAttribute("aria-pressed", String(active));
  $("talk").hidden = !(active && pushToTalk() && app.micAvailable);
  $("transport").textContent =
    app.transport === "http"
      ? "Connection: HTTP fallback (the live connection is not possible from here)"
      : connection?.open
        ? "Connection: live"
        : "";
  document.body.dataset.transport = app.transport;
  document.body.dataset.input = app.micAvailable === false ? "text" : pushToTalk() ? "push-to-talk" : "hands-free";
}

// --- audio ------------------------------------------------------------------------------

function ensureAudio() {
  if (context) return context;
  context = new AudioContext({ latencyHint: "interactive" });
  analyser = context.createAnalyser();
  analyser.fftSize = 1024;
  analyser.connect(context.destination);
  playback = new PlaybackQueue(context, analyser, { onIdle: onPlaybackIdle });
  app.stats.contextRate = context.sampleRate;
  app.playback = playback;
  watchOutput();
  return context;
}

function watchOutput() {
  const samples = new Float32Array(analyser.fftSize);
  const tick = () => {
    analyser.getFloatTimeDomainData(samples);
    let sum = 0;
    for (const s of samples) sum += s * s;
    const rms = Math.sqrt(sum / samples.length);
    app.stats.outputLevel = rms;
    app.stats.maxOutputLevel = Math.max(app.stats.maxOutputLevel, rms);
  };
  setInterval(tick, 50);
}

async function startMicrophone() {
  if (!navigator.mediaDevices?.getUserMedia) {
    throw Object.assign(new Error("no microphone API"), { name: "NotSupportedError" });
  }
  const stream = await navigator.mediaDevices.getUserMedia({
    audio: { echoCancellation: true, noiseSuppression: true, autoGainControl: true, channelCount: 1 },
  });
  await context.audioWorklet.addModule(config.urls.worklet);
  const source = context.createMediaStreamSource(stream);
  const node = new AudioWorkletNode(context, "voice-capture", { processorOptions: { frameMs: 20 } });
  const sink = context.createGain();
  sink.gain.value = 0; // the worklet must be pulled, but the microphone must not be heard
  source.connect(node).connect(sink).connect(context.destination);
  node.port.onmessage = (event) => {
    const message = event.data;
    if (message.type === "frame") onFrame(message.pcm);
    else if (message.type === "level") onLevel(message.db);
  };
  capture = { stream, node, source };
  app.micAvailable = true;
}

function stopMicrophone() {
  if (!capture) return;
  capture.node.port.onmessage = null;
  capture.source.disconnect();
  capture.node.disconnect();
  for (const track of capture.stream.getTracks()) track.stop();
  capture = null;
  onLevel(-100);
}

function micErrorText(err) {
  switch (err?.name) {
    case "NotAllowedError":
    case "SecurityError":
      return "Microphone access is blocked, so you can type instead. To talk, allow the microphone for this site (the icon next to the address) and press Start again.";
    case "NotFoundError":
    case "OverconstrainedError":
      return "No microphone was found, so you can type instead. Connect one and press Start again.";
    case "NotReadableError":
      return "The microphone is in use by another program, so you can type instead. Close it and press Start again.";
    default:
      return "This browser cannot record audio here (it needs HTTPS or localhost), so you can type instead.";
  }
}

function onFrame(pcm) {
  app.stats.framesCaptured += 1;
  if (app.stats.firstFrameAt === null) app.stats.firstFrameAt = performance.now();
  if (app.transport === "http") {
    if (app.pttHeld) app.recorded.push(pcm);
    return;
  }
  if (!connection?.open) return;
  if (pushToTalk() && !app.pttHeld) return;
  if (connection.sendAudio(pcm)) app.stats.framesSent += 1;
}

function onLevel(db) {
  app.stats.inputLevelDb = db;
  const percent = Math.max(0, Math.min(100, ((db + 60) / 60) * 100));
  // A transform, not a width: the meter moves 20 times a second and must not re-lay out
  // the page each time (measured: with software rendering on a 2-core server, a width
  // transition here slowed the server's own turn by about 0.5 s).
  $("level").style.transform = `scaleX(${percent / 100})`;
  $("meter").setAttribute("aria-valuenow", String(Math.round(db)));
}

function onPlaybackIdle() {
  if (app.state === "assistant-speaking") settle();
}

/**
 * Barge-in: stop the reply now and tell the server how much was heard, so the history
 * keeps only that. ``reason`` is for the stats; the server learns it from the cancel.
 */
function bargeIn(reason) {
  const started = performance.now();
  const turnId = app.replyTurn;
  const wasPlaying = playback?.playing();
  if (turnId === null && !wasPlaying) return false;
  const playedMs = playback ? playback.stop() : 0;
  app.stats.lastStopMs = performance.now() - started;
  app.stats.bargeIns += 1;
  app.stats.lastBargeIn = { reason, turnId, playedMs, buffersAtStop: playback?.stats.buffers ?? 0 };
  if (wasPlaying) measureSilence(started, app.stats.lastBargeIn);
  if (turnId !== null) {
    app.cancelledTurns.add(turnId);
    transcript.interrupted(turnId);
  }
  if (app.transport === "websocket") connection?.send({ type: "response.cancel", played_ms: playedMs });
  app.replyTurn = null;
  setState("interrupted");
  interruptedTimer = setTimeout(() => app.state === "interrupted" && settle(), 900);
  return true;
}

/** How long after a stop the output really fell silent (read from the analyser). */
function measureSilence(started, record) {
  const samples = new Float32Array(analyser.fftSize);
  const poll = () => {
    analyser.getFloatTimeDomainData(samples);
    const peak = samples.reduce((max, s) => Math.max(max, Math.abs(s)), 0);
    const elapsed = performance.now() - started;
    if (peak < 1e-3) record.silentAfterMs = Math.round(elapsed);
    else if (elapsed < 2000) setTimeout(poll, 5);
  };
  poll();
}

// --- server events ----------------------------------------------------------------------

function onEvent(event) {
  switch (event.type) {
    case "session.created":
      app.sessionId = event.session_id;
      app.limits = event.limits;
      break;
    case "speech.started":
      app.userSpeaking = true;
      // A barge-in shows "Interrupted" for a moment, then "You're speaking".
      if (!bargeIn("speech")) setState("user-speaking");
      break;
    case "speech.stopped":
      app.userSpeaking = false;
      if (app.state === "user-speaking") setState("thinking");
      break;
    case "turn.started":
      app.replyTurn = event.turn_id;
      transcript.turn(event.turn_id);
      if (!app.userSpeaking) setState("thinking");
      break;
    case "transcript":
      transcript.userText(event.turn_id, event.text, event.final);
      break;
    case "reply.delta":
      transcript.replyDelta(event.turn_id, event.text);
      break;
    case "reply.done":
      transcript.replyDone(event.turn_id, event.text, event.sources);
      break;
    case "audio.started":
      if (app.stats.lastBargeIn && app.stats.lastBargeIn.buffersBeforeNextTurn === undefined) {
        app.stats.lastBargeIn.buffersBeforeNextTurn = playback.stats.buffers;
      }
      if (!app.cancelledTurns.has(event.turn_id)) playback.begin(event.turn_id, event.sample_rate);
      break;
    case "audio.done":
      playback.end(event.turn_id);
      break;
    case "turn.done":
      onTurnDone(event);
      break;
    case "error":
      onServerError(event);
      break;
    case "reply.truncated":
      transcript.heard(event.turn_id, event.reply_heard);
      break;
    case "session.reset":
      transcript.clear();
      break;
    default:
      break;
  }
}

function onTurnDone(event) {
  transcript.done(event.turn_id, event.status, event.timings, event.reason);
  if (event.status === "cancelled" && event.reason !== "continued") {
    transcript.heard(event.turn_id, event.reply_heard);
  }
  if (app.replyTurn === event.turn_id) app.replyTurn = null;
  if (event.status === "cancelled" && event.reason !== "continued") app.cancelledTurns.add(event.turn_id);
  const speaking = playback?.playing();
  if (!speaking && ["thinking", "assistant-speaking"].includes(app.state)) settle();
}

function onServerError(event) {
  if (WARNINGS.has(event.code)) {
    notice(ERROR_TEXT[event.code] || event.message, "warning");
    if (event.turn_id) transcript.warn(event.turn_id, ERROR_TEXT[event.code] || event.message);
    return;
  }
  const text = showError(event.code, event.message, event);
  if (event.turn_id) transcript.failed(event.turn_id, text);
  if (event.fatal) setState("error");
  else if (app.state === "thinking" && !event.turn_id) settle();
}

function onAudio(data) {
  if (!playback.push(data)) return;
  if (playback.scheduled.length === 1) {
    const [start] = playback.scheduled[0];
    const at = performance.now() + (start - context.currentTime) * 1000;
    app.stats.audioStarts.push({ turnId: playback.turnId, at });
  }
  if (!["assistant-speaking", "user-speaking"].includes(app.state)) setState("assistant-speaking");
}

function onConnectionState(state, detail) {
  switch (state) {
    case "connecting":
      if (app.transport === "websocket") setState("connecting");
      break;
    case "open":
      if (app.transport === "http") notice("The live connection works again.");
      else if (detail.resumed) notice("Reconnected — the conversation continues.");
      else if (app.micAvailable !== false) notice("");
      if (detail.resumed) app.stats.reconnects += 1;
      app.transport = "websocket";
      settle();
      break;
    case "reconnecting":
      if (app.transport === "websocket") setState("reconnecting");
      break;
    case "unavailable":
      app.transport = "http";
      notice(
        "A live connection to the server is not possible from this network, so each turn is sent over HTTP instead: hold Talk (or Space) to speak, or type. Answers arrive whole, a little later.",
        "warning",
      );
      settle();
      break;
    case "ended":
      notice("The conversation ended after a quiet spell. Press Start to talk again.");
      endConversation(false);
      break;
    case "fatal":
      if (detail.code === 4401 || detail.code === "auth_failed") showError("auth_failed");
      else if (!app.lastError) showError("internal", detail.reason);
      endConversation(false);
      setState("error");
      break;
    default:
      break;
  }
  updateControls();
  // Keyboard users: once push-to-talk is ready, the Talk button has the focus (Space on
  // the Start button would otherwise end the call).
  if (document.activeElement === $("start") && !$("talk").hidden) $("talk").focus();
}

// --- the call ---------------------------------------------------------------------------

async function startConversation() {
  ensureAudio();
  await context.resume();
  app.lastError = null;
  notice("");
  setState("connecting");
  try {
    await startMicrophone();
  } catch (err) {
    app.micAvailable = false;
    app.micError = err?.name || "Error";
    notice(micErrorText(err), "warning");
    $("text-input").focus();
  }
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  connection = new VoiceConnection({
    url: `${scheme}//${location.host}${config.urls.websocket}`,
    token: accessToken,
    query: sessionOptions,
    onEvent,
    onAudio,
    onState: onConnectionState,
  });
  if (app.sessionId !== null) connection.sessionId = app.sessionId;
  connection.start();
  updateControls();
}

function endConversation(hangUp = true) {
  if (playback?.playing()) bargeIn("hang-up");
  if (hangUp) connection?.stop();
  connection = null;
  stopMicrophone();
  app.transport = "websocket";
  app.pttHeld = false;
  app.userSpeaking = false;
  setState("idle");
  updateControls();
}

function sessionOptions() {
  const { voice, speed, input_language, output_language, mode, vad } = app.prefs;
  return {
    input_format: "pcm16",
    input_sample_rate: 16000,
    output_format: "pcm16",
    vad: app.micAvailable === false ? "client" : vad,
    voice,
    speed,
    input_language,
    output_language,
    mode,
  };
}

async function accessToken() {
  if (token.value && Date.now() < token.expiresAt - 60000) return token.value;
  const response = await fetch(config.urls.token, {
    method: "POST",
    credentials: "same-origin",
    headers: { "X-CSRFToken": csrfToken() },
  });
  if (!response.ok) throw Object.assign(new Error("no token"), { status: response.status });
  const body = await response.json();
  token = { value: body.access, expiresAt: Date.now() + body.expires_in * 1000 };
  return token.value;
}

function csrfToken() {
  const match = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
  return match ? decodeURIComponent(match[1]) : document.querySelector("[name=csrfmiddlewaretoken]")?.value || "";
}

// --- push-to-talk -----------------------------------------------------------------------

const MIN_PRESS_MS = 300;

function talkDown() {
  if (app.pttHeld || !callActive() || !app.micAvailable || !pushToTalk()) return;
  app.pttHeld = true;
  app.pttStartedAt = performance.now();
  app.recorded = [];
  bargeIn("push-to-talk");
  $("talk").setAttribute("aria-pressed", "true");
  setState("user-speaking");
}

function talkUp() {
  if (!app.pttHeld) return;
  app.pttHeld = false;
  $("talk").setAttribute("aria-pressed", "false");
  const heldMs = performance.now() - app.pttStartedAt;
  if (heldMs < MIN_PRESS_MS) {
    if (app.transport === "websocket") connection?.send({ type: "input_audio.clear" });
    notice("Hold the Talk button (or the space bar) for as long as you speak.");
    settle();
    return;
  }
  if (app.transport === "http") {
    httpTurn({ audio: wavFile(app.recorded) });
  } else {
    connection?.send({ type: "input_audio.commit" });
    setState("thinking");
  }
}

// --- typed turns and the HTTP fallback ---------------------------------------------------

function sendText(text) {
  if (!text.trim()) return;
  if (text.length > config.limits.max_text_chars) {
    showError("too_large");
    return;
  }
  bargeIn("text");
  if (app.transport === "websocket" && connection?.open) {
    transcript.pendingTexts.push(text);
    connection.send({ type: "text", text });
    setState("thinking");
  } else if (app.transport === "http" || !connection) {
    httpTurn({ text });
  } else {
    notice("Not connected yet — wait a moment and send again.", "warning");
  }
}

async function httpTurn({ text, audio }) {
  const form = new FormData();
  if (text !== undefined) form.append("text", text);
  else form.append("audio", new Blob([audio], { type: "audio/wav" }), "speech.wav");
  if (app.sessionId !== null) form.append("session_id", String(app.sessionId));
  const { voice, speed, input_language, output_language } = app.prefs;
  for (const [key, value] of Object.entries({ voice, speed, input_language, output_language })) {
    if (value !== "" && value != null) form.append(key, String(value));
  }
  form.append("output_format", "pcm16");
  setState("thinking");
  let response;
  let body;
  try {
    response = await fetch(config.urls.turns, {
      method: "POST",
      headers: { Authorization: `Bearer ${await accessToken()}` },
      body: form,
    });
    body = await response.json();
  } catch {
    showError("internal", "", {});
    notice("The server could not be reached. Check your connection and try again.", "error");
    settle();
    return;
  }
  if (!response.ok) {
    showError(body.code, body.message, body);
    if (body.turn_id) transcript.failed(body.turn_id, app.lastError);
    settle();
    return;
  }
  app.stats.httpTurns += 1;
  app.sessionId = body.session_id;
  const id = body.turn_id;
  transcript.turn(id);
  transcript.userText(id, body.transcription, true);
  transcript.replyDone(id, body.response_text, body.sources);
  transcript.done(id, "completed", body.timings);
  for (const warning of body.warnings || []) onServerError({ ...warning, turn_id: id, fatal: false });
  if (body.audio_base64) {
    ensureAudio();
    app.replyTurn = null;
    playback.begin(id, body.sample_rate);
    playback.push(Uint8Array.from(atob(body.audio_base64), (c) => c.charCodeAt(0)).buffer);
    playback.end(id);
    if (playback.playing()) setState("assistant-speaking");
    else settle();
  } else {
    settle();
  }
}

// --- settings ---------------------------------------------------------------------------

function fillSettings() {
  const { options } = config;
  const voice = $("set-voice");
  voice.replaceChildren(
    new Option("Server default", ""),
    ...options.voices.map((name) => new Option(name, name)),
  );
  for (const id of ["set-input-language", "set-output-language"]) {
    $(id).replaceChildren(...options.languages.map((code) => new Option(code, code)));
  }
  const mode = $("set-mode");
  mode.replaceChildren(
    ...options.modes.map((m) => {
      const option = new Option(m.available ? m.label : `${m.label} (${m.reason})`, m.value);
      option.disabled = !m.available;
      return option;
    }),
  );
  const speed = $("set-speed");
  Object.assign(speed, { min: options.speed.min, max: options.speed.max, step: options.speed.step });
  showSettings();
}

function showSettings() {
  const p = app.prefs;
  $("set-voice").value = p.voice || "";
  $("set-speed").value = String(p.speed);
  $("speed-value").textContent = `${Number(p.speed).toFixed(1)}×`;
  $("set-input-language").value = p.input_language;
  $("set-output-language").value = p.output_language;
  $("set-mode").value = p.mode;
  for (const radio of document.querySelectorAll("input[name=vad]")) radio.checked = radio.value === p.vad;
}

async function saveSettings(changes) {
  const before = { ...app.prefs };
  Object.assign(app.prefs, changes);
  showSettings();
  updateControls();
  $("settings-status").textContent = "Saving…";
  try {
    const response = await fetch(config.urls.preferences, {
      method: "PUT",
      headers: { Authorization: `Bearer ${await accessToken()}`, "Content-Type": "application/json" },
      body: JSON.stringify(changes),
    });
    const body = await response.json();
    if (!response.ok) throw new Error(body.message || "not saved");
    for (const key of Object.keys(before)) if (key in body) app.prefs[key] = body[key];
    $("settings-status").textContent = "Saved for your account.";
  } catch (err) {
    app.prefs = before;
    showSettings();
    $("settings-status").textContent = `Not saved: ${err.message}`;
  }
  if (connection?.open) {
    const update = { ...changes };
    if (app.micAvailable === false) delete update.vad;
    connection.send({ type: "session.update", config: update });
  }
  updateControls();
  if (["listening", "user-speaking"].includes(app.state)) setState(app.state);
}

// --- wiring -----------------------------------------------------------------------------

function isTyping(target) {
  return target instanceof HTMLElement && target.closest("input, textarea, select, dialog");
}

function wire() {
  $("start").addEventListener("click", () => (callActive() ? endConversation() : startConversation()));
  const talk = $("talk");
  talk.addEventListener("pointerdown", (event) => {
    talk.setPointerCapture?.(event.pointerId);
    talkDown();
  });
  talk.addEventListener("pointerup", talkUp);
  talk.addEventListener("pointercancel", talkUp);
  talk.addEventListener("keydown", (event) => {
    if ((event.key === "Enter" || event.key === " ") && !event.repeat) {
      event.preventDefault();
      talkDown();
    }
  });
  talk.addEventListener("keyup", (event) => {
    if (event.key === "Enter" || event.key === " ") talkUp();
  });
  document.addEventListener("keydown", (event) => {
    if (event.key === "Escape" && !isTyping(event.target)) bargeIn("escape");
    if (event.code === "Space" && !event.repeat && pushToTalk() && !isTyping(event.target) && event.target !== talk) {
      if (event.target instanceof HTMLButtonElement) return; // Space presses that button
      event.preventDefault();
      talkDown();
    }
  });
  document.addEventListener("keyup", (event) => {
    if (event.code === "Space" && event.target !== talk) talkUp();
  });
  $("text-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const input = $("text-input");
    sendText(input.value);
    input.value = "";
  });
  $("settings-button").addEventListener("click", () => $("settings").showModal());
  $("settings-close").addEventListener("click", () => $("settings").close());
  $("set-voice").addEventListener("change", (e) => saveSettings({ voice: e.target.value }));
  $("set-speed").addEventListener("input", (e) => {
    $("speed-value").textContent = `${Number(e.target.value).toFixed(1)}×`;
  });
  $("set-speed").addEventListener("change", (e) => saveSettings({ speed: Number(e.target.value) }));
  $("set-input-language").addEventListener("change", (e) => saveSettings({ input_language: e.target.value }));
  $("set-output-language").addEventListener("change", (e) => saveSettings({ output_language: e.target.value }));
  $("set-mode").addEventListener("change", (e) => saveSettings({ mode: e.target.value }));
  for (const radio of document.querySelectorAll("input[name=vad]")) {
    radio.addEventListener("change", (e) => e.target.checked && saveSettings({ vad: e.target.value }));
  }
  $("new-conversation").addEventListener("click", () => {
    if (connection?.open) connection.send({ type: "session.reset" });
    else {
      app.sessionId = null;
      connection?.forgetSession();
      transcript.clear();
    }
  });
}

fillSettings();
wire();
setState("idle");
updateControls();
