// descend playground: the page. It draws what the server's session computes and sends back
// what the learner changes. Plain canvas and SVG, no library, nothing fetched from elsewhere.
"use strict";

const $ = (id) => document.getElementById(id);
const COLORS = ["#e07b39", "#2d6cdf", "#2a9d5b", "#9b4dca", "#c0392b", "#8c6d31", "#17becf", "#7f7f7f"];
const OUTCOME = { global: "#2a9d5b", local: "#e07b39", diverged: "#c0392b", other: "#888888" };
const MAX_UPLOAD = 2 * 1024 * 1024;

const state = {
  ws: null, token: null, setup: null, playing: false, inflight: 0, nextId: 1,
  costs: [], epochs: [], path: [], frame: null, race: null, racing: false,
  drawn: 0, // frames drawn since the page loaded (read by the benchmark)
  lastFrameMs: 0,
};
window.playground = state; // for the tests and the benchmark

// --- connection ------------------------------------------------------------------------------

function connect() {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const ws = new WebSocket(`${scheme}://${location.host}/ws`);
  state.ws = ws;
  ws.onmessage = (event) => receive(JSON.parse(event.data));
  ws.onclose = () => {
    state.playing = false;
    showError("The connection to the playground server is closed (was it stopped?). Reload the page after starting it again.");
    setStatus("disconnected");
  };
}

function send(message) {
  if (!state.ws || state.ws.readyState !== WebSocket.OPEN) return false;
  message.id = state.nextId++;
  state.inflight += 1;
  state.sentAt = performance.now();
  state.ws.send(JSON.stringify(message));
  return true;
}

function receive(msg) {
  state.inflight = Math.max(0, state.inflight - 1);
  if (msg.type === "error") {
    showError(msg.message);
    stopPlaying();
    state.racing = false;
    updateRaceButtons();
    return;
  }
  if (state.playing && msg.type === "frame") tick(); // the next update, before drawing this one
  if (msg.type === "setup") { clearError(); applySetup(msg); }
  else if (msg.type === "frame") applyFrame(msg);
  else if (msg.type === "race") applyRace(msg);
  else if (msg.type === "minima") drawMinima(msg);
  state.lastFrameMs = performance.now() - state.sentAt;
  if (state.racing && msg.type === "race") setTimeout(raceTick, 0);
}

function showError(text) { const e = $("error"); e.textContent = text; e.hidden = false; }
function clearError() { $("error").hidden = true; }
function setStatus(text) { $("status").textContent = text; }

// --- settings --------------------------------------------------------------------------------

function readSettings() {
  const kind = $("batch-kind").value;
  const hidden = $("hidden").value.trim();
  return {
    data: $("data").value,
    hidden: hidden === "" || hidden.toLowerCase() === "none" ? [] : hidden.split(",").map((s) => s.trim()),
    activation: $("activation").value,
    loss: $("loss").value,
    optimizer: $("optimizer").value,
    lr: Number($("lr").value),
    batch: kind === "full" ? "full" : kind === "1" ? 1 : Number($("batch-k").value),
    seed: Number($("seed").value),
    val_split: Number($("val-split").value),
    sample: Number($("sample").value) || 0,
  };
}

function writeSettings(s) {
  $("data").value = s.data;
  $("hidden").value = s.hidden.length ? s.hidden.join(",") : "none";
  $("activation").value = s.activation;
  $("loss").value = s.loss;
  $("optimizer").value = s.optimizer;
  $("lr").value = s.lr;
  if (s.batch === "full") $("batch-kind").value = "full";
  else if (s.batch === 1) $("batch-kind").value = "1";
  else { $("batch-kind").value = "k"; $("batch-k").value = s.batch; }
  $("batch-k").disabled = $("batch-kind").value !== "k";
  $("seed").value = s.seed;
  $("val-split").value = s.val_split;
  $("sample").value = s.sample;
}

function configure(extra) {
  stopPlaying();
  send({ type: "configure", settings: Object.assign(readSettings(), extra || {}) });
}

function applySetup(msg) {
  state.setup = msg;
  if (msg.token) state.token = msg.token;
  const select = $("data");
  select.innerHTML = "";
  for (const name of msg.choices) {
    const option = document.createElement("option");
    option.value = name;
    option.textContent = name === "upload" || name === "given" ? msg.datasets[name] : name;
    select.appendChild(option);
  }
  writeSettings(msg.settings);
  $("data-note").textContent = `${msg.datasets[msg.settings.data] || ""} — ${msg.n_train} training, ${msg.n_val} validation samples; ${msg.updates_per_epoch} updates per epoch; cost ${msg.loss}.`;
  $("sample").max = msg.n_train - 1;
  state.costs = []; state.epochs = []; state.path = [];
  for (const [id, name] of [["dl-model", "model.npz"], ["dl-config", "config.toml"], ["dl-script", "run.py"], ["dl-data", "data.csv"]]) {
    $(id).href = `/download/${state.token}/${name}`;
  }
  applyFrame(msg);
}

function applyFrame(f) {
  state.frame = f;
  // Costs arrive as what is new since the request; a gap means a reset happened in between.
  if (f.cost_offset !== state.costs.length) state.costs.length = f.cost_offset;
  for (const c of f.costs) state.costs.push(c);
  for (const e of f.epochs) state.epochs.push(e);
  for (const p of f.path) state.path.push(p);
  const last = state.costs.length ? state.costs[state.costs.length - 1] : null;
  const ep = state.epochs.length ? state.epochs[state.epochs.length - 1] : null;
  let text = `update ${f.updates} · epoch ${f.epoch} (+${f.batch_in_epoch} updates)`;
  if (last !== null) text += ` · last batch cost ${fmt(last)}`;
  if (ep) text += ` · epoch cost ${fmt(ep.loss)}` + (ep.val_loss !== undefined ? ` · validation ${fmt(ep.val_loss)}` : "") +
    (ep.val_accuracy !== undefined ? ` (accuracy ${(100 * ep.val_accuracy).toFixed(1)}%)` : "");
  setStatus(text);
  if (f.diverged) { showError(f.diverged); stopPlaying(); }
  drawCost();
  drawMap(f);
  if (f.network) drawNetwork(f.network);
  state.drawn += 1;
  if (state.onDrawn) state.onDrawn(f); // the benchmark's hook
}

function fmt(x) {
  if (x === null || x === undefined) return "–";
  const a = Math.abs(x);
  if (a !== 0 && (a < 1e-3 || a >= 1e5)) return x.toExponential(3);
  return x.toPrecision(4);
}

// --- training controls -----------------------------------------------------------------------

function views() {
  const v = ["network"];
  if (state.setup && state.setup.points) v.push("boundary");
  return v;
}

// While playing, two requests are in flight: the server computes the next update while the
// page draws this one.
function tick() {
  while (state.playing && state.inflight < 4) {
    if (!send({ type: "step", n: Number($("speed").value), views: views() })) break;
  }
}

function startPlaying() { state.playing = true; $("play").textContent = "Pause"; $("play").classList.add("playing"); tick(); }
function stopPlaying() { state.playing = false; $("play").textContent = "Play"; $("play").classList.remove("playing"); }
function togglePlay() { if (state.playing) stopPlaying(); else startPlaying(); }
function stepOnce() { stopPlaying(); send({ type: "step", n: 1, views: views() }); }
function epochOnce() { stopPlaying(); send({ type: "epoch", views: views() }); }
function reset(newSeed) { stopPlaying(); send({ type: "reset", new_seed: newSeed }); }

function chooseData() {
  const name = $("data").value;
  const preset = state.setup && state.setup.presets[name];
  if (preset) writeSettings(Object.assign(readSettings(), preset, { data: name, sample: 0 }));
  configure();
}

function upload(file) {
  if (!file) return;
  if (file.size > MAX_UPLOAD) {
    showError(`${file.name} is ${(file.size / 1048576).toFixed(1)} MB; the playground takes CSV files up to 2 MB.`);
    return;
  }
  const reader = new FileReader();
  reader.onload = () => { stopPlaying(); send({ type: "upload", name: file.name, text: reader.result, target: $("target").value.trim() }); };
  reader.onerror = () => showError(`${file.name} could not be read by the browser.`);
  reader.readAsText(file);
}

// --- drawing helpers -------------------------------------------------------------------------

function prepareCanvas(canvas) {
  // The drawing buffer follows the size the page gives the canvas (and the screen's pixel
  // ratio); its shape stays that of its width and height attributes.
  const ratio = window.devicePixelRatio || 1;
  if (!canvas._aspect) {
    canvas._aspect = canvas.height / canvas.width;
    canvas.style.aspectRatio = `${canvas.width} / ${canvas.height}`;
  }
  // The width the page gives it, read once and then kept by a ResizeObserver: reading
  // clientWidth after the frame's other changes would force a layout per canvas per frame.
  if (canvas._cssW === undefined) {
    canvas._cssW = canvas.clientWidth;
    if (window.ResizeObserver) new ResizeObserver((entries) => { canvas._cssW = Math.round(entries[0].contentRect.width); }).observe(canvas);
  }
  const w = canvas._cssW || canvas.clientWidth || canvas.width, h = Math.round(w * canvas._aspect);
  if (canvas._w !== w || canvas._r !== ratio) {
    canvas._w = w; canvas._r = ratio; canvas._h = h;
    canvas.width = Math.round(w * ratio); canvas.height = Math.round(h * ratio);
  }
  const ctx = canvas.getContext("2d");
  ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
  ctx.clearRect(0, 0, canvas._w, canvas._h);
  return [ctx, canvas._w, canvas._h];
}

function axes(ctx, w, h, pad, x0, x1, y0, y1, xlabel) {
  ctx.strokeStyle = "#999"; ctx.lineWidth = 1; ctx.fillStyle = "#555"; ctx.font = "11px system-ui";
  ctx.beginPath(); ctx.moveTo(pad.l, pad.t); ctx.lineTo(pad.l, h - pad.b); ctx.lineTo(w - pad.r, h - pad.b); ctx.stroke();
  ctx.textAlign = "right";
  for (let i = 0; i <= 4; i++) {
    const v = y0 + (y1 - y0) * i / 4, y = h - pad.b - (h - pad.t - pad.b) * i / 4;
    ctx.fillText(fmt(v), pad.l - 3, y + 4);
  }
  ctx.textAlign = "center";
  ctx.fillText(fmt(x0), pad.l, h - pad.b + 13);
  ctx.fillText(fmt(x1), w - pad.r, h - pad.b + 13);
  ctx.fillText(xlabel, (w + pad.l) / 2, h - 3);
}

function line(ctx, pts, sx, sy, color, width) {
  ctx.strokeStyle = color; ctx.lineWidth = width; ctx.beginPath();
  let started = false;
  for (const [x, y] of pts) {
    if (y === null || !isFinite(y)) { started = false; continue; }
    if (!started) { ctx.moveTo(sx(x), sy(y)); started = true; } else ctx.lineTo(sx(x), sy(y));
  }
  ctx.stroke();
}

function quantile(values, q) {
  const v = values.filter((x) => x !== null && isFinite(x)).sort((a, b) => a - b);
  return v.length ? v[Math.min(v.length - 1, Math.floor(q * v.length))] : 1;
}

// --- the cost curve --------------------------------------------------------------------------

function drawCost() {
  const [ctx, w, h] = prepareCanvas($("cost"));
  const pad = { l: 52, r: 10, t: 8, b: 28 };
  const n = Math.max(state.costs.length, 1);
  const epochVals = state.epochs.flatMap((e) => [e.loss, e.val_loss]).filter((x) => x !== undefined);
  const top = Math.max(quantile(state.costs, 0.98), ...epochVals, 1e-6) * 1.05;
  const sx = (x) => pad.l + (w - pad.l - pad.r) * x / n;
  const sy = (y) => h - pad.b - (h - pad.t - pad.b) * Math.min(y, top) / top;
  axes(ctx, w, h, pad, 0, n, 0, top, "updates");
  // Every update's batch cost, thinned to about one point per pixel column.
  const every = Math.max(1, Math.floor(state.costs.length / (w - pad.l)));
  const pts = [];
  for (let i = 0; i < state.costs.length; i += every) pts.push([i + 1, state.costs[i]]);
  line(ctx, pts, sx, sy, "#b9c6dd", 1);
  line(ctx, [[0, null]].concat(state.epochs.map((e) => [e.updates, e.loss])), sx, sy, "#1f4fa8", 2);
  line(ctx, state.epochs.map((e) => [e.updates, e.val_loss === undefined ? null : e.val_loss]), sx, sy, "#e07b39", 2);
  for (const e of state.epochs) {
    ctx.fillStyle = "#1f4fa8"; ctx.fillRect(sx(e.updates) - 2, sy(e.loss) - 2, 4, 4);
    if (e.val_loss !== undefined) { ctx.fillStyle = "#e07b39"; ctx.fillRect(sx(e.updates) - 2, sy(e.val_loss) - 2, 4, 4); }
  }
}

// --- the decision boundary, the regression surface, the cost surface, the digit --------------

function hexToRgb(hex) { const v = parseInt(hex.slice(1), 16); return [(v >> 16) & 255, (v >> 8) & 255, v & 255]; }
function mix(rgb, t) { return rgb.map((c) => Math.round(255 + (c - 255) * t)); }
function diverging(t) { // t in [0, 1]: blue - white - orange
  const a = t < 0.5 ? hexToRgb(COLORS[1]) : hexToRgb(COLORS[0]);
  return mix(a, Math.abs(t - 0.5) * 2);
}

function heatmap(ctx, w, h, n, colorAt, smooth = true) {
  // One small canvas per grid size, reused from frame to frame.
  const cache = heatmap.cache || (heatmap.cache = {});
  if (!cache[n]) { const c = document.createElement("canvas"); c.width = n; c.height = n; cache[n] = [c, c.getContext("2d").createImageData(n, n)]; }
  const [off, img] = cache[n], octx = off.getContext("2d");
  for (let r = 0; r < n; r++) for (let c = 0; c < n; c++) {
    const rgb = colorAt(r * n + c); const k = ((n - 1 - r) * n + c) * 4; // row 0 at the bottom
    img.data[k] = rgb[0]; img.data[k + 1] = rgb[1]; img.data[k + 2] = rgb[2]; img.data[k + 3] = 255;
  }
  octx.putImageData(img, 0, 0);
  ctx.imageSmoothingEnabled = smooth; ctx.drawImage(off, 0, 0, w, h);
}

function drawMap(f) {
  const setup = state.setup; if (!setup) return;
  const panel = $("map-panel");
  if (setup.surface) return drawSurface(setup.surface);
  if (setup.points && f.boundary) return drawBoundary(setup, f.boundary);
  if (setup.image_shape && f.network) return drawDigit(f.network, setup.image_shape);
  if (!setup.points && !setup.image_shape) {
    $("map-title").textContent = "Decision boundary";
    $("map-note").textContent = `This data has ${setup.sizes[0]} features: the boundary is drawn for two features (and the cost surface for two parameters).`;
    const [ctx] = prepareCanvas($("map")); ctx.fillStyle = "#888";
  }
  panel.hidden = false;
}

function drawBoundary(setup, b) {
  const p = setup.points, [[x0, x1], [y0, y1]] = p.bounds;
  $("map-title").textContent = setup.task === "regression" ? "The prediction over the two features" : "Decision boundary";
  $("map-note").textContent = "Dots filled with their class colour: training samples; white dots with a coloured ring: validation samples.";
  const [ctx, w, h] = prepareCanvas($("map"));
  const lo = Math.min(...p.train_y), hi = Math.max(...p.train_y); // a regression's range
  let color;
  if (b.kind === "binary") color = (i) => diverging(1 - b.z[i] / 255);
  else if (b.kind === "classes") color = (i) => mix(hexToRgb(COLORS[b.cls[i] % COLORS.length]), 0.25 + 0.6 * b.z[i] / 255);
  else color = (i) => diverging(1 - (b.z[i] - lo) / ((hi - lo) || 1));
  heatmap(ctx, w, h, b.n, color);
  const sx = (x) => (x - x0) / (x1 - x0) * w, sy = (y) => h - (y - y0) / (y1 - y0) * h;
  const pointColor = (y) => {
    if (setup.task !== "regression") return COLORS[y % COLORS.length];
    const rgb = diverging(1 - (y - lo) / ((hi - lo) || 1)); return `rgb(${rgb})`;
  };
  const dot = (pt, y, filled) => {
    ctx.beginPath(); ctx.arc(sx(pt[0]), sy(pt[1]), 3.2, 0, 2 * Math.PI);
    // A dark outline on both: a dot of the background's own colour stays visible.
    ctx.fillStyle = filled ? pointColor(y) : "#fff"; ctx.fill();
    ctx.strokeStyle = "#222"; ctx.lineWidth = filled ? 0.9 : 0.6; ctx.stroke();
    if (!filled) { ctx.beginPath(); ctx.arc(sx(pt[0]), sy(pt[1]), 2.2, 0, 2 * Math.PI); ctx.strokeStyle = pointColor(y); ctx.lineWidth = 1.6; ctx.stroke(); }
  };
  p.train.forEach((pt, i) => dot(pt, p.train_y[i], true));
  p.val.forEach((pt, i) => dot(pt, p.val_y[i], false));
  const s = state.frame && state.frame.network ? state.frame.network.sample : null;
  if (s !== null && p.train[s]) {
    ctx.beginPath(); ctx.arc(sx(p.train[s][0]), sy(p.train[s][1]), 7, 0, 2 * Math.PI);
    ctx.strokeStyle = "#000"; ctx.lineWidth = 2; ctx.stroke();
  }
}

function drawSurface(sf) {
  $("map-title").textContent = `The cost surface over (${sf.names[0]}, ${sf.names[1]}) and the path`;
  $("map-note").textContent = `The full training cost for each ${sf.names[0]} (across) and ${sf.names[1]} (up); the star is its minimum, the line every update so far.`;
  const [ctx, w, h] = prepareCanvas($("map"));
  const logs = sf.cost.map((c) => Math.log(1e-6 + c)); const lo = Math.min(...logs), hi = Math.max(...logs);
  heatmap(ctx, w, h, sf.n, (i) => { const t = (logs[i] - lo) / ((hi - lo) || 1); return [Math.round(30 + 225 * t), Math.round(60 + 170 * t), Math.round(140 + 60 * (1 - t))]; });
  const sx = (x) => (x - sf.w[0]) / (sf.w[1] - sf.w[0]) * w, sy = (y) => h - (y - sf.b[0]) / (sf.b[1] - sf.b[0]) * h;
  ctx.strokeStyle = "#fff"; ctx.lineWidth = 1.5; ctx.beginPath();
  state.path.forEach((p, i) => { if (i === 0) ctx.moveTo(sx(p[0]), sy(p[1])); else ctx.lineTo(sx(p[0]), sy(p[1])); });
  ctx.stroke();
  const last = state.path[state.path.length - 1];
  if (last) { ctx.fillStyle = "#e07b39"; ctx.beginPath(); ctx.arc(sx(last[0]), sy(last[1]), 4, 0, 2 * Math.PI); ctx.fill(); }
  ctx.fillStyle = "#ffd400"; ctx.font = "18px system-ui"; ctx.textAlign = "center";
  ctx.fillText("★", sx(sf.minimum[0]), sy(sf.minimum[1]) + 6);
  ctx.fillStyle = "#fff"; ctx.font = "11px system-ui"; ctx.textAlign = "left";
  ctx.fillText(`${sf.names[0]} ${fmt(sf.w[0])} … ${fmt(sf.w[1])}`, 4, h - 4);
  ctx.fillText(`${sf.names[1]} ${fmt(sf.b[0])} … ${fmt(sf.b[1])}`, 4, 12);
}

function drawDigit(net, shape) {
  $("map-title").textContent = `Sample ${net.sample}: the input image`;
  $("map-note").textContent = "The 64 pixels the first layer reads (standardised when the data is).";
  const [ctx, w, h] = prepareCanvas($("map"));
  const v = net.input, lo = Math.min(...v), hi = Math.max(...v);
  heatmap(ctx, w, h, shape[0], (i) => { const r = Math.floor(i / shape[1]), c = i % shape[1]; const t = (v[(shape[0] - 1 - r) * shape[1] + c] - lo) / ((hi - lo) || 1); const g = Math.round(255 * (1 - t)); return [g, g, g]; }, false);
}

// --- the network, forward and backward -------------------------------------------------------

const SVG = "http://www.w3.org/2000/svg";
function svgEl(tag, attrs) { const e = document.createElementNS(SVG, tag); for (const k in attrs) e.setAttribute(k, attrs[k]); return e; }

// Edges on a canvas (a thousand lines redraw in a few milliseconds), nodes in SVG above it;
// the numbers of the node or edge under the pointer (or the finger) show below the drawing.
function buildNetwork(sizes) {
  const svg = $("net"); svg.innerHTML = "";
  const W = 800, H = Math.max(220, Math.min(520, 14 * Math.max(...sizes) + 40));
  svg.setAttribute("viewBox", `0 0 ${W} ${H}`);
  const canvas = $("net-edges"); canvas.width = W; canvas.height = H;
  canvas._aspect = null; canvas._w = null; // a new shape: prepareCanvas sizes it again
  const xs = sizes.map((_, l) => 40 + (W - 80) * l / (sizes.length - 1));
  const pos = sizes.map((n, l) => Array.from({ length: n }, (_, i) => [xs[l], n === 1 ? H / 2 : 20 + (H - 40) * i / (n - 1)]));
  const r = Math.max(3, Math.min(9, (H - 40) / Math.max(...sizes) / 2.4));
  const net = { sizes, pos, W, H, r, nodes: [] };
  sizes.forEach((n, l) => {
    const layerNodes = [];
    for (let i = 0; i < n; i++) {
      const [cx, cy] = pos[l][i];
      const c = svgEl("circle", { cx, cy, r });
      c.dataset.l = l; c.dataset.i = i;
      c.appendChild(svgEl("title", {}));
      svg.appendChild(c); layerNodes.push(c);
    }
    net.nodes.push(layerNodes);
  });
  const point = (ev) => {
    const box = svg.getBoundingClientRect();
    return [(ev.clientX - box.left) * W / box.width, (ev.clientY - box.top) * H / box.height];
  };
  const pick = (ev) => {
    if (ev.target.tagName === "circle") return showNode(ev.target, Number(ev.target.dataset.l), Number(ev.target.dataset.i));
    const edge = nearestEdge(net, ...point(ev));
    if (edge) showEdge(...edge);
  };
  svg.onclick = pick;
  svg.onmousemove = pick;
  return net;
}

function nearestEdge(net, x, y) {
  // The edge whose segment passes closest to (x, y), within 6 units of the drawing.
  const { pos, sizes } = net;
  let best = null, bestD = 36;
  for (let l = 0; l + 1 < sizes.length; l++) {
    const [x1] = pos[l][0], [x2] = pos[l + 1][0];
    if (x < x1 - 6 || x > x2 + 6) continue;
    for (let i = 0; i < sizes[l]; i++) for (let j = 0; j < sizes[l + 1]; j++) {
      const [ax, ay] = pos[l][i], [bx, by] = pos[l + 1][j];
      const dx = bx - ax, dy = by - ay, t = Math.max(0, Math.min(1, ((x - ax) * dx + (y - ay) * dy) / (dx * dx + dy * dy)));
      const ex = ax + t * dx - x, ey = ay + t * dy - y, d = ex * ex + ey * ey;
      if (d < bestD) { bestD = d; best = [l, i, j]; }
    }
  }
  return best;
}

function edgeColor(v, scale) { const t = Math.max(-1, Math.min(1, v / scale)); return t >= 0 ? `rgba(45,108,223,${0.15 + 0.85 * t})` : `rgba(224,123,57,${0.15 - 0.85 * t})`; }
function maxAbs(rows) { let m = 1e-12; for (const r of rows) for (const v of (Array.isArray(r) ? r : [r])) m = Math.max(m, Math.abs(v)); return m; }

function drawNetwork(n) {
  const sizes = state.setup.sizes;
  if (!state.net || state.net.sizes.join() !== sizes.join()) state.net = buildNetwork(sizes);
  state.netData = n;
  const grads = $("show-grads").checked, net = state.net;
  const [ctx, w] = prepareCanvas($("net-edges"));
  const k = w / net.W;
  ctx.lineCap = "round";
  // Each edge's value, as one of 2 * LEVELS + 1 shades: one path (one stroke) per shade.
  const LEVELS = 12, paths = Array.from({ length: 2 * LEVELS + 1 }, () => new Path2D());
  n.layers.forEach((layer, l) => {
    const M = grads ? layer.dW : layer.W, scale = maxAbs(M);
    for (let i = 0; i < sizes[l]; i++) for (let j = 0; j < sizes[l + 1]; j++) {
      const [ax, ay] = net.pos[l][i], [bx, by] = net.pos[l + 1][j];
      const path = paths[LEVELS + Math.round(LEVELS * Math.max(-1, Math.min(1, M[i][j] / scale)))];
      path.moveTo(ax * k, ay * k); path.lineTo(bx * k, by * k);
    }
  });
  paths.forEach((path, q) => {
    const t = (q - LEVELS) / LEVELS;
    ctx.strokeStyle = edgeColor(t, 1);
    ctx.lineWidth = k * (0.4 + 2.6 * Math.abs(t));
    ctx.stroke(path);
  });
  // Node values: activations forward; dC/da backward (the output layer shows dC/dz). Drawn on
  // the canvas too; the SVG circles above stay unchanged, for the pointer only.
  const acts = [n.input].concat(n.layers.map((L) => L.a));
  const dAs = n.layers.map((L) => L.da_in).concat([n.layers.length ? n.layers[n.layers.length - 1].dz : []]);
  ctx.strokeStyle = "#444"; ctx.lineWidth = k;
  acts.forEach((a, l) => {
    const v = grads ? dAs[l] : a, scale = maxAbs(v);
    net.pos[l].forEach(([x, y], i) => {
      const t = Math.max(-1, Math.min(1, v[i] / scale));
      ctx.fillStyle = grads ? edgeColor(v[i], scale) : `rgb(${diverging(0.5 - 0.5 * t)})`;
      ctx.beginPath(); ctx.arc(x * k, y * k, net.r * k, 0, 2 * Math.PI);
      ctx.fill(); ctx.stroke();
    });
  });
  const pred = n.prediction.map(fmt).join(", ");
  const setup = state.setup;
  const target = setup.task === "classification" && setup.classes.length ? setup.classes[n.target] : fmt(Number(n.target));
  $("prediction").textContent = `sample ${n.sample}: target ${target}, output ${pred}, cost ${fmt(n.cost)}`;
}

function showEdge(l, i, j) {
  const L = state.netData && state.netData.layers[l];
  if (!L) return;
  $("net-info").textContent = `Edge from node ${i} of layer ${l} to node ${j} of layer ${l + 1}: w = ${fmt(L.W[i][j])}, dC/dW = ${fmt(L.dW[i][j])}`;
}

function showNode(el, l, i) {
  const n = state.netData;
  if (!n) return;
  const a = l === 0 ? n.input[i] : n.layers[l - 1].a[i];
  const dA = l < n.layers.length ? n.layers[l].da_in[i] : null;
  let text = `Node ${i} of layer ${l}${l === 0 ? " (input)" : ""}: a = ${fmt(a)}`;
  if (l > 0) text += `, z = ${fmt(n.layers[l - 1].z[i])}, b = ${fmt(n.layers[l - 1].b[i])}, dC/db = ${fmt(n.layers[l - 1].db[i])}`;
  text += dA === null ? `, dC/dz = ${fmt(n.layers[l - 1].dz[i])}` : `, dC/da = ${fmt(dA)}`;
  $("net-info").textContent = text;
  el.firstChild.textContent = text; // the tooltip, written when asked for, not at every frame
}

// --- the race --------------------------------------------------------------------------------

function raceTick() {
  if (!state.racing) return;
  const want = Number($("race-epochs").value);
  const done = state.race ? Math.min(...state.race.variants.map((v) => v.epochs)) : 0;
  if (done >= want) { state.racing = false; updateRaceButtons(); return; }
  send({ type: "race", action: "step" });
}

function startRace() {
  stopPlaying();
  state.racing = true; updateRaceButtons();
  send({ type: "race", action: "start", k: Number($("race-k").value) });
}

function updateRaceButtons() { $("race-pause").disabled = !state.racing; $("race-start").textContent = state.racing ? "Restart" : "Start the race"; }

function applyRace(r) {
  state.race = r;
  const colors = [COLORS[1], COLORS[0], COLORS[2]];
  for (const [id, key, label] of [["race-epoch", "epoch", "epochs"], ["race-time", "time", "seconds of training"]]) {
    const [ctx, w, h] = prepareCanvas($(id));
    const pad = { l: 52, r: 10, t: 8, b: 28 };
    const xs = r.variants.flatMap((v) => v.curve.map((p) => p[key]));
    const ys = r.variants.flatMap((v) => v.curve.map((p) => p.loss)).filter((y) => y !== null);
    const x1 = Math.max(...xs, 1e-9), top = Math.max(...ys, 1e-9) * 1.05;
    const sx = (x) => pad.l + (w - pad.l - pad.r) * x / x1, sy = (y) => h - pad.b - (h - pad.t - pad.b) * Math.min(y, top) / top;
    axes(ctx, w, h, pad, 0, x1, 0, top, label);
    r.variants.forEach((v, k) => line(ctx, v.curve.map((p) => [p[key], p.loss]), sx, sy, colors[k], 2));
    ctx.font = "12px system-ui"; ctx.textAlign = "right";
    r.variants.forEach((v, k) => { ctx.fillStyle = colors[k]; ctx.fillText(v.name, w - pad.r - 4, pad.t + 14 * (k + 1)); });
  }
  const body = $("race-table").tBodies[0]; body.innerHTML = "";
  for (const v of r.variants) {
    const last = v.curve[v.curve.length - 1];
    const row = body.insertRow();
    for (const cell of [v.name + (v.diverged ? " (diverged)" : ""), v.epochs, v.updates, v.time.toFixed(3), fmt(last.loss)]) row.insertCell().textContent = cell;
  }
}

// --- the minima ------------------------------------------------------------------------------

function runMinima() {
  stopPlaying();
  send({ type: "minima", lr: Number($("min-lr").value), n_starts: Number($("min-starts").value),
    steps: Number($("min-steps").value), noise: Number($("min-noise").value), seed: Number($("min-seed").value) });
  $("min-run").disabled = true;
}

function drawMinima(m) {
  $("min-run").disabled = false;
  state.minima = m;
  const holder = $("minima-panels"); holder.innerHTML = "";
  const [[x0, x1], [y0, y1]] = m.bounds;
  const lo = Math.min(...m.surface), hi = Math.max(...m.surface);
  const canvases = m.variants.map((v) => {
    const panel = document.createElement("div"); panel.className = "panel";
    const title = document.createElement("h2");
    title.textContent = `${v.name}: ${(100 * v.global).toFixed(0)}% reach the global minimum`;
    const canvas = document.createElement("canvas"); canvas.width = 320; canvas.height = 320;
    canvas.setAttribute("aria-label", `${v.name}: where each run ended`);
    const note = document.createElement("p"); note.className = "note";
    note.textContent = `global ${(100 * v.global).toFixed(0)}%, local ${(100 * v.local).toFixed(0)}%, diverged ${(100 * v.diverged).toFixed(0)}%, other ${(100 * v.other).toFixed(0)}%`;
    panel.append(title, canvas, note); holder.appendChild(panel);
    return canvas;
  });
  m.variants.forEach((v, n) => {
    const [ctx, w, h] = prepareCanvas(canvases[n]);
    heatmap(ctx, w, h, m.n, (i) => { const t = (m.surface[i] - lo) / ((hi - lo) || 1); const g = Math.round(255 - 150 * t); return [g, g, Math.round(g * 0.95 + 12)]; });
    const sx = (x) => (x - x0) / (x1 - x0) * w, sy = (y) => h - (y - y0) / (y1 - y0) * h;
    if ($("min-paths").checked) {
      v.paths.forEach((path, k) => {
        ctx.strokeStyle = OUTCOME[v.outcomes[k]] + "66"; ctx.lineWidth = 1; ctx.beginPath();
        path.forEach((p, i) => { if (i === 0) ctx.moveTo(sx(p[0]), sy(p[1])); else ctx.lineTo(sx(p[0]), sy(p[1])); });
        ctx.stroke();
      });
    }
    v.ends.forEach((p, k) => { ctx.fillStyle = OUTCOME[v.outcomes[k]]; ctx.beginPath(); ctx.arc(sx(p[0]), sy(p[1]), 3.5, 0, 2 * Math.PI); ctx.fill(); });
    ctx.fillStyle = "#000"; ctx.font = "16px system-ui"; ctx.textAlign = "center";
    for (const name in m.minima) { const [a, b] = m.minima[name]; ctx.fillText(name.startsWith("global") ? "★" : "☆", sx(a), sy(b) + 5); }
  });
}

// --- wiring ----------------------------------------------------------------------------------

function selectTab(name) {
  for (const t of ["train", "race", "minima"]) {
    $(`tab-${t}`).setAttribute("aria-selected", String(t === name));
    $(`tab-${t}`).tabIndex = t === name ? 0 : -1;
    $(`view-${t}`).hidden = t !== name;
  }
  if (name !== "train") stopPlaying();
  if (name === "train" && state.frame) { drawCost(); drawMap(state.frame); }
}

function wire() {
  $("play").onclick = togglePlay;
  $("step").onclick = stepOnce;
  $("epoch").onclick = epochOnce;
  $("reset").onclick = () => reset(false);
  $("reseed").onclick = () => reset(true);
  $("data").onchange = chooseData;
  for (const id of ["hidden", "activation", "loss", "optimizer", "lr", "batch-k", "seed", "val-split"]) $(id).onchange = () => configure();
  $("batch-kind").onchange = () => { $("batch-k").disabled = $("batch-kind").value !== "k"; configure(); };
  $("upload").onchange = (ev) => upload(ev.target.files[0]);
  $("sample").onchange = () => send({ type: "sample", index: Math.max(0, Number($("sample").value) || 0) });
  $("show-grads").onchange = () => { if (state.netData) drawNetwork(state.netData); };
  $("race-start").onclick = startRace;
  $("race-pause").onclick = () => { state.racing = false; updateRaceButtons(); };
  $("min-run").onclick = runMinima;
  $("min-paths").onchange = () => { if (state.minima) drawMinima(state.minima); };
  const tabs = ["train", "race", "minima"];
  tabs.forEach((t, k) => {
    $(`tab-${t}`).onclick = () => selectTab(t);
    $(`tab-${t}`).onkeydown = (ev) => {
      if (ev.key === "ArrowRight" || ev.key === "ArrowLeft") {
        const next = tabs[(k + (ev.key === "ArrowRight" ? 1 : tabs.length - 1)) % tabs.length];
        selectTab(next); $(`tab-${next}`).focus(); ev.preventDefault();
      }
    };
  });
  // Keys for the training buttons, outside text fields: space, s, e, r, n.
  document.addEventListener("keydown", (ev) => {
    const tag = (ev.target.tagName || "").toLowerCase();
    if (["input", "select", "textarea"].includes(tag) || ev.ctrlKey || ev.metaKey || ev.altKey) return;
    if (ev.key === " " && ["button", "a", "summary"].includes(tag)) return; // space presses it
    if ($("view-train").hidden) return;
    const actions = { " ": togglePlay, s: stepOnce, e: epochOnce, r: () => reset(false), n: () => reset(true) };
    if (actions[ev.key]) { actions[ev.key](); ev.preventDefault(); }
  });
  window.addEventListener("resize", () => { if (state.frame) { drawCost(); drawMap(state.frame); } });
  selectTab("train");
}

wire();
connect();
