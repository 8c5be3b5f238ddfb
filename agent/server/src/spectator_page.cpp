// The spectator page (GET /): plain HTML and JavaScript, no external resources.
// It connects to /v1/ws, subscribes to "events", and shows every session the
// key may read (character, turns as they stream, events) plus memory and cache
// statistics from GET /metrics, polled every 2 s. A key is taken from the
// page's own "?key=" parameter.
#include "agent/server/server.h"

namespace mnemos::agent {

const std::string& spectator_page() {
    static const std::string page = R"MNEMOS_PAGE(<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>mnemos spectator</title>
<style>
body { font-family: system-ui, sans-serif; margin: 1em; background: #fafafa; color: #222; }
h1 { font-size: 1.3em; margin: 0 0 .4em 0; }
h2 { font-size: 1.05em; margin: 1em 0 .3em 0; }
table { border-collapse: collapse; width: 100%; }
th, td { border: 1px solid #ccc; padding: 4px 6px; vertical-align: top; text-align: left; }
th { background: #eee; }
.turn { margin: 2px 0; white-space: pre-wrap; }
.turn .role { font-weight: bold; margin-right: .4em; }
.turn.live { background: #fff7d6; }
.ev { font-family: monospace; font-size: .85em; white-space: pre-wrap; }
#status { font-size: .9em; color: #666; }
#metrics td:nth-child(2) { text-align: right; font-family: monospace; }
#game .step { margin: 3px 0; white-space: pre-wrap; }
#game .step .who { font-weight: bold; margin-right: .4em; }
#game .narration { font-style: italic; color: #444; }
#game .clue { background: #e8f4ff; border-left: 4px solid #3a7bd5; padding: 2px 6px; }
#game .probe { color: #555; font-size: .9em; }
#game .probe .pass { color: #0a7d24; font-weight: bold; }
#game .probe .fail { color: #b00020; font-weight: bold; }
#game .tool { font-family: monospace; font-size: .85em; color: #6a3d9a; margin-left: 1.5em; }
#game .phase { font-weight: bold; margin-top: .6em; border-bottom: 1px solid #ccc; }
</style>
</head>
<body>
<h1>mnemos spectator</h1>
<div id="status">connecting...</div>
<h2>Characters</h2>
<table id="sessions">
<thead><tr><th>session</th><th>character</th><th>turns</th><th>conversation</th></tr></thead>
<tbody></tbody>
</table>
<h2>Table</h2>
<div id="game"></div>
<h2>Events</h2>
<div id="events"></div>
<h2>Memory</h2>
<table id="metrics"><tbody></tbody></table>
<script>
"use strict";
const key = new URLSearchParams(location.search).get("key") || "";
const rows = new Map();  // session id -> {tr, character, n, turns, count, live, loaded, pending}
const auth = key ? {Authorization: "Bearer " + key} : {};
const statusEl = document.getElementById("status");

function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
}

function session(id, character) {
  let r = rows.get(id);
  if (!r) {
    const tr = el("tr");
    tr.dataset.session = id;
    const idCell = el("td", "sid", id), chCell = el("td", "character", character || ""), nCell = el("td", "n", "0");
    const turns = el("td", "turns");
    tr.append(idCell, chCell, nCell, turns);
    document.querySelector("#sessions tbody").append(tr);
    r = {tr: tr, character: chCell, n: nCell, turns: turns, count: 0, live: null, loaded: true, pending: []};
    rows.set(id, r);
    if (!character)
      fetch("/v1/sessions/" + encodeURIComponent(id), {headers: auth}).then((res) => res.json()).then((j) => {
        if (j.character && j.character.name) r.character.textContent = j.character.name;
      }).catch(() => {});
  }
  if (character) r.character.textContent = character;
  return r;
}

function addTurn(r, role, text, live) {
  const d = el("div", "turn" + (live ? " live" : ""));
  d.append(el("span", "role", role + ":"), el("span", "text", text));
  r.turns.append(d);
  if (role === "assistant") { r.count++; r.n.textContent = String(r.count); }
  return d;
}

// The session's event log so far (a page opened mid-game shows the history);
// live frames that arrive meanwhile wait in r.pending.
function loadHistory(id) {
  const r = session(id);
  r.loaded = false;
  fetch("/v1/sessions/" + encodeURIComponent(id) + "/events", {headers: auth}).then((res) => res.json()).then((j) => {
    const evs = j.data || [];
    r.turns.textContent = "";
    r.count = 0;
    r.live = null;
    evs.forEach((ev, seq) => applyEvent(r, {session_id: id, seq: seq, event: ev}));
    let from = 0;
    r.pending.forEach((f, i) => { if (f.type === "event" && f.seq < evs.length) from = i + 1; });
    const rest = r.pending.slice(from);
    r.pending = [];
    r.loaded = true;
    for (const f of rest) dispatch(f);
  }).catch(() => {
    const rest = r.pending;
    r.pending = [];
    r.loaded = true;
    for (const f of rest) dispatch(f);
  });
}

function dispatch(m) {
  const r = session(m.session_id);
  if (!r.loaded) { r.pending.push(m); return; }
  if (m.type === "token") onToken(r, m);
  else applyEvent(r, m);
}

function onToken(r, m) {
  if (!r.live) r.live = addTurn(r, "assistant", "", true);
  r.live.querySelector(".text").textContent += m.text;
}

function applyEvent(r, m) {
  const ev = m.event || {};
  if (ev.type === "message") {
    if (ev.role === "assistant" && r.live) {
      r.live.querySelector(".text").textContent = ev.content;
      r.live.className = "turn";
      r.live = null;
    } else {
      addTurn(r, ev.role || "?", ev.content || "", false);
    }
    return;
  }
  if (ev.type === "step") { gameStep(r, m); return; }
  const line = el("div", "ev", m.session_id + " #" + m.seq + " " + JSON.stringify(ev));
  document.getElementById("events").append(line);
  r.turns.append(el("div", "ev", "[" + (ev.type || "event") + "] " + JSON.stringify(ev)));
}

// A game played by `mnemos play --serve`: its log (session "<scenario>.game") holds one
// "step" event per narration, clue, line, turn and probe; character ids name the
// sessions "<scenario>.<id>".
const lastPhase = new Map();  // game session id -> phase id of its last step
function displayName(gameId, who) {
  if (!who) return "Narrator";
  if (who === "all") return "everyone";
  const r = rows.get(gameId.replace(/\.game$/, "") + "." + who);
  return (r && r.character.textContent) || who;
}
function gameStep(r, m) {
  const ev = m.event, gid = m.session_id;
  r.count++;
  r.n.textContent = String(r.count) + " steps";
  if (!r.character.textContent) r.character.textContent = "(game log)";
  const game = document.getElementById("game");
  if (lastPhase.get(gid) !== ev.phase) {
    lastPhase.set(gid, ev.phase);
    game.append(el("div", "phase", "Phase: " + ev.phase));
  }
  const d = el("div", "step " + ev.kind);
  d.dataset.kind = ev.kind;
  d.dataset.idx = String(ev.idx);
  const who = displayName(gid, ev.speaker);
  if (ev.kind === "narration") {
    d.append(el("span", "text", ev.text || ""));
  } else if (ev.kind === "clue") {
    d.append(el("span", "who", "Clue revealed:"), el("span", "text", (ev.text || "").replace(/^Clue: /, "")));
  } else if (ev.kind === "probe") {
    d.append(el("span", "who", "Probe " + ev.probe + " to " + who + ":"), el("span", "text", ev.text || ""), el("span", ev.passed ? "pass" : "fail", ev.passed ? " PASS" : " FAIL"));
  } else {
    d.append(el("span", "who", who + " \u2192 " + displayName(gid, ev.to) + ":"), el("span", "text", ev.text || ""));
  }
  for (const rd of ev.rounds || [])
    for (const c of rd.calls || [])
      d.append(el("div", "tool", "\u2699 " + c.name + " " + JSON.stringify(c.arguments) + " \u2192 " + JSON.stringify(c.result !== undefined ? c.result : {error: c.error})));
  game.append(d);
  r.turns.append(el("div", "turn", who + ": " + (ev.text || "")));
}

function connect() {
  const url = (location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/v1/ws" +
              (key ? "?key=" + encodeURIComponent(key) : "");
  const ws = new WebSocket(url);
  ws.onopen = () => { statusEl.textContent = "connected"; ws.send(JSON.stringify({type: "subscribe", topic: "events"})); };
  ws.onclose = () => { statusEl.textContent = "disconnected; retrying"; setTimeout(connect, 2000); };
  ws.onmessage = (e) => {
    let m;
    try { m = JSON.parse(e.data); } catch (x) { return; }
    if (m.type === "subscribed") {
      for (const s of m.sessions || []) { session(s.id, s.character); loadHistory(s.id); }
      statusEl.textContent = "subscribed";
    } else if (m.type === "token" || m.type === "event") dispatch(m);
    else if (m.type === "error") statusEl.textContent = "error: " + m.message;
  };
}

const shown = {
  mnemos_sessions_resident: "sessions in memory",
  mnemos_turns_total: "turns",
  mnemos_active_turns: "turns in progress",
  mnemos_tokens_generated_total: "tokens generated",
  mnemos_prompt_tokens_total: "prompt tokens",
  mnemos_prefix_cache_hit_tokens_total: "prompt tokens reused (prefix cache)",
  mnemos_kv_pages_total: "KV pages",
  mnemos_kv_pages_resident: "KV pages in use",
  mnemos_kv_pages_cached: "KV pages cached",
  mnemos_kv_hits_resident_tokens_total: "KV hits (resident)",
  mnemos_kv_hits_store_tokens_total: "KV hits (block store)",
  mnemos_kv_miss_tokens_total: "KV misses",
  mnemos_kv_evictions_total: "KV evictions",
};

async function pollMetrics() {
  try {
    const res = await fetch("/metrics", {headers: key ? {Authorization: "Bearer " + key} : {}});
    const text = await res.text();
    const body = document.querySelector("#metrics tbody");
    body.textContent = "";
    for (const line of text.split("\n")) {
      if (!line || line[0] === "#") continue;
      const [name, value] = line.split(" ");
      if (!(name in shown)) continue;
      const tr = el("tr");
      tr.dataset.metric = name;
      tr.append(el("td", "", shown[name]), el("td", "", value));
      body.append(tr);
    }
  } catch (x) {}
}

connect();
pollMetrics();
setInterval(pollMetrics, 2000);
</script>
</body>
</html>
)MNEMOS_PAGE";
    return page;
}

}  // namespace mnemos::agent
