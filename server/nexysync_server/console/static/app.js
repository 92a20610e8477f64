// The NexySync Console: the project owner's live, decrypted view of a project.
// The server sends ciphertext only; the project key is imported into this tab (never sent),
// and every record is decrypted here. Agent-written text is only ever set as text (see dom.js).

import { ApiError, Session, agentRequest, followProject } from "./api.js";
import {
  DecryptError,
  KeyImportError,
  KeyRing,
  decryptFile,
  newUlid,
  openEnvelope,
  parseKeyMaterial,
  sealEnvelope,
} from "./crypto.js";
import { byId, fill, formatBytes, formatTime, h, show } from "./dom.js";
import { remembered, forget, remember } from "./keystore.js";
import { VirtualList } from "./timeline.js";

const ROW_HEIGHT = 44;
const DECRYPT_BATCH = 64;
const API_KEY_RE = /^nsync_([a-z0-9-]+)_[0-9a-f]{40}$/;
const PRESENCE_REFRESH_MS = 30000;

const state = {
  session: null,
  project: null,
  ring: null,
  agents: new Map(), // slug -> agent
  online: new Set(),
  agentKeys: new Map(), // slug -> API key, held in this tab only, for sending as that agent
  records: [], // messages in storage order: {m, plain, error}
  byId: new Map(),
  children: new Map(), // message id -> ids of its replies
  view: [], // indices into records that the timeline shows (agent filter)
  filterAgent: "",
  filterWords: [], // the search box's words, lower-case: a message shows when it holds them all
  selected: null,
  replyTo: null,
  stream: null,
  listing: null, // the first listing of the project's messages, while it runs
  presenceTimer: null,
  loaded: new Set(), // tabs loaded once (reloaded on their events)
  auditCursor: null,
  // The selected message's receipts: rows (agent slug -> receipt) once fetched, and the
  // message_receipt events that arrived while the fetch ran (applied on top; they are monotone).
  receipts: { id: null, rows: null, pending: [] },
  stats: { decrypted: 0, decryptMs: 0, firstRenderMs: null },
};

let list = null;

// --- Notices and screens ---------------------------------------------------------------------

function notify(text, kind = "info") {
  const notice = byId("notice");
  notice.textContent = text;
  notice.className = `notice ${kind}`;
  show(notice, Boolean(text));
}

function screen(name) {
  for (const id of ["signin", "projects", "keys", "workspace"]) show(byId(id), id === name);
  const signedIn = Boolean(state.session);
  show(byId("sign-out"), signedIn);
  show(byId("sign-out-everywhere"), signedIn);
  show(byId("switch-project"), signedIn && name !== "projects");
  byId("user-name").textContent = signedIn ? state.session.user?.email || "" : "";
  byId("project-name").textContent = state.project && name !== "projects" ? state.project.name : "";
}

function failed(error) {
  notify(error instanceof ApiError || error instanceof KeyImportError ? error.message : `Error: ${error}`, "error");
}

// --- Signing in and picking a project --------------------------------------------------------

function signedOut(reason) {
  closeProject(); // nothing of the project stays on screen or in memory for the next sign-in
  state.session = null;
  screen("signin");
  if (reason) notify(reason, "error");
}

byId("signin-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  try {
    state.session = await Session.login(byId("email").value, byId("password").value, signedOut);
    byId("password").value = "";
    notify("");
    await showProjects();
  } catch (error) {
    failed(error);
  }
});

byId("sign-out").addEventListener("click", async () => {
  await state.session?.logout();
  signedOut("");
});

byId("sign-out-everywhere").addEventListener("click", async () => {
  try {
    await state.session?.logoutEverywhere();
    signedOut("");
    notify("Every session of this account has ended, here and elsewhere.", "info");
  } catch (error) {
    failed(error);
  }
});

byId("switch-project").addEventListener("click", () => {
  closeProject();
  showProjects().catch(failed);
});

async function showProjects() {
  const projects = await state.session.all("projects");
  fill(
    byId("project-list"),
    projects.length
      ? projects.map((p) =>
          h("li", null, h("button", { type: "button", className: "choice", onclick: () => openProject(p).catch(failed) }, p.name, h("span", { className: "muted small" }, ` ${p.id}`))),
        )
      : h("li", { className: "muted" }, "No project yet: create one with `nexysync projects create NAME`."),
  );
  screen("projects");
}

async function openProject(project) {
  state.project = project;
  const stored = await remembered(project.id);
  if (stored) {
    state.ring = new KeyRing(stored);
    await enterWorkspace("remembered in this browser");
  } else {
    byId("key-text").value = "";
    byId("key-file").value = "";
    screen("keys");
  }
}

function closeProject() {
  state.stream?.stop();
  clearInterval(state.presenceTimer);
  Object.assign(state, { project: null, ring: null, stream: null, selected: null, receipts: { id: null, rows: null, pending: [] }, replyTo: null, filterAgent: "", filterWords: [] });
  byId("timeline-search").value = "";
  state.records = [];
  state.byId.clear();
  state.children.clear();
  state.agents.clear();
  state.online.clear();
  state.agentKeys.clear();
  state.loaded.clear();
  // Decrypted text leaves the page with the project.
  list?.setCount(0);
  list?.render();
  for (const id of ["detail", "agents", "kv-rows", "ref-list", "ref-view", "file-rows", "usage", "audit-rows"]) fill(byId(id));
}

// --- The project key -------------------------------------------------------------------------

byId("key-file").addEventListener("change", async () => {
  const file = byId("key-file").files[0];
  if (file) byId("key-text").value = await file.text();
});

byId("key-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  try {
    const material = parseKeyMaterial(byId("key-text").value);
    byId("key-text").value = "";
    byId("key-file").value = "";
    if (material.projectId && material.projectId !== state.project.id) {
      throw new KeyImportError(`This key is for project ${material.projectId}, not ${state.project.name} (${state.project.id}).`);
    }
    state.ring = await KeyRing.fromRaw(material.rawKeys);
    if (material.apiKey && API_KEY_RE.test(material.apiKey)) {
      state.agentKeys.set(material.apiKey.match(API_KEY_RE)[1], material.apiKey);
    }
    let where = "in this tab only";
    if (byId("key-remember").checked) {
      await remember(state.project.id, state.ring.entries);
      where = "remembered in this browser";
    }
    await enterWorkspace(where);
  } catch (error) {
    failed(error);
  }
});

byId("key-skip").addEventListener("click", () => {
  state.ring = null;
  enterWorkspace("none: nothing can be decrypted").catch(failed);
});

byId("key-change").addEventListener("click", async () => {
  await forget(state.project.id);
  const project = state.project;
  closeProject();
  state.project = project;
  screen("keys");
});

// --- The workspace ---------------------------------------------------------------------------

async function enterWorkspace(keyWhere) {
  notify("");
  const ids = state.ring ? state.ring.ids.join(", ") : "";
  byId("key-status").textContent = state.ring ? `Key ${ids}, ${keyWhere}.` : `Key: ${keyWhere}.`;
  screen("workspace");
  selectTab("timeline");
  if (!list) {
    list = new VirtualList(byId("timeline"), ROW_HEIGHT, renderRow);
    list.onRender = () => decryptSoon();
  }
  list.setCount(0);
  fill(byId("detail"), h("p", { className: "muted" }, "Pick a message to see it whole, with its thread."));
  await loadAgents();
  // The stream opens first, so nothing stored during the listing is missed; what it announces
  // meanwhile is fetched once the listing is done (catchUp waits for it).
  startStream();
  state.listing = loadMessages();
  // Streams announce presence changes; an agent seen only through its requests is not announced,
  // so the list is also read again now and then.
  clearInterval(state.presenceTimer);
  state.presenceTimer = setInterval(() => refreshPresence().catch(failed), PRESENCE_REFRESH_MS);
  await state.listing;
}

async function refreshPresence() {
  if (!state.project) return;
  const presence = await state.session.request(`projects/${state.project.id}/presence`);
  state.online = new Set(presence.data.map((p) => p.agent));
  renderAgents();
}

async function loadAgents() {
  const agents = await state.session.all(`projects/${state.project.id}/agents`);
  state.agents = new Map(agents.map((a) => [a.slug, a]));
  await refreshPresence();
}

function renderAgents() {
  const slugs = [...state.agents.keys()].sort();
  fill(
    byId("agents"),
    slugs.map((slug) =>
      h(
        "li",
        { className: state.online.has(slug) ? "online" : "offline", dataset: { agent: slug }, title: state.online.has(slug) ? "online" : "offline" },
        h("span", { className: "dot" }),
        slug,
        state.agentKeys.has(slug) ? h("span", { className: "muted small" }, " (can send)") : null,
      ),
    ),
  );
  const filter = byId("timeline-agent");
  fill(filter, h("option", { value: "" }, "all"), slugs.map((s) => h("option", { value: s }, s)));
  filter.value = state.filterAgent;
  const to = byId("send-to");
  const keep = to.value;
  fill(to, h("option", { value: "*" }, "everyone (broadcast)"), slugs.map((s) => h("option", { value: s }, s)));
  if (keep) to.value = keep;
  const as = byId("send-as");
  const senders = [...state.agentKeys.keys()].sort();
  const keepAs = as.value;
  fill(as, senders.length ? senders.map((s) => h("option", { value: s }, s)) : h("option", { value: "" }, "no agent yet: create one or use its key"));
  if (keepAs && state.agentKeys.has(keepAs)) as.value = keepAs;
}

// --- Messages: loading, decrypting, the timeline ---------------------------------------------

function addMessages(messages) {
  let added = 0;
  for (const m of messages) {
    const known = state.byId.get(m.id);
    if (known) {
      known.m = { ...known.m, status: m.status, pinned: m.pinned, reactions: m.reactions };
      continue;
    }
    const record = { m, plain: null, error: null };
    state.byId.set(m.id, record);
    state.records.push(record);
    if (m.reply_to) {
      if (!state.children.has(m.reply_to)) state.children.set(m.reply_to, []);
      state.children.get(m.reply_to).push(m.id);
    }
    added += 1;
  }
  if (added) rebuildView();
  return added;
}

function shownBy(m, slug) {
  return !slug || m.from === slug || m.to === slug || (m.broadcast && m.from !== slug);
}

/** Whether a decrypted message holds every searched word (in its topic, payload, metadata or route). */
function holdsWords(record, words) {
  if (!words.length) return true;
  if (!record.plain) return false; // searched once decrypted: the view is rebuilt as batches finish
  // Built once per message: the view is rebuilt on every keystroke and every decrypted batch.
  const m = record.m;
  record.searchText ??= [record.plain.topic, record.plain.payload, JSON.stringify(record.plain.metadata ?? ""), m.from, m.to ?? ""].join("\n").toLowerCase();
  return words.every((word) => record.searchText.includes(word));
}

function rebuildView() {
  const slug = state.filterAgent;
  const words = state.filterWords;
  state.view = [];
  state.records.forEach((r, i) => {
    if (shownBy(r.m, slug) && holdsWords(r, words)) state.view.push(i);
  });
  const found = words.length ? " found" : "";
  byId("timeline-count").textContent = `${state.view.length} of ${state.records.length} messages${found}`;
  document.documentElement.dataset.nxMessages = String(state.records.length);
  list.setCount(state.view.length);
}

byId("timeline-agent").addEventListener("change", () => {
  state.filterAgent = byId("timeline-agent").value;
  rebuildView();
});

// Search runs here, over the messages this tab decrypted: the server never sees the words.
byId("timeline-search").addEventListener("input", () => {
  state.filterWords = byId("timeline-search").value.toLowerCase().split(/\s+/).filter(Boolean);
  rebuildView();
});

async function loadMessages() {
  await state.session.all(`projects/${state.project.id}/messages`, {}, async (page) => {
    addMessages(page);
  });
}

let catchingUp = null;
let catchUpAgain = false;

/** Fetch what the stream announced: messages stored since shortly before the newest one known. */
function catchUp() {
  if (catchingUp) {
    catchUpAgain = true;
    return catchingUp;
  }
  catchingUp = (async () => {
    await state.listing;
    do {
      catchUpAgain = false;
      const newest = state.records[state.records.length - 1];
      // A few seconds back: a message that took its place just before the newest may commit after it.
      const since = newest ? new Date(Date.parse(newest.m.created_at) - 5000).toISOString() : undefined;
      await state.session.all(`projects/${state.project.id}/messages`, { since }, async (page) => {
        addMessages(page);
      });
    } while (catchUpAgain);
  })().finally(() => {
    catchingUp = null;
  });
  return catchingUp;
}

async function decryptRecord(record) {
  const m = record.m;
  if (!state.ring) {
    record.error = "no project key imported";
    return;
  }
  const place = (field) => ({ projectId: m.project_id, kind: "message", id: m.id, field, from: m.from, to: m.to, replyTo: m.reply_to });
  try {
    const topic = await openEnvelope(state.ring, m.topic, place("topic"));
    const payload = await openEnvelope(state.ring, m.payload, place("payload"));
    let metadata = null;
    if (m.metadata !== null && m.metadata !== undefined) {
      metadata = JSON.parse(await openEnvelope(state.ring, m.metadata, place("metadata")));
    }
    record.plain = { topic, payload, metadata };
  } catch (error) {
    record.error = error instanceof DecryptError ? error.message : `not valid: ${error.message}`;
  }
}

let decrypting = false;

/** Decrypt what is in view first, then everything else, in small batches that keep the page responsive. */
function decryptSoon() {
  if (decrypting) return;
  decrypting = true;
  (async () => {
    try {
      for (;;) {
        const [first, end] = list.visible();
        const batch = [];
        for (let i = first; i < end && batch.length < DECRYPT_BATCH; i += 1) {
          const record = state.records[state.view[i]];
          if (record && !record.plain && !record.error) batch.push(record);
        }
        for (let i = 0; i < state.records.length && batch.length < DECRYPT_BATCH; i += 1) {
          const record = state.records[i];
          if (!record.plain && !record.error && !batch.includes(record)) batch.push(record);
        }
        if (!batch.length) return;
        const started = performance.now();
        await Promise.all(batch.map(decryptRecord));
        state.stats.decryptMs += performance.now() - started;
        state.stats.decrypted += batch.length;
        const root = document.documentElement.dataset;
        root.nxDecrypted = String(state.stats.decrypted);
        root.nxDecryptMs = state.stats.decryptMs.toFixed(2);
        if (state.filterWords.length) rebuildView(); // newly decrypted messages may match the search
        list.render();
        if (state.selected && batch.some((r) => r.m.id === state.selected)) renderDetail();
        // Yield to the page between batches, so scrolling and typing never wait for decryption.
        await new Promise((resolve) => setTimeout(resolve, 0));
      }
    } finally {
      decrypting = false;
    }
  })();
}

function routeOf(m) {
  return `${m.from} → ${m.broadcast ? "everyone" : m.to}`;
}

function renderRow(index) {
  const record = state.records[state.view[index]];
  const m = record.m;
  const classes = ["row"];
  if (record.error) classes.push("undecryptable");
  if (m.id === state.selected) classes.push("selected");
  if (m.priority !== "normal") classes.push(m.priority);
  let text;
  if (record.plain) {
    text = [h("span", { className: "topic" }, record.plain.topic), h("span", { className: "preview" }, record.plain.payload)];
    if (state.stats.firstRenderMs === null) {
      state.stats.firstRenderMs = performance.now();
      document.documentElement.dataset.nxFirstRenderMs = state.stats.firstRenderMs.toFixed(1);
    }
  } else if (record.error) {
    text = h("span", { className: "error-text" }, `cannot decrypt: ${record.error}`);
  } else {
    text = h("span", { className: "muted" }, "decrypting…");
  }
  return h(
    "div",
    { className: classes.join(" "), dataset: { id: m.id }, onclick: () => select(m.id) },
    h("span", { className: "time" }, new Date(m.created_at).toLocaleTimeString()),
    h("span", { className: "route" }, routeOf(m)),
    h("span", { className: `type ${m.type}` }, m.type),
    m.priority !== "normal" ? h("span", { className: `priority ${m.priority}`, title: `${m.priority} priority` }, m.priority) : null,
    h("span", { className: "text" }, text),
  );
}

function select(id) {
  state.selected = id;
  list.render();
  renderDetail();
  loadReceipts(id).catch(failed);
}

// --- Receipts: where each recipient's copy of the selected message is ------------------------

const RECEIPT_STATES = ["queued", "delivered", "read", "acked"];

/** Move one receipt forward by a message_receipt event; never back, each step keeps its time. */
function advanceReceipt(receipt, event) {
  if (RECEIPT_STATES.indexOf(event.state) > RECEIPT_STATES.indexOf(receipt.state)) receipt.state = event.state;
  if (event.state !== "queued") receipt[`${event.state}_at`] ??= event.at;
}

async function loadReceipts(id) {
  state.receipts = { id, rows: null, pending: [] };
  const page = await state.session.request(`projects/${state.project.id}/messages/${id}/receipts`);
  if (state.receipts.id !== id) return; // another message was opened meanwhile
  const rows = new Map(page.data.map((r) => [r.agent, r]));
  for (const event of state.receipts.pending) if (rows.has(event.agent)) advanceReceipt(rows.get(event.agent), event);
  state.receipts = { id, rows, pending: [] };
  renderDetail();
}

function onReceipt(event) {
  if (event.message_id !== state.receipts.id) return;
  const rows = state.receipts.rows;
  if (!rows) state.receipts.pending.push(event);
  else if (rows.has(event.agent)) {
    advanceReceipt(rows.get(event.agent), event);
    renderDetail();
  }
}

function receiptsView(id) {
  if (state.receipts.id !== id || !state.receipts.rows) return h("p", { className: "muted small" }, "loading receipts…");
  const when = (iso) => (iso ? formatTime(iso) : "—");
  return h(
    "table",
    { className: "grid receipts" },
    h("thead", null, h("tr", null, ["Recipient", "State", "Delivered", "Read", "Acked"].map((name) => h("th", null, name)))),
    h(
      "tbody",
      { id: "receipt-rows" },
      [...state.receipts.rows.values()].map((r) =>
        h(
          "tr",
          { dataset: { agent: r.agent, state: r.state } },
          h("td", null, r.agent),
          h("td", { className: `receipt ${r.state}` }, r.state),
          h("td", null, when(r.delivered_at)),
          h("td", null, when(r.read_at)),
          h("td", null, when(r.acked_at)),
        ),
      ),
    ),
  );
}

function threadRoot(id) {
  let current = state.byId.get(id);
  const seen = new Set();
  while (current?.m.reply_to && state.byId.has(current.m.reply_to) && !seen.has(current.m.id)) {
    seen.add(current.m.id);
    current = state.byId.get(current.m.reply_to);
  }
  return current;
}

function threadTree(id, depth = 0, seen = new Set()) {
  const record = state.byId.get(id);
  if (!record || seen.has(id) || depth > 200) return null;
  seen.add(id);
  const label = record.plain ? record.plain.topic : record.error ? "cannot decrypt" : "…";
  const kids = (state.children.get(id) || []).map((child) => threadTree(child, depth + 1, seen)).filter(Boolean);
  return h(
    "li",
    { className: id === state.selected ? "current" : "" },
    h("button", { type: "button", className: "link", onclick: () => select(id) }, `${record.m.from}: `, label),
    kids.length ? h("ul", null, kids) : null,
  );
}

function deliveryView(m) {
  return h("p", { className: "muted small" }, `State: ${m.status}`, m.pinned ? " · pinned" : "", m.reactions.length ? ` · ${m.reactions.map((r) => `${r.emoji} ${r.agent}`).join(", ")}` : "");
}

function renderDetail() {
  const record = state.byId.get(state.selected);
  const detail = byId("detail");
  if (!record) return;
  const m = record.m;
  const root = threadRoot(m.id);
  const body = record.plain
    ? [
        h("h3", null, record.plain.topic),
        h("pre", { className: "payload" }, record.plain.payload),
        record.plain.metadata !== null ? h("pre", { className: "metadata" }, JSON.stringify(record.plain.metadata, null, 2)) : null,
      ]
    : [h("h3", { className: "error-text" }, record.error ? `cannot decrypt: ${record.error}` : "decrypting…")];
  fill(
    detail,
    body,
    h("p", { className: "muted small" }, `${routeOf(m)} · ${m.type} · ${m.priority} · ${formatTime(m.created_at)} · ${m.id}`),
    deliveryView(m),
    h("h4", null, "Receipts"),
    receiptsView(m.id),
    h("button", { type: "button", className: "secondary small", onclick: () => setReply(m.id) }, "Reply"),
    h("h4", null, "Thread"),
    h("ul", { className: "tree" }, root ? threadTree(root.m.id) : null),
  );
}

function setReply(id) {
  state.replyTo = id;
  const record = state.byId.get(id);
  fill(
    byId("send-reply"),
    id ? [`replying to ${record?.m.from}: ${record?.plain?.topic ?? id} `, h("button", { type: "button", className: "link", onclick: () => setReply(null) }, "(cancel)")] : null,
  );
  if (id && record && !record.m.broadcast) byId("send-to").value = record.m.from;
}

// --- Live: the owner's event stream ----------------------------------------------------------

function reloadTabSoon(tab) {
  if (state.loaded.has(tab) && currentTab === tab) loadTab(tab).catch(failed);
  else state.loaded.delete(tab);
}

// One entry per event type.
const EVENT_HANDLERS = {
  new_message: () => catchUp().catch(failed),
  message_receipt: (data) => onReceipt(data),
  message_acked: (data) => {
    for (const id of data.ids || []) {
      const record = state.byId.get(id);
      if (record) record.m = { ...record.m, status: "acked" };
    }
    list.render();
    if (data.ids?.includes(state.selected)) renderDetail();
  },
  presence_change: (data) => {
    const changes = data.changes || [];
    for (const { agent, online } of changes) {
      if (online) state.online.add(agent);
      else state.online.delete(agent);
    }
    if (changes.some(({ agent }) => !state.agents.has(agent))) loadAgents().catch(failed);
    else renderAgents();
  },
  kv_update: () => reloadTabSoon("kv"),
  new_ref: () => reloadTabSoon("refs"),
  new_file: () => reloadTabSoon("files"),
  lease_granted: () => reloadTabSoon("leases"),
  lease_released: () => reloadTabSoon("leases"),
  lease_expired: () => reloadTabSoon("leases"),
  task_created: () => reloadTabSoon("tasks"),
  task_claimed: () => reloadTabSoon("tasks"),
  task_released: () => reloadTabSoon("tasks"),
  task_done: () => reloadTabSoon("tasks"),
  task_cancelled: () => reloadTabSoon("tasks"),
  reset: () => catchUp().catch(failed),
};

function startStream() {
  state.stream?.stop();
  const pill = byId("stream-state");
  state.stream = followProject(state.session, state.project.id, {
    onEvent: (type, event) => EVENT_HANDLERS[type]?.(event.data || {}),
    onState: (text) => {
      pill.textContent = text;
      pill.className = `pill ${text}`;
      show(pill, true);
      // After a gap, fetch what was stored meanwhile (the replay only says that it happened).
      if (text === "live" && state.records.length) catchUp().catch(failed);
    },
  });
}

// --- Sending as an agent ---------------------------------------------------------------------

function agentDialog(...children) {
  const dialog = byId("agent-key-dialog");
  fill(dialog, children, h("button", { type: "button", className: "secondary", onclick: () => show(dialog, false) }, "Close"));
  show(dialog, true);
}

byId("create-agent").addEventListener("click", () => {
  const slug = h("input", { placeholder: "slug, e.g. console", required: true, pattern: "[a-z0-9](?:[a-z0-9-]{0,30}[a-z0-9])?" });
  const name = h("input", { placeholder: "Name", required: true });
  const form = h(
    "form",
    {
      onsubmit: async (event) => {
        event.preventDefault();
        try {
          const created = await state.session.request(`projects/${state.project.id}/agents`, {
            method: "POST",
            body: { slug: slug.value, name: name.value || slug.value },
          });
          state.agentKeys.set(created.agent.slug, created.api_key);
          await loadAgents();
          byId("send-as").value = created.agent.slug;
          agentDialog(
            h("h3", null, `Agent ${created.agent.slug} created`),
            h("p", null, "Its API key, shown this once (the console keeps it in this tab to send as it):"),
            h("code", { className: "secret" }, created.api_key),
          );
        } catch (error) {
          failed(error);
        }
      },
    },
    h("h3", null, "New agent to send as"),
    slug,
    name,
    h("button", { type: "submit" }, "Create"),
  );
  agentDialog(form);
});

byId("use-agent-key").addEventListener("click", () => {
  const key = h("input", { placeholder: "nsync_<slug>_<40 hex>", required: true, spellcheck: false });
  const form = h(
    "form",
    {
      onsubmit: async (event) => {
        event.preventDefault();
        try {
          const me = await agentRequest(key.value.trim(), "me");
          if (me.project_id !== state.project.id) throw new KeyImportError("That agent belongs to another project.");
          state.agentKeys.set(me.agent.slug, key.value.trim());
          renderAgents();
          byId("send-as").value = me.agent.slug;
          show(byId("agent-key-dialog"), false);
        } catch (error) {
          failed(error);
        }
      },
    },
    h("h3", null, "Send as an existing agent"),
    key,
    h("button", { type: "submit" }, "Use"),
  );
  agentDialog(form);
});

byId("composer").addEventListener("submit", async (event) => {
  event.preventDefault();
  try {
    const sender = byId("send-as").value;
    const apiKey = state.agentKeys.get(sender);
    if (!apiKey) throw new KeyImportError("Create an agent, or use an agent's key, to send as it.");
    if (!state.ring) throw new KeyImportError("Import the project key first: messages are encrypted here.");
    const id = newUlid();
    const to = byId("send-to").value;
    // Envelope v2 binds the sender and the routing, as the server will record them.
    const place = (field) => ({
      projectId: state.project.id,
      kind: "message",
      id,
      field,
      from: sender,
      to: to === "*" ? null : to,
      replyTo: state.replyTo || null,
    });
    const body = {
      id,
      type: byId("send-type").value,
      topic: await sealEnvelope(state.ring, byId("send-topic").value, place("topic")),
      payload: await sealEnvelope(state.ring, byId("send-payload").value, place("payload")),
    };
    if (to === "*") body.broadcast = true;
    else body.to = to;
    if (state.replyTo) body.reply_to = state.replyTo;
    await agentRequest(apiKey, "messages", { method: "POST", body });
    byId("send-topic").value = "";
    byId("send-payload").value = "";
    setReply(null);
    notify("");
    await catchUp();
  } catch (error) {
    failed(error);
  }
});

// --- The other tabs --------------------------------------------------------------------------

let currentTab = "timeline";

function selectTab(tab) {
  currentTab = tab;
  for (const button of byId("tabs").querySelectorAll("button")) button.classList.toggle("active", button.dataset.tab === tab);
  for (const panel of document.querySelectorAll(".tab")) show(panel, panel.id === `tab-${tab}`);
  if (tab !== "timeline" && !state.loaded.has(tab)) loadTab(tab).catch(failed);
}

byId("tabs").addEventListener("click", (event) => {
  const tab = event.target.closest("button")?.dataset.tab;
  if (tab) selectTab(tab);
});

// ``routing`` carries what envelope v2 also binds (the author, and for refs the recipient).
async function openField(envelope, kind, id, field, routing = {}) {
  if (envelope === null || envelope === undefined) return { text: null };
  if (!state.ring) return { error: "no project key imported" };
  try {
    return { text: await openEnvelope(state.ring, envelope, { projectId: state.project.id, kind, id, field, ...routing }) };
  } catch (error) {
    return { error: error.message };
  }
}

function opened(result) {
  return result.error ? h("span", { className: "error-text" }, `cannot decrypt: ${result.error}`) : result.text ?? "";
}

const TAB_LOADERS = {
  async kv() {
    const entries = await state.session.all(`projects/${state.project.id}/kv`);
    const rows = await Promise.all(
      entries.map(async (e) => {
        const value = await openField(e.value, "kv", e.key, "value", { from: e.updated_by });
        return h("tr", null, h("td", null, h("code", null, e.key)), h("td", { className: "value" }, opened(value)), h("td", null, e.version), h("td", null, e.updated_by), h("td", null, formatTime(e.updated_at)));
      }),
    );
    fill(byId("kv-rows"), rows.length ? rows : h("tr", null, h("td", { colSpan: 5, className: "muted" }, "No entries.")));
  },

  async refs() {
    const refs = await state.session.all(`projects/${state.project.id}/refs`);
    const items = await Promise.all(
      refs.map(async (r) => {
        const title = await openField(r.title, "ref", r.id, "title", { from: r.from, to: r.to });
        return h(
          "li",
          null,
          h("button", { type: "button", className: "link", onclick: () => showRef(r).catch(failed) }, opened(title)),
          h("span", { className: "muted small" }, ` ${r.from} → ${r.to ?? "everyone"} · ${r.language ?? "text"}`),
        );
      }),
    );
    fill(byId("ref-list"), items.length ? items : h("li", { className: "muted" }, "No references."));
  },

  async files() {
    const files = await state.session.all(`projects/${state.project.id}/files`);
    const rows = await Promise.all(
      files.map(async (f) => {
        const name = await openField(f.name, "file", f.id, "name", { from: f.from });
        return h(
          "tr",
          null,
          h("td", null, opened(name)),
          h("td", null, formatBytes(f.size)),
          h("td", null, f.content_type ?? ""),
          h("td", null, f.from),
          h("td", null, formatTime(f.created_at)),
          h("td", null, name.error ? null : h("button", { type: "button", className: "small", onclick: () => download(f.id, name.text).catch(failed) }, "Download")),
        );
      }),
    );
    fill(byId("file-rows"), rows.length ? rows : h("tr", null, h("td", { colSpan: 6, className: "muted" }, "No files.")));
  },

  async leases() {
    const { data } = await state.session.request(`projects/${state.project.id}/leases`);
    const rows = await Promise.all(
      data.map(async (l) => {
        const path = await openField(l.path, "lease", l.id, "path", { from: l.agent });
        const reason = await openField(l.reason, "lease", l.id, "reason", { from: l.agent });
        return h(
          "tr",
          null,
          h("td", null, h("code", null, opened(path))),
          h("td", null, l.agent),
          h("td", null, l.exclusive ? "exclusive" : "shared"),
          h("td", null, formatTime(l.expires_at)),
          h("td", null, opened(reason)),
          h("td", null, l.token),
        );
      }),
    );
    fill(byId("lease-rows"), rows.length ? rows : h("tr", null, h("td", { colSpan: 6, className: "muted" }, "No live leases.")));
  },

  async tasks() {
    const tasks = await state.session.all(`projects/${state.project.id}/tasks`);
    const titles = new Map();
    const rows = await Promise.all(
      tasks.map(async (t) => {
        const title = await openField(t.title, "task", t.id, "title", { from: t.created_by });
        titles.set(t.id, title);
        const result = t.result ? await openField(t.result.text, "task_result", t.id, "text", { from: t.result.by }) : { text: "" };
        return { t, title, result };
      }),
    );
    const blockers = (t) => t.blocked_by.map((id) => (titles.get(id)?.text ?? id)).join(", ");
    fill(
      byId("task-rows"),
      rows.length
        ? rows.map(({ t, title, result }) =>
            h(
              "tr",
              { className: `task-${t.state}` },
              h("td", null, opened(title)),
              h("td", null, t.state),
              h("td", null, t.assignee ?? ""),
              h("td", null, t.created_by),
              h("td", null, blockers(t)),
              h("td", { className: "value" }, opened(result)),
              h("td", null, formatTime(t.updated_at)),
            ),
          )
        : h("tr", null, h("td", { colSpan: 7, className: "muted" }, "No tasks.")),
    );
  },

  async usage() {
    const u = await state.session.request(`projects/${state.project.id}/usage`);
    const meter = (label, used, limit, format = String) =>
      h("div", { className: "meter" }, h("span", null, label), h("progress", { max: limit, value: Math.min(used, limit) }), h("span", null, `${format(used)} of ${format(limit)}`));
    fill(
      byId("usage"),
      h("p", { className: "muted" }, `UTC day ${u.day}`),
      meter("Messages today", u.messages_today, u.messages_per_day_limit),
      meter("Storage", u.storage_bytes, u.storage_limit_bytes, formatBytes),
      meter("Agents", u.agents, u.agents_limit),
    );
  },

  async audit() {
    state.auditCursor = null;
    fill(byId("audit-rows"));
    await moreAudit();
  },
};

async function loadTab(tab) {
  state.loaded.add(tab);
  await TAB_LOADERS[tab]();
}

/** Name an audit entry's actor: the signed-in account by its email, an agent by its slug. */
function actorName(actor) {
  const user = state.session?.user;
  if (user && actor === `user:${user.id}`) return `${user.email} (you)`;
  if (actor.startsWith("agent:")) return `agent ${actor.slice(6)}`;
  return actor; // another account: its id only (its email is that person's to share)
}

async function moreAudit() {
  const page = await state.session.request(`projects/${state.project.id}/audit`, { query: { limit: 100, cursor: state.auditCursor } });
  byId("audit-rows").append(
    ...page.data.map((e) =>
      h("tr", { className: e.outcome }, h("td", null, formatTime(e.at)), h("td", { title: e.actor }, actorName(e.actor)), h("td", null, e.action), h("td", null, e.target), h("td", null, e.outcome), h("td", null, e.source_ip)),
    ),
  );
  state.auditCursor = page.next_cursor;
  show(byId("audit-more"), Boolean(page.next_cursor));
}

byId("audit-more").addEventListener("click", () => moreAudit().catch(failed));

async function showRef(ref) {
  const [title, content, source] = await Promise.all([
    openField(ref.title, "ref", ref.id, "title", { from: ref.from, to: ref.to }),
    openField(ref.content, "ref", ref.id, "content", { from: ref.from, to: ref.to }),
    openField(ref.source_file, "ref", ref.id, "source_file", { from: ref.from, to: ref.to }),
  ]);
  const lines = content.error ? [] : (content.text || "").split("\n");
  fill(
    byId("ref-view"),
    h("h3", null, opened(title)),
    h("p", { className: "muted small" }, source.text ?? (source.error ? opened(source) : ""), ` · ${ref.language ?? "text"} · ${ref.from} → ${ref.to ?? "everyone"}`),
    content.error ? opened(content) : h("pre", { className: "code" }, lines.map((line, i) => h("div", null, h("span", { className: "ln" }, String(i + 1)), line))),
  );
}

async function download(fileId, name) {
  // A fresh signed URL (the listed ones expire after a few minutes).
  const files = await state.session.all(`projects/${state.project.id}/files`);
  const file = files.find((f) => f.id === fileId);
  if (!file?.download_url) throw new KeyImportError("That file is gone.");
  const response = await fetch(file.download_url);
  if (!response.ok) throw new KeyImportError(`The CDN answered ${response.status}.`);
  const content = await decryptFile(state.ring, new Uint8Array(await response.arrayBuffer()), state.project.id, fileId);
  const url = URL.createObjectURL(new Blob([content], { type: file.content_type || "application/octet-stream" }));
  const link = h("a", { href: url, download: name || fileId });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60000);
}

screen("signin");
