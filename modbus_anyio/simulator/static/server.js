// The server page: status, listeners with their clients and counters, busiest devices.
import { api, el, formatDuration, live, say } from "./common.js";

const stats = document.getElementById("stats");
const listenersBody = document.querySelector("#listeners tbody");
const devicesBody = document.querySelector("#devices tbody");
const about = document.getElementById("about");
const message = document.getElementById("message");

let uptime = { base: 0, at: 0, element: null };

function stat(label, value) {
  return el("div", { class: "stat" }, el("b", {}, value), el("span", {}, label));
}

// Events come when something changes; the uptime moves on between them.
setInterval(() => {
  if (uptime.element) uptime.element.textContent = formatDuration(uptime.base + (performance.now() - uptime.at) / 1000);
}, 1000);

async function toggle(listener) {
  const action = listener.state === "running" ? "stop" : "start";
  try {
    const result = await api(`/api/servers/${encodeURIComponent(listener.name)}/${action}`, { method: "POST" });
    say(message, `Listener ${result.name} is ${result.state}.`, "ok");
  } catch (error) {
    say(message, error.message, "error");
  }
}

function render(server) {
  const totals = server.totals;
  const uptimeStat = stat("uptime", formatDuration(server.uptime));
  uptime = { base: server.uptime, at: performance.now(), element: uptimeStat.firstChild };
  stats.replaceChildren(
    stat("status", server.status),
    uptimeStat,
    stat("requests", totals.requests ?? 0),
    stat("exceptions", totals.exceptions ?? 0),
    stat("faults applied", totals.faults ?? 0),
    stat("active fault rules", server.faults_active),
    stat("devices", server.devices),
    stat("registers", server.registers),
  );
  listenersBody.replaceChildren();
  for (const listener of server.listeners) {
    const running = listener.state === "running";
    const clients = listener.connections.length
      ? el("ul", { class: "plain" }, listener.connections.map((c) => el("li", { class: "mono" }, c.peer + (c.role ? ` (role ${c.role})` : ""))))
      : el("span", { class: "muted" }, "none");
    listenersBody.append(
      el(
        "tr",
        {},
        el("th", { scope: "row" }, listener.name),
        el("td", { class: "mono" }, `${listener.transport}${listener.framer !== "socket" ? "/" + listener.framer : ""} ${listener.addresses.join(", ")}`),
        el("td", {}, el("span", { class: `badge ${listener.state}` }, listener.state), listener.error ? el("div", { class: "message error" }, listener.error) : null),
        el("td", {}, listener.units.length > 8 ? `${listener.units.length} units` : listener.units.join(", ")),
        el("td", {}, clients),
        el("td", { class: "num" }, listener.counters.requests),
        el("td", { class: "num" }, listener.counters.exceptions),
        el("td", { class: "num" }, listener.counters.no_answer),
        el("td", { class: "num" }, listener.counters.faults),
        el("td", {}, el("button", { type: "button", "aria-label": `${running ? "Stop" : "Start"} listener ${listener.name}`, onclick: () => toggle(listener) }, running ? "Stop" : "Start")),
      ),
    );
  }
  devicesBody.replaceChildren();
  if (!server.busiest_devices.length) {
    devicesBody.append(el("tr", {}, el("td", { colspan: 6, class: "muted" }, "No requests yet.")));
  }
  for (const device of server.busiest_devices) {
    devicesBody.append(
      el(
        "tr",
        {},
        el("th", { scope: "row" }, el("a", { href: `/registers?device=${encodeURIComponent(device.name)}` }, device.name)),
        el("td", { class: "num" }, device.unit ?? "any"),
        el("td", { class: "num" }, device.counters.requests),
        el("td", { class: "num" }, device.counters.exceptions),
        el("td", { class: "num" }, device.counters.no_answer),
        el("td", { class: "num" }, device.counters.faults),
      ),
    );
  }
  about.replaceChildren(
    el("li", {}, `modbuskit ${server.version}`),
    el("li", {}, `Configuration: ${server.config}`),
    server.description ? el("li", {}, server.description) : null,
    el("li", {}, `State file: ${server.state_file ?? "none"}${server.state_file ? ` (${server.state_saves} saves)` : ""}`),
    el("li", {}, `Actions: ${server.actions.timers} on timers, ${server.actions.runs} runs, ${server.actions.failures} failed`),
    el("li", {}, `Calls recorded: ${server.calls_recorded}`),
    el("li", {}, el("a", { href: "/openapi.json" }, "REST API description (OpenAPI)"), " · ", el("a", { href: "/api/schema" }, "configuration schema")),
  );
}

live("/api/server/events", { server: render });
