// The calls page: live traffic, fault injection and the fault rules.
import { api, el, EXCEPTION_CODES, formatTime, formFromLocation, formToParams, live, say } from "./common.js";

const faultForm = document.getElementById("fault-form");
const faultMessage = document.getElementById("fault-message");
const rulesBody = document.querySelector("#rules tbody");
const filters = document.getElementById("filters");
const callsBody = document.querySelector("#calls tbody");
const summary = document.getElementById("traffic-summary");
const pause = document.getElementById("pause");
// Rows kept in the table: laying out and painting them is most of what the page
// costs the browser at each redraw (300 rows took twice the CPU of 100).
const KEEP = 100;
let source = null;
let seen = 0;

for (const [code, name] of Object.entries(EXCEPTION_CODES)) {
  document.getElementById("exception_code").append(el("option", { value: code, selected: code === "4" }, `${code.padStart(2, "0")} ${name}`));
}

function showEffectFields() {
  const effect = faultForm.elements.effect.value;
  for (const label of faultForm.querySelectorAll("label[data-for]")) {
    label.hidden = label.dataset.for !== effect;
  }
}
faultForm.elements.effect.addEventListener("change", showEffectFields);
showEffectFields();

function numberOrNull(value) {
  return value === "" ? null : Number(value);
}

faultForm.addEventListener("submit", async (event) => {
  event.preventDefault();
  const f = faultForm.elements;
  const functions = f.functions.value.trim();
  const rule = {
    effect: f.effect.value,
    server: f.server.value || null,
    unit: numberOrNull(f.unit.value),
    functions: functions ? functions.split(/[ ,]+/).filter(Boolean).map(Number) : null,
    address_first: numberOrNull(f.address_first.value),
    address_last: numberOrNull(f.address_last.value),
    exception_code: Number(f.exception_code.value),
    delay: Number(f.delay.value || 0),
    junk_length: Number(f.junk_length.value || 10),
    pieces: Number(f.pieces.value || 2),
    pause: Number(f.pause.value || 0),
    count: numberOrNull(f.count.value),
    duration: numberOrNull(f.duration.value),
    probability: Number(f.probability.value || 1),
  };
  try {
    const created = await api("/api/faults", { method: "POST", body: rule });
    say(faultMessage, `Fault rule ${created.id} is active.`, "ok");
  } catch (error) {
    say(faultMessage, error.message, "error");
  }
});

function describeRule(rule) {
  const where = [];
  if (rule.server) where.push(`server ${rule.server}`);
  if (rule.unit !== null) where.push(`unit ${rule.unit}`);
  if (rule.functions) where.push(`function ${rule.functions.join(", ")}`);
  if (rule.address_first !== null || rule.address_last !== null) {
    where.push(`addresses ${rule.address_first ?? 0}–${rule.address_last ?? 65535}`);
  }
  if (rule.probability < 1) where.push(`${Math.round(rule.probability * 100)} % of them`);
  return where.join(", ") || "every request";
}

function effectText(rule) {
  const delay = rule.delay && rule.effect !== "delay" ? ` after ${rule.delay} s` : "";
  switch (rule.effect) {
    case "exception":
      return `exception ${String(rule.exception_code).padStart(2, "0")} (${EXCEPTION_CODES[rule.exception_code] ?? "?"})${delay}`;
    case "no_answer":
      return "no answer" + delay;
    case "delay":
      return `answer ${rule.delay} s late`;
    case "junk":
      return `${rule.junk_length} junk bytes${delay}`;
    default:
      return `answer in ${rule.pieces} pieces, ${rule.pause} s apart${delay}`;
  }
}

function renderRules(data) {
  rulesBody.replaceChildren();
  if (!data.items.length) {
    rulesBody.append(el("tr", {}, el("td", { colspan: 7, class: "muted" }, "No fault rules: every request is answered normally.")));
    return;
  }
  for (const rule of data.items) {
    const limit = [
      rule.count ? `${rule.count} request${rule.count === 1 ? "" : "s"}` : null,
      rule.duration !== null ? `${rule.duration} s` : null,
    ].filter(Boolean).join(" or ");
    const end = rule.active
      ? el("button", { type: "button", class: "danger", "aria-label": `End fault rule ${rule.id}`, onclick: () => endRule(rule.id) }, "End")
      : null;
    rulesBody.append(
      el(
        "tr",
        { class: rule.active ? "" : "muted" },
        el("td", { class: "num" }, rule.id),
        el("td", {}, effectText(rule)),
        el("td", {}, describeRule(rule)),
        el("td", {}, limit || "until ended"),
        el("td", { class: "num" }, rule.applied),
        el("td", {}, rule.active ? el("span", { class: "badge running" }, "active") : `ended (${rule.ended})`),
        el("td", {}, end),
      ),
    );
  }
}

async function endRule(id) {
  try {
    await api(`/api/faults/${id}`, { method: "DELETE" });
    say(faultMessage, `Fault rule ${id} ended.`, "ok");
  } catch (error) {
    say(faultMessage, error.message, "error");
  }
}

function resultBadge(call) {
  const text = call.result === "ok" ? "ok" : call.detail;
  return el("span", { class: `badge ${call.result}` }, text);
}

// Calls arrive once a second; the table is redrawn at most once a second (at
// once after a quiet second), and every two seconds while more calls arrive
// than a redraw shows: then the rows are replaced wholesale anyway, nobody
// reads them at that pace, and each redraw costs the browser CPU that the
// simulated devices may need.
const REDRAW_INTERVAL = 1000;
const BUSY_REDRAW_INTERVAL = 2000;
const SHOWN_PER_REDRAW = 50;
let redrawInterval = REDRAW_INTERVAL;
let waiting = []; // calls not drawn yet, oldest first
let notShown = 0;
let redrawTimer = null;
let lastRedraw = -Infinity;

function addCalls(data) {
  seen += data.items.length + (data.skipped || 0);
  notShown += data.skipped || 0;
  waiting.push(...data.items);
  if (waiting.length > SHOWN_PER_REDRAW) {
    notShown += waiting.length - SHOWN_PER_REDRAW;
    waiting = waiting.slice(-SHOWN_PER_REDRAW);
  }
  if (redrawTimer === null) redrawTimer = setTimeout(redraw, Math.max(0, lastRedraw + redrawInterval - performance.now()));
}

function forgetCalls() {
  callsBody.replaceChildren();
  seen = 0;
  waiting = [];
  notShown = 0;
  redrawInterval = REDRAW_INTERVAL;
}

function redraw() {
  redrawTimer = null;
  lastRedraw = performance.now();
  summary.textContent = `${seen} call${seen === 1 ? "" : "s"} seen since this page opened.` + (notShown ? ` (${notShown} not shown: too fast)` : "");
  const calls = waiting;
  redrawInterval = notShown ? BUSY_REDRAW_INTERVAL : REDRAW_INTERVAL;
  waiting = [];
  notShown = 0;
  if (pause.checked) return;
  const fragment = document.createDocumentFragment();
  for (const call of calls.reverse()) {
    fragment.append(
      el(
        "tr",
        { dataset: { id: call.id }, title: `request ${call.request_pdu}\nresponse ${call.response}` },
        el("td", { class: "mono" }, formatTime(call.time)),
        el("td", {}, call.server),
        el("td", { class: "mono" }, call.peer),
        el("td", { class: "num" }, call.unit),
        el("td", {}, `${call.function} ${call.function_name.replaceAll("_", " ")}`),
        el("td", { class: "num" }, call.address ?? ""),
        el("td", { class: "num" }, call.count ?? ""),
        el("td", {}, resultBadge(call)),
        el("td", { class: "num" }, call.fault ?? ""),
        el("td", { class: "num" }, call.duration_ms.toFixed(1)),
      ),
    );
  }
  callsBody.prepend(fragment);
  while (callsBody.rows.length > KEEP) callsBody.deleteRow(-1);
}

function connect() {
  const params = formToParams(filters);
  history.replaceState(null, "", `?${params}`);
  document.getElementById("pcap").href = `/api/calls.pcap?${params}`;
  params.set("server_port", "502");
  document.getElementById("pcap502").href = `/api/calls.pcap?${params}`;
  params.delete("server_port");
  if (source) source.close();
  forgetCalls();
  // The page draws one batch of calls a second: calls sent faster would be parsed and dropped.
  params.set("interval", String(REDRAW_INTERVAL / 1000));
  source = live(`/api/calls/events?${params}`, { calls: addCalls, faults: renderRules });
}

filters.addEventListener("submit", (event) => {
  event.preventDefault();
  connect();
});
document.getElementById("clear").addEventListener("click", async () => {
  await api("/api/calls", { method: "DELETE" });
  forgetCalls();
  summary.textContent = "Recorded calls cleared.";
});

api("/api/servers")
  .then((data) => {
    for (const id of ["fault-server", "traffic-server"]) {
      const select = document.getElementById(id);
      for (const listener of data.items) select.append(el("option", { value: listener.name }, listener.name));
    }
    formFromLocation(filters);
  })
  .catch(() => {})
  .finally(connect);
