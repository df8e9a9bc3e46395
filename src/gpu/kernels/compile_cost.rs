//! What a pipeline costs to compile, estimated from its WGSL: the statements of its entry point
//! with every call to one of the module's functions inlined, as the drivers' compilers do
//! (Mesa's lavapipe and llvmpipe inline everything, and their compile time grows with the
//! inlined size). A kernel's epilogue is inlined at every store (8 times in `blocked.wgsl`, up
//! to 16 in `windowed.wgsl`) on each of 4 lanes, so one elementwise module fused into a Linear
//! layer costs tens of times what it costs in a pass of its own; that is what this counts.
//! Branches on override constants are not evaluated, so it is an upper bound for pipelines
//! that specialise them away (the windowed kernel's 1-, 4- and 8-row blocks).
//!
//! The unit, one inlined statement, took 0.1 to 0.5 ms of CPU time to compile on lavapipe
//! (Mesa 22.3, shader cache off); the figures are in docs/LOG.md (2026-12-07, reliability).
//! A model's distinct pipelines are counted once each (the context compiles each once) against
//! a budget, checked before anything is compiled: see [`check_budget`].

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::gpu::kernels::PipelineSpec;
use crate::gpu::kernels::elementwise::LABEL as ELEMENTWISE_LABEL;

/// Inlined statements of `entry` in `source` (0 when `source` has no such function).
pub(crate) fn inlined_statements(source: &str, entry: &str) -> u64 {
    let functions = functions(source);
    let mut memo = HashMap::new();
    size(entry, &functions, &mut memo, 0)
}

/// The inlined statements of every distinct pipeline among `specs` (one compile each: the
/// context's cache compiles a pipeline once, so identical passes cost nothing more).
pub(crate) fn total<'a>(specs: impl IntoIterator<Item = &'a PipelineSpec>) -> u64 {
    let mut seen = HashSet::new();
    specs
        .into_iter()
        .filter(|s| seen.insert(key(s)))
        .map(|s| inlined_statements(&s.source, s.entry))
        .fold(0u64, u64::saturating_add)
}

fn key(s: &PipelineSpec) -> (Arc<str>, &'static str, Vec<u64>) {
    let constants = s.constants.iter().map(|(_, v)| v.to_bits()).collect();
    (s.source.clone(), s.entry, constants)
}

/// The default budget of one model's pipelines, in inlined statements: at most about a minute
/// of compiling on lavapipe, over twice the largest model in the tests (51,082 for `acts_a`,
/// ten Linear layers with nine different activations).
pub(crate) const DEFAULT_COMPILE_BUDGET: u64 = 120_000;

/// Inlined statements compiled per second on lavapipe at the slowest measured (Mesa 22.3, shader
/// cache off: 0.1 ms per statement for plain arithmetic, 0.5 ms for transcendental-heavy code).
const SECOND: u64 = 2000;

/// Environment variable that sets the budget (a number of inlined statements).
pub(crate) const COMPILE_BUDGET_ENV: &str = "WGPU_MLP_COMPILE_BUDGET";

/// The share of the budget that elementwise passes (chains of elementwise modules that no Linear
/// or row pass absorbs) may take: real models have a few such modules between layers, while a
/// file of thousands of activations costs compile time without a single weight.
const ELEMENTWISE_SHARE: u64 = 8;

/// The budget: [`COMPILE_BUDGET_ENV`] when set, else [`DEFAULT_COMPILE_BUDGET`].
fn budget() -> Result<u64> {
    match std::env::var(COMPILE_BUDGET_ENV) {
        Err(_) => Ok(DEFAULT_COMPILE_BUDGET),
        Ok(v) => v.trim().parse().map_err(|_| {
            Error::invalid(format!(
                "{COMPILE_BUDGET_ENV}={:?}: expected a whole number of statements",
                crate::error::escape(&v)
            ))
        }),
    }
}

/// Refuses a model whose pipelines cost more than the budget to compile (all of them, or the
/// elementwise passes more than their share), before anything is compiled.
pub(crate) fn check_budget<'a>(specs: impl IntoIterator<Item = &'a PipelineSpec>) -> Result<()> {
    let specs: Vec<&PipelineSpec> = specs.into_iter().collect();
    let budget = budget()?;
    let all = total(specs.iter().copied());
    let elementwise = total(
        specs
            .iter()
            .copied()
            .filter(|s| s.label == ELEMENTWISE_LABEL),
    );
    let share = budget / ELEMENTWISE_SHARE;
    let over = if all > budget {
        Some(format!(
            "its GPU shaders add up to {all} statements once inlined"
        ))
    } else if elementwise > share {
        Some(format!(
            "its chains of elementwise modules add up to {elementwise} statements once inlined, \
             over the 1/{ELEMENTWISE_SHARE} of the budget ({share}) they may take"
        ))
    } else {
        None
    };
    match over {
        None => Ok(()),
        Some(why) => Err(Error::invalid(format!(
            "this model would take too long to compile for the GPU: {why}; the budget is \
             {budget} (up to about {} s on a software adapter such as lavapipe). Raise it with \
             the environment variable {COMPILE_BUDGET_ENV}=N, or run it on the CPU",
            budget / SECOND
        ))),
    }
}

/// Each function's body by name (`fn name(` at the start of a line to the next `}` line).
fn functions(source: &str) -> HashMap<&str, Vec<&str>> {
    let mut out: HashMap<&str, Vec<&str>> = HashMap::new();
    let mut current: Option<&str> = None;
    for line in source.lines() {
        let code = line.split("//").next().unwrap_or("");
        if let Some(rest) = code.strip_prefix("fn ") {
            let name = rest.split('(').next().unwrap_or("").trim();
            current = Some(name);
            out.insert(name, Vec::new());
        }
        if let Some(name) = current {
            out.get_mut(name).expect("inserted above").push(code);
            if code.starts_with('}') {
                current = None;
            }
        }
    }
    out
}

/// A function's statements plus those of every call it makes, inlined. WGSL forbids recursion;
/// `depth` bounds a malformed source all the same.
fn size<'s>(
    name: &str,
    functions: &HashMap<&'s str, Vec<&'s str>>,
    memo: &mut HashMap<String, u64>,
    depth: usize,
) -> u64 {
    if let Some(&n) = memo.get(name) {
        return n;
    }
    let Some(body) = functions.get(name) else {
        return 0;
    };
    if depth > 64 {
        return 0;
    }
    let mut total = 0u64;
    for code in body.iter().skip(1) {
        total = total.saturating_add(code.matches(';').count() as u64);
        for callee in calls(code) {
            if callee != name && functions.contains_key(callee) {
                let n = size(callee, functions, memo, depth + 1);
                total = total.saturating_add(n);
            }
        }
    }
    let total = total.max(1);
    memo.insert(name.to_string(), total);
    total
}

/// The identifiers followed by `(` in a line of code.
fn calls(code: &str) -> impl Iterator<Item = &str> {
    code.match_indices('(').filter_map(move |(at, _)| {
        let before = &code[..at];
        let start = before
            .rfind(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .map_or(0, |i| i + 1);
        let name = &before[start..];
        (!name.is_empty()).then_some(name)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::activation::Activation;
    use crate::gpu::options::{GpuMlpOptions, KernelMode};
    use crate::gpu::plan::{self, DeviceCaps};
    use crate::model::steps::steps;
    use crate::model::{BatchNorm1d, Linear, Mlp, Module};

    #[test]
    fn calls_are_inlined_with_their_multiplicity() {
        let src = "fn f(x: f32) -> f32 {\n    let a = x * 2.0;\n    return a;\n}\n\
                   // fn g is not this\n\
                   fn g(x: f32) -> f32 {\n    return f(x) + f(f(x)); // f(\n}\n\
                   @compute @workgroup_size(1)\nfn main() {\n    let v = g(1.0);\n    \
                   let w = exp(v);\n}\n";
        assert_eq!(inlined_statements(src, "f"), 2);
        assert_eq!(inlined_statements(src, "g"), 1 + 3 * 2);
        assert_eq!(inlined_statements(src, "main"), 2 + 7);
        assert_eq!(inlined_statements(src, "absent"), 0);
    }

    /// The distinct pipelines' cost of a model planned for a software adapter without
    /// subgroups (llvmpipe's plan), and its passes' kinds.
    fn plan_cost(modules: Vec<Module>, mode: KernelMode) -> (u64, Vec<String>) {
        let m = Mlp::new(modules).unwrap();
        let caps = DeviceCaps {
            software: true,
            subgroups: false,
            limits: wgpu::Limits::downlevel_defaults(),
        };
        let options = GpuMlpOptions {
            mode,
            ..GpuMlpOptions::default()
        };
        let p = plan::plan(&steps(&m), m.in_features(), &caps, options).unwrap();
        let specs: Vec<PipelineSpec> = p.passes.iter().flat_map(|p| p.kernel.pipelines()).collect();
        let kinds = specs.iter().map(|s| s.label.to_string()).collect();
        (total(&specs), kinds)
    }

    fn linear(i: usize, o: usize) -> Module {
        Module::Linear(Linear::new(i, o, vec![0.5; i * o], Some(vec![0.1; o])).unwrap())
    }

    #[test]
    fn a_linear_then_64_mish_stays_far_under_the_budget() {
        // Fused, the 64 Mish were inlined at all 16 stores of four windowed pipelines (438,562
        // statements, 98 s on lavapipe); apart, one elementwise pipeline inlines them 4 times.
        let mut modules = vec![linear(4, 4)];
        modules.extend(vec![Module::Activation(Activation::Mish); 64]);
        let (cost, kinds) = plan_cost(modules.clone(), KernelMode::Fused);
        assert!(cost < 15_000, "{cost}");
        assert_eq!(
            kinds.iter().filter(|k| *k == "elementwise").count(),
            2,
            "{kinds:?}"
        );
        // The Linear passes are those of a Linear with no epilogue.
        let (bare, _) = plan_cost(vec![linear(4, 4)], KernelMode::Fused);
        let (separate, _) = plan_cost(modules, KernelMode::Separate);
        assert!(cost <= separate + bare, "{cost} {separate} {bare}");
    }

    #[test]
    fn identical_chains_are_counted_once_and_short_ones_stay_fused() {
        let layer = || {
            let mut m = vec![linear(6, 6)];
            m.extend(vec![
                Module::Activation(Activation::Softplus {
                    beta: 1.0,
                    threshold: 20.0
                });
                4
            ]);
            m
        };
        let (one, kinds) = plan_cost(layer(), KernelMode::Fused);
        assert!(kinds.contains(&"elementwise".to_string()), "{kinds:?}");
        let (eight, _) = plan_cost((0..8).flat_map(|_| layer()).collect(), KernelMode::Fused);
        assert_eq!(one, eight);
        // BatchNorm then GELU, as real models have it, stays in the Linear's store step.
        let (_, kinds) = plan_cost(
            vec![
                linear(6, 6),
                Module::BatchNorm1d(BatchNorm1d::default_init(6)),
                Module::Activation(Activation::Gelu),
            ],
            KernelMode::Fused,
        );
        assert!(!kinds.contains(&"elementwise".to_string()), "{kinds:?}");
    }
}
