// The server's API with the token: sent as the bearer token by fetch, and kept in a SameSite=Strict
// cookie so page loads and event streams (which cannot set headers) carry it on GET requests.

const COOKIE = "safeset_token";

export function token() {
  const kept = sessionStorage.getItem(COOKIE);
  if (kept) return kept;
  const found = document.cookie.split(";").map((c) => c.trim()).find((c) => c.startsWith(`${COOKIE}=`));
  return found ? decodeURIComponent(found.slice(COOKIE.length + 1)) : "";
}

export function keepToken(value) {
  sessionStorage.setItem(COOKIE, value);
  document.cookie = `${COOKIE}=${encodeURIComponent(value)}; path=/; SameSite=Strict`;
}

export async function api(method, path, body) {
  const headers = { Authorization: `Bearer ${token()}` };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  if (response.status === 401) {
    location.assign("/login");
    throw new Error("the token was refused");
  }
  const doc = await response.json();
  if (!response.ok) {
    const problems = doc.problems ? `: ${doc.problems.join("; ")}` : "";
    throw new Error(`${doc.error || response.statusText}${problems}`);
  }
  return doc;
}

export const get = (path) => api("GET", path);
export const post = (path, body) => api("POST", path, body);

export function events(runId, onProgress, onEnd) {
  const source = new EventSource(`/v1/runs/${encodeURIComponent(runId)}/events`);
  source.addEventListener("progress", (e) => onProgress(JSON.parse(e.data)));
  source.addEventListener("end", (e) => {
    source.close();
    onEnd(JSON.parse(e.data));
  });
  return source;
}

export function query(params) {
  const kept = Object.entries(params).filter(([, v]) => v !== "" && v != null);
  return new URLSearchParams(kept).toString();
}
