// The registers page: a filtered, paged list of named registers with live values and inline editing.
import { api, el, formFromLocation, formToParams, live, say } from "./common.js";

const form = document.getElementById("filters");
const body = document.querySelector("#registers tbody");
const summary = document.getElementById("summary");
const position = document.getElementById("position");
const message = document.getElementById("message");
const previous = document.getElementById("previous");
const next = document.getElementById("next");
const rows = new Map(); // register id -> {input, raw, item}
let source = null;
let total = 0;

function shown(item) {
  const value = item.value;
  if (item.type === "bits") return value.map((bit) => (bit ? "1" : "0")).join("");
  if (typeof value === "number" && item.type === "float32") return String(Number(value.toPrecision(7)));
  return String(value);
}

function parsed(item, text) {
  if (item.type === "string") return text;
  if (item.type === "bits") {
    if (!/^[01]*$/.test(text)) throw new Error("bits are written as 0 and 1, bit 0 first");
    return [...text].map((char) => char === "1");
  }
  if (["NaN", "Infinity", "-Infinity"].includes(text.trim())) return text.trim();
  const number = Number(text);
  if (text.trim() === "" || Number.isNaN(number)) throw new Error(`${item.id} takes a number`);
  return number;
}

async function write(item, value, input) {
  const row = rows.get(item.id);
  row.pending += 1; // live updates wait: they may be older than this write
  try {
    const result = await api(`/api/registers/${encodeURIComponent(item.device)}/${encodeURIComponent(item.name)}`, {
      method: "PUT",
      body: { value },
    });
    say(message, `${item.id} set to ${shown(result)}`, "ok");
    row.pending -= 1;
    update(result);
  } catch (error) {
    row.pending -= 1;
    say(message, error.message, "error");
    if (input) input.setAttribute("aria-invalid", "true");
    if (input && input.type === "checkbox") input.checked = Boolean(row.item.value);
  }
}

function valueCell(item) {
  const label = `Value of ${item.id}`;
  let input;
  if (item.type === "bool") {
    input = el("input", { type: "checkbox", "aria-label": label });
    input.checked = Boolean(item.value);
    input.addEventListener("change", () => write(item, input.checked, input));
  } else {
    input = el("input", { type: "text", "aria-label": label, spellcheck: "false", autocomplete: "off" });
    input.value = shown(item);
    input.addEventListener("keydown", (event) => {
      if (event.key === "Escape") {
        input.value = shown(rows.get(item.id).item);
        input.removeAttribute("aria-invalid");
        input.blur();
      } else if (event.key === "Enter") {
        event.preventDefault();
        let value;
        try {
          value = parsed(item, input.value);
        } catch (error) {
          say(message, error.message, "error");
          input.setAttribute("aria-invalid", "true");
          return;
        }
        input.removeAttribute("aria-invalid");
        write(item, value, input);
      }
    });
    input.addEventListener("blur", () => {
      // Leaving without Enter keeps the live value.
      input.value = shown(rows.get(item.id).item);
      input.removeAttribute("aria-invalid");
    });
  }
  input.dataset.id = item.id;
  return el("td", { class: "value" }, input);
}

function render(page) {
  rows.clear();
  body.replaceChildren();
  total = page.total;
  for (const item of page.items) {
    const raw = el("td", { class: "mono" }, item.raw.join(" "));
    const cell = valueCell(item);
    const row = el(
      "tr",
      { dataset: { id: item.id } },
      el("td", {}, item.device),
      el("td", { class: "num" }, item.unit ?? "any"),
      el("td", {}, item.table.replace("_", " ")),
      el("td", { class: "num" }, item.count > 1 ? `${item.address}–${item.address + item.count - 1}` : item.address),
      el("th", { scope: "row", title: item.description || undefined }, item.name, item.read_only ? el("span", { class: "muted" }, " (read-only)") : null),
      el("td", {}, item.type + (item.scale !== 1 ? ` ×${item.scale}` : "")),
      cell,
      el("td", {}, item.units),
      raw,
      el("td", { class: "muted" }, item.action ?? ""),
    );
    rows.set(item.id, { input: cell.firstChild, raw, item, pending: 0 });
    body.append(row);
  }
  const first = page.items.length ? page.offset + 1 : 0;
  const last = page.offset + page.items.length;
  summary.textContent = `${page.total} register${page.total === 1 ? "" : "s"} match.`;
  position.textContent = page.items.length ? `${first}–${last} of ${page.total}` : "nothing to show";
  previous.disabled = page.offset === 0;
  next.disabled = last >= page.total;
  if (!page.items.length) body.append(el("tr", {}, el("td", { colspan: 10, class: "muted" }, "No register matches these filters.")));
}

function update(change) {
  const row = rows.get(change.id);
  if (!row || row.pending) return;
  row.item = { ...row.item, value: change.value, raw: change.raw };
  row.raw.textContent = change.raw.join(" ");
  const input = row.input;
  if (document.activeElement === input && input.type !== "checkbox") return; // do not overwrite what is being typed
  if (input.type === "checkbox") input.checked = Boolean(change.value);
  else input.value = shown(row.item);
  flash(row);
}

// A changed value is highlighted for a second after its last change, then
// fades (a CSS transition).  Not an animation per change: values that change
// several times a second would keep the browser repainting at its frame rate.
function flash(row) {
  row.input.classList.add("changed");
  clearTimeout(row.flashTimer);
  row.flashTimer = setTimeout(() => row.input.classList.remove("changed"), 1000);
}

function connect() {
  const params = formToParams(form);
  history.replaceState(null, "", `?${params}`);
  if (source) source.close();
  source = live(`/api/registers/events?${params}`, {
    page: render,
    values: (data) => data.items.forEach(update),
  });
}

function move(step) {
  const limit = Number(form.elements.limit.value);
  const offset = Math.max(0, Number(form.elements.offset.value || 0) + step * limit);
  if (offset >= total && step > 0) return;
  form.elements.offset.value = offset;
  connect();
}

form.addEventListener("submit", (event) => {
  event.preventDefault();
  form.elements.offset.value = 0;
  connect();
});
previous.addEventListener("click", () => move(-1));
next.addEventListener("click", () => move(1));

formFromLocation(form);
connect();
api("/api/devices?limit=1000")
  .then((page) => {
    const list = document.getElementById("device-names");
    list.replaceChildren(...page.items.map((device) => el("option", { value: device.name })));
  })
  .catch(() => {});
