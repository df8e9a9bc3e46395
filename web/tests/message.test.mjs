// web/message.js without a browser (node --test web/tests/message.test.mjs; web/ci.sh runs it):
// a panic's message is shown for the error it caused, and later errors show their own text.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { errorMessage } from '../message.js';

test('a panic is shown once, then every error shows its own text', () => {
  const store = {};
  assert.equal(errorMessage(new Error('bad model: 3 columns'), store), 'bad model: 3 columns');
  store.wgpuMlpPanic = 'wgpu-mlp-web panicked (a bug; please report it): first';
  assert.equal(errorMessage(new Error('unreachable'), store), store.wgpuMlpPanicsShown[0]);
  assert.equal(errorMessage(new Error('bad input: line 2'), store), 'bad input: line 2');
  assert.equal(errorMessage(new Error('another'), store), 'another');
  // A second panic, even with the same text, is shown for its own error.
  store.wgpuMlpPanic = 'wgpu-mlp-web panicked (a bug; please report it): first';
  assert.equal(errorMessage(new Error('unreachable'), store), store.wgpuMlpPanicsShown[1]);
  assert.equal(errorMessage('a string thrown', store), 'a string thrown');
  assert.equal(store.wgpuMlpPanicsShown.length, 2);
});

test('without a panic, the error text as it is', () => {
  assert.equal(errorMessage(new Error('x'), {}), 'x');
  assert.equal(errorMessage(undefined, {}), 'undefined');
  assert.equal(errorMessage({ message: '' }, { wgpuMlpPanic: '' }), '[object Object]');
});
