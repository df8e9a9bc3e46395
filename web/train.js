// Panel 4: trains the digits MLP from scratch in the page (Training, web/src/training_api.rs).
// Steps run in chunks of about CHUNK_MS, each followed by a yield to the event loop, so the page
// keeps drawing and answering while it trains. Each epoch the training and held-out rows are
// scored and the curves and the gradient-health table redrawn. Device "WebGPU" trains with
// Training.onWebGpu, each step awaited (stepAsync); "CPU" (the default) on the f64 reference.
//
// For the page test and the console: globalThis.wgpuMlpTraining = { config, losses (every step),
// epochs: [{ epoch, step, trainLoss, trainAccuracy, heldoutLoss, heldoutAccuracy }], health (the last
// whole epoch's: [{ name, layer, units, grad, update, dead, saturated, identical }]), healthWarnings }.

const CHUNK_MS = 30;
const $ = (id) => document.getElementById(id);
const ns = 'http://www.w3.org/2000/svg';

function svgEl(name, attrs, text) {
  const e = document.createElementNS(ns, name);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  return e;
}

// A line chart: series = [{ points: [[x, y]], color, width, label, dash }], x from 0 to xMax.
function chart(svg, series, { xMax, yMin, yMax, xLabel, yLabel, fmt }) {
  const W = 500, H = 190, L = 46, B = 24, T = 16, R = 8;
  svg.setAttribute('viewBox', `0 0 ${W} ${H}`);
  const x = (v) => L + (v / Math.max(xMax, 1e-9)) * (W - L - R);
  const y = (v) => H - B - ((Math.min(Math.max(v, yMin), yMax) - yMin) / (yMax - yMin || 1)) * (H - B - T);
  const parts = [
    svgEl('line', { x1: L, y1: H - B, x2: W - R, y2: H - B, stroke: '#c6ccd3' }),
    svgEl('line', { x1: L, y1: T, x2: L, y2: H - B, stroke: '#c6ccd3' }),
    svgEl('text', { x: 2, y: 10 }, yLabel),
    svgEl('text', { x: L - 4, y: T + 8, 'text-anchor': 'end' }, fmt(yMax)),
    svgEl('text', { x: L - 4, y: H - B, 'text-anchor': 'end' }, fmt(yMin)),
  ];
  // Ticks on the x axis: 0, the middle and the end, named by `xLabel`.
  const mid = Math.round(xMax / 2);
  for (const v of [...new Set([0, mid, xMax])]) {
    parts.push(svgEl('line', { x1: x(v), y1: H - B, x2: x(v), y2: H - B + 3, stroke: '#c6ccd3' }));
    parts.push(svgEl('text', { x: x(v), y: H - 8, 'text-anchor': v === xMax ? 'end' : 'middle' }, v === xMax ? `${xLabel} ${v}` : String(v)));
  }
  series.forEach((s, k) => {
    if (s.points.length) {
      const d = s.points.map(([a, b], i) => `${i ? 'L' : 'M'}${x(a).toFixed(1)},${y(b).toFixed(1)}`).join('');
      parts.push(svgEl('path', { d, fill: 'none', stroke: s.color, 'stroke-width': s.width || 1.5, ...(s.dash ? { 'stroke-dasharray': s.dash } : {}) }));
    }
    const lx = W - R - (series.length - k) * 96; // the legend, top right
    parts.push(svgEl('rect', { x: lx, y: 4, width: 10, height: 3, fill: s.color }));
    parts.push(svgEl('text', { x: lx + 14, y: 9 }, s.label));
  });
  svg.replaceChildren(...parts);
}

const fmtE = (v) => (v === 0 ? '0' : v.toExponential(2));
const pct = (v) => `${(v * 100).toFixed(1)} %`;

// setupTraining({ Training, gpu, message, useModel, pytorchModel }): wires the panel.
// useModel(model, label) makes the digits panel draw with `model`.
export function setupTraining({ Training, getGpu, message, useModel }) {
  let data = null; // digits.bin's bytes
  let training = null;
  let running = false;
  let record = null;

  const error = (text) => {
    $('trainError').textContent = text;
    $('trainError').hidden = !text;
  };
  const status = (text, state) => {
    $('trainStatus').textContent = text;
    $('trainStatus').dataset.state = state;
  };
  const buttons = () => {
    $('trainStart').disabled = running;
    $('trainStop').disabled = !running;
    const trained = !!training && training.steps > 0;
    $('trainUse').disabled = running || !trained || !getGpu();
    $('trainSave').disabled = running || !trained;
    for (const id of ['trainInit', 'trainAct', 'trainOpt', 'trainLr', 'trainEpochs', 'trainSeed', 'trainDevice']) $(id).disabled = running;
  };

  function config() {
    const lr = Number($('trainLr').value);
    const epochs = Number($('trainEpochs').value);
    const seed = Number($('trainSeed').value);
    if (!(lr > 0) || !Number.isFinite(lr)) throw new Error(`the learning rate must be a positive number, not "${$('trainLr').value}"`);
    if (!Number.isInteger(epochs) || epochs < 1 || epochs > 500) throw new Error('the epochs must be a whole number from 1 to 500');
    if (!Number.isInteger(seed) || seed < 0) throw new Error('the seed must be a whole number from 0');
    return {
      init: $('trainInit').value, activation: $('trainAct').value, optimizer: $('trainOpt').value,
      lr, epochs, seed, shuffleSeed: seed, batchSize: 64, device: $('trainDevice').value,
    };
  }

  function draw() {
    const { losses, epochs, config: c } = record;
    const spe = training.stepsPerEpoch;
    const xMax = c.epochs;
    const lossMax = Math.max(2.5, ...epochs.map((e) => Math.max(e.trainLoss, e.heldoutLoss)).filter(Number.isFinite));
    // Every step's loss is noisy: shown thin, against the epoch means of both parts.
    const steps = losses.map((l, i) => [(i + 1) / spe, Math.min(l, lossMax)]);
    const at = (key) => epochs.map((e) => [e.epoch, e[key]]);
    chart($('lossPlot'), [
      { points: steps, color: '#c9d5ee', width: 1, label: 'step (train)' },
      { points: at('trainLoss'), color: 'var(--accent)', label: 'train' },
      { points: at('heldoutLoss'), color: 'var(--cpu)', label: 'held out', dash: '5 3' },
    ], { xMax, yMin: 0, yMax: lossMax, xLabel: 'epoch', yLabel: 'cross-entropy', fmt: (v) => v.toFixed(1) });
    chart($('accPlot'), [
      { points: at('trainAccuracy'), color: 'var(--accent)', label: 'train' },
      { points: at('heldoutAccuracy'), color: 'var(--cpu)', label: 'held out', dash: '5 3' },
    ], { xMax, yMin: 0, yMax: 1, xLabel: 'epoch', yLabel: 'accuracy', fmt: (v) => `${(v * 100).toFixed(0)}%` });
  }

  // The library's gradient health of the last whole epoch (train::Monitor, the table `wgpu-mlp
  // train` prints; docs/TRAINING.md, "Gradient health"): rows from training.health(), its
  // warnings from training.healthWarnings().
  function healthTable(rows, warnings) {
    if (!rows.length) {
      const p = Object.assign(document.createElement('p'), { className: 'meta', textContent: 'Gradient health: after the first epoch.' });
      $('health').replaceChildren(p);
      $('health').dataset.warnings = '0';
      return;
    }
    const table = document.createElement('table');
    const head = table.insertRow();
    const columns = [
      ['layer', 'The Linear layer and the activation after it'],
      ['mean |∇W|', "Mean |gradient| of the weight, averaged over the epoch's steps: a layer far below the last one hardly learns (vanishing gradients)"],
      ['‖ΔW‖ / ‖W‖', 'Update-to-weight ratio: ‖ΔW‖ / ‖W‖ (Frobenius norms) of each step, averaged over the epoch; about 1e-3 is the usual healthy size'],
      ['dead units', 'ReLU-family layers: the fraction of units whose pre-activation was never > 0 on any training image of the epoch'],
      ['saturated (|x| > 4)', 'Sigmoid/tanh layers: the fraction of (image, unit) pre-activations beyond ±4 over the epoch, where the slope is nearly 0'],
    ];
    for (const [h, title] of columns) {
      head.append(Object.assign(document.createElement('th'), { textContent: h, title }));
    }
    for (const r of rows) {
      const tr = table.insertRow();
      tr.insertCell().textContent = r.name;
      tr.insertCell().textContent = fmtE(r.grad);
      tr.insertCell().textContent = fmtE(r.update);
      tr.insertCell().textContent = r.dead === null ? '–' : pct(r.dead);
      tr.insertCell().textContent = r.saturated === null ? '–' : pct(r.saturated);
    }
    const note = document.createElement('p');
    note.className = 'meta';
    note.textContent = `Epoch ${training.epochsDone}, over its steps (the table wgpu-mlp train prints): mean |∇W| and ‖ΔW‖ / ‖W‖ averaged over the steps; ` +
      'dead: ReLU-family units never positive on any training image of the epoch; saturated: sigmoid/tanh pre-activations beyond ±4.';
    const warn = warnings.map((w) => Object.assign(document.createElement('p'), { className: 'warn', textContent: `⚠ ${w}` }));
    $('health').replaceChildren(table, ...warn, note);
    $('health').dataset.warnings = String(warnings.length);
  }

  // Between the parts of an epoch's scoring too: each takes tens of milliseconds.
  const yieldNow = () => new Promise((r) => setTimeout(r, 0));

  async function scoreEpoch() {
    const t = training.score(false);
    await yieldNow();
    const h = training.score(true);
    await yieldNow();
    const e = {
      epoch: training.steps / training.stepsPerEpoch, step: training.steps,
      trainLoss: t.loss, trainAccuracy: t.accuracy, heldoutLoss: h.loss, heldoutAccuracy: h.accuracy,
      heldoutCorrect: h.correct, heldoutTotal: h.total,
    };
    record.epochs.push(e);
    record.health = training.health();
    record.healthWarnings = training.healthWarnings();
    healthTable(record.health, record.healthWarnings);
    draw();
    return e;
  }

  async function run() {
    if (running) return;
    running = true; // from the first click on: a second one waits for this run
    buttons();
    error('');
    let c;
    try {
      c = config();
      if (!data) {
        const res = await fetch('model/digits.bin');
        if (!res.ok) throw new Error(`model/digits.bin: HTTP ${res.status}`);
        data = new Uint8Array(await res.arrayBuffer());
      }
      training?.free();
      training = null;
      const settings = [data, c.init, c.activation, c.optimizer, c.lr, c.batchSize, c.seed, c.shuffleSeed];
      if (c.device === 'webgpu') {
        // Steps on WebGPU are awaited (stepAsync): the device never blocks the page.
        const gpu = getGpu();
        if (!gpu) throw new Error('WebGPU is not available in this page (see the digits panel): train on the CPU');
        training = Training.onWebGpu(gpu, ...settings);
      } else {
        training = new Training(...settings);
      }
    } catch (e) {
      error(message(e));
      running = false;
      buttons();
      return;
    }
    record = { config: c, losses: [], epochs: [], health: [], healthWarnings: [] };
    globalThis.wgpuMlpTraining = record;
    status('Training…', 'running');
    await scoreEpoch(); // epoch 0: the untrained model
    const total = c.epochs * training.stepsPerEpoch;
    const t0 = performance.now();
    let busyMs = 0;
    try {
      while (running && training.steps < total) {
        const start = performance.now();
        while (training.steps < total && performance.now() - start < CHUNK_MS) {
          const loss = c.device === 'webgpu' ? await training.stepAsync() : training.step();
          record.losses.push(loss);
          if (training.steps % training.stepsPerEpoch === 0) {
            busyMs += performance.now() - start;
            await yieldNow();
            const e = await scoreEpoch();
            status(`Epoch ${e.epoch} of ${c.epochs}: train loss ${e.trainLoss.toFixed(4)}, accuracy ${pct(e.trainAccuracy)}; ` +
              `held out ${e.heldoutLoss.toFixed(4)}, ${pct(e.heldoutAccuracy)} (${e.heldoutCorrect}/${e.heldoutTotal})`, 'running');
            break; // paint each epoch
          }
        }
        if (training.steps % training.stepsPerEpoch !== 0) busyMs += performance.now() - start;
        if (training.steps % training.stepsPerEpoch !== 0) draw();
        // Yield: the page paints and handles input (drawing, the Stop button) between chunks.
        await yieldNow();
      }
    } catch (e) {
      error(message(e));
    }
    const stopped = training.steps < total;
    const e = record.epochs[record.epochs.length - 1];
    const s = (performance.now() - t0) / 1000;
    status(`${stopped ? 'Stopped' : 'Done'} after ${training.steps} steps (${(training.steps / training.stepsPerEpoch).toFixed(2)} epochs) ` +
      `in ${s.toFixed(1)} s (${(busyMs / Math.max(training.steps, 1)).toFixed(2)} ms a step on the ${training.backend} path): ` +
      `held-out accuracy ${pct(e.heldoutAccuracy)} (${e.heldoutCorrect}/${e.heldoutTotal}) at epoch ${e.epoch.toFixed(2).replace(/\.00$/, '')}.`,
    stopped ? 'stopped' : 'done');
    running = false;
    buttons();
  }

  $('trainStart').addEventListener('click', run);
  $('trainStop').addEventListener('click', () => { running = false; });
  $('trainUse').addEventListener('click', async () => {
    try {
      const m = training.toModel();
      m.upload(getGpu());
      await useModel(m, `the model trained here (${record.config.init} init, ${record.config.activation}, ` +
        `${record.config.optimizer} lr ${record.config.lr}, ${training.steps} steps)`);
      $('digits').scrollIntoView();
    } catch (e) {
      error(message(e));
    }
  });
  $('trainSave').addEventListener('click', () => {
    try {
      const bytes = training.stateDict();
      const a = document.createElement('a');
      a.href = URL.createObjectURL(new Blob([bytes], { type: 'application/octet-stream' }));
      a.download = 'digits-trained.safetensors';
      a.click();
      setTimeout(() => URL.revokeObjectURL(a.href), 1000);
    } catch (e) {
      error(message(e));
    }
  });
  buttons();
  return { refresh: buttons };
}
