// Liap Tui browser client. No framework and no build step. Every piece of text
// that comes from the server or another player is set with textContent, never
// parsed as HTML.
"use strict";

const GLYPHS = {
  GENERAL: ["帥", "將"], ADVISOR: ["仕", "士"], ELEPHANT: ["相", "象"], CHARIOT: ["俥", "車"],
  HORSE: ["傌", "馬"], CANNON: ["炮", "砲"], SOLDIER: ["兵", "卒"],
};
const POINTS = {
  GENERAL_RED: 14, GENERAL_BLACK: 13, ADVISOR_RED: 12, ADVISOR_BLACK: 11, ELEPHANT_RED: 10, ELEPHANT_BLACK: 9,
  CHARIOT_RED: 8, CHARIOT_BLACK: 7, HORSE_RED: 6, HORSE_BLACK: 5, CANNON_RED: 4, CANNON_BLACK: 3, SOLDIER_RED: 2, SOLDIER_BLACK: 1,
};
const SESSION_KEY = "liaptui.session";
// The protocol version this page speaks (docs/PROTOCOL.md, "Versions").
const PROTOCOL = 2;
const $ = (id) => document.getElementById(id);

let lobbySocket = null;
// A join_room to resend once the lobby reconnects to the room's own instance.
let pendingJoin = null;
let roomSocket = null;
let reconnectTimer = null;
let reconnectAttempts = 0;
let roomState = null;
let gameState = null;
let selected = new Set();
let shutdownNotice = null;
let showingResult = false;  // the game-over panel stays until the player goes back to the room
// Protocol 2 sends the scored rounds in full states and then one by one in round_complete.
let roundResults = [];
// The turn timer: when the current move's time runs out, on this page's clock.
let turnEndsAt = null;
let turnTimerInterval = null;

function wsURL(path) {
  return (location.protocol === "https:" ? "wss://" : "ws://") + location.host + path + "?protocol=" + PROTOCOL;
}

function send(socket, event, data) {
  if (socket && socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify({ event, data: data || {} }));
}

function el(tag, text, className) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = String(text);
  if (className) node.className = className;
  return node;
}

function show(view) {
  for (const id of ["lobby-view", "room-view", "game-view"]) $(id).hidden = id !== view;
}

function setStatus(text, online) {
  $("connection-status").textContent = text;
  $("connection-status").classList.toggle("online", !!online);
}

let toastTimer = null;
function toast(text) {
  $("toast").textContent = text;
  $("toast").hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => { $("toast").hidden = true; }, 4000);
}

function banner(text) {
  $("banner").textContent = text || "";
  $("banner").hidden = !text;
}

function loadSession() {
  try { return JSON.parse(localStorage.getItem(SESSION_KEY)); } catch (e) { return null; }
}
function saveSession(session) { localStorage.setItem(SESSION_KEY, JSON.stringify(session)); }
function clearSession() { localStorage.removeItem(SESSION_KEY); }

// ---------- Lobby ----------

function connectLobby() {
  show("lobby-view");
  if (lobbySocket) return;
  const socket = new WebSocket(wsURL("/ws/lobby"));
  lobbySocket = socket;
  socket.onopen = () => {
    setStatus("online", true);
    send(socket, "request_room_list");
    if (pendingJoin) { send(socket, "join_room", pendingJoin); pendingJoin = null; }
  };
  socket.onmessage = (msg) => onLobbyMessage(JSON.parse(msg.data));
  socket.onclose = () => {
    if (lobbySocket !== socket) return;
    lobbySocket = null;
    setStatus("offline — retrying");
    if (!loadSession()) setTimeout(connectLobby, 2000);
  };
}

function onLobbyMessage({ event, data }) {
  switch (event) {
    case "room_list_update": renderRoomList(data.rooms || []); break;
    case "room_created":
    case "room_joined":
      saveSession({ room_id: data.room_id, token: data.token, name: data.player_name, player_id: data.player_id });
      const socket = lobbySocket;
      lobbySocket = null;
      socket.close();
      connectRoom();
      break;
    case "server_shutdown":
      // A drain that hands the games to another server names it: go there when reconnecting.
      if (data.instance_id) stickTo(data.instance_id);
      banner(data.message);
      break;
    case "error":
      if (data.code === "room_on_other_instance" && data.instance_id && pendingJoin === null && lastJoin) {
        // The room lives on another server: go there (the load balancer follows the cookie) and ask again.
        stickTo(data.instance_id);
        pendingJoin = lastJoin;
        lastJoin = null;  // follow one redirect per click, never a loop
        const old = lobbySocket;
        lobbySocket = null;
        if (old) old.close();
        connectLobby();
        break;
      }
      toast(data.message);
      break;
  }
}

let lastJoin = null;

/** The load balancer's stickiness cookie, set as the game server would. */
function stickTo(instanceID) {
  document.cookie = "LIAPTUI_INSTANCE=" + encodeURIComponent(instanceID) + "; Path=/; SameSite=Lax";
}

function renderRoomList(rooms) {
  const body = $("room-list").querySelector("tbody");
  body.replaceChildren();
  $("no-rooms").hidden = rooms.length > 0;
  for (const room of rooms) {
    const row = el("tr");
    row.append(el("td", room.host_name || "—"));
    const names = room.players.map((p) => (p ? p.name + (p.is_bot ? " (bot)" : "") : "empty"));
    row.append(el("td", names.join(", ")));
    const cell = el("td");
    const join = el("button", "Join");
    join.className = "join-room";
    join.dataset.room = room.room_id;
    join.onclick = () => {
      const name = $("player-name").value.trim();
      if (!name) { toast("Enter your name first."); $("player-name").focus(); return; }
      lastJoin = { room_id: room.room_id, player_name: name };
      send(lobbySocket, "join_room", lastJoin);
    };
    cell.append(join);
    row.append(cell);
    body.append(row);
  }
}

$("name-form").addEventListener("submit", (e) => {
  e.preventDefault();
  send(lobbySocket, "create_room", { player_name: $("player-name").value.trim() });
});

// ---------- Room ----------

function connectRoom() {
  const session = loadSession();
  if (!session) { connectLobby(); return; }
  clearTimeout(reconnectTimer);
  const socket = new WebSocket(wsURL("/ws/" + encodeURIComponent(session.room_id)));
  roomSocket = socket;
  socket.onopen = () => {
    reconnectAttempts = 0;
    setStatus("online", true);
    send(socket, "client_ready", { token: session.token });
  };
  socket.onmessage = (msg) => onRoomMessage(JSON.parse(msg.data));
  socket.onclose = () => {
    if (roomSocket !== socket) return;
    roomSocket = null;
    if (!loadSession()) return;
    // Dropped or restarting: come back with the same token; the seat is kept for us.
    const delay = shutdownNotice ? shutdownNotice * 1000 : Math.min(10000, 500 * 2 ** reconnectAttempts);
    shutdownNotice = null;
    reconnectAttempts++;
    setStatus("reconnecting…");
    reconnectTimer = setTimeout(connectRoom, delay);
  };
}

function leaveToLobby(message) {
  clearSession();
  const socket = roomSocket;
  roomSocket = null;
  if (socket) socket.close();
  roomState = null;
  gameState = null;
  roundResults = [];
  startTurnTimer(null);
  if (message) toast(message);
  connectLobby();
}

function onRoomMessage({ event, data }) {
  switch (event) {
    case "room_update":
      roomState = data;
      banner(null);
      if (!data.started && !showingResult) { gameState = null; renderRoom(); }
      break;
    case "phase_change":
      gameState = data;
      if (data.round_results) roundResults = data.round_results;
      banner(null);
      startTurnTimer(data);
      renderGame();
      break;
    case "game_started":
      showingResult = false;
      roundResults = [];
      $("game-over").hidden = true;
      $("last-turn").textContent = "";
      break;
    case "turn_complete": {
      const plays = data.all_plays.map((p) => `${p.player}: ${p.pieces.length} piece${p.pieces.length > 1 ? "s" : ""}${p.valid ? "" : " (invalid)"}`);
      $("last-turn").textContent = `Turn ${data.turn_number}: ${data.winner} wins ${data.piles_won} pile${data.piles_won > 1 ? "s" : ""} — ${plays.join("; ")}`;
      break;
    }
    case "round_complete":
      if (!roundResults.some((r) => r.round === data.round)) roundResults = roundResults.concat([data]);
      if (gameState) renderRoundResults(gameState);
      toast(`Round ${data.round} scored.`);
      break;
    case "turn_timeout":
      if (data.player_id === mySeatID()) {
        $("away-notice").hidden = false;
      } else {
        toast(`${data.player} ran out of time; a bot moved for them.`);
      }
      break;
    case "game_ended":
      showingResult = true;
      startTurnTimer(null);
      $("away-notice").hidden = true;
      $("game-over").hidden = false;
      $("game-over-title").textContent = data.message;
      $("game-over-scores").textContent = Object.entries(data.final_scores).map(([n, s]) => `${n}: ${s}`).join(" · ");
      break;
    case "player_disconnected": toast(`${data.player} dropped; their seat is kept for ${data.grace_seconds} s.`); break;
    case "player_reconnected": toast(`${data.player} is back.`); break;
    case "player_replaced_by_bot": toast(`A bot now plays for ${data.player}.`); break;
    case "player_left": toast(`${data.player_name} left.`); break;
    case "host_changed": toast(`${data.new_host} is now the host.`); break;
    case "room_closed": leaveToLobby(data.message); break;
    case "removed_from_room": leaveToLobby("The host removed you from the room."); break;
    case "left_room": leaveToLobby(); break;
    case "session_replaced": clearTimeout(reconnectTimer); roomSocket = null; banner(data.message); break;
    case "server_shutdown":
      if (data.instance_id) stickTo(data.instance_id);
      shutdownNotice = Math.max(0, Math.min(60, data.reconnect_delay ?? 5));
      banner(data.message);
      break;
    case "error":
      if (data.code === "invalid_token" || data.code === "room_not_found") { leaveToLobby("That room is gone."); break; }
      if (data.code === "room_on_other_instance" && data.instance_id) {
        // Our game is on another server, or is being taken over after its server died:
        // follow the cookie and try again (the socket's close handler reconnects with backoff).
        stickTo(data.instance_id);
        banner("Reconnecting to your game…");
        if (roomSocket) roomSocket.close();
        break;
      }
      toast(data.message);
      break;
  }
}

/** This player's ID: from the session, or (a session saved before IDs) the seat with our name. */
function mySeatID() {
  const session = loadSession();
  if (session && session.player_id) return session.player_id;
  if (gameState) return gameState.my_player_id;
  const seat = roomState && session && roomState.players.find((p) => p && p.name === session.name);
  return seat ? seat.player_id : null;
}

function renderRoom() {
  show("room-view");
  $("room-id").textContent = roomState.room_id;
  const me = roomState.players.find((p) => p && p.player_id === mySeatID());
  const isHost = !!(me && me.is_host);
  const list = $("seats");
  list.replaceChildren();
  roomState.players.forEach((player, i) => {
    const slot = i + 1;
    const item = el("li", null, "seat");
    item.dataset.slot = slot;
    if (player) {
      item.dataset.playerId = player.player_id;
      item.append(el("div", player.name, "who"));
      const tags = [player.is_host ? "host" : null, player.stand_in ? "bot stands in" : player.is_bot ? "bot" : null,
        player.is_connected ? null : "disconnected"].filter(Boolean);
      item.append(el("div", tags.join(" · "), "tags"));
      if (isHost && !player.is_host) {
        const remove = el("button", "Remove", "secondary remove-player");
        remove.onclick = () => send(roomSocket, "remove_player", { slot_id: slot });
        item.append(remove);
      }
    } else {
      item.append(el("div", "Empty seat", "who muted"));
      if (isHost) {
        const add = el("button", "Add bot", "add-bot");
        add.onclick = () => send(roomSocket, "add_bot", { slot_id: slot });
        item.append(add);
      }
    }
    list.append(item);
  });
  $("start-game").hidden = !isHost;
  $("start-game").disabled = roomState.players.some((p) => !p);
}

$("start-game").onclick = () => send(roomSocket, "start_game");
$("leave-room").onclick = () => send(roomSocket, "leave_room");
$("leave-game").onclick = () => { if (confirm("Leave the game? A bot will play your seat.")) send(roomSocket, "leave_room"); };
$("back-to-room").onclick = () => {
  showingResult = false;
  gameState = null;
  $("game-over").hidden = true;
  if (roomState) renderRoom();
};

// ---------- Game ----------

function pieceButton(kind, index) {
  const [name, color] = kind.split("_");
  const button = el("button", null, "piece " + color.toLowerCase());
  button.type = "button";
  button.dataset.kind = kind;
  button.dataset.index = index;
  button.title = `${name} ${color} (${POINTS[kind]} points)`;
  button.append(el("span", (GLYPHS[name] || ["?", "?"])[color === "RED" ? 0 : 1], "glyph"));
  button.append(el("span", `${name.slice(0, 3)} ${POINTS[kind]}`, "pts"));
  return button;
}

function renderGame() {
  const g = gameState;
  if (!g) return;
  show("game-view");
  document.body.dataset.sequence = g.sequence;  // lets automated clients wait for their move to land
  const data = g.phase_data || {};
  $("round-number").textContent = g.round;
  $("phase-name").textContent = g.phase;
  $("multiplier").textContent = "×" + (data.redeal_multiplier || 1);
  $("turn-indicator").textContent = g.current_player_id ? (g.current_player_id === g.my_player_id ? "Your move" : `Waiting for ${g.current_player}`) : "";
  const me = Object.values(g.players).find((p) => p.player_id === g.my_player_id);
  $("away-notice").hidden = !(me && me.stand_in && me.is_connected);

  const body = $("players").querySelector("tbody");
  body.replaceChildren();
  const names = Object.values(g.players).sort((a, b) => a.slot - b.slot);
  for (const p of names) {
    const row = el("tr");
    row.dataset.playerId = p.player_id;
    if (p.player_id === g.current_player_id) row.classList.add("current");
    if (p.player_id === g.my_player_id) row.classList.add("me");
    const who = p.stand_in ? " (bot stands in)" : p.is_bot ? " (bot)" : "";
    row.append(el("td", p.name + who + (p.is_connected ? "" : " (disconnected)")));
    row.append(el("td", p.declared === null ? "—" : p.declared));
    row.append(el("td", p.captured_piles));
    row.append(el("td", p.score));
    row.append(el("td", p.hand_size));
    body.append(row);
  }

  const plays = $("current-plays");
  plays.replaceChildren();
  for (const play of data.current_plays || []) {
    const item = el("li");
    item.append(el("strong", play.player + ": "));
    item.append(el("span", play.pieces.join(", ") + (play.type ? ` (${play.type}, ${play.value})` : " (not a valid set)")));
    plays.append(item);
  }

  // Selection survives a refresh only while the hand is unchanged.
  const handKey = g.hand.join(",");
  if (renderGame.handKey !== handKey) selected = new Set();
  renderGame.handKey = handKey;
  const hand = $("hand");
  hand.replaceChildren();
  g.hand.forEach((kind, index) => {
    const button = pieceButton(kind, index);
    if (selected.has(index)) button.classList.add("selected");
    button.onclick = () => {
      if (!g.allowed_actions.includes("play")) return;
      if (selected.has(index)) selected.delete(index); else selected.add(index);
      button.classList.toggle("selected");
      updatePlayButton();
    };
    hand.append(button);
  });

  const allowed = g.allowed_actions || [];
  $("redeal-prompt").hidden = !allowed.includes("accept_redeal");
  $("declare-prompt").hidden = !allowed.includes("declare");
  $("play-prompt").hidden = !allowed.includes("play");
  if (allowed.includes("declare")) {
    const options = $("declare-options");
    options.replaceChildren();
    for (let v = 0; v <= 8; v++) {
      const button = el("button", v);
      button.dataset.value = v;
      button.disabled = !(data.legal_declarations || []).includes(v);
      button.onclick = () => send(roomSocket, "declare", { value: v });
      options.append(button);
    }
  }
  if (allowed.includes("play")) {
    $("play-hint").textContent = data.required_piece_count
      ? `Play exactly ${data.required_piece_count} piece${data.required_piece_count > 1 ? "s" : ""}.`
      : "You start this turn: play a valid set of 1 to 6 pieces.";
    updatePlayButton();
  }
  $("waiting").textContent = allowed.length === 0 && g.phase !== "game_over" && g.current_player ? `Waiting for ${g.current_player}…` : "";
  renderRoundResults(g);
}

function updatePlayButton() {
  const need = gameState && gameState.phase_data && gameState.phase_data.required_piece_count;
  $("play-selected").disabled = selected.size === 0 || (need && selected.size !== need);
}

$("play-selected").onclick = () => {
  send(roomSocket, "play", { indices: [...selected].sort((a, b) => a - b) });
  selected = new Set();
};
$("accept-redeal").onclick = () => send(roomSocket, "accept_redeal");
$("resume").onclick = () => { $("away-notice").hidden = true; send(roomSocket, "resume"); };

/** Counts down the current move's time from `turn_remaining_ms` (immune to a skewed clock). */
function startTurnTimer(g) {
  turnEndsAt = g && g.turn_remaining_ms !== null && g.turn_remaining_ms !== undefined ? Date.now() + g.turn_remaining_ms : null;
  clearInterval(turnTimerInterval);
  turnTimerInterval = turnEndsAt === null ? null : setInterval(renderTurnTimer, 250);
  renderTurnTimer();
}

function renderTurnTimer() {
  const timer = $("turn-timer");
  if (turnEndsAt === null || !gameState) { timer.textContent = ""; timer.hidden = true; return; }
  const seconds = Math.max(0, Math.ceil((turnEndsAt - Date.now()) / 1000));
  const mine = gameState.current_player_id === gameState.my_player_id;
  timer.hidden = false;
  timer.dataset.seconds = seconds;
  timer.textContent = mine ? `${seconds} s left for your move` : `${gameState.current_player}: ${seconds} s`;
  timer.classList.toggle("urgent", mine && seconds <= 10);
}
$("decline-redeal").onclick = () => send(roomSocket, "decline_redeal");

function renderRoundResults(g) {
  // Round results are keyed by name; a name is unique within a room.
  const players = Object.values(g.players).sort((a, b) => a.slot - b.slot).map((p) => p.name);
  const head = $("round-results").querySelector("thead");
  head.replaceChildren();
  const headRow = el("tr");
  headRow.append(el("th", "Round"));
  for (const name of players) headRow.append(el("th", name));
  head.append(headRow);
  const body = $("round-results").querySelector("tbody");
  body.replaceChildren();
  for (const r of roundResults) {
    const row = el("tr");
    row.append(el("td", r.round + (r.redeal_multiplier > 1 ? ` (×${r.redeal_multiplier})` : "")));
    for (const name of players) {
      const delta = r.deltas[name];
      row.append(el("td", `${delta > 0 ? "+" : ""}${delta} (${r.declarations[name]}/${r.captured[name]}) = ${r.scores[name]}`));
    }
    body.append(row);
  }
}

// ---------- Start ----------

if (loadSession()) connectRoom(); else connectLobby();
