// "My tickets": a customer's own tickets, an agent's or admin's queue; one ticket with its
// comments and audit trail; reply; staff assign and move tickets.

import { call, claims, command, el, follow, when } from "./api.js";

const $ = (id) => document.getElementById(id);
let wired = false;
let cursor = null;

const STATUSES = ["open", "pending", "on_hold", "solved", "closed"];

export function showTickets() {
  const me = claims();
  const staff = me && me.role !== "customer";
  $("tickets-title").textContent = staff ? "Tickets" : "My tickets";
  $("mine-wrap").hidden = !staff;
  if (!wired) {
    wired = true;
    $("ticket-filter").addEventListener("submit", (e) => {
      e.preventDefault();
      list(false);
    });
    $("more-tickets").addEventListener("click", () => list(true));
    $("new-ticket").addEventListener("submit", createTicket);
  }
  list(false);
}

async function list(more) {
  const me = claims();
  const params = new URLSearchParams({ limit: "20" });
  const status = $("ticket-status").value;
  if (status) params.set("status", status);
  if ($("mine").checked) params.set("assignee", me.sub);
  if (more && cursor) params.set("cursor", cursor);
  try {
    const page = (await call(`/v1/tickets?${params}`)).body;
    const items = page.items.map((t) =>
      el("li", {}, el("button", { type: "button", class: "ticket", onclick: () => open(t.ticket_id) },
        el("strong", {}, t.subject), " ",
        el("span", { class: `badge status-${t.status}` }, t.status.replace("_", " ")),
        el("span", { class: "meta" }, ` ${t.priority} · ${t.requester}${t.assignee ? " → " + t.assignee : ""} · ${when(t.updated_at)}`))),
    );
    if (more) $("ticket-list").append(...items);
    else $("ticket-list").replaceChildren(...items);
    if (!more && !items.length) $("ticket-list").append(el("li", { class: "meta" }, "No tickets."));
    cursor = page.next_cursor;
    $("more-tickets").hidden = !cursor;
  } catch (e) {
    $("ticket-list").replaceChildren(el("li", { class: "error" }, `Cannot list tickets: ${e.message}`));
  }
}

/** Sends a ticket command from `form` and reports in its `.status` line; resolves with the terminal doc. */
async function submit(form, path, body) {
  const button = form.querySelector("button[type=submit]");
  const line = form.querySelector(".status");
  button.disabled = true;
  line.textContent = "Sending…";
  line.className = "status";
  try {
    const accepted = await command(path, body);
    line.textContent = `Request ${accepted.request_id} accepted…`;
    const doc = await follow(accepted.request_id, (d) => (line.textContent = `Request ${d.status}…`));
    if (doc.status === "succeeded") line.textContent = "Done.";
    else {
      line.textContent = `${doc.status}: ${doc.error?.code || ""} ${doc.error?.detail || ""}`;
      line.className = "status error";
    }
    return doc;
  } catch (e) {
    line.textContent = e.field ? `${e.field}: ${e.message}` : e.message;
    line.className = "status error";
    return null;
  } finally {
    button.disabled = false;
  }
}

async function createTicket(event) {
  event.preventDefault();
  const form = event.currentTarget;
  const body = {
    subject: form.elements.subject.value,
    description: form.elements.description.value,
    priority: form.elements.priority.value,
  };
  const doc = await submit(form, "/v1/tickets", body);
  if (doc?.status === "succeeded") {
    form.reset();
    await list(false);
    open(doc.result.ticket_id);
  }
}

async function open(ticketId) {
  const box = $("ticket-detail");
  box.hidden = false;
  let t;
  try {
    t = (await call(`/v1/tickets/${encodeURIComponent(ticketId)}`)).body;
  } catch (e) {
    box.replaceChildren(el("p", { class: "error" }, `Cannot open the ticket: ${e.message}`));
    return;
  }
  const me = claims();
  const staff = me.role !== "customer";
  const path = `/v1/tickets/${encodeURIComponent(t.ticket_id)}`;
  const reopen = () => open(t.ticket_id).then(() => list(false));

  const reply = el("form", { class: "card", "aria-label": "Reply" },
    el("label", { for: "reply-body" }, "Reply"),
    el("textarea", { id: "reply-body", name: "body", rows: "3", required: true, maxlength: "10000" }),
    staff ? el("p", {}, el("input", { type: "checkbox", id: "reply-internal", name: "internal" }), " ",
      el("label", { for: "reply-internal" }, "internal note (agents only)")) : null,
    el("button", { type: "submit", class: "primary" }, "Send reply"),
    el("p", { class: "status", "aria-live": "polite" }));
  reply.addEventListener("submit", async (e) => {
    e.preventDefault();
    const body = { body: reply.elements.body.value, public: !(reply.elements.internal?.checked) };
    if ((await submit(reply, `${path}/comments`, body))?.status === "succeeded") reopen();
  });

  let staffForms = [];
  if (staff) {
    const assign = el("form", { class: "card inline", "aria-label": "Assign" },
      el("label", { for: "assignee" }, "Assign to"),
      el("input", { id: "assignee", name: "agent_id", required: true, value: t.assignee || me.sub, maxlength: "255" }),
      el("button", { type: "submit" }, "Assign"),
      el("p", { class: "status", "aria-live": "polite" }));
    assign.addEventListener("submit", async (e) => {
      e.preventDefault();
      if ((await submit(assign, `${path}/assignments`, { agent_id: assign.elements.agent_id.value.trim() }))?.status === "succeeded") reopen();
    });
    const move = el("form", { class: "card inline", "aria-label": "Change status" },
      el("label", { for: "move-to" }, "Move to"),
      el("select", { id: "move-to", name: "to" }, ...STATUSES.filter((s) => s !== t.status).map((s) => el("option", { value: s }, s.replace("_", " ")))),
      el("label", { for: "move-comment" }, "with a public comment (optional)"),
      el("input", { id: "move-comment", name: "comment", maxlength: "10000" }),
      el("button", { type: "submit" }, "Move"),
      el("p", { class: "status", "aria-live": "polite" }));
    move.addEventListener("submit", async (e) => {
      e.preventDefault();
      const body = { to: move.elements.to.value };
      if (move.elements.comment.value.trim()) body.comment = move.elements.comment.value;
      if ((await submit(move, `${path}/transitions`, body))?.status === "succeeded") reopen();
    });
    staffForms = [assign, move];
  }

  box.replaceChildren(
    el("h3", {}, t.subject),
    el("p", {}, el("span", { class: `badge status-${t.status}` }, t.status.replace("_", " ")),
      ` ${t.priority} · opened by ${t.requester} ${when(t.created_at)} · ${t.assignee ? "assigned to " + t.assignee : "unassigned"}`),
    el("p", { class: "description" }, t.description),
    el("h4", {}, `Comments (${t.comments.length})`),
    el("ol", { class: "comments" }, ...t.comments.map((c) =>
      el("li", { class: c.public ? "" : "internal" },
        el("p", { class: "meta" }, `${c.author} · ${when(c.created_at)}${c.public ? "" : " · internal"}`),
        el("p", {}, c.body)))),
    t.status === "closed" ? el("p", { class: "meta" }, "This ticket is closed.") : reply,
    ...staffForms,
    el("details", {}, el("summary", {}, `Audit trail (${t.history.length})`),
      el("ol", { class: "history" }, ...t.history.map((h) =>
        el("li", {}, `${when(h.at)} · ${h.actor} · ${h.action.replace("_", " ")}${h.from ? " from " + h.from : ""}${h.to ? " to " + h.to : ""}`)))),
  );
  box.focus();
}
