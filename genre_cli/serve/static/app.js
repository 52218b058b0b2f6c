// genre serve: the page's behaviour. Plain JavaScript, no libraries, no build step.
//
// Upload: the chosen file goes to POST /api/predict as multipart/form-data.
// Record: MediaRecorder records the microphone (WebM/Opus in Chromium, Ogg/Opus in Firefox);
// the server's decoder cannot read WebM, so the recording is decoded here with
// AudioContext.decodeAudioData, mixed down and resampled to 22.05 kHz mono with an
// OfflineAudioContext, and sent as a 16-bit PCM WAV file.
"use strict";

(function () {
  const SVG = "http://www.w3.org/2000/svg";
  const RECORD_RATE = 22050; // Hz of the WAV made from a recording
  const $ = (id) => document.getElementById(id);

  const state = { models: [], limits: null, recording: null, busy: false, last: null };

  // ------------------------------------------------------------------ small helpers

  function svgEl(name, attrs, text) {
    const el = document.createElementNS(SVG, name);
    for (const [k, v] of Object.entries(attrs || {})) el.setAttribute(k, String(v));
    if (text !== undefined) el.textContent = text;
    return el;
  }

  function clear(el, keep) {
    for (const child of Array.from(el.childNodes)) if (child !== keep) el.removeChild(child);
  }

  function pct(x) {
    return (100 * x).toFixed(x >= 0.995 || x < 0.0995 ? 1 : 0) + " %";
  }

  function seconds(s) {
    if (s === null || s === undefined) return "?";
    if (s < 59.95) return `${s.toFixed(1)} s`;
    const t = Math.round(s); // whole seconds first, so 179.6 s is "3 min", never "2 min 60 s"
    const m = Math.floor(t / 60);
    const r = t - 60 * m;
    return r ? `${m} min ${r} s` : `${m} min`;
  }

  // Chart geometry in CSS pixels of the chart's box (one viewBox unit = one pixel), so the
  // text stays readable on a phone; charts are redrawn when the width changes.
  function geometry(svg) {
    const width = Math.max(280, Math.round(svg.parentElement.clientWidth || 640));
    const labelW = Math.round(Math.min(150, Math.max(70, width * 0.26)));
    return { width, labelW, chars: Math.max(8, Math.floor(labelW / 7.5)) };
  }

  function clock(s) {
    const m = Math.floor(s / 60);
    return `${m}:${String(Math.floor(s % 60)).padStart(2, "0")}`;
  }

  function short(text, n) {
    return text.length > n ? text.slice(0, n - 1) + "…" : text;
  }

  function status(text) {
    $("status").textContent = text;
  }

  function showError(text) {
    const el = $("error");
    el.textContent = text;
    el.hidden = !text;
  }

  function currentModel() {
    return state.models.find((m) => m.id === $("model").value) || state.models[0];
  }

  function word(model) {
    // A tagger's outputs are independent sigmoids: likelihoods, not a probability distribution.
    return model && model.card.output === "sigmoid" ? "likelihood" : "probability";
  }

  function setBusy(busy) {
    state.busy = busy;
    $("classify").disabled = busy;
    $("record").disabled = busy && !state.recording;
    $("model").disabled = busy;
  }

  // ------------------------------------------------------------------ models and card

  async function loadModels() {
    try {
      const res = await fetch("/api/models", { headers: { Accept: "application/json" } });
      const body = await res.json();
      if (!res.ok) throw new Error(body.message || res.statusText);
      state.models = body.models;
      state.limits = body.limits;
      const sel = $("model");
      clear(sel);
      for (const m of body.models) {
        const opt = document.createElement("option");
        opt.value = m.id;
        opt.textContent = m.card.builtin ? `${m.id} (built-in)` : `${m.id} (${m.card.architecture}, ${m.card.labels.length} labels)`;
        opt.selected = m.default;
        sel.appendChild(opt);
      }
      $("topk").value = Math.min(body.limits.top_k, currentModel().card.labels.length);
      const lim = body.limits;
      const names = lim.formats.slice(0, -1).join(", ") + " or " + lim.formats[lim.formats.length - 1];
      $("file").accept = ["audio/*", ...lim.extensions.map((e) => "." + e)].join(",");
      $("file-hint").textContent =
        `${names}; up to ${lim.max_upload_mb} MB. Files longer than ${seconds(lim.max_seconds)} are classified on their beginning.`;
      modelChanged();
      document.body.dataset.ready = "true";
    } catch (err) {
      showError(`Could not load the models: ${err.message}`);
    }
  }

  function modelChanged() {
    const m = currentModel();
    if (!m) return;
    $("topk").max = m.card.labels.length;
    if (Number($("topk").value) > m.card.labels.length) $("topk").value = m.card.labels.length;
    renderCard(m);
  }

  function renderCard(m) {
    const c = m.card;
    const dl = $("card");
    clear(dl);
    const missing = (text) => {
      const span = document.createElement("span");
      span.className = "missing";
      span.textContent = text || "not recorded";
      return span;
    };
    const row = (term, value) => {
      const dt = document.createElement("dt");
      dt.textContent = term;
      const dd = document.createElement("dd");
      if (value === null || value === undefined || value === "") dd.appendChild(missing());
      else if (value instanceof Node) dd.appendChild(value);
      else dd.textContent = String(value);
      dl.append(dt, dd);
    };
    row("Model", `${m.id}${c.builtin ? " (built-in)" : ` — ${c.source}`}`);
    row("Architecture", c.architecture + (c.paper ? ` (${c.paper})` : "") + (c.description ? `: ${c.description}` : ""));
    row(`Labels (${c.labels.length})`, c.labels.join(", "));
    row("Output", c.output === "sigmoid" ? "independent likelihoods per label (a tagger; they need not sum to 1)" : "a probability distribution over the labels");
    row("Training data", c.dataset);
    row("Split", c.split + (c.groups ? `; groups: ${c.groups}` : ""));
    if (c.n_train_tracks !== null || c.n_validation_tracks !== null)
      row("Tracks", `${c.n_train_tracks ?? "?"} training, ${c.n_validation_tracks ?? "?"} validation`);
    if (c.accuracy.length) {
      const ul = document.createElement("ul");
      ul.className = "plain";
      for (const a of c.accuracy) {
        const li = document.createElement("li");
        li.textContent =
          `${(100 * a.value).toFixed(1)} % ${a.metric}, ${a.split} split, ${a.level} level, ${a.data}` +
          (a.n ? ` (${a.n} tracks)` : "") + (a.note ? ` — ${a.note}` : "");
        ul.appendChild(li);
      }
      row("Measured accuracy", ul);
    } else {
      row("Measured accuracy", missing("not recorded in the model"));
    }
    row("Test accuracy", missing(c.test_accuracy_note));
    if (c.window_seconds) row("Windows", `${c.window_seconds} s every ${c.hop_seconds} s at ${c.sample_rate} Hz; input ${c.input}`);
    if (c.epochs) row("Training", `${c.epochs} epochs` + (c.trained ? `, ${c.trained.slice(0, 10)}` : ""));
    if (c.licence) row("Licence", c.licence);
  }

  // ------------------------------------------------------------------ sending

  function send(blob, name, origin = "classify") {
    const limits = state.limits;
    hideResult(); // a failed request must not leave the previous file's result on screen
    status("");
    if (limits && blob.size > limits.max_upload_bytes) {
      const n = (x) => x.toLocaleString("en");
      showError(`${name} is over the server's ${limits.max_upload_mb} MB limit (${n(blob.size)} bytes; at most ${n(limits.max_upload_bytes)}).`);
      return;
    }
    const m = currentModel();
    const form = new FormData();
    form.append("file", blob, name);
    if (m) form.append("model", m.id);
    form.append("top_k", String(Math.max(1, Number($("topk").value) || 1)));
    showError("");
    setBusy(true);
    status(`Uploading ${name}…`);
    const xhr = new XMLHttpRequest();
    xhr.open("POST", "/api/predict");
    xhr.responseType = "json";
    xhr.upload.onprogress = (e) => {
      if (e.lengthComputable) status(`Uploading ${name}: ${Math.round((100 * e.loaded) / e.total)} %`);
    };
    xhr.upload.onload = () => status(`Listening to ${name}…`);
    xhr.onload = () => {
      setBusy(false);
      const body = xhr.response || {};
      if (xhr.status === 200) {
        render(body, m);
        $("results-h").focus(); // the button that had focus was disabled while busy: go to the answer
      } else {
        status("");
        showError(body.message ? `${body.message} (${xhr.status})` : `The server answered ${xhr.status}.`);
        refocus(origin);
      }
    };
    xhr.onerror = () => {
      setBusy(false);
      status("");
      showError("The upload failed: the server could not be reached or closed the connection.");
      refocus(origin);
    };
    xhr.send(form);
  }

  // Focus back on the control that sent the request when disabling it lost the focus.
  function refocus(origin) {
    if (!document.activeElement || document.activeElement === document.body) $(origin).focus();
  }

  // ------------------------------------------------------------------ results

  function hideResult() {
    state.last = null;
    $("results").hidden = true;
  }

  function render(r, model) {
    state.last = r;
    const w = r.output === "sigmoid" ? "likelihood" : word(model);
    $("results").hidden = false;
    $("top-genre").textContent = r.genre;
    $("top-value").textContent = `${pct(r.probability)} ${w}`;
    $("result-meta").textContent =
      `${r.path} · ${seconds(r.analysed_seconds)} analysed in ${r.n_windows} window${r.n_windows === 1 ? "" : "s"} · model ${r.model}`;
    const note = $("truncated-note");
    note.hidden = !r.truncated;
    note.textContent = r.truncated ? `Only the beginning was classified: ${r.note}.` : "";
    drawBars(r, w);
    drawTimeline(r, w);
    fillTable(r, w);
    status(`Result: ${r.genre}, ${pct(r.probability)} ${w}.`);
  }

  function drawBars(r, w) {
    const svg = $("bars");
    const desc = $("bars-desc");
    clear(svg, desc);
    const { width, labelW, chars } = geometry(svg);
    const row = 30, valueW = 58;
    const barW = width - labelW - valueW;
    svg.setAttribute("viewBox", `0 0 ${width} ${row * r.top.length + 4}`);
    $("bars-caption").textContent = `Top ${r.top.length} of ${Object.keys(r.probabilities).length} (${w}, whole file)`;
    r.top.forEach((t, i) => {
      const y = i * row + 2;
      const g = svgEl("g", { class: i === 0 ? "bar top" : "bar rest", "data-genre": t.genre, "data-value": t.probability });
      const title = svgEl("title", {}, `${t.genre}: ${pct(t.probability)}`);
      g.appendChild(title);
      g.appendChild(svgEl("text", { x: labelW - 8, y: y + row / 2 + 4, "text-anchor": "end" }, short(t.genre, chars)));
      g.appendChild(svgEl("rect", { class: "track", x: labelW, y: y + 5, width: barW, height: row - 10, rx: 3 }));
      g.appendChild(
        svgEl("rect", { class: "fill", x: labelW, y: y + 5, width: Math.max(1, barW * Math.min(1, t.probability)), height: row - 10, rx: 3 }),
      );
      g.appendChild(svgEl("text", { class: "value", x: labelW + barW + 6, y: y + row / 2 + 4 }, pct(t.probability)));
      svg.appendChild(g);
    });
    desc.textContent = r.top.map((t) => `${t.genre} ${pct(t.probability)}`).join(", ");
  }

  function drawTimeline(r, w) {
    // Rows: the whole file's top genres; columns: windows (each drawn up to the next window's start);
    // a cell's darkness is that genre's value in that window (blank: below the window's top list).
    const svg = $("timeline");
    const desc = $("timeline-desc");
    clear(svg, desc);
    const genres = r.top.map((t) => t.genre);
    const wins = r.windows || [];
    const { width, labelW, chars } = geometry(svg);
    const rowH = 22, axisH = 26;
    const plotW = width - labelW - 8;
    const end = Math.max(r.analysed_seconds || 0, ...wins.map((x) => x.end), 1e-3);
    const height = rowH * genres.length + axisH;
    svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
    const x = (t) => labelW + (plotW * t) / end;
    genres.forEach((g, i) => {
      svg.appendChild(svgEl("text", { x: labelW - 8, y: i * rowH + rowH / 2 + 4, "text-anchor": "end" }, short(g, chars)));
    });
    const heat = `rgb(${getComputedStyle(document.documentElement).getPropertyValue("--heat").trim() || "26, 95, 180"})`;
    const cells = svgEl("g", { class: "cells", "shape-rendering": "crispEdges" });
    wins.forEach((win, j) => {
      const x0 = x(win.start);
      const next = j + 1 < wins.length ? Math.min(wins[j + 1].start, win.end) : win.end;
      const cw = Math.max(0.5, x(Math.max(next, win.start + 1e-3)) - x0);
      const values = Object.fromEntries(win.top.map((t) => [t.genre, t.probability]));
      genres.forEach((g, i) => {
        const v = values[g];
        if (v === undefined) return;
        const rect = svgEl("rect", {
          x: x0, y: i * rowH + 2, width: cw, height: rowH - 4,
          fill: heat,
          "fill-opacity": (0.08 + 0.92 * Math.min(1, v)).toFixed(3),
          "data-genre": g, "data-start": win.start,
        });
        rect.appendChild(svgEl("title", {}, `${win.start.toFixed(1)}–${win.end.toFixed(1)} s: ${g} ${pct(v)}`));
        cells.appendChild(rect);
      });
    });
    svg.appendChild(cells);
    const axisY = rowH * genres.length + 2;
    svg.appendChild(svgEl("line", { class: "axis", x1: labelW, x2: labelW + plotW, y1: axisY, y2: axisY }));
    const step = niceStep(end, Math.max(2, Math.floor(plotW / 56)));
    for (let t = 0; t <= end + 1e-9; t += step) {
      svg.appendChild(svgEl("line", { class: "axis", x1: x(t), x2: x(t), y1: axisY, y2: axisY + 4 }));
      svg.appendChild(svgEl("text", { class: "tick", x: x(t), y: axisY + 17, "text-anchor": "middle" }, clock(t)));
    }
    $("timeline-caption").textContent = `Over time: ${wins.length} windows (${w} per window; darker is higher)`;
    const changes = [];
    wins.forEach((win, j) => {
      if (j === 0 || win.genre !== wins[j - 1].genre) changes.push(`${clock(win.start)} ${win.genre}`);
    });
    desc.textContent = `Top genre by window: ${changes.slice(0, 40).join(", ")}${changes.length > 40 ? ", …" : ""}`;
    $("timeline-hint").textContent =
      "Each column is a window of the model's length, drawn from its start to the next window's start. Blank: not among that window's top genres.";
  }

  function niceStep(end, ticks) {
    for (const s of [1, 2, 5, 10, 15, 30, 60, 120, 300, 600]) if (end / s <= ticks) return s;
    return 1200;
  }

  function fillTable(r, w) {
    const table = $("windows-table");
    clear(table);
    const head = table.createTHead().insertRow();
    for (const [text, num] of [["start", true], ["end", true], ["top genre", false], [w, true], ["next", false]]) {
      const th = document.createElement("th");
      th.scope = "col";
      th.textContent = text;
      if (num) th.className = "num";
      head.appendChild(th);
    }
    const body = table.createTBody();
    for (const win of r.windows || []) {
      const tr = body.insertRow();
      const cells = [
        [`${win.start.toFixed(2)} s`, true],
        [`${win.end.toFixed(2)} s`, true],
        [win.genre, false],
        [pct(win.probability), true],
        [win.top.slice(1, 3).map((t) => `${t.genre} ${pct(t.probability)}`).join(", "), false],
      ];
      for (const [text, num] of cells) {
        const td = tr.insertCell();
        td.textContent = text;
        if (num) td.className = "num";
      }
    }
  }

  // ------------------------------------------------------------------ recording

  async function toggleRecording() {
    if (state.recording) {
      state.recording.recorder.stop();
      return;
    }
    showError("");
    if (!navigator.mediaDevices || !window.MediaRecorder) {
      showError("This browser cannot record here (recording needs a current browser and a page served from localhost or https).");
      return;
    }
    let stream;
    try {
      stream = await navigator.mediaDevices.getUserMedia({ audio: true });
    } catch (err) {
      showError(`No microphone: ${err.message || err.name}.`);
      return;
    }
    const recorder = new MediaRecorder(stream);
    const chunks = [];
    const limits = state.limits || { max_upload_bytes: 25 * 2 ** 20, max_seconds: 600 };
    // the WAV sent is 16-bit mono at RECORD_RATE: stop before it would pass the upload limit
    const maxSeconds = Math.min(limits.max_seconds, (limits.max_upload_bytes - 1024) / (2 * RECORD_RATE));
    const started = performance.now();
    const rec = { recorder, stream, timer: null };
    state.recording = rec;
    recorder.ondataavailable = (e) => { if (e.data && e.data.size) chunks.push(e.data); };
    recorder.onstop = () => finishRecording(rec, chunks, recorder.mimeType);
    recorder.start(250);
    rec.timer = setInterval(() => {
      const s = (performance.now() - started) / 1000;
      $("rec-time").textContent = clock(s);
      if (s >= maxSeconds && recorder.state === "recording") recorder.stop();
    }, 200);
    const btn = $("record");
    btn.setAttribute("aria-pressed", "true");
    btn.querySelector(".label").textContent = "Stop and classify";
    status("Recording… press the button again to stop.");
  }

  async function finishRecording(rec, chunks, mimeType) {
    clearInterval(rec.timer);
    rec.stream.getTracks().forEach((t) => t.stop());
    state.recording = null;
    const btn = $("record");
    btn.setAttribute("aria-pressed", "false");
    btn.querySelector(".label").textContent = "Start recording";
    const blob = new Blob(chunks, { type: mimeType || "audio/webm" });
    const audio = $("playback");
    audio.src = URL.createObjectURL(blob);
    audio.hidden = false;
    if (!blob.size) {
      showError("The recording is empty.");
      status("");
      return;
    }
    status("Converting the recording…");
    try {
      const wav = await toWav(blob);
      send(wav, "recording.wav", "record");
    } catch (err) {
      status("");
      showError(`The recording could not be decoded in this browser (${err.message || err.name}).`);
    }
  }

  async function toWav(blob) {
    const data = await blob.arrayBuffer();
    const Ctx = window.AudioContext || window.webkitAudioContext;
    const ctx = new Ctx();
    let decoded;
    try {
      decoded = await ctx.decodeAudioData(data);
    } finally {
      if (ctx.close) ctx.close();
    }
    const n = Math.max(1, Math.ceil(decoded.duration * RECORD_RATE));
    const off = new OfflineAudioContext(1, n, RECORD_RATE); // mixes down to mono and resamples
    const src = off.createBufferSource();
    src.buffer = decoded;
    src.connect(off.destination);
    src.start();
    const rendered = await off.startRendering();
    return encodeWav(rendered.getChannelData(0), RECORD_RATE);
  }

  function encodeWav(samples, rate) {
    const buf = new ArrayBuffer(44 + 2 * samples.length);
    const v = new DataView(buf);
    const ascii = (o, s) => { for (let i = 0; i < s.length; i++) v.setUint8(o + i, s.charCodeAt(i)); };
    ascii(0, "RIFF");
    v.setUint32(4, 36 + 2 * samples.length, true);
    ascii(8, "WAVE");
    ascii(12, "fmt ");
    v.setUint32(16, 16, true); // PCM chunk size
    v.setUint16(20, 1, true); // PCM
    v.setUint16(22, 1, true); // mono
    v.setUint32(24, rate, true);
    v.setUint32(28, 2 * rate, true); // bytes per second
    v.setUint16(32, 2, true); // block align
    v.setUint16(34, 16, true); // bits per sample
    ascii(36, "data");
    v.setUint32(40, 2 * samples.length, true);
    for (let i = 0; i < samples.length; i++) {
      const s = Math.max(-1, Math.min(1, samples[i]));
      v.setInt16(44 + 2 * i, s < 0 ? s * 0x8000 : s * 0x7fff, true);
    }
    return new Blob([buf], { type: "audio/wav" });
  }

  // ------------------------------------------------------------------ wiring

  document.addEventListener("DOMContentLoaded", () => {
    $("model").addEventListener("change", modelChanged);
    $("upload-form").addEventListener("submit", (e) => {
      e.preventDefault();
      const f = $("file").files[0];
      if (!f) {
        showError("Choose an audio file first.");
        $("file").focus();
        return;
      }
      send(f, f.name);
    });
    $("record").addEventListener("click", toggleRecording);
    let lastWidth = 0, pending = null;
    window.addEventListener("resize", () => {
      clearTimeout(pending);
      pending = setTimeout(() => {
        const w = $("bars").parentElement.clientWidth;
        if (state.last && w !== lastWidth) {
          lastWidth = w;
          const m = state.models.find((x) => x.id === state.last.model);
          const wd = state.last.output === "sigmoid" ? "likelihood" : word(m);
          drawBars(state.last, wd);
          drawTimeline(state.last, wd);
        }
      }, 150);
    });
    loadModels();
  });
})();
