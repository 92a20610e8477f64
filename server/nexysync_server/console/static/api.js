// The API as the console uses it: relative URLs (it works behind any proxy that serves /console/
// and /v1/ together), the owner's tokens refreshed as they expire, problem+json errors thrown.

const API = new URL("../v1/", document.baseURI);

export class ApiError extends Error {
  constructor(status, problem) {
    super(problem.detail || problem.title || `HTTP ${status}`);
    this.status = status;
    this.code = problem.code || "";
  }
}

async function problemOf(response) {
  try {
    return await response.json();
  } catch {
    return { title: response.statusText };
  }
}

/** The signed-in owner: access token in memory, refreshed with the rotating refresh token. */
export class Session {
  constructor(tokens, onSignedOut) {
    this.onSignedOut = onSignedOut;
    this.take(tokens);
    this.refreshing = null;
    this.refreshes = 0;
  }

  static async login(email, password, onSignedOut) {
    const response = await fetch(new URL("auth/login", API), {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ email, password }),
    });
    if (!response.ok) throw new ApiError(response.status, await problemOf(response));
    return new Session(await response.json(), onSignedOut);
  }

  take(tokens) {
    this.accessToken = tokens.access_token;
    this.refreshToken = tokens.refresh_token;
    this.user = tokens.user || this.user;
    // Refresh well before expiry (30 s, or half the lifetime of a short one), so that a request
    // rarely meets an expired token; one that does is refreshed and retried once.
    const lifetime = tokens.expires_in;
    this.expiresAt = Date.now() + Math.max(1, lifetime > 60 ? lifetime - 30 : lifetime / 2) * 1000;
  }

  async refresh() {
    if (!this.refreshing) {
      this.refreshing = (async () => {
        const response = await fetch(new URL("auth/refresh", API), {
          method: "POST",
          headers: { "Content-Type": "application/json" },
          body: JSON.stringify({ refresh_token: this.refreshToken }),
        });
        if (!response.ok) {
          this.onSignedOut("Your session has ended; sign in again.");
          throw new ApiError(response.status, await problemOf(response));
        }
        this.take(await response.json());
        this.refreshes += 1;
        document.documentElement.dataset.nxRefreshes = String(this.refreshes);
      })().finally(() => {
        this.refreshing = null;
      });
    }
    return this.refreshing;
  }

  async token() {
    if (Date.now() >= this.expiresAt) await this.refresh();
    return this.accessToken;
  }

  /** Make an owner request; one retry after a refresh when the token has just expired. */
  async request(path, { method = "GET", query, body, signal } = {}) {
    const url = new URL(path, API);
    for (const [name, value] of Object.entries(query || {})) {
      if (value !== undefined && value !== null && value !== "") url.searchParams.set(name, value);
    }
    for (let attempt = 0; ; attempt += 1) {
      const headers = { Authorization: `Bearer ${await this.token()}` };
      if (body !== undefined) headers["Content-Type"] = "application/json";
      const response = await fetch(url, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), signal });
      if (response.status === 401 && attempt === 0) {
        await this.refresh();
        continue;
      }
      if (!response.ok) throw new ApiError(response.status, await problemOf(response));
      return response.status === 204 ? null : response.json();
    }
  }

  /** Every item of a paged list, page by page (onPage sees each page as it comes). */
  async all(path, query, onPage) {
    const items = [];
    let cursor;
    do {
      const page = await this.request(path, { query: { ...query, limit: 200, cursor } });
      items.push(...page.data);
      if (onPage) await onPage(page.data);
      cursor = page.next_cursor;
    } while (cursor);
    return items;
  }

  /** Sign out every session of the account (other browsers, the CLI), this one too. */
  async logoutEverywhere() {
    try {
      await this.request("auth/logout-all", { method: "POST" });
    } finally {
      this.accessToken = this.refreshToken = null;
    }
  }

  async logout() {
    try {
      await fetch(new URL("auth/logout", API), {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ refresh_token: this.refreshToken }),
      });
    } finally {
      this.accessToken = this.refreshToken = null;
    }
  }
}

/** An agent's own requests (the console sending as an agent the owner picked or created). */
export async function agentRequest(apiKey, path, { method = "GET", body } = {}) {
  const response = await fetch(new URL(path, API), {
    method,
    headers: { Authorization: `Bearer ${apiKey}`, "Content-Type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (!response.ok) throw new ApiError(response.status, await problemOf(response));
  return response.json();
}

/**
 * Follow the owner's event stream of a project. EventSource cannot send an Authorization header,
 * so this reads the SSE framing from fetch; it reconnects with Last-Event-ID (and a fresh token)
 * whenever the server ends a stream, with backoff on errors, until stop() is called.
 */
export function followProject(session, projectId, { onEvent, onState }) {
  const controller = new AbortController();
  let lastId = null;
  let stopped = false;

  async function once() {
    const headers = { Authorization: `Bearer ${await session.token()}`, Accept: "text/event-stream" };
    if (lastId !== null) headers["Last-Event-ID"] = String(lastId);
    const response = await fetch(new URL(`projects/${projectId}/stream`, API), { headers, signal: controller.signal });
    if (response.status === 401) {
      await session.refresh();
      return;
    }
    if (!response.ok) throw new ApiError(response.status, await problemOf(response));
    onState("live");
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buffer += value;
      let end;
      while ((end = buffer.search(/\r?\n\r?\n/)) >= 0) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end).replace(/^\r?\n\r?\n/, "");
        const frame = { id: null, event: "message", data: [] };
        for (const line of block.split(/\r?\n/)) {
          if (line.startsWith(":")) continue;
          const colon = line.indexOf(":");
          const name = colon < 0 ? line : line.slice(0, colon);
          const field = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
          if (name === "data") frame.data.push(field);
          else if (name === "id") frame.id = field;
          else if (name === "event") frame.event = field;
        }
        if (frame.data.length) {
          if (frame.id !== null) lastId = Number(frame.id);
          onEvent(frame.event, JSON.parse(frame.data.join("\n")));
        }
      }
    }
  }

  (async () => {
    let backoff = 500;
    while (!stopped) {
      try {
        await once();
        backoff = 500;
      } catch (error) {
        if (stopped) return;
        onState("reconnecting");
        await new Promise((resolve) => setTimeout(resolve, backoff));
        backoff = Math.min(backoff * 2, 15000);
      }
    }
  })();
  return {
    stop() {
      stopped = true;
      controller.abort();
    },
  };
}
