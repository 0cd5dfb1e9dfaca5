// research dashboard: fetches each page's JSON and draws every figure with plotly.js.
// A figure is research's figure data (research/report/figure.py), the same the PNG pictures
// and the HTML report draw; drawFigure turns it into plotly traces, so a plugin's own
// picture appears here unchanged. A running study is polled every second for what is new.
"use strict";

const PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
                 "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"];
const GRAY = "#9a9a9a";
const POLL_MS = 1000;            // a running study: new epochs appear within about a second
const IDLE_POLL_MS = 4000;       // a study nobody runs: notice when it is resumed
const REFRESH_MS = 10000;        // a running study's whole figures (its ranking) at most this often
const TOKEN = document.querySelector('meta[name="research-token"]').content;
const body = document.body;
const content = document.getElementById("content");

// ---- small helpers ------------------------------------------------------------------------

function el(tag, attributes, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attributes || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

// replaceChildren without the nulls that stand for "nothing here"
function fill(node, ...children) {
  node.replaceChildren(...children.flat().filter((child) => child !== null && child !== undefined));
}

function short(value) {
  if (value === null || value === undefined) return "-";
  if (typeof value === "number") return Number.isInteger(value) ? String(value) : value.toPrecision(4).replace(/\.?0+(e|$)/, "$1");
  if (typeof value === "object") return JSON.stringify(value);
  return String(value);
}

function when(seconds) {
  return seconds ? new Date(seconds * 1000).toLocaleString() : "-";
}

function label(metric) { return metric.replaceAll("_", " "); }

function showError(text) {
  const box = document.getElementById("error");
  box.textContent = text;
  box.hidden = !text;
}

async function getJSON(path, params) {
  const query = new URLSearchParams();
  for (const [key, value] of Object.entries(params || {})) {
    for (const item of Array.isArray(value) ? value : [value]) query.append(key, item);
  }
  let response;
  try {
    response = await fetch(path + (query.toString() ? "?" + query : ""), {headers: {"X-Research-Token": TOKEN}});
  } catch (error) {  // no answer at all: the browser says only "Failed to fetch"
    throw new Error("the dashboard is not answering (stopped, or its machine out of reach); this page keeps " +
                    "what it showed and asks again. A new `research dashboard` prints a new address to open.");
  }
  const data = await response.json();
  if (!response.ok) throw new Error(data.error || response.statusText);
  showError("");
  return data;
}

function table(headers, rows, options) {
  const numeric = (options && options.numeric) || new Set();
  const head = el("tr", {}, headers.map((h) => el("th", {}, h)));
  const lines = rows.map((row, index) => el("tr", {class: options && options.rowClass ? options.rowClass(index) : null},
    row.map((cell, column) => el("td", {class: numeric.has(column) ? "num" : null},
      cell instanceof Node ? cell : short(cell)))));
  return el("table", {}, head, lines);
}

function link(href, text) { return el("a", {href}, text); }

function studyLink(name) { return link("/study?name=" + encodeURIComponent(name), name); }

// ---- figures --------------------------------------------------------------------------------

// Plotly reads its texts as a little HTML (<br>, <b>, links): the store's and the plugins'
// words are escaped first, so a name or a value is always shown as it is.
function esc(text) {
  return String(text).replaceAll("&", "&amp;").replaceAll("<", "&lt;").replaceAll(">", "&gt;");
}

function colorOf(index) { return index === null || index === undefined ? GRAY : PALETTE[index % PALETTE.length]; }

function hoverText(info) {
  if (!info) return "";
  const lines = [];
  for (const [key, value] of Object.entries(info)) {
    if (key === "config" && value && typeof value === "object") {
      for (const [name, item] of Object.entries(value)) lines.push(esc(name + " = " + short(item)));
    } else {
      lines.push(esc(label(key) + ": " + short(value)));
    }
  }
  return lines.join("<br>");
}

// Where a value goes on an axis: log1m axes plot 1 - value on a log scale.
function place(axis, value) { return axis.scale === "log1m" ? 1 - value : value; }

function log1mTicks(low, high) {
  // ticks at 0.9, 0.99, 0.999 ... (and 0, 0.5) within [low, high], shown as values
  const values = [], texts = [];
  for (let k = 0; k <= 12; k++) {
    const value = 1 - Math.pow(10, -k);
    if (value >= low - 1e-12 && value <= high + 1e-12) { values.push(Math.pow(10, -k)); texts.push(k === 0 ? "0" : (1 - Math.pow(10, -k)).toFixed(k)); }
  }
  return {tickvals: values, ticktext: texts};
}

function plotlyAxis(axis, domain, anchor, values) {
  const out = {domain, anchor, title: {text: esc(axis.label), font: {size: 12}}, automargin: true, zeroline: false};
  const limits = axis.limits;
  if (axis.scale === "log") {
    out.type = "log";
    if (limits) out.range = [Math.log10(limits[0]), Math.log10(limits[1])];
  } else if (axis.scale === "log1m") {
    out.type = "log";
    const low = limits ? limits[0] : Math.min(...values), high = limits ? limits[1] : Math.max(...values);
    if (isFinite(low) && isFinite(high)) {
      out.range = [Math.log10(1 - low), Math.log10(1 - high)];   // reversed: values grow to the right
      Object.assign(out, log1mTicks(low, high));
    }
  } else if (axis.scale === "choice") {
    out.tickvals = axis.categories.map((_, i) => i);
    out.ticktext = axis.categories.map((c) => esc(c).replaceAll("\n", "<br>"));
    out.range = [-0.5, axis.categories.length - 0.5];
  } else if (limits) {
    out.range = [limits[0], limits[1]];
  }
  if (axis.integer) {
    out.tickformat = "d";
    const span = limits ? limits[1] - limits[0] : Math.max(...values) - Math.min(...values);
    if (isFinite(span) && span <= 10) out.dtick = 1;  // whole numbers only, never 1 1 2 2
  }
  if (out.type === "log" && !out.tickvals) {
    out.exponentformat = "power";
    out.dtick = "D2";  // labels at 2 and 5 of each decade, not every digit
  }
  return out;
}

// Series that look alike (same label, emphasis, style, marker, color) become one trace, their
// lines separated by gaps: a thousand faded curves draw as one trace, each point keeping its
// own hover text.
function tracesOf(panel, index, longest) {
  const groups = new Map();
  for (const series of panel.series) {
    const key = [series.label, series.emphasis, series.style, series.marker, series.color, series.steps].join("|");
    if (!groups.has(key)) groups.set(key, {series, x: [], y: [], text: []});
    const group = groups.get(key);
    if (group.x.length && series.style !== "points") { group.x.push(null); group.y.push(null); group.text.push(""); }
    const hover = hoverText(series.info);
    for (let i = 0; i < series.x.length; i++) {
      group.x.push(place(panel.x, series.x[i]));
      group.y.push(place(panel.y, series.y[i]));
      group.text.push(hover + (panel.x.scale === "log1m" ? "<br>x = " + short(series.x[i]) : ""));
    }
  }
  const order = {faded: 0, normal: 1, highlighted: 2};
  const suffix = index ? String(index + 1) : "";
  return [...groups.values()].sort((a, b) => order[a.series.emphasis] - order[b.series.emphasis]).map((group) => {
    const s = group.series;
    const color = colorOf(s.color);
    const markers = s.marker === "none" ? false : s.marker === "auto" ? (s.style === "points" || longest <= 15) : true;
    const symbol = {dot: "circle", cross: "x", ring: "circle-open", auto: "circle"}[s.marker] || "circle";
    const width = s.emphasis === "highlighted" ? 2.5 : s.emphasis === "faded" ? 1 : 1.6;
    return {
      type: "scatter", x: group.x, y: group.y, text: group.text, hoverinfo: "text", hoverlabel: {align: "left"},
      mode: s.style === "points" ? "markers" : markers ? "lines+markers" : "lines",
      name: esc(s.label || ""), showlegend: Boolean(s.label), legendgroup: s.label || undefined,
      opacity: s.emphasis === "faded" ? 0.45 : 1, connectgaps: false,
      line: {color, width, dash: s.style === "dashed" ? "dash" : "solid", shape: s.steps ? "hv" : "linear"},
      marker: {color, symbol, size: s.marker === "ring" ? 14 : s.emphasis === "highlighted" ? 7 : 6,
               line: {width: s.marker === "ring" ? 2 : 0, color}},
      xaxis: "x" + suffix, yaxis: "y" + suffix,
    };
  });
}

function marksOf(panel, index, shapes, annotations) {
  const suffix = index ? String(index + 1) : "";
  const xref = "x" + suffix, yDomain = "y" + suffix + " domain";
  for (const mark of panel.marks) {
    const color = colorOf(mark.color);
    if (mark.kind === "vline") {
      shapes.push({type: "line", xref, yref: yDomain, x0: place(panel.x, mark.x), x1: place(panel.x, mark.x), y0: 0, y1: 1,
                   line: {color, width: 1.2, dash: "dot"}});
      if (mark.text) annotations.push({xref, yref: yDomain, x: place(panel.x, mark.x), y: 0.98, text: esc(mark.text),
                                       showarrow: false, xanchor: "right", font: {size: 10, color}});
    } else if (mark.kind === "arrow") {
      annotations.push({xref, yref: yDomain, axref: xref, ayref: yDomain, x: place(panel.x, mark.end), y: 0.9,
                        ax: place(panel.x, mark.start), ay: 0.9, text: "", showarrow: true, arrowhead: 2,
                        arrowcolor: color, arrowwidth: 1.5});
      if (mark.text) annotations.push({xref, yref: yDomain, x: (place(panel.x, mark.start) + place(panel.x, mark.end)) / 2,
                                       y: 0.95, text: esc(mark.text), showarrow: false, font: {size: 10, color}});
    } else if (mark.kind === "cross") {
      annotations.push({xref, yref: yDomain, x: place(panel.x, mark.x), y: 0.02, text: "✕", showarrow: false,
                        font: {size: 12, color}, hovertext: hoverText(mark.info) || esc(mark.legend || "") || undefined});
    }
  }
}

// A figure's panels laid out in rows of `columns`, heights in proportion to each row's.
function plotlyFigure(figure) {
  const columns = figure.columns, rows = Math.ceil(figure.panels.length / columns);
  const heights = [];
  figure.panels.forEach((panel, i) => { const r = Math.floor(i / columns); heights[r] = Math.max(heights[r] || 0, panel.height); });
  const total = heights.reduce((a, b) => a + b, 0), gapY = rows > 1 ? 0.16 : 0, gapX = columns > 1 ? 0.06 : 0;
  const layout = {title: {text: esc(figure.title), font: {size: 14}, x: 0, xanchor: "left", xref: "paper"},
                  hovermode: "closest", shapes: [], annotations: [],
                  margin: {t: 50, r: 20, b: 50, l: 60}, paper_bgcolor: "#fff", plot_bgcolor: "#fff",
                  showlegend: Boolean(figure.legend)};
  const traces = [];
  let top = 1;
  const rowTop = [];
  for (let r = 0; r < rows; r++) { rowTop.push(top); top -= (heights[r] / total) * (1 - gapY * (rows - 1)) + gapY; }
  const longest = Math.max(0, ...figure.panels.flatMap((p) => p.series.map((s) => s.x.length)));
  figure.panels.forEach((panel, i) => {
    const r = Math.floor(i / columns), c = i % columns;
    const width = (1 - gapX * (columns - 1)) / columns;
    const x0 = c * (width + gapX), y1 = rowTop[r], y0 = y1 - (heights[r] / total) * (1 - gapY * (rows - 1));
    const suffix = i ? String(i + 1) : "";
    const xs = panel.series.flatMap((s) => s.x), ys = panel.series.flatMap((s) => s.y);
    layout["xaxis" + suffix] = plotlyAxis(panel.x, [x0, x0 + width], "y" + suffix, xs);
    layout["yaxis" + suffix] = plotlyAxis(panel.y, [Math.max(0, y0), Math.min(1, y1)], "x" + suffix, ys);
    if (figure.share_x && i >= columns) layout["xaxis" + suffix].matches = "x";
    if (figure.share_y && i > 0) layout["yaxis" + suffix].matches = "y";
    traces.push(...tracesOf(panel, i, longest));
    marksOf(panel, i, layout.shapes, layout.annotations);
  });
  const named = new Set();  // one legend entry per label, across the panels
  for (const trace of traces) {
    trace.showlegend = Boolean(trace.name) && !named.has(trace.name);
    named.add(trace.name);
  }
  if (figure.legend) {
    // Below the axis titles, anchored to the bottom of the whole picture with room made for it,
    // wherever the figure asks for it: a key inside the panel would hide curves that a picture
    // on paper can place around, but a live chart cannot.
    // One entry a line: labels are long (a trial's score and configuration) and charts narrow.
    layout.legend = {orientation: "v", x: 0, xanchor: "left", yref: "container", y: 0, yanchor: "bottom"};
    layout.margin.b = 70 + 21 * (named.size + (figure.legend.title ? 1 : 0));
    if (figure.legend.title) layout.legend.title = {text: esc(figure.legend.title)};
  }
  const size = figure.size || [8, 2 + 3 * rows];
  layout.height = Math.round(Math.min(Math.max(size[1] * 90, 320), 1100)) + layout.margin.b - 50;
  return {traces, layout};
}

// No button may send a study off the machine: plotly.js 4 offers "Share chart" (to Plotly's
// cloud) unless told not to.
const PLOT_CONFIG = {responsive: true, displaylogo: false, showSendToCloud: false, showEditInChartStudio: false,
                     showLink: false, plotlyServerURL: ""};

function drawFigure(node, figure) {
  const {traces, layout} = plotlyFigure(figure);
  Plotly.react(node, traces, layout, PLOT_CONFIG);
}

// A figure in its box: heading, caption, the chart and the figure's tables beside it.
function figureBox(figure) {
  const chart = el("div", {class: "chart"});
  const tables = (figure.tables || []).map((t) => el("div", {}, el("h3", {}, t.title), table(t.headers, t.rows)));
  const box = el("section", {class: "figure"}, el("h2", {}, figure.name || figure.title),
                 figure.caption ? el("p", {class: "caption"}, figure.caption) : null,
                 el("div", {class: "figure-row"}, el("div", {style: "flex: 1 1 640px; min-width: 0"}, chart), tables));
  box.chart = chart;
  return box;
}

function isEmpty(figure) {
  return !figure.panels.some((p) => p.series.some((s) => s.x.length) || p.marks.length);
}

// ---- the studies page ---------------------------------------------------------------------

// Asks again after an error too: the error shows above what the page last drew.
async function studiesPage() {
  let running = false;
  try {
    running = await drawStudies();
  } catch (error) {
    showError(error.message);
  }
  setTimeout(studiesPage, running ? 2000 : IDLE_POLL_MS);
}

// Draws the studies; whether one of them runs.
async function drawStudies() {
  const data = await getJSON("/api/studies");
  const chosen = new Set([...document.querySelectorAll("input.compare:checked")].map((box) => box.value));
  const rows = data.studies.map((s) => [
    el("input", {type: "checkbox", class: "compare", value: s.name, checked: chosen.has(s.name)}),
    studyLink(s.name), s.strategy, el("span", {class: "state state-" + s.state}, s.state), when(s.created), s.trains,
    s.done + " / " + s.total, s.best === null ? "-" : short(s.best) + " " + label(s.metric),
  ]);
  const compare = el("button", {id: "compare", onclick: () => {
    const names = [...document.querySelectorAll("input.compare:checked")].map((box) => box.value);
    if (names.length < 2) { showError("choose two or more studies to compare"); return; }
    window.location.href = "/compare?" + names.map((n) => "study=" + encodeURIComponent(n)).join("&");
  }}, "Compare chosen studies");
  fill(content, 
    el("h1", {}, "Studies"), el("p", {class: "meta"}, data.store),
    data.studies.length ? table(["", "study", "strategy", "state", "created", "trains", "trials done", "best"], rows,
                                {numeric: new Set([6, 7])})
                        : el("p", {}, "No study yet: run one, e.g. research train --strategy caviar"),
    data.studies.length > 1 ? compare : null);
  content.querySelector("table")?.setAttribute("id", "studies");
  const running = data.studies.some((s) => s.state === "running");
  document.getElementById("live").textContent = running ? "live: refreshed every 2 s" : "";
  return running;
}

// ---- a study's page -----------------------------------------------------------------------

const study = {name: body.dataset.name, overview: null, figures: [], cursor: null, refreshed: 0, dirty: false};

function rankedTable(overview) {
  const metric = label(overview.metric);
  const tests = [...new Set(overview.trials.flatMap((t) => Object.keys(t.test)))].sort();
  const withRounds = overview.trials.some((t) => t.round !== null);
  const headers = ["rank", "trial", "status", ...(withRounds ? ["round"] : []), "best " + metric, "at epoch",
                   "final " + metric, ...tests.map(label), "epochs", ...overview.searched, "error"];
  const rows = overview.trials.map((t, i) => [
    i + 1, link("/trial?name=" + encodeURIComponent(overview.name) + "&number=" + t.number, String(t.number)),
    el("span", {class: "status-" + t.status}, t.status), ...(withRounds ? [t.round] : []), t.best, t.best_epoch, t.final,
    ...tests.map((name) => t.test[name]), t.epochs, ...overview.searched.map((n) => t.config[n]),
    t.error ? el("span", {title: t.error}, t.error.split("\n")[0]) : ""]);
  const numeric = new Set(headers.map((_, i) => i).filter((i) => i !== 2 && i !== headers.length - 1));
  const node = table(headers, rows, {numeric, rowClass: (i) => (i === 0 && overview.trials[0].best !== null ? "top" : null)});
  node.id = "ranked";
  return node;
}

function eventsTable(events) {
  const node = table(["#", "time", "kind", "trial", "epoch", "what"],
                     events.map((e) => [e.number, new Date(e.time * 1000).toLocaleTimeString(), e.kind, e.trial, e.epoch, e.text]),
                     {numeric: new Set([0, 3, 4])});
  node.id = "events";
  return node;
}

function controlsBox(overview) {
  if (!overview.controls.length) return null;
  const message = el("p", {id: "control-message"});
  const forms = overview.controls.map((control) => {
    const inputs = control.fields.map((f) => el("input", {name: f.name, placeholder: f.placeholder, "aria-label": f.label,
                                                           id: "control-" + control.name + "-" + f.name}));
    return el("form", {id: "control-" + control.name, title: control.help, onsubmit: async (event) => {
      event.preventDefault();
      if (control.confirm && !window.confirm(control.confirm)) return;
      const values = Object.fromEntries(inputs.map((input) => [input.name, input.value]));
      const response = await fetch("/api/control/" + encodeURIComponent(control.name) + "?name=" + encodeURIComponent(overview.name), {
        method: "POST", headers: {"Content-Type": "application/json", "X-Research-Token": TOKEN}, body: JSON.stringify({values})});
      const answer = await response.json();
      message.textContent = answer.message || answer.error;
      message.className = response.ok ? "" : "refused";
      if (response.ok) inputs.forEach((input) => { input.value = ""; });
    }}, inputs, el("button", {type: "submit"}, control.label));
  });
  return el("div", {class: "controls"}, el("strong", {}, "Steer: "), forms, message);
}

function settingsTable(overview) {
  const rows = [["strategy", overview.strategy], ["objective", overview.direction + " " + overview.metric],
                ["created", when(overview.created)], ["budget", overview.budget]];
  for (const [key, value] of Object.entries(overview.settings.space || {})) rows.push(["space " + key, value]);
  for (const [key, value] of Object.entries(overview.fixed || {})) rows.push([key, value]);
  return table(["setting", "value"], rows);
}

function statusLine(overview) {
  const counts = Object.entries(overview.statuses).map(([s, n]) => n + " " + s).join(", ");
  return el("p", {class: "meta", id: "status"}, el("span", {class: "state state-" + overview.state}, overview.state), " ",
            overview.strategy + " study; trials: " + (counts || "none yet") +
            (overview.budget ? " (budget " + overview.budget + ")" : ""));
}

async function drawStudyFigures(asked) {
  const data = await (asked || getJSON("/api/figures", {name: study.name}));
  study.figures = data.figures;
  study.cursor.epoch = data.cursor.epoch;  // the live curves go on from what these figures hold
  study.refreshed = Date.now();
  study.dirty = false;
  const holder = document.getElementById("figures");
  fill(holder, data.figures.map((item) => {
    if (isEmpty(item.figure)) return el("section", {class: "figure"}, el("h2", {}, item.figure.name || item.figure.title),
                                        el("p", {}, "Nothing to plot yet: no trial has trained an epoch."));
    const box = figureBox(item.figure);
    item.box = box;
    return box;
  }));
  for (const item of data.figures) if (item.box) drawFigure(item.box.chart, item.figure);
}

// New epochs extend the live figure's curves in place (a new trial gets a faded curve).
function extendLive(epochs) {
  const live = study.figures.find((item) => item.live && item.box);
  if (!live || !epochs.length) return false;
  const panel = live.figure.panels[0];
  const byTrial = new Map(panel.series.filter((s) => s.info && s.info.trial !== undefined).map((s) => [s.info.trial, s]));
  let grown = false;
  for (const [trial, epoch, metrics] of epochs) {
    const value = metrics[live.live];
    if (value === undefined || value === null) continue;
    let series = byTrial.get(trial);
    if (series && series.x.length && series.x[series.x.length - 1] >= epoch) continue;  // already drawn
    if (!series) {
      series = {x: [], y: [], label: "", emphasis: "faded", style: "solid", steps: false, marker: "auto", color: null, info: {trial}};
      panel.series.unshift(series);
      byTrial.set(trial, series);
    }
    series.x = [...series.x, epoch];
    series.y = [...series.y, value];
    grown = true;
  }
  if (grown) drawFigure(live.box.chart, live.figure);
  return grown;
}

async function pollStudy() {
  let wait = IDLE_POLL_MS;
  try {
    const c = study.cursor;
    const news = await getJSON("/api/updates", {name: study.name, after: c.epoch, events_after: c.event, since: c.time});
    study.cursor = news.cursor;
    const running = news.state === "running";
    wait = running ? POLL_MS : IDLE_POLL_MS;
    const grown = extendLive(news.epochs);
    if (news.epochs.length || news.trials.length || news.events.length || news.state !== study.overview.state) study.dirty = true;
    if (news.events.length) {
      study.overview.events.push(...news.events);
      document.getElementById("events").replaceWith(eventsTable(study.overview.events));
    }
    document.getElementById("live").textContent = running ? "live: " + (grown ? "new epochs " : "watching ") + new Date().toLocaleTimeString() : "";
    // The ranking, the tables and the figures that are not extended point by point: refreshed
    // when something changed, at most every REFRESH_MS while the study runs.
    if (study.dirty && (!running || Date.now() - study.refreshed > REFRESH_MS || !study.figures.some((f) => f.live && f.box))) {
      await refreshStudy();
    }
  } catch (error) {
    showError(error.message);
  }
  setTimeout(pollStudy, wait);
}

async function refreshStudy() {
  const overview = await getJSON("/api/study", {name: study.name});
  study.overview = overview;
  study.cursor.event = overview.cursor.event;  // the events table is redrawn whole from here
  document.getElementById("status").replaceWith(statusLine(overview));
  document.getElementById("ranked").replaceWith(rankedTable(overview));
  document.getElementById("events").replaceWith(eventsTable(overview.events));
  await drawStudyFigures();
}

async function studyPage() {
  const figures = getJSON("/api/figures", {name: study.name});  // asked for at once, drawn below
  figures.catch(() => {});  // its error is shown where it is awaited, not as an unhandled one
  const overview = await getJSON("/api/study", {name: study.name});
  study.overview = overview;
  study.cursor = overview.cursor;
  const compare = link("/?", "compare with other studies");
  fill(content, 
    el("h1", {}, "Study " + overview.name), statusLine(overview), controlsBox(overview),
    el("div", {id: "figures"}, el("p", {class: "muted"}, "drawing...")),
    el("h2", {}, "Trials, best first"), rankedTable(overview),
    el("h2", {}, "Events"), eventsTable(overview.events),
    el("h2", {}, "Settings"), settingsTable(overview), el("p", {}, compare));
  await drawStudyFigures(figures);
  setTimeout(pollStudy, POLL_MS);
}

// ---- a trial's page -----------------------------------------------------------------------

async function trialPage() {
  const data = await getJSON("/api/trial", {name: body.dataset.name, number: body.dataset.number});
  const box = figureBox(data.figure);
  fill(content, 
    el("h1", {}, "Trial " + data.number + " of ", studyLink(data.study)),
    el("p", {class: "meta"}, el("span", {class: "status-" + data.status}, data.status), " ; seed " + data.seed +
       (data.round !== null ? "; round " + data.round : "") + "; best " + label(data.metric) + " " + short(data.best) +
       (data.best_epoch ? " at epoch " + data.best_epoch : "")),
    data.error ? el("p", {class: "error"}, data.error) : null,
    box,
    el("h2", {}, "Configuration"), table(["name", "value"], Object.entries(data.config)),
    el("h2", {}, "Events"), data.events.length ? eventsTable(data.events) : el("p", {class: "muted"}, "No event of this trial."));
  if (!isEmpty(data.figure)) drawFigure(box.chart, data.figure);
}

// ---- studies side by side -----------------------------------------------------------------

async function comparePage() {
  const names = JSON.parse(body.dataset.names || "[]");
  const data = await getJSON("/api/compare", {study: names});
  const rows = data.studies.map((s) => [studyLink(s.name), s.strategy, s.count, label(s.metric) + " (" + s.direction.slice(0, 3) + ")",
    s.best, s.trials[0] ? "#" + s.trials[0].number + ": " + s.searched.map((n) => n + "=" + short(s.trials[0].config[n])).join(", ") : "-"]);
  const boxes = data.studies.map((s) => figureBox(s.figure));
  fill(content, el("h1", {}, "Compare " + names.join(", ")),
    table(["study", "strategy", "trials", "objective", "best", "best trial"], rows, {numeric: new Set([2, 4])}),
    el("div", {class: "side-by-side"}, boxes));
  data.studies.forEach((s, i) => { if (!isEmpty(s.figure)) drawFigure(boxes[i].chart, s.figure); });
}

const PAGES = {studies: studiesPage, study: studyPage, trial: trialPage, compare: comparePage};
PAGES[body.dataset.page]().catch((error) => showError(error.message));
