// The booking page: sign in, movies and shows, the live seat map, hold, pay, confirmation.
// "My tickets" lives in tickets.js.

import { call, claims, command, el, events, follow, newKey, setUpSignIn, signOut, when } from "./api.js";
import { showTickets } from "./tickets.js";

const MAX_SEATS = 10;
const $ = (id) => document.getElementById(id);

const page = {
  show: null, // the chosen show
  seats: new Map(), // seat_id -> state from the server
  selected: new Set(),
  stream: null, // AbortController of the seat map's event stream
  hold: null, // {hold_id, seat_ids, expires_at}
  countdown: null,
  // The key of a command whose answer never came: a retry of the same click reuses it.
  pendingKeys: new Map(),
};

function start() {
  setUpSignIn({ onSignedIn: signedIn });
  $("sign-out").addEventListener("click", () => {
    signOut();
    location.reload();
  });
  for (const button of document.querySelectorAll("#nav [data-view]")) {
    button.addEventListener("click", () => view(button.dataset.view));
  }
  $("hold").addEventListener("click", holdSeats);
  $("pay").addEventListener("submit", pay);
  $("release").addEventListener("click", release);
  $("seatmap").addEventListener("keydown", moveFocus);
  if (claims()) signedIn();
  else $("signin").hidden = false;
}

function signedIn() {
  const me = claims();
  if (!me) return;
  $("signin").hidden = true;
  $("nav").hidden = false;
  $("who").hidden = false;
  $("who-name").textContent = `Signed in as ${me.sub} (${me.role})`;
  $("ops-link").hidden = me.role !== "admin";
  if (me.role !== "customer") document.querySelector('[data-view="tickets"]').textContent = "Tickets";
  view("book");
  loadMovies();
}

function view(name) {
  for (const button of document.querySelectorAll("#nav [data-view]")) {
    if (button.dataset.view === name) button.setAttribute("aria-current", "page");
    else button.removeAttribute("aria-current");
  }
  $("book").hidden = name !== "book";
  $("tickets").hidden = name !== "tickets";
  if (name === "tickets") showTickets();
}

function failure(where, e) {
  const box = $("outcome");
  box.hidden = false;
  box.className = "card error";
  box.replaceChildren(el("h3", {}, where), el("p", {}, e.message));
  if (e.status === 401) box.append(el("p", {}, "Your token was refused: sign out and sign in again."));
}

async function loadMovies() {
  try {
    const movies = (await call("/v1/movies")).body;
    $("movies").replaceChildren(
      ...movies.map((m) =>
        el("li", {}, el("button", { type: "button", onclick: (e) => loadShows(m, e.currentTarget) },
          el("strong", {}, m.title), ` ${m.duration_min} min`)),
      ),
    );
    if (!movies.length) $("movies").append(el("li", {}, "No movies yet: an admin adds them with POST /v1/movies."));
  } catch (e) {
    failure("Cannot load the movies", e);
  }
}

function mark(list, button) {
  for (const b of list.querySelectorAll("button")) b.removeAttribute("aria-pressed");
  button.setAttribute("aria-pressed", "true");
}

async function loadShows(movie, button) {
  mark($("movies"), button);
  try {
    const shows = (await call(`/v1/movies/${encodeURIComponent(movie.movie_id)}/shows`)).body;
    $("shows-title").hidden = false;
    $("shows-title").textContent = `Shows of ${movie.title}`;
    $("shows").replaceChildren(
      ...shows.map((s) =>
        el("li", {}, el("button", { type: "button", "data-show": s.show_id, onclick: (e) => openShow(movie, s, e.currentTarget) },
          when(s.starts_at), ` · ${money(s.price_cents)}`)),
      ),
    );
  } catch (e) {
    failure("Cannot load the shows", e);
  }
}

function money(cents) {
  return (cents / 100).toFixed(2);
}

async function openShow(movie, show, button) {
  mark($("shows"), button);
  page.stream?.abort();
  page.show = show;
  page.selected.clear();
  page.seats.clear();
  $("show-panel").hidden = false;
  $("seatmap-title").textContent = `Seats: ${movie.title}, ${when(show.starts_at)}`;
  const { rows, seats_per_row } = show.auditorium;
  $("seatmap").style.setProperty("--cols", seats_per_row);
  const seats = [];
  for (let r = 0; r < rows; r++) {
    for (let n = 1; n <= seats_per_row; n++) {
      const id = String.fromCharCode(65 + r) + n;
      seats.push(el("button", {
        type: "button", class: "seat", "data-seat": id, "data-state": "available", tabindex: seats.length ? "-1" : "0",
        "aria-pressed": "false", onclick: () => toggle(id),
      }, id));
    }
  }
  $("seatmap").replaceChildren(...seats);
  try {
    const map = (await call(`/v1/shows/${encodeURIComponent(show.show_id)}/seats`)).body;
    applySeats(map.seats);
  } catch (e) {
    failure("Cannot load the seat map", e);
  }
  updateSelection();
  const stream = new AbortController();
  page.stream = stream;
  events(`/v1/shows/${encodeURIComponent(show.show_id)}/seats/events`, (name, data) => {
    if (data.show_id === page.show?.show_id) applySeats(data.seats);
  }, stream.signal, (state) => {
    $("live").textContent = state === "live" ? "Live: seats update as others hold them." : state === "reconnecting" ? "Reconnecting…" : "";
  });
}

/** Applies `[{seat_id, state}]` from the server; a selected seat someone else took is dropped. */
function applySeats(seats) {
  let lost = [];
  for (const { seat_id, state } of seats) {
    page.seats.set(seat_id, state);
    if (state !== "available" && page.selected.delete(seat_id)) lost.push(seat_id);
    render(seat_id);
  }
  if (lost.length) {
    updateSelection(`Seat ${lost.join(", ")} was just taken by someone else.`);
  }
}

function render(seatId) {
  const button = document.querySelector(`#seatmap [data-seat="${seatId}"]`);
  if (!button) return;
  const state = page.selected.has(seatId) ? "selected" : page.seats.get(seatId) || "available";
  button.dataset.state = state;
  button.setAttribute("aria-pressed", String(state === "selected"));
  button.setAttribute("aria-disabled", String(state === "held" || state === "booked"));
  button.setAttribute("aria-label", `Seat ${seatId}, ${state}`);
}

function toggle(seatId) {
  const state = page.seats.get(seatId) || "available";
  if (state !== "available") return;
  if (page.selected.has(seatId)) page.selected.delete(seatId);
  else if (page.selected.size >= MAX_SEATS) {
    updateSelection(`You can hold at most ${MAX_SEATS} seats at once.`);
    return;
  } else page.selected.add(seatId);
  render(seatId);
  updateSelection();
}

function updateSelection(note) {
  const n = page.selected.size;
  const list = [...page.selected].join(", ");
  $("selection").textContent = (n ? `${n} of ${MAX_SEATS} seats selected: ${list}.` : "No seats selected.") + (note ? ` ${note}` : "");
  $("hold").disabled = n === 0 || page.busy;
}

/** Arrow keys move the focus around the grid (one tab stop for the whole map). */
function moveFocus(event) {
  const steps = { ArrowLeft: [0, -1], ArrowRight: [0, 1], ArrowUp: [-1, 0], ArrowDown: [1, 0] };
  const step = steps[event.key];
  const current = event.target.closest("[data-seat]");
  if (!step || !current || !page.show) return;
  event.preventDefault();
  const cols = page.show.auditorium.seats_per_row;
  const all = [...$("seatmap").querySelectorAll("[data-seat]")];
  const i = all.indexOf(current);
  const row = Math.floor(i / cols) + step[0];
  const col = (i % cols) + step[1];
  if (row < 0 || col < 0 || col >= cols || row >= all.length / cols) return;
  const next = all[row * cols + col];
  current.tabIndex = -1;
  next.tabIndex = 0;
  next.focus();
}

/** Runs one command for `action`, reusing its key if the last try of the same action never got an answer. */
async function send(action, path, body) {
  const pending = page.pendingKeys.get(action);
  const sameRequest = pending && pending.body === JSON.stringify(body);
  const key = sameRequest ? pending.key : newKey();
  page.pendingKeys.set(action, { key, body: JSON.stringify(body) });
  const accepted = await command(path, body, { key });
  page.pendingKeys.delete(action);
  return accepted;
}

function steps() {
  $("progress").hidden = false;
  $("steps").replaceChildren();
  return (text, cls = "") => $("steps").append(el("li", { class: cls }, text));
}

const STATUS_TEXT = {
  accepted: "accepted: queued for a worker",
  processing: "processing",
  succeeded: "succeeded",
  failed: "failed",
  dead_lettered: "dead-lettered: the system gave up after its retries",
};

async function run(action, path, body, label) {
  const step = steps();
  step(`${label}: sending…`);
  const accepted = await send(action, path, body);
  step(`Request ${accepted.request_id} ${STATUS_TEXT.accepted}`, "accepted");
  let retrying = null;
  if (action === "pay") {
    // A provider that is down is retried with backoff: say so while it lasts.
    retrying = setTimeout(() => step("The payment provider is not answering: retrying…", "retrying"), 1000);
  }
  try {
    return await follow(accepted.request_id, (doc) => {
      if (doc.status !== "accepted") step(`Request ${STATUS_TEXT[doc.status] || doc.status}`, doc.status);
    });
  } finally {
    clearTimeout(retrying);
  }
}

async function busy(flag) {
  page.busy = flag;
  $("hold").disabled = flag || page.selected.size === 0;
  $("confirm").disabled = flag;
  $("release").disabled = flag;
}

async function holdSeats() {
  if (page.busy || !page.show || !page.selected.size) return;
  busy(true);
  $("outcome").hidden = true;
  const seatIds = [...page.selected];
  try {
    const doc = await run("hold", "/v1/holds", { show_id: page.show.show_id, seat_ids: seatIds }, `Holding ${seatIds.join(", ")}`);
    if (doc.status === "succeeded") {
      page.hold = doc.result;
      page.selected.clear();
      for (const id of doc.result.seat_ids) {
        page.seats.set(id, "held");
        render(id);
      }
      updateSelection();
      showHold();
    } else {
      outcome(doc, "The seats could not be held");
    }
  } catch (e) {
    failure("The hold was not sent", e);
  } finally {
    busy(false);
  }
}

function showHold() {
  const hold = page.hold;
  $("holding").hidden = false;
  $("hold-seats").textContent = `Seats ${hold.seat_ids.join(", ")}`;
  $("hold-amount").textContent = `Total ${money(hold.seat_ids.length * page.show.price_cents)}`;
  clearInterval(page.countdown);
  const tick = () => {
    const left = Math.max(0, Math.round((new Date(hold.expires_at) - Date.now()) / 1000));
    const text = `${Math.floor(left / 60)}:${String(left % 60).padStart(2, "0")}`;
    $("countdown").textContent = left > 0 ? `Held for you for ${text} more.` : "The hold has expired: choose seats again.";
    $("countdown").dataset.left = left;
    if (left === 0) {
      clearInterval(page.countdown);
      $("confirm").disabled = true;
    }
  };
  tick();
  page.countdown = setInterval(tick, 1000);
  $("card").focus();
}

async function pay(event) {
  event.preventDefault();
  if (page.busy || !page.hold) return;
  busy(true);
  const token = $("card").value;
  try {
    const doc = await run("pay", "/v1/bookings", { hold_id: page.hold.hold_id, payment_token: token }, `Paying with ${token}`);
    if (doc.status === "succeeded") {
      clearInterval(page.countdown);
      $("holding").hidden = true;
      const booking = (await call(`/v1/bookings/${encodeURIComponent(doc.result.booking_id)}`)).body;
      page.hold = null;
      // The stream will say so within a second; the booking already does.
      for (const id of booking.seat_ids) {
        page.seats.set(id, "booked");
        render(id);
      }
      const box = $("outcome");
      box.hidden = false;
      box.className = "card success";
      box.replaceChildren(
        el("h3", {}, "Booked!"),
        el("p", {}, `Booking `, el("code", { id: "booking-id" }, booking.booking_id), ` is ${booking.status}.`),
        el("p", {}, `Seats ${booking.seat_ids.join(", ")} · total ${money(booking.amount_cents)}`),
      );
      box.focus();
    } else {
      outcome(doc, doc.error?.code === "payment_declined" ? "The card was declined" : "The booking did not go through");
    }
  } catch (e) {
    failure("The payment was not sent", e);
  } finally {
    busy(false);
  }
}

async function release() {
  if (page.busy || !page.hold) return;
  busy(true);
  try {
    const doc = await run("release", `/v1/holds/${encodeURIComponent(page.hold.hold_id)}/release`, {}, "Releasing the hold");
    if (doc.status === "succeeded") {
      clearInterval(page.countdown);
      $("holding").hidden = true;
      page.hold = null;
    } else outcome(doc, "The hold could not be released");
  } catch (e) {
    failure("The release was not sent", e);
  } finally {
    busy(false);
  }
}

function outcome(doc, title) {
  const box = $("outcome");
  box.hidden = false;
  box.className = "card error";
  const code = doc.error?.code ? el("code", {}, doc.error.code) : doc.status;
  box.replaceChildren(el("h3", {}, title), el("p", {}, code, ": ", doc.error?.detail || ""));
  box.focus();
}

start();
