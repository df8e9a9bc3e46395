//! The training plan without a device: what it keeps, where it writes, in what order.

use std::collections::HashMap;

use crate::Activation;
use crate::gpu::kernels::SlotKind;
use crate::gpu::pass::Phase;
use crate::gpu::plan::DeviceCaps;
use crate::gpu::tensor::{Role, TensorId};
use crate::gpu::train::plan::plan;
use crate::model::{BatchNorm1d, LayerNorm, Linear, Mlp, Module, PRelu};
use crate::train::{Loss, Optimizer, Reduction};

fn every_module() -> Mlp {
    let linear = |i: usize, o: usize, bias: bool| {
        Module::Linear(Linear::new(i, o, vec![0.1; i * o], bias.then(|| vec![0.0; o])).unwrap())
    };
    Mlp::new(vec![
        linear(3, 5, false),
        Module::BatchNorm1d(BatchNorm1d::default_init(5)),
        Module::Activation(Activation::Relu),
        Module::Dropout(0.25),
        linear(5, 4, true),
        Module::LayerNorm(LayerNorm::default_init(4)),
        Module::PRelu(PRelu::new(vec![0.25]).unwrap()),
        Module::Function(Activation::Tanh),
        linear(4, 3, true),
        Module::Activation(Activation::LogSoftmax),
    ])
    .unwrap()
}

#[test]
fn forward_keeps_everything_backward_reads_and_phases_run_in_order() {
    let model = every_module();
    let caps = DeviceCaps {
        software: true,
        subgroups: false,
        limits: wgpu::Limits::default(),
    };
    for optim in [Optimizer::sgd(0.1), Optimizer::adam(0.1)] {
        let p = plan(&model, Loss::Nll, Reduction::Mean, optim, &caps).unwrap();
        let phases: Vec<Phase> = p.plan.passes.iter().map(|q| q.phase).collect();
        let first_backward = phases.iter().position(|&f| f == Phase::Backward).unwrap();
        let first_update = phases.iter().position(|&f| f == Phase::Update).unwrap();
        assert!(
            phases[..first_backward]
                .iter()
                .all(|&f| f == Phase::Forward)
        );
        assert!(
            phases[first_backward..first_update]
                .iter()
                .all(|&f| f == Phase::Backward)
        );
        assert!(phases[first_update..].iter().all(|&f| f == Phase::Update));
        // Nothing in place: in the forward and the backward, each tensor is written by one
        // pass at most, so every value a backward pass reads is still there.
        let mut writers: HashMap<TensorId, usize> = HashMap::new();
        for (i, pass) in p.plan.passes[..first_update].iter().enumerate() {
            for slot in pass.kernel.slots() {
                if slot.kind == (SlotKind::Storage { read_only: false }) {
                    let t = pass.tensor(slot.name).unwrap();
                    if p.plan.tensors[t.0].role == Role::StepState {
                        continue;
                    }
                    if let Some(before) = writers.insert(t, i) {
                        panic!(
                            "{} written by passes {before} and {i}",
                            p.plan.tensors[t.0].name
                        );
                    }
                }
            }
        }
        // Every parameter and running statistic is a Parameter tensor, in state_dict order.
        let names: Vec<&str> = p
            .plan
            .tensors
            .iter()
            .filter(|t| matches!(t.role, Role::Parameter { .. }))
            .map(|t| t.name.as_str())
            .collect();
        let want: Vec<String> = model
            .tensors()
            .iter()
            .filter(|t| t.f32().is_some())
            .map(|t| format!("{}.{}", t.module, t.kind))
            .collect();
        assert_eq!(names, want);
        // One update pass per trainable tensor, plus BatchNorm's running statistics.
        assert_eq!(phases.len() - first_update, model.parameters().len() + 1);
    }
}
