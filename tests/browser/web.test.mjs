// Usher's web page in a real browser: Debian's chromium, driven by playwright-core, against
// a running `usher dev` (scripts/browser-test.sh starts one and sets USHER_URL and
// USHER_ADMIN_TOKEN). Screenshots go to USHER_SCREENSHOTS when it is set.

import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { chromium } from "playwright-core";

const BASE = process.env.USHER_URL;
const ADMIN = process.env.USHER_ADMIN_TOKEN;
const SHOTS = process.env.USHER_SCREENSHOTS;
if (!BASE || !ADMIN) throw new Error("set USHER_URL and USHER_ADMIN_TOKEN (scripts/browser-test.sh does)");
if (SHOTS) mkdirSync(SHOTS, { recursive: true });

let browser;
const run = Math.random().toString(36).slice(2, 8);

before(async () => {
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    // A container's /dev/shm is small; root in a container has no user namespace for
    // chromium's sandbox.
    args: ["--disable-dev-shm-usage", ...(process.getuid?.() === 0 ? ["--no-sandbox"] : [])],
  });
});

after(async () => {
  await browser?.close();
});

async function api(token, method, path, body, key) {
  const headers = { Authorization: `Bearer ${token}` };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (key) headers["Idempotency-Key"] = key;
  const response = await fetch(BASE + path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await response.text();
  return { status: response.status, body: text ? JSON.parse(text) : null };
}

async function devToken(sub, role) {
  const response = await fetch(`${BASE}/dev/token`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ sub, role }),
  });
  assert.equal(response.status, 200);
  return (await response.json()).token;
}

async function terminal(token, requestId) {
  for (let i = 0; i < 10; i++) {
    const doc = (await api(token, "GET", `/v1/requests/${requestId}?wait=10`)).body;
    if (["succeeded", "failed", "dead_lettered"].includes(doc.status)) return doc;
  }
  throw new Error(`request ${requestId} never ended`);
}

/** A page signed in through the dev form, on the first show of the first movie. */
async function openShow(sub, { width = 1280, height = 900 } = {}) {
  const page = await browser.newPage({ viewport: { width, height } });
  page.on("pageerror", (e) => console.error(`page error (${sub}):`, e));
  await page.goto(`${BASE}/`);
  await page.getByLabel("Your name").fill(sub);
  await page.getByLabel("Role").selectOption("customer");
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.locator("#movies button").first().click();
  const show = page.locator("#shows button").first();
  await show.click();
  const showId = await show.getAttribute("data-show");
  await page.locator('#seatmap [data-seat="A1"]').waitFor();
  await page.getByText("Live: seats update").waitFor();
  return { page, showId };
}

/** Opens the ticket titled `subject` from `page`'s list. If it never shows, the error says
 * what the list showed instead (no tickets, other tickets, or why it could not list). */
async function openTicket(page, subject) {
  try {
    await page.locator(".ticket", { hasText: subject }).click();
  } catch (e) {
    const shown = await page.locator("#ticket-list").innerText().catch((why) => `(unreadable: ${why.message})`);
    throw new Error(`${e.message}\nthe ticket list showed: ${JSON.stringify(shown)}`);
  }
}

async function shot(page, name) {
  if (SHOTS) await page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: true });
}

test("a customer signs in, books two seats through the page, and the API has the booking", async () => {
  const alice = `alice-${run}`;
  const { page, showId } = await openShow(alice);
  // Keyboard: the map is one tab stop; arrows move, Enter selects.
  await page.locator('#seatmap [data-seat="A1"]').focus();
  for (let i = 0; i < 2; i++) await page.keyboard.press("ArrowDown");
  for (let i = 0; i < 4; i++) await page.keyboard.press("ArrowRight");
  await page.keyboard.press("Enter"); // C5
  await page.locator('[data-seat="C6"]').click();
  assert.equal(await page.locator('[data-seat="C5"]').getAttribute("data-state"), "selected");
  assert.equal(await page.locator('[data-seat="C6"]').getAttribute("aria-pressed"), "true");
  await page.getByRole("button", { name: "Hold seats" }).click();
  await page.locator("#steps li.succeeded").waitFor();
  const steps = await page.locator("#steps").innerText();
  assert.match(steps, /accepted/);
  assert.match(steps, /succeeded/);
  await page.locator("#countdown").getByText(/Held for you for \d+:\d\d more/).waitFor();
  assert.equal(await page.locator('[data-seat="C5"]').getAttribute("data-state"), "held");
  await shot(page, "seat-map");

  await page.getByLabel("Test card").selectOption("tok_visa");
  // A double click sends one command: the button is disabled while it is in flight.
  const confirms = [];
  page.on("request", (r) => {
    if (r.method() === "POST" && r.url().endsWith("/v1/bookings")) confirms.push(r.headers()["idempotency-key"]);
  });
  await page.getByRole("button", { name: "Confirm and pay" }).dblclick();
  const bookingId = await page.locator("#booking-id").innerText();
  await page.getByText("Booked!").waitFor();
  assert.equal(confirms.length, 1, `one POST /v1/bookings, got ${confirms.length}`);
  assert.match(confirms[0], /^[0-9a-f-]{36}$/);
  await shot(page, "booking");

  const token = await devToken(alice, "customer");
  const booking = await api(token, "GET", `/v1/bookings/${bookingId}`);
  assert.equal(booking.status, 200);
  assert.equal(booking.body.status, "confirmed");
  assert.equal(booking.body.customer_id, alice);
  assert.equal(booking.body.show_id, showId);
  assert.deepEqual([...booking.body.seat_ids].sort(), ["C5", "C6"]);
  const seats = (await api(token, "GET", `/v1/shows/${showId}/seats`)).body.seats;
  assert.deepEqual(seats.filter((s) => ["C5", "C6"].includes(s.seat_id)).map((s) => s.state), ["booked", "booked"]);
  await page.close();
});

test("a second customer's hold shows on the first customer's open seat map within 2 s", async () => {
  const { page, showId } = await openShow(`carol-${run}`);
  assert.equal(await page.locator('[data-seat="E7"]').getAttribute("data-state"), "available");
  const bob = await devToken(`bob-${run}`, "customer");
  const sent = Date.now();
  const accepted = await api(bob, "POST", "/v1/holds", { show_id: showId, seat_ids: ["E7", "E8"] }, `hold-${run}`);
  assert.equal(accepted.status, 202);
  await page.locator('[data-seat="E7"][data-state="held"]').waitFor({ timeout: 2000 });
  await page.locator('[data-seat="E8"][data-state="held"]').waitFor({ timeout: 500 });
  console.log(`the hold showed ${Date.now() - sent} ms after its 202`);
  assert.equal(await page.locator('[data-seat="E7"]').getAttribute("aria-label"), "Seat E7, held");
  await page.close();
});

test("a declined card shows the decline", async () => {
  const { page } = await openShow(`dave-${run}`);
  await page.locator('[data-seat="G1"]').click();
  await page.getByRole("button", { name: "Hold seats" }).click();
  await page.locator("#holding").waitFor();
  await page.getByLabel("Test card").selectOption("tok_decline");
  await page.getByRole("button", { name: "Confirm and pay" }).click();
  await page.getByRole("heading", { name: "The card was declined" }).waitFor();
  assert.match(await page.locator("#outcome").innerText(), /payment_declined/);
  await page.close();
});

test("an unavailable provider shows retrying, then the dead letter; the ops view replays it", async () => {
  const erin = `erin-${run}`;
  const { page } = await openShow(erin, { width: 390, height: 844 }); // a phone
  await page.locator('[data-seat="H2"]').click();
  await page.getByRole("button", { name: "Hold seats" }).click();
  await page.locator("#holding").waitFor();
  await page.getByLabel("Test card").selectOption("tok_unavailable");
  await page.getByRole("button", { name: "Confirm and pay" }).click();
  await page.locator("#steps li.retrying").waitFor();
  await page.locator("#steps li.dead_lettered").waitFor({ timeout: 30_000 });
  await page.getByText("The booking did not go through").waitFor();
  const requestId = (await page.locator("#steps li.accepted").innerText()).match(/req_\S+/)[0];
  const token = await devToken(erin, "customer");
  const dead = (await api(token, "GET", `/v1/requests/${requestId}`)).body;
  assert.equal(dead.status, "dead_lettered");
  await page.close();

  const ops = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  ops.on("pageerror", (e) => console.error("page error (ops):", e));
  await ops.goto(`${BASE}/ops`);
  await ops.getByLabel("Your name").fill(`ops-${run}`);
  await ops.getByRole("button", { name: "Sign in" }).click();
  const row = ops.locator('[data-dlq="booking-commands-dlq"]');
  await row.locator("td.depth", { hasText: /^[1-9]/ }).waitFor();
  await row.getByRole("button", { name: "Peek booking-commands-dlq" }).click();
  const message = ops.locator("#messages li", { hasText: requestId });
  await message.waitFor();
  assert.match(await message.locator(".reason").innerText(), /unavailable/);
  await shot(ops, "ops");

  await row.getByRole("button", { name: "Replay booking-commands-dlq" }).click();
  await ops.locator("#replay-result", { hasText: /Dry run: would move [1-9]/ }).waitFor();
  // The dry run moved nothing.
  assert.equal((await api(token, "GET", `/v1/requests/${requestId}`)).body.status, "dead_lettered");
  await ops.locator("#replay-confirm").click();
  await ops.locator("#replay-result", { hasText: /Replayed: moved [1-9]\d*, skipped \d+, failed 0/ }).waitFor();
  // Back on its queue with the provider still down, it ran again and died again.
  let again = dead;
  for (let i = 0; i < 60 && !(again.status === "dead_lettered" && again.updated_at > dead.updated_at); i++) {
    await new Promise((r) => setTimeout(r, 500));
    again = (await api(token, "GET", `/v1/requests/${requestId}`)).body;
  }
  assert.equal(again.status, "dead_lettered");
  assert.ok(again.updated_at > dead.updated_at, "the replayed command ran again");

  // Purge asks first; cancelling keeps the messages.
  await row.locator("td.depth", { hasText: /^[1-9]/ }).waitFor({ timeout: 15_000 });
  await row.getByRole("button", { name: "Purge booking-commands-dlq" }).click();
  await ops.getByRole("button", { name: "Cancel" }).click();
  assert.notEqual(await row.locator("td.depth").innerText(), "0");
  await row.getByRole("button", { name: "Purge booking-commands-dlq" }).click();
  await ops.getByRole("button", { name: "Purge every message" }).click();
  await ops.locator('[data-dlq="booking-commands-dlq"] td.depth', { hasText: /^0$/ }).waitFor();
  await ops.close();
});

test("my tickets: a customer opens a ticket, an agent assigns and answers it, the customer sees the trail", async () => {
  const frank = `frank-${run}`;
  const page = await browser.newPage();
  await page.goto(`${BASE}/`);
  // Signed out, the page offers the sign-in only: its sections would call the API
  // without a token.
  await page.getByLabel("Your name").waitFor();
  assert.equal(await page.locator("#nav").isVisible(), false, "the nav shows before signing in");
  await page.getByLabel("Your name").fill(frank);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.getByRole("button", { name: "My tickets" }).click();
  await page.getByLabel("Subject").fill(`Seat C5 wobbles ${run}`);
  await page.getByLabel("Description").fill("It squeaks too.");
  await page.getByRole("button", { name: "Open ticket" }).click();
  await page.locator("#ticket-detail h3", { hasText: `Seat C5 wobbles ${run}` }).waitFor();
  const ticketId = (await api(await devToken(frank, "customer"), "GET", "/v1/tickets")).body.items[0].ticket_id;

  const agent = await browser.newPage();
  await agent.goto(`${BASE}/`);
  await agent.getByLabel("Your name").fill(`ann-${run}`);
  await agent.getByLabel("Role").selectOption("agent");
  await agent.getByRole("button", { name: "Sign in" }).click();
  await agent.getByRole("button", { name: "Tickets" }).click();
  await openTicket(agent, `Seat C5 wobbles ${run}`);
  await agent.getByRole("button", { name: "Assign" }).click();
  await agent.locator("#ticket-detail .badge", { hasText: "open" }).waitFor();
  await agent.getByLabel("Move to").selectOption("pending");
  await agent.getByLabel("with a public comment (optional)").fill("Which row?");
  await agent.getByRole("button", { name: "Move" }).click();
  await agent.locator("#ticket-detail .badge", { hasText: "pending" }).waitFor();
  await agent.close();

  await openTicket(page, `Seat C5 wobbles ${run}`);
  await page.locator("#ticket-detail .comments", { hasText: "Which row?" }).waitFor();
  await page.getByRole("textbox", { name: "Reply" }).fill("Row C.");
  await page.getByRole("button", { name: "Send reply" }).click();
  // A customer's reply reopens a pending ticket.
  await page.locator("#ticket-detail .badge", { hasText: "open" }).waitFor();
  await page.getByText(/Audit trail/).click();
  const trail = await page.locator("#ticket-detail .history").innerText();
  assert.match(trail, /created/);
  assert.match(trail, /assigned/);
  assert.match(trail, /from pending to open/);
  const ticket = (await api(ADMIN, "GET", `/v1/tickets/${ticketId}`)).body;
  assert.equal(ticket.status, "open");
  assert.deepEqual(ticket.comments.map((c) => c.body), ["Which row?", "Row C."]);
  await page.close();
});
