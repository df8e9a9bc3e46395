// Drawing on the digits panel's pad with the mouse, and reading what the page made of it
// (page.test.mjs, train.test.mjs).

// The first sample of each class of web/model/heldout.json whose inked columns are centred (the
// page centres a drawing, so only those come back pixel for pixel); for a class with none (the
// 5s), the first sample among those closest to centred. Indices into `heldout`.
export const offCentre = (px) => {
  const cols = [...Array(8).keys()].filter((c) => [...Array(8).keys()].some((r) => px[r * 8 + c] > 0));
  return Math.abs(cols[0] + cols[cols.length - 1] + 1 - 8);
};
export function centredSamples(heldout) {
  const chosen = [];
  for (let d = 0; d < 10; d++) {
    const of = heldout.map((s, i) => [i, s]).filter(([, s]) => s.label === d);
    const best = Math.min(...of.map(([, s]) => offCentre(s.pixels)));
    chosen.push(of.find(([, s]) => offCentre(s.pixels) === best)[0]);
  }
  return chosen;
}

// { box, css, settled, clear, setPen, drawSample } for the pad of `page`.
export async function pad(page) {
  const box = await (await page.$('#pad')).boundingBox();
  const css = box.width / 256; // CSS pixels per canvas pixel

  // The prediction once the last change of the drawing is classified.
  async function settled() {
    await page.waitForFunction(() => document.getElementById('pad').dataset.pending === '0', null, { timeout: 30_000 });
    return page.evaluate(() => {
      const p = document.getElementById('prediction');
      return {
        digit: p.dataset.digit === '' ? null : Number(p.dataset.digit),
        probs: p.dataset.probs || '',
        pixels: document.getElementById('seen').dataset.pixels.split(',').map(Number),
      };
    });
  }

  async function clear() {
    await page.click('#clear');
    await settled();
  }

  async function setPen(px) {
    await page.locator('#pen').fill(String(px));
  }

  // One held-out image with the mouse: each pixel of value v a centred band of ink v/16 of its
  // 32-pixel cell high and the cell wide, drawn as horizontal strokes of a 4 px round pen.
  async function drawSample(pixels) {
    const pen = 4;
    const cell = 32;
    for (let k = 0; k < 64; k++) {
      const v = pixels[k];
      if (!v) continue;
      const r = Math.floor(k / 8);
      const c = k % 8;
      const h = (v / 16) * cell;
      const top = r * cell + (cell - h) / 2;
      const ys = [];
      if (h <= pen) ys.push(top + h / 2);
      else for (let y = top + pen / 2; y < top + h - pen / 2 + 0.01; y += Math.min(pen * 0.75, (h - pen) || pen)) ys.push(y);
      const x0 = c * cell + pen / 2;
      const x1 = (c + 1) * cell - pen / 2;
      for (const y of ys) {
        await page.mouse.move(box.x + x0 * css, box.y + y * css);
        await page.mouse.down();
        await page.mouse.move(box.x + x1 * css, box.y + y * css);
        await page.mouse.up();
      }
    }
  }

  return { box, css, settled, clear, setPen, drawSample };
}
