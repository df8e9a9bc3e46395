// What the page tests share: a static server for web/, the check log, and a headless Chromium
// on WebGPU with the page loaded and ready (page.test.mjs, train.test.mjs).
import { createServer } from 'node:http';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { dirname, extname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

export const here = dirname(fileURLToPath(import.meta.url));
export const web = resolve(here, '..');
export const root = resolve(web, '..');
export const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
export const CLI = process.env.WGPU_MLP_CLI || join(root, 'target/debug/wgpu-mlp');
export const ARGS = [
  '--no-sandbox', '--disable-quic', '--no-first-run', '--disable-background-networking',
  '--disable-component-update', '--disable-sync',
];

export const results = [];
let failures = 0;
export function check(ok, what) {
  results.push(`${ok ? 'ok  ' : 'FAIL'} ${what}`);
  console.log(`${ok ? 'ok  ' : 'FAIL'} ${what}`);
  if (!ok) failures++;
}
export const failed = () => failures;
export function fatal(msg) {
  console.error(`FAIL: ${msg}`);
  process.exit(1);
}

const TYPES = {
  '.html': 'text/html; charset=utf-8', '.js': 'text/javascript', '.mjs': 'text/javascript',
  '.css': 'text/css', '.wasm': 'application/wasm', '.json': 'application/json',
  '.png': 'image/png', '.svg': 'image/svg+xml',
};

// Serves web/ on 127.0.0.1: { server, url }.
export async function serve() {
  const server = createServer((req, res) => {
    const path = decodeURIComponent(new URL(req.url, 'http://x').pathname);
    const file = resolve(web, `.${path === '/' ? '/index.html' : path}`);
    if (!file.startsWith(web) || !existsSync(file) || !statSync(file).isFile()) {
      res.writeHead(404).end('not found');
      return;
    }
    res.writeHead(200, { 'content-type': TYPES[extname(file)] || 'application/octet-stream' });
    res.end(readFileSync(file));
  });
  await new Promise((ok) => server.listen(0, '127.0.0.1', ok));
  return { server, url: `http://127.0.0.1:${server.address().port}/` };
}

// Fails unless the browser, the built page and the native CLI are there.
export function preconditions() {
  if (!existsSync(CHROMIUM)) fatal(`no browser at ${CHROMIUM}: apt-get install -y chromium (or set CHROMIUM)`);
  if (!existsSync(join(web, 'pkg/wgpu_mlp_web_bg.wasm'))) fatal('web/pkg/ is missing: run web/build.sh first');
  if (!existsSync(CLI)) fatal(`no native CLI at ${CLI}: cargo build (or set WGPU_MLP_CLI)`);
}

// Chromium on WebGPU with the page at `url`, ready (or a failure saying why not):
// { browser, context, page, pageErrors }.
export async function openPage(url) {
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [...ARGS, '--enable-unsafe-webgpu'],
  }).catch((e) => fatal(`Chromium did not start: ${e.message}`));
  const context = await browser.newContext({ viewport: { width: 1120, height: 980 }, hasTouch: true });
  const page = await context.newPage();
  const pageErrors = [];
  page.on('pageerror', (e) => pageErrors.push(`page error: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() === 'error') pageErrors.push(`console error: ${m.text()}`);
  });
  await page.goto(url);
  // Ready, or an error on the status line (no WebGPU, the model did not load): fail with it.
  await page.waitForFunction(
    () => document.body.dataset.ready === '1' || document.getElementById('status').dataset.state === 'error',
    null, { timeout: 60_000 },
  ).catch(() => {});
  const state = await page.$eval('#status', (s) => [s.dataset.state, s.textContent]);
  if (state[0] !== 'ready') {
    await browser.close();
    fatal(`the page is not ready (no WebGPU?): ${state[1]}`);
  }
  check(true, `page ready: ${state[1]}`);
  return { browser, context, page, pageErrors };
}

// The end of a page test: no panic, no page errors.
export async function noPanics(page, pageErrors) {
  // A panic the page showed is taken from wgpuMlpPanic into wgpuMlpPanicsShown (web/message.js).
  const panicked = await page.evaluate(() => globalThis.wgpuMlpPanic ?? globalThis.wgpuMlpPanicsShown?.[0] ?? null);
  check(panicked === null, `no panic in the wasm module (${panicked ?? 'none'})`);
  check(pageErrors.length === 0, `no page or console errors${pageErrors.length ? `: ${pageErrors.join(' | ')}` : ''}`);
}
