// The transcript panel: one entry per turn, the user's words and the assistant's reply as
// they stream, the knowledge-base sources of each answer, and the turn's latency.

const TIMING_LABELS = [
  ["first_audio_ms", "first audio"],
  ["stt_ms", "speech-to-text"],
  ["llm_first_token_ms", "first token"],
  ["tts_first_audio_ms", "first speech"],
  ["total_ms", "total"],
];

export function formatMs(ms) {
  if (ms === null || ms === undefined) return "–";
  return ms >= 1000 ? `${(ms / 1000).toFixed(1)} s` : `${Math.round(ms)} ms`;
}

/** "first audio 820 ms · total 2.4 s" for the detail line, and every figure for its title. */
export function timingSummary(timings) {
  if (!timings) return { line: "", title: "" };
  const parts = [];
  if (timings.first_audio_ms != null) parts.push(`answered in ${formatMs(timings.first_audio_ms)}`);
  if (timings.total_ms != null) parts.push(`total ${formatMs(timings.total_ms)}`);
  const title = TIMING_LABELS.filter(([key]) => timings[key] != null)
    .map(([key, label]) => `${label}: ${formatMs(timings[key])}`)
    .join("\n");
  return { line: parts.join(" · "), title };
}

function element(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

export class Transcript {
  constructor(list) {
    this.list = list;
    this.turns = new Map();
    this.pendingTexts = []; // typed turns sent, waiting for their turn.started
  }

  clear() {
    this.list.replaceChildren();
    this.turns.clear();
  }

  /** The entry of ``turnId``, created on first use. */
  turn(turnId) {
    let entry = this.turns.get(turnId);
    if (entry) return entry;
    const item = element("li", "turn");
    item.dataset.turnId = String(turnId);
    const user = element("p", "said user");
    user.append(element("span", "who", "You"), element("span", "words pending", "…"));
    const assistant = element("p", "said assistant");
    assistant.hidden = true;
    assistant.append(element("span", "who", "Assistant"), element("span", "words"));
    const sources = element("details", "sources");
    sources.hidden = true;
    const detail = element("p", "detail");
    item.append(user, assistant, sources, detail);
    this.list.append(item);
    entry = { item, user, assistant, sources, detail, reply: "" };
    this.turns.set(turnId, entry);
    const typed = this.pendingTexts.shift();
    if (typed !== undefined) this.userText(turnId, typed, true);
    this.#scroll();
    return entry;
  }

  userText(turnId, text, final) {
    const words = this.turn(turnId).user.querySelector(".words");
    words.textContent = text || (final ? "(nothing recognised)" : "…");
    words.classList.toggle("pending", !final);
  }

  replyDelta(turnId, text) {
    const entry = this.turn(turnId);
    entry.reply += text;
    this.#showReply(entry, entry.reply);
  }

  replyDone(turnId, text, sources) {
    const entry = this.turn(turnId);
    entry.reply = text;
    this.#showReply(entry, text);
    this.#showSources(entry, sources || []);
  }

  /** The reply was cut off: it is marked, and the words still arriving are greyed out. */
  interrupted(turnId) {
    const entry = this.turns.get(turnId);
    if (!entry) return;
    entry.item.classList.add("interrupted");
    entry.assistant.dataset.note = "interrupted";
  }

  /** What the user heard of a cut-off reply stays plain; the unheard rest is greyed. */
  heard(turnId, heardText) {
    const entry = this.turns.get(turnId);
    if (!entry || typeof heardText !== "string") return;
    this.interrupted(turnId);
    const words = entry.assistant.querySelector(".words");
    const heardWords = heardText.split(/\s+/).filter(Boolean);
    const fullWords = (entry.reply || words.textContent).split(/\s+/).filter(Boolean);
    const sameStart = heardWords.every((word, i) => fullWords[i] === word);
    const rest = sameStart ? fullWords.slice(heardWords.length).join(" ") : "";
    const unheard = element("span", "unheard", rest ? ` ${rest}` : "");
    unheard.title = "not heard: the reply was interrupted here";
    words.replaceChildren(document.createTextNode(heardWords.join(" ")), unheard);
    entry.heard = heardText;
  }

  done(turnId, status, timings, reason) {
    const entry = this.turn(turnId);
    entry.item.dataset.status = status;
    if (status === "cancelled" && reason !== "continued") this.interrupted(turnId);
    if (status === "cancelled" && reason === "continued") {
      // The user went on speaking: this turn's words move into the next one.
      entry.item.classList.add("folded");
    }
    const { line, title } = timingSummary(timings);
    const note = status === "failed" ? "no answer" : status === "cancelled" ? "interrupted" : "";
    const warned = entry.warning ? "without the knowledge base" : "";
    entry.detail.textContent = [note, warned, line].filter(Boolean).join(" · ");
    entry.detail.title = title;
  }

  /** A warning about the turn (e.g. answered without the knowledge base), kept with it. */
  warn(turnId, message) {
    const entry = this.turn(turnId);
    entry.item.classList.add("warned");
    entry.item.title = message;
    entry.warning = message;
  }

  failed(turnId, message) {
    const entry = this.turn(turnId);
    entry.item.classList.add("failed");
    entry.assistant.hidden = false;
    entry.assistant.querySelector(".words").textContent = message;
  }

  #showReply(entry, text) {
    entry.assistant.hidden = false;
    if (entry.heard !== undefined) {
      entry.reply = text;
      this.heard(Number(entry.item.dataset.turnId), entry.heard);
    } else {
      entry.assistant.querySelector(".words").textContent = text;
    }
    this.#scroll();
  }

  #showSources(entry, sources) {
    entry.sources.replaceChildren();
    if (sources.length === 0) {
      entry.sources.hidden = true;
      return;
    }
    entry.sources.hidden = false;
    entry.sources.append(element("summary", "", `Sources (${sources.length})`));
    const list = element("ol");
    for (const source of sources) {
      const item = element("li");
      const score = typeof source.score === "number" ? ` · match ${source.score.toFixed(2)}` : "";
      item.append(element("strong", "", source.title || `Document ${source.document_id}`));
      item.append(element("span", "score", score));
      item.append(element("blockquote", "", source.text || ""));
      list.append(item);
    }
    entry.sources.append(list);
  }

  #scroll() {
    const still = globalThis.matchMedia?.("(prefers-reduced-motion: reduce)").matches;
    this.list.lastElementChild?.scrollIntoView({ block: "end", behavior: still ? "auto" : "smooth" });
  }
}
