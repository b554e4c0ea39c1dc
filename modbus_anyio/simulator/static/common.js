// Shared helpers of the simulator's pages: DOM building, the REST API, live events.

/** Create an element: el("td", {class: "num"}, "42"). */
export function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === undefined || value === null || value === false) continue;
    if (name === "class") node.className = value;
    else if (name === "dataset") Object.assign(node.dataset, value);
    else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else if (value === true) node.setAttribute(name, "");
    else node.setAttribute(name, value);
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

/** Call the REST API; returns the decoded JSON or throws an Error with the server's message. */
export async function api(path, { method = "GET", body } = {}) {
  const options = { method, headers: { Accept: "application/json" } };
  if (method !== "GET") {
    options.headers["Content-Type"] = "application/json";
    if (body !== undefined) options.body = JSON.stringify(body);
  }
  const response = await fetch(path, options);
  const text = await response.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = null;
  }
  if (!response.ok) {
    throw new Error((data && data.error) || `${response.status} ${response.statusText}`);
  }
  return data;
}

/** Subscribe to server-sent events; shows the connection state in #live. */
export function live(url, handlers) {
  const indicator = document.getElementById("live");
  const source = new EventSource(url);
  const show = (text, state) => {
    if (!indicator) return;
    indicator.textContent = text;
    indicator.classList.toggle("connected", state === "connected");
    indicator.classList.toggle("broken", state === "broken");
  };
  show("connecting…", "");
  source.addEventListener("open", () => show("live", "connected"));
  source.addEventListener("error", () => show(source.readyState === EventSource.CLOSED ? "disconnected" : "reconnecting…", "broken"));
  for (const [event, handler] of Object.entries(handlers)) {
    source.addEventListener(event, (message) => handler(JSON.parse(message.data)));
  }
  return source;
}

/** Show a message in an element: kind is "ok", "error" or "". */
export function say(element, text, kind = "") {
  element.textContent = text;
  element.className = `message ${kind}`;
}

// One formatter for every time shown: toLocaleTimeString builds a new one per call,
// which made a page of live calls spend most of its script time formatting.
const TIME_FORMAT = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false });

export function formatTime(seconds) {
  const date = new Date(seconds * 1000);
  return TIME_FORMAT.format(date) + "." + String(date.getMilliseconds()).padStart(3, "0");
}

export function formatDuration(seconds) {
  seconds = Math.floor(seconds);
  const days = Math.floor(seconds / 86400);
  const hours = Math.floor((seconds % 86400) / 3600);
  const minutes = Math.floor((seconds % 3600) / 60);
  const rest = seconds % 60;
  const clock = `${String(hours).padStart(2, "0")}:${String(minutes).padStart(2, "0")}:${String(rest).padStart(2, "0")}`;
  return days ? `${days} d ${clock}` : clock;
}

/** Keep the page's filter form in the address bar (bookmarkable, survives reload). */
export function formFromLocation(form) {
  const params = new URLSearchParams(location.search);
  for (const element of form.elements) {
    if (element.name && params.has(element.name)) element.value = params.get(element.name);
  }
}

export function formToParams(form) {
  const params = new URLSearchParams();
  for (const element of form.elements) {
    if (element.name && element.value !== "") params.set(element.name, element.value);
  }
  return params;
}

export const EXCEPTION_CODES = {
  1: "illegal function",
  2: "illegal data address",
  3: "illegal data value",
  4: "server device failure",
  5: "acknowledge",
  6: "server device busy",
  7: "negative acknowledge",
  8: "memory parity error",
  10: "gateway path unavailable",
  11: "gateway target failed to respond",
};
