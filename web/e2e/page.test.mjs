// End-to-end test of the page in web/ in headless Chromium on WebGPU (SwiftShader where there is
// no GPU): node page.test.mjs (web/ci.sh runs it after web/build.sh and the native CLI build).
//
// 1. Digits: ten held-out samples of web/model/heldout.json (the first centred one of each
//    class) are drawn with scripted mouse strokes, each pixel a band of ink as high as its value
//    (the pen set to 4 px through the page's slider); the page's own downsampling and the model
//    on WebGPU must give the right class for at least 9 of 10, and each 8×8 image must come back
//    close to the sample. Then a few digits drawn as a person would (thick pen, mouse and touch).
// 2. Your model: web/model/digits.safetensors and a fixture from tests/data/models go in through
//    the file input; the summary must equal `wgpu-mlp summary --weights FILE` (the native CLI,
//    WGPU_MLP_CLI or target/debug/wgpu-mlp) character for character, and the fixture's also
//    torchsummary's own text; a random and a pasted batch must agree between WebGPU and the CPU
//    path (rtol 1e-4, atol 1e-5), and both with the native CLI's CPU reference (`wgpu-mlp infer
//    --device cpu`) on the same input. An ONNX fixture from both exporters: torchsummary's text
//    and the same agreement. An ONNX model with external data (digits.onnx + digits.onnx.data,
//    picked together) the same; picked alone, a message saying to pick both. Damaged files give
//    a message, not a crash.
// 3. The adapter panel lists the adapter; and a second browser started without WebGPU shows the
//    message telling the user what to do.
// 4. The training panel: train.test.mjs.
//
// A missing browser, a missing CLI or no WebGPU FAILS the test (exit 1) with a message; nothing
// is skipped. A screenshot goes to $SCREENSHOT (default e2e/out/page.png; the README's is
// `SCREENSHOT=docs/web-page.png node web/e2e/page.test.mjs`).
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { chromium } from 'playwright-core';
import { centredSamples, offCentre, pad as drawingPad } from './drawing.mjs';
import {
  ARGS, CHROMIUM, CLI, check, failed, here, noPanics, openPage, preconditions, results, root, serve, web,
} from './harness.mjs';

const SCREENSHOT = resolve(process.env.SCREENSHOT || join(here, 'out/page.png'));
const FIXTURE = 'seq_bn'; // BatchNorm1d and Dropout: in the safetensors file, not all in ONNX
const ONNX_FIXTURE = 'seq_ln'; // LayerNorm, GELU, LogSoftmax: every module survives the export

preconditions();
const { server, url: URL_ } = await serve();
const heldout = JSON.parse(readFileSync(join(web, 'model/heldout.json'), 'utf8'));

function cliSummary(file) {
  return execFileSync(CLI, ['summary', '--weights', file], { encoding: 'utf8' });
}

// .npy files for the native CLI: float32, C order, format 1.0.
function npyBytes(values, rows, cols) {
  let header = `{'descr': '<f4', 'fortran_order': False, 'shape': (${rows}, ${cols}), }`;
  header += ' '.repeat((64 - ((10 + header.length + 1) % 64)) % 64) + '\n';
  const out = Buffer.alloc(10 + header.length + rows * cols * 4);
  out.write('\x93NUMPY', 0, 'latin1');
  out[6] = 1;
  out[7] = 0;
  out.writeUInt16LE(header.length, 8);
  out.write(header, 10, 'latin1');
  Buffer.from(new Float32Array(values).buffer).copy(out, 10 + header.length);
  return out;
}
function readNpy(buf) {
  const v1 = buf[6] === 1;
  const len = v1 ? buf.readUInt16LE(8) : buf.readUInt32LE(8);
  const start = (v1 ? 10 : 12) + len;
  const header = buf.toString('latin1', v1 ? 10 : 12, start);
  if (!header.includes("'<f4'")) throw new Error(`not <f4: ${header}`);
  return Array.from(new Float32Array(buf.buffer.slice(buf.byteOffset + start, buf.byteOffset + buf.length)));
}

// The native CLI on the page's last batch: `wgpu-mlp infer --device cpu-reference` (the CPU
// reference) or `--device cpu` (the fast CPU path, with this machine's SIMD kernels).
function nativeCpu(file, run, device) {
  const dir = mkdtempSync(join(tmpdir(), 'wgpu-mlp-e2e-'));
  try {
    writeFileSync(join(dir, 'x.npy'), npyBytes(run.x, run.batch, run.inFeatures));
    execFileSync(CLI, ['infer', '--weights', file, '--input', join(dir, 'x.npy'), '--output', join(dir, 'y.npy'), '--device', device],
      { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    return readNpy(readFileSync(join(dir, 'y.npy')));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
// Largest |a − b| and whether every value is within atol + rtol·|b|.
function within(a, b, rtol = 1e-4, atol = 1e-5) {
  let max = 0;
  let ok = a.length === b.length;
  for (let i = 0; ok && i < a.length; i++) {
    const d = Math.abs(a[i] - b[i]);
    max = Math.max(max, d);
    if (!(d <= atol + rtol * Math.abs(b[i]))) ok = false;
  }
  return { ok, max };
}

// ------------------------------------------------------------------ the browser with WebGPU

const { browser, context, page, pageErrors } = await openPage(URL_);

// ------------------------------------------------------------------ 3. the adapter panel

const adapter = await page.$eval('#adapterInfo', (dl) => {
  const out = {};
  const dts = dl.querySelectorAll('dt');
  dts.forEach((dt) => { out[dt.textContent] = dt.nextElementSibling.textContent; });
  return out;
});
console.log('adapter panel:', adapter);
check(adapter.backend === 'BrowserWebGpu', `adapter panel: backend ${adapter.backend}`);
check(/hidden by the browser|\S/.test(adapter.adapter || ''), `adapter panel: name "${adapter.adapter}"`);
check(/^\d/.test(adapter['max storage binding'] || ''), `adapter panel: max storage binding ${adapter['max storage binding']}`);
check(/used by the kernels: (yes|no)/.test(adapter.subgroups || ''), `adapter panel: subgroups "${adapter.subgroups}"`);

// ------------------------------------------------------------------ 1. digits

const { box, css, settled, clear, setPen, drawSample } = await drawingPad(page);

const chosen = centredSamples(heldout);

await setPen(4);
let right = 0;
const lines = [];
for (const i of chosen) {
  const s = heldout[i];
  await clear();
  const t0 = Date.now();
  await drawSample(s.pixels);
  const got = await settled();
  const diffs = got.pixels.map((v, k) => Math.abs(v - s.pixels[k]));
  const maxDiff = Math.max(...diffs);
  const meanDiff = diffs.reduce((a, b) => a + b, 0) / 64;
  right += got.digit === s.label ? 1 : 0;
  lines.push(`sample ${i} (label ${s.label}, PyTorch ${s.torch_pred}): page says ${got.digit}; ` +
    `8×8 back within ${maxDiff.toFixed(2)} (mean ${meanDiff.toFixed(2)}); ${Date.now() - t0} ms`);
  console.log(`  ${lines[lines.length - 1]}`);
  if (offCentre(s.pixels) === 0) {
    check(maxDiff <= 4, `sample ${i}: the drawn image comes back (max pixel difference ${maxDiff.toFixed(2)} <= 4)`);
  }
}
check(right >= 9, `digits drawn with the mouse: ${right}/10 right (samples ${chosen.join(', ')})`);

// Drawn as a person would: a thick pen, strokes not aligned to any grid.
async function strokeMouse(points) {
  await page.mouse.move(box.x + points[0][0] * css, box.y + points[0][1] * css);
  await page.mouse.down();
  for (const [x, y] of points.slice(1)) await page.mouse.move(box.x + x * css, box.y + y * css, { steps: 3 });
  await page.mouse.up();
}
const cdp = await context.newCDPSession(page);
async function strokeTouch(points) {
  const at = ([x, y]) => [{ x: box.x + x * css, y: box.y + y * css, radiusX: 6, radiusY: 6, force: 1, id: 1 }];
  await cdp.send('Input.dispatchTouchEvent', { type: 'touchStart', touchPoints: at(points[0]) });
  for (const p of points.slice(1)) await cdp.send('Input.dispatchTouchEvent', { type: 'touchMove', touchPoints: at(p) });
  await cdp.send('Input.dispatchTouchEvent', { type: 'touchEnd', touchPoints: [] });
}
const ellipse = (cx, cy, rx, ry, n = 28) => [...Array(n + 1).keys()].map((i) => {
  const a = (i / n) * 2 * Math.PI;
  return [cx + rx * Math.sin(a), cy - ry * Math.cos(a)];
});
// An arc of the ellipse centred at (cx, cy), from a0 to a1 degrees clockwise from 12 o'clock.
const arc = (cx, cy, rx, ry, a0, a1, n = 16) => [...Array(n + 1).keys()].map((i) => {
  const a = ((a0 + ((a1 - a0) * i) / n) * Math.PI) / 180;
  return [cx + rx * Math.sin(a), cy - ry * Math.cos(a)];
});
const line = (a, b, n = 8) => [...Array(n + 1).keys()].map((i) => [a[0] + ((b[0] - a[0]) * i) / n, a[1] + ((b[1] - a[1]) * i) / n]);
const human = [
  { digit: 1, how: 'touch', strokes: [line([132, 40], [124, 216])] },
  { digit: 0, how: 'mouse', strokes: [ellipse(128, 128, 52, 88)] },
  { digit: 7, how: 'mouse', strokes: [[...line([72, 48], [184, 48]), ...line([184, 48], [112, 216]).slice(1)]] },
  { digit: 4, how: 'touch', strokes: [[...line([150, 40], [72, 150]), ...line([72, 150], [190, 150]).slice(1)], line([150, 90], [150, 220])] },
  { digit: 2, how: 'mouse', strokes: [[...arc(128, 90, 50, 45, -70, 110), ...line([175, 110], [80, 210]).slice(1), ...line([80, 210], [185, 210]).slice(1)]] },
  { digit: 3, how: 'touch', strokes: [arc(125, 82, 48, 38, -60, 180), arc(125, 165, 52, 45, 0, 240)] },
  { digit: 5, how: 'mouse', strokes: [line([170, 45], [90, 45]), [...line([90, 45], [84, 115]), ...arc(125, 155, 50, 48, -40, 230).slice(1)]] },
];
await setPen(24);
let humanRight = 0;
for (const h of human) {
  await clear();
  for (const s of h.strokes) await (h.how === 'touch' ? strokeTouch(s) : strokeMouse(s));
  const got = await settled();
  humanRight += got.digit === h.digit ? 1 : 0;
  console.log(`  a ${h.digit} drawn by ${h.how} with a 24 px pen: page says ${got.digit}`);
  results.push(`info a ${h.digit} drawn by ${h.how}: page says ${got.digit}`);
}
check(humanRight >= human.length - 1, `digits drawn as a person would (mouse and touch): ${humanRight}/${human.length} right`);

// ------------------------------------------------------------------ 2. your model

async function loadFile(file) {
  await page.setInputFiles('#file', file);
  await page.waitForFunction(() => !document.getElementById('modelInfo').hidden || !document.getElementById('modelError').hidden,
    null, { timeout: 30_000 });
  return page.evaluate(() => ({
    error: document.getElementById('modelError').hidden ? null : document.getElementById('modelError').textContent,
    summary: document.getElementById('summary').textContent,
  }));
}

async function runBatch() {
  await page.evaluate(() => { document.getElementById('result').hidden = true; });
  await page.click('#run');
  await page.waitForFunction(() => !document.getElementById('result').hidden || !document.getElementById('modelError').hidden,
    null, { timeout: 60_000 });
  return page.evaluate(() => {
    const a = document.getElementById('agreement');
    return {
      error: document.getElementById('modelError').hidden ? null : document.getElementById('modelError').textContent,
      agree: a.dataset.agree,
      maxAbsDiff: Number(a.dataset.maxAbsDiff),
      text: a.textContent,
      fastAgree: document.getElementById('agreementFast').dataset.agree,
      fastText: document.getElementById('agreementFast').textContent,
      timings: document.getElementById('timings').textContent,
      bars: document.querySelectorAll('#plot rect').length,
    };
  });
}

const files = [join(web, 'model/digits.safetensors'), join(root, `tests/data/models/${FIXTURE}.meta.safetensors`)];
for (const file of files) {
  const got = await loadFile(file);
  check(got.error === null, `${file}: loads (${got.error ?? 'no error'})`);
  const want = cliSummary(file);
  check(got.summary === want, `${file}: the page's summary equals \`wgpu-mlp summary --weights\``);
  if (got.summary !== want) console.log(`page:\n${got.summary}\nCLI:\n${want}`);
  const torch = join(root, `tests/data/models/${FIXTURE}.summary.txt`);
  if (file.includes(FIXTURE)) {
    check(got.summary === readFileSync(torch, 'utf8'), `${file}: the page's summary equals torchsummary's (${FIXTURE}.summary.txt)`);
  }
  await page.fill('#batch', '33');
  await page.fill('#seed', '7');
  await page.fill('#repeats', '3');
  await page.check('input[name="source"][value="random"]');
  const r = await runBatch();
  check(r.error === null && r.agree === 'true', `${file}: random batch 33: ${r.text}`);
  check(r.fastAgree === 'true', `${file}: random batch 33: ${r.fastText}`);
  check(r.bars >= 9, `${file}: timing plot drawn (${r.bars} bars)`);
  // The page's numbers against the native CPU reference (the CLI) on the same input.
  const run = await page.evaluate(() => globalThis.wgpuMlpLastRun);
  const native = nativeCpu(file, run, 'cpu-reference');
  const nativeFast = nativeCpu(file, run, 'cpu');
  const cpuVsNative = within(run.cpu, native);
  const gpuVsNative = within(run.gpu, native);
  const fastVsNative = within(run.fast, native);
  const fastVsNativeFast = within(run.fast, nativeFast);
  const same = run.cpu.every((v, i) => Object.is(v, native[i]));
  check(cpuVsNative.ok, `${file}: CPU reference, wasm vs native (wgpu-mlp infer --device cpu-reference): max |diff| ${cpuVsNative.max}${same ? ', bit for bit' : ''}`);
  check(gpuVsNative.ok, `${file}: WebGPU vs the native CPU reference: max |diff| ${gpuVsNative.max.toExponential(2)} (rtol 1e-4, atol 1e-5)`);
  check(fastVsNative.ok, `${file}: fast CPU path (wasm) vs the native CPU reference: max |diff| ${fastVsNative.max.toExponential(2)} (rtol 1e-4, atol 1e-5)`);
  check(fastVsNativeFast.ok, `${file}: fast CPU path, wasm vs native (--device cpu): max |diff| ${fastVsNativeFast.max.toExponential(2)} (rtol 1e-4, atol 1e-5)`);
  console.log(`  ${r.timings}`);
  results.push(`info ${file.split('/').pop()}: max |GPU - CPU| ${r.maxAbsDiff}; ${r.timings}`);
}
// Pasted numbers on the fixture (13 inputs): two rows.
const pasted = `[[${Array.from({ length: 13 }, (_, i) => (i - 6) / 3).join(', ')}],\n [${Array.from({ length: 13 }, (_, i) => Math.sin(i)).join(', ')}]]`;
await page.check('input[name="source"][value="pasted"]');
await page.fill('#pasted', pasted);
const rp = await runBatch();
check(rp.error === null && rp.agree === 'true' && rp.fastAgree === 'true', `pasted batch of 2 rows: ${rp.text}; ${rp.fastText}`);
await page.fill('#pasted', '1, 2, three');
const bad = await runBatch();
check(bad.error !== null && /three/.test(bad.error), `pasted junk is a message: ${bad.error}`);

// ONNX files from both of PyTorch's exporters: torchsummary's table, and WebGPU = CPU.
await page.fill('#pasted', '');
await page.check('input[name="source"][value="random"]');
for (const exporter of ['legacy', 'dynamo']) {
  const file = join(root, `tests/data/models/${ONNX_FIXTURE}.${exporter}.onnx`);
  const got = await loadFile(file);
  check(got.error === null, `${file}: loads (${got.error ?? 'no error'})`);
  const torch = readFileSync(join(root, `tests/data/models/${ONNX_FIXTURE}.summary.txt`), 'utf8');
  check(got.summary === torch, `${file}: the page's summary equals torchsummary's (${ONNX_FIXTURE}.summary.txt)`);
  const r = await runBatch();
  check(r.error === null && r.agree === 'true' && r.fastAgree === 'true', `${file}: random batch 33: ${r.text}; ${r.fastText}`);
}

// ONNX with external data (torch.onnx.export(…, dynamo=True)'s default: the weights in
// digits.onnx.data), picked together: the summary is the CLI's (which finds the data file
// beside the .onnx), WebGPU and the wasm CPU paths agree with each other and with the native
// CPU reference. Picked alone: a message naming the data file and saying to pick both.
const extOnnx = join(root, 'tests/data/external/digits.onnx');
const extData = `${extOnnx}.data`;
{
  const got = await loadFile([extOnnx, extData]);
  check(got.error === null, `digits.onnx + digits.onnx.data picked together: loads (${got.error ?? 'no error'})`);
  check(got.summary === cliSummary(extOnnx), 'digits.onnx + .data: the summary equals `wgpu-mlp summary --weights digits.onnx`');
  const meta = await page.$eval('#modelMeta', (p) => p.textContent);
  check(/with digits\.onnx\.data/.test(meta), `digits.onnx + .data: the page names both files: ${meta}`);
  const r = await runBatch();
  check(r.error === null && r.agree === 'true' && r.fastAgree === 'true', `digits.onnx + .data: random batch 33: ${r.text}; ${r.fastText}`);
  const run = await page.evaluate(() => globalThis.wgpuMlpLastRun);
  const native = within(run.cpu, nativeCpu(extOnnx, run, 'cpu-reference'));
  check(native.ok, `digits.onnx + .data: CPU reference, wasm vs native: max |diff| ${native.max}`);
  const alone = await loadFile(extOnnx);
  check(alone.error !== null && /digits\.onnx\.data/.test(alone.error) && /pick both/.test(alone.error),
    `digits.onnx without its .data file: ${alone.error}`);
  const dataOnly = await loadFile(extData);
  check(dataOnly.error !== null && /no \.onnx or \.safetensors file/.test(dataOnly.error), `digits.onnx.data alone: ${dataOnly.error}`);
  const asBuffer = (name, buffer) => ({ name, mimeType: 'application/octet-stream', buffer });
  const wrong = await loadFile([asBuffer('digits.onnx', readFileSync(extOnnx)), asBuffer('digits.onnx.data', readFileSync(extData).subarray(0, 100))]);
  check(wrong.error !== null && /digits\.onnx\.data/.test(wrong.error), `digits.onnx with a cut .data file: ${wrong.error}`);
}

// Damaged files: messages, not crashes.
const junk = await loadFile({ name: 'junk.safetensors', mimeType: 'application/octet-stream', buffer: Buffer.from('not a model') });
check(junk.error !== null, `a damaged file is a message: ${junk.error}`);
const cut = readFileSync(join(root, `tests/data/models/${ONNX_FIXTURE}.legacy.onnx`));
const cutOnnx = await loadFile({ name: 'cut.onnx', mimeType: 'application/octet-stream', buffer: cut.subarray(0, cut.length - 100) });
check(cutOnnx.error !== null && /cut\.onnx/.test(cutOnnx.error), `a truncated .onnx file is a message: ${cutOnnx.error}`);

// Back to the digits model and a drawn digit for the screenshot.
await loadFile(files[0]);
await page.fill('#pasted', '');
await page.fill('#batch', '64');
await page.fill('#seed', '0');
await page.fill('#repeats', '8');
await page.check('input[name="source"][value="random"]');
await runBatch();
await clear();
await setPen(24);
for (const s of human.find((h) => h.digit === 3).strokes) await strokeMouse(s);
const three = await settled();
check(three.digit === 3, `a 3 drawn for the screenshot: page says ${three.digit}`);
mkdirSync(dirname(SCREENSHOT), { recursive: true });
await page.screenshot({ path: SCREENSHOT, fullPage: true });

await noPanics(page, pageErrors);
await browser.close();

// ------------------------------------------------------------------ a browser without WebGPU

const plain = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: [...ARGS, '--disable-webgpu'] });
const p2 = await plain.newPage();
await p2.goto(URL_);
await p2.waitForFunction(() => document.getElementById('status').dataset.state !== 'loading', null, { timeout: 60_000 });
const msg = await p2.$eval('#status', (s) => [s.dataset.state, s.textContent]);
check(msg[0] === 'error' && /WebGPU/.test(msg[1]) && /(Chrome|browser)/.test(msg[1]), `without a WebGPU adapter the page says so: ${msg[1]}`);
// A browser with no navigator.gpu at all (removed before the page's scripts run).
const bare = await plain.newContext();
await bare.addInitScript(() => { delete Navigator.prototype.gpu; });
const p3 = await bare.newPage();
await p3.goto(URL_);
await p3.waitForFunction(() => document.getElementById('status').dataset.state !== 'loading', null, { timeout: 60_000 });
const msg3 = await p3.$eval('#status', (s) => [s.dataset.state, s.textContent]);
check(msg3[0] === 'error' && /navigator\.gpu is missing/.test(msg3[1]), `without navigator.gpu the page says so: ${msg3[1]}`);
await plain.close();
server.close();

console.log(`\n${results.length} checks, ${failed()} failed; screenshot ${SCREENSHOT}`);
process.exit(failed() ? 1 : 0);
