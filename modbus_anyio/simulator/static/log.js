// The log page: recent records, newest first, live.
import { el, formatTime, formFromLocation, formToParams, live } from "./common.js";

const form = document.getElementById("filters");
const body = document.querySelector("#log tbody");
const pause = document.getElementById("pause");
const KEEP = 1000;
let source = null;

function add(data) {
  if (pause.checked) return;
  const fragment = document.createDocumentFragment();
  for (const entry of data.items.slice().reverse()) {
    fragment.append(
      el(
        "tr",
        {},
        el("td", { class: "mono" }, formatTime(entry.time)),
        el("td", {}, el("span", { class: `badge ${entry.level}` }, entry.level.toLowerCase())),
        el("td", { class: "muted" }, entry.logger),
        el("td", { class: "message" }, entry.message),
      ),
    );
  }
  body.prepend(fragment);
  while (body.rows.length > KEEP) body.deleteRow(-1);
}

function connect() {
  const params = formToParams(form);
  history.replaceState(null, "", `?${params}`);
  if (source) source.close();
  body.replaceChildren();
  source = live(`/api/log/events?${params}`, { log: add });
}

form.addEventListener("submit", (event) => {
  event.preventDefault();
  connect();
});
formFromLocation(form);
connect();
