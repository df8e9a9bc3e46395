// The page: four panels over the wasm module built by web/build.sh (pkg/). Every call into it
// either returns a value or throws / rejects with an Error whose message is shown as it is.
import init, { Gpu, Model, Training, compare, digitPixels, version } from './pkg/wgpu_mlp_web.js';
import { errorMessage } from './message.js';
import { setupTraining } from './train.js';

const $ = (id) => document.getElementById(id);
const PAD = 256; // the drawing canvas's own pixels (CSS may show it at another size)

let gpu = null; // the WebGPU device, or null when the browser has none
let gpuError = '';
let digitsModel = null;
let pytorchDigits = null; // the shipped model, for "Back to PyTorch's model"
let userModel = null;

function status(text, state) {
  const s = $('status');
  s.textContent = text;
  s.dataset.state = state;
}

// A message for a caught error: a panic (a bug) reports itself through the hook in
// web/src/panic.rs, which beats wasm's bare "unreachable" (web/message.js).
const message = (e) => errorMessage(e);

function fmtBytes(n) {
  if (n >= 2 ** 30) return `${+(n / 2 ** 30).toFixed(2)} GiB`;
  if (n >= 2 ** 20) return `${+(n / 2 ** 20).toFixed(2)} MiB`;
  if (n >= 2 ** 10) return `${+(n / 2 ** 10).toFixed(2)} KiB`;
  return `${n} B`;
}

const fmtMs = (ms) => (ms >= 100 ? ms.toFixed(0) : ms >= 10 ? ms.toFixed(1) : ms.toFixed(2));
const median = (v) => {
  const s = [...v].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

// ---------------------------------------------------------------- 3. the adapter

function showAdapter() {
  const dl = $('adapterInfo');
  dl.replaceChildren();
  const row = (k, v) => {
    const dt = document.createElement('dt');
    dt.textContent = k;
    const dd = document.createElement('dd');
    dd.textContent = v;
    dl.append(dt, dd);
  };
  if (!gpu) {
    $('adapterError').textContent = gpuError;
    $('adapterError').hidden = false;
    row('WebGPU', 'not available: the digits demo needs it; "Your model" still runs on the CPU');
    return;
  }
  const i = gpu.info();
  row('adapter', i.nameHidden ? '(hidden by the browser)' : i.name);
  row('backend', i.backend);
  row('device type', `${i.deviceType}${i.fallback ? ' (a fallback adapter: software rendering, e.g. SwiftShader)' : ''}`);
  row('kernels chosen for', i.fallback ? 'a software adapter (the windowed kernel)' : 'a hardware GPU (GEMV and tiled kernels)');
  const sg = i.subgroupFeature ? `yes, ${i.subgroupMinSize}–${i.subgroupMaxSize} lanes` : 'no';
  row('subgroups', `${sg}; used by the kernels: ${i.subgroupsUsed ? 'yes' : 'no'}${!i.subgroupsUsed && i.subgroupFeature ? ' (they need at least 8 lanes)' : ''}`);
  const l = i.limits;
  row('max storage binding', fmtBytes(l.maxStorageBufferBindingSize));
  row('max buffer', fmtBytes(l.maxBufferSize));
  row('max uniform binding', fmtBytes(l.maxUniformBufferBindingSize));
  row('workgroup size', `${l.maxComputeWorkgroupSizeX} × ${l.maxComputeWorkgroupSizeY}, ${l.maxComputeInvocationsPerWorkgroup} invocations in all`);
  row('workgroup memory', fmtBytes(l.maxComputeWorkgroupStorageSize));
  row('workgroups per dimension', String(l.maxComputeWorkgroupsPerDimension));
  row('max 2D texture', `${l.maxTextureDimension2D} px`);
}

// ---------------------------------------------------------------- 1. digits

const pad = $('pad');
const pctx = pad.getContext('2d', { willReadFrequently: true });
let drawing = null; // the pointer drawing now: { id, x, y }
let inked = false;

function padPoint(e) {
  const r = pad.getBoundingClientRect();
  return { x: ((e.clientX - r.left) * PAD) / r.width, y: ((e.clientY - r.top) * PAD) / r.height };
}

function stroke(from, to) {
  pctx.lineCap = 'round';
  pctx.lineJoin = 'round';
  pctx.strokeStyle = '#14171a';
  pctx.lineWidth = Number($('pen').value);
  pctx.beginPath();
  pctx.moveTo(from.x, from.y);
  pctx.lineTo(to.x, to.y);
  pctx.stroke();
  inked = true;
}

pad.addEventListener('pointerdown', (e) => {
  if (drawing || (e.pointerType === 'mouse' && e.button !== 0)) return;
  e.preventDefault();
  pad.setPointerCapture(e.pointerId);
  const p = padPoint(e);
  drawing = { id: e.pointerId, ...p };
  stroke(p, p); // a dot
  scheduleClassify();
});

pad.addEventListener('pointermove', (e) => {
  if (!drawing || e.pointerId !== drawing.id) return;
  e.preventDefault();
  const events = e.getCoalescedEvents ? e.getCoalescedEvents() : [];
  for (const ev of events.length ? events : [e]) {
    const p = padPoint(ev);
    stroke(drawing, p);
    drawing.x = p.x;
    drawing.y = p.y;
  }
  scheduleClassify();
});

for (const type of ['pointerup', 'pointercancel']) {
  pad.addEventListener(type, (e) => {
    if (drawing && e.pointerId === drawing.id) {
      drawing = null;
      scheduleClassify();
    }
  });
}

$('clear').addEventListener('click', () => {
  pctx.clearRect(0, 0, PAD, PAD);
  inked = false;
  showDigit(new Float32Array(64), null);
  scheduleClassify();
});

// Live classification: at most one frame's worth of work at a time. A drawing that changes while
// the GPU works is classified again as soon as it is done, so the bars end on the last stroke.
let frameQueued = false;
let busy = false;
let dirty = false;

// pad.dataset.pending is '1' from a change of the drawing until its bars are shown (tests wait on it).
function scheduleClassify() {
  pad.dataset.pending = '1';
  if (frameQueued) return;
  frameQueued = true;
  requestAnimationFrame(() => {
    frameQueued = false;
    classify();
  });
}

async function classify() {
  if (!digitsModel) return;
  if (busy) {
    dirty = true;
    return;
  }
  busy = true;
  try {
    const image = pctx.getImageData(0, 0, PAD, PAD);
    const pixels = digitPixels(new Uint8Array(image.data.buffer), PAD, PAD);
    if (!inked || pixels.every((v) => v === 0)) {
      showDigit(pixels, null);
    } else {
      const probs = await digitsModel.classifyDigit(pixels);
      showDigit(pixels, probs);
    }
  } catch (e) {
    $('prediction').textContent = `Error: ${message(e)}`;
  } finally {
    busy = false;
  }
  if (dirty) {
    dirty = false;
    scheduleClassify();
  } else if (!frameQueued) {
    pad.dataset.pending = '0';
  }
}

const seen = $('seen').getContext('2d');
const barRows = [];

function makeBars() {
  const bars = $('bars');
  for (let d = 0; d < 10; d++) {
    const label = document.createElement('span');
    label.className = 'label';
    label.textContent = String(d);
    const track = document.createElement('div');
    track.className = 'track';
    const fill = document.createElement('div');
    fill.className = 'fill';
    track.append(fill);
    const value = document.createElement('span');
    value.className = 'value';
    value.textContent = '–';
    bars.append(label, track, value);
    barRows.push({ label, track, fill, value });
  }
}

function showDigit(pixels, probs) {
  const img = seen.createImageData(8, 8);
  for (let k = 0; k < 64; k++) {
    const v = 255 - Math.round((pixels[k] / 16) * 255);
    img.data.set([v, v, v, 255], k * 4);
  }
  seen.putImageData(img, 0, 0);
  $('seen').dataset.pixels = Array.from(pixels, (v) => v.toFixed(2)).join(',');
  const pred = $('prediction');
  if (!probs) {
    for (const r of barRows) {
      r.fill.style.width = '0%';
      r.value.textContent = '–';
      r.track.classList.remove('best');
    }
    pred.textContent = 'Draw a digit';
    pred.dataset.digit = '';
    return;
  }
  let best = 0;
  for (let d = 1; d < 10; d++) if (probs[d] > probs[best]) best = d;
  barRows.forEach((r, d) => {
    r.fill.style.width = `${(probs[d] * 100).toFixed(1)}%`;
    r.value.textContent = `${(probs[d] * 100).toFixed(1)} %`;
    r.track.classList.toggle('best', d === best);
  });
  pred.replaceChildren('Prediction: ', Object.assign(document.createElement('b'), { textContent: String(best) }),
    ` (${(probs[best] * 100).toFixed(1)} %)`);
  pred.dataset.digit = String(best);
  pred.dataset.probs = Array.from(probs, (p) => p.toExponential(3)).join(',');
}

async function loadDigits() {
  const res = await fetch('model/digits.safetensors');
  if (!res.ok) throw new Error(`model/digits.safetensors: HTTP ${res.status}`);
  const m = Model.load(new Uint8Array(await res.arrayBuffer()), 'digits.safetensors');
  m.upload(gpu);
  // One run compiles the kernels now rather than on the first stroke.
  await m.classifyDigit(new Float32Array(64));
  digitsModel = m;
  pytorchDigits = m;
}

// The digits panel draws with `m` from now on (the training panel's model, or PyTorch's back).
async function useDigitsModel(m, label) {
  await m.classifyDigit(new Float32Array(64)); // compiles its kernels now, not on the next stroke
  digitsModel = m;
  const pytorch = m === pytorchDigits;
  $('digitsModel').textContent = pytorch ? "Classifying with PyTorch's model (web/model/digits.safetensors)." : `Classifying with ${label}.`;
  $('digitsModel').dataset.model = pytorch ? 'pytorch' : 'trained';
  $('digitsBack').hidden = pytorch;
  scheduleClassify();
}

$('digitsBack').addEventListener('click', () => useDigitsModel(pytorchDigits, ''));

// ---------------------------------------------------------------- 2. your model

function modelError(text) {
  const p = $('modelError');
  p.textContent = text;
  p.hidden = !text;
}

// The model file and the files picked with it (an ONNX model's external data, model.onnx.data).
function pickedModel(files) {
  const model = files.filter((f) => /\.(onnx|safetensors)$/i.test(f.name));
  if (model.length > 1) throw new Error(`pick one model file at a time, not ${model.map((f) => f.name).join(' and ')}`);
  if (model.length === 0) {
    throw new Error(`${files.map((f) => f.name).join(', ')}: no .onnx or .safetensors file among them; ` +
      'a .data file goes with the .onnx file that names it: pick both together');
  }
  return { file: model[0], others: files.filter((f) => f !== model[0]) };
}

$('file').addEventListener('change', async () => {
  const picked = [...$('file').files];
  if (!picked.length) return;
  modelError('');
  $('modelInfo').hidden = true;
  $('result').hidden = true;
  userModel = null;
  let file = picked[0];
  try {
    const { file: f, others } = pickedModel(picked);
    file = f;
    const bytes = new Uint8Array(await file.arrayBuffer());
    const data = await Promise.all(others.map(async (o) => [o.name, new Uint8Array(await o.arrayBuffer())]));
    const m = data.length ? Model.loadWithData(bytes, file.name, data) : Model.load(bytes, file.name);
    $('summary').textContent = m.summary();
    const withData = data.length ? ` (with ${data.map(([n]) => n).join(', ')})` : '';
    $('modelMeta').textContent = `${file.name}${withData}: ${m.format}, ${m.inFeatures} → ${m.outFeatures}, ` +
      `${m.paramCount.toLocaleString('en')} parameters; arch ${m.arch}`;
    const diag = $('diagnostics');
    diag.replaceChildren(...m.diagnostics().map((d) => Object.assign(document.createElement('li'), { textContent: d })));
    if (gpu) m.upload(gpu);
    userModel = m;
    $('modelInfo').hidden = false;
    $('modelInfo').dataset.file = file.name;
  } catch (e) {
    modelError(message(e));
  }
});

function batchInput(m) {
  if (document.querySelector('input[name="source"]:checked').value === 'pasted') {
    const x = m.parseInput($('pasted').value);
    return { x, batch: x.length / m.inFeatures, what: 'pasted' };
  }
  const batch = Number($('batch').value);
  const seed = Number($('seed').value);
  if (!Number.isInteger(batch) || batch < 1) throw new Error('the batch size must be a whole number from 1');
  const x = m.randomInput(batch, seed);
  return { x, batch, what: `torch.manual_seed(${seed}); torch.randn(${batch}, ${m.inFeatures})` };
}

$('run').addEventListener('click', async () => {
  const m = userModel;
  if (!m) return;
  const button = $('run');
  button.disabled = true;
  modelError('');
  try {
    const { x, batch, what } = batchInput(m);
    const repeats = Math.min(50, Math.max(1, Math.floor(Number($('repeats').value) || 1)));
    const runs = [];
    let g = null;
    let f = null;
    let c = null;
    for (let r = 0; r < repeats; r++) {
      let gpuMs = null;
      if (gpu) {
        const t0 = performance.now();
        g = await m.forwardGpu(x, batch);
        gpuMs = performance.now() - t0;
      }
      const t1 = performance.now();
      f = m.forwardCpuFast(x, batch);
      const fastMs = performance.now() - t1;
      const t2 = performance.now();
      c = m.forwardCpu(x, batch);
      const cpuMs = performance.now() - t2;
      runs.push({ gpuMs, fastMs, cpuMs });
      // Let the page paint between runs.
      await new Promise((r) => setTimeout(r, 0));
    }
    // The last run's numbers, for the console and the page test (which checks them against the
    // native CLI's CPU reference).
    globalThis.wgpuMlpLastRun = {
      batch, inFeatures: m.inFeatures, outFeatures: m.outFeatures,
      x: Array.from(x), gpu: g && Array.from(g), fast: Array.from(f), cpu: Array.from(c),
    };
    showResult(m, { x, batch, what, runs, g, f, c });
  } catch (e) {
    modelError(message(e));
  } finally {
    button.disabled = false;
  }
});

// One line of agreement with the CPU reference: `el` gets data-agree and data-max-abs-diff.
function agreement(el, name, y, c) {
  const v = compare(y, c);
  const ok = v.agree;
  el.className = `agreement ${ok ? 'good' : 'bad'}`;
  el.dataset.agree = String(ok);
  el.dataset.maxAbsDiff = String(v.maxAbsDiff);
  el.textContent = `${name} ${ok ? 'agrees with' : 'DISAGREES with'} the CPU reference: max |diff| = ` +
    `${v.maxAbsDiff.toExponential(2)} over ${v.len} values` +
    `${ok ? '' : `, ${v.mismatches} outside the tolerance (first at ${v.firstMismatch})`}` +
    ` (tolerance |diff| ≤ ${v.atol} + ${v.rtol}·|reference|)`;
}

function showResult(m, { batch, what, runs, g, f, c }) {
  $('result').hidden = false;
  const a = $('agreement');
  if (g) {
    agreement(a, 'WebGPU', g, c);
  } else {
    a.className = 'agreement';
    a.dataset.agree = '';
    a.textContent = 'No WebGPU in this browser: the CPU paths ran alone.';
  }
  agreement($('agreementFast'), 'The fast CPU path', f, c);
  const gpuMs = runs.map((r) => r.gpuMs).filter((t) => t !== null);
  const fastMs = runs.map((r) => r.fastMs);
  const cpuMs = runs.map((r) => r.cpuMs);
  const kernels = gpu ? m.linearKernels(batch) : '';
  let t = `${what}: batch ${batch}, ${runs.length} run${runs.length > 1 ? 's' : ''}. `;
  if (gpuMs.length) {
    t += `WebGPU ${fmtMs(gpuMs[0])} ms first (compiles and allocates), median ` +
      `${fmtMs(median(gpuMs.slice(gpuMs.length > 1 ? 1 : 0)))} ms after`;
    t += kernels ? ` (Linear kernels: ${kernels}); ` : '; ';
  }
  t += `fast CPU path (wasm, one thread) median ${fmtMs(median(fastMs))} ms; ` +
    `CPU reference (wasm, f64 accumulation) median ${fmtMs(median(cpuMs))} ms.`;
  $('timings').textContent = t;
  plot(runs);
  outputs(g, c, m.outFeatures, batch);
}

// Per-run timings, WebGPU and CPU side by side (log scale when they differ by 20× or more).
function plot(runs) {
  const svg = $('plot');
  const W = 520, H = 170, L = 44, B = 22, T = 14;
  svg.setAttribute('viewBox', `0 0 ${W} ${H}`);
  const all = runs.flatMap((r) => [r.gpuMs, r.fastMs, r.cpuMs]).filter((v) => v !== null && v > 0);
  const max = Math.max(...all, 0.01);
  const min = Math.min(...all, max);
  const log = max / Math.max(min, 1e-3) >= 20;
  const lo = log ? Math.log10(Math.max(min / 2, 1e-3)) : 0;
  const y = (v) => {
    const f = log ? (Math.log10(Math.max(v, 1e-3)) - lo) / (Math.log10(max) - lo) : v / max;
    // A run faster than the clock's resolution (0 ms) still shows as a sliver.
    return H - B - Math.min(1, Math.max(0.01, f)) * (H - B - T);
  };
  const ns = 'http://www.w3.org/2000/svg';
  const el = (name, attrs, text) => {
    const e = document.createElementNS(ns, name);
    for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
    if (text !== undefined) e.textContent = text;
    return e;
  };
  const parts = [el('line', { x1: L, y1: H - B, x2: W, y2: H - B, stroke: '#c6ccd3' })];
  parts.push(el('text', { x: 2, y: 10 }, `ms${log ? ' (log)' : ''}`));
  parts.push(el('text', { x: L - 4, y: y(max) + 8, 'text-anchor': 'end' }, fmtMs(max)));
  parts.push(el('line', { x1: L - 2, y1: y(max), x2: W, y2: y(max), stroke: '#eef0f3' }));
  parts.push(el('text', { x: L - 4, y: H - B, 'text-anchor': 'end' }, log ? fmtMs(10 ** lo) : '0'));
  const slot = (W - L) / runs.length;
  const bw = Math.min(14, slot / 3.6);
  const series = [['gpuMs', 'var(--accent)', 'WebGPU'], ['fastMs', 'var(--fast)', 'fast CPU'], ['cpuMs', 'var(--cpu)', 'CPU reference']];
  runs.forEach((r, i) => {
    const x0 = L + i * slot + slot / 2 - 1.5 * bw;
    series.forEach(([key, fill], k) => {
      if (r[key] === null) return;
      parts.push(el('rect', { x: x0 + k * bw, y: y(r[key]), width: bw - 1, height: H - B - y(r[key]), fill }));
    });
    parts.push(el('text', { x: L + i * slot + slot / 2, y: H - 6, 'text-anchor': 'middle' }, String(i + 1)));
  });
  series.forEach(([, fill, name], k) => {
    const lx = W - 300 + k * 90;
    parts.push(el('rect', { x: lx, y: 4, width: 10, height: 10, fill }));
    parts.push(el('text', { x: lx + 14, y: 13 }, name));
  });
  svg.replaceChildren(...parts);
}

// The first rows of both outputs.
function outputs(g, c, width, batch) {
  const rows = Math.min(batch, 4);
  const cols = Math.min(width, 6);
  const table = document.createElement('table');
  const head = table.insertRow();
  head.append(Object.assign(document.createElement('th'), { textContent: 'row' }));
  for (let j = 0; j < cols; j++) head.append(Object.assign(document.createElement('th'), { textContent: `y[${j}]` }));
  for (let i = 0; i < rows; i++) {
    for (const [name, v] of [['GPU', g], ['CPU ref', c]]) {
      if (!v) continue;
      const tr = table.insertRow();
      tr.insertCell().textContent = `${i} ${name}`;
      for (let j = 0; j < cols; j++) tr.insertCell().textContent = v[i * width + j].toPrecision(7);
    }
  }
  const note = document.createElement('p');
  note.className = 'meta';
  note.textContent = `First ${rows} of ${batch} rows, ${cols} of ${width} columns.`;
  $('outputs').replaceChildren(table, note);
}

// ---------------------------------------------------------------- start

async function main() {
  makeBars();
  try {
    await init();
  } catch (e) {
    status(`The wasm module did not load: ${message(e)}. Build it with web/build.sh.`, 'error');
    return;
  }
  $('version').textContent = `wgpu-mlp-web ${version()}`;
  // Training runs on the CPU (wasm): the panel works without WebGPU; drawing with its model not.
  const trainingPanel = setupTraining({ Training, getGpu: () => (digitsModel ? gpu : null), message, useModel: useDigitsModel });
  try {
    gpu = await Gpu.init();
  } catch (e) {
    // Gpu.init says which: no navigator.gpu at all, or no adapter granted, and what to do.
    gpuError = message(e);
  }
  showAdapter();
  if (!gpu) {
    status(gpuError, 'error');
    $('prediction').textContent = 'The digits demo needs WebGPU.';
    return;
  }
  try {
    await loadDigits();
  } catch (e) {
    status(`The digits model did not load: ${message(e)}`, 'error');
    return;
  }
  trainingPanel.refresh();
  status('WebGPU ready: draw a digit.', 'ready');
  document.body.dataset.ready = '1';
  if (inked) scheduleClassify();
}

main();
