// The text shown for an error caught from the wasm module. A panic (a bug) first runs the hook in
// web/src/panic.rs, which leaves its message in `wgpuMlpPanic`, then traps with a bare
// "unreachable": the message stands for the error the panic caused, the next one caught. It is
// taken when shown, so every later error shows its own text (it used to show the old panic's
// for ever); the panics shown stay listed in `wgpuMlpPanicsShown` for the tests.
export function errorMessage(e, store = globalThis) {
  const panic = store.wgpuMlpPanic;
  if (typeof panic === 'string' && panic !== '') {
    store.wgpuMlpPanic = null;
    (store.wgpuMlpPanicsShown ??= []).push(panic);
    return panic;
  }
  return e && e.message ? e.message : String(e);
}
