// The ops view (admins): queues with depths and oldest age (`GET /v1/admin/status`, the
// JSON of `usher status --json`, when the server has it), the dead-letter queues; peek a
// dead message with its reason, replay (dry run first), purge (after a confirmation).

import { call, claims, el, setUpSignIn, signOut, when } from "./api.js";

const $ = (id) => document.getElementById(id);
const REFRESH_EVERY_MS = 5000;
let timer = null;

function start() {
  setUpSignIn({ defaultRole: "admin", onSignedIn: signedIn });
  $("sign-out").addEventListener("click", () => {
    signOut();
    location.reload();
  });
  $("refresh").addEventListener("click", refresh);
  if (claims()) signedIn();
  else $("signin").hidden = false;
}

function signedIn() {
  const me = claims();
  $("signin").hidden = true;
  $("who").hidden = false;
  $("who-name").textContent = `Signed in as ${me.sub} (${me.role})`;
  $("ops").hidden = false;
  refresh();
  clearInterval(timer);
  timer = setInterval(refresh, REFRESH_EVERY_MS);
}

async function refresh() {
  $("ops-error").textContent = "";
  try {
    await queues();
    await dlqs();
    $("refreshed").textContent = `updated ${new Date().toLocaleTimeString()}`;
  } catch (e) {
    clearInterval(timer);
    $("ops-error").textContent =
      e.status === 403 ? "Only admins can use the ops view: sign in with the admin role." : `Cannot refresh: ${e.message}`;
  }
}

/** The queues table from `GET /v1/admin/status`; a server without that route (404) shows only the DLQs. */
async function queues() {
  let status;
  try {
    status = (await call("/v1/admin/status")).body;
  } catch (e) {
    if (e.status !== 404) throw e;
    $("queues").hidden = true;
    $("outbox").textContent = "This server has no GET /v1/admin/status: only the dead-letter queues are shown.";
    return;
  }
  $("queues").hidden = false;
  $("queues").tBodies[0].replaceChildren(
    ...status.queues.map((q) =>
      el("tr", { "data-queue": q.queue },
        el("th", { scope: "row" }, q.queue),
        el("td", {}, q.visible), el("td", {}, q.in_flight),
        el("td", {}, q.oldest_age_seconds ?? "-"),
        el("td", { class: q.dlq_depth > 0 ? "alert" : "" }, q.dlq_depth))),
  );
  const outbox = status.outbox;
  $("outbox").textContent = outbox
    ? `Outbox: ${outbox.pending} pending${outbox.oldest_age_seconds != null ? `, oldest ${outbox.oldest_age_seconds} s` : ""}.`
    : "";
}

async function dlqs() {
  const list = (await call("/v1/admin/dlqs")).body;
  $("dlqs").tBodies[0].replaceChildren(
    ...list.map((d) => {
      const name = d.queue.replace(/-dlq$/, "");
      return el("tr", { "data-dlq": d.queue },
        el("th", { scope: "row" }, d.queue),
        el("td", { class: d.depth > 0 ? "alert depth" : "depth" }, d.depth),
        el("td", {}, el("div", { class: "actions" },
          el("button", { type: "button", onclick: () => peek(name), "aria-label": `Peek ${d.queue}` }, "Peek"),
          el("button", { type: "button", onclick: () => replay(name), "aria-label": `Replay ${d.queue}`, disabled: d.depth === 0 }, "Replay…"),
          el("button", { type: "button", class: "danger", onclick: () => purge(name), "aria-label": `Purge ${d.queue}`, disabled: d.depth === 0 }, "Purge…"))));
    }),
  );
}

function panel(title) {
  const box = $("dlq-panel");
  box.hidden = false;
  $("dlq-panel-title").textContent = title;
  $("replay-box").replaceChildren();
  $("messages").replaceChildren();
  box.focus();
}

async function peek(queue) {
  panel(`${queue}-dlq: dead messages`);
  try {
    const messages = (await call(`/v1/admin/dlqs/${encodeURIComponent(queue)}/messages?limit=20`)).body;
    if (!messages.length) {
      $("messages").replaceChildren(el("p", {}, "Empty."));
      return;
    }
    $("messages").replaceChildren(
      el("ol", { class: "dead" }, ...messages.map((m) =>
        el("li", { "data-message": m.message_id },
          el("p", {}, el("strong", {}, m.type || "(no type)"), ` · request ${m.request_id || "-"} · ${m.receive_count} receives`,
            m.failed_at ? ` · failed ${when(m.failed_at)}` : ""),
          el("p", { class: "reason" }, "Reason: ", m.failure_reason || "(moved by the queue's redrive: no reason recorded)"),
          el("details", {}, el("summary", {}, "Body"), el("pre", {}, m.body))))),
    );
  } catch (e) {
    $("messages").replaceChildren(el("p", { class: "error" }, `Cannot peek: ${e.message}`));
  }
}

/** A dry run first; its counts and a button to really replay them. */
async function replay(queue, type = "") {
  panel(`${queue}-dlq: replay`);
  const path = `/v1/admin/dlqs/${encodeURIComponent(queue)}/replay`;
  const body = type ? { type } : {};
  const box = $("replay-box");
  const filter = el("form", { class: "inline" },
    el("label", { for: "replay-type" }, "Only type"),
    el("input", { id: "replay-type", name: "type", value: type, placeholder: "e.g. booking.confirm", maxlength: "255" }),
    el("button", { type: "submit" }, "Check again"));
  filter.addEventListener("submit", (e) => {
    e.preventDefault();
    replay(queue, filter.elements.type.value.trim());
  });
  box.replaceChildren(filter, el("p", { id: "replay-result", "aria-live": "polite" }, "Dry run…"));
  let dry;
  try {
    dry = (await call(path, { method: "POST", body: { ...body, dry_run: true } })).body;
  } catch (e) {
    $("replay-result").textContent = `Cannot replay: ${e.message}`;
    return;
  }
  $("replay-result").textContent = `Dry run: would move ${dry.moved}, skip ${dry.skipped}.`;
  if (dry.moved === 0) return;
  const go = el("button", { type: "button", class: "primary", id: "replay-confirm" }, `Replay ${dry.moved} message${dry.moved === 1 ? "" : "s"}`);
  go.addEventListener("click", async () => {
    go.disabled = true;
    try {
      const done = (await call(path, { method: "POST", body })).body;
      $("replay-result").textContent = `Replayed: moved ${done.moved}, skipped ${done.skipped}, failed ${done.failed}.`;
      go.remove();
      await dlqs();
    } catch (e) {
      $("replay-result").textContent = `Replay failed: ${e.message}`;
      go.disabled = false;
    }
  });
  box.append(go);
  go.focus();
}

function purge(queue) {
  const dialog = $("purge-dialog");
  $("purge-text").textContent = `Every message in ${queue}-dlq will be deleted. This cannot be undone.`;
  dialog.onclose = async () => {
    if (dialog.returnValue !== "purge") return;
    panel(`${queue}-dlq: purge`);
    try {
      await call(`/v1/admin/dlqs/${encodeURIComponent(queue)}/purge`, { method: "POST", body: { confirm: true } });
      $("messages").replaceChildren(el("p", {}, `${queue}-dlq purged.`));
      await dlqs();
    } catch (e) {
      $("messages").replaceChildren(el("p", { class: "error" }, `Cannot purge: ${e.message}`));
    }
  };
  dialog.returnValue = "";
  dialog.showModal();
}

start();
