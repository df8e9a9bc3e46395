//! A panic hook that reports. Nothing in this crate should panic (bad input is an error value),
//! so a panic is a bug: its message goes to the console and to `globalThis.wgpuMlpPanic`, where
//! the page picks it up to show instead of a bare "unreachable executed". The hook before it
//! (the browser test harness's, an application's) still runs. On native targets (the tests of
//! the pure modules) nothing changes.

/// Installs the hook once (every entry point calls this; later calls do nothing).
pub fn install() {
    #[cfg(target_arch = "wasm32")]
    {
        use std::sync::Once;
        static ONCE: Once = Once::new();
        // set_hook itself panics while a panic is under way.
        if std::thread::panicking() {
            return;
        }
        ONCE.call_once(|| {
            let previous = std::panic::take_hook();
            std::panic::set_hook(Box::new(move |info| {
                report(&format!(
                    "wgpu-mlp-web panicked (a bug; please report it): {info}"
                ));
                previous(info);
            }));
        });
    }
}

#[cfg(target_arch = "wasm32")]
fn report(msg: &str) {
    use wasm_bindgen::prelude::*;

    #[wasm_bindgen]
    extern "C" {
        #[wasm_bindgen(js_namespace = console, js_name = error)]
        fn console_error(msg: &str);
    }

    console_error(msg);
    let _ = js_sys::Reflect::set(
        &js_sys::global(),
        &JsValue::from_str("wgpuMlpPanic"),
        &JsValue::from_str(msg),
    );
}
