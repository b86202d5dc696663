// embedviz's map: a plotly.js scatter that reports clicks, boxes and lassos back to Python, shows the
// image under the pointer from the sprite atlas (no round trip per hover), draws the images themselves
// in place of dots when few enough points are in view, and marks the point another map hovers
// (linked hover on Compare). Every string that comes from a user's file is set as text, never as HTML.

const PLOTLY_URL = new URL("./plotly-4.1.1.min.js", import.meta.url).href;
// The app's own address, base path included (this script is served under <base>/_stcore/...): the
// server names media files from the site root ("/media/..."), as Streamlit's own elements get them.
const APP_BASE = import.meta.url.split("/_stcore/")[0];
const media = (url) => (url.startsWith("/") ? APP_BASE + url : url);
const INSTANCES = new WeakMap();
const LINK_EVENT = "embedviz-map-hover";

function loadPlotly() {
  if (!window.__embedvizPlotly) {
    window.__embedvizPlotly = new Promise((resolve, reject) => {
      if (window.Plotly && window.Plotly.react) {
        resolve(window.Plotly);
        return;
      }
      const script = document.createElement("script");
      script.src = PLOTLY_URL;
      script.async = true;
      script.onload = () => resolve(window.Plotly);
      script.onerror = () => {
        window.__embedvizPlotly = null;  // the next map tries again
        script.remove();
        reject(new Error("plotly.js could not be loaded; reload the page"));
      };
      document.head.appendChild(script);
    });
  }
  return window.__embedvizPlotly;
}

// --- typed arrays as plotly's Python side writes them: {dtype, bdata (base64), shape} ---------------
const DTYPES = {
  f4: Float32Array, f8: Float64Array, i1: Int8Array, u1: Uint8Array, i2: Int16Array, u2: Uint16Array,
  i4: Int32Array, u4: Uint32Array,
};

function isSpec(value) {
  return value && typeof value === "object" && !Array.isArray(value) && typeof value.bdata === "string"
    && typeof value.dtype === "string";
}

function decode(spec) {
  const raw = atob(spec.bdata);
  const bytes = new Uint8Array(raw.length);
  for (let i = 0; i < raw.length; i++) bytes[i] = raw.charCodeAt(i);
  const Kind = DTYPES[spec.dtype] || Float64Array;
  const flat = new Kind(bytes.buffer, 0, bytes.length / Kind.BYTES_PER_ELEMENT);
  if (!spec.shape) return flat;
  const dims = String(spec.shape).split(",").map((d) => parseInt(d, 10));
  if (dims.length < 2) return flat;
  const rows = [];
  for (let r = 0; r < dims[0]; r++) rows.push(flat.subarray(r * dims[1], (r + 1) * dims[1]));
  return rows;
}

function decodeAll(value) {
  if (isSpec(value)) return decode(value);
  if (Array.isArray(value)) return value.map(decodeAll);
  if (value && typeof value === "object") {
    for (const k of Object.keys(value)) value[k] = decodeAll(value[k]);
  }
  return value;
}

function rowOf(customdata, j) {
  if (!customdata) return -1;
  const item = customdata[j];
  if (item === undefined || item === null) return -1;
  const row = typeof item === "number" ? item : item[0];
  return Number.isFinite(row) ? Math.round(row) : -1;
}

function pointRow(point) {
  const c = point.customdata;
  if (c === undefined || c === null) return -1;
  const row = typeof c === "number" ? c : c[0];
  return Number.isFinite(row) ? Math.round(row) : -1;
}

// --- colours for picture frames -----------------------------------------------------------------------
function parseColour(text) {
  if (typeof text !== "string") return null;
  const t = text.trim();
  let m = /^#([0-9a-f]{6})$/i.exec(t);
  if (m) return [parseInt(m[1].slice(0, 2), 16), parseInt(m[1].slice(2, 4), 16), parseInt(m[1].slice(4, 6), 16)];
  m = /^rgba?\(([^)]+)\)$/i.exec(t);
  if (m) return m[1].split(",").slice(0, 3).map((v) => parseFloat(v));
  return null;
}

function scaleColour(scale, t) {
  if (!Array.isArray(scale) || !scale.length) return "#555";
  t = Math.min(1, Math.max(0, t));
  for (let i = 1; i < scale.length; i++) {
    const [t1, c1] = scale[i];
    const [t0, c0] = scale[i - 1];
    if (t <= t1) {
      const a = parseColour(c0), b = parseColour(c1);
      if (!a || !b) return c1;
      const f = t1 > t0 ? (t - t0) / (t1 - t0) : 0;
      return `rgb(${a.map((v, k) => Math.round(v + (b[k] - v) * f)).join(",")})`;
    }
  }
  return scale[scale.length - 1][1];
}

// --- one map ------------------------------------------------------------------------------------------
class MapInstance {
  constructor(parent) {
    this.root = document.createElement("div");
    this.root.className = "embedviz-map";
    this.root.style.position = "relative";
    this.root.style.width = "100%";
    this.plot = document.createElement("div");
    this.plot.className = "embedviz-map-plot";
    this.overlay = document.createElement("canvas");
    this.overlay.className = "embedviz-map-pictures";
    Object.assign(this.overlay.style, { position: "absolute", left: "0", top: "0", pointerEvents: "none" });
    this.tip = document.createElement("div");
    this.tip.className = "embedviz-map-preview";
    Object.assign(this.tip.style, {
      position: "fixed", display: "none", zIndex: "1000", pointerEvents: "none", background: "white",
      border: "1px solid #bbb", borderRadius: "4px", padding: "6px", boxShadow: "0 2px 8px rgba(0,0,0,.18)",
      font: "12px sans-serif", color: "#222", maxWidth: "260px", whiteSpace: "normal",
    });
    this.error = document.createElement("div");
    this.error.className = "embedviz-map-error";
    this.error.style.display = "none";
    this.tipImage = document.createElement("div");
    this.tipImage.className = "embedviz-map-preview-image";
    this.tipText = document.createElement("div");
    this.tip.append(this.tipImage, this.tipText);
    this.root.append(this.error, this.plot, this.overlay, this.tip);
    parent.appendChild(this.root);
    this.figureText = null;
    this.restText = null;
    this.sheets = new Map();  // sheet URL -> {img, ready}
    this.linked = -1;
    this.mouse = { x: 0, y: 0 };
    this.shownPictures = false;
    this.root.addEventListener("mousemove", (e) => { this.mouse = { x: e.clientX, y: e.clientY }; });
    this.root.addEventListener("mouseleave", () => this.hideTip());
    this.onLink = (e) => this.linkedHover(e.detail);
    window.addEventListener(LINK_EVENT, this.onLink);
  }

  destroy() {
    window.removeEventListener(LINK_EVENT, this.onLink);
    if (window.Plotly) window.Plotly.purge(this.plot);
    this.root.remove();
  }

  async update(data, setStateValue) {
    this.setStateValue = setStateValue;
    this.data = data;
    this.root.style.height = `${data.height}px`;
    this.root.dataset.state = "loading";
    const Plotly = await loadPlotly();
    this.error.style.display = "none";
    const rest = JSON.stringify(Object.assign({}, data, { figure: null }));
    if (data.figure === this.figureText && rest === this.restText) {
      this.root.dataset.state = "ready";
      return;
    }
    const figure = data.figure === this.figureText ? this.figure : decodeAll(JSON.parse(data.figure));
    this.figureText = data.figure;
    this.restText = rest;
    this.figure = figure;
    this.prepare(data, figure);
    const layout = Object.assign({}, figure.layout, { height: data.height, autosize: true });
    if (data.select) {
      layout.clickmode = "event+select";
      this.showSelection(figure, layout, data.selected);
    }
    if (this.custom) layout.hovermode = "closest";
    const config = Object.assign({ displaylogo: false, responsive: true }, data.config || {});
    const first = !this.plot.classList.contains("js-plotly-plot");
    await Plotly.react(this.plot, figure.data, layout, config);
    if (first) this.listen();
    this.root.dataset.state = "ready";
    this.root.dataset.points = String(this.positions.count);
    this.drawSoon();
  }

  fail(error) {
    this.root.dataset.state = "error";
    this.error.style.display = "block";
    this.error.textContent = `The map could not be drawn: ${error && error.message ? error.message : error}`;
  }

  // The selection Python holds (kept through a new colouring) drawn on the new figure, so what the
  // map shows and what a shift-click adds to are the same.
  showSelection(figure, layout, selected) {
    const boxes = (selected && selected.box) || [];
    const lassos = (selected && selected.lasso) || [];
    const rows = new Set(((selected && selected.points) || []).map((p) => pointRow(p)).filter((r) => r >= 0));
    const shapes = [];
    for (const b of boxes) {
      if (b.x && b.y && b.x.length === 2) {
        shapes.push({ type: "rect", xref: "x", yref: "y", x0: b.x[0], x1: b.x[1], y0: b.y[0], y1: b.y[1] });
      }
    }
    for (const l of lassos) {
      if (l.x && l.x.length >= 3) {
        shapes.push({ type: "path", xref: "x", yref: "y",
          path: `M${l.x.map((x, i) => `${x},${l.y[i]}`).join("L")}Z` });
      }
    }
    if (shapes.length && !this.is3d) layout.selections = shapes;
    if (rows.size && !shapes.length) {
      for (const t of figure.data) {
        if (!t.customdata || !t.x) continue;
        const picked = [];
        for (let j = 0; j < t.x.length; j++) if (rows.has(rowOf(t.customdata, j))) picked.push(j);
        t.selectedpoints = picked;
      }
    }
    this.picked3d = this.is3d ? [...rows].map((row) => ({ customdata: row })) : [];
  }

  // What the hover preview and the pictures need, from the figure and the data beside it.
  prepare(data, figure) {
    const hover = data.hover || null;
    this.custom = !!hover;
    this.is3d = figure.data.some((t) => t.type === "scatter3d");
    // rows -> slot in the hover columns
    this.slots = new Map();
    if (hover) {
      const rows = decode(hover.rows);
      for (let i = 0; i < rows.length; i++) this.slots.set(rows[i], i);
      this.columns = hover.columns.map((c) => Object.assign({}, c, {
        values: c.kind === "num" ? decode(c.values) : c.kind === "cat" ? decode(c.codes) : c.values,
      }));
      this.ids = hover.ids || null;
      const atlas = hover.atlas || null;
      this.atlas = atlas ? Object.assign({}, atlas, { index: decode(atlas.index), sizes: decode(atlas.sizes) }) : null;
      if (this.atlas) this.atlas.urls = this.atlas.urls.map(media);
      for (const trace of figure.data) {
        if (trace.type === "scattergl" || trace.type === "scatter" || trace.type === "scatter3d") {
          trace.hoverinfo = "none";
          delete trace.hovertemplate;
        }
      }
    } else {
      this.columns = [];
      this.ids = null;
      this.atlas = null;
    }
    this.linkGroup = data.link ? data.link.group : null;
    this.linked = -1;
    this.root.dataset.linked = "";
    // every drawn point's position, by trace, for pictures and the linked ring
    const traces = [];
    let count = 0;
    figure.data.forEach((t, i) => {
      const marker = t.marker || {};
      const ring = typeof t.name === "string" && t.name.startsWith("highlighted");  // drawn again on top
      if ((t.type === "scattergl" || t.type === "scatter") && t.x && t.y && t.customdata && !ring
          && String(t.mode || "markers").includes("markers")) {
        let lo = Infinity, hi = -Infinity;
        if (marker.color && typeof marker.color !== "string" && marker.color.length) {
          for (const v of marker.color) if (typeof v === "number" && Number.isFinite(v)) { lo = Math.min(lo, v); hi = Math.max(hi, v); }
        }
        traces.push({ index: i, x: t.x, y: t.y, customdata: t.customdata, marker, lo, hi,
          grey: typeof marker.color === "string" && marker.color.toLowerCase() === "#c8c8c8" });
        count += t.x.length;
      }
    });
    this.positions = { traces, count };
  }

  listen() {
    const gd = this.plot;
    gd.on("plotly_hover", (ev) => this.hover(ev));
    gd.on("plotly_unhover", () => { this.hideTip(); this.broadcast(null); });
    gd.on("plotly_selected", (ev) => this.selected(ev));
    gd.on("plotly_deselect", () => { this.picked3d = []; this.report({ points: [], box: [], lasso: [] }); });
    gd.on("plotly_click", (ev) => { if (this.is3d) this.clicked3d(ev); });
    gd.on("plotly_afterplot", () => this.drawSoon());
    gd.on("plotly_relayout", () => this.drawSoon());
    gd.on("plotly_restyle", () => this.drawSoon());
  }

  report(selection) {
    if (!this.data.select || !this.setStateValue) return;
    this.setStateValue("selection", Object.assign({ at: Date.now() }, selection));
  }

  selected(ev) {
    if (!ev) return;
    const points = [];
    if (!ev.range && !ev.lassoPoints) {
      for (const p of ev.points || []) {
        const row = pointRow(p);
        if (row >= 0) points.push({ customdata: row });
      }
    }
    const box = [];
    const lasso = [];
    for (const s of (this.plot.layout && this.plot.layout.selections) || []) {
      if (s.type === "rect") box.push({ x: [s.x0, s.x1], y: [s.y0, s.y1] });
      else if (s.type === "path" && typeof s.path === "string") {
        const xs = [], ys = [];
        for (const m of s.path.matchAll(/[ML]\s*([-+\d.eE]+)\s*,\s*([-+\d.eE]+)/g)) {
          xs.push(parseFloat(m[1]));
          ys.push(parseFloat(m[2]));
        }
        if (xs.length >= 3) lasso.push({ x: xs, y: ys });
      }
    }
    if (ev.range && ev.range.x && !box.length) box.push({ x: ev.range.x, y: ev.range.y });
    if (ev.lassoPoints && ev.lassoPoints.x && !lasso.length) lasso.push({ x: ev.lassoPoints.x, y: ev.lassoPoints.y });
    this.report({ points, box, lasso });
  }

  clicked3d(ev) {
    const p = ev && ev.points && ev.points[0];
    if (!p) return;
    const row = pointRow(p);
    if (row < 0) return;
    const shift = ev.event && ev.event.shiftKey;
    this.picked3d = shift ? (this.picked3d || []).concat([{ customdata: row }]) : [{ customdata: row }];
    this.report({ points: this.picked3d, box: [], lasso: [] });
  }

  // --- hover preview ---
  hover(ev) {
    const p = ev && ev.points && ev.points[0];
    if (!p) return;
    const row = pointRow(p);
    if (row < 0) return;
    this.broadcast(row);
    if (!this.custom) return;
    const e = ev.event;
    const x = e && Number.isFinite(e.clientX) ? e.clientX : this.mouse.x;
    const y = e && Number.isFinite(e.clientY) ? e.clientY : this.mouse.y;
    this.showTip(row, x, y, p);
  }

  showTip(row, x, y, point) {
    const slot = this.slots.get(row);
    this.tipText.replaceChildren();
    const title = document.createElement("div");
    title.style.fontWeight = "600";
    title.textContent = this.ids && slot !== undefined ? String(this.ids[slot]) : `row ${row}`;
    this.tipText.appendChild(title);
    if (slot !== undefined) {
      for (const c of this.columns) {
        const line = document.createElement("div");
        line.className = "embedviz-map-preview-line";
        let value;
        if (c.kind === "num") {
          const v = c.values[slot];
          value = !Number.isFinite(v) ? "" : c.share ? `${(v * 100).toFixed(1)}%` : String(Number(v.toPrecision(4)));
        } else if (c.kind === "cat") {
          const code = c.values[slot];
          value = code >= 0 && code < c.categories.length ? c.categories[code] : "";
        } else value = c.values[slot];
        line.textContent = `${c.name}: ${value}`;
        this.tipText.appendChild(line);
      }
    }
    this.setTipImage(slot);
    const tip = this.tip;
    tip.dataset.row = String(row);
    tip.style.display = "block";
    const w = tip.offsetWidth, h = tip.offsetHeight;
    let left = x + 16, top = y + 16;
    if (left + w > window.innerWidth - 4) left = x - w - 16;
    if (top + h > window.innerHeight - 4) top = y - h - 16;
    tip.style.left = `${Math.max(4, left)}px`;
    tip.style.top = `${Math.max(4, top)}px`;
  }

  setTipImage(slot) {
    const a = this.atlas;
    const box = this.tipImage;
    const index = a && slot !== undefined ? a.index[slot] : -1;
    if (index < 0) {
      box.style.display = "none";
      box.dataset.index = "";
      return;
    }
    const sheet = Math.floor(index / a.per_sheet);
    const cellIndex = index % a.per_sheet;
    const cx = (cellIndex % a.per_row) * a.cell, cy = Math.floor(cellIndex / a.per_row) * a.cell;
    const w = a.sizes[2 * slot], h = a.sizes[2 * slot + 1];
    const scale = a.show / Math.max(w, h);
    const ready = this.sheet(sheet);  // starts loading it when it is not yet
    box.dataset.ready = ready ? "1" : "0";
    Object.assign(box.style, {
      display: "block", width: `${Math.round(w * scale)}px`, height: `${Math.round(h * scale)}px`,
      backgroundImage: `url("${a.urls[sheet]}")`, backgroundRepeat: "no-repeat",
      backgroundPosition: `${-cx * scale}px ${-cy * scale}px`,
      backgroundSize: `${a.sheet_sizes[sheet][0] * scale}px ${a.sheet_sizes[sheet][1] * scale}px`,
      imageRendering: scale > 1.5 ? "pixelated" : "auto", marginBottom: "4px",
    });
    box.dataset.index = String(index);
  }

  hideTip() {
    this.tip.style.display = "none";
    this.tip.dataset.row = "";
  }

  sheet(i) {
    if (!this.atlas) return null;
    const url = this.atlas.urls[i];
    let entry = this.sheets.get(url);
    if (!entry) {
      const img = new Image();
      entry = { img, ready: false };
      this.sheets.set(url, entry);
      img.src = url;
      // decoded off the main thread, several at once: a zoom that needs many sheets does not wait
      // for each decode in turn when the canvas first draws it
      img.decode().then(() => {
        entry.ready = true;
        const shown = this.tipImage.dataset.index;
        if (shown && this.atlas && this.atlas.urls[Math.floor(Number(shown) / this.atlas.per_sheet)] === url) {
          this.tipImage.dataset.ready = "1";
        }
        this.drawSoon();
      }, () => {
        this.sheets.delete(url);  // not served (yet): asked for again the next time it is needed
      });
    }
    return entry.ready ? entry.img : null;
  }

  // --- linked hover: the maps of one group draw the same samples table, so a row is the same image ---
  broadcast(row) {
    if (!this.linkGroup) return;
    window.dispatchEvent(new CustomEvent(LINK_EVENT, { detail: { group: this.linkGroup, row, from: this } }));
  }

  linkedHover(detail) {
    if (!this.linkGroup || !detail || detail.from === this || detail.group !== this.linkGroup) return;
    this.linked = detail.row === null || detail.row === undefined ? -1 : detail.row;
    this.root.dataset.linked = this.linked >= 0 ? String(this.linked) : "";
    this.drawSoon();
  }

  // --- pictures in place of dots, and the linked ring ---
  drawSoon() {
    if (this.pending) return;
    this.pending = true;
    requestAnimationFrame(() => { this.pending = false; this.draw(); });
  }

  draw() {
    const gd = this.plot;
    const fl = gd._fullLayout;
    const canvas = this.overlay;
    const ratio = window.devicePixelRatio || 1;
    const width = gd.clientWidth, height = gd.clientHeight;
    if (canvas.width !== Math.round(width * ratio) || canvas.height !== Math.round(height * ratio)) {
      canvas.width = Math.round(width * ratio);
      canvas.height = Math.round(height * ratio);
      canvas.style.width = `${width}px`;
      canvas.style.height = `${height}px`;
    }
    const ctx = canvas.getContext("2d");
    ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
    ctx.clearRect(0, 0, width, height);
    this.root.dataset.pictures = "0";
    this.root.dataset.inview = "";
    if (!fl || this.is3d || !fl.xaxis || !fl.yaxis || !fl._size) return;
    const xa = fl.xaxis, ya = fl.yaxis, size = fl._size;
    const [xlo, xhi] = [Math.min(...xa.range), Math.max(...xa.range)];
    const [ylo, yhi] = [Math.min(...ya.range), Math.max(...ya.range)];
    ctx.save();
    try {
      this.drawInside(ctx, xa, ya, size, xlo, xhi, ylo, yhi);
    } finally {
      ctx.restore();
    }
  }

  drawInside(ctx, xa, ya, size, xlo, xhi, ylo, yhi) {
    const gd = this.plot;
    ctx.beginPath();
    ctx.rect(size.l, size.t, size.w, size.h);
    ctx.clip();
    const limit = this.data.pictures || 0;
    const visible = (gd._fullData || []).map((t) => t.visible === true);
    if (this.atlas && limit > 0) {
      const inView = [];
      for (const t of this.positions.traces) {
        if (!visible[t.index]) continue;
        for (let j = 0; j < t.x.length; j++) {
          const x = t.x[j], y = t.y[j];
          if (x >= xlo && x <= xhi && y >= ylo && y <= yhi) {
            inView.push([t, j]);
            if (inView.length > limit) break;
          }
        }
        if (inView.length > limit) break;
      }
      if (inView.length && inView.length <= limit) this.drawPictures(ctx, inView, xa, ya, size);
    }
    if (this.linked >= 0) this.drawRing(ctx, xa, ya, size);
  }

  drawPictures(ctx, inView, xa, ya, size) {
    const a = this.atlas;
    const n = inView.length;
    const side = n <= 150 ? 72 : n <= 600 ? 52 : 38;
    let drawn = 0;
    for (const [t, j] of inView) {
      const row = rowOf(t.customdata, j);
      const slot = this.slots.get(row);
      const index = slot === undefined ? -1 : a.index[slot];
      if (index < 0) continue;
      const sheet = this.sheet(Math.floor(index / a.per_sheet));
      const w = a.sizes[2 * slot], h = a.sizes[2 * slot + 1];
      const scale = side / Math.max(w, h, 1);
      const dw = w * scale, dh = h * scale;
      const px = size.l + xa.l2p(t.x[j]) - dw / 2, py = size.t + ya.l2p(t.y[j]) - dh / 2;
      ctx.globalAlpha = t.grey ? 0.35 : 1;
      if (sheet) {
        const cell = index % a.per_sheet;
        ctx.drawImage(sheet, (cell % a.per_row) * a.cell, Math.floor(cell / a.per_row) * a.cell, w, h, px, py, dw, dh);
        drawn += 1;
      } else {
        ctx.fillStyle = "#eee";
        ctx.fillRect(px, py, dw, dh);
      }
      ctx.lineWidth = 2;
      ctx.strokeStyle = this.frameColour(t, j);
      ctx.strokeRect(px - 1, py - 1, dw + 2, dh + 2);
    }
    ctx.globalAlpha = 1;
    this.root.dataset.pictures = String(drawn);
    this.root.dataset.inview = String(n);
  }

  frameColour(t, j) {
    const c = t.marker.color;
    if (typeof c === "string") return c;
    if (c && c.length) {
      const v = c[j];
      if (typeof v === "string") return v;
      const lo = t.marker.cmin ?? t.lo, hi = t.marker.cmax ?? t.hi;
      const scale = Array.isArray(t.marker.colorscale) ? t.marker.colorscale
        : (this.plot._fullData[t.index].marker || {}).colorscale;
      return scaleColour(scale, hi > lo ? (v - lo) / (hi - lo) : 0.5);
    }
    return "#555";
  }

  drawRing(ctx, xa, ya, size) {
    const visible = (this.plot._fullData || []).map((t) => t.visible === true);
    for (const t of this.positions.traces) {
      if (!visible[t.index]) continue;
      for (let j = 0; j < t.x.length; j++) {
        if (rowOf(t.customdata, j) !== this.linked) continue;
        const px = size.l + xa.l2p(t.x[j]), py = size.t + ya.l2p(t.y[j]);
        ctx.lineWidth = 3;
        ctx.strokeStyle = "#111";
        ctx.beginPath();
        ctx.arc(px, py, 11, 0, 2 * Math.PI);
        ctx.stroke();
        ctx.strokeStyle = "#ffd43b";
        ctx.lineWidth = 2;
        ctx.beginPath();
        ctx.arc(px, py, 8, 0, 2 * Math.PI);
        ctx.stroke();
        return;
      }
    }
  }
}

export default function (component) {
  const { data, parentElement, setStateValue } = component;
  if (data && data.preload) {  // an empty element that only loads plotly.js ahead of the first map
    loadPlotly().catch(() => undefined);
    return undefined;
  }
  let instance = INSTANCES.get(parentElement);
  if (!instance) {
    instance = new MapInstance(parentElement);
    INSTANCES.set(parentElement, instance);
  }
  instance.update(data, setStateValue).catch((error) => instance.fail(error));
  return () => {
    // called when Streamlit unmounts the element (or before it calls this function again)
    setTimeout(() => {
      if (!instance.root.isConnected || !parentElement.isConnected) {
        instance.destroy();
        INSTANCES.delete(parentElement);
      }
    }, 0);
  };
}
